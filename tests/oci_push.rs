//! OCI distribution spec, push: upload sessions (POST/PATCH/PUT, monolithic
//! and chunked), status, cancel, digest checks, cross-repository mount, and
//! sessions that outlive a restart.

mod common;

use std::time::Duration;

use common::{Client, Server, closing_url, oci_error, sha256, sha512};

async fn start_session(c: &Client, repo: &str) -> String {
    let r = c
        .http
        .post(c.u(&format!("/v2/{repo}/blobs/uploads/")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    assert!(r.headers().contains_key("docker-upload-uuid"));
    assert_eq!(r.headers()["range"], "0-0");
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    assert!(loc.contains(&format!("/v2/{repo}/blobs/uploads/")), "{loc}");
    c.loc(&loc)
}

/// Sends `data[start..=end]` for each range as one PATCH with its
/// `Content-Range`, checks each answer (202, `Range: 0-<end>`), and returns
/// the session's location after the last.
async fn patch_chunks(
    c: &Client,
    mut loc: String,
    data: &[u8],
    ranges: &[(usize, usize)],
) -> String {
    for &(start, end) in ranges {
        let r = c
            .http
            .patch(&loc)
            .header("Content-Type", "application/octet-stream")
            .header("Content-Range", format!("{start}-{end}"))
            .body(data[start..=end].to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        assert_eq!(r.headers()["range"], format!("0-{end}").as_str());
        loc = c.loc(r.headers()["location"].to_str().unwrap());
    }
    loc
}

async fn blob_status(c: &Client, repo: &str, d: &str) -> u16 {
    c.http
        .head(c.u(&format!("/v2/{repo}/blobs/{d}")))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn post_then_put_monolithic() {
    let server = Server::start();
    let c = server.client();
    let data = b"post then put";
    let d = sha256(data);
    let loc = start_session(&c, "push/mono").await;
    let r = c
        .http
        .put(closing_url(&loc, &d))
        .header("Content-Type", "application/octet-stream")
        .body(data.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["docker-content-digest"], d.as_str());
    assert_eq!(
        r.headers()["location"].to_str().unwrap(),
        format!("/v2/push/mono/blobs/{d}")
    );
    assert_eq!(blob_status(&c, "push/mono", &d).await, 200);
}

#[tokio::test]
async fn single_post_with_digest() {
    let server = Server::start();
    let c = server.client();
    let data = b"one request";
    let d = sha256(data);
    let r = c
        .http
        .post(c.u(&format!("/v2/push/single/blobs/uploads/?digest={d}")))
        .header("Content-Type", "application/octet-stream")
        .body(data.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(
        r.headers()["location"].to_str().unwrap(),
        format!("/v2/push/single/blobs/{d}")
    );
    assert_eq!(blob_status(&c, "push/single", &d).await, 200);
}

#[tokio::test]
async fn chunked_upload_with_status_and_out_of_order_chunk() {
    let server = Server::start();
    let c = server.client();
    let data: Vec<u8> = (0..30_000u32).map(|i| (i * 7 % 256) as u8).collect();
    let d = sha256(&data);
    let loc = start_session(&c, "push/chunks").await;
    let loc = patch_chunks(&c, loc, &data, &[(0, 9_999), (10_000, 19_999)]).await;
    // Status: 204 with what arrived so far.
    let r = c.http.get(&loc).send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(r.headers()["range"], "0-19999");
    assert!(r.headers().contains_key("docker-upload-uuid"));
    assert!(r.headers().contains_key("location"));
    // A chunk that does not start where the last ended: 416.
    let r = c
        .http
        .patch(&loc)
        .header("Content-Range", "25000-29999")
        .body(data[25_000..].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 416);
    // The session is intact: finish with the last chunk in the PUT.
    let r = c
        .http
        .put(closing_url(&loc, &d))
        .header("Content-Range", "20000-29999")
        .body(data[20_000..].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = c
        .http
        .get(c.u(&format!("/v2/push/chunks/blobs/{d}")))
        .send()
        .await
        .unwrap();
    assert_eq!(sha256(&r.bytes().await.unwrap()), d);
}

#[tokio::test]
async fn cancel_and_unknown_sessions() {
    let server = Server::start();
    let c = server.client();
    let loc = start_session(&c, "push/cancel").await;
    c.http
        .patch(&loc)
        .body(b"some bytes".to_vec())
        .send()
        .await
        .unwrap();
    let r = c.http.delete(&loc).send().await.unwrap();
    assert_eq!(r.status(), 204);
    let r = c.http.get(&loc).send().await.unwrap();
    assert_eq!(oci_error(r).await, (404, "BLOB_UPLOAD_UNKNOWN".into()));
    let r = c
        .http
        .patch(&loc)
        .body(b"more".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(oci_error(r).await, (404, "BLOB_UPLOAD_UNKNOWN".into()));
    let r = c
        .http
        .put(c.u("/v2/push/cancel/blobs/uploads/no-such-session?digest=sha256:0000000000000000000000000000000000000000000000000000000000000000"))
        .send()
        .await
        .unwrap();
    assert_eq!(oci_error(r).await, (404, "BLOB_UPLOAD_UNKNOWN".into()));
    let r = c
        .http
        .delete(c.u("/v2/push/cancel/blobs/uploads/no-such-session"))
        .send()
        .await
        .unwrap();
    assert_eq!(oci_error(r).await, (404, "BLOB_UPLOAD_UNKNOWN".into()));
}

#[tokio::test]
async fn digest_mismatch_stores_nothing() {
    let server = Server::start();
    let c = server.client();
    let claimed = sha256(b"what the client says");
    let r = c
        .http
        .post(c.u(&format!("/v2/push/bad/blobs/uploads/?digest={claimed}")))
        .body(b"what the client sends".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(oci_error(r).await, (400, "DIGEST_INVALID".into()));
    assert_eq!(blob_status(&c, "push/bad", &claimed).await, 404);
    let actual = sha256(b"what the client sends");
    assert_eq!(blob_status(&c, "push/bad", &actual).await, 404);

    let loc = start_session(&c, "push/bad").await;
    let r = c
        .http
        .put(closing_url(&loc, &claimed))
        .body(b"other bytes".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(oci_error(r).await, (400, "DIGEST_INVALID".into()));
    assert_eq!(blob_status(&c, "push/bad", &claimed).await, 404);
    // A malformed digest.
    let r = c
        .http
        .post(c.u("/v2/push/bad/blobs/uploads/?digest=sha256:nothex"))
        .body(b"x".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(oci_error(r).await, (400, "DIGEST_INVALID".into()));
}

/// A single-request upload whose client goes away mid-body: nothing is
/// stored, and its session (whose id the client never saw) is removed at
/// once instead of lingering until it expires.
#[tokio::test]
async fn a_monolithic_upload_cut_off_leaves_no_session() {
    use std::io::Write as _;
    let server = Server::start();
    let c = server.client();
    let d = sha256(&[7u8; 100_000]);
    let addr = c.addr();
    let mut conn = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        conn,
        "POST /v2/push/cut/blobs/uploads/?digest={d} HTTP/1.1\r\nHost: {addr}\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: 100000\r\n\r\n"
    )
    .unwrap();
    conn.write_all(&[7u8; 1000]).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(conn);

    let uploads = server.data.join("uploads");
    let sessions = || std::fs::read_dir(&uploads).map_or(0, |rd| rd.count());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while sessions() > 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(sessions(), 0, "a session was left in {}", uploads.display());
    assert_eq!(blob_status(&c, "push/cut", &d).await, 404);
}

/// Opens a PATCH of `loc` on a raw socket announcing 100,000 bytes and
/// sends only the first 1,000 (what a client that hangs up or stalls does).
fn patch_partly(c: &Client, loc: &str) -> std::net::TcpStream {
    use std::io::Write as _;
    let path = loc.trim_start_matches(&c.url);
    let addr = c.addr();
    let mut conn = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        conn,
        "PATCH {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: 100000\r\n\r\n"
    )
    .unwrap();
    conn.write_all(&[7u8; 1000]).unwrap();
    conn
}

/// A PATCH whose body ends before its Content-Length (the client half-closed
/// the connection): the request's fault, so 400 BLOB_UPLOAD_INVALID rather
/// than a 500 and an ERROR "storage error" in the log; none of its bytes
/// count, and the session goes on from where it was.
#[tokio::test]
async fn a_patch_cut_short_is_a_400_and_the_session_goes_on() {
    use std::io::Read as _;
    let server = Server::start();
    let c = server.client();
    let loc = start_session(&c, "push/short").await;
    let mut conn = patch_partly(&c, &loc);
    conn.shutdown(std::net::Shutdown::Write).unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("BLOB_UPLOAD_INVALID"), "{answer}");

    let r = c.http.get(&loc).send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(r.headers()["range"], "0-0");
    let data = vec![9u8; 5000];
    let loc = patch_chunks(&c, loc, &data, &[(0, 4999)]).await;
    let d = sha256(&data);
    let r = c.http.put(closing_url(&loc, &d)).send().await.unwrap();
    assert_eq!(r.status(), 201);
    assert!(
        !server.log_text().contains("storage error"),
        "{}",
        server.log_text()
    );
}

#[tokio::test]
async fn cross_repository_mount() {
    let server = Server::start();
    let c = server.client();
    let d = c.push_blob("mount/src", b"shared layer").await;
    let unknown = sha256(b"nowhere");
    // (target repository, query, status): 201 mounted, 202 a session.
    let cases = [
        ("mount/dst", format!("mount={d}&from=mount/src"), 201),
        // Not mountable (unknown blob, or the source does not have it).
        ("mount/dst2", format!("mount={unknown}&from=mount/src"), 202),
        (
            "mount/dst2",
            format!("mount={unknown}&from=mount/none"),
            202,
        ),
        ("mount/dst2", format!("mount={d}&from=mount/none"), 202),
        // Without `from` (authentication off): any stored copy is mounted;
        // an unknown blob gets a session.
        ("mount/dst3", format!("mount={d}"), 201),
        ("mount/dst4", format!("mount={unknown}"), 202),
    ];
    for (repo, query, want) in cases {
        let r = c
            .http
            .post(c.u(&format!("/v2/{repo}/blobs/uploads/?{query}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), want, "{repo} {query}");
        if want == 201 {
            assert_eq!(
                r.headers()["location"].to_str().unwrap(),
                format!("/v2/{repo}/blobs/{d}")
            );
            assert_eq!(r.headers()["docker-content-digest"], d.as_str());
            assert_eq!(blob_status(&c, repo, &d).await, 200);
        } else {
            assert!(r.headers().contains_key("location"), "{repo} {query}");
            assert!(r.headers().contains_key("docker-upload-uuid"));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_session_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let data: Vec<u8> = (0..50_000u32).map(|i| (i % 13) as u8).collect();
    let d = sha256(&data);
    let path = {
        let mut server = Server::start_on(&data_dir, &[]);
        let c = server.client();
        let loc = start_session(&c, "push/restart").await;
        let r = c
            .http
            .patch(&loc)
            .header("Content-Range", "0-24999")
            .body(data[..25_000].to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        let next = r.headers()["location"].to_str().unwrap().to_string();
        assert!(
            server
                .terminate(Duration::from_secs(10))
                .is_some_and(|s| s.success())
        );
        // The path part: the new server listens on another port.
        next.split_once("/v2/")
            .map(|(_, p)| format!("/v2/{p}"))
            .unwrap()
    };
    let server = Server::start_on(&data_dir, &[]);
    let c = server.client();
    let r = c.http.get(c.u(&path)).send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(r.headers()["range"], "0-24999");
    let r = c
        .http
        .patch(c.u(&path))
        .header("Content-Range", "25000-49999")
        .body(data[25_000..].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let loc = c.loc(r.headers()["location"].to_str().unwrap());
    let r = c.http.put(closing_url(&loc, &d)).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let r = c
        .http
        .get(c.u(&format!("/v2/push/restart/blobs/{d}")))
        .send()
        .await
        .unwrap();
    assert_eq!(sha256(&r.bytes().await.unwrap()), d);
}

/// The empty blob (the digest of zero bytes) is a blob like any other: the
/// conformance suite pushes it, and artifacts use it as their config.
#[tokio::test]
async fn an_empty_blob_is_stored_and_served() {
    let server = Server::start();
    let c = server.client();
    let d = sha256(b"");
    let loc = start_session(&c, "push/empty").await;
    let r = c.http.put(closing_url(&loc, &d)).send().await.unwrap();
    assert_eq!(r.status(), 201, "{:?}", r.text().await);
    assert_eq!(r.headers()["docker-content-digest"], d.as_str());
    for method in [reqwest::Method::HEAD, reqwest::Method::GET] {
        let r = c
            .http
            .request(method.clone(), c.u(&format!("/v2/push/empty/blobs/{d}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{method}");
        assert_eq!(r.headers()["content-length"], "0", "{method}");
        assert_eq!(r.headers()["docker-content-digest"], d.as_str());
        assert!(r.bytes().await.unwrap().is_empty());
    }
}

/// `?digest-algorithm=sha512` opens a session whose chunks are hashed with
/// sha512; an algorithm nora does not know is refused before any byte moves.
#[tokio::test]
async fn a_chunked_sha512_upload_named_by_digest_algorithm() {
    let server = Server::start();
    let c = server.client();
    let data: Vec<u8> = (0..3_000u32).map(|i| (i * 13 % 256) as u8).collect();
    let d = sha512(&data);
    let r = c
        .http
        .post(c.u("/v2/push/512/blobs/uploads/?digest-algorithm=sha512"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let loc = c.loc(r.headers()["location"].to_str().unwrap());
    let loc = patch_chunks(&c, loc, &data, &[(0, 1_499), (1_500, 2_999)]).await;
    let r = c.http.put(closing_url(&loc, &d)).send().await.unwrap();
    assert_eq!(r.status(), 201, "{:?}", r.text().await);
    assert_eq!(r.headers()["docker-content-digest"], d.as_str());
    let r = c
        .http
        .get(c.u(&format!("/v2/push/512/blobs/{d}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap(), data);

    let r = c
        .http
        .post(c.u("/v2/push/512/blobs/uploads/?digest-algorithm=md5"))
        .send()
        .await
        .unwrap();
    assert_eq!(oci_error(r).await, (400, "DIGEST_INVALID".into()));
}

/// A client that stops sending mid-body is not waited for forever: after
/// `body_timeout` of silence its request fails (400), and its temp file and
/// chunk are gone while the session stays usable.
#[tokio::test]
async fn a_body_that_stalls_is_dropped_after_the_body_timeout() {
    use std::io::Read as _;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_on(dir.path(), &[("NORA_BODY_TIMEOUT", "1s")]);
    let c = server.client();
    let loc = start_session(&c, "push/stall").await;
    let mut conn = patch_partly(&c, &loc);
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let started = std::time::Instant::now();
    let mut answer = [0u8; 512];
    let n = conn.read(&mut answer).unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(5));
    let tmp = std::fs::read_dir(dir.path().join("_tmp"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name() != "lock")
        .count();
    assert_eq!(tmp, 0, "the stalled body's temp file was removed");
    let r = c.http.get(&loc).send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(r.headers()["range"], "0-0");
}

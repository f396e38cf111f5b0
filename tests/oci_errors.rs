//! Bad input on every endpoint: the spec's error JSON with its code, never a
//! 500, and the server keeps serving.

mod common;

use common::{OCI_MANIFEST, Server, oci_error};

#[tokio::test]
async fn invalid_repository_names() {
    let server = Server::start();
    let c = server.client();
    let long = "a".repeat(300);
    for name in [
        "Upper/case",
        "a..b",
        "a//b",
        "-lead",
        "trail-",
        "a/",
        "a__b/-c",
        long.as_str(),
    ] {
        for path in [
            format!("/v2/{name}/tags/list"),
            format!("/v2/{name}/manifests/v1"),
            format!("/v2/{name}/blobs/uploads/"),
        ] {
            let r = if path.ends_with("uploads/") {
                c.http.post(c.u(&path)).send().await.unwrap()
            } else {
                c.http.get(c.u(&path)).send().await.unwrap()
            };
            let status = r.status().as_u16();
            assert!(status < 500, "{path}: {status}");
            if status != 404 || r.headers().get("content-type").is_some() {
                let (status, code) = oci_error(r).await;
                assert!(
                    (status == 400 && code == "NAME_INVALID")
                        || (status == 404 && code == "NAME_UNKNOWN"),
                    "{path}: {status} {code}"
                );
            }
        }
    }
    // `..` components: sent raw, since HTTP client libraries normalise them away.
    for path in [
        "/v2/a/../b/manifests/v1",
        "/v2/../../etc/tags/list",
        "/v2/a/%2e%2e/b/tags/list",
    ] {
        let answer = raw_get(&server.url, path);
        let status: u16 = answer[9..12].parse().unwrap();
        assert!(status == 400 || status == 404, "{path}: {answer}");
        assert!(
            answer.contains("NAME_INVALID")
                || answer.contains("NAME_UNKNOWN")
                || answer.contains("UNSUPPORTED"),
            "{path}: {answer}"
        );
    }
    // A name of many components is fine.
    c.push_image("a/b/c/d/e", "v1", b"deep").await;
    let r = c
        .http
        .get(c.u("/v2/a/b/c/d/e/tags/list"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Separators the grammar allows.
    c.push_image("my.org/some_team/app-x", "v1", b"seps").await;
}

#[tokio::test]
async fn invalid_digests_and_ranges() {
    let server = Server::start();
    let c = server.client();
    c.push_image("e/app", "v1", b"x").await;
    for bad in [
        "sha256:short",
        "md5:0123",
        "sha256:ZZZZ",
        "nocolon",
        "sha256:",
    ] {
        let r = c
            .http
            .get(c.u(&format!("/v2/e/app/blobs/{bad}")))
            .send()
            .await
            .unwrap();
        let (status, code) = oci_error(r).await;
        assert_eq!(status, 400, "{bad}");
        assert!(
            code == "DIGEST_INVALID" || code == "BLOB_UNKNOWN",
            "{bad}: {code}"
        );
    }
    let r = c
        .http
        .post(c.u("/v2/e/app/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    let loc = c.loc(r.headers()["location"].to_str().unwrap());
    for bad in ["abc", "5-2", "-", "bytes=x-y", "1-"] {
        let r = c
            .http
            .patch(&loc)
            .header("Content-Range", bad)
            .body(b"x".to_vec())
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        assert!(
            status == 400 || status == 416,
            "Content-Range {bad}: {status}"
        );
        if status == 400 {
            assert_eq!(oci_error(r).await.1, "BLOB_UPLOAD_INVALID", "{bad}");
        }
    }
    // A value that is not text is malformed too, not a missing header (the
    // chunk would be appended wherever the session is).
    let r = c
        .http
        .patch(&loc)
        .header(
            "Content-Range",
            reqwest::header::HeaderValue::from_bytes(b"0-\xe9").unwrap(),
        )
        .body(b"x".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(oci_error(r).await, (400, "BLOB_UPLOAD_INVALID".into()));
    let r = c.http.get(&loc).send().await.unwrap();
    assert_eq!(r.headers()["range"], "0-0", "nothing was appended");
    // PUT without a digest.
    let r = c.http.put(&loc).send().await.unwrap();
    assert_eq!(oci_error(r).await, (400, "DIGEST_INVALID".into()));
    let d = c.push_blob("e/app", b"ranged").await;
    for bad in ["bytes=abc", "lines=0-1", "bytes=5-2"] {
        let r = c
            .http
            .get(c.u(&format!("/v2/e/app/blobs/{d}")))
            .header("Range", bad)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        assert!(status == 416 || status == 200, "Range {bad}: {status}");
    }
}

#[tokio::test]
async fn manifest_media_type_errors() {
    let server = Server::start();
    let c = server.client();
    let (_, body) = c.push_image("e/mt", "v1", b"x").await;
    let r = c
        .put_manifest("e/mt", "v2", "application/x-unknown", &body)
        .await;
    let (status, code) = oci_error(r).await;
    assert_eq!(status, 400);
    assert!(
        code == "MANIFEST_INVALID" || code == "UNSUPPORTED",
        "{code}"
    );
    // No mediaType in the body nor in Content-Type: nothing tells what it is.
    let bare = br#"{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":1},"layers":[]}"#;
    let r = c
        .http
        .put(c.u("/v2/e/mt/manifests/bare"))
        .body(bare.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(oci_error(r).await.0, 400);
    // schemaVersion 1 is not supported.
    let r = c
        .put_manifest(
            "e/mt",
            "old",
            "application/vnd.docker.distribution.manifest.v1+prettyjws",
            br#"{"schemaVersion":1}"#,
        )
        .await;
    assert_eq!(oci_error(r).await.0, 400);
    // JSON of the wrong shape.
    for junk in [&b"[]"[..], b"null", b"42", br#"{"schemaVersion":"two"}"#, br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"digest":"x"}}"#] {
        let r = c.put_manifest("e/mt", "junk", OCI_MANIFEST, junk).await;
        assert_eq!(oci_error(r).await, (400, "MANIFEST_INVALID".into()), "{}", String::from_utf8_lossy(junk));
    }
}

#[tokio::test]
async fn unknown_routes_methods_and_headers_never_500() {
    let server = Server::start();
    let c = server.client();
    let (d, _) = c.push_image("e/r", "v1", b"x").await;
    let cases: Vec<(&str, String)> = vec![
        ("GET", "/v2/e/r/nothing".into()),
        ("POST", "/v2/e/r/manifests/v1".into()),
        ("PATCH", format!("/v2/e/r/blobs/{d}")),
        ("GET", "/v2/_catalog?n=abc".into()),
        ("GET", "/v2/e/r/tags/list?n=-1".into()),
        ("GET", "/v2/e/r/referrers/notadigest".into()),
        ("GET", "/v3/".into()),
        ("DELETE", "/v2/".into()),
    ];
    for (method, path) in cases {
        let r = c
            .http
            .request(method.parse().unwrap(), c.u(&path))
            .header("Authorization", "Bearer garbage.jwt.value")
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        assert!((400..500).contains(&status), "{method} {path}: {status}");
    }
    // A known endpoint asked with a method it does not take says which it takes.
    for (method, path, allow) in [
        (
            "POST",
            "/v2/e/r/manifests/v1".to_string(),
            "GET, HEAD, PUT, DELETE",
        ),
        ("PATCH", format!("/v2/e/r/blobs/{d}"), "GET, HEAD, DELETE"),
        ("DELETE", "/v2/".into(), "GET, HEAD"),
        ("GET", "/v2/e/r/blobs/uploads/".into(), "POST"),
    ] {
        let r = c
            .http
            .request(method.parse().unwrap(), c.u(&path))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 405, "{method} {path}");
        assert_eq!(r.headers()["allow"], allow, "{method} {path}");
    }
    // Still serving.
    let r = c
        .http
        .get(c.u("/v2/e/r/manifests/v1"))
        .header("Accept", OCI_MANIFEST)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// One GET with the path exactly as given; the status line and body.
fn raw_get(url: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let addr = url.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// A request hyper refuses before any handler runs still leaves a log line.
#[test]
fn a_request_refused_before_routing_is_logged() {
    use std::io::{Read, Write};
    let server = Server::start();
    let addr = server.url.trim_start_matches("http://").to_string();
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    s.write_all(b"NOT A REQUEST\r\n\r\n").unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    assert!(out.starts_with("HTTP/1.1 400"), "{out}");
    for _ in 0..100 {
        if server.log_text().contains("request refused") {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("no log line:\n{}", server.log_text());
}

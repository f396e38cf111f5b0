mod common;

use common::*;

#[tokio::test]
async fn push_and_pull_an_image() {
    let s = Server::start();
    let c = s.client();
    let (digest, manifest) = c.push_image("smoke/app", "v1", b"layer bytes").await;
    let r = c
        .http
        .get(c.u("/v2/smoke/app/manifests/v1"))
        .header("Accept", OCI_MANIFEST)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["docker-content-digest"], digest.as_str());
    assert_eq!(r.headers()["content-type"], OCI_MANIFEST);
    assert_eq!(r.bytes().await.unwrap().as_ref(), manifest.as_slice());
}

/// Started with a low soft limit on open files (as services often are), the
/// server raises it to the hard limit: every connection and every blob read
/// holds one.
#[test]
fn the_open_files_limit_is_raised_to_the_hard_one() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain libc calls on a local struct.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
    assert!(
        lim.rlim_max > 256,
        "hard limit {} leaves nothing to show",
        lim.rlim_max
    );
    let saved = lim;
    lim.rlim_cur = 256;
    // The child inherits the lowered limit; ours is restored right after.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) }, 0);
    let s = Server::start();
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &saved) }, 0);
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", s.child.id())).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap()
        .to_string();
    let soft: Vec<&str> = line.split_whitespace().skip(3).take(2).collect();
    assert_eq!(
        soft,
        [saved.rlim_max.to_string(), saved.rlim_max.to_string()],
        "{line}"
    );
}

/// The request log line of `method path`, once written (it is written when
/// the answer's body has been sent or given up).
async fn log_line(s: &Server, method: &str, path: &str) -> String {
    let want = format!("method={method} path={path} ");
    for _ in 0..100 {
        if let Some(line) = s.log_text().lines().find(|l| l.contains(&want)) {
            return line.to_string();
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("no log line for {method} {path}:\n{}", s.log_text());
}

/// The log counts the bytes that went each way, not what headers announced:
/// a chunked upload has no Content-Length, a download the client gave up
/// did not send all it announced, an answer to HEAD sends none.
#[tokio::test]
async fn request_log_lines_count_what_was_sent() {
    let s = Server::start();
    let c = s.client();
    let r = c
        .http
        .post(c.u("/v2/log/r/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    let loc = c.loc(r.headers()["location"].to_str().unwrap());
    let path = reqwest::Url::parse(&loc).unwrap().path().to_string();
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..10).map(|_| Ok(vec![7u8; 30_000])).collect();
    let r = c
        .http
        .patch(&loc)
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let line = log_line(&s, "PATCH", &path).await;
    assert!(line.contains("bytes_in=300000"), "{line}");

    let big = vec![1u8; 32 << 20];
    let d = c.push_blob("log/r", &big).await;
    let blob = format!("/v2/log/r/blobs/{d}");
    let r = c.http.head(c.u(&blob)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let line = log_line(&s, "HEAD", &blob).await;
    assert!(
        line.contains("bytes_out=0 ") && line.contains("complete=true"),
        "{line}"
    );

    // A client that reads a little, then hangs up.
    let mut r = reqwest::Client::new().get(c.u(&blob)).send().await.unwrap();
    r.chunk().await.unwrap();
    drop(r);
    let line = log_line(&s, "GET", &blob).await;
    assert!(line.contains("complete=false"), "{line}");
    let sent: u64 = line
        .split("bytes_out=")
        .nth(1)
        .and_then(|v| v.split(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(sent < big.len() as u64, "{line}");
}

/// When whoever reads the log goes away (a closed pipe, a log shipper that
/// died), the server keeps answering: before, every request that logged
/// panicked in the log writer, and the server, still listening, answered
/// nothing. Text and JSON logs.
#[tokio::test]
async fn the_server_answers_when_its_log_is_gone() {
    for format in ["text", "json"] {
        let dir = tempfile::tempdir().unwrap();
        let s = Server::start_on(&dir.path().join("data"), &[("NORA_LOG_FORMAT", format)]);
        let c = s.client();
        s.drop_log();
        for _ in 0..3 {
            // The first request's log line is the last one read.
            let _ = c.http.get(c.u("/v2/")).send().await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let (digest, _) = c.push_image("logless/app", "v1", b"layer bytes").await;
        for path in ["/v2/", "/health", "/v2/logless/app/manifests/v1"] {
            let r = c
                .http
                .get(c.u(path))
                .header("Accept", OCI_MANIFEST)
                .send()
                .await
                .unwrap_or_else(|e| panic!("{format}: GET {path}: {e}"));
            assert_eq!(r.status(), 200, "{format}: GET {path}");
        }
        assert!(!digest.is_empty());
    }
}

/// A store another user wrote to first (root running `nora gc` on the
/// server's store, say) still takes the server's pushes: the lock file that
/// user made is opened only to read. Runs the server as another user, which
/// only root may: skipped otherwise.
#[tokio::test]
async fn a_lock_file_another_user_made_does_not_stop_pushes() {
    use std::os::unix::fs::PermissionsExt;
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: running a server as another user needs root");
        return;
    }
    let mode = |p: &std::path::Path, m| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap()
    };
    let dir = tempfile::tempdir().unwrap();
    mode(dir.path(), 0o755);
    let data = dir.path().join("data");
    std::fs::create_dir_all(data.join("_tmp")).unwrap();
    std::fs::write(data.join("_tmp/lock"), b"").unwrap();
    mode(&data.join("_tmp/lock"), 0o644);
    mode(&data, 0o777);
    mode(&data.join("_tmp"), 0o777);
    let program = dir.path().join("nora");
    std::fs::copy(env!("CARGO_BIN_EXE_nora"), &program).unwrap();
    mode(&program, 0o755);
    let s = Server::start_as(&program, 65534, &data);
    let (digest, _) = s.client().push_image("perm/app", "v1", b"layer").await;
    let r = s
        .client()
        .http
        .get(s.client().u("/v2/perm/app/manifests/v1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["docker-content-digest"], digest.as_str());
}

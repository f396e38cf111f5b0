//! `nora serve` over HTTPS (`NORA_TLS_CERT` / `NORA_TLS_KEY`): pushes and
//! pulls, the token realm, a plain HTTP client on the HTTPS port, a renewed
//! certificate, and the CLI trusting a private CA.

mod common;

use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{Server, push_like_a_client, trusting, verify_pull, write_pair};

/// A self-signed certificate for 127.0.0.1 and localhost, and its key.
/// Sends `bytes` on a raw connection to `addr`; all the server answers
/// before it closes.
async fn exchange(addr: String, bytes: &'static [u8]) -> String {
    tokio::task::spawn_blocking(move || {
        let mut sock = std::net::TcpStream::connect(addr).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        sock.write_all(bytes).unwrap();
        let mut answer = String::new();
        sock.read_to_string(&mut answer).unwrap();
        answer
    })
    .await
    .unwrap()
}

fn start_tls(dir: &Path, cert: &Path, key: &Path, extra: &[(&str, &str)]) -> Server {
    let mut env = vec![
        ("NORA_TLS_CERT", cert.to_str().unwrap()),
        ("NORA_TLS_KEY", key.to_str().unwrap()),
    ];
    env.extend_from_slice(extra);
    Server::start_on(&dir.join("data"), &env)
}

#[tokio::test]
async fn an_image_goes_up_and_down_over_https() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = write_pair(dir.path(), "server");
    let s = start_tls(dir.path(), &cert, &key, &[]);
    assert!(s.url.starts_with("https://127.0.0.1:"), "{}", s.url);
    let c = trusting(&s, &cert);
    let r = c.http.get(c.u("/v2/")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["docker-distribution-api-version"],
        "registry/2.0"
    );
    // Large enough to take many TLS records each way.
    let layer: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let digest = push_like_a_client(&c, "tls/app", "v1", &layer)
        .await
        .unwrap();
    verify_pull(&c, "tls/app", "v1", &digest).await;

    // A client that does not trust the certificate gets no answer.
    let stranger = reqwest::Client::new();
    assert!(stranger.get(c.u("/v2/")).send().await.is_err());
}

/// Clients fetch a token from the realm of the challenge: behind nora's own
/// TLS it must be an https:// URL, or the login would go out in clear.
#[tokio::test]
async fn the_token_realm_is_https() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = write_pair(dir.path(), "server");
    let users = dir.path().join("users.htpasswd");
    std::fs::write(&users, format!("ci:{}\n", bcrypt::hash("pw", 4).unwrap())).unwrap();
    let s = start_tls(
        dir.path(),
        &cert,
        &key,
        &[
            ("NORA_AUTH_ENABLED", "true"),
            ("NORA_AUTH_HTPASSWD_FILE", users.to_str().unwrap()),
        ],
    );
    let c = trusting(&s, &cert);
    let r = c.http.get(c.u("/v2/")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let challenge = r.headers()["www-authenticate"].to_str().unwrap();
    let realm = format!("realm=\"{}/auth/token\"", s.url);
    assert!(challenge.contains(&realm), "{challenge}");
    let r = c
        .http
        .get(c.u("/auth/token?service=nora&scope=repository:x:pull"))
        .basic_auth("ci", Some("pw"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// `curl http://` on the HTTPS port reads why it failed; the server goes on.
#[tokio::test]
async fn plain_http_on_the_https_port_is_told_so() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = write_pair(dir.path(), "server");
    let s = start_tls(dir.path(), &cert, &key, &[]);
    let c = trusting(&s, &cert);
    let answer = exchange(c.addr(), b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
    assert!(
        answer.ends_with("an HTTP request to an HTTPS server.\n"),
        "{answer}"
    );
    let r = c.http.get(c.u("/v2/")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(s.logged("plain HTTP request on the HTTPS port").await);
}

/// Renewal tools replace the files in place: new connections get the new
/// certificate without a restart; a key that does not fit keeps the old one.
#[tokio::test]
async fn a_renewed_certificate_is_served_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = write_pair(dir.path(), "server");
    let s = start_tls(dir.path(), &cert, &key, &[]);
    let old = trusting(&s, &cert);
    let saved_old = dir.path().join("old.crt");
    std::fs::copy(&cert, &saved_old).unwrap();
    assert_eq!(
        old.http.get(old.u("/v2/")).send().await.unwrap().status(),
        200
    );

    // Half a renewal (the certificate, not yet its key): still the old pair.
    let (next_cert, next_key) = write_pair(dir.path(), "next");
    std::fs::copy(&next_cert, &cert).unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let old = trusting(&s, &saved_old);
    assert_eq!(
        old.http.get(old.u("/v2/")).send().await.unwrap().status(),
        200
    );
    assert!(
        s.logged("does not load; still serving the one before")
            .await,
        "{}",
        s.log_text()
    );

    // The key follows (written beside it and renamed, as tools do).
    let staged = dir.path().join("staged.key");
    std::fs::copy(&next_key, &staged).unwrap();
    std::fs::rename(&staged, &key).unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let new = trusting(&s, &next_cert);
    assert_eq!(
        new.http.get(new.u("/v2/")).send().await.unwrap().status(),
        200
    );
    let old = trusting(&s, &saved_old);
    assert!(old.http.get(old.u("/v2/")).send().await.is_err());
    assert!(s.logged("TLS certificate reloaded").await);
}

/// `nora --url https://…` trusts the system's CAs, and `SSL_CERT_FILE` names
/// a private one, as for curl and git.
#[tokio::test]
async fn the_cli_trusts_a_private_ca_from_ssl_cert_file() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = write_pair(dir.path(), "server");
    let s = start_tls(dir.path(), &cert, &key, &[]);
    let c = trusting(&s, &cert);
    push_like_a_client(&c, "tls/cli", "v1", b"layer")
        .await
        .unwrap();
    let nora = |ca: Option<&Path>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_nora"));
        cmd.args(["images", "ls", "--output", "json", "--url", &s.url])
            .env_remove("NORA_CONFIG")
            .env_remove("NORA_TOKEN")
            .env("NORA_CREDENTIALS", dir.path().join("no-credentials"))
            .env_remove("SSL_CERT_DIR");
        match ca {
            Some(ca) => cmd.env("SSL_CERT_FILE", ca),
            None => cmd.env_remove("SSL_CERT_FILE"),
        };
        cmd.output().unwrap()
    };
    let out = nora(Some(&cert));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("tls/cli"));
    let out = nora(None);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("certificate is refused") && err.contains("SSL_CERT_FILE"),
        "{err}"
    );

    // https:// to a plain HTTP server says so.
    let plain = Server::start();
    let out = Command::new(env!("CARGO_BIN_EXE_nora"))
        .args(["images", "ls", "--url"])
        .arg(plain.url.replace("http://", "https://"))
        .env_remove("NORA_CONFIG")
        .env_remove("NORA_TOKEN")
        .env("NORA_CREDENTIALS", dir.path().join("no-credentials"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("does not speak HTTPS") && err.contains("try http://"),
        "{err}"
    );
}

/// skopeo and podman try https:// first even with --tls-verify=false: on the
/// plain port that handshake gets an HTTP answer (their cue to fall back),
/// and no info line of a refused request.
#[tokio::test]
async fn a_tls_handshake_on_the_plain_port_is_answered_quietly() {
    let s = Server::start();
    let c = s.client();
    // The start of a ClientHello record.
    let hello: &[u8] = &[0x16, 0x03, 0x01, 0x00, 0x05, 0x01, 0x00, 0x00, 0x01, 0x00];
    let answer = exchange(c.addr(), hello).await;
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
    let r = c.http.get(c.u("/v2/")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        !s.log_text().contains("request refused"),
        "{}",
        s.log_text()
    );
}

/// A connection that never starts its handshake does not hold the shutdown
/// for the handshake timeout, nor one that stops after it.
#[tokio::test]
async fn silent_connections_do_not_hold_the_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = write_pair(dir.path(), "server");
    let mut s = start_tls(dir.path(), &cert, &key, &[]);
    let c = trusting(&s, &cert);
    let _silent = std::net::TcpStream::connect(c.addr()).unwrap();
    // Handshaken by a request, then kept idle in the client's pool.
    assert_eq!(c.http.get(c.u("/v2/")).send().await.unwrap().status(), 200);
    let started = std::time::Instant::now();
    let st = tokio::task::spawn_blocking(move || s.terminate(Duration::from_secs(20)))
        .await
        .unwrap();
    assert!(st.is_some_and(|st| st.success()));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "shutdown took {:?}",
        started.elapsed()
    );
}

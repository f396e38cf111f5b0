//! `nora login` and `logout` when something is wrong: a credentials file that
//! cannot be written, a URL holding a password, a lifetime the server would
//! refuse. No token is left live that nobody holds.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;

use super::common::Server;
use super::nora;

/// A server with authentication on and one user, alice (password alicepw).
fn server_with_auth(dir: &Path) -> Server {
    let users = dir.join("users");
    std::fs::write(
        &users,
        format!("alice:{}\n", bcrypt::hash("alicepw", 4).unwrap()),
    )
    .unwrap();
    let config = dir.join("nora.toml");
    std::fs::write(
        &config,
        format!(
            "[auth]\nenabled = true\nhtpasswd_file = {users:?}\nfailed_login_limit = 0\n\
             [[auth.rules]]\nsubject = \"alice\"\npermissions = [\"admin:**\"]\n"
        ),
    )
    .unwrap();
    Server::start_on(
        &dir.join("data"),
        &[("NORA_CONFIG", config.to_str().unwrap())],
    )
}

/// `nora login URL -u alice --password-stdin` with the credentials file at
/// `creds`; returns (exit code, stdout, stderr).
fn login(url: &str, creds: &Path, extra: &[&str]) -> (Option<i32>, String, String) {
    let out = nora()
        .env("NO_COLOR", "1")
        .env("NORA_CREDENTIALS", creds)
        .env_remove("NORA_URL")
        .env_remove("NORA_TOKEN")
        .args(["login", url, "-u", "alice", "--password-stdin"])
        .args(extra)
        .write_stdin("alicepw\n")
        .timeout(std::time::Duration::from_secs(30))
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// The login tokens the store holds, read from storage.
fn login_tokens(server: &Server) -> Vec<String> {
    let out = nora()
        .args(["token", "ls", "-o", "json", "--data-dir"])
        .arg(&server.data)
        .env_remove("NORA_URL")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    list.as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str().map(String::from))
        .filter(|n| n.starts_with("login-"))
        .collect()
}

#[test]
fn no_login_token_is_granted_that_cannot_be_kept() {
    let dir = tempfile::tempdir().unwrap();
    let server = server_with_auth(dir.path());
    let plain = dir.path().join("plain");
    std::fs::write(&plain, "").unwrap();
    let creds_dir = dir.path().join("creds-dir");
    std::fs::create_dir(&creds_dir).unwrap();
    for creds in [
        creds_dir.clone(),
        plain.join("creds.toml"),
        plain.join("sub/creds.toml"),
    ] {
        let (code, out, err) = login(&server.url, &creds, &[]);
        assert_eq!(code, Some(1), "{creds:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(creds.to_str().unwrap()), "{err}");
        assert!(out.is_empty(), "{out}");
        assert_eq!(login_tokens(&server), Vec::<String>::new(), "{creds:?}");
    }

    // A lifetime the server refuses is a usage error, found before asking.
    for short in ["30s", "59s", "500ms", "366d"] {
        let (code, _, err) = login(
            &server.url,
            &dir.path().join("c.toml"),
            &["--expires", short],
        );
        assert_eq!(code, Some(2), "{short}: {err}");
        assert!(
            err.contains("--expires must be from 1 minute to 365 days"),
            "{err}"
        );
    }
    assert_eq!(login_tokens(&server), Vec::<String>::new());
    let (code, _, err) = login(
        &server.url,
        &dir.path().join("c.toml"),
        &["--expires", "60s"],
    );
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(login_tokens(&server).len(), 1);
}

/// Reads one HTTP request (head and body) from `s`; returns its head.
fn read_request(s: &mut std::net::TcpStream) -> String {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte).unwrap() == 0 {
            break;
        }
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).to_string();
    let length = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    s.read_exact(&mut body).unwrap();
    head
}

/// When the file becomes unwritable between the check and the write (here:
/// while the server is answering), the granted token is revoked.
#[test]
fn a_granted_token_that_cannot_be_stored_is_revoked() {
    let dir = tempfile::tempdir().unwrap();
    let creds = dir.path().join("creds.toml");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let in_the_way = creds.clone();
    let granted = r#"{"token":"nora_granted","name":"login-alice-1","expires_in":60}"#;
    let server = std::thread::spawn(move || {
        let mut heads = Vec::new();
        for answer in [
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{granted}",
                granted.len()
            ),
            "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n".to_string(),
        ] {
            let (mut s, _) = listener.accept().unwrap();
            heads.push(read_request(&mut s));
            std::fs::create_dir_all(&in_the_way).unwrap();
            s.write_all(answer.as_bytes()).unwrap();
        }
        heads
    });
    let (code, _, err) = login(&url, &creds, &[]);
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("the login token just granted (login-alice-1) was revoked"),
        "{err}"
    );
    let heads = server.join().unwrap();
    assert!(heads[0].starts_with("POST /auth/login "), "{heads:?}");
    assert!(heads[1].starts_with("DELETE /auth/login "), "{heads:?}");
    assert!(
        heads[1]
            .to_ascii_lowercase()
            .contains("authorization: bearer nora_granted"),
        "{heads:?}"
    );
}

/// A password in the URL would be sent in place of -u's, shown in the
/// output and kept as the credentials' key: refused, never echoed.
#[test]
fn urls_holding_credentials_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let creds = dir.path().join("creds.toml");
    for url in [
        "http://bob:bobpw@127.0.0.1:1",
        "http://bob@127.0.0.1:1",
        "http://:bobpw@127.0.0.1:1",
    ] {
        let (code, out, err) = login(url, &creds, &["-o", "json"]);
        assert_eq!(code, Some(2), "{url}: {err}");
        assert!(out.is_empty(), "{out}");
        assert!(!err.contains("bobpw"), "{err}");
        assert!(err.contains("must not hold a user or password"), "{err}");
        assert!(
            err.contains("-u") && err.contains("--password-stdin"),
            "{err}"
        );
        let out = nora()
            .env("NORA_CREDENTIALS", &creds)
            .env_remove("NORA_URL")
            .args(["logout", url])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(
            !err.contains("bobpw") && err.contains("user or password"),
            "{err}"
        );
    }
    assert!(!creds.exists());
}

//! The binary driven as users drive it: flags, config errors, exit codes.

#[path = "../common/mod.rs"]
mod common;
mod docs;
mod fuzz;
mod login;
mod ops;
mod remote;
mod tokens;

use std::io::{BufRead, BufReader};
use std::process::{Command as StdCommand, Stdio};
use std::time::Duration;

use assert_cmd::Command;

fn nora() -> Command {
    let mut c = Command::cargo_bin("nora").unwrap();
    c.env_remove("NORA_CONFIG");
    c
}

/// Runs nora with `args` and `env`, no NORA_URL/TOKEN/TIMEOUT of the caller; returns (exit code, stdout, stderr).
fn run_with_env(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let mut cmd = nora();
    cmd.env("NO_COLOR", "1")
        .env_remove("NORA_URL")
        .env_remove("NORA_TOKEN")
        .env_remove("NORA_TIMEOUT")
        .args(args)
        .timeout(Duration::from_secs(60));
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

#[test]
fn version_and_help() {
    let out = nora().arg("--version").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("nora "));
    let out = nora().arg("--help").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("serve"));
}

#[test]
fn unknown_subcommand_is_a_usage_error() {
    let out = nora().arg("frobnicate").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    // Every usage error is one line, as every other error is.
    for args in [
        &["frobnicate"][..],
        &["images", "ls", "--foo"],
        &["tag", "a"],
        &["gc", "--grace", "5x"],
    ] {
        let out = nora().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = stderr_of(&out);
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.starts_with("nora: ") && err.contains("try --help"),
            "{err}"
        );
    }
}

#[test]
fn unknown_config_key_names_key_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("nora.toml");
    std::fs::write(&file, "[server]\nprot = 1\n").unwrap();
    let out = nora()
        .arg("--config")
        .arg(&file)
        .arg("serve")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr_of(&out);
    assert!(err.contains("prot") && err.contains("nora.toml"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one readable line: {err}");
}

#[test]
fn bad_values_are_startup_errors() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.toml");
    std::fs::write(&file, "[server]\nport = \"eighty\"\n").unwrap();
    let out = nora().env("NORA_CONFIG", &file).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr_of(&out).contains("port"), "{}", stderr_of(&out));

    let out = nora()
        .env("NORA_PORT", "99999")
        .arg("serve")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr_of(&out).contains("NORA_PORT"));

    let out = nora()
        .env("NORA_LOG_FORMAT", "xml")
        .arg("serve")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr_of(&out).contains("log.format"));

    let out = nora().env("NORA_CONFIG", "").arg("serve").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr_of(&out).contains("NORA_CONFIG"),
        "{}",
        stderr_of(&out)
    );

    use std::os::unix::ffi::OsStrExt;
    let out = nora()
        .env("NORA_LOG_FORMAT", std::ffi::OsStr::from_bytes(b"json\xff"))
        .arg("serve")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr_of(&out).contains("NORA_LOG_FORMAT"),
        "{}",
        stderr_of(&out)
    );

    let out = nora()
        .arg("--config")
        .arg(dir.path().join("missing.toml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr_of(&out).contains("missing.toml"));
}

/// A certificate without its key is a usage error; files that do not load
/// stop the start, naming the setting and the file.
#[test]
fn tls_files_are_checked_at_startup() {
    let dir = tempfile::tempdir().unwrap();
    let pair = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let cert = dir.path().join("tls.crt");
    std::fs::write(&cert, pair.cert.pem()).unwrap();
    let serve = |key: Option<&str>| {
        let mut cmd = nora();
        cmd.env("NORA_TLS_CERT", &cert)
            .env("NORA_PORT", "0")
            .env("NORA_STORAGE_PATH", dir.path().join("data"))
            .arg("serve")
            .timeout(Duration::from_secs(20));
        if let Some(key) = key {
            cmd.env("NORA_TLS_KEY", dir.path().join(key));
        }
        cmd.output().unwrap()
    };
    let out = serve(None);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr_of(&out).contains("server.tls_key"),
        "{}",
        stderr_of(&out)
    );

    let out = serve(Some("missing.key"));
    assert_eq!(out.status.code(), Some(1));
    let err = stderr_of(&out);
    assert!(
        err.contains("server.tls_key") && err.contains("missing.key"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "one readable line: {err}");

    let other = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    std::fs::write(
        dir.path().join("other.key"),
        other.signing_key.serialize_pem(),
    )
    .unwrap();
    let out = serve(Some("other.key"));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr_of(&out).contains("not the key of"),
        "{}",
        stderr_of(&out)
    );
}

#[test]
fn port_in_use_is_one_line_and_exit_1() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let dir = tempfile::tempdir().unwrap();
    let out = nora()
        .env("NORA_PORT", &port)
        .env("NORA_STORAGE_PATH", dir.path())
        .arg("serve")
        .timeout(Duration::from_secs(20))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr_of(&out);
    assert!(err.contains("cannot listen on"), "{err}");
}

/// S3 storage with no credentials anywhere: one line that says what to set,
/// not the SDK's warnings and its last resort ("failed to load IMDS session
/// token").
#[test]
fn missing_s3_credentials_are_said_as_what_to_set() {
    let home = tempfile::tempdir().unwrap();
    let out = nora()
        .args(["images", "ls"])
        .env("NORA_STORAGE_MODE", "s3")
        .env("NORA_S3_BUCKET", "b")
        .env("NORA_S3_ENDPOINT", "http://127.0.0.1:1")
        .env_remove("NORA_S3_ACCESS_KEY")
        .env_remove("NORA_S3_SECRET_KEY")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_PROFILE")
        .env("HOME", home.path())
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .timeout(Duration::from_secs(30))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr_of(&out);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("no S3 credentials") && err.contains("NORA_S3_ACCESS_KEY"),
        "{err}"
    );
}

/// Bare `nora` serves, reads ./config.toml from its working directory, logs
/// JSON lines with a request id, and exits 0 on SIGTERM.
#[test]
fn bare_nora_serves_with_config_toml_from_cwd() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.toml"),
        "[server]\nport = 0\n[storage]\npath = \"store\"\nfsync = false\n[log]\nformat = \"json\"\n",
    )
    .unwrap();
    let mut child = StdCommand::new(env!("CARGO_BIN_EXE_nora"))
        .current_dir(dir.path())
        .env_remove("NORA_CONFIG")
        .env_remove("NORA_PORT")
        .env_remove("NORA_STORAGE_PATH")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let v: serde_json::Value = serde_json::from_str(&first).expect("json log line");
    let addr = v["address"].as_str().unwrap().to_string();
    assert!(
        dir.path().join("store").is_dir(),
        "storage path from config.toml"
    );

    let resp = raw_http::get_status(&format!("http://{addr}/v2/"));
    assert_eq!(resp, 200);
    let line = lines.next().unwrap().unwrap();
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["method"], "GET");
    assert_eq!(v["path"], "/v2/");
    assert_eq!(v["status"], 200);
    assert!(v["request_id"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(v["ms"].is_number());
    let ms = v["ms"].to_string();
    assert!(
        ms.split_once('.').is_none_or(|(_, frac)| frac.len() <= 3),
        "ms in whole microseconds: {ms}"
    );

    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let status = child.wait().unwrap();
    assert!(status.success(), "exit 0 on SIGTERM, got {status}");
}

mod raw_http {
    /// A bare HTTP/1.0 GET returning the status (keeps this test synchronous).
    pub fn get_status(url: &str) -> u16 {
        use std::io::{Read, Write};
        let rest = url.strip_prefix("http://").unwrap();
        let (host, path) = rest.split_once('/').unwrap();
        let mut s = std::net::TcpStream::connect(host).unwrap();
        write!(s, "GET /{path} HTTP/1.0\r\nHost: {host}\r\n\r\n").unwrap();
        let mut buf = String::new();
        s.read_to_string(&mut buf).unwrap();
        buf.split_whitespace().nth(1).unwrap().parse().unwrap()
    }
}

/// A token given as a flag is overwritten in the process's own argument
/// memory once parsed: `ps` (which reads /proc/PID/cmdline) no longer shows
/// it while the command runs.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[test]
fn a_token_flag_is_hidden_from_ps() {
    // A server that accepts and never answers: the command stays running.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", silent.local_addr().unwrap());
    for args in [
        vec!["images", "ls", "--url", &url, "--token", "nora_s3cret_one"],
        vec!["images", "ls", "--url", &url, "--token=nora_s3cret_two"],
    ] {
        let mut child = StdCommand::new(env!("CARGO_BIN_EXE_nora"))
            .args(&args)
            .env_remove("NORA_CONFIG")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let cmdline = format!("/proc/{}/cmdline", child.id());
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let seen = loop {
            let seen =
                String::from_utf8_lossy(&std::fs::read(&cmdline).unwrap()).replace('\0', " ");
            // Right after spawn the command line may not be ours yet.
            let ours = seen.contains("--url");
            if (ours && !seen.contains("s3cret")) || std::time::Instant::now() > deadline {
                break seen;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let _ = child.kill();
        let _ = child.wait();
        assert!(!seen.contains("s3cret"), "ps shows the token: {seen}");
        assert!(seen.contains("--url") && seen.contains("*****"), "{seen}");
    }
}

/// Output that cannot be written is one line and exit 1 (a full disk), or a
/// quiet exit 141 when the reader went away (`nora ... | head`), as Unix
/// tools end by SIGPIPE: never a panic.
#[test]
fn unwritable_output_is_not_a_panic() {
    use std::os::fd::FromRawFd;
    let dir = tempfile::tempdir().unwrap();
    let full = || {
        std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap()
    };
    let nora = || {
        let mut c = StdCommand::new(env!("CARGO_BIN_EXE_nora"));
        c.env_remove("NORA_CONFIG");
        c
    };
    for args in [
        vec!["completions", "bash"],
        vec!["images", "ls", "--data-dir", dir.path().to_str().unwrap()],
        vec![
            "images",
            "ls",
            "-o",
            "json",
            "--data-dir",
            dir.path().to_str().unwrap(),
        ],
    ] {
        let out = nora().args(&args).stdout(full()).output().unwrap();
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains("No space left on device"), "{err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");

        // A pipe whose reader is gone.
        let mut fds = [0; 2];
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        unsafe { libc::close(fds[0]) };
        let writer = unsafe { std::fs::File::from_raw_fd(fds[1]) };
        let out = nora().args(&args).stdout(writer).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(141),
            "{args:?}: {}",
            stderr_of(&out)
        );
        assert_eq!(stderr_of(&out), "");
    }
}

/// With stderr gone (`nora gc -vv 2>&1 | head -1`), a command still does its
/// work and exits with its own status. Before, the first log line or message
/// that could not be written panicked (exit 101), and a gc stopped that way
/// kept its lock, so the next gc waited a minute.
#[test]
fn a_closed_stderr_is_not_a_panic() {
    use std::os::fd::FromRawFd;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let gone = || {
        let mut fds = [0; 2];
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        unsafe { libc::close(fds[0]) };
        unsafe { std::fs::File::from_raw_fd(fds[1]) }
    };
    for (args, code) in [
        (vec!["gc", "-vv", "--data-dir", data], 0),
        (vec!["gc", "-v", "--data-dir", data], 0),
        (vec!["images", "ls", "-vv", "--data-dir", data], 0),
        (
            vec!["images", "inspect", "no/such:tag", "--data-dir", data],
            1,
        ),
        (vec!["images", "--no-such-flag"], 2),
    ] {
        let out = StdCommand::new(env!("CARGO_BIN_EXE_nora"))
            .env_remove("NORA_CONFIG")
            .env_remove("NORA_URL")
            .args(&args)
            .stderr(gone())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(code), "{args:?}");
    }
}

/// Commands that work on storage only refuse `--url`: a backup given one
/// would have copied the local store, not the server named.
#[test]
fn storage_only_commands_refuse_url() {
    for args in [
        &["serve"][..],
        &["backup", "--file", "x.tar.gz"],
        &["restore", "--input", "x.tar.gz"],
        &["migrate", "--from", "a", "--to", "b"],
    ] {
        let out = nora()
            .args(args)
            .args(["--url", "http://127.0.0.1:1"])
            .output()
            .unwrap();
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("not through --url"), "{err}");
    }
}

/// An `s3://` location whose prefix a store would read another way (a
/// `..` component, a doubled `/`) is a usage error, before anything is
/// opened: no request reaches a bucket.
#[test]
fn s3_locations_with_odd_prefixes_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for (url, why) in [
        ("s3://bucket/../x", "no . or .. component in the prefix"),
        ("s3://bucket/a//b", "no leading or double / in the prefix"),
        ("s3://bucket//a", "no leading or double / in the prefix"),
        ("s3:///a", "no bucket"),
    ] {
        let out = nora()
            .args(["migrate", "--from", url, "--to"])
            .arg(dir.path().join("copy"))
            .env("NORA_S3_ENDPOINT", "http://127.0.0.1:1")
            .output()
            .unwrap();
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(2), "{url}: {err}");
        assert!(
            err.contains(why) && err.lines().count() == 1,
            "{url}: {err}"
        );
    }
}

/// A variable defined as nothing (a CI variable left empty) counts as unset,
/// not as a bad --url or --timeout nobody gave.
#[test]
fn empty_url_and_timeout_variables_are_unset() {
    let dir = tempfile::tempdir().unwrap();
    for var in ["NORA_URL", "NORA_TIMEOUT"] {
        let out = nora()
            .env(var, "")
            .args(["images", "ls", "-o", "json", "--data-dir"])
            .arg(dir.path())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{var}: {}", stderr_of(&out));
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "[]");
    }
}

/// `-v` says where a command works; without it, nothing is logged.
#[test]
fn verbose_says_where_a_command_works() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["images", "ls", "--data-dir", dir.path().to_str().unwrap()];
    let out = nora().args(args).arg("-v").output().unwrap();
    assert!(
        stderr_of(&out).contains("working on storage directly"),
        "{out:?}"
    );
    let out = nora().args(args).output().unwrap();
    assert_eq!(stderr_of(&out), "");
}

/// A configuration or credentials path that never ends (`/dev/zero`) is an
/// error, not a read until memory runs out.
#[test]
fn endless_config_and_credentials_files_are_refused() {
    let out = nora()
        .args(["--config", "/dev/zero", "images", "ls"])
        .timeout(Duration::from_secs(20))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr_of(&out).contains("larger than"), "{out:?}");
    let out = nora()
        .env("NORA_CREDENTIALS", "/dev/zero")
        .args(["images", "ls", "--url", "http://127.0.0.1:1"])
        .timeout(Duration::from_secs(20))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(stderr_of(&out).contains("larger than"), "{out:?}");
}

/// Root writing to a store another user owns (the server's) is told, once,
/// that what it writes there will be root's; reading it, or writing to its
/// own store, says nothing.
#[test]
fn root_writing_to_another_users_store_is_warned() {
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let data = data.to_str().unwrap();
    let gc = ["gc", "--yes", "--grace", "0s", "--data-dir", data];
    let (code, _, err) = run_with_env(&gc, &[]);
    assert_eq!(code, Some(0), "{err}");
    assert!(!err.contains("belongs to"), "{err}");
    std::os::unix::fs::chown(data, Some(65534), Some(65534)).unwrap();
    let (code, _, err) = run_with_env(&["images", "ls", "--data-dir", data], &[]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(err, "", "reading warns of nothing");
    let (code, _, err) = run_with_env(&gc, &[]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.starts_with("nora: warning: storage at ")
            && err.contains("belongs to uid 65534, but nora runs as root"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}

//! The operator commands, each in human and JSON form, against `--url` (a
//! running server's admin API) and against storage directly, with the same
//! answers.

use std::path::Path;

use serde_json::Value;

use super::common::{self, Server};
use super::nora;

pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().unwrap()
}

/// Runs nora with `args`, expecting exit `code`; returns (stdout, stderr).
fn run(args: &[&str], code: i32) -> (String, String) {
    let out = nora().env("NO_COLOR", "1").args(args).output().unwrap();
    let (so, se) = (
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    );
    assert_eq!(
        out.status.code(),
        Some(code),
        "nora {args:?}\nstdout: {so}\nstderr: {se}"
    );
    (so, se)
}

fn json(args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["--output", "json"]);
    let (so, _) = run(&all, 0);
    serde_json::from_str(&so).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {so}"))
}

/// The two ways to reach a registry: its admin API and its storage.
fn both(server: &Server) -> [[&str; 2]; 2] {
    [
        ["--url", server.url.as_str()],
        ["--data-dir", server.data.to_str().unwrap()],
    ]
}

fn with<'a>(via: &[&'a str; 2], args: &[&'a str]) -> Vec<&'a str> {
    let mut v = args.to_vec();
    v.extend_from_slice(via);
    v
}

fn seed(server: &Server) -> (String, String) {
    let c = server.client();
    rt().block_on(async {
        let (a, _) = c.push_image("team/app", "v1", b"layer one").await;
        let (b, _) = c.push_image("team/app", "dev-1", b"layer two").await;
        c.push_image("other", "latest", b"layer three").await;
        (a, b)
    })
}

fn tag_digest(server: &Server, repo: &str, tag: &str) -> Option<String> {
    let c = server.client();
    rt().block_on(async {
        let r = c
            .http
            .head(c.u(&format!("/v2/{repo}/manifests/{tag}")))
            .header("Accept", common::OCI_MANIFEST)
            .send()
            .await
            .unwrap();
        (r.status() == 200).then(|| {
            r.headers()["docker-content-digest"]
                .to_str()
                .unwrap()
                .to_string()
        })
    })
}

#[test]
fn images_ls_and_inspect_agree_over_url_and_storage() {
    let server = Server::start();
    let (v1, _) = seed(&server);
    let [remote, local] = both(&server);

    let a = json(&with(&remote, &["images", "ls"]));
    let b = json(&with(&local, &["images", "ls"]));
    assert_eq!(a, b);
    let names: Vec<String> = a
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{}:{}",
                r["repository"].as_str().unwrap(),
                r["tag"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(names, ["other:latest", "team/app:dev-1", "team/app:v1"]);
    assert_eq!(a[2]["digest"], v1.as_str());
    assert_eq!(a[2]["platforms"], serde_json::json!(["linux/amd64"]));
    assert!(a[2]["size"].as_u64().unwrap() > 0);

    for via in [&remote, &local] {
        // Globs: REPO:TAG, ** across components, repository-only.
        let rows = json(&with(via, &["images", "ls", "**:dev-*"]));
        assert_eq!(rows.as_array().unwrap().len(), 1);
        assert_eq!(rows[0]["tag"], "dev-1");
        let rows = json(&with(via, &["images", "ls", "team/*"]));
        assert_eq!(rows.as_array().unwrap().len(), 2);

        let (table, _) = run(&with(via, &["images", "ls"]), 0);
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[0].starts_with("REPOSITORY  TAG"), "{table}");
        assert!(lines[3].starts_with("team/app    v1"), "{table}");
        assert!(lines[3].contains(&v1[..19]), "short digest in {table}");
        let (wide, _) = run(&with(via, &["images", "ls", "-o", "wide"]), 0);
        assert!(wide.contains(&v1) && wide.contains("MEDIA TYPE"), "{wide}");
        let (quiet, _) = run(&with(via, &["images", "ls", "-q", "team/**"]), 0);
        assert_eq!(quiet, "team/app:dev-1\nteam/app:v1\n");
    }
    // The server filters itself (and reads only what matches).
    let c = server.client();
    let rows: Value = rt().block_on(async {
        let r = c.http.get(c.u("/api/v1/images?pattern=%2A%2A%3Adev-%2A"));
        r.send().await.unwrap().json().await.unwrap()
    });
    assert_eq!(rows.as_array().map(Vec::len), Some(1), "{rows}");
    assert_eq!(rows[0]["tag"], "dev-1");

    let a = json(&with(&remote, &["images", "inspect", "team/app:v1"]));
    let b = json(&with(&local, &["images", "inspect", "team/app:v1"]));
    assert_eq!(a, b);
    assert_eq!(a["digest"], v1.as_str());
    assert_eq!(a["tags"], serde_json::json!(["v1"]));
    assert_eq!(a["config"]["os"], "linux");
    assert_eq!(a["layers"].as_array().unwrap().len(), 1);
    let (human, _) = run(&with(&remote, &["images", "inspect", "team/app:v1"]), 0);
    assert!(
        human.contains(&v1) && human.contains("Layers (1)"),
        "{human}"
    );
}

#[test]
fn tag_and_delete_over_url_and_storage() {
    let server = Server::start();
    let (v1, _) = seed(&server);
    let [remote, local] = both(&server);

    let t = json(&with(&remote, &["tag", "team/app:v1", "team/app:stable"]));
    assert_eq!(t["digest"], v1.as_str());
    assert!(t.get("replaced").is_none(), "{t}");
    // Moving a tag says what it named before.
    let dev = tag_digest(&server, "team/app", "dev-1").unwrap();
    for via in [&local, &remote] {
        json(&with(via, &["tag", "team/app:dev-1", "team/app:moving"]));
        let t = json(&with(via, &["tag", "team/app:v1", "team/app:moving"]));
        assert_eq!(t["replaced"], dev.as_str(), "{t}");
        let (out, _) = run(&with(via, &["tag", "team/app:dev-1", "team/app:moving"]), 0);
        assert!(out.contains(&format!("was {v1}")), "{out}");
    }
    let (out, _) = run(&with(&local, &["tag", "team/app:v1", "mirror/app:v1"]), 0);
    assert!(
        out.starts_with("Tagged team/app:v1 as mirror/app:v1"),
        "{out}"
    );
    assert_eq!(
        tag_digest(&server, "team/app", "stable").as_deref(),
        Some(v1.as_str())
    );
    assert_eq!(
        tag_digest(&server, "mirror/app", "v1").as_deref(),
        Some(v1.as_str())
    );

    // Dry run deletes nothing; the real thing does (no TTY: no prompt).
    let d = json(&with(&remote, &["delete", "--dry-run", "team/app:stable"]));
    assert_eq!(d[0]["digest"], v1.as_str());
    assert!(tag_digest(&server, "team/app", "stable").is_some());
    let (out, _) = run(&with(&local, &["delete", "team/app:stable"]), 0);
    assert!(out.contains("Deleted team/app:stable"), "{out}");
    assert!(tag_digest(&server, "team/app", "stable").is_none());
    let by_digest = format!("mirror/app@{v1}");
    let d = json(&with(&remote, &["delete", "--yes", &by_digest]));
    assert_eq!(d[0]["manifest"], true);
    assert_eq!(d[0]["tags"], serde_json::json!(["v1"]));
    assert!(tag_digest(&server, "mirror/app", "v1").is_none());
    // The source repository keeps its image.
    assert_eq!(
        tag_digest(&server, "team/app", "v1").as_deref(),
        Some(v1.as_str())
    );

    // One bad reference among good ones: nothing is deleted.
    for via in [&remote, &local] {
        let (_, err) = run(&with(via, &["delete", "team/app:v1", "team/app:nope"]), 1);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains("team/app:nope"), "{err}");
        assert!(tag_digest(&server, "team/app", "v1").is_some());
    }
}

#[test]
fn bad_input_is_one_line_and_the_right_exit_code() {
    let server = Server::start();
    seed(&server);
    let [remote, local] = both(&server);
    for via in [&remote, &local] {
        for (args, code) in [
            (vec!["images", "inspect", "team/app:nope"], 1),
            (vec!["images", "inspect", "Team/App:v1"], 2),
            (vec!["images", "inspect", "no-tag"], 2),
            (vec!["images", "ls", "team/[a"], 2),
            (vec!["tag", "team/app:nope", "team/app:x"], 1),
            (vec!["tag", "team/app:v1", "bad..name:x"], 2),
            (vec!["delete", "team/app@sha256:zz"], 2),
        ] {
            let (_, err) = run(&with(via, &args), code);
            assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
            assert!(err.starts_with("nora: "), "{err}");
            assert!(!err.contains("panicked"), "{err}");
        }
    }
    // A grace longer than the clock has run keeps everything (it panicked).
    for via in [&remote, &local] {
        run(
            &with(via, &["gc", "--dry-run", "--grace", "500000000000y"]),
            0,
        );
    }
    let (_, err) = run(&["images", "ls", "--url", "http://127.0.0.1:1"], 1);
    assert!(err.contains("cannot reach http://127.0.0.1:1"), "{err}");
    let (_, err) = run(
        &["images", "ls", "--url", "http://ci:s3cret@127.0.0.1:1"],
        2,
    );
    assert!(err.contains("ci:***@") && !err.contains("s3cret"), "{err}");
    let (_, err) = run(&["images", "ls", "--url", "ftp://x"], 2);
    assert!(err.contains("http://"), "{err}");
    let (_, err) = run(&["images", "ls", "--data-dir", "/nonexistent/nora"], 1);
    assert!(
        err.contains("no nora storage at /nonexistent/nora"),
        "{err}"
    );
    run(&["delete"], 2);
    run(&["gc", "--grace", "soon"], 2);
}

/// An unreferenced blob older than the grace period goes; a referenced one stays.
#[test]
fn gc_over_url_and_storage() {
    let server = Server::start();
    let (v1, _) = seed(&server);
    let c = server.client();
    let [remote, local] = both(&server);
    for (i, via) in [&remote, &local].into_iter().enumerate() {
        let orphan = rt().block_on(c.push_blob("team/app", format!("orphan {i}").as_bytes()));
        let dry = json(&with(via, &["gc", "--dry-run", "--grace", "0s"]));
        assert_eq!(dry["dry_run"], true);
        assert_eq!(dry["blobs_removed"], 1, "{dry}");
        assert!(blob_exists(&server, &orphan));
        let report = json(&with(via, &["gc", "--grace", "0s"]));
        assert_eq!(report["blobs_removed"], 1, "{report}");
        assert_eq!(report["bytes_freed"], 8);
        assert!(!blob_exists(&server, &orphan));
        let (human, _) = run(&with(via, &["gc", "--grace", "0s", "--yes"]), 0);
        assert!(human.contains("removed 0 blobs"), "{human}");
    }
    // With the default grace (1 h) a fresh orphan is safe.
    let orphan = rt().block_on(c.push_blob("team/app", b"young"));
    let report = json(&with(&remote, &["gc"]));
    assert_eq!(report["blobs_removed"], 0);
    assert!(blob_exists(&server, &orphan));
    assert_eq!(
        tag_digest(&server, "team/app", "v1").as_deref(),
        Some(v1.as_str())
    );
}

/// Ctrl-C during a gc or a backup on storage lets go of the gc lock (or the
/// backup's hold) before the process ends: left behind, it would make every
/// gc, on every instance, wait a minute. The backup's partial file goes too.
#[test]
fn ctrl_c_lets_go_of_the_gc_lock() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    common::write_orphans(&data, 6000);
    let data_arg = data.to_str().unwrap();
    let file = dir.path().join("b.tar.gz");
    let cases: [(Vec<&str>, &str); 2] = [
        (vec!["gc", "--yes", "--grace", "0s"], "gc/lock"),
        (vec!["backup", "--file", file.to_str().unwrap()], "gc/holds"),
    ];
    for (args, lock) in cases {
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_nora"))
            .args(&args)
            .args(["--data-dir", data_arg])
            .env_remove("NORA_CONFIG")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let held = || {
            let p = data.join(lock);
            p.is_file() || std::fs::read_dir(&p).is_ok_and(|mut d| d.next().is_some())
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !held() {
            assert!(std::time::Instant::now() < deadline, "{args:?}: no {lock}");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?} ended too soon? {err}");
        assert!(err.contains("interrupted"), "{err}");
        assert!(!held(), "{args:?}: {lock} left behind");
    }
    assert!(!file.exists());
    assert!(!dir.path().join("b.tar.gz.partial").exists());
}

fn blob_exists(server: &Server, digest: &str) -> bool {
    let c = server.client();
    rt().block_on(async {
        c.http
            .head(c.u(&format!("/v2/team/app/blobs/{digest}")))
            .send()
            .await
            .unwrap()
            .status()
            == 200
    })
}

fn retention_config(dir: &Path) -> String {
    let path = dir.join("retention.toml");
    std::fs::write(
        &path,
        r#"
[[retention]]
match = "**:dev-*"
keep_last = 1

[[retention]]
match = "team/app:dev-keep"
protect = true
"#,
    )
    .unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn retention_dry_run_then_apply() {
    let dir = tempfile::tempdir().unwrap();
    let config = retention_config(dir.path());
    let data = dir.path().join("data");
    let server = Server::start_on(&data, &[("NORA_CONFIG", &config)]);
    let c = server.client();
    rt().block_on(async {
        for (i, tag) in ["dev-1", "dev-keep", "dev-2", "dev-3", "v1"]
            .iter()
            .enumerate()
        {
            c.push_image("team/app", tag, format!("layer {i}").as_bytes())
                .await;
            // Distinct push times, so "the last one" is well defined.
            tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        }
    });
    let local = ["--data-dir", data.to_str().unwrap()];
    let remote = ["--url", server.url.as_str()];
    let plan_local = json(&[&local[..], &["--config", &config, "retention", "--dry-run"]].concat());
    let plan_remote = json(&[&remote[..], &["retention", "--dry-run"]].concat());
    assert_eq!(plan_local, plan_remote);
    let gone: Vec<&str> = plan_local["removals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["tag"].as_str().unwrap())
        .collect();
    assert_eq!(gone, ["dev-1", "dev-2"], "{plan_local}");
    assert!(
        plan_local["removals"][0]["rule"]
            .as_str()
            .unwrap()
            .contains("**:dev-*")
    );
    let (human, _) = run(&[&remote[..], &["retention", "--dry-run"]].concat(), 0);
    assert!(human.contains("would remove team/app:dev-1"), "{human}");
    assert!(tag_digest(&server, "team/app", "dev-1").is_some());

    let (human, _) = run(&[&remote[..], &["retention"]].concat(), 0);
    assert!(human.contains("removed team/app:dev-2"), "{human}");
    for (tag, kept) in [
        ("dev-1", false),
        ("dev-2", false),
        ("dev-keep", true),
        ("dev-3", true),
        ("v1", true),
    ] {
        assert_eq!(
            tag_digest(&server, "team/app", tag).is_some(),
            kept,
            "{tag}"
        );
    }
    let again = json(&[&local[..], &["--config", &config, "retention"]].concat());
    assert_eq!(again["removals"], serde_json::json!([]));
}

/// `GET /api/v1/usage` counts what the store holds: checked against a walk
/// of the blob directory.
#[test]
fn usage_counts_the_store() {
    let server = Server::start();
    seed(&server);
    let (mut blobs, mut bytes) = (0, 0);
    for alg in std::fs::read_dir(server.data.join("blobs")).unwrap() {
        for shard in std::fs::read_dir(alg.unwrap().path()).unwrap() {
            for blob in std::fs::read_dir(shard.unwrap().path()).unwrap() {
                blobs += 1;
                bytes += std::fs::metadata(blob.unwrap().path().join("data"))
                    .unwrap()
                    .len();
            }
        }
    }
    let c = server.client();
    let usage: Value = rt().block_on(async {
        let r = c.http.get(c.u("/api/v1/usage")).send().await.unwrap();
        r.json().await.unwrap()
    });
    assert_eq!(usage["repositories"], 2, "{usage}");
    assert_eq!(usage["tags"], 3, "{usage}");
    assert_eq!(usage["blobs"], blobs, "{usage}");
    assert_eq!(usage["bytes"], bytes, "{usage}");
    assert!(blobs >= 6, "{usage}");
}

#[test]
fn admin_api_documents_itself_and_answers_errors_as_json() {
    let server = Server::start();
    let c = server.client();
    rt().block_on(async {
        let doc: Value = c
            .http
            .get(c.u("/api-docs/openapi.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let paths = doc["paths"].as_object().unwrap();
        for p in [
            "images",
            "inspect",
            "tag",
            "delete",
            "gc",
            "retention",
            "usage",
            "jobs",
            "tokens",
            "tokens/{name}",
        ] {
            assert!(
                paths.contains_key(&format!("/api/v1/{p}")),
                "{p} undocumented"
            );
        }
        for (method, path, body, status, kind) in [
            ("POST", "/api/v1/tag", "{not json", 400, "invalid"),
            ("POST", "/api/v1/tag", r#"{"source":"a:1"}"#, 400, "invalid"),
            (
                "POST",
                "/api/v1/tag",
                r#"{"source":"a:1","target":"b:1"}"#,
                404,
                "not_found",
            ),
            // A misspelt option is refused, not dropped: `dryrun` must not
            // run the real thing.
            ("POST", "/api/v1/gc", r#"{"dryrun":true}"#, 400, "invalid"),
            (
                "POST",
                "/api/v1/retention",
                r#"{"dry-run":true}"#,
                400,
                "invalid",
            ),
            (
                "POST",
                "/api/v1/delete",
                r#"{"reference":"a:1","dryRun":true}"#,
                400,
                "invalid",
            ),
            ("GET", "/api/v1/inspect", "", 400, "invalid"),
            ("GET", "/api/v1/images?pattern=a%5B", "", 400, "invalid"),
            ("GET", "/api/v1/nope", "", 404, "not_found"),
            ("DELETE", "/api/v1/images", "", 405, "invalid"),
            ("GET", "/api/v1/tokens/x", "", 405, "invalid"),
        ] {
            let r = c.send(method, path, body).await;
            assert_eq!(r.status(), status, "{method} {path} {body}");
            if status == 405 {
                assert!(r.headers().contains_key("allow"));
            }
            let v: Value = r.json().await.unwrap();
            assert_eq!(v["error"]["kind"], kind, "{v}");
            assert!(v["error"]["message"].as_str().unwrap().len() > 3);
        }
        let usage: Value = c
            .http
            .get(c.u("/api/v1/usage"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(usage["repositories"], 0);
    });
}

#[test]
fn scheduled_gc_runs_and_reports_through_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_on(
        &dir.path().join("data"),
        &[("NORA_SCHEDULE_GC", "1s"), ("NORA_GC_GRACE", "0s")],
    );
    let c = server.client();
    let orphan = rt().block_on(c.push_blob("team/app", b"scheduled orphan"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let jobs: Value = rt().block_on(async {
            c.http
                .get(c.u("/api/v1/jobs"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap()
        });
        let gc = &jobs["gc"];
        assert_eq!(gc["schedule"], "1s");
        assert!(gc["next_run"].as_u64().is_some(), "{jobs}");
        if gc["last_result"]["blobs_removed"].as_u64() >= Some(1) {
            assert!(gc["last_run"].as_u64().is_some());
            assert_eq!(jobs["retention"]["schedule"], Value::Null);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no scheduled gc: {jobs}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert!(!blob_exists(&server, &orphan));
}

/// A host that never completes the handshake (here: a listener whose accept
/// queue is full, so the kernel drops further SYNs) fails the command after
/// the connect timeout with one line, instead of hanging for minutes.
#[test]
fn a_url_that_never_accepts_times_out() {
    let rt = rt();
    let _guard = rt.enter();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(0).unwrap();
    let addr = listener.local_addr().unwrap();
    // Fill the queue; the connections that do not fit are left hanging.
    let _held: Vec<_> = (0..3)
        .filter_map(|_| {
            std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_millis(300)).ok()
        })
        .collect();
    let url = format!("http://{addr}");
    let started = std::time::Instant::now();
    let (_, err) = run(&["images", "ls", "--url", &url], 1);
    let took = started.elapsed();
    assert!(took.as_secs() < 30, "took {took:?}");
    assert!(
        err.contains(&format!("cannot reach {url}: no connection within 10 s")),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    drop(listener);
}

/// A server that takes the connection and never answers (a hung process: the
/// kernel still completes the handshake) fails the command after --timeout
/// with one line; NORA_TIMEOUT does the same and bounds gc too, which
/// otherwise waits as long as its work takes; login keeps the same limit.
#[test]
fn a_url_that_never_answers_times_out() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let want = format!("{url} did not answer within 1 s");
    // Without the timeout the command would hang: the watchdog fails the test.
    let attempt = |env: Option<(&str, &str)>, args: &[&str]| {
        let mut cmd = nora();
        cmd.env("NO_COLOR", "1")
            .args(args)
            .timeout(std::time::Duration::from_secs(20));
        if let Some((k, v)) = env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        err
    };

    let err = attempt(None, &["images", "ls", "--url", &url, "--timeout", "1"]);
    assert!(err.contains(&want), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");

    let err = attempt(Some(("NORA_TIMEOUT", "1")), &["gc", "--yes", "--url", &url]);
    assert!(err.contains(&want), "{err}");
    assert!(err.contains("the job goes on there"), "{err}");

    // Login answers as quickly as the admin API's calls: the same limit.
    let out = nora()
        .env("NO_COLOR", "1")
        .args(["login", &url, "--username", "ci", "--password-stdin"])
        .args(["--timeout", "1"])
        .write_stdin("secret\n")
        .timeout(std::time::Duration::from_secs(20))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(&want), "{err}");
    drop(listener);
}

/// What a pusher wrote in a config (platform, labels, created) reaches a
/// terminal only as printable text: no escape sequence or line break.
#[test]
fn pushed_text_cannot_drive_the_terminal() {
    let server = Server::start();
    let c = server.client();
    let config = br#"{"architecture":"amd\u001b[2J","os":"linux\u001b]0;PWNED\u0007","created":"\u001b[31mred","config":{"Labels":{"x":"a\nFORGED b"}}}"#;
    rt().block_on(async {
        let cd = c.push_blob("evil", config).await;
        let ld = c.push_blob("evil", b"layer").await;
        let m = common::image_manifest(&cd, config.len(), &[(ld, 5)]);
        let r = c.put_manifest("evil", "v1", common::OCI_MANIFEST, &m).await;
        assert_eq!(r.status(), 201);
    });
    for via in both(&server) {
        for args in [&["images", "ls"][..], &["images", "inspect", "evil:v1"]] {
            let (out, _) = run(&with(&via, args), 0);
            assert!(!out.contains('\u{1b}') && !out.contains('\u{7}'), "{out:?}");
            assert!(!out.lines().any(|l| l.starts_with("FORGED")), "{out}");
            assert!(out.contains("\\u{1b}"), "{out}");
        }
    }
}

/// A reference named twice, or a tag of a manifest deleted before it, is
/// deleted once and the command succeeds; a tag pushed again between the
/// plan and the delete is left alone (the admin API's `expect`).
#[test]
fn delete_does_what_it_showed() {
    let server = Server::start();
    let (v1, _) = seed(&server);
    let [remote, local] = both(&server);
    let gone = json(&with(
        &local,
        &[
            "delete",
            "--yes",
            &format!("team/app@{v1}"),
            "team/app:v1",
            "other:latest",
            "other:latest",
        ],
    ));
    assert_eq!(gone.as_array().map(Vec::len), Some(2), "{gone}");
    assert_eq!(tag_digest(&server, "team/app", "v1"), None);

    let dev = tag_digest(&server, "team/app", "dev-1").unwrap();
    let stale = format!("sha256:{}", "0".repeat(64));
    let c = server.client();
    let r = rt().block_on(
        c.http
            .post(c.u("/api/v1/delete"))
            .json(&serde_json::json!({"reference": "team/app:dev-1", "expect": stale}))
            .send(),
    );
    assert_eq!(r.unwrap().status(), 409);
    assert_eq!(
        tag_digest(&server, "team/app", "dev-1").as_deref(),
        Some(dev.as_str())
    );
    run(&with(&remote, &["delete", "--yes", "team/app:dev-1"]), 0);
    assert_eq!(tag_digest(&server, "team/app", "dev-1"), None);
}

/// `--data-dir` acts on that directory even when NORA_URL names a server;
/// `--url` and `--data-dir` together are a usage error.
#[test]
fn data_dir_wins_over_nora_url() {
    let server = Server::start();
    seed(&server);
    let other = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(other.path().join("blobs")).unwrap();
    let dir = other.path().to_str().unwrap();
    let out = super::nora()
        .env("NORA_URL", &server.url)
        .args(["images", "ls", "-o", "json", "--data-dir", dir])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "[]");
    let (_, err) = run(
        &["images", "ls", "--url", &server.url, "--data-dir", dir],
        2,
    );
    assert!(err.contains("two registries"), "{err}");
}

/// Tagging a manifest stored under sha512 tags that manifest, in its own
/// repository or another: not a sha256 copy its signatures do not name.
#[test]
fn tag_keeps_a_sha512_manifest_its_digest() {
    let server = Server::start();
    let c = server.client();
    let d512 = rt().block_on(async {
        let config = br#"{"architecture":"amd64","os":"linux"}"#;
        let cd = c.push_blob("s512", config).await;
        let ld = c.push_blob("s512", b"layer").await;
        let m = common::image_manifest(&cd, config.len(), &[(ld, 5)]);
        let d512 = common::sha512(&m);
        let r = c
            .put_manifest("s512", &d512, common::OCI_MANIFEST, &m)
            .await;
        assert_eq!(r.status(), 201);
        d512
    });
    let [remote, local] = both(&server);
    let source = format!("s512@{d512}");
    for (via, target) in [(&remote, "s512:v2"), (&local, "other:v1")] {
        let t = json(&with(via, &["tag", &source, target]));
        assert_eq!(t["digest"], d512.as_str(), "{t}");
    }
    let i = json(&with(&local, &["images", "inspect", &source]));
    assert_eq!(i["tags"], serde_json::json!(["v2"]), "{i}");
    let i = json(&with(
        &local,
        &["images", "inspect", &format!("other@{d512}")],
    ));
    assert_eq!(i["tags"], serde_json::json!(["v1"]), "{i}");
}

/// A storage fault is one line that says what the store said, not a log
/// line above a bare "storage error".
#[test]
fn a_storage_fault_says_its_cause_in_one_line() {
    let server = Server::start();
    let (v1, _) = seed(&server);
    let hex = v1.trim_start_matches("sha256:");
    let bytes = server
        .data
        .join(format!("blobs/sha256/{}/{hex}/data", &hex[..2]));
    std::fs::remove_file(&bytes).unwrap();
    let path = std::ffi::CString::new(bytes.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
    let dir = server.data.to_str().unwrap();
    let (_, err) = run(&["images", "inspect", "team/app:v1", "--data-dir", dir], 1);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("storage error") && err.contains("not a regular file"),
        "{err}"
    );
}

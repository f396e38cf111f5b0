//! nora on S3 (a real S3-compatible server, s3s-fs, started here): two
//! instances on one bucket are one registry, an S3 outage is an error and
//! not a hang or a half blob, and an unusable bucket is a startup error.

mod common;

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::s3::{Kind, S3Server};
use common::{Client, Server, closing_url, oci_error, push_like_a_client, sha256, verify_pull};

fn env_of(s3: &S3Server, extra: &[(&'static str, String)]) -> Vec<(&'static str, String)> {
    let mut env = s3.env("registry");
    env.extend(extra.iter().cloned());
    env
}

fn start(dir: &std::path::Path, env: &[(&'static str, String)]) -> Server {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    // The data dir is unused on S3: nothing may appear in it.
    Server::start_on(&dir.join("unused"), &env)
}

/// `nora` on the same bucket, as an operator runs it.
fn nora(env: &[(&'static str, String)], args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_nora"))
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env_remove("NORA_CONFIG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "nora {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn with_token(server: &Server, token: &str) -> Client {
    server.client_with(&format!("Bearer {token}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_bucket_are_one_registry() {
    let s3 = S3Server::start(Kind::S3sFs);
    let dir = tempfile::tempdir().unwrap();
    let env = env_of(&s3, &[("NORA_AUTH_ENABLED", "true".into())]);
    // The first admin token, made straight on the bucket.
    let admin = nora(
        &env,
        &["token", "create", "--name", "ops", "--role", "admin", "-q"],
    );
    let doomed = nora(
        &env,
        &[
            "token", "create", "--name", "doomed", "--role", "write", "-q",
        ],
    );
    let a_srv = start(dir.path(), &env);
    let b_srv = start(dir.path(), &env);
    let (a, b) = (with_token(&a_srv, &admin), with_token(&b_srv, &admin));

    // Push through A, pull through B.
    let (digest, _) = a
        .push_image("team/app", "v1", b"layer pushed through A")
        .await;
    verify_pull(&b, "team/app", "v1", &digest).await;

    // A chunked upload started on A, continued and finished on B.
    let r = a
        .http
        .post(a.u("/v2/team/app/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let path = location.trim_start_matches(&a.url).to_string();
    let blob: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let r = a
        .http
        .patch(a.u(&path))
        .header("Content-Range", format!("0-{}", 99_999))
        .body(blob[..100_000].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let r = b.http.get(b.u(&path)).send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(r.headers()["range"], "0-99999", "B sees A's chunk");
    let r = b
        .http
        .patch(b.u(&path))
        .header("Content-Range", format!("100000-{}", blob.len() - 1))
        .body(blob[100_000..].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let d = sha256(&blob);
    let r = b
        .http
        .put(b.u(&closing_url(&path, &d)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{:?}", r.text().await);
    let got = a.get_bytes(&format!("/v2/team/app/blobs/{d}")).await;
    assert_eq!(sha256(&got), d);

    // A token revoked on A is refused by B at once.
    let doomed_b = with_token(&b_srv, &doomed);
    assert_eq!(
        doomed_b
            .http
            .get(b.u("/v2/"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let r = a
        .http
        .delete(a.u("/api/v1/tokens/doomed"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        doomed_b
            .http
            .get(b.u("/v2/"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );

    // gc on A, back to back, while pushes run through B: every push that
    // succeeded pulls whole, through either instance. A 2 s grace: on S3 a
    // push takes long enough that grace 0 collects nearly every fresh upload
    // before its manifest arrives (the PUT then fails, as the protocol says);
    // with 2 s, gc still quarantines the older layers pushes reuse.
    let stop = Arc::new(AtomicBool::new(false));
    let gc = {
        let (a, stop) = (a.clone(), stop.clone());
        tokio::spawn(async move {
            let (mut runs, mut removed) = (0, 0);
            while !stop.load(Ordering::Relaxed) {
                let r = a.gc(2).await;
                assert!(r.status() == 200 || r.status() == 409, "gc: {}", r.status());
                if r.status() == 200 {
                    let report: serde_json::Value = r.json().await.unwrap();
                    removed += report["blobs_removed"].as_u64().unwrap_or(0);
                }
                runs += 1;
            }
            (runs, removed)
        })
    };
    let mut pushed = Vec::new();
    let started = Instant::now();
    let mut i = 0u32;
    while started.elapsed() < Duration::from_secs(10) {
        let (repo, tag) = (format!("loop/r{}", i % 3), format!("t{i}"));
        let layer = format!("layer {}", if i.is_multiple_of(3) { i / 2 } else { i });
        if let Some(d) = push_like_a_client(&b, &repo, &tag, layer.as_bytes()).await {
            pushed.push((repo, tag, d));
        }
        if i.is_multiple_of(4) && i > 0 {
            // Garbage for gc: an untagged image.
            let r = b
                .http
                .delete(b.u(&format!("/v2/loop/r{}/manifests/t{}", (i - 1) % 3, i - 1)))
                .send()
                .await
                .unwrap();
            if r.status() == 202 {
                pushed.retain(|(_, t, _)| *t != format!("t{}", i - 1));
            }
        }
        i += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let (runs, removed) = gc.await.unwrap();
    assert!(runs >= 2, "gc ran {runs} times");
    assert!(removed > 0, "gc collected nothing in {runs} runs");
    assert!(
        pushed.len() >= 10,
        "only {} pushes; B: {}",
        pushed.len(),
        b_srv
            .log_text()
            .lines()
            .filter(|l| l.contains("status=4")
                || l.contains("status=5")
                || l.contains("WARN")
                || l.contains("ERROR"))
            .take(12)
            .collect::<Vec<_>>()
            .join("\n")
    );
    for (repo, tag, d) in &pushed {
        verify_pull(&a, repo, tag, d).await;
        verify_pull(&b, repo, tag, d).await;
    }
    assert!(
        !dir.path().join("unused").exists(),
        "nothing written to the local data dir"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_s3_outage_is_an_error_then_the_same_push_succeeds() {
    let mut s3 = S3Server::start(Kind::S3sFs);
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &env_of(&s3, &[]));
    let c = server.client();
    let blob: Vec<u8> = (0..(20u32 << 20))
        .map(|i| (i.wrapping_mul(31) >> 7) as u8)
        .collect();
    let d = sha256(&blob);

    // A chunk stored, then S3 goes away: the next chunk is a 5xx in the
    // spec's JSON form, quickly.
    let r = c
        .http
        .post(c.u("/v2/big/app/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let path = location.trim_start_matches(&c.url).to_string();
    let r = c
        .http
        .patch(c.u(&path))
        .body(blob[..1 << 20].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    s3.stop();
    let t = Instant::now();
    let r = c
        .http
        .patch(c.u(&path))
        .body(blob[1 << 20..2 << 20].to_vec())
        .send()
        .await
        .unwrap();
    let (status, code) = oci_error(r).await;
    assert!(status >= 500, "{status}");
    assert_eq!(code, "UNKNOWN");
    assert!(t.elapsed() < Duration::from_secs(30), "no hang");

    // A monolithic push of 20 MiB (a multipart upload to S3) with S3 down:
    // an error, not a hang, and nothing visible afterwards.
    let t = Instant::now();
    let outcome = c
        .http
        .post(c.u(&format!("/v2/big/app/blobs/uploads/?digest={d}")))
        .body(blob.clone())
        .timeout(Duration::from_secs(60))
        .send()
        .await;
    match outcome {
        Ok(r) => assert!(r.status().is_server_error(), "{}", r.status()),
        Err(e) => assert!(!e.is_timeout(), "hung: {e}"),
    }
    assert!(t.elapsed() < Duration::from_secs(40));
    assert_eq!(
        c.http.get(c.u("/ready")).send().await.unwrap().status(),
        503,
        "not ready without storage"
    );

    s3.restart();
    let head = c
        .http
        .head(c.u(&format!("/v2/big/app/blobs/{d}")))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 404, "no partial blob visible");
    // The same push, S3 back: it succeeds and reads back whole.
    let r = c
        .http
        .post(c.u(&format!("/v2/big/app/blobs/uploads/?digest={d}")))
        .body(blob.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{:?}", r.text().await);
    let got = c
        .http
        .get(c.u(&format!("/v2/big/app/blobs/{d}")))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(sha256(&got), d);
    assert_eq!(
        c.http.get(c.u("/ready")).send().await.unwrap().status(),
        200
    );
}

#[test]
fn an_unusable_bucket_is_a_startup_error_naming_it() {
    let s3 = S3Server::start(Kind::S3sFs);
    let dir = tempfile::tempdir().unwrap();
    for (over, expect) in [
        (("NORA_S3_SECRET_KEY", "wrong"), "access denied"),
        (("NORA_S3_BUCKET", "missing"), "no such bucket"),
        (
            ("NORA_S3_ENDPOINT", "http://127.0.0.1:1"),
            "s3://nora/registry",
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_nora"))
            .arg("serve")
            .envs(s3.env("registry"))
            .env(over.0, over.1)
            .env("NORA_PORT", "0")
            .env_remove("NORA_CONFIG")
            .current_dir(dir.path())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{over:?} started");
        assert!(err.contains(expect), "{over:?}: {err}");
        assert!(!err.contains(common::s3::SECRET_KEY), "secret in the error");
    }
}

/// `nora migrate` with the S3 server's variables, exit status and output.
fn migrate(s3: &S3Server, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_nora"))
        .arg("migrate")
        .args(args)
        .envs(s3.env("unused"))
        .env_remove("NORA_STORAGE_MODE")
        .env_remove("NORA_CONFIG")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_local_to_s3_and_back_verified_and_resumable() {
    let mut s3 = S3Server::start(Kind::S3sFs);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut images = Vec::new();
    {
        let local = Server::start_on(&data, &[]);
        let c = local.client();
        let big: Vec<u8> = (0..(20u32 << 20))
            .map(|i| (i.wrapping_mul(7) >> 5) as u8)
            .collect();
        for (repo, tag, layer) in [
            ("team/app", "v1", b"one".to_vec()),
            ("team/app", "v2", big),
            ("other/x", "latest", b"three".to_vec()),
        ] {
            let (d, _) = c.push_image(repo, tag, &layer).await;
            images.push((repo, tag, d));
        }
    }
    nora(
        &[],
        &[
            "token",
            "create",
            "--name",
            "ci",
            "--role",
            "write",
            "--data-dir",
            data.to_str().unwrap(),
        ],
    );
    let src = data.to_str().unwrap();

    // A dry run writes nothing.
    let (ok, out, err) = migrate(
        &s3,
        &[
            "--from",
            src,
            "--to",
            "s3://nora/mig",
            "--dry-run",
            "-o",
            "json",
        ],
    );
    assert!(ok, "{err}");
    let dry: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(dry["copied"], dry["objects"]);
    let (ok, _, _) = migrate(
        &s3,
        &[
            "--from",
            "s3://nora/mig",
            "--to",
            dir.path().join("never").to_str().unwrap(),
            "--dry-run",
        ],
    );
    assert!(ok, "an empty prefix lists as empty");
    assert!(
        !dir.path().join("never").exists(),
        "a dry run creates nothing"
    );

    // S3 down: one clear line, exit 1.
    s3.stop();
    let (ok, _, err) = migrate(&s3, &["--from", src, "--to", "s3://nora/mig"]);
    assert!(!ok);
    assert!(
        err.contains("s3://nora/mig") && err.lines().count() == 1,
        "{err}"
    );
    s3.restart();

    let (ok, out, err) = migrate(&s3, &["--from", src, "--to", "s3://nora/mig", "-o", "json"]);
    assert!(ok, "{err}");
    let first: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(first["copied"], dry["copied"]);
    assert!(first["bytes_copied"].as_u64().unwrap() > 20 << 20);
    // A rerun copies nothing: everything is there.
    let (ok, out, err) = migrate(&s3, &["--from", src, "--to", "s3://nora/mig", "-o", "json"]);
    assert!(ok, "{err}");
    let again: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(again["copied"], 0);
    assert_eq!(again["skipped"], first["objects"]);

    // nora on the migrated prefix serves every image, and the token.
    let mut env = s3.env("mig");
    env.push(("NORA_AUTH_ENABLED", "true".into()));
    let list = nora(&env, &["token", "ls", "-o", "json"]);
    assert!(list.contains("\"ci\""), "{list}");
    {
        let on_s3 = start(dir.path(), &s3.env("mig"));
        for (repo, tag, d) in &images {
            verify_pull(&on_s3.client(), repo, tag, d).await;
        }
    }

    // And back, to a new directory.
    let back = dir.path().join("back");
    let (ok, _, err) = migrate(
        &s3,
        &["--from", "s3://nora/mig", "--to", back.to_str().unwrap()],
    );
    assert!(ok, "{err}");
    {
        let local = Server::start_on(&back, &[]);
        for (repo, tag, d) in &images {
            verify_pull(&local.client(), repo, tag, d).await;
        }
    }

    // A corrupt source blob (same size, other bytes) is refused and not copied.
    let (_, _, d) = &images[0];
    let hex = d.trim_start_matches("sha256:");
    let blob = data.join(format!("blobs/sha256/{}/{hex}/data", &hex[..2]));
    let mut bytes = std::fs::read(&blob).unwrap();
    bytes[0] ^= 0xff;
    std::fs::write(&blob, &bytes).unwrap();
    let (ok, _, err) = migrate(&s3, &["--from", src, "--to", "s3://nora/bad"]);
    assert!(!ok);
    assert!(err.contains("hash to") && err.contains("resume"), "{err}");
    let (_, out, _) = migrate(
        &s3,
        &[
            "--from",
            "s3://nora/bad",
            "--to",
            dir.path().join("never").to_str().unwrap(),
            "--dry-run",
            "-o",
            "json",
        ],
    );
    let bad: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(
        bad["objects"].as_u64().unwrap() < first["objects"].as_u64().unwrap(),
        "stopped at the corrupt blob"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_from_the_standard_aws_variables() {
    let s3 = S3Server::start(Kind::S3sFs);
    let dir = tempfile::tempdir().unwrap();
    let mut env: Vec<(&str, String)> = s3
        .env("chain")
        .into_iter()
        .filter(|(k, _)| !k.ends_with("_KEY"))
        .collect();
    env.push(("AWS_ACCESS_KEY_ID", common::s3::ACCESS_KEY.into()));
    env.push(("AWS_SECRET_ACCESS_KEY", common::s3::SECRET_KEY.into()));
    env.push(("AWS_EC2_METADATA_DISABLED", "true".into()));
    let server = start(dir.path(), &env);
    let c = server.client();
    let (d, _) = c
        .push_image("chain/app", "v1", b"via the SDK's chain")
        .await;
    verify_pull(&c, "chain/app", "v1", &d).await;
}

/// `big/app:v0` to `v3`, 12 MiB layers each (enough for a copy to be cut
/// off half way): their tags and manifest digests.
async fn push_big_images(server: &Server) -> Vec<(String, String)> {
    let c = server.client();
    let mut images = Vec::new();
    for i in 0..4u32 {
        let layer: Vec<u8> = (0..(12u32 << 20))
            .map(|b| (b.wrapping_mul(i + 3) >> 4) as u8)
            .collect();
        let (d, _) = c.push_image("big/app", &format!("v{i}"), &layer).await;
        images.push((format!("v{i}"), d));
    }
    images
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_migrate_killed_or_cut_off_resumes() {
    let mut s3 = S3Server::start(Kind::S3sFs);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let images = push_big_images(&Server::start_on(&data, &[])).await;
    let spawn = || {
        Command::new(env!("CARGO_BIN_EXE_nora"))
            .args([
                "migrate",
                "--from",
                data.to_str().unwrap(),
                "--to",
                "s3://nora/k",
            ])
            .envs(s3.env("unused"))
            .env_remove("NORA_STORAGE_MODE")
            .env_remove("NORA_CONFIG")
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    // Waits until s3s-fs holds more than `than` objects (or the copy ended).
    let wait_for_progress = |child: &mut std::process::Child, than: usize| {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while s3.stored_objects("k") <= than {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "migrate made no progress"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        s3.stored_objects("k")
    };
    // Killed once part of the copy is there: the rerun skips that part.
    let mut child = spawn();
    let copied = wait_for_progress(&mut child, 0);
    let _ = child.kill();
    let _ = child.wait();
    assert!(copied > 0);
    // The S3 server goes away half way: one clear line, exit 1 (unless the
    // copy was already done).
    let mut child = spawn();
    wait_for_progress(&mut child, copied);
    s3.stop();
    let out = child.wait_with_output().unwrap();
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.contains("resume") || err.contains("s3://nora/k"),
            "{err}"
        );
    }
    s3.restart();
    let (ok, out, err) = migrate(
        &s3,
        &[
            "--from",
            data.to_str().unwrap(),
            "--to",
            "s3://nora/k",
            "-o",
            "json",
        ],
    );
    assert!(ok, "{err}");
    let summary: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(
        summary["skipped"].as_u64().unwrap() > 0,
        "resumed: {summary}"
    );
    let on_s3 = start(dir.path(), &s3.env("k"));
    for (tag, d) in &images {
        verify_pull(&on_s3.client(), "big/app", tag, d).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_cut_off_by_an_s3_outage_reruns_at_once() {
    let mut s3 = S3Server::start(Kind::S3sFs);
    let dir = tempfile::tempdir().unwrap();
    let env = s3.env("b");
    let images = push_big_images(&start(dir.path(), &env)).await;
    let archive = dir.path().join("b.tar.gz");
    let partial = dir.path().join("b.tar.gz.partial");
    let a = archive.to_str().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_nora"))
        .args(["backup", "-o", a])
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env_remove("NORA_CONFIG")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The S3 server goes away once the archive is being written.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !partial.metadata().is_ok_and(|m| m.len() > 0) {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        assert!(Instant::now() < deadline, "the backup wrote nothing");
        std::thread::sleep(Duration::from_millis(5));
    }
    s3.stop();
    let out = child.wait_with_output().unwrap();
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.contains("cannot back up") && err.contains("run it again"),
            "{err}"
        );
        assert!(!archive.exists() && !partial.exists(), "no half archive");
    }
    // Back up again as soon as S3 is back: what the cut-off backup left (its
    // hold on gc) does not stand in the way.
    s3.restart();
    nora(&env, &["backup", "-o", a]);
    let restored = dir.path().join("restored");
    nora(
        &[],
        &[
            "restore",
            "-i",
            a,
            "--to",
            restored.to_str().unwrap(),
            "--yes",
        ],
    );
    let on_restored = Server::start_on(&restored, &[]);
    for (tag, d) in &images {
        verify_pull(&on_restored.client(), "big/app", tag, d).await;
    }
}

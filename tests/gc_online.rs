//! Garbage collection while the registry is in use, and GC killed midway:
//! every image whose push succeeded still pulls with verified digests.

mod common;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{Server, push_like_a_client, verify_pull, write_orphans};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_survive_a_gc_loop_with_zero_grace() {
    let server = Server::start();
    let c = server.client();
    let stop = Arc::new(AtomicBool::new(false));

    // GC loop: the admin API and the CLI on storage, alternately (so the
    // storage lock between processes is exercised too).
    let gc = {
        let (c, stop) = (c.clone(), stop.clone());
        let data = server.data.clone();
        tokio::spawn(async move {
            let mut runs = 0u32;
            while !stop.load(Ordering::Relaxed) {
                if runs.is_multiple_of(2) {
                    let r = c.gc(0).await;
                    assert!(r.status() == 200 || r.status() == 409, "gc: {}", r.status());
                } else {
                    let data = data.clone();
                    let out = tokio::task::spawn_blocking(move || {
                        Command::new(env!("CARGO_BIN_EXE_nora"))
                            .args(["gc", "--yes", "--grace", "0s", "-o", "json", "--data-dir"])
                            .arg(&data)
                            .env_remove("NORA_CONFIG")
                            .output()
                            .unwrap()
                    })
                    .await
                    .unwrap();
                    let err = String::from_utf8_lossy(&out.stderr);
                    assert!(
                        out.status.success() || err.contains("another garbage collection"),
                        "{err}"
                    );
                }
                runs += 1;
            }
            runs
        })
    };

    let mut pushed = Vec::new();
    let mut failed = 0;
    let started = Instant::now();
    let mut i = 0u32;
    while started.elapsed() < Duration::from_secs(8) {
        let repo = format!("loop/r{}", i % 5);
        let tag = format!("t{i}");
        // Every third image reuses an older layer: the blob already exists
        // and is skipped by the client, exactly what GC must not break.
        let layer = format!("layer {}", if i.is_multiple_of(3) { i / 2 } else { i });
        match push_like_a_client(&c, &repo, &tag, layer.as_bytes()).await {
            Some(d) => pushed.push((repo, tag, d)),
            None => failed += 1,
        }
        // Delete some tags so GC has garbage to collect.
        if i.is_multiple_of(4) && i > 0 {
            let old = format!("t{}", i - 4);
            let repo = format!("loop/r{}", (i - 4) % 5);
            if let Some(pos) = pushed.iter().position(|(r, t, _)| *r == repo && *t == old) {
                let (r, t, d) = pushed.remove(pos);
                let del = c
                    .http
                    .delete(c.u(&format!("/v2/{r}/manifests/{d}")))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(del.status(), 202, "delete {r}:{t}");
            }
        }
        i += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let runs = gc.await.unwrap();
    assert!(runs >= 4, "only {runs} gc runs");
    assert!(
        pushed.len() > 50,
        "only {} pushes succeeded ({failed} failed)",
        pushed.len()
    );
    for (repo, tag, d) in &pushed {
        verify_pull(&c, repo, tag, d).await;
    }
    // And after a final, quiet collection.
    let r = c.gc(0).await;
    assert_eq!(r.status(), 200);
    for (repo, tag, d) in &pushed {
        verify_pull(&c, repo, tag, d).await;
    }
    eprintln!("{} pushes ({failed} refused), {runs} gc runs", pushed.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_killed_at_any_point_leaves_a_consistent_store() {
    let server = Server::start();
    let c = server.client();
    let mut images = Vec::new();
    for i in 0..40 {
        let (d, _) = c
            .push_image("kill/app", &format!("v{i}"), format!("keep {i}").as_bytes())
            .await;
        images.push((format!("v{i}"), d));
    }
    let gc_lock = server.data.join("gc/lock");
    for round in 0..6u64 {
        // Garbage for this round: orphan blobs and deleted manifests.
        for j in 0..150 {
            c.push_blob("kill/app", format!("orphan {round} {j}").as_bytes())
                .await;
        }
        let mut child = Command::new(env!("CARGO_BIN_EXE_nora"))
            .args(["gc", "--yes", "--grace", "0s", "-q", "--data-dir"])
            .arg(&server.data)
            .env_remove("NORA_CONFIG")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        tokio::time::sleep(Duration::from_millis(5 + round * 12)).await;
        let _ = child.kill();
        let _ = child.wait();
        for (tag, d) in &images {
            verify_pull(&c, "kill/app", tag, d).await;
        }
        // A killed GC's lock goes stale; back-date it rather than wait.
        if gc_lock.exists() {
            let ok = Command::new("touch")
                .args(["-d", "10 minutes ago"])
                .arg(&gc_lock)
                .status()
                .unwrap();
            assert!(ok.success());
        }
    }
    // A complete run afterwards sorts out whatever the killed ones left.
    let r = c.gc(0).await;
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    for (tag, d) in &images {
        verify_pull(&c, "kill/app", tag, d).await;
    }
    let trash = server.data.join("gc/trash");
    let left = walk_files(&trash);
    assert_eq!(left, 0, "trash not emptied");
}

/// SIGTERM while a gc runs for a caller that hung up: the server lets it
/// finish (within the shutdown timeout) before it exits 0, so a rolling
/// restart leaves no lock and no trash behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_waits_for_a_running_gc() {
    let mut server = Server::start();
    let c = server.client();
    let orphans = 6000;
    write_orphans(&server.data, orphans);
    start_gc_and_hang_up(&c).await;
    let status = server.terminate(Duration::from_secs(40));
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    let log = server.log_text();
    assert!(log.contains("job finished"), "{log}");
    assert!(!server.data.join("gc/lock").exists());
    assert_eq!(walk_files(&server.data.join("gc/trash")), 0);
    assert_eq!(walk_files(&server.data.join("blobs")), 0);
}

/// A gc still running when the shutdown timeout runs out lets its lock go
/// before the process ends: left behind, it would make every gc, on every
/// instance, wait a minute for it to go stale.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gc_cut_off_at_shutdown_lets_its_lock_go() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = Server::start_on(&data, &[("NORA_SHUTDOWN_TIMEOUT", "100ms")]);
    let orphans = 6000;
    write_orphans(&data, orphans);
    start_gc_and_hang_up(&server.client()).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !data.join("gc/lock").exists() {
        assert!(Instant::now() < deadline, "the gc never took its lock");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let status = server.terminate(Duration::from_secs(15));
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    let log = server.log_text();
    assert!(
        log.contains("job failed"),
        "the gc was over too soon: {log}"
    );
    assert!(!data.join("gc/lock").exists(), "{log}");

    // The next gc starts at once and finishes the work.
    let server = Server::start_on(&data, &[]);
    let r = server.client().gc(0).await;
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    assert_eq!(walk_files(&data.join("gc/trash")), 0);
    assert_eq!(walk_files(&data.join("blobs")), 0);
}

/// `POST /api/v1/gc` (grace 0), then the connection closed before the answer.
async fn start_gc_and_hang_up(c: &common::Client) {
    use std::io::Write;
    let body = r#"{"grace_seconds":0}"#;
    let addr = c.addr();
    let mut conn = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        conn,
        "POST /api/v1/gc HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    drop(conn);
}

fn walk_files(dir: &std::path::Path) -> usize {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.flatten()
        .map(|e| {
            if e.path().is_dir() {
                walk_files(&e.path())
            } else {
                1
            }
        })
        .sum()
}

/// A client that gives up on `POST /api/v1/gc` (its --timeout, Ctrl-C) does
/// not cut the gc off halfway: it runs to its end, lets its lock go, and its
/// outcome shows in `GET /api/v1/jobs`, and while it runs, how far it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_goes_on_when_its_client_hangs_up() {
    let server = Server::start();
    let c = server.client();
    let (kept, _) = c.push_image("keep/app", "v1", b"kept layer").await;
    let orphans = 6000;
    write_orphans(&server.data, orphans);
    start_gc_and_hang_up(&c).await;

    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen_running = false;
    let jobs = loop {
        let jobs = c.get_json("/api/v1/jobs").await;
        if jobs["gc"]["last_run"].is_u64() && jobs["gc"]["running"] == false {
            assert_eq!(jobs["gc"]["progress"], serde_json::Value::Null, "{jobs}");
            break jobs;
        }
        // While it runs, it says how far it is.
        if jobs["gc"]["running"] == true {
            let p = &jobs["gc"]["progress"];
            assert!(p["phase"].is_string(), "{jobs}");
            assert!(p["done"].as_u64() <= p["total"].as_u64(), "{jobs}");
            seen_running = true;
        }
        assert!(Instant::now() < deadline, "gc never finished: {jobs}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        jobs["gc"]["last_result"]["blobs_removed"], orphans,
        "{jobs}"
    );
    assert!(
        seen_running,
        "the gc was over before the first look: too few orphans"
    );
    assert!(!server.data.join("gc/lock").exists());
    assert_eq!(walk_files(&server.data.join("gc/trash")), 0);
    verify_pull(&c, "keep/app", "v1", &kept).await;
}

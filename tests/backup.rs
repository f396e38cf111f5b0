//! `nora backup` while pushes run, `nora restore` into a directory and into
//! S3: every tag of the archive pulls whole, a rerun resumes, a damaged
//! archive is refused with one line.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::s3::{Kind, S3Server};
use common::{Server, push_like_a_client, verify_pull};

fn nora(args: &[&str], env: &[(&'static str, String)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nora"))
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env_remove("NORA_CONFIG")
        .output()
        .unwrap()
}

fn ok(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null)
}

/// Every tag `images ls` finds in `data` pulls with verified digests.
async fn every_tag_pulls(server: &Server, listing: &serde_json::Value) -> usize {
    let rows = listing.as_array().unwrap();
    for row in rows {
        verify_pull(
            &server.client(),
            row["repository"].as_str().unwrap(),
            row["tag"].as_str().unwrap(),
            row["digest"].as_str().unwrap(),
        )
        .await;
    }
    rows.len()
}

fn data_dir(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_while_pushing_then_restore_anywhere() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start_on(&data, &[]);
    let c = server.client();
    let big: Vec<u8> = (0..(12u32 << 20))
        .map(|i| (i.wrapping_mul(13) >> 6) as u8)
        .collect();
    let mut before = Vec::new();
    for (repo, tag, layer) in [
        ("team/app", "v1", big.clone()),
        ("team/app", "v2", b"two".to_vec()),
        ("x/y/z", "latest", b"three".to_vec()),
    ] {
        before.push((repo, tag, c.push_image(repo, tag, &layer).await.0));
    }
    ok(&nora(
        &[
            "token",
            "create",
            "--name",
            "ci",
            "--role",
            "write",
            "--data-dir",
            data_dir(&data),
        ],
        &[],
    ));

    // Back up while a client keeps pushing (and deleting) through the server.
    let stop = Arc::new(AtomicBool::new(false));
    let pusher = {
        let (c, stop) = (c.clone(), stop.clone());
        tokio::spawn(async move {
            let mut i = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let tag = format!("t{i}");
                push_like_a_client(&c, "busy/app", &tag, format!("layer {i}").as_bytes()).await;
                if i % 3 == 2 {
                    let _ = c
                        .http
                        .delete(c.u(&format!("/v2/busy/app/manifests/t{}", i - 1)))
                        .send()
                        .await;
                }
                i += 1;
            }
            i
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let archive = dir.path().join("nora.tar.gz");
    let a = archive.to_str().unwrap().to_string();
    let backup = {
        let (a, d) = (a.clone(), data.clone());
        tokio::task::spawn_blocking(move || {
            nora(
                &[
                    "backup",
                    "-o",
                    &a,
                    "--data-dir",
                    data_dir(&d),
                    "--output",
                    "json",
                ],
                &[],
            )
        })
        .await
        .unwrap()
    };
    stop.store(true, Ordering::Relaxed);
    let pushes = pusher.await.unwrap();
    let summary = ok(&backup);
    assert!(summary["blobs"].as_u64().unwrap() >= 6, "{summary}");
    assert!(pushes > 3, "pushes ran during the backup");
    assert!(!Path::new(&format!("{a}.partial")).exists());

    // A dry run verifies everything and writes nothing.
    let never = dir.path().join("never");
    ok(&nora(
        &[
            "restore",
            "-i",
            &a,
            "--dry-run",
            "--data-dir",
            data_dir(&never),
        ],
        &[],
    ));
    assert!(!never.exists());

    // Into a new directory: every tag in the archive pulls whole, and every
    // image pushed before the backup is there.
    let restored = dir.path().join("restored");
    let r = ok(&nora(
        &[
            "restore",
            "-i",
            &a,
            "--data-dir",
            data_dir(&restored),
            "-o",
            "json",
        ],
        &[],
    ));
    assert_eq!(r["blobs_skipped"], 0);
    let listing = ok(&nora(
        &[
            "images",
            "ls",
            "-o",
            "json",
            "--data-dir",
            data_dir(&restored),
        ],
        &[],
    ));
    {
        let on_restored = Server::start_on(&restored, &[]);
        assert!(every_tag_pulls(&on_restored, &listing).await >= 4);
        for (repo, tag, d) in &before {
            verify_pull(&on_restored.client(), repo, tag, d).await;
        }
    }
    let tokens = ok(&nora(
        &[
            "token",
            "ls",
            "-o",
            "json",
            "--data-dir",
            data_dir(&restored),
        ],
        &[],
    ));
    assert_eq!(tokens[0]["name"], "ci");
    // Again: every blob is already there.
    let again = ok(&nora(
        &[
            "restore",
            "-i",
            &a,
            "--yes",
            "--data-dir",
            data_dir(&restored),
            "-o",
            "json",
        ],
        &[],
    ));
    assert_eq!(again["blobs_written"], 0);
    assert_eq!(again["blobs_skipped"], r["blobs_written"]);

    // Into S3.
    let s3 = S3Server::start(Kind::S3sFs);
    let env = s3.env("unused");
    ok(&nora(
        &["restore", "-i", &a, "--to", "s3://nora/restored"],
        &env,
    ));
    {
        let env = s3.env("restored");
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let on_s3 = Server::start_on(&dir.path().join("unused"), &env);
        every_tag_pulls(&on_s3, &listing).await;
    }

    // A truncated archive: one line, exit 1.
    let bytes = std::fs::read(&archive).unwrap();
    let cut = dir.path().join("cut.tar.gz");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let out = nora(
        &[
            "restore",
            "-i",
            cut.to_str().unwrap(),
            "--data-dir",
            data_dir(&dir.path().join("r2")),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("restore stopped") && err.lines().count() == 1,
        "{err}"
    );
    // Not an archive at all.
    let out = nora(
        &[
            "restore",
            "-i",
            "/etc/hostname",
            "--data-dir",
            data_dir(&dir.path().join("r3")),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
}

/// A referrer's descriptor carries all of its manifest's annotations, so it
/// can be megabytes; backup and restore take it like any other link.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_referrer_with_megabytes_of_annotations_survives_backup_and_restore() {
    use common::{OCI_MANIFEST, sha256};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start_on(&data, &[]);
    let c = server.client();
    let (subject, body) = c.push_image("r/big", "v1", b"layer").await;
    let empty = c.push_blob("r/big", b"{}").await;
    let m = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/vnd.example.note",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
        "layers": [],
        "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": body.len()},
        "annotations": {"org.example.note": "n".repeat(2 << 20)}
    }))
    .unwrap();
    let referrer = sha256(&m);
    assert_eq!(
        c.put_manifest("r/big", &referrer, OCI_MANIFEST, &m)
            .await
            .status(),
        201
    );
    drop(server);

    let archive = dir.path().join("a.tar.gz");
    let a = archive.to_str().unwrap();
    ok(&nora(
        &["backup", "-o", a, "--data-dir", data_dir(&data)],
        &[],
    ));
    let restored = dir.path().join("restored");
    ok(&nora(
        &["restore", "-i", a, "--data-dir", data_dir(&restored)],
        &[],
    ));
    let server = Server::start_on(&restored, &[]);
    let index = server
        .client()
        .get_json(&format!("/v2/r/big/referrers/{subject}"))
        .await;
    assert_eq!(index["manifests"][0]["digest"], referrer.as_str());
}

/// A store left by a manifest removal killed half way (a tag naming a
/// manifest whose revision is gone, and the journal entry) is whole in a
/// backup and in a migration's copy: both finish the removal first.
/// Without that, the copy would keep the tag without the manifest, and its
/// gc would free the layers.
#[tokio::test]
async fn backup_and_migrate_finish_a_removal_a_kill_cut_off() {
    for how in ["backup", "migrate"] {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let server = Server::start_on(&data, &[]);
        let (d, _) = server.client().push_image("r", "moved", b"layer").await;
        drop(server);
        let (revision, _) = common::store::leave_a_removal_cut_off(&data, "r", &d);

        let copy = dir.path().join("copy");
        if how == "backup" {
            let archive = dir.path().join("a.tar.gz");
            let a = archive.to_str().unwrap();
            ok(&nora(
                &["backup", "-o", a, "--data-dir", data_dir(&data)],
                &[],
            ));
            ok(&nora(
                &["restore", "-i", a, "--data-dir", data_dir(&copy)],
                &[],
            ));
        } else {
            ok(&nora(
                &[
                    "migrate",
                    "--from",
                    data_dir(&data),
                    "--to",
                    data_dir(&copy),
                ],
                &[],
            ));
        }
        let in_copy = copy.join(revision.strip_prefix(&data).unwrap());
        assert!(in_copy.is_file(), "{how}: the manifest is in the copy");
        common::store::check(&copy);
    }
}

/// A backup is renamed over its FILE when done: a device, a pipe or a
/// symlink there would be replaced, so only a plain file (or none) is taken.
#[test]
fn a_backup_goes_only_to_a_plain_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let target = dir.path().join("target");
    std::fs::write(&target, b"keep me").unwrap();
    let link = dir.path().join("link.tar.gz");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    for out in [link.to_str().unwrap(), "-", "/dev/null"] {
        let o = nora(&["backup", "-o", out, "--data-dir", data_dir(&data)], &[]);
        assert_eq!(o.status.code(), Some(2), "{out}: {o:?}");
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("file"),
            "{out}: {o:?}"
        );
    }
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(std::fs::read(&target).unwrap(), b"keep me");
    use std::os::unix::fs::FileTypeExt;
    assert!(
        std::fs::metadata("/dev/null")
            .unwrap()
            .file_type()
            .is_char_device()
    );
}

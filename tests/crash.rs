//! `kill -9` in the middle of a 1 GiB push, then restart: nothing partial is
//! visible, what was pushed before still pulls byte-identical, and the same
//! push succeeds afterwards. And a manifest removal killed half way is
//! finished by the restart.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use futures_util::StreamExt;
use sha2::{Digest as _, Sha256};

const GIB: u64 = 1 << 30;
const CHUNK: usize = 1 << 20;

/// Deterministic, incompressible bytes: chunk `i` of the stream for `seed`.
fn chunk(seed: u64, i: u64) -> Bytes {
    let mut x = seed ^ (i.wrapping_mul(0x9E37_79B9_7F4A_7C15)) ^ 0xD1B5_4A32_D192_ED03;
    let mut out = Vec::with_capacity(CHUNK);
    for _ in 0..CHUNK / 8 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    Bytes::from(out)
}

fn digest_of(seed: u64, size: u64) -> String {
    let mut h = Sha256::new();
    for i in 0..size / CHUNK as u64 {
        h.update(chunk(seed, i));
    }
    format!("sha256:{}", hex::encode(h.finalize()))
}

/// A request body of `size` bytes that calls `at_half` once half is sent.
fn body(seed: u64, size: u64, on_half: Option<tokio::sync::oneshot::Sender<()>>) -> reqwest::Body {
    let mut on_half = on_half;
    let n = size / CHUNK as u64;
    let s = futures_util::stream::iter(0..n).map(move |i| {
        if i == n / 2
            && let Some(tx) = on_half.take()
        {
            let _ = tx.send(());
        }
        Ok::<_, std::io::Error>(chunk(seed, i))
    });
    reqwest::Body::wrap_stream(s)
}

async fn start_upload(c: &Client, repo: &str) -> String {
    let r = c
        .http
        .post(c.u(&format!("/v2/{repo}/blobs/uploads/")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    c.loc(r.headers()["location"].to_str().unwrap())
}

async fn pull_verified(c: &Client, repo: &str, digest: &str) -> u64 {
    let r = c
        .http
        .get(c.u(&format!("/v2/{repo}/blobs/{digest}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "pull {digest}");
    let mut h = Sha256::new();
    let mut n = 0u64;
    let mut s = r.bytes_stream();
    while let Some(b) = s.next().await {
        let b = b.unwrap();
        n += b.len() as u64;
        h.update(&b);
    }
    assert_eq!(format!("sha256:{}", hex::encode(h.finalize())), digest);
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_a_1gib_push_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut s = Server::start_on(&data, &[]);
    let c = s.client();

    // An image pushed before the crash.
    let (before, manifest) = c.push_image("crash/before", "v1", b"precious layer").await;

    // Start the big push and kill the server half way through.
    let big = digest_of(7, GIB);
    let loc = start_upload(&c, "crash/big").await;
    let (tx, rx) = tokio::sync::oneshot::channel();
    let push = tokio::spawn({
        let c = c.clone();
        let url = closing_url(&loc, &big);
        async move { c.http.put(url).body(body(7, GIB, Some(tx))).send().await }
    });
    rx.await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    s.kill9();
    assert!(
        push.await.unwrap().is_err(),
        "the push must fail when the server dies"
    );

    // Restart on the same storage.
    let s = Server::start_on(&data, &[]);
    let c = s.client();
    let head = c
        .http
        .head(c.u(&format!("/v2/crash/big/blobs/{big}")))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 404, "no partial blob may be visible");
    let r = c
        .http
        .get(c.u("/v2/crash/before/manifests/v1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["docker-content-digest"], before.as_str());
    assert_eq!(r.bytes().await.unwrap().as_ref(), manifest.as_slice());
    let m: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    for layer in m["layers"].as_array().unwrap() {
        pull_verified(&c, "crash/before", layer["digest"].as_str().unwrap()).await;
    }

    // The client pushes again, and this time it completes.
    let loc = start_upload(&c, "crash/big").await;
    let r = c
        .http
        .put(closing_url(&loc, &big))
        .body(body(7, GIB, None))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{:?}", r.text().await);
    assert_eq!(pull_verified(&c, "crash/big", &big).await, GIB);
}

/// What a DELETE by digest (or retention) killed right after removing a
/// manifest from its repository leaves, while a push had just moved a tag
/// onto it: the tag, the journal entry, no revision. The restart finishes
/// the removal's look before it answers: the manifest is back.
#[tokio::test]
async fn a_manifest_removal_killed_half_way_is_finished_by_the_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let s = Server::start_on(&data, &[]);
    let (d, _) = s.client().push_image("crash/r", "moved", b"layer").await;
    drop(s);
    let (revision, entry) = store::leave_a_removal_cut_off(&data, "crash/r", &d);

    let s = Server::start_on(&data, &[]);
    let c = s.client();
    let by_digest = c
        .http
        .head(c.u(&format!("/v2/crash/r/manifests/{d}")))
        .send()
        .await
        .unwrap();
    assert_eq!(by_digest.status(), 200);
    assert!(revision.is_file(), "the manifest is back in its repository");
    assert!(!entry.exists(), "the entry is done with");
    assert!(
        s.log_text()
            .contains("interrupted manifest removals finished")
    );
}

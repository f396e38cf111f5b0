//! `server.read_only` (NORA_READ_ONLY): a store served for pulls only, as a
//! migration window or a store shipped on a read-only medium needs. Pulls
//! (with authentication) work; pushes, deletes and maintenance are refused;
//! nothing at all is written into the store.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::SystemTime;

use common::*;

/// Every file under `dir` with its size and modification time.
fn files(dir: &Path) -> BTreeMap<String, (u64, SystemTime)> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let meta = e.metadata().unwrap();
            if meta.is_dir() {
                todo.push(e.path());
            }
            let key = e.path().strip_prefix(dir).unwrap().display().to_string();
            out.insert(key, (meta.len(), meta.modified().unwrap()));
        }
    }
    out
}

/// Basic root:root-pw.
const ROOT: &str = "Basic cm9vdDpyb290LXB3";

#[tokio::test]
async fn pulls_only_and_nothing_written() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = auth_config(
        dir.path(),
        "root",
        "root-pw",
        "[[auth.rules]]\nsubject = \"root\"\npermissions = [\"admin:**\"]\n[schedule]\ngc = \"1s\"\n",
    );
    let config = config.to_str().unwrap();

    // An image pushed by a server as usual, whose sweeps have run.
    let s = Server::start_on(&data, &[("NORA_CONFIG", config)]);
    let c = s.client_with(ROOT);
    let layer = b"read-only layer".to_vec();
    let digest = push_like_a_client(&c, "ro/app", "v1", &layer)
        .await
        .unwrap();
    drop(s);
    let before = files(&data);

    let s = Server::start_on(
        &data,
        &[("NORA_CONFIG", config), ("NORA_READ_ONLY", "true")],
    );
    let c = s.client_with(ROOT);
    verify_pull(&c, "ro/app", "v1", &digest).await;
    let tags = c.get_json("/v2/ro/app/tags/list").await;
    assert_eq!(tags["tags"], serde_json::json!(["v1"]));
    let r = c.http.get(c.u("/api/v1/images")).send().await.unwrap();
    assert_eq!(r.status(), 200);

    // Every kind of write is refused, with a message the client shows.
    let attempts = [
        c.http.post(c.u("/v2/ro/app/blobs/uploads/")),
        c.http
            .put(c.u("/v2/ro/app/manifests/v2"))
            .header("Content-Type", OCI_MANIFEST)
            .body("{}"),
        c.http
            .delete(c.u(&format!("/v2/ro/app/manifests/{digest}"))),
        c.http
            .delete(c.u(&format!("/v2/ro/app/blobs/{}", sha256(&layer)))),
    ];
    for req in attempts {
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 405);
        let body: serde_json::Value = r.json().await.unwrap();
        let error = &body["errors"][0];
        assert_eq!(error["code"], "UNSUPPORTED", "{body}");
        assert!(
            error["message"].as_str().unwrap().contains("read-only"),
            "{body}"
        );
    }
    for (method, path, body) in [
        ("POST", "/api/v1/gc", r#"{"grace_seconds":0}"#),
        ("POST", "/api/v1/retention", r#"{"dry_run":false}"#),
        ("POST", "/api/v1/delete", r#"{"reference":"ro/app:v1"}"#),
        (
            "POST",
            "/api/v1/tag",
            r#"{"source":"ro/app:v1","target":"ro/app:v3"}"#,
        ),
        ("POST", "/api/v1/tokens", r#"{"name":"x","role":"read"}"#),
        ("DELETE", "/api/v1/tokens/x", ""),
        ("DELETE", "/api/v1/tokens?name=x", ""),
    ] {
        let r = c.send(method, path, body).await;
        assert_eq!(r.status(), 409, "{method} {path}");
        assert!(r.text().await.unwrap().contains("read-only"), "{path}");
    }
    // Dry runs change nothing: an operator can still see what gc, retention
    // or a delete would do.
    for (path, body) in [
        ("/api/v1/gc", r#"{"dry_run":true,"grace_seconds":0}"#),
        ("/api/v1/retention", r#"{"dry_run":true}"#),
        (
            "/api/v1/delete",
            r#"{"reference":"ro/app:v1","dry_run":true}"#,
        ),
    ] {
        let r = c.http.post(c.u(path)).body(body).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}: {}", r.text().await.unwrap());
    }
    // The schedule's gc (every second) is not run either.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    verify_pull(&c, "ro/app", "v1", &digest).await;
    let log = s.log_text();
    assert!(log.contains("read-only: pulls are served"), "{log}");
    assert!(
        log.contains("[schedule] of gc and retention is not run"),
        "{log}"
    );
    drop(s);
    assert_eq!(files(&data), before, "the store changed");
}

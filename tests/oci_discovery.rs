//! OCI distribution spec, content discovery: tags list and catalog with
//! pagination and Link headers, and the referrers API with its filter.

mod common;

use common::{Client, OCI_INDEX, OCI_MANIFEST, Server, sha256};
use serde_json::{Value, json};

async fn get_json(c: &Client, path: &str) -> (reqwest::header::HeaderMap, Value) {
    let r = c.http.get(c.u(path)).send().await.unwrap();
    assert_eq!(r.status(), 200, "{path}");
    let h = r.headers().clone();
    (h, r.json().await.unwrap())
}

fn next_link(h: &reqwest::header::HeaderMap) -> Option<String> {
    let link = h.get("link")?.to_str().unwrap();
    assert!(link.contains("rel=\"next\""), "{link}");
    let start = link.find('<')? + 1;
    let end = link.find('>')?;
    Some(link[start..end].to_string())
}

#[tokio::test]
async fn tags_are_listed_in_lexical_order_and_paginated() {
    let server = Server::start();
    let c = server.client();
    let (_, body) = c.push_image("d/tags", "v10", b"layer").await;
    for t in ["latest", "v2", "v1", "1.0", "A-upper", "v1.1"] {
        let r = c.put_manifest("d/tags", t, OCI_MANIFEST, &body).await;
        assert_eq!(r.status(), 201);
    }
    let mut want = vec!["1.0", "A-upper", "latest", "v1", "v1.1", "v10", "v2"];
    want.sort();
    let (h, all) = get_json(&c, "/v2/d/tags/tags/list").await;
    assert_eq!(all["name"], "d/tags");
    assert_eq!(all["tags"], json!(want));
    assert!(h.get("link").is_none());

    // Pages of 3, following Link headers.
    let mut seen = Vec::new();
    let mut path = "/v2/d/tags/tags/list?n=3".to_string();
    loop {
        let (h, page) = get_json(&c, &path).await;
        let tags = page["tags"].as_array().unwrap();
        assert!(tags.len() <= 3);
        seen.extend(tags.iter().map(|t| t.as_str().unwrap().to_string()));
        match next_link(&h) {
            Some(next) => path = next,
            None => break,
        }
    }
    assert_eq!(seen, want);
    // `last` alone, and n=0.
    let (_, page) = get_json(&c, "/v2/d/tags/tags/list?last=v1").await;
    assert_eq!(page["tags"], json!(["v1.1", "v10", "v2"]));
    for n in [u64::MAX.to_string(), "99999999999999999999999".into()] {
        let (_, page) = get_json(&c, &format!("/v2/d/tags/tags/list?n={n}")).await;
        assert_eq!(page["tags"], json!(want), "n={n}");
    }
    let (_, page) = get_json(&c, "/v2/d/tags/tags/list?n=0").await;
    assert!(
        page["tags"].as_array().is_none_or(|t| t.is_empty()),
        "{page}"
    );

    // `d` only holds the repository `d/tags`: it is not one itself.
    let r = c.http.get(c.u("/v2/d/tags/list")).send().await.unwrap();
    assert_eq!(common::oci_error(r).await, (404, "NAME_UNKNOWN".into()));
}

#[tokio::test]
async fn catalog_is_paginated() {
    let server = Server::start();
    let c = server.client();
    let repos = ["cat/a", "cat/b/c", "cat/d", "other", "zeta/x/y/z"];
    for r in repos {
        c.push_image(r, "v1", r.as_bytes()).await;
    }
    let (_, all) = get_json(&c, "/v2/_catalog").await;
    assert_eq!(all["repositories"], json!(repos));
    let mut seen = Vec::new();
    let mut path = "/v2/_catalog?n=2".to_string();
    let mut pages = 0;
    loop {
        let (h, page) = get_json(&c, &path).await;
        pages += 1;
        seen.extend(
            page["repositories"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r.as_str().unwrap().to_string()),
        );
        match next_link(&h) {
            Some(next) => path = next,
            None => break,
        }
    }
    assert_eq!(seen, repos);
    assert_eq!(pages, 3);
    let (_, page) = get_json(&c, "/v2/_catalog?n=2&last=cat/d").await;
    assert_eq!(page["repositories"], json!(["other", "zeta/x/y/z"]));
    // A huge n (the largest number there is, and past it) is "all of them".
    for n in [u64::MAX.to_string(), "99999999999999999999999".into()] {
        let (h, page) = get_json(&c, &format!("/v2/_catalog?n={n}")).await;
        assert_eq!(page["repositories"], json!(repos), "n={n}");
        assert!(h.get("link").is_none(), "n={n}");
    }
}

async fn push_artifact(
    c: &Client,
    repo: &str,
    subject: &str,
    subject_size: usize,
    artifact_type: &str,
) -> String {
    let empty = c.push_blob(repo, b"{}").await;
    let m = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": artifact_type,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
        "layers": [],
        "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": subject_size},
        "annotations": {"org.example.kind": artifact_type}
    }))
    .unwrap();
    let d = sha256(&m);
    let r = c.put_manifest(repo, &d, OCI_MANIFEST, &m).await;
    assert_eq!(r.status(), 201);
    d
}

#[tokio::test]
async fn referrers_list_and_filter() {
    let server = Server::start();
    let c = server.client();
    let (subject, body) = c.push_image("d/ref", "v1", b"layer").await;
    let sig = push_artifact(
        &c,
        "d/ref",
        &subject,
        body.len(),
        "application/vnd.example.sig",
    )
    .await;
    let sbom = push_artifact(
        &c,
        "d/ref",
        &subject,
        body.len(),
        "application/vnd.example.sbom",
    )
    .await;

    let r = c
        .http
        .get(c.u(&format!("/v2/d/ref/referrers/{subject}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], OCI_INDEX);
    let index: Value = r.json().await.unwrap();
    assert_eq!(index["schemaVersion"], 2);
    assert_eq!(index["mediaType"], OCI_INDEX);
    let mut got: Vec<(String, String)> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["digest"].as_str().unwrap().into(),
                m["artifactType"].as_str().unwrap().into(),
            )
        })
        .collect();
    got.sort();
    let mut want = vec![
        (sig.clone(), "application/vnd.example.sig".to_string()),
        (sbom.clone(), "application/vnd.example.sbom".to_string()),
    ];
    want.sort();
    assert_eq!(got, want);
    let first = &index["manifests"][0];
    assert_eq!(first["mediaType"], OCI_MANIFEST);
    assert!(first["size"].as_u64().unwrap() > 0);
    assert!(first["annotations"]["org.example.kind"].is_string());

    let r = c
        .http
        .get(c.u(&format!(
            "/v2/d/ref/referrers/{subject}?artifactType=application/vnd.example.sbom"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["oci-filters-applied"], "artifactType");
    let index: Value = r.json().await.unwrap();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 1);
    assert_eq!(index["manifests"][0]["digest"], sbom.as_str());

    // No referrers: an empty index, not a 404.
    let nothing = sha256(b"nothing refers to this");
    let r = c
        .http
        .get(c.u(&format!("/v2/d/ref/referrers/{nothing}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let index: Value = r.json().await.unwrap();
    assert_eq!(index["manifests"], json!([]));
    // A bad digest.
    let r = c
        .http
        .get(c.u("/v2/d/ref/referrers/sha256:xyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(common::oci_error(r).await, (400, "DIGEST_INVALID".into()));

    // Deleting a referrer removes it from the list.
    let r = c
        .http
        .delete(c.u(&format!("/v2/d/ref/manifests/{sig}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let (_, index) = get_json(&c, &format!("/v2/d/ref/referrers/{subject}")).await;
    assert_eq!(index["manifests"].as_array().unwrap().len(), 1);
}

/// The spec copies all of a referrer's annotations into its descriptor, so a
/// referrer with megabytes of them (still a manifest under 4 MiB) is listed
/// whole, not a 500.
#[tokio::test]
async fn a_referrer_with_megabytes_of_annotations_is_listed() {
    let server = Server::start();
    let c = server.client();
    let (subject, body) = c.push_image("d/big", "v1", b"layer").await;
    let empty = c.push_blob("d/big", b"{}").await;
    let note = "n".repeat(3 * 1024 * 1024);
    let m = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/vnd.example.note",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
        "layers": [],
        "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": body.len()},
        "annotations": {"org.example.note": note}
    }))
    .unwrap();
    let d = sha256(&m);
    let r = c.put_manifest("d/big", &d, OCI_MANIFEST, &m).await;
    assert_eq!(r.status(), 201);
    let (_, index) = get_json(&c, &format!("/v2/d/big/referrers/{subject}")).await;
    assert_eq!(index["manifests"][0]["digest"], d.as_str());
    assert_eq!(
        index["manifests"][0]["annotations"]["org.example.note"]
            .as_str()
            .map(str::len),
        Some(note.len())
    );
}

/// HEAD answers wherever GET does, with GET's status and headers and no
/// body (HTTP's rule; monitoring probes and some clients use it).
#[tokio::test]
async fn head_answers_where_get_does() {
    let server = Server::start();
    let c = server.client();
    let (d, _) = c.push_image("h/r", "v1", b"x").await;
    let r = c
        .http
        .post(c.u("/v2/h/r/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    let upload = c.loc(r.headers()["location"].to_str().unwrap());
    for path in [
        c.u("/v2/_catalog"),
        c.u("/v2/h/r/tags/list"),
        c.u(&format!("/v2/h/r/referrers/{d}")),
        upload,
    ] {
        let get = c.http.get(&path).send().await.unwrap();
        let head = c.http.head(&path).send().await.unwrap();
        assert_eq!(head.status(), get.status(), "{path}");
        assert!(head.status().is_success(), "{path}: {}", head.status());
        assert_eq!(
            head.headers().get("content-type"),
            get.headers().get("content-type"),
            "{path}"
        );
        assert!(head.bytes().await.unwrap().is_empty(), "{path}");
    }
}

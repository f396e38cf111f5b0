//! OCI distribution spec, manifests: every kind nora accepts (OCI image and
//! index, Docker schema2 and manifest list, artifacts with a subject), by tag
//! and by digest, the checks on their references, and deletion.

mod common;

use base64::{Engine as _, engine::general_purpose::STANDARD};
use common::{
    Client, DOCKER_LIST, DOCKER_MANIFEST, OCI_CONFIG, OCI_INDEX, OCI_MANIFEST, Server,
    image_manifest, oci_error, sha256, sha512,
};
use serde_json::json;

async fn get(c: &Client, repo: &str, reference: &str, accept: &str) -> reqwest::Response {
    c.http
        .get(c.u(&format!("/v2/{repo}/manifests/{reference}")))
        .header("Accept", accept)
        .send()
        .await
        .unwrap()
}

/// Pushes `body` under `reference`, checks 201 and the headers, and reads it
/// back by tag and by digest with its own media type.
async fn round_trip(
    c: &Client,
    repo: &str,
    reference: &str,
    media_type: &str,
    body: &[u8],
) -> String {
    let d = sha256(body);
    let r = c.put_manifest(repo, reference, media_type, body).await;
    assert_eq!(r.status(), 201, "{media_type}: {:?}", r.text().await);
    assert_eq!(r.headers()["docker-content-digest"], d.as_str());
    assert_eq!(
        r.headers()["location"].to_str().unwrap(),
        format!("/v2/{repo}/manifests/{d}")
    );
    for by in [reference, d.as_str()] {
        let r = get(
            c,
            repo,
            by,
            &format!("{media_type}, {OCI_MANIFEST}, {OCI_INDEX}"),
        )
        .await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], media_type);
        assert_eq!(r.headers()["docker-content-digest"], d.as_str());
        assert_eq!(r.bytes().await.unwrap(), body);
    }
    d
}

#[tokio::test]
async fn oci_image_and_index() {
    let server = Server::start();
    let c = server.client();
    let (amd, amd_body) = c.push_image("m/multi", "amd64", b"amd64 layer").await;
    let (arm, arm_body) = c.push_image("m/multi", "arm64", b"arm64 layer").await;
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": amd, "size": amd_body.len(), "platform": {"architecture": "amd64", "os": "linux"}},
            {"mediaType": OCI_MANIFEST, "digest": arm, "size": arm_body.len(), "platform": {"architecture": "arm64", "os": "linux"}},
        ]
    }))
    .unwrap();
    round_trip(&c, "m/multi", "latest", OCI_INDEX, &index).await;

    // An index whose child is missing is refused.
    let missing = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": sha256(b"no such manifest"), "size": 10}]
    }))
    .unwrap();
    let r = c
        .put_manifest("m/multi", "broken", OCI_INDEX, &missing)
        .await;
    assert_eq!(oci_error(r).await, (400, "MANIFEST_BLOB_UNKNOWN".into()));
}

#[tokio::test]
async fn docker_schema2_and_manifest_list() {
    let server = Server::start();
    let c = server.client();
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let cd = c.push_blob("m/docker", config).await;
    let ld = c.push_blob("m/docker", b"docker layer").await;
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": cd, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "digest": ld, "size": 12}]
    }))
    .unwrap();
    let md = round_trip(&c, "m/docker", "v1", DOCKER_MANIFEST, &manifest).await;
    let list = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": DOCKER_LIST,
        "manifests": [{"mediaType": DOCKER_MANIFEST, "digest": md, "size": manifest.len(),
                       "platform": {"architecture": "amd64", "os": "linux"}}]
    }))
    .unwrap();
    round_trip(&c, "m/docker", "list", DOCKER_LIST, &list).await;
}

#[tokio::test]
async fn artifact_with_subject_answers_oci_subject() {
    let server = Server::start();
    let c = server.client();
    let (subject, subject_body) = c.push_image("m/art", "v1", b"image layer").await;
    let empty = c.push_blob("m/art", b"{}").await;
    let sig = c.push_blob("m/art", b"signature bytes").await;
    let artifact = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": "application/vnd.example.signature",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
        "layers": [{"mediaType": "application/vnd.example.sig", "digest": sig, "size": 15}],
        "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": subject_body.len()}
    }))
    .unwrap();
    let d = sha256(&artifact);
    let r = c.put_manifest("m/art", &d, OCI_MANIFEST, &artifact).await;
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["oci-subject"], subject.as_str());
    let r = get(&c, "m/art", &d, OCI_MANIFEST).await;
    assert_eq!(r.status(), 200);
    // Pushing an artifact whose subject does not exist (yet) is allowed.
    let dangling = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/vnd.example.sbom",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
        "layers": [],
        "subject": {"mediaType": OCI_MANIFEST, "digest": sha256(b"future image"), "size": 100}
    }))
    .unwrap();
    let r = c
        .put_manifest("m/art", &sha256(&dangling), OCI_MANIFEST, &dangling)
        .await;
    assert_eq!(r.status(), 201, "{:?}", r.text().await);
}

#[tokio::test]
async fn references_are_checked_except_non_distributable_layers() {
    let server = Server::start();
    let c = server.client();
    let config = br#"{"architecture":"amd64","os":"linux"}"#;
    let cd = c.push_blob("m/refs", config).await;
    let missing = sha256(b"never uploaded");
    let body = image_manifest(&cd, config.len(), &[(missing.clone(), 14)]);
    let r = c.put_manifest("m/refs", "v1", OCI_MANIFEST, &body).await;
    assert_eq!(oci_error(r).await, (400, "MANIFEST_BLOB_UNKNOWN".into()));
    let r = get(&c, "m/refs", "v1", OCI_MANIFEST).await;
    assert_eq!(r.status(), 404, "a refused manifest is not stored");
    // A config that is missing.
    let body = image_manifest(&missing, 14, &[]);
    let r = c.put_manifest("m/refs", "v1", OCI_MANIFEST, &body).await;
    assert_eq!(oci_error(r).await, (400, "MANIFEST_BLOB_UNKNOWN".into()));

    for foreign in [
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
        "application/vnd.oci.image.layer.nondistributable.v1.tar",
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    ] {
        let body = serde_json::to_vec(&json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": cd, "size": config.len()},
            "layers": [{"mediaType": foreign, "digest": missing, "size": 1000,
                        "urls": ["https://example.com/layer"]}]
        }))
        .unwrap();
        let r = c
            .put_manifest("m/refs", "foreign", OCI_MANIFEST, &body)
            .await;
        assert_eq!(r.status(), 201, "{foreign}: {:?}", r.text().await);
    }

    // Their sizes are never checked against stored bytes: any size up to
    // i64::MAX is stored, and the image's size (config and layers summed)
    // stops at u64::MAX instead of overflowing.
    let huge = json!({"mediaType": "application/vnd.oci.image.layer.nondistributable.v1.tar",
                      "digest": missing, "size": i64::MAX});
    let body = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": cd, "size": config.len()},
        "layers": [huge, huge, huge]
    }))
    .unwrap();
    let r = c.put_manifest("m/refs", "huge", OCI_MANIFEST, &body).await;
    assert_eq!(r.status(), 201, "{:?}", r.text().await);
    let r = c
        .http
        .get(c.u("/api/v1/images?pattern=m%2Frefs%3Ahuge"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let images: serde_json::Value = r.json().await.unwrap();
    assert_eq!(images[0]["size"], json!(u64::MAX), "{images}");
}

/// A descriptor's size must be the stored blob's or child manifest's: the
/// registry would otherwise keep an image every client refuses to pull.
#[tokio::test]
async fn descriptor_sizes_must_match_what_is_stored() {
    let server = Server::start();
    let c = server.client();
    let config = br#"{"architecture":"amd64","os":"linux"}"#;
    let cd = c.push_blob("m/sizes", config).await;
    let layer = b"seventeen bytes!!";
    let ld = c.push_blob("m/sizes", layer).await;
    for (config_size, layer_size) in [(config.len() + 1, layer.len()), (config.len(), 0)] {
        let body = image_manifest(&cd, config_size, &[(ld.clone(), layer_size)]);
        let r = c.put_manifest("m/sizes", "v1", OCI_MANIFEST, &body).await;
        let (status, code) = oci_error(r).await;
        assert_eq!((status, code.as_str()), (400, "MANIFEST_INVALID"));
        let r = get(&c, "m/sizes", &sha256(&body), OCI_MANIFEST).await;
        assert_eq!(r.status(), 404, "a refused manifest is not stored");
    }
    let r = get(&c, "m/sizes", "v1", OCI_MANIFEST).await;
    assert_eq!(r.status(), 404, "nor tagged");
    let good = image_manifest(&cd, config.len(), &[(ld.clone(), layer.len())]);
    let r = c.put_manifest("m/sizes", "v1", OCI_MANIFEST, &good).await;
    assert_eq!(r.status(), 201, "{:?}", r.text().await);

    let index = |size: usize| {
        serde_json::to_vec(&json!({
            "schemaVersion": 2, "mediaType": OCI_INDEX,
            "manifests": [{"mediaType": OCI_MANIFEST, "digest": sha256(&good), "size": size}]
        }))
        .unwrap()
    };
    let r = c
        .put_manifest("m/sizes", "multi", OCI_INDEX, &index(good.len() - 1))
        .await;
    let r = oci_error(r).await;
    assert_eq!((r.0, r.1.as_str()), (400, "MANIFEST_INVALID"));
    let r = c
        .put_manifest("m/sizes", "multi", OCI_INDEX, &index(good.len()))
        .await;
    assert_eq!(r.status(), 201, "{:?}", r.text().await);
}

#[tokio::test]
async fn bad_manifests_are_refused_with_the_spec_codes() {
    let server = Server::start();
    let c = server.client();
    let r = c
        .put_manifest("m/bad", "v1", OCI_MANIFEST, b"{not json")
        .await;
    assert_eq!(oci_error(r).await, (400, "MANIFEST_INVALID".into()));
    let r = c.put_manifest("m/bad", "v1", OCI_MANIFEST, b"").await;
    assert_eq!(oci_error(r).await.0, 400);
    let r = c
        .put_manifest(
            "m/bad",
            "v1",
            OCI_MANIFEST,
            br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}"#,
        )
        .await;
    assert_eq!(oci_error(r).await, (400, "MANIFEST_INVALID".into()));
    // Media type in the body and in Content-Type disagree.
    let (_, body) = c.push_image("m/bad", "ok", b"l").await;
    let r = c.put_manifest("m/bad", "v2", OCI_INDEX, &body).await;
    assert_eq!(oci_error(r).await, (400, "MANIFEST_INVALID".into()));
    // Digest in the URL that does not match the bytes.
    let r = c
        .put_manifest("m/bad", &sha256(b"other"), OCI_MANIFEST, &body)
        .await;
    assert_eq!(oci_error(r).await, (400, "DIGEST_INVALID".into()));
    // Over 4 MiB.
    let mut huge = b"{\"schemaVersion\":2,\"annotations\":{\"x\":\"".to_vec();
    huge.extend(std::iter::repeat_n(b'a', 4 * 1024 * 1024 + 10));
    huge.extend(b"\"}}");
    let r = c.put_manifest("m/bad", "huge", OCI_MANIFEST, &huge).await;
    let (status, _) = oci_error(r).await;
    assert!(status == 413 || status == 400, "{status}");
    // Far over: the client, sending it all before it reads, still gets the
    // 413 (not a connection reset while it sends).
    let far = vec![b' '; 24 * 1024 * 1024];
    let r = c.put_manifest("m/bad", "far", OCI_MANIFEST, &far).await;
    assert_eq!(oci_error(r).await, (413, "SIZE_INVALID".into()));
    // An invalid tag.
    let r = c
        .put_manifest("m/bad", "-bad-tag", OCI_MANIFEST, &body)
        .await;
    let (status, code) = oci_error(r).await;
    assert_eq!(status, 400);
    assert!(
        code == "MANIFEST_INVALID" || code == "TAG_INVALID",
        "{code}"
    );
}

#[tokio::test]
async fn put_by_digest_with_tag_parameters() {
    let server = Server::start();
    let c = server.client();
    let (_, body) = c.push_image("m/tags", "first", b"layer").await;
    let d = sha256(&body);
    let r = c
        .http
        .put(c.u(&format!("/v2/m/tags/manifests/{d}?tag=a&tag=b")))
        .header("Content-Type", OCI_MANIFEST)
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let tags: Vec<&str> = r
        .headers()
        .get_all("oci-tag")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(tags, ["a", "b"]);
    for t in ["a", "b"] {
        let r = get(&c, "m/tags", t, OCI_MANIFEST).await;
        assert_eq!(r.headers()["docker-content-digest"], d.as_str());
    }
}

/// A manifest an index lists cannot be deleted while the index stays (the
/// index could not be pulled, and gc would free the child's layers); once
/// the index is gone it can. A child already missing its revision (a store
/// from before) still keeps its layers through the index.
#[tokio::test]
async fn a_child_of_an_index_goes_after_the_index() {
    let server = Server::start();
    let c = server.client();
    let layer = b"child layer".to_vec();
    let (child, child_body) = c.push_image("m/kids", "child", &layer).await;
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": child, "size": child_body.len()}]
    }))
    .unwrap();
    let r = c.put_manifest("m/kids", "multi", OCI_INDEX, &index).await;
    assert_eq!(r.status(), 201);
    let delete = |reference: String| {
        let c = c.clone();
        async move {
            c.http
                .delete(c.u(&format!("/v2/m/kids/manifests/{reference}")))
                .send()
                .await
                .unwrap()
        }
    };
    let r = delete(child.clone()).await;
    assert_eq!(oci_error(r).await, (409, "DENIED".into()));
    assert_eq!(get(&c, "m/kids", &child, OCI_MANIFEST).await.status(), 200);

    // The same over the CLI's path (admin API), dry run or not.
    for dry_run in [true, false] {
        let r = c
            .http
            .post(c.u("/api/v1/delete"))
            .json(&json!({"reference": format!("m/kids@{child}"), "dry_run": dry_run}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 409);
    }

    // A child whose revision went by hand: gc keeps its layers.
    let hex = child.trim_start_matches("sha256:");
    let link = server.data.join(format!(
        "repositories/m/kids/_manifests/revisions/sha256/{hex}"
    ));
    std::fs::remove_file(&link).unwrap();
    let r = c.gc(0).await;
    assert_eq!(r.status(), 200);
    let r = c
        .http
        .get(c.u(&format!("/v2/m/kids/blobs/{}", sha256(&layer))))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the child's layer was collected");

    // The index first, then the child.
    std::fs::create_dir_all(link.parent().unwrap()).unwrap();
    std::fs::write(&link, OCI_MANIFEST).unwrap();
    let idx = sha256(&index);
    assert_eq!(delete(idx).await.status(), 202);
    assert_eq!(delete(child).await.status(), 202);
}

#[tokio::test]
async fn delete_by_tag_and_by_digest() {
    let server = Server::start();
    let c = server.client();
    let (d, _) = c.push_image("m/del", "v1", b"layer").await;
    let r = c
        .put_manifest(
            "m/del",
            "v2",
            OCI_MANIFEST,
            &get(&c, "m/del", "v1", OCI_MANIFEST)
                .await
                .bytes()
                .await
                .unwrap(),
        )
        .await;
    assert_eq!(r.status(), 201);

    // By tag: only that tag goes.
    let r = c
        .http
        .delete(c.u("/v2/m/del/manifests/v1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(get(&c, "m/del", "v1", OCI_MANIFEST).await.status(), 404);
    assert_eq!(get(&c, "m/del", "v2", OCI_MANIFEST).await.status(), 200);
    // By digest: the manifest and every tag on it.
    let r = c
        .http
        .delete(c.u(&format!("/v2/m/del/manifests/{d}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let r = get(&c, "m/del", &d, OCI_MANIFEST).await;
    assert_eq!(oci_error(r).await, (404, "MANIFEST_UNKNOWN".into()));
    assert_eq!(get(&c, "m/del", "v2", OCI_MANIFEST).await.status(), 404);
    // Deleting again: 404.
    let r = c
        .http
        .delete(c.u(&format!("/v2/m/del/manifests/{d}")))
        .send()
        .await
        .unwrap();
    assert_eq!(oci_error(r).await, (404, "MANIFEST_UNKNOWN".into()));
    // Blobs can be unlinked from a repository too.
    let bd = c.push_blob("m/del", b"a blob").await;
    let r = c
        .http
        .delete(c.u(&format!("/v2/m/del/blobs/{bd}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let r = c
        .http
        .get(c.u(&format!("/v2/m/del/blobs/{bd}")))
        .send()
        .await
        .unwrap();
    assert_eq!(oci_error(r).await, (404, "BLOB_UNKNOWN".into()));
}

/// Shapes the OCI conformance suite pushes that the kinds above do not: an
/// empty index, an index addressed by its sha512 digest, and an image manifest
/// just under the 4 MiB limit whose config descriptor embeds its bytes in
/// `data` and whose body carries a field no spec defines. Each is stored and
/// served byte for byte.
#[tokio::test]
async fn empty_sha512_and_near_limit_manifests() {
    let server = Server::start();
    let c = server.client();
    let empty = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []
    }))
    .unwrap();
    round_trip(&c, "m/shapes", "empty-index", OCI_INDEX, &empty).await;

    let d512 = sha512(&empty);
    let r = c.put_manifest("m/shapes", &d512, OCI_INDEX, &empty).await;
    assert_eq!(r.status(), 201, "{:?}", r.text().await);
    assert_eq!(r.headers()["docker-content-digest"], d512.as_str());
    assert_eq!(
        r.headers()["location"].to_str().unwrap(),
        format!("/v2/m/shapes/manifests/{d512}")
    );
    let r = get(&c, "m/shapes", &d512, OCI_INDEX).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["docker-content-digest"], d512.as_str());
    assert_eq!(r.bytes().await.unwrap(), empty);

    let config = br#"{"architecture":"amd64","os":"linux"}"#;
    let cd = c.push_blob("m/shapes", config).await;
    let body = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": cd, "size": config.len(),
                   "data": STANDARD.encode(config)},
        "layers": [],
        "newUnspecifiedField": {"kept": [1, 2, null]},
        "annotations": {"padding": "a".repeat(4 * 1024 * 1024 - 2_000)},
    }))
    .unwrap();
    assert!((4 * 1024 * 1024 - 4_096..=4 * 1024 * 1024).contains(&body.len()));
    round_trip(&c, "m/shapes", "near-limit", OCI_MANIFEST, &body).await;
}

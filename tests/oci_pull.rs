//! OCI distribution spec, pull: base endpoint, manifests and blobs by tag and
//! digest, HEAD, ranged blob reads, sha512, and the errors of each.

mod common;

use common::{OCI_MANIFEST, Server, oci_error, sha256, sha512};

#[tokio::test]
async fn base_endpoint_announces_the_api_version() {
    let server = Server::start();
    let c = server.client();
    let r = c.http.get(c.u("/v2/")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["docker-distribution-api-version"],
        "registry/2.0"
    );
    let r = c.http.head(c.u("/v2/")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // Also without the trailing slash, as some clients ask.
    let r = c.http.get(c.u("/v2")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn manifest_get_and_head_by_tag_and_digest() {
    let server = Server::start();
    let c = server.client();
    let (digest, manifest) = c.push_image("pull/app", "v1", b"layer").await;
    for reference in ["v1", digest.as_str()] {
        let url = c.u(&format!("/v2/pull/app/manifests/{reference}"));
        let r = c
            .http
            .get(&url)
            .header("Accept", OCI_MANIFEST)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "GET {reference}");
        assert_eq!(r.headers()["docker-content-digest"], digest.as_str());
        assert_eq!(r.headers()["content-type"], OCI_MANIFEST);
        assert_eq!(
            r.headers()["content-length"],
            manifest.len().to_string().as_str()
        );
        assert_eq!(r.bytes().await.unwrap(), manifest);

        let r = c
            .http
            .head(&url)
            .header("Accept", OCI_MANIFEST)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "HEAD {reference}");
        assert_eq!(r.headers()["docker-content-digest"], digest.as_str());
        assert_eq!(r.headers()["content-type"], OCI_MANIFEST);
        assert_eq!(
            r.headers()["content-length"],
            manifest.len().to_string().as_str()
        );
        assert!(r.bytes().await.unwrap().is_empty(), "HEAD has no body");
    }
}

#[tokio::test]
async fn blob_get_head_and_ranges() {
    let server = Server::start();
    let c = server.client();
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let d = c.push_blob("pull/blob", &data).await;
    let url = c.u(&format!("/v2/pull/blob/blobs/{d}"));

    let r = c.http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["docker-content-digest"], d.as_str());
    assert_eq!(r.headers()["content-length"], "100000");
    assert_eq!(sha256(&r.bytes().await.unwrap()), d);

    let r = c.http.head(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-length"], "100000");
    assert_eq!(r.headers()["docker-content-digest"], d.as_str());

    for (range, start, end) in [
        ("bytes=0-9", 0, 9),
        ("bytes=99990-", 99990, 99999),
        ("bytes=500-1499", 500, 1499),
        ("bytes=-10", 99990, 99999),
    ] {
        let r = c
            .http
            .get(&url)
            .header("Range", range)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 206, "{range}");
        assert_eq!(
            r.headers()["content-range"],
            format!("bytes {start}-{end}/100000").as_str(),
            "{range}"
        );
        assert_eq!(r.bytes().await.unwrap(), &data[start..=end], "{range}");
    }
    let r = c
        .http
        .get(&url)
        .header("Range", "bytes=100000-100010")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 416);
    assert_eq!(r.headers()["content-range"], "bytes */100000");
}

/// If-None-Match with the ETag a GET gave: 304 and no body, for blobs (also
/// over a Range) and manifests; a tag moved to another manifest answers 200
/// with the new one.
#[tokio::test]
async fn conditional_gets_answer_not_modified() {
    let server = Server::start();
    let c = server.client();
    let d = c.push_blob("pull/cond", b"cached bytes").await;
    let blob = c.u(&format!("/v2/pull/cond/blobs/{d}"));
    let etag = format!("\"{d}\"");
    for (inm, range) in [
        (etag.clone(), None),
        (format!("W/{etag}"), None),
        (format!("\"other\", {etag}"), None),
        ("*".to_string(), None),
        (etag.clone(), Some("bytes=0-3")),
    ] {
        for head in [false, true] {
            let mut req = if head {
                c.http.head(&blob)
            } else {
                c.http.get(&blob)
            };
            req = req.header("If-None-Match", &inm);
            if let Some(r) = range {
                req = req.header("Range", r);
            }
            let r = req.send().await.unwrap();
            assert_eq!(r.status(), 304, "{inm} {range:?} head={head}");
            assert_eq!(r.headers()["etag"], etag.as_str());
            assert_eq!(r.headers()["docker-content-digest"], d.as_str());
            assert!(r.bytes().await.unwrap().is_empty());
        }
    }
    let r = c
        .http
        .get(&blob)
        .header("If-None-Match", "\"sha256:0000\"")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap(), &b"cached bytes"[..]);
    // A blob that is not there is still 404, whatever the client holds.
    let missing = format!("sha256:{}", "0".repeat(64));
    let r = c
        .http
        .get(c.u(&format!("/v2/pull/cond/blobs/{missing}")))
        .header("If-None-Match", "*")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    let (m1, _) = c.push_image("pull/cond", "v1", b"one").await;
    let tag = c.u("/v2/pull/cond/manifests/v1");
    let asks = |inm: String| {
        c.http
            .get(&tag)
            .header("Accept", OCI_MANIFEST)
            .header("If-None-Match", inm)
    };
    let r = asks(format!("\"{m1}\"")).send().await.unwrap();
    assert_eq!(r.status(), 304);
    assert_eq!(r.headers()["docker-content-digest"], m1.as_str());
    assert!(r.bytes().await.unwrap().is_empty());
    let r = c
        .http
        .head(&tag)
        .header("If-None-Match", format!("\"{m1}\""))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    let (m2, manifest2) = c.push_image("pull/cond", "v1", b"two").await;
    assert_ne!(m1, m2);
    let r = asks(format!("\"{m1}\"")).send().await.unwrap();
    assert_eq!(r.status(), 200, "the tag moved");
    assert_eq!(r.headers()["etag"], format!("\"{m2}\"").as_str());
    assert_eq!(r.bytes().await.unwrap(), manifest2);
}

#[tokio::test]
async fn sha512_blobs() {
    let server = Server::start();
    let c = server.client();
    let data = b"a blob addressed by sha512";
    let d = sha512(data);
    let r = c
        .http
        .post(c.u(&format!("/v2/pull/512/blobs/uploads/?digest={d}")))
        .body(data.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["docker-content-digest"], d.as_str());
    let r = c
        .http
        .get(c.u(&format!("/v2/pull/512/blobs/{d}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().as_ref(), data);
}

#[tokio::test]
async fn unknown_things_are_404_with_the_spec_codes() {
    let server = Server::start();
    let c = server.client();
    c.push_image("pull/known", "v1", b"x").await;
    let zero = format!("sha256:{}", "0".repeat(64));

    let r = c
        .http
        .get(c.u(&format!("/v2/pull/known/blobs/{zero}")))
        .send()
        .await
        .unwrap();
    assert_eq!(oci_error(r).await, (404, "BLOB_UNKNOWN".into()));
    let r = c
        .http
        .head(c.u(&format!("/v2/pull/known/blobs/{zero}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = c
        .http
        .get(c.u("/v2/pull/known/manifests/nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(oci_error(r).await, (404, "MANIFEST_UNKNOWN".into()));
    let r = c
        .http
        .get(c.u(&format!("/v2/pull/known/manifests/{zero}")))
        .send()
        .await
        .unwrap();
    assert_eq!(oci_error(r).await, (404, "MANIFEST_UNKNOWN".into()));
    let r = c
        .http
        .head(c.u("/v2/pull/known/manifests/nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    // An unknown repository: NAME_UNKNOWN or the object's own code.
    let r = c
        .http
        .get(c.u("/v2/pull/never/manifests/v1"))
        .send()
        .await
        .unwrap();
    let (status, code) = oci_error(r).await;
    assert_eq!(status, 404);
    assert!(
        code == "NAME_UNKNOWN" || code == "MANIFEST_UNKNOWN",
        "{code}"
    );
    let r = c
        .http
        .get(c.u("/v2/pull/never/tags/list"))
        .send()
        .await
        .unwrap();
    assert_eq!(oci_error(r).await, (404, "NAME_UNKNOWN".into()));
    // A blob pushed to one repository is not readable through another.
    let d = c.push_blob("pull/a", b"only in a").await;
    let r = c
        .http
        .get(c.u(&format!("/v2/pull/known/blobs/{d}")))
        .send()
        .await
        .unwrap();
    assert_eq!(oci_error(r).await, (404, "BLOB_UNKNOWN".into()));
}

mod common;

use common::*;

#[tokio::test]
async fn push_and_pull_an_image() {
    let s = Server::start();
    let c = s.client();
    let (digest, manifest) = c.push_image("smoke/app", "v1", b"layer bytes").await;
    let r = c
        .http
        .get(c.u("/v2/smoke/app/manifests/v1"))
        .header("Accept", OCI_MANIFEST)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["docker-content-digest"], digest.as_str());
    assert_eq!(r.headers()["content-type"], OCI_MANIFEST);
    assert_eq!(r.bytes().await.unwrap().as_ref(), manifest.as_slice());
}

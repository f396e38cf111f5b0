//! NORA_PUBLIC_URL turns the Location headers nora writes into absolute links.

mod common;

use common::*;

#[tokio::test]
async fn locations_are_absolute_on_the_public_url() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_on(
        &dir.path().join("data"),
        &[("NORA_PUBLIC_URL", "https://registry.example.com/")],
    );
    let c = s.client();
    let r = c
        .http
        .post(c.u("/v2/p/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let loc = r.headers()["location"].to_str().unwrap();
    assert!(
        loc.starts_with("https://registry.example.com/v2/p/blobs/uploads/"),
        "{loc}"
    );

    let plain = Server::start();
    let c = plain.client();
    let r = c
        .http
        .post(c.u("/v2/p/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    assert!(
        r.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with("/v2/p/blobs/uploads/")
    );
}

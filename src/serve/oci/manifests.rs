//! Manifests (GET/HEAD/PUT/DELETE by tag or digest) and the referrers API.

use http::{Method, StatusCode};
use warp::reply::Response;

use super::response::{CONTENT_DIGEST, append, empty, none_match, not_modified, set, with_body};
use super::{Request, read_limited};
use crate::registry::error::{Code, RegistryError, Result};
use crate::registry::manifest::{MAX_MANIFEST_SIZE, OCI_INDEX};
use crate::registry::manifests::Ref;
use crate::registry::{Registry, parse_digest};

pub async fn get(reg: &Registry, name: &str, reference: &str, req: &Request) -> Result<Response> {
    let r =
        Ref::parse(reference).map_err(|e| RegistryError::new(Code::ManifestUnknown, e.message))?;
    let m = reg.manifest_get(name, &r).await?;
    let digest = m.digest.to_string();
    let etag = format!("\"{digest}\"");
    // A client polling a tag learns "unchanged" without the body.
    if none_match(req.header("if-none-match"), &etag) {
        return Ok(not_modified(&digest, &etag));
    }
    let mut resp = if req.method == Method::HEAD {
        let mut r = empty(StatusCode::OK);
        set(&mut r, "Content-Length", &m.body.len().to_string());
        set(&mut r, "Content-Type", &m.media_type);
        r
    } else {
        with_body(StatusCode::OK, &m.media_type, m.body)
    };
    set(&mut resp, CONTENT_DIGEST, &digest);
    set(&mut resp, "ETag", &etag);
    Ok(resp)
}

pub async fn put(reg: &Registry, name: &str, reference: &str, req: Request) -> Result<Response> {
    let r = Ref::parse(reference)?;
    let extra_tags = req.params("tag");
    if !extra_tags.is_empty() && !matches!(r, Ref::Digest(_)) {
        return Err(RegistryError::new(
            Code::ManifestInvalid,
            "?tag= is only accepted when pushing by digest",
        ));
    }
    let content_type = req.header("content-type").map(str::to_string);
    let body = read_limited(req.into_body(), MAX_MANIFEST_SIZE)
        .await
        .map_err(|e| {
            RegistryError::new(Code::ManifestInvalid, format!("reading the manifest: {e}"))
        })?
        .ok_or_else(|| RegistryError::new(Code::TooLarge, "manifest is larger than 4 MiB"))?;
    let pushed = reg
        .manifest_put(name, &r, content_type.as_deref(), body, &extra_tags)
        .await?;
    let digest = pushed.digest.to_string();
    let mut resp = empty(StatusCode::CREATED);
    set(
        &mut resp,
        "Location",
        &format!("/v2/{name}/manifests/{digest}"),
    );
    set(&mut resp, CONTENT_DIGEST, &digest);
    if let Some(subject) = pushed.subject {
        set(&mut resp, "OCI-Subject", &subject.to_string());
    }
    if !extra_tags.is_empty() {
        for t in &pushed.tags {
            append(&mut resp, "OCI-Tag", t);
        }
    }
    Ok(resp)
}

pub async fn delete(reg: &Registry, name: &str, reference: &str) -> Result<Response> {
    let r = Ref::parse(reference)?;
    reg.manifest_delete(name, &r).await?;
    Ok(empty(StatusCode::ACCEPTED))
}

pub async fn referrers(
    reg: &Registry,
    name: &str,
    digest: &str,
    req: &Request,
) -> Result<Response> {
    let subject = parse_digest(digest)?;
    let filter = req.param("artifactType").filter(|s| !s.is_empty());
    let manifests = reg.referrers(name, &subject, filter).await?;
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": manifests,
    });
    let body = serde_json::to_vec(&index).unwrap_or_default();
    let mut resp = with_body(StatusCode::OK, OCI_INDEX, body.into());
    if filter.is_some() {
        set(&mut resp, "OCI-Filters-Applied", "artifactType");
    }
    Ok(resp)
}

//! Blob uploads: POST (session, monolithic, mount), PATCH, PUT, GET, DELETE.

use http::StatusCode;
use warp::reply::Response;

use super::Request;
use super::response::{CONTENT_DIGEST, UPLOAD_UUID, empty, set};
use crate::registry::digest::Algorithm;
use crate::registry::error::{Code, RegistryError, Result};
use crate::registry::{Registry, parse_digest};

fn upload_location(name: &str, id: &str) -> String {
    format!("/v2/{name}/blobs/uploads/{id}")
}

/// 202 with where to send the next chunk and what has arrived so far.
fn in_progress(status: StatusCode, name: &str, id: &str, offset: u64) -> Response {
    let mut r = empty(status);
    set(&mut r, "Location", &upload_location(name, id));
    set(&mut r, UPLOAD_UUID, id);
    set(&mut r, "Range", &format!("0-{}", offset.saturating_sub(1)));
    r
}

fn created(name: &str, digest: &str) -> Response {
    let mut r = empty(StatusCode::CREATED);
    set(&mut r, "Location", &format!("/v2/{name}/blobs/{digest}"));
    set(&mut r, CONTENT_DIGEST, digest);
    r
}

/// `Content-Range: <start>-<end>` (a `bytes ` / `bytes=` prefix and a
/// `/<total>` suffix are tolerated, as some clients send them).
fn content_range(req: &Request) -> Result<Option<(u64, u64)>> {
    let Some(raw) = req.headers.get("content-range") else {
        return Ok(None);
    };
    // Present but not text: refused like any malformed value, not taken for
    // a PATCH without a Content-Range.
    let raw = raw.to_str().unwrap_or("\u{fffd}");
    let bad = || {
        RegistryError::new(
            Code::BlobUploadInvalid,
            format!("invalid Content-Range {raw:?}"),
        )
    };
    let v = raw.trim();
    let v = v
        .strip_prefix("bytes=")
        .or_else(|| v.strip_prefix("bytes "))
        .unwrap_or(v);
    let v = v.split('/').next().unwrap_or(v);
    let (a, b) = v.split_once('-').ok_or_else(bad)?;
    let start = a.trim().parse::<u64>().map_err(|_| bad())?;
    let end = b.trim().parse::<u64>().map_err(|_| bad())?;
    if end < start {
        return Err(bad());
    }
    Ok(Some((start, end)))
}

pub async fn start(reg: &Registry, name: &str, req: Request) -> Result<Response> {
    if let Some(mount) = req.param("mount") {
        let d = parse_digest(mount)?;
        // Without `from` (the spec's "MAY treat from as optional"), any copy
        // the registry holds is mounted; dispatch strips such a mount when
        // authentication is on, as it would let a digest stand in for rights.
        if reg.blob_mount(name, req.param("from"), &d).await? {
            return Ok(created(name, &d.to_string()));
        }
        // Not mountable: fall back to an ordinary session, as the spec asks.
        let id = reg.upload_start(name).await?;
        return Ok(in_progress(StatusCode::ACCEPTED, name, &id, 0));
    }
    if let Some(alg) = req.param("digest-algorithm")
        && Algorithm::parse(alg).is_none()
    {
        return Err(RegistryError::new(
            Code::DigestInvalid,
            format!("unsupported digest algorithm {alg:?}"),
        ));
    }
    let digest = req.param("digest").map(parse_digest).transpose()?;
    let id = reg.upload_start(name).await?;
    match digest {
        // Monolithic upload: the whole blob in this request.
        Some(d) => {
            let done = async {
                reg.upload_append(name, &id, None, req.into_body()).await?;
                reg.upload_finish(name, &id, &d).await
            };
            if let Err(e) = done.await {
                // The client never learnt this session's id, so nothing can
                // resume it: remove it now rather than when it expires.
                // (A digest mismatch has removed it already.)
                match reg.upload_cancel(name, &id).await {
                    Err(c) if c.code != Code::BlobUploadUnknown => {
                        tracing::warn!(error = %c, upload = %id, "removing a failed upload")
                    }
                    _ => {}
                }
                return Err(e);
            }
            Ok(created(name, &d.to_string()))
        }
        None => Ok(in_progress(StatusCode::ACCEPTED, name, &id, 0)),
    }
}

pub async fn patch(reg: &Registry, name: &str, id: &str, req: Request) -> Result<Response> {
    let range = content_range(&req)?;
    let offset = reg.upload_append(name, id, range, req.into_body()).await?;
    Ok(in_progress(StatusCode::ACCEPTED, name, id, offset))
}

pub async fn put(reg: &Registry, name: &str, id: &str, req: Request) -> Result<Response> {
    let digest = req
        .param("digest")
        .ok_or_else(|| {
            RegistryError::new(
                Code::DigestInvalid,
                "the digest query parameter is required",
            )
        })
        .and_then(parse_digest)?;
    let range = content_range(&req)?;
    reg.upload_append(name, id, range, req.into_body()).await?;
    reg.upload_finish(name, id, &digest).await?;
    Ok(created(name, &digest.to_string()))
}

pub async fn status(reg: &Registry, name: &str, id: &str) -> Result<Response> {
    let offset = reg.upload_status(name, id).await?;
    Ok(in_progress(StatusCode::NO_CONTENT, name, id, offset))
}

pub async fn cancel(reg: &Registry, name: &str, id: &str) -> Result<Response> {
    reg.upload_cancel(name, id).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

//! Building OCI responses: errors in the spec's JSON form, and the headers
//! every answer carries.

use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};
use warp::reply::{Reply, Response};

use crate::registry::error::{Code, RegistryError};

pub const API_VERSION: &str = "Docker-Distribution-API-Version";
pub const CONTENT_DIGEST: &str = "Docker-Content-Digest";
pub const UPLOAD_UUID: &str = "Docker-Upload-UUID";

/// A response with `status`, a body and a content type.
pub fn with_body(status: StatusCode, content_type: &str, body: Bytes) -> Response {
    let len = body.len();
    let mut r = Response::new(body.into());
    *r.status_mut() = status;
    set(&mut r, header::CONTENT_TYPE.as_str(), content_type);
    set(&mut r, header::CONTENT_LENGTH.as_str(), &len.to_string());
    r
}

pub fn empty(status: StatusCode) -> Response {
    let mut r = Response::new(Bytes::new().into());
    *r.status_mut() = status;
    set(&mut r, header::CONTENT_LENGTH.as_str(), "0");
    r
}

/// Whether an `If-None-Match` header names `etag` (quoted, as sent in
/// `ETag`): the client holds these bytes already. The comparison is the weak
/// one RFC 9110 asks of this header; `*` matches anything that exists.
pub fn none_match(header: Option<&str>, etag: &str) -> bool {
    header.is_some_and(|h| {
        h.split(',')
            .map(str::trim)
            .any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t) == etag)
    })
}

/// 304: the client's copy of `digest` (sent as `etag`) is current. No body
/// and no Content-Length (it would describe the representation, which is not
/// sent), but the validators a 200 carries.
pub fn not_modified(digest: &str, etag: &str) -> Response {
    let mut r = Response::new(Bytes::new().into());
    *r.status_mut() = StatusCode::NOT_MODIFIED;
    set(&mut r, CONTENT_DIGEST, digest);
    set(&mut r, "ETag", etag);
    r
}

pub fn json(status: StatusCode, value: &serde_json::Value) -> Response {
    let body = serde_json::to_vec(value).unwrap_or_default();
    with_body(status, "application/json", body.into())
}

/// Sets a header; values that cannot be a header are dropped rather than
/// failing the request (they only come from our own formatting).
pub fn set(r: &mut Response, name: &str, value: &str) {
    if let (Ok(n), Ok(v)) = (
        header::HeaderName::from_bytes(name.as_bytes()),
        HeaderValue::from_str(value),
    ) {
        r.headers_mut().insert(n, v);
    }
}

pub fn append(r: &mut Response, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        r.headers_mut().append(name, v);
    }
}

/// The spec's error body: `{"errors":[{"code","message","detail"}]}`.
pub fn error(e: &RegistryError) -> Response {
    let mut entry = serde_json::json!({ "code": e.code.as_str(), "message": e.message });
    if let Some(d) = &e.detail {
        entry["detail"] = d.clone();
    }
    let mut r = json(e.code.status(), &serde_json::json!({ "errors": [entry] }));
    if e.code == Code::TooManyRequests {
        set(&mut r, "Retry-After", "1");
    }
    r
}

pub fn error_of(code: Code, status: StatusCode, message: &str) -> Response {
    let mut r = error(&RegistryError::new(code, message));
    *r.status_mut() = status;
    r
}

/// Turns a handler result into a response.
pub fn finish(result: Result<Response, RegistryError>) -> Response {
    match result {
        Ok(r) => r,
        Err(e) => error(&e),
    }
}

/// Streams `body` (of `len` bytes) as the response.
pub fn stream(status: StatusCode, len: u64, body: crate::storage::ByteStream) -> Response {
    // warp wants response bodies `Sync`; a stream is only ever polled
    // through `&mut`, which is what SyncStream relies on.
    let mut r = warp::reply::stream(sync_wrapper::SyncStream::new(body)).into_response();
    *r.status_mut() = status;
    set(&mut r, header::CONTENT_LENGTH.as_str(), &len.to_string());
    r
}

#[cfg(test)]
mod tests {
    use super::none_match;

    #[test]
    fn if_none_match_forms() {
        let etag = "\"sha256:ab\"";
        assert!(none_match(Some("\"sha256:ab\""), etag));
        assert!(none_match(Some("W/\"sha256:ab\""), etag));
        assert!(none_match(Some("\"x\", \"sha256:ab\""), etag));
        assert!(none_match(Some("*"), etag));
        assert!(!none_match(None, etag));
        assert!(!none_match(Some(""), etag));
        assert!(
            !none_match(Some("sha256:ab"), etag),
            "an entity tag is quoted"
        );
        assert!(!none_match(Some("\"sha256:abc\""), etag));
    }
}

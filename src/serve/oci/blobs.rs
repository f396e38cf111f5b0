//! GET/HEAD/DELETE `/v2/<name>/blobs/<digest>`, with `Range` support.

use http::{Method, StatusCode};
use warp::reply::Response;

use super::Request;
use super::response::{CONTENT_DIGEST, empty, error_of, none_match, not_modified, set, stream};
use crate::registry::error::{Code, Result};
use crate::registry::{Registry, parse_digest};
use crate::storage::ByteRange;

/// A parsed `Range` header against an object of `size` bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum RangeRequest {
    /// No header, or a form we serve whole (several ranges).
    Whole,
    Part(ByteRange),
    Unsatisfiable,
}

/// A byte position of a `Range` header: digits only; one too large for a u64
/// is still well-formed (RFC 9110 sets no limit) and means "past the end".
fn position(digits: &str) -> Option<u64> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(digits.parse().unwrap_or(u64::MAX))
}

pub fn parse_range(header: Option<&str>, size: u64) -> RangeRequest {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return RangeRequest::Whole;
    };
    if spec.contains(',') {
        return RangeRequest::Whole;
    }
    let Some((a, b)) = spec.split_once('-') else {
        return RangeRequest::Unsatisfiable;
    };
    let (a, b) = (a.trim(), b.trim());
    let range = if a.is_empty() {
        // Suffix form: the last N bytes.
        match position(b) {
            Some(n) if n > 0 && size > 0 => Some((size.saturating_sub(n), size - 1)),
            _ => None,
        }
    } else {
        match (position(a), b) {
            (Some(start), "") if start < size => Some((start, size - 1)),
            (Some(start), b) => match position(b) {
                Some(end) if start <= end && start < size => Some((start, end.min(size - 1))),
                _ => None,
            },
            _ => None,
        }
    };
    match range {
        Some((start, end)) => RangeRequest::Part(ByteRange { start, end }),
        None => RangeRequest::Unsatisfiable,
    }
}

pub async fn get(reg: &Registry, name: &str, digest: &str, req: &Request) -> Result<Response> {
    let d = parse_digest(digest)?;
    let size = reg.blob_size(name, &d).await?;
    let etag = format!("\"{d}\"");
    // A cache that holds the blob revalidates it for free (before Range:
    // RFC 9110 evaluates If-None-Match first).
    if none_match(req.header("if-none-match"), &etag) {
        let mut r = not_modified(&d.to_string(), &etag);
        set(&mut r, "Cache-Control", "max-age=31536000");
        return Ok(r);
    }
    let range = match parse_range(req.header("range"), size) {
        RangeRequest::Whole => None,
        RangeRequest::Part(r) => Some(r),
        RangeRequest::Unsatisfiable => {
            let mut r = error_of(
                Code::RangeInvalid,
                StatusCode::RANGE_NOT_SATISFIABLE,
                "range not satisfiable",
            );
            set(&mut r, "Content-Range", &format!("bytes */{size}"));
            return Ok(r);
        }
    };
    let (status, len) = match range {
        Some(r) => (StatusCode::PARTIAL_CONTENT, r.len()),
        None => (StatusCode::OK, size),
    };
    let mut resp = if req.method == Method::HEAD {
        let mut r = empty(status);
        set(&mut r, "Content-Length", &len.to_string());
        r
    } else {
        let obj = reg.blob_get(name, &d, range).await?;
        stream(status, len, obj.body)
    };
    set(&mut resp, "Content-Type", "application/octet-stream");
    set(&mut resp, CONTENT_DIGEST, &d.to_string());
    set(&mut resp, "ETag", &etag);
    set(&mut resp, "Accept-Ranges", "bytes");
    set(&mut resp, "Cache-Control", "max-age=31536000");
    if let Some(r) = range {
        set(
            &mut resp,
            "Content-Range",
            &format!("bytes {}-{}/{size}", r.start, r.end),
        );
    }
    Ok(resp)
}

pub async fn delete(reg: &Registry, name: &str, digest: &str) -> Result<Response> {
    let d = parse_digest(digest)?;
    reg.blob_delete(name, &d).await?;
    Ok(empty(StatusCode::ACCEPTED))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(start: u64, end: u64) -> RangeRequest {
        RangeRequest::Part(ByteRange { start, end })
    }

    #[test]
    fn ranges() {
        assert_eq!(parse_range(None, 10), RangeRequest::Whole);
        assert_eq!(parse_range(Some("bytes=0-3"), 10), part(0, 3));
        assert_eq!(parse_range(Some("bytes=5-"), 10), part(5, 9));
        assert_eq!(parse_range(Some("bytes=-4"), 10), part(6, 9));
        assert_eq!(parse_range(Some("bytes=8-100"), 10), part(8, 9));
        assert_eq!(
            parse_range(Some("bytes=10-12"), 10),
            RangeRequest::Unsatisfiable
        );
        assert_eq!(
            parse_range(Some("bytes=4-2"), 10),
            RangeRequest::Unsatisfiable
        );
        assert_eq!(
            parse_range(Some("bytes=x-2"), 10),
            RangeRequest::Unsatisfiable
        );
        assert_eq!(parse_range(Some("bytes=0-1,4-5"), 10), RangeRequest::Whole);
        // Positions past what a u64 holds are well-formed: past the end.
        assert_eq!(
            parse_range(Some("bytes=0-18446744073709551616"), 10),
            part(0, 9)
        );
        assert_eq!(
            parse_range(Some("bytes=-99999999999999999999999"), 10),
            part(0, 9)
        );
        assert_eq!(
            parse_range(Some("bytes=18446744073709551616-"), 10),
            RangeRequest::Unsatisfiable
        );
        assert_eq!(
            parse_range(Some("bytes=+1-2"), 10),
            RangeRequest::Unsatisfiable
        );
        assert_eq!(parse_range(Some("items=0-1"), 10), RangeRequest::Whole);
    }
}

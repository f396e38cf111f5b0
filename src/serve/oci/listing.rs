//! `GET /v2/<name>/tags/list` and `GET /v2/_catalog`, paginated with `n`,
//! `last` and a `Link` header.

use std::num::IntErrorKind;

use http::StatusCode;
use warp::reply::Response;

use super::Request;
use super::response::{json, set};
use crate::registry::Registry;
use crate::registry::error::{Code, RegistryError, Result};
use crate::registry::listing::Page;

fn page_params(req: &Request) -> Result<(Option<usize>, Option<String>)> {
    let n = match req.param("n") {
        Some(v) => Some(match v.parse::<usize>() {
            Ok(n) => n,
            // More than any store holds: all of them, as a script asking
            // for "everything" with a huge n means.
            Err(e) if *e.kind() == IntErrorKind::PosOverflow => usize::MAX,
            Err(_) => {
                return Err(RegistryError::new(
                    Code::PaginationInvalid,
                    format!("n must be a non-negative integer, not {v:?}"),
                ));
            }
        }),
        None => None,
    };
    Ok((n, req.param("last").map(str::to_string)))
}

fn with_link(mut resp: Response, path: &str, n: Option<usize>, page: &Page) -> Response {
    if let (true, Some(n), Some(last)) = (page.more, n, page.items.last()) {
        let last: String = form_urlencoded::byte_serialize(last.as_bytes()).collect();
        set(
            &mut resp,
            "Link",
            &format!("<{path}?n={n}&last={last}>; rel=\"next\""),
        );
    }
    resp
}

pub async fn tags(reg: &Registry, name: &str, req: &Request) -> Result<Response> {
    let (n, last) = page_params(req)?;
    let page = reg.tags_page(name, n, last.as_deref()).await?;
    let resp = json(
        StatusCode::OK,
        &serde_json::json!({ "name": name, "tags": page.items }),
    );
    Ok(with_link(resp, &format!("/v2/{name}/tags/list"), n, &page))
}

pub async fn catalog(reg: &Registry, req: &Request) -> Result<Response> {
    let (n, last) = page_params(req)?;
    let page = reg.catalog_page(n, last.as_deref()).await?;
    let resp = json(
        StatusCode::OK,
        &serde_json::json!({ "repositories": page.items }),
    );
    Ok(with_link(resp, "/v2/_catalog", n, &page))
}

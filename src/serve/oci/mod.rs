//! The OCI Distribution API under `/v2/`. Paths are parsed from the end,
//! because repository names have any number of components (and a component
//! may itself be called `manifests` or `blobs`).

mod blobs;
mod listing;
mod manifests;
pub mod response;
mod uploads;

use std::sync::Arc;

use bytes::Bytes;
use futures_util::TryStreamExt;
use http::{HeaderMap, Method, StatusCode};
use warp::Filter;
use warp::reply::Response;

use super::auth::{self, Need};
use super::origin::Origin;
use crate::auth::Auth;
use crate::auth::perms::Action;
use crate::registry::error::Code;
use crate::registry::{Registry, check_name};
use crate::storage::ByteStream;
use response::{API_VERSION, error_of, finish, json, set};

/// One request to `/v2/...`, as the handlers see it.
pub struct Request {
    pub method: Method,
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
    /// Wrapped so that `&Request` may be held across awaits; take it with
    /// `into_body`.
    body: sync_wrapper::SyncWrapper<ByteStream>,
}

impl Request {
    pub fn into_body(self) -> ByteStream {
        self.body.into_inner()
    }

    /// The first value of query parameter `name`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn params(&self, name: &str) -> Vec<String> {
        self.query
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// What a path under `/v2/` names.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    Base,
    Catalog,
    Tags(String),
    Manifest(String, String),
    Uploads(String),
    Upload(String, String),
    Blob(String, String),
    Referrers(String, String),
}

impl Route {
    /// The methods this endpoint answers (a 405's `Allow`).
    fn allowed(&self) -> &'static str {
        match self {
            Route::Base | Route::Catalog | Route::Tags(_) | Route::Referrers(..) => "GET, HEAD",
            Route::Manifest(..) => "GET, HEAD, PUT, DELETE",
            Route::Blob(..) => "GET, HEAD, DELETE",
            Route::Uploads(_) => "POST",
            Route::Upload(..) => "GET, HEAD, PATCH, PUT, DELETE",
        }
    }
}

fn route(tail: &str) -> Option<Route> {
    if tail.is_empty() {
        return Some(Route::Base);
    }
    if tail == "_catalog" {
        return Some(Route::Catalog);
    }
    let segs: Vec<String> = tail
        .split('/')
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    let n = segs.len();
    let name = |upto: usize| segs[..upto].join("/");
    let at = |i: usize, s: &str| segs.get(i).is_some_and(|x| x == s);
    if n >= 3 && at(n - 2, "tags") && at(n - 1, "list") {
        return Some(Route::Tags(name(n - 2)));
    }
    if n >= 3 && at(n - 2, "manifests") {
        return Some(Route::Manifest(name(n - 2), segs[n - 1].clone()));
    }
    if n >= 4 && at(n - 3, "blobs") && at(n - 2, "uploads") {
        let id = &segs[n - 1];
        return Some(if id.is_empty() {
            Route::Uploads(name(n - 3))
        } else {
            Route::Upload(name(n - 3), id.clone())
        });
    }
    if n >= 3 && at(n - 2, "blobs") && at(n - 1, "uploads") {
        return Some(Route::Uploads(name(n - 2)));
    }
    if n >= 3 && at(n - 2, "blobs") {
        return Some(Route::Blob(name(n - 2), segs[n - 1].clone()));
    }
    if n >= 3 && at(n - 2, "referrers") {
        return Some(Route::Referrers(name(n - 2), segs[n - 1].clone()));
    }
    None
}

pub async fn handle(
    reg: Arc<Registry>,
    origin: Arc<Origin>,
    auth: Arc<Auth>,
    tail: String,
    req: Request,
) -> Response {
    let mut resp = dispatch(&reg, &auth, &origin, &tail, req).await;
    set(&mut resp, API_VERSION, "registry/2.0");
    if let Some(base) = origin.public_url() {
        absolute_location(&mut resp, base);
    }
    resp
}

/// Handlers answer relative `Location`s; with a public URL configured they
/// become absolute links on it (what clients behind a proxy need).
fn absolute_location(resp: &mut Response, base: &str) {
    let relative = resp
        .headers()
        .get(http::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.starts_with('/'))
        .map(str::to_string);
    if let Some(path) = relative {
        set(
            resp,
            "Location",
            &format!("{}{path}", base.trim_end_matches('/')),
        );
    }
}

/// What a request on `route` needs from its caller.
fn need(r: &Route, method: &Method) -> Need {
    let action = match *method {
        Method::GET | Method::HEAD => Action::Pull,
        Method::DELETE => Action::Delete,
        _ => Action::Push,
    };
    match r {
        Route::Base => Need::Login,
        Route::Catalog => Need::All(Action::Pull),
        Route::Tags(n) | Route::Referrers(n, _) => Need::Repo(Action::Pull, n.clone()),
        Route::Manifest(n, _) | Route::Blob(n, _) => Need::Repo(action, n.clone()),
        // Upload sessions: every step is part of a push.
        Route::Uploads(n) | Route::Upload(n, _) => Need::Repo(Action::Push, n.clone()),
    }
}

async fn dispatch(
    reg: &Registry,
    auth: &Auth,
    origin: &Origin,
    tail: &str,
    mut req: Request,
) -> Response {
    let Some(r) = route(tail) else {
        return error_of(Code::NameUnknown, StatusCode::NOT_FOUND, "no such endpoint");
    };
    let name = match &r {
        Route::Tags(n)
        | Route::Manifest(n, _)
        | Route::Uploads(n)
        | Route::Upload(n, _)
        | Route::Blob(n, _)
        | Route::Referrers(n, _) => Some(n.as_str()),
        Route::Base | Route::Catalog => None,
    };
    if let Some(name) = name
        && let Err(e) = check_name(name)
    {
        return response::error(&e);
    }
    let principal = match auth::guard(auth, &need(&r, &req.method), &req.headers, origin).await {
        Ok(p) => p,
        Err(answer) => return answer,
    };
    // A mount reads from another repository: without pull there, fall back
    // to an ordinary upload (what the spec asks when a mount is not possible).
    // A mount without `from` would take the blob from any repository: only
    // where anyone may pull anything.
    let may_mount = match req.param("from") {
        Some(from) => principal.allows(Action::Pull, from),
        None => !auth.enabled,
    };
    if !may_mount {
        req.query.retain(|(k, _)| k != "mount" && k != "from");
    }
    let m = req.method.clone();
    let allowed = r.allowed();
    let mutation = auth.enabled && !matches!(m, Method::GET | Method::HEAD);
    let peer = super::request_log::peer_of(&req.headers);
    let result = match (r, m.clone()) {
        (Route::Base, Method::GET | Method::HEAD) => {
            Ok(json(StatusCode::OK, &serde_json::json!({})))
        }
        (Route::Catalog, Method::GET | Method::HEAD) => listing::catalog(reg, &req).await,
        (Route::Tags(n), Method::GET | Method::HEAD) => listing::tags(reg, &n, &req).await,
        (Route::Manifest(n, r), Method::GET | Method::HEAD) => {
            manifests::get(reg, &n, &r, &req).await
        }
        (Route::Manifest(n, r), Method::PUT) => manifests::put(reg, &n, &r, req).await,
        (Route::Manifest(n, r), Method::DELETE) => manifests::delete(reg, &n, &r).await,
        (Route::Blob(n, d), Method::GET | Method::HEAD) => blobs::get(reg, &n, &d, &req).await,
        (Route::Blob(n, d), Method::DELETE) => blobs::delete(reg, &n, &d).await,
        (Route::Uploads(n), Method::POST) => uploads::start(reg, &n, req).await,
        (Route::Upload(n, id), Method::PATCH) => uploads::patch(reg, &n, &id, req).await,
        (Route::Upload(n, id), Method::PUT) => uploads::put(reg, &n, &id, req).await,
        (Route::Upload(n, id), Method::GET | Method::HEAD) => uploads::status(reg, &n, &id).await,
        (Route::Upload(n, id), Method::DELETE) => uploads::cancel(reg, &n, &id).await,
        (Route::Referrers(n, d), Method::GET | Method::HEAD) => {
            manifests::referrers(reg, &n, &d, &req).await
        }
        _ => {
            let mut r = error_of(
                Code::Unsupported,
                StatusCode::METHOD_NOT_ALLOWED,
                "method not allowed here",
            );
            r.headers_mut()
                .insert(http::header::ALLOW, http::HeaderValue::from_static(allowed));
            Ok(r)
        }
    };
    let resp = finish(result);
    if mutation {
        // Who changed what, from where, and how it ended: the audit trail.
        tracing::info!(
            target: "nora::audit",
            who = %principal.who,
            peer = %peer.map(|p| p.to_string()).unwrap_or_default(),
            method = %m,
            path = %format!("/v2/{tail}"),
            status = resp.status().as_u16(),
            "mutation"
        );
    }
    resp
}

/// The warp filter for everything under `/v2`.
pub fn routes(
    reg: Arc<Registry>,
    origin: Arc<Origin>,
    body_timeout: std::time::Duration,
    auth: Arc<Auth>,
    read_only: bool,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone + Send + Sync + 'static {
    let raw_query = warp::query::raw().or(warp::any().map(String::new)).unify();
    warp::path("v2")
        .and(warp::path::tail())
        .and(warp::method())
        .and(raw_query)
        .and(warp::header::headers_cloned())
        .and(warp::body::stream().map(move |body| body_stream(body, body_timeout)))
        .then(
            move |tail: warp::path::Tail, method, query: String, headers, body: ByteStream| {
                let reg = reg.clone();
                let origin = origin.clone();
                let auth = auth.clone();
                let req = Request {
                    method,
                    query: form_urlencoded::parse(query.as_bytes())
                        .into_owned()
                        .collect(),
                    headers,
                    body: sync_wrapper::SyncWrapper::new(body),
                };
                let tail = tail.as_str().to_string();
                async move {
                    if read_only && !matches!(req.method, Method::GET | Method::HEAD) {
                        return refused_read_only();
                    }
                    handle(reg, origin, auth, tail, req).await
                }
            },
        )
}

/// What a push, a delete or an upload gets from a registry serving
/// read-only: `UNSUPPORTED` (405), as distribution answers in its read-only
/// mode, with a message the client shows.
fn refused_read_only() -> Response {
    let mut r = error_of(
        Code::Unsupported,
        StatusCode::METHOD_NOT_ALLOWED,
        "this registry is read-only: pulls only (server.read_only, or its storage is mounted read-only)",
    );
    set(&mut r, API_VERSION, "registry/2.0");
    r
}

/// A request body as a storage stream. One that sends nothing for `idle`
/// fails like a client that hung up: a stalled client would otherwise hold
/// its connection, temp file and upload forever.
fn body_stream<B: warp::Buf>(
    body: impl futures_util::Stream<Item = Result<B, warp::Error>> + Send + 'static,
    idle: std::time::Duration,
) -> ByteStream {
    use futures_util::StreamExt;
    let body = Box::pin(
        body.map_ok(|mut buf| buf.copy_to_bytes(buf.remaining()))
            .map_err(crate::storage::BodyError::io),
    );
    Box::pin(futures_util::stream::unfold(
        Some(body),
        move |body| async move {
            let mut body = body?;
            match tokio::time::timeout(idle, body.next()).await {
                Ok(Some(item)) => Some((item, Some(body))),
                Ok(None) => None,
                Err(_) => Some((
                    Err(crate::storage::BodyError::io(format!(
                        "nothing received for {idle:?}"
                    ))),
                    None,
                )),
            }
        },
    ))
}

/// Past its limit, a body is still read (and dropped) up to this much more,
/// so a client that sends it all before reading the answer gets the 413
/// rather than a connection reset under its feet.
const DRAIN_MAX: u64 = 64 * 1024 * 1024;

/// Reads a request body whole, up to `limit` bytes (`None` when larger).
pub async fn read_limited(mut body: ByteStream, limit: u64) -> std::io::Result<Option<Bytes>> {
    use futures_util::StreamExt;
    let mut buf = Vec::new();
    let mut seen = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        seen += chunk.len() as u64;
        if seen > limit + DRAIN_MAX {
            return Ok(None);
        }
        if seen > limit {
            buf = Vec::new();
            continue;
        }
        buf.extend_from_slice(&chunk);
    }
    Ok((seen <= limit).then(|| buf.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> String {
        x.to_string()
    }

    #[test]
    fn routes_parse_from_the_end() {
        assert_eq!(route(""), Some(Route::Base));
        assert_eq!(route("_catalog"), Some(Route::Catalog));
        assert_eq!(route("a/b/tags/list"), Some(Route::Tags(s("a/b"))));
        assert_eq!(
            route("a/manifests/manifests/v1"),
            Some(Route::Manifest(s("a/manifests"), s("v1")))
        );
        assert_eq!(route("a/blobs/uploads/"), Some(Route::Uploads(s("a"))));
        assert_eq!(route("a/blobs/uploads"), Some(Route::Uploads(s("a"))));
        assert_eq!(
            route("x/blobs/blobs/uploads/"),
            Some(Route::Uploads(s("x/blobs")))
        );
        assert_eq!(
            route("a/blobs/uploads/abc"),
            Some(Route::Upload(s("a"), s("abc")))
        );
        assert_eq!(
            route("a/blobs/sha256%3Aab"),
            Some(Route::Blob(s("a"), s("sha256:ab")))
        );
        assert_eq!(
            route("a/referrers/sha256:ab"),
            Some(Route::Referrers(s("a"), s("sha256:ab")))
        );
        assert_eq!(route("a/nothing"), None);
        assert_eq!(route("manifests/v1"), None);
    }
}

//! The admin API: JSON under `/api/v1/`, one endpoint per client operation,
//! each answered by the same `client::local` the CLI uses on storage, so
//! `--url` and direct storage give the same answers. Documented in
//! `openapi.json` (served at `/api-docs/openapi.json`).
//!
//! Errors are `{"error": {"kind": ..., "message": ...}}` with a status that
//! follows the kind (not_found 404, invalid 400, conflict 409, failed 500).

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use warp::Filter;
use warp::reply::Response;

use super::auth::admin_refusal;
use super::jobs::Scheduler;
use super::oci::response::{json, with_body};
use crate::auth::perms::Action;
use crate::auth::{Auth, Who};
use crate::client::{Client, ClientError, ErrorKind, GcRequest, TokenRequest};

/// Request bodies are small JSON documents.
const MAX_BODY: usize = 64 * 1024;

const OPENAPI: &str = include_str!("openapi.json");

pub fn routes(
    jobs: Arc<Scheduler>,
    auth: Arc<Auth>,
    read_only: bool,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone + Send + Sync + 'static {
    let docs = warp::path!("api-docs" / "openapi.json")
        .and(warp::get())
        .map(|| with_body(StatusCode::OK, "application/json", Bytes::from(OPENAPI)));
    let api = warp::path("api")
        .and(warp::path("v1"))
        .and(warp::path::tail())
        .and(warp::method())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and(warp::header::headers_cloned())
        .and(warp::body::stream())
        .then(
            move |tail: warp::path::Tail,
                  method: Method,
                  query: String,
                  headers: HeaderMap,
                  body| {
                let jobs = jobs.clone();
                let auth = auth.clone();
                async move {
                    let who = match admit(&auth, &headers).await {
                        Ok(who) => who,
                        Err(refusal) => return refusal,
                    };
                    let result = match read_body(body).await {
                        Ok(body) => {
                            let writes = Writes { read_only };
                            dispatch(&jobs, writes, &method, tail.as_str(), &query, &body).await
                        }
                        Err(e) => Err(e),
                    };
                    let resp = result.unwrap_or_else(|e| error(&e));
                    if let Some(who) = who
                        && method != Method::GET
                    {
                        tracing::info!(
                            target: "nora::audit",
                            who = %who,
                            peer = %super::request_log::peer_of(&headers)
                                .map(|p| p.to_string())
                                .unwrap_or_default(),
                            method = %method,
                            path = %format!("/api/v1/{}", tail.as_str()),
                            status = resp.status().as_u16(),
                            "mutation"
                        );
                    }
                    resp
                }
            },
        );
    docs.or(api).unify()
}

/// Whether this server may change its store: each route that would asks
/// first, after reading its request (a dry run changes nothing, so an
/// operator can still see what gc or retention would do on a read-only
/// server).
#[derive(Clone, Copy)]
struct Writes {
    read_only: bool,
}

impl Writes {
    fn allowed(self) -> Result<(), ClientError> {
        if self.read_only {
            return Err(ClientError::new(
                ErrorKind::Conflict,
                "this nora serves read-only (server.read_only, or its storage is mounted read-only): nothing can be changed through it (dry runs can)",
            ));
        }
        Ok(())
    }

    fn allowed_unless(self, dry_run: bool) -> Result<(), ClientError> {
        if dry_run { Ok(()) } else { self.allowed() }
    }
}

async fn dispatch(
    jobs: &Arc<Scheduler>,
    writes: Writes,
    method: &Method,
    path: &str,
    query: &str,
    body: &[u8],
) -> Result<Response, ClientError> {
    let client = jobs.client();
    match (method.as_str(), path.trim_end_matches('/')) {
        ("GET", "images") => ok(&client
            .images(query_param(query, "pattern").as_deref())
            .await?),
        ("GET", "inspect") => {
            let reference = query_param(query, "ref")
                .ok_or_else(|| invalid("the query parameter ref is required"))?;
            ok(&client.inspect(&reference).await?)
        }
        ("POST", "tag") => {
            let req: TagRequest = parse(body)?;
            writes.allowed()?;
            ok(&client.tag(&req.source, &req.target).await?)
        }
        ("POST", "delete") => {
            let req: DeleteRequest = parse(body)?;
            writes.allowed_unless(req.dry_run)?;
            ok(&client
                .delete(&req.reference, req.dry_run, req.expect.as_deref())
                .await?)
        }
        ("POST", "gc") => {
            let req: GcRequest = parse(body)?;
            writes.allowed_unless(req.dry_run)?;
            ok(&jobs.gc(&req).await?)
        }
        ("POST", "retention") => {
            let req: RetentionRequest = parse(body)?;
            writes.allowed_unless(req.dry_run)?;
            ok(&jobs.retention(req.dry_run).await?)
        }
        ("GET", "usage") => ok(&client.usage().await?),
        ("GET", "tokens") => ok(&client.tokens().await?),
        ("POST", "tokens") => {
            let req: TokenRequest = parse(body)?;
            writes.allowed()?;
            ok(&client.token_create(&req).await?)
        }
        ("DELETE", p) if p.starts_with("tokens/") => {
            writes.allowed()?;
            let name = percent_encoding::percent_decode_str(&p["tokens/".len()..])
                .decode_utf8_lossy()
                .into_owned();
            ok(&client.token_revoke(&name).await?)
        }
        // A name that is `.`, `..` or empty is no path segment a URL keeps
        // (URL parsers fold dot segments away, even percent-encoded).
        ("DELETE", "tokens") => {
            writes.allowed()?;
            let name = query_param(query, "name").ok_or_else(|| {
                invalid("name the token: DELETE /api/v1/tokens/NAME or /api/v1/tokens?name=NAME")
            })?;
            ok(&client.token_revoke(&name).await?)
        }
        ("GET", "jobs") => ok(&jobs.status()),
        (_, p) => match allowed_methods(p) {
            Some(allow) => {
                let e = ClientError::new(
                    ErrorKind::Invalid,
                    format!("method {method} not allowed on /api/v1/{p} (allowed: {allow})"),
                );
                let mut r = json(
                    StatusCode::METHOD_NOT_ALLOWED,
                    &serde_json::json!({ "error": e }),
                );
                super::oci::response::set(&mut r, "Allow", allow);
                Ok(r)
            }
            None => Err(ClientError::new(
                ErrorKind::NotFound,
                format!("no such admin endpoint: /api/v1/{p}"),
            )),
        },
    }
}

fn query_param(query: &str, key: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

/// The methods an admin endpoint takes, for a 405's `Allow`.
fn allowed_methods(path: &str) -> Option<&'static str> {
    Some(match path {
        "images" | "inspect" | "usage" | "jobs" => "GET",
        "tag" | "delete" | "gc" | "retention" => "POST",
        "tokens" => "GET, POST, DELETE",
        p if p.starts_with("tokens/") => "DELETE",
        _ => return None,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TagRequest {
    source: String,
    target: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeleteRequest {
    reference: String,
    #[serde(default)]
    dry_run: bool,
    #[serde(default)]
    expect: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RetentionRequest {
    #[serde(default)]
    dry_run: bool,
}

/// The admin API is for admins: `admin` on every repository.
async fn admit(auth: &Auth, headers: &HeaderMap) -> Result<Option<Who>, Response> {
    if !auth.enabled {
        return Ok(None);
    }
    match super::auth::authenticate(auth, headers).await {
        Err(super::auth::Failed::Throttled(r)) => Err(r),
        Err(super::auth::Failed::Refused(m)) => Err(admin_refusal(StatusCode::UNAUTHORIZED, &m)),
        Ok(p) if p.grants.allows_all(Action::Admin) => Ok(Some(p.who)),
        Ok(p) if p.is_anonymous() => Err(admin_refusal(
            StatusCode::UNAUTHORIZED,
            "credentials required",
        )),
        Ok(p) => Err(admin_refusal(
            StatusCode::FORBIDDEN,
            &format!("{} is not an admin", p.who),
        )),
    }
}

/// Reads a request body of at most MAX_BODY bytes (GETs have none, and
/// chunked bodies have no Content-Length to check up front).
pub(super) async fn read_body<S, B>(body: S) -> Result<Vec<u8>, ClientError>
where
    S: futures_util::Stream<Item = Result<B, warp::Error>>,
    B: bytes::Buf,
{
    use futures_util::StreamExt;
    let mut body = std::pin::pin!(body);
    let mut out = Vec::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| invalid(&format!("reading the request body: {e}")))?;
        if out.len() + chunk.remaining() > MAX_BODY {
            return Err(invalid(&format!(
                "request body larger than {MAX_BODY} bytes"
            )));
        }
        out.extend_from_slice(chunk.chunk());
    }
    Ok(out)
}

/// An empty body means "all defaults".
fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ClientError> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|e| invalid(&format!("bad request body: {e}")))
}

fn invalid(message: &str) -> ClientError {
    ClientError::new(ErrorKind::Invalid, message)
}

fn ok<T: serde::Serialize>(value: &T) -> Result<Response, ClientError> {
    let value = serde_json::to_value(value)
        .map_err(|e| ClientError::new(ErrorKind::Failed, e.to_string()))?;
    Ok(json(StatusCode::OK, &value))
}

fn error(e: &ClientError) -> Response {
    let status = match e.kind {
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Invalid => StatusCode::BAD_REQUEST,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::Denied => StatusCode::FORBIDDEN,
        ErrorKind::Unreachable => StatusCode::BAD_GATEWAY,
        ErrorKind::Failed => StatusCode::INTERNAL_SERVER_ERROR,
    };
    json(status, &serde_json::json!({ "error": e }))
}

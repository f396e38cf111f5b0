//! HTTP side of authentication: the challenge (401 with `WWW-Authenticate`),
//! the refusal (403), and the token endpoint of the Docker/OCI token flow,
//! `GET /auth/token?service=…&scope=repository:NAME:pull,push`.

use std::sync::Arc;

use http::{HeaderMap, StatusCode};
use warp::Filter;
use warp::reply::Response;

use super::oci::response::{error_of, json, set};
use super::origin::Origin;
use crate::auth::perms::Action;
use crate::auth::tokens::{LOGIN_TTL_MAX, LOGIN_TTL_MIN};
use crate::auth::{Auth, Principal};
use crate::registry::error::Code;

/// What a request needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Need {
    /// Any identity the configuration accepts (`GET /v2/`).
    Login,
    /// `action` on every repository (catalog, admin API).
    All(Action),
    /// `action` on one repository.
    Repo(Action, String),
}

/// Where clients fetch registry tokens.
pub fn realm(origin: &Origin, headers: &HeaderMap) -> String {
    format!("{}/auth/token", origin.base(headers))
}

/// Checks `need` for a registry request. Err is the answer to send instead.
pub async fn guard(
    auth: &Auth,
    need: &Need,
    headers: &HeaderMap,
    origin: &Origin,
) -> Result<Principal, Response> {
    let challenge = |message: &str| {
        let mut r = error_of(Code::Unauthorized, StatusCode::UNAUTHORIZED, message);
        let mut value = format!(
            "Bearer realm=\"{}\",service=\"{}\"",
            realm(origin, headers),
            auth.service
        );
        if matches!(need, Need::All(Action::Pull)) {
            value.push_str(",scope=\"registry:catalog:*\"");
        }
        if let Need::Repo(action, name) = need {
            let actions = match action {
                Action::Pull => "pull",
                Action::Push => "pull,push",
                Action::Delete => "delete",
                Action::Admin => "*",
            };
            value.push_str(&format!(",scope=\"repository:{name}:{actions}\""));
        }
        set(&mut r, "WWW-Authenticate", &value);
        r
    };
    if !auth.enabled {
        return Ok(auth.anonymous());
    }
    let p = match authenticate(auth, headers).await {
        Ok(p) => p,
        Err(Failed::Throttled(r)) => return Err(r),
        Err(Failed::Refused(m)) => return Err(challenge(&m)),
    };
    let allowed = match need {
        Need::Login => !p.is_anonymous() || p.grants.allows_all(Action::Pull),
        Need::All(action) => p.grants.allows_all(*action),
        Need::Repo(action, name) => p.allows(*action, name),
    };
    if allowed {
        Ok(p)
    } else if p.is_anonymous() {
        Err(challenge("authentication required"))
    } else if p.scoped {
        // The client holds a token for other scopes: tell it which to ask for.
        Err(challenge("insufficient scope"))
    } else {
        Err(error_of(
            Code::Denied,
            StatusCode::FORBIDDEN,
            &format!("{} may not do this", p.who),
        ))
    }
}

pub enum Failed {
    /// Credentials that do not hold (after the throttle's delay).
    Refused(String),
    /// Too many failures from this address: the 429 to send.
    Throttled(Response),
}

/// `Auth::authenticate` behind the brute-force throttle, with the audit log
/// line of every failed login.
pub async fn authenticate(auth: &Auth, headers: &HeaderMap) -> Result<Principal, Failed> {
    let peer = super::request_log::peer_of(headers);
    if let Err(wait) = auth.throttle.check(peer) {
        let mut r = error_of(
            Code::TooManyRequests,
            StatusCode::TOO_MANY_REQUESTS,
            "too many failed logins from this address; try again later",
        );
        set(&mut r, "Retry-After", &wait.to_string());
        return Err(Failed::Throttled(r));
    }
    match auth.authenticate(headers).await {
        Ok(p) => Ok(p),
        Err(e) => {
            tracing::warn!(
                target: "nora::audit",
                peer = %peer.map(|p| p.to_string()).unwrap_or_default(),
                reason = %e,
                "login refused"
            );
            let delay = auth.throttle.failed(peer);
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            Err(Failed::Refused(e.0))
        }
    }
}

/// Scopes one token request may ask for. Clients ask for one to a few (a
/// push with cross-repository mounts: one per source); each costs memory in
/// the token's compiled grants.
const MAX_SCOPES: usize = 64;

/// `GET /auth/token`: Basic credentials or an API token in, a short-lived
/// registry token out, limited to the requested scopes the caller holds.
pub fn token_route(
    auth: Arc<Auth>,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone + Send + Sync + 'static {
    warp::path!("auth" / "token")
        .and(warp::get().or(warp::post()).unify())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and(warp::header::headers_cloned())
        .then(move |query: String, headers: HeaderMap| {
            let auth = auth.clone();
            async move { token(&auth, &query, &headers).await }
        })
}

async fn token(auth: &Auth, query: &str, headers: &HeaderMap) -> Response {
    let refuse = |message: &str| {
        let mut r = error_of(Code::Unauthorized, StatusCode::UNAUTHORIZED, message);
        set(&mut r, "WWW-Authenticate", "Basic realm=\"nora\"");
        r
    };
    if !auth.enabled {
        return error_of(
            Code::Unsupported,
            StatusCode::NOT_FOUND,
            "authentication is off",
        );
    }
    let p = match authenticate(auth, headers).await {
        Ok(p) => p,
        Err(Failed::Throttled(r)) => return r,
        Err(Failed::Refused(m)) => return refuse(&m),
    };
    if p.is_anonymous() && !p.grants.allows_all(Action::Pull) {
        return refuse("credentials required");
    }
    let mut service_ok = true;
    let mut scopes = Vec::new();
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "scope" => scopes.extend(v.split(' ').filter(|s| !s.is_empty()).map(String::from)),
            "service" => service_ok = v == auth.service,
            _ => {}
        }
    }
    if !service_ok {
        return error_of(Code::Denied, StatusCode::BAD_REQUEST, "unknown service");
    }
    if scopes.len() > MAX_SCOPES {
        return error_of(
            Code::Denied,
            StatusCode::BAD_REQUEST,
            &format!("at most {MAX_SCOPES} scopes per token request"),
        );
    }
    match auth.issue(&p, &scopes) {
        Ok((token, expires_in)) => {
            tracing::info!(
                target: "nora::audit",
                who = %p.who,
                peer = %super::request_log::peer_of(headers).map(|p| p.to_string()).unwrap_or_default(),
                scopes = %scopes.join(" "),
                "login"
            );
            let issued_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            json(
                StatusCode::OK,
                &serde_json::json!({
                    "token": token,
                    "access_token": token,
                    "expires_in": expires_in,
                    "issued_at": issued_at,
                }),
            )
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot issue a registry token");
            error_of(
                Code::Internal,
                StatusCode::INTERNAL_SERVER_ERROR,
                "cannot issue a token",
            )
        }
    }
}

/// An admin API refusal in that API's own error form.
pub fn admin_refusal(status: StatusCode, message: &str) -> Response {
    let mut r = json(
        status,
        &serde_json::json!({ "error": { "kind": "denied", "message": message } }),
    );
    if status == StatusCode::UNAUTHORIZED {
        set(&mut r, "WWW-Authenticate", "Basic realm=\"nora\"");
    }
    r
}

/// `POST /auth/oidc/token`: a CI's ID token (as `Authorization: Bearer` or
/// JSON `{"token": "…"}`) in, `{"token", "expires_in"}` out.
pub fn oidc_route(
    auth: Arc<Auth>,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone + Send + Sync + 'static {
    warp::path!("auth" / "oidc" / "token")
        .and(warp::post())
        .and(warp::header::headers_cloned())
        .and(warp::body::stream())
        .then(move |headers: HeaderMap, body| {
            let auth = auth.clone();
            async move {
                // Capped like every small JSON body; too big is simply no token.
                let body = super::admin::read_body(body).await.unwrap_or_default();
                oidc_token(&auth, &headers, &body).await
            }
        })
}

async fn oidc_token(auth: &Auth, headers: &HeaderMap, body: &[u8]) -> Response {
    let refuse = |status: StatusCode, message: &str| {
        json(
            status,
            &serde_json::json!({ "errors": [{ "code": "UNAUTHORIZED", "message": message }] }),
        )
    };
    if !auth.oidc_enabled() {
        return refuse(StatusCode::NOT_FOUND, "no OIDC provider is configured");
    }
    let peer = super::request_log::peer_of(headers);
    if let Err(wait) = auth.throttle.check(peer) {
        let mut r = error_of(
            Code::TooManyRequests,
            StatusCode::TOO_MANY_REQUESTS,
            "too many failed logins from this address; try again later",
        );
        set(&mut r, "Retry-After", &wait.to_string());
        return r;
    }
    let from_header = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(|t| t.trim().to_string());
    let from_body = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["token"].as_str().map(str::to_string));
    let Some(id_token) = from_header.or(from_body) else {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "send the ID token as Authorization: Bearer or as {\"token\": \"...\"}",
        );
    };
    let peer_s = peer.map(|p| p.to_string()).unwrap_or_default();
    match auth.oidc_token(&id_token).await {
        Ok((token, expires_in, who)) => {
            tracing::info!(target: "nora::audit", who = %who, peer = %peer_s, "oidc login");
            json(
                StatusCode::OK,
                &serde_json::json!({ "token": token, "expires_in": expires_in }),
            )
        }
        Err(e) => {
            tracing::warn!(target: "nora::audit", peer = %peer_s, reason = %e, "oidc login refused");
            let delay = auth.throttle.failed(peer);
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            refuse(StatusCode::UNAUTHORIZED, &e.0)
        }
    }
}

/// How long a login token lives unless the client asks for less (or more,
/// up to `LOGIN_TTL_MAX`).
const LOGIN_TTL: u64 = 30 * 24 * 3600;

/// `POST /auth/login` (`nora login`): a user name and password (Basic) in,
/// a login token out, `{"token", "name", "expires_in"}`; optional JSON body
/// `{"expires_in": SECONDS}`. `DELETE /auth/login` with that token revokes it.
pub fn login_route(
    auth: Arc<Auth>,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone + Send + Sync + 'static {
    let post_auth = auth.clone();
    let post = warp::path!("auth" / "login")
        .and(warp::post())
        .and(warp::header::headers_cloned())
        .and(warp::body::stream())
        .then(move |headers: HeaderMap, body| {
            let auth = post_auth.clone();
            async move {
                let body = super::admin::read_body(body).await.unwrap_or_default();
                login(&auth, &headers, &body).await
            }
        });
    let delete = warp::path!("auth" / "login")
        .and(warp::delete())
        .and(warp::header::headers_cloned())
        .then(move |headers: HeaderMap| {
            let auth = auth.clone();
            async move { logout(&auth, &headers).await }
        });
    post.or(delete).unify()
}

async fn login(auth: &Auth, headers: &HeaderMap, body: &[u8]) -> Response {
    if !auth.enabled {
        return admin_refusal(StatusCode::NOT_FOUND, "authentication is off");
    }
    let p = match authenticate(auth, headers).await {
        Ok(p) if !p.is_anonymous() => p,
        Ok(_) => return admin_refusal(StatusCode::UNAUTHORIZED, "user name and password required"),
        Err(Failed::Throttled(r)) => return r,
        Err(Failed::Refused(m)) => return admin_refusal(StatusCode::UNAUTHORIZED, &m),
    };
    let expires_in = match login_ttl(body) {
        Ok(s) => s,
        Err(m) => return admin_refusal(StatusCode::BAD_REQUEST, &m),
    };
    let peer = super::request_log::peer_of(headers)
        .map(|p| p.to_string())
        .unwrap_or_default();
    match auth.login_token(&p, expires_in).await {
        Ok((secret, info)) => {
            tracing::info!(target: "nora::audit", who = %p.who, peer = %peer, token = %info.name, "login token created");
            json(
                StatusCode::OK,
                &serde_json::json!({ "token": secret, "name": info.name, "expires_in": expires_in }),
            )
        }
        Err(e) => admin_refusal(StatusCode::BAD_REQUEST, &e),
    }
}

/// The login token's lifetime from the optional body: the default when
/// absent, else exactly what was asked or a 400 (never a silent 30 days for
/// a value that did not parse).
fn login_ttl(body: &[u8]) -> Result<u64, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(LOGIN_TTL);
    }
    let usage = || {
        format!(
            "the body must be {{\"expires_in\": SECONDS}}, SECONDS from {LOGIN_TTL_MIN} to {LOGIN_TTL_MAX}"
        )
    };
    let v: serde_json::Value = serde_json::from_slice(body).map_err(|_| usage())?;
    let Some(obj) = v.as_object() else {
        return Err(usage());
    };
    match obj.get("expires_in") {
        None | Some(serde_json::Value::Null) => Ok(LOGIN_TTL),
        Some(n) => n
            .as_u64()
            .filter(|s| (LOGIN_TTL_MIN..=LOGIN_TTL_MAX).contains(s))
            .ok_or_else(usage),
    }
}

async fn logout(auth: &Auth, headers: &HeaderMap) -> Response {
    if !auth.enabled {
        return admin_refusal(StatusCode::NOT_FOUND, "authentication is off");
    }
    let p = match authenticate(auth, headers).await {
        Ok(p) if !p.is_anonymous() => p,
        Ok(_) => return admin_refusal(StatusCode::UNAUTHORIZED, "send the token to revoke"),
        Err(Failed::Throttled(r)) => return r,
        Err(Failed::Refused(m)) => return admin_refusal(StatusCode::UNAUTHORIZED, &m),
    };
    match auth.logout(&p).await {
        Ok(()) => {
            tracing::info!(target: "nora::audit", who = %p.who, "logout");
            let mut r = Response::new(Default::default());
            *r.status_mut() = StatusCode::NO_CONTENT;
            r
        }
        Err(e) => admin_refusal(StatusCode::BAD_REQUEST, &e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_login_lifetime_is_what_was_asked_or_refused() {
        assert_eq!(login_ttl(b""), Ok(LOGIN_TTL));
        assert_eq!(login_ttl(br#"{"expires_in":null}"#), Ok(LOGIN_TTL));
        assert_eq!(login_ttl(br#"{}"#), Ok(LOGIN_TTL));
        assert_eq!(login_ttl(br#"{"expires_in":3600}"#), Ok(3600));
        for bad in [
            r#"{"expires_in":0}"#,
            r#"{"expires_in":"x"}"#,
            r#"{"expires_in":1e30}"#,
            "[]",
            "x",
        ] {
            assert!(login_ttl(bad.as_bytes()).is_err(), "{bad}");
        }
    }
}

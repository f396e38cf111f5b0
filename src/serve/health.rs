//! `GET /health` (the process answers) and `GET /ready` (storage answers too).

use std::sync::Arc;

use http::StatusCode;
use warp::Filter;
use warp::reply::Response;

use super::oci::response::json;
use crate::registry::Registry;

pub fn routes(
    reg: Arc<Registry>,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone + Send + Sync + 'static {
    let health = warp::path!("health")
        .and(warp::get().or(warp::head()).unify())
        .map(|| json(StatusCode::OK, &serde_json::json!({ "status": "ok" })));
    let ready = warp::path!("ready")
        .and(warp::get().or(warp::head()).unify())
        .then(move || {
            let reg = reg.clone();
            async move {
                match reg.storage().ping().await {
                    Ok(()) => json(StatusCode::OK, &serde_json::json!({ "status": "ready" })),
                    Err(e) => json(
                        StatusCode::SERVICE_UNAVAILABLE,
                        &serde_json::json!({ "status": "unavailable", "error": e.to_string() }),
                    ),
                }
            }
        });
    health.or(ready).unify()
}

//! One log line per request (method, path, status, bytes, time, request id)
//! and the `X-Request-Id` header, added around the whole warp service.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use http::{HeaderValue, Request, Response};
use tower_service::Service;

pub const REQUEST_ID: &str = "x-request-id";

#[derive(Clone)]
pub struct RequestLog<S> {
    inner: S,
    peer: Option<SocketAddr>,
}

impl<S> RequestLog<S> {
    pub fn new(inner: S, peer: Option<SocketAddr>) -> Self {
        RequestLog { inner, peer }
    }
}

/// Internal header carrying the client's address to the handlers.
pub const PEER: &str = "x-nora-peer";

/// The client address `RequestLog` recorded on a request.
pub fn peer_of(headers: &http::HeaderMap) -> Option<std::net::IpAddr> {
    headers.get(PEER)?.to_str().ok()?.parse().ok()
}

/// A client's id is kept when it is short printable ASCII; else we make one.
fn request_id<B>(req: &Request<B>) -> HeaderValue {
    if let Some(v) = req.headers().get(REQUEST_ID)
        && v.len() <= 128
        && v.as_bytes().iter().all(|b| b.is_ascii_graphic())
    {
        return v.clone();
    }
    let id = format!("{:016x}", rand::random::<u64>());
    HeaderValue::from_str(&id).unwrap_or_else(|_| HeaderValue::from_static("-"))
}

fn content_length(h: &http::HeaderMap) -> u64 {
    h.get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

impl<S, B, RB> Service<Request<B>> for RequestLog<S>
where
    S: Service<Request<B>, Response = Response<RB>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response<RB>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<RB>, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let start = Instant::now();
        let id = request_id(&req);
        req.headers_mut().insert(REQUEST_ID, id.clone());
        // The peer address for the handlers (login throttling): ours only,
        // never one a client sent.
        req.headers_mut().remove(PEER);
        if let Some(p) = self.peer
            && let Ok(v) = HeaderValue::from_str(&p.ip().to_string())
        {
            req.headers_mut().insert(PEER, v);
        }
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        let bytes_in = content_length(req.headers());
        let peer = self.peer;
        let fut = self.inner.call(req);
        Box::pin(async move {
            let mut resp = fut.await?;
            let elapsed = start.elapsed();
            tracing::info!(
                target: "nora::request",
                method = %method,
                path = %path,
                status = resp.status().as_u16(),
                bytes_in,
                bytes_out = content_length(resp.headers()),
                ms = elapsed.as_secs_f64() * 1000.0,
                request_id = id.to_str().unwrap_or("-"),
                peer = peer.map(|p| p.to_string()).unwrap_or_default(),
            );
            resp.headers_mut().insert(REQUEST_ID, id);
            Ok(resp)
        })
    }
}

//! One log line per request (method, path, status, bytes, time, request id)
//! and the `X-Request-Id` header, added around the whole warp service.
//!
//! The line is written when the answer's body has been sent, or given up
//! (the client went away): its bytes are those that went each way, its time
//! the whole exchange's. A 256 MiB download logged when its headers left
//! would say 0.2 ms, and the full size even if the client hung up at once.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

use http::{HeaderValue, Method, Request, Response};
use http_body::{Body, Frame, SizeHint};
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

impl<S, B, RB> Service<Request<B>> for RequestLog<S>
where
    S: Service<Request<Counted<B>>, Response = Response<RB>, Error = Infallible>,
    S::Future: Send + 'static,
    B: Body + Unpin,
    RB: Body + Unpin,
{
    type Response = Response<Counted<RB>>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

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
        let received = Arc::new(AtomicU64::new(0));
        super::metrics::get().started();
        let line = Line {
            method: req.method().clone(),
            path: req.uri().path().to_string(),
            status: 0,
            received: received.clone(),
            request_id: id.clone(),
            peer: self.peer,
            start,
        };
        let req = req.map(|inner| Counted {
            inner,
            count: received,
            line: None,
        });
        let fut = self.inner.call(req);
        // Made before the future: one dropped before it is ever polled
        // still writes its line.
        let mut pending = Unanswered(Some(line));
        Box::pin(async move {
            let mut resp = fut.await?;
            let mut line = pending.0.take();
            if let Some(line) = &mut line {
                line.status = resp.status().as_u16();
            }
            resp.headers_mut().insert(REQUEST_ID, id);
            Ok(resp.map(|inner| Counted {
                inner,
                count: Arc::default(),
                line,
            }))
        })
    }
}

/// nginx's "client closed request": what the line of a request says when
/// its connection went before the handler answered (a client that gave up,
/// the shutdown timeout). Without it that request would not be logged or
/// counted, and would stay "in flight" in the metrics for ever.
const CLOSED_BEFORE_ANSWER: u16 = 499;

/// A request's line while its handler runs: written as unanswered if the
/// handler's future is dropped.
struct Unanswered(Option<Line>);

impl Drop for Unanswered {
    fn drop(&mut self) {
        if let Some(mut line) = self.0.take() {
            line.status = CLOSED_BEFORE_ANSWER;
            line.write(0, false);
        }
    }
}

/// What the log line says of a request, filled in as it goes.
struct Line {
    method: Method,
    path: String,
    status: u16,
    received: Arc<AtomicU64>,
    request_id: HeaderValue,
    peer: Option<SocketAddr>,
    start: Instant,
}

impl Line {
    /// Logs the line and counts the request in the metrics.
    fn write(self, sent: u64, complete: bool) {
        let received = self.received.load(Ordering::Relaxed);
        let elapsed = self.start.elapsed();
        tracing::info!(
            target: "nora::request",
            method = %self.method,
            path = %self.path,
            status = self.status,
            bytes_in = received,
            bytes_out = sent,
            // Whole microseconds: `0.234`, not `0.23430099999999998`.
            ms = elapsed.as_micros() as f64 / 1000.0,
            complete,
            request_id = self.request_id.to_str().unwrap_or("-"),
            peer = self.peer.map(|p| p.to_string()).unwrap_or_default(),
        );
        super::metrics::get().finished(&super::metrics::Finished {
            method: self.method,
            path: self.path,
            status: self.status,
            received,
            sent,
            elapsed,
            complete,
        });
    }
}

/// A body that counts the bytes it delivers: a request's, read by the
/// handlers (its count ends up in the line), or an answer's, which carries
/// the request's line and writes it once the body has been sent whole, or
/// dropped half way (the connection went), or never sent (an answer to HEAD).
pub struct Counted<B: Body> {
    inner: B,
    count: Arc<AtomicU64>,
    line: Option<Line>,
}

impl<B: Body + Unpin> Body for Counted<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            use bytes::Buf;
            self.count
                .fetch_add(data.remaining() as u64, Ordering::Relaxed);
        }
        if let Poll::Ready(None) = polled
            && let Some(line) = self.line.take()
        {
            line.write(self.count.load(Ordering::Relaxed), true);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B: Body> Drop for Counted<B> {
    fn drop(&mut self) {
        if let Some(line) = self.line.take() {
            // hyper stops polling a body that says it has ended, and never
            // polls one answering HEAD: neither lost anything.
            let complete = line.method == Method::HEAD || self.inner.is_end_stream();
            line.write(self.count.load(Ordering::Relaxed), complete);
        }
    }
}

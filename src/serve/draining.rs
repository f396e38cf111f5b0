//! Graceful shutdown of connections. hyper's own lets a request in flight
//! finish, and closes a connection between requests, or one that has read
//! nothing yet, at once. Two kinds it cannot see kept a stop waiting:
//! connections still in nora's first-byte sniff or TLS handshake (up to
//! the 10 s handshake timeout: clients open spare connections ahead of
//! need, reqwest's pool and Go's transport both do, so most rolling
//! restarts met one), and connections holding part of a request head (up
//! to the 30 s header timeout). Here both get a moment for a request on its
//! way, then are closed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::watch;

/// How long, once shutdown has begun, a connection that has begun no
/// request waits for one (a request its client had sent just before).
pub const FIRST_REQUEST_GRACE: Duration = Duration::from_secs(1);

/// Held by the accept loop: starts the shutdown and waits for every
/// connection to end.
pub struct Shutdown {
    tx: watch::Sender<bool>,
}

impl Shutdown {
    pub fn new() -> Shutdown {
        Shutdown {
            tx: watch::channel(false).0,
        }
    }

    /// What a connection holds while it lasts.
    pub fn watcher(&self) -> Stopping {
        Stopping(self.tx.subscribe())
    }

    /// Tells every connection, then waits until all are gone.
    pub async fn shutdown(self) {
        let _ = self.tx.send(true);
        self.tx.closed().await;
    }
}

/// A connection's view of the shutdown.
#[derive(Clone)]
pub struct Stopping(watch::Receiver<bool>);

impl Stopping {
    /// Resolves once shutdown has begun.
    pub async fn begun(&mut self) {
        // An error is a sender gone: the server is ending anyway.
        let _ = self.0.wait_for(|stopping| *stopping).await;
    }

    /// Resolves FIRST_REQUEST_GRACE after shutdown began: when a connection
    /// that has begun no request is closed.
    pub async fn grace_over(&mut self) {
        self.begun().await;
        tokio::time::sleep(FIRST_REQUEST_GRACE).await;
    }
}

/// A service that notes when its connection has begun a request.
pub struct NotingRequests<S> {
    inner: S,
    begun: Arc<AtomicBool>,
}

impl<S> NotingRequests<S> {
    pub fn new(inner: S) -> (NotingRequests<S>, Arc<AtomicBool>) {
        let begun = Arc::new(AtomicBool::new(false));
        let svc = NotingRequests {
            inner,
            begun: begun.clone(),
        };
        (svc, begun)
    }
}

impl<S, R> hyper::service::Service<R> for NotingRequests<S>
where
    S: hyper::service::Service<R>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn call(&self, req: R) -> Self::Future {
        self.begun.store(true, Ordering::Relaxed);
        self.inner.call(req)
    }
}

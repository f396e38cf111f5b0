//! The HTTP server: routes, the accept loop, graceful shutdown and the
//! background housekeeping.

pub mod admin;
pub mod auth;
mod draining;
pub mod health;
pub mod jobs;
mod limits;
pub mod metrics;
mod notify;
pub mod oci;
pub mod origin;
pub mod request_log;
pub mod tls;

use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use warp::Filter;

use crate::client::local::Local;
use crate::config::Config;
use crate::registry::Registry;
use crate::storage::fs::FsStorage;
use request_log::RequestLog;

/// Builds the registry on the configured storage. The filesystem backend
/// comes back as well, for its temp-file housekeeping.
pub fn open_registry(config: &Config) -> std::io::Result<(Arc<Registry>, Option<Arc<FsStorage>>)> {
    let (storage, fs) = crate::storage::open(&config.storage)?;
    let reg =
        Arc::new(Registry::new(storage, config.storage.upload_ttl).with_gc_grace(config.gc.grace));
    Ok((reg, fs))
}

/// Where the storage is, for log lines and messages.
pub fn storage_description(config: &Config) -> String {
    crate::storage::describe(&config.storage)
}

/// Every route nora serves. `read_only`: pulls only (`server.read_only`);
/// `metrics`: `GET /metrics` is served (`server.metrics`).
pub fn routes(
    reg: Arc<Registry>,
    origin: Arc<origin::Origin>,
    body_timeout: Duration,
    jobs: Arc<jobs::Scheduler>,
    auth: Arc<crate::auth::Auth>,
    read_only: bool,
    metrics: bool,
) -> impl Filter<Extract = (warp::reply::Response,), Error = std::convert::Infallible>
+ Clone
+ Send
+ Sync
+ 'static {
    health::routes(reg.clone())
        .or(metrics::route(metrics))
        .unify()
        .or(auth::token_route(auth.clone()))
        .unify()
        .or(auth::oidc_route(auth.clone()))
        .unify()
        .or(auth::login_route(auth.clone()))
        .unify()
        .or(admin::routes(jobs, auth.clone(), read_only))
        .unify()
        .or(oci::routes(reg, origin, body_timeout, auth, read_only))
        .unify()
        .recover(|_rejection: warp::Rejection| async {
            Ok::<_, std::convert::Infallible>(oci::response::error_of(
                crate::registry::error::Code::Unsupported,
                StatusCode::NOT_FOUND,
                "not found",
            ))
        })
        .unify()
}

/// Runs the server until SIGTERM/SIGINT, then lets in-flight requests finish
/// for at most the configured shutdown timeout.
pub async fn run(config: Config) -> std::io::Result<()> {
    if let Some((before, after)) = limits::raise_open_files() {
        tracing::debug!(before, after, "open files limit raised");
    }
    let (reg, fs) = open_registry(&config)?;
    // A wrong endpoint, bucket or key is a startup error, not a first 500.
    reg.storage().ping().await.map_err(|e| {
        std::io::Error::other(format!(
            "storage {} is not usable: {e}",
            storage_description(&config)
        ))
    })?;
    let addr = config.listen_addr();
    let listener = TcpListener::bind(&addr)
        .await
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
    let local = listener.local_addr()?;
    let read_only = serves_read_only(&config, fs.as_deref());
    let tls = match (&config.server.tls_cert, &config.server.tls_key) {
        (Some(cert), Some(key)) => Some(tls::acceptor(cert, key).map_err(std::io::Error::other)?),
        _ => None,
    };
    // Signals are caught from here on: a SIGTERM right after the "listening"
    // line must already mean a graceful stop.
    let mut shutdown = std::pin::pin!(shutdown_signal());
    let jobs = jobs::Scheduler::new(Arc::new(Local::new(reg.clone(), &config)));
    if !read_only {
        // Before the first request: a tag left naming a manifest its
        // repository lost (a delete killed half way) is whole again.
        reg.finish_retirements_logged().await;
        spawn_housekeeping(reg.clone());
        jobs.start(&config);
    } else if config.schedule.gc.is_some() || config.schedule.retention.is_some() {
        tracing::warn!("read-only: the [schedule] of gc and retention is not run");
    }
    let auth = Arc::new(
        crate::auth::Auth::new(&config.auth, reg.storage().clone())
            .await
            .map_err(std::io::Error::other)?,
    );
    if auth.enabled {
        tracing::info!(service = %auth.service, users = auth.users(), "authentication on");
    }

    let origin = Arc::new(origin::Origin::new(
        config.server.public_url.as_deref(),
        config.server.scheme(),
    ));
    let service = warp::service(routes(
        reg,
        origin,
        config.server.body_timeout,
        jobs.clone(),
        auth,
        read_only,
        config.server.metrics,
    ));
    let graceful = draining::Shutdown::new();
    tracing::info!(
        address = %local,
        storage = %storage_description(&config),
        "nora listening on {}://{local}",
        config.server.scheme()
    );
    notify::notify(&format!(
        "READY=1\nSTATUS=listening on {}://{local}",
        config.server.scheme()
    ));

    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        // Out of file descriptors and the like: back off, keep serving.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let svc = TowerToHyperService::new(RequestLog::new(service.clone(), Some(peer)));
                let stopping = graceful.watcher();
                let watcher = stopping.clone();
                match &tls {
                    None => {
                        tokio::spawn(tls::serve_plain(stream, stopping, move |io| {
                            serve_connection(TokioIo::new(io), svc, watcher, peer)
                        }));
                    }
                    Some(acceptor) => {
                        tokio::spawn(tls::serve(acceptor.clone(), stream, peer, stopping, move |io| {
                            serve_connection(TokioIo::new(io), svc, watcher, peer)
                        }));
                    }
                }
            }
            _ = &mut shutdown => break,
        }
    }
    drop(listener);
    notify::notify("STOPPING=1\nSTATUS=finishing in-flight requests");
    let timeout = config.server.shutdown_timeout;
    tracing::info!("shutting down: waiting up to {timeout:?} for in-flight requests");
    // A gc or retention runs on past its caller (see jobs::Scheduler::gc):
    // it gets the same time to finish as the requests do.
    let drained = async {
        graceful.shutdown().await;
        tracing::info!("all connections closed");
        jobs.idle().await;
    };
    // A second signal is an operator who will not wait: stop now, as the
    // timeout would (every write is a temp name and a rename, so nothing is
    // left half written either way).
    let again = shutdown_signal();
    tokio::select! {
        _ = drained => return Ok(()),
        _ = tokio::time::sleep(timeout) => tracing::warn!("shutdown timeout reached, closing remaining connections and jobs"),
        _ = again => tracing::warn!("second signal: closing remaining connections and jobs now"),
    }
    // A gc cut off by the exit would leave its lock for a minute, and every
    // gc on every instance would wait for it: it lets go first.
    crate::stop::request();
    if tokio::time::timeout(Duration::from_secs(5), jobs.idle())
        .await
        .is_err()
    {
        tracing::warn!("a job did not stop within 5 s; its lock expires within 60 s");
    }
    Ok(())
}

/// Whether to serve pulls only: asked for, or the storage directory is on
/// a read-only mount (where every write would fail anyway).
fn serves_read_only(config: &Config, fs: Option<&FsStorage>) -> bool {
    let by = if config.server.read_only {
        "server.read_only"
    } else if fs.is_some_and(FsStorage::mounted_read_only) {
        "a read-only mount"
    } else {
        return false;
    };
    tracing::info!(
        by,
        "read-only: pulls are served; pushes, deletes and maintenance are refused"
    );
    true
}

/// Serves HTTP/1.1 on one connection until it closes. Once shutdown has
/// begun, a request in flight finishes (hyper then closes the connection),
/// and one with part of a request head is closed after a moment (see
/// `draining`).
async fn serve_connection<I, S, B>(
    io: I,
    svc: S,
    mut stopping: draining::Stopping,
    peer: std::net::SocketAddr,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S: hyper::service::Service<http::Request<hyper::body::Incoming>, Response = http::Response<B>>
        + Send
        + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    S::Future: Send + 'static,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (svc, begun) = draining::NotingRequests::new(svc);
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30))
        .serve_connection(io, svc);
    tokio::pin!(conn);
    let ended = tokio::select! {
        // The connection first: a request already in its socket is read
        // (and so served) before shutdown is asked of hyper, which closes
        // a connection that has read nothing.
        biased;
        ended = conn.as_mut() => ended,
        _ = stopping.begun() => {
            conn.as_mut().graceful_shutdown();
            tokio::select! {
                ended = conn.as_mut() => ended,
                _ = stopping.grace_over() => {
                    if !begun.load(std::sync::atomic::Ordering::Relaxed) {
                        return; // dropped: closed
                    }
                    conn.as_mut().await
                }
            }
        }
    };
    match ended {
        // Refused by hyper before any handler ran (a bad request line,
        // headers too large): no request line is logged, so log this.
        // (Timeouts are idle keep-alive connections too: not worth a line.)
        Err(e) if e.is_parse() || e.is_parse_too_large() => {
            tracing::info!(target: "nora::request", peer = %peer, error = %e, "request refused");
        }
        Err(e) => tracing::debug!(error = %e, "connection ended with an error"),
        Ok(()) => {}
    }
}

/// Waits for SIGTERM or SIGINT. The handlers are installed when this is
/// called, not when the future is first polled.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    async move {
        match (term, int) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => tracing::info!("SIGTERM received"),
                    _ = int.recv() => tracing::info!("SIGINT received"),
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
}

/// At startup and hourly: drop upload sessions past their time to live and
/// what writes a killed process never finished left behind, and finish the
/// manifest removals one left under way (another instance's, on a shared
/// bucket).
fn spawn_housekeeping(reg: Arc<Registry>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(3600));
        let mut at_startup = true;
        loop {
            tick.tick().await;
            // (At startup `serve` did it already, before the first request.)
            if !std::mem::take(&mut at_startup) {
                reg.finish_retirements_logged().await;
            }
            match reg.expire_uploads().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(removed = n, "expired upload sessions removed"),
                Err(e) => tracing::warn!(error = %e, "upload expiry failed"),
            }
            match reg.storage().sweep_abandoned().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(removed = n, "leftovers of interrupted writes removed"),
                Err(e) => {
                    tracing::warn!(error = %e, "removing leftovers of interrupted writes failed")
                }
            }
        }
    });
}

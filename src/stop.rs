//! A process-wide request to stop work that holds a lock in storage: gc's
//! lock, a backup's hold. Cut off by the end of its process, such work
//! leaves the lock behind, and every gc, on every instance, waits up to a
//! minute for it to go stale. Asked to stop, the work lets go of it first
//! (`Registry::holding`).
//!
//! The server asks when its shutdown timeout runs out or a second signal
//! comes; a CLI command that holds a lock asks on Ctrl-C or SIGTERM
//! (`stop_on_signals`).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::watch;

static STOP: OnceLock<watch::Sender<bool>> = OnceLock::new();
static HOLDING: AtomicUsize = AtomicUsize::new(0);

fn sender() -> &'static watch::Sender<bool> {
    STOP.get_or_init(|| watch::channel(false).0)
}

/// Asks every lock-holding piece of work to stop and let go of its lock.
pub fn request() {
    sender().send_replace(true);
}

/// Resolves once a stop has been requested (at once if it already was).
pub async fn requested() {
    let mut rx = sender().subscribe();
    let _ = rx.wait_for(|stop| *stop).await;
}

/// Counts work holding a lock while it lives.
pub struct Holding(());

impl Holding {
    pub fn new() -> Holding {
        HOLDING.fetch_add(1, Ordering::SeqCst);
        Holding(())
    }
}

impl Drop for Holding {
    fn drop(&mut self) {
        HOLDING.fetch_sub(1, Ordering::SeqCst);
    }
}

/// For a CLI command, from inside its runtime: the first Ctrl-C or SIGTERM
/// while this process holds a lock asks the work to let it go (the command
/// then ends with its error); with no lock held, or at a second signal,
/// the process exits at once with 130, as an unhandled SIGINT would.
pub fn stop_on_signals() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return;
    };
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            if HOLDING.load(Ordering::SeqCst) == 0 || *sender().borrow() {
                std::process::exit(130);
            }
            crate::errln!("nora: stopping (again to quit at once)");
            request();
        }
    });
}

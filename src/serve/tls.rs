//! HTTPS: the certificate and key of `[server] tls_cert` / `tls_key`, and
//! their renewal without a restart.
//!
//! Renewal tools (certbot, cert-manager's mounted secrets, a cron'd
//! `openssl`) replace the two files in place. Each handshake checks, at most
//! once a second, whether they changed, and loads the new pair. A pair that
//! does not load (one file written, the other not yet; a key that is not the
//! certificate's) is logged and the old one goes on being served: a renewal
//! half done must not take the registry down.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use super::draining::Stopping;

/// How often a handshake may look at the files for a renewal.
const RECHECK: Duration = Duration::from_secs(1);
/// A client that has not finished its handshake by then is dropped: a
/// connection that sends nothing must not hold a task forever.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The acceptor of `nora serve` for a certificate and key in PEM files.
/// Fails, naming the file, when the pair does not load.
pub fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let files = CertFiles::load(cert, key, provider.clone())?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(files));
    // The server speaks HTTP/1.1 only; saying so lets a client that offers
    // h2 as well pick the one we have.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// What a client that spoke plain HTTP to the HTTPS port reads (as Go's
/// servers answer): better than a reset, which curl shows as "empty reply".
const PLAIN_HTTP_ANSWER: &[u8] = b"HTTP/1.1 400 Bad Request\r\n\
Content-Type: text/plain\r\nConnection: close\r\nContent-Length: 48\r\n\r\n\
Client sent an HTTP request to an HTTPS server.\n";

/// Finishes the handshake of an accepted connection, then lets `serve`
/// serve the encrypted stream.
pub async fn serve<F, Fut>(
    acceptor: TlsAcceptor,
    stream: TcpStream,
    peer: SocketAddr,
    mut stopping: Stopping,
    serve: F,
) where
    F: FnOnce(TlsStream<TcpStream>) -> Fut,
    Fut: Future<Output = ()>,
{
    let handshake = async {
        // A TLS connection opens with a handshake record; a request line
        // opens with a method's capital letter.
        let mut first = [0u8; 1];
        if stream.peek(&mut first).await? == 1 && first[0].is_ascii_uppercase() {
            return Ok(Err(stream));
        }
        acceptor.accept(stream).await.map(Ok)
    };
    let refused = |error: &dyn std::fmt::Display| {
        super::metrics::get().tls_failure();
        tracing::info!(target: "nora::request", peer = %peer, error = %error, "TLS handshake failed");
    };
    let handshake = tokio::select! {
        done = tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake) => done,
        // No handshake yet, and the server is stopping: closed.
        _ = stopping.grace_over() => return,
    };
    match handshake {
        Ok(Ok(Ok(tls))) => serve(tls).await,
        Ok(Ok(Err(plain))) => {
            refused(&"a plain HTTP request on the HTTPS port (answered 400)");
            answer_plain(plain, PLAIN_HTTP_ANSWER).await;
        }
        Ok(Err(e)) => refused(&e),
        Err(_) => refused(&format!("no handshake within {HANDSHAKE_TIMEOUT:?}")),
    }
}

/// What a client that opened with a TLS handshake on the plain HTTP port
/// reads: Go's clients (skopeo, podman, buildah) try https:// first, and an
/// HTTP answer is what makes them fall back to http:// at once.
const TLS_ON_PLAIN_ANSWER: &[u8] =
    b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";

/// Serves a connection to the plain HTTP port, unless it opens with a TLS
/// handshake: that one is answered and closed with a debug line, not the
/// info line of a refused request (one came with every skopeo command).
pub async fn serve_plain<F, Fut>(stream: TcpStream, mut stopping: Stopping, serve: F)
where
    F: FnOnce(TcpStream) -> Fut,
    Fut: Future<Output = ()>,
{
    let mut first = [0u8; 1];
    let peeked = tokio::select! {
        peeked = tokio::time::timeout(HANDSHAKE_TIMEOUT, stream.peek(&mut first)) => peeked,
        // Nothing sent yet, and the server is stopping: closed.
        _ = stopping.grace_over() => return,
    };
    match peeked {
        Ok(Ok(1)) if first[0] == TLS_HANDSHAKE => {
            tracing::debug!(
                "a TLS handshake on the plain HTTP port (a client trying https:// first)"
            );
            answer_plain(stream, TLS_ON_PLAIN_ANSWER).await;
        }
        // Nothing sent yet after the timeout: hyper's header timeout
        // applies from here on, as to any connection.
        _ => serve(stream).await,
    }
}

/// The first byte of a TLS connection: a handshake record.
const TLS_HANDSHAKE: u8 = 0x16;

/// Writes `answer` and closes, after draining what the client sent, so that
/// closing does not reset the answer away.
async fn answer_plain(mut stream: TcpStream, answer: &[u8]) {
    if stream.write_all(answer).await.is_err() || stream.shutdown().await.is_err() {
        return;
    }
    let drain = async {
        let mut sink = [0u8; 4096];
        let mut left = 64 * 1024;
        while left > 0 {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => left -= n.min(left),
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
}

/// The served pair and what its files looked like when it was loaded.
#[derive(Debug)]
struct CertFiles {
    cert: PathBuf,
    key: PathBuf,
    provider: Arc<CryptoProvider>,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    served: Arc<CertifiedKey>,
    /// The files' stamps at the last load or failed attempt: a failure is
    /// reported once, not on every handshake, until the files change again.
    stamps: Stamps,
    checked: Instant,
}

/// Modification time and length of both files.
type Stamps = [Option<(SystemTime, u64)>; 2];

impl CertFiles {
    fn load(cert: &Path, key: &Path, provider: Arc<CryptoProvider>) -> Result<Self, String> {
        let stamps = stamps(cert, key);
        let served = Arc::new(read_pair(cert, key, &provider)?);
        Ok(CertFiles {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            provider,
            state: Mutex::new(State {
                served,
                stamps,
                checked: Instant::now(),
            }),
        })
    }

    /// The pair to serve, reloaded first when the files changed.
    fn current(&self) -> Arc<CertifiedKey> {
        let mut state = match self.state.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        if state.checked.elapsed() >= RECHECK {
            state.checked = Instant::now();
            let now = stamps(&self.cert, &self.key);
            if now != state.stamps {
                state.stamps = now;
                match read_pair(&self.cert, &self.key, &self.provider) {
                    Ok(pair) => {
                        tracing::info!(cert = %self.cert.display(), "TLS certificate reloaded");
                        state.served = Arc::new(pair);
                    }
                    Err(e) => tracing::warn!(
                        error = %e,
                        "the changed TLS certificate or key does not load; still serving the one before"
                    ),
                }
            }
        }
        state.served.clone()
    }
}

impl ResolvesServerCert for CertFiles {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

fn stamps(cert: &Path, key: &Path) -> Stamps {
    [cert, key].map(|p| {
        std::fs::metadata(p)
            .and_then(|m| Ok((m.modified()?, m.len())))
            .ok()
    })
}

/// Reads a certificate chain and its private key from PEM files.
fn read_pair(cert: &Path, key: &Path, provider: &CryptoProvider) -> Result<CertifiedKey, String> {
    let bad_cert = |what: &str| format!("server.tls_cert {}: {what}", cert.display());
    let bad_key = |what: &str| format!("server.tls_key {}: {what}", key.display());
    let raw = crate::config::read_small_file(cert, crate::config::MAX_SMALL_FILE)
        .map_err(|e| bad_cert(&e.to_string()))?;
    let chain = CertificateDer::pem_slice_iter(&raw)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad_cert(&format!("not a PEM certificate chain ({e})")))?;
    if chain.is_empty() {
        return Err(bad_cert("no CERTIFICATE block in it"));
    }
    let raw = crate::config::read_small_file(key, crate::config::MAX_SMALL_FILE)
        .map_err(|e| bad_key(&e.to_string()))?;
    let private = PrivateKeyDer::from_pem_slice(&raw)
        .map_err(|e| bad_key(&format!("no PEM private key in it ({e})")))?;
    CertifiedKey::from_der(chain, private, provider).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => {
            bad_key(&format!("not the key of {}", cert.display()))
        }
        e => bad_key(&e.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let c = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let cert = dir.join(format!("{name}.crt"));
        let key = dir.join(format!("{name}.key"));
        std::fs::write(&cert, c.cert.pem()).unwrap();
        std::fs::write(&key, c.signing_key.serialize_pem()).unwrap();
        (cert, key)
    }

    #[test]
    fn bad_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = pair(dir.path(), "a");
        let (_, other_key) = pair(dir.path(), "b");
        assert!(acceptor(&cert, &key).is_ok());
        let missing = dir.path().join("missing.pem");
        for (c, k, setting, says) in [
            (
                &missing,
                &key,
                "server.tls_cert",
                "missing.pem: No such file",
            ),
            (&key, &key, "server.tls_cert", "a.key: no CERTIFICATE"),
            (&cert, &cert, "server.tls_key", "a.crt: no PEM private key"),
            (&cert, &other_key, "server.tls_key", "b.key: not the key of"),
        ] {
            let e = acceptor(c, k).err().unwrap();
            assert!(
                e.starts_with(&format!("{setting} ")) && e.contains(says),
                "{e}"
            );
        }
    }

    #[test]
    fn a_renewal_is_served_and_a_broken_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = pair(dir.path(), "a");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let files = CertFiles::load(&cert, &key, provider).unwrap();
        let first = files.current().cert[0].clone();
        let age = |files: &CertFiles| {
            files.state.lock().unwrap().checked = Instant::now() - RECHECK;
        };

        // Half a renewal: a new certificate beside the old key.
        let (next_cert, next_key) = pair(dir.path(), "b");
        std::fs::copy(&next_cert, &cert).unwrap();
        age(&files);
        assert_eq!(files.current().cert[0], first);

        // The key follows: the new pair is served.
        std::fs::copy(&next_key, &key).unwrap();
        age(&files);
        let now = files.current().cert[0].clone();
        assert_ne!(now, first);
        let expected = CertificateDer::pem_file_iter(&next_cert).unwrap().next();
        assert_eq!(Some(now.clone()), expected.transpose().unwrap());

        // Not looked at again within a second.
        let (third, _) = pair(dir.path(), "c");
        std::fs::copy(&third, &cert).unwrap();
        assert_eq!(files.current().cert[0], now);
    }
}

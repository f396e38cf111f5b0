//! The client over a running instance's admin API (`/api/v1/`).

use std::time::Duration;

use async_trait::async_trait;
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{
    Client, ClientError, CreatedToken, ErrorKind, GcRequest, JobStatus, Jobs, Progress, Result,
    Tagged, TokenInfo, TokenRequest, Usage,
};
use crate::registry::gc::GcReport;
use crate::registry::images::{ImageRow, Inspection};
use crate::registry::ops::Deleted;
use crate::registry::retention::RetentionReport;

/// How long a `--url` command waits for the TCP (and TLS) connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a quick call (list, inspect, tag, delete, tokens) waits for its
/// answer unless `--timeout` says otherwise. A server that accepted the
/// connection but hangs would otherwise hold the command forever.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);

/// The most a `--url` command reads of an answer, so a server that streams
/// without end fails the command instead of exhausting memory. The largest
/// legitimate answers are `images ls` and a retention report over a whole
/// store, about 300 bytes a tag (1 KiB with long names and many platforms):
/// 256 MiB holds a listing of several hundred thousand tags.
pub const MAX_ANSWER: usize = 256 << 20;

/// How often `gc` asks the server how far it is.
const PROGRESS_EVERY: Duration = Duration::from_millis(500);

/// How long a call may take: quick calls answer in milliseconds; gc and
/// retention answer when their work is done, which on a large bucket is
/// minutes, so they wait unless the user set a limit.
#[derive(Clone, Copy)]
enum Wait {
    Quick,
    Long,
}

pub struct Remote {
    base: String,
    http: reqwest::Client,
    /// Sent as a Bearer token (an API token).
    token: Option<String>,
    /// `--timeout`: None for the defaults, Some(ZERO) for no limit at all.
    timeout: Option<Duration>,
}

impl Remote {
    pub fn new(url: &str, token: Option<String>, timeout: Option<Duration>) -> Result<Remote> {
        let base = url.trim_end_matches('/').to_string();
        if let Err(bad) = check_server_url(&base) {
            let why = bad.why("give a token (nora login, NORA_TOKEN or --token)");
            return Err(ClientError::new(
                ErrorKind::Invalid,
                format!("--url {:?} {why}", shown(url)),
            ));
        }
        // Plain HTTP needs no roots: loading the system's CA store is most
        // of a quick command's time (150 files on Debian).
        let http = if base.starts_with("http://") {
            http_builder().tls_built_in_root_certs(false)
        } else {
            http_builder()
        };
        let http = http
            .build()
            .map_err(|e| ClientError::new(ErrorKind::Failed, e.to_string()))?;
        Ok(Remote {
            base,
            http,
            token,
            timeout,
        })
    }

    /// A quick call without a body.
    async fn fetch<T: DeserializeOwned>(&self, method: Method, path: &str) -> Result<T> {
        self.call::<(), T>(method, path, None, Wait::Quick).await
    }

    fn limit(&self, wait: Wait) -> Option<Duration> {
        match (self.timeout, wait) {
            (None, Wait::Long) => None,
            (t, _) => quick_limit(t),
        }
    }

    async fn call<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
        wait: Wait,
    ) -> Result<T> {
        let url = format!("{}/api/v1/{path}", self.base);
        let mut req = self.http.request(method, &url);
        let limit = self.limit(wait);
        if let Some(d) = limit {
            req = req.timeout(d);
        }
        // The server runs gc and retention to their end whoever waits.
        let goes_on = match wait {
            Wait::Long => "; the job goes on there, GET /api/v1/jobs shows its outcome",
            Wait::Quick => "",
        };
        let no_answer = |d: Option<Duration>| {
            ClientError::new(
                ErrorKind::Unreachable,
                format!("{}{goes_on}", no_answer(&self.base, d)),
            )
        };
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.map_err(|e| {
            if e.is_timeout() && !e.is_connect() {
                return no_answer(limit);
            }
            ClientError::new(ErrorKind::Unreachable, unreachable(&self.base, &e, limit))
        })?;
        let status = resp.status();
        let bytes = read_capped(resp, MAX_ANSWER).await.map_err(|e| match e {
            ReadError::Http(e) if e.is_timeout() => no_answer(limit),
            ReadError::Http(e) => ClientError::new(
                ErrorKind::Unreachable,
                format!("reading the answer of {}: {e}", shown(&url)),
            ),
            ReadError::TooBig(cap) => ClientError::new(
                ErrorKind::Failed,
                format!(
                    "the answer of {} is over {} MiB, more than any nora sends: is this a nora server?",
                    shown(&url),
                    cap >> 20
                ),
            ),
        })?;
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|e| {
                ClientError::new(
                    ErrorKind::Failed,
                    format!("{} answered something unexpected: {e}", shown(&url)),
                )
            });
        }
        #[derive(serde::Deserialize)]
        struct Envelope {
            error: ClientError,
        }
        match serde_json::from_slice::<Envelope>(&bytes) {
            Ok(env) => Err(env.error),
            Err(_) => Err(ClientError::new(
                match status {
                    StatusCode::NOT_FOUND => ErrorKind::NotFound,
                    StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => ErrorKind::Denied,
                    _ => ErrorKind::Failed,
                },
                format!("{}: HTTP {status} (is this a nora server?)", shown(&url)),
            )),
        }
    }
}

/// The HTTP client of every `--url` call (admin API, login, logout).
pub fn http_client() -> Result<reqwest::Client> {
    http_builder()
        .build()
        .map_err(|e| ClientError::new(ErrorKind::Failed, e.to_string()))
}

fn http_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .user_agent(concat!("nora/", env!("CARGO_PKG_VERSION")))
        // A host that drops SYNs (firewall, wrong address) would otherwise
        // hold the command for the kernel's two minutes of retries.
        .connect_timeout(CONNECT_TIMEOUT)
}

/// How long a quick call waits for its answer, given `--timeout`
/// (None: no limit).
pub fn quick_limit(timeout: Option<Duration>) -> Option<Duration> {
    match timeout {
        Some(d) if d.is_zero() => None,
        Some(d) => Some(d),
        None => Some(ANSWER_TIMEOUT),
    }
}

/// Why a URL cannot name a server.
#[derive(Debug, PartialEq)]
pub enum BadUrl {
    NotHttp,
    /// A user or password: reqwest would send it as Basic credentials in
    /// place of the token, messages and `nora login` would show and store it.
    Credentials,
    /// The API's paths are appended to the URL: `?x=1` or `#f` would swallow
    /// them.
    QueryOrFragment,
}

impl BadUrl {
    /// What is wrong, for a message; `instead` says how to give credentials.
    pub fn why(&self, instead: &str) -> String {
        match self {
            BadUrl::NotHttp => "must be http:// or https:// and a host".into(),
            BadUrl::Credentials => format!("must not hold a user or password: {instead}"),
            BadUrl::QueryOrFragment => "must not have a query (?…) or fragment (#…)".into(),
        }
    }
}

/// What `--url` and `nora login` take: an http(s) URL naming a host, with an
/// optional path prefix.
pub fn check_server_url(url: &str) -> std::result::Result<(), BadUrl> {
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(BadUrl::NotHttp);
    }
    let u = reqwest::Url::parse(url).map_err(|_| BadUrl::NotHttp)?;
    if u.host_str().is_none_or(str::is_empty) {
        return Err(BadUrl::NotHttp);
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(BadUrl::Credentials);
    }
    if u.query().is_some() || u.fragment().is_some() || url.contains(['?', '#']) {
        return Err(BadUrl::QueryOrFragment);
    }
    Ok(())
}

pub enum ReadError {
    Http(reqwest::Error),
    /// More than this many bytes.
    TooBig(usize),
}

/// An answer's body, refused as soon as it is known to exceed `cap` bytes.
pub async fn read_capped(
    mut resp: reqwest::Response,
    cap: usize,
) -> std::result::Result<Vec<u8>, ReadError> {
    if resp.content_length().is_some_and(|n| n > cap as u64) {
        return Err(ReadError::TooBig(cap));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(ReadError::Http)? {
        if body.len() + chunk.len() > cap {
            return Err(ReadError::TooBig(cap));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// `base` fit for a message: a password in it (`http://user:pw@host`,
/// which reqwest sends as Basic credentials) shows as `***`.
pub fn shown(base: &str) -> String {
    match reqwest::Url::parse(base) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.as_str().trim_end_matches('/').to_string()
        }
        _ => base.to_string(),
    }
}

/// What a command says when `base` took the request and never answered.
pub fn no_answer(base: &str, limit: Option<Duration>) -> String {
    format!(
        "{} did not answer within {} s (--timeout SECS to wait longer, 0 for no limit)",
        shown(base),
        limit.map_or(0, |d| d.as_secs())
    )
}

/// What a command says when a request to `base` failed, as one line.
pub fn unreachable(base: &str, e: &reqwest::Error, limit: Option<Duration>) -> String {
    if e.is_timeout() && !e.is_connect() {
        return no_answer(base, limit);
    }
    let why = if e.is_connect() && e.is_timeout() {
        format!("no connection within {} s", CONNECT_TIMEOUT.as_secs())
    } else if let Some(said) = tls_trouble(e) {
        said
    } else {
        root_cause(e)
    };
    format!("cannot reach {}: {why}", shown(base))
}

const UNKNOWN_CA: &str = "signed by a CA this machine does not trust \
    (trust a private CA with SSL_CERT_FILE=ca.pem, or add it to the system's store)";

/// A server certificate the client refused, or a server that answered a TLS
/// handshake with something else, said plainly and with what to do: rustls's
/// own words ("invalid peer certificate: UnknownIssuer", "received corrupt
/// message of type InvalidContentType") name neither.
fn tls_trouble(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    use rustls::CertificateError as C;
    let mut cur = Some(e);
    while let Some(mut err) = cur {
        // An io::Error hides the error it wraps from `source()`; hyper's
        // wraps one io::Error in another.
        while let Some(inner) = err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            err = inner;
        }
        let tls = err.downcast_ref::<rustls::Error>();
        if let Some(rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType)) = tls
        {
            return Some(
                "it does not speak HTTPS on that port (a plain HTTP server? try http://)".into(),
            );
        }
        if let Some(rustls::Error::InvalidCertificate(c)) = tls {
            let why = match c {
                C::UnknownIssuer => UNKNOWN_CA.to_string(),
                C::NotValidForName | C::NotValidForNameContext { .. } => {
                    "not issued for this host name".to_string()
                }
                C::Expired | C::ExpiredContext { .. } => "expired".to_string(),
                C::NotValidYet | C::NotValidYetContext { .. } => {
                    "not valid yet (is the clock right?)".to_string()
                }
                // What `openssl req -x509` makes unless told CA:FALSE.
                C::Other(o) if o.to_string().contains("CaUsedAsEndEntity") => {
                    "a CA certificate (CA:TRUE), which TLS clients refuse as a server's own"
                        .to_string()
                }
                // Without the context rustls adds (byte arrays, times).
                other => {
                    let full = format!("{other:?}");
                    full.split([' ', '(', '{']).next().unwrap_or("").to_string()
                }
            };
            return Some(format!("its TLS certificate is refused: {why}"));
        }
        cur = err.source();
    }
    None
}

pub fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

fn q(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// `s` as one path segment: every byte but letters and digits escaped, so
/// `/`, `?`, `#`, `%` and `+` reach the server as themselves.
fn segment(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

#[async_trait]
impl Client for Remote {
    async fn images(&self, pattern: Option<&str>) -> Result<Vec<ImageRow>> {
        let path = pattern.map_or_else(|| "images".into(), |p| format!("images?pattern={}", q(p)));
        self.fetch(Method::GET, &path).await
    }

    async fn inspect(&self, reference: &str) -> Result<Inspection> {
        self.fetch(Method::GET, &format!("inspect?ref={}", q(reference)))
            .await
    }

    async fn tag(&self, source: &str, target: &str) -> Result<Tagged> {
        let body = serde_json::json!({ "source": source, "target": target });
        self.call(Method::POST, "tag", Some(&body), Wait::Quick)
            .await
    }

    async fn delete(
        &self,
        reference: &str,
        dry_run: bool,
        expect: Option<&str>,
    ) -> Result<Deleted> {
        let mut body = serde_json::json!({ "reference": reference, "dry_run": dry_run });
        // Sent only when set: an older server refuses fields it does not know.
        if let Some(d) = expect {
            body["expect"] = d.into();
        }
        self.call(Method::POST, "delete", Some(&body), Wait::Quick)
            .await
    }

    /// While the gc runs, its progress is read from `jobs` twice a second.
    async fn gc(&self, req: &GcRequest, progress: Progress<'_>) -> Result<GcReport> {
        let run = self.call(Method::POST, "gc", Some(req), Wait::Long);
        let mut run = std::pin::pin!(run);
        let mut tick = tokio::time::interval(PROGRESS_EVERY);
        tick.tick().await;
        loop {
            tokio::select! {
                done = &mut run => return done,
                _ = tick.tick() => {
                    // Only a progress bar depends on it: a failed read is skipped.
                    let jobs = self.fetch::<Jobs>(Method::GET, "jobs");
                    if let Ok(Jobs { gc: JobStatus { progress: Some(p), .. }, .. }) = jobs.await {
                        progress(&p.phase, p.done, p.total);
                    }
                }
            }
        }
    }

    async fn retention(&self, dry_run: bool) -> Result<RetentionReport> {
        let body = serde_json::json!({ "dry_run": dry_run });
        self.call(Method::POST, "retention", Some(&body), Wait::Long)
            .await
    }

    async fn usage(&self) -> Result<Usage> {
        self.fetch(Method::GET, "usage").await
    }

    async fn token_create(&self, req: &TokenRequest) -> Result<CreatedToken> {
        self.call(Method::POST, "tokens", Some(req), Wait::Quick)
            .await
    }

    async fn tokens(&self) -> Result<Vec<TokenInfo>> {
        self.fetch(Method::GET, "tokens").await
    }

    async fn token_revoke(&self, name: &str) -> Result<TokenInfo> {
        // URL parsers fold `.` and `..` segments away, even percent-encoded,
        // and `tokens/` is the list: such names go as a query.
        let path = match name {
            "" | "." | ".." => format!("tokens?name={}", q(name)),
            _ => format!("tokens/{}", segment(name)),
        };
        self.fetch(Method::DELETE, &path).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(timeout: Option<u64>) -> (Option<Duration>, Option<Duration>) {
        let r = Remote::new("http://127.0.0.1:1", None, timeout.map(Duration::from_secs)).unwrap();
        (r.limit(Wait::Quick), r.limit(Wait::Long))
    }

    #[test]
    fn passwords_in_urls_are_not_shown() {
        assert_eq!(shown("http://ci:s3cret@reg:4000"), "http://ci:***@reg:4000");
        assert_eq!(
            shown("http://reg:4000/api/v1/x"),
            "http://reg:4000/api/v1/x"
        );
        assert_eq!(shown("http://"), "http://");
    }

    #[test]
    fn server_urls_need_a_scheme_and_a_host_and_nothing_else() {
        for good in [
            "http://127.0.0.1:4000",
            "https://reg.example",
            "http://h:4101/",
            "http://h:4101/nora/",
        ] {
            assert_eq!(check_server_url(good), Ok(()), "{good}");
        }
        for bad in ["http://", "https://:4000", "ftp://x", "reg.example", ""] {
            assert_eq!(check_server_url(bad), Err(BadUrl::NotHttp), "{bad}");
        }
        for bad in ["http://bob:pw@h:1", "http://bob@h:1", "http://:pw@h:1"] {
            assert_eq!(check_server_url(bad), Err(BadUrl::Credentials), "{bad}");
        }
        for bad in [
            "http://h:1?x=1",
            "http://h:1/#f",
            "http://h:1?",
            "http://h:1#",
        ] {
            assert_eq!(check_server_url(bad), Err(BadUrl::QueryOrFragment), "{bad}");
        }
    }

    /// Why dot names go as a query: a path segment of them never reaches the
    /// server.
    #[test]
    fn dot_segments_are_folded_even_percent_encoded() {
        for name in ["..", "%2E%2E", ".", "%2e"] {
            let u = reqwest::Url::parse(&format!("http://h/api/v1/tokens/{name}")).unwrap();
            assert!(
                ["/api/v1/", "/api/v1/tokens/"].contains(&u.path()),
                "{name}: {u}"
            );
        }
        assert_eq!(segment("a.b@c/d e+%"), "a%2Eb%40c%2Fd%20e%2B%25");
    }

    #[test]
    fn quick_calls_are_bounded_and_long_ones_wait_unless_told() {
        assert_eq!(limits(None), (Some(ANSWER_TIMEOUT), None));
        let five = Some(Duration::from_secs(5));
        assert_eq!(limits(Some(5)), (five, five));
        assert_eq!(limits(Some(0)), (None, None));
    }
}

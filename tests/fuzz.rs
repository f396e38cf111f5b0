//! Random requests against a live server, built from the shapes of the OCI
//! API with bad parts mixed in (names, digests, references, upload ids,
//! queries, headers, manifest bodies), and some that are not HTTP at all;
//! plain, with authentication, over HTTPS and on S3.
//! Whatever arrives: no 5xx, no hang, no panic; every refusal of a
//! well-formed `/v2/` request is the spec's error JSON; and afterwards an
//! image pushed before still pulls byte-identical, every stored blob holds
//! the bytes its name says, and every tag names a stored manifest.
//!
//! The run is seeded and prints its seed: `NORA_FUZZ_SEED=<n>` replays it,
//! `NORA_FUZZ_N=<count>` sets how many requests it sends (10,000 by default,
//! 4,000 on S3),
//! `NORA_FUZZ_LANES` on how many connections at once (default 4; 1 replays a
//! seed exactly).

mod common;
#[path = "fuzz/requests.rs"]
mod requests;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use common::{Client, OCI_MANIFEST, Server, sha256};
use rand::SeedableRng;
use rand::rngs::StdRng;
use requests::{CONFIG, Exchange, Known, exchange, sessions};

type Log = Arc<std::sync::Mutex<Vec<String>>>;

struct Answer {
    status: u16,
    head: String,
    body: Vec<u8>,
}

/// The client side of TLS, for a run over HTTPS.
type Tls = Option<Arc<rustls::ClientConfig>>;

/// Sends one request on its own connection (over TLS with `tls`) and reads
/// the answer to its end, waiting up to `patience` for each read.
fn send(addr: &str, raw: &[u8], patience: Duration, tls: Tls) -> std::io::Result<Answer> {
    let sock = TcpStream::connect(addr)?;
    sock.set_read_timeout(Some(patience))?;
    let bytes = match tls {
        None => write_then_read(sock, raw)?,
        Some(config) => {
            let name = rustls::pki_types::ServerName::try_from("127.0.0.1")
                .map_err(std::io::Error::other)?;
            let conn =
                rustls::ClientConnection::new(config, name).map_err(std::io::Error::other)?;
            write_then_read(rustls::StreamOwned::new(conn, sock), raw)?
        }
    };
    answer(bytes)
}

fn write_then_read(mut stream: impl Read + Write, raw: &[u8]) -> std::io::Result<Vec<u8>> {
    // The server may answer and close before it read the whole request.
    let _ = stream.write_all(raw).and_then(|()| stream.flush());
    let mut bytes = Vec::new();
    match stream.read_to_end(&mut bytes) {
        Ok(_) => Ok(bytes),
        // A reset after the answer, or a TLS peer that closed without its
        // close_notify: what came is the answer.
        Err(e)
            if !bytes.is_empty()
                && matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::UnexpectedEof
                ) =>
        {
            Ok(bytes)
        }
        Err(e) => Err(e),
    }
}

fn answer(bytes: Vec<u8>) -> std::io::Result<Answer> {
    let split = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(bytes.len(), |i| i + 4);
    let head = String::from_utf8_lossy(&bytes[..split]).into_owned();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok(Answer {
        status,
        head,
        body: bytes[split..].to_vec(),
    })
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Chunked bodies (the spec's error JSON may be streamed) made plain.
fn dechunk(head: &str, body: &[u8]) -> Vec<u8> {
    if header(head, "transfer-encoding") != Some("chunked") {
        return body.to_vec();
    }
    let mut out = Vec::new();
    let mut rest = body;
    while let Some(i) = rest.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&rest[..i]).trim(), 16).unwrap_or(0);
        if size == 0 || rest.len() < i + 2 + size {
            break;
        }
        out.extend_from_slice(&rest[i + 2..i + 2 + size]);
        rest = &rest[(i + 4 + size).min(rest.len())..];
    }
    out
}

/// Checks one answer; a failure says what was sent.
fn check(x: &Exchange, a: &Answer, shown: &str) {
    assert!(a.status != 0 || !x.well_formed, "no answer to {shown}");
    assert!(
        a.status < 500 || (!x.well_formed && matches!(a.status, 501 | 505)),
        "{} to {shown}\n{}{}",
        a.status,
        a.head,
        String::from_utf8_lossy(&a.body)
    );
    if !x.well_formed || a.status < 400 || x.method == "HEAD" {
        return;
    }
    // The OCI API's errors are the spec's; the admin API's are its own
    // `{"error": {"kind", "message"}}`.
    let (oci, admin) = (
        x.path.starts_with("/v2/") && x.path != "/v2/",
        x.path.starts_with("/api/v1/"),
    );
    if !oci && !admin {
        return;
    }
    let body = dechunk(&a.head, &a.body);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_else(|e| {
        panic!(
            "{} to {shown} is not error JSON ({e}): {}",
            a.status,
            String::from_utf8_lossy(&body)
        )
    });
    let (code, message) = if oci {
        (&v["errors"][0]["code"], &v["errors"][0]["message"])
    } else {
        (&v["error"]["kind"], &v["error"]["message"])
    };
    assert!(
        code.is_string() && message.is_string(),
        "{} to {shown}: {v}",
        a.status
    );
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// Sends `count` requests (unless NORA_FUZZ_N says otherwise) to `server`.
async fn fuzz(server: &Server, client: &Client, login: Option<String>, count: usize, tls: Tls) {
    let seed: u64 = env_or("NORA_FUZZ_SEED", rand::random());
    let count: usize = env_or("NORA_FUZZ_N", count);
    // Requests run on several connections at once, so that racing uploads,
    // deletes and pushes are part of the run; one lane replays a seed exactly.
    let lanes: u64 = env_or("NORA_FUZZ_LANES", 4).max(1);
    eprintln!("fuzz: NORA_FUZZ_SEED={seed} NORA_FUZZ_N={count} NORA_FUZZ_LANES={lanes}");
    let layer: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
    let (manifest, manifest_bytes) = client.push_image("fuzz/app", "latest", &layer).await;
    // The same image where no random request reaches, pulled at the end:
    // whatever the requests to fuzz/app deleted or retagged.
    let (kept, _) = client.push_image("fuzz/kept", "latest", &layer).await;
    let k = Arc::new(Known {
        repo: "fuzz/app",
        tag: "latest",
        manifest,
        manifest_bytes,
        config: sha256(CONFIG),
        layer: sha256(&layer),
        layer_bytes: layer,
        sessions: Default::default(),
        login,
    });
    let runs: Vec<_> = (0..lanes)
        .map(|lane| {
            let (k, client, log, tls) =
                (k.clone(), client.clone(), server.log.clone(), tls.clone());
            let n = count / lanes as usize;
            tokio::spawn(async move {
                lane_run(seed.wrapping_add(lane), n, &k, &client, &log, tls).await
            })
        })
        .collect();
    let mut statuses = BTreeMap::<u16, usize>::new();
    for run in runs {
        for (status, n) in run.await.unwrap() {
            *statuses.entry(status).or_default() += n;
        }
    }
    eprintln!(
        "fuzz: {count} requests, {} sessions opened; statuses {statuses:?}",
        sessions(&k).len()
    );

    let r = client.http.get(client.u("/v2/")).send().await.unwrap();
    assert!(
        r.status() == 200 || r.status() == 401,
        "alive: {}",
        r.status()
    );
    common::verify_pull(client, "fuzz/kept", "latest", &kept).await;
    let log = server.log_text();
    assert!(!log.contains("panicked"), "a panic in the log");
    let errors: Vec<_> = log.lines().filter(|l| l.contains(" ERROR ")).collect();
    assert!(
        errors.is_empty(),
        "errors in the log:\n{}",
        errors.join("\n")
    );
}

/// One connection's share of the run: `n` requests from `seed`, each
/// checked; gives the count of each status.
async fn lane_run(
    seed: u64,
    n: usize,
    k: &Known,
    client: &Client,
    log: &Log,
    tls: Tls,
) -> BTreeMap<u16, usize> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut statuses = BTreeMap::new();
    for i in 0..n {
        // Deletes and retags wear the image away; push it again now and then
        // so that later requests still find what they name. (Another lane's
        // delete may refuse the manifest: a race, not a failure.)
        if i % 200 == 199 {
            client.push_blob(k.repo, CONFIG).await;
            client.push_blob(k.repo, &k.layer_bytes).await;
            client
                .put_manifest(k.repo, k.tag, OCI_MANIFEST, &k.manifest_bytes)
                .await;
        }
        let x = exchange(&mut rng, k);
        let shown = format!(
            "request {i} (lane seed {seed}): {:?}",
            String::from_utf8_lossy(&x.raw[..x.raw.len().min(600)])
        );
        let (raw, addr, tls) = (x.raw.clone(), client.addr(), tls.clone());
        // Bytes that end mid-head wait for the server's 30 s header timeout:
        // not worth waiting for.
        let patience = Duration::from_secs(if x.well_formed { 10 } else { 1 });
        let a = tokio::task::spawn_blocking(move || send(&addr, &raw, patience, tls))
            .await
            .unwrap();
        let a = match a {
            Ok(a) => a,
            Err(e) if !x.well_formed => Answer {
                status: 0,
                head: format!("({e})"),
                body: Vec::new(),
            },
            Err(e) => panic!("{shown}: {e}"),
        };
        let shown = if a.status >= 500 {
            // What the server said about it, for the failure's message.
            tokio::time::sleep(Duration::from_millis(200)).await;
            let id = header(&a.head, "x-request-id").unwrap_or("?");
            let lines = log
                .lock()
                .unwrap()
                .iter()
                .filter(|l| l.contains(id) || l.contains("ERROR") || l.contains("WARN"))
                .cloned()
                .collect::<Vec<_>>();
            format!("{shown}\nserver log:\n{}\n", lines.join("\n"))
        } else {
            shown
        };
        check(&x, &a, &shown);
        *statuses.entry(a.status).or_default() += 1;
        if a.status == 202
            && let Some(loc) = header(&a.head, "location")
            && loc.starts_with('/')
        {
            k.sessions.lock().unwrap().push(loc.to_string());
        }
    }
    statuses
}

#[tokio::test]
async fn random_requests_get_the_spec_s_answers_and_leave_the_store_whole() {
    let s = Server::start();
    fuzz(&s, &s.client(), None, 10_000, None).await;
    common::store::check(&s.data);
}

#[tokio::test]
async fn random_requests_with_authentication_on() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let config = common::auth_config(
        dir.path(),
        "fuzz",
        "fuzz-pw",
        "failed_login_limit = 0\n[[auth.rules]]\nsubject = \"fuzz\"\n\
         permissions = [\"push:fuzz/*\", \"pull:**\", \"admin:**\"]\n",
    );
    let s = Server::start_on(&data, &[("NORA_CONFIG", config.to_str().unwrap())]);
    let login = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("fuzz:fuzz-pw")
    );
    fuzz(
        &s,
        &s.client_with(&login),
        Some(login.clone()),
        10_000,
        None,
    )
    .await;
    common::store::check(&s.data);
}

/// On S3 (moto: s3s-fs cannot hold keys as long as a referrer's), the
/// store is checked through a copy: `nora migrate` to a directory.
#[tokio::test]
async fn random_requests_on_s3() {
    let s3 = common::s3::S3Server::start(common::s3::Kind::Moto);
    let dir = tempfile::tempdir().unwrap();
    let env = s3.env("fuzz");
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let s = Server::start_on(&dir.path().join("data"), &env);
    // Fewer: each request is several to moto, in Python.
    fuzz(&s, &s.client(), None, 4_000, None).await;
    common::store::check(&common::store::copy_of_s3(&env, &dir.path().join("copy")));
}

/// Over HTTPS, nora terminating TLS: the same requests inside TLS records.
#[tokio::test]
async fn random_requests_over_https() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = common::write_pair(dir.path(), "server");
    let s = Server::start_on(
        &dir.path().join("data"),
        &[
            ("NORA_TLS_CERT", cert.to_str().unwrap()),
            ("NORA_TLS_KEY", key.to_str().unwrap()),
        ],
    );
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(&cert).unwrap())
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    fuzz(
        &s,
        &common::trusting(&s, &cert),
        None,
        10_000,
        Some(Arc::new(config)),
    )
    .await;
    common::store::check(&s.data);
}

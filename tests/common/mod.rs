//! Test harness: runs the real `nora` binary on an ephemeral port with its
//! own storage directory, and small helpers to speak the OCI API to it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256, Sha512};

pub mod s3;
pub mod store;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

pub struct Server {
    pub child: Child,
    pub url: String,
    pub data: PathBuf,
    _dir: Option<tempfile::TempDir>,
    pub log: Arc<Mutex<Vec<String>>>,
    /// Set: the log's reader goes away at the next line (see `drop_log`).
    log_gone: Arc<std::sync::atomic::AtomicBool>,
}

impl Server {
    /// A server on fresh, empty storage.
    pub fn start() -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        let mut s = Server::start_on(&data, &[]);
        s._dir = Some(dir);
        s
    }

    /// A server on `data` (kept when the server stops), with extra env vars.
    pub fn start_on(data: &Path, env: &[(&str, &str)]) -> Server {
        Server::start_program(Command::new(env!("CARGO_BIN_EXE_nora")), data, env)
    }

    /// A server run by `program` as user `uid` (which must be able to run
    /// it: the build directory is often in root's home).
    #[allow(dead_code)]
    pub fn start_as(program: &Path, uid: u32, data: &Path) -> Server {
        use std::os::unix::process::CommandExt;
        let mut cmd = Command::new(program);
        cmd.uid(uid).gid(uid);
        Server::start_program(cmd, data, &[])
    }

    fn start_program(mut cmd: Command, data: &Path, env: &[(&str, &str)]) -> Server {
        cmd.arg("serve")
            .env("NORA_HOST", "127.0.0.1")
            .env("NORA_PORT", "0")
            .env("NORA_STORAGE_PATH", data)
            .env("NORA_LOG_FORMAT", "text")
            .env(
                "NORA_LOG_LEVEL",
                std::env::var("NORA_TEST_LOG_LEVEL").unwrap_or_else(|_| "info".into()),
            )
            .env("NORA_STORAGE_FSYNC", "false")
            .env_remove("NORA_CONFIG")
            .current_dir(data.parent().unwrap_or(Path::new("/tmp")))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn nora");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let log2 = log.clone();
        let log_gone = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let gone = log_gone.clone();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(i) = line.find("listening on http") {
                    // scheme://host:port, in a text line or a JSON one.
                    let url: String = line[i + "listening on ".len()..]
                        .chars()
                        .take_while(|c| {
                            c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '/' | '[' | ']')
                        })
                        .collect();
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(url);
                    }
                }
                log2.lock().unwrap().push(line);
                if gone.load(std::sync::atomic::Ordering::Relaxed) {
                    break; // closes the pipe: nora's next log write fails
                }
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("nora did not start; log: {:?}", log.lock().unwrap()));
        Server {
            child,
            url,
            data: data.to_path_buf(),
            _dir: None,
            log,
            log_gone,
        }
    }

    /// Closes the server's stderr pipe after the next line it logs, as a
    /// log shipper that dies would.
    pub fn drop_log(&self) {
        self.log_gone
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let start = Instant::now();
        while start.elapsed() < within {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Whether the log comes to hold `text` within 10 s: the server's lines
    /// reach the test through a pipe and a reader thread, after the answer
    /// they belong to may have.
    pub async fn logged(&self, text: &str) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.log_text().contains(text) {
            if Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    }

    pub fn client(&self) -> Client {
        Client {
            http: reqwest::Client::new(),
            url: self.url.clone(),
        }
    }

    /// A client that sends `authorization` (`Bearer …`, `Basic …`) with
    /// every request.
    pub fn client_with(&self, authorization: &str) -> Client {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("Authorization", authorization.parse().unwrap());
        Client {
            http: reqwest::Client::builder()
                .default_headers(h)
                .build()
                .unwrap(),
            url: self.url.clone(),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Orphan blobs written straight into the layout: enough that a gc of them
/// runs for a while (seconds in a debug build).
pub fn write_orphans(data: &Path, n: usize) {
    for i in 0..n {
        let bytes = format!("orphan {i}");
        let hex = sha256(bytes.as_bytes());
        let hex = hex.trim_start_matches("sha256:");
        let dir = data.join(format!("blobs/sha256/{}/{hex}", &hex[..2]));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("data"), bytes).unwrap();
    }
}

/// An upload session's location with `digest=` added, the URL that closes it.
pub fn closing_url(location: &str, digest: &str) -> String {
    let sep = if location.contains('?') { '&' } else { '?' };
    format!("{location}{sep}digest={digest}")
}

/// A config file in `dir` that turns authentication on with one htpasswd
/// user, `user` with `password`; `rest` follows `[auth]`'s first lines
/// (more `[auth]` settings, then rules and other sections). Its path.
pub fn auth_config(dir: &Path, user: &str, password: &str, rest: &str) -> PathBuf {
    let users = dir.join("users.htpasswd");
    let hash = bcrypt::hash(password, 4).unwrap();
    std::fs::write(&users, format!("{user}:{hash}\n")).unwrap();
    let config = dir.join("nora.toml");
    std::fs::write(
        &config,
        format!("[auth]\nenabled = true\nhtpasswd_file = {users:?}\n{rest}"),
    )
    .unwrap();
    config
}

/// A self-signed certificate for 127.0.0.1 and localhost, and its key, as
/// PEM files `<name>.crt` and `<name>.key` in `dir`.
pub fn write_pair(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let names = vec!["127.0.0.1".to_string(), "localhost".to_string()];
    let pair = rcgen::generate_simple_self_signed(names).unwrap();
    let cert = dir.join(format!("{name}.crt"));
    let key = dir.join(format!("{name}.key"));
    std::fs::write(&cert, pair.cert.pem()).unwrap();
    std::fs::write(&key, pair.signing_key.serialize_pem()).unwrap();
    (cert, key)
}

/// A client of `s` that trusts only `cert`.
pub fn trusting(s: &Server, cert: &Path) -> Client {
    let root = reqwest::Certificate::from_pem(&std::fs::read(cert).unwrap()).unwrap();
    let http = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(root)
        .build()
        .unwrap();
    Client {
        http,
        url: s.url.clone(),
    }
}

pub fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

pub fn sha512(data: &[u8]) -> String {
    format!("sha512:{}", hex::encode(Sha512::digest(data)))
}

/// A thin OCI client over reqwest.
#[derive(Clone)]
pub struct Client {
    pub http: reqwest::Client,
    pub url: String,
}

impl Client {
    pub fn u(&self, path: &str) -> String {
        format!("{}{}", self.url, path)
    }

    /// `host:port`, for tests that speak raw HTTP on a socket.
    pub fn addr(&self) -> String {
        self.url
            .trim_start_matches("http://")
            .trim_start_matches("https://")
            .trim_end_matches('/')
            .to_string()
    }

    /// `method` `path` with `body`, answered whatever its status.
    pub async fn send(&self, method: &str, path: &str, body: &str) -> reqwest::Response {
        self.http
            .request(method.parse().unwrap(), self.u(path))
            .body(body.to_string())
            .send()
            .await
            .unwrap()
    }

    /// GET `path` and the bytes of its answer, whatever its status.
    pub async fn get_bytes(&self, path: &str) -> bytes::Bytes {
        self.http
            .get(self.u(path))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap()
    }

    /// GET `path` and its JSON answer.
    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        self.http
            .get(self.u(path))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// A relative or absolute Location, as a full URL.
    pub fn loc(&self, location: &str) -> String {
        if location.starts_with("http") {
            location.to_string()
        } else {
            self.u(location)
        }
    }

    /// Monolithic upload (POST ?digest=); returns the digest.
    pub async fn push_blob(&self, repo: &str, data: &[u8]) -> String {
        let d = sha256(data);
        let r = self
            .http
            .post(self.u(&format!("/v2/{repo}/blobs/uploads/?digest={d}")))
            .body(data.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "push_blob {repo}: {:?}", r.text().await);
        d
    }

    pub async fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        body: &[u8],
    ) -> reqwest::Response {
        self.http
            .put(self.u(&format!("/v2/{repo}/manifests/{reference}")))
            .header("Content-Type", media_type)
            .body(body.to_vec())
            .send()
            .await
            .unwrap()
    }

    /// `POST /api/v1/gc` with this grace: a whole collection, answered when
    /// done (200, or 409 while another runs).
    pub async fn gc(&self, grace_seconds: u64) -> reqwest::Response {
        self.http
            .post(self.u("/api/v1/gc"))
            .json(&serde_json::json!({ "grace_seconds": grace_seconds }))
            .send()
            .await
            .unwrap()
    }

    /// Pushes config + one layer + an OCI manifest tagged `tag`; returns
    /// (manifest digest, manifest bytes).
    pub async fn push_image(&self, repo: &str, tag: &str, layer: &[u8]) -> (String, Vec<u8>) {
        let config = br#"{"architecture":"amd64","os":"linux"}"#;
        let cd = self.push_blob(repo, config).await;
        let ld = self.push_blob(repo, layer).await;
        let manifest = image_manifest(&cd, config.len(), &[(ld, layer.len())]);
        let r = self.put_manifest(repo, tag, OCI_MANIFEST, &manifest).await;
        assert_eq!(r.status(), 201, "push_image: {:?}", r.text().await);
        (sha256(&manifest), manifest)
    }
}

pub fn image_manifest(config: &str, config_size: usize, layers: &[(String, usize)]) -> Vec<u8> {
    let layers: Vec<_> = layers
        .iter()
        .map(|(d, s)| serde_json::json!({"mediaType": OCI_LAYER, "digest": d, "size": s}))
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config, "size": config_size},
        "layers": layers,
    }))
    .unwrap()
}

/// Pushes like real clients do: HEAD each blob, upload only the missing
/// ones, then PUT the manifest. The config blob is shared by every image, so
/// pushes keep relying on a blob GC may be collecting at that moment.
pub async fn push_like_a_client(c: &Client, repo: &str, tag: &str, layer: &[u8]) -> Option<String> {
    let config = br#"{"architecture":"amd64","os":"linux","shared":true}"#;
    let mut digests = Vec::new();
    for blob in [&config[..], layer] {
        let d = sha256(blob);
        let head = c
            .http
            .head(c.u(&format!("/v2/{repo}/blobs/{d}")))
            .send()
            .await
            .ok()?;
        if head.status() != 200 {
            let r = c
                .http
                .post(c.u(&format!("/v2/{repo}/blobs/uploads/?digest={d}")))
                .body(blob.to_vec())
                .send()
                .await
                .ok()?;
            if r.status() != 201 {
                return None;
            }
        }
        digests.push((d, blob.len()));
    }
    let manifest = image_manifest(&digests[0].0, digests[0].1, &digests[1..]);
    let r = c.put_manifest(repo, tag, OCI_MANIFEST, &manifest).await;
    (r.status() == 201).then(|| sha256(&manifest))
}

/// Pulls `repo:tag` and checks the manifest digest and every blob's bytes.
pub async fn verify_pull(c: &Client, repo: &str, tag: &str, want: &str) {
    let r = c
        .http
        .get(c.u(&format!("/v2/{repo}/manifests/{tag}")))
        .header("Accept", OCI_MANIFEST)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{repo}:{tag} manifest");
    let body = r.bytes().await.unwrap();
    assert_eq!(sha256(&body), want, "{repo}:{tag} manifest digest");
    let m: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let mut blobs = vec![m["config"]["digest"].as_str().unwrap().to_string()];
    for l in m["layers"].as_array().unwrap() {
        blobs.push(l["digest"].as_str().unwrap().to_string());
    }
    for d in blobs {
        let r = c
            .http
            .get(c.u(&format!("/v2/{repo}/blobs/{d}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{repo}:{tag} blob {d}");
        assert_eq!(
            sha256(&r.bytes().await.unwrap()),
            d,
            "{repo}:{tag} blob bytes"
        );
    }
}

/// The status and the first error code of an OCI error answer; panics when
/// the body is not the spec's `{"errors":[{"code","message"}]}` form.
pub async fn oci_error(r: reqwest::Response) -> (u16, String) {
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap_or("").to_string())
        .unwrap_or_default();
    let body = r.bytes().await.expect("error body");
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_else(|e| {
        panic!(
            "status {status}: error body is not JSON ({e}): {:?}",
            String::from_utf8_lossy(&body)
        )
    });
    assert!(
        ct.starts_with("application/json"),
        "error content-type {ct:?}"
    );
    let first = &v["errors"][0];
    assert!(first["message"].is_string(), "error without message: {v}");
    (
        status,
        first["code"].as_str().expect("error code").to_string(),
    )
}

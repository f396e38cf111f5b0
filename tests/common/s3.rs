//! A real S3-compatible server on 127.0.0.1 for tests: `s3s-fs` (on disk,
//! survives a restart: the fault tests) or `moto_server` (in memory, quick).
//! `.ci/run` installs both. Used by the integration tests and, through
//! `#[path]`, by the storage suite in src/storage/s3.rs.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BUCKET: &str = "nora";
pub const ACCESS_KEY: &str = "test-access";
pub const SECRET_KEY: &str = "test-secret-key";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    S3sFs,
    Moto,
}

pub struct S3Server {
    pub kind: Kind,
    pub endpoint: String,
    port: u16,
    child: Option<Child>,
    root: tempfile::TempDir,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `name` on PATH, else in ~/.cargo/bin (where `cargo install` puts it).
fn binary(name: &str) -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join(name))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let home = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo/bin").join(name));
    on_path
        .into_iter()
        .chain(home)
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{name} not found: scripts/test-all installs it"))
}

impl S3Server {
    pub fn start(kind: Kind) -> S3Server {
        let root = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut s = S3Server {
            kind,
            endpoint: format!("http://127.0.0.1:{port}"),
            port,
            child: None,
            root,
        };
        if kind == Kind::S3sFs {
            // s3s-fs keeps one directory per bucket.
            std::fs::create_dir_all(s.root.path().join(BUCKET)).unwrap();
        }
        s.spawn();
        if kind == Kind::Moto {
            s.raw("PUT", &format!("/{BUCKET}"));
        }
        s
    }

    fn spawn(&mut self) {
        let port = self.port.to_string();
        let mut cmd = match self.kind {
            Kind::S3sFs => {
                let mut c = Command::new(binary("s3s-fs"));
                c.args(["--host", "127.0.0.1", "--port", &port])
                    .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
                    .arg(self.root.path());
                c
            }
            Kind::Moto => {
                let mut c = Command::new(binary("moto_server"));
                c.args(["-H", "127.0.0.1", "-p", &port]);
                c
            }
        };
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the S3 server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "S3 server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// An unsigned request (moto does not check signatures): creating the
    /// bucket without pulling an S3 client into the tests.
    fn raw(&self, method: &str, path: &str) {
        let mut c = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        write!(
            c,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.port
        )
        .unwrap();
        let mut answer = String::new();
        let _ = c.read_to_string(&mut answer);
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }

    /// Kills the server (a crash, as far as nora can tell).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port and data (s3s-fs only keeps data).
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// How many objects s3s-fs holds under `prefix` (it keeps one file per
    /// object): lets a fault test wait for a copy to be under way instead
    /// of guessing with a sleep.
    pub fn stored_objects(&self, prefix: &str) -> usize {
        assert_eq!(self.kind, Kind::S3sFs, "only s3s-fs keeps files");
        fn count(dir: &std::path::Path) -> usize {
            std::fs::read_dir(dir)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| match e.file_type() {
                    Ok(t) if t.is_dir() => count(&e.path()),
                    Ok(t) if t.is_file() && !e.file_name().to_string_lossy().starts_with('.') => 1,
                    _ => 0,
                })
                .sum()
        }
        count(&self.root.path().join(BUCKET).join(prefix))
    }

    /// The `NORA_*` variables that put a nora on this server's bucket.
    pub fn env(&self, prefix: &str) -> Vec<(&'static str, String)> {
        vec![
            ("NORA_STORAGE_MODE", "s3".into()),
            ("NORA_S3_ENDPOINT", self.endpoint.clone()),
            ("NORA_S3_BUCKET", BUCKET.into()),
            ("NORA_S3_PREFIX", prefix.into()),
            ("NORA_S3_REGION", "us-east-1".into()),
            ("NORA_S3_PATH_STYLE", "true".into()),
            ("NORA_S3_ACCESS_KEY", ACCESS_KEY.into()),
            ("NORA_S3_SECRET_KEY", SECRET_KEY.into()),
        ]
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}

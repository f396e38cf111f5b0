//! Configuration: built-in defaults, then a TOML file, then `NORA_*`
//! environment variables, each overriding the one before. Unknown keys and
//! bad values are errors that name the key and where it came from.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

pub use self::load::{MAX_SMALL_FILE, check_s3_prefix, read_small_file};

mod env;
mod load;
#[cfg(test)]
mod tests;
mod toml_error;

pub const DEFAULT_CONFIG_FILE: &str = "config.toml";

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: Server,
    pub storage: Storage,
    pub log: Log,
    pub gc: Gc,
    pub schedule: Schedule,
    pub auth: Auth,
    /// `[[retention]]` rules (see registry/retention.rs for how they combine).
    pub retention: Vec<crate::registry::retention::Rule>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Gc {
    /// Blobs younger than this are never collected, so in-flight pushes are safe.
    #[serde(with = "humantime_serde_compat")]
    pub grace: Duration,
}

impl Default for Gc {
    fn default() -> Self {
        Gc {
            grace: Duration::from_secs(3600),
        }
    }
}

/// When `nora serve` runs maintenance by itself: an interval ("6h") or a
/// five-field cron expression ("0 3 * * *", UTC). Unset: never.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Schedule {
    pub gc: Option<String>,
    pub retention: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Server {
    pub host: String,
    pub port: u16,
    /// The external URL used wherever nora writes an absolute link.
    pub public_url: Option<String>,
    /// How long in-flight requests may run after SIGTERM before exit.
    #[serde(with = "humantime_serde_compat")]
    pub shutdown_timeout: Duration,
    /// A request body that sends nothing for this long is abandoned (its
    /// connection, temp file and upload would otherwise be held forever).
    #[serde(with = "humantime_serde_compat")]
    pub body_timeout: Duration,
    /// HTTPS: a PEM certificate chain and its private key. Replaced files
    /// are picked up without a restart (see serve/tls.rs).
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Serve pulls only: pushes, deletes and maintenance are refused, and
    /// nothing is written (a migration window, a store shipped on a
    /// read-only medium). Also on when the storage is mounted read-only.
    pub read_only: bool,
    /// Serve `GET /metrics` (off: a 404, for a server whose counters are
    /// nobody's business outside; the counting goes on, unseen).
    pub metrics: bool,
}

impl Server {
    /// `https` when the server terminates TLS itself.
    pub fn scheme(&self) -> &'static str {
        if self.tls_cert.is_some() {
            "https"
        } else {
            "http"
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Storage {
    /// "local" (the filesystem under `path`) or "s3" (`[storage.s3]`).
    pub mode: String,
    pub path: PathBuf,
    /// Flush every object to disk before it becomes visible, and the
    /// directory entry naming it once it is.
    pub fsync: bool,
    /// Abandoned upload sessions older than this are removed.
    #[serde(with = "humantime_serde_compat")]
    pub upload_ttl: Duration,
    pub s3: S3,
}

/// `[storage.s3]`: any S3-compatible object store. Unset keys fall back to
/// the SDK's standard `AWS_*` variables and profiles.
#[derive(Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct S3 {
    /// e.g. "http://127.0.0.1:9000"; AWS itself when absent.
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub bucket: String,
    /// Every key nora writes starts with this (several registries, one bucket).
    pub prefix: String,
    /// `http://host/bucket/key` instead of `http://bucket.host/key` (MinIO,
    /// Ceph, Garage and most self-hosted servers want this).
    pub path_style: bool,
    pub access_key: Option<String>,
    pub secret_key: Option<String>,
}

/// Never prints the secret key (configs end up in logs and bug reports).
impl std::fmt::Debug for S3 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("path_style", &self.path_style)
            .field("access_key", &self.access_key)
            .field("secret_key", &self.secret_key.as_ref().map(|_| "<hidden>"))
            .finish()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Log {
    /// trace, debug, info, warn or error (or a tracing filter directive).
    pub level: String,
    /// text or json.
    pub format: String,
}

impl Default for Server {
    fn default() -> Self {
        Server {
            host: "127.0.0.1".into(),
            port: 4000,
            public_url: None,
            shutdown_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(60),
            tls_cert: None,
            tls_key: None,
            read_only: false,
            metrics: true,
        }
    }
}

impl Default for Storage {
    fn default() -> Self {
        Storage {
            mode: "local".into(),
            path: PathBuf::from("nora-data"),
            fsync: true,
            upload_ttl: Duration::from_secs(24 * 3600),
            s3: S3::default(),
        }
    }
}

/// `[auth]`: off by default. When on, every request needs credentials except
/// `/health`, `/ready`, and reads when `anonymous_read` is set.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Auth {
    pub enabled: bool,
    /// htpasswd file of users (bcrypt or argon2), relative to the working dir.
    pub htpasswd_file: Option<PathBuf>,
    pub anonymous_read: bool,
    /// The `service` of the token flow (the JWT audience).
    pub service: String,
    /// Lifetime of the registry tokens `/auth/token` issues.
    #[serde(with = "humantime_serde_compat")]
    pub token_ttl: Duration,
    /// Failed logins from one address before it is refused for a while
    /// (0: never).
    pub failed_login_limit: u32,
    /// Named groups of users, usable as rule subjects.
    pub groups: std::collections::BTreeMap<String, Vec<String>>,
    /// `[[auth.rules]]`: what each user, group or token may do. With no rules,
    /// every htpasswd user may do everything.
    pub rules: Vec<AuthRule>,
    /// `[[auth.oidc.providers]]`: CI workload identity (see auth/oidc.rs).
    pub oidc: Oidc,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Oidc {
    pub providers: Vec<OidcProvider>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcProvider {
    pub name: String,
    /// Exactly as the ID tokens' `iss` says; discovery is fetched from it.
    pub issuer: String,
    /// The `aud` ID tokens must carry.
    pub audience: String,
    #[serde(default)]
    pub rules: Vec<OidcRule>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcRule {
    /// Claim name -> glob its (string) value must match; all must match.
    #[serde(rename = "match")]
    pub claims: std::collections::BTreeMap<String, String>,
    pub permissions: Vec<String>,
}

impl Default for Auth {
    fn default() -> Self {
        Auth {
            enabled: false,
            htpasswd_file: None,
            anonymous_read: false,
            service: "nora".into(),
            token_ttl: Duration::from_secs(300),
            failed_login_limit: 10,
            groups: Default::default(),
            rules: Vec::new(),
            oidc: Oidc::default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthRule {
    pub subject: String,
    pub permissions: Vec<String>,
}

impl Default for Log {
    fn default() -> Self {
        Log {
            level: "info".into(),
            format: "text".into(),
        }
    }
}

/// serde glue for optional durations ("90d").
pub mod opt_duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let s = Option::<String>::deserialize(d)?;
        s.map(|s| {
            humantime::parse_duration(&s)
                .map_err(|e| serde::de::Error::custom(format!("invalid duration {s:?}: {e}")))
        })
        .transpose()
    }

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&humantime::format_duration(*d).to_string()),
            None => s.serialize_none(),
        }
    }
}

/// serde glue for durations written as "30s", "24h", "90d".
mod humantime_serde_compat {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s)
            .map_err(|e| serde::de::Error::custom(format!("invalid duration {s:?}: {e}")))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{origin}: {key} = {value:?}: {message}")]
    Value {
        origin: String,
        key: String,
        value: String,
        message: String,
    },
}

//! Configuration: built-in defaults, then a TOML file, then `NORA_*`
//! environment variables, each overriding the one before. Unknown keys and
//! bad values are errors that name the key and where it came from.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

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

/// A level, or comma-separated `target=level` directives. tracing's own
/// parser takes any word as a target, so a typo (`warning`) would turn all
/// logging off, the audit lines included.
fn valid_log_level(s: &str) -> bool {
    let level = |l: &str| {
        matches!(
            l.trim().to_ascii_lowercase().as_str(),
            "trace" | "debug" | "info" | "warn" | "error" | "off"
        )
    };
    !s.trim().is_empty()
        && s.split(',').all(|d| match d.split_once('=') {
            Some((target, l)) => !target.trim().is_empty() && level(l),
            None => level(d),
        })
        && tracing_subscriber::EnvFilter::try_new(s).is_ok()
}

/// Where one setting can come from in the environment.
struct EnvVar {
    name: &'static str,
    key: &'static str,
    set: fn(&mut Config, &str) -> Result<(), String>,
}

fn parse_bool(v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err("expected true or false".into()),
    }
}

fn parse_duration(v: &str) -> Result<Duration, String> {
    humantime::parse_duration(v).map_err(|e| format!("invalid duration: {e}"))
}

const ENV_VARS: &[EnvVar] = &[
    EnvVar {
        name: "NORA_HOST",
        key: "server.host",
        set: |c, v| {
            c.server.host = v.into();
            Ok(())
        },
    },
    EnvVar {
        name: "NORA_PORT",
        key: "server.port",
        set: |c, v| {
            c.server.port = v
                .parse()
                .map_err(|_| "expected a port number (0-65535)".to_string())?;
            Ok(())
        },
    },
    EnvVar {
        name: "NORA_PUBLIC_URL",
        key: "server.public_url",
        set: |c, v| {
            c.server.public_url = Some(v.into());
            Ok(())
        },
    },
    EnvVar {
        name: "NORA_SHUTDOWN_TIMEOUT",
        key: "server.shutdown_timeout",
        set: |c, v| {
            c.server.shutdown_timeout = parse_duration(v)?;
            Ok(())
        },
    },
    EnvVar {
        name: "NORA_BODY_TIMEOUT",
        key: "server.body_timeout",
        set: |c, v| {
            c.server.body_timeout = parse_duration(v)?;
            Ok(())
        },
    },
    EnvVar {
        name: "NORA_TLS_CERT",
        key: "server.tls_cert",
        set: |c, v| {
            c.server.tls_cert = Some(v.into());
            Ok(())
        },
    },
    EnvVar {
        name: "NORA_TLS_KEY",
        key: "server.tls_key",
        set: |c, v| {
            c.server.tls_key = Some(v.into());
            Ok(())
        },
    },
    EnvVar {
        name: "NORA_READ_ONLY",
        key: "server.read_only",
        set: |c, v| {
            c.server.read_only = parse_bool(v)?;
            Ok(())
        },
    },
    EnvVar {
        name: "NORA_METRICS",
        key: "server.metrics",
        set: |c, v| {
            c.server.metrics = parse_bool(v)?;
            Ok(())
        },
    },
    EnvVar {
        name: "NORA_STORAGE_MODE",
        key: "storage.mode",
        set: |c, v| {
            c.storage.mode = v.into();
            Ok(())
        },
    },
    EnvVar {
        name: "NORA_STORAGE_PATH",
        key: "storage.path",
        set: |c, v| {
            c.storage.path = v.into();
            Ok(())
        },
    },
    EnvVar {
        name: "NORA_STORAGE_FSYNC",
        key: "storage.fsync",
        set: |c, v| {
            c.storage.fsync = parse_bool(v)?;
            Ok(())
        },
    },
    EnvVar {
        name: "NORA_UPLOAD_TTL",
        key: "storage.upload_ttl",
        set: |c, v| {
            c.storage.upload_ttl = parse_duration(v)?;
            Ok(())
        },
    },
    EnvVar {
        name: "NORA_S3_ENDPOINT",
        key: "storage.s3.endpoint",
        set: |c, v| {
            c.storage.s3.endpoint = Some(v.into());
            Ok(())
        },
    },
    EnvVar {
        name: "NORA_S3_REGION",
        key: "storage.s3.region",
        set: |c, v| {
            c.storage.s3.region = Some(v.into());
            Ok(())
        },
    },
    EnvVar {
        name: "NORA_S3_BUCKET",
        key: "storage.s3.bucket",
        set: |c, v| {
            c.storage.s3.bucket = v.into();
            Ok(())
        },
    },
    EnvVar {
        name: "NORA_S3_PREFIX",
        key: "storage.s3.prefix",
        set: |c, v| {
            c.storage.s3.prefix = v.into();
            Ok(())
        },
    },
    EnvVar {
        name: "NORA_S3_PATH_STYLE",
        key: "storage.s3.path_style",
        set: |c, v| {
            c.storage.s3.path_style = parse_bool(v)?;
            Ok(())
        },
    },
    EnvVar {
        name: "NORA_S3_ACCESS_KEY",
        key: "storage.s3.access_key",
        set: |c, v| {
            c.storage.s3.access_key = Some(v.into());
            Ok(())
        },
    },
    EnvVar {
        name: "NORA_S3_SECRET_KEY",
        key: "storage.s3.secret_key",
        set: |c, v| {
            c.storage.s3.secret_key = Some(v.into());
            Ok(())
        },
    },
    EnvVar {
        name: "NORA_GC_GRACE",
        key: "gc.grace",
        set: |c, v| {
            c.gc.grace = parse_duration(v)?;
            Ok(())
        },
    },
    EnvVar {
        name: "NORA_SCHEDULE_GC",
        key: "schedule.gc",
        set: |c, v| {
            c.schedule.gc = Some(v.into()).filter(|v: &String| !v.is_empty());
            Ok(())
        },
    },
    EnvVar {
        name: "NORA_SCHEDULE_RETENTION",
        key: "schedule.retention",
        set: |c, v| {
            c.schedule.retention = Some(v.into()).filter(|v: &String| !v.is_empty());
            Ok(())
        },
    },
    EnvVar {
        name: "NORA_AUTH_ENABLED",
        key: "auth.enabled",
        set: |c, v| {
            c.auth.enabled = parse_bool(v)?;
            Ok(())
        },
    },
    EnvVar {
        name: "NORA_AUTH_HTPASSWD_FILE",
        key: "auth.htpasswd_file",
        set: |c, v| {
            c.auth.htpasswd_file = Some(v.into()).filter(|p: &PathBuf| !p.as_os_str().is_empty());
            Ok(())
        },
    },
    EnvVar {
        name: "NORA_AUTH_ANONYMOUS_READ",
        key: "auth.anonymous_read",
        set: |c, v| {
            c.auth.anonymous_read = parse_bool(v)?;
            Ok(())
        },
    },
    EnvVar {
        name: "NORA_AUTH_FAILED_LOGIN_LIMIT",
        key: "auth.failed_login_limit",
        set: |c, v| {
            c.auth.failed_login_limit = v
                .parse()
                .map_err(|_| "expected a number (0: no limit)".to_string())?;
            Ok(())
        },
    },
    EnvVar {
        name: "NORA_AUTH_TOKEN_TTL",
        key: "auth.token_ttl",
        set: |c, v| {
            c.auth.token_ttl = parse_duration(v)?;
            Ok(())
        },
    },
    EnvVar {
        name: "NORA_LOG_LEVEL",
        key: "log.level",
        set: |c, v| {
            c.log.level = v.into();
            Ok(())
        },
    },
    EnvVar {
        name: "NORA_LOG_FORMAT",
        key: "log.format",
        set: |c, v| {
            c.log.format = v.into();
            Ok(())
        },
    },
];

/// What a `[storage.s3] prefix` may not be: keys are `<prefix>/<key>`, so a
/// leading or doubled `/` makes keys no other tool finds the same way, and a
/// `.` or `..` component is refused, or resolved elsewhere, by stores that
/// keep objects as files (MinIO, s3s-fs).
pub fn check_s3_prefix(prefix: &str) -> Result<(), &'static str> {
    if prefix.starts_with('/') || prefix.contains("//") {
        return Err("no leading or double /");
    }
    if prefix.split('/').any(|c| c == "." || c == "..") {
        return Err("no . or .. component");
    }
    if prefix.chars().any(char::is_control) {
        return Err("no control characters");
    }
    Ok(())
}

impl Config {
    /// Loads the configuration: `explicit` file (from `--config` or
    /// `NORA_CONFIG`) if given, else `./config.toml` if present, else
    /// defaults; then the environment.
    pub fn load(explicit: Option<&Path>) -> Result<Config, ConfigError> {
        // A value that is not UTF-8 would read as unset, and its default
        // would be used without a word.
        for var in ENV_VARS {
            if let Err(std::env::VarError::NotUnicode(raw)) = std::env::var(var.name) {
                return Err(ConfigError::Value {
                    origin: format!("environment variable {}", var.name),
                    key: var.key.into(),
                    value: raw.to_string_lossy().into_owned(),
                    message: "not valid UTF-8".into(),
                });
            }
        }
        Self::load_with(explicit, |name| std::env::var(name).ok())
    }

    pub fn load_with(
        explicit: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let file = match explicit {
            Some(p) => Some(p.to_path_buf()),
            None => Some(PathBuf::from(DEFAULT_CONFIG_FILE)).filter(|p| p.is_file()),
        };
        let (mut config, origin) = match &file {
            Some(path) => {
                let text = read_small_file(path, MAX_SMALL_FILE)
                    .and_then(|raw| {
                        String::from_utf8(raw).map_err(|_| {
                            std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text")
                        })
                    })
                    .map_err(|source| ConfigError::Read {
                        path: path.clone(),
                        source,
                    })?;
                let config: Config = toml::from_str(&text).map_err(|e| ConfigError::Parse {
                    path: path.clone(),
                    message: e.to_string().trim_end().replace('\n', " "),
                })?;
                (config, format!("config file {}", path.display()))
            }
            None => (Config::default(), "defaults".to_string()),
        };
        config.validate(&origin)?;
        let mut from_env = false;
        for var in ENV_VARS {
            if let Some(value) = env(var.name) {
                (var.set)(&mut config, &value).map_err(|message| ConfigError::Value {
                    origin: format!("environment variable {}", var.name),
                    key: var.key.into(),
                    value: value.clone(),
                    message,
                })?;
                config.validate(&format!("environment variable {}", var.name))?;
                from_env = true;
            }
        }
        let origin = if from_env {
            format!("{origin} and NORA_* variables")
        } else {
            origin
        };
        config.validate_s3(&origin)?;
        config.validate_tls(&origin)?;
        Ok(config)
    }

    /// S3 settings are checked together, once every source is applied (the
    /// keys come in pairs and from several variables).
    fn validate_s3(&self, origin: &str) -> Result<(), ConfigError> {
        if self.storage.mode != "s3" {
            return Ok(());
        }
        let err = |key: &str, value: &str, message: &str| ConfigError::Value {
            origin: origin.to_string(),
            key: key.into(),
            value: value.into(),
            message: message.into(),
        };
        let s3 = &self.storage.s3;
        if s3.bucket.is_empty() {
            return Err(err("storage.s3.bucket", "", "required with mode = \"s3\""));
        }
        if s3.access_key.is_some() != s3.secret_key.is_some() {
            return Err(err(
                "storage.s3.access_key",
                "",
                "give both access_key and secret_key, or neither (the AWS_* chain)",
            ));
        }
        if let Some(e) = &s3.endpoint
            && !(e.starts_with("http://") || e.starts_with("https://"))
        {
            return Err(err(
                "storage.s3.endpoint",
                e,
                "expected an http:// or https:// URL",
            ));
        }
        if let Err(why) = check_s3_prefix(&s3.prefix) {
            return Err(err("storage.s3.prefix", &s3.prefix, why));
        }
        Ok(())
    }

    /// The certificate and key come in a pair, possibly from two sources.
    fn validate_tls(&self, origin: &str) -> Result<(), ConfigError> {
        let (missing, given) = match (&self.server.tls_cert, &self.server.tls_key) {
            (Some(_), Some(_)) | (None, None) => return Ok(()),
            (Some(_), None) => ("server.tls_key", "server.tls_cert"),
            (None, Some(_)) => ("server.tls_cert", "server.tls_key"),
        };
        Err(ConfigError::Value {
            origin: origin.to_string(),
            key: missing.into(),
            value: String::new(),
            message: format!("required with {given} (give both, or neither)"),
        })
    }

    fn validate(&self, origin: &str) -> Result<(), ConfigError> {
        let err = |key: &str, value: &str, message: &str| ConfigError::Value {
            origin: origin.to_string(),
            key: key.into(),
            value: value.into(),
            message: message.into(),
        };
        let host = &self.server.host;
        if host.parse::<IpAddr>().is_err() && host != "localhost" {
            return Err(err(
                "server.host",
                host,
                "expected an IP address or localhost",
            ));
        }
        if let Some(url) = &self.server.public_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(err(
                "server.public_url",
                url,
                "expected an http:// or https:// URL",
            ));
        }
        match self.storage.mode.as_str() {
            "local" => {}
            "s3" => {}
            other => return Err(err("storage.mode", other, "supported modes: local, s3")),
        }
        if self.storage.path.as_os_str().is_empty() {
            return Err(err("storage.path", "", "must not be empty"));
        }
        if !valid_log_level(&self.log.level) {
            return Err(err(
                "log.level",
                &self.log.level,
                "expected trace, debug, info, warn, error or off, or target=level directives separated by commas",
            ));
        }
        if !matches!(self.log.format.as_str(), "text" | "json") {
            return Err(err("log.format", &self.log.format, "expected text or json"));
        }
        for (key, value) in [
            ("schedule.gc", &self.schedule.gc),
            ("schedule.retention", &self.schedule.retention),
        ] {
            if let Some(v) = value
                && let Err(e) = crate::schedule::When::parse(v)
            {
                return Err(err(key, v, &e));
            }
        }
        for (i, rule) in self.auth.rules.iter().enumerate() {
            for p in &rule.permissions {
                if let Err(e) = crate::auth::perms::Permission::parse(p) {
                    return Err(err(&format!("auth.rules[{i}].permissions"), p, &e));
                }
            }
        }
        for (i, provider) in self.auth.oidc.providers.iter().enumerate() {
            let key = format!("auth.oidc.providers[{i}]");
            if !provider.issuer.starts_with("https://") && !provider.issuer.starts_with("http://") {
                return Err(err(
                    &format!("{key}.issuer"),
                    &provider.issuer,
                    "expected a URL",
                ));
            }
            for rule in &provider.rules {
                for p in &rule.permissions {
                    if let Err(e) = crate::auth::perms::Permission::parse(p) {
                        return Err(err(&format!("{key}.rules.permissions"), p, &e));
                    }
                }
                for (claim, glob) in &rule.claims {
                    if let Err(e) = globset::Glob::new(glob) {
                        return Err(err(
                            &format!("{key}.rules.match.{claim}"),
                            glob,
                            &e.to_string(),
                        ));
                    }
                }
            }
        }
        if let Err((n, e)) = crate::registry::retention::validate(&self.retention) {
            let pattern = self.retention.get(n - 1).map_or("", |r| r.pattern.as_str());
            return Err(err(&format!("retention rule {n}: match"), pattern, &e));
        }
        Ok(())
    }

    /// The address to listen on.
    pub fn listen_addr(&self) -> String {
        let host = if self.server.host == "localhost" {
            "127.0.0.1"
        } else {
            &self.server.host
        };
        match host.parse::<IpAddr>() {
            Ok(IpAddr::V6(_)) => format!("[{host}]:{}", self.server.port),
            _ => format!("{host}:{}", self.server.port),
        }
    }
}

/// The most read of a configuration or credentials file: far more than
/// any real one, and a bound when the path names `/dev/zero` or a pipe
/// that never ends (read whole, it took all memory).
pub const MAX_SMALL_FILE: u64 = 1 << 20;

/// A file of at most `limit` bytes, read whole (pipes included, as
/// `--config <(...)` gives one); a longer one is an error.
pub fn read_small_file(path: &std::path::Path, limit: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut raw = Vec::new();
    std::fs::File::open(path)?
        .take(limit + 1)
        .read_to_end(&mut raw)?;
    if raw.len() as u64 > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than {} KiB", limit >> 10),
        ));
    }
    Ok(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), text).unwrap();
        f
    }

    #[test]
    fn defaults_without_a_file() {
        let c = Config::load_with(None, |_| None).unwrap();
        assert_eq!(c.listen_addr(), "127.0.0.1:4000");
        assert_eq!(c.storage.path, PathBuf::from("nora-data"));
    }

    #[test]
    fn env_overrides_file() {
        let f = write("[server]\nport = 5000\nhost = \"0.0.0.0\"\n");
        let c = Config::load_with(Some(f.path()), |k| {
            (k == "NORA_PORT").then(|| "6000".into())
        })
        .unwrap();
        assert_eq!(c.listen_addr(), "0.0.0.0:6000");
    }

    #[test]
    fn unknown_key_names_key_and_file() {
        let f = write("[server]\nprot = 5000\n");
        let e = Config::load_with(Some(f.path()), |_| None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("prot") && e.contains(&f.path().display().to_string()),
            "{e}"
        );
    }

    #[test]
    fn bad_values_are_errors() {
        let f = write("[log]\nformat = \"xml\"\n");
        let e = Config::load_with(Some(f.path()), |_| None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("log.format"), "{e}");
        let e = Config::load_with(None, |k| (k == "NORA_PORT").then(|| "99999".into()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("NORA_PORT") && e.contains("server.port"), "{e}");
        let f = write("[storage]\nupload_ttl = \"soon\"\n");
        assert!(Config::load_with(Some(f.path()), |_| None).is_err());
    }

    #[test]
    fn s3_prefixes_that_stores_would_read_another_way_are_refused() {
        for (prefix, why) in [
            ("/nora", "double /"),
            ("a//b", "double /"),
            ("../other", ".."),
            ("team/./nora", ".."),
            ("a/..", ".."),
            ("a\\u0001b", "control"),
        ] {
            let f = write(&format!(
                "[storage]\nmode = \"s3\"\n[storage.s3]\nbucket = \"b\"\nprefix = \"{prefix}\"\n"
            ));
            let e = Config::load_with(Some(f.path()), |_| None)
                .map(|_| ())
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("storage.s3.prefix") && e.contains(why),
                "{prefix}: {e}"
            );
        }
        for fine in ["", "nora", "team/nora/", "a.b/..c/v1.2"] {
            assert_eq!(check_s3_prefix(fine), Ok(()), "{fine}");
        }
    }

    #[test]
    fn tls_needs_a_certificate_and_its_key() {
        let f = write("[server]\ntls_cert = \"/etc/nora/cert.pem\"\n");
        let e = Config::load_with(Some(f.path()), |_| None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("server.tls_key") && e.contains("required with server.tls_cert"),
            "{e}"
        );
        let c = Config::load_with(Some(f.path()), |k| {
            (k == "NORA_TLS_KEY").then(|| "/etc/nora/key.pem".into())
        })
        .unwrap();
        assert_eq!(c.server.tls_key, Some(PathBuf::from("/etc/nora/key.pem")));
        assert_eq!(c.server.scheme(), "https");
        assert_eq!(Config::default().server.scheme(), "http");
    }

    /// A misspelt level used to pass as a target name and log nothing.
    #[test]
    fn log_levels_are_levels() {
        for bad in ["warning", "verbose", "", " ", "nora=loud", "=info", "info,"] {
            let e = Config::load_with(None, |k| (k == "NORA_LOG_LEVEL").then(|| bad.into()));
            let e = e.err().map(|e| e.to_string()).unwrap_or_default();
            assert!(e.contains("log.level"), "{bad:?}: {e}");
        }
        for good in ["info", "WARN", "off", "nora=debug,warn", "nora::audit=info"] {
            let c = Config::load_with(None, |k| (k == "NORA_LOG_LEVEL").then(|| good.into()));
            assert!(c.is_ok(), "{good:?}");
        }
    }
}

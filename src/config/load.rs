//! Loading: defaults, the file, the environment, then the checks that
//! name a bad key and where it came from.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use super::env::{ENV_VARS, valid_log_level};
use super::{Config, ConfigError, DEFAULT_CONFIG_FILE};

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
                    message: super::toml_error::describe(&text, &e),
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

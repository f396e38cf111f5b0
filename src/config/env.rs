//! `NORA_*` environment variables: which setting each one sets, and how
//! its text is read.

use std::path::PathBuf;
use std::time::Duration;

use super::Config;

/// A level, or comma-separated `target=level` directives. tracing's own
/// parser takes any word as a target, so a typo (`warning`) would turn all
/// logging off, the audit lines included.
pub(super) fn valid_log_level(s: &str) -> bool {
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
pub(super) struct EnvVar {
    pub(super) name: &'static str,
    pub(super) key: &'static str,
    pub(super) set: fn(&mut Config, &str) -> Result<(), String>,
}

pub(super) fn parse_bool(v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err("expected true or false".into()),
    }
}

pub(super) fn parse_duration(v: &str) -> Result<Duration, String> {
    humantime::parse_duration(v).map_err(|e| format!("invalid duration: {e}"))
}

pub(super) const ENV_VARS: &[EnvVar] = &[
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

//! S3 and SDK errors as one readable line, and as storage errors.

use std::io;
use std::time::SystemTime;

use aws_sdk_s3::error::SdkError;

use crate::storage::StorageError;

/// A body cut off mid-way: the SDK's own error says only "streaming error",
/// its causes say why (connection reset, closed early, …).
/// (No key: whoever reads the stream names what it was reading.)
pub(super) fn body_error(e: impl std::error::Error) -> io::Error {
    io::Error::other(format!("S3 stopped sending: {}", why(&e)))
}

/// An SDK error as one readable line: its chain of causes, each said once
/// ("dispatch failure: … tcp connect error: Connection refused"), without
/// the Debug dump `DisplayErrorContext` appends, and with no line breaks
/// (a server's error body may have some).
fn why(e: &dyn std::error::Error) -> String {
    let mut said: Vec<String> = Vec::new();
    let mut cause = Some(e);
    while let Some(c) = cause {
        let m = c
            .to_string()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        // Wrappers repeat their cause ("io error: x" then "x"), or say
        // nothing a reader needs ("streaming error").
        if !m.is_empty() && !said.iter().any(|s| s.contains(&m)) {
            said.push(m);
        }
        cause = c.source();
    }
    if said.len() > 1 {
        said.retain(|s| s != "streaming error" && s != "service error");
    }
    said.join(": ")
}

/// `why` of an SDK error, with the HTTP status when S3 answered.
pub(super) fn sdk_why<E>(e: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>) -> String
where
    E: std::error::Error + Send + Sync + 'static,
{
    if let Some(missing) = no_credentials(e) {
        return missing;
    }
    match status(e) {
        Some(code) => format!("HTTP {code}: {}", why(e)),
        None => why(e),
    }
}

/// No credentials anywhere the SDK looks: said as what to set. (The SDK's
/// own words end at its last resort, "failed to load IMDS session token",
/// which sends an operator off a machine that is not on EC2.)
fn no_credentials(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    use aws_credential_types::provider::error::CredentialsError;
    let mut cause = Some(e);
    while let Some(c) = cause {
        if let Some(
            CredentialsError::CredentialsNotLoaded(_) | CredentialsError::ProviderError(_),
        ) = c.downcast_ref::<CredentialsError>()
        {
            return Some(
                "no S3 credentials found: set storage.s3.access_key and secret_key \
                 (NORA_S3_ACCESS_KEY, NORA_S3_SECRET_KEY), or AWS_ACCESS_KEY_ID and \
                 AWS_SECRET_ACCESS_KEY, or an AWS profile"
                    .into(),
            );
        }
        cause = c.source();
    }
    None
}

/// An S3 time, or the epoch when absent or out of range.
pub(super) fn s3_time(t: Option<&aws_sdk_s3::primitives::DateTime>) -> SystemTime {
    t.and_then(|t| SystemTime::try_from(*t).ok())
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

pub(super) fn status<E>(e: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>) -> Option<u16> {
    e.raw_response().map(|r| r.status().as_u16())
}

pub(super) fn io_error<E>(
    op: &str,
    key: &str,
    e: SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> StorageError
where
    E: std::error::Error + Send + Sync + 'static,
{
    StorageError::Io(io::Error::other(format!("S3 {op} {key}: {}", sdk_why(&e))))
}

pub(super) fn not_found_or<E>(
    key: &str,
    op: &str,
    e: SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> StorageError
where
    E: std::error::Error + Send + Sync + 'static,
{
    match status(&e) {
        Some(404) => StorageError::NotFound(key.to_string()),
        _ => io_error(op, key, e),
    }
}

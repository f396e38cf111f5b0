//! THE library every command uses: one trait of registry operations, with a
//! `local` implementation (storage directly) and a `remote` one (a running
//! instance's admin API). The admin API's handlers call `local`, so both
//! paths give the same answers.

pub mod local;
pub mod remote;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use crate::registry::gc::GcReport;
pub use crate::registry::images::{ImageRow, Inspection};
pub use crate::registry::ops::Deleted;
pub use crate::registry::retention::RetentionReport;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The reference, repository or blob does not exist.
    NotFound,
    /// The request itself is wrong (bad reference, bad option).
    Invalid,
    /// Not now: another gc is running.
    Conflict,
    /// The server could not be reached.
    Unreachable,
    /// Credentials missing or refused.
    Denied,
    /// The operation failed on the server or in storage.
    Failed,
}

#[derive(Debug, Clone, thiserror::Error, Serialize, Deserialize)]
#[error("{message}")]
pub struct ClientError {
    pub kind: ErrorKind,
    pub message: String,
}

impl ClientError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ClientError {
            kind,
            message: message.into(),
        }
    }
}

pub type Result<T> = std::result::Result<T, ClientError>;

/// A retag's outcome.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Tagged {
    pub source: String,
    pub target: String,
    pub digest: String,
    /// The manifest the target tag named before, when another.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaced: Option<String>,
}

/// Storage use at a glance.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Usage {
    pub repositories: u64,
    pub tags: u64,
    pub blobs: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GcRequest {
    #[serde(default)]
    pub dry_run: bool,
    /// Seconds; the configured grace period when absent.
    #[serde(default)]
    pub grace_seconds: Option<u64>,
}

/// One scheduled job as the server reports it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct JobStatus {
    /// The schedule as configured (interval or cron), if any.
    pub schedule: Option<String>,
    pub running: bool,
    /// Unix seconds.
    pub last_run: Option<u64>,
    pub next_run: Option<u64>,
    /// The last run's report, or its error.
    pub last_result: Option<serde_json::Value>,
    /// Where the run in progress is (None when none runs); what `nora gc
    /// --url` draws its progress bar from. Absent from older servers.
    #[serde(default)]
    pub progress: Option<JobProgress>,
}

/// How far a running job is: `done` of `total` items of `phase`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct JobProgress {
    pub phase: String,
    pub done: u64,
    pub total: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Jobs {
    pub gc: JobStatus,
    pub retention: JobStatus,
}

pub use crate::auth::tokens::TokenInfo;
pub use crate::registry::gc::Progress;

/// A token to create: a role (read, write, admin) and/or scopes
/// (`push:team/*`), and a lifetime.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    pub name: String,
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Seconds from now; never when absent.
    #[serde(default)]
    pub expires_in: Option<u64>,
}

/// A created token: the secret, shown this once, and what was stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreatedToken {
    pub secret: String,
    pub token: TokenInfo,
}

#[async_trait]
pub trait Client: Send + Sync {
    /// Every tag of every repository, sorted; with `pattern` (a `RefGlob`:
    /// `repo:tag` or a repository alone), only the tags it matches, and only
    /// those are read.
    async fn images(&self, pattern: Option<&str>) -> Result<Vec<ImageRow>>;
    async fn inspect(&self, reference: &str) -> Result<Inspection>;
    async fn tag(&self, source: &str, target: &str) -> Result<Tagged>;
    /// `expect`: delete a tag only while it names this digest.
    async fn delete(&self, reference: &str, dry_run: bool, expect: Option<&str>)
    -> Result<Deleted>;
    async fn gc(&self, req: &GcRequest, progress: Progress<'_>) -> Result<GcReport>;
    async fn retention(&self, dry_run: bool) -> Result<RetentionReport>;
    async fn usage(&self) -> Result<Usage>;
    async fn token_create(&self, req: &TokenRequest) -> Result<CreatedToken>;
    async fn tokens(&self) -> Result<Vec<TokenInfo>>;
    async fn token_revoke(&self, name: &str) -> Result<TokenInfo>;
}

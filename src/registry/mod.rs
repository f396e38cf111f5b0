//! The OCI data model on top of a `Storage`: blobs, upload sessions,
//! manifests, tags, referrers and the catalog. HTTP-free, so the server, the
//! CLI and tests all drive the same code.

pub mod blobs;
pub mod cache;
pub mod digest;
pub mod error;
pub mod gc;
pub mod hashing;
pub mod images;
pub mod listing;
pub mod manifest;
pub mod manifests;
pub mod names;
pub mod ops;
mod owner;
pub mod refglob;
pub mod retention;
mod retiring;
mod reuse;
#[cfg(test)]
pub(crate) mod testing;
pub mod uploads;

use std::sync::Arc;
use std::time::Duration;

use crate::storage::{Entry, Storage, layout};
use cache::ManifestCache;
use error::{Code, RegistryError, Result};

use crate::storage::PARALLEL_READS;

pub struct Registry {
    storage: Arc<dyn Storage>,
    manifests: ManifestCache,
    upload_ttl: Duration,
    marked: reuse::Marked,
}

impl Registry {
    pub fn new(storage: Arc<dyn Storage>, upload_ttl: Duration) -> Self {
        Registry {
            storage,
            manifests: ManifestCache::new(4 * 1024 * 1024),
            upload_ttl,
            marked: reuse::Marked::default(),
        }
    }

    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    /// True when `name` holds anything of its own (blobs, manifests or
    /// referrers), not merely repositories nested under it (`a` of `a/b`).
    pub async fn repository_exists(&self, name: &str) -> Result<bool> {
        Ok(self
            .storage
            .list(&layout::repository(name))
            .await?
            .iter()
            .any(|e| matches!(e, Entry::Prefix(c) if layout::is_repository_data(c))))
    }
}

/// Checks a repository name against the OCI grammar.
pub fn check_name(name: &str) -> Result<()> {
    if names::valid_repository(name) {
        Ok(())
    } else {
        Err(RegistryError::new(
            Code::NameInvalid,
            format!("invalid repository name {name:?}"),
        ))
    }
}

/// Parses a digest from a request, as DIGEST_INVALID when malformed.
pub fn parse_digest(s: &str) -> Result<digest::Digest> {
    s.parse()
        .map_err(|_| RegistryError::new(Code::DigestInvalid, format!("invalid digest {s:?}")))
}

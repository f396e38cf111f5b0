//! What the registry's unit tests share: a registry on a temporary
//! directory, and a blob pushed the way a client pushes it.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::Registry;
use super::digest::{Algorithm, Digest};
use crate::storage::fs::FsStorage;
use crate::storage::once;

/// A registry on `dir` (no fsync, uploads expire after an hour).
pub fn registry(dir: &Path) -> Registry {
    Registry::new(
        Arc::new(FsStorage::open(dir, false).expect("open test storage")),
        Duration::from_secs(3600),
    )
}

/// Pushes `data` into `repo` as one chunk (POST, PATCH, PUT); its digest.
pub async fn push_blob(reg: &Registry, repo: &str, data: &'static [u8]) -> Digest {
    let d = Digest::of(Algorithm::Sha256, data);
    let id = reg.upload_start(repo).await.expect("start");
    reg.upload_append(repo, &id, None, once(Bytes::from_static(data)))
        .await
        .expect("append");
    reg.upload_finish(repo, &id, &d).await.expect("finish");
    d
}

//! The storage trait: a small object-store interface every backend implements.
//!
//! Keys are `/`-separated relative paths (see `layout.rs` for the whole key
//! space). The trait is deliberately shaped like an object store (S3) rather
//! than a filesystem: whole-object streaming puts that become visible
//! atomically, ranged gets, listing by prefix, delete and rename. Nothing here
//! appends or edits in place, so a backend without those operations fits.

pub mod archive;
pub mod fs;
pub mod layout;
pub mod s3;
#[cfg(test)]
pub mod suite;
pub mod transfer;

use std::io;
use std::pin::Pin;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};

/// A stream of bytes flowing in or out of storage.
pub type ByteStream = Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send>>;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("not found: {0}")]
    NotFound(String),
    #[error("already exists: {0}")]
    AlreadyExists(String),
    #[error("invalid range")]
    InvalidRange,
    #[error("invalid key: {0}")]
    InvalidKey(String),
    #[error("storage I/O error: {0}")]
    Io(#[from] io::Error),
}

/// The stream handed to `put` failed on the sender's side (a client that
/// hung up, or sent fewer bytes than it announced). Wrapped in the
/// `io::Error` the stream yields, so every backend passes it through as is
/// and the caller can tell a broken request from a broken store.
#[derive(Debug, thiserror::Error)]
#[error("the request body ended early: {0}")]
pub struct BodyError(pub String);

impl BodyError {
    pub fn io(e: impl std::fmt::Display) -> io::Error {
        io::Error::other(BodyError(e.to_string()))
    }
}

impl StorageError {
    /// The sender's body stream failed (see `BodyError`): not the store's fault.
    pub fn is_body(&self) -> bool {
        matches!(self, StorageError::Io(e)
            if e.get_ref().is_some_and(|inner| inner.is::<BodyError>()))
    }

    /// `read_small` found the object larger than its limit.
    pub fn is_too_large(&self) -> bool {
        matches!(self, StorageError::Io(e) if e.kind() == io::ErrorKind::InvalidData)
    }

    /// The disk (or the user's quota on it) is full: the operator's problem,
    /// and one a client should be told plainly.
    pub fn is_full(&self) -> bool {
        matches!(self, StorageError::Io(e)
            if matches!(e.kind(), io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded))
    }

    /// The store is mounted read-only (a snapshot, a read-only volume).
    pub fn is_read_only(&self) -> bool {
        matches!(self, StorageError::Io(e) if e.kind() == io::ErrorKind::ReadOnlyFilesystem)
    }
}

pub type Result<T> = std::result::Result<T, StorageError>;

/// What `stat` knows about an object.
#[derive(Debug, Clone, Copy)]
pub struct ObjectMeta {
    pub size: u64,
    /// When the object was last written (for grace periods and retention).
    pub modified: std::time::SystemTime,
}

/// An inclusive byte range `start..=end` of an object, already checked against its size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub end: u64,
}

impl ByteRange {
    pub fn len(&self) -> u64 {
        self.end - self.start + 1
    }
}

/// An object being read: its total size and a stream of the requested bytes.
pub struct GetObject {
    pub size: u64,
    pub body: ByteStream,
}

/// One child of a listed prefix, with delimiter (`/`) semantics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// An object directly under the prefix (its last key component).
    Object(String),
    /// A deeper prefix (a "directory"): its next key component.
    Prefix(String),
}

impl Entry {
    /// The key component, whichever kind the entry is.
    pub fn name(&self) -> &str {
        match self {
            Entry::Object(n) | Entry::Prefix(n) => n,
        }
    }
}

/// One object of `list_deep`: its whole key, and what `stat` would say.
#[derive(Debug, Clone)]
pub struct Listed {
    pub key: String,
    pub meta: ObjectMeta,
}

/// How many listings or small reads a walk over the store has in flight: on
/// S3 each is a round trip, and one at a time a store of thousands of images
/// took minutes to list, or an hour to migrate.
pub const PARALLEL_READS: usize = 16;

#[async_trait]
pub trait Storage: Send + Sync + 'static {
    /// Stores `body` under `key`. The object becomes visible only once every
    /// byte is durably written; a failed or interrupted put leaves the previous
    /// object (or none). Returns the number of bytes written.
    async fn put(&self, key: &str, body: ByteStream) -> Result<u64>;

    /// Like `put`, but fails with `AlreadyExists` when `key` is present
    /// (compare S3's `If-None-Match: *`). Atomic against concurrent writers.
    async fn put_if_absent(&self, key: &str, body: ByteStream) -> Result<u64>;

    /// Reads `key`, the whole object or one byte range of it.
    async fn get(&self, key: &str, range: Option<ByteRange>) -> Result<GetObject>;

    /// Size and modification time, or `None` when absent.
    async fn stat(&self, key: &str) -> Result<Option<ObjectMeta>>;

    /// The direct children of `prefix` (objects and deeper prefixes), sorted.
    /// An absent prefix lists as empty.
    async fn list(&self, prefix: &str) -> Result<Vec<Entry>>;

    /// The entries of `list` whose names sort after `after`, at most
    /// `limit`: one page. A backend that can start a listing at a key (S3's
    /// `StartAfter`) reads only that page, not every entry before it.
    async fn list_after(&self, prefix: &str, after: &str, limit: usize) -> Result<Vec<Entry>> {
        let mut entries = self.list(prefix).await?;
        entries.retain(|e| e.name() > after);
        entries.truncate(limit);
        Ok(entries)
    }

    /// Every object under `prefix` at any depth, sorted by key, with its
    /// size and time. Walks that need sizes (gc, usage, backup, migrate) use
    /// it: S3 lists 1,000 objects a request, sizes included, where a listing
    /// per directory and a stat per object cost a round trip each.
    async fn list_deep(&self, prefix: &str) -> Result<Vec<Listed>>;

    /// Removes what writes a killed process never finished left behind,
    /// once surely abandoned (each backend says when: temp files untouched
    /// for an hour, S3's unfinished multipart uploads, billed until
    /// aborted, a day after they started); how many.
    async fn sweep_abandoned(&self) -> Result<usize>;

    /// Removes `key`. Deleting an absent key is not an error.
    async fn delete(&self, key: &str) -> Result<()>;

    /// Removes `key` only while it holds `expected` (a small object read
    /// just before): a write that lands in between is kept, not lost. Says
    /// whether it removed it. Where a backend cannot make the check and the
    /// removal one step (an S3-compatible server that refuses `If-Match` on
    /// DELETE), it checks just before.
    async fn delete_if(&self, key: &str, expected: &Bytes) -> Result<bool>;

    /// Removes every object under `prefix`.
    async fn delete_prefix(&self, prefix: &str) -> Result<()>;

    /// Moves `from` to `to`, replacing `to`; atomic where the backend can be.
    async fn rename(&self, from: &str, to: &str) -> Result<()>;

    /// Checks that the backend answers (for `/ready`).
    async fn ping(&self) -> Result<()>;

    /// A small object read whole. Only for metadata (links, session state,
    /// manifests bounded by their size limit), never for blobs.
    async fn read_small(&self, key: &str, limit: u64) -> Result<Bytes> {
        let obj = self.get(key, None).await?;
        if obj.size > limit {
            return Err(StorageError::Io(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{key} is larger than {limit} bytes"),
            )));
        }
        let mut out = Vec::with_capacity(obj.size as usize);
        let mut body = obj.body;
        while let Some(chunk) = body.next().await {
            out.extend_from_slice(&chunk?);
        }
        Ok(Bytes::from(out))
    }

    /// Stores a small in-memory value.
    async fn put_bytes(&self, key: &str, data: Bytes) -> Result<u64> {
        self.put(key, once(data)).await
    }
}

/// The configured backend, and the filesystem one typed as well (for its
/// temp-file housekeeping). Opening S3 contacts nothing (`ping` does).
pub type Opened = (
    std::sync::Arc<dyn Storage>,
    Option<std::sync::Arc<fs::FsStorage>>,
);

pub fn open(cfg: &crate::config::Storage) -> io::Result<Opened> {
    use std::sync::Arc;
    if cfg.mode == "s3" {
        return Ok((Arc::new(s3::S3Storage::new(&cfg.s3)), None));
    }
    let fs = Arc::new(fs::FsStorage::open(&cfg.path, cfg.fsync).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot open storage at {}: {e}", cfg.path.display()),
        )
    })?);
    Ok((fs.clone(), Some(fs)))
}

/// Where a store is, for messages: a directory or `s3://bucket/prefix`.
pub fn describe(cfg: &crate::config::Storage) -> String {
    if cfg.mode != "s3" {
        return cfg.path.display().to_string();
    }
    let s3 = &cfg.s3;
    format!(
        "s3://{}/{}{}",
        s3.bucket,
        s3.prefix.trim_matches('/'),
        s3.endpoint
            .as_deref()
            .map(|e| format!(" at {e}"))
            .unwrap_or_default()
    )
}

/// A one-chunk stream, for small values.
pub fn once(data: Bytes) -> ByteStream {
    Box::pin(futures_util::stream::once(async move { Ok(data) }))
}

/// What a `put_if_absent` that only claims a key writes: bytes no other
/// writer writes, so that a backend can tell its own earlier write from
/// another's (see `S3Storage::holds`).
pub fn unique_claim() -> ByteStream {
    once(format!("{:032x}\n", rand::random::<u128>()).into())
}

/// Rejects keys that could escape the storage root or alias another key.
pub fn check_key(key: &str) -> Result<()> {
    let bad = key.is_empty()
        || key.starts_with('/')
        || key
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..")
        || key.contains('\0')
        || key.contains('\\');
    if bad {
        Err(StorageError::InvalidKey(key.to_string()))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_that_escape_are_refused() {
        for k in ["", "/a", "a//b", "a/../b", "..", "a/./b", "a/", "a\\b"] {
            assert!(check_key(k).is_err(), "{k:?} should be refused");
        }
        for k in ["a", "a/b", "blobs/sha256/ab/abcd/data", "a.b/c_d"] {
            assert!(check_key(k).is_ok(), "{k:?} should be accepted");
        }
    }
}

//! What the registry's unit tests share: a registry on a temporary
//! directory, and a blob pushed the way a client pushes it.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::Registry;
use super::digest::{Algorithm, Digest};
use crate::storage::fs::FsStorage;
use crate::storage::{
    ByteRange, ByteStream, Entry, GetObject, ObjectMeta, Result as StorageResult, Storage,
    StorageError, once,
};

/// A registry on `dir` (no fsync, uploads expire after an hour).
pub fn registry(dir: &Path) -> Registry {
    Registry::new(
        Arc::new(FsStorage::open(dir, false).expect("open test storage")),
        Duration::from_secs(3600),
    )
}

/// A gc with `grace` (uploads expire after an hour), progress unheard.
pub async fn gc(
    reg: &Registry,
    dry_run: bool,
    grace: Duration,
) -> crate::registry::error::Result<super::gc::GcReport> {
    let opts = super::gc::GcOptions {
        dry_run,
        grace,
        upload_ttl: Duration::from_secs(3600),
    };
    reg.gc(&opts, &|_, _, _| {}).await
}

/// Makes the file at `path` look written `by` ago.
pub fn age(path: &Path, by: Duration) {
    std::fs::File::options()
        .write(true)
        .open(path)
        .and_then(|f| f.set_modified(std::time::SystemTime::now() - by))
        .expect("age a test file");
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

/// A store whose conditional write is a look, then a write (as some
/// S3-compatible servers do it): two writers can both "win". Each write
/// waits a random moment first, so racing requests interleave every way.
pub struct LaxStore(pub FsStorage);

async fn jitter() {
    tokio::time::sleep(Duration::from_micros(rand::random::<u64>() % 2000)).await;
}

#[async_trait::async_trait]
impl Storage for LaxStore {
    async fn put(&self, key: &str, body: ByteStream) -> StorageResult<u64> {
        jitter().await;
        self.0.put(key, body).await
    }
    async fn put_if_absent(&self, key: &str, body: ByteStream) -> StorageResult<u64> {
        if self.0.stat(key).await?.is_some() {
            return Err(StorageError::AlreadyExists(key.to_string()));
        }
        self.put(key, body).await
    }
    async fn get(&self, key: &str, range: Option<ByteRange>) -> StorageResult<GetObject> {
        self.0.get(key, range).await
    }
    async fn stat(&self, key: &str) -> StorageResult<Option<ObjectMeta>> {
        self.0.stat(key).await
    }
    async fn list(&self, prefix: &str) -> StorageResult<Vec<Entry>> {
        self.0.list(prefix).await
    }
    async fn delete(&self, key: &str) -> StorageResult<()> {
        self.0.delete(key).await
    }
    async fn delete_prefix(&self, prefix: &str) -> StorageResult<()> {
        self.0.delete_prefix(prefix).await
    }
    async fn rename(&self, from: &str, to: &str) -> StorageResult<()> {
        self.0.rename(from, to).await
    }
    async fn ping(&self) -> StorageResult<()> {
        self.0.ping().await
    }
}

/// A directory store that counts its listings: how much of the tree a walk
/// visited.
pub struct ListCounter(pub FsStorage, pub std::sync::atomic::AtomicUsize);

impl ListCounter {
    pub fn lists(&self) -> usize {
        self.1.load(std::sync::atomic::Ordering::Relaxed)
    }
}

#[async_trait::async_trait]
impl Storage for ListCounter {
    async fn put(&self, key: &str, body: ByteStream) -> StorageResult<u64> {
        self.0.put(key, body).await
    }
    async fn put_if_absent(&self, key: &str, body: ByteStream) -> StorageResult<u64> {
        self.0.put_if_absent(key, body).await
    }
    async fn get(&self, key: &str, range: Option<ByteRange>) -> StorageResult<GetObject> {
        self.0.get(key, range).await
    }
    async fn stat(&self, key: &str) -> StorageResult<Option<ObjectMeta>> {
        self.0.stat(key).await
    }
    async fn list(&self, prefix: &str) -> StorageResult<Vec<Entry>> {
        self.1.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.0.list(prefix).await
    }
    async fn delete(&self, key: &str) -> StorageResult<()> {
        self.0.delete(key).await
    }
    async fn delete_prefix(&self, prefix: &str) -> StorageResult<()> {
        self.0.delete_prefix(prefix).await
    }
    async fn rename(&self, from: &str, to: &str) -> StorageResult<()> {
        self.0.rename(from, to).await
    }
    async fn ping(&self) -> StorageResult<()> {
        self.0.ping().await
    }
}

/// A directory store seen through a read-only mount: reads work, every
/// write fails as the kernel fails it.
pub struct ReadOnlyStore(pub FsStorage);

fn read_only<T>() -> StorageResult<T> {
    Err(StorageError::Io(std::io::Error::from(
        std::io::ErrorKind::ReadOnlyFilesystem,
    )))
}

#[async_trait::async_trait]
impl Storage for ReadOnlyStore {
    async fn put(&self, _key: &str, _body: ByteStream) -> StorageResult<u64> {
        read_only()
    }
    async fn put_if_absent(&self, _key: &str, _body: ByteStream) -> StorageResult<u64> {
        read_only()
    }
    async fn get(&self, key: &str, range: Option<ByteRange>) -> StorageResult<GetObject> {
        self.0.get(key, range).await
    }
    async fn stat(&self, key: &str) -> StorageResult<Option<ObjectMeta>> {
        self.0.stat(key).await
    }
    async fn list(&self, prefix: &str) -> StorageResult<Vec<Entry>> {
        self.0.list(prefix).await
    }
    async fn delete(&self, _key: &str) -> StorageResult<()> {
        read_only()
    }
    async fn delete_prefix(&self, _prefix: &str) -> StorageResult<()> {
        read_only()
    }
    async fn rename(&self, _from: &str, _to: &str) -> StorageResult<()> {
        read_only()
    }
    async fn ping(&self) -> StorageResult<()> {
        self.0.ping().await
    }
}

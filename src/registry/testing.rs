//! What the registry's unit tests share: a registry on a temporary
//! directory, and a blob pushed the way a client pushes it.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;

use super::Registry;
use super::digest::{Algorithm, Digest};
use crate::storage::fs::FsStorage;
use crate::storage::{
    ByteRange, ByteStream, Entry, GetObject, Listed, ObjectMeta, Result as StorageResult, Storage,
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
    async fn list_deep(&self, prefix: &str) -> StorageResult<Vec<Listed>> {
        self.0.list_deep(prefix).await
    }
    async fn sweep_abandoned(&self) -> StorageResult<usize> {
        self.0.sweep_abandoned().await
    }
    async fn delete(&self, key: &str) -> StorageResult<()> {
        self.0.delete(key).await
    }
    async fn delete_if(&self, key: &str, expected: &Bytes) -> StorageResult<bool> {
        jitter().await;
        self.0.delete_if(key, expected).await
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

/// A directory store that watches what is asked of it: how many listings
/// (how much of the tree a walk visited) and stats, and the most reads and writes
/// under way at once (each made to take a few milliseconds, as a round trip
/// to S3 does).
pub struct Watched {
    pub inner: FsStorage,
    lists: AtomicUsize,
    stats: AtomicUsize,
    in_flight: AtomicUsize,
    most: AtomicUsize,
}

impl Watched {
    pub fn new(inner: FsStorage) -> Watched {
        Watched {
            inner,
            lists: AtomicUsize::new(0),
            stats: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            most: AtomicUsize::new(0),
        }
    }

    pub fn lists(&self) -> usize {
        self.lists.load(Ordering::Relaxed)
    }

    pub fn stats(&self) -> usize {
        self.stats.load(Ordering::Relaxed)
    }

    /// The most gets and puts there were under way at one moment.
    pub fn most_at_once(&self) -> usize {
        self.most.load(Ordering::Relaxed)
    }

    async fn round_trip<T>(&self, work: impl std::future::Future<Output = T>) -> T {
        let now = self.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        self.most.fetch_max(now, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(3)).await;
        let out = work.await;
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        out
    }
}

#[async_trait::async_trait]
impl Storage for Watched {
    async fn put(&self, key: &str, body: ByteStream) -> StorageResult<u64> {
        self.round_trip(self.inner.put(key, body)).await
    }
    async fn put_if_absent(&self, key: &str, body: ByteStream) -> StorageResult<u64> {
        self.round_trip(self.inner.put_if_absent(key, body)).await
    }
    async fn get(&self, key: &str, range: Option<ByteRange>) -> StorageResult<GetObject> {
        self.round_trip(self.inner.get(key, range)).await
    }
    async fn stat(&self, key: &str) -> StorageResult<Option<ObjectMeta>> {
        self.stats.fetch_add(1, Ordering::Relaxed);
        self.inner.stat(key).await
    }
    async fn list(&self, prefix: &str) -> StorageResult<Vec<Entry>> {
        self.lists.fetch_add(1, Ordering::Relaxed);
        self.inner.list(prefix).await
    }
    async fn list_deep(&self, prefix: &str) -> StorageResult<Vec<Listed>> {
        self.lists.fetch_add(1, Ordering::Relaxed);
        self.inner.list_deep(prefix).await
    }
    async fn sweep_abandoned(&self) -> StorageResult<usize> {
        self.inner.sweep_abandoned().await
    }
    async fn delete(&self, key: &str) -> StorageResult<()> {
        self.inner.delete(key).await
    }
    async fn delete_if(&self, key: &str, expected: &Bytes) -> StorageResult<bool> {
        self.inner.delete_if(key, expected).await
    }
    async fn delete_prefix(&self, prefix: &str) -> StorageResult<()> {
        self.inner.delete_prefix(prefix).await
    }
    async fn rename(&self, from: &str, to: &str) -> StorageResult<()> {
        self.inner.rename(from, to).await
    }
    async fn ping(&self) -> StorageResult<()> {
        self.inner.ping().await
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
    async fn list_deep(&self, prefix: &str) -> StorageResult<Vec<Listed>> {
        self.0.list_deep(prefix).await
    }
    async fn sweep_abandoned(&self) -> StorageResult<usize> {
        Ok(0) // nothing can be removed, as on a read-only mount
    }
    async fn delete(&self, _key: &str) -> StorageResult<()> {
        read_only()
    }
    async fn delete_if(&self, _key: &str, _expected: &Bytes) -> StorageResult<bool> {
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

/// A directory store whose process "is killed" right after it removes its
/// first key containing `after`: every request from then on fails, as a
/// killed process makes none. What it wrote before stays.
pub struct DiesAfter {
    inner: FsStorage,
    after: &'static str,
    dead: std::sync::atomic::AtomicBool,
}

impl DiesAfter {
    pub fn new(inner: FsStorage, after: &'static str) -> DiesAfter {
        DiesAfter {
            inner,
            after,
            dead: Default::default(),
        }
    }

    fn alive(&self) -> StorageResult<()> {
        if self.dead.load(Ordering::SeqCst) {
            return Err(StorageError::Io(std::io::Error::other("killed")));
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Storage for DiesAfter {
    async fn put(&self, key: &str, body: ByteStream) -> StorageResult<u64> {
        self.alive()?;
        self.inner.put(key, body).await
    }
    async fn put_if_absent(&self, key: &str, body: ByteStream) -> StorageResult<u64> {
        self.alive()?;
        self.inner.put_if_absent(key, body).await
    }
    async fn get(&self, key: &str, range: Option<ByteRange>) -> StorageResult<GetObject> {
        self.alive()?;
        self.inner.get(key, range).await
    }
    async fn stat(&self, key: &str) -> StorageResult<Option<ObjectMeta>> {
        self.alive()?;
        self.inner.stat(key).await
    }
    async fn list(&self, prefix: &str) -> StorageResult<Vec<Entry>> {
        self.alive()?;
        self.inner.list(prefix).await
    }
    async fn list_deep(&self, prefix: &str) -> StorageResult<Vec<Listed>> {
        self.alive()?;
        self.inner.list_deep(prefix).await
    }
    async fn sweep_abandoned(&self) -> StorageResult<usize> {
        self.alive()?;
        self.inner.sweep_abandoned().await
    }
    async fn delete(&self, key: &str) -> StorageResult<()> {
        self.alive()?;
        self.inner.delete(key).await?;
        if key.contains(self.after) {
            self.dead.store(true, Ordering::SeqCst);
        }
        Ok(())
    }
    async fn delete_if(&self, key: &str, expected: &Bytes) -> StorageResult<bool> {
        self.alive()?;
        self.inner.delete_if(key, expected).await
    }
    async fn delete_prefix(&self, prefix: &str) -> StorageResult<()> {
        self.alive()?;
        self.inner.delete_prefix(prefix).await
    }
    async fn rename(&self, from: &str, to: &str) -> StorageResult<()> {
        self.alive()?;
        self.inner.rename(from, to).await
    }
    async fn ping(&self) -> StorageResult<()> {
        self.inner.ping().await
    }
}

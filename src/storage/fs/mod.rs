//! Filesystem backend: one file per key under a root directory.
//!
//! Atomicity comes from POSIX rename: every put writes a temp file under
//! `<root>/_tmp/` (same filesystem, so rename is atomic), flushes it, then
//! renames it into place. `put_if_absent` uses `link(2)`, which fails when the
//! target exists, so two concurrent writers cannot both win. Replacing renames
//! and conditional deletes hold one lock file (`flock(2)`, shared by every
//! process on the store), so a delete removes only the bytes it judged.
//!
//! Here: the store and the trait's operations. Body writes are in `write`,
//! blob streams in `read`, the lock and the flush of names in `durable`, and
//! walks over directories in `walk`.

mod durable;
mod read;
mod walk;
mod write;

use std::io::{self, ErrorKind, Read};
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use self::durable::{lock_replacements, sync_parent};
use self::read::file_stream;
use self::walk::{clean_tmp_in, walk_files};
use self::write::write_batches;
use super::{
    ByteRange, ByteStream, Entry, GetObject, Listed, ObjectMeta, Result, Storage, StorageError,
    check_key,
};

/// Reads of 256 KiB: measured ~2.5x the bandwidth of 8 KiB reads for blob GETs.
const READ_CHUNK: usize = 256 * 1024;
/// Bytes gathered per blocking write: 1 GiB is 2,048 trips to the blocking
/// pool, and two batches at most are held per upload.
const WRITE_BATCH: usize = 512 * 1024;
/// Directory for in-progress writes; not a storage key (keys never start with `_tmp`).
const TMP_DIR: &str = "_tmp";
/// Under `TMP_DIR`, the lock of `lock_replacements` (temp files have names of
/// 32 hex digits, and the sweep spares it).
const LOCK_FILE: &str = "lock";
/// A write touches its temp file with every batch and fails after the body
/// timeout without data: an hour untouched is a killed process's (they were
/// kept a day, and kill -9 during big pushes piled up gigabytes meanwhile).
const TMP_ABANDONED_AFTER: Duration = Duration::from_secs(3600);
/// Tries of `into_place` before a concurrent prune is reported as an error:
/// each lost race means another writer or pruner made progress.
const PLACE_ATTEMPTS: u32 = 20;

pub struct FsStorage {
    root: PathBuf,
    fsync: bool,
    /// The store's owner, when nora runs as root on another user's store:
    /// said once, at the first write (see `warn_of_root_owned_writes`).
    other_owner: Option<u32>,
    owner_said: std::sync::Once,
}

impl FsStorage {
    /// Opens (creating if needed) a store rooted at `root`. With `fsync`, each
    /// object is flushed to disk before it becomes visible, so a power loss
    /// cannot leave a renamed but empty file. The temp directory is made by
    /// the first write: a store only read (a migrate's or backup's source, a
    /// read-only mount) is left as it was.
    pub fn open(root: impl Into<PathBuf>, fsync: bool) -> io::Result<Self> {
        let root = root.into();
        std::fs::create_dir_all(&root)?;
        Ok(FsStorage {
            other_owner: other_owner_than_root(&root),
            root,
            fsync,
            owner_said: std::sync::Once::new(),
        })
    }

    /// Root writing (`sudo nora gc`) to a store that belongs to another user
    /// (the one `nora serve` runs as) makes files and directories only root
    /// may change: the server's next writes there fail. Said once, at the
    /// first write (a command that only reads changes nothing), and not
    /// refused: a root server on a volume owned by another uid is a setup of
    /// its own.
    fn warn_of_root_owned_writes(&self) {
        let Some(uid) = self.other_owner else {
            return;
        };
        self.owner_said.call_once(|| {
            tracing::warn!(
                "storage at {} belongs to uid {uid}, but nora runs as root: what it \
                 writes will belong to root, and nora running as uid {uid} cannot \
                 change it; run nora as that user (sudo -u '#{uid}' nora …)",
                self.root.display()
            )
        });
    }

    /// Whether the filesystem holding the store is mounted read-only (a
    /// snapshot, a squashfs image, a `ro` volume).
    pub fn mounted_read_only(&self) -> bool {
        use std::os::unix::ffi::OsStrExt;
        let Ok(path) = std::ffi::CString::new(self.root.as_os_str().as_bytes()) else {
            return false;
        };
        // SAFETY: statvfs fills the struct it is given from a valid C string.
        unsafe {
            let mut st: libc::statvfs = std::mem::zeroed();
            libc::statvfs(path.as_ptr(), &mut st) == 0 && st.f_flag & libc::ST_RDONLY != 0
        }
    }

    fn path(&self, key: &str) -> Result<PathBuf> {
        check_key(key)?;
        Ok(self.root.join(key))
    }

    fn tmp_path(&self) -> PathBuf {
        let name: u128 = rand::random();
        self.root.join(TMP_DIR).join(format!("{name:032x}"))
    }

    /// Streams `body` into a fresh temp file; returns its path and length.
    async fn write_tmp(&self, body: ByteStream) -> Result<(PathBuf, u64)> {
        self.warn_of_root_owned_writes();
        let tmp = self.tmp_path();
        let file = match tokio::fs::File::create(&tmp).await {
            Err(e) if e.kind() == ErrorKind::NotFound => {
                tokio::fs::create_dir_all(self.root.join(TMP_DIR)).await?;
                tokio::fs::File::create(&tmp).await?
            }
            other => other?,
        };
        let file = file.into_std().await;
        match write_batches(file, body, self.fsync).await {
            Ok(written) => Ok((tmp, written)),
            Err(e) => {
                let _ = tokio::fs::remove_file(&tmp).await;
                Err(e.into())
            }
        }
    }

    /// Creates the parent directory of `path`, tolerating a concurrent prune.
    async fn ensure_parent(path: &Path) -> io::Result<()> {
        match path.parent() {
            Some(parent) => tokio::fs::create_dir_all(parent).await,
            None => Ok(()),
        }
    }

    /// Runs `op` after creating `target`'s parent; retries when a concurrent
    /// delete pruned that directory, or one of its ancestors, meanwhile.
    async fn into_place<F, Fut>(target: &Path, op: F) -> io::Result<()>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = io::Result<()>>,
    {
        let mut attempts = 0;
        loop {
            attempts += 1;
            match Self::ensure_parent(target).await {
                Ok(()) => {}
                // `create_dir_all` fails with NotFound when an ancestor is
                // pruned between its steps, and with AlreadyExists when a
                // directory another writer made is pruned before it checks.
                Err(e)
                    if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::AlreadyExists)
                        && attempts < PLACE_ATTEMPTS =>
                {
                    continue;
                }
                Err(e) => return Err(e),
            }
            match op().await {
                Err(e) if e.kind() == ErrorKind::NotFound && attempts < PLACE_ATTEMPTS => {}
                other => return other,
            }
        }
    }

    /// Removes empty directories from `dir` up to (not including) the root.
    fn prune_empty_dirs(&self, mut dir: Option<&Path>) {
        while let Some(d) = dir {
            if d == self.root || !d.starts_with(&self.root) {
                break;
            }
            if std::fs::remove_dir(d).is_err() {
                break;
            }
            dir = d.parent();
        }
    }

    /// Renames `from` to `to`, replacing it, under `lock_replacements`.
    async fn replace(&self, from: &Path, to: &Path) -> io::Result<()> {
        let (root, from, to) = (self.root.clone(), from.to_path_buf(), to.to_path_buf());
        let fsync = self.fsync;
        tokio::task::spawn_blocking(move || {
            {
                let _held = lock_replacements(&root)?;
                std::fs::rename(&from, &to)?;
            }
            // Flushed once the lock is let go: a flush can take
            // milliseconds, and no other write need wait for it.
            if fsync { sync_parent(&to) } else { Ok(()) }
        })
        .await
        .map_err(io::Error::other)?
    }
}

/// The owner of `root` when nora runs as root and someone else owns it.
fn other_owner_than_root(root: &Path) -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: geteuid only reads the process's credentials.
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    let uid = std::fs::metadata(root).ok()?.uid();
    (uid != 0).then_some(uid)
}

fn not_found(key: &str, e: io::Error) -> StorageError {
    if e.kind() == ErrorKind::NotFound {
        StorageError::NotFound(key.to_string())
    } else {
        StorageError::Io(e)
    }
}

#[async_trait]
impl Storage for FsStorage {
    async fn put(&self, key: &str, body: ByteStream) -> Result<u64> {
        let target = self.path(key)?;
        let (tmp, written) = self.write_tmp(body).await?;
        let result = Self::into_place(&target, || self.replace(&tmp, &target)).await;
        if let Err(e) = result {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(e.into());
        }
        Ok(written)
    }

    async fn put_if_absent(&self, key: &str, body: ByteStream) -> Result<u64> {
        let target = self.path(key)?;
        if tokio::fs::try_exists(&target).await? {
            return Err(StorageError::AlreadyExists(key.to_string()));
        }
        let (tmp, written) = self.write_tmp(body).await?;
        let linked = Self::into_place(&target, || tokio::fs::hard_link(&tmp, &target)).await;
        let _ = tokio::fs::remove_file(&tmp).await;
        match linked {
            Ok(()) if self.fsync => {
                tokio::task::spawn_blocking(move || sync_parent(&target))
                    .await
                    .map_err(io::Error::other)??;
                Ok(written)
            }
            Ok(()) => Ok(written),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                Err(StorageError::AlreadyExists(key.to_string()))
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn get(&self, key: &str, range: Option<ByteRange>) -> Result<GetObject> {
        let path = self.path(key)?;
        let k = key.to_string();
        let (file, size) = tokio::task::spawn_blocking(move || -> Result<(std::fs::File, u64)> {
            open_object(&path, &k)
        })
        .await
        .map_err(io::Error::other)??;
        let (start, len) = match range {
            None => (0, size),
            Some(r) if r.start <= r.end && r.end < size => (r.start, r.len()),
            Some(_) => return Err(StorageError::InvalidRange),
        };
        Ok(GetObject {
            size,
            body: file_stream(file, start, len),
        })
    }

    async fn stat(&self, key: &str) -> Result<Option<ObjectMeta>> {
        let path = self.path(key)?;
        match tokio::fs::metadata(&path).await {
            Ok(m) if m.is_file() => Ok(Some(ObjectMeta {
                size: m.len(),
                modified: m.modified()?,
            })),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<Entry>> {
        let dir = if prefix.is_empty() {
            self.root.clone()
        } else {
            self.path(prefix.trim_end_matches('/'))?
        };
        let at_root = prefix.is_empty();
        let entries = tokio::task::spawn_blocking(move || -> io::Result<Vec<Entry>> {
            let rd = match std::fs::read_dir(&dir) {
                Ok(rd) => rd,
                Err(e)
                    if e.kind() == ErrorKind::NotFound || e.kind() == ErrorKind::NotADirectory =>
                {
                    return Ok(Vec::new());
                }
                Err(e) => return Err(e),
            };
            let mut out = Vec::new();
            for entry in rd {
                let entry = entry?;
                let Ok(name) = entry.file_name().into_string() else {
                    continue; // not a key nora wrote
                };
                if at_root && name == TMP_DIR {
                    continue;
                }
                if entry.file_type()?.is_dir() {
                    out.push(Entry::Prefix(name));
                } else {
                    out.push(Entry::Object(name));
                }
            }
            out.sort_by(|a, b| a.name().cmp(b.name()));
            Ok(out)
        })
        .await
        .map_err(io::Error::other)??;
        Ok(entries)
    }

    async fn list_deep(&self, prefix: &str) -> Result<Vec<Listed>> {
        let prefix = prefix.trim_end_matches('/').to_string();
        let dir = if prefix.is_empty() {
            self.root.clone()
        } else {
            self.path(&prefix)?
        };
        let listed = tokio::task::spawn_blocking(move || walk_files(dir, prefix))
            .await
            .map_err(io::Error::other)??;
        Ok(listed)
    }

    async fn sweep_abandoned(&self) -> Result<usize> {
        let root = self.root.clone();
        let removed = tokio::task::spawn_blocking(move || clean_tmp_in(&root, TMP_ABANDONED_AFTER))
            .await
            .map_err(io::Error::other)??;
        Ok(removed)
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let path = self.path(key)?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        self.prune_empty_dirs(path.parent());
        Ok(())
    }

    async fn delete_if(&self, key: &str, expected: &Bytes) -> Result<bool> {
        let path = self.path(key)?;
        let (root, at, key, expected) = (
            self.root.clone(),
            path.clone(),
            key.to_string(),
            expected.clone(),
        );
        // Judged and removed under the lock that replacements take: the
        // object stays in place throughout (a reader never misses it), and a
        // kill at any moment leaves it either whole or removed.
        let removed = tokio::task::spawn_blocking(move || -> Result<bool> {
            let _held = lock_replacements(&root)?;
            let (mut file, size) = match open_object(&at, &key) {
                Err(StorageError::NotFound(_)) => return Ok(false),
                other => other?,
            };
            if size != expected.len() as u64 {
                return Ok(false);
            }
            let mut held = Vec::with_capacity(expected.len());
            file.read_to_end(&mut held)?;
            if held != expected.as_ref() {
                return Ok(false);
            }
            match std::fs::remove_file(&at) {
                Ok(()) => Ok(true),
                Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
                Err(e) => Err(e.into()),
            }
        })
        .await
        .map_err(io::Error::other)??;
        if removed {
            self.prune_empty_dirs(path.parent());
        }
        Ok(removed)
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<()> {
        let path = self.path(prefix.trim_end_matches('/'))?;
        // A writer adding a file meanwhile makes remove_dir_all fail with
        // "directory not empty"; the next attempt removes that file too.
        let mut attempts = 0;
        loop {
            match tokio::fs::remove_dir_all(&path).await {
                Ok(()) => break,
                Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
                Err(e) if e.kind() == ErrorKind::DirectoryNotEmpty && attempts < 5 => attempts += 1,
                Err(e) => return Err(e.into()),
            }
        }
        self.prune_empty_dirs(path.parent());
        Ok(())
    }

    async fn rename(&self, from: &str, to: &str) -> Result<()> {
        self.warn_of_root_owned_writes();
        let src = self.path(from)?;
        let dst = self.path(to)?;
        if !tokio::fs::try_exists(&src).await? {
            return Err(StorageError::NotFound(from.to_string()));
        }
        match Self::into_place(&dst, || self.replace(&src, &dst)).await {
            Ok(()) => {}
            // Moved or deleted by someone else meanwhile.
            Err(e) if e.kind() == ErrorKind::NotFound && !src.exists() => {
                return Err(StorageError::NotFound(from.to_string()));
            }
            Err(e) => return Err(e.into()),
        }
        // An object is as old as its arrival under this key, as with S3's
        // copy: a blob made visible (or restored from gc's trash) now is
        // young now, whenever its bytes were written, so gc's grace period
        // protects it until the manifest that needs it arrives.
        let touched = tokio::task::spawn_blocking(move || {
            std::fs::File::open(&dst).and_then(|f| f.set_modified(std::time::SystemTime::now()))
        })
        .await
        .map_err(io::Error::other)?;
        if let Err(e) = touched {
            tracing::warn!(key = to, error = %e, "could not refresh the modification time");
        }
        self.prune_empty_dirs(src.parent());
        Ok(())
    }

    async fn ping(&self) -> Result<()> {
        // Where writes go: the temp directory, or the root that will hold it.
        let tmp = self.root.join(TMP_DIR);
        let dir = match tokio::fs::metadata(&tmp).await {
            Err(e) if e.kind() == ErrorKind::NotFound => self.root.clone(),
            _ => tmp,
        };
        let meta = tokio::fs::metadata(&dir).await?;
        if !meta.is_dir() || meta.permissions().readonly() {
            return Err(StorageError::Io(io::Error::other(format!(
                "{} is not a writable directory",
                dir.display()
            ))));
        }
        Ok(())
    }

    async fn read_small(&self, key: &str, limit: u64) -> Result<Bytes> {
        // Read inline, not on the blocking pool: these are links and manifests
        // of a few KB, served from the page cache in microseconds, and the
        // hand-off to a blocking thread costs more than the read (measured:
        // 51k vs 33k manifest GET/s). Blobs never come through here.
        let (mut file, size) = open_object(&self.path(key)?, key)?;
        if size > limit {
            return Err(StorageError::Io(io::Error::new(
                ErrorKind::InvalidData,
                format!("{key} is larger than {limit} bytes"),
            )));
        }
        let mut buf = Vec::with_capacity(size as usize);
        file.read_to_end(&mut buf)?;
        Ok(Bytes::from(buf))
    }
}

/// Opens an object to read, with its size. Opened without blocking, so that
/// a pipe or device where an object belongs (nora never writes one) cannot
/// stall a thread for good; it is refused. On a regular file the flag
/// changes nothing.
fn open_object(path: &Path, key: &str) -> Result<(std::fs::File, u64)> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| not_found(key, e))?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(StorageError::Io(io::Error::new(
            ErrorKind::InvalidData,
            format!("{key} is not a regular file"),
        )));
    }
    Ok((file, meta.len()))
}

#[cfg(test)]
mod tests;

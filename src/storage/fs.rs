//! Filesystem backend: one file per key under a root directory.
//!
//! Atomicity comes from POSIX rename: every put writes a temp file under
//! `<root>/_tmp/` (same filesystem, so rename is atomic), flushes it, then
//! renames it into place. `put_if_absent` uses `link(2)`, which fails when the
//! target exists, so two concurrent writers cannot both win. Replacing renames
//! and conditional deletes hold one lock file (`flock(2)`, shared by every
//! process on the store), so a delete removes only the bytes it judged.

use std::io::{self, ErrorKind, IoSlice, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt;

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
        Ok(FsStorage { root, fsync })
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

/// Flushes the directory entry that names `path`. After a rename the bytes
/// are on disk (flushed before it), but the name leading to them is in the
/// directory, which the filesystem commits a few seconds later: a power
/// loss meanwhile would lose an object already acknowledged (a pushed tag).
/// On ext4 and XFS the flush also commits the directories made just before.
fn sync_parent(path: &Path) -> io::Result<()> {
    let Some(dir) = path.parent() else {
        return Ok(());
    };
    #[cfg(test)]
    tests::SYNCED_DIRS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(dir.to_path_buf());
    match std::fs::File::open(dir).and_then(|d| d.sync_all()) {
        // Deleted (and its directory pruned) by someone else meanwhile:
        // nothing of it to keep.
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// Takes the lock that every replacement of an object and every conditional
/// delete hold while they act, in every process using the store (a server,
/// the command line): a delete that judged an object's bytes removes those
/// bytes, never a replacement landed meanwhile. Released when the returned
/// file is dropped, or by the kernel when its holder dies, so a killed
/// process leaves no lock behind. Held for one rename or one small read.
/// None on a filesystem without file locks.
fn lock_replacements(root: &Path) -> io::Result<Option<std::fs::File>> {
    let path = root.join(TMP_DIR).join(LOCK_FILE);
    // Opened to read: flock needs no more, and a lock file another user
    // made (root running `nora gc` on the server's store) stays usable.
    let file = match std::fs::File::open(&path) {
        Err(e) if e.kind() == ErrorKind::NotFound => {
            std::fs::create_dir_all(root.join(TMP_DIR))?;
            std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)?
        }
        other => other?,
    };
    let locked = loop {
        match file.lock() {
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            other => break other,
        }
    };
    match locked {
        Ok(()) => Ok(Some(file)),
        Err(e) if without_file_locks(&e) => {
            static SAID: std::sync::Once = std::sync::Once::new();
            SAID.call_once(|| {
                tracing::warn!(
                    store = %root.display(),
                    error = %e,
                    "the filesystem of the store takes no file locks (an NFS mount with \
                     nolock?): a tag pushed again while a delete or retention removes it \
                     may be lost"
                )
            });
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Whether `flock` failed because the filesystem has no locks (an NFS mount
/// with `nolock`, some FUSE filesystems): writes go on without the lock, as
/// they did before it, rather than all failing.
fn without_file_locks(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENOLCK | libc::EOPNOTSUPP | libc::ENOSYS)
    ) || e.kind() == ErrorKind::Unsupported
}

/// Writes the chunks of `body` as they arrived (no copy into a buffer), a
/// batch of about `WRITE_BATCH` bytes per trip to the blocking pool, the next
/// batch gathering from the network while the last one is written.
async fn write_batches(file: std::fs::File, mut body: ByteStream, fsync: bool) -> io::Result<u64> {
    let file = std::sync::Arc::new(file);
    let mut written = 0u64;
    let mut writing: Option<tokio::task::JoinHandle<io::Result<()>>> = None;
    let mut batch: Vec<Bytes> = Vec::new();
    let mut batch_len = 0;
    loop {
        let next = body.next().await.transpose()?;
        let done = next.is_none();
        if let Some(chunk) = next {
            written += chunk.len() as u64;
            batch_len += chunk.len();
            batch.push(chunk);
        }
        if batch_len >= WRITE_BATCH || (done && !batch.is_empty()) {
            if let Some(w) = writing.take() {
                w.await.map_err(io::Error::other)??;
            }
            let (f, chunks) = (file.clone(), std::mem::take(&mut batch));
            batch_len = 0;
            writing = Some(tokio::task::spawn_blocking(move || {
                write_chunks(&f, &chunks)
            }));
        }
        if done {
            break;
        }
    }
    if let Some(w) = writing {
        w.await.map_err(io::Error::other)??;
    }
    if fsync {
        tokio::task::spawn_blocking(move || file.sync_data())
            .await
            .map_err(io::Error::other)??;
    }
    Ok(written)
}

/// `write_all` for a list of buffers, as few `writev(2)` calls as it takes.
fn write_chunks(mut file: &std::fs::File, chunks: &[Bytes]) -> io::Result<()> {
    let mut slices: Vec<IoSlice> = chunks.iter().map(|c| IoSlice::new(c)).collect();
    let mut rest = &mut slices[..];
    IoSlice::advance_slices(&mut rest, 0);
    while !rest.is_empty() {
        match file.write_vectored(rest) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut rest, n),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn not_found(key: &str, e: io::Error) -> StorageError {
    if e.kind() == ErrorKind::NotFound {
        StorageError::NotFound(key.to_string())
    } else {
        StorageError::Io(e)
    }
}

/// Removes the temp files of the store at `root` older than `age`: what a
/// killed process left behind.
fn clean_tmp_in(root: &Path, age: Duration) -> io::Result<usize> {
    let mut removed = 0;
    let now = SystemTime::now();
    let entries = match std::fs::read_dir(root.join(TMP_DIR)) {
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(0),
        other => other?,
    };
    for entry in entries {
        let entry = entry?;
        if entry.file_name() == LOCK_FILE {
            continue; // removed while held, the next taker would lock another file
        }
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .map(|m| now.duration_since(m).unwrap_or_default() >= age)
            .unwrap_or(false);
        if old && std::fs::remove_file(entry.path()).is_ok() {
            removed += 1;
        }
    }
    Ok(removed)
}

/// The files under `dir` (whose key is `prefix`), with their metadata, sorted
/// by key. What is deleted while the walk runs (a file, or a directory
/// pruned once empty) is left out, as a listing made a moment later would.
fn walk_files(dir: PathBuf, prefix: String) -> io::Result<Vec<Listed>> {
    let gone =
        |e: &io::Error| e.kind() == ErrorKind::NotFound || e.kind() == ErrorKind::NotADirectory;
    let mut out = Vec::new();
    let mut pending = vec![(dir, prefix)];
    while let Some((dir, key)) = pending.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if gone(&e) => continue,
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) if gone(&e) => continue,
                Err(e) => return Err(e),
            };
            let Ok(name) = entry.file_name().into_string() else {
                continue; // not a key nora wrote
            };
            if key.is_empty() && name == TMP_DIR {
                continue;
            }
            let child = if key.is_empty() {
                name
            } else {
                format!("{key}/{name}")
            };
            // The type comes with the directory entry; a stat only for files.
            if entry.file_type()?.is_dir() {
                pending.push((entry.path(), child));
                continue;
            }
            let meta = match entry.metadata() {
                Ok(meta) => meta,
                Err(e) if gone(&e) => continue,
                Err(e) => return Err(e),
            };
            out.push(Listed {
                key: child,
                meta: ObjectMeta {
                    size: meta.len(),
                    modified: meta.modified()?,
                },
            });
        }
    }
    out.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(out)
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

/// Streams `len` bytes of `file` from `start`, each chunk read by one blocking
/// call straight into the buffer that is sent: no intermediate copy, and at
/// most one chunk in memory per reader.
type ChunkRead = tokio::task::JoinHandle<io::Result<(std::fs::File, Vec<u8>)>>;

/// Reads `want` bytes at `pos` on the blocking pool.
fn read_chunk(mut file: std::fs::File, pos: u64, want: u64) -> ChunkRead {
    tokio::task::spawn_blocking(move || {
        use std::io::{Seek, SeekFrom};
        file.seek(SeekFrom::Start(pos))?;
        let mut buf = Vec::with_capacity(want as usize);
        (&mut file).take(want).read_to_end(&mut buf)?;
        Ok((file, buf))
    })
}

/// Reads up to `want` bytes at `pos` inline, if the page cache holds them:
/// preadv2 with RWF_NOWAIT never waits for the disk, it answers EAGAIN
/// instead. A cached read is a memory copy of microseconds, cheaper than
/// handing it to a blocking thread and waking the runtime again (a third of
/// the server's CPU per blob pull). An older kernel or a filesystem without
/// RWF_NOWAIT answers an error, and the blocking path takes over.
#[cfg(target_os = "linux")]
fn read_cached(file: &std::fs::File, pos: u64, want: usize) -> Option<Vec<u8>> {
    use std::os::fd::AsRawFd;
    let mut buf = Vec::<u8>::with_capacity(want);
    let iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: want,
    };
    // SAFETY: the one iovec covers the `want` bytes of buf's spare capacity,
    // which the kernel writes; the length is set to what it wrote, no more.
    let n = unsafe {
        libc::preadv2(
            file.as_raw_fd(),
            &iov,
            1,
            pos as libc::off_t,
            libc::RWF_NOWAIT,
        )
    };
    if n <= 0 {
        return None;
    }
    // SAFETY: the kernel initialised these n <= want bytes.
    unsafe { buf.set_len(n as usize) };
    Some(buf)
}

/// Elsewhere every piece goes through the blocking pool.
#[cfg(not(target_os = "linux"))]
fn read_cached(_: &std::fs::File, _: u64, _: usize) -> Option<Vec<u8>> {
    None
}

/// Where the next piece of a file stream comes from.
enum Next {
    /// Nothing in flight: try the page cache first.
    Ready(std::fs::File),
    /// A read on the blocking pool, started ahead.
    Reading(ChunkRead),
}

/// The bytes of `file` from `start`, `len` of them, in READ_CHUNK pieces.
/// Pieces in the page cache are read inline; a piece that needs the disk is
/// read on the blocking pool, and then the next one is started while the
/// current one is sent (disk and socket overlap, memory stays at two chunks,
/// and no blocking thread is held while a slow client drains the socket).
/// A read started ahead that is already done when it is wanted found its
/// bytes in the cache, so the stream goes back to inline reads: one miss
/// (a page the kernel reclaimed, or one it had locked for a moment) must
/// not put the rest of a large blob on the blocking pool.
fn file_stream(file: std::fs::File, start: u64, len: u64) -> ByteStream {
    Box::pin(futures_util::stream::try_unfold(
        (Next::Ready(file), start, len),
        |(next, pos, left)| async move {
            if left == 0 {
                return Ok(None);
            }
            let want = left.min(READ_CHUNK as u64);
            let (file, buf, read_ahead) = match next {
                Next::Ready(file) => match read_cached(&file, pos, want as usize) {
                    Some(buf) => (file, buf, false),
                    None => {
                        let (file, buf) = read_chunk(file, pos, want)
                            .await
                            .map_err(io::Error::other)??;
                        (file, buf, true)
                    }
                },
                Next::Reading(r) => {
                    let waited = !r.is_finished();
                    let (file, buf) = r.await.map_err(io::Error::other)??;
                    (file, buf, waited)
                }
            };
            if buf.is_empty() {
                return Err(io::Error::new(
                    ErrorKind::UnexpectedEof,
                    "object shrank while being read",
                ));
            }
            let n = buf.len() as u64;
            let (pos, left) = (pos + n, left - n);
            let next = if read_ahead && left > 0 {
                Next::Reading(read_chunk(file, pos, left.min(READ_CHUNK as u64)))
            } else {
                Next::Ready(file)
            };
            Ok(Some((Bytes::from(buf), (next, pos, left))))
        },
    ))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    /// The directories `sync_parent` flushed, in every test of the process.
    pub(super) static SYNCED_DIRS: std::sync::Mutex<Vec<PathBuf>> =
        std::sync::Mutex::new(Vec::new());

    /// With fsync, the name of every object written is flushed too, so that
    /// an acknowledged write survives a power loss; without, nothing is.
    #[tokio::test]
    async fn with_fsync_the_name_of_a_written_object_is_flushed_too() {
        for fsync in [true, false] {
            let dir = tempfile::tempdir().unwrap();
            let s = FsStorage::open(dir.path(), fsync).unwrap();
            let x = || crate::storage::once(Bytes::from_static(b"x"));
            s.put("a/put/k", x()).await.unwrap();
            s.put_if_absent("a/claimed/k", x()).await.unwrap();
            s.rename("a/put/k", "a/moved/k").await.unwrap();
            let synced: Vec<PathBuf> = SYNCED_DIRS
                .lock()
                .unwrap()
                .iter()
                .filter_map(|d| d.strip_prefix(dir.path()).ok())
                .map(Path::to_path_buf)
                .collect();
            let want: Vec<PathBuf> = if fsync {
                ["a/put", "a/claimed", "a/moved"]
                    .map(PathBuf::from)
                    .to_vec()
            } else {
                Vec::new()
            };
            assert_eq!(synced, want, "fsync = {fsync}");
        }
    }

    #[tokio::test]
    async fn passes_the_storage_suite() {
        let dir = tempfile::tempdir().unwrap();
        let s = Arc::new(FsStorage::open(dir.path(), true).unwrap());
        crate::storage::suite::run_all(s).await;
    }

    #[tokio::test]
    async fn concurrent_put_if_absent_has_one_winner() {
        let dir = tempfile::tempdir().unwrap();
        let s = Arc::new(FsStorage::open(dir.path(), false).unwrap());
        let mut tasks = Vec::new();
        for i in 0..16u8 {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                s.put_if_absent("k", crate::storage::once(Bytes::from(vec![i; 1000])))
                    .await
                    .is_ok()
            }));
        }
        let mut wins = 0;
        for t in tasks {
            wins += t.await.unwrap() as usize;
        }
        assert_eq!(wins, 1);
    }

    /// Writers of sibling keys while each other's deletes prune the shared
    /// parent directories: every put lands (the race once surfaced as a
    /// 500, ENOENT or EEXIST from `create_dir_all`).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn puts_survive_concurrent_pruning_of_their_parents() {
        let dir = tempfile::tempdir().unwrap();
        let s = Arc::new(FsStorage::open(dir.path(), false).unwrap());
        let mut tasks = Vec::new();
        for w in 0..4 {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..300 {
                    let key = format!("p/q{}/s/k{w}-{i}", i % 2);
                    s.put(&key, crate::storage::once(Bytes::from_static(b"x")))
                        .await
                        .unwrap_or_else(|e| panic!("put {key}: {e}"));
                    s.delete(&key).await.unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    }

    /// A file out of the page cache goes through the blocking pool with its
    /// read-ahead; one in it is read inline; one with a hole in the cache
    /// switches from one to the other and back: the same bytes every way.
    #[tokio::test]
    async fn file_streams_give_the_same_bytes_cached_or_not() {
        use std::os::fd::AsRawFd;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob");
        let data: Vec<u8> = (0..5 * READ_CHUNK + 777).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let whole = (0, 0);
        let hole = (READ_CHUNK as i64, READ_CHUNK as i64);
        for evict in [Some(whole), None, Some(hole)] {
            let file = std::fs::File::open(&path).unwrap();
            if let Some((offset, len)) = evict {
                file.sync_all().unwrap();
                // SAFETY: advice only; the kernel drops clean cached pages.
                unsafe {
                    libc::posix_fadvise(file.as_raw_fd(), offset, len, libc::POSIX_FADV_DONTNEED)
                };
            }
            let (start, len) = (1000u64, (data.len() - 2000) as u64);
            let mut got = Vec::new();
            let mut s = file_stream(file, start, len);
            while let Some(chunk) = s.next().await {
                got.extend_from_slice(&chunk.unwrap());
            }
            assert!(got == data[1000..data.len() - 1000], "evict={evict:?}");
        }
    }

    /// A pipe where an object belongs is refused, not waited on for good
    /// (it would hold a worker thread: manifests are read inline).
    #[tokio::test]
    async fn a_pipe_in_place_of_an_object_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let s = FsStorage::open(dir.path(), false).unwrap();
        s.put_bytes("a/pipe", Bytes::from_static(b"x"))
            .await
            .unwrap();
        let path = dir.path().join("a/pipe");
        std::fs::remove_file(&path).unwrap();
        let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let read = tokio::time::timeout(Duration::from_secs(5), s.read_small("a/pipe", 10));
        let err = read.await.expect("no wait").unwrap_err();
        assert!(err.to_string().contains("not a regular file"), "{err}");
        let get = tokio::time::timeout(Duration::from_secs(5), s.get("a/pipe", None));
        assert!(get.await.expect("no wait").is_err());
    }

    /// Opening and reading a store writes nothing into it (a migrate's or
    /// backup's source, a dry run); the first write makes the temp directory.
    #[tokio::test]
    async fn only_a_write_makes_the_temp_directory() {
        let dir = tempfile::tempdir().unwrap();
        let s = FsStorage::open(dir.path(), false).unwrap();
        s.ping().await.unwrap();
        assert!(matches!(s.list("").await, Ok(v) if v.is_empty()));
        assert_eq!(clean_tmp_in(dir.path(), Duration::ZERO).unwrap(), 0);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        s.put_bytes("a/b", Bytes::from_static(b"x")).await.unwrap();
        assert!(dir.path().join(TMP_DIR).is_dir());
        assert_eq!(std::fs::read(dir.path().join("a/b")).unwrap(), b"x");
    }

    #[tokio::test]
    async fn the_sweep_removes_only_old_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let s = FsStorage::open(dir.path(), false).unwrap();
        std::fs::create_dir(dir.path().join(TMP_DIR)).unwrap();
        std::fs::write(dir.path().join(TMP_DIR).join("leftover"), b"x").unwrap();
        assert_eq!(s.sweep_abandoned().await.unwrap(), 0);
        assert_eq!(clean_tmp_in(dir.path(), Duration::ZERO).unwrap(), 1);
        s.put_bytes("k", Bytes::from_static(b"x")).await.unwrap();
        assert_eq!(clean_tmp_in(dir.path(), Duration::ZERO).unwrap(), 0);
        assert!(dir.path().join(TMP_DIR).join(LOCK_FILE).exists());
    }

    /// Filesystems without locks (NFS with `nolock`) are written to without
    /// them; other failures to lock stay errors.
    #[test]
    fn a_filesystem_without_locks_is_written_without() {
        for errno in [libc::ENOLCK, libc::EOPNOTSUPP, libc::ENOSYS] {
            assert!(without_file_locks(&io::Error::from_raw_os_error(errno)));
        }
        for errno in [libc::EBADF, libc::EINTR, libc::EIO] {
            assert!(!without_file_locks(&io::Error::from_raw_os_error(errno)));
        }
    }

    /// Another process replacing the object holds the lock: the delete
    /// waits for it, then judges the new bytes and keeps them.
    #[tokio::test]
    async fn a_conditional_delete_waits_for_a_replacement_under_way() {
        let dir = tempfile::tempdir().unwrap();
        let s = Arc::new(FsStorage::open(dir.path(), false).unwrap());
        let old = Bytes::from_static(b"sha256:old");
        s.put_bytes("tag", old.clone()).await.unwrap();
        let held = lock_replacements(dir.path()).unwrap();
        let deleting = tokio::spawn({
            let s = s.clone();
            async move { s.delete_if("tag", &old).await.unwrap() }
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!deleting.is_finished(), "the delete did not wait");
        let new = dir.path().join(TMP_DIR).join("new");
        std::fs::write(&new, b"sha256:new").unwrap();
        std::fs::rename(&new, dir.path().join("tag")).unwrap();
        drop(held);
        assert!(!deleting.await.unwrap());
        assert_eq!(
            std::fs::read(dir.path().join("tag")).unwrap(),
            b"sha256:new"
        );
    }

    /// An object a conditional delete judges and keeps is there for every
    /// read meanwhile (it used to be moved aside for the look: a GET of the
    /// tag could answer 404).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_object_judged_and_kept_never_goes_missing() {
        let dir = tempfile::tempdir().unwrap();
        let s = Arc::new(FsStorage::open(dir.path(), false).unwrap());
        s.put_bytes("tag", Bytes::from_static(b"sha256:new"))
            .await
            .unwrap();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reader = tokio::spawn({
            let (s, stop) = (s.clone(), stop.clone());
            async move {
                let mut missed = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    if s.read_small("tag", 64).await.is_err() {
                        missed += 1;
                    }
                    tokio::task::yield_now().await;
                }
                missed
            }
        });
        let stale = Bytes::from_static(b"sha256:old");
        for _ in 0..2000 {
            assert!(!s.delete_if("tag", &stale).await.unwrap());
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        assert_eq!(reader.await.unwrap(), 0, "reads missed the object");
    }
}

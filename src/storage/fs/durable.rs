//! What makes a write safe beyond the rename: the lock that replacements
//! and conditional deletes share across processes, and the flush of the
//! name a write made.

use std::io::{self, ErrorKind};
use std::path::Path;

use super::{LOCK_FILE, TMP_DIR};

/// Flushes the directory entry that names `path`. After a rename the bytes
/// are on disk (flushed before it), but the name leading to them is in the
/// directory, which the filesystem commits a few seconds later: a power
/// loss meanwhile would lose an object already acknowledged (a pushed tag).
/// On ext4 and XFS the flush also commits the directories made just before.
pub(super) fn sync_parent(path: &Path) -> io::Result<()> {
    let Some(dir) = path.parent() else {
        return Ok(());
    };
    #[cfg(test)]
    super::tests::SYNCED_DIRS
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
pub(super) fn lock_replacements(root: &Path) -> io::Result<Option<std::fs::File>> {
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
                    "the filesystem of the store takes no file locks (an NFS mount whose \
                     lock service is down?): a tag pushed again while a delete or retention removes it \
                     may be lost"
                )
            });
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Whether `flock` failed because the filesystem has no locks (an NFSv3
/// mount whose lock service does not run, some FUSE filesystems): writes go
/// on without the lock, as they did before it, rather than all failing. (A
/// `nolock` mount takes locks, but each host's only for itself.)
pub(super) fn without_file_locks(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENOLCK | libc::EOPNOTSUPP | libc::ENOSYS)
    ) || e.kind() == ErrorKind::Unsupported
}

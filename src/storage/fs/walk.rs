//! Walks over the store's directories: every file under a prefix, and the
//! temp files a killed process left.

use std::io::{self, ErrorKind};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::{LOCK_FILE, TMP_DIR};
use crate::storage::{Listed, ObjectMeta};

/// Removes the temp files of the store at `root` older than `age`: what a
/// killed process left behind.
pub(super) fn clean_tmp_in(root: &Path, age: Duration) -> io::Result<usize> {
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
pub(super) fn walk_files(dir: PathBuf, prefix: String) -> io::Result<Vec<Listed>> {
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

//! Blobs a client found and will reuse. A client that finds a blob (HEAD
//! answers 200, or a mount succeeds) skips its upload and names it in the
//! manifest it pushes next, maybe minutes later. An upload makes a blob
//! young again for gc; finding it did not, so a layer of an image deleted
//! long ago, found by a push, could be collected before that push's
//! manifest came, failing it. Finding an old blob now writes a marker
//! (`gc/used/`) that gc honours as it honours an upload.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;

use super::Registry;
use super::digest::Digest;
use super::error::Result;
use crate::storage::{StorageError, layout};

/// A blob younger than `every` needs no marker (its upload protects it),
/// and a process writes one blob's marker at most that often. Half the
/// configured gc grace, so a marker is always younger than the grace
/// (at most a minute: a write per blob a minute costs nothing; at least a
/// second).
const MARK_AT_MOST_EVERY: Duration = Duration::from_secs(60);
const MARK_AT_LEAST_EVERY: Duration = Duration::from_secs(1);
/// Past this many remembered digests the memory starts over.
const REMEMBER_AT_MOST: usize = 10_000;

/// When this process last marked each digest, and how often it marks.
pub struct Marked {
    last: Mutex<HashMap<Digest, Instant>>,
    every: Duration,
}

impl Default for Marked {
    fn default() -> Self {
        Marked {
            last: Mutex::default(),
            every: MARK_AT_MOST_EVERY,
        }
    }
}

impl Registry {
    /// Marks found blobs often enough for gc's configured `grace` (a gc
    /// run with a shorter `--grace` than configured is not covered).
    pub fn with_gc_grace(mut self, grace: Duration) -> Self {
        self.marked.every = (grace / 2).clamp(MARK_AT_LEAST_EVERY, MARK_AT_MOST_EVERY);
        self
    }

    /// Notes that a client found blob `d`, last written at `modified`.
    /// Best effort: a failed write costs at worst the push a retry.
    pub(super) async fn note_found(&self, d: &Digest, modified: SystemTime) {
        let every = self.marked.every;
        if modified.elapsed().unwrap_or_default() < every {
            return;
        }
        {
            let mut marked = self.marked.last.lock().unwrap_or_else(|p| p.into_inner());
            if marked.get(d).is_some_and(|t| t.elapsed() < every) {
                return;
            }
            if marked.len() >= REMEMBER_AT_MOST {
                marked.clear();
            }
            marked.insert(d.clone(), Instant::now());
        }
        if let Err(e) = self
            .storage
            .put_bytes(&layout::gc_used(d), Bytes::new())
            .await
        {
            tracing::warn!(digest = %d, error = %e, "cannot mark a found blob as in use");
        }
    }

    /// Whether a client found `d` at or after `cutoff`.
    pub(super) async fn found_since(&self, d: &Digest, cutoff: SystemTime) -> Result<bool> {
        Ok(self
            .storage
            .stat(&layout::gc_used(d))
            .await?
            .is_some_and(|m| m.modified >= cutoff))
    }

    /// The blobs a listing of the markers shows found at or after `cutoff`:
    /// gc's scan reads them in one listing instead of a look per blob (what
    /// is found after it, the quarantine's own `found_since` sees).
    pub(super) async fn found_since_listed(&self, cutoff: SystemTime) -> Result<HashSet<Digest>> {
        let listed = self.storage.list_deep(layout::GC_USED).await?;
        Ok(listed
            .into_iter()
            .filter(|l| l.meta.modified >= cutoff)
            .filter_map(|l| layout::parse_gc_used(&l.key))
            .collect())
    }

    /// Removes the markers older than `cutoff`: they protect nothing now.
    pub(super) async fn prune_found(&self, cutoff: SystemTime) -> Result<()> {
        let listed = self.storage.list_deep(layout::GC_USED).await?;
        for l in listed.into_iter().filter(|l| l.meta.modified < cutoff) {
            // Looked at again just before: a client may have found the blob
            // since the listing, writing the marker anew.
            match self.storage.stat(&l.key).await? {
                Some(m) if m.modified < cutoff => match self.storage.delete(&l.key).await {
                    Ok(()) | Err(StorageError::NotFound(_)) => {}
                    Err(e) => return Err(e.into()),
                },
                _ => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::gc::GcReport;
    use crate::registry::testing::{self, age, push_blob, registry};

    async fn gc(reg: &Registry) -> GcReport {
        testing::gc(reg, false, Duration::from_secs(3600))
            .await
            .unwrap()
    }

    /// An old unreferenced blob a client finds (HEAD, or a mount) is kept
    /// for the grace period, as if uploaded again; then it goes, with its
    /// marker.
    #[tokio::test]
    async fn a_found_blob_is_kept_for_the_grace_period() {
        let dir = tempfile::tempdir().unwrap();
        let reg = registry(dir.path());
        let headed = push_blob(&reg, "a", b"layer of an image deleted long ago").await;
        let mounted = push_blob(&reg, "a", b"another such layer").await;
        for d in [&headed, &mounted] {
            age(&dir.path().join(layout::blob(d)), Duration::from_secs(7200));
        }
        assert_eq!(reg.blob_size("a", &headed).await.unwrap(), 34);
        assert!(reg.blob_mount("b", Some("a"), &mounted).await.unwrap());
        assert_eq!(gc(&reg).await.blobs_removed, 0);

        for d in [&headed, &mounted] {
            age(
                &dir.path().join(layout::gc_used(d)),
                Duration::from_secs(7200),
            );
        }
        assert_eq!(gc(&reg).await.blobs_removed, 2);
        assert!(!dir.path().join(layout::gc_used(&headed)).exists());
        assert!(!dir.path().join(layout::gc_used(&mounted)).exists());
    }

    /// With a short configured grace, a blob found seconds after its
    /// upload is marked too (a minute's threshold left it unprotected).
    #[tokio::test]
    async fn a_short_grace_marks_sooner() {
        let dir = tempfile::tempdir().unwrap();
        let reg = registry(dir.path()).with_gc_grace(Duration::from_secs(3));
        let d = push_blob(&reg, "a", b"found after four seconds").await;
        age(&dir.path().join(layout::blob(&d)), Duration::from_secs(4));
        reg.blob_size("a", &d).await.unwrap();
        assert!(dir.path().join(layout::gc_used(&d)).exists());
    }

    /// A young blob needs no marker: its upload protects it.
    #[tokio::test]
    async fn a_young_blob_is_not_marked() {
        let dir = tempfile::tempdir().unwrap();
        let reg = registry(dir.path());
        let d = push_blob(&reg, "a", b"fresh").await;
        reg.blob_size("a", &d).await.unwrap();
        assert!(!dir.path().join(layout::gc_used(&d)).exists());
    }
}

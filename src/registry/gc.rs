//! Online mark-and-sweep garbage collection of blobs, safe against
//! concurrent pushes without blocking them.
//!
//! Roots are every manifest revision of every repository (so tagged images,
//! untagged ones, index children and referrers all keep their blobs). A blob
//! no manifest references, older than the grace period, is garbage: typically
//! the layers of a deleted image, the bytes of a manifest deleted by digest, or
//! an upload that never got a manifest.
//!
//! The protocol that makes it safe while pushes run:
//! 0. finish the manifest removals a killed process left under way (see
//!    registry/retiring.rs): a manifest a tag names has its revision back;
//! 1. mark: collect every digest referenced by any manifest revision;
//! 2. quarantine: rename each unmarked, old-enough blob to `gc/trash/`;
//! 3. mark again (only revisions not seen in step 1) and move back every
//!    quarantined blob that is now referenced;
//! 4. purge what is still in the trash.
//!
//! A manifest PUT writes its revision first and then checks that every blob it
//! references is in place, moving it back from the trash if needed (see
//! `Registry::ensure_blobs`). So whichever of the two runs second sees the
//! other: either GC's second mark sees the new revision, or the PUT's check
//! sees the quarantined blob (and restores it, or fails when it was already
//! purged, so the client retries). Blob reads restore from the trash too,
//! which heals a GC that was killed between steps 2 and 4.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::{StreamExt, stream};
use serde::{Deserialize, Serialize};

use super::Registry;
use super::digest::{Algorithm, Digest};
use super::error::{Code, RegistryError, Result};
use super::manifest::{self, Reference};
use crate::storage::{Entry, ObjectMeta, StorageError, layout, once};

/// A running GC rewrites its lock (a backup its hold) this often; a lock not
/// rewritten for LOCK_STALE_AFTER belongs to a GC that was killed, and the
/// next GC takes it over (what the killed one left in the trash is sorted out
/// as leftovers); a stale hold is a backup that was killed, and is removed.
const LOCK_HEARTBEAT: Duration = Duration::from_secs(10);
const LOCK_STALE_AFTER: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
pub struct GcOptions {
    pub dry_run: bool,
    /// Blobs younger than this are never removed.
    pub grace: Duration,
    /// Upload sessions older than this are removed as well.
    pub upload_ttl: Duration,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct GcReport {
    pub dry_run: bool,
    pub repositories: u64,
    pub manifests: u64,
    pub blobs_scanned: u64,
    pub blobs_removed: u64,
    pub bytes_freed: u64,
    pub uploads_removed: u64,
    /// Leftovers of writes a killed process never finished (temp files,
    /// unfinished S3 multipart uploads; see `Storage::sweep_abandoned`).
    #[serde(default)]
    pub leftovers_removed: u64,
    /// Manifest removals a killed process left under way, finished (see
    /// registry/retiring.rs).
    #[serde(default)]
    pub removals_finished: u64,
    pub duration_ms: u64,
}

/// Progress callbacks: (phase, done, total).
pub type Progress<'a> = &'a (dyn Fn(&str, u64, u64) + Send + Sync);

/// What marking one repository found.
#[derive(Default)]
struct Marks {
    /// Revisions the repository holds.
    revisions: u64,
    /// Manifests read (revisions and their children), not seen before.
    manifests: HashSet<Digest>,
    /// Digests those manifests are or reference.
    referenced: HashSet<Digest>,
}

struct Candidate {
    digest: Digest,
    size: u64,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// What a lock or hold object holds: for people reading the bucket, and
/// which process wrote it (`owner`, so that one killed on this machine
/// need not go stale first). Unique to its writer (`by`), so that S3 can
/// tell a gc's own lock from another's (see `storage::unique_claim`).
fn stamp(what: &str) -> String {
    serde_json::json!({
        what: unix_now(),
        "by": format!("{:032x}", rand::random::<u128>()),
        "owner": super::owner::me(),
    })
    .to_string()
}

impl Registry {
    pub async fn gc(&self, opts: &GcOptions, progress: Progress<'_>) -> Result<GcReport> {
        let started = Instant::now();
        // Counted from before the lock is taken: a Ctrl-C from then on
        // lets it go (see crate::stop).
        let _counted = crate::stop::Holding::new();
        // A dry run only reads: it takes no lock, so it runs on a read-only
        // store, and beside a real collection or a backup.
        let mut report = if opts.dry_run {
            self.collect(opts, progress).await?
        } else {
            self.gc_lock().await?;
            self.holding(layout::GC_LOCK, self.collect(opts, progress))
                .await?
        };
        report.duration_ms = started.elapsed().as_millis() as u64;
        Ok(report)
    }

    /// Runs `work` while no garbage collection can run, on any instance:
    /// what a backup needs for a consistent snapshot. It takes a hold
    /// (`gc/holds/<id>`, kept fresh by a heartbeat), not the gc lock, so
    /// backups never exclude each other, and a backup cut off by a storage
    /// outage does not stop its rerun (only gc waits for its hold to go
    /// stale). A gc writes its lock then looks for holds; a backup writes
    /// its hold then looks at the lock: one of them always sees the other.
    pub async fn with_gc_paused<T>(&self, work: impl Future<Output = Result<T>>) -> Result<T> {
        let _counted = crate::stop::Holding::new();
        let hold = layout::gc_hold(&format!("{:032x}", rand::random::<u128>()));
        match self.storage.put_bytes(&hold, stamp("started").into()).await {
            Ok(_) => {}
            // A read-only store (a filesystem snapshot) holds still, with
            // no hold. (A read-only view of a store others write to does
            // not; the README says to back that up through a writable one.)
            Err(e) if e.is_read_only() => {
                tracing::info!("the store is read-only: gc is not held off (none can run here)");
                return work.await;
            }
            Err(e) => return Err(e.into()),
        }
        if self.fresh(layout::GC_LOCK).await? {
            let _ = self.storage.delete(&hold).await;
            return Err(RegistryError::new(
                Code::Busy,
                "a garbage collection is running: try again when it is done (the lock of one that was killed or cut off expires within 60 s)",
            ));
        }
        self.holding(&hold, work).await
    }

    /// Runs `work` with `key` kept fresh by a heartbeat, then deletes `key`.
    /// A stop request (`crate::stop`) drops `work` where it waits: every
    /// step of a gc or a backup is safe to cut off, and the next gc sorts
    /// out what it left in the trash; its lock is not left behind.
    async fn holding<T>(&self, key: &str, work: impl Future<Output = Result<T>>) -> Result<T> {
        let (stop, heartbeat) = self.heartbeat(key);
        let result = tokio::select! {
            r = work => r,
            _ = crate::stop::requested() => Err(RegistryError::new(
                Code::Busy,
                "interrupted before the end (what it did is whole; run it again to finish)",
            )),
        };
        // Stop the heartbeat between writes, so none lands after the delete.
        let _ = stop.send(());
        let _ = heartbeat.await;
        let _ = self.storage.delete(key).await;
        result
    }

    fn heartbeat(
        &self,
        key: &str,
    ) -> (
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<()>,
    ) {
        let (storage, key) = (self.storage.clone(), key.to_string());
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(LOCK_HEARTBEAT) => {}
                    _ = &mut stopped => return,
                }
                if let Err(e) = storage.put_bytes(&key, stamp("alive").into()).await {
                    tracing::warn!(error = %e, key, "cannot refresh the gc lock");
                }
            }
        });
        (stop, task)
    }

    /// Whether `key` exists, was written within LOCK_STALE_AFTER, and not
    /// by a process known to have ended.
    pub(super) async fn fresh(&self, key: &str) -> Result<bool> {
        let recent = self
            .storage
            .stat(key)
            .await?
            .is_some_and(|m| m.modified.elapsed().unwrap_or_default() <= LOCK_STALE_AFTER);
        if !recent {
            return Ok(false);
        }
        let owner = match self.storage.read_small(key, 4096).await {
            Ok(raw) => serde_json::from_slice::<serde_json::Value>(&raw)
                .ok()
                .and_then(|v| v["owner"].as_str().map(str::to_string)),
            Err(StorageError::NotFound(_)) => return Ok(false),
            Err(e) => return Err(e.into()),
        };
        if let Some(owner) = owner.filter(|o| super::owner::is_gone(o)) {
            tracing::info!(key, owner, "taken over: its process ended on this machine");
            return Ok(false);
        }
        Ok(true)
    }

    async fn gc_lock(&self) -> Result<()> {
        for _ in 0..2 {
            match self
                .storage
                .put_if_absent(layout::GC_LOCK, once(stamp("started").into()))
                .await
            {
                Ok(_) => return self.no_backup_running().await,
                Err(StorageError::AlreadyExists(_)) => {
                    if self.fresh(layout::GC_LOCK).await? {
                        return Err(RegistryError::new(
                            Code::Busy,
                            "another garbage collection is running (the lock of one that was killed or cut off expires within 60 s)",
                        ));
                    }
                    self.storage.delete(layout::GC_LOCK).await?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(RegistryError::new(Code::Busy, "could not take the gc lock"))
    }

    /// With the gc lock taken: refuses (and lets the lock go) while a backup
    /// holds gc off; removes the holds of backups that were cut off.
    async fn no_backup_running(&self) -> Result<()> {
        let mut holds = Vec::new();
        crate::storage::transfer::walk(self.storage.as_ref(), layout::GC_HOLDS, &mut holds).await?;
        for hold in holds {
            if self.fresh(&hold).await? {
                let _ = self.storage.delete(layout::GC_LOCK).await;
                return Err(RegistryError::new(
                    Code::Busy,
                    "a backup is running: garbage collection waits until it is done (the hold of one that was killed or cut off expires within 60 s)",
                ));
            }
            let _ = self.storage.delete(&hold).await;
        }
        Ok(())
    }

    async fn collect(&self, opts: &GcOptions, progress: Progress<'_>) -> Result<GcReport> {
        // A grace longer than the clock has run keeps everything (and must not
        // panic: it comes from the API and the command line).
        let cutoff = SystemTime::now()
            .checked_sub(opts.grace)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let mut report = GcReport {
            dry_run: opts.dry_run,
            ..Default::default()
        };
        // A removal a killed process left under way may owe a manifest its
        // revision back (a tag names it): marked from that revision, its
        // layers stay.
        if !opts.dry_run {
            report.removals_finished = self.finish_retirements().await? as u64;
        }
        let mut marked = HashSet::new();
        let mut seen = HashMap::new();
        let (repos, manifests) = self.mark(&mut marked, &mut seen, progress).await?;
        report.repositories = repos;
        report.manifests = manifests;

        let (candidates, scanned) = self.unreferenced_blobs(&marked, cutoff, progress).await?;
        report.blobs_scanned = scanned;
        let leftovers = self.trash_entries().await?;
        if opts.dry_run {
            report.blobs_removed = candidates.len() as u64;
            report.bytes_freed = candidates.iter().map(|c| c.size).sum();
            return Ok(report);
        }

        // Quarantine.
        let total = candidates.len() as u64;
        let mut trashed: Vec<Candidate> = Vec::new();
        for (i, c) in candidates.into_iter().enumerate() {
            // Pushed again or found by a client since the scan: young now.
            let key = layout::blob(&c.digest);
            if self
                .storage
                .stat(&key)
                .await?
                .is_none_or(|m| m.modified >= cutoff)
                || self.found_since(&c.digest, cutoff).await?
            {
                progress("quarantine", i as u64 + 1, total);
                continue;
            }
            match self.storage.rename(&key, &layout::trash(&c.digest)).await {
                Ok(()) => {
                    tracing::debug!(digest = %c.digest, "gc: quarantined");
                    trashed.push(c)
                }
                Err(StorageError::NotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
            progress("quarantine", i as u64 + 1, total);
        }
        trashed.extend(leftovers);

        // Second mark: whatever was pushed meanwhile keeps its blobs.
        self.mark(&mut marked, &mut seen, progress).await?;
        let total = trashed.len() as u64;
        for (i, c) in trashed.into_iter().enumerate() {
            if marked.contains(&c.digest) {
                tracing::debug!(digest = %c.digest, "gc: referenced again, restored");
                self.restore_from_trash(&c.digest).await?;
            } else {
                tracing::debug!(digest = %c.digest, "gc: purged");
                self.storage.delete(&layout::trash(&c.digest)).await?;
                report.blobs_removed += 1;
                report.bytes_freed += c.size;
            }
            progress("purge", i as u64 + 1, total);
        }
        self.prune_found(cutoff).await?;
        report.uploads_removed = self.expire_uploads_older_than(opts.upload_ttl).await? as u64;
        report.leftovers_removed = self.storage.sweep_abandoned().await? as u64;
        Ok(report)
    }

    /// Adds to `marked` every digest referenced by a revision not yet in
    /// `seen` (per repository, the manifests an earlier pass read). Returns (repositories, manifests) counted. Repositories are
    /// read PARALLEL_READS at a time (on S3 each read is a round trip).
    async fn mark(
        &self,
        marked: &mut HashSet<Digest>,
        seen: &mut HashMap<String, HashSet<Digest>>,
        progress: Progress<'_>,
    ) -> Result<(u64, u64)> {
        let repos = self.catalog().await?;
        let total = repos.len() as u64;
        let mut manifests = 0;
        let seen_before = &*seen;
        let mut reads = stream::iter(repos)
            .map(|repo| async move {
                let found = self.mark_repository(&repo, seen_before.get(&repo)).await;
                (repo, found)
            })
            .buffer_unordered(super::PARALLEL_READS);
        let mut done = 0;
        // `seen` is read by the reads still going: what they saw joins it after.
        let mut seen_now = Vec::new();
        while let Some((repo, found)) = reads.next().await {
            let found = found?;
            manifests += found.revisions;
            marked.extend(found.referenced);
            seen_now.push((repo, found.manifests));
            done += 1;
            progress("mark", done, total);
        }
        drop(reads);
        for (repo, digests) in seen_now {
            seen.entry(repo).or_default().extend(digests);
        }
        Ok((total, manifests))
    }

    /// What `repo` references through its revisions not in `seen` (its
    /// manifests an earlier pass read).
    async fn mark_repository(&self, repo: &str, seen: Option<&HashSet<Digest>>) -> Result<Marks> {
        let mut work = self.revisions(repo).await?;
        let mut found = Marks {
            revisions: work.len() as u64,
            ..Marks::default()
        };
        // An index's children are followed too: one deleted by digest
        // while the index stays (a store from before such deletes were
        // refused) keeps its layers for as long as the index keeps it.
        while let Some(d) = work.pop() {
            if seen.is_some_and(|s| s.contains(&d)) || !found.manifests.insert(d.clone()) {
                continue;
            }
            found.referenced.insert(d.clone());
            // (Restores the bytes if this very GC quarantined them.)
            let body = match self.manifest_bytes(&d).await {
                Ok(b) => b,
                Err(e) if e.code == Code::ManifestUnknown => {
                    tracing::warn!(repository = %repo, digest = %d, "revision without manifest bytes");
                    continue;
                }
                Err(e) => return Err(e),
            };
            let ct = self.revision_media_type(repo, &d).await;
            if let Ok(parsed) = manifest::parse(&body, ct.as_deref()) {
                for r in parsed.references {
                    found.referenced.insert(r.digest().clone());
                    if let Reference::Manifest(child, _) = r {
                        work.push(child);
                    }
                }
            }
        }
        Ok(found)
    }

    async fn revision_media_type(&self, repo: &str, d: &Digest) -> Option<String> {
        let raw = self
            .storage
            .read_small(&layout::revision(repo, d), 4096)
            .await
            .ok()?;
        Some(String::from_utf8_lossy(&raw).trim().to_string())
    }

    /// Every manifest digest in `repo`.
    pub async fn revisions(&self, repo: &str) -> Result<Vec<Digest>> {
        let mut out = Vec::new();
        for alg in [Algorithm::Sha256, Algorithm::Sha512] {
            let prefix = format!("{}/_manifests/revisions/{}", layout::repository(repo), alg);
            for e in self.storage.list(&prefix).await? {
                if let Entry::Object(hex) = e
                    && let Ok(d) = format!("{alg}:{hex}").parse()
                {
                    out.push(d);
                }
            }
        }
        Ok(out)
    }

    /// Blobs not in `marked` and last written before `cutoff`; and how many
    /// blobs were looked at.
    async fn unreferenced_blobs(
        &self,
        marked: &HashSet<Digest>,
        cutoff: SystemTime,
        progress: Progress<'_>,
    ) -> Result<(Vec<Candidate>, u64)> {
        let mut out = Vec::new();
        let mut scanned = 0;
        let found = self.found_since_listed(cutoff).await?;
        for alg in [Algorithm::Sha256, Algorithm::Sha512] {
            let shards = self.blob_shards(alg).await?;
            let total = shards.len() as u64;
            let mut shards = stream::iter(shards)
                .map(|shard| self.unreferenced_in_shard(alg, shard, marked, &found, cutoff))
                .buffered(super::PARALLEL_READS);
            let mut done = 0;
            while let Some(found) = shards.next().await {
                let (candidates, n) = found?;
                out.extend(candidates);
                scanned += n;
                done += 1;
                progress("scan", done, total);
            }
        }
        Ok((out, scanned))
    }

    /// `unreferenced_blobs` of one shard directory (`blobs/<alg>/<xx>`).
    async fn unreferenced_in_shard(
        &self,
        alg: Algorithm,
        shard: String,
        marked: &HashSet<Digest>,
        found: &HashSet<Digest>,
        cutoff: SystemTime,
    ) -> Result<(Vec<Candidate>, u64)> {
        let mut out = Vec::new();
        let mut scanned = 0;
        // Names only, and a look at the few no manifest references: on S3
        // a listing without a delimiter (`blobs_in_shard`) saves those looks
        // but costs some servers a walk of the whole bucket (s3s-fs: gc 3x
        // slower on a store of 3,300 blobs).
        for d in self.digests_in_shard(alg, &shard).await? {
            scanned += 1;
            if marked.contains(&d) || found.contains(&d) {
                continue;
            }
            if let Some(meta) = self.storage.stat(&layout::blob(&d)).await?
                && meta.modified < cutoff
            {
                out.push(Candidate {
                    digest: d,
                    size: meta.size,
                });
            }
        }
        Ok((out, scanned))
    }

    /// How many blobs are stored, and their bytes.
    pub async fn blob_totals(&self) -> Result<(u64, u64)> {
        let (mut n, mut bytes) = (0, 0);
        for alg in [Algorithm::Sha256, Algorithm::Sha512] {
            let shards = self.blob_shards(alg).await?;
            let mut totals = stream::iter(shards)
                .map(|shard| async move {
                    let (mut n, mut bytes) = (0, 0);
                    for (_, meta) in self.blobs_in_shard(&shard).await? {
                        n += 1;
                        bytes += meta.size;
                    }
                    Ok::<_, RegistryError>((n, bytes))
                })
                .buffer_unordered(super::PARALLEL_READS);
            while let Some(total) = totals.next().await {
                let (shard_n, shard_bytes) = total?;
                n += shard_n;
                bytes += shard_bytes;
            }
        }
        Ok((n, bytes))
    }

    /// The shard directories of `alg`'s blobs (`blobs/<alg>/<xx>`).
    async fn blob_shards(&self, alg: Algorithm) -> Result<Vec<String>> {
        let top = format!("{}/{alg}", layout::BLOBS);
        let listed = self.storage.list(&top).await?;
        Ok(listed
            .into_iter()
            .filter_map(|e| match e {
                Entry::Prefix(shard) => Some(format!("{top}/{shard}")),
                Entry::Object(_) => None,
            })
            .collect())
    }

    /// The blobs in one shard directory (`blobs/<alg>/<xx>`).
    async fn digests_in_shard(&self, alg: Algorithm, shard: &str) -> Result<Vec<Digest>> {
        let listed = self.storage.list(shard).await?;
        Ok(listed
            .into_iter()
            .filter_map(|e| match e {
                Entry::Prefix(hex) => format!("{alg}:{hex}").parse().ok(),
                Entry::Object(_) => None,
            })
            .collect())
    }

    /// The blobs in one shard directory, with their sizes and times: one
    /// listing, however many blobs it holds, where a look at each would
    /// cost a round trip on S3.
    async fn blobs_in_shard(&self, shard: &str) -> Result<Vec<(Digest, ObjectMeta)>> {
        let listed = self.storage.list_deep(shard).await?;
        Ok(listed
            .into_iter()
            .filter_map(|l| Some((layout::parse_blob(&l.key)?, l.meta)))
            .collect())
    }

    /// What an interrupted GC left in the trash.
    async fn trash_entries(&self) -> Result<Vec<Candidate>> {
        let listed = self.storage.list_deep(layout::GC_TRASH).await?;
        Ok(listed
            .into_iter()
            .filter_map(|l| {
                Some(Candidate {
                    digest: layout::parse_trash(&l.key)?,
                    size: l.meta.size,
                })
            })
            .collect())
    }

    /// Moves blob `d` back from the GC trash. True when it is in place after.
    pub(super) async fn restore_from_trash(&self, d: &Digest) -> Result<bool> {
        match self
            .storage
            .rename(&layout::trash(d), &layout::blob(d))
            .await
        {
            Ok(()) => {
                tracing::debug!(digest = %d, "restored from the gc trash");
                Ok(true)
            }
            Err(StorageError::NotFound(_)) => {
                Ok(self.storage.stat(&layout::blob(d)).await?.is_some())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// After a manifest's revision is written: every blob it needs must be in
    /// place (restored from a running GC's trash if it was just moved there).
    pub(super) async fn ensure_blobs(&self, digests: &[Digest]) -> Result<()> {
        for d in digests {
            if self.storage.stat(&layout::blob(d)).await?.is_some() {
                continue;
            }
            if !self.restore_from_trash(d).await? {
                return Err(RegistryError::new(
                    Code::ManifestBlobUnknown,
                    format!("blob {d} was removed while the manifest was pushed; push it again"),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::testing::{self, age, push_blob, registry};

    /// A real collection (a dry run takes no lock: it meets no hold).
    async fn gc(reg: &Registry) -> Result<GcReport> {
        testing::gc(reg, false, Duration::ZERO).await
    }

    /// An old unreferenced blob (the layer of a deleted image) that a client
    /// uploads again is young again: gc keeps it for the manifest that
    /// follows, however long ago its bytes first came; only untouched ones go.
    #[tokio::test]
    async fn a_blob_pushed_again_is_kept_for_the_grace_period() {
        let dir = tempfile::tempdir().unwrap();
        let reg = registry(dir.path());
        let again = push_blob(&reg, "r", b"layer of a deleted image").await;
        let gone = push_blob(&reg, "r", b"another one").await;
        age(
            &dir.path().join(layout::blob(&again)),
            Duration::from_secs(120),
        );
        age(
            &dir.path().join(layout::blob(&gone)),
            Duration::from_secs(120),
        );
        assert_eq!(
            push_blob(&reg, "r", b"layer of a deleted image").await,
            again
        );
        let report = testing::gc(&reg, false, Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(report.blobs_removed, 1);
        assert!(
            reg.storage
                .stat(&layout::blob(&again))
                .await
                .unwrap()
                .is_some()
        );
        assert!(
            reg.storage
                .stat(&layout::blob(&gone))
                .await
                .unwrap()
                .is_none()
        );
    }

    /// The usage totals take sizes from each shard's listing, and gc's scan
    /// the found-blob markers from one listing: the totals look at no blob
    /// one by one, gc only at those no manifest references (on S3 each
    /// look is a round trip).
    #[tokio::test]
    async fn the_totals_and_the_scan_look_at_few_blobs_one_by_one() {
        use crate::registry::testing::Watched;
        use crate::storage::fs::FsStorage;
        let dir = tempfile::tempdir().unwrap();
        let watched =
            std::sync::Arc::new(Watched::new(FsStorage::open(dir.path(), false).unwrap()));
        let reg = Registry::new(watched.clone(), Duration::from_secs(3600));
        let mut blobs = Vec::new();
        for i in 0..30u8 {
            let bytes = bytes::Bytes::from(vec![i; 10 + i as usize]);
            let d = Digest::of(Algorithm::Sha256, &bytes);
            reg.storage
                .put_bytes(&layout::blob(&d), bytes)
                .await
                .unwrap();
            age(&dir.path().join(layout::blob(&d)), Duration::from_secs(120));
            blobs.push(d);
        }
        // A client found this one a moment ago: its push is on the way.
        let found = layout::gc_used(&blobs[0]);
        reg.storage.put_bytes(&found, "".into()).await.unwrap();
        assert_eq!(reg.blob_totals().await.unwrap(), (30, (10..40).sum()));
        assert_eq!(watched.stats(), 0, "usage: a stat per blob");
        let report = testing::gc(&reg, true, Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!((report.blobs_scanned, report.blobs_removed), (30, 29));
        assert_eq!(watched.stats(), 29, "gc: the unreferenced, not found");
        let report = testing::gc(&reg, false, Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(report.blobs_removed, 29);
        let kept = reg.storage.stat(&layout::blob(&blobs[0])).await.unwrap();
        assert!(kept.is_some());
    }

    /// A temp file a killed process left behind is removed by gc (not only
    /// by a server's hourly housekeeping) once untouched for an hour: a
    /// store written only by the command line is swept too.
    #[tokio::test]
    async fn gc_removes_what_killed_writes_left() {
        let dir = tempfile::tempdir().unwrap();
        let reg = registry(dir.path());
        let tmp = dir.path().join("_tmp");
        std::fs::create_dir_all(&tmp).unwrap();
        for name in ["old", "fresh"] {
            std::fs::write(tmp.join(name), b"half a blob").unwrap();
        }
        age(&tmp.join("old"), Duration::from_secs(2 * 3600));
        let report = testing::gc(&reg, true, Duration::ZERO).await.unwrap();
        assert_eq!(report.leftovers_removed, 0, "a dry run removes nothing");
        assert!(tmp.join("old").exists());
        let report = gc(&reg).await.unwrap();
        assert_eq!(report.leftovers_removed, 1);
        assert!(!tmp.join("old").exists());
        assert!(tmp.join("fresh").exists(), "a write may still be under way");
    }

    /// The API and the command line take any grace: one longer than the
    /// clock has run keeps everything (it used to panic and leave the lock).
    #[tokio::test]
    async fn a_grace_past_the_epoch_keeps_everything() {
        let dir = tempfile::tempdir().unwrap();
        let reg = registry(dir.path());
        push_blob(&reg, "r", b"unreferenced").await;
        for dry_run in [true, false] {
            let opts = GcOptions {
                dry_run,
                grace: Duration::MAX,
                upload_ttl: Duration::MAX,
            };
            let report = reg.gc(&opts, &|_, _, _| {}).await.unwrap();
            assert_eq!(report.blobs_removed, 0);
        }
        assert!(!dir.path().join("gc/lock").exists());
    }

    /// A filesystem snapshot mounted read-only is backed up as it is: no
    /// hold can be written, and no gc can change it through that view; a
    /// dry run reads it.
    #[tokio::test]
    async fn a_read_only_store_is_read_without_a_hold() {
        let dir = tempfile::tempdir().unwrap();
        let digest = push_blob(&registry(dir.path()), "r", b"kept").await;
        let store =
            testing::ReadOnlyStore(crate::storage::fs::FsStorage::open(dir.path(), false).unwrap());
        let reg = Registry::new(std::sync::Arc::new(store), Duration::from_secs(3600));
        let read = reg
            .with_gc_paused(async {
                reg.storage
                    .stat(&layout::blob(&digest))
                    .await
                    .map_err(Into::into)
            })
            .await
            .unwrap();
        assert_eq!(read.map(|m| m.size), Some(4));
        assert!(!dir.path().join("gc/holds").exists());

        // A dry run says what a gc would free there (it takes no lock);
        // a real one is refused by the store.
        let mut opts = GcOptions {
            dry_run: true,
            grace: Duration::ZERO,
            upload_ttl: Duration::MAX,
        };
        let report = reg.gc(&opts, &|_, _, _| {}).await.unwrap();
        assert_eq!((report.blobs_removed, report.bytes_freed), (1, 4));
        opts.dry_run = false;
        assert!(reg.gc(&opts, &|_, _, _| {}).await.is_err());
        assert!(dir.path().join(layout::blob(&digest)).exists());
    }

    #[tokio::test]
    async fn backups_hold_gc_off_but_not_each_other() {
        let dir = tempfile::tempdir().unwrap();
        let reg = registry(dir.path());
        let inner = reg
            .with_gc_paused(async {
                let refused = gc(&reg).await.unwrap_err();
                assert_eq!(refused.code, Code::Busy);
                assert!(refused.message.contains("backup is running"));
                // A second backup runs alongside.
                reg.with_gc_paused(async { Ok(7) }).await
            })
            .await;
        assert_eq!(inner.unwrap(), 7);
        // Both holds and the refused gc's lock are gone: gc runs.
        gc(&reg).await.unwrap();
        assert!(!dir.path().join("gc/lock").exists());

        // A running gc (a fresh lock) refuses a backup, and leaves no hold.
        reg.storage
            .put_bytes(layout::GC_LOCK, "{}".into())
            .await
            .unwrap();
        let refused = reg.with_gc_paused(async { Ok(()) }).await.unwrap_err();
        assert!(refused.message.contains("garbage collection is running"));
        let holds = dir.path().join("gc/holds");
        assert_eq!(std::fs::read_dir(&holds).map_or(0, |d| d.count()), 0);
        // The lock of a killed gc does not.
        age(&dir.path().join("gc/lock"), Duration::from_secs(120));
        reg.with_gc_paused(async { Ok(()) }).await.unwrap();

        // The hold of a killed backup stops gc until it is stale, then goes.
        reg.storage.delete(layout::GC_LOCK).await.unwrap();
        reg.storage
            .put_bytes(&layout::gc_hold("killed"), "{}".into())
            .await
            .unwrap();
        assert!(gc(&reg).await.is_err());
        age(&holds.join("killed"), Duration::from_secs(120));
        gc(&reg).await.unwrap();
        assert!(!holds.join("killed").exists());
    }

    /// A fresh lock whose process ended on this machine (a `nora gc` or a
    /// server killed mid-collection) is taken over at once; one of a live
    /// process, or of a writer it cannot judge, still refuses.
    #[tokio::test]
    async fn the_lock_of_a_gc_killed_here_is_taken_over_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let reg = registry(dir.path());
        let me = crate::registry::owner::me().expect("Linux /proc");
        // This pid with another start time: what a pid of an ended process
        // reads like, once reused or gone.
        let ended = format!("{}/1", me.rsplit_once('/').unwrap().0);
        let lock = |owner: serde_json::Value| {
            serde_json::json!({"started": unix_now(), "by": "x", "owner": owner}).to_string()
        };
        for (owner, runs) in [
            (serde_json::json!(me), false),
            (serde_json::Value::Null, false),
            (serde_json::json!("another-boot/pid:[1]/7/7"), false),
            (serde_json::json!(ended), true),
        ] {
            reg.storage
                .put_bytes(layout::GC_LOCK, lock(owner.clone()).into())
                .await
                .unwrap();
            let r = gc(&reg).await;
            assert_eq!(r.is_ok(), runs, "lock of {owner}: {r:?}");
            if runs {
                assert!(!dir.path().join("gc/lock").exists());
            }
        }
        // A backup's hold likewise.
        reg.storage
            .put_bytes(&layout::gc_hold("killed"), lock(ended.into()).into())
            .await
            .unwrap();
        gc(&reg).await.unwrap();
    }
}

//! Removing manifests a push may want back, so that a kill cannot leave a
//! tag naming what its repository lost.
//!
//! A DELETE by digest and retention remove revisions, then look whether a
//! push wanted one of them meanwhile (a tag moved onto it, a new index
//! listing it) and put that one back. A process killed between the removal
//! and the putting back would leave the tag dangling, and the next gc would
//! free the manifest's layers (it marks from revisions). So the removal is
//! journalled first (`gc/retiring/<id>`, see storage/layout.rs), and the
//! entry of a process that did not finish is replayed: the same look, the
//! same putting back. While an entry stands, a request by digest finds
//! such a manifest as a tag names it (`tagged_while_retiring`), and backup
//! and migrate replay the entries before they copy.

use std::collections::HashSet;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::Registry;
use super::digest::Digest;
use super::error::{Code, Result};
use super::manifest::{self, Reference};
use crate::storage::{StorageError, layout};

#[derive(Serialize, Deserialize)]
struct Entry {
    repository: String,
    digests: Vec<String>,
    /// Unix seconds, for people reading the store.
    started: u64,
    /// Which process writes it (see `owner`): one that ended on this
    /// machine is replayed at once, others once stale.
    owner: Option<String>,
}

/// What a journal key holds when read.
enum Found {
    /// Nothing: its removal finished meanwhile.
    Gone,
    /// Not an entry nora wrote.
    Junk,
    /// The repository and the digests of a removal.
    Entry(String, Vec<Digest>),
}

/// A journal entry written; `Registry::retired` removes it.
pub(super) struct Retiring(String);

impl Registry {
    /// Journals that the revisions of `digests` in `repo` are about to go.
    pub(super) async fn retiring(&self, repo: &str, digests: &[Digest]) -> Result<Retiring> {
        let entry = Entry {
            repository: repo.to_string(),
            digests: digests.iter().map(Digest::to_string).collect(),
            started: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            owner: super::owner::me(),
        };
        let json =
            serde_json::to_vec(&entry).map_err(|e| StorageError::Io(std::io::Error::other(e)))?;
        let key = layout::gc_retiring(&format!("{:032x}", rand::random::<u128>()));
        self.storage.put_bytes(&key, json.into()).await?;
        Ok(Retiring(key))
    }

    /// The removal journalled by `r` is done (what a push wanted is back).
    /// An entry that cannot be removed is only replayed for nothing later.
    pub(super) async fn retired(&self, r: Retiring) {
        if let Err(e) = self.storage.delete(&r.0).await {
            tracing::warn!(key = r.0, error = %e, "cannot remove a finished removal's journal entry");
        }
    }

    /// Replays the journal entries of removals a process did not finish
    /// (it ended on this machine, or the entry is a minute old): puts back
    /// each removed manifest a tag names or an index lists. Says how many
    /// entries it replayed. Entries of removals still under way are left to
    /// their process. (One running for over a minute may be replayed
    /// beside it: that only puts back what it puts back itself.)
    pub async fn finish_retirements(&self) -> Result<usize> {
        let mut replayed = 0;
        for key in self.journal().await? {
            if self.fresh(&key).await? {
                continue;
            }
            match self.read_entry(&key).await? {
                Found::Gone => continue,
                Found::Junk => tracing::warn!(key, "not a journal entry nora wrote: removed"),
                Found::Entry(repo, digests) => {
                    tracing::info!(
                        repository = repo,
                        manifests = digests.len(),
                        "finishing a removal of manifests a killed process left under way"
                    );
                    self.bring_back_wanted(&repo, &digests).await?;
                    replayed += 1;
                }
            }
            self.storage.delete(&key).await?;
        }
        Ok(replayed)
    }

    /// The keys of the journal's entries.
    async fn journal(&self) -> Result<Vec<String>> {
        let mut keys = Vec::new();
        crate::storage::transfer::walk(self.storage.as_ref(), layout::GC_RETIRING, &mut keys)
            .await?;
        Ok(keys)
    }

    /// What the journal entry at `key` says now.
    async fn read_entry(&self, key: &str) -> Result<Found> {
        let raw = match self.storage.read_small(key, layout::MAX_SMALL_OBJECT).await {
            Ok(raw) => raw,
            Err(StorageError::NotFound(_)) => return Ok(Found::Gone),
            Err(e) => return Err(e.into()),
        };
        Ok(match serde_json::from_slice::<Entry>(&raw) {
            Ok(entry) if super::names::valid_repository(&entry.repository) => {
                let digests = entry.digests.iter().filter_map(|d| d.parse().ok());
                Found::Entry(entry.repository, digests.collect())
            }
            _ => Found::Junk,
        })
    }

    /// `finish_retirements`, its outcome logged, for the callers that go
    /// on either way (a server starting, a backup, a migration).
    pub async fn finish_retirements_logged(&self) {
        match self.finish_retirements().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(entries = n, "interrupted manifest removals finished"),
            Err(e) => tracing::warn!(error = %e, "finishing interrupted manifest removals failed"),
        }
    }

    /// The media type of `d` when a removal journalled (under way, or cut
    /// off) took its revision from `repo` while a tag names it: the removal
    /// puts it back in a moment (or the next start or gc does), and it is
    /// there meanwhile for the client that moved the tag. None otherwise.
    /// (The journal, nearly always empty, is read first: a tags listing on
    /// every manifest not found would cost much more.)
    pub(super) async fn tagged_while_retiring(
        &self,
        repo: &str,
        d: &Digest,
    ) -> Result<Option<String>> {
        for key in self.journal().await? {
            if let Found::Entry(r, digests) = self.read_entry(&key).await?
                && r == repo
                && digests.contains(d)
            {
                let named = self.tags_naming(repo, d).await?;
                return Ok(named
                    .iter()
                    .find_map(|(_, raw)| layout::tag_target(raw))
                    .map(|(_, media_type)| media_type));
            }
        }
        Ok(None)
    }

    /// Puts back those of `retired` (manifests of `repo` whose revisions
    /// were removed) a tag names or an index lists now.
    async fn bring_back_wanted(&self, repo: &str, retired: &[Digest]) -> Result<()> {
        let gone = self.without_revision(repo, retired).await?;
        let wanted = self.wanted_since(repo, &HashSet::new(), &gone).await?;
        self.bring_back(repo, &wanted).await
    }

    /// Those of `digests` whose revision `repo` does not hold.
    pub(super) async fn without_revision(
        &self,
        repo: &str,
        digests: &[Digest],
    ) -> Result<Vec<Digest>> {
        let mut gone = Vec::new();
        for d in digests {
            if self
                .storage
                .stat(&layout::revision(repo, d))
                .await?
                .is_none()
            {
                gone.push(d.clone());
            }
        }
        Ok(gone)
    }

    /// Puts back the revisions of `wanted`. One whose bytes or a blob it
    /// needs went for good (a gc ran meanwhile) loses its tags instead: they
    /// could not be pulled.
    pub(super) async fn bring_back(&self, repo: &str, wanted: &[Digest]) -> Result<()> {
        for d in wanted {
            match self.relink(repo, d).await {
                Ok(()) => {}
                Err(e) if matches!(e.code, Code::ManifestUnknown | Code::ManifestBlobUnknown) => {
                    self.untag(repo, self.tags_naming(repo, d).await?).await?;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Which of `retired` a tag of `repo` names now, or one of its
    /// revisions not in `known` (read before the removal) lists.
    pub(super) async fn wanted_since(
        &self,
        repo: &str,
        known: &HashSet<Digest>,
        retired: &[Digest],
    ) -> Result<Vec<Digest>> {
        if retired.is_empty() {
            return Ok(Vec::new());
        }
        let retired_set: HashSet<&Digest> = retired.iter().collect();
        let mut wanted: Vec<Digest> = Vec::new();
        for (_, d) in self.tag_targets(repo).await? {
            if retired_set.contains(&d) && !wanted.contains(&d) {
                wanted.push(d);
            }
        }
        let new = self
            .revisions(repo)
            .await?
            .into_iter()
            .filter(|r| !known.contains(r));
        for rev in new {
            let Ok(body) = self.manifest_bytes(&rev).await else {
                continue;
            };
            let Ok(p) = manifest::parse(&body, None) else {
                continue;
            };
            for r in p.references {
                if let Reference::Manifest(c, _) = r
                    && retired_set.contains(&c)
                    && !wanted.contains(&c)
                {
                    wanted.push(c);
                }
            }
        }
        Ok(wanted)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;
    use std::time::Duration;

    use bytes::Bytes;

    use super::*;
    use crate::registry::digest::Algorithm;
    use crate::registry::manifests::Ref;
    use crate::registry::retention::Rule;
    use crate::registry::testing::{DiesAfter, age, gc, push_blob, registry};
    use crate::storage::fs::FsStorage;

    /// An image of `layer` tagged `tag` in `r`: its manifest's digest.
    async fn image(reg: &Registry, tag: &str, layer: &'static [u8]) -> Digest {
        let config = push_blob(reg, "r", b"{}").await;
        let l = push_blob(reg, "r", layer).await;
        let body = Bytes::from(format!(
            r#"{{"schemaVersion":2,"mediaType":"{ct}","config":{{"mediaType":"application/vnd.oci.empty.v1+json","digest":"{config}","size":2}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{l}","size":{}}}]}}"#,
            layer.len(),
            ct = manifest::OCI_MANIFEST
        ));
        let d = Digest::of(Algorithm::Sha256, &body);
        reg.manifest_put("r", &Ref::Tag(tag.into()), None, body, &[])
            .await
            .unwrap();
        d
    }

    /// What a process killed half way through removing `d` from `r` leaves:
    /// the journal entry (`stale`: a minute old, so its process is taken
    /// for gone) and the revision removed. A tag a push moved onto `d`
    /// meanwhile still names it.
    async fn killed_half_way(reg: &Registry, dir: &Path, d: &Digest, stale: bool) -> String {
        let Retiring(key) = reg.retiring("r", std::slice::from_ref(d)).await.unwrap();
        if stale {
            age(&dir.join(&key), Duration::from_secs(120));
        }
        reg.storage.delete(&layout::revision("r", d)).await.unwrap();
        key
    }

    async fn exists(reg: &Registry, key: &str) -> bool {
        reg.storage.stat(key).await.unwrap().is_some()
    }

    #[tokio::test]
    async fn gc_finishes_a_removal_a_killed_process_left_before_it_marks() {
        let dir = tempfile::tempdir().unwrap();
        let reg = registry(dir.path());
        let d = image(&reg, "t", b"the layer a dangling tag needs").await;
        let key = killed_half_way(&reg, dir.path(), &d, true).await;
        let report = gc(&reg, false, Duration::ZERO).await.unwrap();
        assert_eq!(report.removals_finished, 1);
        assert!(exists(&reg, &layout::revision("r", &d)).await);
        assert!(!exists(&reg, &key).await, "the entry is done with");
        let (resolved, _) = reg
            .manifest_resolve("r", &Ref::Tag("t".into()))
            .await
            .unwrap();
        assert_eq!(resolved, d);
        // Its layer was marked through the revision put back, not freed.
        let layer = Digest::of(Algorithm::Sha256, b"the layer a dangling tag needs");
        assert!(exists(&reg, &layout::blob(&layer)).await);
    }

    #[tokio::test]
    async fn an_index_listing_a_removed_child_gets_it_back() {
        let dir = tempfile::tempdir().unwrap();
        let reg = registry(dir.path());
        let child = image(&reg, "child", b"a child's layer").await;
        let body = Bytes::from(format!(
            r#"{{"schemaVersion":2,"mediaType":"{ct}","manifests":[{{"mediaType":"{m}","digest":"{child}","size":{}}}]}}"#,
            reg.manifest_bytes(&child).await.unwrap().len(),
            ct = manifest::OCI_INDEX,
            m = manifest::OCI_MANIFEST,
        ));
        reg.manifest_put("r", &Ref::Tag("i".into()), None, body, &[])
            .await
            .unwrap();
        reg.manifest_delete("r", &Ref::Tag("child".into()))
            .await
            .unwrap();
        killed_half_way(&reg, dir.path(), &child, true).await;
        assert_eq!(reg.finish_retirements().await.unwrap(), 1);
        assert!(exists(&reg, &layout::revision("r", &child)).await);
    }

    #[tokio::test]
    async fn a_removal_under_way_is_left_to_its_process() {
        let dir = tempfile::tempdir().unwrap();
        let reg = registry(dir.path());
        let d = image(&reg, "t", b"layer").await;
        let key = killed_half_way(&reg, dir.path(), &d, false).await;
        assert_eq!(reg.finish_retirements().await.unwrap(), 0);
        assert!(exists(&reg, &key).await);
        assert!(!exists(&reg, &layout::revision("r", &d)).await);
    }

    #[tokio::test]
    async fn a_manifest_gone_for_good_loses_its_tags_instead() {
        let dir = tempfile::tempdir().unwrap();
        let reg = registry(dir.path());
        let d = image(&reg, "t", b"layer").await;
        let untouched = image(&reg, "other", b"another layer").await;
        killed_half_way(&reg, dir.path(), &d, true).await;
        let layer = Digest::of(Algorithm::Sha256, b"layer");
        reg.storage.delete(&layout::blob(&layer)).await.unwrap();
        assert_eq!(reg.finish_retirements().await.unwrap(), 1);
        assert!(!exists(&reg, &layout::revision("r", &d)).await);
        assert!(!exists(&reg, &layout::tag("r", "t")).await);
        let (other, _) = reg
            .manifest_resolve("r", &Ref::Tag("other".into()))
            .await
            .unwrap();
        assert_eq!(other, untouched);
    }

    #[tokio::test]
    async fn finished_removals_leave_no_entry_and_junk_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let reg = registry(dir.path());
        let d = image(&reg, "t", b"layer").await;
        reg.manifest_delete("r", &Ref::Digest(d)).await.unwrap();
        let mut left = Vec::new();
        crate::storage::transfer::walk(reg.storage.as_ref(), layout::GC_RETIRING, &mut left)
            .await
            .unwrap();
        assert!(left.is_empty(), "{left:?}");
        let junk = layout::gc_retiring("junk");
        reg.storage
            .put_bytes(&junk, Bytes::from_static(b"not json"))
            .await
            .unwrap();
        age(&dir.path().join(&junk), Duration::from_secs(120));
        assert_eq!(reg.finish_retirements().await.unwrap(), 0);
        assert!(!exists(&reg, &junk).await);
    }

    /// `dir`'s store, in a process killed right after its first removal of
    /// a revision.
    fn dying(dir: &Path) -> Registry {
        let store = DiesAfter::new(
            FsStorage::open(dir, false).unwrap(),
            "/_manifests/revisions/",
        );
        Registry::new(Arc::new(store), Duration::from_secs(3600))
    }

    /// After the kill, a tag that a push moved onto `d` meanwhile (its PUT
    /// saw the revision still there) names it, and the entries are a
    /// minute old: their process is taken for gone.
    async fn after_the_kill(reg: &Registry, dir: &Path, d: &Digest) {
        reg.storage
            .put_bytes(
                &layout::tag("r", "moved"),
                layout::tag_object(d, manifest::OCI_MANIFEST, 1),
            )
            .await
            .unwrap();
        let mut entries = Vec::new();
        crate::storage::transfer::walk(reg.storage.as_ref(), layout::GC_RETIRING, &mut entries)
            .await
            .unwrap();
        assert_eq!(entries.len(), 1, "the removal was journalled");
        age(&dir.join(&entries[0]), Duration::from_secs(120));
    }

    #[tokio::test]
    async fn a_delete_by_digest_killed_after_the_removal_is_finished() {
        let dir = tempfile::tempdir().unwrap();
        let reg = registry(dir.path());
        let d = image(&reg, "t", b"layer").await;
        let killed = dying(dir.path())
            .manifest_delete("r", &Ref::Digest(d.clone()))
            .await;
        assert!(killed.is_err());
        after_the_kill(&reg, dir.path(), &d).await;
        assert_eq!(reg.finish_retirements().await.unwrap(), 1);
        assert!(exists(&reg, &layout::revision("r", &d)).await);
    }

    #[tokio::test]
    async fn retention_killed_after_the_removal_is_finished() {
        let dir = tempfile::tempdir().unwrap();
        let reg = registry(dir.path());
        let d = image(&reg, "dev-1", b"layer").await;
        let rule = Rule {
            pattern: "r:dev-*".into(),
            keep_last: Some(0),
            older_than: None,
            protect: false,
        };
        let killed = dying(dir.path()).retention(&[rule], false).await;
        assert!(killed.is_err());
        after_the_kill(&reg, dir.path(), &d).await;
        assert_eq!(reg.finish_retirements().await.unwrap(), 1);
        assert!(exists(&reg, &layout::revision("r", &d)).await);
    }

    #[tokio::test]
    async fn a_manifest_under_removal_is_found_by_digest_only_while_a_tag_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let reg = registry(dir.path());
        let d = image(&reg, "t", b"layer").await;
        let by_digest = Ref::Digest(d.clone());
        // Removed, journalled, still tagged: found.
        killed_half_way(&reg, dir.path(), &d, false).await;
        assert!(reg.manifest_resolve("r", &by_digest).await.is_ok());
        // The same digest in another repository is not.
        let err = reg.manifest_resolve("other", &by_digest).await.unwrap_err();
        assert_eq!(err.code, Code::ManifestUnknown);
        // Untagged: gone.
        reg.storage.delete(&layout::tag("r", "t")).await.unwrap();
        let err = reg.manifest_resolve("r", &by_digest).await.unwrap_err();
        assert_eq!(err.code, Code::ManifestUnknown);
    }
}

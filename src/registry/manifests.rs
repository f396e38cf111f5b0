//! Manifests by tag or digest: push (with reference checks), pull, delete,
//! and the referrers index.

use std::collections::HashSet;

use bytes::Bytes;

use super::digest::{Algorithm, Digest};
use super::error::{Code, RegistryError, Result};
use super::manifest::{self, Descriptor, MAX_MANIFEST_SIZE, Parsed, Reference};
use super::{Registry, names, parse_digest};
use crate::storage::{Entry, StorageError, layout, once};

/// A manifest reference from a URL: a tag or a digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ref {
    Tag(String),
    Digest(Digest),
}

impl Ref {
    pub fn parse(s: &str) -> Result<Ref> {
        if Digest::looks_like(s) {
            return Ok(Ref::Digest(parse_digest(s)?));
        }
        if names::valid_tag(s) {
            Ok(Ref::Tag(s.to_string()))
        } else {
            Err(RegistryError::new(
                Code::ManifestInvalid,
                format!("invalid tag {s:?}"),
            ))
        }
    }
}

/// A manifest read back: its digest, the media type it was pushed with, and its bytes.
pub struct Manifest {
    pub digest: Digest,
    pub media_type: String,
    pub body: Bytes,
}

/// What a successful push reports.
pub struct Pushed {
    pub digest: Digest,
    pub subject: Option<Digest>,
    pub tags: Vec<String>,
}

fn manifest_unknown(what: impl std::fmt::Display) -> RegistryError {
    RegistryError::new(Code::ManifestUnknown, format!("manifest {what} is unknown"))
}

/// The blobs a manifest needs in place: its own bytes and every blob and
/// child manifest it references.
fn needed(digest: &Digest, parsed: &Parsed) -> Vec<Digest> {
    let mut needed: Vec<Digest> = parsed
        .references
        .iter()
        .map(|r| r.digest().clone())
        .collect();
    needed.push(digest.clone());
    needed
}

impl Registry {
    /// Stores a manifest pushed to `name` under `reference`, plus any extra
    /// `tags` (the `?tag=` form). Every blob and child manifest it references
    /// must already be in the repository.
    pub async fn manifest_put(
        &self,
        name: &str,
        reference: &Ref,
        content_type: Option<&str>,
        body: Bytes,
        extra_tags: &[String],
    ) -> Result<Pushed> {
        if body.len() as u64 > MAX_MANIFEST_SIZE {
            return Err(RegistryError::new(
                Code::TooLarge,
                "manifest is larger than 4 MiB",
            ));
        }
        let algorithm = match reference {
            Ref::Digest(d) => d.algorithm(),
            Ref::Tag(_) => Algorithm::Sha256,
        };
        let digest = Digest::of(algorithm, &body);
        if let Ref::Digest(d) = reference
            && d != &digest
        {
            return Err(RegistryError::new(
                Code::DigestInvalid,
                format!("manifest bytes hash to {digest}, not {d}"),
            ));
        }
        let mut tags: Vec<String> = Vec::new();
        if let Ref::Tag(t) = reference {
            tags.push(t.clone());
        }
        for t in extra_tags {
            if !names::valid_tag(t) {
                return Err(RegistryError::new(
                    Code::ManifestInvalid,
                    format!("invalid tag {t:?}"),
                ));
            }
            if !tags.contains(t) {
                tags.push(t.clone());
            }
        }
        let ct = manifest::normalize_content_type(content_type);
        let parsed = manifest::parse(&body, ct.as_deref())?;
        self.check_references(name, &parsed.references).await?;

        // Bytes first, then the revision link, then the referrer entry, then
        // tags: an interruption anywhere leaves nothing pointing at nothing.
        match self
            .storage
            .put_if_absent(&layout::blob(&digest), once(body.clone()))
            .await
        {
            Ok(_) | Err(StorageError::AlreadyExists(_)) => {}
            Err(e) => return Err(e.into()),
        }
        self.link(name, &digest, &parsed, body.len() as u64).await?;
        let tag_object =
            layout::tag_object(&digest, &parsed.media_type, crate::auth::tokens::now());
        for t in &tags {
            self.storage
                .put_bytes(&layout::tag(name, t), tag_object.clone())
                .await?;
        }
        // A DELETE by digest or retention at the same time may have removed
        // the revision (or, of an index, a child's) after it was written
        // above, and listed the tags before these were. Whichever looks last
        // sees the other (see `manifest_delete` and `Registry::retire`): here
        // the push, answered as done, puts back what it needs.
        if self.unlinked(name, &digest, &parsed).await?
            && let Err(e) = self
                .relink_parsed(name, &digest, &parsed, body.len() as u64)
                .await
        {
            self.unlink(name, &digest, parsed.subject.as_ref(), Some(&tags))
                .await?;
            return Err(e);
        }
        self.manifests.insert(&digest, body);
        Ok(Pushed {
            digest,
            subject: parsed.subject,
            tags,
        })
    }

    /// Writes the revision of a manifest whose bytes are stored, and its
    /// referrers entry; then makes sure of every blob it needs (a garbage
    /// collection that did not see the revision may have moved one aside
    /// meanwhile: it comes back), and takes both away again when one is gone
    /// for good.
    async fn link(&self, name: &str, digest: &Digest, parsed: &Parsed, size: u64) -> Result<()> {
        self.storage
            .put_bytes(
                &layout::revision(name, digest),
                parsed.media_type.clone().into(),
            )
            .await?;
        if let Some(subject) = &parsed.subject {
            let descriptor = Descriptor {
                media_type: parsed.media_type.clone(),
                digest: digest.to_string(),
                size,
                artifact_type: parsed.artifact_type.clone(),
                annotations: parsed.annotations.clone(),
                urls: None,
            };
            let json = serde_json::to_vec(&descriptor)
                .map_err(|e| StorageError::Io(std::io::Error::other(e)))?;
            self.storage
                .put_bytes(&layout::referrer(name, subject, digest), json.into())
                .await?;
        }
        if let Err(e) = self.ensure_blobs(&needed(digest, parsed)).await {
            self.storage.delete(&layout::revision(name, digest)).await?;
            if let Some(subject) = &parsed.subject {
                self.storage
                    .delete(&layout::referrer(name, subject, digest))
                    .await?;
            }
            return Err(e);
        }
        Ok(())
    }

    /// Whether the revision of `digest` in `name`, or of a child manifest
    /// it lists, is missing.
    async fn unlinked(&self, name: &str, digest: &Digest, parsed: &Parsed) -> Result<bool> {
        let children = parsed.references.iter().filter_map(|r| match r {
            Reference::Manifest(c, _) => Some(c),
            Reference::Blob(..) => None,
        });
        for d in std::iter::once(digest).chain(children) {
            if self
                .storage
                .stat(&layout::revision(name, d))
                .await?
                .is_none()
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Puts back the revision of `d` in `name` (and, of an index, first
    /// those of its children) that a DELETE by digest or retention removed
    /// while a push still wanted it: a tag moved onto it, an index listing
    /// it. Fails when its bytes or a blob it needs are gone for good.
    pub(super) async fn relink(&self, name: &str, d: &Digest) -> Result<()> {
        let body = self.manifest_bytes(d).await?;
        let parsed = manifest::parse(&body, None)?;
        self.relink_parsed(name, d, &parsed, body.len() as u64)
            .await
    }

    async fn relink_parsed(
        &self,
        name: &str,
        d: &Digest,
        parsed: &Parsed,
        size: u64,
    ) -> Result<()> {
        for r in &parsed.references {
            if let Reference::Manifest(c, _) = r
                && self
                    .storage
                    .stat(&layout::revision(name, c))
                    .await?
                    .is_none()
            {
                Box::pin(self.relink(name, c)).await?;
            }
        }
        // Gone for good already: refused before the revision is written (a
        // process killed between writing it and taking it back would leave
        // it behind, naming what is gone).
        self.ensure_blobs(&needed(d, parsed)).await?;
        self.link(name, d, parsed, size).await
    }

    /// Every blob and child manifest is in repository `name`, at the size
    /// its descriptor says: a wrong size would be stored, and then refused
    /// by every client that pulls it. Checked
    /// a few at once: on S3 each look is a request.
    async fn check_references(&self, name: &str, refs: &[Reference]) -> Result<()> {
        for some in refs.chunks(8) {
            let checked =
                futures_util::future::join_all(some.iter().map(|r| self.check_reference(name, r)))
                    .await;
            checked.into_iter().collect::<Result<Vec<()>>>()?;
        }
        Ok(())
    }

    async fn check_reference(&self, name: &str, r: &Reference) -> Result<()> {
        let (link, d, size) = match r {
            Reference::Blob(d, size) => (layout::layer_link(name, d), d, *size),
            Reference::Manifest(d, size) => (layout::revision(name, d), d, *size),
        };
        let detail = || serde_json::json!({ "digest": d.to_string(), "size": size });
        if self.storage.stat(&link).await?.is_none() {
            return Err(RegistryError::new(
                Code::ManifestBlobUnknown,
                format!("manifest references {d}, which is not in repository {name}"),
            )
            .with_detail(detail()));
        }
        match self.storage.stat(&layout::blob(d)).await? {
            Some(stored) if stored.size != size => Err(RegistryError::new(
                Code::ManifestInvalid,
                format!(
                    "manifest gives {d} a size of {size} bytes; it is {} bytes",
                    stored.size
                ),
            )
            .with_detail(detail())),
            Some(_) => Ok(()),
            // Collected meanwhile (its link outlived it) or in a running
            // gc's trash: refused now, or brought back, before the revision
            // is written. A revision written first and taken back after a
            // failed check would be left behind, naming what is gone, by a
            // process killed in between.
            None if self.restore_from_trash(d).await? => Ok(()),
            None => Err(RegistryError::new(
                Code::ManifestBlobUnknown,
                format!("blob {d} was removed by garbage collection; push it again"),
            )
            .with_detail(detail())),
        }
    }

    /// The object of tag `t` of `name` as stored (what it names, and
    /// since when); None when there is no such tag.
    pub(super) async fn tag_object(&self, name: &str, t: &str) -> Result<Option<Bytes>> {
        match self.storage.read_small(&layout::tag(name, t), 4096).await {
            Ok(raw) => Ok(Some(raw)),
            Err(StorageError::NotFound(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Resolves a reference to a digest and media type, without the bytes.
    pub async fn manifest_resolve(&self, name: &str, reference: &Ref) -> Result<(Digest, String)> {
        match reference {
            Ref::Tag(t) => self
                .tag_object(name, t)
                .await?
                .and_then(|raw| layout::tag_target(&raw))
                .ok_or_else(|| manifest_unknown(t)),
            Ref::Digest(d) => match self
                .storage
                .read_small(&layout::revision(name, d), 4096)
                .await
            {
                Ok(raw) => Ok((d.clone(), String::from_utf8_lossy(&raw).trim().to_string())),
                Err(StorageError::NotFound(_)) => {
                    match self.tagged_while_retiring(name, d).await? {
                        Some(media_type) => Ok((d.clone(), media_type)),
                        None => Err(manifest_unknown(d)),
                    }
                }
                Err(e) => Err(e.into()),
            },
        }
    }

    pub async fn manifest_get(&self, name: &str, reference: &Ref) -> Result<Manifest> {
        let (digest, media_type) = self.manifest_resolve(name, reference).await?;
        let body = self.manifest_bytes(&digest).await?;
        Ok(Manifest {
            digest,
            media_type,
            body,
        })
    }

    pub(super) async fn manifest_bytes(&self, d: &Digest) -> Result<Bytes> {
        if let Some(b) = self.manifests.get(d) {
            return Ok(b);
        }
        let key = layout::blob(d);
        let mut read = self.storage.read_small(&key, MAX_MANIFEST_SIZE).await;
        // A running GC may have just quarantined the bytes of a manifest
        // pushed after its first mark; a live revision needs them back (and
        // GC's second mark must see what this manifest references).
        if matches!(read, Err(StorageError::NotFound(_))) && self.restore_from_trash(d).await? {
            read = self.storage.read_small(&key, MAX_MANIFEST_SIZE).await;
        }
        match read {
            Ok(b) => {
                self.manifests.insert(d, b.clone());
                Ok(b)
            }
            Err(StorageError::NotFound(_)) => Err(manifest_unknown(d)),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes a tag, or a manifest by digest together with every tag that
    /// points at it and its referrers entry.
    pub async fn manifest_delete(&self, name: &str, reference: &Ref) -> Result<()> {
        match reference {
            Ref::Tag(t) => {
                let key = layout::tag(name, t);
                if self.storage.stat(&key).await?.is_none() {
                    return Err(manifest_unknown(t));
                }
                self.storage.delete(&key).await?;
            }
            Ref::Digest(d) => {
                let revision = layout::revision(name, d);
                // Gone, unless a tag names it: retention (or another DELETE)
                // removed it while a push moved a tag onto it, and puts it
                // back a moment later. It is there for the client that
                // pushed, and is deleted.
                if self.storage.stat(&revision).await?.is_none()
                    && self.tagged_while_retiring(name, d).await?.is_none()
                {
                    return Err(manifest_unknown(d));
                }
                let read = self.indexes_listing(name, d, &HashSet::new()).await?;
                let tagged = self.tags_naming(name, d).await?;
                let subject = match self.manifest_bytes(d).await {
                    Ok(body) => manifest::subject_of(&body),
                    Err(_) => None,
                };
                // (The tags just read, not read again.)
                self.unlink_these(name, d, subject.as_ref(), tagged.clone())
                    .await?;
                // Journalled: killed (or failing) before it has looked
                // whether a push wants the manifest back, it leaves the
                // entry, and the next start or gc looks (registry/retiring.rs).
                let journal = self.retiring(name, std::slice::from_ref(d)).await?;
                let refused = self
                    .remove_revision(name, d, subject.as_ref(), &read, tagged)
                    .await?;
                self.retired(journal).await;
                if let Some(e) = refused {
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// The end of a DELETE by digest, its tags removed: the revision goes,
    /// unless an index pushed meanwhile lists it (not among `read`, the
    /// revisions read before): then it is put back, and the refusal is
    /// returned.
    async fn remove_revision(
        &self,
        name: &str,
        d: &Digest,
        subject: Option<&Digest>,
        read: &HashSet<Digest>,
        tagged: Vec<(String, Bytes)>,
    ) -> Result<Option<RegistryError>> {
        self.storage.delete(&layout::revision(name, d)).await?;
        // Again, after: a PUT of the same manifest at the same time
        // may have tagged it between the first pass and the revision's
        // removal (and then seen the revision still there).
        self.unlink(name, d, subject, None).await?;
        // An index pushed meanwhile may list it (its PUT found the
        // revision still there): it comes back with the tags it
        // had (unless pushed again meanwhile), and the delete is
        // refused as if it had come after that push.
        if let Err(e) = self.indexes_listing(name, d, read).await {
            self.relink(name, d).await?;
            for (t, raw) in tagged {
                match self
                    .storage
                    .put_if_absent(&layout::tag(name, &t), once(raw))
                    .await
                {
                    Ok(_) | Err(StorageError::AlreadyExists(_)) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            return Ok(Some(e));
        }
        Ok(None)
    }

    /// Refuses while an index of `name` lists `d`: without it the index
    /// could not be pulled, and gc would free `d`'s layers (what keeps them
    /// is `d`'s revision). The index goes first, or with retention, which
    /// takes untagged children along.
    pub(super) async fn not_listed_by_an_index(&self, name: &str, d: &Digest) -> Result<()> {
        self.indexes_listing(name, d, &HashSet::new()).await?;
        Ok(())
    }

    /// `not_listed_by_an_index`, reading only the revisions not in
    /// `already_read`; says which it read.
    async fn indexes_listing(
        &self,
        name: &str,
        d: &Digest,
        already_read: &HashSet<Digest>,
    ) -> Result<HashSet<Digest>> {
        use futures_util::StreamExt;
        let revisions = self.revisions(name).await?;
        let unread = revisions
            .into_iter()
            .filter(|r| r != d && !already_read.contains(r));
        let mut reads = futures_util::stream::iter(unread)
            .map(|r| async move { (self.manifest_bytes(&r).await, r) })
            .buffer_unordered(super::PARALLEL_READS);
        let mut read = already_read.clone();
        while let Some((body, index)) = reads.next().await {
            read.insert(index.clone());
            let Ok(body) = body else { continue };
            let Ok(parsed) = manifest::parse(&body, None) else {
                continue;
            };
            if parsed
                .references
                .iter()
                .any(|r| matches!(r, Reference::Manifest(c, _) if c == d))
            {
                return Err(RegistryError::new(
                    Code::InUse,
                    format!(
                        "manifest {d} is listed by the index {index} in {name}: delete the index first"
                    ),
                ));
            }
        }
        Ok(read)
    }

    /// Removes the tags of `name` that point at `d` (only those of `only`,
    /// when given) and `d`'s referrers entry under `subject`.
    async fn unlink(
        &self,
        name: &str,
        d: &Digest,
        subject: Option<&Digest>,
        only: Option<&[String]>,
    ) -> Result<()> {
        let mut doomed = self.tags_naming(name, d).await?;
        doomed.retain(|(t, _)| only.is_none_or(|only| only.contains(t)));
        self.unlink_these(name, d, subject, doomed).await
    }

    /// `unlink` of the tags already read: `tags`, with their objects.
    async fn unlink_these(
        &self,
        name: &str,
        d: &Digest,
        subject: Option<&Digest>,
        tags: Vec<(String, Bytes)>,
    ) -> Result<()> {
        self.untag(name, tags).await?;
        if let Some(subject) = subject {
            self.storage
                .delete(&layout::referrer(name, subject, d))
                .await?;
        }
        Ok(())
    }

    /// Removes these tags of `name`, each only while it holds the object
    /// read (a push that moved one elsewhere since is kept, not lost), many
    /// at once (on S3 each is a round trip).
    pub(super) async fn untag(&self, name: &str, tags: Vec<(String, Bytes)>) -> Result<()> {
        use futures_util::{StreamExt, TryStreamExt};
        futures_util::stream::iter(tags)
            .map(|(t, raw)| async move {
                self.storage.delete_if(&layout::tag(name, &t), &raw).await
            })
            .buffer_unordered(super::PARALLEL_READS)
            .try_collect::<Vec<bool>>()
            .await?;
        Ok(())
    }

    /// The tags of `name` that name `d`, each with its object as stored.
    pub(super) async fn tags_naming(&self, name: &str, d: &Digest) -> Result<Vec<(String, Bytes)>> {
        let tags = self.tag_objects(name).await?;
        Ok(tags
            .into_iter()
            .filter(|(_, td, _)| td == d)
            .map(|(t, _, raw)| (t, raw))
            .collect())
    }

    pub(super) async fn tags_pointing_at(&self, name: &str, d: &Digest) -> Result<Vec<String>> {
        Ok(self
            .tag_targets(name)
            .await?
            .into_iter()
            .filter(|(_, td)| td == d)
            .map(|(t, _)| t)
            .collect())
    }

    /// Every tag of `name` with the manifest it names, as read now.
    /// (Read many at once, in the listing's order: on S3 each is a round
    /// trip, and a delete by digest reads them three times.)
    pub(super) async fn tag_targets(&self, name: &str) -> Result<Vec<(String, Digest)>> {
        let tags = self.tag_objects(name).await?;
        Ok(tags.into_iter().map(|(t, d, _)| (t, d)).collect())
    }

    /// `tag_targets`, with each tag's object as stored.
    async fn tag_objects(&self, name: &str) -> Result<Vec<(String, Digest, Bytes)>> {
        use futures_util::StreamExt;
        let tags = self.storage.list(&layout::tags(name)).await?;
        let mut reads = futures_util::stream::iter(tags.into_iter().filter_map(|e| match e {
            Entry::Object(t) => Some(t),
            _ => None,
        }))
        .map(|t| async move {
            let raw = self.tag_object(name, &t).await;
            (t, raw)
        })
        .buffered(super::PARALLEL_READS);
        let mut out = Vec::new();
        while let Some((t, raw)) = reads.next().await {
            if let Some(raw) = raw?
                && let Some((d, _)) = layout::tag_target(&raw)
            {
                out.push((t, d, raw));
            }
        }
        Ok(out)
    }

    /// The descriptors of manifests in `name` whose subject is `subject`,
    /// optionally only those of one artifact type.
    pub async fn referrers(
        &self,
        name: &str,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Vec<Descriptor>> {
        use futures_util::{StreamExt, TryStreamExt};
        let dir = layout::referrers(name, subject);
        let files = self
            .storage
            .list(&dir)
            .await?
            .into_iter()
            .filter_map(|e| match e {
                Entry::Object(file) => Some(format!("{dir}/{file}")),
                Entry::Prefix(_) => None,
            });
        // One small object per referrer: read them as a listing does.
        let read = |key: String| async move {
            match self
                .storage
                .read_small(&key, layout::MAX_SMALL_OBJECT)
                .await
            {
                Ok(raw) => Ok(serde_json::from_slice::<Descriptor>(&raw).ok()),
                Err(StorageError::NotFound(_)) => Ok(None),
                Err(e) => Err(RegistryError::from(e)),
            }
        };
        let descriptors: Vec<Option<Descriptor>> = futures_util::stream::iter(files)
            .map(read)
            .buffered(super::PARALLEL_READS)
            .try_collect()
            .await?;
        let out = descriptors
            .into_iter()
            .flatten()
            .filter(|d| artifact_type.is_none_or(|a| d.artifact_type.as_deref() == Some(a)))
            .collect();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::registry::testing::{push_blob, registry};

    /// An image manifest of the empty config `config` and no layers, told
    /// apart from others by `annotation`.
    fn bare_image(config: &impl std::fmt::Display, annotation: &str) -> Bytes {
        Bytes::from(format!(
            r#"{{"schemaVersion":2,"mediaType":"{ct}","config":{{"mediaType":"application/vnd.oci.empty.v1+json","digest":"{config}","size":2}},"layers":[],"annotations":{{"a":"{annotation}"}}}}"#,
            ct = manifest::OCI_MANIFEST
        ))
    }

    /// A PUT by tag and a DELETE by digest of the same manifest, at the same
    /// time, over and over: whatever the interleaving, a tag never outlives
    /// the revision it points at (before, one in a few rounds did, and gc
    /// then freed the blobs under the dangling tag; without the fix, about
    /// one run in three of this test catches it).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_tag_never_outlives_its_manifest_when_put_and_delete_race() {
        let dir = tempfile::tempdir().unwrap();
        let reg = Arc::new(registry(dir.path()));
        let config = push_blob(&reg, "r", b"{}").await;
        let body = bare_image(&config, "k");
        let d = Digest::of(Algorithm::Sha256, &body);
        let ct = Some(manifest::OCI_MANIFEST);
        for round in 0..1000 {
            reg.manifest_put("r", &Ref::Digest(d.clone()), ct, body.clone(), &[])
                .await
                .unwrap();
            let put = {
                let (reg, body) = (reg.clone(), body.clone());
                tokio::spawn(async move {
                    reg.manifest_put("r", &Ref::Tag("k".into()), ct, body, &[])
                        .await
                })
            };
            let del = {
                let (reg, d) = (reg.clone(), d.clone());
                tokio::spawn(async move { reg.manifest_delete("r", &Ref::Digest(d)).await })
            };
            let (put, del) = (put.await.unwrap(), del.await.unwrap());
            put.unwrap();
            if let Err(e) = del {
                assert_eq!(e.code, Code::ManifestUnknown);
            }
            let tagged = reg.manifest_resolve("r", &Ref::Tag("k".into())).await;
            let revision = reg.manifest_resolve("r", &Ref::Digest(d.clone())).await;
            assert!(
                tagged.is_err() || revision.is_ok(),
                "round {round}: tag k points at {d}, whose revision is gone"
            );
            let _ = reg.manifest_delete("r", &Ref::Tag("k".into())).await;
        }
    }

    /// A DELETE by digest of a manifest and the PUT of its tag onto
    /// another manifest, at the same time, over and over: the tag names the
    /// other manifest now, so it stays whatever the interleaving. Before,
    /// the DELETE read the tags, then removed those naming its manifest,
    /// and a PUT landing between the two was lost though answered 201.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_tag_moved_while_its_old_manifest_is_deleted_stays() {
        let dir = tempfile::tempdir().unwrap();
        let reg = Arc::new(registry(dir.path()));
        let config = push_blob(&reg, "r", b"{}").await;
        let (old, new) = (bare_image(&config, "old"), bare_image(&config, "new"));
        let (o, n) = (
            Digest::of(Algorithm::Sha256, &old),
            Digest::of(Algorithm::Sha256, &new),
        );
        for round in 0..500 {
            reg.manifest_put("r", &Ref::Tag("k".into()), None, old.clone(), &[])
                .await
                .unwrap();
            let put = {
                let (reg, new) = (reg.clone(), new.clone());
                tokio::spawn(async move {
                    reg.manifest_put("r", &Ref::Tag("k".into()), None, new, &[])
                        .await
                })
            };
            let del = {
                let (reg, o) = (reg.clone(), o.clone());
                tokio::spawn(async move { reg.manifest_delete("r", &Ref::Digest(o)).await })
            };
            put.await.unwrap().unwrap();
            del.await.unwrap().unwrap();
            let now = reg.manifest_resolve("r", &Ref::Tag("k".into())).await;
            assert_eq!(
                now.map(|(d, _)| d).ok(),
                Some(n.clone()),
                "round {round}: k was moved onto {n}, and is lost"
            );
        }
    }

    /// A GET by digest, or a DELETE by digest, that lands while retention
    /// has taken the revision of a manifest a push just moved a tag onto
    /// (before it puts it back) finds it; the DELETE deletes it, tag
    /// included: the manifest was there for the client. Before, both
    /// answered 404 for a manifest its client had pushed (the DELETE's
    /// found by the crash test).
    #[tokio::test]
    async fn a_get_and_a_delete_in_retentions_relink_window_find_the_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let reg = registry(dir.path());
        let config = push_blob(&reg, "r", b"{}").await;
        let body = bare_image(&config, "t2");
        let d = Digest::of(Algorithm::Sha256, &body);
        reg.manifest_put("r", &Ref::Tag("t2".into()), None, body, &[])
            .await
            .unwrap();
        // Retention's removal (journalled), before its relink.
        let _under_way = reg.retiring("r", std::slice::from_ref(&d)).await.unwrap();
        reg.storage
            .delete(&layout::revision("r", &d))
            .await
            .unwrap();
        // A GET by digest finds it meanwhile, as the tag says it.
        let (found, media_type) = reg
            .manifest_resolve("r", &Ref::Digest(d.clone()))
            .await
            .unwrap();
        assert_eq!(
            (found, media_type.as_str()),
            (d.clone(), manifest::OCI_MANIFEST)
        );
        reg.manifest_delete("r", &Ref::Digest(d.clone()))
            .await
            .unwrap();
        assert!(
            reg.manifest_resolve("r", &Ref::Tag("t2".into()))
                .await
                .is_err()
        );
        let again = reg.manifest_delete("r", &Ref::Digest(d)).await;
        assert!(matches!(again, Err(e) if e.code == Code::ManifestUnknown));
    }

    /// A DELETE by digest of a manifest and the PUT of an index listing
    /// it, at the same time, over and over: whatever the interleaving, an
    /// index in the repository never lists a manifest that is gone (the
    /// PUT or the DELETE, whichever looks last, brings it back; the DELETE
    /// then says it was refused, and the manifest keeps its tag). Before,
    /// the first round left the index listing a manifest that was gone.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_index_never_outlives_its_child_when_put_and_delete_race() {
        let dir = tempfile::tempdir().unwrap();
        let reg = Arc::new(registry(dir.path()));
        let config = push_blob(&reg, "r", b"{}").await;
        let child = bare_image(&config, "child");
        let c = Digest::of(Algorithm::Sha256, &child);
        let index = Bytes::from(format!(
            r#"{{"schemaVersion":2,"mediaType":"{ct}","manifests":[{{"mediaType":"{mt}","digest":"{c}","size":{n}}}]}}"#,
            ct = manifest::OCI_INDEX,
            mt = manifest::OCI_MANIFEST,
            n = child.len()
        ));
        let i = Digest::of(Algorithm::Sha256, &index);
        let (mut refused, mut deleted) = (0, 0);
        for round in 0..500 {
            reg.manifest_put("r", &Ref::Tag("c".into()), None, child.clone(), &[])
                .await
                .unwrap();
            let put = {
                let (reg, index) = (reg.clone(), index.clone());
                tokio::spawn(async move {
                    reg.manifest_put("r", &Ref::Tag("multi".into()), None, index, &[])
                        .await
                })
            };
            let del = {
                let (reg, c) = (reg.clone(), c.clone());
                tokio::spawn(async move { reg.manifest_delete("r", &Ref::Digest(c)).await })
            };
            let _ = put.await.unwrap();
            let del = del.await.unwrap();
            match del {
                Ok(()) => deleted += 1,
                Err(e) => {
                    assert_eq!(e.code, Code::InUse, "round {round}: {e:?}");
                    // Refused: nothing changed, its tag included.
                    let tag = reg.manifest_resolve("r", &Ref::Tag("c".into())).await;
                    assert!(tag.is_ok(), "round {round}: refused, and its tag is gone");
                    refused += 1;
                }
            }
            let has = |d: &Digest| {
                let (reg, d) = (reg.clone(), d.clone());
                async move { reg.manifest_resolve("r", &Ref::Digest(d)).await.is_ok() }
            };
            if has(&i).await {
                assert!(
                    has(&c).await,
                    "round {round}: the index lists {c}, which is gone"
                );
                reg.manifest_delete("r", &Ref::Digest(i.clone()))
                    .await
                    .unwrap();
            }
        }
        eprintln!("{deleted} deletes done, {refused} refused");
    }
}

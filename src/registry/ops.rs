//! Operator actions on images: server-side retag (across repositories by
//! mount, never copying blob bytes) and delete by tag or digest.

use serde::{Deserialize, Serialize};

use super::Registry;
use super::digest::Digest;
use super::error::{Code, RegistryError, Result};
use super::images::ImageRef;
use super::manifest::{self, Reference};
use super::manifests::Ref;

/// What a delete removed (or, in a dry run, would remove).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Deleted {
    pub reference: String,
    pub digest: String,
    /// Tags that go with it.
    pub tags: Vec<String>,
    /// Whether the manifest itself goes (a delete by digest), not only a tag.
    pub manifest: bool,
}

impl Registry {
    /// Points `dst` (a tag) at the manifest `src` names. Across repositories,
    /// the blobs and child manifests are linked into `dst`'s repository first.
    /// Returns the digest, and the other one `dst` named before, if any.
    pub async fn retag(&self, src: &ImageRef, dst: &ImageRef) -> Result<(Digest, Option<Digest>)> {
        let Ref::Tag(tag) = &dst.reference else {
            return Err(RegistryError::new(
                Code::ManifestInvalid,
                "the target must be REPOSITORY:TAG",
            ));
        };
        let m = self.manifest_get(&src.repository, &src.reference).await?;
        let before = match self.manifest_resolve(&dst.repository, &dst.reference).await {
            Ok((d, _)) => Some(d),
            Err(e) if matches!(e.code, Code::ManifestUnknown | Code::NameUnknown) => None,
            Err(e) => return Err(e),
        };
        if src.repository != dst.repository {
            self.copy_manifest_refs(&src.repository, &dst.repository, &m.body, &m.media_type)
                .await?;
        }
        // Put by its digest with the tag, as `PUT ...?tag=` does: a put by
        // tag would hash with sha256 and make a second manifest of a
        // sha512 one, which its signatures and referrers do not name.
        let pushed = self
            .manifest_put(
                &dst.repository,
                &Ref::Digest(m.digest),
                Some(&m.media_type),
                m.body,
                std::slice::from_ref(tag),
            )
            .await?;
        let replaced = before.filter(|d| *d != pushed.digest);
        Ok((pushed.digest, replaced))
    }

    /// Makes everything manifest `body` references available in `to`.
    async fn copy_manifest_refs(
        &self,
        from: &str,
        to: &str,
        body: &[u8],
        media_type: &str,
    ) -> Result<()> {
        let parsed = manifest::parse(body, Some(media_type))?;
        for r in parsed.references {
            match r {
                Reference::Blob(d, _) => {
                    if !self.blob_mount(to, Some(from), &d).await? {
                        return Err(RegistryError::new(
                            Code::BlobUnknown,
                            format!("blob {d} is missing from {from}"),
                        ));
                    }
                }
                Reference::Manifest(d, _) => {
                    let child = self.manifest_get(from, &Ref::Digest(d.clone())).await?;
                    Box::pin(self.copy_manifest_refs(from, to, &child.body, &child.media_type))
                        .await?;
                    self.manifest_put(
                        to,
                        &Ref::Digest(d),
                        Some(&child.media_type),
                        child.body,
                        &[],
                    )
                    .await?;
                }
            }
        }
        Ok(())
    }

    /// Deletes a tag, or a manifest by digest with every tag pointing at it.
    /// With `expect`, a tag is deleted only while it still names that
    /// manifest: the one the operator was shown and confirmed.
    pub async fn delete_image(
        &self,
        r: &ImageRef,
        dry_run: bool,
        expect: Option<&Digest>,
    ) -> Result<Deleted> {
        let (digest, _) = self.manifest_resolve(&r.repository, &r.reference).await?;
        if let (Ref::Tag(_), Some(expect)) = (&r.reference, expect)
            && *expect != digest
        {
            return Err(RegistryError::new(
                Code::Busy,
                format!(
                    "{r} was pushed again meanwhile: it names {digest} now, not {expect}; left alone"
                ),
            ));
        }
        let tags = match &r.reference {
            Ref::Tag(t) => vec![t.clone()],
            Ref::Digest(d) => self.tags_pointing_at(&r.repository, d).await?,
        };
        if !dry_run {
            self.manifest_delete(&r.repository, &r.reference).await?;
        } else if let Ref::Digest(d) = &r.reference {
            self.not_listed_by_an_index(&r.repository, d).await?;
        }
        Ok(Deleted {
            reference: r.to_string(),
            digest: digest.to_string(),
            tags,
            manifest: matches!(r.reference, Ref::Digest(_)),
        })
    }
}

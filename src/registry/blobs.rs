//! Blobs as seen through a repository: existence, reads, links and mounts.

use super::Registry;
use super::digest::Digest;
use super::error::{Code, RegistryError, Result};
use crate::storage::{ByteRange, GetObject, StorageError, layout};

fn blob_unknown(d: &Digest) -> RegistryError {
    RegistryError::new(
        Code::BlobUnknown,
        format!("blob {d} is unknown to this repository"),
    )
}

impl Registry {
    /// Is `d` readable from repository `name`? Manifests count too: some
    /// clients fetch them through the blob endpoint.
    async fn linked(&self, name: &str, d: &Digest) -> Result<bool> {
        let s = &self.storage;
        Ok(s.stat(&layout::layer_link(name, d)).await?.is_some()
            || s.stat(&layout::revision(name, d)).await?.is_some())
    }

    /// The size of blob `d` in repository `name`.
    pub async fn blob_size(&self, name: &str, d: &Digest) -> Result<u64> {
        if !self.linked(name, d).await? {
            return Err(blob_unknown(d));
        }
        if let Some(meta) = self.storage.stat(&layout::blob(d)).await? {
            self.note_found(d, meta.modified).await;
            return Ok(meta.size);
        }
        // Linked but absent: a garbage collection may have it in its trash.
        if self.restore_from_trash(d).await?
            && let Some(meta) = self.storage.stat(&layout::blob(d)).await?
        {
            return Ok(meta.size);
        }
        Err(blob_unknown(d))
    }

    /// Opens blob `d` of repository `name`, whole or one range of it.
    pub async fn blob_get(
        &self,
        name: &str,
        d: &Digest,
        range: Option<ByteRange>,
    ) -> Result<GetObject> {
        if !self.linked(name, d).await? {
            return Err(blob_unknown(d));
        }
        let mut result = self.storage.get(&layout::blob(d), range).await;
        if matches!(result, Err(StorageError::NotFound(_))) && self.restore_from_trash(d).await? {
            result = self.storage.get(&layout::blob(d), range).await;
        }
        match result {
            Ok(obj) => Ok(obj),
            Err(StorageError::NotFound(_)) => Err(blob_unknown(d)),
            Err(StorageError::InvalidRange) => Err(RegistryError::new(
                Code::RangeInvalid,
                "requested range is not satisfiable",
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// Unlinks blob `d` from repository `name`. The bytes stay until garbage
    /// collection finds nothing else referencing them.
    pub async fn blob_delete(&self, name: &str, d: &Digest) -> Result<()> {
        let link = layout::layer_link(name, d);
        if self.storage.stat(&link).await?.is_none() {
            return Err(blob_unknown(d));
        }
        self.storage.delete(&link).await?;
        Ok(())
    }

    /// Makes stored blob `d` part of repository `name`.
    pub(super) async fn link_blob(&self, name: &str, d: &Digest) -> Result<()> {
        let link = layout::layer_link(name, d);
        if self.storage.stat(&link).await?.is_none() {
            self.storage.put_bytes(&link, d.to_string().into()).await?;
        }
        Ok(())
    }

    /// Cross-repository mount: links `d` into `name` when `from` has it, or,
    /// with no `from`, when the registry holds it at all (the caller allows
    /// that only where anyone may read everything). Returns false when it
    /// cannot (the caller then opens an upload session).
    pub async fn blob_mount(&self, name: &str, from: Option<&str>, d: &Digest) -> Result<bool> {
        if let Some(from) = from {
            if super::check_name(from).is_err() {
                return Ok(false);
            }
            let link = layout::layer_link(from, d);
            if self.storage.stat(&link).await?.is_none() {
                return Ok(false);
            }
        }
        let Some(meta) = self.storage.stat(&layout::blob(d)).await? else {
            return Ok(false);
        };
        self.note_found(d, meta.modified).await;
        self.link_blob(name, d).await?;
        Ok(true)
    }
}

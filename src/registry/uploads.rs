//! Blob upload sessions (POST, PATCH..., PUT) kept in storage.
//!
//! Every chunk is stored as its own object (`uploads/<id>/parts/<offset>`),
//! hashed while it streams in. Closing a session verifies the digest before
//! the blob becomes visible: a single chunk whose sha256 is already known is
//! renamed into place; several chunks are streamed, in order, through the
//! hasher into a staging object which is then renamed. Nothing is appended or
//! rewritten in place, so an object store backend fits the same scheme.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};

use super::Registry;
use super::digest::{Algorithm, Digest};
use super::error::{Code, RegistryError, Result};
use super::hashing::hashing;
use crate::storage::{ByteStream, Entry, StorageError, layout};

#[derive(Debug, Serialize, Deserialize)]
struct Session {
    repository: String,
    /// Seconds since the Unix epoch.
    started: u64,
}

/// One stored chunk of a session.
struct Part {
    offset: u64,
    size: u64,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn unknown(id: &str) -> RegistryError {
    RegistryError::new(Code::BlobUploadUnknown, format!("upload {id:?} is unknown"))
}

/// Session ids are ours (32 hex digits); anything else is refused before it
/// can reach a storage key.
fn valid_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

impl Registry {
    /// Opens an upload session for repository `name`; returns its id.
    pub async fn upload_start(&self, name: &str) -> Result<String> {
        let id = format!("{:032x}", rand::random::<u128>());
        let session = Session {
            repository: name.to_string(),
            started: now_secs(),
        };
        let json = serde_json::to_vec(&session)
            .map_err(std::io::Error::other)
            .map_err(StorageError::from)?;
        self.storage
            .put_bytes(&layout::upload_session(&id), json.into())
            .await?;
        Ok(id)
    }

    async fn session(&self, name: &str, id: &str) -> Result<Session> {
        if !valid_id(id) {
            return Err(unknown(id));
        }
        let raw = match self
            .storage
            .read_small(&layout::upload_session(id), 64 * 1024)
            .await
        {
            Ok(raw) => raw,
            Err(StorageError::NotFound(_)) => return Err(unknown(id)),
            Err(e) => return Err(e.into()),
        };
        let session: Session = serde_json::from_slice(&raw).map_err(|_| unknown(id))?;
        if session.repository != name {
            return Err(unknown(id));
        }
        Ok(session)
    }

    async fn parts(&self, id: &str) -> Result<Vec<Part>> {
        let mut parts = Vec::new();
        for entry in self.storage.list(&layout::upload_parts(id)).await? {
            let Entry::Object(file) = entry else { continue };
            let Some(offset) = layout::parse_upload_part(&file) else {
                continue;
            };
            if let Some(meta) = self.storage.stat(&layout::upload_part(id, offset)).await? {
                parts.push(Part {
                    offset,
                    size: meta.size,
                });
            }
        }
        parts.sort_by_key(|p| p.offset);
        Ok(parts)
    }

    /// Bytes received so far (the next expected offset).
    pub async fn upload_status(&self, name: &str, id: &str) -> Result<u64> {
        self.session(name, id).await?;
        Ok(self.parts(id).await?.iter().map(|p| p.size).sum())
    }

    /// Stores one chunk. `range` is the request's `Content-Range` (inclusive),
    /// which must start at the current offset. Returns the new offset.
    pub async fn upload_append(
        &self,
        name: &str,
        id: &str,
        range: Option<(u64, u64)>,
        body: ByteStream,
    ) -> Result<u64> {
        let offset = self.upload_status(name, id).await?;
        if let Some((start, end)) = range
            && (start != offset || end < start)
        {
            return Err(RegistryError::new(
                Code::RangeInvalid,
                format!("chunk starts at {start}, but the upload is at offset {offset}"),
            )
            .with_detail(serde_json::json!({ "offset": offset })));
        }
        let part = layout::upload_part(id, offset);
        let (body, tally) = hashing(body, Algorithm::Sha256.hasher());
        let written = self.storage.put(&part, body).await?;
        if written == 0 {
            self.storage.delete(&part).await?;
            return Ok(offset);
        }
        if let Some((start, end)) = range
            && end - start + 1 != written
        {
            self.storage.delete(&part).await?;
            return Err(RegistryError::new(
                Code::SizeInvalid,
                format!(
                    "Content-Range says {} bytes, the body had {written}",
                    end - start + 1
                ),
            ));
        }
        if let Some((digest, _)) = tally.finish() {
            self.storage
                .put_bytes(
                    &layout::upload_part_hash(id, offset),
                    digest.hex().to_string().into(),
                )
                .await?;
        }
        // A PUT or DELETE on the same session may have closed it while this
        // chunk streamed in: its bytes then belong to nothing, and a 202
        // would tell the client they were kept.
        if let Err(e) = self.session(name, id).await {
            if e.code == Code::BlobUploadUnknown {
                self.storage.delete_prefix(&layout::upload(id)).await?;
            }
            return Err(e);
        }
        Ok(offset + written)
    }

    /// Closes the session: verifies that the bytes hash to `expected`, makes
    /// the blob visible and links it into `name`. On a mismatch the session
    /// and its bytes are discarded.
    pub async fn upload_finish(&self, name: &str, id: &str, expected: &Digest) -> Result<u64> {
        self.session(name, id).await?;
        let parts = self.parts(id).await?;
        let size: u64 = parts.iter().map(|p| p.size).sum();
        let target = layout::blob(expected);
        let staged = match self.verified_object(id, &parts, expected).await {
            Ok(staged) => staged,
            Err(e) => {
                self.storage.delete_prefix(&layout::upload(id)).await?;
                return Err(e);
            }
        };
        match staged {
            // Already stored by an earlier push: the bytes are identical.
            Some(key) if self.storage.stat(&target).await?.is_some() => {
                self.storage.delete(&key).await?
            }
            Some(key) => self.storage.rename(&key, &target).await?,
            None => {
                let empty = crate::storage::once(bytes::Bytes::new());
                match self.storage.put_if_absent(&target, empty).await {
                    Ok(_) | Err(StorageError::AlreadyExists(_)) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        self.link_blob(name, expected).await?;
        self.storage.delete_prefix(&layout::upload(id)).await?;
        Ok(size)
    }

    /// Finds (or builds) one object holding the upload's bytes, verified to
    /// hash to `expected`. `None` means the upload is empty (and `expected`
    /// is the digest of nothing).
    async fn verified_object(
        &self,
        id: &str,
        parts: &[Part],
        expected: &Digest,
    ) -> Result<Option<String>> {
        let mismatch = |got: &str| {
            RegistryError::new(
                Code::DigestInvalid,
                format!("the uploaded bytes hash to {got}, not {expected}"),
            )
        };
        if parts.is_empty() {
            let got = Digest::of(expected.algorithm(), b"");
            return if &got == expected {
                Ok(None)
            } else {
                Err(mismatch(&got.to_string()))
            };
        }
        if parts.len() == 1 && expected.algorithm() == Algorithm::Sha256 {
            let p = &parts[0];
            let hash_key = layout::upload_part_hash(id, p.offset);
            if let Ok(hex) = self.storage.read_small(&hash_key, 1024).await {
                let hex = String::from_utf8_lossy(&hex).to_string();
                return if hex == expected.hex() {
                    Ok(Some(layout::upload_part(id, p.offset)))
                } else {
                    Err(mismatch(&format!("sha256:{hex}")))
                };
            }
        }
        // Several chunks (or another algorithm): stream them, in order,
        // through the hasher into one staging object.
        let storage = self.storage.clone();
        let keys: Vec<String> = parts
            .iter()
            .map(|p| layout::upload_part(id, p.offset))
            .collect();
        let chained = futures_util::stream::iter(keys)
            .then(move |key| {
                let storage = storage.clone();
                async move {
                    storage
                        .get(&key, None)
                        .await
                        .map(|o| o.body)
                        .map_err(std::io::Error::other)
                }
            })
            .try_flatten();
        let (body, tally) = hashing(Box::pin(chained), expected.algorithm().hasher());
        let staging = format!("{}/assembled", layout::upload(id));
        self.storage.put(&staging, body).await?;
        match tally.finish() {
            Some((got, _)) if &got == expected => Ok(Some(staging)),
            Some((got, _)) => Err(mismatch(&got.to_string())),
            None => Err(mismatch("nothing")),
        }
    }

    /// Cancels a session and drops its bytes.
    pub async fn upload_cancel(&self, name: &str, id: &str) -> Result<()> {
        self.session(name, id).await?;
        self.storage.delete_prefix(&layout::upload(id)).await?;
        Ok(())
    }

    /// Removes sessions older than the configured time to live. Returns how
    /// many were removed.
    pub async fn expire_uploads(&self) -> Result<usize> {
        self.expire_uploads_older_than(self.upload_ttl).await
    }

    pub async fn expire_uploads_older_than(&self, ttl: Duration) -> Result<usize> {
        let cutoff = now_secs().saturating_sub(ttl.as_secs());
        let mut removed = 0;
        for entry in self.storage.list(layout::UPLOADS).await? {
            let Entry::Prefix(id) = entry else { continue };
            if !valid_id(&id) {
                continue;
            }
            let started = match self
                .storage
                .read_small(&layout::upload_session(&id), 64 * 1024)
                .await
            {
                Ok(raw) => serde_json::from_slice::<Session>(&raw)
                    .map(|s| s.started)
                    .unwrap_or(0),
                // No session object: a leftover of an interrupted cleanup.
                Err(StorageError::NotFound(_)) => 0,
                Err(e) => return Err(e.into()),
            };
            if started <= cutoff {
                self.storage.delete_prefix(&layout::upload(&id)).await?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::storage::fs::FsStorage;

    fn registry(dir: &std::path::Path) -> Registry {
        Registry::new(
            Arc::new(FsStorage::open(dir, false).unwrap()),
            Duration::from_secs(3600),
        )
    }

    #[tokio::test]
    async fn expiry_removes_only_old_sessions() {
        let dir = tempfile::tempdir().unwrap();
        let reg = registry(dir.path());
        let id = reg.upload_start("a/b").await.unwrap();
        let body = crate::storage::once(bytes::Bytes::from_static(b"chunk"));
        reg.upload_append("a/b", &id, None, body).await.unwrap();
        assert_eq!(
            reg.expire_uploads().await.unwrap(),
            0,
            "younger than the ttl"
        );
        assert_eq!(reg.upload_status("a/b", &id).await.unwrap(), 5);
        assert_eq!(
            reg.expire_uploads_older_than(Duration::ZERO).await.unwrap(),
            1
        );
        assert!(reg.upload_status("a/b", &id).await.is_err());
        assert!(
            reg.storage()
                .list(layout::UPLOADS)
                .await
                .unwrap()
                .is_empty()
        );
    }

    #[tokio::test]
    async fn a_chunk_still_streaming_when_its_session_closes_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let reg = Arc::new(registry(dir.path()));
        let id = reg.upload_start("a/b").await.unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::channel::<std::io::Result<bytes::Bytes>>(1);
        let body: ByteStream = Box::pin(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)));
        let append = {
            let (reg, id) = (reg.clone(), id.clone());
            tokio::spawn(async move { reg.upload_append("a/b", &id, None, body).await })
        };
        tx.send(Ok(bytes::Bytes::from_static(b"first")))
            .await
            .unwrap();
        reg.upload_cancel("a/b", &id).await.unwrap();
        tx.send(Ok(bytes::Bytes::from_static(b"late")))
            .await
            .unwrap();
        drop(tx);
        let e = append.await.unwrap().unwrap_err();
        assert_eq!(e.code, Code::BlobUploadUnknown);
        assert!(
            reg.storage()
                .list(layout::UPLOADS)
                .await
                .unwrap()
                .is_empty(),
            "the late chunk left nothing behind"
        );
    }

    #[tokio::test]
    async fn sessions_belong_to_their_repository() {
        let dir = tempfile::tempdir().unwrap();
        let reg = registry(dir.path());
        let id = reg.upload_start("a/b").await.unwrap();
        let e = reg.upload_status("other", &id).await.unwrap_err();
        assert_eq!(e.code, Code::BlobUploadUnknown);
        let e = reg.upload_status("a/b", "../../etc").await.unwrap_err();
        assert_eq!(e.code, Code::BlobUploadUnknown);
    }
}

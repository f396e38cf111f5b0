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
    /// The key holding its bytes.
    data: String,
    /// Its sha256 (hex), known without reading it.
    sha256: Option<String>,
}

/// A claim object is this short; anything longer is a chunk's bytes (the
/// form sessions begun before claims have).
const CLAIM_MAX: u64 = 128;

/// A chunk's claim: "<sha256 hex> <size> <writer> <check>", the check being
/// the start of the sha256 of the rest. A store that wrote objects in place
/// could leave two racing claims mixed into one; the check tells such a
/// torn claim from a whole one.
fn claim(sha256: &str, size: u64, writer: &str) -> String {
    let body = format!("{sha256} {size} {writer}");
    let check = Digest::of(Algorithm::Sha256, body.as_bytes());
    format!("{body} {}", &check.hex()[..16])
}

enum Claim {
    Whole {
        sha256: String,
        size: u64,
        writer: String,
    },
    Torn,
    /// Not a claim at all: a chunk's own bytes (sessions begun before claims).
    Bytes,
}

fn parse_claim(raw: &[u8]) -> Claim {
    let hex_of = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    let Ok(text) = std::str::from_utf8(raw) else {
        return Claim::Bytes;
    };
    let fields: Vec<&str> = text.split(' ').collect();
    let [sha256, size, writer, _check] = fields[..] else {
        return Claim::Bytes;
    };
    let Ok(size) = size.parse::<u64>() else {
        return Claim::Bytes;
    };
    if !hex_of(sha256, 64) || !hex_of(writer, 16) {
        return Claim::Bytes;
    }
    if text != claim(sha256, size, writer) {
        return Claim::Torn;
    }
    Claim::Whole {
        sha256: sha256.to_string(),
        size,
        writer: writer.to_string(),
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn size_mismatch(claimed: u64, got: u64) -> RegistryError {
    RegistryError::new(
        Code::SizeInvalid,
        format!("Content-Range says {claimed} bytes, the body had {got}"),
    )
}

/// `body`, or `None` when it ends without a byte (empty chunks skipped).
async fn non_empty(mut body: ByteStream) -> Result<Option<ByteStream>> {
    loop {
        match body.next().await {
            None => return Ok(None),
            Some(Ok(first)) if first.is_empty() => continue,
            Some(Ok(first)) => {
                let rest = futures_util::stream::once(async move { Ok(first) }).chain(body);
                return Ok(Some(Box::pin(rest)));
            }
            Some(Err(e)) => return Err(StorageError::Io(e).into()),
        }
    }
}

/// A closing PUT's claim older than this was left by a killed process (the
/// longest commit is assembling a many-chunk upload: minutes, not this).
const CLOSING_STALE: Duration = Duration::from_secs(15 * 60);

fn being_closed(id: &str) -> RegistryError {
    RegistryError::new(
        Code::BlobUploadUnknown,
        format!("upload {id:?} is being closed by another request"),
    )
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
            if let Some(part) = self.part(id, offset).await? {
                parts.push(part);
            }
        }
        parts.sort_by_key(|p| p.offset);
        Ok(parts)
    }

    /// The chunk claimed at `offset` (see storage/layout.rs).
    async fn part(&self, id: &str, offset: u64) -> Result<Option<Part>> {
        let key = layout::upload_part(id, offset);
        match self.storage.read_small(&key, CLAIM_MAX).await {
            Ok(raw) => match parse_claim(&raw) {
                Claim::Whole {
                    sha256,
                    size,
                    writer,
                } => {
                    return Ok(Some(Part {
                        offset,
                        size,
                        data: layout::upload_part_data(id, offset, &writer),
                        sha256: Some(sha256),
                    }));
                }
                Claim::Torn => {
                    return Err(RegistryError::new(
                        Code::BlobUploadInvalid,
                        format!(
                            "two requests wrote the chunk at offset {offset} of upload {id} at once; \
                             start the upload again"
                        ),
                    ));
                }
                Claim::Bytes => {}
            },
            Err(StorageError::NotFound(_)) => return Ok(None),
            // Larger than a claim: a chunk's own bytes (older sessions).
            Err(e) if e.is_too_large() => {}
            Err(e) => return Err(e.into()),
        }
        let Some(meta) = self.storage.stat(&key).await? else {
            return Ok(None);
        };
        let sha256 = self
            .storage
            .read_small(&layout::upload_part_hash(id, offset), 1024)
            .await
            .ok()
            .map(|h| String::from_utf8_lossy(&h).into_owned());
        Ok(Some(Part {
            offset,
            size: meta.size,
            data: key,
            sha256,
        }))
    }

    /// Bytes received so far (the next expected offset).
    pub async fn upload_status(&self, name: &str, id: &str) -> Result<u64> {
        self.session(name, id).await?;
        // Answered as PATCH, PUT and DELETE are while a PUT closes it (or a
        // killed one's claim is not yet stale): not an offset to resume at.
        if self.closing(id).await? {
            return Err(being_closed(id));
        }
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
        let claimed = range.map(|(start, end)| (end - start).saturating_add(1));
        // An empty body adds nothing and writes nothing (it must not claim
        // the offset a real chunk needs).
        let Some(body) = non_empty(body).await? else {
            return match claimed {
                Some(n) => Err(size_mismatch(n, 0)),
                None => Ok(offset),
            };
        };
        // The bytes go under a key of this request's own; then one claim,
        // written only if absent, makes them the chunk at this offset and
        // carries their hash. Bytes and hash are never two writes that
        // racing requests could pair up wrongly, even on a store whose
        // conditional write is not exclusive (there the last claim wins,
        // whole).
        let writer = format!("{:016x}", rand::random::<u64>());
        let data = layout::upload_part_data(id, offset, &writer);
        let (body, tally) = hashing(body, Algorithm::Sha256.hasher());
        let written = self.storage.put(&data, body).await?;
        if let Some(n) = claimed
            && n != written
        {
            self.storage.delete(&data).await?;
            return Err(size_mismatch(n, written));
        }
        // The stream was read to its end once: the tally has its hash.
        let Some((digest, _)) = tally.finish() else {
            self.storage.delete(&data).await?;
            return Err(RegistryError::new(Code::Internal, "chunk hash unavailable"));
        };
        let claim = claim(digest.hex(), written, &writer);
        match self
            .storage
            .put_if_absent(
                &layout::upload_part(id, offset),
                crate::storage::once(claim.into()),
            )
            .await
        {
            Ok(_) => {}
            Err(e) => {
                self.storage.delete(&data).await?;
                if !matches!(e, StorageError::AlreadyExists(_)) {
                    return Err(e.into());
                }
                let now = self.upload_status(name, id).await?;
                return Err(RegistryError::new(
                    Code::RangeInvalid,
                    format!("another chunk for offset {offset} arrived first; the upload is at offset {now}"),
                )
                .with_detail(serde_json::json!({ "offset": now })));
            }
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
        // Or a PUT is closing it right now, and may have listed the chunks
        // before this one: the client must not count on these bytes (the
        // PUT cleans them up with the session).
        if self.closing(id).await? {
            return Err(being_closed(id));
        }
        Ok(offset + written)
    }

    /// Closes the session: verifies that the bytes hash to `expected`, makes
    /// the blob visible and links it into `name`. On a mismatch the session
    /// and its bytes are discarded.
    pub async fn upload_finish(&self, name: &str, id: &str, expected: &Digest) -> Result<u64> {
        self.session(name, id).await?;
        self.claim_closing(id).await?;
        match self.commit_upload(name, id, expected).await {
            Ok(size) => {
                self.storage.delete_prefix(&layout::upload(id)).await?;
                Ok(size)
            }
            Err(e) => {
                // A DELETE of this session may have removed the parts this
                // PUT was reading: the upload is unknown now, not corrupt.
                if let Err(gone) = self.session(name, id).await
                    && gone.code == Code::BlobUploadUnknown
                {
                    return Err(gone);
                }
                if matches!(e.code, Code::DigestInvalid | Code::BlobUploadInvalid) {
                    self.storage.delete_prefix(&layout::upload(id)).await?;
                } else {
                    // Anything else (a store's fault): the client may retry.
                    self.storage.delete(&layout::upload_closing(id)).await?;
                }
                Err(e)
            }
        }
    }

    /// Claims the session for the closing PUT (`uploads/<id>/closing`); a
    /// claim left by a PUT killed mid-way is taken over once it is stale.
    async fn claim_closing(&self, id: &str) -> Result<()> {
        let key = layout::upload_closing(id);
        let claim = || {
            self.storage
                .put_if_absent(&key, crate::storage::unique_claim())
        };
        let taken = match claim().await {
            Err(StorageError::AlreadyExists(_)) if !self.closing(id).await? => {
                self.storage.delete(&key).await?;
                claim().await
            }
            first => first,
        };
        match taken {
            Ok(_) => Ok(()),
            Err(StorageError::AlreadyExists(_)) => Err(being_closed(id)),
            Err(e) => Err(e.into()),
        }
    }

    /// A closing PUT holds the session now (its claim is not stale).
    async fn closing(&self, id: &str) -> Result<bool> {
        Ok(self
            .storage
            .stat(&layout::upload_closing(id))
            .await?
            .is_some_and(|m| m.modified.elapsed().unwrap_or_default() < CLOSING_STALE))
    }

    async fn commit_upload(&self, name: &str, id: &str, expected: &Digest) -> Result<u64> {
        let parts = self.parts(id).await?;
        let size: u64 = parts.iter().map(|p| p.size).sum();
        let target = layout::blob(expected);
        match self.verified_object(id, &parts, expected).await? {
            // Renamed into place even when an earlier push stored the same
            // bytes: the blob is then as young as this push, so gc's grace
            // period keeps it until this client's manifest arrives (an old,
            // unreferenced copy would not be).
            Some(key) => match self.storage.rename(&key, &target).await {
                Ok(()) => {}
                // Its chunks went with the session (the claim of a closing
                // PUT keeps other requests off it, but not expiry).
                Err(StorageError::NotFound(_)) => return Err(unknown(id)),
                Err(e) => return Err(e.into()),
            },
            None => {
                let empty = crate::storage::once(bytes::Bytes::new());
                match self.storage.put_if_absent(&target, empty).await {
                    Ok(_) | Err(StorageError::AlreadyExists(_)) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        self.link_blob(name, expected).await?;
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
        if let [p] = parts
            && expected.algorithm() == Algorithm::Sha256
            && let Some(hex) = &p.sha256
        {
            return if hex == expected.hex() {
                Ok(Some(p.data.clone()))
            } else {
                Err(mismatch(&format!("sha256:{hex}")))
            };
        }
        // Several chunks (or another algorithm): stream them, in order,
        // through the hasher into one staging object.
        let storage = self.storage.clone();
        let keys: Vec<String> = parts.iter().map(|p| p.data.clone()).collect();
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
        let staging = layout::upload_assembled(id, rand::random());
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
        if self.closing(id).await? {
            return Err(being_closed(id));
        }
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
                // No session object: a leftover of an interrupted cleanup or
                // a PUT finishing right now, or a session being opened right
                // now (its directory made, its session object not yet in).
                // Its age is that of its newest object; with none, there is
                // nothing to free and nothing is touched.
                Err(StorageError::NotFound(_)) => {
                    match self.newest_object(&layout::upload(&id)).await? {
                        Some(t) => t
                            .duration_since(UNIX_EPOCH)
                            .map(|d| d.as_secs())
                            .unwrap_or(0),
                        None => continue,
                    }
                }
                Err(e) => return Err(e.into()),
            };
            if started > cutoff {
                continue;
            }
            // Started long ago but still sending chunks: abandoned is what
            // has not been touched for the ttl, not what began before it.
            let touched = self
                .newest_object(&layout::upload(&id))
                .await?
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_secs());
            if touched <= cutoff {
                self.storage.delete_prefix(&layout::upload(&id)).await?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// When the newest object under `prefix` (and its sub-prefixes) was written.
    async fn newest_object(&self, prefix: &str) -> Result<Option<SystemTime>> {
        let listed = self.storage.list_deep(prefix).await?;
        Ok(listed.iter().map(|l| l.meta.modified).max())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::registry::testing::{age, registry};

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
        let (tx, body) = fed();
        let append = {
            let (reg, id) = (reg.clone(), id.clone());
            tokio::spawn(async move { reg.upload_append("a/b", &id, None, body).await })
        };
        tx.send(Ok(bytes::Bytes::from_static(b"first")))
            .await
            .unwrap();
        // Room for this one means the append took the first: it is past its
        // checks and streaming.
        tx.send(Ok(bytes::Bytes::from_static(b"more")))
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

    /// On a store whose conditional write is not exclusive, two chunks for
    /// one offset may both be accepted; whichever claim lands last, the
    /// session's bytes and hash belong together, so a closing PUT never
    /// publishes one chunk's bytes under the other's digest.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_lax_conditional_write_cannot_pair_one_chunk_with_anothers_hash() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::registry::testing::LaxStore(
            crate::storage::fs::FsStorage::open(dir.path(), false).unwrap(),
        );
        let reg = Arc::new(Registry::new(Arc::new(store), Duration::from_secs(3600)));
        let (mut both, mut published) = (0, 0);
        for round in 0..150 {
            let id = reg.upload_start("a/b").await.unwrap();
            let append = |data: &'static [u8]| {
                let (reg, id) = (reg.clone(), id.clone());
                tokio::spawn(async move {
                    let body = crate::storage::once(bytes::Bytes::from_static(data));
                    reg.upload_append("a/b", &id, Some((0, 3)), body).await
                })
            };
            let (y, z) = (append(b"YYYY"), append(b"ZZZZ"));
            let (y, z) = (y.await.unwrap(), z.await.unwrap());
            both += usize::from(y.is_ok() && z.is_ok());
            let wanted = Digest::of(Algorithm::Sha256, b"YYYY");
            if reg.upload_finish("a/b", &id, &wanted).await.is_ok() {
                published += 1;
                let blob = std::fs::read(dir.path().join(layout::blob(&wanted))).unwrap();
                assert_eq!(
                    blob, b"YYYY",
                    "round {round}: another chunk's bytes published"
                );
            }
        }
        // The lax store did let both chunks in, and the kept one was
        // sometimes the one named: the rounds tested what they mean to.
        assert!(
            both > 0 && published > 0,
            "both {both}, published {published}"
        );
    }

    /// Two claims a store wrote in place at once can mix; a mixed one is
    /// refused, never read as one chunk's bytes with another's hash.
    #[tokio::test]
    async fn a_torn_claim_fails_the_upload_instead_of_pairing_wrongly() {
        let a = claim(&"a".repeat(64), 4, "0123456789abcdef");
        let b = claim(&"b".repeat(64), 4, "fedcba9876543210");
        assert!(matches!(
            parse_claim(a.as_bytes()),
            Claim::Whole { size: 4, .. }
        ));
        let torn = format!("{}{}", &a[..40], &b[40..]);
        assert!(matches!(parse_claim(torn.as_bytes()), Claim::Torn));
        assert!(matches!(parse_claim(b"some chunk bytes"), Claim::Bytes));

        let dir = tempfile::tempdir().unwrap();
        let reg = registry(dir.path());
        let id = reg.upload_start("a/b").await.unwrap();
        reg.storage()
            .put_bytes(&layout::upload_part(&id, 0), torn.into())
            .await
            .unwrap();
        let e = reg.upload_status("a/b", &id).await.unwrap_err();
        assert_eq!(e.code, Code::BlobUploadInvalid);
        let d = Digest::of(Algorithm::Sha256, b"AAAA");
        let e = reg.upload_finish("a/b", &id, &d).await.unwrap_err();
        assert_eq!(e.code, Code::BlobUploadInvalid);
        // It could never complete: it is gone, not left to expire.
        let e = reg.upload_status("a/b", &id).await.unwrap_err();
        assert_eq!(e.code, Code::BlobUploadUnknown);
    }

    /// Sessions begun before claims (a chunk's bytes at its offset, its hash
    /// beside it) still complete after an upgrade.
    #[tokio::test]
    async fn a_session_in_the_older_chunk_form_completes() {
        let dir = tempfile::tempdir().unwrap();
        let reg = registry(dir.path());
        let id = reg.upload_start("a/b").await.unwrap();
        let data = vec![7u8; 1000];
        let s = reg.storage();
        // A chunk at offset 0 as sessions before claims wrote it.
        let old_chunk = |id: String, data: Vec<u8>| {
            let s = s.clone();
            async move {
                let hex = Digest::of(Algorithm::Sha256, &data).hex().to_string();
                s.put_bytes(&layout::upload_part(&id, 0), data.into())
                    .await
                    .unwrap();
                s.put_bytes(&layout::upload_part_hash(&id, 0), hex.into())
                    .await
                    .unwrap();
            }
        };
        old_chunk(id.clone(), data.clone()).await;
        assert_eq!(reg.upload_status("a/b", &id).await.unwrap(), 1000);
        let tail = crate::storage::once(bytes::Bytes::from_static(b"tail"));
        assert_eq!(
            reg.upload_append("a/b", &id, None, tail).await.unwrap(),
            1004
        );
        let mut whole = data.clone();
        whole.extend_from_slice(b"tail");
        let digest = Digest::of(Algorithm::Sha256, &whole);
        assert_eq!(reg.upload_finish("a/b", &id, &digest).await.unwrap(), 1004);
        assert_eq!(
            std::fs::read(dir.path().join(layout::blob(&digest))).unwrap(),
            whole
        );
        // And a one-chunk session of that form uses its stored hash.
        let id = reg.upload_start("a/b").await.unwrap();
        let small = b"small".to_vec();
        let d = Digest::of(Algorithm::Sha256, &small);
        old_chunk(id.clone(), small).await;
        assert_eq!(reg.upload_finish("a/b", &id, &d).await.unwrap(), 5);
    }

    /// A body fed by hand: the test decides when each request's bytes end.
    fn fed() -> (
        tokio::sync::mpsc::Sender<std::io::Result<bytes::Bytes>>,
        ByteStream,
    ) {
        let (tx, mut rx) = tokio::sync::mpsc::channel(1);
        (
            tx,
            Box::pin(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))),
        )
    }

    /// Two chunks racing for one offset (a PATCH and a PUT with a body, the
    /// way a confused client sends them): one is kept, the other is refused
    /// with 416, and the kept chunk's hash is its own, so a PUT naming the
    /// refused one's digest cannot publish the kept one's bytes under it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn chunks_racing_for_one_offset_cannot_swap_bytes_and_hash() {
        let dir = tempfile::tempdir().unwrap();
        let reg = Arc::new(registry(dir.path()));
        let id = reg.upload_start("a/b").await.unwrap();
        let (tx_y, body_y) = fed();
        let (tx_z, body_z) = fed();
        let append = |body| {
            let (reg, id) = (reg.clone(), id.clone());
            tokio::spawn(async move { reg.upload_append("a/b", &id, None, body).await })
        };
        let (y, z) = (append(body_y), append(body_z));
        // Two sends each: room for the second means the first was taken, so
        // both requests are past their offset check and streaming.
        for _ in 0..2 {
            tx_y.send(Ok(bytes::Bytes::from_static(b"YY")))
                .await
                .unwrap();
            tx_z.send(Ok(bytes::Bytes::from_static(b"Z")))
                .await
                .unwrap();
        }
        drop(tx_z);
        let z = z.await.unwrap();
        drop(tx_y);
        let y = y.await.unwrap();
        assert_eq!(z.as_ref().ok(), Some(&2), "{z:?}");
        assert_eq!(y.unwrap_err().code, Code::RangeInvalid);

        let wrong = Digest::of(Algorithm::Sha256, b"YYYY");
        assert_eq!(reg.upload_status("a/b", &id).await.unwrap(), 2);
        let e = reg.upload_finish("a/b", &id, &wrong).await.unwrap_err();
        assert_eq!(e.code, Code::DigestInvalid);
        assert!(
            reg.storage()
                .stat(&layout::blob(&wrong))
                .await
                .unwrap()
                .is_none()
        );
    }

    /// The same closing PUT twice at once (a client's retry): both answer
    /// as a client expects (201, or 404 for the session already closed),
    /// never a storage error, and the blob is whole.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_closing_put_sent_twice_at_once_is_not_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let reg = Arc::new(registry(dir.path()));
        for round in 0..30u8 {
            let data = vec![round; 1000 + round as usize];
            let d = Digest::of(Algorithm::Sha256, &data);
            let id = reg.upload_start("a/b").await.unwrap();
            let body = crate::storage::once(bytes::Bytes::from(data.clone()));
            reg.upload_append("a/b", &id, None, body).await.unwrap();
            let put = || {
                let (reg, id, d) = (reg.clone(), id.clone(), d.clone());
                tokio::spawn(async move { reg.upload_finish("a/b", &id, &d).await })
            };
            let (one, two) = (put(), put());
            for r in [one.await.unwrap(), two.await.unwrap()] {
                match r {
                    Ok(n) => assert_eq!(n, data.len() as u64),
                    Err(e) => assert_eq!(e.code, Code::BlobUploadUnknown, "{e}"),
                }
            }
            let got = reg
                .storage()
                .read_small(&layout::blob(&d), 1 << 20)
                .await
                .unwrap();
            assert_eq!(got.as_ref(), &data[..]);
        }
    }

    #[tokio::test]
    async fn content_ranges_that_do_not_match_the_body() {
        let dir = tempfile::tempdir().unwrap();
        let reg = registry(dir.path());
        let id = reg.upload_start("a/b").await.unwrap();
        let empty = crate::storage::once(bytes::Bytes::new());
        let e = reg
            .upload_append("a/b", &id, Some((0, 99)), empty)
            .await
            .unwrap_err();
        assert_eq!(e.code, Code::SizeInvalid);
        let one = crate::storage::once(bytes::Bytes::from_static(b"x"));
        let e = reg
            .upload_append("a/b", &id, Some((0, u64::MAX)), one)
            .await
            .unwrap_err();
        assert_eq!(e.code, Code::SizeInvalid);
        assert!(e.message.contains(&u64::MAX.to_string()), "{}", e.message);
        let empty = crate::storage::once(bytes::Bytes::new());
        assert_eq!(reg.upload_append("a/b", &id, None, empty).await.unwrap(), 0);
        assert!(
            reg.storage()
                .list(&layout::upload_parts(&id))
                .await
                .unwrap()
                .is_empty()
        );
    }

    /// A session that began before the ttl but still receives chunks is not
    /// abandoned: it expires once nothing in it was touched for the ttl.
    #[tokio::test]
    async fn expiry_spares_a_long_upload_still_sending() {
        let dir = tempfile::tempdir().unwrap();
        let reg = registry(dir.path());
        let id = reg.upload_start("a/b").await.unwrap();
        let session = dir.path().join(layout::upload_session(&id));
        let mut s: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&session).unwrap()).unwrap();
        s["started"] = (now_secs() - 7200).into();
        std::fs::write(&session, serde_json::to_vec(&s).unwrap()).unwrap();
        age(&session, Duration::from_secs(7200));
        let body = crate::storage::once(bytes::Bytes::from_static(b"chunk"));
        reg.upload_append("a/b", &id, None, body).await.unwrap();
        let ttl = Duration::from_secs(60);
        assert_eq!(reg.expire_uploads_older_than(ttl).await.unwrap(), 0);
        for f in std::fs::read_dir(dir.path().join(layout::upload_parts(&id))).unwrap() {
            age(&f.unwrap().path(), Duration::from_secs(3600));
        }
        assert_eq!(reg.expire_uploads_older_than(ttl).await.unwrap(), 1);
    }

    /// A session directory without its session object is judged by the age
    /// of what is in it: expiry never removes one being opened or closed
    /// right now, and still removes an old leftover.
    #[tokio::test]
    async fn expiry_judges_a_session_without_its_object_by_its_contents() {
        let dir = tempfile::tempdir().unwrap();
        let reg = registry(dir.path());
        let id = reg.upload_start("a/b").await.unwrap();
        let body = crate::storage::once(bytes::Bytes::from_static(b"chunk"));
        reg.upload_append("a/b", &id, None, body).await.unwrap();
        reg.storage()
            .delete(&layout::upload_session(&id))
            .await
            .unwrap();
        let ttl = Duration::from_secs(60);
        assert_eq!(reg.expire_uploads_older_than(ttl).await.unwrap(), 0);
        for f in std::fs::read_dir(dir.path().join(layout::upload_parts(&id))).unwrap() {
            age(&f.unwrap().path(), Duration::from_secs(3600));
        }
        assert_eq!(reg.expire_uploads_older_than(ttl).await.unwrap(), 1);
        std::fs::create_dir_all(dir.path().join(layout::upload(&id))).unwrap();
        assert_eq!(
            reg.expire_uploads_older_than(Duration::ZERO).await.unwrap(),
            0,
            "an empty one is left to the session about to be written in it"
        );
    }

    /// While a closing PUT holds a session, a PATCH, a DELETE and a second
    /// PUT are told it is gone; the claim of a PUT killed mid-way goes stale
    /// and the session can be closed after all.
    #[tokio::test]
    async fn a_closing_claim_holds_off_others_until_it_is_stale() {
        let dir = tempfile::tempdir().unwrap();
        let reg = registry(dir.path());
        let id = reg.upload_start("a/b").await.unwrap();
        let chunk = || crate::storage::once(bytes::Bytes::from_static(b"chunk"));
        reg.upload_append("a/b", &id, None, chunk()).await.unwrap();
        let claim = dir.path().join(layout::upload_closing(&id));
        std::fs::write(&claim, b"").unwrap();
        let d = Digest::of(Algorithm::Sha256, b"chunk");
        let gone = |r: Result<()>| assert_eq!(r.unwrap_err().code, Code::BlobUploadUnknown);
        gone(reg.upload_finish("a/b", &id, &d).await.map(drop));
        gone(reg.upload_cancel("a/b", &id).await);
        gone(reg.upload_append("a/b", &id, None, chunk()).await.map(drop));
        gone(reg.upload_status("a/b", &id).await.map(drop));
        age(&claim, CLOSING_STALE + Duration::from_secs(1));
        // The refused PATCH wrote nothing; the session goes on where it was.
        assert_eq!(reg.upload_status("a/b", &id).await.unwrap(), 5);
        assert_eq!(reg.upload_finish("a/b", &id, &d).await.unwrap(), 5);
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

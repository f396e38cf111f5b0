//! Backups: a whole store as one `.tar.gz`, written while nora keeps serving,
//! and read back into any store.
//!
//! The archive holds `nora-backup.json` (format, time, counts) first, then
//! every blob under its storage key, then every other object (links, tags,
//! tokens). A snapshot is consistent because the backup holds gc off
//! (`Registry::with_gc_paused`: no blob disappears meanwhile, on any instance) and reads
//! against the write order: tags first, then the other links, then the blob
//! listing, so what a recorded tag or link names was written before the
//! read that finds it. What a delete removed between two reads (a tag read
//! before its manifest went) is left out, so a tag in the archive never
//! names a manifest missing from it. Restore writes in archive order (blobs, then links, then tags),
//! verifies each blob's digest before it becomes visible, and skips blobs
//! already there, so an interrupted restore resumes.
//!
//! tar and gzip are synchronous; they run on a blocking thread that pulls
//! blob bytes from storage (and pushes them into it) through the runtime.
//! Small blobs (SMALL_BLOB) go many at once, each whole in memory; bigger
//! ones stream, one at a time.

use std::collections::HashSet;
use std::io::{self, Read, Write};
use std::sync::Arc;

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt, stream};
use serde::{Deserialize, Serialize};
use tokio::runtime::Handle;

use crate::registry::digest::Digest;

use super::transfer::{self, Progress, SMALL_BLOB, Verified};
use super::{ByteStream, PARALLEL_READS, Storage, StorageError, layout};

pub const HEADER: &str = "nora-backup.json";
const FORMAT: u32 = 1;
/// Largest non-blob object restored (links, tags, tokens, referrers).
const SMALL_MAX: u64 = layout::MAX_SMALL_OBJECT;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Header {
    pub format: u32,
    /// Unix seconds.
    pub created: u64,
    pub blobs: u64,
    pub others: u64,
    pub bytes: u64,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct RestoreReport {
    pub blobs_written: u64,
    pub blobs_skipped: u64,
    pub others_written: u64,
    pub bytes_written: u64,
    /// Links and tags naming what neither the archive nor the store holds.
    pub links_left_out: u64,
}

/// What a backup will hold: the small objects' values (read first) and the
/// blobs' keys and sizes (listed after).
pub struct Snapshot {
    others: Vec<(String, Bytes)>,
    blobs: Vec<(String, u64)>,
}

impl Snapshot {
    pub fn header(&self) -> Header {
        Header {
            format: FORMAT,
            created: crate::auth::tokens::now(),
            blobs: self.blobs.len() as u64,
            others: self.others.len() as u64,
            bytes: self.bytes(),
        }
    }

    pub fn bytes(&self) -> u64 {
        self.blobs.iter().map(|(_, s)| s).sum::<u64>()
            + self.others.iter().map(|(_, v)| v.len() as u64).sum::<u64>()
    }
}

/// Reads the snapshot; call it with gc held off (`with_gc_paused`).
pub async fn snapshot(s: &dyn Storage) -> Result<Snapshot, StorageError> {
    // Tags come with their value; the other links are read now.
    let read = |item: transfer::Item| async move {
        match item.value {
            Some(v) => Ok(Some((item.key, v))),
            None => match s.read_small(&item.key, SMALL_MAX).await {
                Ok(v) => Ok(Some((item.key, v))),
                // Deleted since the listing (a tag or an upload link): not in.
                Err(StorageError::NotFound(_)) => Ok(None),
                Err(e) => Err(e),
            },
        }
    };
    let others: Vec<Option<(String, Bytes)>> = stream::iter(transfer::plan_small(s).await?)
        .map(read)
        .buffered(PARALLEL_READS)
        .try_collect()
        .await?;
    let mut others: Vec<(String, Bytes)> = others.into_iter().flatten().collect();
    let mut blobs: Vec<(String, u64)> = s
        .list_deep(layout::BLOBS)
        .await?
        .into_iter()
        .filter(|l| layout::parse_blob(&l.key).is_some())
        .map(|l| (l.key, l.meta.size))
        .collect();
    // A gc killed mid-way may have left referenced blobs in its trash; the
    // registry would restore them on use, the archive holds them in place.
    let mut present: HashSet<String> = blobs.iter().map(|(k, _)| k.clone()).collect();
    for l in s.list_deep(layout::GC_TRASH).await? {
        let Some(d) = layout::parse_trash(&l.key) else {
            continue;
        };
        if present.insert(layout::blob(&d)) {
            blobs.push((l.key, l.meta.size));
        }
    }
    // Links whose blob, then tags whose revision, did not make it in.
    for tags in [false, true] {
        others.retain(|(k, v)| {
            let is_tag = k.contains("/_manifests/tags/");
            is_tag != tags || layout::depends_on(k, v).is_none_or(|d| present.contains(&d))
        });
        present.extend(others.iter().map(|(k, _)| k.clone()));
    }
    Ok(Snapshot { others, blobs })
}

/// Writes `snap` as a tar.gz to `out` (on a blocking thread), verifying every
/// blob's digest as it is read.
pub fn write(
    s: Arc<dyn Storage>,
    snap: Snapshot,
    out: impl Write,
    rt: Handle,
    progress: Progress,
) -> io::Result<()> {
    let gz = flate2::write::GzEncoder::new(out, flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    let header = serde_json::to_vec_pretty(&snap.header()).map_err(io::Error::other)?;
    append(&mut tar, HEADER, header.len() as u64, &header[..])?;
    // Small blobs (most of a registry's count: manifests, configs, small
    // layers) are read many at once ahead of the writer, each whole (at most
    // PARALLEL_READS x SMALL_BLOB in memory), on tasks of their own so that
    // they finish while a big one streams. On S3 each blob is a round trip:
    // one at a time, those were most of a backup's time.
    let mut blobs = stream::iter(&snap.blobs)
        .map(|(key, size)| {
            let read = (*size <= SMALL_BLOB).then(|| {
                let (s, key, progress) = (s.clone(), key.clone(), progress.clone());
                rt.spawn(async move { read_small_blob(s.as_ref(), &key, progress).await })
            });
            async move {
                let bytes = match read {
                    Some(task) => Some(task.await.map_err(io::Error::other).flatten()),
                    None => None,
                };
                (key, *size, bytes)
            }
        })
        .buffered(PARALLEL_READS);
    while let Some((key, size, bytes)) = rt.block_on(blobs.next()) {
        // Trash entries go back under their blob key.
        let (archived, digest) = archived_as(key)?;
        if let Some(bytes) = bytes {
            let bytes = bytes.map_err(|e| io::Error::new(e.kind(), format!("{key}: {e}")))?;
            if bytes.len() as u64 != size {
                return Err(io::Error::other(format!(
                    "{key}: {} bytes now, {size} when listed",
                    bytes.len()
                )));
            }
            append(&mut tar, &archived, size, &bytes[..])?;
            continue;
        }
        let body = rt
            .block_on(s.get(key, None))
            .map_err(|e| io::Error::other(format!("{key}: {e}")))?
            .body;
        let verified: ByteStream = Box::pin(Verified::new(body, digest, progress.clone()));
        let reader = StreamReader {
            rt: rt.clone(),
            body: verified,
            chunk: Bytes::new(),
        };
        append(&mut tar, &archived, size, reader)
            .map_err(|e| io::Error::new(e.kind(), format!("{key}: {e}")))?;
    }
    for (key, value) in &snap.others {
        append(&mut tar, key, value.len() as u64, &value[..])?;
        progress(value.len() as u64);
    }
    tar.into_inner()?.finish()?.flush()
}

/// The key a blob of the snapshot is archived under, and its digest: a
/// trash entry goes back under its blob key.
fn archived_as(key: &str) -> io::Result<(String, Digest)> {
    match layout::parse_blob(key) {
        Some(d) => Ok((key.to_string(), d)),
        None => {
            let d = layout::parse_trash(key)
                .ok_or_else(|| io::Error::other(format!("bad trash key {key}")))?;
            Ok((layout::blob(&d), d))
        }
    }
}

/// A blob of at most SMALL_BLOB bytes, whole, once it hashed to its name.
async fn read_small_blob(s: &dyn Storage, key: &str, progress: Progress) -> io::Result<Bytes> {
    let (_, digest) = archived_as(key)?;
    let body = s.get(key, None).await.map_err(io::Error::other)?.body;
    let mut verified = Verified::new(body, digest, progress);
    let mut out = bytes::BytesMut::new();
    while let Some(chunk) = verified.next().await {
        let chunk = chunk?;
        if (out.len() + chunk.len()) as u64 > SMALL_BLOB {
            return Err(io::Error::other("larger than when it was listed"));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out.freeze())
}

fn append<W: Write>(
    tar: &mut tar::Builder<W>,
    path: &str,
    size: u64,
    data: impl Read,
) -> io::Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_size(size);
    h.set_mode(0o600);
    h.set_mtime(crate::auth::tokens::now());
    h.set_entry_type(tar::EntryType::Regular);
    tar.append_data(&mut h, path, data)
}

/// A storage stream read synchronously (from a blocking thread).
struct StreamReader {
    rt: Handle,
    body: ByteStream,
    chunk: Bytes,
}

impl Read for StreamReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.chunk.is_empty() {
            match self.rt.block_on(self.body.next()) {
                Some(Ok(c)) => self.chunk = c,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk[..n]);
        self.chunk = self.chunk.slice(n..);
        Ok(n)
    }
}

/// Writes one small blob of a restore, unless the store has it already;
/// says whether it did, and its size.
async fn write_small_blob(
    dst: &dyn Storage,
    key: &str,
    bytes: Bytes,
    progress: &Progress,
) -> io::Result<(bool, u64)> {
    let size = bytes.len() as u64;
    let there = dst.stat(key).await.map_err(io::Error::other)?;
    let written = there.is_none_or(|m| m.size != size);
    if written {
        dst.put_bytes(key, bytes)
            .await
            .map_err(|e| io::Error::other(format!("{key}: {e}")))?;
    }
    progress(size);
    Ok((written, size))
}

/// Waits for one `write_small_blob` and counts it.
fn count_small(
    rt: &Handle,
    task: tokio::task::JoinHandle<io::Result<(bool, u64)>>,
    report: &mut RestoreReport,
) -> io::Result<()> {
    match rt.block_on(task).map_err(io::Error::other)?? {
        (true, size) => {
            report.blobs_written += 1;
            report.bytes_written += size;
        }
        (false, _) => report.blobs_skipped += 1,
    }
    Ok(())
}

/// Writes one link, tag or auth object of a restore; None when it is left
/// out: never a link to what the store lacks (an archive edited by hand, or
/// restored over a store that lost it since).
async fn write_other(
    dst: &dyn Storage,
    key: &str,
    value: &Bytes,
    dry_run: bool,
    progress: &Progress,
) -> io::Result<Option<u64>> {
    let n = value.len() as u64;
    if !dry_run {
        if let Some(needed) = layout::depends_on(key, value)
            && dst.stat(&needed).await.map_err(io::Error::other)?.is_none()
        {
            return Ok(None);
        }
        dst.put_bytes(key, value.clone())
            .await
            .map_err(|e| io::Error::other(format!("{key}: {e}")))?;
    }
    progress(n);
    Ok(Some(n))
}

/// Reads a tar.gz written by `write` into `dst` (on a blocking thread).
/// With `dry_run`, every blob is read and verified, nothing is written.
pub fn restore(
    dst: Arc<dyn Storage>,
    input: impl Read,
    rt: Handle,
    progress: Progress,
    dry_run: bool,
) -> io::Result<RestoreReport> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(input));
    let mut report = RestoreReport::default();
    let mut header: Option<Header> = None;
    // Links, tags and auth objects wait until the whole archive has been
    // read and its checksum and counts hold: a corrupt archive must not
    // leave garbled tags (blobs are safe: each is checked against its digest).
    let mut others: Vec<(String, Bytes)> = Vec::new();
    // Small blobs being written: (whether it was there already, its size).
    let mut small = std::collections::VecDeque::new();
    for entry in archive.entries()? {
        let mut entry = entry?;
        let key = match entry.path()?.to_str() {
            Some(k) => k.to_string(),
            None => return Err(io::Error::other("an entry's name is not UTF-8")),
        };
        let size = entry.header().size()?;
        let header_seen = header.is_some();
        if !header_seen {
            if key != HEADER {
                return Err(io::Error::other(
                    "not a nora backup (no nora-backup.json first)",
                ));
            }
            let mut raw = Vec::new();
            (&mut entry).take(SMALL_MAX).read_to_end(&mut raw)?;
            let h: Header = serde_json::from_slice(&raw)
                .map_err(|e| io::Error::other(format!("bad {HEADER}: {e}")))?;
            if h.format != FORMAT {
                return Err(io::Error::other(format!(
                    "backup format {} is not supported (this nora reads {FORMAT})",
                    h.format
                )));
            }
            header = Some(h);
            continue;
        }
        super::check_key(&key).map_err(|e| io::Error::other(e.to_string()))?;
        if !entry.header().entry_type().is_file() {
            return Err(io::Error::other(format!(
                "{key}: not a plain file in the archive (a backup holds only files)"
            )));
        }
        if !layout::is_copied(&key) {
            return Err(io::Error::other(format!(
                "{key}: a backup never holds this key (only blobs, repositories/ and auth/)"
            )));
        }
        if let Some(digest) = layout::parse_blob(&key) {
            if dry_run {
                let mut h = digest.algorithm().hasher();
                let mut buf = vec![0u8; 256 * 1024];
                loop {
                    let n = entry.read(&mut buf)?;
                    if n == 0 {
                        break;
                    }
                    h.update(&buf[..n]);
                    progress(n as u64);
                }
                let got = h.finish();
                if got != digest {
                    return Err(io::Error::other(format!(
                        "{key}: the archived bytes hash to {got}"
                    )));
                }
                report.blobs_written += 1;
                report.bytes_written += size;
                continue;
            }
            if size <= SMALL_BLOB {
                // Many at once (see SMALL_BLOB), checked before it is sent.
                let mut raw = Vec::with_capacity(size as usize);
                (&mut entry).take(SMALL_BLOB).read_to_end(&mut raw)?;
                let got = Digest::of(digest.algorithm(), &raw);
                if got != digest || raw.len() as u64 != size {
                    return Err(io::Error::other(format!(
                        "{key}: the archived bytes hash to {got}"
                    )));
                }
                let (dst, progress) = (dst.clone(), progress.clone());
                small.push_back(rt.spawn(async move {
                    write_small_blob(dst.as_ref(), &key, raw.into(), &progress).await
                }));
                if small.len() >= PARALLEL_READS
                    && let Some(oldest) = small.pop_front()
                {
                    count_small(&rt, oldest, &mut report)?;
                }
                continue;
            }
            let present = rt
                .block_on(dst.stat(&key))
                .map_err(io::Error::other)?
                .is_some_and(|m| m.size == size);
            if present {
                report.blobs_skipped += 1;
                progress(size);
                continue;
            }
            let (tx, rx) = tokio::sync::mpsc::channel::<io::Result<Bytes>>(4);
            let body: ByteStream = Box::pin(Verified::new(
                Box::pin(futures_util::stream::unfold(rx, |mut rx| async move {
                    rx.recv().await.map(|item| (item, rx))
                })),
                digest,
                progress.clone(),
            ));
            let put = {
                let (dst, key) = (dst.clone(), key.clone());
                rt.spawn(async move { dst.put(&key, body).await })
            };
            let mut buf = vec![0u8; 256 * 1024];
            loop {
                match entry.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        if tx
                            .blocking_send(Ok(Bytes::copy_from_slice(&buf[..n])))
                            .is_err()
                        {
                            break; // the put failed; its error is below
                        }
                    }
                    Err(e) => {
                        let _ = tx.blocking_send(Err(io::Error::new(e.kind(), e.to_string())));
                        break;
                    }
                }
            }
            drop(tx);
            let written = rt
                .block_on(put)
                .map_err(io::Error::other)?
                .map_err(|e| io::Error::other(format!("{key}: {e}")))?;
            report.blobs_written += 1;
            report.bytes_written += written;
        } else {
            if size > SMALL_MAX {
                return Err(io::Error::other(format!("{key}: {size} bytes, too big")));
            }
            let mut raw = Vec::with_capacity(size as usize);
            (&mut entry).take(SMALL_MAX).read_to_end(&mut raw)?;
            others.push((key, raw.into()));
        }
    }
    while let Some(oldest) = small.pop_front() {
        count_small(&rt, oldest, &mut report)?;
    }
    let Some(header) = header else {
        return Err(io::Error::other("empty archive"));
    };
    // tar stops at its end marker; gzip's checksum is in the trailer after.
    io::copy(&mut archive.into_inner(), &mut io::sink())
        .map_err(|e| io::Error::other(format!("the archive is damaged: {e}")))?;
    let blobs = report.blobs_written + report.blobs_skipped;
    if (blobs, others.len() as u64) != (header.blobs, header.others) {
        return Err(io::Error::other(format!(
            "the archive is incomplete: {blobs} blobs and {} other objects, its header says {} and {}",
            others.len(),
            header.blobs,
            header.others
        )));
    }
    // Phase by phase (links, tags, auth): a tag is checked against its
    // revision only once every revision is in.
    others.sort_by_key(|(key, _)| transfer::phase(key));
    for group in others.chunk_by(|a, b| transfer::phase(&a.0) == transfer::phase(&b.0)) {
        let written: Vec<Option<u64>> = rt.block_on(
            stream::iter(group)
                .map(|(key, value)| write_other(dst.as_ref(), key, value, dry_run, &progress))
                .buffer_unordered(PARALLEL_READS)
                .try_collect(),
        )?;
        for n in written {
            match n {
                Some(n) => {
                    report.others_written += 1;
                    report.bytes_written += n;
                }
                None => report.links_left_out += 1,
            }
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::digest::{Algorithm, Digest};
    use crate::storage::fs::FsStorage;
    use crate::storage::once;

    /// A blob a killed gc left in its trash is backed up and restored under
    /// its blob key.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_trashed_blob_comes_back_under_its_blob_key() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let src: Arc<dyn Storage> = Arc::new(FsStorage::open(a.path(), false).unwrap());
        let dst: Arc<dyn Storage> = Arc::new(FsStorage::open(b.path(), false).unwrap());
        let bytes = Bytes::from_static(b"left in the trash");
        let d = Digest::of(Algorithm::Sha256, &bytes);
        src.put(&layout::trash(&d), once(bytes.clone()))
            .await
            .unwrap();

        let snap = snapshot(src.as_ref()).await.unwrap();
        let (rt, none): (Handle, Progress) = (Handle::current(), Arc::new(|_| {}));
        let tar = tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            write(src, snap, &mut out, rt.clone(), none.clone())?;
            restore(dst.clone(), &out[..], rt, none, false)?;
            Ok::<_, io::Error>(dst)
        });
        let dst = tar.await.unwrap().unwrap();
        let got = dst.read_small(&layout::blob(&d), 1024).await.unwrap();
        assert_eq!(got, bytes);
        assert!(dst.stat(&layout::trash(&d)).await.unwrap().is_none());
    }

    /// Small blobs are read (backup) and written (restore) many at once:
    /// on S3 each is a round trip, and one at a time they were most of a
    /// backup's or a restore's time. What arrives is what left.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn small_blobs_go_many_at_once() {
        use crate::registry::testing::Watched;
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let src = Arc::new(Watched::new(FsStorage::open(a.path(), false).unwrap()));
        let dst = Arc::new(Watched::new(FsStorage::open(b.path(), false).unwrap()));
        let mut blobs = Vec::new();
        for i in 0..40u32 {
            // (One past SMALL_BLOB too: it streams, between the others.)
            let size = if i == 20 {
                SMALL_BLOB as usize + 1
            } else {
                100 + i as usize
            };
            let bytes = Bytes::from(vec![i as u8; size]);
            let d = Digest::of(Algorithm::Sha256, &bytes);
            src.inner
                .put(&layout::blob(&d), once(bytes.clone()))
                .await
                .unwrap();
            blobs.push((d, bytes));
        }
        let snap = snapshot(src.as_ref()).await.unwrap();
        let (rt, none): (Handle, Progress) = (Handle::current(), Arc::new(|_| {}));
        let (from, to): (Arc<dyn Storage>, Arc<dyn Storage>) = (src.clone(), dst.clone());
        let report = tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            write(from, snap, &mut out, rt.clone(), none.clone())?;
            restore(to, &out[..], rt, none, false)
        })
        .await
        .unwrap()
        .unwrap();
        assert_eq!(report.blobs_written, 40);
        for (d, bytes) in &blobs {
            let got = dst.inner.get(&layout::blob(d), None).await.unwrap();
            let got: Vec<Bytes> = got.body.try_collect().await.unwrap();
            assert_eq!(got.concat(), bytes.to_vec(), "{d}");
        }
        assert!(
            src.most_at_once() > 4,
            "backup: {} at once",
            src.most_at_once()
        );
        assert!(
            dst.most_at_once() > 4,
            "restore: {} at once",
            dst.most_at_once()
        );
    }

    /// What a delete leaves between two reads of a live store (a tag read
    /// just before its manifest went; a revision whose blob is gone) is left
    /// out: the archive never holds a link to what it lacks.
    #[tokio::test]
    async fn links_to_what_the_snapshot_lacks_are_left_out() {
        let a = tempfile::tempdir().unwrap();
        let s = FsStorage::open(a.path(), false).unwrap();
        let put = |k: String, v: &'static str| {
            let s = &s;
            async move {
                s.put_bytes(&k, Bytes::from_static(v.as_bytes()))
                    .await
                    .unwrap()
            }
        };
        let m = b"{}";
        let kept = Digest::of(Algorithm::Sha256, m);
        let gone = Digest::of(Algorithm::Sha256, b"deleted manifest");
        let orphan = Digest::of(Algorithm::Sha256, b"revision without its blob");
        s.put_bytes(&layout::blob(&kept), Bytes::from_static(m))
            .await
            .unwrap();
        put(layout::revision("r", &kept), "x").await;
        put(layout::revision("r", &orphan), "x").await;
        let tag = |d: &Digest| format!("{d}\napplication/vnd.oci.image.manifest.v1+json\n");
        for (t, d) in [("ok", &kept), ("dangling", &gone), ("on-orphan", &orphan)] {
            s.put_bytes(&layout::tag("r", t), tag(d).into())
                .await
                .unwrap();
        }
        let snap = snapshot(&s).await.unwrap();
        let keys: Vec<&str> = snap.others.iter().map(|(k, _)| k.as_str()).collect();
        assert!(keys.contains(&layout::tag("r", "ok").as_str()), "{keys:?}");
        assert!(keys.contains(&layout::revision("r", &kept).as_str()));
        for k in [
            layout::tag("r", "dangling"),
            layout::tag("r", "on-orphan"),
            layout::revision("r", &orphan),
        ] {
            assert!(!keys.contains(&k.as_str()), "{k} in {keys:?}");
        }
    }

    fn tar_gz(header: (u64, u64), entries: &[(&str, &[u8], tar::EntryType)]) -> Vec<u8> {
        let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let mut tar = tar::Builder::new(gz);
        let h = Header {
            format: FORMAT,
            created: 0,
            blobs: header.0,
            others: header.1,
            bytes: 0,
        };
        let h = serde_json::to_vec(&h).unwrap();
        append(&mut tar, HEADER, h.len() as u64, &h[..]).unwrap();
        for (path, data, kind) in entries {
            let mut th = tar::Header::new_gnu();
            th.set_size(data.len() as u64);
            th.set_mode(0o600);
            th.set_entry_type(*kind);
            tar.append_data(&mut th, path, *data).unwrap();
        }
        tar.into_inner().unwrap().finish().unwrap()
    }

    async fn restore_into(dst: &Arc<dyn Storage>, archive: Vec<u8>) -> io::Result<RestoreReport> {
        let (dst, rt, none): (_, Handle, Progress) =
            (dst.clone(), Handle::current(), Arc::new(|_| {}));
        tokio::task::spawn_blocking(move || restore(dst, &archive[..], rt, none, false))
            .await
            .unwrap()
    }

    /// What no backup holds is refused, and a damaged or cut archive writes
    /// none of its links, tags or tokens: before, a planted trash entry was
    /// served as the blob it names without being read, and a corrupt
    /// archive restored garbled tags with exit 0.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_hostile_or_damaged_archive_writes_nothing_unchecked() {
        let b = tempfile::tempdir().unwrap();
        let dst: Arc<dyn Storage> = Arc::new(FsStorage::open(b.path(), false).unwrap());
        let d = Digest::of(Algorithm::Sha256, b"the real bytes");
        let trash = layout::trash(&d);
        let upload = "uploads/0123456789abcdef0123456789abcdef/session";
        let file = tar::EntryType::Regular;
        for (key, why) in [(trash.as_str(), "never holds"), (upload, "never holds")] {
            let archive = tar_gz((0, 1), &[(key, b"other bytes", file)]);
            let e = restore_into(&dst, archive).await.unwrap_err().to_string();
            assert!(e.contains(why), "{key}: {e}");
            assert!(dst.stat(key).await.unwrap().is_none(), "{key} written");
        }
        let tag = layout::tag("r", "v1");
        let archive = tar_gz((0, 1), &[(tag.as_str(), b"x", tar::EntryType::Symlink)]);
        let e = restore_into(&dst, archive).await.unwrap_err().to_string();
        assert!(e.contains("not a plain file"), "{e}");

        // A tag and a revision, the revision's blob missing: the counts say
        // 3 other objects, two are there.
        let rev = layout::revision("r", &d);
        let value = format!("{d}\napplication/vnd.oci.image.manifest.v1+json\n1\n");
        let entries = [
            (rev.as_str(), &b"x"[..], file),
            (tag.as_str(), value.as_bytes(), file),
        ];
        let e = restore_into(&dst, tar_gz((0, 3), &entries))
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("incomplete"), "{e}");
        assert!(dst.stat(&tag).await.unwrap().is_none());
        // The gzip checksum is checked: flip a bit of the trailer's CRC.
        let mut damaged = tar_gz((0, 2), &entries);
        let at = damaged.len() - 8;
        damaged[at] ^= 1;
        let e = restore_into(&dst, damaged).await.unwrap_err().to_string();
        assert!(e.contains("damaged"), "{e}");
        assert!(dst.stat(&rev).await.unwrap().is_none());
        // Whole, it restores; links to what nothing holds are left out.
        let report = restore_into(&dst, tar_gz((0, 2), &entries)).await.unwrap();
        assert_eq!(report.links_left_out, 2, "{report:?}");
        assert!(dst.stat(&tag).await.unwrap().is_none());
    }
}

//! Copying one store into another, object by object: what `nora migrate`
//! runs. Blobs (their key is their digest) are streamed through a hasher and
//! refused unless the bytes match, so a corrupt source object never lands;
//! an object already at the destination (same blob, or same small value) is
//! skipped, so a rerun resumes where a stopped one ended.
//!
//! Order keeps the destination consistent at every moment (the write order of
//! layout.rs): blobs first, then repository links (layers, revisions,
//! referrers), then tags, then auth. Upload sessions and gc state are
//! per-moment and not copied.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::Stream;

use super::{ByteStream, Entry, Storage, StorageError, layout};
use crate::registry::digest::{Digest, Hasher};

/// Small objects (links, tags, tokens, session state) are compared whole.
const SMALL_MAX: u64 = layout::MAX_SMALL_OBJECT;

/// One object to copy.
#[derive(Debug, Clone)]
pub struct Item {
    pub key: String,
    pub size: u64,
}

/// Hears the length of every chunk written.
pub type Progress = Arc<dyn Fn(u64) + Send + Sync>;

#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Copied(u64),
    Skipped,
}

/// Every object of `src` worth copying, in a consistent order.
pub async fn plan(src: &dyn Storage) -> Result<Vec<Item>, StorageError> {
    let mut keys = Vec::new();
    for top in src.list("").await? {
        match top {
            Entry::Prefix(p) if p == layout::UPLOADS || p == "gc" => {}
            Entry::Prefix(p) => walk(src, &p, &mut keys).await?,
            Entry::Object(o) => keys.push(o),
        }
    }
    keys.sort_by_key(|k| (phase(k), k.clone()));
    let mut items = Vec::with_capacity(keys.len());
    for key in keys {
        // Gone since the listing (a concurrent delete or gc): nothing to copy.
        if let Some(meta) = src.stat(&key).await? {
            items.push(Item {
                key,
                size: meta.size,
            });
        }
    }
    Ok(items)
}

fn phase(key: &str) -> u8 {
    if key.starts_with("blobs/") {
        0
    } else if key.contains("/_manifests/tags/") {
        2
    } else if key.starts_with("auth/") {
        3
    } else {
        1
    }
}

/// Every object key under `prefix`, depth first.
pub async fn walk(
    s: &dyn Storage,
    prefix: &str,
    out: &mut Vec<String>,
) -> Result<(), StorageError> {
    let mut stack = vec![prefix.to_string()];
    while let Some(p) = stack.pop() {
        for e in s.list(&p).await? {
            match e {
                Entry::Object(o) => out.push(format!("{p}/{o}")),
                Entry::Prefix(d) => stack.push(format!("{p}/{d}")),
            }
        }
    }
    Ok(())
}

/// Copies `item` unless `dst` has it already; `dry_run` only decides (and
/// `dst` None stands for a destination that does not exist yet).
/// `progress` hears every chunk's length as it is written.
pub async fn copy(
    src: &dyn Storage,
    dst: Option<&dyn Storage>,
    item: &Item,
    dry_run: bool,
    progress: &Progress,
) -> Result<Outcome, StorageError> {
    let Some(dst) = dst else {
        return Ok(Outcome::Copied(item.size));
    };
    if let Some(digest) = layout::parse_blob(&item.key) {
        if dst
            .stat(&item.key)
            .await?
            .is_some_and(|m| m.size == item.size)
        {
            return Ok(Outcome::Skipped);
        }
        if dry_run {
            return Ok(Outcome::Copied(item.size));
        }
        let body = src.get(&item.key, None).await?.body;
        let verified = Verified::new(body, digest, progress.clone());
        let written = dst.put(&item.key, Box::pin(verified)).await?;
        return Ok(Outcome::Copied(written));
    }
    let value = src.read_small(&item.key, SMALL_MAX).await?;
    match dst.read_small(&item.key, SMALL_MAX).await {
        Ok(existing) if existing == value => return Ok(Outcome::Skipped),
        Ok(_) | Err(StorageError::NotFound(_)) => {}
        Err(e) => return Err(e),
    }
    if dry_run {
        return Ok(Outcome::Copied(value.len() as u64));
    }
    let n = dst.put_bytes(&item.key, value).await?;
    progress(n);
    Ok(Outcome::Copied(n))
}

/// Passes bytes through, hashing them; ends in an error instead of a clean
/// end when they do not hash to the expected digest, so the put fails and
/// nothing becomes visible.
pub struct Verified {
    inner: ByteStream,
    hasher: Option<Hasher>,
    expected: Digest,
    progress: Progress,
}

impl Verified {
    pub fn new(inner: ByteStream, expected: Digest, progress: Progress) -> Self {
        Verified {
            inner,
            hasher: Some(expected.algorithm().hasher()),
            expected,
            progress,
        }
    }
}

impl Stream for Verified {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.inner.as_mut().poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                if let Some(h) = self.hasher.as_mut() {
                    h.update(&chunk);
                }
                (self.progress)(chunk.len() as u64);
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(None) => match self.hasher.take() {
                Some(h) => {
                    let got = h.finish();
                    if got == self.expected {
                        Poll::Ready(None)
                    } else {
                        Poll::Ready(Some(Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!("source bytes hash to {got}, not {}", self.expected),
                        ))))
                    }
                }
                None => Poll::Ready(None),
            },
            other => other,
        }
    }
}

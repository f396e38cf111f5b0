//! Copying one store into another, object by object: what `nora migrate`
//! runs. Blobs (their key is their digest) are streamed through a hasher and
//! refused unless the bytes match, so a corrupt source object never lands;
//! an object already at the destination (same blob, or same small value) is
//! skipped, so a rerun resumes where a stopped one ended.
//!
//! Order keeps the destination consistent at every moment (the write order of
//! layout.rs): blobs first, then repository links (layers, revisions,
//! referrers), then tags, then auth; and a link is written only once what it
//! names is there (`layout::depends_on`). The source is listed the other way
//! round while it takes pushes: tags (read then, so a tag that moves later
//! is copied as it was), then links, then blobs, so what a tag or link names
//! was written before the listing that finds it. Upload sessions and gc
//! state are per-moment and not copied.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::stream::{self, FuturesUnordered};
use futures_util::{Stream, StreamExt, TryStreamExt};

use super::{ByteStream, Entry, Listed, PARALLEL_READS, Storage, StorageError, layout};
use crate::registry::digest::{Digest, Hasher};

/// Small objects (links, tags, tokens, session state) are compared whole.
const SMALL_MAX: u64 = layout::MAX_SMALL_OBJECT;

/// One object to copy.
#[derive(Debug, Clone)]
pub struct Item {
    pub key: String,
    pub size: u64,
    /// Read while listing (tags): copied as read, not as found later.
    pub value: Option<Bytes>,
}

/// Hears the length of every chunk written.
pub type Progress = Arc<dyn Fn(u64) + Send + Sync>;

#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Copied(u64),
    Skipped,
    /// Deleted from the source since the listing, or names something that
    /// was (a tag whose manifest went): not copied.
    Gone,
}

/// Every object of `src` worth copying, in the order to copy them.
pub async fn plan(src: &dyn Storage) -> Result<Vec<Item>, StorageError> {
    let mut items = plan_small(src).await?;
    let blobs = src.list_deep(layout::BLOBS).await?;
    items.extend(blobs.into_iter().filter_map(copied));
    items.sort_by_key(|i| (phase(&i.key), i.key.clone()));
    Ok(items)
}

/// Every object but the blobs: tags read first, then the other keys listed
/// (see the module's comment for why in that order).
pub async fn plan_small(src: &dyn Storage) -> Result<Vec<Item>, StorageError> {
    let mut tags = listed_but_blobs(src).await?;
    tags.retain(|l| phase(&l.key) == TAGS);
    let tags: Vec<Option<Item>> = stream::iter(tags)
        .map(|listed| read_tag(src, listed))
        .buffer_unordered(PARALLEL_READS)
        .try_collect()
        .await?;
    let mut items: Vec<Item> = tags.into_iter().flatten().collect();
    let others = listed_but_blobs(src).await?;
    items.extend(
        others
            .into_iter()
            .filter(|l| phase(&l.key) != TAGS)
            .filter_map(copied),
    );
    items.sort_by_key(|i| (phase(&i.key), i.key.clone()));
    Ok(items)
}

/// A tag as read now, to be copied as it is (None: deleted since listed).
async fn read_tag(src: &dyn Storage, listed: Listed) -> Result<Option<Item>, StorageError> {
    match src.read_small(&listed.key, SMALL_MAX).await {
        Ok(v) => {
            // The copy is written now: a tag that does not record when it
            // was pushed takes its source's time along in its content.
            let v = match layout::tag_pushed(&v) {
                Some(_) => v,
                None => layout::tag_with_pushed(v, listed.meta.modified),
            };
            Ok(Some(Item {
                key: listed.key,
                size: v.len() as u64,
                value: Some(v),
            }))
        }
        Err(StorageError::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The objects under `repositories/` and `auth/` worth copying: nothing else
/// at the store's root is the registry's (see `layout::is_copied`).
async fn listed_but_blobs(src: &dyn Storage) -> Result<Vec<Listed>, StorageError> {
    let mut listed = src.list_deep(layout::REPOSITORIES).await?;
    listed.extend(src.list_deep(layout::AUTH).await?);
    listed.retain(|l| layout::is_copied(&l.key));
    Ok(listed)
}

/// The item copying a listed object, if it is one to copy.
fn copied(listed: Listed) -> Option<Item> {
    layout::is_copied(&listed.key).then_some(Item {
        key: listed.key,
        size: listed.meta.size,
        value: None,
    })
}

const BLOBS: u8 = 0;
const TAGS: u8 = 2;

/// The write order of layout.rs: blobs, links, tags, auth.
pub(super) fn phase(key: &str) -> u8 {
    if key.starts_with("blobs/") {
        BLOBS
    } else if key.contains("/_manifests/tags/") {
        TAGS
    } else if key.starts_with("auth/") {
        3
    } else {
        1
    }
}

/// Every object key under `prefix`, in no particular order; PARALLEL_READS
/// directories are listed at once.
pub async fn walk(
    s: &dyn Storage,
    prefix: &str,
    out: &mut Vec<String>,
) -> Result<(), StorageError> {
    let mut pending = vec![prefix.to_string()];
    let mut listing = FuturesUnordered::new();
    loop {
        while listing.len() < PARALLEL_READS
            && let Some(p) = pending.pop()
        {
            listing.push(async move {
                let entries = s.list(&p).await;
                (p, entries)
            });
        }
        let Some((p, entries)) = listing.next().await else {
            return Ok(());
        };
        for e in entries? {
            match e {
                Entry::Object(o) => out.push(format!("{p}/{o}")),
                Entry::Prefix(d) => pending.push(format!("{p}/{d}")),
            }
        }
    }
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
        let body = match src.get(&item.key, None).await {
            Ok(o) => o.body,
            Err(StorageError::NotFound(_)) => return Ok(Outcome::Gone),
            Err(e) => return Err(e),
        };
        let verified = Verified::new(body, digest, progress.clone());
        let written = dst.put(&item.key, Box::pin(verified)).await?;
        return Ok(Outcome::Copied(written));
    }
    let value = match &item.value {
        Some(v) => v.clone(),
        None => match src.read_small(&item.key, SMALL_MAX).await {
            Ok(v) => v,
            Err(StorageError::NotFound(_)) => return Ok(Outcome::Gone),
            Err(e) => return Err(e),
        },
    };
    match dst.read_small(&item.key, SMALL_MAX).await {
        Ok(existing) if existing == value => return Ok(Outcome::Skipped),
        Ok(_) | Err(StorageError::NotFound(_)) => {}
        Err(e) => return Err(e),
    }
    if dry_run {
        return Ok(Outcome::Copied(value.len() as u64));
    }
    // Never a link to what the destination lacks (its source went meanwhile).
    if let Some(needed) = layout::depends_on(&item.key, &value)
        && dst.stat(&needed).await?.is_none()
    {
        return Ok(Outcome::Gone);
    }
    let n = dst.put_bytes(&item.key, value).await?;
    progress(n);
    Ok(Outcome::Copied(n))
}

/// How many big blobs `copy_all` streams at once: each can hold an S3 part
/// (8 MiB) in memory. Small blobs (up to SMALL_BLOB: manifests, configs,
/// small layers), links, tags and tokens go PARALLEL_READS at a time: on
/// S3 each is a few round trips, which four at a time made most of a
/// migration's time.
const PARALLEL_BLOBS: usize = 4;
/// Blobs up to this size go many at once in a migration, a backup and a
/// restore (which holds each whole meanwhile).
pub const SMALL_BLOB: u64 = 256 * 1024;

/// Copies the items of `plan` (sorted as `plan` sorts them), handing each
/// outcome to `done`. One phase (blobs, links, tags, auth) is finished before
/// the next starts, so nothing lands before what it names; within a phase,
/// items are independent and copied several at a time. Stops at the first
/// error, with the key it failed on, once the copies under way have ended
/// (cut off, an S3 upload would be left behind unaborted).
pub async fn copy_all(
    src: &dyn Storage,
    dst: Option<&dyn Storage>,
    plan: &[Item],
    dry_run: bool,
    progress: &Progress,
    mut done: impl FnMut(&Item, Outcome),
) -> Result<(), (String, StorageError)> {
    let failed = AtomicBool::new(false);
    let mut first_error = None;
    let big = tokio::sync::Semaphore::new(PARALLEL_BLOBS);
    for group in plan.chunk_by(|a, b| phase(&a.key) == phase(&b.key)) {
        let (failed, big) = (&failed, &big);
        let mut copies = stream::iter(group)
            .map(|item| async move {
                let _permit = if item.size > SMALL_BLOB && phase(&item.key) == BLOBS {
                    big.acquire().await.ok()
                } else {
                    None
                };
                if failed.load(Ordering::Relaxed) {
                    return (item, None); // not started: an earlier copy failed
                }
                (item, Some(copy(src, dst, item, dry_run, progress).await))
            })
            .buffer_unordered(PARALLEL_READS);
        while let Some((item, outcome)) = copies.next().await {
            match outcome {
                Some(Ok(outcome)) => done(item, outcome),
                Some(Err(e)) => {
                    failed.store(true, Ordering::Relaxed);
                    first_error.get_or_insert((item.key.clone(), e));
                }
                None => {}
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::digest::Algorithm;
    use crate::storage::fs::FsStorage;
    use std::time::Duration;

    /// A copy is written now, so a tag that does not record when it was
    /// pushed takes its source's time along (retention's keep_last ranked
    /// every restored tag alike, and kept the oldest); one that does is
    /// copied as it is.
    #[tokio::test]
    async fn a_tag_takes_its_push_time_along() {
        let a = tempfile::tempdir().unwrap();
        let src = FsStorage::open(a.path(), false).unwrap();
        let d = Digest::of(Algorithm::Sha256, b"{}");
        let old = format!("{d}\napplication/vnd.oci.image.manifest.v1+json\n");
        src.put_bytes(&layout::tag("r", "old"), old.into())
            .await
            .unwrap();
        let day = std::time::Duration::from_secs(86_400);
        crate::registry::testing::age(&a.path().join(layout::tag("r", "old")), day);
        let recorded = layout::tag_object(&d, "application/vnd.oci.image.index.v1+json", 1234);
        src.put_bytes(&layout::tag("r", "new"), recorded.clone())
            .await
            .unwrap();
        let plan = plan_small(&src).await.unwrap();
        let value = |tag: &str| {
            let key = layout::tag("r", tag);
            plan.iter()
                .find(|i| i.key == key)
                .and_then(|i| i.value.clone())
                .unwrap()
        };
        let pushed = layout::tag_pushed(&value("old")).expect("recorded");
        let now = crate::auth::tokens::now();
        assert!(
            (now - 86_400 - 5..=now - 86_400 + 5).contains(&pushed),
            "{pushed}"
        );
        assert!(value("old").starts_with(format!("{d}\napplication/").as_bytes()));
        assert_eq!(value("new"), recorded);
    }

    /// Only the registry's own keys are copied: not another registry under a
    /// longer prefix of the same bucket (`prod` and `prod/staging`), nor a
    /// file left at the root, nor a stray file among the blobs. Each such
    /// copy used to nest again at every rerun of a migration into a
    /// subdirectory of its source.
    #[tokio::test]
    async fn only_the_registrys_keys_are_planned() {
        let a = tempfile::tempdir().unwrap();
        let src = FsStorage::open(a.path(), false).unwrap();
        let d = Digest::of(Algorithm::Sha256, b"{}");
        let mine = [
            layout::blob(&d),
            layout::revision("r", &d),
            "auth/jwt-key".to_string(),
        ];
        let stray = [
            format!("staging/{}", layout::blob(&d)),
            "staging/repositories/r/_manifests/revisions/x".to_string(),
            "config.toml".to_string(),
            "blobs/sha256/zz/notes.txt".to_string(),
        ];
        for k in mine.iter().chain(&stray) {
            src.put_bytes(k, Bytes::from_static(b"{}")).await.unwrap();
        }
        let planned: Vec<String> = plan(&src)
            .await
            .unwrap()
            .into_iter()
            .map(|i| i.key)
            .collect();
        for k in &mine {
            assert!(planned.contains(k), "{k} missing from {planned:?}");
        }
        assert_eq!(planned.len(), mine.len(), "{planned:?}");
    }

    /// Sizes and times come with the listings: planning a migration looks
    /// at no object one by one (on S3 each look is a round trip).
    #[tokio::test]
    async fn the_plan_takes_sizes_from_listings() {
        use crate::registry::testing::{Watched, age};
        let a = tempfile::tempdir().unwrap();
        let src = Watched::new(FsStorage::open(a.path(), false).unwrap());
        let mut sizes = std::collections::HashMap::new();
        for i in 0..20u8 {
            let bytes = Bytes::from(vec![i; 100 + i as usize]);
            let d = Digest::of(Algorithm::Sha256, &bytes);
            sizes.insert(layout::blob(&d), bytes.len() as u64);
            src.put_bytes(&layout::blob(&d), bytes).await.unwrap();
            let link = layout::revision("r", &d);
            sizes.insert(link.clone(), 1);
            src.put_bytes(&link, "x".into()).await.unwrap();
        }
        // A tag from before tags recorded their push: its file's time.
        let d = Digest::of(Algorithm::Sha256, &[0u8; 100]);
        let tag = layout::tag("r", "old");
        let value = format!("{d}\napplication/vnd.oci.image.manifest.v1+json\n");
        src.put_bytes(&tag, value.into()).await.unwrap();
        age(&a.path().join(&tag), Duration::from_secs(86_400));
        let plan = plan(&src).await.unwrap();
        assert_eq!(src.stats(), 0, "a stat per object");
        assert_eq!(plan.len(), 41);
        for item in &plan {
            if item.key == tag {
                let pushed = layout::tag_pushed(item.value.as_ref().unwrap()).unwrap();
                let ago = crate::auth::tokens::now() - pushed;
                assert!((86_399..86_500).contains(&ago), "pushed {ago} s ago");
            } else {
                assert_eq!(Some(&item.size), sizes.get(&item.key), "{}", item.key);
            }
        }
    }

    /// A migration of a store that takes deletes meanwhile: what went is not
    /// an error, and no link lands without what it names.
    #[tokio::test]
    async fn what_the_source_lost_meanwhile_is_gone_not_fatal() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let src = FsStorage::open(a.path(), false).unwrap();
        let dst = FsStorage::open(b.path(), false).unwrap();
        let m = Bytes::from_static(b"{}");
        let d = Digest::of(Algorithm::Sha256, &m);
        src.put_bytes(&layout::blob(&d), m.clone()).await.unwrap();
        src.put_bytes(&layout::revision("r", &d), "x".into())
            .await
            .unwrap();
        let tag = format!("{d}\napplication/vnd.oci.image.manifest.v1+json\n");
        src.put_bytes(&layout::tag("r", "v1"), tag.into())
            .await
            .unwrap();
        let plan = plan(&src).await.unwrap();
        let order: Vec<&str> = plan.iter().map(|i| i.key.as_str()).collect();
        assert_eq!(
            order,
            [
                layout::blob(&d),
                layout::revision("r", &d),
                layout::tag("r", "v1")
            ]
        );
        // The manifest is deleted (tag, revision, then gc takes the blob)
        // after the listing; the tag was read before.
        for key in &order {
            src.delete(key).await.unwrap();
        }
        let none: Progress = Arc::new(|_| {});
        for item in &plan {
            let got = copy(&src, Some(&dst), item, false, &none).await.unwrap();
            assert_eq!(got, Outcome::Gone, "{}", item.key);
        }
        assert!(dst.list("").await.unwrap().is_empty());
    }

    /// The walk lists many directories at once: it still finds every key,
    /// once, at any depth, and nothing outside its prefix.
    #[tokio::test]
    async fn a_walk_finds_every_key_once() {
        let dir = tempfile::tempdir().unwrap();
        let s = FsStorage::open(dir.path(), false).unwrap();
        let mut want = Vec::new();
        for i in 0..60 {
            let key = format!("top/{}/{}/k{i}", i % 7, i % 3);
            s.put_bytes(&key, "x".into()).await.unwrap();
            want.push(key);
        }
        for key in ["top/deep/a/b/c/d/e", "top/k", "other/k"] {
            s.put_bytes(key, "x".into()).await.unwrap();
        }
        want.extend(["top/deep/a/b/c/d/e".to_string(), "top/k".to_string()]);
        let mut got = Vec::new();
        walk(&s, "top", &mut got).await.unwrap();
        got.sort();
        want.sort();
        assert_eq!(got, want);
    }

    /// A blob whose bytes do not match its digest stops the copy with its
    /// key: it never lands, and no later phase (links here) starts.
    #[tokio::test]
    async fn a_bad_blob_stops_the_copy_before_the_links() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let src = FsStorage::open(a.path(), false).unwrap();
        let dst = FsStorage::open(b.path(), false).unwrap();
        for i in 0..20 {
            let bytes = format!("blob {i}");
            let d = Digest::of(Algorithm::Sha256, bytes.as_bytes());
            src.put_bytes(&layout::blob(&d), bytes.into())
                .await
                .unwrap();
            src.put_bytes(&layout::revision("r", &d), "x".into())
                .await
                .unwrap();
        }
        let bad = Digest::of(Algorithm::Sha256, b"what it should be");
        src.put_bytes(&layout::blob(&bad), "what it is".into())
            .await
            .unwrap();
        let plan = plan(&src).await.unwrap();
        let progress: Progress = Arc::new(|_| {});
        let mut copied = 0;
        let failed = copy_all(&src, Some(&dst), &plan, false, &progress, |_, o| {
            assert!(matches!(o, Outcome::Copied(_)));
            copied += 1;
        })
        .await;
        let (key, _) = failed.unwrap_err();
        assert_eq!(key, layout::blob(&bad));
        assert!(dst.stat(&key).await.unwrap().is_none());
        assert!(
            copied <= 20,
            "{copied}: links were copied after the failure"
        );
        let mut links = Vec::new();
        walk(&dst, layout::REPOSITORIES, &mut links).await.unwrap();
        assert!(links.is_empty(), "{links:?}");
    }

    /// Copies blobs of these sizes from `src` into a watched store on
    /// `to`; how many gets and puts it saw at once.
    async fn copy_sizes(src: &FsStorage, to: &std::path::Path, sizes: &[usize], seed: u8) -> usize {
        use crate::registry::testing::Watched;
        let dst = Watched::new(FsStorage::open(to, false).unwrap());
        let mut plan = Vec::new();
        for (i, size) in sizes.iter().enumerate() {
            let bytes = Bytes::from(vec![seed ^ i as u8; *size]);
            let d = Digest::of(Algorithm::Sha256, &bytes);
            let key = layout::blob(&d);
            src.put_bytes(&key, bytes).await.unwrap();
            plan.push(Item {
                key,
                size: *size as u64,
                value: None,
            });
        }
        let none: Progress = Arc::new(|_| {});
        let mut copied = 0;
        copy_all(src, Some(&dst), &plan, false, &none, |_, o| {
            copied += matches!(o, Outcome::Copied(_)) as usize
        })
        .await
        .unwrap();
        assert_eq!(copied, plan.len());
        dst.most_at_once()
    }

    /// Small blobs are copied many at once, big ones (each may hold an S3
    /// part in memory) PARALLEL_BLOBS at a time; all arrive whole.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn small_blobs_go_many_at_once_big_ones_a_few() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let src = FsStorage::open(a.path(), false).unwrap();
        let small = copy_sizes(&src, b.path(), &[1000; 40], 1).await;
        assert!(small > PARALLEL_BLOBS, "{small} small ones at once");
        let big = copy_sizes(&src, b.path(), &[SMALL_BLOB as usize + 1; 12], 2).await;
        assert!(big <= PARALLEL_BLOBS, "{big} big ones at once");
    }
}

//! The S3 backend: any S3-compatible object store (AWS, Ceph RGW, Garage,
//! MinIO…) through aws-sdk-s3. Several `nora serve` processes on one bucket
//! are one registry: everything they share lives in the bucket.
//!
//! How the trait maps onto S3:
//! - `put` streams: a body of up to one part is a single PutObject; a longer
//!   one is a multipart upload, part by part as bytes arrive (one part
//!   uploading while the next fills, so at most ~3 parts are in memory), and
//!   the object appears only when CompleteMultipartUpload succeeds. A failed
//!   body aborts the upload: nothing becomes visible.
//! - `put_if_absent` is PutObject / CompleteMultipartUpload with
//!   `If-None-Match: *` (412 when the key exists: atomic against other
//!   instances).
//! - `rename` is a server-side copy (multipart copy above 5 GiB) then a
//!   delete: the target appears whole, at once; S3 has no rename.
//! - `list` is ListObjectsV2 with `/` as delimiter, `delete_prefix` lists and
//!   deletes in batches of 1,000.
//!
//! The key of every object is `<prefix>/<storage key>` (see layout.rs), so a
//! bucket can hold several registries.

use std::io;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::{Credentials, Region};
use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::operation::create_multipart_upload::CreateMultipartUploadOutput;
use aws_sdk_s3::operation::get_object::{GetObjectError, GetObjectOutput};
use aws_sdk_s3::primitives::ByteStream as S3Body;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, Delete, ObjectIdentifier};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use tokio::sync::Semaphore;

use super::{
    ByteRange, ByteStream, Entry, GetObject, Listed, ObjectMeta, Result, Storage, StorageError,
    check_key, layout,
};
use crate::config;

/// When an unfinished multipart upload is a killed process's: started a day
/// ago and no part for a day. One put may stream for hours (a big layer on a
/// slow link), 8 MiB a part; AWS's lifecycle examples abort one to seven
/// days after the start.
const UPLOAD_ABANDONED_AFTER: Duration = Duration::from_secs(24 * 3600);

/// Size of a multipart part (S3's minimum is 5 MiB); it grows for very large
/// objects so that 10,000 parts still hold them.
const PART: usize = 8 << 20;
/// Objects larger than this are copied in parts (S3's CopyObject limit).
const COPY_MAX: u64 = 5 << 30;
/// Parts uploaded, or read ahead, at once for one object: what one S3
/// connection cannot carry, a few do (memory: a part each).
const PUT_AHEAD: usize = 4;
const GET_AHEAD: usize = 6;
/// Parts in memory beyond the one each upload always has are lent from
/// this many, shared by every transfer of the process (a read ahead takes
/// all of its parts from here, or streams): one or two big pushes or pulls
/// go at full speed, and fifty pushes at once hold 50 + 8 parts, not 50 x 4.
const SPARE_PARTS: usize = 8;
const COPY_PART: u64 = 1 << 30;

pub struct S3Storage {
    client: Client,
    bucket: String,
    /// "" or "some/prefix/" (with the trailing slash).
    prefix: String,
    /// SPARE_PARTS permits: a transfer holds one per extra part in memory.
    spare: Arc<Semaphore>,
}

impl S3Storage {
    /// The entries under `prefix` whose names sort after `after` (all when
    /// None), at most `limit`, in order. The listing starts at `after`
    /// (StartAfter) and stops once the page is full: a tags page of a
    /// repository of 50,000 tags is one request, not 50.
    async fn list_from(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Entry>> {
        let base = self.listing_base(prefix)?;
        let mut request = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(&base)
            .delimiter("/");
        if let Some(after) = after {
            // The prefix `after/` sorts after the key `after`: one more than
            // the page, for the entry named `after` itself.
            request = request.start_after(format!("{base}{after}")).max_keys(
                i32::try_from(limit.saturating_add(1))
                    .unwrap_or(1000)
                    .min(1000),
            );
        }
        let mut out = Vec::new();
        let mut pages = request.into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| io_error("ListObjectsV2", &base, e))?;
            for o in page.contents() {
                if let Some(name) = o.key().and_then(|k| k.strip_prefix(&base))
                    && !name.is_empty()
                {
                    out.push(Entry::Object(name.to_string()));
                }
            }
            for p in page.common_prefixes() {
                if let Some(name) = p
                    .prefix()
                    .and_then(|k| k.strip_prefix(&base))
                    .map(|n| n.trim_end_matches('/'))
                    && !name.is_empty()
                {
                    out.push(Entry::Prefix(name.to_string()));
                }
            }
            if let Some(after) = after {
                out.retain(|e| e.name() > after);
                if out.len() >= limit {
                    break;
                }
            }
        }
        out.sort_by(|a, b| a.name().cmp(b.name()));
        out.truncate(limit);
        Ok(out)
    }

    /// The S3 prefix that lists what is under the storage prefix `prefix`
    /// (a trailing `/` or none: the same).
    fn listing_base(&self, prefix: &str) -> Result<String> {
        let prefix = prefix.trim_end_matches('/');
        if prefix.is_empty() {
            return Ok(self.prefix.clone());
        }
        check_key(prefix)?;
        Ok(format!("{}/", self.key(prefix)))
    }

    /// `list_deep`: one listing without a delimiter, 1,000 keys a page.
    async fn list_all(&self, prefix: &str) -> Result<Vec<Listed>> {
        let base = self.listing_base(prefix)?;
        let mut out = Vec::new();
        let request = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(&base);
        let mut pages = request.into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| io_error("ListObjectsV2", &base, e))?;
            for o in page.contents() {
                if let Some(k) = o.key()
                    && k.strip_prefix(&base).is_some_and(|rest| !rest.is_empty())
                    && let Some(key) = k.strip_prefix(&self.prefix)
                {
                    out.push(Listed {
                        key: key.to_string(),
                        meta: ObjectMeta {
                            size: o.size().unwrap_or(0).max(0) as u64,
                            modified: s3_time(o.last_modified()),
                        },
                    });
                }
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    /// `sweep_abandoned`: the unfinished multipart uploads of nora's keys
    /// (blobs and repositories, under the prefix; a bucket may hold others')
    /// started, and last given a part, more than `age` ago, aborted.
    async fn abort_abandoned(&self, age: Duration) -> Result<usize> {
        let cutoff = SystemTime::now()
            .checked_sub(age)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let mut aborted = 0;
        let (mut key_marker, mut id_marker) = (None, None);
        loop {
            let page = match self
                .client
                .list_multipart_uploads()
                .bucket(&self.bucket)
                .prefix(&self.prefix)
                .set_key_marker(key_marker.take())
                .set_upload_id_marker(id_marker.take())
                .send()
                .await
            {
                Ok(page) => page,
                // Not every S3-compatible server lists uploads (s3s-fs does
                // not): there is nothing nora can sweep there.
                Err(e) if status(&e) == Some(501) => return Ok(0),
                Err(e) => return Err(io_error("ListMultipartUploads", &self.prefix, e)),
            };
            for u in page.uploads() {
                let (Some(k), Some(id)) = (u.key(), u.upload_id()) else {
                    continue;
                };
                let ours = k.strip_prefix(&self.prefix).is_some_and(|key| {
                    [layout::BLOBS, layout::REPOSITORIES]
                        .iter()
                        .any(|top| key.starts_with(&format!("{top}/")))
                });
                if !ours || s3_time(u.initiated()) >= cutoff {
                    continue;
                }
                if self.last_part(k, id).await.is_none_or(|t| t >= cutoff) {
                    continue;
                }
                match self
                    .client
                    .abort_multipart_upload()
                    .bucket(&self.bucket)
                    .key(k)
                    .upload_id(id)
                    .send()
                    .await
                {
                    Ok(_) => aborted += 1,
                    Err(e) if status(&e) == Some(404) => {} // finished or aborted meanwhile
                    Err(e) => return Err(io_error("AbortMultipartUpload", k, e)),
                }
            }
            if page.is_truncated() != Some(true) {
                return Ok(aborted);
            }
            key_marker = page.next_key_marker().map(str::to_string);
            id_marker = page.next_upload_id_marker().map(str::to_string);
            if key_marker.is_none() {
                return Ok(aborted);
            }
        }
    }

    /// When the newest part of an unfinished upload came (the epoch without
    /// parts). None when the server cannot tell (moto answers ListParts in a
    /// form the SDK does not read, and gives every upload a start in 2010),
    /// or the upload finished meanwhile: then it is left alone.
    async fn last_part(&self, k: &str, id: &str) -> Option<SystemTime> {
        let mut parts = self
            .client
            .list_parts()
            .bucket(&self.bucket)
            .key(k)
            .upload_id(id)
            .into_paginator()
            .items()
            .send();
        let mut newest = SystemTime::UNIX_EPOCH;
        while let Some(part) = parts.next().await {
            match part {
                Ok(part) => newest = newest.max(s3_time(part.last_modified())),
                Err(e) => {
                    tracing::debug!(key = k, error = %sdk_why(&e), "unfinished upload left: its parts cannot be listed");
                    return None;
                }
            }
        }
        Some(newest)
    }

    #[cfg(test)]
    fn with_spare_parts(mut self, n: usize) -> Self {
        self.spare = Arc::new(Semaphore::new(n));
        self
    }

    /// A client for `cfg`. Nothing is contacted yet: `ping` checks.
    pub fn new(cfg: &config::S3) -> S3Storage {
        use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(Provider::Rustls(CryptoMode::Ring))
            .build_https();
        let region = cfg
            .region
            .clone()
            .or_else(|| std::env::var("AWS_REGION").ok())
            .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok())
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| "us-east-1".into());
        let timeouts = aws_sdk_s3::config::timeout::TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(5))
            // Between two reads of an answer, not the whole transfer.
            .read_timeout(Duration::from_secs(60))
            .build();
        let mut b = aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .http_client(http.clone())
            .region(Region::new(region))
            .force_path_style(cfg.path_style)
            .timeout_config(timeouts)
            .sleep_impl(aws_sdk_s3::config::SharedAsyncSleep::new(
                aws_smithy_async::rt::sleep::TokioSleep::new(),
            ))
            // Checksums only where S3 requires them: self-hosted servers do
            // not all speak the newer trailing-checksum encodings.
            .request_checksum_calculation(
                aws_sdk_s3::config::RequestChecksumCalculation::WhenRequired,
            )
            .response_checksum_validation(
                aws_sdk_s3::config::ResponseChecksumValidation::WhenRequired,
            );
        if let Some(e) = &cfg.endpoint {
            b = b.endpoint_url(e);
        }
        match (&cfg.access_key, &cfg.secret_key) {
            (Some(a), Some(s)) => {
                b = b.credentials_provider(Credentials::new(a, s, None, None, "nora-config"))
            }
            _ => b = b.credentials_provider(lazy_chain::LazyDefaultChain::new(http)),
        }
        let prefix = cfg.prefix.trim_matches('/');
        S3Storage {
            client: Client::from_conf(b.build()),
            spare: Arc::new(Semaphore::new(SPARE_PARTS)),
            bucket: cfg.bucket.clone(),
            prefix: if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            },
        }
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    async fn get_range(
        &self,
        k: &str,
        from: u64,
        to: u64,
    ) -> std::result::Result<GetObjectOutput, SdkError<GetObjectError, HttpResponse>> {
        get_ranged(&self.client, &self.bucket, k, from, to, None).await
    }

    async fn get_whole(&self, key: &str, k: &str) -> Result<GetObject> {
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(k)
            .send()
            .await
            .map_err(|e| not_found_or(key, "GetObject", e))?;
        Ok(GetObject {
            size: out.content_length().unwrap_or(0).max(0) as u64,
            body: Box::pin(body_stream(out.body)),
        })
    }

    async fn put_inner(&self, key: &str, body: ByteStream, if_absent: bool) -> Result<u64> {
        check_key(key)?;
        let k = self.key(key);
        let mut chunks = Chunker::new(body);
        let first = chunks.next(PART, &mut None).await?;
        if chunks.ended() {
            let size = first.len() as u64;
            let mut req = self
                .client
                .put_object()
                .bucket(&self.bucket)
                .key(&k)
                .body(S3Body::from(first.clone()));
            if if_absent {
                req = req.if_none_match("*");
            }
            // A conditional PUT whose answer was lost is sent again by the
            // SDK and then refused (412) because the first one stored it:
            // that is this request's own write, not another's. (Callers make
            // what they write with `put_if_absent` unique to the writer, so
            // equal bytes mean the write was ours.)
            let ours = |got: Bytes| got == first;
            return match req.send().await.map_err(|e| put_error(&k, e)) {
                Err(StorageError::AlreadyExists(_))
                    if self.read_small(key, size).await.is_ok_and(ours) =>
                {
                    Ok(size)
                }
                Err(e) => Err(e),
                Ok(_) => Ok(size),
            };
        }
        let upload = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(&k)
            .send()
            .await
            .map_err(|e| io_error("CreateMultipartUpload", &k, e))?;
        let id = upload_id(&upload, &k)?;
        let transfer = Transfer::start();
        let outcome = self.upload_parts(&k, &id, chunks, first, if_absent).await;
        drop(transfer);
        if outcome.is_err() {
            // Best effort: an unaborted upload is invisible anyway, and
            // bucket lifecycle rules remove it.
            let _ = self
                .client
                .abort_multipart_upload()
                .bucket(&self.bucket)
                .key(&k)
                .upload_id(&id)
                .send()
                .await;
        }
        outcome
    }

    async fn upload_parts(
        &self,
        k: &str,
        id: &str,
        mut chunks: Chunker,
        first: Bytes,
        if_absent: bool,
    ) -> Result<u64> {
        let mut parts = Vec::new();
        let mut in_flight: std::collections::VecDeque<tokio::task::JoinHandle<Result<Uploaded>>> =
            Default::default();
        // The buffer of a part S3 has taken, filled again with a later one:
        // fresh 8 MiB buffers are mmapped and zeroed page by page, a quarter
        // of nora's CPU in a push to S3 (bench/s3.py). One is kept at most,
        // the one the next part fills, so memory stays what it was.
        let mut spare: Option<BytesMut> = None;
        let mut done = |up: Uploaded, spare: &mut Option<BytesMut>| {
            parts.push(up.part);
            if spare.is_none() {
                *spare = up.bytes.try_into_mut().ok();
            }
        };
        let mut total = 0u64;
        let mut number = 1i32;
        let mut part = first;
        let outcome = async {
            loop {
                if !part.is_empty() {
                    total += part.len() as u64;
                    // One part filling, one uploading, and up to PUT_AHEAD
                    // uploading while spare parts can be borrowed.
                    let lent = loop {
                        if in_flight.is_empty() {
                            break None;
                        }
                        if in_flight.len() < PUT_AHEAD
                            && let Ok(permit) = self.spare.clone().try_acquire_owned()
                        {
                            break Some(permit);
                        }
                        if let Some(h) = in_flight.pop_front() {
                            done(join(h).await?, &mut spare);
                        }
                    };
                    let upload = upload_part(
                        self.client.clone(),
                        self.bucket.clone(),
                        k.to_string(),
                        id.to_string(),
                        number,
                        std::mem::take(&mut part),
                    );
                    in_flight.push_back(tokio::spawn(async move {
                        let _lent = lent;
                        upload.await
                    }));
                    number += 1;
                }
                if chunks.ended() {
                    break;
                }
                while spare.is_none() && in_flight.front().is_some_and(|h| h.is_finished()) {
                    if let Some(h) = in_flight.pop_front() {
                        done(join(h).await?, &mut spare);
                    }
                }
                part = chunks
                    .next(PART * (1 + number as usize / 1000), &mut spare)
                    .await?;
            }
            while let Some(h) = in_flight.pop_front() {
                done(join(h).await?, &mut spare);
            }
            Ok::<_, StorageError>(())
        }
        .await;
        if let Err(e) = outcome {
            for h in in_flight {
                h.abort();
            }
            return Err(e);
        }
        let mut req = self
            .client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(k)
            .upload_id(id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            );
        if if_absent {
            req = req.if_none_match("*");
        }
        match req.send().await {
            Ok(_) => Ok(total),
            Err(e) if completed_anyway(&e) => Ok(total),
            Err(e) => Err(put_error(k, e)),
        }
    }

    async fn copy(&self, from: &str, to: &str, size: u64) -> Result<()> {
        let source = format!("{}/{}", self.bucket, encode_key(from));
        if size <= COPY_MAX {
            self.client
                .copy_object()
                .bucket(&self.bucket)
                .key(to)
                .copy_source(&source)
                .send()
                .await
                .map_err(|e| not_found_or(from, "CopyObject", e))?;
            return Ok(());
        }
        let upload = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(to)
            .send()
            .await
            .map_err(|e| io_error("CreateMultipartUpload", to, e))?;
        let id = upload_id(&upload, to)?;
        let mut parts = Vec::new();
        let mut start = 0u64;
        let mut number = 1;
        while start < size {
            let end = (start + COPY_PART).min(size) - 1;
            let out = self
                .client
                .upload_part_copy()
                .bucket(&self.bucket)
                .key(to)
                .upload_id(&id)
                .part_number(number)
                .copy_source(&source)
                .copy_source_range(format!("bytes={start}-{end}"))
                .send()
                .await;
            let out = match out {
                Ok(o) => o,
                Err(e) => {
                    let _ = self
                        .client
                        .abort_multipart_upload()
                        .bucket(&self.bucket)
                        .key(to)
                        .upload_id(&id)
                        .send()
                        .await;
                    return Err(io_error("UploadPartCopy", to, e));
                }
            };
            let etag = out
                .copy_part_result()
                .and_then(|r| r.e_tag())
                .unwrap_or_default();
            parts.push(
                CompletedPart::builder()
                    .part_number(number)
                    .e_tag(etag)
                    .build(),
            );
            start = end + 1;
            number += 1;
        }
        self.client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(to)
            .upload_id(&id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| io_error("CompleteMultipartUpload", to, e))?;
        Ok(())
    }
}

fn body_stream(body: S3Body) -> impl futures_util::Stream<Item = io::Result<Bytes>> + Send {
    futures_util::stream::unfold(body, |mut b| async move {
        b.next().await.map(|r| (r.map_err(body_error), b))
    })
}

/// Multipart transfers under way in this process.
static TRANSFERS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Held by a multipart transfer while it runs. When the last one ends,
/// however it ends, the memory their parts used goes back to the OS: parts
/// read from S3 arrive as many small allocations (hyper's chunks), which
/// glibc keeps in its arenas once freed, so an idle server would stay at
/// the peak of its busiest minute (110 MiB after a few 256 MiB pulls,
/// measured by bench/s3.py). Only the last one trims: while others run
/// they reuse that memory, and a trim would only hold the arenas' locks.
struct Transfer;

impl Transfer {
    fn start() -> Transfer {
        TRANSFERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Transfer
    }
}

impl Drop for Transfer {
    fn drop(&mut self) {
        if TRANSFERS.fetch_sub(1, std::sync::atomic::Ordering::AcqRel) == 1 {
            #[cfg(all(target_os = "linux", target_env = "gnu"))]
            // SAFETY: malloc_trim only walks the allocator's own free lists.
            unsafe {
                libc::malloc_trim(0);
            }
        }
    }
}

/// A body cut off mid-way: the SDK's own error says only "streaming error",
/// its causes say why (connection reset, closed early, …).
/// (No key: whoever reads the stream names what it was reading.)
fn body_error(e: impl std::error::Error) -> io::Error {
    io::Error::other(format!("S3 stopped sending: {}", why(&e)))
}

/// An SDK error as one readable line: its chain of causes, each said once
/// ("dispatch failure: … tcp connect error: Connection refused"), without
/// the Debug dump `DisplayErrorContext` appends, and with no line breaks
/// (a server's error body may have some).
fn why(e: &dyn std::error::Error) -> String {
    let mut said: Vec<String> = Vec::new();
    let mut cause = Some(e);
    while let Some(c) = cause {
        let m = c
            .to_string()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        // Wrappers repeat their cause ("io error: x" then "x"), or say
        // nothing a reader needs ("streaming error").
        if !m.is_empty() && !said.iter().any(|s| s.contains(&m)) {
            said.push(m);
        }
        cause = c.source();
    }
    if said.len() > 1 {
        said.retain(|s| s != "streaming error" && s != "service error");
    }
    said.join(": ")
}

/// Bytes `from..=to` of object `k`; with `etag`, only of that version of it.
async fn get_ranged(
    client: &Client,
    bucket: &str,
    k: &str,
    from: u64,
    to: u64,
    etag: Option<&str>,
) -> std::result::Result<GetObjectOutput, SdkError<GetObjectError, HttpResponse>> {
    client
        .get_object()
        .bucket(bucket)
        .key(k)
        .range(format!("bytes={from}-{to}"))
        .set_if_match(etag.map(String::from))
        .send()
        .await
}

/// How often a read S3 cut off mid-body is taken up again where it stopped.
/// (The SDK retries a request that fails before its body; a body is ours.)
const BODY_RETRIES: u32 = 3;

/// Bytes `from..=to` of object `k`, as a stream that survives S3 cutting
/// the body off: it asks again from the first byte not yet sent, for the
/// same version of the object (`etag`), so the bytes are never mixed from
/// two versions; it fails after BODY_RETRIES cuts. `body` is a first
/// answer's, when there is one.
fn resuming(
    client: Client,
    bucket: String,
    k: String,
    (from, to): (u64, u64),
    body: Option<S3Body>,
    etag: Option<String>,
) -> impl futures_util::Stream<Item = io::Result<Bytes>> + Send {
    struct Read {
        client: Client,
        bucket: String,
        k: String,
        next: u64,
        to: u64,
        body: Option<S3Body>,
        etag: Option<String>,
        cuts: u32,
        over: bool,
    }
    let state = Read {
        client,
        bucket,
        k,
        next: from,
        to,
        body,
        etag,
        cuts: 0,
        over: false,
    };
    futures_util::stream::unfold(state, |mut r| async move {
        loop {
            if r.over || r.next > r.to {
                return None;
            }
            let Some(body) = r.body.as_mut() else {
                match get_ranged(&r.client, &r.bucket, &r.k, r.next, r.to, r.etag.as_deref()).await
                {
                    Ok(out) => r.body = Some(out.body),
                    Err(e) => {
                        r.over = true;
                        let e = io::Error::other(format!("S3 GetObject {}: {}", r.k, sdk_why(&e)));
                        return Some((Err(e), r));
                    }
                }
                continue;
            };
            let cut = match body.next().await {
                Some(Ok(chunk)) => {
                    r.next += chunk.len() as u64;
                    return Some((Ok(chunk), r));
                }
                Some(Err(e)) => body_error(e),
                None => io::Error::other(format!(
                    "S3 ended the body of {} {} bytes early",
                    r.k,
                    r.to + 1 - r.next
                )),
            };
            r.body = None;
            r.cuts += 1;
            if r.cuts > BODY_RETRIES {
                r.over = true;
                return Some((Err(cut), r));
            }
            tracing::debug!(key = %r.k, at = r.next, error = %cut, "S3 read cut off, taken up again");
        }
    })
}

/// One part of a large object, read whole (GET_AHEAD of them at a time), as
/// the chunks it arrived in: no copy into one buffer, no fresh pages.
async fn fetch_range(
    client: Client,
    bucket: String,
    k: String,
    (from, to): (u64, u64),
    etag: Option<String>,
) -> io::Result<Vec<Bytes>> {
    let mut body = std::pin::pin!(resuming(client, bucket, k.clone(), (from, to), None, etag));
    let mut chunks = Vec::new();
    let mut len = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| io::Error::other(format!("reading {k}: {e}")))?;
        len += chunk.len() as u64;
        chunks.push(chunk);
    }
    if len != to - from + 1 {
        return Err(io::Error::other(format!(
            "S3 sent {len} bytes of {k} for {from}-{to}"
        )));
    }
    Ok(chunks)
}

/// Cuts a body into parts of an exact size: chunks are sliced at the part
/// boundary (the rest carried into the next part), so a part never grows
/// past its size and no buffer is reallocated.
struct Chunker {
    body: ByteStream,
    carry: Option<Bytes>,
    done: bool,
}

impl Chunker {
    fn new(body: ByteStream) -> Chunker {
        Chunker {
            body,
            carry: None,
            done: false,
        }
    }

    /// Up to `limit` bytes, contiguous; fewer only at the end of the body.
    /// A part that arrived in one chunk is that chunk; one of several is
    /// copied, as it arrives, into `spare` when that can hold it (a finished
    /// part's buffer: see `upload_parts`), else into a new buffer.
    async fn next(&mut self, limit: usize, spare: &mut Option<BytesMut>) -> Result<Bytes> {
        let mut first: Option<Bytes> = None;
        let mut buf: Option<BytesMut> = None;
        let mut len = 0;
        while len < limit {
            let chunk = match self.carry.take() {
                Some(c) => c,
                None => match self.body.next().await {
                    Some(c) => c?,
                    None => {
                        self.done = true;
                        break;
                    }
                },
            };
            let room = limit - len;
            let piece = if chunk.len() > room {
                self.carry = Some(chunk.slice(room..));
                chunk.slice(..room)
            } else {
                chunk
            };
            len += piece.len();
            if let Some(b) = &mut buf {
                b.extend_from_slice(&piece);
            } else if let Some(f) = first.take() {
                let mut b = match spare.take() {
                    Some(b) if b.capacity() >= limit => b,
                    _ => BytesMut::with_capacity(limit),
                };
                b.clear();
                b.extend_from_slice(&f);
                b.extend_from_slice(&piece);
                buf = Some(b);
            } else {
                first = Some(piece);
            }
        }
        Ok(match buf {
            Some(b) => b.freeze(),
            None => first.unwrap_or_default(),
        })
    }

    /// Nothing more to read.
    fn ended(&self) -> bool {
        self.done && self.carry.is_none()
    }
}

/// A part S3 has taken, and its bytes back (no longer shared once the SDK
/// is done with them, so their buffer can take another part).
struct Uploaded {
    part: CompletedPart,
    bytes: Bytes,
}

async fn upload_part(
    client: Client,
    bucket: String,
    key: String,
    id: String,
    number: i32,
    bytes: Bytes,
) -> Result<Uploaded> {
    let out = client
        .upload_part()
        .bucket(bucket)
        .key(&key)
        .upload_id(id)
        .part_number(number)
        .body(S3Body::from(bytes.clone()))
        .send()
        .await
        .map_err(|e| io_error("UploadPart", &key, e))?;
    let part = CompletedPart::builder()
        .part_number(number)
        .set_e_tag(out.e_tag().map(str::to_string))
        .build();
    Ok(Uploaded { part, bytes })
}

async fn join(h: tokio::task::JoinHandle<Result<Uploaded>>) -> Result<Uploaded> {
    h.await
        .map_err(|e| StorageError::Io(io::Error::other(format!("part upload task: {e}"))))?
}

/// A 200 answer to CompleteMultipartUpload the SDK could not parse, whose
/// body is still a completion and not an `<Error>`: some servers (moto) name
/// the root element `CompleteMultipartUploadResponse`. The object exists.
fn completed_anyway<E>(e: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>) -> bool {
    let Some(raw) = e.raw_response() else {
        return false;
    };
    let body = raw.body().bytes().unwrap_or_default();
    let text = String::from_utf8_lossy(body);
    raw.status().as_u16() == 200
        && text.contains("<CompleteMultipartUpload")
        && !text.contains("<Error>")
}

/// Percent-encodes a key for `x-amz-copy-source`, keeping `/`.
fn encode_key(key: &str) -> String {
    const SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'/')
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(key, SET).to_string()
}

/// `why` of an SDK error, with the HTTP status when S3 answered.
fn sdk_why<E>(e: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>) -> String
where
    E: std::error::Error + Send + Sync + 'static,
{
    if let Some(missing) = no_credentials(e) {
        return missing;
    }
    match status(e) {
        Some(code) => format!("HTTP {code}: {}", why(e)),
        None => why(e),
    }
}

/// No credentials anywhere the SDK looks: said as what to set. (The SDK's
/// own words end at its last resort, "failed to load IMDS session token",
/// which sends an operator off a machine that is not on EC2.)
fn no_credentials(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    use aws_credential_types::provider::error::CredentialsError;
    let mut cause = Some(e);
    while let Some(c) = cause {
        if let Some(
            CredentialsError::CredentialsNotLoaded(_) | CredentialsError::ProviderError(_),
        ) = c.downcast_ref::<CredentialsError>()
        {
            return Some(
                "no S3 credentials found: set storage.s3.access_key and secret_key \
                 (NORA_S3_ACCESS_KEY, NORA_S3_SECRET_KEY), or AWS_ACCESS_KEY_ID and \
                 AWS_SECRET_ACCESS_KEY, or an AWS profile"
                    .into(),
            );
        }
        cause = c.source();
    }
    None
}

/// An S3 time, or the epoch when absent or out of range.
fn s3_time(t: Option<&aws_sdk_s3::primitives::DateTime>) -> SystemTime {
    t.and_then(|t| SystemTime::try_from(*t).ok())
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

fn status<E>(e: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>) -> Option<u16> {
    e.raw_response().map(|r| r.status().as_u16())
}

fn io_error<E>(
    op: &str,
    key: &str,
    e: SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> StorageError
where
    E: std::error::Error + Send + Sync + 'static,
{
    StorageError::Io(io::Error::other(format!("S3 {op} {key}: {}", sdk_why(&e))))
}

/// The id every later part names; a server that answers without one cannot
/// take the upload (an empty id would only fail later, less clearly).
fn upload_id(upload: &CreateMultipartUploadOutput, key: &str) -> Result<String> {
    match upload.upload_id() {
        Some(id) if !id.is_empty() => Ok(id.to_string()),
        _ => Err(StorageError::Io(io::Error::other(format!(
            "S3 CreateMultipartUpload {key}: the answer holds no UploadId"
        )))),
    }
}

fn put_error<E>(key: &str, e: SdkError<E, aws_sdk_s3::config::http::HttpResponse>) -> StorageError
where
    E: std::error::Error + Send + Sync + 'static,
{
    match status(&e) {
        Some(412) => StorageError::AlreadyExists(key.to_string()),
        _ => io_error("PutObject", key, e),
    }
}

fn not_found_or<E>(
    key: &str,
    op: &str,
    e: SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> StorageError
where
    E: std::error::Error + Send + Sync + 'static,
{
    match status(&e) {
        Some(404) => StorageError::NotFound(key.to_string()),
        _ => io_error(op, key, e),
    }
}

#[async_trait]
impl Storage for S3Storage {
    async fn put(&self, key: &str, body: ByteStream) -> Result<u64> {
        self.put_inner(key, body, false).await
    }

    async fn put_if_absent(&self, key: &str, body: ByteStream) -> Result<u64> {
        self.put_inner(key, body, true).await
    }

    async fn get(&self, key: &str, range: Option<ByteRange>) -> Result<GetObject> {
        check_key(key)?;
        let k = self.key(key);
        // Ask for the first part only: small objects come whole in this one
        // request, large ones tell their size and the rest is read ahead.
        let start = range.map_or(0, |r| r.start);
        let first_end = match range {
            Some(r) => r.end.min(start + PART as u64 - 1),
            None => start + PART as u64 - 1,
        };
        let out = match self.get_range(&k, start, first_end).await {
            Ok(out) => out,
            // An empty object has no byte 0.
            Err(e) if range.is_none() && status(&e) == Some(416) => {
                return self.get_whole(key, &k).await;
            }
            Err(e) => {
                return Err(match status(&e) {
                    Some(404) => StorageError::NotFound(key.to_string()),
                    Some(416) => StorageError::InvalidRange,
                    _ => io_error("GetObject", &k, e),
                });
            }
        };
        let size = match out.content_range() {
            Some(cr) => cr
                .rsplit('/')
                .next()
                .and_then(|t| t.parse().ok())
                .ok_or_else(|| {
                    StorageError::Io(io::Error::other(format!("S3 sent Content-Range {cr:?}")))
                })?,
            None => out.content_length().unwrap_or(0).max(0) as u64,
        };
        // HTTP clamps a range that runs past the end; the trait refuses it.
        if range.is_some_and(|r| r.end >= size) {
            return Err(StorageError::InvalidRange);
        }
        let last = range.map_or(size.saturating_sub(1), |r| r.end);
        let etag = out.e_tag().map(String::from);
        let first: ByteStream = Box::pin(resuming(
            self.client.clone(),
            self.bucket.clone(),
            k.clone(),
            (start, first_end.min(last)),
            Some(out.body),
            etag.clone(),
        ));
        if first_end >= last {
            return Ok(GetObject { size, body: first });
        }
        // The rest in parts, in flight while the first streams: one S3
        // connection is slower than what nora can send on. Up to GET_AHEAD
        // parts, each lent from the shared spares. With none free (many
        // pulls at once, or slow readers holding theirs), the rest streams
        // from one more ranged request at the reader's pace instead, holding
        // no part in memory: 16 slow readers took 20 MiB each before.
        let Ok(own) = self.spare.clone().try_acquire_owned() else {
            let rest = resuming(
                self.client.clone(),
                self.bucket.clone(),
                k,
                (first_end + 1, last),
                None,
                etag,
            );
            return Ok(GetObject {
                size,
                body: Box::pin(first.chain(rest)),
            });
        };
        let (tx, rx) = tokio::sync::mpsc::channel::<io::Result<Bytes>>(16);
        let ranges: Vec<(u64, u64)> = (first_end + 1..=last)
            .step_by(PART)
            .map(|from| (from, (from + PART as u64 - 1).min(last)))
            .collect();
        let (client, bucket, spare) =
            (self.client.clone(), self.bucket.clone(), self.spare.clone());
        tokio::spawn(async move {
            // Spawned, so parts keep downloading while a finished one waits
            // for the reader (a plain future would only run when polled).
            let _transfer = Transfer::start();
            let _own = own;
            let mut ranges = ranges.into_iter();
            let mut ahead = std::collections::VecDeque::new();
            loop {
                while ahead.len() < GET_AHEAD {
                    let lent = if ahead.is_empty() {
                        None
                    } else {
                        match spare.clone().try_acquire_owned() {
                            Ok(permit) => Some(permit),
                            Err(_) => break,
                        }
                    };
                    let Some((from, to)) = ranges.next() else {
                        break;
                    };
                    let fetch = fetch_range(
                        client.clone(),
                        bucket.clone(),
                        k.clone(),
                        (from, to),
                        etag.clone(),
                    );
                    ahead.push_back(tokio::spawn(async move { (fetch.await, lent) }));
                }
                let Some(next) = ahead.pop_front() else {
                    return;
                };
                let (part, _lent) = next
                    .await
                    .unwrap_or_else(|e| (Err(io::Error::other(e)), None));
                let sent = match part {
                    Ok(chunks) => {
                        let mut sent = true;
                        for c in chunks {
                            if tx.send(Ok(c)).await.is_err() {
                                sent = false;
                                break;
                            }
                        }
                        sent
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        false
                    }
                };
                // The reader went away, or S3 failed: stop fetching.
                if !sent {
                    for h in ahead {
                        h.abort();
                    }
                    return;
                }
            }
        });
        let rest = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        });
        Ok(GetObject {
            size,
            body: Box::pin(first.chain(rest)),
        })
    }

    async fn stat(&self, key: &str) -> Result<Option<ObjectMeta>> {
        check_key(key)?;
        let k = self.key(key);
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(&k)
            .send()
            .await
        {
            Ok(out) => Ok(Some(ObjectMeta {
                size: out.content_length().unwrap_or(0).max(0) as u64,
                modified: s3_time(out.last_modified()),
            })),
            Err(e) if status(&e) == Some(404) => Ok(None),
            Err(e) => Err(io_error("HeadObject", &k, e)),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<Entry>> {
        self.list_from(prefix, None, usize::MAX).await
    }

    async fn list_after(&self, prefix: &str, after: &str, limit: usize) -> Result<Vec<Entry>> {
        self.list_from(prefix, Some(after), limit).await
    }

    async fn list_deep(&self, prefix: &str) -> Result<Vec<Listed>> {
        self.list_all(prefix).await
    }

    async fn sweep_abandoned(&self) -> Result<usize> {
        self.abort_abandoned(UPLOAD_ABANDONED_AFTER).await
    }

    async fn delete(&self, key: &str) -> Result<()> {
        check_key(key)?;
        let k = self.key(key);
        match self
            .client
            .delete_object()
            .bucket(&self.bucket)
            .key(&k)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if status(&e) == Some(404) => Ok(()),
            Err(e) => Err(io_error("DeleteObject", &k, e)),
        }
    }

    async fn delete_if(&self, key: &str, expected: &Bytes) -> Result<bool> {
        check_key(key)?;
        let k = self.key(key);
        let held = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(&k)
            .send()
            .await
        {
            Ok(held) => held,
            Err(e) if status(&e) == Some(404) => return Ok(false),
            Err(e) => return Err(io_error("GetObject", &k, e)),
        };
        if held.content_length() != i64::try_from(expected.len()).ok() {
            return Ok(false);
        }
        let etag = held.e_tag().map(str::to_string);
        let bytes = held
            .body
            .collect()
            .await
            .map_err(|e| StorageError::Io(io::Error::other(format!("S3 GetObject {k}: {e}"))))?
            .into_bytes();
        if bytes != *expected {
            return Ok(false);
        }
        let Some(etag) = etag else {
            self.delete(key).await?;
            return Ok(true);
        };
        // S3 deletes only the version read (If-Match, since 2025); a
        // server without conditional deletes refuses the header (501) or
        // ignores it, and then the look above was the check.
        let deleted = self
            .client
            .delete_object()
            .bucket(&self.bucket)
            .key(&k)
            .if_match(etag)
            .send()
            .await;
        match deleted {
            Ok(_) => Ok(true),
            Err(e) if matches!(status(&e), Some(412 | 404)) => Ok(false),
            Err(e) if status(&e) == Some(501) => {
                self.delete(key).await?;
                Ok(true)
            }
            Err(e) => Err(io_error("DeleteObject", &k, e)),
        }
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<()> {
        check_key(prefix)?;
        let base = format!("{}/", self.key(prefix));
        loop {
            // List a page, delete it, list again: the listing shrinks as we go.
            let page = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(&base)
                .max_keys(1000)
                .send()
                .await
                .map_err(|e| io_error("ListObjectsV2", &base, e))?;
            let ids: Vec<ObjectIdentifier> = page
                .contents()
                .iter()
                .filter_map(|o| o.key())
                .filter_map(|k| ObjectIdentifier::builder().key(k).build().ok())
                .collect();
            if ids.is_empty() {
                return Ok(());
            }
            let delete = Delete::builder()
                .set_objects(Some(ids))
                .quiet(true)
                .build()
                .map_err(|e| StorageError::Io(io::Error::other(e.to_string())))?;
            let out = self
                .client
                .delete_objects()
                .bucket(&self.bucket)
                .delete(delete)
                .send()
                .await
                .map_err(|e| io_error("DeleteObjects", &base, e))?;
            if let Some(err) = out.errors().first() {
                return Err(StorageError::Io(io::Error::other(format!(
                    "S3 DeleteObjects {}: {}",
                    err.key().unwrap_or_default(),
                    err.message().unwrap_or_default()
                ))));
            }
        }
    }

    async fn rename(&self, from: &str, to: &str) -> Result<()> {
        check_key(from)?;
        check_key(to)?;
        let (f, t) = (self.key(from), self.key(to));
        let size = self
            .stat(from)
            .await?
            .ok_or_else(|| StorageError::NotFound(from.to_string()))?
            .size;
        self.copy(&f, &t, size).await?;
        self.delete(from).await
    }

    async fn ping(&self) -> Result<()> {
        self.client
            .head_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                let why = match status(&e) {
                    Some(404) => "no such bucket".to_string(),
                    Some(403) => "access denied (check the credentials)".to_string(),
                    _ => sdk_why(&e),
                };
                StorageError::Io(io::Error::other(format!(
                    "S3 bucket {}: {why}",
                    self.bucket
                )))
            })
    }
}

mod lazy_chain {
    //! The SDK's default credentials chain (`AWS_*` variables, profiles,
    //! web identity, ECS, EC2 instance metadata) is built asynchronously; nora
    //! opens storage synchronously, so the chain is built on first use.

    use aws_config::default_provider::credentials::DefaultCredentialsChain;
    use aws_config::provider_config::ProviderConfig;
    use aws_sdk_s3::config::{ProvideCredentials, SharedHttpClient};
    use aws_smithy_async::rt::sleep::TokioSleep;

    #[derive(Debug)]
    pub struct LazyDefaultChain {
        http: SharedHttpClient,
        chain: tokio::sync::OnceCell<DefaultCredentialsChain>,
    }

    impl LazyDefaultChain {
        pub fn new(http: SharedHttpClient) -> LazyDefaultChain {
            LazyDefaultChain {
                http,
                chain: tokio::sync::OnceCell::new(),
            }
        }
    }

    impl ProvideCredentials for LazyDefaultChain {
        fn provide_credentials<'a>(
            &'a self,
        ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            aws_credential_types::provider::future::ProvideCredentials::new(async move {
                let chain = self
                    .chain
                    .get_or_init(|| async {
                        let cfg = ProviderConfig::without_region()
                            .with_http_client(self.http.clone())
                            .with_sleep_impl(TokioSleep::new());
                        DefaultCredentialsChain::builder()
                            .configure(cfg)
                            .build()
                            .await
                    })
                    .await;
                chain.provide_credentials().await
            })
        }
    }
}

#[cfg(test)]
#[path = "../../tests/common/s3.rs"]
pub(super) mod test_server;

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::test_server::{ACCESS_KEY, BUCKET, Kind, S3Server, SECRET_KEY};
    use super::*;
    use crate::storage::suite;

    #[test]
    fn an_upload_without_an_id_is_a_named_error() {
        let none = CreateMultipartUploadOutput::builder().build();
        let empty = CreateMultipartUploadOutput::builder().upload_id("").build();
        for answer in [none, empty] {
            let err = upload_id(&answer, "blobs/x").unwrap_err().to_string();
            assert!(err.contains("holds no UploadId"), "{err}");
        }
        let good = CreateMultipartUploadOutput::builder()
            .upload_id("u1")
            .build();
        assert_eq!(upload_id(&good, "blobs/x").unwrap(), "u1");
    }

    fn storage(server: &S3Server, prefix: &str) -> S3Storage {
        S3Storage::new(&config::S3 {
            endpoint: Some(server.endpoint.clone()),
            region: Some("us-east-1".into()),
            bucket: BUCKET.into(),
            prefix: prefix.into(),
            path_style: true,
            access_key: Some(ACCESS_KEY.into()),
            secret_key: Some(SECRET_KEY.into()),
        })
    }

    #[test]
    fn copy_sources_are_encoded() {
        assert_eq!(encode_key("a/b c+d:e"), "a/b%20c%2Bd%3Ae");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_storage_suite_on_s3s_fs() {
        let server = S3Server::start(Kind::S3sFs);
        suite::run_all(Arc::new(storage(&server, "reg"))).await;
        large_objects(&storage(&server, "")).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_storage_suite_on_moto() {
        let server = S3Server::start(Kind::Moto);
        suite::run_all(Arc::new(storage(&server, ""))).await;
        large_objects(&storage(&server, "a/b")).await;
    }

    /// A proxy to `server` that mends moto's ListParts answers: their root
    /// is `ListPartsResponse` where S3's is `ListPartsResult` (renamed in
    /// place, padded with blanks a tag may hold, so no length changes).
    async fn moto_mended(server: &S3Server) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let upstream = server.endpoint.trim_start_matches("http://").to_string();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let upstream = tokio::net::TcpStream::connect(&upstream).await.unwrap();
                let (mut from_client, mut to_client) = client.into_split();
                let (mut from_server, mut to_server) = upstream.into_split();
                tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut from_client, &mut to_server).await;
                });
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 64 * 1024];
                    while let Ok(n) = from_server.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                        let (from, to) = (b"ListPartsResponse", b"ListPartsResult  ");
                        let mut at = 0;
                        while at + from.len() <= n {
                            if &buf[at..at + from.len()] == from {
                                buf[at..at + from.len()].copy_from_slice(to);
                            }
                            at += 1;
                        }
                        if to_client.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        format!("http://{addr}")
    }

    /// A push cut off by kill -9 leaves its multipart upload unfinished,
    /// billed by S3 until aborted: once it is old and has had no part for
    /// as long, the sweep aborts it, never another application's in the
    /// same bucket, nor one still given parts, nor one it cannot judge.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn unfinished_uploads_of_ours_are_aborted_once_abandoned() {
        let server = S3Server::start(Kind::Moto);
        let s = storage(&server, "reg");
        let blob = "reg/blobs/sha256/ab/abcd/data";
        let keys = [blob, "reg/notes/big.bin", "other/blobs/x", "regx/blobs/y"];
        for k in keys {
            let up = s
                .client
                .create_multipart_upload()
                .bucket(BUCKET)
                .key(k)
                .send()
                .await
                .unwrap();
            s.client
                .upload_part()
                .bucket(BUCKET)
                .key(k)
                .upload_id(up.upload_id().unwrap())
                .part_number(1)
                .body(S3Body::from(vec![7u8; 1024]))
                .send()
                .await
                .unwrap();
        }
        let unfinished = || async {
            let page = s
                .client
                .list_multipart_uploads()
                .bucket(BUCKET)
                .send()
                .await
                .unwrap();
            let mut keys: Vec<String> = page
                .uploads()
                .iter()
                .filter_map(|u| u.key().map(str::to_string))
                .collect();
            keys.sort();
            keys
        };
        tokio::time::sleep(Duration::from_millis(1100)).await;
        // moto says every upload began in 2010, and its parts cannot be read.
        assert_eq!(s.abort_abandoned(Duration::from_secs(1)).await.unwrap(), 0);
        let cfg = config::S3 {
            endpoint: Some(moto_mended(&server).await),
            region: Some("us-east-1".into()),
            bucket: BUCKET.into(),
            prefix: "reg".into(),
            path_style: true,
            access_key: Some(ACCESS_KEY.into()),
            secret_key: Some(SECRET_KEY.into()),
        };
        let mended = S3Storage::new(&cfg);
        assert_eq!(
            mended.sweep_abandoned().await.unwrap(),
            0,
            "a part came a moment ago"
        );
        assert_eq!(unfinished().await.len(), 4);
        assert_eq!(
            mended
                .abort_abandoned(Duration::from_secs(1))
                .await
                .unwrap(),
            1
        );
        assert_eq!(
            unfinished().await,
            ["other/blobs/x", "reg/notes/big.bin", "regx/blobs/y"]
        );
    }

    /// s3s-fs does not list unfinished uploads: nothing to sweep, no error.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_server_that_lists_no_uploads_has_nothing_to_sweep() {
        let server = S3Server::start(Kind::S3sFs);
        let s = storage(&server, "reg");
        assert_eq!(s.abort_abandoned(Duration::ZERO).await.unwrap(), 0);
    }

    fn uneven_chunks(data: &[u8]) -> ByteStream {
        let mut items = Vec::new();
        let mut at = 0;
        let mut n = 1;
        while at < data.len() {
            let len = (n * 97_003).min(data.len() - at);
            items.push(Ok(Bytes::copy_from_slice(&data[at..at + len])));
            at += len;
            n = n % 40 + 1;
        }
        Box::pin(futures_util::stream::iter(items))
    }

    async fn read(s: &S3Storage, key: &str, range: Option<ByteRange>) -> Vec<u8> {
        let mut body = s.get(key, range).await.unwrap().body;
        let mut out = Vec::new();
        while let Some(c) = body.next().await {
            out.extend_from_slice(&c.unwrap());
        }
        out
    }

    /// Multipart puts (several parts, the last short), ranges across part
    /// boundaries, a body failing half way leaving nothing, and a rename.
    async fn large_objects(s: &S3Storage) {
        let data: Vec<u8> = (0..(PART * 2 + 12_345) as u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        assert_eq!(
            s.put("big/one", uneven_chunks(&data)).await.unwrap(),
            data.len() as u64
        );
        assert_eq!(read(s, "big/one", None).await, data);
        let r = ByteRange {
            start: PART as u64 - 10,
            end: PART as u64 + 10,
        };
        assert_eq!(
            read(s, "big/one", Some(r)).await,
            &data[r.start as usize..=r.end as usize]
        );
        assert_eq!(
            s.get("big/one", Some(r)).await.unwrap().size,
            data.len() as u64
        );

        let mut items: Vec<std::io::Result<Bytes>> = data
            .chunks(1 << 20)
            .take(12)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        items.push(Err(io::Error::new(io::ErrorKind::ConnectionReset, "gone")));
        let failing: ByteStream = Box::pin(futures_util::stream::iter(items));
        assert!(s.put("big/two", failing).await.is_err());
        assert!(
            s.stat("big/two").await.unwrap().is_none(),
            "nothing visible"
        );

        s.rename("big/one", "big/three").await.unwrap();
        assert!(s.stat("big/one").await.unwrap().is_none());
        assert_eq!(read(s, "big/three", None).await, data);
        assert!(matches!(
            s.put_if_absent("big/three", crate::storage::once(Bytes::from_static(b"x")))
                .await,
            Err(StorageError::AlreadyExists(_))
        ));
        // The multipart form of put_if_absent (a chunk of an upload larger
        // than a part): it lands once, and never replaces what is there.
        assert_eq!(
            s.put_if_absent("big/four", uneven_chunks(&data))
                .await
                .unwrap(),
            data.len() as u64
        );
        let other: Vec<u8> = data.iter().map(|b| b ^ 0xff).collect();
        assert!(matches!(
            s.put_if_absent("big/four", uneven_chunks(&other)).await,
            Err(StorageError::AlreadyExists(_))
        ));
        assert_eq!(read(s, "big/four", None).await, data);
        s.delete_prefix("big").await.unwrap();
        assert!(s.list("big").await.unwrap().is_empty());
    }

    /// Transfers beyond the spare parts go one part at a time (uploads) or
    /// stream (reads, spare 0 here), whole and right, and give back every
    /// part they borrowed.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_transfers_share_the_spare_parts() {
        let server = S3Server::start(Kind::S3sFs);
        let data: Arc<Vec<u8>> = Arc::new(
            (0..(PART * 3 + 777) as u32)
                .map(|i| (i.wrapping_mul(2_246_822_519) >> 11) as u8)
                .collect(),
        );
        for spare in [0, 1, 3] {
            let s = Arc::new(storage(&server, &format!("spare{spare}")).with_spare_parts(spare));
            let puts = (0..3).map(|i| {
                let (s, d) = (s.clone(), data.clone());
                async move { s.put(&format!("o{i}"), uneven_chunks(&d)).await.unwrap() }
            });
            futures_util::future::join_all(puts).await;
            let reads = (0..4).map(|i| {
                let s = s.clone();
                async move { read(&s, &format!("o{}", i % 3), None).await }
            });
            for got in futures_util::future::join_all(reads).await {
                assert!(got == *data, "spare {spare}: bytes differ");
            }
            let r = ByteRange {
                start: 5,
                end: (PART * 3) as u64,
            };
            assert_eq!(read(&s, "o1", Some(r)).await, &data[5..=PART * 3]);
            assert_eq!(s.spare.available_permits(), spare, "all given back");
        }
    }

    /// A part of several chunks is copied into the spare buffer handed in
    /// (not a new one); a spare too small for a part is not used.
    #[tokio::test]
    async fn parts_fill_the_spare_buffer() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let mut chunks = Chunker::new(uneven_chunks(&data));
        let spare = BytesMut::with_capacity(200_000);
        let at = spare.as_ptr();
        let mut slot = Some(spare);
        let part = chunks.next(200_000, &mut slot).await.unwrap();
        assert!(slot.is_none(), "the spare was taken");
        assert_eq!(part.as_ptr(), at, "filled in place");
        assert_eq!(part, &data[..200_000]);
        let mut small = Some(BytesMut::with_capacity(10));
        let rest = chunks.next(200_000, &mut small).await.unwrap();
        assert_eq!(rest, &data[200_000..]);
        assert!(chunks.ended());
    }

    /// The SDK lets go of a part's bytes once UploadPart is done: without
    /// that, no buffer could be filled again and every part would be a
    /// fresh 8 MiB of zeroed pages.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_uploaded_part_gives_its_buffer_back() {
        let server = S3Server::start(Kind::S3sFs);
        let s = storage(&server, "");
        let k = s.key("recycled");
        let upload = s
            .client
            .create_multipart_upload()
            .bucket(&s.bucket)
            .key(&k)
            .send()
            .await
            .unwrap();
        let id = upload_id(&upload, &k).unwrap();
        let mut buf = BytesMut::with_capacity(PART);
        buf.resize(PART, 7);
        let up = upload_part(s.client.clone(), s.bucket.clone(), k, id, 1, buf.freeze())
            .await
            .unwrap();
        assert!(up.part.e_tag().is_some());
        let back = up.bytes.try_into_mut().expect("no one else holds the part");
        assert!(back.capacity() >= PART);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn unusable_buckets_say_why() {
        let server = S3Server::start(Kind::S3sFs);
        let mut cfg = config::S3 {
            endpoint: Some(server.endpoint.clone()),
            region: Some("us-east-1".into()),
            bucket: "missing".into(),
            prefix: String::new(),
            path_style: true,
            access_key: Some(ACCESS_KEY.into()),
            secret_key: Some(SECRET_KEY.into()),
        };
        let e = S3Storage::new(&cfg).ping().await.unwrap_err().to_string();
        assert!(e.contains("no such bucket"), "{e}");
        cfg.bucket = BUCKET.into();
        cfg.secret_key = Some("wrong".into());
        let e = S3Storage::new(&cfg).ping().await.unwrap_err().to_string();
        assert!(e.contains("access denied"), "{e}");
        cfg.endpoint = Some("http://127.0.0.1:1".into());
        let e = S3Storage::new(&cfg).ping().await.unwrap_err().to_string();
        assert!(e.contains("S3 bucket nora"), "{e}");
    }
}

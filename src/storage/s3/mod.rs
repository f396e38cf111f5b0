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
//!
//! Here: the client, its settings, and the trait's small operations. Reads
//! are in `read`, writes and copies in `write`, listings in `listing`, the
//! sweep of abandoned uploads in `abandoned`, and errors made readable in
//! `errors`.

mod abandoned;
mod credentials;
mod errors;
mod listing;
mod read;
mod write;

use std::io;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::{Credentials, Region};
use aws_sdk_s3::types::{Delete, ObjectIdentifier};
use bytes::Bytes;
use tokio::sync::Semaphore;

use self::abandoned::UPLOAD_ABANDONED_AFTER;
use self::errors::{io_error, s3_time, sdk_why, status};
use super::{
    ByteRange, ByteStream, Entry, GetObject, Listed, ObjectMeta, Result, Storage, StorageError,
    check_key,
};
use crate::config;

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
            _ => b = b.credentials_provider(credentials::LazyDefaultChain::new(http)),
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

#[async_trait]
impl Storage for S3Storage {
    async fn put(&self, key: &str, body: ByteStream) -> Result<u64> {
        self.put_inner(key, body, false).await
    }

    async fn put_if_absent(&self, key: &str, body: ByteStream) -> Result<u64> {
        self.put_inner(key, body, true).await
    }

    async fn get(&self, key: &str, range: Option<ByteRange>) -> Result<GetObject> {
        self.read_object(key, range).await
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

#[cfg(test)]
#[path = "../../../tests/common/s3.rs"]
pub(super) mod test_server;

#[cfg(test)]
mod faults;
#[cfg(test)]
mod tests;

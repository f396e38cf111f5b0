//! What a killed push leaves on S3: unfinished multipart uploads, which
//! S3 keeps (and bills) until they are aborted.

use std::time::{Duration, SystemTime};

use super::S3Storage;
use super::errors::{io_error, s3_time, sdk_why, status};
use crate::storage::{Result, layout};

/// When an unfinished multipart upload is a killed process's: started a day
/// ago and no part for a day. One put may stream for hours (a big layer on a
/// slow link), 8 MiB a part; AWS's lifecycle examples abort one to seven
/// days after the start.
pub(super) const UPLOAD_ABANDONED_AFTER: Duration = Duration::from_secs(24 * 3600);

impl S3Storage {
    /// `sweep_abandoned`: the unfinished multipart uploads of nora's keys
    /// (blobs and repositories, under the prefix; a bucket may hold others')
    /// started, and last given a part, more than `age` ago, aborted.
    pub(super) async fn abort_abandoned(&self, age: Duration) -> Result<usize> {
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
}

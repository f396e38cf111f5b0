//! Writes: a small object in one PutObject, a large one as a multipart
//! upload streamed part by part, and server-side copies.

use std::io;

use aws_sdk_s3::Client;
use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::operation::create_multipart_upload::CreateMultipartUploadOutput;
use aws_sdk_s3::primitives::ByteStream as S3Body;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;

use super::errors::{io_error, not_found_or, status};
use super::{COPY_MAX, COPY_PART, PART, PUT_AHEAD, S3Storage, Transfer};
use crate::storage::{ByteStream, Result, Storage, StorageError, check_key};

impl S3Storage {
    pub(super) async fn put_inner(
        &self,
        key: &str,
        body: ByteStream,
        if_absent: bool,
    ) -> Result<u64> {
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

    pub(super) async fn copy(&self, from: &str, to: &str, size: u64) -> Result<()> {
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

/// Cuts a body into parts of an exact size: chunks are sliced at the part
/// boundary (the rest carried into the next part), so a part never grows
/// past its size and no buffer is reallocated.
pub(super) struct Chunker {
    body: ByteStream,
    carry: Option<Bytes>,
    done: bool,
}

impl Chunker {
    pub(super) fn new(body: ByteStream) -> Chunker {
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
    pub(super) async fn next(
        &mut self,
        limit: usize,
        spare: &mut Option<BytesMut>,
    ) -> Result<Bytes> {
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
    pub(super) fn ended(&self) -> bool {
        self.done && self.carry.is_none()
    }
}

/// A part S3 has taken, and its bytes back (no longer shared once the SDK
/// is done with them, so their buffer can take another part).
pub(super) struct Uploaded {
    pub(super) part: CompletedPart,
    pub(super) bytes: Bytes,
}

pub(super) async fn upload_part(
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
pub(super) fn encode_key(key: &str) -> String {
    const SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'/')
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(key, SET).to_string()
}

/// The id every later part names; a server that answers without one cannot
/// take the upload (an empty id would only fail later, less clearly).
pub(super) fn upload_id(upload: &CreateMultipartUploadOutput, key: &str) -> Result<String> {
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

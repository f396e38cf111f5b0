//! Reads: the first part in one request, the rest read ahead in parts,
//! and a body S3 cuts off taken up again where it stopped.

use std::io;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::operation::get_object::{GetObjectError, GetObjectOutput};
use aws_sdk_s3::primitives::ByteStream as S3Body;
use bytes::Bytes;
use futures_util::StreamExt;

use super::errors::{body_error, io_error, not_found_or, sdk_why, status};
use super::{GET_AHEAD, PART, S3Storage, Transfer};
use crate::storage::{ByteRange, ByteStream, GetObject, Result, StorageError, check_key};

impl S3Storage {
    /// `Storage::get`.
    pub(super) async fn read_object(
        &self,
        key: &str,
        range: Option<ByteRange>,
    ) -> Result<GetObject> {
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

    pub(super) async fn get_range(
        &self,
        k: &str,
        from: u64,
        to: u64,
    ) -> std::result::Result<GetObjectOutput, SdkError<GetObjectError, HttpResponse>> {
        get_ranged(&self.client, &self.bucket, k, from, to, None).await
    }

    pub(super) async fn get_whole(&self, key: &str, k: &str) -> Result<GetObject> {
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
}

fn body_stream(body: S3Body) -> impl futures_util::Stream<Item = io::Result<Bytes>> + Send {
    futures_util::stream::unfold(body, |mut b| async move {
        b.next().await.map(|r| (r.map_err(body_error), b))
    })
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

//! Writing a body to a file: batches of chunks, each batch one trip to
//! the blocking pool.

use std::io::{self, ErrorKind, IoSlice, Write};

use bytes::Bytes;
use futures_util::StreamExt;

use super::WRITE_BATCH;
use crate::storage::ByteStream;

/// Writes the chunks of `body` as they arrived (no copy into a buffer), a
/// batch of about `WRITE_BATCH` bytes per trip to the blocking pool, the next
/// batch gathering from the network while the last one is written.
pub(super) async fn write_batches(
    file: std::fs::File,
    mut body: ByteStream,
    fsync: bool,
) -> io::Result<u64> {
    let file = std::sync::Arc::new(file);
    let mut written = 0u64;
    let mut writing: Option<tokio::task::JoinHandle<io::Result<()>>> = None;
    let mut batch: Vec<Bytes> = Vec::new();
    let mut batch_len = 0;
    loop {
        let next = body.next().await.transpose()?;
        let done = next.is_none();
        if let Some(chunk) = next {
            written += chunk.len() as u64;
            batch_len += chunk.len();
            batch.push(chunk);
        }
        if batch_len >= WRITE_BATCH || (done && !batch.is_empty()) {
            if let Some(w) = writing.take() {
                w.await.map_err(io::Error::other)??;
            }
            let (f, chunks) = (file.clone(), std::mem::take(&mut batch));
            batch_len = 0;
            writing = Some(tokio::task::spawn_blocking(move || {
                write_chunks(&f, &chunks)
            }));
        }
        if done {
            break;
        }
    }
    if let Some(w) = writing {
        w.await.map_err(io::Error::other)??;
    }
    if fsync {
        tokio::task::spawn_blocking(move || file.sync_data())
            .await
            .map_err(io::Error::other)??;
    }
    Ok(written)
}

/// `write_all` for a list of buffers, as few `writev(2)` calls as it takes.
fn write_chunks(mut file: &std::fs::File, chunks: &[Bytes]) -> io::Result<()> {
    let mut slices: Vec<IoSlice> = chunks.iter().map(|c| IoSlice::new(c)).collect();
    let mut rest = &mut slices[..];
    IoSlice::advance_slices(&mut rest, 0);
    while !rest.is_empty() {
        match file.write_vectored(rest) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut rest, n),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

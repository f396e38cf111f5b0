//! Reading a blob as a stream: from the page cache inline when it is
//! there, from the disk on the blocking pool when not.

use std::io::{self, ErrorKind, Read};

use bytes::Bytes;

use super::READ_CHUNK;
use crate::storage::ByteStream;

/// Streams `len` bytes of `file` from `start`, each chunk read by one blocking
/// call straight into the buffer that is sent: no intermediate copy, and at
/// most one chunk in memory per reader.
type ChunkRead = tokio::task::JoinHandle<io::Result<(std::fs::File, Vec<u8>)>>;

/// Reads `want` bytes at `pos` on the blocking pool.
fn read_chunk(mut file: std::fs::File, pos: u64, want: u64) -> ChunkRead {
    tokio::task::spawn_blocking(move || {
        use std::io::{Seek, SeekFrom};
        file.seek(SeekFrom::Start(pos))?;
        let mut buf = Vec::with_capacity(want as usize);
        (&mut file).take(want).read_to_end(&mut buf)?;
        Ok((file, buf))
    })
}

/// Reads up to `want` bytes at `pos` inline, if the page cache holds them:
/// preadv2 with RWF_NOWAIT never waits for the disk, it answers EAGAIN
/// instead. A cached read is a memory copy of microseconds, cheaper than
/// handing it to a blocking thread and waking the runtime again (a third of
/// the server's CPU per blob pull). An older kernel or a filesystem without
/// RWF_NOWAIT answers an error, and the blocking path takes over.
#[cfg(target_os = "linux")]
fn read_cached(file: &std::fs::File, pos: u64, want: usize) -> Option<Vec<u8>> {
    use std::os::fd::AsRawFd;
    let mut buf = Vec::<u8>::with_capacity(want);
    let iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: want,
    };
    // SAFETY: the one iovec covers the `want` bytes of buf's spare capacity,
    // which the kernel writes; the length is set to what it wrote, no more.
    let n = unsafe {
        libc::preadv2(
            file.as_raw_fd(),
            &iov,
            1,
            pos as libc::off_t,
            libc::RWF_NOWAIT,
        )
    };
    if n <= 0 {
        return None;
    }
    // SAFETY: the kernel initialised these n <= want bytes.
    unsafe { buf.set_len(n as usize) };
    Some(buf)
}

/// Elsewhere every piece goes through the blocking pool.
#[cfg(not(target_os = "linux"))]
fn read_cached(_: &std::fs::File, _: u64, _: usize) -> Option<Vec<u8>> {
    None
}

/// Where the next piece of a file stream comes from.
enum Next {
    /// Nothing in flight: try the page cache first.
    Ready(std::fs::File),
    /// A read on the blocking pool, started ahead.
    Reading(ChunkRead),
}

/// The bytes of `file` from `start`, `len` of them, in READ_CHUNK pieces.
/// Pieces in the page cache are read inline; a piece that needs the disk is
/// read on the blocking pool, and then the next one is started while the
/// current one is sent (disk and socket overlap, memory stays at two chunks,
/// and no blocking thread is held while a slow client drains the socket).
/// A read started ahead that is already done when it is wanted found its
/// bytes in the cache, so the stream goes back to inline reads: one miss
/// (a page the kernel reclaimed, or one it had locked for a moment) must
/// not put the rest of a large blob on the blocking pool.
pub(super) fn file_stream(file: std::fs::File, start: u64, len: u64) -> ByteStream {
    Box::pin(futures_util::stream::try_unfold(
        (Next::Ready(file), start, len),
        |(next, pos, left)| async move {
            if left == 0 {
                return Ok(None);
            }
            let want = left.min(READ_CHUNK as u64);
            let (file, buf, read_ahead) = match next {
                Next::Ready(file) => match read_cached(&file, pos, want as usize) {
                    Some(buf) => (file, buf, false),
                    None => {
                        let (file, buf) = read_chunk(file, pos, want)
                            .await
                            .map_err(io::Error::other)??;
                        (file, buf, true)
                    }
                },
                Next::Reading(r) => {
                    let waited = !r.is_finished();
                    let (file, buf) = r.await.map_err(io::Error::other)??;
                    (file, buf, waited)
                }
            };
            if buf.is_empty() {
                return Err(io::Error::new(
                    ErrorKind::UnexpectedEof,
                    "object shrank while being read",
                ));
            }
            let n = buf.len() as u64;
            let (pos, left) = (pos + n, left - n);
            let next = if read_ahead && left > 0 {
                Next::Reading(read_chunk(file, pos, left.min(READ_CHUNK as u64)))
            } else {
                Next::Ready(file)
            };
            Ok(Some((Bytes::from(buf), (next, pos, left))))
        },
    ))
}

//! A stream adapter that hashes and counts bytes as they pass, so digests are
//! known the moment the last byte is stored, without reading anything twice.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::Stream;

use super::digest::{Digest, Hasher};
use crate::storage::ByteStream;

pub struct Hashing {
    inner: ByteStream,
    state: Arc<Mutex<State>>,
}

struct State {
    hasher: Option<Hasher>,
    len: u64,
}

/// What a `Hashing` stream saw, readable after it is exhausted.
#[derive(Clone)]
pub struct Tally(Arc<Mutex<State>>);

impl Tally {
    /// The digest and length of everything that flowed through.
    pub fn finish(&self) -> Option<(Digest, u64)> {
        let mut st = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let len = st.len;
        st.hasher.take().map(|h| (h.finish(), len))
    }
}

pub fn hashing(inner: ByteStream, hasher: Hasher) -> (ByteStream, Tally) {
    let state = Arc::new(Mutex::new(State {
        hasher: Some(hasher),
        len: 0,
    }));
    let tally = Tally(state.clone());
    (Box::pin(Hashing { inner, state }), tally)
}

impl Stream for Hashing {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let item = self.inner.as_mut().poll_next(cx);
        if let Poll::Ready(Some(Ok(chunk))) = &item {
            let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
            st.len += chunk.len() as u64;
            if let Some(h) = st.hasher.as_mut() {
                h.update(chunk);
            }
        }
        item
    }
}

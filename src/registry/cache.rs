//! A small cache of manifest bytes by digest. Content-addressed bytes never
//! change, so entries never go stale; only links (tags, revisions) are read
//! from storage on every request, which keeps deletes and other instances
//! authoritative.

use std::collections::HashMap;
use std::sync::Mutex;

use bytes::Bytes;

use super::digest::Digest;

pub struct ManifestCache {
    budget: usize,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    bytes: usize,
    map: HashMap<Digest, Bytes>,
}

impl ManifestCache {
    /// A cache holding at most `budget` bytes of manifests.
    pub fn new(budget: usize) -> Self {
        ManifestCache {
            budget,
            inner: Mutex::new(Inner::default()),
        }
    }

    pub fn get(&self, d: &Digest) -> Option<Bytes> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.map.get(d).cloned()
    }

    pub fn insert(&self, d: &Digest, data: Bytes) {
        if data.len() > self.budget / 4 {
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if inner.bytes + data.len() > self.budget {
            // Crude but bounded: start over. Refilling costs one read per manifest.
            inner.map.clear();
            inner.bytes = 0;
        }
        inner.bytes += data.len();
        if let Some(old) = inner.map.insert(d.clone(), data) {
            inner.bytes -= old.len();
        }
    }
}

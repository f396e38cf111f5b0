//! Listings: by name (a delimiter, a page at a time) and deep (every
//! object under a prefix, with its size).

use super::S3Storage;
use super::errors::{io_error, s3_time};
use crate::storage::{Entry, Listed, ObjectMeta, Result, check_key};

impl S3Storage {
    /// The entries under `prefix` whose names sort after `after` (all when
    /// None), at most `limit`, in order. The listing starts at `after`
    /// (StartAfter) and stops once the page is full: a tags page of a
    /// repository of 50,000 tags is one request, not 50.
    pub(super) async fn list_from(
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
    pub(super) fn listing_base(&self, prefix: &str) -> Result<String> {
        let prefix = prefix.trim_end_matches('/');
        if prefix.is_empty() {
            return Ok(self.prefix.clone());
        }
        check_key(prefix)?;
        Ok(format!("{}/", self.key(prefix)))
    }

    /// `list_deep`: one listing without a delimiter, 1,000 keys a page.
    pub(super) async fn list_all(&self, prefix: &str) -> Result<Vec<Listed>> {
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
}

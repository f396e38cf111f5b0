//! Tags of a repository and the catalog of repositories, with the spec's
//! `n` / `last` pagination.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use futures_util::{StreamExt, TryStreamExt, stream};

use super::error::{Code, RegistryError, Result};
use super::{PARALLEL_READS, Registry};
use crate::storage::{Entry, layout};

/// One page of a sorted listing, and whether more follow.
#[derive(Debug)]
pub struct Page {
    pub items: Vec<String>,
    pub more: bool,
}

/// Cuts a sorted list after `last` (exclusive), at most `n` items.
pub fn paginate(all: Vec<String>, n: Option<usize>, last: Option<&str>) -> Page {
    let start = match last {
        Some(l) => all.partition_point(|x| x.as_str() <= l),
        None => 0,
    };
    let rest = &all[start..];
    match n {
        Some(n) if n < rest.len() => Page {
            items: rest[..n].to_vec(),
            more: n > 0,
        },
        _ => Page {
            items: rest.to_vec(),
            more: false,
        },
    }
}

/// The tags of a listing of a tags directory: its objects (each a tag's
/// link).
fn tag_names(entries: Vec<Entry>) -> Vec<String> {
    entries
        .into_iter()
        .filter_map(|e| match e {
            Entry::Object(t) => Some(t),
            Entry::Prefix(_) => None,
        })
        .collect()
}

impl Registry {
    /// Every tag of `name`, sorted; NAME_UNKNOWN when the repository is absent.
    pub async fn tags(&self, name: &str) -> Result<Vec<String>> {
        let mut tags = tag_names(self.storage.list(&layout::tags(name)).await?);
        self.known_unless(tags.is_empty(), name).await?;
        tags.sort();
        Ok(tags)
    }

    /// NAME_UNKNOWN when no tag was found (`empty`) and the repository does
    /// not exist: a repository whose tags were all deleted is still known.
    async fn known_unless(&self, empty: bool, name: &str) -> Result<()> {
        if empty && !self.repository_exists(name).await? {
            return Err(RegistryError::new(
                Code::NameUnknown,
                format!("repository {name:?} is unknown"),
            ));
        }
        Ok(())
    }

    /// One page of `name`'s tags: at most `n` after `last`. With `n`, only
    /// the page is listed where the backend can start a listing at a name
    /// (S3: one request for a page of a repository of 50,000 tags).
    pub async fn tags_page(
        &self,
        name: &str,
        n: Option<usize>,
        last: Option<&str>,
    ) -> Result<Page> {
        let Some(n) = n else {
            return Ok(paginate(self.tags(name).await?, None, last));
        };
        let listed = self
            .storage
            .list_after(&layout::tags(name), last.unwrap_or(""), n.saturating_add(1))
            .await?;
        let mut tags = tag_names(listed);
        self.known_unless(tags.is_empty(), name).await?;
        let more = n > 0 && tags.len() > n;
        tags.truncate(n);
        Ok(Page { items: tags, more })
    }

    /// Every repository name, sorted.
    pub async fn catalog(&self) -> Result<Vec<String>> {
        Ok(self.catalog_page(None, None).await?.items)
    }

    /// One page of the catalog: at most `n` names after `last`, in order.
    ///
    /// Repositories are directories of directories, so the names come from a
    /// walk; it visits subtrees in the order of the names they hold and stops
    /// once the page is full, and it skips those wholly before `last`. A page
    /// of a large catalog thus costs about one listing per name on it, not
    /// one per repository in the store (on S3, a request each). Up to
    /// PARALLEL_READS directories are listed at once.
    pub async fn catalog_page(&self, n: Option<usize>, last: Option<&str>) -> Result<Page> {
        if n == Some(0) {
            return Ok(Page {
                items: Vec::new(),
                more: false,
            });
        }
        let want = n.map(|n| n.saturating_add(1));
        let mut out = Vec::new();
        // A subtree's key is its name; every name under it is that key or
        // starts with key + "/", so no name in it sorts before the key. A
        // repository found is put back as a `Name` and shown when it is the
        // smallest key left: the names come out in order, however many
        // subtrees were listed at once.
        let mut pending = BinaryHeap::from([Reverse((String::new(), Walk::Tree))]);
        while want.is_none_or(|w| out.len() < w) {
            let Some(Reverse((name, walk))) = pending.pop() else {
                break;
            };
            if walk == Walk::Name {
                if last.is_none_or(|l| name.as_str() > l) {
                    out.push(name);
                }
                continue;
            }
            let room = want.map_or(PARALLEL_READS, |w| (w - out.len()).min(PARALLEL_READS));
            let mut batch = vec![name];
            while batch.len() < room && matches!(pending.peek(), Some(Reverse((_, Walk::Tree)))) {
                batch.extend(pending.pop().map(|Reverse((name, _))| name));
            }
            batch.retain(|name| !last.is_some_and(|l| wholly_before(name, l)));
            let listed: Vec<(String, Vec<Entry>)> = stream::iter(batch)
                .map(|name| async move {
                    let prefix = if name.is_empty() {
                        layout::REPOSITORIES.to_string()
                    } else {
                        layout::repository(&name)
                    };
                    let entries = self.storage.list(&prefix).await?;
                    Ok::<_, RegistryError>((name, entries))
                })
                .buffer_unordered(PARALLEL_READS)
                .try_collect()
                .await?;
            for (name, entries) in listed {
                let mut is_repository = false;
                for entry in entries {
                    let Entry::Prefix(component) = entry else {
                        continue;
                    };
                    if layout::is_repository_data(&component) {
                        is_repository = is_repository || component == "_manifests";
                    } else if name.is_empty() {
                        pending.push(Reverse((component, Walk::Tree)));
                    } else {
                        pending.push(Reverse((format!("{name}/{component}"), Walk::Tree)));
                    }
                }
                if is_repository {
                    pending.push(Reverse((name, Walk::Name)));
                }
            }
        }
        let more = want.is_some_and(|w| out.len() >= w);
        if more {
            out.pop();
        }
        Ok(Page { items: out, more })
    }
}

/// What the catalog's walk holds under a key.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum Walk {
    /// A repository found, shown in its turn.
    Name,
    /// A directory not listed yet.
    Tree,
}

/// Whether every name in the subtree `name` (itself and `name/...`) sorts at
/// or before `last`: they all sort below `name` + "0", '/' being the character
/// just before '0'.
fn wholly_before(name: &str, last: &str) -> bool {
    !name.is_empty() && format!("{name}0").as_str() <= last
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::registry::testing::{Watched, registry};
    use crate::storage::fs::FsStorage;

    fn v(xs: &[&str]) -> Vec<String> {
        xs.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn pagination() {
        let all = v(&["a", "b", "c", "d"]);
        let p = paginate(all.clone(), Some(2), None);
        assert_eq!(p.items, v(&["a", "b"]));
        assert!(p.more);
        let p = paginate(all.clone(), Some(2), Some("b"));
        assert_eq!(p.items, v(&["c", "d"]));
        assert!(!p.more);
        let p = paginate(all.clone(), Some(0), None);
        assert!(p.items.is_empty() && !p.more);
        let p = paginate(all.clone(), None, Some("bb"));
        assert_eq!(p.items, v(&["c", "d"]));
        let p = paginate(all, Some(10), None);
        assert_eq!(p.items.len(), 4);
        assert!(!p.more);
    }

    /// Names whose order is not their tree's: "a-c" and "a.x" sort between
    /// "a" and "a/b", "a0" and "a_b" after every "a/...".
    const NAMES: &[&str] = &[
        "a", "a-c", "a.x", "a/b", "a/b-c", "a/b/c", "a/b0", "a0", "a_b", "ab/c", "b", "z/y/x",
    ];

    async fn store_of(dir: &std::path::Path, names: &[&str]) -> (Registry, Arc<Watched>) {
        let counter = Arc::new(Watched::new(FsStorage::open(dir, false).unwrap()));
        let reg = Registry::new(counter.clone(), Duration::from_secs(3600));
        for name in names {
            reg.storage
                .put_bytes(&layout::tag(name, "v1"), "x".into())
                .await
                .unwrap();
        }
        (reg, counter)
    }

    #[tokio::test]
    async fn catalog_pages_are_the_sorted_names_cut() {
        let dir = tempfile::tempdir().unwrap();
        let (reg, _) = store_of(dir.path(), NAMES).await;
        let all = reg.catalog().await.unwrap();
        let mut sorted = v(NAMES);
        sorted.sort();
        assert_eq!(all, sorted);
        let lasts = [
            None,
            Some(""),
            Some("a/"),
            Some("a/b/"),
            Some("aa"),
            Some("zz"),
        ];
        for last in lasts.into_iter().chain(NAMES.iter().map(|n| Some(*n))) {
            for n in [None, Some(0), Some(1), Some(2), Some(3), Some(20)] {
                let want = paginate(all.clone(), n, last);
                let got = reg.catalog_page(n, last).await.unwrap();
                assert_eq!(
                    (&got.items, got.more),
                    (&want.items, want.more),
                    "n={n:?} last={last:?}"
                );
            }
        }
    }

    #[tokio::test]
    async fn tags_pages_are_the_sorted_tags_cut() {
        let dir = tempfile::tempdir().unwrap();
        let reg = registry(dir.path());
        let tags = ["v1", "v10", "v2", "latest", "a-b", "a_b", "a.b", "A", "z9"];
        for t in tags {
            reg.storage
                .put_bytes(&layout::tag("r", t), "x".into())
                .await
                .unwrap();
        }
        let all = reg.tags("r").await.unwrap();
        for last in [
            None,
            Some(""),
            Some("a"),
            Some("v1"),
            Some("v2"),
            Some("zz"),
        ]
        .into_iter()
        .chain(tags.iter().map(|t| Some(*t)))
        {
            for n in [None, Some(0), Some(1), Some(2), Some(20)] {
                let want = paginate(all.clone(), n, last);
                let got = reg.tags_page("r", n, last).await.unwrap();
                assert_eq!(
                    (&got.items, got.more),
                    (&want.items, want.more),
                    "n={n:?} last={last:?}"
                );
            }
        }
        let unknown = reg.tags_page("nope", Some(2), None).await.unwrap_err();
        assert_eq!(unknown.code, Code::NameUnknown);
    }

    #[tokio::test]
    async fn a_catalog_page_lists_about_as_much_as_it_shows() {
        let dir = tempfile::tempdir().unwrap();
        let names: Vec<String> = (0..400)
            .map(|i| format!("org-{}/app-{}", i / 20, i % 20))
            .collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let (reg, counter) = store_of(dir.path(), &names).await;
        let before = counter.lists();
        let page = reg
            .catalog_page(Some(5), Some("org-7/app-3"))
            .await
            .unwrap();
        assert_eq!(page.items[0], "org-7/app-4");
        assert!(page.more);
        // The root, org-7, `last` itself, each name shown, and one that says more follow.
        assert!(
            counter.lists() - before <= 10,
            "{} listings for 5 names",
            counter.lists() - before
        );
        let before = counter.lists();
        assert_eq!(reg.catalog().await.unwrap().len(), 400);
        assert!(counter.lists() - before > 400);
    }
}

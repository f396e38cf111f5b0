//! Tags of a repository and the catalog of repositories, with the spec's
//! `n` / `last` pagination.

use super::Registry;
use super::error::{Code, RegistryError, Result};
use crate::storage::{Entry, layout};

/// One page of a sorted listing, and whether more follow.
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

impl Registry {
    /// Every tag of `name`, sorted; NAME_UNKNOWN when the repository is absent.
    pub async fn tags(&self, name: &str) -> Result<Vec<String>> {
        let mut tags: Vec<String> = self
            .storage
            .list(&layout::tags(name))
            .await?
            .into_iter()
            .filter_map(|e| match e {
                Entry::Object(t) => Some(t),
                Entry::Prefix(_) => None,
            })
            .collect();
        if tags.is_empty() && !self.repository_exists(name).await? {
            return Err(RegistryError::new(
                Code::NameUnknown,
                format!("repository {name:?} is unknown"),
            ));
        }
        tags.sort();
        Ok(tags)
    }

    /// Every repository name, sorted.
    pub async fn catalog(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let mut pending = vec![String::new()];
        while let Some(name) = pending.pop() {
            let prefix = if name.is_empty() {
                layout::REPOSITORIES.to_string()
            } else {
                layout::repository(&name)
            };
            let mut is_repository = false;
            for entry in self.storage.list(&prefix).await? {
                let Entry::Prefix(component) = entry else {
                    continue;
                };
                if layout::is_repository_data(&component) {
                    is_repository = is_repository || component == "_manifests";
                } else if name.is_empty() {
                    pending.push(component);
                } else {
                    pending.push(format!("{name}/{component}"));
                }
            }
            if is_repository {
                out.push(name);
            }
        }
        out.sort();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}

//! Retention: declarative rules that remove old tags.
//!
//! Each rule's `match` is a glob on `REPOSITORY:TAG` (see refglob.rs:
//! `**:dev-*` is every repository's dev-* tags; `*` stays within one path
//! component of the repository, `**` crosses `/`). How rules combine:
//! - a tag no rule matches is kept;
//! - a tag matched by any `protect = true` rule is kept, whatever else matches;
//! - otherwise the tag is removed only if *every* rule matching it would
//!   remove it (the most protective rule wins).
//!
//! A rule removes a tag when both of its limits say so: `keep_last = N` keeps
//! the N most recently pushed tags *of each repository* that the rule matches;
//! `older_than = "90d"` keeps tags pushed more recently than that. A rule with
//! only one limit applies only that one.
//!
//! Removing a tag also removes its manifest when no other tag and no index of
//! the repository still points at it (with the referrers attached to it), so
//! the next garbage collection frees the blobs.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::Registry;
use super::digest::Digest;
use super::error::{Code, RegistryError, Result};
use super::images::ImageRow;
use super::manifest::{self, Reference};
use super::manifests::Ref;
use super::refglob::RefGlob;

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    #[serde(rename = "match")]
    pub pattern: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_last: Option<usize>,
    #[serde(
        default,
        with = "crate::config::opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub older_than: Option<Duration>,
    #[serde(default)]
    pub protect: bool,
}

/// A tag that retention removes, and which rule decided it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Removal {
    pub repository: String,
    pub tag: String,
    pub digest: String,
    pub rule: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RetentionReport {
    pub dry_run: bool,
    pub tags_scanned: u64,
    pub removals: Vec<Removal>,
    pub manifests_removed: u64,
}

/// Checks rules once, at config load: globs compile, each rule does something.
pub fn validate(rules: &[Rule]) -> std::result::Result<(), String> {
    for (i, r) in rules.iter().enumerate() {
        RefGlob::new(&r.pattern).map_err(|e| format!("retention rule {}: {e}", i + 1))?;
        if !r.protect && r.keep_last.is_none() && r.older_than.is_none() {
            return Err(format!(
                "retention rule {} ({:?}) needs keep_last, older_than or protect = true",
                i + 1,
                r.pattern
            ));
        }
    }
    Ok(())
}

fn describe(i: usize, r: &Rule) -> String {
    let mut s = format!("rule {} (match {:?}", i + 1, r.pattern);
    if let Some(n) = r.keep_last {
        s.push_str(&format!(", keep_last {n}"));
    }
    if let Some(d) = r.older_than {
        s.push_str(&format!(", older_than {}", humantime::format_duration(d)));
    }
    s.push(')');
    s
}

/// Decides which of `images` the rules remove, as of `now` (Unix seconds).
pub fn plan(rules: &[Rule], images: &[ImageRow], now: u64) -> Result<Vec<Removal>> {
    let matchers: Vec<RefGlob> = rules
        .iter()
        .map(|r| RefGlob::new(&r.pattern))
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| RegistryError::new(Code::ManifestInvalid, format!("retention: {e}")))?;
    // Per rule and repository: the rule's matching tags, newest first.
    let mut rank: BTreeMap<(usize, &str), Vec<(u64, &str)>> = BTreeMap::new();
    for img in images {
        for (i, m) in matchers.iter().enumerate() {
            if m.is_match(&img.repository, &img.tag) {
                rank.entry((i, &img.repository))
                    .or_default()
                    .push((img.pushed, &img.tag));
            }
        }
    }
    for list in rank.values_mut() {
        list.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
    }
    let mut out = Vec::new();
    for img in images {
        let matching: Vec<usize> = (0..rules.len())
            .filter(|&i| matchers[i].is_match(&img.repository, &img.tag))
            .collect();
        if matching.is_empty() || matching.iter().any(|&i| rules[i].protect) {
            continue;
        }
        let removes = |i: usize| {
            let r = &rules[i];
            let beyond_last = r.keep_last.is_none_or(|n| {
                let list = &rank[&(i, img.repository.as_str())];
                list.iter()
                    .position(|(_, t)| *t == img.tag)
                    .is_some_and(|pos| pos >= n)
            });
            let old = r
                .older_than
                .is_none_or(|d| now.saturating_sub(img.pushed) > d.as_secs());
            beyond_last && old
        };
        if matching.iter().all(|&i| removes(i)) {
            out.push(Removal {
                repository: img.repository.clone(),
                tag: img.tag.clone(),
                digest: img.digest.clone(),
                rule: describe(matching[0], &rules[matching[0]]),
            });
        }
    }
    Ok(out)
}

impl Registry {
    pub async fn retention(&self, rules: &[Rule], dry_run: bool) -> Result<RetentionReport> {
        let images = self.images().await?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let removals = plan(rules, &images, now)?;
        let mut report = RetentionReport {
            dry_run,
            tags_scanned: images.len() as u64,
            removals,
            manifests_removed: 0,
        };
        if dry_run {
            return Ok(report);
        }
        for r in &report.removals {
            match self
                .manifest_delete(&r.repository, &Ref::Tag(r.tag.clone()))
                .await
            {
                Ok(()) => {}
                Err(e) if e.code == Code::ManifestUnknown => continue, // gone meanwhile
                Err(e) => return Err(e),
            }
            if let Ok(d) = r.digest.parse::<Digest>()
                && self.remove_if_orphaned(&r.repository, &d).await?
            {
                report.manifests_removed += 1;
            }
        }
        Ok(report)
    }

    /// Deletes manifest `d` of `repo` (and its referrers) when no tag and no
    /// index of the repository points at it any more.
    async fn remove_if_orphaned(&self, repo: &str, d: &Digest) -> Result<bool> {
        if !self.tags_pointing_at(repo, d).await?.is_empty() {
            return Ok(false);
        }
        let mut children: HashSet<Digest> = HashSet::new();
        for rev in self.revisions(repo).await? {
            let Ok(body) = self.manifest_bytes(&rev).await else {
                continue;
            };
            if let Ok(p) = manifest::parse(&body, None) {
                for r in p.references {
                    if let Reference::Manifest(c, _) = r {
                        children.insert(c);
                    }
                }
            }
        }
        if children.contains(d) {
            return Ok(false);
        }
        for referrer in self.referrers(repo, d, None).await? {
            if let Ok(rd) = referrer.digest.parse::<Digest>() {
                let _ = self.manifest_delete(repo, &Ref::Digest(rd)).await;
            }
        }
        match self.manifest_delete(repo, &Ref::Digest(d.clone())).await {
            Ok(()) => Ok(true),
            Err(e) if e.code == Code::ManifestUnknown => Ok(false),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn img(repo: &str, tag: &str, pushed: u64) -> ImageRow {
        ImageRow {
            repository: repo.into(),
            tag: tag.into(),
            digest: format!("sha256:{}", "a".repeat(64)),
            media_type: manifest::OCI_MANIFEST.into(),
            size: 1,
            platforms: vec![],
            pushed,
        }
    }

    fn rule(
        pattern: &str,
        keep_last: Option<usize>,
        older_than_days: Option<u64>,
        protect: bool,
    ) -> Rule {
        Rule {
            pattern: pattern.into(),
            keep_last,
            older_than: older_than_days.map(|d| Duration::from_secs(d * 86400)),
            protect,
        }
    }

    fn removed(rules: &[Rule], images: &[ImageRow], now: u64) -> Vec<String> {
        plan(rules, images, now)
            .unwrap()
            .into_iter()
            .map(|r| format!("{}:{}", r.repository, r.tag))
            .collect()
    }

    #[test]
    fn keep_last_is_per_repository() {
        let images: Vec<_> = (0..4)
            .flat_map(|i| {
                [
                    img("a/x", &format!("dev-{i}"), 100 + i),
                    img("a/y", &format!("dev-{i}"), 100 + i),
                ]
            })
            .collect();
        let r = removed(&[rule("**:dev-*", Some(2), None, false)], &images, 1000);
        assert_eq!(r, vec!["a/x:dev-0", "a/y:dev-0", "a/x:dev-1", "a/y:dev-1"]);
    }

    #[test]
    fn both_limits_must_agree_and_protect_wins() {
        let day = 86400;
        let now = 100 * day;
        let images = vec![
            img("r", "release-1", 0),
            img("r", "release-2", 95 * day),
            img("r", "release-3", 96 * day),
            img("r", "latest", 0),
        ];
        let rules = [rule("r:release-*", Some(1), Some(30), false)];
        assert_eq!(
            removed(&rules, &images, now),
            vec!["r:release-1"],
            "release-2 is young"
        );
        let rules = [
            rule("r:*", Some(0), None, false),
            rule("*:latest", None, None, true),
        ];
        assert_eq!(
            removed(&rules, &images, now).len(),
            3,
            "latest is protected"
        );
        // Most protective wins: a second rule keeping the 3 newest saves them all.
        let rules = [
            rule("r:*", Some(0), None, false),
            rule("r:release-*", Some(3), None, false),
        ];
        assert_eq!(removed(&rules, &images, now), vec!["r:latest"]);
    }

    #[test]
    fn single_star_stays_in_one_component() {
        let images = vec![img("team/app", "dev-1", 0), img("team/sub/app", "dev-1", 0)];
        let r = removed(
            &[rule("team/*:dev-*", None, Some(1), false)],
            &images,
            10 * 86400,
        );
        assert_eq!(r, vec!["team/app:dev-1"]);
    }

    #[test]
    fn validation() {
        assert!(validate(&[rule("**", None, None, false)]).is_err());
        assert!(validate(&[rule("a[", Some(1), None, false)]).is_err());
        assert!(validate(&[rule("**:v*", None, None, true)]).is_ok());
    }
}

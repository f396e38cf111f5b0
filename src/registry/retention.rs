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
//! the repository still points at it, and in turn the children and referrers
//! of what goes, on the same terms (see `RepoView::retire`), so the next
//! garbage collection frees the blobs. Each repository is read once, however
//! many tags go: the work is linear in its tags and manifests.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};

use super::Registry;
use super::digest::Digest;
use super::error::{Code, RegistryError, Result};
use super::images::ImageRow;
use super::manifest::{self, Reference};
use super::refglob::RefGlob;
use crate::storage::layout;

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
/// The error names the rule (counted from 1) and says what is wrong.
pub fn validate(rules: &[Rule]) -> std::result::Result<(), (usize, String)> {
    for (i, r) in rules.iter().enumerate() {
        RefGlob::new(&r.pattern).map_err(|e| (i + 1, e))?;
        if !r.protect && r.keep_last.is_none() && r.older_than.is_none() {
            return Err((
                i + 1,
                "needs keep_last, older_than or protect = true".into(),
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
        let images = self.images(None).await?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let removals = plan(rules, &images, now)?;
        let mut report = self.apply(removals, dry_run).await?;
        report.tags_scanned = images.len() as u64;
        Ok(report)
    }

    /// Removes the planned tags, then every manifest that nothing keeps any
    /// more (a dry run says what that would be, and changes nothing).
    async fn apply(&self, removals: Vec<Removal>, dry_run: bool) -> Result<RetentionReport> {
        let mut report = RetentionReport {
            dry_run,
            ..Default::default()
        };
        let mut by_repo: BTreeMap<String, Vec<Removal>> = BTreeMap::new();
        for r in removals {
            by_repo.entry(r.repository.clone()).or_default().push(r);
        }
        for (repo, planned) in by_repo {
            let (removed, as_if_gone) = if dry_run {
                let tags = planned.iter().map(|r| r.tag.clone()).collect();
                (planned, tags)
            } else {
                (
                    self.remove_planned_tags(&repo, planned).await?,
                    HashSet::new(),
                )
            };
            let view = RepoView::read(self, &repo, &as_if_gone).await?;
            let retired = view.retire(removed.iter().filter_map(|r| r.digest.parse().ok()));
            let gone = if dry_run {
                retired.len()
            } else {
                self.retire(&repo, &view, &retired).await?
            };
            report.manifests_removed += gone as u64;
            report.removals.extend(removed);
        }
        Ok(report)
    }

    /// Deletes each planned tag that still names the manifest the plan
    /// judged: one pushed again since is a new image, no rule's verdict.
    async fn remove_planned_tags(&self, repo: &str, planned: Vec<Removal>) -> Result<Vec<Removal>> {
        // Many at once (each tag on its own: on S3 a read and a delete are
        // round trips), in the plan's order.
        let removed: Vec<Option<Removal>> = futures_util::stream::iter(planned)
            .map(|r| async move {
                let Ok(judged) = r.digest.parse::<Digest>() else {
                    return Ok(None);
                };
                // Only while it names what was judged: a push that moves it
                // (or pushes it again) since is kept, not lost.
                let Some(raw) = self.tag_object(repo, &r.tag).await? else {
                    return Ok(None);
                };
                if layout::tag_target(&raw).is_none_or(|(now, _)| now != judged) {
                    return Ok(None);
                }
                let key = layout::tag(repo, &r.tag);
                let removed = self.storage.delete_if(&key, &raw).await?;
                Ok::<_, RegistryError>(removed.then_some(r))
            })
            .buffered(super::PARALLEL_READS)
            .try_collect()
            .await?;
        Ok(removed.into_iter().flatten().collect())
    }

    /// Deletes the `retired` manifests of `repo` (listed parents first, so
    /// an interruption never leaves an index without its children); says
    /// how many stay gone.
    async fn retire(&self, repo: &str, view: &RepoView, retired: &[Digest]) -> Result<usize> {
        if retired.is_empty() {
            return Ok(0); // (no need to read the repository again)
        }
        let journal = self.retiring(repo, retired).await?;
        // One at a time, in order: the order is the guarantee above.
        for d in retired {
            if let Some(subject) = view.subject.get(d) {
                self.storage
                    .delete(&layout::referrer(repo, subject, d))
                    .await?;
            }
            self.storage.delete(&layout::revision(repo, d)).await?;
        }
        // Since the repository was read, a push may have moved a tag onto
        // one of them (a build promoted), or listed one in a new index. That
        // one comes back, as its PUT puts it back when it looks after this
        // (see `manifest_put`): retention never takes a tag its rules did
        // not judge. (Should this process be killed before, the journal
        // entry has the next gc or start do it: see registry/retiring.rs.)
        let wanted = self.wanted_since(repo, &view.revisions, retired).await?;
        self.bring_back(repo, &wanted).await?;
        self.retired(journal).await;
        if wanted.is_empty() {
            return Ok(retired.len());
        }
        Ok(self.without_revision(repo, retired).await?.len())
    }
}

/// One repository as retention found it, read once: which manifests are
/// tagged, which indexes hold which children, which manifests refer to
/// which subjects.
#[derive(Default)]
struct RepoView {
    revisions: HashSet<Digest>,
    tagged: HashSet<Digest>,
    children: HashMap<Digest, Vec<Digest>>,
    parents: HashMap<Digest, Vec<Digest>>,
    referrers: HashMap<Digest, Vec<Digest>>,
    subject: HashMap<Digest, Digest>,
}

impl RepoView {
    /// `repo` now, as if the tags in `as_if_gone` were not there.
    async fn read(reg: &Registry, repo: &str, as_if_gone: &HashSet<String>) -> Result<RepoView> {
        let mut v = RepoView::default();
        for (t, d) in reg.tag_targets(repo).await? {
            if !as_if_gone.contains(&t) {
                v.tagged.insert(d);
            }
        }
        // Many at once: on S3 each read is a round trip.
        let mut reads = futures_util::stream::iter(reg.revisions(repo).await?)
            .map(|rev| async move { (reg.manifest_bytes(&rev).await, rev) })
            // (In order: what retention removes is listed the same way each run.)
            .buffered(super::PARALLEL_READS);
        while let Some((body, rev)) = reads.next().await {
            v.revisions.insert(rev.clone());
            let Ok(body) = body else {
                continue;
            };
            if let Ok(p) = manifest::parse(&body, None) {
                for r in p.references {
                    if let Reference::Manifest(c, _) = r {
                        v.children.entry(rev.clone()).or_default().push(c.clone());
                        v.parents.entry(c).or_default().push(rev.clone());
                    }
                }
            }
            if let Some(s) = manifest::subject_of(&body) {
                v.referrers.entry(s.clone()).or_default().push(rev.clone());
                v.subject.insert(rev, s);
            }
        }
        Ok(v)
    }

    /// What goes once the manifests `untagged` lost their tags: each that no
    /// tag and no kept index points at, then in turn the children and the
    /// referrers of what goes, on the same terms (a tagged or protected
    /// signature, or a child another index still lists, stays).
    fn retire(&self, untagged: impl IntoIterator<Item = Digest>) -> Vec<Digest> {
        let mut gone: HashSet<Digest> = HashSet::new();
        let mut out = Vec::new();
        let mut work: Vec<Digest> = untagged.into_iter().collect();
        work.reverse();
        while let Some(d) = work.pop() {
            let kept_by_index = self
                .parents
                .get(&d)
                .is_some_and(|ps| ps.iter().any(|p| !gone.contains(p)));
            if gone.contains(&d)
                || !self.revisions.contains(&d)
                || self.tagged.contains(&d)
                || kept_by_index
            {
                continue;
            }
            gone.insert(d.clone());
            out.push(d.clone());
            for next in [self.referrers.get(&d), self.children.get(&d)]
                .into_iter()
                .flatten()
                .flatten()
                .rev()
            {
                work.push(next.clone());
            }
        }
        out
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

    mod applied {
        use super::super::*;
        use crate::registry::manifests::Ref;
        use crate::registry::testing::{push_blob, registry};
        use bytes::Bytes;

        const R: &str = "app";

        async fn put(reg: &Registry, tag: Option<&str>, body: serde_json::Value) -> Digest {
            let body = Bytes::from(serde_json::to_vec(&body).unwrap());
            let d = Digest::of(crate::registry::digest::Algorithm::Sha256, &body);
            let at = tag.map_or(Ref::Digest(d.clone()), |t| Ref::Tag(t.into()));
            reg.manifest_put(R, &at, None, body, &[]).await.unwrap();
            d
        }

        fn desc(media_type: &str, d: &Digest, size: usize) -> serde_json::Value {
            serde_json::json!({"mediaType": media_type, "digest": d.to_string(), "size": size})
        }

        /// An image (its own layer `seed`), optionally with a subject.
        async fn image(
            reg: &Registry,
            tag: Option<&str>,
            seed: &'static [u8],
            subject: Option<&Digest>,
        ) -> Digest {
            let config = push_blob(reg, R, b"{}").await;
            let layer = push_blob(reg, R, seed).await;
            let mut m = serde_json::json!({
                "schemaVersion": 2, "mediaType": manifest::OCI_MANIFEST,
                "config": desc("application/vnd.oci.image.config.v1+json", &config, 2),
                "layers": [desc("application/vnd.oci.image.layer.v1.tar", &layer, seed.len())],
            });
            if let Some(s) = subject {
                let len = reg.manifest_bytes(s).await.unwrap().len();
                m["subject"] = desc(manifest::OCI_MANIFEST, s, len);
            }
            put(reg, tag, m).await
        }

        async fn index(reg: &Registry, tag: &str, children: &[&Digest]) -> Digest {
            let mut list = Vec::new();
            for c in children {
                let len = reg.manifest_bytes(c).await.unwrap().len();
                list.push(desc(manifest::OCI_MANIFEST, c, len));
            }
            let m = serde_json::json!({
                "schemaVersion": 2, "mediaType": manifest::OCI_INDEX, "manifests": list,
            });
            put(reg, Some(tag), m).await
        }

        fn removal(tag: &str, d: &Digest) -> Removal {
            Removal {
                repository: R.into(),
                tag: tag.into(),
                digest: d.to_string(),
                rule: "test".into(),
            }
        }

        async fn exists(reg: &Registry, d: &Digest) -> bool {
            reg.manifest_resolve(R, &Ref::Digest(d.clone()))
                .await
                .is_ok()
        }

        async fn tagged(reg: &Registry, t: &str) -> bool {
            reg.manifest_resolve(R, &Ref::Tag(t.into())).await.is_ok()
        }

        /// The referrers of a removed image go only when nothing else
        /// keeps them: a tagged signature (a protected tag is a tag) and a
        /// child of a kept index stay. The dry run counts the same.
        #[tokio::test]
        async fn referrers_go_only_when_nothing_keeps_them() {
            let dir = tempfile::tempdir().unwrap();
            let reg = registry(dir.path());
            let dev = image(&reg, Some("dev-1"), b"dev", None).await;
            let plain = image(&reg, None, b"sbom", Some(&dev)).await;
            let signed = image(&reg, Some("sha256-dev.sig"), b"sig", Some(&dev)).await;
            let listed = image(&reg, None, b"attestation", Some(&dev)).await;
            let stable = index(&reg, "stable", &[&listed]).await;
            let dry = reg.apply(vec![removal("dev-1", &dev)], true).await.unwrap();
            let report = reg
                .apply(vec![removal("dev-1", &dev)], false)
                .await
                .unwrap();
            assert_eq!(report.manifests_removed, 2, "the image and its plain SBOM");
            assert_eq!(dry.manifests_removed, report.manifests_removed);
            assert!(!exists(&reg, &dev).await && !exists(&reg, &plain).await);
            assert!(exists(&reg, &signed).await && tagged(&reg, "sha256-dev.sig").await);
            assert!(exists(&reg, &listed).await && exists(&reg, &stable).await);
        }

        /// A multi-arch image's children (pushed untagged) go with its
        /// index, except one another kept index still lists.
        #[tokio::test]
        async fn an_index_takes_its_untagged_children_along() {
            let dir = tempfile::tempdir().unwrap();
            let reg = registry(dir.path());
            let amd = image(&reg, None, b"amd64", None).await;
            let arm = image(&reg, None, b"arm64", None).await;
            let shared = image(&reg, None, b"shared", None).await;
            let multi = index(&reg, "dev-1", &[&amd, &arm, &shared]).await;
            let other = index(&reg, "v1", &[&shared]).await;
            let report = reg
                .apply(vec![removal("dev-1", &multi)], false)
                .await
                .unwrap();
            assert_eq!(report.manifests_removed, 3);
            for gone in [&multi, &amd, &arm] {
                assert!(!exists(&reg, gone).await, "{gone}");
            }
            assert!(exists(&reg, &shared).await && exists(&reg, &other).await);
        }

        /// A build promoted (its manifest PUT under a tag no rule judges)
        /// while retention removes its `dev-*` tag: whatever the
        /// interleaving, the promoted tag stays and its image with it.
        /// Before, retention took the new tag along, or the PUT, finding
        /// the revision gone, took its own tag back and still answered 201.
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_build_promoted_while_retention_runs_stays() {
            let dir = tempfile::tempdir().unwrap();
            let reg = std::sync::Arc::new(registry(dir.path()));
            let d = image(&reg, Some("dev-1"), b"build", None).await;
            let body = reg.manifest_bytes(&d).await.unwrap();
            for round in 0..300 {
                put(&reg, Some("dev-1"), serde_json::from_slice(&body).unwrap()).await;
                let retention = {
                    let (reg, d) = (reg.clone(), d.clone());
                    tokio::spawn(async move { reg.apply(vec![removal("dev-1", &d)], false).await })
                };
                let promotion = {
                    let (reg, body) = (reg.clone(), body.clone());
                    tokio::spawn(async move {
                        reg.manifest_put(R, &Ref::Tag("v1".into()), None, body, &[])
                            .await
                    })
                };
                retention.await.unwrap().unwrap();
                promotion.await.unwrap().unwrap();
                assert!(tagged(&reg, "v1").await, "round {round}: v1 is gone");
                assert!(exists(&reg, &d).await, "round {round}: v1's image is gone");
                reg.manifest_delete(R, &Ref::Tag("v1".into()))
                    .await
                    .unwrap();
            }
        }

        /// A `dev-*` tag pushed again (a new build) while retention removes
        /// it for its old build: whatever the interleaving, the new push
        /// stays. Before, retention looked at the tag, then removed it, and
        /// a push landing between the two was lost though answered 201.
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_tag_pushed_again_while_retention_removes_it_stays() {
            let dir = tempfile::tempdir().unwrap();
            let reg = std::sync::Arc::new(registry(dir.path()));
            let old = image(&reg, Some("dev-1"), b"old build", None).await;
            let new = image(&reg, None, b"new build", None).await;
            let (old_body, new_body) = (
                reg.manifest_bytes(&old).await.unwrap(),
                reg.manifest_bytes(&new).await.unwrap(),
            );
            for round in 0..500 {
                let old_json = serde_json::from_slice(&old_body).unwrap();
                put(&reg, Some("dev-1"), old_json).await;
                let retention = {
                    let (reg, old) = (reg.clone(), old.clone());
                    tokio::spawn(
                        async move { reg.apply(vec![removal("dev-1", &old)], false).await },
                    )
                };
                let push = {
                    let (reg, body) = (reg.clone(), new_body.clone());
                    tokio::spawn(async move {
                        reg.manifest_put(R, &Ref::Tag("dev-1".into()), None, body, &[])
                            .await
                    })
                };
                retention.await.unwrap().unwrap();
                push.await.unwrap().unwrap();
                let now = reg.manifest_resolve(R, &Ref::Tag("dev-1".into())).await;
                assert_eq!(
                    now.map(|(d, _)| d).ok(),
                    Some(new.clone()),
                    "round {round}: the new build's dev-1 is lost"
                );
            }
        }

        /// A tag pushed again after the plan names a new image, which the
        /// plan never judged: it stays, and so does its image.
        #[tokio::test]
        async fn a_tag_moved_since_the_plan_stays() {
            let dir = tempfile::tempdir().unwrap();
            let reg = registry(dir.path());
            let old = image(&reg, Some("dev-9"), b"old", None).await;
            let new = image(&reg, Some("dev-9"), b"new", None).await;
            let report = reg
                .apply(vec![removal("dev-9", &old)], false)
                .await
                .unwrap();
            assert!(report.removals.is_empty(), "{report:?}");
            assert_eq!(
                reg.manifest_resolve(R, &Ref::Tag("dev-9".into()))
                    .await
                    .unwrap()
                    .0,
                new
            );
            assert!(
                exists(&reg, &old).await,
                "untagged by the push, not by retention"
            );
        }
    }
}

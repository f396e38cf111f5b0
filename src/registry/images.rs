//! Operator views of what is stored: every tag with its digest, size,
//! platforms and push time; and one image inspected in depth.

use std::collections::BTreeMap;
use std::time::UNIX_EPOCH;

use futures_util::{StreamExt, TryStreamExt, stream};
use serde::{Deserialize, Serialize};

use super::Registry;
use super::digest::Digest;
use super::error::{Code, RegistryError, Result};
use super::manifest::{self, Descriptor, Kind};
use super::manifests::Ref;
use super::refglob::RefGlob;
use crate::storage::layout;

/// One tag of one repository.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ImageRow {
    pub repository: String,
    pub tag: String,
    pub digest: String,
    pub media_type: String,
    /// Manifest, config and layers (for an index: every child's too), in bytes.
    pub size: u64,
    /// `os/arch[/variant]` of each image (one for an image, several for an index).
    pub platforms: Vec<String>,
    /// When the tag was last pushed, seconds since the Unix epoch.
    pub pushed: u64,
}

/// A reference as operators write it: `repo:tag` or `repo@digest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    pub repository: String,
    pub reference: Ref,
}

impl ImageRef {
    pub fn parse(s: &str) -> Result<ImageRef> {
        let bad = || {
            RegistryError::new(
                Code::NameInvalid,
                format!("invalid reference {s:?}: expected REPOSITORY:TAG or REPOSITORY@DIGEST"),
            )
        };
        let (repo, reference) = if let Some((repo, digest)) = s.split_once('@') {
            (repo, Ref::Digest(super::parse_digest(digest)?))
        } else {
            let slash = s.rfind('/').map(|i| i + 1).unwrap_or(0);
            let colon = s[slash..].rfind(':').map(|i| i + slash).ok_or_else(bad)?;
            (&s[..colon], Ref::parse(&s[colon + 1..]).map_err(|_| bad())?)
        };
        super::check_name(repo)?;
        Ok(ImageRef {
            repository: repo.to_string(),
            reference,
        })
    }
}

impl std::fmt::Display for ImageRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.reference {
            Ref::Tag(t) => write!(f, "{}:{t}", self.repository),
            Ref::Digest(d) => write!(f, "{}@{d}", self.repository),
        }
    }
}

/// An image in depth (`nora images inspect`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Inspection {
    pub repository: String,
    pub digest: String,
    pub media_type: String,
    pub size: u64,
    pub tags: Vec<String>,
    pub platforms: Vec<String>,
    pub config: Option<ConfigSummary>,
    pub layers: Vec<Descriptor>,
    /// For an index: its child manifests.
    pub manifests: Vec<Descriptor>,
    pub referrers: Vec<Descriptor>,
    pub manifest: serde_json::Value,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ConfigSummary {
    pub media_type: String,
    pub digest: String,
    pub architecture: Option<String>,
    pub os: Option<String>,
    pub created: Option<String>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub labels: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
struct Raw {
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Vec<Descriptor>,
    #[serde(default)]
    manifests: Vec<RawChild>,
}

#[derive(Deserialize, Serialize, Clone)]
struct RawChild {
    #[serde(flatten)]
    descriptor: Descriptor,
    platform: Option<Platform>,
}

#[derive(Deserialize, Serialize, Clone)]
struct Platform {
    os: Option<String>,
    architecture: Option<String>,
    variant: Option<String>,
}

impl Platform {
    fn label(&self) -> String {
        let mut s = format!(
            "{}/{}",
            self.os.as_deref().unwrap_or("?"),
            self.architecture.as_deref().unwrap_or("?")
        );
        if let Some(v) = &self.variant {
            s.push('/');
            s.push_str(v);
        }
        s
    }
}

/// The config's and the layers' sizes as the manifest gives them. Saturating:
/// the size of a non-distributable layer is never checked against stored
/// bytes, so a manifest may give any size up to i64::MAX, and three such
/// overflow a u64.
fn blobs_size(raw: &Raw) -> u64 {
    raw.config
        .iter()
        .chain(&raw.layers)
        .fold(0, |sum, d| sum.saturating_add(d.size))
}

impl Registry {
    /// Counts of what is stored, and the bytes of every blob.
    pub async fn usage(&self) -> Result<crate::client::Usage> {
        let repos = self.catalog().await?;
        let repositories = repos.len() as u64;
        let tags: u64 = stream::iter(repos)
            .map(|r| async move { self.tags(&r).await.map_or(0, |t| t.len() as u64) })
            .buffer_unordered(super::PARALLEL_READS)
            .fold(0, |sum, n| async move { sum + n })
            .await;
        let (blobs, bytes) = self.blob_totals().await?;
        Ok(crate::client::Usage {
            repositories,
            tags,
            blobs,
            bytes,
        })
    }

    /// Every tag of every repository, sorted by repository then tag; with a
    /// glob, only the tags it matches (the others are not read).
    pub async fn images(&self, glob: Option<&RefGlob>) -> Result<Vec<ImageRow>> {
        let tags_of = |repo: String| async move {
            match self.tags(&repo).await {
                Ok(tags) => Ok((repo, tags)),
                Err(e) if e.code == Code::NameUnknown => Ok((repo, Vec::new())),
                Err(e) => Err(e),
            }
        };
        let refs: Vec<(String, Vec<String>)> = stream::iter(self.catalog().await?)
            .map(tags_of)
            .buffered(super::PARALLEL_READS)
            .try_collect()
            .await?;
        let refs = refs
            .into_iter()
            .flat_map(|(repo, tags)| tags.into_iter().map(move |tag| (repo.clone(), tag)))
            .filter(|(repo, tag)| glob.is_none_or(|g| g.is_match(repo, tag)));
        let rows: Vec<Option<ImageRow>> = stream::iter(refs)
            .map(|(repo, tag)| async move { self.image_row(&repo, &tag).await })
            .buffered(super::PARALLEL_READS)
            .try_collect()
            .await?;
        Ok(rows.into_iter().flatten().collect())
    }

    async fn image_row(&self, repo: &str, tag: &str) -> Result<Option<ImageRow>> {
        let key = layout::tag(repo, tag);
        let Some(raw) = self.tag_object(repo, tag).await? else {
            return Ok(None); // deleted meanwhile
        };
        let Some((digest, media_type)) = layout::tag_target(&raw) else {
            return Ok(None);
        };
        let pushed = match layout::tag_pushed(&raw) {
            Some(t) => t,
            // Written before tags recorded it: the object's own time.
            None => self
                .storage
                .stat(&key)
                .await?
                .and_then(|m| m.modified.duration_since(UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_secs()),
        };
        let (size, platforms) = match self.size_and_platforms(&digest, &media_type).await {
            Ok(x) => x,
            // A tag naming a manifest that is gone (deleted meanwhile, or a
            // store damaged by hand) or damaged is not an image; it must not
            // make the whole listing, or retention, fail.
            Err(e) if e.code == Code::ManifestUnknown => {
                tracing::warn!(repository = repo, tag, %digest, "tag names a missing manifest, left out");
                return Ok(None);
            }
            Err(e) if e.code == Code::ManifestInvalid => {
                tracing::warn!(repository = repo, tag, %digest, error = %e.message, "tag names a damaged manifest, left out");
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        Ok(Some(ImageRow {
            repository: repo.to_string(),
            tag: tag.to_string(),
            digest: digest.to_string(),
            media_type,
            size,
            platforms,
            pushed,
        }))
    }

    /// Total size (manifest + config + layers, recursively for an index) and
    /// platforms. The platform of a plain image comes from its config.
    async fn size_and_platforms(&self, d: &Digest, media_type: &str) -> Result<(u64, Vec<String>)> {
        let body = self.manifest_bytes(d).await?;
        let raw: Raw = serde_json::from_slice(&body).map_err(|_| {
            RegistryError::new(
                Code::ManifestInvalid,
                format!("stored manifest {d} is not JSON"),
            )
        })?;
        let mut size = body.len() as u64;
        match manifest::kind_of(media_type) {
            Some(Kind::Index) => {
                let mut platforms = Vec::new();
                for child in &raw.manifests {
                    size = size.saturating_add(child.descriptor.size);
                    if let Ok(cd) = child.descriptor.digest.parse::<Digest>()
                        && let Ok(cbody) = self.manifest_bytes(&cd).await
                        && let Ok(craw) = serde_json::from_slice::<Raw>(&cbody)
                    {
                        size = size.saturating_add(blobs_size(&craw));
                    }
                    if let Some(p) = &child.platform {
                        platforms.push(p.label());
                    }
                }
                Ok((size, platforms))
            }
            _ => {
                size = size.saturating_add(blobs_size(&raw));
                let platform = match &raw.config {
                    Some(c) => self.config_platform(c).await,
                    None => None,
                };
                Ok((size, platform.into_iter().collect()))
            }
        }
    }

    async fn config_json(&self, c: &Descriptor) -> Option<serde_json::Value> {
        let d: Digest = c.digest.parse().ok()?;
        if c.size > 1024 * 1024 {
            return None;
        }
        let raw = self
            .storage
            .read_small(&layout::blob(&d), 1024 * 1024)
            .await
            .ok()?;
        serde_json::from_slice(&raw).ok()
    }

    async fn config_platform(&self, c: &Descriptor) -> Option<String> {
        let v = self.config_json(c).await?;
        let p: Platform = serde_json::from_value(v).ok()?;
        (p.os.is_some() || p.architecture.is_some()).then(|| p.label())
    }

    pub async fn inspect(&self, r: &ImageRef) -> Result<Inspection> {
        let m = self.manifest_get(&r.repository, &r.reference).await?;
        let raw: Raw = serde_json::from_slice(&m.body).map_err(|_| {
            RegistryError::new(Code::ManifestInvalid, "stored manifest is not JSON")
        })?;
        let (size, platforms) = self.size_and_platforms(&m.digest, &m.media_type).await?;
        let config = match &raw.config {
            Some(c) => Some(self.config_summary(c).await),
            None => None,
        };
        let mut tags = Vec::new();
        for t in self.tags(&r.repository).await.unwrap_or_default() {
            if let Ok((d, _)) = self
                .manifest_resolve(&r.repository, &Ref::Tag(t.clone()))
                .await
                && d == m.digest
            {
                tags.push(t);
            }
        }
        Ok(Inspection {
            repository: r.repository.clone(),
            digest: m.digest.to_string(),
            media_type: m.media_type,
            size,
            tags,
            platforms,
            config,
            layers: raw.layers,
            manifests: raw.manifests.into_iter().map(|c| c.descriptor).collect(),
            referrers: self.referrers(&r.repository, &m.digest, None).await?,
            manifest: serde_json::from_slice(&m.body).unwrap_or(serde_json::Value::Null),
        })
    }

    async fn config_summary(&self, c: &Descriptor) -> ConfigSummary {
        let v = self.config_json(c).await.unwrap_or_default();
        let s = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
        let inner = v.get("config");
        let list = |k: &str| {
            inner
                .and_then(|i| i.get(k))
                .and_then(|x| serde_json::from_value::<Vec<String>>(x.clone()).ok())
        };
        ConfigSummary {
            media_type: c.media_type.clone(),
            digest: c.digest.clone(),
            architecture: s("architecture"),
            os: s("os"),
            created: s("created"),
            entrypoint: list("Entrypoint"),
            cmd: list("Cmd"),
            labels: inner
                .and_then(|i| i.get("Labels"))
                .and_then(|x| serde_json::from_value(x.clone()).ok()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        let r = ImageRef::parse("a/b:v1").unwrap();
        assert_eq!(r.repository, "a/b");
        assert_eq!(r.reference, Ref::Tag("v1".into()));
        let d = format!("sha256:{}", "a".repeat(64));
        let r = ImageRef::parse(&format!("a/b@{d}")).unwrap();
        assert_eq!(r.reference, Ref::Digest(d.parse().unwrap()));
        assert_eq!(r.to_string(), format!("a/b@{d}"));
        for bad in ["a/b", "A:v1", "a:", "a@sha256:zz", ":v1"] {
            assert!(ImageRef::parse(bad).is_err(), "{bad}");
        }
    }

    /// A tag whose manifest is gone, or damaged, is left out of the
    /// listing; it used to fail `images ls` and retention for the whole
    /// store.
    #[tokio::test]
    async fn a_tag_naming_a_missing_or_damaged_manifest_is_left_out() {
        use crate::registry::digest::{Algorithm, Digest};
        let dir = tempfile::tempdir().unwrap();
        let reg = crate::registry::testing::registry(dir.path());
        let damaged = Digest::of(Algorithm::Sha256, b"{not json");
        reg.storage
            .put_bytes(
                &layout::blob(&damaged),
                bytes::Bytes::from_static(b"{not json"),
            )
            .await
            .unwrap();
        let gone = Digest::of(Algorithm::Sha256, b"never stored");
        for (tag, d) in [("gone", &gone), ("damaged", &damaged)] {
            let value = layout::tag_object(d, crate::registry::manifest::OCI_MANIFEST, 1);
            reg.storage
                .put_bytes(&layout::tag("r", tag), value)
                .await
                .unwrap();
        }
        assert!(reg.images(None).await.unwrap().is_empty());
    }

    /// With a glob, tags it does not match are not read: `images ls team/*`
    /// on a large store (on S3, three requests a tag) read every image.
    #[tokio::test]
    async fn a_glob_reads_only_what_it_matches() {
        use crate::registry::digest::{Algorithm, Digest};
        let dir = tempfile::tempdir().unwrap();
        let reg = crate::registry::testing::registry(dir.path());
        let gone = Digest::of(Algorithm::Sha256, b"never stored");
        for (repo, tag) in [("team/app", "v1"), ("other", "x")] {
            let value = layout::tag_object(&gone, crate::registry::manifest::OCI_MANIFEST, 1);
            reg.storage
                .put_bytes(&layout::tag(repo, tag), value)
                .await
                .unwrap();
        }
        // A tag that cannot be read: a pipe where its object belongs.
        let path = dir.path().join(layout::tag("other", "x"));
        std::fs::remove_file(&path).unwrap();
        let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert!(reg.images(None).await.is_err());
        for pattern in ["team/*", "team/app:v*", "**/app"] {
            let glob = RefGlob::new(pattern).unwrap();
            assert!(reg.images(Some(&glob)).await.is_ok(), "{pattern}");
        }
        let glob = RefGlob::new("oth*").unwrap();
        assert!(reg.images(Some(&glob)).await.is_err());
    }
}

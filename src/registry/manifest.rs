//! Parsing and checking pushed manifests: which media type they are, what
//! they reference, and what the referrers API says about them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::digest::Digest;
use super::error::{Code, RegistryError, Result};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// Largest manifest accepted (the spec asks registries to take at least 4 MB).
pub const MAX_MANIFEST_SIZE: u64 = 4 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An image (or artifact) manifest: config + layers, all blobs.
    Image,
    /// An index or manifest list: references other manifests.
    Index,
}

pub fn kind_of(media_type: &str) -> Option<Kind> {
    match media_type {
        OCI_MANIFEST | DOCKER_MANIFEST => Some(Kind::Image),
        OCI_INDEX | DOCKER_LIST => Some(Kind::Index),
        _ => None,
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    schema_version: Option<u64>,
    media_type: Option<String>,
    artifact_type: Option<String>,
    config: Option<Descriptor>,
    layers: Option<Vec<Descriptor>>,
    manifests: Option<Vec<Descriptor>>,
    subject: Option<Descriptor>,
    annotations: Option<BTreeMap<String, String>>,
}

/// What must exist before a manifest may be stored, with the size its
/// descriptor gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    Blob(Digest, u64),
    Manifest(Digest, u64),
}

impl Reference {
    pub fn digest(&self) -> &Digest {
        match self {
            Reference::Blob(d, _) | Reference::Manifest(d, _) => d,
        }
    }
}

/// A checked manifest.
#[derive(Debug)]
pub struct Parsed {
    pub media_type: String,
    pub references: Vec<Reference>,
    pub subject: Option<Digest>,
    /// `artifactType` as the referrers API reports it.
    pub artifact_type: Option<String>,
    pub annotations: Option<BTreeMap<String, String>>,
}

fn invalid(msg: impl Into<String>) -> RegistryError {
    RegistryError::new(Code::ManifestInvalid, msg)
}

/// Layers that are never pushed to a registry (licensing), so never checked.
fn non_distributable(d: &Descriptor) -> bool {
    d.media_type.contains(".nondistributable.")
        || d.media_type == "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
}

fn descriptor_digest(d: &Descriptor, what: &str) -> Result<Digest> {
    // The image spec's size is an int64: a client in another language could
    // not even read a larger one back.
    if d.size > i64::MAX as u64 {
        return Err(invalid(format!("{what} has a size past int64: {}", d.size)));
    }
    d.digest
        .parse()
        .map_err(|_| invalid(format!("{what} has an invalid digest {:?}", d.digest)))
}

/// Checks `body` as a manifest pushed with `content_type` (parameters already
/// stripped; `None` when the client sent none or a generic JSON type).
pub fn parse(body: &[u8], content_type: Option<&str>) -> Result<Parsed> {
    let raw: Raw = serde_json::from_slice(body)
        .map_err(|e| invalid(format!("manifest is not valid JSON: {e}")))?;
    if raw.schema_version != Some(2) {
        return Err(invalid("schemaVersion must be 2"));
    }
    let media_type = match (content_type, raw.media_type.as_deref()) {
        (Some(ct), Some(mt)) if ct != mt => {
            return Err(invalid(format!(
                "Content-Type {ct:?} differs from the manifest's mediaType {mt:?}"
            )));
        }
        (Some(ct), _) => ct.to_string(),
        (None, Some(mt)) => mt.to_string(),
        (None, None) if raw.manifests.is_some() => OCI_INDEX.to_string(),
        (None, None) if raw.config.is_some() => OCI_MANIFEST.to_string(),
        (None, None) => return Err(invalid("manifest has no media type")),
    };
    let kind = kind_of(&media_type)
        .ok_or_else(|| invalid(format!("unsupported manifest media type {media_type:?}")))?;

    let mut references = Vec::new();
    let mut artifact_type = raw.artifact_type.clone().filter(|s| !s.is_empty());
    match kind {
        Kind::Image => {
            let config = raw
                .config
                .as_ref()
                .ok_or_else(|| invalid("image manifest has no config"))?;
            references.push(Reference::Blob(
                descriptor_digest(config, "config")?,
                config.size,
            ));
            let layers = raw
                .layers
                .as_ref()
                .ok_or_else(|| invalid("image manifest has no layers"))?;
            for layer in layers {
                let d = descriptor_digest(layer, "layer")?;
                if !non_distributable(layer) {
                    references.push(Reference::Blob(d, layer.size));
                }
            }
            if artifact_type.is_none() {
                artifact_type = Some(config.media_type.clone());
            }
        }
        Kind::Index => {
            let manifests = raw
                .manifests
                .as_ref()
                .ok_or_else(|| invalid("index has no manifests"))?;
            for m in manifests {
                references.push(Reference::Manifest(
                    descriptor_digest(m, "manifest")?,
                    m.size,
                ));
            }
        }
    }
    let subject = match &raw.subject {
        Some(s) => Some(descriptor_digest(s, "subject")?),
        None => None,
    };
    Ok(Parsed {
        media_type,
        references,
        subject,
        artifact_type,
        annotations: raw.annotations,
    })
}

/// Only the `subject` of stored bytes (used when a manifest is deleted).
pub fn subject_of(body: &[u8]) -> Option<Digest> {
    #[derive(Deserialize)]
    struct S {
        subject: Option<Descriptor>,
    }
    serde_json::from_slice::<S>(body)
        .ok()?
        .subject
        .and_then(|s| s.digest.parse().ok())
}

/// Strips parameters; treats generic JSON types as "no type given".
pub fn normalize_content_type(ct: Option<&str>) -> Option<String> {
    let ct = ct?.split(';').next()?.trim().to_ascii_lowercase();
    match ct.as_str() {
        "" | "application/json" | "application/octet-stream" | "*/*" => None,
        _ => Some(ct),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    #[test]
    fn image_manifest_references_config_and_layers() {
        let body = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}",
            "config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":2}},
            "layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{}","size":3}},
                      {{"mediaType":"application/vnd.oci.image.layer.nondistributable.v1.tar","digest":"{}","size":3}}]}}"#,
            d('a'),
            d('b'),
            d('c')
        );
        let p = parse(body.as_bytes(), Some(OCI_MANIFEST)).unwrap();
        assert_eq!(
            p.references.len(),
            2,
            "non-distributable layer is not required"
        );
        assert_eq!(
            p.artifact_type.as_deref(),
            Some("application/vnd.oci.image.config.v1+json")
        );
    }

    #[test]
    fn refuses_bad_manifests() {
        for (body, ct) in [
            ("not json", Some(OCI_MANIFEST)),
            (r#"{"schemaVersion":1}"#, Some(OCI_MANIFEST)),
            (r#"{"schemaVersion":2,"mediaType":"x/y","config":{}}"#, None),
            (r#"{"schemaVersion":2,"layers":[]}"#, Some(OCI_MANIFEST)),
            (
                r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#,
                Some(OCI_MANIFEST),
            ),
            // Sizes are int64: negative, or past its range.
            (
                &format!(
                    r#"{{"schemaVersion":2,"config":{{"mediaType":"a/b","digest":"{}","size":-1}},"layers":[]}}"#,
                    d('a')
                ),
                Some(OCI_MANIFEST),
            ),
            (
                &format!(
                    r#"{{"schemaVersion":2,"config":{{"mediaType":"a/b","digest":"{}","size":9223372036854775808}},"layers":[]}}"#,
                    d('a')
                ),
                Some(OCI_MANIFEST),
            ),
        ] {
            assert!(parse(body.as_bytes(), ct).is_err(), "{body}");
        }
    }

    #[test]
    fn content_type_normalization() {
        assert_eq!(
            normalize_content_type(Some(
                "application/vnd.oci.image.manifest.v1+json; charset=utf-8"
            )),
            Some(OCI_MANIFEST.to_string())
        );
        assert_eq!(normalize_content_type(Some("application/json")), None);
    }
}

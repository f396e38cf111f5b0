//! The whole storage layout, in one place. Every key nora reads or writes is
//! built by a function in this file; nothing else formats keys.
//!
//! ```text
//! blobs/<alg>/<hex[0..2]>/<hex>/data
//!     The bytes of every blob and every manifest, content-addressed and shared
//!     by all repositories. Written once (put_if_absent or rename of a verified
//!     upload), never modified. Removed only by garbage collection.
//!
//! repositories/<name>/_layers/<alg>/<hex>
//!     Link: blob <alg>:<hex> belongs to repository <name> (pushed, or mounted,
//!     into it). Content: the digest. A blob is served from a repository only
//!     through such a link, so one repository cannot read another's blobs.
//!
//! repositories/<name>/_manifests/revisions/<alg>/<hex>
//!     Link: manifest <alg>:<hex> is in repository <name>. Content: the media
//!     type it was pushed with (served back as Content-Type).
//!
//! repositories/<name>/_manifests/tags/<tag>
//!     Tag. Content: "<digest>\n<media type>\n<pushed>\n", so a GET by tag
//!     needs this one small read plus the (cacheable, immutable) manifest
//!     bytes. `pushed` (Unix seconds) is when the tag was pushed, kept in the
//!     content so that it survives a backup and restore or a migrate (which
//!     write every object anew); retention's keep_last and older_than go by
//!     it. Tags written before it was recorded lack the line: their mtime
//!     says it, and backup and migrate write it into the copy.
//!
//! repositories/<name>/_referrers/<alg>/<hex>/<ralg>-<rhex>
//!     Manifest <ralg>:<rhex> of <name> has `subject` <alg>:<hex>. Content: the
//!     referrer's descriptor (JSON) as the referrers API lists it.
//!
//! uploads/<id>/session
//!     An upload session (JSON: repository, start time). Sessions live in
//!     storage so that a restart, or another instance, can continue them.
//! uploads/<id>/parts/<offset, 20 digits>.<writer, 16 hex>
//!     The bytes of one PATCH (or final PUT) chunk, starting at that offset,
//!     under a key of the request's own: two requests racing for one offset
//!     never write the same object.
//! uploads/<id>/parts/<offset, 20 digits>
//!     The claim that makes one of those the chunk at that offset. Content:
//!     "<sha256 hex> <size> <writer> <check>", written (only if absent) once
//!     the chunk's bytes are in, so a one-chunk upload is committed without
//!     re-reading it. One write, so its hash always goes with its own bytes,
//!     even on a store whose conditional write is not exclusive (the last
//!     claim then wins whole; the other chunk is left to the session's
//!     cleanup). `check` (16 hex of the sha256 of the rest) catches two
//!     claims a store wrote in place at once and mixed: that upload fails. Sessions written before claims hold the chunk's bytes here
//!     and their sha256 in `<offset>.sha256`; both forms are read.
//! uploads/<id>/closing
//!     Written (only if absent) by the PUT that closes the session: while
//!     it is there, a second PUT (a client's retry), a PATCH finishing or a
//!     DELETE is told the session is gone instead of racing the first PUT.
//!     One 15 minutes old was left by a killed process and is taken over.
//! uploads/<id>/assembled-<random>
//!     Several chunks streamed, in order, through the hasher by a closing
//!     PUT; renamed to its blob key once the digest matched. One per PUT, so
//!     two PUTs of one session never write each other's.
//!
//! gc/lock
//!     Held (put_if_absent) by the one garbage collection running at a time,
//!     rewritten every 10 s; older than 60 s, it is a killed gc's, taken over.
//!     It names its process (`owner`: boot id, pid namespace, pid, start
//!     time): one that ran on this machine and has ended is taken over at
//!     once.
//! gc/holds/<random id>
//!     A running backup's hold: no gc starts while one is fresh (rewritten
//!     every 10 s like the lock, and naming its process likewise). Backups never wait for each other.
//! gc/trash/<alg>/<hex>
//!     A blob a running garbage collection found unreferenced and moved aside.
//!     It is purged after a second marking pass; until then a push or a pull
//!     that needs it moves it back (see registry/gc.rs for the protocol).
//! gc/used/<alg>/<hex>
//!     Empty; written when a client found an old blob (HEAD, mount) and so
//!     will name it in its next manifest without uploading it. While younger
//!     than the grace period, gc keeps the blob as if it had been uploaded
//!     again; gc removes the older ones.
//! gc/retiring/<random id>
//!     Written before a DELETE by digest or retention removes revisions
//!     (JSON: repository, digests, owner process), removed once they have
//!     looked whether a push wanted one back meanwhile (a tag moved onto
//!     it, a new index listing it) and put it back. One left by a killed
//!     process is replayed (that look, and the putting back) at server
//!     start, by every gc before it marks, by backup and migrate before
//!     they copy, and hourly: no tag is left naming a manifest its
//!     repository lost, nor gc freeing its layers. Meanwhile a request by
//!     digest finds such a manifest while a tag names it. (See
//!     registry/retiring.rs.)
//!
//! auth/tokens/<sha256 of the secret, hex>
//!     An API token (JSON: name, permissions, created, expires, last_used).
//!     The secret itself is never stored; deleting the object revokes the
//!     token on every instance at once. Written once, never rewritten.
//! auth/token-used/<same hash>
//!     When the token was last used (Unix seconds, text; written at most once
//!     a minute). Apart from the token so that this write, racing a
//!     revocation, cannot bring the token back: without its token it is
//!     ignored, and `nora token ls` removes it.
//! auth/token-names/<name>
//!     Empty; created with put_if_absent when an API token of that name is
//!     made, so two creations racing for one name cannot both win. Removed
//!     with the token. Login tokens (random names) have none.
//! auth/jwt-key
//!     The key that signs the short-lived registry tokens of `/auth/token`
//!     (random, created once with put_if_absent, shared by all instances).
//!
//! _tmp/<random>          (filesystem backend only; not a key)
//!     A write in progress, renamed (or hard-linked) to its key when whole.
//!     `nora serve` removes those untouched for an hour: a killed process's.
//! _tmp/lock              (filesystem backend only; not a key)
//!     Empty; flock(2)-ed by every rename that replaces an object and by
//!     every conditional delete (of a tag), in all processes on the store.
//! ```
//!
//! On S3 (storage/s3/) every key above is an object key under the
//! configured prefix, `<prefix>/<key>`, and the same rules hold: an object
//! appears whole or not at all (PutObject, or CompleteMultipartUpload for
//! anything over one 8 MiB part). A chunked OCI upload (POST, PATCH…, PUT)
//! stores each PATCH as its own `uploads/<id>/parts/<offset>` object (itself
//! a multipart upload when large), so any instance can continue the session;
//! the closing PUT verifies the digest, then a single chunk is copied
//! server-side to its blob key (rename = CopyObject + DeleteObject; S3 has no
//! rename), and several are streamed through the hasher into one
//! `uploads/<id>/assembled-<random>` object first. `gc/lock`, `gc/holds/` and the token
//! objects are how instances sharing a bucket coordinate: nothing else is shared.
//!
//! A backup archive (storage/archive.rs) is a tar.gz of these same keys:
//! `nora-backup.json`, then `blobs/…`, then every other key but `uploads/`
//! and `gc/`.
//!
//! Repository name components never start with `_` (see the OCI name
//! grammar), so `_layers`, `_manifests` and `_referrers` cannot collide with
//! a nested repository. Write order keeps the store consistent whatever is
//! interrupted: blob bytes before any link to them, a manifest's revision
//! before its tags, tags removed before the revision they point at, and
//! that removal journalled (`gc/retiring/`) while a push may still want
//! the revision back.

use crate::registry::digest::Digest;

/// The largest object other than a blob that nora writes: a referrer's
/// descriptor, which carries all of its manifest's annotations, so nearly a
/// whole manifest. Readers of links (backup, migrate) must take this much.
pub const MAX_SMALL_OBJECT: u64 = crate::registry::manifest::MAX_MANIFEST_SIZE + 64 * 1024;

pub const REPOSITORIES: &str = "repositories";
pub const AUTH: &str = "auth";

/// Whether `key` is one that backups and migrations copy: a blob, or an
/// object under `repositories/` or `auth/`. Never `uploads/` or `gc/` (a
/// planted trash entry would be moved back as the blob it names, unread),
/// nor anything else under the store's root (another registry sharing the
/// bucket under a longer prefix, a file someone left there).
pub fn is_copied(key: &str) -> bool {
    let under = |top: &str| key.strip_prefix(top).is_some_and(|r| r.starts_with('/'));
    parse_blob(key).is_some() || under(REPOSITORIES) || under(AUTH)
}
pub const UPLOADS: &str = "uploads";

pub fn blob(d: &Digest) -> String {
    let hex = d.hex();
    format!("blobs/{}/{}/{}/data", d.algorithm(), &hex[..2], hex)
}

/// The digest a blob key holds the bytes of (`blob`, reversed).
pub fn parse_blob(key: &str) -> Option<Digest> {
    let mut parts = key.split('/');
    let (Some(BLOBS), Some(alg), Some(_), Some(hex), Some("data"), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    let d: Digest = format!("{alg}:{hex}").parse().ok()?;
    (blob(&d) == key).then_some(d)
}

pub fn repository(name: &str) -> String {
    format!("{REPOSITORIES}/{name}")
}

pub fn layer_link(name: &str, d: &Digest) -> String {
    format!(
        "{REPOSITORIES}/{name}/_layers/{}/{}",
        d.algorithm(),
        d.hex()
    )
}

pub fn revision(name: &str, d: &Digest) -> String {
    format!(
        "{REPOSITORIES}/{name}/_manifests/revisions/{}/{}",
        d.algorithm(),
        d.hex()
    )
}

pub fn tags(name: &str) -> String {
    format!("{REPOSITORIES}/{name}/_manifests/tags")
}

pub fn tag(name: &str, tag: &str) -> String {
    format!("{REPOSITORIES}/{name}/_manifests/tags/{tag}")
}

/// A tag's content (see the layout above).
pub fn tag_object(d: &Digest, media_type: &str, pushed: u64) -> bytes::Bytes {
    format!("{d}\n{media_type}\n{pushed}\n").into()
}

/// The manifest a tag's content names, and its media type (a tag written
/// without one is an OCI manifest).
pub fn tag_target(value: &[u8]) -> Option<(Digest, String)> {
    let mut lines = std::str::from_utf8(value).ok()?.lines();
    let digest = lines.next()?.trim().parse().ok()?;
    let media_type = lines
        .next()
        .unwrap_or(crate::registry::manifest::OCI_MANIFEST);
    Some((digest, media_type.to_string()))
}

/// When the tag whose content is `value` was pushed, if it records it.
pub fn tag_pushed(value: &[u8]) -> Option<u64> {
    std::str::from_utf8(value)
        .ok()?
        .lines()
        .nth(2)?
        .trim()
        .parse()
        .ok()
}

/// A tag's content with its push time recorded: `value` itself when it has
/// one, else `value` with `modified` (the time of the object's last write).
pub fn tag_with_pushed(value: bytes::Bytes, modified: std::time::SystemTime) -> bytes::Bytes {
    if tag_pushed(&value).is_some() {
        return value;
    }
    let Some((digest, media_type)) = tag_target(&value) else {
        return value;
    };
    let secs = modified
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    tag_object(&digest, &media_type, secs)
}

/// What a link needs present before it (the write order above): a tag, the
/// revision it names; a revision or a layer link, its blob. `value` is the
/// link's content (a tag's names its manifest). None for anything else.
pub fn depends_on(key: &str, value: &[u8]) -> Option<String> {
    let rest = key.strip_prefix(REPOSITORIES)?.strip_prefix('/')?;
    if let Some((name, _)) = rest.split_once("/_manifests/tags/") {
        return Some(revision(name, &tag_target(value)?.0));
    }
    let (_, alg_hex) = rest
        .split_once("/_manifests/revisions/")
        .or_else(|| rest.split_once("/_layers/"))?;
    let (alg, hex) = alg_hex.split_once('/')?;
    Some(blob(&format!("{alg}:{hex}").parse().ok()?))
}

pub fn referrers(name: &str, subject: &Digest) -> String {
    format!(
        "{REPOSITORIES}/{name}/_referrers/{}/{}",
        subject.algorithm(),
        subject.hex()
    )
}

pub fn referrer(name: &str, subject: &Digest, referrer: &Digest) -> String {
    format!(
        "{}/{}-{}",
        referrers(name, subject),
        referrer.algorithm(),
        referrer.hex()
    )
}

/// Does this component of a path under `repositories/` start the data of a
/// repository (rather than a further name component)?
pub fn is_repository_data(component: &str) -> bool {
    component.starts_with('_')
}

pub fn upload(id: &str) -> String {
    format!("{UPLOADS}/{id}")
}

pub fn upload_session(id: &str) -> String {
    format!("{UPLOADS}/{id}/session")
}

pub fn upload_parts(id: &str) -> String {
    format!("{UPLOADS}/{id}/parts")
}

pub fn upload_part(id: &str, offset: u64) -> String {
    format!("{UPLOADS}/{id}/parts/{offset:020}")
}

pub fn upload_part_data(id: &str, offset: u64, writer: &str) -> String {
    format!("{UPLOADS}/{id}/parts/{offset:020}.{writer}")
}

pub fn upload_closing(id: &str) -> String {
    format!("{UPLOADS}/{id}/closing")
}

pub fn upload_assembled(id: &str, token: u64) -> String {
    format!("{UPLOADS}/{id}/assembled-{token:016x}")
}

pub fn upload_part_hash(id: &str, offset: u64) -> String {
    format!("{UPLOADS}/{id}/parts/{offset:020}.sha256")
}

/// The offset of a part object's name, `None` for hash sidecars and strangers.
pub fn parse_upload_part(name: &str) -> Option<u64> {
    if name.len() == 20 && name.bytes().all(|b| b.is_ascii_digit()) {
        name.parse().ok()
    } else {
        None
    }
}

pub const BLOBS: &str = "blobs";
pub const TOKENS: &str = "auth/tokens";
pub const JWT_KEY: &str = "auth/jwt-key";

pub fn token(hash: &str) -> String {
    format!("{TOKENS}/{hash}")
}

pub const TOKENS_USED: &str = "auth/token-used";

pub fn token_used(hash: &str) -> String {
    format!("{TOKENS_USED}/{hash}")
}

pub fn token_name(name: &str) -> String {
    format!("auth/token-names/{name}")
}

pub const GC_LOCK: &str = "gc/lock";
pub const GC_TRASH: &str = "gc/trash";
pub const GC_HOLDS: &str = "gc/holds";

pub const GC_USED: &str = "gc/used";
pub const GC_RETIRING: &str = "gc/retiring";

pub fn gc_retiring(id: &str) -> String {
    format!("{GC_RETIRING}/{id}")
}

pub fn gc_used(d: &Digest) -> String {
    format!("{GC_USED}/{}/{}", d.algorithm(), d.hex())
}

pub fn gc_hold(id: &str) -> String {
    format!("{GC_HOLDS}/{id}")
}

pub fn trash(d: &Digest) -> String {
    format!("{GC_TRASH}/{}/{}", d.algorithm(), d.hex())
}

/// The digest a trash key holds the bytes of (`trash`, reversed).
pub fn parse_trash(key: &str) -> Option<Digest> {
    digest_under(GC_TRASH, key)
}

/// The digest a found-blob marker is for (`gc_used`, reversed).
pub fn parse_gc_used(key: &str) -> Option<Digest> {
    digest_under(GC_USED, key)
}

/// `<top>/<alg>/<hex>` to `alg:hex`.
fn digest_under(top: &str, key: &str) -> Option<Digest> {
    let (alg, hex) = key.strip_prefix(top)?.strip_prefix('/')?.split_once('/')?;
    format!("{alg}:{hex}").parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_name_what_they_need() {
        let d: Digest = format!("sha256:{}", "ab".repeat(32)).parse().unwrap();
        let tag_value = format!("{d}\napplication/vnd.oci.image.manifest.v1+json\n");
        assert_eq!(
            depends_on(&tag("a/b", "v1"), tag_value.as_bytes()),
            Some(revision("a/b", &d))
        );
        assert_eq!(depends_on(&revision("a/b", &d), b""), Some(blob(&d)));
        assert_eq!(depends_on(&layer_link("a/b", &d), b""), Some(blob(&d)));
        assert_eq!(depends_on(&tag("a", "v1"), b"garbage"), None);
        assert_eq!(depends_on(&referrers("a", &d), b""), None);
        assert_eq!(depends_on("auth/tokens/x", b""), None);
    }

    #[test]
    fn blob_and_trash_keys_parse_back() {
        let d: Digest = format!("sha256:{}", "ab".repeat(32)).parse().unwrap();
        assert_eq!(parse_blob(&blob(&d)), Some(d.clone()));
        assert_eq!(parse_trash(&trash(&d)), Some(d.clone()));
        assert_eq!(parse_trash(&blob(&d)), None);
        assert_eq!(parse_trash("gc/trash"), None);
        assert_eq!(parse_trash("gc/trash/sha256/zz"), None);
        assert_eq!(parse_trash("gc/trashé/sha256/x"), None);
    }
}

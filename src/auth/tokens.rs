//! API tokens, kept in storage so every instance on the same storage sees a
//! new token or a revocation at once. The secret is shown once at creation;
//! storage holds only its SHA-256 (the secret is 256 random bits, so a fast
//! hash is enough) under `auth/tokens/<hash>`; its last use and its name are
//! objects of their own (see storage/layout.rs).

use std::time::{SystemTime, UNIX_EPOCH};

use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::perms::Permission;
use crate::storage::{Entry, Storage, StorageError, layout};

/// Every secret starts with this, so a token is told from a password.
pub const PREFIX: &str = "nora_";

/// How often `last_used` is written back: a write per request would cost more
/// than the request.
const LAST_USED_EVERY: u64 = 60;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TokenInfo {
    pub name: String,
    /// `ACTION:GLOB` strings.
    pub permissions: Vec<String>,
    /// Unix seconds.
    pub created: u64,
    pub expires: Option<u64>,
    pub last_used: Option<u64>,
    /// A login token (`nora login`): acts as this htpasswd user, with the
    /// user's current permissions, instead of carrying its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

impl TokenInfo {
    pub fn expired(&self, now: u64) -> bool {
        self.expires.is_some_and(|e| now >= e)
    }

    pub fn parsed_permissions(&self) -> Vec<Permission> {
        self.permissions
            .iter()
            .filter_map(|p| Permission::parse(p).ok())
            .collect()
    }
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The longest lifetime a token may be given; without an expiry it never
/// expires.
pub const MAX_LIFETIME: u64 = 100 * 365 * 24 * 3600;

/// How long a login token (`nora login`) may live: at least a minute, at
/// most a year.
pub const LOGIN_TTL_MIN: u64 = 60;
pub const LOGIN_TTL_MAX: u64 = 365 * 24 * 3600;

/// When a token given `seconds` to live expires (Unix seconds).
pub fn expiry(seconds: u64) -> Result<u64, String> {
    if seconds == 0 || seconds > MAX_LIFETIME {
        return Err(format!(
            "a token's lifetime must be from 1 second to 100 years, not {seconds} s \
             (leave it out for a token that never expires)"
        ));
    }
    Ok(now().saturating_add(seconds))
}

pub fn hash_of(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// `.` and `..` would be path segments that storage keys and URLs fold away
/// (the name claim `auth/token-names/..`, `DELETE /api/v1/tokens/..`).
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c))
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("{0}")]
    Invalid(String),
    #[error("no token named {0:?}")]
    NotFound(String),
    #[error("a token named {0:?} exists already")]
    Exists(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Creates a token; returns the secret (shown once) and what was stored.
pub async fn create(
    storage: &dyn Storage,
    name: &str,
    permissions: &[Permission],
    expires: Option<u64>,
) -> Result<(String, TokenInfo), TokenError> {
    if !valid_name(name) {
        return Err(TokenError::Invalid(format!(
            "token name {name:?}: use 1-64 letters, digits, '-', '_', '.', '@' (not . or ..)"
        )));
    }
    if permissions.is_empty() {
        return Err(TokenError::Invalid(
            "a token needs a --role or at least one --scope".into(),
        ));
    }
    // Two creations racing for one name: the name object decides, so exactly
    // one gets the name (listing first catches tokens made before names were
    // claimed).
    if list(storage).await?.iter().any(|t| t.name == name) {
        return Err(TokenError::Exists(name.to_string()));
    }
    let claim = layout::token_name(name);
    match storage
        .put_if_absent(&claim, crate::storage::unique_claim())
        .await
    {
        Ok(_) => {}
        Err(StorageError::AlreadyExists(_)) => return Err(TokenError::Exists(name.to_string())),
        Err(e) => return Err(e.into()),
    }
    let info = TokenInfo {
        name: name.to_string(),
        permissions: permissions.iter().map(|p| p.to_string()).collect(),
        created: now(),
        expires,
        last_used: None,
        user: None,
    };
    let stored = store(storage, info).await;
    if stored.is_err() {
        let _ = storage.delete(&claim).await;
    }
    stored
}

/// Login tokens one user keeps at most: a new one beyond revokes the oldest
/// (a script that logs in on every run and never logs out would otherwise
/// pile them up for their whole lifetime).
pub const LOGINS_PER_USER: usize = 50;

/// Creates the login token of htpasswd user `user` (`nora login`), named
/// `login-USER-RANDOM` so `nora token ls` shows whose it is.
pub async fn create_login(
    storage: &dyn Storage,
    user: &str,
    expires: Option<u64>,
) -> Result<(String, TokenInfo), TokenError> {
    let mut own: Vec<(String, TokenInfo)> = entries(storage)
        .await?
        .into_iter()
        .filter(|(_, t)| t.user.as_deref() == Some(user))
        .collect();
    own.sort_by_key(|(_, t)| t.created);
    let excess = (own.len() + 1).saturating_sub(LOGINS_PER_USER);
    for (hash, _) in own.iter().take(excess) {
        revoke_hash(storage, hash).await?;
    }
    let mut tag = [0u8; 4];
    rand::rng().fill_bytes(&mut tag);
    let safe: String = user
        .chars()
        .map(|c| if valid_name(&c.to_string()) { c } else { '_' })
        .take(40)
        .collect();
    let info = TokenInfo {
        name: format!("login-{safe}-{}", hex::encode(tag)),
        permissions: Vec::new(),
        created: now(),
        expires,
        last_used: None,
        user: Some(user.to_string()),
    };
    store(storage, info).await
}

async fn store(storage: &dyn Storage, info: TokenInfo) -> Result<(String, TokenInfo), TokenError> {
    let mut raw = [0u8; 32];
    rand::rng().fill_bytes(&mut raw);
    let secret = format!("{PREFIX}{}", hex::encode(raw));
    let json = serde_json::to_vec(&info).map_err(|e| TokenError::Invalid(e.to_string()))?;
    storage
        .put_bytes(&layout::token(&hash_of(&secret)), json.into())
        .await?;
    Ok((secret, info))
}

/// Every token, sorted by name (never the secrets: storage has none).
pub async fn list(storage: &dyn Storage) -> Result<Vec<TokenInfo>, TokenError> {
    let tokens = entries(storage).await?;
    let live: std::collections::HashSet<&str> = tokens.iter().map(|(h, _)| h.as_str()).collect();
    // A last-use write that raced a revocation left its object behind.
    for e in storage.list(layout::TOKENS_USED).await? {
        if let Entry::Object(hash) = e
            && !live.contains(hash.as_str())
        {
            storage.delete(&layout::token_used(&hash)).await?;
        }
    }
    let mut out = Vec::new();
    for (hash, mut info) in tokens {
        info.last_used = info.last_used.max(last_used(storage, &hash).await);
        out.push(info);
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

async fn last_used(storage: &dyn Storage, hash: &str) -> Option<u64> {
    let raw = storage
        .read_small(&layout::token_used(hash), 64)
        .await
        .ok()?;
    std::str::from_utf8(&raw).ok()?.trim().parse().ok()
}

async fn entries(storage: &dyn Storage) -> Result<Vec<(String, TokenInfo)>, TokenError> {
    let mut out = Vec::new();
    for e in storage.list(layout::TOKENS).await? {
        let Entry::Object(hash) = e else { continue };
        match storage.read_small(&layout::token(&hash), 64 * 1024).await {
            Ok(raw) => {
                if let Ok(info) = serde_json::from_slice::<TokenInfo>(&raw) {
                    out.push((hash, info));
                }
            }
            Err(StorageError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(out)
}

pub async fn revoke(storage: &dyn Storage, name: &str) -> Result<TokenInfo, TokenError> {
    // Every token of that name: stores written before names were claimed
    // may hold more than one.
    let mut revoked = None;
    for (hash, info) in entries(storage).await? {
        if info.name == name {
            revoke_hash(storage, &hash).await?;
            revoked = Some(info);
        }
    }
    let info = revoked.ok_or_else(|| TokenError::NotFound(name.to_string()))?;
    // A name made before names were claimed may be no key at all ("..").
    if valid_name(name) {
        storage.delete(&layout::token_name(name)).await?;
    }
    Ok(info)
}

/// Revokes the token whose secret hashes to `hash` (a token revoking itself).
pub async fn revoke_hash(storage: &dyn Storage, hash: &str) -> Result<(), TokenError> {
    if !valid_hash(hash) {
        return Err(TokenError::NotFound("(this token)".into()));
    }
    storage.delete(&layout::token(hash)).await?;
    storage.delete(&layout::token_used(hash)).await?;
    Ok(())
}

fn valid_hash(hash: &str) -> bool {
    hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The token with secret hash `hash`, if it exists and has not expired.
pub async fn lookup_hash(
    storage: &dyn Storage,
    hash: &str,
) -> Result<Option<TokenInfo>, TokenError> {
    if !valid_hash(hash) {
        return Ok(None);
    }
    let raw = match storage.read_small(&layout::token(hash), 64 * 1024).await {
        Ok(raw) => raw,
        Err(StorageError::NotFound(_)) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let Ok(info) = serde_json::from_slice::<TokenInfo>(&raw) else {
        return Ok(None);
    };
    let now = now();
    if info.expired(now) {
        return Ok(None);
    }
    if due_for_last_use(hash, now) {
        // Its own object, never the token's: a write racing a revocation
        // would otherwise bring the token back. Best effort: a failed write
        // only makes last_used older.
        let _ = storage
            .put_bytes(&layout::token_used(hash), now.to_string().into())
            .await;
    }
    Ok(Some(info))
}

/// When this process last recorded each token's use: decided in memory, so
/// a request with a token costs one read of it, not a second of its last
/// use (each instance records at most once a minute per token).
static RECORDED: std::sync::LazyLock<std::sync::Mutex<std::collections::HashMap<String, u64>>> =
    std::sync::LazyLock::new(Default::default);

/// Entries `RECORDED` keeps before it is simply cleared.
const RECORDED_MAX: usize = 10_000;

fn due_for_last_use(hash: &str, now: u64) -> bool {
    let mut recorded = RECORDED.lock().unwrap_or_else(|p| p.into_inner());
    if recorded
        .get(hash)
        .is_some_and(|t| now.saturating_sub(*t) < LAST_USED_EVERY)
    {
        return false;
    }
    if recorded.len() >= RECORDED_MAX {
        recorded.clear();
    }
    recorded.insert(hash.to_string(), now);
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::perms::role;
    use crate::storage::fs::FsStorage;
    use std::sync::Arc;

    fn store() -> (tempfile::TempDir, Arc<dyn Storage>) {
        let dir = tempfile::tempdir().unwrap();
        let s: Arc<dyn Storage> = Arc::new(FsStorage::open(dir.path(), false).unwrap());
        (dir, s)
    }

    /// A token in use while it is revoked stays revoked: the last-use write
    /// of a request that looked it up just before must not bring it back.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_token_used_while_revoked_stays_revoked() {
        let (_dir, s) = store();
        for round in 0..40 {
            let name = format!("t{round}");
            let (secret, _) = create(s.as_ref(), &name, &role("read").unwrap(), None)
                .await
                .unwrap();
            let hash = hash_of(&secret);
            let users: Vec<_> = (0..6)
                .map(|_| {
                    let (s, hash) = (s.clone(), hash.clone());
                    tokio::spawn(async move { lookup_hash(s.as_ref(), &hash).await })
                })
                .collect();
            revoke(s.as_ref(), &name).await.unwrap();
            for u in users {
                u.await.unwrap().unwrap();
            }
            assert!(
                lookup_hash(s.as_ref(), &hash).await.unwrap().is_none(),
                "round {round}"
            );
        }
        // What the races left of last-use records goes with the next listing.
        assert!(list(s.as_ref()).await.unwrap().is_empty());
        assert!(s.list(layout::TOKENS_USED).await.unwrap().is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_name_one_token_even_when_created_at_once() {
        let (_dir, s) = store();
        let made: Vec<_> = (0..6)
            .map(|_| {
                let s = s.clone();
                tokio::spawn(async move {
                    create(s.as_ref(), "ci", &role("write").unwrap(), None).await
                })
            })
            .collect();
        let mut won = 0;
        for m in made {
            match m.await.unwrap() {
                Ok(_) => won += 1,
                Err(TokenError::Exists(_)) => {}
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(won, 1);
        // Stores from before names were claimed may hold two of a name:
        // revoking the name revokes both, and frees it.
        let legacy = TokenInfo {
            name: "ci".into(),
            permissions: vec!["pull:**".into()],
            created: now(),
            expires: None,
            last_used: None,
            user: None,
        };
        let (old, _) = store_info(s.as_ref(), legacy).await;
        revoke(s.as_ref(), "ci").await.unwrap();
        assert!(
            lookup_hash(s.as_ref(), &hash_of(&old))
                .await
                .unwrap()
                .is_none()
        );
        assert!(list(s.as_ref()).await.unwrap().is_empty());
        create(s.as_ref(), "ci", &role("read").unwrap(), None)
            .await
            .unwrap();
    }

    /// `.` and `..` are refused as names, not passed on as a bad storage key;
    /// a legacy token of such a name can still be revoked.
    #[tokio::test]
    async fn dot_names_are_refused_and_legacy_ones_revoked() {
        let (_dir, s) = store();
        for name in [".", ".."] {
            let made = create(s.as_ref(), name, &role("read").unwrap(), None).await;
            assert!(
                matches!(&made, Err(TokenError::Invalid(m)) if m.contains("not . or ..")),
                "{name}: {:?}",
                made.map(|_| ())
            );
            assert!(matches!(
                revoke(s.as_ref(), name).await,
                Err(TokenError::NotFound(_))
            ));
            let legacy = TokenInfo {
                name: name.into(),
                permissions: vec!["pull:**".into()],
                created: now(),
                expires: None,
                last_used: None,
                user: None,
            };
            store_info(s.as_ref(), legacy).await;
            assert_eq!(revoke(s.as_ref(), name).await.unwrap().name, name);
        }
        assert!(list(s.as_ref()).await.unwrap().is_empty());
    }

    async fn store_info(s: &dyn Storage, info: TokenInfo) -> (String, TokenInfo) {
        super::store(s, info).await.unwrap()
    }

    #[tokio::test]
    async fn a_user_keeps_the_newest_login_tokens() {
        let (_dir, s) = store();
        let mut old = Vec::new();
        for created in [1, 2] {
            let info = TokenInfo {
                name: format!("login-alice-old{created}"),
                permissions: Vec::new(),
                created,
                expires: None,
                last_used: None,
                user: Some("alice".into()),
            };
            old.push(store_info(s.as_ref(), info).await.0);
        }
        for _ in 0..LOGINS_PER_USER {
            create_login(s.as_ref(), "alice", None).await.unwrap();
        }
        create_login(s.as_ref(), "bob", None).await.unwrap();
        let all = list(s.as_ref()).await.unwrap();
        let alice = all
            .iter()
            .filter(|t| t.user.as_deref() == Some("alice"))
            .count();
        assert_eq!((alice, all.len()), (LOGINS_PER_USER, LOGINS_PER_USER + 1));
        for secret in old {
            assert!(
                lookup_hash(s.as_ref(), &hash_of(&secret))
                    .await
                    .unwrap()
                    .is_none()
            );
        }
    }

    #[test]
    fn lifetimes_are_checked_not_wrapped() {
        assert!(expiry(0).is_err());
        assert!(expiry(u64::MAX).is_err());
        assert!(expiry(MAX_LIFETIME + 1).is_err());
        assert!(expiry(60).unwrap() >= now() + 60);
    }
}

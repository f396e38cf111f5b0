//! API tokens, kept in storage so every instance on the same storage sees a
//! new token or a revocation at once. The secret is shown once at creation;
//! storage holds only its SHA-256 (the secret is 256 random bits, so a fast
//! hash is enough) under `auth/tokens/<hash>`.

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

pub fn hash_of(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
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
            "token name {name:?}: use 1-64 letters, digits, '-', '_', '.', '@'"
        )));
    }
    if permissions.is_empty() {
        return Err(TokenError::Invalid(
            "a token needs a --role or at least one --scope".into(),
        ));
    }
    if list(storage).await?.iter().any(|t| t.name == name) {
        return Err(TokenError::Exists(name.to_string()));
    }
    let info = TokenInfo {
        name: name.to_string(),
        permissions: permissions.iter().map(|p| p.to_string()).collect(),
        created: now(),
        expires,
        last_used: None,
        user: None,
    };
    store(storage, info).await
}

/// Creates the login token of htpasswd user `user` (`nora login`), named
/// `login-USER-RANDOM` so `nora token ls` shows whose it is.
pub async fn create_login(
    storage: &dyn Storage,
    user: &str,
    expires: Option<u64>,
) -> Result<(String, TokenInfo), TokenError> {
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
    let mut out = Vec::new();
    for (_, info) in entries(storage).await? {
        out.push(info);
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
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
    for (hash, info) in entries(storage).await? {
        if info.name == name {
            storage.delete(&layout::token(&hash)).await?;
            return Ok(info);
        }
    }
    Err(TokenError::NotFound(name.to_string()))
}

/// Revokes the token whose secret hashes to `hash` (a token revoking itself).
pub async fn revoke_hash(storage: &dyn Storage, hash: &str) -> Result<(), TokenError> {
    if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(TokenError::NotFound("(this token)".into()));
    }
    storage.delete(&layout::token(hash)).await?;
    Ok(())
}

/// The token with secret hash `hash`, if it exists and has not expired.
pub async fn lookup_hash(
    storage: &dyn Storage,
    hash: &str,
) -> Result<Option<TokenInfo>, TokenError> {
    if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(None);
    }
    let key = layout::token(hash);
    let raw = match storage.read_small(&key, 64 * 1024).await {
        Ok(raw) => raw,
        Err(StorageError::NotFound(_)) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let Ok(mut info) = serde_json::from_slice::<TokenInfo>(&raw) else {
        return Ok(None);
    };
    let now = now();
    if info.expired(now) {
        return Ok(None);
    }
    if info
        .last_used
        .is_none_or(|t| now.saturating_sub(t) >= LAST_USED_EVERY)
    {
        info.last_used = Some(now);
        if let Ok(json) = serde_json::to_vec(&info) {
            // Best effort: a failed write only makes last_used older.
            let _ = storage.put_bytes(&key, json.into()).await;
        }
    }
    Ok(Some(info))
}

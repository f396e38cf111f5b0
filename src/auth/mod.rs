//! Who is asking, and what they may do. Credentials come as HTTP Basic (an
//! htpasswd user, or any user name with an API token as the password) or as
//! a Bearer token (an API token, or a registry JWT from `/auth/token`).
//! Rules (`[[auth.rules]]`) grant `ACTION:GLOB` permissions to users, groups
//! and tokens; a token also carries its own permissions.

pub mod htpasswd;
pub mod jwt;
pub mod oidc;
pub mod perms;
pub mod throttle;
pub mod tokens;

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use http::HeaderMap;

use crate::config;
use crate::storage::{Storage, StorageError, layout};
use htpasswd::Htpasswd;
use perms::{Action, Grants, Permission};

/// Who made a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Who {
    Anonymous,
    User(String),
    Token(String),
}

impl std::fmt::Display for Who {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Who::Anonymous => f.write_str("anonymous"),
            Who::User(u) => write!(f, "user {u}"),
            Who::Token(t) => write!(f, "token {t}"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Principal {
    pub who: Who,
    pub grants: Arc<Grants>,
    /// Holds a registry token, limited to the scopes it was issued for: a
    /// refusal then asks for a new token (401) rather than denying (403).
    pub scoped: bool,
    /// For a token: its storage hash, carried into registry tokens.
    token_hash: Option<String>,
    /// Proved an htpasswd password on this request: the only credential a
    /// login token may be exchanged for (a 5-minute registry token must not
    /// become a 30-day one).
    by_password: bool,
}

impl Principal {
    pub fn allows(&self, action: Action, repository: &str) -> bool {
        self.grants.allows(action, repository)
    }

    pub fn is_anonymous(&self) -> bool {
        self.who == Who::Anonymous
    }
}

/// Credentials that were sent but do not hold.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

pub struct Auth {
    pub enabled: bool,
    pub service: String,
    token_ttl: u64,
    users: Htpasswd,
    /// Permissions per rule subject (user, group or token name).
    rules: HashMap<String, Vec<Permission>>,
    /// Groups each user belongs to.
    groups_of: HashMap<String, Vec<String>>,
    storage: Arc<dyn Storage>,
    key: Vec<u8>,
    pub throttle: throttle::Throttle,
    oidc: oidc::Oidc,
    /// Compiled once: who anonymous callers are.
    anonymous: Principal,
    /// Granted to every user and token on top of their own (`anonymous_read`).
    everyone: Vec<Permission>,
    /// Compiled grants, by user name and by OIDC-issued registry token (both
    /// immutable: users and rules change only with a restart, a JWT never).
    compiled: std::sync::Mutex<HashMap<String, Principal>>,
}

/// Entries kept in `compiled` (users, OIDC-issued tokens) before it is
/// simply cleared; a miss only costs compiling a few globs again.
const COMPILED_MAX: usize = 2_000;

impl Auth {
    /// Auth as configured. With auth enabled this loads the users and the
    /// token signing key (created in storage on first start).
    pub async fn new(cfg: &config::Auth, storage: Arc<dyn Storage>) -> Result<Auth, String> {
        let users = match (&cfg.htpasswd_file, cfg.enabled) {
            (Some(path), true) => Htpasswd::load(path)?,
            _ => Htpasswd::empty(),
        };
        let mut rules: HashMap<String, Vec<Permission>> = HashMap::new();
        for r in &cfg.rules {
            let entry = rules.entry(r.subject.clone()).or_default();
            for p in &r.permissions {
                entry.push(Permission::parse(p)?);
            }
        }
        let mut groups_of: HashMap<String, Vec<String>> = HashMap::new();
        for (group, members) in &cfg.groups {
            for m in members {
                groups_of.entry(m.clone()).or_default().push(group.clone());
            }
        }
        let key = if cfg.enabled {
            signing_key(storage.as_ref()).await?
        } else {
            Vec::new()
        };
        let anonymous_perms = if cfg.anonymous_read || !cfg.enabled {
            vec![Permission {
                action: if cfg.enabled {
                    Action::Pull
                } else {
                    Action::Admin
                },
                pattern: "**".into(),
            }]
        } else {
            Vec::new()
        };
        // What anyone may do, anyone who logs in may do too: podman with
        // stored credentials must still pull what anonymous callers can.
        let everyone = if cfg.enabled {
            anonymous_perms.clone()
        } else {
            Vec::new()
        };
        Ok(Auth {
            anonymous: principal(Who::Anonymous, anonymous_perms, None),
            everyone,
            compiled: std::sync::Mutex::new(HashMap::new()),
            throttle: throttle::Throttle::new(cfg.failed_login_limit),
            oidc: oidc::Oidc::new(&cfg.oidc)?,
            enabled: cfg.enabled,
            service: cfg.service.clone(),
            token_ttl: cfg.token_ttl.as_secs().max(1),
            users,
            rules,
            groups_of,
            storage,
            key,
        })
    }

    pub fn users(&self) -> usize {
        self.users.len()
    }

    pub fn anonymous(&self) -> Principal {
        self.anonymous.clone()
    }

    fn cached(&self, key: &str, make: impl FnOnce() -> Principal) -> Principal {
        let mut map = self.compiled.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = map.get(key) {
            return p.clone();
        }
        if map.len() >= COMPILED_MAX {
            map.clear();
        }
        let p = make();
        map.insert(key.to_string(), p.clone());
        p
    }

    /// The principal behind a request's `Authorization` header (anonymous
    /// when there is none).
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Principal, Refused> {
        let Some(value) = headers.get(http::header::AUTHORIZATION) else {
            return Ok(self.anonymous());
        };
        if !self.enabled {
            return Ok(self.anonymous());
        }
        let value = value
            .to_str()
            .map_err(|_| Refused("malformed Authorization header".into()))?;
        let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
        let rest = rest.trim();
        if scheme.eq_ignore_ascii_case("basic") {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(rest)
                .map_err(|_| Refused("malformed Basic credentials".into()))?;
            let text = String::from_utf8(raw)
                .map_err(|_| Refused("malformed Basic credentials".into()))?;
            let (user, password) = text
                .split_once(':')
                .ok_or_else(|| Refused("malformed Basic credentials".into()))?;
            if password.starts_with(tokens::PREFIX) {
                return self.token(password).await;
            }
            if looks_like_jwt(password) {
                return self.registry_token(password).await;
            }
            if self.users.verify(user, password) {
                let mut p = self.user(user);
                p.by_password = true;
                return Ok(p);
            }
            return Err(Refused("wrong user name or password".into()));
        }
        if scheme.eq_ignore_ascii_case("bearer") {
            if rest.starts_with(tokens::PREFIX) {
                return self.token(rest).await;
            }
            return self.registry_token(rest).await;
        }
        // Never quote the header: without a space, all of it is the "scheme",
        // and that may be a bare secret.
        Err(Refused(
            "unsupported authorization scheme (send Basic or Bearer)".into(),
        ))
    }

    async fn token(&self, secret: &str) -> Result<Principal, Refused> {
        let hash = tokens::hash_of(secret);
        let info = tokens::lookup_hash(self.storage.as_ref(), &hash)
            .await
            .map_err(|e| Refused(format!("cannot check the token: {e}")))?
            .ok_or_else(|| Refused("unknown, revoked or expired token".into()))?;
        if let Some(user) = &info.user {
            if !self.users.contains(user) {
                return Err(Refused(format!("user {user} no longer exists")));
            }
            let mut p = self.user(user);
            p.token_hash = Some(hash);
            return Ok(p);
        }
        let mut perms = info.parsed_permissions();
        perms.extend(self.rules.get(&info.name).cloned().unwrap_or_default());
        perms.extend(self.everyone.iter().cloned());
        Ok(principal(Who::Token(info.name), perms, Some(hash)))
    }

    /// A login token for a user who proved their password (`nora login`).
    pub async fn login_token(
        &self,
        p: &Principal,
        expires_in: u64,
    ) -> Result<(String, tokens::TokenInfo), String> {
        let Who::User(user) = &p.who else {
            return Err("log in with a user name and password".into());
        };
        if !p.by_password {
            return Err("log in with a password, not a token".into());
        }
        tokens::create_login(
            self.storage.as_ref(),
            user,
            Some(tokens::now() + expires_in),
        )
        .await
        .map_err(|e| e.to_string())
    }

    /// Revokes the token `p` authenticated with (`nora logout`).
    pub async fn logout(&self, p: &Principal) -> Result<(), String> {
        let Some(hash) = &p.token_hash else {
            return Err("log out with the token to revoke".into());
        };
        tokens::revoke_hash(self.storage.as_ref(), hash)
            .await
            .map_err(|e| e.to_string())
    }

    fn user(&self, name: &str) -> Principal {
        self.cached(&format!("user:{name}"), || self.compile_user(name))
    }

    fn compile_user(&self, name: &str) -> Principal {
        let perms = if self.rules.is_empty() {
            vec![Permission {
                action: Action::Admin,
                pattern: "**".into(),
            }]
        } else {
            let mut perms = self.rules.get(name).cloned().unwrap_or_default();
            for g in self.groups_of.get(name).into_iter().flatten() {
                perms.extend(self.rules.get(g).cloned().unwrap_or_default());
            }
            perms.extend(self.everyone.iter().cloned());
            perms
        };
        principal(Who::User(name.to_string()), perms, None)
    }

    async fn registry_token(&self, token: &str) -> Result<Principal, Refused> {
        let claims = jwt::verify(&self.key, &self.service, token).map_err(Refused)?;
        if let Some(hash) = &claims.tid {
            let live = tokens::lookup_hash(self.storage.as_ref(), hash)
                .await
                .map_err(|e| Refused(format!("cannot check the token: {e}")))?;
            if live.is_none() {
                return Err(Refused(
                    "the API token behind this token was revoked".into(),
                ));
            }
        }
        let who = match &claims.tid {
            Some(_) => Who::Token(claims.sub.clone()),
            None if claims.sub == "anonymous" => Who::Anonymous,
            None => Who::User(claims.sub.clone()),
        };
        // Scopes are exact names: a map built per request, never cached (a
        // flood of fresh tokens must not grow memory). Globs come only from
        // an OIDC exchange (the configured rules): those are compiled once.
        let compile = || {
            let mut perms: Vec<Permission> = claims
                .perms
                .iter()
                .filter_map(|p| Permission::parse(p).ok())
                .collect();
            if claims
                .access
                .iter()
                .any(|a| a.kind == "registry" && a.name == "catalog")
            {
                perms.push(Permission {
                    action: Action::Pull,
                    pattern: "**".into(),
                });
            }
            let mut grants = Grants::new(&perms);
            for a in claims.access.iter().filter(|a| a.kind == "repository") {
                for action in a.actions.iter().filter_map(|s| Action::parse(s)) {
                    grants.grant_name(action, &a.name);
                }
            }
            Principal {
                who: who.clone(),
                grants: Arc::new(grants),
                scoped: claims.perms.is_empty(),
                token_hash: None,
                by_password: false,
            }
        };
        Ok(if claims.perms.is_empty() {
            compile()
        } else {
            self.cached(token, compile)
        })
    }

    /// A registry token for `principal` with the requested scopes narrowed to
    /// what it may do: `(token, expires_in seconds)`.
    pub fn issue(&self, p: &Principal, scopes: &[String]) -> Result<(String, u64), String> {
        let mut access = Vec::new();
        for scope in scopes {
            let mut parts = scope.splitn(3, ':');
            let (Some(kind), Some(name), Some(actions)) =
                (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            if kind == "registry" && name == "catalog" {
                if p.grants.allows_all(Action::Pull) {
                    access.push(jwt::Access {
                        kind: "registry".into(),
                        name: "catalog".into(),
                        actions: vec!["*".into()],
                    });
                }
                continue;
            }
            // Only names a repository can have: nothing else is worth
            // signing into a token.
            if kind != "repository" || !crate::registry::names::valid_repository(name) {
                continue;
            }
            let granted: Vec<String> = actions
                .split(',')
                .flat_map(|a| match a {
                    "*" => vec![Action::Pull, Action::Push, Action::Delete],
                    a => Action::parse(a).into_iter().collect(),
                })
                .filter(|a| p.allows(*a, name))
                .map(|a| a.as_str().to_string())
                .collect();
            access.push(jwt::Access {
                kind: "repository".into(),
                name: name.to_string(),
                actions: granted,
            });
        }
        let now = tokens::now();
        let sub = match &p.who {
            Who::Anonymous => "anonymous".to_string(),
            Who::User(u) | Who::Token(u) => u.clone(),
        };
        let claims = jwt::Claims {
            iss: jwt::ISSUER.into(),
            aud: self.service.clone(),
            sub,
            iat: now,
            exp: now.saturating_add(self.token_ttl),
            access,
            tid: p.token_hash.clone(),
            perms: Vec::new(),
        };
        Ok((jwt::sign(&self.key, &claims)?, self.token_ttl))
    }
}

/// How long a registry token exchanged for an OIDC identity lives: a CI job's
/// pushes, not a login session.
const OIDC_TOKEN_TTL: u64 = 3600;

impl Auth {
    pub fn oidc_enabled(&self) -> bool {
        self.enabled && !self.oidc.is_empty()
    }

    /// Exchanges a CI's OIDC ID token for a registry token carrying the
    /// matching rules' permissions: `(token, expires_in, identity)`.
    pub async fn oidc_token(&self, id_token: &str) -> Result<(String, u64, String), Refused> {
        let identity = self.oidc.exchange(id_token).await.map_err(Refused)?;
        let now = tokens::now();
        let claims = jwt::Claims {
            iss: jwt::ISSUER.into(),
            aud: self.service.clone(),
            sub: identity.name.clone(),
            iat: now,
            exp: now + OIDC_TOKEN_TTL,
            access: Vec::new(),
            tid: None,
            perms: identity.permissions.iter().map(|p| p.to_string()).collect(),
        };
        let token = jwt::sign(&self.key, &claims).map_err(Refused)?;
        Ok((token, OIDC_TOKEN_TTL, identity.name))
    }
}

fn looks_like_jwt(s: &str) -> bool {
    s.len() > 20 && s.split('.').count() == 3 && s.starts_with("eyJ")
}

fn principal(who: Who, perms: Vec<Permission>, token_hash: Option<String>) -> Principal {
    Principal {
        who,
        grants: Arc::new(Grants::new(&perms)),
        scoped: false,
        token_hash,
        by_password: false,
    }
}

/// The token signing key: 32 random bytes in storage, created by whichever
/// instance starts first.
async fn signing_key(storage: &dyn Storage) -> Result<Vec<u8>, String> {
    use rand::RngCore;
    // Read first: a store served read-only holds its key and takes no write.
    match storage.read_small(layout::JWT_KEY, 1024).await {
        Ok(raw) => return decode_key(&raw),
        Err(StorageError::NotFound(_)) => {}
        Err(e) => return Err(format!("cannot read the token signing key: {e}")),
    }
    let mut fresh = [0u8; 32];
    rand::rng().fill_bytes(&mut fresh);
    match storage
        .put_if_absent(
            layout::JWT_KEY,
            crate::storage::once(Bytes::from(hex::encode(fresh))),
        )
        .await
    {
        Ok(_) | Err(StorageError::AlreadyExists(_)) => {}
        Err(e) => return Err(format!("cannot create the token signing key: {e}")),
    }
    let raw = storage
        .read_small(layout::JWT_KEY, 1024)
        .await
        .map_err(|e| format!("cannot read the token signing key: {e}"))?;
    decode_key(&raw)
}

fn decode_key(raw: &[u8]) -> Result<Vec<u8>, String> {
    hex::decode(raw.trim_ascii()).map_err(|_| "the token signing key in storage is corrupt".into())
}

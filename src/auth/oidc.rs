//! OIDC workload identity: a CI job's ID token (GitHub Actions, GitLab CI…)
//! is exchanged for a short-lived registry token, with no secret stored in
//! the CI. The token's issuer picks the provider; its key comes from the
//! issuer's JWKS (found through discovery, cached, fetched again when a
//! token names an unknown `kid`); audience, issuer and expiry are checked;
//! then every provider rule whose claim globs all match grants its
//! permissions.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use base64::Engine;
use globset::{Glob, GlobMatcher};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use tokio::sync::Mutex;

use super::perms::Permission;
use crate::config;

/// A refetch for an unknown kid at most this often, so tokens with made-up
/// kids cannot make nora hammer the issuer.
const REFETCH_AT_MOST_EVERY: Duration = Duration::from_secs(30);
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

struct Rule {
    claims: Vec<(String, GlobMatcher)>,
    permissions: Vec<Permission>,
}

struct Provider {
    name: String,
    issuer: String,
    audience: String,
    rules: Vec<Rule>,
    jwks: std::sync::Mutex<Keys>,
    /// Held while fetching, so one fetch runs at a time; tokens whose key is
    /// cached never wait for it (a slow issuer must not stall them).
    fetching: Mutex<()>,
}

#[derive(Default)]
struct Keys {
    set: Option<JwkSet>,
    /// When an unknown kid last made us refetch.
    miss_fetch: Option<Instant>,
}

pub struct Oidc {
    providers: Vec<Provider>,
    /// Made only when there are providers: a client loads the system's
    /// CA certificates, which costs a server without OIDC startup time and
    /// memory for nothing.
    http: Option<reqwest::Client>,
}

/// Who an exchanged ID token stands for, and what it may do.
#[derive(Debug)]
pub struct Identity {
    /// `<provider>:<sub claim>`.
    pub name: String,
    pub permissions: Vec<Permission>,
}

impl Oidc {
    pub fn new(cfg: &config::Oidc) -> Result<Oidc, String> {
        let mut providers = Vec::new();
        for p in &cfg.providers {
            let mut rules = Vec::new();
            for r in &p.rules {
                let mut claims = Vec::new();
                for (claim, glob) in &r.claims {
                    let m = Glob::new(glob)
                        .map_err(|e| format!("oidc provider {}: claim {claim}: {e}", p.name))?
                        .compile_matcher();
                    claims.push((claim.clone(), m));
                }
                let permissions = r
                    .permissions
                    .iter()
                    .map(|s| Permission::parse(s))
                    .collect::<Result<_, _>>()?;
                rules.push(Rule {
                    claims,
                    permissions,
                });
            }
            providers.push(Provider {
                name: p.name.clone(),
                issuer: p.issuer.clone(),
                audience: p.audience.clone(),
                rules,
                jwks: std::sync::Mutex::new(Keys::default()),
                fetching: Mutex::new(()),
            });
        }
        let http = match providers.is_empty() {
            true => None,
            false => Some(
                reqwest::Client::builder()
                    .timeout(HTTP_TIMEOUT)
                    .user_agent(concat!("nora/", env!("CARGO_PKG_VERSION")))
                    .build()
                    .map_err(|e| e.to_string())?,
            ),
        };
        Ok(Oidc { providers, http })
    }

    pub fn is_empty(&self) -> bool {
        self.providers.is_empty()
    }

    /// Verifies `id_token` and maps it to permissions. Err says why not (for
    /// the log and the 401; it never contains the token).
    pub async fn exchange(&self, id_token: &str) -> Result<Identity, String> {
        let header =
            jsonwebtoken::decode_header(id_token).map_err(|e| format!("malformed token: {e}"))?;
        let alg = header.alg;
        // Public-key algorithms only: an HS* token "signed" with a provider's
        // public key, or alg none, never verifies.
        if !matches!(
            alg,
            Algorithm::RS256
                | Algorithm::RS384
                | Algorithm::RS512
                | Algorithm::PS256
                | Algorithm::PS384
                | Algorithm::PS512
                | Algorithm::ES256
                | Algorithm::ES384
                | Algorithm::EdDSA
        ) {
            return Err(format!("algorithm {alg:?} is not accepted"));
        }
        let issuer = unverified_issuer(id_token)?;
        let provider = self
            .providers
            .iter()
            .find(|p| p.issuer == issuer)
            .ok_or_else(|| format!("no OIDC provider for issuer {issuer:?}"))?;
        let kid = header.kid.ok_or("the token names no key (kid)")?;
        let http = self.http.as_ref().ok_or("no OIDC provider is configured")?;
        let key = provider.key(http, &kid).await?;
        let mut v = Validation::new(alg);
        v.set_audience(&[&provider.audience]);
        v.set_issuer(&[&provider.issuer]);
        v.leeway = 30;
        v.validate_nbf = true;
        v.set_required_spec_claims(&["exp", "aud", "iss"]);
        let claims =
            jsonwebtoken::decode::<BTreeMap<String, serde_json::Value>>(id_token, &key, &v)
                .map_err(|e| format!("invalid ID token: {e}"))?
                .claims;
        let mut permissions = Vec::new();
        for rule in &provider.rules {
            let all = rule
                .claims
                .iter()
                .all(|(name, glob)| match claims.get(name) {
                    Some(serde_json::Value::String(s)) => glob.is_match(s),
                    Some(serde_json::Value::Bool(b)) => glob.is_match(b.to_string()),
                    Some(serde_json::Value::Number(n)) => glob.is_match(n.to_string()),
                    _ => false,
                });
            if all {
                permissions.extend(rule.permissions.iter().cloned());
            }
        }
        if permissions.is_empty() {
            return Err(format!(
                "no rule of provider {} matches this token",
                provider.name
            ));
        }
        let sub = claims
            .get("sub")
            .and_then(|s| s.as_str())
            .unwrap_or("unknown");
        Ok(Identity {
            name: format!("{}:{sub}", provider.name),
            permissions,
        })
    }
}

impl Provider {
    /// The decoding key for `kid`, from the cached JWKS or a fresh one.
    async fn key(&self, http: &reqwest::Client, kid: &str) -> Result<DecodingKey, String> {
        if let Some(key) = self.cached(kid) {
            return key;
        }
        let _one_fetch = self.fetching.lock().await;
        if let Some(key) = self.cached(kid) {
            return key; // fetched while we waited
        }
        let fetch = {
            let mut keys = self.jwks.lock().unwrap_or_else(|p| p.into_inner());
            // A key we do not know: the issuer may have rotated its keys.
            let fetch = keys.set.is_none()
                || keys
                    .miss_fetch
                    .is_none_or(|t| t.elapsed() >= REFETCH_AT_MOST_EVERY);
            if fetch && keys.set.is_some() {
                keys.miss_fetch = Some(Instant::now());
            }
            fetch
        };
        if fetch {
            let set = self.fetch_jwks(http).await?;
            self.jwks.lock().unwrap_or_else(|p| p.into_inner()).set = Some(set);
        }
        self.cached(kid)
            .unwrap_or_else(|| Err(format!("unknown key id {kid:?} for issuer {}", self.issuer)))
    }

    /// The key for `kid` if the cached JWKS has it.
    fn cached(&self, kid: &str) -> Option<Result<DecodingKey, String>> {
        let keys = self.jwks.lock().unwrap_or_else(|p| p.into_inner());
        let jwk = keys.set.as_ref()?.find(kid)?;
        Some(DecodingKey::from_jwk(jwk).map_err(|e| format!("unusable key {kid:?}: {e}")))
    }

    async fn fetch_jwks(&self, http: &reqwest::Client) -> Result<JwkSet, String> {
        let discovery = format!(
            "{}/.well-known/openid-configuration",
            self.issuer.trim_end_matches('/')
        );
        let unreachable = |what: &str, e: &dyn std::fmt::Display| {
            format!("issuer {} unreachable ({what}): {e}", self.issuer)
        };
        let doc: serde_json::Value = http
            .get(&discovery)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| unreachable("discovery", &e))?
            .json()
            .await
            .map_err(|e| unreachable("discovery", &e))?;
        let uri = doc["jwks_uri"]
            .as_str()
            .ok_or_else(|| format!("discovery of {} has no jwks_uri", self.issuer))?;
        http.get(uri)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| unreachable("jwks", &e))?
            .json::<JwkSet>()
            .await
            .map_err(|e| unreachable("jwks", &e))
    }
}

/// The `iss` claim, read before verification only to pick the provider
/// whose keys then verify everything.
fn unverified_issuer(token: &str) -> Result<String, String> {
    let payload = token.split('.').nth(1).ok_or("malformed token")?;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| "malformed token")?;
    let v: serde_json::Value = serde_json::from_slice(&raw).map_err(|_| "malformed token")?;
    v["iss"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| "the token has no issuer".into())
}

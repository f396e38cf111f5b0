//! The short-lived registry tokens of the Docker/OCI token flow: HS256 JWTs
//! signed with a key shared through storage, listing the granted actions per
//! repository. Only HS256 with our key verifies: `alg: none`, other
//! algorithms, a wrong audience or issuer, and expired tokens are refused.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

pub const ISSUER: &str = "nora";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Access {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub actions: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    pub sub: String,
    pub iat: u64,
    pub exp: u64,
    #[serde(default)]
    pub access: Vec<Access>,
    /// The API token (hash) this was issued for: checked on every use, so a
    /// revoked token's registry tokens die with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tid: Option<String>,
    /// `ACTION:GLOB` permissions, for tokens not tied to one request's scopes
    /// (those exchanged for a CI's OIDC identity).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub perms: Vec<String>,
}

pub fn sign(key: &[u8], claims: &Claims) -> Result<String, String> {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(key),
    )
    .map_err(|e| format!("cannot sign a token: {e}"))
}

pub fn verify(key: &[u8], service: &str, token: &str) -> Result<Claims, String> {
    let mut v = Validation::new(Algorithm::HS256);
    v.set_audience(&[service]);
    v.set_issuer(&[ISSUER]);
    v.leeway = 5;
    v.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
    jsonwebtoken::decode::<Claims>(token, &DecodingKey::from_secret(key), &v)
        .map(|d| d.claims)
        .map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            // A short reason, not the parser's internals (which JSON field or
            // algorithm list failed) to whoever sent a forged token.
            match e.kind() {
                ErrorKind::ExpiredSignature => "the token has expired",
                ErrorKind::InvalidAudience => "the token is for another service",
                _ => "invalid token",
            }
            .to_string()
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn claims(exp: u64) -> Claims {
        Claims {
            iss: ISSUER.into(),
            aud: "nora".into(),
            sub: "alice".into(),
            iat: 0,
            exp,
            access: vec![Access {
                kind: "repository".into(),
                name: "a/b".into(),
                actions: vec!["pull".into()],
            }],
            tid: None,
            perms: Vec::new(),
        }
    }

    #[test]
    fn round_trip_and_refusals() {
        let key = b"0123456789abcdef0123456789abcdef";
        let far = super::super::tokens::now() + 300;
        let t = sign(key, &claims(far)).unwrap();
        assert_eq!(verify(key, "nora", &t).unwrap().access[0].name, "a/b");
        assert!(verify(b"another key another key another!", "nora", &t).is_err());
        assert!(verify(key, "other-service", &t).is_err());
        assert!(
            verify(key, "nora", &sign(key, &claims(1000)).unwrap()).is_err(),
            "expired"
        );
        assert!(verify(key, "nora", "garbage").is_err());
        assert!(verify(key, "nora", &t[..t.len() - 5]).is_err(), "truncated");
        // alg: none
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let header = b64.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let body = b64.encode(serde_json::to_vec(&claims(far)).unwrap());
        assert!(verify(key, "nora", &format!("{header}.{body}.")).is_err());
        assert!(verify(key, "nora", &format!("{header}.{body}")).is_err());
    }
}

//! Users from an htpasswd file: `name:hash` lines, bcrypt (`$2y$`, `$2b$`,
//! `$2a$`) or argon2 (`$argon2id$`, `$argon2i$`, `$argon2d$`) hashes.
//! Verifying a bcrypt hash costs tens of milliseconds by design, so a
//! successful check is remembered for a minute (keyed by a hash of the
//! password, never the password).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};

const REMEMBER: Duration = Duration::from_secs(60);

pub struct Htpasswd {
    users: HashMap<String, String>,
    verified: Mutex<HashMap<(String, [u8; 32]), Instant>>,
}

impl Htpasswd {
    pub fn empty() -> Htpasswd {
        Htpasswd {
            users: HashMap::new(),
            verified: Mutex::new(HashMap::new()),
        }
    }

    pub fn load(path: &Path) -> Result<Htpasswd, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the htpasswd file {}: {e}", path.display()))?;
        Htpasswd::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Htpasswd, String> {
        let mut users = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (name, hash) = line
                .split_once(':')
                .ok_or_else(|| format!("line {}: expected name:hash", i + 1))?;
            let supported = [
                "$2y$",
                "$2b$",
                "$2a$",
                "$argon2id$",
                "$argon2i$",
                "$argon2d$",
            ];
            if !supported.iter().any(|p| hash.starts_with(p)) {
                return Err(format!(
                    "line {} ({name}): only bcrypt and argon2 hashes are accepted (htpasswd -B)",
                    i + 1
                ));
            }
            users.insert(name.to_string(), hash.to_string());
        }
        Ok(Htpasswd {
            users,
            verified: Mutex::new(HashMap::new()),
        })
    }

    pub fn len(&self) -> usize {
        self.users.len()
    }

    pub fn contains(&self, user: &str) -> bool {
        self.users.contains_key(user)
    }

    pub fn verify(&self, user: &str, password: &str) -> bool {
        let Some(hash) = self.users.get(user) else {
            return false;
        };
        let key = (user.to_string(), Sha256::digest(password.as_bytes()).into());
        {
            let mut seen = self.verified.lock().unwrap_or_else(|p| p.into_inner());
            match seen.get(&key) {
                Some(at) if at.elapsed() < REMEMBER => return true,
                Some(_) => {
                    seen.remove(&key);
                }
                None => {}
            }
        }
        let ok = if hash.starts_with("$argon2") {
            use argon2::password_hash::PasswordVerifier;
            argon2::password_hash::phc::PasswordHash::new(hash)
                .map(|h| {
                    argon2::Argon2::default()
                        .verify_password(password.as_bytes(), &h)
                        .is_ok()
                })
                .unwrap_or(false)
        } else {
            bcrypt::verify(password, hash).unwrap_or(false)
        };
        if ok {
            let mut seen = self.verified.lock().unwrap_or_else(|p| p.into_inner());
            if seen.len() > 10_000 {
                seen.clear();
            }
            seen.insert(key, Instant::now());
        }
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bcrypt_and_argon2() {
        let b = bcrypt::hash("s3cret", 4).unwrap();
        let a = {
            use argon2::password_hash::PasswordHasher;
            argon2::Argon2::default()
                .hash_password(b"hunter2")
                .unwrap()
                .to_string()
        };
        let h = Htpasswd::parse(&format!("# users\nalice:{b}\nbob:{a}\n")).unwrap();
        assert_eq!(h.len(), 2);
        assert!(h.verify("alice", "s3cret"));
        assert!(h.verify("alice", "s3cret"), "remembered");
        assert!(!h.verify("alice", "wrong"));
        assert!(h.verify("bob", "hunter2"));
        assert!(!h.verify("bob", "s3cret"));
        assert!(!h.verify("carol", "s3cret"));
        assert!(Htpasswd::parse("alice:{SHA}abc").is_err());
        assert!(Htpasswd::parse("no colon").is_err());
    }
}

//! Where `nora login` keeps what it got: nora's own credentials file (one
//! token per server URL, read by every `--url` command), and the container
//! clients' auth file (`$REGISTRY_AUTH_FILE` or `~/.docker/config.json`) so
//! that podman, skopeo, buildah and docker push without a login of their own.
//! Both are written to a temporary file with mode 0600 and renamed over the
//! old one: a crash leaves the old file or the new, never half of one.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use serde::{Deserialize, Serialize};

/// One server's stored login.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Login {
    pub token: String,
    /// Who logged in (a user name, or the CI identity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<u64>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct File {
    #[serde(default)]
    servers: BTreeMap<String, Login>,
}

/// `$NORA_CREDENTIALS`, else `credentials.toml` in the user's config dir
/// (`$XDG_CONFIG_HOME/nora`, else `~/.config/nora`).
pub fn path() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("NORA_CREDENTIALS").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|p| !p.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => home()?.join(".config"),
    };
    Ok(base.join("nora").join("credentials.toml"))
}

fn home() -> Result<PathBuf, String> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .ok_or_else(|| "HOME is not set: cannot find the config directory".to_string())
}

/// A server URL as the key of its login: no trailing slash.
pub fn key(url: &str) -> String {
    url.trim_end_matches('/').to_string()
}

fn load(path: &Path) -> Result<File, String> {
    let max = crate::config::MAX_SMALL_FILE;
    match crate::config::read_small_file(path, max) {
        Ok(raw) => toml::from_str(&String::from_utf8_lossy(&raw))
            .map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(File::default()),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// The stored login for `url`, if any.
pub fn get(url: &str) -> Result<Option<Login>, String> {
    let path = path()?;
    Ok(load(&path)?.servers.remove(&key(url)))
}

/// Stores (or replaces) the login for `url`; returns the file written.
pub fn put(url: &str, login: Login) -> Result<PathBuf, String> {
    let path = path()?;
    let mut file = load(&path)?;
    file.servers.insert(key(url), login);
    let text = toml::to_string(&file).map_err(|e| e.to_string())?;
    write_private(&path, text.as_bytes())?;
    Ok(path)
}

/// Fails where `put` would, before a login asks the server for a token it
/// could then not keep: a file that cannot be read, a directory in its
/// place, no directory to write it in.
pub fn check_writable() -> Result<PathBuf, String> {
    let path = path()?;
    writable(&path)?;
    Ok(path)
}

fn writable(path: &Path) -> Result<(), String> {
    load(path)?;
    let dir = dir_of(path);
    // The directories `put` would create hang off the nearest that exists.
    let mut at = dir;
    while !at.exists() {
        match at.parent().filter(|p| !p.as_os_str().is_empty()) {
            Some(up) => at = up,
            None => break,
        }
    }
    let cannot = |why: String| format!("cannot write {}: {why}", path.display());
    if !at.is_dir() {
        return Err(cannot(format!("{} is not a directory", at.display())));
    }
    // An unnamed file where the kernel supports it: nothing left behind.
    tempfile::tempfile_in(at).map_err(|e| cannot(format!("{}: {e}", at.display())))?;
    Ok(())
}

/// Forgets the login for `url`; returns it if there was one.
pub fn remove(url: &str) -> Result<Option<Login>, String> {
    let path = path()?;
    let mut file = load(&path)?;
    let gone = file.servers.remove(&key(url));
    if gone.is_some() {
        let text = toml::to_string(&file).map_err(|e| e.to_string())?;
        write_private(&path, text.as_bytes())?;
    }
    Ok(gone)
}

/// The container clients' auth file: `$REGISTRY_AUTH_FILE`, else
/// `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json` (podman,
/// skopeo and buildah read the last when the first is unset).
pub fn container_auth_path() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("REGISTRY_AUTH_FILE").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    if let Some(d) = std::env::var_os("DOCKER_CONFIG").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(d).join("config.json"));
    }
    Ok(home()?.join(".docker").join("config.json"))
}

/// Adds `host`'s credentials to the container auth file, keeping every other
/// entry and key (credHelpers, proxies…) as it was.
pub fn put_container_auth(host: &str, user: &str, password: &str) -> Result<PathBuf, String> {
    let path = container_auth_path()?;
    let read = crate::config::read_small_file(&path, crate::config::MAX_SMALL_FILE);
    let mut doc: serde_json::Value = match read {
        Ok(raw) if raw.iter().all(u8::is_ascii_whitespace) => serde_json::json!({}),
        Ok(raw) => serde_json::from_slice(&raw)
            .map_err(|e| format!("{} is not JSON ({e}); not touching it", path.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => serde_json::json!({}),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let Some(obj) = doc.as_object_mut() else {
        return Err(format!(
            "{} is not a JSON object; not touching it",
            path.display()
        ));
    };
    let auths = obj.entry("auths").or_insert_with(|| serde_json::json!({}));
    let Some(auths) = auths.as_object_mut() else {
        return Err(format!("\"auths\" in {} is not an object", path.display()));
    };
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    auths.insert(host.to_string(), serde_json::json!({ "auth": auth }));
    let text = serde_json::to_vec_pretty(&doc).map_err(|e| e.to_string())?;
    write_private(&path, &text)?;
    Ok(path)
}

/// Writes `bytes` to `path` with mode 0600 (directory 0700 when created),
/// through a temporary file and a rename.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let dir = dir_of(path);
    if !dir.exists() {
        let mut b = std::fs::DirBuilder::new();
        b.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
        b.create(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let fail = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
    // tempfile creates its files with mode 0600.
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(fail)?;
    tmp.write_all(bytes).map_err(fail)?;
    tmp.as_file().sync_all().map_err(fail)?;
    tmp.persist(path).map_err(|e| fail(e.error))?;
    Ok(())
}

fn dir_of(path: &Path) -> &Path {
    path.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_private_and_entries_merge() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub").join("creds.toml");
        write_private(&p, b"x").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&p).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            let dmode = std::fs::metadata(p.parent().unwrap())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(dmode & 0o777, 0o700);
        }
        assert_eq!(key("http://h:1/"), "http://h:1");
    }

    #[test]
    fn what_cannot_be_written_is_known_before_writing() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plain");
        std::fs::write(&file, "").unwrap();
        let nested = dir.path().join("a/b/creds.toml");
        assert_eq!(writable(&nested), Ok(()));
        assert!(!dir.path().join("a").exists(), "nothing created");
        assert_eq!(writable(&file), Ok(()));
        for bad in [
            dir.path().to_path_buf(),
            file.join("creds.toml"),
            file.join("sub/creds.toml"),
        ] {
            let e = writable(&bad).unwrap_err();
            assert!(e.contains(&bad.display().to_string()), "{e}");
            assert!(e.contains("directory"), "{e}");
        }
        std::fs::write(&file, "not toml [").unwrap();
        assert!(writable(&file).is_err());
    }
}

//! Checks of a stopped server's storage directory, read straight from the
//! layout (src/storage/layout.rs): what must hold whatever the requests were
//! and wherever a process was killed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{sha256, sha512};

/// What a check found.
#[derive(Debug, Default)]
pub struct Counts {
    pub blobs: usize,
    pub manifests: usize,
    pub tags: usize,
    /// Blobs in gc's trash (only after a kill; see `check_after_a_kill`).
    pub trashed: usize,
    /// Manifests a removal the kill cut off had journalled (only after a
    /// kill), and how many of them a tag or an index names though their
    /// repository lost them (the restart puts those back).
    pub retiring: usize,
    pub retiring_named: usize,
}

/// Every blob holds the bytes its name says; every tag names a stored
/// manifest, and every manifest the blobs it needs.
pub fn check(data: &Path) -> Counts {
    let counts = check_with(data, false);
    eprintln!(
        "store: {} verified blobs, {} manifests, {} tags",
        counts.blobs, counts.manifests, counts.tags
    );
    counts
}

/// `check` of a store whose server was killed: a blob a killed gc had moved
/// to its trash counts as stored (a read moves it back; see
/// registry/gc.rs), and must hold its bytes too; a manifest a delete or
/// retention removed from its repository, journalled (`gc/retiring/`), may
/// still be named by a tag or an index (the restart puts it back; see
/// registry/retiring.rs).
pub fn check_after_a_kill(data: &Path) -> Counts {
    check_with(data, true)
}

/// A store on S3 (`env`: a server's `NORA_*` settings) copied by `nora
/// migrate` into the directory `to`, for these checks to read. (The copy
/// leaves out gc's trash and upload sessions.)
pub fn copy_of_s3(env: &[(&str, &str)], to: &Path) -> PathBuf {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_nora"))
        .args(["migrate", "--from", "s3", "--to"])
        .arg(to)
        .envs(env.iter().copied())
        .env_remove("NORA_CONFIG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "migrate: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    to.to_path_buf()
}

/// Leaves `data` (a stopped server's) as a DELETE by digest or retention
/// killed half way leaves it, while a push had moved a tag onto `digest`:
/// the revision gone from `repo`, and the removal's journal entry, a
/// minute old (its process is taken for gone). Returns (revision, entry).
pub fn leave_a_removal_cut_off(data: &Path, repo: &str, digest: &str) -> (PathBuf, PathBuf) {
    let (alg, hex) = digest.split_once(':').unwrap();
    let revision = data.join(format!(
        "repositories/{repo}/_manifests/revisions/{alg}/{hex}"
    ));
    std::fs::remove_file(&revision).unwrap();
    let entry = data.join("gc/retiring/killed");
    std::fs::create_dir_all(entry.parent().unwrap()).unwrap();
    let json =
        serde_json::json!({"repository": repo, "digests": [digest], "started": 1, "owner": null});
    std::fs::write(&entry, json.to_string()).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&entry)
        .and_then(|f| f.set_modified(std::time::SystemTime::now() - Duration::from_secs(120)))
        .unwrap();
    (revision, entry)
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p);
            } else if !e.file_name().to_string_lossy().starts_with('.') {
                // (s3s-fs keeps its metadata in dot files)
                out.push(p);
            }
        }
    }
    out
}

fn name(p: Option<&Path>) -> String {
    p.and_then(|p| p.file_name())
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

fn assert_holds(f: &Path, alg: &str, hex: &str) {
    let bytes = std::fs::read(f).unwrap();
    let got = match alg {
        "sha256" => sha256(&bytes),
        "sha512" => sha512(&bytes),
        other => panic!("blob of algorithm {other}: {}", f.display()),
    };
    assert_eq!(got, format!("{alg}:{hex}"), "{}", f.display());
}

/// `<repository>/_manifests/revisions/<alg>/<hex>`
fn revision(manifests: &Path, digest: &str) -> PathBuf {
    let (alg, hex) = digest.split_once(':').unwrap_or(("", ""));
    manifests.join("revisions").join(alg).join(hex)
}

/// `(repository, digest)` of every manifest a journalled removal names.
fn retiring(data: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for f in walk(&data.join("gc/retiring")) {
        let entry: serde_json::Value = serde_json::from_slice(&std::fs::read(&f).unwrap()).unwrap();
        let repo = entry["repository"].as_str().unwrap().to_string();
        for d in entry["digests"].as_array().unwrap() {
            out.push((repo.clone(), d.as_str().unwrap().to_string()));
        }
    }
    out
}

fn check_with(data: &Path, after_a_kill: bool) -> Counts {
    let retiring = if after_a_kill {
        retiring(data)
    } else {
        Vec::new()
    };
    let named = std::cell::RefCell::new(std::collections::HashSet::new());
    // In its repository, or (after a kill) journalled to come back.
    let in_repository = |manifests: &Path, digest: &str| {
        let repo = manifests
            .parent()
            .and_then(|r| r.strip_prefix(data.join("repositories")).ok())
            .map(|r| r.to_string_lossy().into_owned())
            .unwrap_or_default();
        if revision(manifests, digest).is_file() {
            return true;
        }
        let journalled = retiring.iter().any(|(r, d)| *r == repo && d == digest);
        if journalled {
            named.borrow_mut().insert((repo, digest.to_string()));
        }
        journalled
    };
    let mut counts = Counts {
        retiring: retiring.len(),
        ..Counts::default()
    };
    for f in walk(&data.join("blobs")) {
        // blobs/<alg>/<hex[0..2]>/<hex>/data
        assert_holds(&f, &name(f.ancestors().nth(3)), &name(f.parent()));
        counts.blobs += 1;
    }
    for f in walk(&data.join("gc/trash")) {
        // gc/trash/<alg>/<hex>
        assert_holds(&f, &name(f.parent()), &name(Some(&f)));
        counts.trashed += 1;
    }
    let stored = |digest: &str| {
        let (alg, hex) = digest.split_once(':').unwrap_or(("", ""));
        hex.len() > 2
            && (data
                .join(format!("blobs/{alg}/{}/{hex}/data", &hex[..2]))
                .is_file()
                || after_a_kill && data.join(format!("gc/trash/{alg}/{hex}")).is_file())
    };
    let bytes_of = |alg: &str, hex: &str| {
        std::fs::read(data.join(format!("blobs/{alg}/{}/{hex}/data", &hex[..2])))
            .or_else(|_| std::fs::read(data.join(format!("gc/trash/{alg}/{hex}"))))
            .unwrap()
    };
    for f in walk(&data.join("repositories")) {
        let kind = f.parent().and_then(|p| p.file_name());
        if kind == Some("tags".as_ref()) {
            let text = std::fs::read_to_string(&f).unwrap();
            let digest = text.lines().next().unwrap();
            assert!(
                stored(digest),
                "tag {} names {digest}, not stored",
                f.display()
            );
            let manifests = f.parent().and_then(|p| p.parent()).unwrap();
            assert!(
                in_repository(manifests, digest),
                "tag {} names {digest}, not in its repository",
                f.display()
            );
            counts.tags += 1;
        }
        // A manifest in a repository has every blob it names (even with gc
        // running meanwhile with no grace), but for the layers never
        // uploaded.
        let in_revisions = f.ancestors().nth(2).and_then(|p| p.file_name());
        if in_revisions == Some("revisions".as_ref()) {
            let (alg, hex) = (name(f.parent()), name(Some(&f)));
            let digest = format!("{alg}:{hex}");
            assert!(stored(&digest), "manifest {digest} not stored");
            let m: serde_json::Value = serde_json::from_slice(&bytes_of(&alg, &hex)).unwrap();
            let children = m["manifests"].as_array().into_iter().flatten();
            let manifests = f.ancestors().nth(3).unwrap();
            // (Only what nora took for an index, by the media type it was
            // pushed with: an image manifest may carry a stray `manifests`.)
            let pushed_as = std::fs::read_to_string(&f).unwrap_or_default();
            let index = pushed_as.contains("index") || pushed_as.contains("list");
            for child in children.clone().filter(|_| index) {
                let child = child["digest"].as_str().unwrap_or_default();
                assert!(
                    in_repository(manifests, child),
                    "index {digest} lists {child}, not in its repository"
                );
            }
            let layers = m["layers"].as_array().into_iter().flatten();
            for d in children
                .filter(|_| index)
                .chain(layers)
                .chain([&m["config"]])
            {
                let nondistributable = d["mediaType"]
                    .as_str()
                    .is_some_and(|t| t.contains("nondistributable") || t.contains("foreign"));
                if let Some(named) = d["digest"].as_str()
                    && !nondistributable
                {
                    assert!(
                        stored(named),
                        "manifest {digest} ({}) names {named}, not stored",
                        f.display()
                    );
                }
            }
            counts.manifests += 1;
        }
    }
    counts.retiring_named = named.borrow().len();
    counts
}

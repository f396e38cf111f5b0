//! `kill -9` at random moments of a busy registry, round after round on the
//! same storage. Lanes of clients push images (monolithic and chunked
//! uploads, cross-repository mounts, indexes), move and delete tags, delete
//! manifests, and run gc (with no grace) and retention, until the server is
//! killed. Then, on the stopped store: no half blob, no tag without its
//! manifest, no manifest without its blobs. After the restart: every tag
//! says what was acknowledged before the kill (or what the one request each
//! lane had in flight would have made it), and its image pulls
//! byte-identical.
//!
//! Seeded: the run prints its seed and `NORA_CRASH_SEED=<n>` replays its
//! choices (not its timing); `NORA_CRASH_ROUNDS` sets how many kills
//! (default 8).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const LANES: usize = 4;
/// The tags whose every state the test follows (`dev-*` ones it does not:
/// retention takes those).
const TAGS: [&str; 3] = ["t0", "t1", "t2"];
const INDEX_TAG: &str = "i0";

const RETENTION: &str = r#"
[[retention]]
match = "crash/**:dev-*"
keep_last = 1
"#;

/// What a tag may be: a manifest's digest, or absent.
type State = Option<String>;

/// One client, alone on its repository (but for the blobs it mounts from
/// the others'), doing one request at a time.
struct Lane {
    n: usize,
    repo: String,
    rng: StdRng,
    /// Every state each followed tag may be in now: one once its last
    /// change was answered, two after a change whose answer the kill took.
    tags: BTreeMap<String, BTreeSet<State>>,
    /// Manifests this lane pushed under `dev-*` tags, to move a followed
    /// tag onto (the promotion of a build, as CI does it).
    devs: Vec<(String, Vec<u8>)>,
    /// Layers this lane pushed, which the others may mount.
    made: u64,
    /// Index manifests: their digests, to tell them apart when checking.
    indexes: BTreeSet<String>,
}

/// The server died under the request (the kill, the only cause here).
struct Died;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Incompressible bytes, the same for the same `seed`.
fn layer(seed: u64, size: usize) -> Vec<u8> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..size).map(|_| rng.random()).collect()
}

/// The layers every lane may push: each lane's are mounted, re-pushed and
/// collected by the others.
fn shared_layer(i: u64) -> Vec<u8> {
    layer(1_000_000 + i, 20_000 + i as usize * 1000)
}

fn status_of(r: Result<reqwest::Response, reqwest::Error>) -> Result<reqwest::Response, Died> {
    r.map_err(|_| Died)
}

impl Lane {
    fn new(n: usize, seed: u64) -> Lane {
        Lane {
            n,
            repo: format!("crash/lane{n}"),
            rng: StdRng::seed_from_u64(seed ^ (n as u64 * 0x9E37_79B9)),
            tags: TAGS
                .iter()
                .chain([&INDEX_TAG])
                .map(|t| (t.to_string(), BTreeSet::from([None])))
                .collect(),
            devs: Vec::new(),
            made: 0,
            indexes: BTreeSet::new(),
        }
    }

    /// The one digest `tag` names for sure, if it is known to name one.
    fn sure(&self, tag: &str) -> Option<String> {
        match self.tags[tag].iter().collect::<Vec<_>>()[..] {
            [Some(d)] => Some(d.clone()),
            _ => None,
        }
    }

    /// `tag` is `state` now: answered.
    fn set(&mut self, tag: &str, state: State) {
        self.tags.insert(tag.to_string(), BTreeSet::from([state]));
    }

    /// `tag` may be `state` now too: the change was sent, its answer lost.
    fn maybe(&mut self, tag: &str, state: State) {
        self.tags.entry(tag.to_string()).or_default().insert(state);
    }

    /// Requests until the server dies.
    async fn run(&mut self, c: &Client) {
        while self.step(c).await.is_ok() {}
    }

    async fn step(&mut self, c: &Client) -> Result<(), Died> {
        let tag = TAGS[self.rng.random_range(0..TAGS.len())].to_string();
        match self.rng.random_range(0..100) {
            0..30 => self.push(c, &tag).await,
            30..40 => {
                let dev = format!("dev-{}", self.made);
                self.push(c, &dev).await
            }
            40..50 => self.promote(c, &tag).await,
            50..58 => self.push_index(c).await,
            58..66 => self.delete_tag(c, &tag).await,
            66..74 => self.delete_digest(c, &tag).await,
            74..82 => self.gc(c).await,
            82..88 => self.retention(c).await,
            _ => self.pull(c, &tag).await,
        }
    }

    /// A blob into the lane's repository, the way the dice say: HEAD first
    /// (a client skips what is there), then a mount from another lane, a
    /// monolithic POST, or a session of two or three PATCHes.
    async fn upload(&mut self, c: &Client, blob: &[u8]) -> Result<bool, Died> {
        let d = sha256(blob);
        let repo = &self.repo;
        let head = status_of(
            c.http
                .head(c.u(&format!("/v2/{repo}/blobs/{d}")))
                .send()
                .await,
        )?;
        if head.status() == 200 && self.rng.random_bool(0.8) {
            return Ok(true);
        }
        let from = format!("crash/lane{}", (self.n + 1) % LANES);
        let start = match self.rng.random_range(0..3) {
            0 => format!("/v2/{repo}/blobs/uploads/?mount={d}&from={from}"),
            1 => {
                let r = c
                    .http
                    .post(c.u(&format!("/v2/{repo}/blobs/uploads/?digest={d}")))
                    .body(blob.to_vec())
                    .send()
                    .await;
                return Ok(answered(status_of(r)?, &[201], "monolithic upload").await);
            }
            _ => format!("/v2/{repo}/blobs/uploads/"),
        };
        let r = status_of(c.http.post(c.u(&start)).send().await)?;
        match r.status().as_u16() {
            201 => return Ok(true), // mounted
            202 => {}               // a session (also when the mount could not be)
            _ => return Ok(answered(r, &[202], "upload start").await),
        }
        let mut loc = c.loc(r.headers()["location"].to_str().unwrap());
        let parts = self.rng.random_range(1..=3);
        let step = blob.len().div_ceil(parts);
        for (i, part) in blob.chunks(step).enumerate() {
            let from = i * step;
            let r = c
                .http
                .patch(&loc)
                .header("Content-Type", "application/octet-stream")
                .header("Content-Range", format!("{from}-{}", from + part.len() - 1))
                .body(part.to_vec())
                .send()
                .await;
            let r = status_of(r)?;
            if r.status() != 202 {
                return Ok(answered(r, &[202], "PATCH").await);
            }
            loc = c.loc(r.headers()["location"].to_str().unwrap());
        }
        let r = status_of(c.http.put(closing_url(&loc, &d)).send().await)?;
        Ok(answered(r, &[201], "closing PUT").await)
    }

    /// Pushes a new image (its layer new, or one of the shared ones) under
    /// `tag`.
    async fn push(&mut self, c: &Client, tag: &str) -> Result<(), Died> {
        self.made += 1;
        let blob = if self.rng.random_bool(0.5) {
            shared_layer(self.rng.random_range(0..6))
        } else {
            let seed = (self.n as u64) << 32 | self.made;
            layer(seed, self.rng.random_range(1_000..300_000))
        };
        // A config of its own, so that every image is a manifest of its own.
        let config = format!(r#"{{"os":"linux","lane":{},"n":{}}}"#, self.n, self.made);
        for b in [config.as_bytes(), &blob] {
            if !self.upload(c, b).await? {
                return Ok(());
            }
        }
        let manifest = image_manifest(
            &sha256(config.as_bytes()),
            config.len(),
            &[(sha256(&blob), blob.len())],
        );
        if self.put_manifest(c, tag, OCI_MANIFEST, &manifest).await? && tag.starts_with("dev-") {
            self.devs.push((sha256(&manifest), manifest));
        }
        Ok(())
    }

    /// PUTs `body` under `tag`, following the tag's state; whether it was
    /// stored. A refusal is one of a manifest whose blob a gc took first.
    async fn put_manifest(
        &mut self,
        c: &Client,
        tag: &str,
        media_type: &str,
        body: &[u8],
    ) -> Result<bool, Died> {
        let d = sha256(body);
        let followed = self.tags.contains_key(tag);
        let r = c
            .http
            .put(c.u(&format!("/v2/{}/manifests/{tag}", self.repo)))
            .header("Content-Type", media_type)
            .body(body.to_vec())
            .send()
            .await;
        let Ok(r) = r else {
            if followed {
                self.maybe(tag, Some(d));
            }
            return Err(Died);
        };
        let stored = r.status() == 201;
        if !stored {
            let (status, code) = oci_error(r).await;
            assert_eq!(
                (status, code.as_str()),
                (400, "MANIFEST_BLOB_UNKNOWN"),
                "lane {}: PUT {tag}",
                self.n
            );
        } else if followed {
            self.set(tag, Some(d));
        }
        Ok(stored)
    }

    /// Moves `tag` onto an image pushed under a `dev-*` tag, which
    /// retention may be removing at that moment.
    async fn promote(&mut self, c: &Client, tag: &str) -> Result<(), Died> {
        if self.devs.is_empty() {
            return Ok(());
        }
        // One of the last few: retention keeps only the newest.
        let back = self.rng.random_range(1..=self.devs.len().min(3));
        let body = self.devs[self.devs.len() - back].1.clone();
        self.put_manifest(c, tag, OCI_MANIFEST, &body)
            .await
            .map(|_| ())
    }

    /// An index of the images `t0` and `t1` name.
    async fn push_index(&mut self, c: &Client) -> Result<(), Died> {
        let (Some(a), Some(b)) = (self.sure("t0"), self.sure("t1")) else {
            return Ok(());
        };
        let mut entries = Vec::new();
        for (d, arch) in [(a, "amd64"), (b, "arm64")] {
            // A revision retention retires is back (see `Registry::retire`)
            // once it finds the tag; a request in that moment misses it.
            let mut tries = 0;
            let r = loop {
                let r = status_of(
                    c.http
                        .get(c.u(&format!("/v2/{}/manifests/{d}", self.repo)))
                        .header("Accept", OCI_MANIFEST)
                        .send()
                        .await,
                )?;
                tries += 1;
                if r.status() == 200 || tries == 20 {
                    break r;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            };
            assert_eq!(r.status(), 200, "lane {}: {d}, tagged, is gone", self.n);
            if tries > 1 {
                eprintln!("crash: lane {}: {d} back after {tries} tries", self.n);
            }
            let size = r.bytes().await.map_err(|_| Died)?.len();
            entries.push(serde_json::json!({
                "mediaType": OCI_MANIFEST, "digest": d, "size": size,
                "platform": {"architecture": arch, "os": "linux"},
            }));
        }
        let index = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries,
        }))
        .unwrap();
        // (Known as an index before it is sent: the kill may take the answer.)
        self.indexes.insert(sha256(&index));
        self.put_manifest(c, INDEX_TAG, OCI_INDEX, &index)
            .await
            .map(|_| ())
    }

    async fn delete_tag(&mut self, c: &Client, tag: &str) -> Result<(), Died> {
        let r = c
            .http
            .delete(c.u(&format!("/v2/{}/manifests/{tag}", self.repo)))
            .send()
            .await;
        let Ok(r) = r else {
            self.maybe(tag, None);
            return Err(Died);
        };
        match r.status().as_u16() {
            202 => self.set(tag, None),
            404 => assert!(
                self.tags[tag].contains(&None),
                "lane {}: {tag} not found, but it was {:?}",
                self.n,
                self.tags[tag]
            ),
            other => panic!("lane {}: DELETE {tag}: {other}", self.n),
        }
        Ok(())
    }

    /// DELETE by the digest `tag` names, which takes every tag naming it.
    async fn delete_digest(&mut self, c: &Client, tag: &str) -> Result<(), Died> {
        let Some(d) = self.sure(tag) else {
            return Ok(());
        };
        let r = c
            .http
            .delete(c.u(&format!("/v2/{}/manifests/{d}", self.repo)))
            .send()
            .await;
        let naming: Vec<String> = (self.tags.iter())
            .filter(|(_, s)| s.contains(&Some(d.clone())))
            .map(|(t, _)| t.clone())
            .collect();
        let Ok(r) = r else {
            for t in naming {
                self.maybe(&t, None);
            }
            return Err(Died);
        };
        match r.status().as_u16() {
            202 => {
                for t in naming {
                    self.set(&t, None);
                }
            }
            // Listed by the index: refused, and nothing changed.
            409 => {}
            other => panic!("lane {}: DELETE {d} ({tag}): {other}", self.n),
        }
        Ok(())
    }

    async fn gc(&mut self, c: &Client) -> Result<(), Died> {
        let r = c
            .http
            .post(c.u("/api/v1/gc"))
            .json(&serde_json::json!({ "grace_seconds": 0 }))
            .send()
            .await;
        // 409: another lane's, or a killed one's lock (taken over after 60 s).
        answered(status_of(r)?, &[200, 409], "gc").await;
        Ok(())
    }

    async fn retention(&mut self, c: &Client) -> Result<(), Died> {
        let r = c
            .http
            .post(c.u("/api/v1/retention"))
            .json(&serde_json::json!({}))
            .send()
            .await;
        answered(status_of(r)?, &[200, 409], "retention").await;
        Ok(())
    }

    /// A pull of what `tag` surely names, checked byte for byte (a pull
    /// also brings back a blob a killed gc left in its trash).
    async fn pull(&self, c: &Client, tag: &str) -> Result<(), Died> {
        let Some(d) = self.sure(tag).filter(|d| !self.indexes.contains(d)) else {
            return Ok(());
        };
        let lane = self.n;
        let get = |path: String| async move {
            let r = status_of(
                c.http
                    .get(c.u(&path))
                    .header("Accept", OCI_MANIFEST)
                    .send()
                    .await,
            )?;
            assert_eq!(r.status(), 200, "lane {lane}: GET {path}");
            r.bytes().await.map_err(|_| Died)
        };
        let body = get(format!("/v2/{}/manifests/{tag}", self.repo)).await?;
        assert_eq!(sha256(&body), d, "lane {}: {tag}", self.n);
        let m: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let layers = m["layers"].as_array().unwrap().iter();
        for blob in layers.chain([&m["config"]]) {
            let blob = blob["digest"].as_str().unwrap();
            let bytes = get(format!("/v2/{}/blobs/{blob}", self.repo)).await?;
            assert_eq!(sha256(&bytes), blob, "lane {}: {tag}'s blob", self.n);
        }
        Ok(())
    }

    /// After a restart: every followed tag is in one of its states, and
    /// what it names pulls whole.
    async fn verify(&self, c: &Client) {
        for (tag, states) in &self.tags {
            let r = c
                .http
                .get(c.u(&format!("/v2/{}/manifests/{tag}", self.repo)))
                .header("Accept", format!("{OCI_MANIFEST}, {OCI_INDEX}"))
                .send()
                .await
                .unwrap();
            let found: State = match r.status().as_u16() {
                200 => Some(
                    r.headers()["docker-content-digest"]
                        .to_str()
                        .unwrap()
                        .to_string(),
                ),
                404 => None,
                other => panic!("{}:{tag}: {other}", self.repo),
            };
            assert!(
                states.contains(&found),
                "{}:{tag} is {found:?}, not one of {states:?}",
                self.repo
            );
            let Some(d) = found else { continue };
            if self.indexes.contains(&d) {
                let index: serde_json::Value = r.json().await.unwrap();
                for child in index["manifests"].as_array().unwrap() {
                    let child = child["digest"].as_str().unwrap();
                    let r = c
                        .http
                        .get(c.u(&format!("/v2/{}/manifests/{child}", self.repo)))
                        .header("Accept", OCI_MANIFEST)
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.status(), 200, "{}:{tag}'s child {child}", self.repo);
                }
            } else {
                verify_pull(c, &self.repo, tag, &d).await;
            }
        }
    }

    /// Answered, a change is made: from now on each tag is what it was
    /// found to be.
    async fn settle(&mut self, c: &Client) {
        for tag in self.tags.keys().cloned().collect::<Vec<_>>() {
            let r = c
                .http
                .head(c.u(&format!("/v2/{}/manifests/{tag}", self.repo)))
                .header("Accept", format!("{OCI_MANIFEST}, {OCI_INDEX}"))
                .send()
                .await
                .unwrap();
            let found = (r.status() == 200).then(|| {
                r.headers()["docker-content-digest"]
                    .to_str()
                    .unwrap()
                    .to_string()
            });
            self.set(&tag, found);
        }
    }
}

/// Whether `r` has one of the `expected` statuses; anything else but a
/// 5xx is a refusal the lane takes (a gc took a blob, another lane holds
/// the lock), and a 5xx fails the test.
async fn answered(r: reqwest::Response, expected: &[u16], what: &str) -> bool {
    let status = r.status().as_u16();
    if expected.contains(&status) {
        return true;
    }
    let body = r.text().await.unwrap_or_default();
    assert!(status < 500, "{what}: {status} {body}");
    false
}

fn no_panic(s: &Server, round: usize) {
    let log = s.log_text();
    assert!(
        !log.contains("panicked") && !log.contains(" ERROR "),
        "round {round}: the log has a panic or an ERROR line:\n{log}"
    );
}

/// Where the rounds run: a directory, or S3 (its objects checked through a
/// `nora migrate` copy at the end: a copy leaves out gc's trash, which a
/// stopped store may still hold, so the rounds between only check through
/// the API).
enum Store<'a> {
    Disk,
    S3(&'a common::s3::S3Server),
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_random_moments_of_a_busy_registry_loses_nothing_acknowledged() {
    rounds(Store::Disk, env_or("NORA_CRASH_ROUNDS", 8)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_random_moments_on_s3() {
    let s3 = common::s3::S3Server::start(common::s3::Kind::Moto);
    rounds(Store::S3(&s3), env_or("NORA_CRASH_ROUNDS", 4)).await;
}

async fn rounds(store: Store<'_>, rounds: usize) {
    let seed: u64 = env_or("NORA_CRASH_SEED", rand::rng().random());
    eprintln!("crash: seed {seed} (NORA_CRASH_SEED={seed} replays its choices)");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("config.toml");
    std::fs::write(&config, RETENTION).unwrap();
    let s3_env = match &store {
        Store::S3(s3) => s3.env("crash"),
        Store::Disk => Vec::new(),
    };
    let mut env: Vec<(&str, &str)> = s3_env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    env.push(("NORA_CONFIG", config.to_str().unwrap()));
    let mut timing = StdRng::seed_from_u64(seed);
    let mut lanes: Vec<Lane> = (0..LANES).map(|n| Lane::new(n, seed)).collect();

    for round in 1..=rounds {
        let mut s = Server::start_on(&data, &env);
        let c = Client {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
            url: s.url.clone(),
        };
        for lane in &lanes {
            lane.verify(&c).await;
        }
        let running: Vec<_> = lanes
            .drain(..)
            .map(|mut lane| {
                let c = Client {
                    http: c.http.clone(),
                    url: c.url.clone(),
                };
                tokio::spawn(async move {
                    lane.run(&c).await;
                    lane
                })
            })
            .collect();
        // (Longer on S3: there each request is several to moto, in Python.)
        let ms = match store {
            Store::Disk => timing.random_range(300..3000),
            Store::S3(_) => timing.random_range(1000..6000),
        };
        tokio::time::sleep(Duration::from_millis(ms)).await;
        s.kill9();
        for lane in running {
            lanes.push(lane.await.expect("a lane failed"));
        }
        no_panic(&s, round);
        if let Store::Disk = store {
            let counts = store::check_after_a_kill(&data);
            eprintln!("crash: after kill {round}: {counts:?}");
        }
    }

    // Last, a whole gc: the trash emptied, the store is whole and every tag
    // still what it was.
    let s = Server::start_on(&data, &env);
    let c = s.client();
    for lane in &mut lanes {
        lane.verify(&c).await;
        lane.settle(&c).await;
    }
    // (A lock left by a gc killed in the last round is taken over: its
    // process is gone.)
    assert_eq!(c.gc(0).await.status(), 200, "the last gc");
    for lane in &lanes {
        lane.verify(&c).await;
    }
    no_panic(&s, rounds + 1);
    drop(s);
    match store {
        Store::Disk => {
            let counts = store::check(&data);
            assert_eq!(counts.trashed, 0, "gc left its trash");
        }
        Store::S3(_) => {
            store::check(&store::copy_of_s3(&env, &dir.path().join("copy")));
        }
    }
}

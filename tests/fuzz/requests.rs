//! The fuzz test's requests: paths, queries, headers and bodies of the OCI
//! API's shapes, each part drawn from a pool of valid and broken values, and
//! bytes that are not HTTP at all.

use base64::Engine;
use rand::Rng;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use serde_json::json;

use crate::common::{DOCKER_LIST, DOCKER_MANIFEST, OCI_CONFIG, OCI_INDEX, OCI_LAYER, OCI_MANIFEST};

/// The config blob of `Client::push_image`.
pub const CONFIG: &[u8] = br#"{"architecture":"amd64","os":"linux"}"#;

/// What the run pushed first, to build valid parts from.
pub struct Known {
    pub repo: &'static str,
    pub tag: &'static str,
    pub manifest: String,
    pub manifest_bytes: Vec<u8>,
    pub config: String,
    pub layer: String,
    pub layer_bytes: Vec<u8>,
    /// Upload locations answered so far: later requests reuse them, so
    /// chunks, closes and cancels hit live sessions, not only unknown ids.
    pub sessions: std::sync::Mutex<Vec<String>>,
    /// Basic credentials that pass, when the server checks them.
    pub login: Option<String>,
}

pub struct Exchange {
    pub method: String,
    pub path: String,
    pub raw: Vec<u8>,
    /// Well-formed HTTP: it must be answered, and by the API's rules.
    pub well_formed: bool,
}

pub fn sessions(k: &Known) -> Vec<String> {
    k.sessions.lock().unwrap().clone()
}

fn random_text(rng: &mut StdRng, max: usize) -> String {
    // No space: these go into request targets too.
    const CHARS: &[u8] = b"abcXYZ019._-/:%@+~!*$";
    let n = rng.random_range(0..=max);
    (0..n)
        .map(|_| *CHARS.choose(rng).unwrap_or(&b'a') as char)
        .collect()
}

fn pick(rng: &mut StdRng, xs: &[String]) -> String {
    xs.choose(rng).cloned().unwrap_or_default()
}

fn name(rng: &mut StdRng, k: &Known) -> String {
    // Half the requests name the image's repository, or they would mostly
    // stop at the name check.
    if rng.random_bool(0.5) {
        return k.repo.into();
    }
    let xs = vec![
        k.repo.into(),
        k.repo.into(),
        "fuzz/other".into(),
        "FUZZ/app".into(),
        "a/../b".into(),
        "a//b".into(),
        "-a".into(),
        "a-".into(),
        "a__b/c.d-e".into(),
        "x".repeat(300),
        "%2e%2e/x".into(),
        "fuzz%2Fapp".into(),
        "a%00b".into(),
        "caf%C3%A9".into(),
        "_catalog".into(),
        "v2".into(),
        "a/blobs".into(),
        "a/manifests/b".into(),
        "a/tags/list".into(),
        random_text(rng, 20),
    ];
    pick(rng, &xs)
}

fn digest(rng: &mut StdRng, k: &Known) -> String {
    if rng.random_bool(0.5) {
        return pick(
            rng,
            &[k.layer.clone(), k.config.clone(), k.manifest.clone()],
        );
    }
    let xs = vec![
        k.layer.clone(),
        k.config.clone(),
        k.manifest.clone(),
        format!("sha256:{}", "0".repeat(64)),
        "sha256:abc".into(),
        format!("sha512:{}", "a".repeat(128)),
        format!("sha512:{}", "a".repeat(64)),
        "md5:d41d8cd98f00b204e9800998ecf8427e".into(),
        format!("sha256:{}", "G".repeat(64)),
        k.layer.to_uppercase(),
        format!("sha256:{}", "A".repeat(64)),
        ":".into(),
        "sha256".into(),
        "sha256%3A00".into(),
        random_text(rng, 80),
    ];
    pick(rng, &xs)
}

fn reference(rng: &mut StdRng, k: &Known) -> String {
    if rng.random_bool(0.4) {
        return digest(rng, k);
    }
    let xs = [
        k.tag.to_string(),
        "v1".into(),
        "a".repeat(128),
        "a".repeat(129),
        ".x".into(),
        "-x".into(),
        "t%20x".into(),
        "%ff".into(),
        "..".into(),
        random_text(rng, 40),
    ];
    pick(rng, &xs)
}

fn upload_id(rng: &mut StdRng, k: &Known) -> String {
    // The id of a live session, for another repository's path too.
    if rng.random_bool(0.3)
        && let Some(loc) = sessions(k).choose(rng)
        && let Some(id) = loc.split('?').next().and_then(|p| p.rsplit('/').next())
    {
        return id.to_string();
    }
    let xs = [
        "0".into(),
        "..".into(),
        "..%2F..%2Fgc%2Flock".into(),
        "0123456789abcdef0123456789abcdef".into(),
        "0123456789ABCDEF0123456789ABCDEG".into(),
        random_text(rng, 40),
    ];
    pick(rng, &xs)
}

fn query(rng: &mut StdRng, k: &Known) -> String {
    if rng.random_bool(0.4) {
        return String::new();
    }
    let d = digest(rng, k);
    let xs = vec![
        String::new(),
        String::new(),
        format!("?digest={d}"),
        format!("?digest={}", k.layer),
        format!("?mount={d}&from={}", k.repo),
        format!("?mount={}&from=FUZZ", k.layer),
        format!("?mount={d}"),
        "?n=0".into(),
        "?n=-1".into(),
        "?n=abc".into(),
        "?n=99999999999999999999999".into(),
        // The largest n that parses: a page of "n + 1" once overflowed.
        format!("?n={}", u64::MAX),
        "?n=2&last=zzz".into(),
        "?last=".into(),
        "?artifactType=application%2Fx".into(),
        "?tag=t1&tag=T!&tag=".into(),
        "?digest-algorithm=sha512".into(),
        "?digest-algorithm=md5".into(),
        "?%zz=%".into(),
        "?&&=&".into(),
        format!("?{}", random_text(rng, 30)),
    ];
    pick(rng, &xs)
}

/// A path of the API's shapes, with parts from the pools above.
fn path(rng: &mut StdRng, k: &Known) -> String {
    let name = name(rng, k);
    let tail = match rng.random_range(0..12) {
        0 => return "/v2/".into(),
        1 => return "/v2/_catalog".into(),
        2 => {
            if let Some(loc) = sessions(k).choose(rng) {
                return loc.clone();
            }
            "blobs/uploads/".into()
        }
        3 => format!("blobs/{}", digest(rng, k)),
        4 | 5 => format!("manifests/{}", reference(rng, k)),
        6 => "tags/list".into(),
        7 => format!("referrers/{}", digest(rng, k)),
        8 => "blobs/uploads/".into(),
        9 => format!("blobs/uploads/{}", upload_id(rng, k)),
        10 => {
            let reference = format!("{name}:{}", reference(rng, k));
            let others = [
                "/api/v1/images".to_string(),
                format!("/api/v1/images?pattern={}", random_text(rng, 12)),
                format!("/api/v1/inspect?ref={reference}"),
                "/api/v1/inspect".into(),
                "/api/v1/tag".into(),
                "/api/v1/delete".into(),
                "/api/v1/gc".into(),
                "/api/v1/retention".into(),
                "/api/v1/usage".into(),
                "/api/v1/jobs".into(),
                "/api/v1/tokens".into(),
                format!("/api/v1/tokens/{}", random_text(rng, 12)),
                format!("/api/v1/tokens?name={}", random_text(rng, 12)),
                "/api-docs/openapi.json".into(),
                "/health".into(),
                "/ready".into(),
                "/metrics".into(),
                "/token?service=nora&scope=repository:fuzz/app:pull,push".into(),
                format!("/{}", random_text(rng, 30)),
            ];
            return pick(rng, &others);
        }
        _ => random_text(rng, 30),
    };
    format!("/v2/{name}/{tail}")
}

/// An admin API request: the fields of its requests, with values of the
/// right type and of the wrong one, and fields none has.
fn admin_body(rng: &mut StdRng, k: &Known, path: &str) -> Vec<u8> {
    let reference = format!("{}:{}", k.repo, reference(rng, k));
    let fields = [
        ("source", json!(reference)),
        ("source", json!(format!("{}@{}", k.repo, k.manifest))),
        ("target", json!(format!("{}:copy", k.repo))),
        ("target", json!("FUZZ:x")),
        ("reference", json!(reference)),
        ("reference", json!(5)),
        ("expect", json!(k.manifest)),
        ("expect", json!("sha256:zz")),
        ("dry_run", json!(true)),
        ("dry_run", json!(false)),
        ("dry_run", json!("yes")),
        ("grace_seconds", json!(0)),
        ("grace_seconds", json!(-1)),
        ("grace_seconds", json!(1e30)),
        ("grace_seconds", json!(u64::MAX)),
        ("name", json!(random_text(rng, 70))),
        ("name", json!("fuzz-token")),
        ("role", json!("read")),
        ("role", json!("superuser")),
        ("scopes", json!(["push:fuzz/*", "pull:**", "nonsense"])),
        ("expires_in", json!(u64::MAX)),
        ("expires_in", json!(0)),
        ("dryrun", json!(true)),
    ];
    if rng.random_bool(0.1) {
        return (0..rng.random_range(0..64)).map(|_| rng.random()).collect();
    }
    if rng.random_bool(0.4) {
        let copy = format!("{}:copy", k.repo);
        let valid = match path {
            "/api/v1/tag" => json!({"source": format!("{}:{}", k.repo, k.tag), "target": copy}),
            "/api/v1/delete" => json!({"reference": copy, "dry_run": rng.random_bool(0.5)}),
            "/api/v1/gc" => json!({"dry_run": rng.random_bool(0.5), "grace_seconds": 0}),
            "/api/v1/tokens" => {
                json!({"name": format!("t{}", rng.random::<u32>()), "role": "read", "expires_in": 60})
            }
            _ => json!({}),
        };
        return serde_json::to_vec(&valid).unwrap_or_default();
    }
    // Mostly the fields the endpoint knows, so that some requests run.
    let known: &[&str] = match path {
        "/api/v1/tag" => &["source", "target"],
        "/api/v1/delete" => &["reference", "dry_run", "expect"],
        "/api/v1/gc" => &["dry_run", "grace_seconds"],
        "/api/v1/retention" => &["dry_run"],
        _ => &["name", "role", "scopes", "expires_in"],
    };
    let mut o = serde_json::Map::new();
    for _ in 0..rng.random_range(0..5) {
        let any = rng.random_bool(0.1);
        let fitting: Vec<_> = fields
            .iter()
            .filter(|(key, _)| any || known.contains(key))
            .collect();
        if let Some((key, value)) = fitting.choose(rng) {
            o.insert(key.to_string(), value.clone());
        }
    }
    serde_json::to_vec(&o).unwrap_or_default()
}

/// A manifest body: the pushed image's, one built from its parts with a
/// field broken, or not JSON at all.
fn body(rng: &mut StdRng, k: &Known) -> Vec<u8> {
    let config = json!({"mediaType": OCI_CONFIG, "digest": k.config, "size": 37});
    let layer = json!({"mediaType": OCI_LAYER, "digest": k.layer, "size": 1000});
    let mut m = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config,
        "layers": [layer],
    });
    let broken = [
        ("schemaVersion", json!(1)),
        ("schemaVersion", json!("2")),
        ("mediaType", json!(OCI_INDEX)),
        ("mediaType", json!(DOCKER_LIST)),
        ("mediaType", json!(42)),
        ("config", json!(null)),
        ("config", json!({"digest": k.config})),
        (
            "config",
            json!({"mediaType": OCI_CONFIG, "digest": k.config, "size": -1}),
        ),
        (
            "config",
            json!({"mediaType": OCI_CONFIG, "digest": k.config, "size": 1e30}),
        ),
        (
            "config",
            json!({"mediaType": OCI_CONFIG, "digest": "sha256:zz", "size": 1}),
        ),
        ("layers", json!({})),
        ("layers", json!([1, 2, 3])),
        (
            "layers",
            json!([{"mediaType": "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
                           "digest": format!("sha256:{}", "1".repeat(64)), "size": 5,
                           "urls": ["http://example.invalid/x"]}]),
        ),
        (
            "manifests",
            json!([{"mediaType": OCI_MANIFEST, "digest": k.manifest, "size": k.manifest_bytes.len()}]),
        ),
        (
            "manifests",
            json!([{"mediaType": OCI_MANIFEST, "digest": k.layer, "size": 1}]),
        ),
        (
            "subject",
            json!({"mediaType": OCI_MANIFEST, "digest": k.manifest, "size": k.manifest_bytes.len()}),
        ),
        (
            "subject",
            json!({"mediaType": OCI_MANIFEST, "digest": format!("sha256:{}", "2".repeat(64)), "size": 9}),
        ),
        ("subject", json!("nope")),
        ("artifactType", json!("application/x.fuzz")),
        ("annotations", json!({"a": "b".repeat(10_000)})),
    ];
    let index = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": k.manifest, "size": k.manifest_bytes.len(),
                       "platform": {"architecture": "amd64", "os": "linux"}}],
    });
    let mut artifact = m.clone();
    artifact["artifactType"] = json!("application/x.fuzz");
    artifact["subject"] =
        json!({"mediaType": OCI_MANIFEST, "digest": k.manifest, "size": k.manifest_bytes.len()});
    let mut docker = m.clone();
    docker["mediaType"] = json!(DOCKER_MANIFEST);
    match rng.random_range(0..12) {
        0 => k.manifest_bytes.clone(),
        1 => Vec::new(),
        8 => k.layer_bytes.clone(),
        9 => serde_json::to_vec(&index).unwrap_or_default(),
        10 => serde_json::to_vec(&artifact).unwrap_or_default(),
        11 => serde_json::to_vec(&docker).unwrap_or_default(),
        2 => (0..rng.random_range(1..4096))
            .map(|_| rng.random())
            .collect(),
        3 => {
            let depth = rng.random_range(100..300);
            format!("{}{}", "[".repeat(depth), "]".repeat(depth)).into_bytes()
        }
        4 => {
            let mut b = serde_json::to_vec(&m).unwrap_or_default();
            let cut = rng.random_range(0..b.len().max(1));
            b.truncate(cut);
            b
        }
        _ => {
            for _ in 0..rng.random_range(1..3) {
                if let Some((key, value)) = broken.choose(rng) {
                    m[*key] = value.clone();
                }
            }
            if rng.random_bool(0.1)
                && let Some(o) = m.as_object_mut()
            {
                o.remove("layers");
            }
            serde_json::to_vec(&m).unwrap_or_default()
        }
    }
}

fn headers(rng: &mut StdRng, k: &Known) -> Vec<(String, String)> {
    let s = |xs: &[&str]| xs.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let pools: Vec<(&str, Vec<String>)> = vec![
        (
            "Range",
            s(&[
                "bytes=0-0",
                "bytes=-1",
                "bytes=5-2",
                "bytes=0-",
                "bytes=99999999999999999999999-",
                "bytes=a-b",
                "bytes=0-1,3-4",
                "items=0-1",
                "bytes=-0",
                "bytes=--1",
            ]),
        ),
        (
            "Content-Range",
            s(&[
                "0-0",
                "0-9",
                "10-5",
                "-1-3",
                "a-b",
                "0-18446744073709551615",
                "bytes 0-9/10",
                "0-99999999999999999999",
                "",
            ]),
        ),
        (
            "Content-Type",
            s(&[
                OCI_MANIFEST,
                OCI_INDEX,
                DOCKER_MANIFEST,
                DOCKER_LIST,
                "application/json",
                "text/plain",
                "",
                "application/vnd.oci.image.manifest.v1+json; charset=utf-8",
                "application/octet-stream",
            ]),
        ),
        (
            "Accept",
            s(&[OCI_MANIFEST, OCI_INDEX, "*/*", "text/html", "", ",,,;q=x"]),
        ),
        (
            "If-None-Match",
            vec!["*".into(), format!("\"{}\"", k.manifest), "garbage".into()],
        ),
        (
            "Authorization",
            vec![
                "Basic !!!".into(),
                "Bearer x".into(),
                "Bearer a.b.c".into(),
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode("nobody:pw")
                ),
                "Basic".into(),
                "".into(),
                "Negotiate abc".into(),
                k.login.clone().unwrap_or_default(),
            ],
        ),
        ("X-Request-Id", vec![random_text(rng, 20), "r".repeat(5000)]),
    ];
    let mut out = Vec::new();
    for (name, values) in &pools {
        if rng.random_bool(0.3) {
            out.push((name.to_string(), pick(rng, values)));
        }
    }
    if let Some(login) = &k.login
        && rng.random_bool(0.8)
        && !out.iter().any(|(n, _)| n == "Authorization")
    {
        out.push(("Authorization".into(), login.clone()));
    }
    out
}

/// Bytes that are not a request HTTP allows, or push its limits.
fn malformed(rng: &mut StdRng) -> Vec<u8> {
    let long_path = format!(
        "GET /v2/{} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "a".repeat(70_000)
    );
    let many_headers = format!(
        "GET /v2/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{}\r\n",
        (0..500)
            .map(|i| format!("X-H{i}: v\r\n"))
            .collect::<String>()
    );
    let big_header = format!(
        "GET /v2/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Big: {}\r\n\r\n",
        "b".repeat(100_000)
    );
    let cases: Vec<Vec<u8>> = vec![
        b"GARBAGE\r\n\r\n".to_vec(),
        b"GET /v2/ HTTP/1.1\r\nno colon here\r\n\r\n".to_vec(),
        b"GET /v2/ HTTP/1.1\r\nBad Name: x\r\n\r\n".to_vec(),
        b"GET /v2/ HTTP/9.9\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(),
        b"GET /v2/ HTTP/2.0\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(),
        b"PUT /v2/fuzz/app/manifests/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: -1\r\n\r\n".to_vec(),
        b"PUT /v2/fuzz/app/manifests/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: abc\r\n\r\n".to_vec(),
        b"PUT /v2/fuzz/app/manifests/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd".to_vec(),
        b"PATCH /v2/fuzz/app/blobs/uploads/0123456789abcdef0123456789abcdef HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n".to_vec(),
        b"POST /v2/fuzz/app/blobs/uploads/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n5\r\nhello\r\n0\r\n\r\n".to_vec(),
        b"POST /v2/fuzz/app/blobs/uploads/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: gzip\r\n\r\n".to_vec(),
        b"GET /v2/\x00/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(),
        b"GET /v2/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Bin: \x01\x02\xff\r\n\r\n".to_vec(),
        b"\x16\x03\x01\x00\x05hello".to_vec(),
        b"GET http://other.invalid/v2/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(),
        b"OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(),
        b"CONNECT x:443 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(),
        long_path.into_bytes(),
        many_headers.into_bytes(),
        big_header.into_bytes(),
        (0..rng.random_range(1..512)).map(|_| rng.random()).collect(),
    ];
    cases.choose(rng).cloned().unwrap_or_default()
}

pub fn exchange(rng: &mut StdRng, k: &Known) -> Exchange {
    if rng.random_bool(0.05) {
        return Exchange {
            method: "?".into(),
            path: "(malformed)".into(),
            raw: malformed(rng),
            well_formed: false,
        };
    }
    let mut target = path(rng, k);
    let any: &[&str] = &[
        "GET", "HEAD", "PUT", "POST", "PATCH", "DELETE", "OPTIONS", "FROB",
    ];
    // Mostly a method the endpoint answers, so requests get past routing.
    let methods: &[&str] = match target.split('?').next().unwrap_or("") {
        _ if rng.random_bool(0.25) => any,
        p if p.contains("/manifests/") => &["GET", "HEAD", "PUT", "DELETE"],
        p if p.ends_with("/blobs/uploads/") => &["POST"],
        p if p.contains("/blobs/uploads/") => &["GET", "PATCH", "PUT", "DELETE"],
        p if p.contains("/blobs/") => &["GET", "HEAD", "DELETE"],
        p if [
            "/api/v1/tag",
            "/api/v1/delete",
            "/api/v1/gc",
            "/api/v1/retention",
        ]
        .contains(&p) =>
        {
            &["POST"]
        }
        "/api/v1/tokens" => &["GET", "POST", "DELETE"],
        p if p.starts_with("/api/v1/tokens/") => &["DELETE"],
        _ => &["GET", "HEAD"],
    };
    let method = methods.choose(rng).copied().unwrap_or("GET").to_string();
    if !target.contains('?') || rng.random_bool(0.3) {
        let q = query(rng, k);
        target = if target.contains('?') {
            format!("{target}&{}", q.trim_start_matches('?'))
        } else {
            format!("{target}{q}")
        };
    }
    let body = if target.starts_with("/api/v1/") && method != "GET" {
        admin_body(rng, k, target.split('?').next().unwrap_or(""))
    } else if matches!(method.as_str(), "PUT" | "POST" | "PATCH") || rng.random_bool(0.05) {
        body(rng, k)
    } else {
        Vec::new()
    };
    let mut raw = format!("{method} {target} HTTP/1.1\r\nHost: fuzz\r\nConnection: close\r\n");
    for (name, value) in headers(rng, k) {
        raw.push_str(&format!("{name}: {value}\r\n"));
    }
    raw.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut raw = raw.into_bytes();
    raw.extend_from_slice(&body);
    let path = target.split('?').next().unwrap_or("").to_string();
    Exchange {
        method,
        path,
        raw,
        well_formed: true,
    }
}

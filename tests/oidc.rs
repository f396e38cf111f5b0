//! OIDC workload identity against a fake issuer (discovery + JWKS served by
//! this test, RS256 and ES256 keys made with openssl), and every bad token
//! shape: 401, never a 500.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

use base64::Engine;
use common::Server;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use warp::Filter;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

fn openssl(args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

struct Key {
    kid: String,
    alg: Algorithm,
    pem: Vec<u8>,
    jwk: Value,
}

fn rsa_key(dir: &Path, kid: &str) -> Key {
    let path = dir.join(format!("{kid}.pem"));
    let p = path.to_str().unwrap();
    openssl(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
        "-out",
        p,
    ]);
    let modulus = String::from_utf8(openssl(&["rsa", "-in", p, "-noout", "-modulus"])).unwrap();
    let n = hex::decode(modulus.trim().trim_start_matches("Modulus=")).unwrap();
    Key {
        kid: kid.into(),
        alg: Algorithm::RS256,
        pem: std::fs::read(&path).unwrap(),
        jwk: json!({"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig", "n": B64.encode(n), "e": "AQAB"}),
    }
}

fn ec_key(dir: &Path, kid: &str) -> Key {
    let path = dir.join(format!("{kid}.pem"));
    let p = path.to_str().unwrap();
    openssl(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        p,
    ]);
    let der = openssl(&["pkey", "-in", p, "-pubout", "-outform", "DER"]);
    let point = &der[der.len() - 65..];
    assert_eq!(point[0], 4, "uncompressed point");
    Key {
        kid: kid.into(),
        alg: Algorithm::ES256,
        pem: std::fs::read(&path).unwrap(),
        jwk: json!({"kty": "EC", "kid": kid, "alg": "ES256", "use": "sig", "crv": "P-256",
                    "x": B64.encode(&point[1..33]), "y": B64.encode(&point[33..])}),
    }
}

fn sign(key: &Key, claims: &Value) -> String {
    let mut h = Header::new(key.alg);
    h.kid = Some(key.kid.clone());
    let enc = match key.alg {
        Algorithm::RS256 => EncodingKey::from_rsa_pem(&key.pem).unwrap(),
        _ => EncodingKey::from_ec_pem(&key.pem).unwrap(),
    };
    jsonwebtoken::encode(&h, claims, &enc).unwrap()
}

/// Serves discovery and a JWKS whose keys the test can change; counts JWKS
/// fetches. Also plays GitHub's ID token service (`/gh-id-token`), answering
/// `gh_token` to the request token "gh-request" for audience nora.test.
fn fake_issuer(
    keys: Arc<Mutex<Vec<Value>>>,
    fetches: Arc<Mutex<u32>>,
    gh_token: Arc<Mutex<String>>,
    jwks_delay: Arc<Mutex<std::time::Duration>>,
) -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let base = format!("http://{}", listener.local_addr().unwrap());
            tx.send(base.clone()).unwrap();
            let discovery = warp::path!(".well-known" / "openid-configuration").map(move || {
                warp::reply::json(&json!({"issuer": base, "jwks_uri": format!("{base}/jwks")}))
            });
            let jwks = warp::path!("jwks").then(move || {
                *fetches.lock().unwrap() += 1;
                let body = json!({"keys": *keys.lock().unwrap()});
                let delay = *jwks_delay.lock().unwrap();
                async move {
                    tokio::time::sleep(delay).await;
                    warp::reply::json(&body)
                }
            });
            let github = warp::path!("gh-id-token")
                .and(warp::header::<String>("authorization"))
                .and(warp::query::<std::collections::HashMap<String, String>>())
                .map(
                    move |authz: String, q: std::collections::HashMap<String, String>| {
                        let ok = authz == "Bearer gh-request"
                            && q.contains_key("api-version")
                            && q.get("audience").map(String::as_str) == Some("https://nora.test");
                        let status = if ok { 200 } else { 401 };
                        warp::reply::with_status(
                            warp::reply::json(&json!({ "value": *gh_token.lock().unwrap() })),
                            warp::http::StatusCode::from_u16(status).unwrap(),
                        )
                    },
                );
            warp::serve(discovery.or(jwks).or(github))
                .incoming(listener)
                .run()
                .await;
        });
    });
    rx.recv().unwrap()
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ci_id_tokens_become_registry_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let rsa = rsa_key(dir.path(), "rsa-1");
    let ec = ec_key(dir.path(), "ec-1");
    let rotated = rsa_key(dir.path(), "rsa-2");
    let keys = Arc::new(Mutex::new(vec![rsa.jwk.clone(), ec.jwk.clone()]));
    let fetches = Arc::new(Mutex::new(0));
    let gh_token = Arc::new(Mutex::new(String::new()));
    let jwks_delay = Arc::new(Mutex::new(std::time::Duration::ZERO));
    let issuer = fake_issuer(
        keys.clone(),
        fetches.clone(),
        gh_token.clone(),
        jwks_delay.clone(),
    );
    let config = dir.path().join("nora.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[auth]
enabled = true
failed_login_limit = 0
[[auth.oidc.providers]]
name = "ci"
issuer = "{issuer}"
audience = "https://nora.test"
[[auth.oidc.providers.rules]]
match = {{ repository = "my-org/*", ref = "refs/heads/main" }}
permissions = ["push:my-org/*", "pull:*"]
[[auth.oidc.providers]]
name = "gone"
issuer = "http://127.0.0.1:1"
audience = "https://nora.test"
[[auth.oidc.providers.rules]]
match = {{ sub = "*" }}
permissions = ["admin:**"]
"#
        ),
    )
    .unwrap();
    let server = Server::start_on(
        &dir.path().join("data"),
        &[("NORA_CONFIG", config.to_str().unwrap())],
    );
    let c = server.client();
    let claims = |over: Value| {
        let mut base = json!({
            "iss": issuer, "aud": "https://nora.test", "sub": "repo:my-org/app:ref:refs/heads/main",
            "repository": "my-org/app", "ref": "refs/heads/main",
            "iat": now(), "exp": now() + 300,
        });
        for (k, v) in over.as_object().unwrap() {
            base[k] = v.clone();
        }
        base
    };
    let exchange = |token: String, as_json: bool| {
        let c = c.clone();
        async move {
            let r = c.http.post(c.u("/auth/oidc/token"));
            let r = if as_json {
                r.json(&json!({ "token": token }))
            } else {
                r.header("Authorization", format!("Bearer {token}"))
            };
            r.send().await.unwrap()
        }
    };

    // RS256 as a Bearer header, ES256 as a JSON body.
    for (key, as_json) in [(&rsa, false), (&ec, true)] {
        let r = exchange(sign(key, &claims(json!({}))), as_json).await;
        assert_eq!(r.status(), 200, "{:?}", r.text().await);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["expires_in"], 3600);
        let token = body["token"].as_str().unwrap().to_string();
        for authz in [
            format!("Bearer {token}"),
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("ci:{token}"))
            ),
        ] {
            let push = |repo: &str| {
                c.http
                    .post(c.u(&format!("/v2/{repo}/blobs/uploads/")))
                    .header("Authorization", &authz)
                    .send()
            };
            assert_eq!(push("my-org/app").await.unwrap().status(), 202);
            assert_eq!(push("other/app").await.unwrap().status(), 403);
        }
    }
    assert_eq!(*fetches.lock().unwrap(), 1, "JWKS cached");

    // Key rotation: an unknown kid makes nora fetch the JWKS again, once.
    // The issuer is slow to answer; tokens whose key is cached do not wait.
    keys.lock().unwrap().push(rotated.jwk.clone());
    *jwks_delay.lock().unwrap() = std::time::Duration::from_secs(2);
    let slow = tokio::spawn(exchange(sign(&rotated, &claims(json!({}))), false));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let started = std::time::Instant::now();
    let r = exchange(sign(&rsa, &claims(json!({}))), false).await;
    assert_eq!(r.status(), 200);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(1),
        "a known key waited for the refetch: {:?}",
        started.elapsed()
    );
    assert_eq!(slow.await.unwrap().status(), 200);
    *jwks_delay.lock().unwrap() = std::time::Duration::ZERO;
    assert_eq!(*fetches.lock().unwrap(), 2);
    let mut ghost = rsa_key(dir.path(), "ghost");
    ghost.kid = "never-published".into();
    for _ in 0..3 {
        let r = exchange(sign(&ghost, &claims(json!({}))), false).await;
        assert_eq!(r.status(), 401);
    }
    // The rotation's refetch was moments ago: made-up kids cause no more.
    assert_eq!(
        *fetches.lock().unwrap(),
        2,
        "unknown kids refetch at most every 30 s"
    );

    // `nora login --oidc` in GitHub Actions: fetches the ID token, exchanges
    // it, and writes the container clients' auth file (keeping other entries)
    // and nora's own credentials, both 0600.
    *gh_token.lock().unwrap() = sign(&rsa, &claims(json!({})));
    let auth_file = dir.path().join("containers-auth.json");
    std::fs::write(
        &auth_file,
        r#"{"auths":{"other.example":{"auth":"eDp5"}},"credHelpers":{}}"#,
    )
    .unwrap();
    let login = |extra: &[&str], env: &[(&str, String)]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_nora"));
        cmd.args(["login", "--oidc", &c.url])
            .args(extra)
            .env_remove("NORA_CONFIG")
            .env_remove("ACTIONS_ID_TOKEN_REQUEST_URL")
            .env_remove("ACTIONS_ID_TOKEN_REQUEST_TOKEN")
            .env_remove("NORA_ID_TOKEN")
            .env("REGISTRY_AUTH_FILE", &auth_file)
            .env("XDG_CONFIG_HOME", dir.path().join("cfg"))
            .env_remove("NORA_CREDENTIALS");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    };
    let gh_env = [
        (
            "ACTIONS_ID_TOKEN_REQUEST_URL",
            format!("{issuer}/gh-id-token?api-version=2.0"),
        ),
        ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "gh-request".to_string()),
    ];
    let out = login(&["--audience", "https://nora.test"], &gh_env);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let written: Value = serde_json::from_slice(&std::fs::read(&auth_file).unwrap()).unwrap();
    assert_eq!(written["auths"]["other.example"]["auth"], "eDp5", "kept");
    assert!(written["credHelpers"].is_object(), "kept");
    let host = c.url.trim_start_matches("http://");
    let auth = written["auths"][host]["auth"].as_str().unwrap();
    let push = c
        .http
        .post(c.u("/v2/my-org/app/blobs/uploads/"))
        .header("Authorization", format!("Basic {auth}"))
        .send()
        .await
        .unwrap();
    assert_eq!(push.status(), 202, "the auth file's credentials push");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&auth_file), 0o600);
        assert_eq!(mode(&dir.path().join("cfg/nora/credentials.toml")), 0o600);
    }
    // Wrong audience asked of GitHub: a readable refusal, exit 1.
    let out = login(&[], &gh_env);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("id-token: write") && err.lines().count() == 1,
        "{err}"
    );
    // GitLab: the ID token in a variable; a bad one is refused by nora.
    let out = login(
        &["--id-token-env", "GITLAB_ID"],
        &[("GITLAB_ID", sign(&ec, &claims(json!({}))))],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = login(
        &["--id-token-env", "GITLAB_ID"],
        &[("GITLAB_ID", "garbage".into())],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("OIDC login refused"));
    let out = login(&[], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no ID token"));

    // Every bad token: 401 with a JSON error, never a 500.
    let header = |alg: &str, kid: &str| {
        B64.encode(json!({"alg": alg, "typ": "JWT", "kid": kid}).to_string())
    };
    let body = B64.encode(claims(json!({})).to_string());
    let rsa_public_pem = openssl(&[
        "pkey",
        "-in",
        dir.path().join("rsa-1.pem").to_str().unwrap(),
        "-pubout",
    ]);
    let hs256_with_public_key = {
        let mut h = Header::new(Algorithm::HS256);
        h.kid = Some("rsa-1".into());
        jsonwebtoken::encode(
            &h,
            &claims(json!({})),
            &EncodingKey::from_secret(&rsa_public_pem),
        )
        .unwrap()
    };
    let good = sign(&rsa, &claims(json!({})));
    let bad: Vec<(&str, String)> = vec![
        ("alg none", format!("{}.{body}.", header("none", "rsa-1"))),
        ("HS256 signed with the public key", hs256_with_public_key),
        (
            "wrong audience",
            sign(&rsa, &claims(json!({"aud": "https://elsewhere"}))),
        ),
        (
            "unknown issuer",
            sign(&rsa, &claims(json!({"iss": "https://evil.example"}))),
        ),
        (
            "not valid yet (nbf)",
            sign(&rsa, &claims(json!({"nbf": now() + 3600}))),
        ),
        (
            "expired",
            sign(
                &rsa,
                &claims(json!({"iat": now() - 7200, "exp": now() - 3600})),
            ),
        ),
        (
            "no rule matches",
            sign(&rsa, &claims(json!({"ref": "refs/heads/dev"}))),
        ),
        (
            "claim of the wrong type",
            sign(&rsa, &claims(json!({"repository": ["my-org/app"]}))),
        ),
        (
            "unreachable issuer",
            sign(&rsa, &claims(json!({"iss": "http://127.0.0.1:1"}))),
        ),
        ("signed by another key", {
            let mut other = rsa_key(dir.path(), "other");
            other.kid = "rsa-1".into();
            sign(&other, &claims(json!({})))
        }),
        ("truncated", good[..good.len() - 10].to_string()),
        ("garbage", "not.a.token".into()),
        ("empty", String::new()),
    ];
    for (what, token) in bad {
        let r = exchange(token, true).await;
        assert_eq!(r.status(), 401, "{what}");
        let v: Value = r.json().await.unwrap();
        assert!(v["errors"][0]["message"].is_string(), "{what}: {v}");
    }
    let r = c
        .http
        .post(c.u("/auth/oidc/token"))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // The ID tokens never reach the log.
    let log = server.log_text();
    assert!(!log.contains(&good[good.len() - 40..]), "token in the log");
    assert!(log.contains("oidc login"), "audit line");
}

//! Authentication and access control, end to end: every kind of caller
//! against every kind of endpoint, the registry token flow, and bad
//! credentials of every shape.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use base64::Engine;
use common::{Client, OCI_MANIFEST, Server, sha256};

struct Setup {
    server: Server,
    _dir: tempfile::TempDir,
    write_token: String,
    revoked_token: String,
    expired_token: String,
}

fn nora(data: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_nora"))
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .env_remove("NORA_CONFIG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "nora {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn setup() -> Setup {
    setup_with(0)
}

/// `limit`: failed logins per address before 429 (0: off, so the matrix
/// tests can fail logins freely).
fn setup_with(limit: u32) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let hash = |p: &str| bcrypt::hash(p, 4).unwrap();
    std::fs::write(
        dir.path().join("users.htpasswd"),
        format!(
            "root:{}\nreader:{}\nwriter:{}\ntop:{}\n",
            hash("root-pw"),
            hash("reader-pw"),
            hash("writer-pw"),
            hash("top-pw")
        ),
    )
    .unwrap();
    let config = dir.path().join("nora.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[auth]
enabled = true
htpasswd_file = "{}"
failed_login_limit = {limit}
[auth.groups]
admins = ["root"]
[[auth.rules]]
subject = "admins"
permissions = ["admin:**"]
[[auth.rules]]
subject = "reader"
permissions = ["pull:**"]
[[auth.rules]]
subject = "writer"
permissions = ["push:team/*", "pull:**"]
[[auth.rules]]
subject = "top"
permissions = ["pull:*", "admin:*"]
"#,
            dir.path().join("users.htpasswd").display()
        ),
    )
    .unwrap();
    let write_token = nora(
        &data,
        &["token", "create", "--name", "ci", "--role", "write", "-q"],
    );
    let revoked_token = nora(
        &data,
        &["token", "create", "--name", "old", "--role", "admin", "-q"],
    );
    nora(&data, &["token", "revoke", "old"]);
    let expired_token = nora(
        &data,
        &[
            "token",
            "create",
            "--name",
            "short",
            "--role",
            "admin",
            "--expires",
            "1s",
            "-q",
        ],
    );
    assert!(write_token.starts_with("nora_") && write_token.len() > 60);
    let server = Server::start_on(&data, &[("NORA_CONFIG", config.to_str().unwrap())]);
    std::thread::sleep(Duration::from_millis(1100));
    Setup {
        server,
        _dir: dir,
        write_token,
        revoked_token,
        expired_token,
    }
}

fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

/// The statuses one caller gets: base, pull, push team/app, push other/app,
/// delete, catalog, admin API.
async fn statuses(c: &Client, authz: Option<&str>) -> Vec<u16> {
    let send = |method: &str, path: &str| {
        let mut r = c.http.request(method.parse().unwrap(), c.u(path));
        if let Some(a) = authz {
            r = r.header("Authorization", a);
        }
        r
    };
    let mut out = Vec::new();
    out.push(send("GET", "/v2/").send().await.unwrap().status().as_u16());
    out.push(
        send("GET", "/v2/team/app/manifests/v1")
            .header("Accept", OCI_MANIFEST)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
    );
    out.push(
        send("POST", "/v2/team/app/blobs/uploads/")
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
    );
    out.push(
        send("POST", "/v2/other/app/blobs/uploads/")
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
    );
    out.push(
        send("DELETE", "/v2/team/app/manifests/nope")
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
    );
    out.push(
        send("GET", "/v2/_catalog")
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
    );
    out.push(
        send("GET", "/api/v1/usage")
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
    );
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_caller_against_every_endpoint() {
    let s = setup();
    let c = s.server.client();
    // Seed an image as root.
    let root = basic("root", "root-pw");
    let config = br#"{"architecture":"amd64","os":"linux"}"#;
    let cd = sha256(config);
    let r = c
        .http
        .post(c.u(&format!("/v2/team/app/blobs/uploads/?digest={cd}")))
        .header("Authorization", &root)
        .body(config.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let m = common::image_manifest(&cd, config.len(), &[]);
    let r = c
        .http
        .put(c.u("/v2/team/app/manifests/v1"))
        .header("Authorization", &root)
        .header("Content-Type", OCI_MANIFEST)
        .body(m)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);

    //            base pull push-team push-other delete catalog admin
    let cases: Vec<(&str, Option<String>, [u16; 7])> = vec![
        ("anonymous", None, [401, 401, 401, 401, 401, 401, 401]),
        (
            "root",
            Some(root.clone()),
            [200, 200, 202, 202, 404, 200, 200],
        ),
        (
            "reader",
            Some(basic("reader", "reader-pw")),
            [200, 200, 403, 403, 403, 200, 403],
        ),
        (
            "writer",
            Some(basic("writer", "writer-pw")),
            [200, 200, 202, 403, 403, 200, 403],
        ),
        (
            "write token as Basic",
            Some(basic("anyone", &s.write_token)),
            [200, 200, 202, 202, 403, 200, 403],
        ),
        (
            "write token as Bearer",
            Some(format!("Bearer {}", s.write_token)),
            [200, 200, 202, 202, 403, 200, 403],
        ),
        (
            "revoked token",
            Some(format!("Bearer {}", s.revoked_token)),
            [401; 7],
        ),
        (
            "expired token",
            Some(basic("x", &s.expired_token)),
            [401; 7],
        ),
        (
            // `*` is one path component: top-level repositories only, so no
            // catalog and no admin API either.
            "pull:* and admin:*",
            Some(basic("top", "top-pw")),
            [200, 403, 403, 403, 403, 403, 403],
        ),
        ("wrong password", Some(basic("root", "nope")), [401; 7]),
        ("unknown user", Some(basic("mallory", "root-pw")), [401; 7]),
        ("garbage basic", Some("Basic !!!notbase64".into()), [401; 7]),
        (
            "no colon",
            Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode("rootroot-pw")
            )),
            [401; 7],
        ),
        (
            "garbage bearer",
            Some("Bearer abc.def.ghi".into()),
            [401; 7],
        ),
        ("unknown scheme", Some("Digest foo=bar".into()), [401; 7]),
    ];
    for (who, authz, want) in cases {
        let got = statuses(&c, authz.as_deref()).await;
        assert_eq!(got, want, "{who}");
    }
    // A 401 tells the client where to get a token.
    let r = c
        .http
        .post(c.u("/v2/team/app/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    let challenge = r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        challenge.starts_with("Bearer realm=\"http://127.0.0.1:"),
        "{challenge}"
    );
    assert!(
        challenge
            .contains("/auth/token\",service=\"nora\",scope=\"repository:team/app:pull,push\""),
        "{challenge}"
    );
    let (status, code) = common::oci_error(r).await;
    assert_eq!((status, code.as_str()), (401, "UNAUTHORIZED"));
    // A bare secret without a scheme is refused without being quoted back
    // or logged.
    let r = c
        .http
        .get(c.u("/v2/"))
        .header("Authorization", &s.write_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let body = r.text().await.unwrap();
    assert!(!body.contains(&s.write_token[5..]), "{body}");
    assert!(!s.server.log_text().contains(&s.write_token[5..]));
    let r = c
        .http
        .post(c.u("/v2/other/app/blobs/uploads/"))
        .header("Authorization", basic("reader", "reader-pw"))
        .send()
        .await
        .unwrap();
    assert_eq!(common::oci_error(r).await, (403, "DENIED".into()));
    // A mount needs pull on its source; without `from`, when authentication
    // is on, there is no mount at all (a digest is not a right): a session.
    let writer = basic("writer", "writer-pw");
    for (query, want) in [
        (format!("mount={cd}"), 202),
        (format!("mount={cd}&from=team/app"), 201),
    ] {
        let r = c
            .http
            .post(c.u(&format!("/v2/team/mounted/blobs/uploads/?{query}")))
            .header("Authorization", &writer)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), want, "{query}");
    }
    // Health needs nothing.
    assert_eq!(
        c.http.get(c.u("/health")).send().await.unwrap().status(),
        200
    );
    assert_eq!(
        c.http.get(c.u("/ready")).send().await.unwrap().status(),
        200
    );
    // Mutations are audited: who, what, result.
    let log = s.server.log_text();
    assert!(
        log.lines().any(|l| l.contains("mutation")
            && l.contains("who=user root")
            && l.contains("path=/v2/team/app/manifests/v1")
            && l.contains("status=201")),
        "{log}"
    );
    // Secrets never reach the log.
    for secret in ["root-pw", "writer-pw", s.write_token.as_str()] {
        assert!(!log.contains(secret), "{secret} in the log");
    }
}

async fn token_for(c: &Client, authz: &str, scope: &str) -> reqwest::Response {
    c.http
        .get(c.u(&format!("/auth/token?service=nora&scope={scope}")))
        .header("Authorization", authz)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_token_flow() {
    let s = setup();
    let c = s.server.client();
    let r = token_for(
        &c,
        &basic("writer", "writer-pw"),
        "repository:team/app:pull,push",
    )
    .await;
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    let jwt = body["token"].as_str().unwrap().to_string();
    assert_eq!(body["access_token"], jwt.as_str());
    assert!(body["expires_in"].as_u64().unwrap() > 0);
    let bearer = format!("Bearer {jwt}");
    // The JWT grants exactly the scope asked for, narrowed to what writer may
    // do; outside it the answer is a new challenge (401), so clients fetch a
    // token for the new scope, as the token flow expects.
    let got = statuses(&c, Some(&bearer)).await;
    assert_eq!(got, [200, 404, 202, 401, 401, 401, 403]);
    let r = c
        .http
        .post(c.u("/v2/other/app/blobs/uploads/"))
        .header("Authorization", &bearer)
        .send()
        .await
        .unwrap();
    let ch = r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        ch.contains("scope=\"repository:other/app:pull,push\""),
        "{ch}"
    );

    // Asking for more than allowed gives less, not an error.
    let r = token_for(
        &c,
        &basic("writer", "writer-pw"),
        "repository:other/app:pull,push",
    )
    .await;
    let body: serde_json::Value = r.json().await.unwrap();
    let claims = decode_claims(body["token"].as_str().unwrap());
    assert_eq!(claims["access"][0]["actions"], serde_json::json!(["pull"]));

    // A user with `*` grants alone gets no catalog scope.
    let r = token_for(&c, &basic("top", "top-pw"), "registry:catalog:*").await;
    let claims = decode_claims(
        r.json::<serde_json::Value>().await.unwrap()["token"]
            .as_str()
            .unwrap(),
    );
    assert_eq!(claims["access"], serde_json::json!([]));
    // Names no repository can have are not granted; too many scopes is 400.
    let r = token_for(
        &c,
        &basic("writer", "writer-pw"),
        "repository:team/a*b:pull",
    )
    .await;
    let claims = decode_claims(
        r.json::<serde_json::Value>().await.unwrap()["token"]
            .as_str()
            .unwrap(),
    );
    assert_eq!(claims["access"], serde_json::json!([]));
    let many: Vec<String> = (0..65)
        .map(|i| format!("scope=repository:team/r{i}:pull"))
        .collect();
    let r = c
        .http
        .get(c.u(&format!("/auth/token?service=nora&{}", many.join("&"))))
        .header("Authorization", basic("writer", "writer-pw"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // A registry token (minutes) is not exchanged for a login token (days),
    // neither as Bearer nor as the Basic password.
    for authz in [bearer.clone(), basic("writer", &jwt)] {
        let r = c
            .http
            .post(c.u("/auth/login"))
            .header("Authorization", authz)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
    }
    // A lifetime that is not one is a 400, not a silent 30 days.
    for body in [
        r#"{"expires_in":"x"}"#,
        r#"{"expires_in":-5}"#,
        r#"{"expires_in":1e30}"#,
        "[1]",
        "nope",
    ] {
        let r = c
            .http
            .post(c.u("/auth/login"))
            .header("Authorization", basic("writer", "writer-pw"))
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{body}");
    }

    // Bad credentials at the token endpoint: 401 with a Basic challenge.
    let r = token_for(&c, &basic("writer", "wrong"), "repository:team/app:pull").await;
    assert_eq!(r.status(), 401);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );
    let r = c
        .http
        .get(c.u("/auth/token?service=nora"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // A registry token issued for an API token dies with it.
    let r = token_for(
        &c,
        &basic("ci", &s.write_token),
        "repository:team/app:pull,push",
    )
    .await;
    let jwt = r.json::<serde_json::Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let bearer = format!("Bearer {jwt}");
    assert_eq!(statuses(&c, Some(&bearer)).await[2], 202);
    nora(&s.server.data, &["token", "revoke", "ci"]);
    assert_eq!(statuses(&c, Some(&bearer)).await, [401; 7]);

    // Forged tokens: alg none, another key, truncated.
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut claims = decode_claims(&jwt);
    claims["access"] =
        serde_json::json!([{"type": "repository", "name": "other/app", "actions": ["push"]}]);
    claims["tid"] = serde_json::Value::Null;
    let payload = b64.encode(serde_json::to_vec(&claims).unwrap());
    let none = format!(
        "{}.{payload}.",
        b64.encode(br#"{"alg":"none","typ":"JWT"}"#)
    );
    let parts: Vec<&str> = jwt.split('.').collect();
    let resigned = format!("{}.{payload}.{}", parts[0], parts[2]);
    for forged in [none, resigned, jwt[..jwt.len() - 3].to_string()] {
        assert_eq!(
            statuses(&c, Some(&format!("Bearer {forged}"))).await,
            [401; 7]
        );
    }
}

fn decode_claims(jwt: &str) -> serde_json::Value {
    let payload = jwt.split('.').nth(1).unwrap();
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&raw).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_through_the_admin_api_and_anonymous_read() {
    let s = setup();
    let c = s.server.client();
    let root = basic("root", "root-pw");
    let r = c
        .http
        .post(c.u("/api/v1/tokens"))
        .header("Authorization", &root)
        .body(r#"{"name":"deploy","scopes":["pull:team/*"],"expires_in":3600}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let created: serde_json::Value = r.json().await.unwrap();
    let secret = created["secret"].as_str().unwrap();
    assert_eq!(
        created["token"]["permissions"],
        serde_json::json!(["pull:team/*"])
    );
    let list: serde_json::Value = c
        .http
        .get(c.u("/api/v1/tokens"))
        .header("Authorization", &root)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["ci", "deploy", "short"]);
    assert!(!list.to_string().contains("nora_"), "secrets listed");
    let got = statuses(&c, Some(&format!("Bearer {secret}"))).await;
    assert_eq!(got, [200, 404, 403, 403, 403, 403, 403]);
    // Duplicate names and bad scopes are refused.
    for body in [
        r#"{"name":"deploy","role":"read"}"#,
        r#"{"name":"x","scopes":["steal:**"]}"#,
        r#"{"name":"y"}"#,
    ] {
        let r = c
            .http
            .post(c.u("/api/v1/tokens"))
            .header("Authorization", &root)
            .body(body)
            .send()
            .await
            .unwrap();
        assert!(
            r.status() == 400 || r.status() == 409,
            "{body}: {}",
            r.status()
        );
    }
    let r = c
        .http
        .delete(c.u("/api/v1/tokens/deploy"))
        .header("Authorization", &root)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        statuses(&c, Some(&format!("Bearer {secret}"))).await,
        [401; 7]
    );
    // The CLI over --url with a token.
    let out = Command::new(env!("CARGO_BIN_EXE_nora"))
        .args(["token", "ls", "-o", "json", "--url", &s.server.url])
        .env("NORA_TOKEN", &s.revoked_token)
        .env_remove("NORA_CONFIG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("revoked") && !err.contains(&s.revoked_token),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_read_opens_pulls_only() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let htpasswd = dir.path().join("users");
    std::fs::write(
        &htpasswd,
        format!("ci:{}\n", bcrypt::hash("ci-pw", 4).unwrap()),
    )
    .unwrap();
    let server = Server::start_on(
        &data,
        &[
            ("NORA_AUTH_ENABLED", "true"),
            ("NORA_AUTH_ANONYMOUS_READ", "true"),
            ("NORA_AUTH_HTPASSWD_FILE", htpasswd.to_str().unwrap()),
        ],
    );
    let c = server.client();
    // No rules: every htpasswd user may do everything.
    let ci = basic("ci", "ci-pw");
    assert_eq!(
        statuses(&c, Some(&ci)).await,
        [200, 404, 202, 202, 404, 200, 200]
    );
    assert_eq!(
        statuses(&c, None).await,
        [200, 404, 401, 401, 401, 200, 401]
    );
    // Anonymous callers get pull-only registry tokens.
    let r = c
        .http
        .get(c.u("/auth/token?service=nora&scope=repository:a/b:pull,push"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let jwt = r.json::<serde_json::Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        decode_claims(&jwt)["access"][0]["actions"],
        serde_json::json!(["pull"])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_failed_logins_are_slowed_then_refused() {
    let s = setup_with(10);
    let c = s.server.client();
    let bad = basic("root", "guess");
    let mut statuses = Vec::new();
    for i in 0..11 {
        // Logins that succeed from the same address do not reset the count
        // (else one account of one's own would unlock endless guessing).
        if i < 9 {
            let r = c
                .http
                .get(c.u("/v2/"))
                .header("Authorization", basic("reader", "reader-pw"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
        }
        let r = c
            .http
            .get(c.u("/v2/"))
            .header("Authorization", &bad)
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
    }
    assert_eq!(statuses[..10], [401; 10]);
    assert_eq!(statuses[10], 429);
    // Even the right password is refused while blocked, with Retry-After.
    let r = c
        .http
        .get(c.u("/auth/token?service=nora"))
        .header("Authorization", basic("root", "root-pw"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert!(
        r.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            > 0
    );
    assert_eq!(common::oci_error(r).await.1, "TOOMANYREQUESTS");
    // Failed logins are in the audit log, without the password.
    let log = s.server.log_text();
    assert!(log.contains("login refused"), "{log}");
    assert!(!log.contains("guess"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_anonymous_read_users_may_pull_too() {
    let dir = tempfile::tempdir().unwrap();
    let config = common::auth_config(
        dir.path(),
        "ci",
        "ci-pw",
        "anonymous_read = true\n[[auth.rules]]\nsubject = \"ci\"\npermissions = [\"push:ci/*\"]\n",
    );
    let server = Server::start_on(
        &dir.path().join("data"),
        &[("NORA_CONFIG", config.to_str().unwrap())],
    );
    let c = server.client();
    // ci may push only ci/*, yet pulls what anyone may: sending credentials
    // never gets less than sending none.
    let ci = basic("ci", "ci-pw");
    assert_eq!(
        statuses(&c, Some(&ci)).await,
        [200, 404, 403, 403, 403, 200, 403]
    );
    assert_eq!(
        statuses(&c, None).await,
        [200, 404, 401, 401, 401, 200, 401]
    );
}

/// Runs `nora` as a person would, with its own config dir and `stdin`.
fn nora_user(home: &Path, args: &[&str], stdin: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_nora"))
        .args(args)
        .env_remove("NORA_CONFIG")
        .env_remove("NORA_TOKEN")
        .env_remove("NORA_URL")
        .env_remove("NORA_CREDENTIALS")
        .env("XDG_CONFIG_HOME", home)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nora_login_stores_a_token_that_url_commands_use() {
    let s = setup();
    let c = s.server.client();
    let home = tempfile::tempdir().unwrap();
    let url = c.url.as_str();
    let text = |o: &std::process::Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };

    // No terminal to ask on and no --password-stdin: a usage error.
    let out = nora_user(home.path(), &["login", url, "-u", "root"], "");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    // A wrong password: one line, exit 1, nothing stored.
    let out = nora_user(
        home.path(),
        &["login", url, "-u", "root", "--password-stdin"],
        "nope\n",
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&out.stderr).lines().count(), 1);
    let creds = home.path().join("nora/credentials.toml");
    assert!(!creds.exists());

    let out = nora_user(
        home.path(),
        &["login", url, "-u", "root", "--password-stdin"],
        "root-pw\n",
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("Logged in"), "{}", text(&out));
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&creds).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let stored = std::fs::read_to_string(&creds).unwrap();
    assert!(!stored.contains("root-pw"));
    let token = stored
        .split('"')
        .find(|s| s.starts_with("nora_"))
        .unwrap()
        .to_string();
    assert!(!text(&out).contains(&token), "the secret is never printed");

    // --url commands use the stored token: root may use the admin API.
    let out = nora_user(home.path(), &["token", "ls", "--url", url], "");
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("login-root-"), "{}", text(&out));
    // The login token acts as its user, also as a Basic password.
    let r = c
        .http
        .delete(c.u("/v2/team/app/manifests/sha256:0000000000000000000000000000000000000000000000000000000000000000"))
        .header("Authorization", basic("anyone", &token))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        404,
        "authorised (root may delete), nothing there"
    );

    // A writer's login token has the writer's rights, no more.
    let writer_home = tempfile::tempdir().unwrap();
    let out = nora_user(
        writer_home.path(),
        &["login", "--url", url, "-u", "writer", "--password-stdin"],
        "writer-pw",
    );
    assert!(out.status.success(), "{}", text(&out));
    let out = nora_user(writer_home.path(), &["images", "ls", "--url", url], "");
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("not an admin"), "{}", text(&out));

    // Logout revokes it on the server and forgets it here.
    let out = nora_user(home.path(), &["logout", url], "");
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("token revoked"), "{}", text(&out));
    let r = c
        .http
        .get(c.u("/v2/"))
        .header("Authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "revoked at once");
    let out = nora_user(home.path(), &["token", "ls", "--url", url], "");
    assert_eq!(out.status.code(), Some(1), "no stored token any more");
    let out = nora_user(home.path(), &["logout", url], "");
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("not logged in"));
}

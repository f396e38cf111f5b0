//! `nora login [URL]`: for people, a user name and password exchanged for a
//! login token kept in the user's config dir (mode 0600), which every `--url`
//! command then uses; in CI, `--oidc` exchanges the platform's ID token for a
//! registry token and also writes the container clients' auth file, so the
//! next `podman push` just works. Passwords and tokens never go on the
//! command line (`ps` shows it to everyone): prompt or `--password-stdin`.

use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use serde::Deserialize;

use crate::auth::tokens::{LOGIN_TTL_MAX, LOGIN_TTL_MIN};
use crate::client::remote::{
    ReadError, check_server_url, http_client, quick_limit, read_capped, root_cause, shown,
    unreachable,
};
use crate::ui::credentials::{self, Login};
use crate::ui::format::rfc3339;
use crate::ui::{CmdResult, Failure, Ui, block_on};

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The server (default: --url / NORA_URL)
    #[arg(value_name = "URL")]
    server: Option<String>,
    /// User name (asked when absent)
    #[arg(short, long)]
    username: Option<String>,
    /// Read the password from stdin instead of asking
    #[arg(long)]
    password_stdin: bool,
    /// Lifetime of the login token (default 30d; from 1m to 365d)
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    expires: Option<Duration>,
    /// CI: exchange the platform's OIDC ID token (GitHub Actions, GitLab CI)
    /// and write the container clients' auth file as well
    #[arg(long, conflicts_with_all = ["username", "password_stdin", "expires"])]
    oidc: bool,
    /// Audience of the GitHub Actions ID token (default: the server URL)
    #[arg(long, requires = "oidc")]
    audience: Option<String>,
    /// Read the ID token from this environment variable (GitLab's id_tokens;
    /// default NORA_ID_TOKEN when not in GitHub Actions)
    #[arg(long, requires = "oidc", value_name = "VAR")]
    id_token_env: Option<String>,
    /// Read the ID token from this file
    #[arg(
        long,
        requires = "oidc",
        value_name = "FILE",
        conflicts_with = "id_token_env"
    )]
    id_token_file: Option<PathBuf>,
}

/// The server a login or logout is for: the argument, else `--url`.
pub fn server_of(arg: Option<String>, ui: &Ui) -> Result<String, Failure> {
    let url = arg
        .or_else(|| ui.global.url.clone())
        .ok_or_else(|| Failure::Usage("which server? give its URL (or --url / NORA_URL)".into()))?;
    let why = match check_server_url(&url) {
        Ok(()) => return Ok(credentials::key(&url)),
        Err(bad) => bad.why(
            "nora login takes the user with -u and the password at the prompt or on stdin \
             with --password-stdin",
        ),
    };
    Err(Failure::Usage(format!("{:?} {why}", shown(&url))))
}

/// A token-granting answer is a few hundred bytes.
const MAX_GRANT: usize = 64 * 1024;

/// Login and logout answer in milliseconds: they wait as long as the
/// admin API's quick calls (`--timeout`, default 60 s).
pub struct Http {
    client: reqwest::Client,
    limit: Option<Duration>,
}

impl Http {
    pub fn new(ui: &Ui) -> Result<Http, Failure> {
        Ok(Http {
            client: http_client().map_err(|e| Failure::Failed(e.message))?,
            limit: quick_limit(ui.global.timeout.map(Duration::from_secs)),
        })
    }

    pub fn request(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        let req = self.client.request(method, url);
        match self.limit {
            Some(d) => req.timeout(d),
            None => req,
        }
    }

    /// A failed request as one line naming `url`.
    pub fn failure(&self, url: &str, e: &reqwest::Error) -> Failure {
        Failure::Failed(unreachable(url, e, self.limit))
    }
}

#[derive(Deserialize)]
struct Granted {
    token: String,
    expires_in: u64,
    #[serde(default)]
    name: Option<String>,
}

pub fn run(args: LoginArgs, ui: Ui) -> CmdResult {
    let url = server_of(args.server.clone(), &ui)?;
    if let Some(d) = args.expires
        && !(LOGIN_TTL_MIN..=LOGIN_TTL_MAX).contains(&d.as_secs())
    {
        return Err(Failure::Usage(format!(
            "--expires must be from 1 minute to 365 days, not {} s",
            d.as_secs()
        )));
    }
    // A token granted and then not kept would stay live for its lifetime.
    credentials::check_writable().map_err(Failure::Failed)?;
    if args.oidc {
        return oidc(args, &url, ui);
    }
    let user = match args.username {
        Some(u) => u,
        None if prompts() => dialoguer::Input::<String>::new()
            .with_prompt("User")
            .interact_text()
            .map_err(|e| Failure::Failed(format!("cannot read the user name: {e}")))?,
        None => {
            return Err(Failure::Usage(
                "no terminal to ask on: give --username".into(),
            ));
        }
    };
    let password = if args.password_stdin {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| Failure::Failed(format!("cannot read the password from stdin: {e}")))?;
        s.trim_end_matches(['\r', '\n']).to_string()
    } else if prompts() {
        dialoguer::Password::new()
            .with_prompt("Password")
            .interact()
            .map_err(|e| Failure::Failed(format!("cannot read the password: {e}")))?
    } else {
        return Err(Failure::Usage(
            "no terminal to ask for the password: use --password-stdin".into(),
        ));
    };
    let body = serde_json::json!({ "expires_in": args.expires.map(|d| d.as_secs()) });
    let granted: Granted = block_on(async {
        let http = Http::new(&ui)?;
        let resp = http
            .request(reqwest::Method::POST, &format!("{url}/auth/login"))
            .basic_auth(&user, Some(&password))
            .json(&body)
            .send()
            .await;
        answer(&http, &url, resp, "login").await
    })?;
    let expires = crate::auth::tokens::now().saturating_add(granted.expires_in);
    let stored = credentials::put(
        &url,
        Login {
            token: granted.token.clone(),
            user: Some(user.clone()),
            expires: Some(expires),
        },
    );
    let file = match stored {
        Ok(file) => file,
        Err(e) => {
            return Err(Failure::Failed(format!(
                "{e}; {}",
                revoke(&ui, &url, &granted)
            )));
        }
    };
    if ui.json() {
        return ui.print_json(&serde_json::json!({
            "url": url, "user": user, "token_name": granted.name,
            "expires": rfc3339(expires), "credentials_file": file,
        }));
    }
    if !ui.global.quiet {
        crate::outln!(
            "Logged in to {url} as {} (token {}, expires {}); stored in {}",
            ui.bold(&user),
            granted.name.unwrap_or_default(),
            rfc3339(expires),
            file.display()
        );
    }
    Ok(())
}

/// `DELETE /auth/login` with `token`: the server revokes that login token.
pub fn revoke_login_token(ui: &Ui, url: &str, token: &str) -> Result<reqwest::Response, Failure> {
    block_on(async {
        let http = Http::new(ui)?;
        http.request(reqwest::Method::DELETE, &format!("{url}/auth/login"))
            .bearer_auth(token)
            .send()
            .await
            .map_err(|e| http.failure(url, &e))
    })
}

/// Revokes a login token that could not be stored (best effort); says how
/// that went.
fn revoke(ui: &Ui, url: &str, granted: &Granted) -> String {
    let name = granted.name.as_deref().unwrap_or("login-…");
    match revoke_login_token(ui, url, &granted.token) {
        Ok(r) if r.status().is_success() => {
            format!("the login token just granted ({name}) was revoked")
        }
        Ok(r) => format!(
            "{url} did not revoke the login token just granted ({}): run `nora token revoke {name}`",
            r.status().as_u16()
        ),
        Err(e) => format!(
            "the login token just granted could not be revoked ({}): run `nora token revoke {name}`",
            e.message()
        ),
    }
}

fn prompts() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// Reads a token-granting answer, or fails with the server's own message.
async fn answer(
    http: &Http,
    url: &str,
    resp: Result<reqwest::Response, reqwest::Error>,
    what: &str,
) -> Result<Granted, Failure> {
    let resp = resp.map_err(|e| http.failure(url, &e))?;
    let status = resp.status();
    let bytes = read_capped(resp, MAX_GRANT).await.map_err(|e| match e {
        ReadError::Http(e) => http.failure(url, &e),
        ReadError::TooBig(cap) => Failure::Failed(format!(
            "{url} answered the {what} with over {} KiB (is this a nora server?)",
            cap >> 10
        )),
    })?;
    let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    if status.is_success() {
        return serde_json::from_value(body).map_err(|_| {
            Failure::Failed(format!(
                "{url} answered HTTP {} without a token (is this a nora server?)",
                status.as_u16()
            ))
        });
    }
    let message = body["error"]["message"]
        .as_str()
        .or(body["errors"][0]["message"].as_str())
        .unwrap_or("no reason given")
        .to_string();
    Err(Failure::Failed(format!(
        "{what} refused by {url} ({}): {message}",
        status.as_u16()
    )))
}

fn oidc(args: LoginArgs, url: &str, ui: Ui) -> CmdResult {
    let audience = args.audience.clone().unwrap_or_else(|| url.to_string());
    let http = Http::new(&ui)?;
    let granted = block_on(async {
        let id_token = id_token(&http, &args, &audience).await?;
        let resp = http
            .request(reqwest::Method::POST, &format!("{url}/auth/oidc/token"))
            .bearer_auth(id_token.trim())
            .send()
            .await;
        answer(&http, url, resp, "OIDC login").await
    })?;
    let expires = crate::auth::tokens::now().saturating_add(granted.expires_in);
    let file = credentials::put(
        url,
        Login {
            token: granted.token.clone(),
            user: Some("oidc".into()),
            expires: Some(expires),
        },
    )
    .map_err(Failure::Failed)?;
    let host = reqwest::Url::parse(url)
        .ok()
        .and_then(|u| {
            let host = u.host_str()?.to_string();
            Some(match u.port() {
                Some(p) => format!("{host}:{p}"),
                None => host,
            })
        })
        .ok_or_else(|| Failure::Usage(format!("{url:?} has no host")))?;
    let auth_file =
        credentials::put_container_auth(&host, "oidc", &granted.token).map_err(Failure::Failed)?;
    if ui.json() {
        return ui.print_json(&serde_json::json!({
            "url": url, "expires": rfc3339(expires),
            "credentials_file": file, "container_auth_file": auth_file,
        }));
    }
    if !ui.global.quiet {
        crate::outln!(
            "Logged in to {url} with the CI's OIDC identity (expires {}); container clients' credentials for {host} in {}",
            rfc3339(expires),
            auth_file.display()
        );
    }
    Ok(())
}

/// The CI platform's ID token: a file or variable named on the command line,
/// else GitHub Actions' token service, else `NORA_ID_TOKEN`.
async fn id_token(http: &Http, args: &LoginArgs, audience: &str) -> Result<String, Failure> {
    if let Some(path) = &args.id_token_file {
        return std::fs::read_to_string(path)
            .map_err(|e| Failure::Failed(format!("cannot read {}: {e}", path.display())));
    }
    let from_env = |var: &str| std::env::var(var).ok().filter(|v| !v.trim().is_empty());
    if let Some(var) = &args.id_token_env {
        return from_env(var).ok_or_else(|| Failure::Failed(format!("{var} is not set or empty")));
    }
    if let (Some(req_url), Some(req_token)) = (
        from_env("ACTIONS_ID_TOKEN_REQUEST_URL"),
        from_env("ACTIONS_ID_TOKEN_REQUEST_TOKEN"),
    ) {
        let sep = if req_url.contains('?') { '&' } else { '?' };
        let aud: String = form_urlencoded::byte_serialize(audience.as_bytes()).collect();
        let resp = http
            .request(
                reqwest::Method::GET,
                &format!("{req_url}{sep}audience={aud}"),
            )
            .bearer_auth(req_token)
            .send()
            .await
            .map_err(|e| {
                Failure::Failed(format!(
                    "cannot reach GitHub's ID token service: {}",
                    root_cause(&e)
                ))
            })?;
        let status = resp.status();
        let body: serde_json::Value = match read_capped(resp, MAX_GRANT).await {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_default(),
            Err(_) => serde_json::Value::Null,
        };
        return match body["value"].as_str() {
            Some(v) if status.is_success() => Ok(v.to_string()),
            _ => Err(Failure::Failed(format!(
                "GitHub's ID token service answered {}: does the job have `permissions: id-token: write`?",
                status.as_u16()
            ))),
        };
    }
    from_env("NORA_ID_TOKEN").ok_or_else(|| {
        Failure::Failed(
            "no ID token: in GitHub Actions grant `permissions: id-token: write`; in GitLab CI \
             declare `id_tokens: NORA_ID_TOKEN` (or pass --id-token-env / --id-token-file)"
                .into(),
        )
    })
}

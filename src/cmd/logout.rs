//! `nora logout [URL]`: revokes the stored login token on the server and
//! forgets it locally.

use clap::Args;

use crate::ui::credentials;
use crate::ui::{CmdResult, Failure, Ui};

#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// The server (default: --url / NORA_URL)
    #[arg(value_name = "URL")]
    server: Option<String>,
}

pub fn run(args: LogoutArgs, ui: Ui) -> CmdResult {
    let url = super::login::server_of(args.server, &ui)?;
    let Some(login) = credentials::get(&url).map_err(Failure::Failed)? else {
        return Err(Failure::Failed(format!("not logged in to {url}")));
    };
    // Login tokens are revoked on the server; an OIDC registry token simply
    // expires within the hour.
    let mut revoked = false;
    if login.token.starts_with(crate::auth::tokens::PREFIX) {
        match super::login::revoke_login_token(&ui, &url, &login.token) {
            Ok(r) if r.status().is_success() => revoked = true,
            // Already revoked or expired: nothing left to revoke.
            Ok(r) if r.status() == reqwest::StatusCode::UNAUTHORIZED => {}
            Ok(r) => crate::errln!(
                "nora: warning: {url} did not revoke the token ({}); forgetting it anyway",
                r.status().as_u16()
            ),
            Err(e) => crate::errln!(
                "nora: warning: {}; forgetting the token anyway",
                e.message()
            ),
        }
    }
    credentials::remove(&url).map_err(Failure::Failed)?;
    if ui.json() {
        return ui.print_json(&serde_json::json!({ "url": url, "revoked": revoked }));
    }
    if !ui.global.quiet {
        crate::outln!(
            "Logged out of {url}{}",
            if revoked { " (token revoked)" } else { "" }
        );
    }
    Ok(())
}

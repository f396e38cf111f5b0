//! `nora token create|ls|revoke`: API tokens. Without `--url` they work on
//! storage directly — how an operator makes the first admin token.

use std::time::Duration;

use clap::{Args, Subcommand};

use crate::client::TokenRequest;
use crate::ui::format::{rfc3339, time};
use crate::ui::table::Table;
use crate::ui::{CmdResult, Ui, block_on};

#[derive(Debug, Args)]
pub struct TokenArgs {
    #[command(subcommand)]
    command: TokenCommand,
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Create a token and print its secret (shown this once)
    Create {
        /// A unique name (also usable as a rule subject in [[auth.rules]])
        #[arg(long)]
        name: String,
        /// read (pull), write (pull + push) or admin (everything), on every repository
        #[arg(long, value_parser = ["read", "write", "admin"])]
        role: Option<String>,
        /// A permission ACTION:REPOSITORY-GLOB (pull, push, delete, admin), repeatable
        #[arg(long = "scope", value_name = "ACTION:GLOB")]
        scopes: Vec<String>,
        /// Lifetime ("30d", "12h"); never expires when absent
        #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
        expires: Option<Duration>,
    },
    /// List tokens: name, permissions, created, expires, last used (never secrets)
    #[command(visible_alias = "list")]
    Ls,
    /// Revoke a token; every instance refuses it at once
    Revoke { name: String },
}

pub fn run(args: TokenArgs, ui: Ui) -> CmdResult {
    let client = ui.client()?;
    match args.command {
        TokenCommand::Create {
            name,
            role,
            scopes,
            expires,
        } => {
            let req = TokenRequest {
                name,
                role,
                scopes,
                expires_in: expires.map(|d| d.as_secs()),
            };
            let created = block_on(async { Ok(client.token_create(&req).await?) })?;
            if ui.json() {
                return ui.print_json(&created);
            }
            if ui.global.quiet {
                crate::outln!("{}", created.secret);
                return Ok(());
            }
            crate::errln!(
                "Created token {} ({}). Its secret, shown this once:",
                ui.bold(&created.token.name),
                created.token.permissions.join(", ")
            );
            crate::outln!("{}", created.secret);
            Ok(())
        }
        TokenCommand::Ls => {
            let list = block_on(async { Ok(client.tokens().await?) })?;
            if ui.json() {
                return ui.print_json(&list);
            }
            // Only what was asked for: the names, as `images ls -q` prints
            // references (for `xargs -n1 nora token revoke`).
            if ui.global.quiet {
                for tok in &list {
                    crate::outln!("{}", crate::ui::format::printable(&tok.name));
                }
                return Ok(());
            }
            let mut t = Table::new(vec![
                "NAME",
                "PERMISSIONS",
                "CREATED",
                "EXPIRES",
                "LAST USED",
            ]);
            for tok in list {
                t.row(vec![
                    tok.name,
                    tok.permissions.join(","),
                    time(tok.created, ui.tty),
                    tok.expires.map(rfc3339).unwrap_or_else(|| "never".into()),
                    tok.last_used
                        .map(|u| time(u, ui.tty))
                        .unwrap_or_else(|| "never".into()),
                ]);
            }
            t.print(&ui);
            Ok(())
        }
        TokenCommand::Revoke { name } => {
            let gone = block_on(async { Ok(client.token_revoke(&name).await?) })?;
            if ui.json() {
                return ui.print_json(&gone);
            }
            if !ui.global.quiet {
                crate::outln!("Revoked token {}", gone.name);
            }
            Ok(())
        }
    }
}

//! nora: an artifact registry and its ops toolkit in one binary.

mod auth;
mod client;
mod cmd;
mod config;
mod logging;
mod registry;
mod schedule;
mod serve;
mod stop;
mod storage;
mod ui;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

const EXIT_STATUS: &str = "\
Exit status:
  0  success
  1  the operation failed (unknown reference, unreachable server, storage error)
  2  usage error (bad arguments, bad reference or glob, bad configuration)

Environment:
  NORA_CONFIG  configuration file     NORA_URL  admin API of a running nora
  NORA_TOKEN   token for NORA_URL     NORA_CREDENTIALS  file of `nora login`
  NORA_TIMEOUT --timeout              NO_COLOR  no colours
  SSL_CERT_FILE  CA certificates to trust for https:// (default: the system's)
  NORA_*       any setting (see the README)";

#[derive(Debug, Parser)]
#[command(
    name = "nora",
    version,
    about = "An artifact registry and its ops toolkit in one binary",
    after_long_help = EXIT_STATUS
)]
struct Cli {
    /// Configuration file (default: ./config.toml when present)
    #[arg(long, global = true, env = "NORA_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,

    #[command(flatten)]
    global: ui::Global,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the registry server (the default when no command is given)
    Serve(cmd::serve::ServeArgs),
    /// List and inspect images
    Images(cmd::images::ImagesArgs),
    /// Tag an image under another name, without copying blobs
    Tag(cmd::tag::TagArgs),
    /// Delete tags or manifests
    Delete(cmd::delete::DeleteArgs),
    /// Garbage-collect blobs no manifest references (online)
    Gc(cmd::gc::GcArgs),
    /// Remove old tags by the configured [[retention]] rules
    Retention(cmd::retention::RetentionArgs),
    /// Copy a whole store to another backend (local <-> S3), verified and resumable
    Migrate(cmd::migrate::MigrateArgs),
    /// Write a consistent snapshot of a store to a .tar.gz, while nora serves
    Backup(cmd::backup::BackupArgs),
    /// Read a backup into a store, verified and resumable
    Restore(cmd::restore::RestoreArgs),
    /// Create, list and revoke API tokens
    Token(cmd::token::TokenArgs),
    /// Log in to a nora server (a person's password, or a CI's OIDC identity)
    Login(cmd::login::LoginArgs),
    /// Revoke and forget the stored login for a server
    Logout(cmd::logout::LogoutArgs),
    /// Print shell completions, or write man pages
    Completions(cmd::completions::CompletionsArgs),
}

fn main() -> ExitCode {
    // Big buffers (S3 parts, read-ahead) always come from mmap and go back to
    // the system when freed; glibc's default threshold rises after the first
    // free and would keep them in the heap, growing RSS. Fixing it also
    // fixes the trim threshold at its 128 KiB default, which hands the heap
    // top back and faults it in again for every 256 KiB read buffer (a third
    // more CPU serving blobs): keep 2 MiB, what glibc's own rule would set.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: called first thing, before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 2 << 20);
    }
    // clap would say "a value is required for '--config'", naming a flag
    // that was never given.
    if std::env::var_os("NORA_CONFIG").is_some_and(|v| v.is_empty()) {
        crate::errln!("nora: NORA_CONFIG is set but empty: name a file, or unset it");
        return ExitCode::from(2);
    }
    // An empty NORA_URL or NORA_TIMEOUT (a CI variable defined as nothing)
    // means unset, not a bad --url or --timeout nobody gave.
    for var in ["NORA_URL", "NORA_TIMEOUT"] {
        if std::env::var_os(var).is_some_and(|v| v.is_empty()) {
            // SAFETY: no other thread exists yet (see mallopt above).
            unsafe { std::env::remove_var(var) };
        }
    }
    let args = backup_file_flag(std::env::args_os().collect());
    let url_flag = args.iter().any(|a| {
        let a = a.to_string_lossy();
        a == "--url" || a.starts_with("--url=")
    });
    let mut cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind::*;
            if matches!(
                e.kind(),
                DisplayHelp | DisplayVersion | DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                e.exit();
            }
            crate::errln!("nora: {}", ui::usage_line(&e.render().to_string()));
            return ExitCode::from(2);
        }
    };
    // Two registries named: a script's `--data-dir` must not act on the
    // server NORA_URL names (a delete on the wrong registry); two flags are
    // a usage error.
    if cli.global.data_dir.is_some() && cli.global.url.is_some() {
        if url_flag {
            crate::errln!("nora: --url and --data-dir name two registries: give one");
            return ExitCode::from(2);
        }
        cli.global.url = None;
    }
    ui::hide_args::hide_secret_args();
    let command = cli.command.unwrap_or(Command::Serve(Default::default()));
    // These work on storage only: given `--url`, a backup would copy the
    // local store and not the server the operator named.
    if url_flag {
        let storage_only = match &command {
            Command::Serve(_) => Some("serve"),
            Command::Backup(_) => Some("backup"),
            Command::Restore(_) => Some("restore"),
            Command::Migrate(_) => Some("migrate"),
            _ => None,
        };
        if let Some(name) = storage_only {
            crate::errln!(
                "nora: {name} works on storage, not through --url: run it where the storage is (--data-dir, or the config's [storage])"
            );
            return ExitCode::from(2);
        }
    }
    if let Command::Completions(args) = command {
        return exit(cmd::completions::run::<Cli>(args));
    }
    let mut config = match config::Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            crate::errln!("nora: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(dir) = &cli.global.data_dir {
        config.storage.path = dir.clone();
        config.storage.mode = "local".into();
    }
    if let Command::Serve(args) = command {
        return exit(cmd::serve::run(args, config).map_err(ui::Failure::Failed));
    }
    let ui = ui::Ui::new(cli.global, config);
    exit(match command {
        Command::Images(args) => cmd::images::run(args, ui),
        Command::Tag(args) => cmd::tag::run(args, ui),
        Command::Delete(args) => cmd::delete::run(args, ui),
        Command::Gc(args) => cmd::gc::run(args, ui),
        Command::Retention(args) => cmd::retention::run(args, ui),
        Command::Token(args) => cmd::token::run(args, ui),
        Command::Backup(args) => cmd::backup::run(args, ui),
        Command::Restore(args) => cmd::restore::run(args, ui),
        Command::Migrate(args) => cmd::migrate::run(args, ui),
        Command::Login(args) => cmd::login::run(args, ui),
        Command::Logout(args) => cmd::logout::run(args, ui),
        Command::Serve(_) | Command::Completions(_) => Ok(()),
    })
}

/// `nora backup -o FILE.tar.gz`, as operators write it: the global `-o` is
/// the output format, so after `backup` a `-o` whose value is not a format
/// means `--file`.
fn backup_file_flag(mut args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let Some(at) = args.iter().position(|a| a == "backup") else {
        return args;
    };
    for i in at + 1..args.len().saturating_sub(1) {
        let value = args[i + 1].to_string_lossy();
        if args[i] == "-o" && !["table", "wide", "json"].contains(&value.as_ref()) {
            args[i] = "--file".into();
        }
    }
    args
}

fn exit(result: ui::CmdResult) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            // One line, whatever a server or a library put in the message:
            // scripts grep it and humans read it at a glance.
            let line = f.message().split_whitespace().collect::<Vec<_>>().join(" ");
            crate::errln!("nora: {}", ui::format::printable(&line));
            ExitCode::from(f.exit_code())
        }
    }
}

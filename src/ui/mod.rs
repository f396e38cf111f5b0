//! What every operator command shares: the global flags, choosing the client
//! (`--url` or storage), how results are printed (human on a TTY, machine
//! elsewhere), confirmation prompts and exit codes.

/// `println!` for a command's output, which panics where this does not:
/// a reader that went away (`nora images ls | head`) ends the process
/// quietly with 141, as SIGPIPE ends Unix tools (nora ignores SIGPIPE,
/// which a socket write to a reset connection would raise); a full disk or
/// a closed descriptor ends it with one line and exit 1.
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::ui::write_line(format_args!($($arg)*))
    };
}

/// `eprintln!` for messages and the error line, which panics where this
/// does not: with stderr gone (`nora gc 2>&1 | head -1`) there is no one left
/// to tell, and the command's work and exit status matter more.
#[macro_export]
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::ui::write_err_line(format_args!($($arg)*))
    };
}

pub fn write_err_line(line: std::fmt::Arguments) {
    use std::io::Write;
    let mut err = std::io::stderr().lock();
    let _ = err.write_fmt(line).and_then(|()| err.write_all(b"\n"));
}

pub fn write_line(line: std::fmt::Arguments) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(line).and_then(|()| out.write_all(b"\n")) {
        output_failed(e)
    }
}

pub fn output_failed(e: std::io::Error) -> ! {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(141);
    }
    crate::errln!("nora: cannot write the output: {e}");
    std::process::exit(1);
}

pub mod credentials;
pub mod format;
pub mod hide_args;
mod log_line;
pub mod table;

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::{Args, ValueEnum};

use crate::client::local::Local;
use crate::client::remote::Remote;
use crate::client::{Client, ClientError, ErrorKind};
use crate::config::Config;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Output {
    /// Aligned columns for people (the default).
    #[default]
    Table,
    /// Every column, full digests and times.
    Wide,
    /// JSON on stdout, for scripts.
    Json,
}

/// Flags every command takes.
#[derive(Debug, Clone, Args, Default)]
pub struct Global {
    /// Operate on a running nora through its admin API instead of on storage
    #[arg(long, global = true, env = "NORA_URL", value_name = "URL")]
    pub url: Option<String>,

    /// API token for --url (default: NORA_TOKEN, else the token of `nora login`)
    #[arg(
        long,
        global = true,
        env = "NORA_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,

    /// With --url, login, logout: seconds to wait for an answer (default 60, and no limit for gc and retention; 0: no limit)
    #[arg(long, global = true, env = "NORA_TIMEOUT", value_name = "SECS")]
    pub timeout: Option<u64>,

    /// Storage directory to operate on (overrides [storage] path)
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Output format
    #[arg(short, long, global = true, value_enum, default_value_t = Output::Table)]
    pub output: Output,

    /// Print only what was asked for: no progress, no summaries
    #[arg(short, long, global = true)]
    pub quiet: bool,

    /// Log what happens on stderr (-vv for more)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// No colours (also when NO_COLOR is set or stdout is not a terminal)
    #[arg(long, global = true)]
    pub no_color: bool,
}

/// Why a command failed, and so its exit code: 2 for a usage error (bad
/// arguments, bad reference), 1 for an operation that failed.
#[derive(Debug)]
pub enum Failure {
    Usage(String),
    Failed(String),
}

impl Failure {
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Usage(_) => 2,
            Failure::Failed(_) => 1,
        }
    }

    pub fn message(&self) -> &str {
        match self {
            Failure::Usage(m) | Failure::Failed(m) => m,
        }
    }
}

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Self {
        match e.kind {
            ErrorKind::Invalid => Failure::Usage(e.message),
            _ => Failure::Failed(e.message),
        }
    }
}

pub type CmdResult = Result<(), Failure>;

/// The context a command runs in.
pub struct Ui {
    pub global: Global,
    pub config: Config,
    /// stdout is a terminal: human sizes and times, colours.
    pub tty: bool,
    pub color: bool,
}

impl Ui {
    pub fn new(global: Global, config: Config) -> Ui {
        let tty = std::io::stdout().is_terminal();
        let color =
            tty && !global.no_color && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        init_logging(global.verbose);
        Ui {
            global,
            config,
            tty,
            color,
        }
    }

    pub fn json(&self) -> bool {
        self.global.output == Output::Json
    }

    /// Progress bars and prompts go to stderr, and only to a person.
    pub fn interactive(&self) -> bool {
        !self.global.quiet && !self.json() && std::io::stderr().is_terminal()
    }

    /// The client the flags ask for: the admin API of `--url`, else the
    /// configured storage, which must exist (so a typo in `--data-dir` is not
    /// an empty registry).
    pub fn client(&self) -> Result<Box<dyn Client>, Failure> {
        if let Some(url) = &self.global.url {
            // An empty NORA_TOKEN (a CI secret that is not set) means none.
            let token = match self.global.token.as_deref().map(str::trim) {
                Some(t) if !t.is_empty() => Some(t.to_string()),
                _ => stored_token(url)?,
            };
            let timeout = self.global.timeout.map(std::time::Duration::from_secs);
            tracing::info!(url = %url, token = token.is_some(), "working through the admin API");
            return Ok(Box::new(Remote::new(url, token, timeout)?));
        }
        let path = &self.config.storage.path;
        if self.config.storage.mode == "local" && !path.is_dir() {
            return Err(Failure::Failed(format!(
                "no nora storage at {} (use --data-dir, --config, or --url for a running server)",
                path.display()
            )));
        }
        tracing::info!(
            storage = %crate::storage::describe(&self.config.storage),
            "working on storage directly"
        );
        Ok(Box::new(Local::open(&self.config)?))
    }

    /// Prints `value` as pretty JSON on stdout.
    pub fn print_json<T: serde::Serialize>(&self, value: &T) -> CmdResult {
        let text = serde_json::to_string_pretty(value)
            .map_err(|e| Failure::Failed(format!("cannot encode the answer: {e}")))?;
        crate::outln!("{text}");
        Ok(())
    }

    /// Asks before a destructive step when a person is at the terminal and
    /// did not pass `--yes`; elsewhere (cron, CI) goes ahead.
    pub fn confirm(&self, yes: bool, question: &str) -> CmdResult {
        if !self.will_ask(yes) {
            return Ok(());
        }
        let answer = dialoguer::Confirm::new()
            .with_prompt(question)
            .default(false)
            .interact()
            .map_err(|e| Failure::Failed(format!("cannot read the answer: {e}")))?;
        if answer {
            Ok(())
        } else {
            Err(Failure::Failed("cancelled, nothing changed".into()))
        }
    }

    /// Whether `confirm` will ask (a person at the terminal, no `--yes`):
    /// then the command first lists, on stderr, what the answer decides.
    pub fn will_ask(&self, yes: bool) -> bool {
        !yes && std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
    }

    /// A bar of bytes with rate and ETA, for copies (migrate, backup,
    /// restore); None when nobody watches.
    pub fn transfer_bar(&self, message: &'static str) -> Option<indicatif::ProgressBar> {
        self.interactive().then(|| {
            let bar = indicatif::ProgressBar::new(0);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar.enable_steady_tick(std::time::Duration::from_millis(200));
            bar.set_message(message);
            bar
        })
    }

    pub fn bold(&self, s: &str) -> String {
        self.paint("1", s)
    }

    pub fn dim(&self, s: &str) -> String {
        self.paint("2", s)
    }

    fn paint(&self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
}

/// A progress callback that moves `bar` (if any) by each chunk's length.
pub fn progress_of(bar: &Option<indicatif::ProgressBar>) -> crate::storage::transfer::Progress {
    let bar = bar.clone();
    std::sync::Arc::new(move |n| {
        if let Some(b) = &bar {
            b.inc(n);
        }
    })
}

/// The token `nora login` stored for `url`, unless it has expired.
fn stored_token(url: &str) -> Result<Option<String>, Failure> {
    let Some(login) = credentials::get(url).map_err(Failure::Failed)? else {
        return Ok(None);
    };
    if login
        .expires
        .is_some_and(|e| e <= crate::auth::tokens::now())
    {
        return Err(Failure::Failed(format!(
            "the login to {url} has expired: run `nora login {url}`"
        )));
    }
    Ok(Some(login.token))
}

/// clap's usage error as one line, the way every other error is printed:
/// "error: X\n\n  tip: ..\n\nUsage: nora tag <SOURCE> <TARGET>\n\nFor more
/// information, try '--help'." becomes "X (usage: nora tag <SOURCE>
/// <TARGET>; try --help)".
pub fn usage_line(rendered: &str) -> String {
    let paragraphs: Vec<String> = rendered
        .split("\n\n")
        .map(|p| p.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    let message = paragraphs
        .iter()
        .find_map(|p| p.strip_prefix("error: "))
        .unwrap_or("bad arguments");
    match paragraphs.iter().find_map(|p| p.strip_prefix("Usage: ")) {
        Some(usage) => format!("{message} (usage: {usage}; try --help)"),
        None => format!("{message} (try --help)"),
    }
}

/// Operator commands log warnings only, unless asked for more. (Not the
/// registry's storage-error line, nor the AWS SDK's warnings as it looks for
/// credentials: the command's own error carries its cause.)
fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => "warn,nora::registry::error=off,aws_config=off,aws_smithy_runtime=off",
        1 => "info",
        _ => "debug",
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(level))
        .with_writer(|| crate::logging::Lossy(std::io::stderr()))
        .with_ansi(false)
        .event_format(log_line::CliLine)
        .try_init();
}

/// Runs a command's async body on a small runtime of its own.
pub fn block_on<T, F: std::future::Future<Output = Result<T, Failure>>>(
    f: F,
) -> Result<T, Failure> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Failed(format!("cannot start the async runtime: {e}")))?;
    let result = rt.block_on(f);
    // Work the body dropped (a backup's writer, after a stop) is not
    // waited for: the command is over.
    rt.shutdown_background();
    result
}

/// `block_on` for a command that holds a lock in storage (a gc or backup on
/// storage directly): Ctrl-C or SIGTERM lets the lock go before the end.
pub fn block_on_holding<T, F: std::future::Future<Output = Result<T, Failure>>>(
    f: F,
) -> Result<T, Failure> {
    block_on(async {
        crate::stop::stop_on_signals();
        f.await
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn usage_errors_are_one_line() {
        let rendered = "error: the following required arguments were not provided:\n  <TARGET>\n\nUsage: nora tag <SOURCE> <TARGET>\n\nFor more information, try '--help'.\n";
        assert_eq!(
            super::usage_line(rendered),
            "the following required arguments were not provided: <TARGET> (usage: nora tag <SOURCE> <TARGET>; try --help)"
        );
        assert_eq!(
            super::usage_line(
                "error: invalid value '5x' for '--grace'\n\nFor more information, try '--help'.\n"
            ),
            "invalid value '5x' for '--grace' (try --help)"
        );
    }
}

//! `nora completions SHELL` prints a shell completion script; `nora
//! completions man` writes man pages. The checked-in copies under
//! completions/ and man/ are regenerated with scripts/gen-docs, and a test
//! fails when they differ from what the binary generates.

use std::path::{Path, PathBuf};

use clap::{Args, CommandFactory, ValueEnum};
use clap_complete::Shell;

use crate::ui::{CmdResult, Failure};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Target {
    Bash,
    Zsh,
    Fish,
    Elvish,
    Powershell,
    /// Man pages (roff), one per command
    Man,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell, or `man` for man pages
    target: Target,
    /// Write files into this directory instead of printing (required for man)
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

pub fn run<C: CommandFactory>(args: CompletionsArgs) -> CmdResult {
    let mut cmd = C::command();
    let shell = match args.target {
        Target::Bash => Shell::Bash,
        Target::Zsh => Shell::Zsh,
        Target::Fish => Shell::Fish,
        Target::Elvish => Shell::Elvish,
        Target::Powershell => Shell::PowerShell,
        Target::Man => {
            let dir = args.dir.ok_or_else(|| {
                Failure::Usage("man pages need --dir DIR (one file per command)".into())
            })?;
            return man_pages(cmd, &dir);
        }
    };
    match args.dir {
        Some(dir) => {
            create(&dir)?;
            clap_complete::generate_to(shell, &mut cmd, "nora", &dir).map_err(|e| {
                Failure::Failed(format!("cannot write into {}: {e}", dir.display()))
            })?;
        }
        None => {
            // Written whole here: clap_complete panics when stdout fails.
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut cmd, "nora", &mut script);
            if let Err(e) = std::io::Write::write_all(&mut std::io::stdout().lock(), &script) {
                crate::ui::output_failed(e);
            }
        }
    }
    Ok(())
}

fn man_pages(cmd: clap::Command, dir: &Path) -> CmdResult {
    create(dir)?;
    clap_mangen::generate_to(cmd, dir)
        .map_err(|e| Failure::Failed(format!("cannot write into {}: {e}", dir.display())))
}

fn create(dir: &Path) -> CmdResult {
    std::fs::create_dir_all(dir)
        .map_err(|e| Failure::Failed(format!("cannot create {}: {e}", dir.display())))
}

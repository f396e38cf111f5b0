//! `nora restore -i FILE.tar.gz [--to STORE]`: reads a backup into a store,
//! blobs first (each verified before it becomes visible), then links and
//! tags; blobs already there are skipped, so a stopped restore resumes.

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;

use crate::storage::{self, Entry, archive};
use crate::ui::format::size;
use crate::ui::{CmdResult, Failure, Ui, block_on};

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The archive written by `nora backup`
    #[arg(short, long, value_name = "FILE")]
    input: PathBuf,
    /// Where to restore: local, s3, a directory, s3://BUCKET/PREFIX
    /// (default: the configured storage)
    #[arg(long, value_name = "STORE")]
    to: Option<String>,
    /// Read and verify the whole archive; write nothing
    #[arg(long)]
    dry_run: bool,
    /// Do not ask before restoring into a store that holds repositories
    #[arg(short, long)]
    yes: bool,
}

pub fn run(args: RestoreArgs, ui: Ui) -> CmdResult {
    let cfg = match &args.to {
        Some(s) => super::migrate::location(s, &ui.config)?,
        None => ui.config.storage.clone(),
    };
    let name = storage::describe(&cfg);
    let file = std::fs::File::open(&args.input)
        .map_err(|e| Failure::Failed(format!("cannot read {}: {e}", args.input.display())))?;
    let total = file.metadata().map(|m| m.len()).unwrap_or(0);
    let started = Instant::now();
    let dst = block_on(async {
        if args.dry_run && cfg.mode == "local" && !cfg.path.exists() {
            // Nothing is written: a scratch directory stands in.
            return Ok(None);
        }
        let dst = super::migrate::open_checked(&cfg, true).await?;
        let used = dst
            .list(storage::layout::REPOSITORIES)
            .await
            .map_err(|e| Failure::Failed(format!("{name}: {e}")))?
            .iter()
            .any(|e| matches!(e, Entry::Prefix(_)));
        Ok(Some((dst, used)))
    })?;
    if let Some((_, true)) = &dst
        && !args.dry_run
    {
        ui.confirm(
            args.yes,
            &format!("{name} holds repositories; restoring replaces tags of the same name. Go on?"),
        )?;
    }
    let scratch = tempfile::tempdir().map_err(|e| Failure::Failed(e.to_string()))?;
    let dst = match dst {
        Some((d, _)) => d,
        None => {
            let (d, _) = storage::open(&crate::config::Storage {
                path: scratch.path().to_path_buf(),
                mode: "local".into(),
                ..cfg.clone()
            })
            .map_err(|e| Failure::Failed(e.to_string()))?;
            d
        }
    };
    let bar = ui.transfer_bar(if args.dry_run {
        "verifying"
    } else {
        "restoring"
    });
    if let Some(b) = &bar {
        b.set_length(total);
    }
    // Progress follows the archive as it is read (compressed bytes).
    let counted = Counted {
        inner: std::io::BufReader::new(file),
        bar: bar.clone(),
    };
    let dry_run = args.dry_run;
    let report = block_on(async move {
        let rt = tokio::runtime::Handle::current();
        let none = std::sync::Arc::new(|_| {});
        tokio::task::spawn_blocking(move || archive::restore(dst, counted, rt, none, dry_run))
            .await
            .map_err(|e| Failure::Failed(e.to_string()))?
            .map_err(|e| {
                Failure::Failed(format!(
                    "restore stopped: {e} (blobs restored so far stay; run it again to resume)"
                ))
            })
    });
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let report = report?;
    if ui.json() {
        return ui.print_json(&serde_json::json!({
            "file": args.input, "to": name, "dry_run": args.dry_run,
            "blobs_written": report.blobs_written, "blobs_skipped": report.blobs_skipped,
            "others_written": report.others_written, "bytes_written": report.bytes_written,
            "links_left_out": report.links_left_out,
            "seconds": started.elapsed().as_secs_f64(),
        }));
    }
    if !ui.global.quiet {
        let verb = if args.dry_run { "Verified" } else { "Restored" };
        crate::outln!(
            "{verb} {} into {name}: {} blobs ({} already there), {} other objects, {} ({:.1} s)",
            args.input.display(),
            report.blobs_written,
            report.blobs_skipped,
            report.others_written,
            size(report.bytes_written, ui.tty),
            started.elapsed().as_secs_f64()
        );
        if report.links_left_out > 0 {
            crate::outln!(
                "{} links or tags left out: they name manifests or blobs that neither the archive nor the store holds",
                report.links_left_out
            );
        }
    }
    Ok(())
}

/// Moves the progress bar as the archive is read.
struct Counted<R> {
    inner: R,
    bar: Option<indicatif::ProgressBar>,
}

impl<R: std::io::Read> std::io::Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(b) = &self.bar {
            b.inc(n as u64);
        }
        Ok(n)
    }
}

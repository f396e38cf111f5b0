//! `nora gc`: online mark-and-sweep. Safe while the server takes pushes:
//! nothing younger than the grace period goes (see registry/gc.rs).

use std::time::Duration;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use crate::client::{GcReport, GcRequest};
use crate::ui::format::size;
use crate::ui::{CmdResult, Ui, block_on_holding};

#[derive(Debug, Args)]
pub struct GcArgs {
    /// Report what would be removed, remove nothing
    #[arg(long)]
    dry_run: bool,
    /// Keep unreferenced blobs younger than this ("1h", "30m", "0s");
    /// default: [gc] grace of the config, 1h
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    grace: Option<Duration>,
    /// Do not ask for confirmation
    #[arg(short, long)]
    yes: bool,
}

pub fn run(args: GcArgs, ui: Ui) -> CmdResult {
    let client = ui.client()?;
    if !args.dry_run {
        ui.confirm(
            args.yes,
            "Remove every blob no manifest references (older than the grace period)?",
        )?;
    }
    let req = GcRequest {
        dry_run: args.dry_run,
        grace_seconds: args.grace.map(|d| d.as_secs()),
    };
    let bar = if ui.interactive() {
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg:12} [{bar:30}] {pos}/{len} ({elapsed})")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.enable_steady_tick(Duration::from_millis(120));
        bar.set_message("gc");
        Some(bar)
    } else {
        None
    };
    let progress = |phase: &str, done: u64, total: u64| {
        if let Some(bar) = &bar {
            bar.set_message(phase.to_string());
            bar.set_length(total);
            bar.set_position(done);
        }
    };
    let report = block_on_holding(async {
        let r = client.gc(&req, &progress).await?;
        Ok(r)
    });
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let report = report?;
    if ui.json() {
        return ui.print_json(&report);
    }
    if !ui.global.quiet {
        summary(&ui, &report);
    }
    Ok(())
}

fn summary(ui: &Ui, r: &GcReport) {
    let (verb, freed) = if r.dry_run {
        ("would remove", "would free")
    } else {
        ("removed", "freed")
    };
    crate::outln!(
        "Scanned {} blobs, {} manifests in {} repositories",
        r.blobs_scanned,
        r.manifests,
        r.repositories
    );
    crate::outln!(
        "{} {} blobs, {} {}, {} {} stale upload sessions ({} ms)",
        ui.bold(verb),
        r.blobs_removed,
        freed,
        size(r.bytes_freed, true),
        verb,
        r.uploads_removed,
        r.duration_ms
    );
    if r.leftovers_removed > 0 {
        crate::outln!(
            "Removed {} leftovers of interrupted writes (temp files, unfinished S3 uploads)",
            r.leftovers_removed
        );
    }
    if r.removals_finished > 0 {
        crate::outln!(
            "Finished {} manifest removals a killed process left under way",
            r.removals_finished
        );
    }
}

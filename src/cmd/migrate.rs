//! `nora migrate --from SRC --to DST`: copies a whole store (blobs,
//! manifests, tags, tokens, metadata) between backends, verifying every
//! blob's digest, skipping what the destination already holds (a rerun
//! resumes). SRC and DST: `local` and `s3` (the backends of the config), a
//! directory, or `s3://bucket/prefix` (endpoint and credentials from
//! `[storage.s3]` / `NORA_S3_*` / `AWS_*`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use clap::Args;
use serde::Serialize;

use crate::config::{self, Config};
use crate::registry::Registry;
use crate::storage::transfer::{self, Outcome};
use crate::storage::{self, Storage};
use crate::ui::format::size;
use crate::ui::{CmdResult, Failure, Ui, block_on};

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// Source: local, s3, a directory, or s3://BUCKET/PREFIX
    #[arg(long, value_name = "STORE")]
    from: String,
    /// Destination: local, s3, a directory, or s3://BUCKET/PREFIX
    #[arg(long, value_name = "STORE")]
    to: String,
    /// Show what would be copied; write nothing
    #[arg(long)]
    dry_run: bool,
}

#[derive(Debug, Serialize)]
struct Summary {
    from: String,
    to: String,
    dry_run: bool,
    objects: u64,
    copied: u64,
    skipped: u64,
    /// Deleted from the source while this ran (or naming what was).
    gone: u64,
    bytes_copied: u64,
    seconds: f64,
}

/// A store named on the command line, as a `[storage]` section.
pub fn location(name: &str, config: &Config) -> Result<config::Storage, Failure> {
    let mut cfg = config.storage.clone();
    match name {
        "local" => cfg.mode = "local".into(),
        "s3" => {
            cfg.mode = "s3".into();
            if cfg.s3.bucket.is_empty() {
                return Err(Failure::Usage(
                    "\"s3\" needs [storage.s3] bucket (or NORA_S3_BUCKET); or give s3://BUCKET/PREFIX"
                        .into(),
                ));
            }
        }
        url if url.starts_with("s3://") => {
            let rest = &url["s3://".len()..];
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(Failure::Usage(format!("{url:?}: no bucket")));
            }
            let prefix = prefix.trim_end_matches('/');
            if let Err(why) = config::check_s3_prefix(prefix) {
                return Err(Failure::Usage(format!("{url:?}: {why} in the prefix")));
            }
            cfg.mode = "s3".into();
            cfg.s3.bucket = bucket.into();
            cfg.s3.prefix = prefix.into();
        }
        path => {
            cfg.mode = "local".into();
            cfg.path = PathBuf::from(path);
        }
    }
    Ok(cfg)
}

/// Opens a store and checks that it answers.
pub async fn open_checked(
    cfg: &config::Storage,
    create: bool,
) -> Result<Arc<dyn Storage>, Failure> {
    let where_ = storage::describe(cfg);
    if cfg.mode == "local" && !create && !cfg.path.is_dir() {
        return Err(Failure::Failed(format!("no nora storage at {where_}")));
    }
    let (s, _) = storage::open(cfg).map_err(|e| Failure::Failed(e.to_string()))?;
    s.ping()
        .await
        .map_err(|e| Failure::Failed(format!("{where_}: {e}")))?;
    Ok(s)
}

pub fn run(args: MigrateArgs, ui: Ui) -> CmdResult {
    let from_cfg = location(&args.from, &ui.config)?;
    let to_cfg = location(&args.to, &ui.config)?;
    let (from_name, to_name) = (storage::describe(&from_cfg), storage::describe(&to_cfg));
    if from_name == to_name {
        return Err(Failure::Usage(format!(
            "--from and --to are the same store ({from_name})"
        )));
    }
    let started = Instant::now();
    let bar = ui.transfer_bar("listing");
    let outcome = block_on(async {
        let src = open_checked(&from_cfg, false).await?;
        // A manifest removal a killed process left under way goes first:
        // the copy would keep a tag without its manifest, whose layers gc
        // would then free. (A dry run writes nothing.)
        if !args.dry_run {
            Registry::new(src.clone(), from_cfg.upload_ttl)
                .finish_retirements_logged()
                .await;
        }
        // A dry run creates nothing, not even the destination directory.
        let dst = if args.dry_run && to_cfg.mode == "local" && !to_cfg.path.exists() {
            None
        } else {
            Some(open_checked(&to_cfg, true).await?)
        };
        let plan = transfer::plan(src.as_ref())
            .await
            .map_err(|e| Failure::Failed(format!("listing {from_name}: {e}")))?;
        let total: u64 = plan.iter().map(|i| i.size).sum();
        if let Some(bar) = &bar {
            bar.set_length(total);
            bar.set_message(if args.dry_run { "checking" } else { "copying" });
        }
        let progress = crate::ui::progress_of(&bar);
        let mut s = Summary {
            from: from_name.clone(),
            to: to_name.clone(),
            dry_run: args.dry_run,
            objects: plan.len() as u64,
            copied: 0,
            skipped: 0,
            gone: 0,
            bytes_copied: 0,
            seconds: 0.0,
        };
        let copied = transfer::copy_all(
            src.as_ref(),
            dst.as_deref(),
            &plan,
            args.dry_run,
            &progress,
            |item, outcome| {
                match outcome {
                    Outcome::Copied(n) => {
                        s.copied += 1;
                        s.bytes_copied += n;
                        return; // its bytes moved the bar as they went
                    }
                    Outcome::Gone => s.gone += 1,
                    Outcome::Skipped => s.skipped += 1,
                }
                if let Some(bar) = &bar {
                    bar.inc(item.size);
                }
            },
        )
        .await;
        if let Err((key, e)) = copied {
            return Err(Failure::Failed(format!(
                "stopped at {key}: {e} ({} objects copied; run the same command again to resume)",
                s.copied
            )));
        }
        s.seconds = started.elapsed().as_secs_f64();
        Ok(s)
    });
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let s = outcome?;
    if ui.json() {
        return ui.print_json(&s);
    }
    if !ui.global.quiet {
        let verb = if s.dry_run { "Would copy" } else { "Copied" };
        let gone = if s.gone > 0 {
            format!("; {} deleted from the source meanwhile", s.gone)
        } else {
            String::new()
        };
        crate::outln!(
            "{verb} {} of {} objects ({}) from {} to {}; {} already there{gone}; {:.1} s",
            s.copied,
            s.objects,
            size(s.bytes_copied, ui.tty),
            s.from,
            s.to,
            s.skipped,
            s.seconds
        );
    }
    Ok(())
}

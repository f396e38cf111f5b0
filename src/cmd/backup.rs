//! `nora backup -o FILE.tar.gz`: a consistent snapshot of a store while
//! `nora serve` keeps running on it (see storage/archive.rs), streamed into
//! the archive, written to FILE.partial and renamed when complete.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use crate::registry::Registry;
use crate::storage::{self, archive, transfer::Progress};
use crate::ui::format::size;
use crate::ui::{CmdResult, Failure, Ui, block_on};

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The archive to write (a .tar.gz); `-o FILE` works too
    #[arg(long, value_name = "FILE")]
    pub file: PathBuf,
    /// The store to back up: local, s3, a directory, s3://BUCKET/PREFIX
    /// (default: the configured storage)
    #[arg(long, value_name = "STORE")]
    pub from: Option<String>,
}

pub fn bar(ui: &Ui, message: &'static str) -> Option<ProgressBar> {
    ui.interactive().then(|| {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        bar.set_message(message);
        bar
    })
}

pub fn progress_of(bar: &Option<ProgressBar>) -> Progress {
    let bar = bar.clone();
    Arc::new(move |n| {
        if let Some(b) = &bar {
            b.inc(n);
        }
    })
}

pub fn run(args: BackupArgs, ui: Ui) -> CmdResult {
    let cfg = match &args.from {
        Some(s) => super::migrate::location(s, &ui.config)?,
        None => ui.config.storage.clone(),
    };
    let name = storage::describe(&cfg);
    let partial = PathBuf::from(format!("{}.partial", args.file.display()));
    let started = Instant::now();
    let bar = bar(&ui, "backing up");
    let progress = progress_of(&bar);
    let result = block_on(async {
        let s = super::migrate::open_checked(&cfg, false).await?;
        let reg = Registry::new(s.clone(), cfg.upload_ttl);
        let (file, partial2) = (args.file.clone(), partial.clone());
        let locked = reg
            .with_gc_lock(async {
                Ok(async {
                    let snap = archive::snapshot(s.as_ref())
                        .await
                        .map_err(|e| format!("reading {name}: {e}"))?;
                    if let Some(b) = &bar {
                        b.set_length(snap.bytes());
                    }
                    let header = snap.header();
                    let out = std::fs::File::create(&partial2)
                        .map_err(|e| format!("cannot write {}: {e}", partial2.display()))?;
                    let rt = tokio::runtime::Handle::current();
                    tokio::task::spawn_blocking(move || {
                        archive::write(s, snap, std::io::BufWriter::new(out), rt, progress)
                    })
                    .await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| format!("backup stopped: {e}"))?;
                    std::fs::rename(&partial2, &file)
                        .map_err(|e| format!("cannot rename to {}: {e}", file.display()))?;
                    Ok::<_, String>(header)
                }
                .await)
            })
            .await
            .map_err(|e| Failure::Failed(format!("cannot back up {name}: {}", e.message)))?;
        locked.map_err(Failure::Failed)
    });
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let header = match result {
        Ok(h) => h,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
    };
    if ui.json() {
        return ui.print_json(&serde_json::json!({
            "file": args.file, "from": name, "blobs": header.blobs,
            "others": header.others, "bytes": header.bytes,
            "seconds": started.elapsed().as_secs_f64(),
        }));
    }
    if !ui.global.quiet {
        println!(
            "Backed up {name} to {}: {} blobs, {} other objects, {} ({:.1} s)",
            args.file.display(),
            header.blobs,
            header.others,
            size(header.bytes, ui.tty),
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

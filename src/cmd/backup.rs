//! `nora backup -o FILE.tar.gz`: a consistent snapshot of a store while
//! `nora serve` keeps running on it (see storage/archive.rs), streamed into
//! the archive, written to FILE.partial and renamed when complete.

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;

use crate::registry::Registry;
use crate::storage::{self, archive};
use crate::ui::format::size;
use crate::ui::{CmdResult, Failure, Ui, block_on_holding};

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

pub fn run(args: BackupArgs, ui: Ui) -> CmdResult {
    let cfg = match &args.from {
        Some(s) => super::migrate::location(s, &ui.config)?,
        None => ui.config.storage.clone(),
    };
    let name = storage::describe(&cfg);
    // The archive is written aside, then renamed over FILE: over a device,
    // a pipe or a symlink, that would replace it (`-o /dev/full` as root
    // would put a plain file in /dev). Only a plain file, or none, is ours.
    if args.file.as_os_str() == "-" {
        return Err(Failure::Usage(
            "backups are written to a file, not to standard output: name one".into(),
        ));
    }
    if let Ok(meta) = std::fs::symlink_metadata(&args.file)
        && !meta.file_type().is_file()
    {
        return Err(Failure::Usage(format!(
            "{} exists and is not a plain file: name a file to write",
            args.file.display()
        )));
    }
    let partial = PathBuf::from(format!("{}.partial", args.file.display()));
    let started = Instant::now();
    let bar = ui.transfer_bar("backing up");
    let progress = crate::ui::progress_of(&bar);
    let result = block_on_holding(async {
        let s = super::migrate::open_checked(&cfg, false).await?;
        let reg = Registry::new(s.clone(), cfg.upload_ttl);
        let (file, partial2) = (args.file.clone(), partial.clone());
        let locked = reg
            .with_gc_paused(async {
                Ok(async {
                    // A manifest removal a killed process left under way
                    // goes first: the archive would keep a tag without its
                    // manifest, whose layers gc would then free.
                    reg.finish_retirements_logged().await;
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
                    .map_err(|e| format!("stopped ({e}); nothing was kept, run it again"))?;
                    std::fs::rename(&partial2, &file)
                        .map_err(|e| format!("cannot rename to {}: {e}", file.display()))?;
                    Ok::<_, String>(header)
                }
                .await)
            })
            .await
            .map_err(|e| Failure::Failed(format!("cannot back up {name}: {}", e.message)))?;
        locked.map_err(|e| Failure::Failed(format!("cannot back up {name}: {e}")))
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
        crate::outln!(
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

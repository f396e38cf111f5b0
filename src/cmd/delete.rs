//! `nora delete REF...`: remove tags (REPO:TAG) or manifests (REPO@DIGEST,
//! with every tag on them). Blobs are freed by the next `nora gc`.

use clap::Args;

use crate::client::Deleted;
use crate::ui::{CmdResult, Failure, Ui, block_on};

#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// REPOSITORY:TAG or REPOSITORY@DIGEST, one or more
    #[arg(required = true, value_name = "REF")]
    references: Vec<String>,
    /// Show what would be deleted, delete nothing
    #[arg(long)]
    dry_run: bool,
    /// Do not ask for confirmation
    #[arg(short, long)]
    yes: bool,
}

pub fn run(args: DeleteArgs, ui: Ui) -> CmdResult {
    let client = ui.client()?;
    block_on(async {
        // Resolve everything first: a typo in the third reference must not
        // leave the first two deleted.
        let mut plan = Vec::new();
        for r in &args.references {
            plan.push(client.delete(r, true).await?);
        }
        if args.dry_run {
            return show(&ui, &plan, true);
        }
        if ui.interactive() {
            for d in &plan {
                eprintln!("  {}", describe(d));
            }
        }
        ui.confirm(args.yes, &format!("Delete {} reference(s)?", plan.len()))?;
        let mut done = Vec::new();
        for r in &args.references {
            match client.delete(r, false).await {
                Ok(d) => done.push(d),
                Err(e) => {
                    show(&ui, &done, false)?;
                    return Err(Failure::from(e));
                }
            }
        }
        show(&ui, &done, false)
    })
}

fn describe(d: &Deleted) -> String {
    if d.manifest {
        let tags = if d.tags.is_empty() {
            String::new()
        } else {
            format!(" and its tags {}", d.tags.join(", "))
        };
        format!("{} (manifest{tags})", d.reference)
    } else {
        format!("{} (tag of {})", d.reference, d.digest)
    }
}

fn show(ui: &Ui, list: &[Deleted], dry_run: bool) -> CmdResult {
    if ui.json() {
        return ui.print_json(&list);
    }
    if ui.global.quiet {
        return Ok(());
    }
    let verb = if dry_run { "Would delete" } else { "Deleted" };
    for d in list {
        crate::outln!("{verb} {}", describe(d));
    }
    Ok(())
}

//! `nora delete REF...`: remove tags (REPO:TAG) or manifests (REPO@DIGEST,
//! with every tag on them). Blobs are freed by the next `nora gc`.

use clap::Args;

use crate::client::Deleted;
use crate::registry::images::ImageRef;
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
            let d = client.delete(r, true, None).await?;
            // Named twice, or gone with a manifest named before it.
            if !plan.iter().any(|p| covers(p, &d)) {
                plan.push(d);
            }
        }
        if args.dry_run {
            return show(&ui, &plan, true);
        }
        if ui.will_ask(args.yes) {
            for d in &plan {
                crate::errln!("  {}", describe(d));
            }
        }
        ui.confirm(args.yes, &format!("Delete {} reference(s)?", plan.len()))?;
        let mut done = Vec::new();
        for p in &plan {
            // A tag goes only while it names what was shown and confirmed.
            let expect = (!p.manifest).then_some(p.digest.as_str());
            match client.delete(&p.reference, false, expect).await {
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

/// Whether deleting `earlier` already deletes what `later` names: the same
/// reference, or a tag of the manifest `earlier` removes.
fn covers(earlier: &Deleted, later: &Deleted) -> bool {
    let repo = |d: &Deleted| {
        ImageRef::parse(&d.reference)
            .map(|r| r.repository)
            .unwrap_or_default()
    };
    earlier.reference == later.reference
        || (earlier.manifest && earlier.digest == later.digest && repo(earlier) == repo(later))
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

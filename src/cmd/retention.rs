//! `nora retention`: apply the `[[retention]]` rules of the config (how
//! rules combine: registry/retention.rs, and the README).

use clap::Args;

use crate::client::RetentionReport;
use crate::ui::{CmdResult, Ui, block_on};

#[derive(Debug, Args)]
pub struct RetentionArgs {
    /// List each tag that would go and the rule that removes it; remove nothing
    #[arg(long)]
    dry_run: bool,
    /// Do not ask for confirmation
    #[arg(short, long)]
    yes: bool,
}

pub fn run(args: RetentionArgs, ui: Ui) -> CmdResult {
    let client = ui.client()?;
    block_on(async {
        if !args.dry_run && ui.will_ask(args.yes) {
            let plan = client.retention(true).await?;
            if plan.removals.is_empty() {
                return show(&ui, &plan);
            }
            // On stderr: stdout carries the report alone (one JSON document).
            for x in &plan.removals {
                crate::errln!("  {}:{}  {}  {}", x.repository, x.tag, x.digest, x.rule);
            }
        }
        if !args.dry_run {
            ui.confirm(args.yes, "Remove these tags?")?;
        }
        let report = client.retention(args.dry_run).await?;
        show(&ui, &report)
    })
}

fn show(ui: &Ui, r: &RetentionReport) -> CmdResult {
    if ui.json() {
        return ui.print_json(r);
    }
    if ui.global.quiet {
        return Ok(());
    }
    let verb = if r.dry_run { "would remove" } else { "removed" };
    for x in &r.removals {
        crate::outln!(
            "{} {}:{}  {}  {}",
            verb,
            x.repository,
            x.tag,
            ui.dim(&x.digest),
            x.rule
        );
    }
    crate::outln!(
        "{} tags scanned, {} {} tags, {} manifests",
        r.tags_scanned,
        verb,
        r.removals.len(),
        r.manifests_removed
    );
    Ok(())
}

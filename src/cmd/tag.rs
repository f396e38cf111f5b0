//! `nora tag SRC DST`: a server-side retag; no blob is copied.

use clap::Args;

use crate::ui::{CmdResult, Ui, block_on};

#[derive(Debug, Args)]
pub struct TagArgs {
    /// The image to tag: REPOSITORY:TAG or REPOSITORY@DIGEST
    source: String,
    /// The new tag: REPOSITORY:TAG (another repository shares the blobs)
    target: String,
}

pub fn run(args: TagArgs, ui: Ui) -> CmdResult {
    let client = ui.client()?;
    let tagged = block_on(async {
        let t = client.tag(&args.source, &args.target).await?;
        Ok(t)
    })?;
    if ui.json() {
        return ui.print_json(&tagged);
    }
    if !ui.global.quiet {
        let was = match &tagged.replaced {
            Some(d) => format!(", was {d}"),
            None => String::new(),
        };
        crate::outln!(
            "Tagged {} as {} {}",
            tagged.source,
            ui.bold(&tagged.target),
            ui.dim(&format!("({}{was})", tagged.digest))
        );
    }
    Ok(())
}

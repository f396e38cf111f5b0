//! `nora images ls [PATTERN]` and `nora images inspect REF`.

use clap::{Args, Subcommand};

use crate::registry::refglob::RefGlob;
use crate::ui::format::{printable, rfc3339, short_digest, size, time};
use crate::ui::table::Table;
use crate::ui::{CmdResult, Failure, Output, Ui, block_on};

#[derive(Debug, Args)]
pub struct ImagesArgs {
    #[command(subcommand)]
    command: ImagesCommand,
}

#[derive(Debug, Subcommand)]
enum ImagesCommand {
    /// List repositories and tags with digest, size, platforms and push time
    #[command(visible_alias = "list")]
    Ls {
        /// Glob on REPOSITORY:TAG (`team/**:v1.*`, `**:dev-*`); without `:`,
        /// a glob on the repository alone (`team/*`)
        pattern: Option<String>,
    },
    /// Show one image: manifest, config summary, layers, referrers
    Inspect {
        /// REPOSITORY:TAG or REPOSITORY@DIGEST
        reference: String,
    },
}

pub fn run(args: ImagesArgs, ui: Ui) -> CmdResult {
    match args.command {
        ImagesCommand::Ls { pattern } => ls(pattern.as_deref(), &ui),
        ImagesCommand::Inspect { reference } => inspect(&reference, &ui),
    }
}

fn ls(pattern: Option<&str>, ui: &Ui) -> CmdResult {
    let glob = pattern
        .map(RefGlob::new)
        .transpose()
        .map_err(Failure::Usage)?;
    let client = ui.client()?;
    let rows = block_on(async {
        // The server filters too (reading only what matches); a server from
        // before it did ignores the parameter, hence the filter below.
        let rows = client.images(pattern).await?;
        Ok(rows)
    })?;
    let rows: Vec<_> = rows
        .into_iter()
        .filter(|r| {
            glob.as_ref()
                .is_none_or(|g| g.is_match(&r.repository, &r.tag))
        })
        .collect();
    if ui.json() {
        return ui.print_json(&rows);
    }
    if ui.global.quiet {
        for r in &rows {
            crate::outln!("{}:{}", printable(&r.repository), printable(&r.tag));
        }
        return Ok(());
    }
    let wide = ui.global.output == Output::Wide;
    let mut columns = vec!["REPOSITORY", "TAG", "DIGEST", "SIZE", "PLATFORMS", "PUSHED"];
    if wide {
        columns.push("MEDIA TYPE");
    }
    let mut table = Table::new(columns);
    for r in rows {
        let platforms = if r.platforms.is_empty() {
            "-".to_string()
        } else {
            r.platforms.join(",")
        };
        if wide {
            table.row(vec![
                r.repository,
                r.tag,
                r.digest,
                size(r.size, ui.tty),
                platforms,
                rfc3339(r.pushed),
                r.media_type,
            ]);
        } else {
            table.row(vec![
                r.repository,
                r.tag,
                short_digest(&r.digest).to_string(),
                size(r.size, ui.tty),
                platforms,
                time(r.pushed, ui.tty),
            ]);
        }
    }
    table.print(ui);
    Ok(())
}

fn inspect(reference: &str, ui: &Ui) -> CmdResult {
    let client = ui.client()?;
    let i = block_on(async {
        let i = client.inspect(reference).await?;
        Ok(i)
    })?;
    if ui.json() {
        return ui.print_json(&i);
    }
    // Padded before it is painted: the escape codes have no width.
    let field = |name: &str, value: &str| {
        crate::outln!("{}{}", ui.bold(&format!("{name:<12}")), printable(value))
    };
    field("Repository", &i.repository);
    field("Digest", &i.digest);
    field("Media type", &i.media_type);
    field("Size", &size(i.size, ui.tty));
    field("Tags", &none_if_empty(&i.tags.join(", ")));
    field("Platforms", &none_if_empty(&i.platforms.join(", ")));
    if let Some(c) = &i.config {
        field("Config", &format!("{} ({})", c.digest, c.media_type));
        for (name, value) in [
            ("  Created", c.created.clone()),
            (
                "  Entrypoint",
                c.entrypoint.as_ref().map(|v| format!("{v:?}")),
            ),
            ("  Cmd", c.cmd.as_ref().map(|v| format!("{v:?}"))),
        ] {
            if let Some(v) = value {
                field(name, &v);
            }
        }
        for (k, v) in c.labels.iter().flatten() {
            field("  Label", &format!("{k}={v}"));
        }
    }
    for (title, list) in [
        ("Layers", &i.layers),
        ("Manifests", &i.manifests),
        ("Referrers", &i.referrers),
    ] {
        if list.is_empty() {
            continue;
        }
        crate::outln!("{}", ui.bold(&format!("{title} ({})", list.len())));
        for d in list {
            let kind = d.artifact_type.as_deref().unwrap_or(&d.media_type);
            let kind = printable(kind);
            crate::outln!("  {}  {:>10}  {kind}", d.digest, size(d.size, ui.tty));
        }
    }
    Ok(())
}

fn none_if_empty(s: &str) -> String {
    if s.is_empty() { "-".into() } else { s.into() }
}

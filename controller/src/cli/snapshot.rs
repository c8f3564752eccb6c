//! `census snapshot save|restore|inspect`.

use clap::Subcommand;

use super::progress::ProgressBar;
use super::{CliError, HttpArgs};
use crate::catalog::archive;

#[derive(Debug, Subcommand)]
pub enum SnapshotCommand {
    /// Save the cluster's catalog and KV to FILE (a gzipped tar, verified after download).
    Save {
        file: String,
        /// Let any server answer, even without a leader.
        #[arg(long)]
        stale: bool,
    },
    /// Replace the cluster's catalog and KV with the snapshot in FILE.
    Restore { file: String },
    /// Print what a snapshot file holds.
    Inspect { file: String },
}

fn file_error(path: &str) -> impl FnOnce(std::io::Error) -> CliError + '_ {
    move |source| CliError::File { path: path.to_string(), source }
}

fn invalid(path: &str, e: archive::ArchiveError) -> CliError {
    CliError::Usage(format!("{path} is not a usable snapshot: {e}"))
}

pub async fn run(http: &HttpArgs, command: SnapshotCommand) -> Result<i32, CliError> {
    match command {
        SnapshotCommand::Save { file, stale } => {
            let client = http.client()?;
            let mut bar = ProgressBar::new("Saving snapshot");
            let (bytes, index) =
                client.snapshot_save(stale, &mut |done, total| bar.update(done, total)).await?;
            bar.finish();
            let meta = archive::read_meta(&bytes).map_err(|e| invalid("the agent's answer", e))?.0;
            let partial = format!("{file}.part");
            std::fs::write(&partial, &bytes).map_err(file_error(&partial))?;
            std::fs::rename(&partial, &file).map_err(file_error(&file))?;
            println!("Saved and verified snapshot to index {}", meta.index.max(index));
            Ok(0)
        }
        SnapshotCommand::Restore { file } => {
            let bytes = std::fs::read(&file).map_err(file_error(&file))?;
            archive::read_meta(&bytes).map_err(|e| invalid(&file, e))?;
            let client = http.client()?;
            let mut bar = ProgressBar::new("Restoring snapshot");
            client.snapshot_restore(bytes, Box::new(move |done, total| bar.update(done, total))).await?;
            println!("Restored snapshot");
            Ok(0)
        }
        SnapshotCommand::Inspect { file } => {
            let bytes = std::fs::read(&file).map_err(file_error(&file))?;
            let archive = archive::read(&bytes).map_err(|e| invalid(&file, e))?;
            print!("{}", inspect_text(&archive));
            Ok(0)
        }
    }
}

fn inspect_text(archive: &archive::Archive) -> String {
    let meta = &archive.meta;
    let state = &archive.state;
    let mut out = String::new();
    for (name, value) in [
        ("ID", meta.id.clone()),
        ("Size", meta.size.to_string()),
        ("Index", meta.index.to_string()),
        ("Term", meta.term.to_string()),
        ("Version", meta.version.to_string()),
    ] {
        out.push_str(&format!(" {name:<12} {value}\n"));
    }
    out.push_str(&format!("\n {:<16} {:>8}\n", "Type", "Count"));
    out.push_str(&format!(" {:<16} {:>8}\n", "----", "-----"));
    for (name, count) in state.record_counts() {
        out.push_str(&format!(" {name:<16} {count:>8}\n"));
    }
    out
}

//! `docchat export`: a chat as Markdown with its citations.

use anyhow::{Context, Result};
use clap::Args;
use docchat_service::Settings;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The chat's id (from `docchat export` or the web UI) [default: list the chats]
    chat_id: Option<String>,
    /// Write the Markdown to this file [default: standard output]
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Writes a chat as Markdown with its citations, or lists the chats.
pub async fn export(s: Settings, a: ExportArgs) -> Result<ExitCode> {
    let chats = s.chats().await?;
    let Some(id) = a.chat_id else {
        let all = chats.chats().await?;
        if all.is_empty() {
            println!("no chats yet");
        }
        for c in all {
            println!("{}  {}", c.id, c.title);
        }
        return Ok(ExitCode::SUCCESS);
    };
    let chat = chats
        .chat(&id)
        .await?
        .with_context(|| format!("no chat {id:?} (docchat export lists them)"))?;
    let md = docchat_service::answer::history::markdown(&chat, &chats.messages(&id).await?);
    match a.out {
        Some(path) => {
            std::fs::write(&path, md)
                .with_context(|| format!("cannot write {}", path.display()))?;
            println!("wrote {}", path.display());
        }
        None => print!("{md}"),
    }
    Ok(ExitCode::SUCCESS)
}

//! `docchat status`: the indexed documents, and the failed ones with the reason.

use anyhow::Result;
use clap::Args;
use docchat_service::Settings;
use docchat_store::DocState;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print JSON
    #[arg(long)]
    json: bool,
}

pub async fn status(s: Settings, a: StatusArgs) -> Result<ExitCode> {
    let embedder = s.embedder().await?;
    let store = s.store(&embedder).await?;
    let docs = store.documents().await?;
    if a.json {
        let integrity = store.integrity().await?;
        let languages: serde_json::Map<String, serde_json::Value> = store
            .languages()
            .await?
            .into_iter()
            .map(|(l, n)| (l.code().to_string(), n.into()))
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "documents": docs,
                "integrity": integrity,
                "languages": languages,
            }))?
        );
        return Ok(ExitCode::SUCCESS);
    }
    let count = |st: DocState| docs.iter().filter(|d| d.state == st).count();
    println!(
        "{} documents: {} indexed, {} failed, {} pending; {} chunks",
        docs.len(),
        count(DocState::Indexed),
        count(DocState::Failed),
        count(DocState::Pending),
        store.count_chunks(None).await?
    );
    let languages = store.languages().await?;
    if !languages.is_empty() {
        let list: Vec<String> = languages.iter().map(|(l, n)| format!("{l} {n}")).collect();
        println!("chunks by language: {}", list.join(", "));
    }
    for d in &docs {
        let state = d.state.as_str();
        match d.state {
            DocState::Failed => println!(
                "  {state:<8} {}/{}: {}",
                d.collection,
                d.path,
                d.error.as_deref().unwrap_or("")
            ),
            // The extractor says which pages OCR read, if any.
            _ if !d.extractor.is_empty() => println!(
                "  {state:<8} {}/{}  ({} pages, {} chunks; {})",
                d.collection, d.path, d.pages, d.chunks, d.extractor
            ),
            _ => println!(
                "  {state:<8} {}/{}  ({} pages, {} chunks)",
                d.collection, d.path, d.pages, d.chunks
            ),
        }
    }
    Ok(ExitCode::SUCCESS)
}

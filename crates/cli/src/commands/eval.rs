//! `docchat eval`: recall@k, MRR and latency of each search mode over labelled
//! questions.

use anyhow::{Result, bail};
use clap::Args;
use docchat_service::Settings;
use docchat_service::answer::retrieve::SearchMode;
use docchat_store::SearchFilter;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Questions, one JSON object per line: {"question", "file", "page"?, "pages"?}
    questions: PathBuf,
    /// Modes to compare [default: vector, keyword and hybrid]
    #[arg(long = "mode")]
    modes: Vec<SearchMode>,
    /// Only search these collections
    #[arg(long = "collection")]
    collections: Vec<String>,
    /// List the questions each mode missed
    #[arg(long)]
    verbose: bool,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

pub async fn eval(s: Settings, a: EvalArgs) -> Result<ExitCode> {
    let questions = docchat_service::answer::eval::read_questions(&a.questions)?;
    let retriever = s.retriever().await?;
    if retriever.store.count_chunks(None).await? == 0 {
        bail!("the index is empty: index the documents first (docchat index)");
    }
    let modes = if a.modes.is_empty() {
        SearchMode::ALL.to_vec()
    } else {
        a.modes
    };
    let filter = SearchFilter::collections(a.collections);
    let reports = docchat_service::answer::eval::run(
        &retriever,
        &questions,
        &modes,
        s.file.retrieval.fusion(),
        &filter,
    )
    .await?;
    if a.json {
        let out = serde_json::json!({
            "questions": questions.len(),
            "chunks": retriever.store.count_chunks(None).await?,
            "modes": reports,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!(
            "{} questions, {} chunks; latency excludes the query embedding\n",
            questions.len(),
            retriever.store.count_chunks(None).await?
        );
        print!("{}", docchat_service::answer::eval::table(&reports));
        if a.verbose {
            for r in &reports {
                for q in &r.missed {
                    println!("  {} missed: {q}", r.mode.as_str());
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

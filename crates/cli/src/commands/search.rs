//! `docchat search`: the passages that match a query.

use crate::args::FilterArgs;
use anyhow::{Result, bail};
use clap::Args;
use docchat_service::Settings;
use docchat_service::answer::explain;
use docchat_service::answer::retrieve::SearchRequest;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct SearchArgs {
    /// The query
    query: String,
    /// Passages to show
    #[arg(long, default_value_t = 10)]
    top_k: usize,
    #[command(flatten)]
    filter: FilterArgs,
    /// Print JSON
    #[arg(long)]
    json: bool,
    /// Show why: the vector and keyword rankings with their scores, what fusion
    /// kept, what the model is given, and whether anything was close enough
    #[arg(long)]
    explain: bool,
}

pub async fn search(s: Settings, a: SearchArgs) -> Result<ExitCode> {
    if a.query.trim().is_empty() {
        bail!("the query is empty");
    }
    let retriever = s.retriever().await?;
    let req = SearchRequest {
        mode: a.filter.mode.unwrap_or(s.file.retrieval.mode),
        filter: a.filter.to_filter()?,
        fusion: s.file.retrieval.fusion(),
        ..SearchRequest::new(a.query, a.top_k.clamp(1, 100))
    };
    let trace = retriever.trace(&req).await?;
    let passages = &trace.passages;
    if a.json {
        let mut out = serde_json::json!({ "hits": passages });
        if a.explain {
            out["explain"] = serde_json::json!({
                "vector": trace.vector,
                "keyword": trace.keyword,
                "keywords": trace.keywords,
                "fused": trace.fused,
                "nearest_similarity": trace.nearest_similarity(),
                "min_similarity": s.ask_options().min_similarity,
            });
        }
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else if a.explain {
        print!(
            "{}",
            explain::report(&trace, &req.query, req.mode, s.ask_options().min_similarity)
        );
    } else {
        for (i, h) in passages.iter().enumerate() {
            let snippet: String = h.text.split_whitespace().collect::<Vec<_>>().join(" ");
            let short: String = snippet.chars().take(160).collect();
            println!(
                "{:>2}. {:.3}  {}/{} {}\n    {short}",
                i + 1,
                h.score,
                h.at.collection,
                h.at.path,
                h.at.pages()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

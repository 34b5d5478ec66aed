//! `docchat ask`: a question answered in the terminal, streamed, with its sources.

use crate::args::FilterArgs;
use anyhow::{Result, bail};
use clap::Args;
use docchat_service::Settings;
use docchat_service::answer::rag::AnswerEvent;
use std::io::Write;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct AskArgs {
    /// The question
    question: String,
    /// Print the answer and its citations as one JSON object
    #[arg(long)]
    json: bool,
    /// Passages to retrieve [default: 6, or docchat.toml's retrieval.top_k]
    #[arg(long)]
    top_k: Option<usize>,
    #[command(flatten)]
    filter: FilterArgs,
    /// Most tokens in the answer
    #[arg(long, default_value_t = 256)]
    max_tokens: u32,
}

pub async fn ask(s: Settings, a: AskArgs) -> Result<ExitCode> {
    if a.question.trim().is_empty() {
        bail!("the question is empty");
    }
    let rag = s.rag().await?;
    let mut opts = s.ask_options();
    if let Some(k) = a.top_k {
        opts.top_k = k.clamp(1, 50);
    }
    if let Some(m) = a.filter.mode {
        opts.mode = m;
    }
    opts.filter = a.filter.to_filter()?;
    opts.params.max_tokens = a.max_tokens.max(1);
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(async move { rag.answer(a.question, Vec::new(), opts, tx).await });
    let mut answer = String::new();
    let mut citations = Vec::new();
    let mut done = None;
    let mut stdout = std::io::stdout();
    while let Some(ev) = rx.recv().await {
        match ev {
            AnswerEvent::Token(t) => {
                if !a.json {
                    print!("{t}");
                    stdout.flush()?;
                }
                answer.push_str(&t);
            }
            AnswerEvent::Citations(c) => citations = c.citations,
            AnswerEvent::Done(stats) => done = Some(stats),
            AnswerEvent::Error(m) => bail!("{m}"),
        }
    }
    if a.json {
        let out =
            serde_json::json!({ "answer": answer.trim(), "citations": citations, "stats": done });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!();
        if !citations.is_empty() {
            println!("\nSources:");
        }
        for c in &citations {
            println!(
                "  [{}] {}/{} {}  (score {:.3}){}{}",
                c.n,
                c.at.collection,
                c.at.path,
                c.at.pages(),
                c.score,
                if c.cited { "  cited" } else { "" },
                if c.ocr { "  read by OCR" } else { "" }
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

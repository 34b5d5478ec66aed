//! `docchat ask`: a question answered in the terminal, streamed, with its sources.

use crate::args::FilterArgs;
use anyhow::{Result, bail};
use clap::Args;
use docchat_service::Settings;
use docchat_service::answer::rag::AnswerEvent;
use docchat_service::answer::read::Reading;
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
    /// Ask about this document (its file; repeat for several): "summarize", "list
    /// every…" and the like read it to the end
    #[arg(long = "document", value_name = "PATH")]
    documents: Vec<std::path::PathBuf>,
    /// auto (the question decides), retrieve or whole [default: docchat.toml's
    /// reading.mode, auto]
    #[arg(long, value_parser = parse_reading)]
    reading: Option<Reading>,
}

fn parse_reading(s: &str) -> Result<Reading, String> {
    Reading::parse(s).ok_or_else(|| format!("auto, retrieve or whole, not {s:?}"))
}

/// The ids of the indexed documents of `paths`.
async fn document_ids(
    store: &docchat_store::Store,
    paths: &[std::path::PathBuf],
) -> Result<Vec<String>> {
    let docs = store.documents().await?;
    let mut ids = Vec::new();
    for p in paths {
        let abs = std::fs::canonicalize(p).unwrap_or_else(|_| p.clone());
        let found = docs.iter().find(|d| d.file() == abs).or_else(|| {
            docs.iter()
                .find(|d| std::path::Path::new(&d.path) == p.as_path())
        });
        match found {
            Some(d) => ids.push(d.id.clone()),
            None => bail!("{} is not in the index", p.display()),
        }
    }
    Ok(ids)
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
    opts.filter.documents = document_ids(&rag.retriever.store, &a.documents).await?;
    opts.read.reading = a.reading.unwrap_or(opts.read.reading);
    if opts.read.reading == Reading::Whole && opts.filter.documents.is_empty() {
        bail!("--reading whole needs --document");
    }
    opts.params.max_tokens = a.max_tokens.max(1);
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(async move { rag.answer(a.question, Vec::new(), opts, tx).await });
    let mut answer = String::new();
    let mut citations = Vec::new();
    let mut done = None;
    let mut reading = None;
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
            AnswerEvent::Reading(p) => {
                if !a.json && !p.finished {
                    let eta = p
                        .eta_ms
                        .map_or(String::new(), |ms| format!(", about {} s left", ms / 1000));
                    eprint!(
                        "\rreading: {} of {} windows, {} of {} pages{eta}   ",
                        p.windows_done, p.windows_total, p.pages_read, p.pages_total
                    );
                    if p.windows_done == p.windows_total {
                        eprintln!();
                    }
                }
                if let Some(s) = &p.skipped {
                    eprintln!("{s}");
                }
                if p.finished {
                    reading = Some(p);
                }
            }
            AnswerEvent::Error(m) => bail!("{m}"),
        }
    }
    if a.json {
        let out = serde_json::json!({ "answer": answer.trim(), "citations": citations, "stats": done, "reading": reading });
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

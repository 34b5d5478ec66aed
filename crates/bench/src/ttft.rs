//! `docchat bench ttft`: the time to the first token of a RAG answer through
//! `POST /api/chat` (the query embedded, the index searched, the prompt built, its
//! new part processed, the first token sampled and sent) against llama.cpp's bare
//! prompt processing of a prompt of the same length in `llama-bench`, question by
//! question, taking turns.

use crate::engine::{SpeedSettings, llama_bench, median};
use crate::harness::{Scratch, Served, copy_tree, start_server, wait_indexed};
use crate::http::ask;
use anyhow::{Context, Result, bail};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What to run.
#[derive(Debug, Clone)]
pub struct TtftOptions {
    /// Documents indexed before the questions.
    pub docs: PathBuf,
    /// Questions asked (each once, after one warm-up question).
    pub questions: usize,
    /// The models the server loads.
    pub models: docchat_service::models::ModelPaths,
    /// llama.cpp's llama-bench, and the settings it runs with (docchat's own).
    pub llama_bench: PathBuf,
    /// Threads and batch sizes.
    pub speed: SpeedSettings,
}

/// One question.
#[derive(Debug, Clone, Serialize)]
pub struct TtftRow {
    /// The question.
    pub question: String,
    /// Tokens of the whole RAG prompt.
    pub prompt_tokens: u64,
    /// docchat's time to the first token, measured by the client, ms.
    pub docchat_ms: f64,
    /// llama-bench's time to process a prompt of that length, ms.
    pub llama_bench_ms: f64,
}

const QUESTIONS: [&str; 8] = [
    "How do I register native routines in a package?",
    "What does R CMD check do?",
    "How is memory allocated in C code called from R?",
    "How are package vignettes built?",
    "What is the NAMESPACE file for?",
    "How do I debug compiled code?",
    "What does PROTECT do?",
    "How should a package declare its dependencies?",
];

/// Runs the comparison.
pub fn run(opts: &TtftOptions) -> Result<Vec<TtftRow>> {
    let scratch = Scratch::new("docchat-ttft-", "docs")?;
    copy_tree(&opts.docs, &scratch.folder)?;
    let server: Served = start_server(&scratch.data, &scratch.watch, 2, &opts.models)?;
    if !wait_indexed(&server.addr, Duration::from_secs(1800)) {
        bail!("the documents were not indexed in 30 minutes");
    }
    // The first question fills the cache with the system prompt, as any earlier
    // question of a running server has.
    ask(&server.addr, "What is this manual about?", 1)?;
    let mut rows = Vec::new();
    for q in QUESTIONS.iter().cycle().take(opts.questions) {
        let (docchat_ms, prompt_tokens) = ask(&server.addr, q, 1)?;
        let one = SpeedSettings {
            n_prompt: prompt_tokens as usize,
            n_gen: 0,
            runs: 1,
            ..opts.speed.clone()
        };
        let figures = llama_bench(&opts.llama_bench, &opts.models.chat, &one)?;
        let tps = figures
            .iter()
            .find(|f| f.test.starts_with("pp"))
            .context("llama-bench reported no prompt processing")?
            .median;
        let row = TtftRow {
            question: (*q).to_string(),
            prompt_tokens,
            docchat_ms,
            llama_bench_ms: prompt_tokens as f64 / tps * 1e3,
        };
        eprintln!(
            "ttft: {} tokens: docchat {:.0} ms, llama-bench {:.0} ms",
            row.prompt_tokens, row.docchat_ms, row.llama_bench_ms
        );
        rows.push(row);
    }
    Ok(rows)
}

/// The rows as a table, with the median ratio.
pub fn table(rows: &[TtftRow], tool: &Path) -> String {
    let mut out =
        String::from("prompt tokens  docchat /api/chat ms  llama-bench pp ms  ratio  question\n");
    for r in rows {
        out.push_str(&format!(
            "{:>13}  {:>20.1}  {:>17.1}  {:>5.2}  {}\n",
            r.prompt_tokens,
            r.docchat_ms,
            r.llama_bench_ms,
            r.docchat_ms / r.llama_bench_ms,
            r.question
        ));
    }
    let ratios: Vec<f64> = rows
        .iter()
        .map(|r| r.docchat_ms / r.llama_bench_ms)
        .collect();
    out.push_str(&format!(
        "time to first token: docchat / bare prompt processing ({}) = {:.3} (median of {})\n",
        tool.display(),
        median(&ratios),
        ratios.len()
    ));
    out
}

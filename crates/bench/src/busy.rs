//! `docchat bench busy`: a big document indexed while the user keeps working. A
//! fresh `docchat serve` on loopback indexes an optional seed folder, answers a
//! few questions idle, then gets the big document; mid-way through its indexing
//! the same questions are asked again, and once it is indexed, once more. The
//! report has the whole indexing time and the time to first token of each
//! question, idle and during indexing.

use crate::harness::{
    Scratch, Served, copy_tree, indexed_all, start_server, status, vm_kb, wait_indexed,
};
use crate::http::ask;
use anyhow::{Context, Result, bail};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What to run.
#[derive(Debug, Clone)]
pub struct BusyOptions {
    /// The big document (a file or a folder).
    pub doc: PathBuf,
    /// Documents indexed first, so questions have passages to read from the start.
    pub seed: Option<PathBuf>,
    /// Questions asked at each moment.
    pub questions: usize,
    /// Seconds after the big document arrives before the questions are asked.
    pub ask_after: Duration,
    /// Tokens per answer.
    pub max_tokens: u32,
    /// The models the server loads.
    pub models: docchat_service::models::ModelPaths,
}

/// One question's time to first token.
#[derive(Debug, Clone, Serialize)]
pub struct Asked {
    /// `idle before`, `during indexing` or `idle after`.
    pub when: &'static str,
    /// The question.
    pub question: String,
    /// Time to the first token, ms.
    pub ttft_ms: f64,
    /// Whether the big document was still being indexed when the answer ended.
    pub indexing: bool,
}

/// The figures of one run.
#[derive(Debug, Clone, Serialize)]
pub struct BusyReport {
    /// From the copy of the big document to the end of its indexing, s.
    pub index_s: f64,
    /// Pages and chunks indexed (seed included).
    pub pages: u64,
    /// Chunks in the index.
    pub chunks: u64,
    /// Every question asked.
    pub asked: Vec<Asked>,
    /// Median time to first token when idle (before and after), ms.
    pub idle_ttft_ms: f64,
    /// Median time to first token during indexing, ms.
    pub busy_ttft_ms: f64,
    /// Server peak RSS, MB.
    pub peak_rss_mb: f64,
}

const QUESTIONS: [&str; 6] = [
    "How do I fit a linear regression model?",
    "How can I read a CSV file into a data frame?",
    "What does the apply function do?",
    "How do I sort a vector in decreasing order?",
    "How do I draw a histogram?",
    "How are missing values represented?",
];

fn still_indexing(addr: &str) -> bool {
    status(addr).is_some_and(|s| !indexed_all(&s))
}

/// Runs the benchmark.
pub fn run(opts: &BusyOptions) -> Result<BusyReport> {
    let scratch = Scratch::new("docchat-busy-", "docs")?;
    let server: Served = start_server(&scratch.data, &scratch.watch, 2, &opts.models)?;
    let addr = server.addr.clone();
    let questions: Vec<&str> = QUESTIONS
        .iter()
        .copied()
        .cycle()
        .take(opts.questions)
        .collect();
    let mut asked = Vec::new();
    let ask_all = |when: &'static str, asked: &mut Vec<Asked>| -> Result<()> {
        for q in &questions {
            let (ttft_ms, _) = ask(&addr, q, opts.max_tokens)?;
            let indexing = still_indexing(&addr);
            eprintln!(
                "busy: {when}: {ttft_ms:.0} ms to the first token{}",
                if indexing { " (indexing)" } else { "" }
            );
            asked.push(Asked {
                when,
                question: (*q).to_string(),
                ttft_ms,
                indexing,
            });
        }
        Ok(())
    };

    if let Some(seed) = &opts.seed {
        index_seed(&addr, seed, &scratch.folder.join("seed"))?;
    }
    ask_all("idle before", &mut asked)?;

    let big = scratch.folder.join("big");
    std::fs::create_dir_all(&big)?;
    let started = Instant::now();
    copy_tree(&opts.doc, &big)?;
    started_indexing(&addr)?;
    while started.elapsed() < opts.ask_after && still_indexing(&addr) {
        std::thread::sleep(Duration::from_millis(250));
    }
    if !still_indexing(&addr) {
        bail!(
            "the document was indexed within {} s: nothing to ask during",
            opts.ask_after.as_secs()
        );
    }
    ask_all("during indexing", &mut asked)?;
    if !wait_indexed(&addr, Duration::from_secs(3600)) {
        bail!("the document was not indexed in an hour");
    }
    let index_s = started.elapsed().as_secs_f64();
    ask_all("idle after", &mut asked)?;

    let peak_rss_mb = vm_kb(server.child.id(), "VmHWM:") / 1024.0;
    let st = status(&addr).context("the server stopped answering")?;
    let of = |f: &dyn Fn(&Asked) -> bool| {
        let v: Vec<f64> = asked.iter().filter(|a| f(a)).map(|a| a.ttft_ms).collect();
        crate::engine::median(&v)
    };
    let busy_ttft_ms = of(&|a| a.when == "during indexing");
    let idle_ttft_ms = of(&|a| a.when != "during indexing");
    if asked
        .iter()
        .any(|a| a.when == "during indexing" && !a.indexing)
    {
        eprintln!("busy: some answers ended after the indexing did; ask earlier (--ask-after)");
    }
    let docs = st["documents"].as_array().cloned().unwrap_or_default();
    let sum = |key: &str| docs.iter().filter_map(|d| d[key].as_u64()).sum();
    Ok(BusyReport {
        index_s,
        pages: sum("pages"),
        chunks: sum("chunks"),
        asked,
        idle_ttft_ms,
        busy_ttft_ms,
        peak_rss_mb,
    })
}

/// Copies the `seed` documents into `folder` (watched) and waits until they are
/// indexed.
fn index_seed(addr: &str, seed: &Path, folder: &Path) -> Result<()> {
    std::fs::create_dir_all(folder)?;
    copy_tree(seed, folder)?;
    started_indexing(addr)?;
    if !wait_indexed(addr, Duration::from_secs(1800)) {
        bail!("the seed documents were not indexed in 30 minutes");
    }
    Ok(())
}

/// Waits until the server has seen new files to index (at most 30 s).
fn started_indexing(addr: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !still_indexing(addr) {
        if Instant::now() > deadline {
            bail!("the server did not pick up the new files in 30 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// The report as text.
pub fn table(r: &BusyReport) -> String {
    let mut out = String::from("when              ttft ms  still indexing  question\n");
    for a in &r.asked {
        out.push_str(&format!(
            "{:<16} {:>8.0}  {:<14}  {}\n",
            a.when,
            a.ttft_ms,
            if a.indexing { "yes" } else { "no" },
            a.question
        ));
    }
    out.push_str(&format!(
        "indexed in {:.1} s ({:.1} min); index: {} pages, {} chunks; server peak RSS {:.0} MB\n\
         time to first token: idle median {:.0} ms, during indexing median {:.0} ms = {:.2}x idle\n",
        r.index_s,
        r.index_s / 60.0,
        r.pages,
        r.chunks,
        r.peak_rss_mb,
        r.idle_ttft_ms,
        r.busy_ttft_ms,
        r.busy_ttft_ms / r.idle_ttft_ms
    ));
    out
}

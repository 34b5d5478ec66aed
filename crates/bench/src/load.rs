//! `docchat bench load`: a bounded load on a real server over loopback. A fresh
//! `docchat serve` indexes a folder while clients ask questions, search, upload
//! files and walk away from answers mid-stream. Every request must get an answer or
//! a clean 503; the report has the latency of each kind of request, the errors, the
//! server's peak memory, and how soon a slot freed by a client that went away serves
//! the next question.

use crate::harness::{
    Scratch, copy_tree, model_files_mb, start_server, status, vm_kb, wait_indexed,
};
use crate::http::{Outcome, ask, chat_body, send, walk_away};
use anyhow::{Context, Result};
use serde::Serialize;
use serde_json::json;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What to run.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Documents copied into the watched folder when the load starts.
    pub docs: PathBuf,
    /// How long the mixed load runs.
    pub duration: Duration,
    /// Clients asking questions, each one question at a time.
    pub chat_clients: usize,
    /// Clients searching.
    pub search_clients: usize,
    /// Clients uploading small files.
    pub upload_clients: usize,
    /// The server's `--max-queue`.
    pub max_queue: usize,
    /// Tokens per answer.
    pub max_tokens: u32,
    /// The models the server loads.
    pub models: docchat_service::models::ModelPaths,
}

/// The figures of one kind of request.
#[derive(Debug, Clone, Serialize)]
pub struct KindFigure {
    /// chat, search, upload or walk-away.
    pub kind: String,
    /// Requests sent.
    pub requests: usize,
    /// Answered (2xx).
    pub ok: usize,
    /// Refused with 503 and Retry-After (the queue was full).
    pub busy: usize,
    /// Anything else: other statuses, broken connections, 503 without Retry-After.
    pub errors: usize,
    /// Latency of answered requests (whole response), milliseconds.
    pub p50_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// Slowest.
    pub max_ms: f64,
    /// Time to the first token of answered chats, 95th percentile (chat only).
    pub ttft_p95_ms: Option<f64>,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    /// Seconds of mixed load.
    pub seconds: f64,
    /// Concurrent clients.
    pub concurrency: usize,
    /// Per kind of request.
    pub kinds: Vec<KindFigure>,
    /// Peak resident memory of the server (VmHWM), MB.
    pub peak_rss_mb: f64,
    /// Size of the model files the server maps, MB.
    pub model_files_mb: f64,
    /// Documents indexed once the load ended and the queue drained.
    pub documents_indexed: u64,
    /// Documents failed.
    pub documents_failed: u64,
    /// Time to the first token of a question asked alone, idle server, ms.
    pub idle_ttft_ms: f64,
    /// Time to the first token of a question asked right after a client walked away
    /// from a long answer, ms (the slot is freed at once when this is near idle).
    pub after_walk_away_ttft_ms: f64,
    /// Whether the server answered its status after the load.
    pub alive: bool,
}

fn figure(kind: &str, outcomes: &[Option<Outcome>]) -> KindFigure {
    let ok: Vec<&Outcome> = outcomes
        .iter()
        .flatten()
        .filter(|o| (200..300).contains(&o.status))
        .collect();
    let busy = outcomes
        .iter()
        .flatten()
        .filter(|o| o.status == 503 && o.retry_after)
        .count();
    let ms: Vec<f64> = ok.iter().map(|o| o.took.as_secs_f64() * 1e3).collect();
    let latency = docchat_service::answer::eval::Latency::of(&ms);
    let ttft: Vec<f64> = ok
        .iter()
        .filter_map(|o| o.first_token)
        .map(|d| d.as_secs_f64() * 1e3)
        .collect();
    KindFigure {
        kind: kind.into(),
        requests: outcomes.len(),
        ok: ok.len(),
        busy,
        errors: outcomes.len() - ok.len() - busy,
        p50_ms: latency.p50_ms,
        p95_ms: latency.p95_ms,
        max_ms: latency.max_ms,
        ttft_p95_ms: (kind == "chat" && !ttft.is_empty())
            .then(|| docchat_service::answer::eval::Latency::of(&ttft).p95_ms),
    }
}

const SEARCHES: [&str; 4] = [
    "memory allocation",
    "installing packages",
    "harbour ferry timetable",
    "registering native routines",
];

/// Time to the first token of one question asked alone.
fn lone_ttft(addr: &str, max_tokens: u32) -> Result<f64> {
    Ok(ask(addr, "What is this document about?", max_tokens)?.0)
}

/// Runs the load.
/// One request of the load: its kind, and how it went (`None`: no answer).
type Sample = (&'static str, Option<Outcome>);

pub fn run(opts: &LoadOptions) -> Result<LoadReport> {
    let scratch = Scratch::new("docchat-load-", "load")?;
    let server = start_server(&scratch.data, &scratch.watch, opts.max_queue, &opts.models)?;
    let addr = server.addr.clone();
    let pid = server.child.id();
    let copied = copy_tree(&opts.docs, &scratch.folder)?;
    eprintln!(
        "load: {copied} files to index; {} s of mixed load",
        opts.duration.as_secs()
    );
    let deadline = Instant::now() + opts.duration;
    let results: Arc<Mutex<Vec<Sample>>> = Arc::default();
    let mut clients = Vec::new();
    let kinds: [(&'static str, usize); 4] = [
        ("chat", opts.chat_clients),
        ("search", opts.search_clients),
        ("upload", opts.upload_clients),
        ("walk-away", 1),
    ];
    for (kind, count) in kinds {
        for c in 0..count {
            let client = Client {
                addr: addr.clone(),
                kind,
                number: c,
                max_tokens: opts.max_tokens,
            };
            let results = Arc::clone(&results);
            clients.push(std::thread::spawn(move || client.run(deadline, &results)));
        }
    }
    let concurrency = clients.len();
    for c in clients {
        let _ = c.join();
    }
    let alive = status(&addr).is_some();

    // The slot a walking-away client leaves is free at once: a question right
    // after one starts as fast as on an idle server.
    wait_indexed(&addr, Duration::from_secs(600));
    let idle_ttft_ms = lone_ttft(&addr, opts.max_tokens)?;
    walk_away(&addr).context("the long answer did not start")?;
    let after_walk_away_ttft_ms = lone_ttft(&addr, opts.max_tokens)?;

    // The kernel's high-water mark: the peak over the whole run.
    let peak_rss_mb = vm_kb(pid, "VmHWM:") / 1024.0;
    let final_status = status(&addr).unwrap_or_default();
    let results = std::mem::take(
        &mut *results
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    let kinds = ["chat", "search", "upload", "walk-away"]
        .into_iter()
        .map(|kind| {
            let of_kind: Vec<Option<Outcome>> = results
                .iter()
                .filter(|(k, _)| *k == kind)
                .map(|(_, o)| o.clone())
                .collect();
            figure(kind, &of_kind)
        })
        .collect();
    Ok(LoadReport {
        seconds: opts.duration.as_secs_f64(),
        concurrency,
        kinds,
        peak_rss_mb,
        model_files_mb: model_files_mb(&opts.models),
        documents_indexed: final_status["counts"]["indexed"].as_u64().unwrap_or(0),
        documents_failed: final_status["counts"]["failed"].as_u64().unwrap_or(0),
        idle_ttft_ms,
        after_walk_away_ttft_ms,
        alive,
    })
}

/// One client of the load: asks, searches, uploads or walks away, again and again.
struct Client {
    addr: String,
    kind: &'static str,
    number: usize,
    max_tokens: u32,
}

impl Client {
    /// Sends requests until `deadline`, each outcome into `results`.
    fn run(&self, deadline: Instant, results: &Mutex<Vec<Sample>>) {
        let mut n = 0usize;
        while Instant::now() < deadline {
            let outcome = self.request(n);
            let busy = outcome
                .as_ref()
                .is_some_and(|o| o.status == 503 && o.retry_after);
            results
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push((self.kind, outcome));
            n += 1;
            if busy {
                // A client that is told to come back waits a little.
                std::thread::sleep(Duration::from_millis(250));
            }
            if self.kind == "upload" {
                // A user dropping a file every second is already busy.
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    }

    /// The client's `n`th request.
    fn request(&self, n: usize) -> Option<Outcome> {
        let (addr, c) = (&self.addr, self.number);
        match self.kind {
            "chat" => send(
                addr,
                "POST",
                "/api/chat",
                "application/json",
                &chat_body(c + n, self.max_tokens),
            ),
            "search" => send(
                addr,
                "POST",
                "/api/search",
                "application/json",
                json!({"query": SEARCHES[(c + n) % SEARCHES.len()]})
                    .to_string()
                    .as_bytes(),
            ),
            "upload" => send(
                addr,
                "POST",
                &format!("/api/collections/load/files?name=upload-{c}-{n}.txt"),
                "text/plain",
                format!(
                    "Upload {n} of client {c}: notes on harbour logistics and ferry timetables.\n"
                )
                .repeat(20)
                .as_bytes(),
            ),
            _ => {
                let o = walk_away(addr);
                std::thread::sleep(Duration::from_millis(500));
                o
            }
        }
    }
}

/// The report as a table.
pub fn table(r: &LoadReport) -> String {
    let mut out = format!(
        "{:.0} s of load, {} concurrent clients, while a folder was indexed\n\n\
         kind        requests      ok  503+Retry  errors   p50 ms   p95 ms   max ms  TTFT p95 ms\n",
        r.seconds, r.concurrency
    );
    for k in &r.kinds {
        out.push_str(&format!(
            "{:<10} {:>9} {:>7} {:>10} {:>7} {:>8.1} {:>8.1} {:>8.1} {:>12}\n",
            k.kind,
            k.requests,
            k.ok,
            k.busy,
            k.errors,
            k.p50_ms,
            k.p95_ms,
            k.max_ms,
            k.ttft_p95_ms
                .map_or_else(|| "-".to_string(), |t| format!("{t:.1}"))
        ));
    }
    out.push_str(&format!(
        "\nserver peak RSS {:.0} MB (model files {:.0} MB); {} documents indexed, {} failed; \
         server {}\n\
         first token alone {:.0} ms; right after a client walked away from a long answer {:.0} ms\n",
        r.peak_rss_mb,
        r.model_files_mb,
        r.documents_indexed,
        r.documents_failed,
        if r.alive { "alive" } else { "DOWN" },
        r.idle_ttft_ms,
        r.after_walk_away_ttft_ms
    ));
    out
}

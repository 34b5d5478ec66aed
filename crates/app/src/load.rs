//! `docchat bench load`: a bounded load on a real server over loopback. A fresh
//! `docchat serve` indexes a folder while clients ask questions, search, upload
//! files and walk away from answers mid-stream. Every request must get an answer or
//! a clean 503; the report has the latency of each kind of request, the errors, the
//! server's peak memory, and how soon a slot freed by a client that went away serves
//! the next question.

use anyhow::{Context, Result, bail};
use serde::Serialize;
use serde_json::json;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
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
    pub models: crate::models::ModelPaths,
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

/// One response: status, whether Retry-After came with it, time to the first SSE
/// token, and the whole time.
#[derive(Clone)]
pub(crate) struct Outcome {
    pub status: u16,
    pub retry_after: bool,
    pub first_token: Option<Duration>,
    pub took: Duration,
    /// The data of the `done` event of an answer.
    pub done: Option<serde_json::Value>,
}

/// Sends a request and reads the whole response; `None` when the connection broke.
pub(crate) fn send(
    addr: &str,
    method: &str,
    path: &str,
    content_type: &str,
    body: &[u8],
) -> Option<Outcome> {
    let started = Instant::now();
    let mut stream = TcpStream::connect(addr).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(300)))
        .ok()?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {content_type}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).ok()?;
    stream.write_all(body).ok()?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let status: u16 = line.split_whitespace().nth(1)?.parse().ok()?;
    let mut retry_after = false;
    loop {
        line.clear();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if line.trim_end().is_empty() {
            break;
        }
        retry_after |= line.to_ascii_lowercase().starts_with("retry-after:");
    }
    // The body: watch for the first token event while reading to the end.
    let mut first_token = None;
    let (mut done, mut in_done) = (None, false);
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) => break,
            Ok(_) => {
                if first_token.is_none() && line.starts_with("event: token") {
                    first_token = Some(started.elapsed());
                }
                if let Some(data) = line.strip_prefix("data:").filter(|_| in_done) {
                    done = serde_json::from_str(data.trim()).ok();
                }
                if line.starts_with("event:") {
                    in_done = line.trim_end() == "event: done";
                }
            }
            Err(_) => return None,
        }
    }
    Some(Outcome {
        status,
        retry_after,
        first_token,
        took: started.elapsed(),
        done,
    })
}

/// Starts a long answer, reads its first token, and hangs up.
fn walk_away(addr: &str) -> Option<Outcome> {
    let started = Instant::now();
    let body = json!({"question": "Describe every document in detail.", "max_tokens": 2000,
                      "ignore_eos": true, "save": false})
    .to_string();
    let mut stream = TcpStream::connect(addr).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(300)))
        .ok()?;
    write!(
        stream,
        "POST /api/chat HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let status: u16 = line.split_whitespace().nth(1)?.parse().ok()?;
    let mut retry_after = false;
    let mut first_token = None;
    loop {
        line.clear();
        if reader.read_line(&mut line).ok()? == 0 {
            break;
        }
        retry_after |= line.to_ascii_lowercase().starts_with("retry-after:");
        if line.starts_with("event: token") {
            first_token = Some(started.elapsed());
            break;
        }
    }
    // Dropping the reader closes the connection mid-answer.
    Some(Outcome {
        status,
        retry_after,
        first_token,
        took: started.elapsed(),
        done: None,
    })
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
    let latency = crate::eval::Latency::of(&ms);
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
            .then(|| crate::eval::Latency::of(&ttft).p95_ms),
    }
}

/// The server under load, killed when dropped.
pub(crate) struct Served {
    pub child: Child,
    pub addr: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn start_server(
    data: &Path,
    watch: &Path,
    max_queue: usize,
    models: &crate::models::ModelPaths,
) -> Result<Served> {
    let exe = std::env::current_exe().context("cannot locate the docchat executable")?;
    let mut child = Command::new(exe)
        .args(["--data-dir"])
        .arg(data)
        .arg("--models-dir")
        .arg(&models.dir)
        .arg("--chat-model")
        .arg(&models.chat)
        .arg("--embedding-model")
        .arg(&models.embedding)
        .args([
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--watch-dirs",
        ])
        .arg(watch)
        .args(["--max-queue", &max_queue.to_string()])
        .env("RUST_LOG", "docchat=warn,lance=error")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("cannot start docchat serve")?;
    let stdout = child.stdout.take().context("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let addr = loop {
        match lines.next() {
            Some(Ok(l)) => {
                if let Some(url) = l.strip_prefix("listening on http://") {
                    break url.trim().to_string();
                }
            }
            _ => bail!("docchat serve ended before listening"),
        }
    };
    // Keep draining its stdout so it never blocks.
    std::thread::spawn(move || for _ in lines {});
    Ok(Served { child, addr })
}

pub(crate) fn status(addr: &str) -> Option<serde_json::Value> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    write!(
        s,
        "GET /api/status HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let (_, body) = text.split_once("\r\n\r\n")?;
    serde_json::from_str(body).ok()
}

/// The size of the chat and embedding model files, MB.
pub(crate) fn model_files_mb(models: &crate::models::ModelPaths) -> f64 {
    [&models.chat, &models.embedding]
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len() as f64 / f64::from(1 << 20))
        .sum()
}

/// One streamed answer of an unsaved question: (time to the first token in ms,
/// tokens of the prompt).
pub(crate) fn ask(addr: &str, question: &str, max_tokens: u32) -> Result<(f64, u64)> {
    let body = json!({"question": question, "max_tokens": max_tokens, "save": false}).to_string();
    let o = send(
        addr,
        "POST",
        "/api/chat",
        "application/json",
        body.as_bytes(),
    )
    .with_context(|| format!("no answer to {question:?}"))?;
    if o.status != 200 {
        bail!("{question:?} got HTTP {}", o.status);
    }
    let ttft = o
        .first_token
        .with_context(|| format!("no token for {question:?}"))?;
    let prompt_tokens = o
        .done
        .as_ref()
        .and_then(|d| d["prompt_tokens"].as_u64())
        .with_context(|| format!("the answer to {question:?} did not say its prompt length"))?;
    Ok((ttft.as_secs_f64() * 1e3, prompt_tokens))
}

/// Whether the server has indexed everything it knows of (no queue, no work).
pub(crate) fn indexed_all(s: &serde_json::Value) -> bool {
    s["reconciled"] == true && s["queue"] == 0 && s["progress"]["done"] == s["progress"]["total"]
}

/// Waits until the server has indexed everything, at most `timeout`; returns
/// whether it has.
pub(crate) fn wait_indexed(addr: &str, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        match status(addr) {
            Some(s) if indexed_all(&s) => return true,
            None => return false,
            Some(_) if Instant::now() > deadline => return false,
            Some(_) => std::thread::sleep(Duration::from_millis(250)),
        }
    }
}

pub(crate) fn vm_kb(pid: u32, key: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        })
        .unwrap_or(0.0)
}

pub(crate) fn copy_tree(from: &Path, to: &Path) -> Result<usize> {
    let mut n = 0;
    if from.is_file() {
        std::fs::copy(from, to.join(from.file_name().context("a file name")?))?;
        return Ok(1);
    }
    for entry in std::fs::read_dir(from)? {
        let p = entry?.path();
        if p.is_dir() {
            let sub = to.join(p.file_name().context("a folder name")?);
            std::fs::create_dir_all(&sub)?;
            n += copy_tree(&p, &sub)?;
        } else {
            std::fs::copy(&p, to.join(p.file_name().context("a file name")?))?;
            n += 1;
        }
    }
    Ok(n)
}

const SEARCHES: [&str; 4] = [
    "memory allocation",
    "installing packages",
    "harbour ferry timetable",
    "registering native routines",
];

fn chat_body(i: usize, max_tokens: u32) -> Vec<u8> {
    let questions = [
        "What is this document about?",
        "Which functions are described?",
        "How are packages installed?",
        "What does the manual say about memory?",
    ];
    json!({"question": questions[i % questions.len()], "max_tokens": max_tokens, "save": false})
        .to_string()
        .into_bytes()
}

/// Time to the first token of one question asked alone.
fn lone_ttft(addr: &str, max_tokens: u32) -> Result<f64> {
    Ok(ask(addr, "What is this document about?", max_tokens)?.0)
}

/// A benchmark server's temporary home: the empty watched folder `name` (also the
/// collection's name), the watch-dirs file naming it, and the data folder; all
/// removed when dropped.
pub(crate) struct Scratch {
    _tmp: tempfile::TempDir,
    pub folder: PathBuf,
    pub watch: PathBuf,
    pub data: PathBuf,
}

impl Scratch {
    pub(crate) fn new(prefix: &str, name: &str) -> Result<Self> {
        let tmp = tempfile::Builder::new().prefix(prefix).tempdir()?;
        let folder = tmp.path().join(name);
        std::fs::create_dir_all(&folder)?;
        let watch = tmp.path().join("watch-dirs");
        std::fs::write(&watch, format!("{} = {name}\n", folder.display()))?;
        let data = tmp.path().join("data");
        Ok(Self {
            _tmp: tmp,
            folder,
            watch,
            data,
        })
    }
}

/// Runs the load.
pub fn run(opts: &LoadOptions) -> Result<LoadReport> {
    let scratch = Scratch::new("docchat-load-", "load")?;
    let folder = &scratch.folder;
    let server = start_server(&scratch.data, &scratch.watch, opts.max_queue, &opts.models)?;
    let addr = server.addr.clone();
    let pid = server.child.id();

    let copied = copy_tree(&opts.docs, folder)?;
    eprintln!(
        "load: {copied} files to index; {} s of mixed load",
        opts.duration.as_secs()
    );
    let deadline = Instant::now() + opts.duration;
    let results: Arc<Mutex<Vec<(&'static str, Option<Outcome>)>>> = Arc::default();
    let mut clients = Vec::new();
    let kinds: [(&'static str, usize); 4] = [
        ("chat", opts.chat_clients),
        ("search", opts.search_clients),
        ("upload", opts.upload_clients),
        ("walk-away", 1),
    ];
    for (kind, count) in kinds {
        for c in 0..count {
            let addr = addr.clone();
            let results = Arc::clone(&results);
            let max_tokens = opts.max_tokens;
            clients.push(std::thread::spawn(move || {
                let mut n = 0usize;
                while Instant::now() < deadline {
                    let outcome = match kind {
                        "chat" => send(
                            &addr,
                            "POST",
                            "/api/chat",
                            "application/json",
                            &chat_body(c + n, max_tokens),
                        ),
                        "search" => send(
                            &addr,
                            "POST",
                            "/api/search",
                            "application/json",
                            json!({"query": SEARCHES[(c + n) % SEARCHES.len()]})
                                .to_string()
                                .as_bytes(),
                        ),
                        "upload" => send(
                            &addr,
                            "POST",
                            &format!("/api/collections/load/files?name=upload-{c}-{n}.txt"),
                            "text/plain",
                            format!("Upload {n} of client {c}: notes on harbour logistics and ferry timetables.\n")
                                .repeat(20)
                                .as_bytes(),
                        ),
                        _ => {
                            let o = walk_away(&addr);
                            std::thread::sleep(Duration::from_millis(500));
                            o
                        }
                    };
                    let busy = outcome
                        .as_ref()
                        .is_some_and(|o| o.status == 503 && o.retry_after);
                    results.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push((kind, outcome));
                    n += 1;
                    if busy {
                        // A client that is told to come back waits a little.
                        std::thread::sleep(Duration::from_millis(250));
                    }
                    if kind == "upload" {
                        // A user dropping a file every second is already busy.
                        std::thread::sleep(Duration::from_secs(1));
                    }
                }
            }));
        }
    }
    let concurrency = clients.len();
    for c in clients {
        let _ = c.join();
    }
    let seconds = opts.duration.as_secs_f64();
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
    let mut kinds_out = Vec::new();
    for kind in ["chat", "search", "upload", "walk-away"] {
        let of_kind: Vec<Option<Outcome>> = results
            .iter()
            .filter(|(k, _)| *k == kind)
            .map(|(_, o)| o.clone())
            .collect();
        kinds_out.push(figure(kind, &of_kind));
    }
    let model_files_mb = model_files_mb(&opts.models);
    Ok(LoadReport {
        seconds,
        concurrency,
        kinds: kinds_out,
        peak_rss_mb,
        model_files_mb,
        documents_indexed: final_status["counts"]["indexed"].as_u64().unwrap_or(0),
        documents_failed: final_status["counts"]["failed"].as_u64().unwrap_or(0),
        idle_ttft_ms,
        after_walk_away_ttft_ms,
        alive,
    })
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

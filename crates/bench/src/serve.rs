//! `docchat bench serve`: the same streamed chat request through docchat's OpenAI
//! endpoint (the raw chat model, no retrieval) and through llama.cpp's
//! `llama-server`, same model, threads, context and batch sizes, taking turns. One
//! client measures both alike: time to the first content chunk, and generation speed
//! from the first to the last token.

use crate::engine::{SpeedFigure, median};
use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One streamed answer, as the client saw it.
#[derive(Debug, Clone, Copy)]
struct Streamed {
    ttft: Duration,
    tokens: u64,
    generation: Duration,
}

/// A server process, killed when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Streams one chat completion from `addr` and times it. The generated tokens are
/// the usage figure when the server sends one, else the content chunks.
fn stream_chat(addr: &str, body: &Value) -> Result<Streamed> {
    let payload = body.to_string();
    let started = Instant::now();
    let mut s = TcpStream::connect(addr).with_context(|| format!("cannot reach {addr}"))?;
    s.set_read_timeout(Some(Duration::from_secs(600)))?;
    write!(
        s,
        "POST /v1/chat/completions HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{payload}",
        payload.len()
    )?;
    let mut reader = BufReader::new(s);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    if !line.contains(" 200") {
        bail!("{addr} answered {}", line.trim());
    }
    let (mut first, mut last) = (None, None);
    let (mut chunks, mut usage) = (0u64, None);
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            break;
        }
        let Some(data) = line.trim().strip_prefix("data:") else {
            continue;
        };
        let data = data.trim();
        if data == "[DONE]" {
            break;
        }
        let Ok(v) = serde_json::from_str::<Value>(data) else {
            continue;
        };
        if let Some(n) = v["usage"]["completion_tokens"].as_u64() {
            usage = Some(n);
        }
        let content = v["choices"][0]["delta"]["content"].as_str().unwrap_or("");
        if !content.is_empty() {
            let now = started.elapsed();
            first.get_or_insert(now);
            last = Some(now);
            chunks += 1;
        }
    }
    let (Some(first), Some(last)) = (first, last) else {
        bail!("{addr} streamed no content");
    };
    Ok(Streamed {
        ttft: first,
        tokens: usage.unwrap_or(chunks),
        generation: last.saturating_sub(first),
    })
}

fn wait_until<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> Result<T> {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        if let Some(v) = probe() {
            return Ok(v);
        }
        if Instant::now() > deadline {
            bail!("{what} did not come up within 3 minutes");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn get_ok(addr: &str, path: &str) -> bool {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return false;
    };
    let _ = write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    );
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).is_ok() && line.contains(" 200")
}

/// What both servers run with.
#[derive(Debug, Clone)]
pub struct ServeSettings {
    /// The chat model.
    pub model: PathBuf,
    /// The embedding model docchat loads besides (it always serves one).
    pub embedding: PathBuf,
    /// Threads.
    pub threads: i32,
    /// Context size.
    pub ctx: u32,
    /// Logical batch.
    pub batch: u32,
    /// Physical batch.
    pub ubatch: u32,
    /// Tokens per answer.
    pub max_tokens: u32,
    /// Requests per server.
    pub runs: usize,
}

fn start_llama_server(tool: &Path, s: &ServeSettings) -> Result<(Process, String)> {
    let port = free_port()?;
    let child = Command::new(tool)
        .arg("-m")
        .arg(&s.model)
        .args(["-t", &s.threads.to_string(), "-c", &s.ctx.to_string()])
        .args(["-b", &s.batch.to_string(), "-ub", &s.ubatch.to_string()])
        .args(["-np", "1", "--no-webui", "--host", "127.0.0.1"])
        .args(["--port", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("cannot start {}", tool.display()))?;
    let process = Process(child);
    let addr = format!("127.0.0.1:{port}");
    wait_until("llama-server", || get_ok(&addr, "/health").then_some(()))?;
    Ok((process, addr))
}

fn start_docchat(s: &ServeSettings, data: &Path) -> Result<(Process, String)> {
    let mut child = Command::new(crate::harness::docchat_exe()?)
        .arg("--data-dir")
        .arg(data)
        .arg("--chat-model")
        .arg(&s.model)
        .arg("--embedding-model")
        .arg(&s.embedding)
        .args(["--threads", &s.threads.to_string()])
        .args(["--ctx-size", &s.ctx.to_string()])
        .args(["--batch-size", &s.batch.to_string()])
        .args(["--ubatch-size", &s.ubatch.to_string()])
        .args(["serve", "--host", "127.0.0.1", "--port", "0"])
        .env("RUST_LOG", "docchat=warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot start docchat serve")?;
    let stdout = child.stdout.take().context("no stdout")?;
    let process = Process(child);
    let mut lines = BufReader::new(stdout).lines();
    let addr = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| {
            l.strip_prefix("listening on http://")
                .map(|a| a.trim().to_string())
        })
        .context("docchat serve ended before listening")?;
    std::thread::spawn(move || for _ in lines {});
    Ok((process, addr))
}

/// The id docchat gives its raw chat model on `/v1/models`.
fn raw_model_id(addr: &str) -> Result<String> {
    let mut s = TcpStream::connect(addr)?;
    write!(
        s,
        "GET /v1/models HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut text = String::new();
    std::io::Read::read_to_string(&mut s, &mut text)?;
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    let v: Value = serde_json::from_str(body).context("/v1/models is not JSON")?;
    v["data"]
        .as_array()
        .and_then(|d| d.iter().find(|m| m["kind"] == "chat"))
        .and_then(|m| m["id"].as_str())
        .map(str::to_string)
        .context("no chat model on /v1/models")
}

/// Runs both servers, taking turns, and returns generation tokens/s and time to the
/// first token (ms) of each.
pub fn run(tool: &Path, s: &ServeSettings) -> Result<Vec<SpeedFigure>> {
    let data = tempfile::Builder::new()
        .prefix("docchat-bench-")
        .tempdir()?;
    let (_ours, docchat) = start_docchat(s, data.path())?;
    let (_theirs, llama) = start_llama_server(tool, s)?;
    let model = raw_model_id(&docchat)?;
    let request = |model: &str, run: usize| {
        json!({
            "model": model, "stream": true, "max_tokens": s.max_tokens, "temperature": 0,
            "ignore_eos": true, "stream_options": {"include_usage": true},
            "messages": [{"role": "user",
                          "content": format!("Request {run}: write a long story about a lighthouse keeper and a storm.")}],
        })
    };
    let mut tps: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    let mut ttft: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    for run in 0..=s.runs {
        for (i, (addr, m)) in [(&docchat, model.as_str()), (&llama, "model")]
            .into_iter()
            .enumerate()
        {
            let r = stream_chat(addr, &request(m, run))?;
            if run == 0 {
                continue; // warm-up
            }
            let secs = r.generation.as_secs_f64();
            if r.tokens > 1 && secs > 0.0 {
                tps[i].push((r.tokens - 1) as f64 / secs);
            }
            ttft[i].push(r.ttft.as_secs_f64() * 1e3);
        }
    }
    let figure = |engine: &str, test: &str, runs: &[f64]| SpeedFigure {
        engine: engine.into(),
        test: test.into(),
        median: median(runs),
        runs: runs.to_vec(),
    };
    let generation = format!("tg{}", s.max_tokens);
    Ok(vec![
        figure("docchat", &generation, &tps[0]),
        figure("llama-server", &generation, &tps[1]),
        figure("docchat", "ttft-ms", &ttft[0]),
        figure("llama-server", "ttft-ms", &ttft[1]),
    ])
}

//! A small HTTP/1.1 client over a loopback socket, enough for the benchmarks: timed
//! requests, a streamed chat read to the first token, a client that walks away.

use anyhow::{Context, Result, bail};
use serde_json::json;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// One response: status, whether Retry-After came with it, time to the first SSE
/// token, and the whole time.
#[derive(Clone)]
pub struct Outcome {
    pub status: u16,
    pub retry_after: bool,
    pub first_token: Option<Duration>,
    pub took: Duration,
    /// The data of the `done` event of an answer.
    pub done: Option<serde_json::Value>,
}

/// Sends a request and reads the whole response; `None` when the connection broke.
pub fn send(
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
pub fn walk_away(addr: &str) -> Option<Outcome> {
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

/// One streamed answer of an unsaved question: (time to the first token in ms,
/// tokens of the prompt).
pub fn ask(addr: &str, question: &str, max_tokens: u32) -> Result<(f64, u64)> {
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

pub fn chat_body(i: usize, max_tokens: u32) -> Vec<u8> {
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

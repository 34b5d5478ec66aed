//! A minimal HTTP/1.1 client for the CLI commands that talk to a running
//! `docchat serve` on this machine (pause, resume, cancel, collections).

use anyhow::{Context, Result, bail};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// The server could not be reached (exit status 3).
#[derive(Debug)]
pub struct Unreachable {
    pub base: String,
    pub reason: String,
}

impl std::fmt::Display for Unreachable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "cannot reach docchat at {} ({}); is `docchat serve` running?",
            self.base, self.reason
        )
    }
}

impl std::error::Error for Unreachable {}

/// Sends `POST {base}{path}` with an empty body; returns the response body, or an
/// error with the server's message for a non-2xx status.
pub fn post(base: &str, path: &str) -> Result<String> {
    request(base, "POST", path, None)
}

/// Sends `METHOD {base}{path}` with an optional JSON body; returns the response
/// body, or an error with the server's message for a non-2xx status.
pub fn request(base: &str, method: &str, path: &str, json: Option<&str>) -> Result<String> {
    let rest = base
        .strip_prefix("http://")
        .with_context(|| format!("the server address {base:?} must start with http://"))?;
    let host = rest.trim_end_matches('/');
    let mut stream = TcpStream::connect(host).map_err(|e| Unreachable {
        base: base.to_string(),
        reason: e.to_string(),
    })?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let body = json.unwrap_or("");
    // A server shared with a key wants it on every request.
    let auth = std::env::var("DOCCHAT_API_KEY")
        .ok()
        .map(|k| k.trim().to_string())
        .filter(|k| !k.is_empty())
        .map_or_else(String::new, |k| format!("Authorization: Bearer {k}\r\n"));
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
         {auth}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .context("the server sent no HTTP response")?;
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("the server sent no HTTP status")?;
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        unchunk(body)
    } else {
        body.to_string()
    };
    if !(200..300).contains(&status) {
        let message = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
            .unwrap_or_else(|| body.trim().to_string());
        bail!("the server answered {status}: {message}");
    }
    Ok(body)
}

/// Joins a chunked transfer-encoded body.
fn unchunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_bodies_are_joined() {
        assert_eq!(
            unchunk("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"),
            "hello world"
        );
    }

    #[test]
    fn only_http_addresses() {
        assert!(post("https://127.0.0.1:1", "/x").is_err());
    }
}

//! A minimal HTTP/1.1 client over `std::net` for the tests: one request per
//! connection, `Content-Length` and chunked bodies.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// A response: status, lower-cased headers, body.
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

/// Sends one request to `url` (`http://host:port/path`).
pub fn request(method: &str, url: &str, body: Option<&serde_json::Value>) -> Response {
    let payload = body.map(|b| b.to_string().into_bytes());
    request_raw(
        method,
        url,
        payload.as_deref().map(|p| ("application/json", p)),
    )
}

/// Sends one request with a body of the given content type.
pub fn request_raw(method: &str, url: &str, body: Option<(&str, &[u8])>) -> Response {
    request_with(method, url, &[], body)
}

/// Sends one request with extra headers (a `Host` among them replaces the URL's).
pub fn request_with(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<(&str, &[u8])>,
) -> Response {
    let rest = url.strip_prefix("http://").expect("http URL");
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let mut stream = TcpStream::connect(authority).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(300)))
        .unwrap();
    let host = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("host"))
        .map_or(authority, |(_, v)| *v);
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (k, v) in headers
        .iter()
        .filter(|(k, _)| !k.eq_ignore_ascii_case("host"))
    {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some((content_type, payload)) = body {
        head.push_str(&format!(
            "Content-Type: {content_type}\r\nContent-Length: {}\r\n",
            payload.len()
        ));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    if let Some((_, payload)) = body {
        // A server may refuse a body early (too large) and close: that is its answer.
        let _ = stream.write_all(payload);
    }

    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {line:?}"));
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line).unwrap();
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let mut body = Vec::new();
    if chunked {
        loop {
            line.clear();
            reader.read_line(&mut line).unwrap();
            let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or("0"), 16)
                .unwrap_or_else(|_| panic!("bad chunk size {line:?}"));
            if size == 0 {
                break;
            }
            let mut chunk = vec![0u8; size];
            reader.read_exact(&mut chunk).unwrap();
            body.extend_from_slice(&chunk);
            line.clear();
            reader.read_line(&mut line).unwrap();
        }
    } else {
        reader.read_to_end(&mut body).unwrap();
    }
    Response {
        status,
        headers,
        body,
    }
}

/// Reads the Server-Sent Events of `GET url`, calling `on_event(name, data)` for
/// each until it returns `false`; panics if `timeout` passes first.
pub fn read_events(
    url: &str,
    timeout: Duration,
    mut on_event: impl FnMut(&str, &serde_json::Value) -> bool,
) {
    let rest = url.strip_prefix("http://").expect("http URL");
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut stream = TcpStream::connect(authority).expect("connect");
    stream.set_read_timeout(Some(timeout)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nAccept: text/event-stream\r\n\r\n"
    )
    .unwrap();
    let deadline = std::time::Instant::now() + timeout;
    let mut reader = BufReader::new(stream);
    let mut name = String::from("message");
    let mut line = String::new();
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out reading events from {url}"
        );
        line.clear();
        let n = reader
            .read_line(&mut line)
            .expect("the event stream stays open");
        assert!(n > 0, "the event stream ended");
        let l = line.trim_end();
        if let Some(n) = l.strip_prefix("event:") {
            name = n.trim().to_string();
        } else if let Some(d) = l.strip_prefix("data:") {
            // Lines are whole within a chunk of the chunked body; a data line
            // that is not JSON would be a server bug.
            let data: serde_json::Value =
                serde_json::from_str(d.trim()).unwrap_or_else(|e| panic!("{e}: {d}"));
            if !on_event(&name, &data) {
                return;
            }
        }
    }
}

/// Posts `body` to `/api/chat` of the server at `base` and hands each event to
/// `on_event` until it returns `false` (then the connection is closed, as the
/// browser's Stop does) or the stream ends.
pub fn post_events(
    base: &str,
    body: &serde_json::Value,
    mut on_event: impl FnMut(&str, &serde_json::Value) -> bool,
) {
    let authority = base.strip_prefix("http://").unwrap();
    let mut stream = TcpStream::connect(authority).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    let payload = body.to_string();
    write!(
        stream,
        "POST /api/chat HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{payload}",
        payload.len()
    )
    .unwrap();
    let mut reader = BufReader::new(stream);
    let (mut name, mut line) = (String::new(), String::new());
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap() == 0 {
            return;
        }
        let l = line.trim_end();
        if let Some(n) = l.strip_prefix("event:") {
            name = n.trim().to_string();
        } else if let Some(d) = l.strip_prefix("data:") {
            let data: serde_json::Value = serde_json::from_str(d.trim()).unwrap();
            if !on_event(&name, &data) {
                return;
            }
        }
    }
}

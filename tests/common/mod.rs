//! Helpers: paths of the corpus and models, a docchat server in a child process,
//! a small SSE reader.

#![allow(dead_code)]

pub mod http;
pub mod objectstore;
pub mod scan;

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The package's folder, as `cargo test` says when it runs the tests: the tests may
/// run from a checkout other than the one that compiled them (a shared target folder).
pub fn manifest_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
}

/// The shared real-world documents.
pub fn corpus() -> PathBuf {
    let dir = manifest_dir().join("../../../shared/corpus");
    assert!(
        dir.is_dir(),
        "the shared corpus is missing at {}",
        dir.display()
    );
    dir
}

/// Where scripts/setup.sh put the default models.
pub fn models_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("DOCCHAT_MODELS_DIR") {
        return PathBuf::from(d);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME").map_or_else(
        || PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache"),
        PathBuf::from,
    );
    cache.join("docchat/models")
}

/// The Python with the official `openai` client, installed by scripts/setup.sh.
pub fn python() -> PathBuf {
    let cache =
        std::env::var_os("DOCCHAT_CACHE").map_or_else(|| models_dir().join(".."), PathBuf::from);
    let python = cache.join("venv/bin/python");
    assert!(
        python.exists(),
        "no Python with the openai client at {} (run scripts/setup.sh)",
        python.display()
    );
    python
}

/// Runs `script` with the Python of the official `openai` client; asserts that it
/// succeeds and returns what it printed.
pub fn run_python(script: &str) -> String {
    let out = Command::new(python())
        .args(["-c", script])
        .env("NO_PROXY", "*")
        .output()
        .expect("python runs");
    let printed = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{printed}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    printed
}

/// The docchat binary under test.
pub fn docchat() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_docchat"));
    cmd.env("DOCCHAT_MODELS_DIR", models_dir())
        .env_remove("DOCCHAT_CONFIG")
        .env("RUST_LOG", "docchat=info,docchat_store=warn");
    cmd
}

/// A `docchat serve` child process, killed when dropped.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub base: String,
}

impl Server {
    /// Starts a server on a free loopback port and waits for its `listening on` line.
    pub fn start(data_dir: &Path, watch_dirs: &Path) -> Self {
        Self::start_with(data_dir, watch_dirs, &[])
    }

    /// Starts a server with extra `serve` flags.
    pub fn start_with(data_dir: &Path, watch_dirs: &Path, extra: &[&str]) -> Self {
        Self::spawn(Self::command(data_dir, watch_dirs, extra))
    }

    /// The `docchat serve` command `start_with` runs, for a test to add to.
    pub fn command(data_dir: &Path, watch_dirs: &Path, extra: &[&str]) -> Command {
        let mut cmd = docchat();
        cmd.args(["serve", "--host", "127.0.0.1", "--port", "0"])
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--watch-dirs")
            .arg(watch_dirs)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        // A test's folders sit beside its data folder, in a temporary folder, not
        // in the home the browser and the API may add folders from by default.
        if let Some(parent) = data_dir.parent() {
            cmd.env("DOCCHAT_ALLOWED_FOLDERS", parent);
        }
        cmd
    }

    /// `cmd` run by `wrapper` (a program and its first arguments: strace, unshare,
    /// setpriv …), with the same environment.
    pub fn wrapped(cmd: &Command, wrapper: &[&str]) -> Command {
        let mut w = Command::new(wrapper[0]);
        w.args(&wrapper[1..])
            .arg(cmd.get_program())
            .args(cmd.get_args());
        for (k, v) in cmd.get_envs() {
            match v {
                Some(v) => w.env(k, v),
                None => w.env_remove(k),
            };
        }
        w.stderr(Stdio::inherit());
        w
    }

    /// Starts `cmd` (a `docchat serve` that prints `listening on`).
    pub fn spawn(mut cmd: Command) -> Self {
        let mut child = cmd.stdout(Stdio::piped()).spawn().expect("docchat starts");
        let stdout = child.stdout.take().expect("piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("listening on ") {
                    let _ = tx.send(url.trim().to_string());
                }
            }
        });
        let base = rx
            .recv_timeout(Duration::from_secs(180))
            .expect("the server prints its address within 3 minutes");
        Self { child, base }
    }

    /// Kills the server at once (as a crash or `kill -9` would).
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn get(&self, path: &str) -> Value {
        let res = http::request("GET", &self.url(path), None);
        assert_eq!(res.status, 200, "GET {path}: {}", res.text());
        res.json()
    }

    /// A GET whose status and body the test checks itself.
    pub fn get_raw(&self, path: &str) -> http::Response {
        http::request("GET", &self.url(path), None)
    }

    pub fn post(&self, path: &str, body: &Value) -> (u16, String) {
        let res = http::request("POST", &self.url(path), Some(body));
        (res.status, res.text())
    }

    /// Polls `/api/status` until `pred` holds; panics with the last status at the deadline.
    pub fn wait_status(
        &self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let s = self.get("/api/status");
            if pred(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; last status: {s:#}"
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Parses a `text/event-stream` body into (event, data) pairs.
pub fn sse_events(body: &str) -> Vec<(String, Value)> {
    body.split("\n\n")
        .filter_map(|block| {
            let mut name = "message".to_string();
            let mut data = String::new();
            for line in block.lines() {
                if let Some(n) = line.strip_prefix("event:") {
                    name = n.trim().to_string();
                } else if let Some(d) = line.strip_prefix("data:") {
                    data.push_str(d.strip_prefix(' ').unwrap_or(d));
                }
            }
            if data.is_empty() {
                return None;
            }
            Some((
                name,
                serde_json::from_str(&data).expect("event data is JSON"),
            ))
        })
        .collect()
}

/// Whether the indexer is idle: startup scan done, queue empty, nothing pending.
pub fn settled(s: &Value) -> bool {
    s["reconciled"] == true
        && s["queue"] == 0
        && s["documents"]
            .as_array()
            .is_some_and(|d| d.iter().all(|d| d["state"] != "pending"))
}

/// The document of `status` whose path is `path`.
pub fn doc<'a>(status: &'a Value, path: &str) -> Option<&'a Value> {
    status["documents"]
        .as_array()
        .expect("documents")
        .iter()
        .find(|d| d["path"] == path)
}

/// Runs a command to its end; returns (exit status, stdout, stderr).
pub fn outcome(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd.output().expect("the command runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `docchat --data-dir DATA ARGS…`; asserts success and returns stdout.
pub fn run<S: AsRef<std::ffi::OsStr>>(data: &Path, args: &[S]) -> String {
    let out = docchat()
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// `docchat status --json` of a stopped server's data folder, whose integrity check
/// must find nothing to repair.
pub fn assert_intact(data: &Path) -> Value {
    let status: Value = serde_json::from_str(&run(data, &["status", "--json"])).unwrap();
    let integrity = &status["integrity"];
    for key in [
        "duplicate_chunk_ids",
        "orphan_chunks",
        "pending_documents",
        "mismatched_documents",
    ] {
        assert_eq!(integrity[key], 0, "{key}: {integrity}");
    }
    status
}

/// Waits until `path` exists (a pause point reached: see `docchat_service::hooks`);
/// panics with `what` after three minutes.
pub fn wait_for_file(path: &Path, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(180);
    while !path.exists() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `DELETE path` on `server`: the status and the JSON body.
pub fn delete(server: &Server, path: &str) -> (u16, Value) {
    let res = http::request("DELETE", &server.url(path), None);
    (res.status, res.json())
}

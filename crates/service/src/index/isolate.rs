//! Extraction in a child process: `docchat extract` runs the parsers under a memory
//! cap, and the parent kills it at a timeout. A panic, an abort, a stack overflow or
//! an endless loop in a parser becomes a failed document with a reason, never a
//! crash or a hang of the server.

use anyhow::{Context, Result};
use docchat_core::Extracted;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

/// Limits of one extraction.
#[derive(Debug, Clone)]
pub struct ExtractLimits {
    /// The `docchat` executable that runs `docchat extract`.
    pub exe: PathBuf,
    /// Wall-clock limit.
    pub timeout: Duration,
    /// Address-space cap of the child, in bytes.
    pub memory_bytes: u64,
}

impl ExtractLimits {
    /// Limits with the running executable.
    pub fn new(timeout_s: u64, memory_mb: u64) -> Result<Self> {
        Ok(Self {
            exe: std::env::current_exe().context("cannot locate the docchat executable")?,
            timeout: Duration::from_secs(timeout_s),
            memory_bytes: memory_mb * 1024 * 1024,
        })
    }
}

/// Why a document cannot be extracted; its status shows this to the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unreadable {
    /// The parser's own reason (unsupported, encrypted, corrupt, no text layer …).
    Parser(String),
    /// The extraction took longer than the limit, in seconds.
    Timeout(u64),
    /// The extraction needed more memory than the limit.
    TooLarge,
    /// The parser crashed: how.
    Crashed(String),
}

impl std::fmt::Display for Unreadable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Parser(reason) => f.write_str(reason),
            Self::Timeout(s) => write!(f, "timeout: extraction took longer than {s}s"),
            Self::TooLarge => f.write_str("too large: extraction exceeded the memory limit"),
            Self::Crashed(how) => write!(f, "corrupt: the parser {how}"),
        }
    }
}

/// The outcome of one extraction (a failure of docchat itself is an `Err` instead).
#[derive(Debug)]
pub enum Extraction {
    /// The document's pages.
    Ok(Extracted),
    /// Why the document cannot be read.
    Failed(Unreadable),
}

/// What the child writes (`docchat extract --out FILE`): the pages, or the
/// parser's reason.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum ChildOutcome {
    Ok(Extracted),
    Failed(String),
}

/// The child side (`docchat extract --out FILE PATH`): caps its own memory, extracts,
/// writes the outcome as JSON to `out`.
pub fn run_child(path: &Path, out: &Path, memory_bytes: u64) -> Result<()> {
    if memory_bytes > 0 {
        rlimit::setrlimit(rlimit::Resource::AS, memory_bytes, memory_bytes)
            .context("cannot set the memory limit")?;
    }
    // A parser panic is reported as a reason, not a crash.
    std::panic::set_hook(Box::new(|_| {}));
    let outcome = match std::panic::catch_unwind(|| docchat_ingest::extract_file(path)) {
        Ok(Ok(extracted)) => ChildOutcome::Ok(extracted),
        Ok(Err(e)) => ChildOutcome::Failed(e.to_string()),
        Err(_) => {
            ChildOutcome::Failed(Unreadable::Crashed("crashed on this file".into()).to_string())
        }
    };
    let json = serde_json::to_vec(&outcome)?;
    let tmp = out.with_extension("partial");
    std::fs::write(&tmp, json)?;
    std::fs::rename(&tmp, out)?;
    Ok(())
}

/// The parent side: runs the child on `path` within `limits`. `Err` is a failure of
/// docchat itself, not of the document.
pub async fn extract(path: &Path, limits: &ExtractLimits) -> Result<Extraction> {
    let dir = tempfile::Builder::new()
        .prefix("docchat-extract")
        .tempdir()?;
    let out = dir.path().join("out.json");
    // stderr goes to a file: a chatty parser can never block on a full pipe.
    let err_path = dir.path().join("stderr.txt");
    let err_file = std::fs::File::create(&err_path)?;
    let mut child = tokio::process::Command::new(&limits.exe)
        .arg("extract")
        .arg("--memory-bytes")
        .arg(limits.memory_bytes.to_string())
        .arg("--out")
        .arg(&out)
        .arg(path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(err_file))
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start {}", limits.exe.display()))?;
    let status = match tokio::time::timeout(limits.timeout, child.wait()).await {
        Ok(status) => status?,
        Err(_) => {
            let _ = child.kill().await;
            return Ok(Extraction::Failed(Unreadable::Timeout(
                limits.timeout.as_secs(),
            )));
        }
    };
    if let Ok(bytes) = tokio::fs::read(&out).await {
        return Ok(match serde_json::from_slice::<ChildOutcome>(&bytes)? {
            ChildOutcome::Ok(e) => Extraction::Ok(e),
            ChildOutcome::Failed(reason) => Extraction::Failed(Unreadable::Parser(reason)),
        });
    }
    let stderr = tokio::fs::read(&err_path).await.unwrap_or_default();
    Ok(Extraction::Failed(crash_reason(
        status,
        &String::from_utf8_lossy(&stderr),
    )))
}

fn crash_reason(status: std::process::ExitStatus, stderr: &str) -> Unreadable {
    use std::os::unix::process::ExitStatusExt;
    let lower = stderr.to_lowercase();
    if lower.contains("memory allocation") || lower.contains("out of memory") {
        return Unreadable::TooLarge;
    }
    Unreadable::Crashed(match status.signal() {
        Some(11) => "crashed on this file (segmentation fault)".into(),
        Some(6) if lower.contains("overflow") => "crashed on this file (stack overflow)".into(),
        Some(6) => "aborted on this file".into(),
        Some(sig) => format!("was killed by signal {sig}"),
        None => format!("failed (exit {})", status.code().unwrap_or(-1)),
    })
}

//! Extraction in a child process: `docchat extract` runs the parsers under a memory
//! cap, and the parent kills it at a timeout. A panic, an abort, a stack overflow or
//! an endless loop in a parser becomes a failed document with a reason, never a
//! crash or a hang of the server.

use anyhow::{Context, Result};
use docchat_core::Extracted;
use serde::{Deserialize, Serialize};
use std::io::Write;
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
    /// Files larger than this are not read at all (0: no limit).
    pub max_file_bytes: u64,
    /// Where the child writes what it extracted: a folder only docchat's user may
    /// enter (the system's temporary folder when `None`).
    pub work_dir: Option<PathBuf>,
}

impl ExtractLimits {
    /// Limits with the running executable.
    pub fn new(timeout_s: u64, memory_mb: u64) -> Result<Self> {
        Ok(Self {
            exe: std::env::current_exe().context("cannot locate the docchat executable")?,
            timeout: Duration::from_secs(timeout_s),
            memory_bytes: memory_mb * 1024 * 1024,
            max_file_bytes: crate::settings::DEFAULT_MAX_FILE_MB << 20,
            work_dir: None,
        })
    }

    /// Extracts in `dir` (created 0700; what a killed run left there is removed).
    pub fn in_private_dir(mut self, dir: PathBuf) -> Result<Self> {
        use std::os::unix::fs::PermissionsExt;
        if dir.exists() {
            std::fs::remove_dir_all(&dir)
                .with_context(|| format!("cannot clear {}", dir.display()))?;
        }
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
        self.work_dir = Some(dir);
        Ok(self)
    }
}

/// How the reason of an extraction that ran out of time begins.
pub const TIMEOUT: &str = "timeout";

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
            Self::Timeout(s) => write!(f, "{TIMEOUT}: extraction took longer than {s}s"),
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
    private_file(&tmp)?.write_all(&json)?;
    std::fs::rename(&tmp, out)?;
    crate::hooks::pause_blocking(crate::hooks::EXTRACTED);
    Ok(())
}

/// A new file only its owner may read (0600): it holds a document's text.
fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

/// Variables the extraction child keeps: it needs no secret of the server's.
const CHILD_ENV: &[&str] = &[
    "PATH",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "RUST_BACKTRACE",
    "DOCCHAT_TEST_PAUSE",
];

/// Kills the process group `pgid` (the child and whatever it started: poppler's
/// tools among them).
#[allow(unsafe_code)]
fn kill_group(pgid: u32) {
    let Ok(pgid) = libc::pid_t::try_from(pgid) else {
        return;
    };
    // SAFETY: killpg only sends a signal; the group is the child's own, made for it
    // with `process_group(0)`, so no other process is touched.
    unsafe {
        libc::killpg(pgid, libc::SIGKILL);
    }
}

/// The parent side: runs the child on `path` within `limits`. `Err` is a failure of
/// docchat itself, not of the document.
pub async fn extract(path: &Path, limits: &ExtractLimits) -> Result<Extraction> {
    let mut builder = tempfile::Builder::new();
    builder.prefix("docchat-extract");
    let dir = match &limits.work_dir {
        Some(work) => builder.tempdir_in(work)?,
        None => builder.tempdir()?,
    };
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))?;
    }
    let out = dir.path().join("out.json");
    // stderr goes to a file: a chatty parser can never block on a full pipe.
    let err_path = dir.path().join("stderr.txt");
    let err_file = private_file(&err_path)?;
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
        .env_clear()
        .envs(
            CHILD_ENV
                .iter()
                .filter_map(|k| Some((*k, std::env::var_os(k)?))),
        )
        .env("TMPDIR", dir.path())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start {}", limits.exe.display()))?;
    let pgid = child.id();
    let status = match tokio::time::timeout(limits.timeout, child.wait()).await {
        Ok(status) => status?,
        Err(_) => {
            if let Some(pgid) = pgid {
                kill_group(pgid);
            }
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
    let stderr = String::from_utf8_lossy(&stderr);
    // The child could not write what it extracted (a full or read-only data
    // folder): docchat's trouble, tried again later, not the document's.
    let own = anyhow::anyhow!("the extraction could not be saved: {}", stderr.trim());
    if crate::disk::DiskTrouble::of(&own).is_some() {
        return Err(own);
    }
    Ok(Extraction::Failed(crash_reason(status, &stderr)))
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

//! Extraction in a child process: `docchat extract` runs the parsers under a memory
//! cap, and the parent kills it at a timeout. A panic, an abort, a stack overflow or
//! an endless loop in a parser becomes a failed document with a reason, never a
//! crash or a hang of the server.

use anyhow::{Context, Result};
use docchat_core::Extracted;
use docchat_ingest::{Ocr, OcrOptions};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};

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
    /// OCR of pages without a text layer and of images (`None`: off).
    pub ocr: Option<OcrOptions>,
}

/// What one extraction does about pages without a text layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OcrPass {
    /// Nothing: they stay empty.
    Off,
    /// List them (a quick first reading).
    Detect,
    /// Read them.
    Run,
}

impl OcrPass {
    fn arg(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Detect => "detect",
            Self::Run => "run",
        }
    }

    /// The pass named by `docchat extract --ocr`.
    pub fn parse(arg: &str) -> Option<Self> {
        Some(match arg {
            "off" => Self::Off,
            "detect" => Self::Detect,
            "run" => Self::Run,
            _ => return None,
        })
    }
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
            ocr: None,
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

/// What the child prints on its stdout before each OCR page and after the last:
/// `ocr DONE TOTAL`.
const OCR_PROGRESS: &str = "ocr";

/// The child side (`docchat extract --out FILE PATH`): caps its own memory, extracts
/// (with `ocr`: OCR as the pass says, printing its progress), writes the outcome as
/// JSON to `out`.
pub fn run_child(path: &Path, out: &Path, memory_bytes: u64, ocr: &Ocr) -> Result<()> {
    if memory_bytes > 0 {
        rlimit::setrlimit(rlimit::Resource::AS, memory_bytes, memory_bytes)
            .context("cannot set the memory limit")?;
    }
    // A parser panic is reported as a reason, not a crash.
    std::panic::set_hook(Box::new(|_| {}));
    let mut progress = |done: u32, total: u32| {
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{OCR_PROGRESS} {done} {total}");
        let _ = stdout.flush();
    };
    let outcome = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        docchat_ingest::extract_file_with(path, ocr, &mut progress)
    })) {
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

/// The child's `--ocr` and `--ocr-languages` arguments for `pass` (OCR that is off
/// in `limits` is off whatever the pass).
fn ocr_args(pass: OcrPass, limits: &ExtractLimits) -> Vec<String> {
    match (&limits.ocr, pass) {
        (Some(opts), OcrPass::Run) => vec![
            "--ocr".into(),
            pass.arg().into(),
            "--ocr-languages".into(),
            opts.languages.join("+"),
            "--ocr-page-timeout-s".into(),
            opts.page_timeout.as_secs().max(1).to_string(),
        ],
        (Some(_), OcrPass::Detect) => vec!["--ocr".into(), pass.arg().into()],
        _ => vec!["--ocr".into(), OcrPass::Off.arg().into()],
    }
}

/// The [`Ocr`] of the child's arguments.
pub fn child_ocr(pass: OcrPass, languages: &str, page_timeout_s: u64) -> Ocr {
    match pass {
        OcrPass::Off => Ocr::Off,
        OcrPass::Detect => Ocr::Detect,
        OcrPass::Run => Ocr::Run(OcrOptions {
            languages: languages
                .split('+')
                .filter(|l| !l.is_empty())
                .map(str::to_string)
                .collect(),
            page_timeout: Duration::from_secs(page_timeout_s.max(1)),
        }),
    }
}

/// The parent side: runs the child on `path` within `limits`. `Err` is a failure of
/// docchat itself, not of the document. While OCR reads pages, `progress` hears of
/// each one, and every page read gives the extraction another page's time.
pub async fn extract(
    path: &Path,
    limits: &ExtractLimits,
    pass: OcrPass,
    progress: &(dyn Fn(u32, u32) + Sync),
) -> Result<Extraction> {
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
        .args(ocr_args(pass, limits))
        .arg(path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
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
    let mut lines = child.stdout.take().map(|s| BufReader::new(s).lines());
    let page_time = limits
        .ocr
        .as_ref()
        .map_or(Duration::ZERO, |o| o.page_timeout * 2);
    let mut deadline = tokio::time::Instant::now() + limits.timeout;
    let mut allowed = limits.timeout;
    let status = loop {
        tokio::select! {
            status = child.wait() => break status?,
            line = next_line(&mut lines) => match line {
                Some(line) => {
                    if let Some((done, total)) = parse_progress(&line) {
                        progress(done, total);
                        // Each OCR page may take its own time, on top of the limit.
                        if done < total {
                            let until = tokio::time::Instant::now() + page_time;
                            if until > deadline {
                                allowed += until - deadline;
                                deadline = until;
                            }
                        }
                    }
                }
                None => lines = None,
            },
            () = tokio::time::sleep_until(deadline) => {
                if let Some(pgid) = pgid {
                    kill_group(pgid);
                }
                let _ = child.kill().await;
                return Ok(Extraction::Failed(Unreadable::Timeout(allowed.as_secs())));
            }
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

/// The next line of the child's stdout; never, once it is closed.
async fn next_line(
    lines: &mut Option<tokio::io::Lines<BufReader<tokio::process::ChildStdout>>>,
) -> Option<String> {
    match lines {
        Some(l) => l.next_line().await.ok().flatten(),
        None => std::future::pending().await,
    }
}

/// `ocr DONE TOTAL`.
fn parse_progress(line: &str) -> Option<(u32, u32)> {
    let mut parts = line.split_whitespace();
    if parts.next()? != OCR_PROGRESS {
        return None;
    }
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
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

//! What the benchmarks share: a `docchat serve` child process on a scratch folder,
//! its status, memory readings, and the llama.cpp tools they compare with.

use anyhow::{Context, Result, bail};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The `docchat` binary beside this one: the benchmarks run it as a server, and as
/// the extraction child of an index they build in-process.
pub fn docchat_exe() -> Result<PathBuf> {
    let me = std::env::current_exe().context("cannot locate the docchat-bench executable")?;
    let exe = me.with_file_name(format!("docchat{}", std::env::consts::EXE_SUFFIX));
    anyhow::ensure!(
        exe.is_file(),
        "no docchat binary beside {}: build both (cargo build -p docchat -p docchat-bench)",
        me.display()
    );
    Ok(exe)
}

/// The server under load, killed when dropped.
pub struct Served {
    pub child: Child,
    pub addr: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn start_server(
    data: &Path,
    watch: &Path,
    max_queue: usize,
    models: &docchat_service::models::ModelPaths,
) -> Result<Served> {
    let mut child = Command::new(docchat_exe()?)
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

pub fn status(addr: &str) -> Option<serde_json::Value> {
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
pub fn model_files_mb(models: &docchat_service::models::ModelPaths) -> f64 {
    [&models.chat, &models.embedding]
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len() as f64 / f64::from(1 << 20))
        .sum()
}

/// Whether the server has indexed everything it knows of (no queue, no work).
pub fn indexed_all(s: &serde_json::Value) -> bool {
    s["reconciled"] == true && s["queue"] == 0 && s["progress"]["done"] == s["progress"]["total"]
}

/// Waits until the server has indexed everything, at most `timeout`; returns
/// whether it has.
pub fn wait_indexed(addr: &str, timeout: Duration) -> bool {
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

pub fn vm_kb(pid: u32, key: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        })
        .unwrap_or(0.0)
}

pub fn copy_tree(from: &Path, to: &Path) -> Result<usize> {
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

/// A benchmark server's temporary home: the empty watched folder `name` (also the
/// collection's name), the watch-dirs file naming it, and the data folder; all
/// removed when dropped.
pub struct Scratch {
    _tmp: tempfile::TempDir,
    pub folder: PathBuf,
    pub watch: PathBuf,
    pub data: PathBuf,
}

impl Scratch {
    pub fn new(prefix: &str, name: &str) -> Result<Self> {
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
/// The llama.cpp tool `name` scripts/baselines.sh builds, where it is.
pub fn baseline_tool(name: &str) -> Option<PathBuf> {
    let mut builds: Vec<PathBuf> = std::fs::read_dir(crate::peer::bench_cache()?)
        .ok()?
        .flatten()
        .map(|e| e.path().join("bin").join(name))
        .filter(|p| p.is_file())
        .collect();
    builds.sort();
    builds.pop()
}

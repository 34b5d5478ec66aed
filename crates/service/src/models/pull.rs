//! `docchat models pull`: the one download docchat ever makes, and only when asked.
//! Resumable (an interrupted download continues from its `.part` file with an HTTP
//! range request), sha256-verified, reporting its progress.

use anyhow::{Context, Result, anyhow, bail};
use futures::StreamExt;
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the model files are served from unless configured otherwise.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";
/// A download that receives nothing for this long is treated as interrupted.
const STALL: Duration = Duration::from_secs(60);

/// A failed verification: the file is not what was expected (the download is removed).
#[derive(Debug)]
pub struct ChecksumMismatch {
    pub file: PathBuf,
    pub expected: String,
    pub actual: String,
}

impl std::fmt::Display for ChecksumMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "checksum mismatch for {}: expected sha256 {}, got {}; the download was removed",
            self.file.display(),
            self.expected,
            self.actual
        )
    }
}

impl std::error::Error for ChecksumMismatch {}

/// What to fetch and where to put it.
#[derive(Debug, Clone)]
pub struct Download {
    /// The file's URL.
    pub url: String,
    /// The final path; the partial download is `<dest>.part`.
    pub dest: PathBuf,
    /// Expected sha256 (lowercase hex); `None` only when the user said `--no-verify`.
    pub sha256: Option<String>,
}

/// The URL of `file` in `repo` below `endpoint` (Hugging Face's layout).
pub fn file_url(endpoint: &str, repo: &str, file: &str) -> String {
    format!(
        "{}/{repo}/resolve/main/{file}",
        endpoint.trim_end_matches('/')
    )
}

fn part_path(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().unwrap_or_default().to_os_string();
    name.push(".part");
    dest.with_file_name(name)
}

/// sha256 of a whole file.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut hasher = Sha256::new();
    hash_into(path, &mut hasher)?;
    Ok(hex(&hasher.finalize()))
}

fn hash_into(path: &Path, hasher: &mut Sha256) -> Result<u64> {
    let mut f =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(total);
        }
        hasher.update(&buf[..n]);
        total += n as u64;
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What a finished pull did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Pulled {
    pub path: PathBuf,
    pub sha256: String,
    pub bytes: u64,
    /// Bytes that were already there from an interrupted download.
    pub resumed_from: u64,
    /// The file was already complete; nothing was downloaded.
    pub already_present: bool,
}

/// What a pull reports as it goes (the command line draws a progress bar).
pub trait PullProgress {
    /// The download of `name` starts at byte `at` of `total`.
    fn start(&self, name: &str, at: u64, total: Option<u64>);
    /// `at` bytes are there.
    fn advance(&self, at: u64);
    /// The download ended (done or not).
    fn finish(&self);
}

/// No progress report.
impl PullProgress for () {
    fn start(&self, _: &str, _: u64, _: Option<u64>) {}
    fn advance(&self, _: u64) {}
    fn finish(&self) {}
}

/// Fetches `d`, resuming a partial download, and verifies it.
pub async fn pull(d: &Download, progress: &dyn PullProgress) -> Result<Pulled> {
    if let Some(parent) = d.dest.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    if d.dest.exists() {
        return already_present(d);
    }
    let part = part_path(&d.dest);
    let mut hasher = Sha256::new();
    let resumed_from = if part.exists() {
        hash_into(&part, &mut hasher)?
    } else {
        0
    };
    let res = request(&d.url, resumed_from).await?;
    let status = res.status().as_u16();
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&part)
        .with_context(|| format!("cannot write {}", part.display()))?;
    let mut offset = resumed_from;
    let total = match status {
        206 => res.content_length().map(|n| n + offset),
        200 => {
            if offset > 0 {
                // The server ignored the range: start over.
                file.set_len(0)?;
                hasher = Sha256::new();
                offset = 0;
            }
            res.content_length()
        }
        // Nothing left to send: the part is the whole file.
        416 if offset > 0 => Some(offset),
        _ => bail!("{} answered HTTP {}", d.url, res.status()),
    };
    let name = d.dest.file_name().unwrap_or_default().to_string_lossy();
    progress.start(&name, offset, total);
    let mut got = Received {
        offset,
        total,
        hasher,
    };
    let received = if status == 416 {
        Ok(())
    } else {
        got.receive(res, file, progress).await
    };
    progress.finish();
    received?;
    if let Some(t) = total
        && got.offset < t
    {
        return Err(got.interrupted("the connection closed early"));
    }
    let actual = hex(&got.hasher.finalize());
    if let Some(expected) = &d.sha256
        && *expected != actual
    {
        let _ = std::fs::remove_file(&part);
        return Err(ChecksumMismatch {
            file: d.dest.clone(),
            expected: expected.clone(),
            actual,
        }
        .into());
    }
    std::fs::rename(&part, &d.dest)
        .with_context(|| format!("cannot move the download to {}", d.dest.display()))?;
    Ok(Pulled {
        path: d.dest.clone(),
        sha256: actual,
        bytes: got.offset,
        resumed_from,
        already_present: false,
    })
}

/// `d`'s file is there already: fine if it is the expected one.
fn already_present(d: &Download) -> Result<Pulled> {
    let actual = sha256_file(&d.dest)?;
    match &d.sha256 {
        Some(expected) if *expected != actual => bail!(
            "{} exists and differs from the expected file (sha256 {actual}, expected {expected}); move it away to download again",
            d.dest.display()
        ),
        _ => Ok(Pulled {
            bytes: std::fs::metadata(&d.dest)?.len(),
            path: d.dest.clone(),
            sha256: actual,
            resumed_from: 0,
            already_present: true,
        }),
    }
}

/// GET `url`, from byte `offset` on when resuming.
async fn request(url: &str, offset: u64) -> Result<reqwest::Response> {
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(30))
        .user_agent(concat!("docchat/", env!("CARGO_PKG_VERSION")))
        .build()?;
    let mut req = client.get(url);
    if offset > 0 {
        req = req.header(reqwest::header::RANGE, format!("bytes={offset}-"));
    }
    req.send()
        .await
        .with_context(|| format!("cannot reach {url}"))
}

/// The bytes of a download so far.
struct Received {
    offset: u64,
    total: Option<u64>,
    hasher: Sha256,
}

impl Received {
    /// Appends the body of `res` to `file`, hashing it as it comes; stops at a
    /// stall or a broken connection (the part stays, to resume).
    async fn receive(
        &mut self,
        res: reqwest::Response,
        file: std::fs::File,
        progress: &dyn PullProgress,
    ) -> Result<()> {
        let mut writer = std::io::BufWriter::with_capacity(1 << 20, file);
        let mut body = res.bytes_stream();
        loop {
            let chunk = match tokio::time::timeout(STALL, body.next()).await {
                Err(_) => {
                    writer.flush()?;
                    return Err(self.interrupted("no data for a minute"));
                }
                Ok(None) => break,
                Ok(Some(Err(e))) => {
                    writer.flush()?;
                    return Err(self.interrupted(&e.to_string()));
                }
                Ok(Some(Ok(c))) => c,
            };
            writer.write_all(&chunk)?;
            self.hasher.update(&chunk);
            self.offset += chunk.len() as u64;
            progress.advance(self.offset);
        }
        writer.flush()?;
        Ok(())
    }

    fn interrupted(&self, why: &str) -> anyhow::Error {
        anyhow!(
            "the download was interrupted after {} of {} bytes ({why}); run the same command again to resume",
            self.offset,
            self.total.map_or_else(|| "?".into(), |t| t.to_string())
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_part_files() {
        assert_eq!(
            file_url("http://127.0.0.1:9/", "org/repo", "m.gguf"),
            "http://127.0.0.1:9/org/repo/resolve/main/m.gguf"
        );
        assert_eq!(
            part_path(Path::new("/m/x.gguf")),
            Path::new("/m/x.gguf.part")
        );
    }

    #[test]
    fn file_hash_is_sha256() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"abc").unwrap();
        assert_eq!(
            sha256_file(&p).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}

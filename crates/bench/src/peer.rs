//! docchat's indexing against the Python pipeline a user would otherwise assemble
//! (pypdf + llama-cpp-python + lancedb, `scripts/peer_ingest.py`, carried inside
//! the binary), and the one-paragraph edit both have to take in.

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The peer pipeline's source, written to a temporary file when it runs.
const PEER_SCRIPT: &str = include_str!("../peer_ingest.py");

/// What the peer reports of one run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PeerFigure {
    /// Files ingested.
    pub files: u64,
    /// Files it could not read.
    pub failed: u64,
    /// Pages read.
    pub pages: u64,
    /// Chunks embedded.
    pub chunks: u64,
    /// From the first file read to the last write, s.
    pub wall_s: f64,
    /// In embedding calls, s.
    pub embed_s: f64,
    /// Reading and splitting, s.
    pub extract_s: f64,
    /// Table writes and deletes, s.
    pub write_s: f64,
}

/// Where `scripts/baselines.sh` puts the baselines: `$DOCCHAT_CACHE/bench`.
pub fn bench_cache() -> Option<PathBuf> {
    std::env::var_os("DOCCHAT_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/docchat")))
        .map(|c| c.join("bench"))
}

/// The Python of the peer's virtual environment (`scripts/baselines.sh` makes it).
pub fn peer_python() -> Option<PathBuf> {
    let python = bench_cache()?.join("peer-venv/bin/python");
    python.is_file().then_some(python)
}

/// Runs the peer: `command` is `ingest` (folders or files) or `reingest` (files
/// already in its table at `db`).
pub fn run_peer(
    python: &Path,
    model: &Path,
    db: &Path,
    threads: i32,
    command: &str,
    paths: &[PathBuf],
) -> Result<PeerFigure> {
    let mut script = tempfile::Builder::new()
        .prefix("peer_ingest-")
        .suffix(".py")
        .tempfile()?;
    std::io::Write::write_all(&mut script, PEER_SCRIPT.as_bytes())?;
    let out = Command::new(python)
        .arg(script.path())
        .arg("--model")
        .arg(model)
        .arg("--db")
        .arg(db)
        .args(["--threads", &threads.to_string(), command])
        .args(paths)
        .output()
        .with_context(|| format!("cannot run {}", python.display()))?;
    if !out.status.success() {
        bail!(
            "the Python peer failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout
        .lines()
        .last()
        .context("the Python peer printed nothing")?;
    serde_json::from_str(last).with_context(|| format!("the Python peer printed {last:?}"))
}

/// Figures of one re-index after an edit.
#[derive(Debug, Clone, Serialize)]
pub struct ReindexFigure {
    /// `docchat` or `python peer`.
    pub engine: &'static str,
    /// The first indexing of the file, s.
    pub first_s: f64,
    /// Taking in the edited file, s.
    pub reindex_s: f64,
    /// Chunks of the file.
    pub chunks: u64,
    /// Chunks embedded again for the edit.
    pub reembedded: u64,
}

/// The re-index comparison: `pdf` is copied into a fresh watched folder and
/// indexed by docchat and by the peer; then about one paragraph of it is edited
/// and each takes the edit in, docchat by its own incremental update, the peer by
/// deleting the file's rows and ingesting it again.
pub async fn reindex(
    embedder: std::sync::Arc<dyn docchat_core::Embedder>,
    model: &Path,
    threads: i32,
    python: Option<&Path>,
    pdf: &Path,
    limits: docchat_service::index::isolate::ExtractLimits,
) -> Result<(Edit, Vec<ReindexFigure>)> {
    use std::sync::atomic::Ordering;
    use std::time::Instant;
    let tmp = tempfile::Builder::new()
        .prefix("docchat-bench-")
        .tempdir()?;
    let folder = tmp.path().join("docs");
    std::fs::create_dir_all(&folder)?;
    let file = folder.join(pdf.file_name().context("a file name")?);
    std::fs::copy(pdf, &file)?;
    aged(&file)?;

    let store = docchat_store::Store::open(&tmp.path().join("index"), embedder.dim()).await?;
    let root = docchat_service::config::WatchRoot {
        path: std::fs::canonicalize(&folder)?,
        collection: "docs".into(),
    };
    let indexer = docchat_service::index::Indexer::new(store.clone(), embedder, vec![root], limits);
    let worker = tokio::spawn(std::sync::Arc::clone(&indexer).run());
    let embedded = || indexer.stats.chunks_embedded.load(Ordering::SeqCst);
    let started = Instant::now();
    indexer.reconcile().await?;
    indexer.wait_idle().await;
    let first_s = started.elapsed().as_secs_f64();
    let chunks = store.count_chunks(None).await? as u64;
    if chunks == 0 {
        bail!("docchat indexed nothing of {}", pdf.display());
    }

    let peer_db = tmp.path().join("peer");
    let peer_first = python
        .map(|py| {
            run_peer(
                py,
                model,
                &peer_db,
                threads,
                "ingest",
                std::slice::from_ref(&file),
            )
        })
        .transpose()?;

    let edited = tmp.path().join("edited.pdf");
    let edit = edit_one_paragraph(&file, &edited, 600)?;
    std::fs::rename(&edited, &file)?;
    aged(&file)?;

    let before = embedded();
    let started = Instant::now();
    indexer.reconcile().await?;
    indexer.wait_idle().await;
    let reindex_s = started.elapsed().as_secs_f64();
    let reembedded = embedded() - before;
    worker.abort();
    if reembedded == 0 {
        bail!("docchat did not take in the edit");
    }
    let mut figures = vec![ReindexFigure {
        engine: "docchat",
        first_s,
        reindex_s,
        chunks,
        reembedded,
    }];
    if let (Some(py), Some(first)) = (python, peer_first) {
        figures.push(peer_reingest(py, model, &peer_db, threads, &file, &first)?);
    }
    Ok((edit, figures))
}

/// Files younger than a second are left to settle (they may still be copied):
/// the copy is aged so that no run waits for that.
fn aged(path: &Path) -> Result<()> {
    use std::time::{Duration, SystemTime};
    std::fs::File::options()
        .write(true)
        .open(path)?
        .set_modified(SystemTime::now() - Duration::from_secs(10))?;
    Ok(())
}

/// The peer ingesting the edited `file` again into its table at `db`.
fn peer_reingest(
    python: &Path,
    model: &Path,
    db: &Path,
    threads: i32,
    file: &Path,
    first: &PeerFigure,
) -> Result<ReindexFigure> {
    let again = run_peer(
        python,
        model,
        db,
        threads,
        "reingest",
        std::slice::from_ref(&file.to_path_buf()),
    )?;
    Ok(ReindexFigure {
        engine: "python peer",
        first_s: first.wall_s,
        reindex_s: again.wall_s,
        chunks: again.chunks,
        reembedded: again.chunks,
    })
}

/// Re-index figures as a text table, with the ratio of the peer's time to docchat's.
pub fn reindex_table(edit: &Edit, figures: &[ReindexFigure]) -> String {
    let mut out = format!(
        "edit: {} letters rewritten on page {}\n\
         engine        first index s  chunks  re-index s  re-embedded\n",
        edit.letters, edit.page
    );
    for f in figures {
        out.push_str(&format!(
            "{:<13} {:>13.1}  {:>6}  {:>10.2}  {:>11}\n",
            f.engine, f.first_s, f.chunks, f.reindex_s, f.reembedded
        ));
    }
    if let [ours, theirs, ..] = figures {
        out.push_str(&format!(
            "re-index: python peer / docchat = {:.1}x\n",
            theirs.reindex_s / ours.reindex_s
        ));
    }
    out
}

/// What [`edit_one_paragraph`] changed.
#[derive(Debug, Clone, Serialize)]
pub struct Edit {
    /// The page edited (1-based).
    pub page: u32,
    /// Letters changed.
    pub letters: usize,
}

/// Writes `dst`: `src` with about one paragraph of text on a middle page
/// rewritten (the lowercase letters of `letters` consecutive characters of its
/// text strings rotated by 13), everything else as it was.
pub fn edit_one_paragraph(src: &Path, dst: &Path, letters: usize) -> Result<Edit> {
    let mut doc = lopdf::Document::load(src)
        .with_context(|| format!("cannot read {} as PDF", src.display()))?;
    let pages = doc.get_pages();
    let n = pages.len() as u32;
    if n == 0 {
        bail!("{} has no pages", src.display());
    }
    // From the middle page on, the first page with enough text.
    for page in (n / 2).max(1)..=n {
        let id = pages[&page];
        let Ok(content) = doc.get_page_content(id) else {
            continue;
        };
        let (edited, changed) = rot13_strings(&content, letters);
        if changed >= letters / 2 {
            doc.change_page_content(id, edited)
                .context("cannot write the edited page")?;
            doc.save(dst)
                .with_context(|| format!("cannot write {}", dst.display()))?;
            return Ok(Edit {
                page,
                letters: changed,
            });
        }
    }
    bail!("no page of {} has text to edit", src.display())
}

/// Rotates the lowercase letters of the literal strings of a content stream,
/// starting in its second third, until `letters` have changed.
fn rot13_strings(content: &[u8], letters: usize) -> (Vec<u8>, usize) {
    let mut out = content.to_vec();
    let from = content.len() / 3;
    let mut changed = 0;
    let (mut depth, mut escaped) = (0usize, false);
    for (i, b) in content.iter().enumerate() {
        if depth == 0 {
            if *b == b'(' {
                depth = 1;
            }
            continue;
        }
        if escaped {
            escaped = false;
            continue;
        }
        match b {
            b'\\' => escaped = true,
            b'(' => depth += 1,
            b')' => depth -= 1,
            b'a'..=b'z' if i >= from && changed < letters => {
                out[i] = b'a' + (b - b'a' + 13) % 26;
                changed += 1;
            }
            _ => {}
        }
    }
    (out, changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The package's folder, as `cargo test` says when it runs the tests (they may
    /// run from another checkout than the one that compiled them).
    fn manifest_dir() -> std::path::PathBuf {
        std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(
            || std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")),
            std::path::PathBuf::from,
        )
    }

    #[test]
    fn only_letters_inside_strings_past_the_first_third_change() {
        let content = b"BT (abc) Tj ET BT (hello\\) (x) world) Tj [(ab) 5 (cd)] TJ ET";
        let (out, changed) = rot13_strings(content, 5);
        let out = String::from_utf8(out).expect("ascii");
        assert!(out.starts_with("BT (abc) Tj ET BT ("), "{out}");
        assert!(out.contains("Tj ET"), "operators untouched: {out}");
        assert_eq!(changed, 5);
        assert_ne!(out.as_bytes(), content.as_slice());
        // Rotating again restores the text.
        let (back, _) = rot13_strings(out.as_bytes(), 5);
        assert_eq!(back, content.to_vec());
    }

    #[test]
    fn the_edit_changes_one_page_of_a_real_pdf_and_nothing_else() {
        let src = manifest_dir().join("../../../shared/corpus/pdf-wild/tracemonkey.pdf");
        let tmp = tempfile::tempdir().expect("tempdir");
        let dst = tmp.path().join("edited.pdf");
        let edit = edit_one_paragraph(&src, &dst, 600).expect("edited");
        assert!(edit.letters >= 300, "{edit:?}");
        let before = docchat_ingest::extract_file(&src).expect("original extracts");
        let after = docchat_ingest::extract_file(&dst).expect("edited copy extracts");
        assert_eq!(before.pages.len(), after.pages.len());
        let changed: Vec<u32> = before
            .pages
            .iter()
            .zip(&after.pages)
            .filter(|(a, b)| a.text != b.text)
            .map(|(a, _)| a.number)
            .collect();
        assert_eq!(
            changed,
            vec![edit.page],
            "only the edited page reads differently"
        );
    }
}

//! `docchat bench ingest`: folders indexed into a fresh index, pages/s, chunks/s and
//! the share of wall time spent embedding; optionally against the Python peer.

use anyhow::{Result, bail};
use docchat_store::Store;
use serde::Serialize;
use std::path::Path;
use std::time::Instant;

/// Figures of one indexing run.
#[derive(Debug, Clone, Serialize)]
pub struct IngestFigure {
    /// `pipelined` (extraction overlaps embedding) or `sequential`.
    pub mode: &'static str,
    /// Files found.
    pub files: usize,
    /// Files indexed.
    pub indexed: usize,
    /// Files failed (with a reason each).
    pub failed: usize,
    /// Pages indexed.
    pub pages: u64,
    /// Chunks embedded.
    pub chunks: u64,
    /// Wall time from the first scan to the last write (index optimization
    /// included), s.
    pub wall_s: f64,
    /// Pages per second of wall time.
    pub pages_per_s: f64,
    /// Chunks per second of wall time.
    pub chunks_per_s: f64,
    /// Time in embedding calls, s.
    pub embed_s: f64,
    /// Time extracting, s (overlaps embedding when pipelined).
    pub extract_s: f64,
    /// Share of the wall time spent embedding.
    pub embed_share: f64,
}

/// Indexes `roots` into a fresh index in `dir` and measures the run.
pub async fn ingest(
    dir: &Path,
    embedder: std::sync::Arc<dyn docchat_core::Embedder>,
    roots: Vec<docchat_service::config::WatchRoot>,
    limits: docchat_service::index::isolate::ExtractLimits,
    pipelined: bool,
) -> Result<IngestFigure> {
    let store = Store::open(dir, embedder.dim()).await?;
    if store.count_chunks(None).await? > 0 {
        bail!(
            "{} already holds an index; give an empty folder",
            dir.display()
        );
    }
    ingest_into(store, embedder, roots, limits, pipelined).await
}

/// Indexes `roots` into `store` (empty) and measures the run.
pub async fn ingest_into(
    store: Store,
    embedder: std::sync::Arc<dyn docchat_core::Embedder>,
    roots: Vec<docchat_service::config::WatchRoot>,
    limits: docchat_service::index::isolate::ExtractLimits,
    pipelined: bool,
) -> Result<IngestFigure> {
    use std::sync::atomic::Ordering;
    let indexer = docchat_service::index::Indexer::new(store.clone(), embedder, roots, limits);
    indexer.set_pipeline(pipelined);
    let worker = tokio::spawn(std::sync::Arc::clone(&indexer).run());
    let started = Instant::now();
    indexer.reconcile().await?;
    indexer.wait_idle().await;
    let wall_s = started.elapsed().as_secs_f64();
    worker.abort();
    let docs = store.documents().await?;
    let st = &indexer.stats;
    let pages = st.pages_indexed.load(Ordering::SeqCst);
    let chunks = st.chunks_embedded.load(Ordering::SeqCst);
    let embed_s = st.embed_us.load(Ordering::SeqCst) as f64 / 1e6;
    Ok(IngestFigure {
        mode: if pipelined { "pipelined" } else { "sequential" },
        files: docs.len(),
        indexed: docs
            .iter()
            .filter(|d| d.state == docchat_store::DocState::Indexed)
            .count(),
        failed: docs
            .iter()
            .filter(|d| d.state == docchat_store::DocState::Failed)
            .count(),
        pages,
        chunks,
        wall_s,
        pages_per_s: pages as f64 / wall_s,
        chunks_per_s: chunks as f64 / wall_s,
        embed_s,
        extract_s: st.extract_us.load(Ordering::SeqCst) as f64 / 1e6,
        embed_share: embed_s / wall_s,
    })
}

impl IngestFigure {
    /// The Python peer's run, in the same terms.
    pub fn of_peer(p: &crate::peer::PeerFigure) -> Self {
        Self {
            mode: "python peer",
            files: (p.files + p.failed) as usize,
            indexed: p.files as usize,
            failed: p.failed as usize,
            pages: p.pages,
            chunks: p.chunks,
            wall_s: p.wall_s,
            pages_per_s: p.pages as f64 / p.wall_s,
            chunks_per_s: p.chunks as f64 / p.wall_s,
            embed_s: p.embed_s,
            extract_s: p.extract_s,
            embed_share: p.embed_s / p.wall_s,
        }
    }
}

/// docchat (pipelined) against the Python peer: the medians of their runs'
/// pages/s and embedding shares; empty without peer runs.
pub fn ingest_ratios(figures: &[IngestFigure]) -> String {
    let of = |mode: &str, f: fn(&IngestFigure) -> f64| {
        let v: Vec<f64> = figures.iter().filter(|x| x.mode == mode).map(f).collect();
        (!v.is_empty()).then(|| crate::engine::median(&v))
    };
    let (Some(ours), Some(theirs)) = (
        of("pipelined", |f| f.pages_per_s),
        of("python peer", |f| f.pages_per_s),
    ) else {
        return String::new();
    };
    let mut out = format!("pages/s: docchat / python peer = {:.2}\n", ours / theirs);
    if let (Some(a), Some(b)) = (
        of("pipelined", |f| f.chunks_per_s),
        of("python peer", |f| f.chunks_per_s),
    ) {
        out.push_str(&format!("chunks/s: docchat / python peer = {:.2}\n", a / b));
    }
    if let (Some(a), Some(b)) = (
        of("pipelined", |f| f.embed_share),
        of("python peer", |f| f.embed_share),
    ) {
        out.push_str(&format!(
            "embedding share: docchat {:.1} %, python peer {:.1} %\n",
            a * 100.0,
            b * 100.0
        ));
    }
    out
}

/// Indexing figures as a text table.
pub fn ingest_table(figures: &[IngestFigure]) -> String {
    let mut out = String::from(
        "mode        files  indexed  failed  pages  chunks  wall s  pages/s  chunks/s  embed s  extract s  embedding share\n",
    );
    for f in figures {
        out.push_str(&format!(
            "{:<11} {:>5}  {:>7}  {:>6}  {:>5}  {:>6}  {:>6.1}  {:>7.2}  {:>8.2}  {:>7.1}  {:>9.1}  {:>6.1} %\n",
            f.mode,
            f.files,
            f.indexed,
            f.failed,
            f.pages,
            f.chunks,
            f.wall_s,
            f.pages_per_s,
            f.chunks_per_s,
            f.embed_s,
            f.extract_s,
            f.embed_share * 100.0
        ));
    }
    out
}

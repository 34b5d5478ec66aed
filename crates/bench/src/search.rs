//! `docchat bench search`: retrieval latency at a given number of chunks, on
//! synthetic text and vectors, exact and with the ANN vector index.

use crate::synthetic::Synthetic;
use anyhow::{Result, bail};
use docchat_service::answer::eval::Latency;
use docchat_service::answer::retrieve::{Retriever, SearchMode, SearchRequest};
use docchat_store::{ChunkRecord, SearchTuning, Store};
use serde::Serialize;
use std::path::Path;
use std::time::Instant;

/// Rows appended per commit.
const APPEND_BATCH: usize = 10_000;

/// Latency of one mode at one size.
#[derive(Debug, Clone, Serialize)]
pub struct SearchFigure {
    /// Chunks in the table.
    pub chunks: usize,
    /// The mode.
    pub mode: SearchMode,
    /// Whether the ANN vector index was in use.
    pub vector_index: bool,
    /// Latency of the whole retrieval (fusion and passage expansion included,
    /// query embedding excluded).
    pub latency: Latency,
    /// Share of the exact top 10 that the indexed vector search also returns
    /// (vector mode with the index only).
    pub recall_vs_exact: Option<f64>,
}

/// Builds synthetic tables of each size in `sizes` (ascending) under `dir` and
/// measures every mode, exact and with the vector index.
pub async fn search(
    dir: &Path,
    retriever: &Retriever,
    sizes: &[usize],
    queries: usize,
    mut progress: impl FnMut(&str),
) -> Result<Vec<SearchFigure>> {
    if sizes.is_empty() || sizes.windows(2).any(|w| w[0] >= w[1]) {
        bail!("sizes must be given in ascending order");
    }
    let dim = retriever.store.dim();
    // Index building is the benchmark's job here, not the optimizer's.
    let tuning = SearchTuning {
        vector_index_min_rows: 0,
        ..SearchTuning::default()
    };
    let store = Store::open(dir, dim).await?.with_tuning(tuning);
    if store.count_chunks(None).await? > 0 {
        bail!(
            "{} already holds chunks; give an empty folder",
            dir.display()
        );
    }
    let bench = Retriever {
        store: store.clone(),
        embedder: retriever.embedder.clone(),
    };
    let mut data = Synthetic::new(dim, 42);
    let probes: Vec<(String, Vec<f32>)> = (0..queries.max(1)).map(|_| data.query()).collect();
    let mut figures = Vec::new();
    let mut written = 0;
    for &size in sizes {
        let started = Instant::now();
        while written < size {
            let n = APPEND_BATCH.min(size - written);
            let batch: Vec<ChunkRecord> = (written..written + n).map(|i| data.chunk(i)).collect();
            store.append_chunks(&batch).await?;
            written += n;
        }
        store.drop_vector_index().await?;
        store.optimize().await?;
        progress(&format!(
            "{size} chunks written and text-indexed in {:.1} s",
            started.elapsed().as_secs_f64()
        ));
        let exact_top: Vec<Vec<String>> = {
            let mut out = Vec::new();
            for (_, v) in &probes {
                let hits = store.vector_search(v, 10, &Default::default()).await?;
                out.push(hits.into_iter().map(|h| h.chunk_id).collect());
            }
            out
        };
        for indexed in [false, true] {
            if indexed {
                let started = Instant::now();
                store.build_vector_index().await?;
                progress(&format!(
                    "vector index over {size} chunks built in {:.1} s",
                    started.elapsed().as_secs_f64()
                ));
            }
            for mode in SearchMode::ALL {
                if indexed && mode == SearchMode::Keyword {
                    continue;
                }
                let exact = (indexed && mode == SearchMode::Vector).then_some(&exact_top[..]);
                let (latency, recall_vs_exact) = measure(&bench, mode, &probes, exact).await?;
                figures.push(SearchFigure {
                    chunks: size,
                    mode,
                    vector_index: indexed,
                    latency,
                    recall_vs_exact,
                });
            }
        }
    }
    Ok(figures)
}

/// The latency of `mode` over `probes` (after an untimed warm-up), and, given
/// the exact top 10 of each probe, the share of it the vector index finds.
pub(crate) async fn measure(
    bench: &Retriever,
    mode: SearchMode,
    probes: &[(String, Vec<f32>)],
    exact_top: Option<&[Vec<String>]>,
) -> Result<(Latency, Option<f64>)> {
    let mut times = Vec::with_capacity(probes.len());
    let mut overlap = 0usize;
    run_one(bench, mode, &probes[0]).await?;
    for (i, probe) in probes.iter().enumerate() {
        let t = Instant::now();
        run_one(bench, mode, probe).await?;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        if let Some(exact) = exact_top {
            let hits = bench
                .store
                .vector_search(&probe.1, 10, &Default::default())
                .await?;
            overlap += hits
                .iter()
                .filter(|h| exact[i].contains(&h.chunk_id))
                .count();
        }
    }
    let recall = exact_top.map(|_| overlap as f64 / (probes.len() * 10) as f64);
    Ok((Latency::of(&times), recall))
}

async fn run_one(
    retriever: &Retriever,
    mode: SearchMode,
    (query, vector): &(String, Vec<f32>),
) -> Result<Vec<docchat_service::answer::retrieve::Passage>> {
    let req = SearchRequest {
        mode,
        ..SearchRequest::new(query.clone(), 10)
    };
    retriever.search_with(&req, Some(vector)).await
}

/// The figures as a text table.
pub fn table(figures: &[SearchFigure]) -> String {
    let mut out = String::from(
        "chunks   mode     vector index  p50 ms  p95 ms  p99 ms  recall@10 vs exact\n",
    );
    for f in figures {
        out.push_str(&format!(
            "{:<8} {:<8} {:<13} {:>6.1}  {:>6.1}  {:>6.1}  {}\n",
            f.chunks,
            f.mode.as_str(),
            if f.vector_index {
                "IVF-HNSW-SQ"
            } else {
                "none (exact)"
            },
            f.latency.p50_ms,
            f.latency.p95_ms,
            f.latency.p99_ms,
            f.recall_vs_exact
                .map_or_else(|| "-".to_string(), |r| format!("{r:.3}")),
        ));
    }
    out
}

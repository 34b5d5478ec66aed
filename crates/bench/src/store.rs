//! `docchat bench store`: the same folders indexed into a local folder and into a
//! shared store (`s3://…`), then the same questions searched from each as a reader
//! does: indexing throughput and retrieval latency, side by side in one run.

use crate::ingest::{IngestFigure, ingest_into};
use anyhow::{Context, Result, bail};
use docchat_core::Embedder;
use docchat_service::answer::eval::Latency;
use docchat_service::answer::retrieve::{Retriever, SearchMode};
use docchat_service::config::WatchRoot;
use docchat_service::index::isolate::ExtractLimits;
use docchat_store::{Access, Location, Store};
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;

/// One store's figures.
#[derive(Debug, Clone, Serialize)]
pub struct StoreFigure {
    /// `local folder` or the store's address.
    pub target: String,
    /// Indexing into it.
    pub ingest: IngestFigure,
    /// Retrieval latency per mode, as a reader (query embedding excluded).
    pub search: Vec<(SearchMode, Latency)>,
}

/// Reads the questions of a JSONL file (`{"question": …}` per line).
pub fn questions(path: &std::path::Path, most: usize) -> Result<Vec<String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line)?;
        if let Some(q) = v["question"].as_str() {
            out.push(q.to_string());
        }
        if out.len() == most {
            break;
        }
    }
    if out.is_empty() {
        bail!("no questions in {}", path.display());
    }
    Ok(out)
}

/// Indexes `roots` into a fresh local folder and into a fresh prefix of `remote`,
/// then times `questions` against each, the two taking turns mode by mode.
pub async fn compare(
    remote: &Location,
    embedder: Arc<dyn Embedder>,
    roots: Vec<WatchRoot>,
    limits: ExtractLimits,
    questions: &[String],
    rounds: usize,
) -> Result<Vec<StoreFigure>> {
    let tmp = tempfile::Builder::new()
        .prefix("docchat-bench-store-")
        .tempdir()?;
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis();
    let targets = [
        ("local folder".to_string(), Location::folder(tmp.path())),
        (remote.to_string(), remote.join(&format!("bench-{stamp}"))),
    ];
    let dim = embedder.dim();
    let mut figures = Vec::new();
    let mut readers = Vec::new();
    for (name, at) in &targets {
        let store = Store::open_at(at, dim, Access::Write).await?;
        eprintln!("indexing into {name} …");
        let ingest = ingest_into(
            store,
            Arc::clone(&embedder),
            roots.clone(),
            limits.clone(),
            true,
        )
        .await?;
        eprintln!("{name}: {} chunks in {:.1} s", ingest.chunks, ingest.wall_s);
        // Searched as a reader does: another handle, checking for new versions.
        let reader = Store::open_at(
            at,
            dim,
            Access::Read {
                refresh: Duration::from_secs(2),
            },
        )
        .await?;
        readers.push(Retriever {
            store: reader,
            embedder: Arc::clone(&embedder),
        });
        figures.push(StoreFigure {
            target: name.clone(),
            ingest,
            search: Vec::new(),
        });
    }
    let probes: Vec<(String, Vec<f32>)> = {
        let e = Arc::clone(&embedder);
        let qs = questions.to_vec();
        let vectors = tokio::task::spawn_blocking(move || e.embed(&qs)).await??;
        questions.iter().cloned().zip(vectors).collect()
    };
    let mut probes_all = Vec::new();
    for _ in 0..rounds.max(1) {
        probes_all.extend(probes.iter().cloned());
    }
    for mode in SearchMode::ALL {
        for (i, r) in readers.iter().enumerate() {
            let (latency, _) = crate::search::measure(r, mode, &probes_all, None).await?;
            figures[i].search.push((mode, latency));
        }
    }
    Ok(figures)
}

/// The figures as text: indexing, then latency per mode, local and shared side by
/// side.
pub fn table(figures: &[StoreFigure]) -> String {
    let mut out =
        String::from("store                                  files  chunks  wall s  chunks/s\n");
    for f in figures {
        out.push_str(&format!(
            "{:<38} {:>5}  {:>6}  {:>6.1}  {:>8.1}\n",
            f.target, f.ingest.indexed, f.ingest.chunks, f.ingest.wall_s, f.ingest.chunks_per_s
        ));
    }
    if let [local, shared] = figures {
        out.push_str(&format!(
            "indexing throughput: shared / local = {:.2}\n\n",
            shared.ingest.chunks_per_s / local.ingest.chunks_per_s
        ));
        out.push_str("mode     local p50  p95 ms   shared p50  p95 ms   p50 ratio\n");
        for ((mode, l), (_, s)) in local.search.iter().zip(&shared.search) {
            out.push_str(&format!(
                "{:<8} {:>9.1}  {:>6.1}   {:>10.1}  {:>6.1}   {:>9.2}\n",
                mode.as_str(),
                l.p50_ms,
                l.p95_ms,
                s.p50_ms,
                s.p95_ms,
                s.p50_ms / l.p50_ms
            ));
        }
    }
    out
}

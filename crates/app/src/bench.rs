//! `docchat bench search`: retrieval latency at a given number of chunks, on
//! synthetic text and vectors, exact and with the ANN vector index.

use crate::eval::Latency;
use crate::retrieve::{Retriever, SearchMode, SearchRequest};
use anyhow::{Result, bail};
use docchat_store::{ChunkRecord, SearchTuning, Store, chunk_id};
use serde::Serialize;
use std::collections::HashSet;
use std::path::Path;
use std::time::Instant;

/// Chunks per synthetic document.
const CHUNKS_PER_DOC: usize = 100;
/// Words in the synthetic vocabulary.
const VOCABULARY: usize = 20_000;
/// Topics the synthetic vectors cluster around.
const TOPICS: usize = 256;
/// Rows appended per commit.
const APPEND_BATCH: usize = 10_000;

/// A small, fast, seeded generator (SplitMix64): the data is the same on every run.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Standard normal (Box–Muller).
    fn normal(&mut self) -> f32 {
        let u = self.unit().max(f64::MIN_POSITIVE);
        let v = self.unit();
        ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
    }

    /// A word rank with Zipf-like frequencies (rank r has weight 1/r).
    fn zipf(&mut self, n: usize) -> usize {
        // Inverse of the continuous approximation H(r) ≈ ln(r): r = n^u.
        ((n as f64).powf(self.unit()) as usize).clamp(1, n) - 1
    }
}

/// `n` synthetic texts of `words` words each (reproducible from `seed`).
pub fn synthetic_texts(n: usize, words: usize, seed: u64) -> Vec<String> {
    let mut g = Synthetic::new(1, seed);
    (0..n).map(|_| g.text(words)).collect()
}

/// Synthetic corpus: pronounceable words, topic-clustered unit vectors.
struct Synthetic {
    rng: Rng,
    words: Vec<String>,
    topics: Vec<Vec<f32>>,
    dim: usize,
}

impl Synthetic {
    fn new(dim: usize, seed: u64) -> Self {
        let mut rng = Rng(seed);
        let syllables = [
            "ka", "lo", "mi", "ne", "ru", "sa", "te", "vo", "zi", "ba", "de", "fu", "go", "hi",
            "ju", "pe", "qua", "ri", "so", "tu", "wen", "xo", "yal", "zor",
        ];
        let mut seen = HashSet::new();
        let mut words = Vec::with_capacity(VOCABULARY);
        while words.len() < VOCABULARY {
            let n = 2 + rng.below(3);
            let w: String = (0..n)
                .map(|_| syllables[rng.below(syllables.len())])
                .collect();
            if seen.insert(w.clone()) {
                words.push(w);
            }
        }
        let topics = (0..TOPICS)
            .map(|_| normalized((0..dim).map(|_| rng.normal()).collect()))
            .collect();
        Self {
            rng,
            words,
            topics,
            dim,
        }
    }

    fn text(&mut self, words: usize) -> String {
        let mut s = String::new();
        for i in 0..words {
            if i > 0 {
                s.push(if i % 17 == 0 { '.' } else { ' ' });
                if i % 17 == 0 {
                    s.push(' ');
                }
            }
            s.push_str(&self.words[self.rng.zipf(VOCABULARY)]);
        }
        s.push('.');
        s
    }

    fn vector(&mut self, noise: f32) -> Vec<f32> {
        let t = self.rng.below(TOPICS);
        let v = (0..self.dim)
            .map(|i| self.topics[t][i] + noise * self.rng.normal() / (self.dim as f32).sqrt())
            .collect();
        normalized(v)
    }

    fn chunk(&mut self, n: usize) -> ChunkRecord {
        let doc = format!("bench{:06}", n / CHUNKS_PER_DOC);
        let ordinal = (n % CHUNKS_PER_DOC) as u32;
        let text = self.text(150);
        ChunkRecord {
            id: chunk_id(&doc, ordinal),
            document_id: doc.clone(),
            collection: "bench".into(),
            path: format!("{doc}.pdf"),
            page_start: ordinal / 4 + 1,
            page_end: ordinal / 4 + 1,
            byte_start: 0,
            byte_end: text.len() as u32,
            hash: blake3::hash(text.as_bytes()).to_hex().to_string(),
            text,
            vector: self.vector(1.0),
        }
    }

    /// A query: a few mid-frequency words and a vector near one topic.
    fn query(&mut self) -> (String, Vec<f32>) {
        let words: Vec<&str> = (0..3)
            .map(|_| self.words[50 + self.rng.below(2_000)].as_str())
            .collect();
        (words.join(" "), self.vector(1.0))
    }
}

fn normalized(mut v: Vec<f32>) -> Vec<f32> {
    let norm = v
        .iter()
        .map(|x| x * x)
        .sum::<f32>()
        .sqrt()
        .max(f32::MIN_POSITIVE);
    v.iter_mut().for_each(|x| *x /= norm);
    v
}

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
                let mut times = Vec::with_capacity(probes.len());
                let mut overlap = 0usize;
                // Untimed warm-up.
                run_one(&bench, mode, &probes[0]).await?;
                for (i, probe) in probes.iter().enumerate() {
                    let t = Instant::now();
                    run_one(&bench, mode, probe).await?;
                    times.push(t.elapsed().as_secs_f64() * 1000.0);
                    if indexed && mode == SearchMode::Vector {
                        let hits = store
                            .vector_search(&probe.1, 10, &Default::default())
                            .await?;
                        overlap += hits
                            .iter()
                            .filter(|h| exact_top[i].contains(&h.chunk_id))
                            .count();
                    }
                }
                let recall_vs_exact = (indexed && mode == SearchMode::Vector)
                    .then(|| overlap as f64 / (probes.len() * 10) as f64);
                figures.push(SearchFigure {
                    chunks: size,
                    mode,
                    vector_index: indexed,
                    latency: Latency::of(&times),
                    recall_vs_exact,
                });
            }
        }
    }
    Ok(figures)
}

async fn run_one(
    retriever: &Retriever,
    mode: SearchMode,
    (query, vector): &(String, Vec<f32>),
) -> Result<Vec<crate::retrieve::Passage>> {
    let req = SearchRequest {
        mode,
        ..SearchRequest::new(query.clone(), 10)
    };
    retriever.search_with(&req, Some(vector)).await
}

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
    roots: Vec<crate::config::WatchRoot>,
    limits: crate::isolate::ExtractLimits,
    pipelined: bool,
) -> Result<IngestFigure> {
    use std::sync::atomic::Ordering;
    let store = Store::open(dir, embedder.dim()).await?;
    if store.count_chunks(None).await? > 0 {
        bail!(
            "{} already holds an index; give an empty folder",
            dir.display()
        );
    }
    let indexer = crate::indexer::Indexer::new(store.clone(), embedder, roots, limits);
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
    pub fn of_peer(p: &crate::bench_peer::PeerFigure) -> Self {
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
        (!v.is_empty()).then(|| crate::bench_engine::median(&v))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_data_is_reproducible_and_well_formed() {
        let mut a = Synthetic::new(8, 7);
        let mut b = Synthetic::new(8, 7);
        let (ca, cb) = (a.chunk(123), b.chunk(123));
        assert_eq!(ca, cb);
        assert_eq!(ca.id, "bench000001-00023");
        assert_eq!(ca.byte_end as usize, ca.text.len());
        let norm: f32 = ca.vector.iter().map(|x| x * x).sum();
        assert!((norm - 1.0).abs() < 1e-4);
        // Frequent words are frequent.
        let mut rng = Rng(1);
        let low = (0..10_000).filter(|_| rng.zipf(VOCABULARY) < 100).count();
        assert!(low > 4_000, "{low}");
    }
}

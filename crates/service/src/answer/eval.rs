//! `docchat eval`: retrieval quality and latency of each search mode over a
//! labelled question set.

use crate::answer::retrieve::{Fusion, Passage, Retriever, SearchMode, SearchRequest};
use anyhow::{Context, Result, bail};
use docchat_core::Location;
use docchat_store::SearchFilter;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Instant;

/// One labelled question (a line of the JSONL file).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Question {
    /// The question.
    pub question: String,
    /// The file that answers it: the end of its path, or of `collection/path`
    /// (empty: no document answers it).
    #[serde(default)]
    pub file: String,
    /// The page that answers it.
    #[serde(default)]
    pub page: Option<u32>,
    /// Other pages that answer it as well.
    #[serde(default)]
    pub pages: Vec<u32>,
    /// Key facts, in the document's words: an answer that contains one answers the
    /// question (`docchat eval --answers`; none: no document answers it).
    #[serde(default)]
    pub facts: Vec<String>,
}

impl Question {
    fn answer_pages(&self) -> Vec<u32> {
        self.page
            .into_iter()
            .chain(self.pages.iter().copied())
            .collect()
    }

    fn is_file(&self, p: &Passage) -> bool {
        self.is_file_of(&p.at)
    }

    fn is_file_of(&self, at: &Location) -> bool {
        let want = self.file.trim_start_matches('/');
        let full = format!("{}/{}", at.collection, at.path);
        !want.is_empty() && (full == want || full.ends_with(&format!("/{want}")))
    }

    /// Whether `at` is in the file and on a page that answers the question.
    pub fn is_page_of(&self, at: &Location) -> bool {
        self.is_file_of(at)
            && self
                .answer_pages()
                .iter()
                .any(|&n| (at.page_start..=at.page_end).contains(&n))
    }

    /// Whether a document answers the question (it names one).
    pub fn has_file(&self) -> bool {
        !self.file.is_empty()
    }

    fn is_page(&self, p: &Passage) -> bool {
        self.is_file(p) && self.answer_pages().iter().any(|&n| p.covers_page(n))
    }
}

/// Reads a JSONL question file (blank lines and `#` comments skipped).
pub fn read_questions(path: &Path) -> Result<Vec<Question>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let q: Question = serde_json::from_str(line)
            .with_context(|| format!("{}:{}: invalid question", path.display(), i + 1))?;
        out.push(q);
    }
    if out.is_empty() {
        bail!("{} has no questions", path.display());
    }
    Ok(out)
}

/// Rank (from 1) of the first passage that satisfies `ok`, if any.
fn first_rank(passages: &[Passage], ok: impl Fn(&Passage) -> bool) -> Option<usize> {
    passages.iter().position(ok).map(|i| i + 1)
}

/// Quality figures over ranks (from 1) of the right answer (`None`: not found).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Quality {
    /// Questions scored.
    pub questions: usize,
    /// Share with the answer first.
    pub recall_at_1: f64,
    /// Share with the answer in the first 5.
    pub recall_at_5: f64,
    /// Share with the answer in the first 10.
    pub recall_at_10: f64,
    /// Mean reciprocal rank (0 for not found).
    pub mrr: f64,
}

impl Quality {
    /// Figures of `ranks`.
    pub fn of(ranks: &[Option<usize>]) -> Self {
        let n = ranks.len();
        if n == 0 {
            return Self::default();
        }
        let within =
            |k: usize| ranks.iter().filter(|r| r.is_some_and(|r| r <= k)).count() as f64 / n as f64;
        Self {
            questions: n,
            recall_at_1: within(1),
            recall_at_5: within(5),
            recall_at_10: within(10),
            mrr: ranks
                .iter()
                .map(|r| r.map_or(0.0, |r| 1.0 / r as f64))
                .sum::<f64>()
                / n as f64,
        }
    }
}

/// Latency percentiles, in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Latency {
    /// Median.
    pub p50_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Slowest.
    pub max_ms: f64,
}

impl Latency {
    /// Percentiles of `samples_ms` (nearest rank).
    pub fn of(samples_ms: &[f64]) -> Self {
        if samples_ms.is_empty() {
            return Self::default();
        }
        let mut v = samples_ms.to_vec();
        v.sort_by(f64::total_cmp);
        let at = |q: f64| v[((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
        Self {
            p50_ms: at(0.50),
            p95_ms: at(0.95),
            p99_ms: at(0.99),
            max_ms: v[v.len() - 1],
        }
    }
}

/// Results of one mode.
#[derive(Debug, Clone, Serialize)]
pub struct ModeReport {
    /// The mode.
    pub mode: SearchMode,
    /// Right file.
    pub file: Quality,
    /// Right file and page (questions with a page only).
    pub page: Quality,
    /// Retrieval latency, query embedding excluded.
    pub latency: Latency,
    /// Questions whose file was not in the top 10.
    pub missed: Vec<String>,
}

/// The query vector of every question, in order: computed once, before any
/// search is timed (the latency measured is the index's, not the model's).
pub async fn embed_all(retriever: &Retriever, questions: &[Question]) -> Result<Vec<Vec<f32>>> {
    let mut vectors = Vec::with_capacity(questions.len());
    for q in questions {
        vectors.push(retriever.embed_query(&q.question).await?);
    }
    Ok(vectors)
}

/// Runs every question (with its vector from [`embed_all`]) in every mode.
pub async fn run(
    retriever: &Retriever,
    questions: &[Question],
    vectors: &[Vec<f32>],
    modes: &[SearchMode],
    fusion: Fusion,
    filter: &SearchFilter,
) -> Result<Vec<ModeReport>> {
    let mut reports = Vec::new();
    for &mode in modes {
        let request = |q: &Question| SearchRequest {
            mode,
            filter: filter.clone(),
            fusion,
            ..SearchRequest::new(q.question.clone(), 10)
        };
        // One untimed query warms the caches.
        retriever
            .search_with(&request(&questions[0]), Some(&vectors[0]))
            .await?;
        let (mut file_ranks, mut page_ranks, mut times, mut missed) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (q, v) in questions.iter().zip(vectors) {
            let started = Instant::now();
            let passages = retriever.search_with(&request(q), Some(v)).await?;
            times.push(started.elapsed().as_secs_f64() * 1000.0);
            let rank = first_rank(&passages, |p| q.is_file(p));
            if rank.is_none() {
                missed.push(q.question.clone());
            }
            file_ranks.push(rank);
            if !q.answer_pages().is_empty() {
                page_ranks.push(first_rank(&passages, |p| q.is_page(p)));
            }
        }
        reports.push(ModeReport {
            mode,
            file: Quality::of(&file_ranks),
            page: Quality::of(&page_ranks),
            latency: Latency::of(&times),
            missed,
        });
    }
    Ok(reports)
}

/// How near the nearest chunk is to questions a document answers and to questions
/// none does: what `min_similarity` (the "nothing close" answer) is chosen from.
#[derive(Debug, Clone, Serialize)]
pub struct Nearness {
    /// The threshold the counts are for.
    pub min_similarity: f32,
    /// Nearest-chunk similarity of each answerable question, lowest first.
    pub answerable: Vec<f32>,
    /// Nearest-chunk similarity of each unanswerable question, lowest first.
    pub unanswerable: Vec<f32>,
    /// Answerable questions the threshold would answer with "nothing close".
    pub answerable_refused: usize,
    /// Unanswerable questions it would answer so.
    pub unanswerable_refused: usize,
}

/// The nearest chunk's cosine similarity for every question, split by whether a
/// document answers it, counted against `min_similarity`.
pub async fn nearness(
    retriever: &Retriever,
    questions: &[Question],
    vectors: &[Vec<f32>],
    filter: &SearchFilter,
    min_similarity: f32,
) -> Result<Nearness> {
    let (mut answerable, mut unanswerable) = (Vec::new(), Vec::new());
    for (q, v) in questions.iter().zip(vectors) {
        let nearest = retriever
            .store
            .vector_search(v, 1, filter)
            .await?
            .first()
            .map_or(0.0, |h| h.score);
        if q.has_file() {
            answerable.push(nearest);
        } else {
            unanswerable.push(nearest);
        }
    }
    answerable.sort_by(f32::total_cmp);
    unanswerable.sort_by(f32::total_cmp);
    let below = |v: &[f32]| v.iter().filter(|&&s| s < min_similarity).count();
    Ok(Nearness {
        min_similarity,
        answerable_refused: below(&answerable),
        unanswerable_refused: below(&unanswerable),
        answerable,
        unanswerable,
    })
}

impl Nearness {
    /// One paragraph: the spread of each group and what the threshold does.
    pub fn summary(&self) -> String {
        let spread = |v: &[f32]| match (v.first(), v.get(v.len() / 2), v.last()) {
            (Some(lo), Some(mid), Some(hi)) => {
                format!("min {lo:.3}, median {mid:.3}, max {hi:.3}")
            }
            _ => "none".to_string(),
        };
        format!(
            "nearest chunk similarity: answerable ({}) {}; unanswerable ({}) {}\n\
             at min_similarity {:.2}: {} of {} answerable and {} of {} unanswerable questions get \"nothing close\"\n",
            self.answerable.len(),
            spread(&self.answerable),
            self.unanswerable.len(),
            spread(&self.unanswerable),
            self.min_similarity,
            self.answerable_refused,
            self.answerable.len(),
            self.unanswerable_refused,
            self.unanswerable.len(),
        )
    }
}

/// The reports as a text table.
pub fn table(reports: &[ModeReport]) -> String {
    let mut out =
        String::from("mode     level  n    R@1    R@5    R@10   MRR    p50 ms  p95 ms  max ms\n");
    for r in reports {
        for (level, q) in [("file", &r.file), ("page", &r.page)] {
            out.push_str(&format!(
                "{:<8} {:<6} {:<4} {:.3}  {:.3}  {:.3}  {:.3}  {:>6.1}  {:>6.1}  {:>6.1}\n",
                r.mode.as_str(),
                level,
                q.questions,
                q.recall_at_1,
                q.recall_at_5,
                q.recall_at_10,
                q.mrr,
                r.latency.p50_ms,
                r.latency.p95_ms,
                r.latency.max_ms,
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn passage(path: &str, page: u32) -> Passage {
        Passage {
            at: Location {
                document_id: "d".into(),
                collection: "c".into(),
                path: path.into(),
                page_start: page,
                page_end: page,
                byte_start: 0,
                byte_end: 1,
                match_start: 0,
                match_end: 1,
            },
            text: "t".into(),
            score: 1.0,
            chunk_ids: vec![],
            ocr: false,
        }
    }

    #[test]
    fn quality_counts_ranks() {
        let q = Quality::of(&[Some(1), Some(3), None, Some(7)]);
        assert_eq!(q.questions, 4);
        assert_eq!(q.recall_at_1, 0.25);
        assert_eq!(q.recall_at_5, 0.5);
        assert_eq!(q.recall_at_10, 0.75);
        assert!((q.mrr - (1.0 + 1.0 / 3.0 + 1.0 / 7.0) / 4.0).abs() < 1e-12);
    }

    #[test]
    fn latency_uses_nearest_rank() {
        let samples: Vec<f64> = (1..=100).map(f64::from).collect();
        let l = Latency::of(&samples);
        assert_eq!(
            (l.p50_ms, l.p95_ms, l.p99_ms, l.max_ms),
            (50.0, 95.0, 99.0, 100.0)
        );
        assert_eq!(Latency::of(&[4.0]).p95_ms, 4.0);
    }

    #[test]
    fn answers_match_by_path_end_and_page() {
        let q = Question {
            question: "?".into(),
            file: "manual.pdf".into(),
            page: Some(4),
            pages: vec![9],
            facts: Vec::new(),
        };
        let ranked = [
            passage("other.pdf", 4),
            passage("sub/manual.pdf", 2),
            passage("sub/manual.pdf", 9),
        ];
        assert_eq!(first_rank(&ranked, |p| q.is_file(p)), Some(2));
        assert_eq!(first_rank(&ranked, |p| q.is_page(p)), Some(3));
        assert!(!q.is_file(&passage("notmanual.pdf", 4)));
        let in_collection = Question {
            file: "c/sub/manual.pdf".into(),
            ..q
        };
        assert!(in_collection.is_file(&passage("sub/manual.pdf", 1)));
        assert!(!in_collection.is_file(&passage("manual.pdf", 1)));
    }
}

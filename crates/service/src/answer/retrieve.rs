//! Retrieval: vector, keyword (BM25) or hybrid search fused with reciprocal rank
//! fusion, then duplicates dropped, neighbouring chunks merged, and each passage
//! widened to whole sentences from its neighbours on the page.

use anyhow::{Context, Result};
use docchat_core::{Embedder, Location};
use docchat_store::{QueryKeywords, SearchFilter, SearchHit, Store, chunk_id};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Which index answers a search.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SearchMode {
    /// Embedding similarity only.
    Vector,
    /// BM25 over the words only.
    Keyword,
    /// Both, fused by reciprocal rank.
    #[default]
    Hybrid,
}

impl SearchMode {
    /// All modes, in report order.
    pub const ALL: [Self; 3] = [Self::Vector, Self::Keyword, Self::Hybrid];

    /// The lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Vector => "vector",
            Self::Keyword => "keyword",
            Self::Hybrid => "hybrid",
        }
    }
}

impl std::str::FromStr for SearchMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|m| m.as_str() == s.to_ascii_lowercase())
            .ok_or_else(|| format!("unknown search mode {s:?}: vector, keyword or hybrid"))
    }
}

/// Weights of reciprocal rank fusion: a hit at rank `r` (from 1) in a list of
/// weight `w` scores `w / (k + r)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Fusion {
    /// Weight of the vector list.
    pub vector_weight: f32,
    /// Weight of the keyword list.
    pub keyword_weight: f32,
    /// The `k` of RRF: larger flattens the difference between ranks.
    pub rrf_k: f32,
}

impl Default for Fusion {
    fn default() -> Self {
        Self {
            vector_weight: 1.0,
            keyword_weight: 1.0,
            rrf_k: 60.0,
        }
    }
}

/// How much more the keyword list weighs when a question is not in English and the
/// embedding model knows English only: its vectors place such a question poorly.
/// On the Italian question set, with each chunk's words analysed in its language,
/// hybrid page recall@5 is 0.962 from 1× to 4×; MRR is 0.787 at 1×, 0.830 at 1.5×,
/// 0.811 at 2×, 0.826 / 0.829 at 3× / 4× (BENCHMARKS.md, "Questions in Italian").
pub const KEYWORD_LEAN: f32 = 1.5;

/// Whether an embedding model's vectors cover languages other than English, by its
/// name (the multilingual models of the catalog and their kin).
pub fn multilingual_embedder(id: &str) -> bool {
    let id = id.to_ascii_lowercase();
    [
        "multilingual",
        "bge-m3",
        "labse",
        "distiluse",
        "nomic-embed-text-v2",
    ]
    .iter()
    .any(|m| id.contains(m))
}

impl Fusion {
    /// The weights for `query` with the embedding model `embedder`: the keyword
    /// list leans [`KEYWORD_LEAN`] times more for a question not in English when the
    /// model knows English only.
    pub fn for_query(self, query: &str, embedder: &str) -> Self {
        let foreign = docchat_store::keywords::detect(query)
            .is_some_and(|l| l != docchat_store::keywords::Language::English);
        if foreign && !multilingual_embedder(embedder) {
            Self {
                keyword_weight: self.keyword_weight * KEYWORD_LEAN,
                ..self
            }
        } else {
            self
        }
    }
}

/// One search.
#[derive(Debug, Clone)]
pub struct SearchRequest {
    /// The query text.
    pub query: String,
    /// Which index answers.
    pub mode: SearchMode,
    /// Passages wanted.
    pub top_k: usize,
    /// Restriction.
    pub filter: SearchFilter,
    /// Fusion weights (hybrid mode).
    pub fusion: Fusion,
    /// Widen passages to whole sentences using neighbouring chunks.
    pub expand: bool,
}

impl SearchRequest {
    /// A hybrid search with defaults.
    pub fn new(query: impl Into<String>, top_k: usize) -> Self {
        Self {
            query: query.into(),
            mode: SearchMode::Hybrid,
            top_k,
            filter: SearchFilter::default(),
            fusion: Fusion::default(),
            expand: true,
        }
    }
}

/// A retrieved passage: one chunk, or neighbouring chunks merged, widened to
/// sentence boundaries.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Passage {
    /// Where it is. The byte range is exact: the page text sliced at it is `text`,
    /// when the passage is on one page; the match range covers the retrieved
    /// chunks.
    #[serde(flatten)]
    pub at: Location,
    /// The passage.
    pub text: String,
    /// Score: cosine similarity (vector), BM25 (keyword) or fused RRF (hybrid).
    pub score: f32,
    /// The chunks behind the passage.
    pub chunk_ids: Vec<String>,
    /// Its text was read by OCR from a scanned page or an image.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ocr: bool,
}

impl Passage {
    fn from_hit(h: SearchHit) -> Self {
        Self {
            at: Location {
                document_id: h.at.document_id,
                collection: h.at.collection,
                path: h.at.path,
                page_start: h.at.page_start,
                page_end: h.at.page_end,
                byte_start: h.at.byte_start,
                byte_end: h.at.byte_end,
                match_start: h.at.byte_start,
                match_end: h.at.byte_end,
            },
            text: h.text,
            score: h.score,
            chunk_ids: vec![h.chunk_id],
            ocr: false,
        }
    }

    /// Whether the passage covers `page`.
    pub fn covers_page(&self, page: u32) -> bool {
        (self.at.page_start..=self.at.page_end).contains(&page)
    }
}

/// One hit of a ranking, as `--explain` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ranked {
    /// Place in the ranking, from 1.
    pub rank: usize,
    /// The chunk.
    pub chunk_id: String,
    /// Its file.
    pub path: String,
    /// Its first page.
    pub page_start: u32,
    /// Its last page.
    pub page_end: u32,
    /// Cosine similarity (vector), BM25 (keyword) or the fused RRF score.
    pub score: f32,
}

impl Ranked {
    fn list(hits: &[SearchHit]) -> Vec<Self> {
        hits.iter()
            .enumerate()
            .map(|(i, h)| Self {
                rank: i + 1,
                chunk_id: h.chunk_id.clone(),
                path: h.at.path.clone(),
                page_start: h.at.page_start,
                page_end: h.at.page_end,
                score: h.score,
            })
            .collect()
    }
}

/// What one search found at each step: why a document was, or was not, found.
#[derive(Debug, Clone, Serialize)]
pub struct Trace {
    /// The vector ranking, best first (empty in keyword mode).
    pub vector: Vec<Ranked>,
    /// The keyword (BM25) ranking, best first (empty in vector mode).
    pub keyword: Vec<Ranked>,
    /// The question's words as the keyword index read them (none in vector mode).
    pub keywords: Option<QueryKeywords>,
    /// The ranking the passages come from: the fused one in hybrid mode.
    pub fused: Vec<Ranked>,
    /// The passages kept (duplicates dropped, neighbours merged, top k).
    pub passages: Vec<Passage>,
}

impl Trace {
    /// The cosine similarity of the nearest chunk (`None` without a vector search).
    pub fn nearest_similarity(&self) -> Option<f32> {
        self.vector.first().map(|r| r.score)
    }
}

/// Runs searches over one index.
#[derive(Clone)]
pub struct Retriever {
    /// The index.
    pub store: Store,
    /// Embeds queries.
    pub embedder: Arc<dyn Embedder>,
}

impl Retriever {
    /// Embeds `query` (off the async threads).
    pub async fn embed_query(&self, query: &str) -> Result<Vec<f32>> {
        let e = Arc::clone(&self.embedder);
        let q = vec![query.to_string()];
        let mut vectors = tokio::task::spawn_blocking(move || e.embed(&q))
            .await?
            .context("cannot embed the query")?;
        vectors.pop().context("the embedder returned no vector")
    }

    /// Runs `req` end to end.
    pub async fn search(&self, req: &SearchRequest) -> Result<Vec<Passage>> {
        Ok(self.trace(req).await?.passages)
    }

    /// Runs `req` with the query's vector already computed (`None` in keyword
    /// mode): this is the part whose latency the index decides.
    pub async fn search_with(
        &self,
        req: &SearchRequest,
        vector: Option<&[f32]>,
    ) -> Result<Vec<Passage>> {
        Ok(self.trace_with(req, vector).await?.passages)
    }

    /// Runs `req` end to end and keeps what each step found.
    pub async fn trace(&self, req: &SearchRequest) -> Result<Trace> {
        let vector = match req.mode {
            SearchMode::Keyword => None,
            _ => Some(self.embed_query(&req.query).await?),
        };
        self.trace_with(req, vector.as_deref()).await
    }

    /// [`Self::search_with`], keeping both rankings and the fused one.
    pub async fn trace_with(&self, req: &SearchRequest, vector: Option<&[f32]>) -> Result<Trace> {
        let top_k = req.top_k.max(1);
        // Extra candidates make up for duplicates and merged neighbours, and give
        // fusion two lists deep enough to agree on.
        let candidates = (top_k * 3).max(30);
        let vector_hits = async {
            match (req.mode, vector) {
                (SearchMode::Keyword, _) => Ok(Vec::new()),
                (_, Some(v)) => self.store.vector_search(v, candidates, &req.filter).await,
                (_, None) => Ok(Vec::new()),
            }
        };
        let keywords = match req.mode {
            SearchMode::Vector => None,
            _ => Some(self.store.query_keywords(&req.query).await?),
        };
        let keyword_hits = async {
            match &keywords {
                None => Ok(Vec::new()),
                Some(words) => {
                    self.store
                        .keyword_search_words(words, candidates, &req.filter)
                        .await
                }
            }
        };
        let (vector_hits, keyword_hits) = tokio::try_join!(vector_hits, keyword_hits)?;
        let vector_ranked = Ranked::list(&vector_hits);
        let keyword_ranked = Ranked::list(&keyword_hits);
        let ranked = match req.mode {
            SearchMode::Vector => vector_hits,
            SearchMode::Keyword => keyword_hits,
            SearchMode::Hybrid => fuse(
                &vector_hits,
                &keyword_hits,
                &req.fusion.for_query(&req.query, self.embedder.id()),
            ),
        };
        let fused = Ranked::list(&ranked);
        let mut passages = merge_neighbours(dedup(ranked), top_k);
        if req.expand {
            self.expand(&mut passages).await?;
        }
        self.keep_complete(&mut passages).await?;
        Ok(Trace {
            vector: vector_ranked,
            keyword: keyword_ranked,
            keywords,
            fused,
            passages,
        })
    }

    /// Leaves out the passages of documents not written yet: chunks are written
    /// before their document's row, so a search in between finds chunks of no
    /// document. A long document written in parts under a `pending` row is
    /// searched part by part by its writer; a reader of a shared store sees it
    /// only once it is `indexed`, never half written. Marks the passages whose
    /// pages OCR read (their documents say which).
    async fn keep_complete(&self, passages: &mut Vec<Passage>) -> Result<()> {
        let mut ids: Vec<String> = passages.iter().map(|p| p.at.document_id.clone()).collect();
        ids.sort();
        ids.dedup();
        let docs = self.store.documents_by_id(&ids).await?;
        let reader = self.store.read_only();
        passages.retain(|p| {
            docs.iter().any(|d| {
                use docchat_store::DocState;
                // A failed new version keeps the previous one searchable.
                let whole =
                    d.state == DocState::Indexed || (d.state == DocState::Failed && d.chunks > 0);
                d.id == p.at.document_id && (!reader || whole)
            })
        });
        let scanned: HashMap<String, Vec<u32>> = docs
            .into_iter()
            .map(|d| (d.id, docchat_core::ocr_pages(&d.extractor)))
            .filter(|(_, pages)| !pages.is_empty())
            .collect();
        for p in passages.iter_mut() {
            p.ocr = scanned
                .get(&p.at.document_id)
                .is_some_and(|pages| pages.iter().any(|n| p.covers_page(*n)));
        }
        Ok(())
    }

    /// Widens each single-page passage to whole sentences, reading the chunks
    /// before and after it.
    async fn expand(&self, passages: &mut [Passage]) -> Result<()> {
        let mut wanted = Vec::new();
        for p in passages.iter() {
            if let Some((first, last)) = ordinal_span(p) {
                if first > 0 {
                    wanted.push(chunk_id(&p.at.document_id, first - 1));
                }
                wanted.push(chunk_id(&p.at.document_id, last + 1));
            }
        }
        let neighbours: HashMap<String, SearchHit> = self
            .store
            .chunks_by_id(&wanted)
            .await?
            .into_iter()
            .map(|h| (h.chunk_id.clone(), h))
            .collect();
        for p in passages.iter_mut() {
            let Some((first, last)) = ordinal_span(p) else {
                continue;
            };
            if p.at.page_start != p.at.page_end {
                continue;
            }
            let mut pieces: Vec<(u32, &str)> = vec![(p.at.byte_start, p.text.as_str())];
            let before = first
                .checked_sub(1)
                .and_then(|o| neighbours.get(&chunk_id(&p.at.document_id, o)));
            let after = neighbours.get(&chunk_id(&p.at.document_id, last + 1));
            for n in [before, after].into_iter().flatten() {
                if n.at.page_start == p.at.page_start && n.at.page_end == p.at.page_end {
                    pieces.push((n.at.byte_start, n.text.as_str()));
                }
            }
            let Some((base, page_text)) = stitch(&mut pieces) else {
                continue;
            };
            let (s, e) = sentence_bounds(
                &page_text,
                (p.at.byte_start - base) as usize,
                (p.at.byte_end - base) as usize,
                MAX_WIDEN_BYTES,
            );
            if let Some(text) = page_text.get(s..e) {
                p.text = text.to_string();
                p.at.byte_start = base + s as u32;
                p.at.byte_end = base + e as u32;
            }
        }
        Ok(())
    }
}

/// How far a passage may be widened on each side to reach a sentence boundary.
const MAX_WIDEN_BYTES: usize = 400;

/// First and last chunk ordinal of a passage.
fn ordinal_span(p: &Passage) -> Option<(u32, u32)> {
    let ords: Vec<u32> = p
        .chunk_ids
        .iter()
        .filter_map(|id| docchat_store::chunk_ordinal(id))
        .collect();
    Some((*ords.iter().min()?, *ords.iter().max()?))
}

/// Reciprocal rank fusion of two ranked lists; a chunk in both gets both shares.
pub fn fuse(vector: &[SearchHit], keyword: &[SearchHit], w: &Fusion) -> Vec<SearchHit> {
    let mut scores: HashMap<&str, (f32, &SearchHit)> = HashMap::new();
    for (list, weight) in [(vector, w.vector_weight), (keyword, w.keyword_weight)] {
        for (rank, hit) in list.iter().enumerate() {
            let share = weight / (w.rrf_k + rank as f32 + 1.0);
            scores
                .entry(hit.chunk_id.as_str())
                .and_modify(|(s, _)| *s += share)
                .or_insert((share, hit));
        }
    }
    let mut fused: Vec<SearchHit> = scores
        .into_values()
        .map(|(score, hit)| SearchHit {
            score,
            ..hit.clone()
        })
        .collect();
    // Ties (a chunk at the same rank in one list each) go by chunk id, so results
    // do not depend on hash order.
    fused.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.chunk_id.cmp(&b.chunk_id))
    });
    fused
}

/// Drops hits whose text repeats a better hit's (the same file in two places).
pub fn dedup(hits: Vec<SearchHit>) -> Vec<SearchHit> {
    let mut seen = HashSet::new();
    hits.into_iter()
        .filter(|h| seen.insert(h.text.trim().to_string()))
        .collect()
}

/// Turns ranked hits into at most `top_k` passages, merging a hit into a better
/// one when they are neighbouring chunks of the same page (they overlap).
pub fn merge_neighbours(hits: Vec<SearchHit>, top_k: usize) -> Vec<Passage> {
    let mut out: Vec<Passage> = Vec::new();
    for hit in hits {
        let ord = hit.ordinal();
        let target = out.iter().position(|p| {
            p.at.document_id == hit.at.document_id
                && p.at.page_start == p.at.page_end
                && hit.at.page_start == p.at.page_start
                && hit.at.page_end == p.at.page_end
                && match (ord, ordinal_span(p)) {
                    (Some(o), Some((first, last))) => o + 1 == first || o == last + 1,
                    _ => false,
                }
        });
        match target {
            Some(i) => join(&mut out[i], &hit),
            None if out.len() < top_k => out.push(Passage::from_hit(hit)),
            None => {}
        }
    }
    out
}

/// Extends passage `p` with the neighbouring chunk `hit` (same page).
fn join(p: &mut Passage, hit: &SearchHit) {
    let mut pieces = vec![
        (p.at.byte_start, p.text.as_str()),
        (hit.at.byte_start, hit.text.as_str()),
    ];
    if let Some((base, text)) = stitch(&mut pieces)
        && base + text.len() as u32 >= p.at.byte_end.max(hit.at.byte_end)
    {
        p.at.byte_start = base;
        p.at.byte_end = base + text.len() as u32;
        p.at.match_start = p.at.match_start.min(hit.at.byte_start);
        p.at.match_end = p.at.match_end.max(hit.at.byte_end);
        p.text = text;
        p.chunk_ids.push(hit.chunk_id.clone());
    }
}

/// Joins slices of one page's text, given with their byte offsets, into the
/// contiguous text they cover together (they overlap or touch). Returns the offset
/// and text, or `None` if the pieces leave a gap.
pub fn stitch(pieces: &mut [(u32, &str)]) -> Option<(u32, String)> {
    pieces.sort_by_key(|(start, _)| *start);
    let (base, first) = *pieces.first()?;
    let mut text = first.to_string();
    for &(start, piece) in &pieces[1..] {
        let end = base as usize + text.len();
        let start = start as usize;
        if start > end {
            return None;
        }
        if start + piece.len() > end {
            text.push_str(piece.get(end - start..)?);
        }
    }
    Some((base, text))
}

/// Widens `[start, end)` of `text` to whole sentences, moving each side at most
/// `max` bytes; a side that finds no boundary within `max` stays where it is.
pub fn sentence_bounds(text: &str, start: usize, end: usize, max: usize) -> (usize, usize) {
    let mut s = start;
    if !is_sentence_start(&text[..start]) {
        let from = floor_char(text, start.saturating_sub(max));
        let window = &text[from..start];
        if let Some(i) = window
            .char_indices()
            .rev()
            .find(|&(i, _)| is_sentence_start(&window[..i]) && i > 0)
            .map(|(i, _)| i)
        {
            s = from + i;
        } else if from == 0 && start <= max {
            s = 0;
        }
    }
    let mut e = end;
    if !is_sentence_end(&text[..end]) {
        let to = ceil_char(text, (end + max).min(text.len()));
        let window = &text[end..to];
        if let Some(i) = window
            .char_indices()
            .map(|(i, c)| i + c.len_utf8())
            .find(|&i| is_sentence_end(&window[..i]) && followed_by_space(&window[i..]))
        {
            e = end + i;
        }
    }
    // Whitespace at the edges is not part of the passage.
    let inner = &text[s..e];
    let lead = inner.len() - inner.trim_start().len();
    let trail = inner.len() - inner.trim_end().len();
    if lead + trail < inner.len() {
        (s + lead, e - trail)
    } else {
        (start, end)
    }
}

fn is_sentence_start(before: &str) -> bool {
    let trimmed = before.trim_end();
    trimmed.is_empty()
        || before.ends_with("\n\n")
        || (trimmed.len() < before.len() && is_sentence_end(trimmed))
}

fn is_sentence_end(text: &str) -> bool {
    if text.ends_with("\n\n") {
        return true;
    }
    let t = text.trim_end().trim_end_matches(['"', '\'', ')', '”', '’']);
    t.ends_with(['.', '!', '?', ':', ';'])
}

fn followed_by_space(rest: &str) -> bool {
    rest.is_empty() || rest.starts_with(char::is_whitespace)
}

fn floor_char(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn ceil_char(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i += 1;
    }
    i
}

/// Whether `inside` (the text between `[` and `]`) is a citation marker: source
/// numbers, lists and ranges (`3`, `1, 2`, `2-4`).
pub(crate) fn is_marker(inside: &str) -> bool {
    !inside.is_empty()
        && inside
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, ',' | '-' | '–' | ' '))
}

/// The source numbers cited in an answer, as `[n]`, `[n, m]`, `[n-m]` or `[n][m]`,
/// split into those that name a given source (`1..=sources`) and those that do not.
pub fn cited_markers(answer: &str, sources: usize) -> (Vec<usize>, Vec<usize>) {
    let mut valid = Vec::new();
    let mut invalid = Vec::new();
    let mut rest = answer;
    while let Some(open) = rest.find('[') {
        rest = &rest[open + 1..];
        let Some(close) = rest.find(']') else { break };
        let inside = &rest[..close];
        if !is_marker(inside) {
            continue;
        }
        for part in inside.split(',') {
            let part = part.trim();
            let range = match part.split_once(['-', '–']) {
                Some((a, b)) => a.trim().parse::<usize>().ok().zip(b.trim().parse().ok()),
                None => part.parse::<usize>().ok().map(|n| (n, n)),
            };
            let Some((a, b)) = range else { continue };
            if b < a || b - a > 50 {
                continue;
            }
            for n in a..=b {
                let list = if (1..=sources).contains(&n) {
                    &mut valid
                } else {
                    &mut invalid
                };
                if !list.contains(&n) {
                    list.push(n);
                }
            }
        }
        rest = &rest[close + 1..];
    }
    (valid, invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(doc: &str, ord: u32, page: u32, start: u32, text: &str) -> SearchHit {
        SearchHit {
            chunk_id: chunk_id(doc, ord),
            at: Location {
                document_id: doc.into(),
                collection: "c".into(),
                path: format!("{doc}.pdf"),
                page_start: page,
                page_end: page,
                byte_start: start,
                byte_end: start + text.len() as u32,
                match_start: start,
                match_end: start + text.len() as u32,
            },
            text: text.into(),
            score: 0.0,
        }
    }

    #[test]
    fn keywords_weigh_more_for_foreign_questions_with_an_english_embedder() {
        let f = Fusion::default();
        let it = "Come si converte un file system ext2 in ext3?";
        let de = "Wie wandle ich ein ext2-Dateisystem in ext3 um?";
        for q in [it, de] {
            assert_eq!(
                f.for_query(q, "all-MiniLM-L6-v2").keyword_weight,
                KEYWORD_LEAN,
                "{q}"
            );
        }
        assert_eq!(f.for_query(it, "multilingual-e5-small").keyword_weight, 1.0);
        assert_eq!(
            f.for_query("How do I convert ext2 to ext3?", "all-MiniLM-L6-v2"),
            f
        );
    }

    #[test]
    fn fusion_rewards_agreement_and_weights() {
        let a = hit("d", 0, 1, 0, "a");
        let b = hit("d", 1, 1, 0, "b");
        let c = hit("d", 2, 1, 0, "c");
        let vector = vec![a.clone(), b.clone()];
        let keyword = vec![c.clone(), b.clone()];
        let fused = fuse(&vector, &keyword, &Fusion::default());
        // b is second in both lists and beats a and c, first in one list each.
        assert_eq!(fused[0].chunk_id, b.chunk_id);
        assert!((fused[0].score - 2.0 / 62.0).abs() < 1e-6);
        assert_eq!(fused.len(), 3);
        let keyword_heavy = Fusion {
            keyword_weight: 3.0,
            ..Fusion::default()
        };
        let fused = fuse(&vector, &keyword, &keyword_heavy);
        let order: Vec<&str> = fused.iter().map(|h| h.chunk_id.as_str()).collect();
        assert_eq!(order, [&b.chunk_id, &c.chunk_id, &a.chunk_id]);
    }

    #[test]
    fn duplicates_go_and_neighbours_merge() {
        let page = "One sentence here. Another one follows. A third closes.";
        let h0 = hit("d", 0, 3, 0, &page[..38]);
        let h1 = hit("d", 1, 3, 19, &page[19..]);
        let copy = hit("e", 0, 1, 0, &page[..38]);
        let other_page = hit("d", 2, 4, 0, "Elsewhere.");
        let passages = merge_neighbours(dedup(vec![h0, copy, h1, other_page]), 5);
        assert_eq!(passages.len(), 2);
        assert_eq!(passages[0].text, page);
        assert_eq!(
            (passages[0].at.byte_start, passages[0].at.byte_end),
            (0, page.len() as u32)
        );
        assert_eq!(passages[0].chunk_ids.len(), 2);
        assert_eq!(passages[1].at.page_start, 4);
        // top_k limits passages, not hits merged into them.
        let h0 = hit("d", 0, 3, 0, &page[..38]);
        let far = hit("d", 7, 3, 0, "Far.");
        assert_eq!(merge_neighbours(vec![h0, far], 1).len(), 1);
    }

    #[test]
    fn stitching_needs_contiguous_pieces() {
        let page = "abcdefghij";
        let mut pieces = vec![(5, &page[5..]), (0, &page[..7])];
        assert_eq!(stitch(&mut pieces), Some((0, page.to_string())));
        let mut gap = vec![(0, &page[..3]), (5, &page[5..])];
        assert_eq!(stitch(&mut gap), None);
    }

    #[test]
    fn passages_widen_to_sentences() {
        let text =
            "First sentence ends. The match starts mid way and ends here, then goes on. Last.";
        let start = text.find("mid way").unwrap();
        let end = text.find(", then").unwrap();
        let (s, e) = sentence_bounds(text, start, end, 400);
        assert_eq!(
            &text[s..e],
            "The match starts mid way and ends here, then goes on."
        );
        // Already whole sentences: unchanged.
        let (s, e) = sentence_bounds(text, 21, 74, 400);
        assert_eq!(&text[s..e], &text[21..74]);
        // No boundary within reach: stays.
        let long = format!("{} tail", "word ".repeat(200));
        assert_eq!(sentence_bounds(&long, 500, 509, 50), (500, 509));
    }

    #[test]
    fn markers_are_mapped_to_given_sources() {
        let (valid, invalid) = cited_markers("See [1], [2, 3] and [4-5]; not [x] or [9].", 4);
        assert_eq!(valid, vec![1, 2, 3, 4]);
        assert_eq!(invalid, vec![5, 9]);
        assert_eq!(cited_markers("no markers", 3), (vec![], vec![]));
        assert_eq!(cited_markers("[2][2] [", 3), (vec![2], vec![]));
    }
}

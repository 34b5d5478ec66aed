//! The JSON bodies of the web UI's API, as types: what `/api/status`,
//! `/api/search` and the events of `/api/chat` send is written down once here.

use docchat_core::{GenerationStats, Location};
use docchat_service::answer::check::Claim;
use docchat_service::answer::rag::{Citation, Sources};
use docchat_service::answer::retrieve::{Passage, SearchMode};
use docchat_service::index::progress::Progress;
use docchat_service::index::switch::SwitchStatus;
use docchat_service::index::{Unavailable, WriteError};
use docchat_store::{DocState, DocumentRecord};
use serde::Serialize;
use std::path::Path;

/// `GET /api/status`.
#[derive(Debug, Serialize)]
pub struct StatusBody<'a> {
    /// Every document of the index in use, failed ones with the reason.
    pub documents: Vec<DocumentRow<'a>>,
    /// Documents by state.
    pub counts: Counts,
    /// Files waiting for the indexer.
    pub queue: usize,
    /// Requests in flight.
    pub requests: Requests,
    /// Whether the start-up scan of the folders finished (a reader of a shared
    /// store scans nothing: true once it has opened the store).
    pub reconciled: bool,
    /// Where the index lives and what this server does with it.
    pub index: IndexPlace<'a>,
    /// A failure to write the index (a full, read-only or forbidden data folder).
    pub write_error: Option<WriteError>,
    /// Files and folders that cannot be reached right now (their documents are
    /// kept, and they are looked at again).
    pub unavailable: Vec<Unavailable>,
    /// The current burst of indexing work.
    pub progress: Progress,
    /// Work done since the start.
    pub stats: IndexStats,
    /// The watched folders.
    pub collections: Vec<CollectionRow<'a>>,
    /// A switch of the embedding model, while one runs (and its outcome).
    pub embedding_switch: Option<SwitchStatus>,
    /// The models in use.
    pub models: ModelIds<'a>,
}

/// One document of the status.
#[derive(Debug, Serialize)]
pub struct DocumentRow<'a> {
    pub id: &'a str,
    pub path: &'a str,
    pub collection: &'a str,
    pub state: DocState,
    pub error: Option<&'a str>,
    pub pages: u32,
    pub chunks: u32,
    pub title: Option<&'a str>,
    pub author: Option<&'a str>,
    pub extractor: &'a str,
    pub size: u64,
}

impl<'a> From<&'a DocumentRecord> for DocumentRow<'a> {
    fn from(d: &'a DocumentRecord) -> Self {
        Self {
            id: &d.id,
            path: &d.path,
            collection: &d.collection,
            state: d.state,
            error: d.error.as_deref(),
            pages: d.pages,
            chunks: d.chunks,
            title: d.title.as_deref(),
            author: d.author.as_deref(),
            extractor: &d.extractor,
            size: d.size,
        }
    }
}

/// Documents by state.
#[derive(Debug, Serialize)]
pub struct Counts {
    pub indexed: usize,
    pub failed: usize,
    pub pending: usize,
}

impl Counts {
    /// The counts of `docs`.
    pub fn of(docs: &[DocumentRecord]) -> Self {
        let count = |s: DocState| docs.iter().filter(|d| d.state == s).count();
        Self {
            indexed: count(DocState::Indexed),
            failed: count(DocState::Failed),
            pending: count(DocState::Pending),
        }
    }
}

/// Requests in flight, and the bound of the chat model's line.
#[derive(Debug, Serialize)]
pub struct Requests {
    pub chat_in_flight: usize,
    pub chat_limit: usize,
    pub embedding_in_flight: usize,
    /// Searches running now (at most [`crate::state::MAX_SEARCHES`]).
    pub searches: usize,
    /// Uploads being received now (at most [`crate::state::MAX_UPLOADS`]).
    pub uploads: usize,
    /// Open `/api/events` streams.
    pub event_streams: usize,
}

/// Where the index lives: a data folder of this machine (`local`), or a shared
/// store this server indexes into (`writer`) or only answers from (`reader`).
#[derive(Debug, Serialize)]
pub struct IndexPlace<'a> {
    pub role: &'static str,
    /// The shared store (`s3://bucket/prefix` or a folder), never its options.
    pub store: Option<&'a str>,
}

/// The indexer's counters.
#[derive(Debug, Serialize)]
pub struct IndexStats {
    pub chunks_embedded: u64,
    pub documents_extracted: u64,
    pub documents_moved: u64,
}

/// A watched folder.
#[derive(Debug, Serialize)]
pub struct CollectionRow<'a> {
    pub name: &'a str,
    pub path: &'a Path,
}

/// The ids of the models in use.
#[derive(Debug, Serialize)]
pub struct ModelIds<'a> {
    pub chat: &'a str,
    pub embedding: &'a str,
}

/// `POST /api/search`.
#[derive(Debug, Serialize)]
pub struct SearchBody {
    pub mode: SearchMode,
    pub hits: Vec<Hit>,
    pub took_ms: f64,
    /// With `explain`: both rankings, the fused one, and the "nothing close" gate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explain: Option<Explain>,
}

/// Why the hits are what they are (`"explain": true`).
#[derive(Debug, Serialize)]
pub struct Explain {
    pub vector: Vec<docchat_service::answer::retrieve::Ranked>,
    pub keyword: Vec<docchat_service::answer::retrieve::Ranked>,
    /// The question's words as the keyword index read them, and in which languages.
    pub keywords: Option<docchat_store::QueryKeywords>,
    pub fused: Vec<docchat_service::answer::retrieve::Ranked>,
    /// Cosine similarity of the nearest chunk (none in keyword mode).
    pub nearest_similarity: Option<f32>,
    /// Under it, a question gets "nothing close" instead of an answer...
    pub min_similarity: f32,
    /// ...unless it asks about the documents as a whole ("summarize…").
    pub about_the_documents: bool,
    /// Passages an instruction-tuned model is given; a base model gets what fits.
    pub chat_passages: usize,
}

/// One passage found.
#[derive(Debug, Serialize)]
pub struct Hit {
    /// Where it is.
    #[serde(flatten)]
    pub at: Location,
    /// The passage.
    pub snippet: String,
    /// Retrieval score.
    pub score: f32,
    /// Opens the source at its page.
    pub url: String,
    /// Its text was read by OCR.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub ocr: bool,
}

impl From<Passage> for Hit {
    fn from(p: Passage) -> Self {
        Self {
            url: page_url(&p.at),
            at: p.at,
            snippet: p.text,
            score: p.score,
            ocr: p.ocr,
        }
    }
}

/// A source of an answer, with the link that opens it.
#[derive(Debug, Serialize)]
pub struct CitationBody<'a> {
    /// The source.
    #[serde(flatten)]
    pub citation: &'a Citation,
    /// Opens the source at its page.
    pub url: String,
}

/// `citations` with their links.
pub fn linked(citations: &[Citation]) -> Vec<CitationBody<'_>> {
    citations
        .iter()
        .map(|c| CitationBody {
            citation: c,
            url: page_url(&c.at),
        })
        .collect()
}

/// The `citations` event: the sources of an answer, each with its link.
#[derive(Debug, Serialize)]
pub struct SourcesBody<'a> {
    pub citations: Vec<CitationBody<'a>>,
    pub cited: &'a [usize],
    pub unknown: &'a [usize],
    pub claims: &'a [Claim],
    /// Nothing the answer states is in any of its sources.
    pub unfounded: bool,
}

impl<'a> From<&'a Sources> for SourcesBody<'a> {
    fn from(s: &'a Sources) -> Self {
        Self {
            citations: linked(&s.citations),
            cited: &s.cited,
            unknown: &s.unknown,
            claims: &s.claims,
            unfounded: s.unfounded,
        }
    }
}

/// Gives each citation of stored sources (as kept with a chat) its link.
pub fn link_stored(sources: &mut serde_json::Value) {
    let Some(citations) = sources
        .get_mut("citations")
        .and_then(serde_json::Value::as_array_mut)
    else {
        return;
    };
    for c in citations {
        if let Ok(at) = serde_json::from_value::<Location>(c.clone()) {
            c["url"] = page_url(&at).into();
        }
    }
}

/// The link that opens a source at its first page (the browser's PDF viewer reads
/// the `#page=` fragment).
pub fn page_url(at: &Location) -> String {
    format!(
        "/api/documents/{}/file#page={}",
        at.document_id, at.page_start
    )
}

/// The `chat` event: the chat an answer is kept in.
#[derive(Debug, Serialize)]
pub struct ChatEvent<'a> {
    pub id: &'a str,
    pub title: &'a str,
}

/// The `token` event: a piece of the answer.
#[derive(Debug, Serialize)]
pub struct TokenEvent<'a> {
    pub text: &'a str,
}

/// The `done` event: figures of the finished answer.
#[derive(Debug, Serialize)]
pub struct DoneEvent {
    pub tokens: u32,
    pub prompt_tokens: u32,
    pub ttft_ms: u64,
    pub tokens_per_s: f64,
    pub finish_reason: docchat_core::FinishReason,
}

impl From<&GenerationStats> for DoneEvent {
    fn from(s: &GenerationStats) -> Self {
        Self {
            tokens: s.tokens,
            prompt_tokens: s.prompt_tokens,
            ttft_ms: s.ttft_ms,
            tokens_per_s: s.tokens_per_s,
            finish_reason: s.finish_reason,
        }
    }
}

/// The `error` event, and the body of an API error.
#[derive(Debug, Serialize)]
pub struct ErrorEvent<'a> {
    pub message: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_citations_get_their_link() {
        let mut sources = serde_json::json!({"citations": [{
            "n": 1, "document_id": "abc", "collection": "c", "path": "a.pdf",
            "page_start": 7, "page_end": 8, "byte_start": 0, "byte_end": 4,
            "match_start": 0, "match_end": 4, "snippet": "text", "score": 0.5, "cited": true,
        }], "cited": [1], "unknown": []});
        link_stored(&mut sources);
        assert_eq!(
            sources["citations"][0]["url"],
            "/api/documents/abc/file#page=7"
        );
        // Sources without citations (a user's message) stay as they are.
        let mut none = serde_json::Value::Null;
        link_stored(&mut none);
        assert!(none.is_null());
    }
}

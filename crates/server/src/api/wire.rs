//! The JSON bodies of the web UI's API, as types: what `/api/status`,
//! `/api/search` and the events of `/api/chat` send is written down once here.

use docchat_core::GenerationStats;
use docchat_service::answer::retrieve::{Passage, SearchMode};
use docchat_service::index::WriteError;
use docchat_service::index::progress::Progress;
use docchat_service::index::switch::SwitchStatus;
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
    /// Whether the start-up scan of the folders finished.
    pub reconciled: bool,
    /// A failure to write the index (a full, read-only or forbidden data folder).
    pub write_error: Option<WriteError>,
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
}

/// One passage found.
#[derive(Debug, Serialize)]
pub struct Hit {
    pub document_id: String,
    pub collection: String,
    pub path: String,
    pub page_start: u32,
    pub page_end: u32,
    pub byte_start: u32,
    pub byte_end: u32,
    pub match_start: u32,
    pub match_end: u32,
    pub snippet: String,
    pub score: f32,
    /// Opens the source at its page.
    pub url: String,
}

impl From<Passage> for Hit {
    fn from(p: Passage) -> Self {
        Self {
            url: page_url(&p.document_id, p.page_start),
            document_id: p.document_id,
            collection: p.collection,
            path: p.path,
            page_start: p.page_start,
            page_end: p.page_end,
            byte_start: p.byte_start,
            byte_end: p.byte_end,
            match_start: p.match_start,
            match_end: p.match_end,
            snippet: p.text,
            score: p.score,
        }
    }
}

/// The link that opens document `id` at `page` (the browser's PDF viewer reads
/// the `#page=` fragment).
pub fn page_url(id: &str, page: u32) -> String {
    format!("/api/documents/{id}/file#page={page}")
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

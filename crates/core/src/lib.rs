//! docchat-core: the domain types and traits shared by every docchat crate.
//!
//! The crates around it implement these traits: `docchat-llm` provides an
//! [`Embedder`] and a [`Generator`] on llama.cpp, `docchat-ingest` turns files into
//! [`Page`]s and [`ChunkDraft`]s, `docchat-store` persists them in LanceDB.

#![warn(missing_docs)]

mod error;
mod priority;
mod traits;
mod types;

pub use error::{Error, Result};
pub use priority::{Foreground, Priority};
pub use traits::{
    ChatTurn, Embedder, FinishReason, GenerationParams, GenerationStats, Generator,
    PLAIN_USER_PREFIX, Role, TokenCounter, plain_prompt,
};
pub use types::{
    ChunkDraft, Extracted, FileKind, Location, OcrReport, Page, document_id, ocr_pages, page_range,
};

use docchat_core::Location;
use serde::{Deserialize, Serialize};

/// Where a document stands in the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DocState {
    /// Its chunks are searchable.
    Indexed,
    /// It could not be indexed; `error` says why.
    Failed,
    /// It is being (re)indexed; a crash leaves it here and the next start redoes it.
    Pending,
}

impl DocState {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Indexed => "indexed",
            Self::Failed => "failed",
            Self::Pending => "pending",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "indexed" => Self::Indexed,
            "failed" => Self::Failed,
            "pending" => Self::Pending,
            _ => return None,
        })
    }
}

/// One row of the manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DocumentRecord {
    /// Stable id (from collection and path).
    pub id: String,
    /// Collection (a watched folder's name).
    pub collection: String,
    /// Path relative to the watched folder, with `/` separators.
    pub path: String,
    /// Absolute path on disk.
    pub abs_path: String,
    /// File size in bytes.
    pub size: u64,
    /// Modification time, milliseconds since the epoch.
    pub mtime_ms: i64,
    /// BLAKE3 of the file's bytes (hex).
    pub content_hash: String,
    /// State.
    pub state: DocState,
    /// Why it failed, for failed documents.
    pub error: Option<String>,
    /// Pages extracted.
    pub pages: u32,
    /// Chunks stored.
    pub chunks: u32,
    /// Embedding model the chunks were embedded with.
    pub embedder: String,
    /// Extractor that produced the text.
    pub extractor: String,
    /// Title from the document's metadata.
    pub title: Option<String>,
    /// Author from the document's metadata.
    pub author: Option<String>,
    /// When it was last indexed, milliseconds since the epoch.
    pub indexed_at_ms: i64,
}

/// One chunk with its vector.
#[derive(Debug, Clone, PartialEq)]
pub struct ChunkRecord {
    /// Chunk id (document id, position).
    pub id: String,
    /// Where the chunk is (its match range is the whole chunk).
    pub at: Location,
    /// BLAKE3 of the text.
    pub hash: String,
    /// The text.
    pub text: String,
    /// L2-normalized embedding.
    pub vector: Vec<f32>,
}

/// Restricts a search. All set conditions must hold.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SearchFilter {
    /// Only these collections (empty: all).
    pub collections: Vec<String>,
    /// Only documents whose relative path starts with this.
    pub path_prefix: Option<String>,
    /// Only documents whose relative path matches this glob: `*` is any run of
    /// characters (`/` included), `?` one character.
    pub path_glob: Option<String>,
    /// Only these file extensions, without the dot (`pdf`, `docx`, `md` …; empty:
    /// all).
    pub extensions: Vec<String>,
    /// Only documents modified at or after this time (ms since the epoch).
    pub modified_after_ms: Option<i64>,
    /// Only documents modified before this time (ms since the epoch).
    pub modified_before_ms: Option<i64>,
}

impl SearchFilter {
    /// A filter on collections only.
    pub fn collections(collections: Vec<String>) -> Self {
        Self {
            collections,
            ..Self::default()
        }
    }

    /// This filter with `extra` collections added to its own (requests name
    /// collections both inside the filter and beside it).
    #[must_use]
    pub fn with_collections(mut self, extra: Vec<String>) -> Self {
        for c in extra {
            if !self.collections.contains(&c) {
                self.collections.push(c);
            }
        }
        self
    }

    /// Whether the filter restricts by modification time (which needs the
    /// manifest).
    pub fn has_dates(&self) -> bool {
        self.modified_after_ms.is_some() || self.modified_before_ms.is_some()
    }
}

/// A retrieved chunk.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchHit {
    /// Chunk id.
    pub chunk_id: String,
    /// Where the chunk is.
    #[serde(flatten)]
    pub at: Location,
    /// The chunk's text.
    pub text: String,
    /// Similarity, higher is better: cosine similarity for vector search, BM25 for
    /// keyword search, the fused score for hybrid search.
    pub score: f32,
}

impl SearchHit {
    /// Position of the chunk in its document (chunk ids end in `-NNNNN`).
    pub fn ordinal(&self) -> Option<u32> {
        chunk_ordinal(&self.chunk_id)
    }
}

/// The position part of a chunk id.
pub fn chunk_ordinal(chunk_id: &str) -> Option<u32> {
    chunk_id.rsplit_once('-')?.1.parse().ok()
}

/// The id of a document's chunk at `ordinal`.
pub fn chunk_id(document_id: &str, ordinal: u32) -> String {
    format!("{document_id}-{ordinal:05}")
}

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
    /// Absolute path on disk, as [`stored_path`] writes it (use
    /// [`DocumentRecord::file`] for the path itself).
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
    /// Only these documents (ids; empty: all).
    pub documents: Vec<String>,
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

/// How a stored absolute path begins when its file name is not valid UTF-8.
const BYTES_PREFIX: &str = "bytes:";

/// `path` as the manifest stores it: itself when it is UTF-8 (always, on most
/// machines), else `bytes:` and its bytes, `%XX` for any but plain ASCII letters,
/// digits and `/._-`. Real absolute paths begin with `/`, so the two never meet,
/// and [`file_of`] gives back the very same path: a file named in another encoding
/// is found, kept and served like any other.
pub fn stored_path(path: &std::path::Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    if let Some(s) = path.to_str() {
        return s.to_string();
    }
    let mut out = String::from(BYTES_PREFIX);
    for &b in path.as_os_str().as_bytes() {
        if b.is_ascii_alphanumeric() || b"/._-".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The path a stored absolute path stands for (see [`stored_path`]).
pub fn file_of(stored: &str) -> std::path::PathBuf {
    use std::os::unix::ffi::OsStringExt;
    let Some(encoded) = stored.strip_prefix(BYTES_PREFIX) else {
        return std::path::PathBuf::from(stored);
    };
    let b = encoded.as_bytes();
    let mut bytes = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = (b[i] == b'%')
            .then(|| b.get(i + 1..i + 3))
            .flatten()
            .and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok());
        match hex {
            Some(v) => {
                bytes.push(v);
                i += 3;
            }
            None => {
                bytes.push(b[i]);
                i += 1;
            }
        }
    }
    std::path::PathBuf::from(std::ffi::OsString::from_vec(bytes))
}

impl DocumentRecord {
    /// The document's file on disk.
    pub fn file(&self) -> std::path::PathBuf {
        file_of(&self.abs_path)
    }
}

#[cfg(test)]
mod path_tests {
    use super::*;
    use std::os::unix::ffi::OsStrExt;

    #[test]
    fn paths_in_any_encoding_come_back_as_they_were() {
        let utf8 = std::path::Path::new("/home/ana/caf\u{e9} 100%.txt");
        assert_eq!(stored_path(utf8), "/home/ana/caf\u{e9} 100%.txt");
        assert_eq!(file_of(&stored_path(utf8)), utf8);
        let latin1 = std::path::Path::new(std::ffi::OsStr::from_bytes(b"/docs/caf\xe9 50%.txt"));
        let stored = stored_path(latin1);
        assert_eq!(stored, "bytes:/docs/caf%E9%2050%25.txt");
        assert_eq!(file_of(&stored), latin1);
    }
}

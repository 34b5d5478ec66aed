//! Answering: retrieval, answers with citations, the chat history they are kept in,
//! and the retrieval metrics of `docchat eval`.

pub mod check;
pub mod eval;
pub mod explain;
pub mod focus;
pub mod grade;
pub mod history;
pub mod lang;
pub mod part;
pub mod rag;
pub mod read;
pub mod retrieve;

/// Most passages one question or search may ask for.
pub const MAX_TOP_K: usize = 50;

/// `k` brought within 1..=[`MAX_TOP_K`] (for values the user did not type: the
/// configuration file's default; what the user types is checked instead).
pub fn clamp_top_k(k: usize) -> usize {
    k.clamp(1, MAX_TOP_K)
}

//! docchat-llm: llama.cpp through `llama-cpp-2`.
//!
//! - [`EmbeddingModel`]: a GGUF embedding model on its own worker thread, batching
//!   texts into as few decodes as possible; vectors come back L2-normalized.
//! - [`ChatModel`]: a GGUF chat/completion model on its own worker thread, streaming
//!   text pieces to the caller and stopping as soon as the caller goes away.
//! - [`meta`]: reads a GGUF header (architecture, size, quantization, context) and
//!   estimates the memory a model needs at a context size.
//! - [`heap`]: the C heap tuned for a long-running server (arenas, trimming).
//! - [`import`]: converts a sentence-transformers BERT checkpoint into a GGUF that
//!   llama.cpp loads as an embedding model.
//!
//! llama.cpp types never leave this crate; callers see the traits of `docchat-core`.

#![warn(missing_docs)]

mod backend;
mod chat;
mod embed;
mod error;
pub mod gguf;
pub mod heap;
pub mod import;
pub mod meta;
mod pick;
mod utf8;

pub use backend::{EngineOptions, FlashAttention, system_info};
pub use chat::ChatModel;
pub use embed::EmbeddingModel;
pub use error::{Error, Result};

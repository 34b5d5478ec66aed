//! docchat's service: everything a running docchat does, without HTTP or a command
//! line. The server (`docchat-server`) and the binary (`docchat`) are built on it:
//!
//! - [`settings`]: defaults < `docchat.toml` < environment and flags, resolved once;
//! - [`runtime`]: the models, the index in use, its indexer and watcher, and the
//!   switch of the embedding model, started together;
//! - [`index`]: keeping the index in step with the watched folders;
//! - [`answer`]: retrieval, answers with citations, chat history, retrieval metrics;
//! - [`models`]: finding, loading and downloading models;
//! - [`remote`]: generation and question embedding by another OpenAI-compatible
//!   server;
//! - [`admission`], [`disk`], [`clock`]: places in line, disk trouble, time and ids;
//! - [`hooks`]: pause points that let tests make a race happen on purpose.

pub mod admission;
pub mod answer;
pub mod clock;
pub mod config;
pub mod disk;
pub mod hooks;
pub mod index;
pub mod models;
pub mod remote;
pub mod runtime;
pub mod settings;

pub use runtime::{Live, LiveSlot, Runtime};
pub use settings::{Overrides, Settings};

//! One module per command: its arguments and what it runs.

pub mod ask;
pub mod bench;
pub mod collections;
pub mod eval;
pub mod export;
pub mod index;
pub mod models;
pub mod search;
pub mod serve;
pub mod status;

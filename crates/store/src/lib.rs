//! docchat-store: documents and chunks in LanceDB.
//!
//! The `documents` table is the manifest, the source of truth for what is indexed;
//! `chunks` holds text, page and byte ranges and vectors; `chats` and `messages` hold
//! the chat history. Arrow types stay inside
//! this crate. A store lives in a folder or on S3-compatible object storage
//! ([`Location`]); one writer holds its [`Lease`], readers open it with
//! [`Access::Read`].

#![warn(missing_docs)]

mod arrow_rows;
mod chats;
mod error;
pub mod keywords;
mod lease;
mod location;
mod store;
mod types;

pub use chats::{ChatRecord, ChatStore, MessageRecord};
pub use error::{Error, Result};
pub use lease::{Lease, LeaseHolder};
pub use location::Location;
pub use store::{Access, Store};
pub use store::{IndexReport, Integrity, QueryKeywords, SearchTuning};
pub use types::{
    ChunkRecord, DocState, DocumentRecord, SearchFilter, SearchHit, chunk_id, chunk_ordinal,
    file_of, stored_path,
};

//! The web UI's API, one module per resource.

pub mod chat;
pub mod chats;
pub mod collections;
pub mod documents;
pub mod models;
pub mod status;
pub mod wire;

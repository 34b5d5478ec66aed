/// Errors of the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// LanceDB failed.
    #[error("database: {0}")]
    Lance(#[from] lancedb::Error),
    /// Arrow data could not be built or read.
    #[error("data: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
    /// The index was built with vectors of another dimension.
    #[error("the index holds {found}-dimensional vectors, the embedding model makes {expected}")]
    DimensionMismatch {
        /// Dimension of the model in use.
        expected: usize,
        /// Dimension in the index.
        found: usize,
    },
    /// A stored row is not what this version of docchat expects.
    #[error("unexpected data in table {table}: {detail}")]
    Schema {
        /// The table.
        table: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// The store's place is invalid or cannot be reached.
    #[error("store {uri}: {detail}")]
    Location {
        /// The place (never its credentials).
        uri: String,
        /// What is wrong.
        detail: String,
    },
    /// Another docchat writes to this store.
    #[error("{0}")]
    Taken(String),
}

/// Result type of this crate.
pub type Result<T> = std::result::Result<T, Error>;

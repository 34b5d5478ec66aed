/// Errors that cross crate boundaries through the core traits.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A model could not be loaded or failed while running.
    #[error("model error: {0}")]
    Model(String),
    /// The request was not valid for the model (too long, empty, ...).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The consumer of a stream went away; the work was stopped.
    #[error("cancelled")]
    Cancelled,
    /// A model on another server cannot be reached, or failed; the text says
    /// which and why.
    #[error("{0}")]
    Unavailable(String),
}

/// Result type of the core traits.
pub type Result<T> = std::result::Result<T, Error>;

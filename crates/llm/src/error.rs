/// Errors of the llama.cpp engine and the model importer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The llama.cpp backend could not start.
    #[error("llama.cpp backend: {0}")]
    Backend(String),
    /// A model file could not be loaded.
    #[error("cannot load model {path}: {reason}")]
    Load {
        /// The model file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// Inference failed.
    #[error("inference failed: {0}")]
    Inference(String),
    /// The engine's worker thread is gone.
    #[error("the model worker stopped")]
    WorkerGone,
    /// A checkpoint could not be imported.
    #[error("import: {0}")]
    Import(String),
    /// File system error.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Result type of this crate.
pub type Result<T> = std::result::Result<T, Error>;

impl From<Error> for docchat_core::Error {
    fn from(e: Error) -> Self {
        docchat_core::Error::Model(e.to_string())
    }
}

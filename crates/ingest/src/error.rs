/// Why a file could not be extracted. The messages are shown to users as the
/// reason a document failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file type is not one docchat reads.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// The file is encrypted and cannot be opened without a password.
    #[error("encrypted: {0}")]
    Encrypted(String),
    /// The file is damaged or not what its extension says.
    #[error("corrupt: {0}")]
    Corrupt(String),
    /// The file holds no extractable text.
    #[error("no text: {0}")]
    NoText(String),
    /// Reading the file failed.
    #[error("cannot read file: {0}")]
    Io(#[from] std::io::Error),
}

/// Result type of this crate.
pub type Result<T> = std::result::Result<T, Error>;

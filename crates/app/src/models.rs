//! Finding and loading the models.

use crate::config::{DEFAULT_CHAT_MODEL, DEFAULT_EMBEDDING_MODEL, DEFAULT_EMBEDDING_SOURCE};
use anyhow::{Context, Result, bail};
use docchat_core::{Embedder, Generator};
use docchat_llm::{ChatModel, EmbeddingModel, EngineOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where the models are.
#[derive(Debug, Clone)]
pub struct ModelPaths {
    /// Folder of the default models.
    pub dir: PathBuf,
    /// Chat model file (explicit or default).
    pub chat: PathBuf,
    /// Embedding model file (explicit or default).
    pub embedding: PathBuf,
}

impl ModelPaths {
    /// Explicit paths win; otherwise the defaults in `dir`.
    pub fn resolve(dir: PathBuf, chat: Option<PathBuf>, embedding: Option<PathBuf>) -> Self {
        Self {
            chat: chat.unwrap_or_else(|| dir.join(DEFAULT_CHAT_MODEL)),
            embedding: embedding.unwrap_or_else(|| dir.join(DEFAULT_EMBEDDING_MODEL)),
            dir,
        }
    }
}

/// Loads the embedding model; the default one is imported from its checkpoint on
/// first use when the setup script fetched the checkpoint but no GGUF exists yet.
pub fn load_embedder(paths: &ModelPaths, opts: &EngineOptions) -> Result<Arc<dyn Embedder>> {
    if !paths.embedding.exists() {
        let source = paths.dir.join(DEFAULT_EMBEDDING_SOURCE);
        if paths.embedding == paths.dir.join(DEFAULT_EMBEDDING_MODEL)
            && source.join("config.json").exists()
        {
            tracing::info!(from = %source.display(), "importing the default embedding model");
            docchat_llm::import::import_sentence_transformer(&source, &paths.embedding)
                .context("cannot import the default embedding model")?;
        } else {
            bail!(
                "embedding model not found at {} (run scripts/setup.sh, or pass --embedding-model)",
                paths.embedding.display()
            );
        }
    }
    let model = EmbeddingModel::load(&paths.embedding, opts)?;
    tracing::info!(model = %model.id(), dim = model.dim(), "embedding model ready");
    Ok(Arc::new(model))
}

/// Loads the chat model.
pub fn load_generator(path: &Path, opts: &EngineOptions) -> Result<Arc<dyn Generator>> {
    if !path.exists() {
        bail!(
            "chat model not found at {} (run scripts/setup.sh, or pass --chat-model)",
            path.display()
        );
    }
    let model = ChatModel::load(path, opts)?;
    tracing::info!(
        model = %model.id(),
        ctx = model.context_size(),
        chat_template = model.has_chat_template(),
        "chat model ready"
    );
    Ok(Arc::new(model))
}

//! The catalog of well-known GGUF models (`assets/catalog.toml`, built into the
//! binary): names to pull by, where the files are, their checksums, and the
//! architecture figures that size their memory before any download.

use anyhow::{Context, Result};
use docchat_llm::meta::ModelInfo;
use serde::{Deserialize, Serialize};

const CATALOG: &str = include_str!("../../assets/catalog.toml");

/// One model of the catalog.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub name: String,
    pub family: String,
    /// `chat` or `embedding`.
    pub kind: String,
    /// The languages an embedding model's vectors cover ("English", "about 100
    /// languages").
    #[serde(default)]
    pub languages: Option<String>,
    pub params: String,
    pub quant: String,
    /// Repository below the models endpoint; empty for models the setup installs.
    pub repo: String,
    pub file: String,
    pub size_mb: u64,
    #[serde(default)]
    pub sha256: Option<String>,
    #[serde(default)]
    pub note: Option<String>,
    pub layers: u64,
    pub heads: u64,
    pub kv_heads: u64,
    pub head_dim: u64,
    pub embedding: u64,
    pub vocab: u64,
    pub context: u64,
}

#[derive(Debug, Deserialize)]
struct File {
    model: Vec<Entry>,
}

impl Entry {
    /// The figures the memory estimate needs, from the catalog alone.
    pub fn info(&self) -> ModelInfo {
        ModelInfo {
            architecture: self.family.clone(),
            name: Some(self.name.clone()),
            quantization: self.quant.clone(),
            context_length: self.context,
            layers: self.layers,
            embedding_length: self.embedding,
            heads: self.heads,
            kv_heads: self.kv_heads,
            key_length: self.head_dim,
            value_length: self.head_dim,
            vocab_size: self.vocab,
            embedding: self.kind == "embedding",
            file_size: self.size_mb << 20,
            ..ModelInfo::default()
        }
    }
}

/// Every catalog entry.
pub fn entries() -> Result<Vec<Entry>> {
    let f: File = toml::from_str(CATALOG).context("the built-in model catalog is invalid")?;
    Ok(f.model)
}

/// The entry named `name` (case-insensitive).
pub fn find(name: &str) -> Result<Option<Entry>> {
    Ok(entries()?
        .into_iter()
        .find(|e| e.name.eq_ignore_ascii_case(name)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalog_covers_the_families_users_ask_for() {
        let all = entries().expect("the catalog parses");
        for family in [
            "llama-3.2-1b",
            "llama-3.2-3b",
            "llama-3.1-8b",
            "mistral-7b",
            "qwen2.5-1.5b",
            "qwen3-4b",
            "phi-3-mini",
            "gemma-3-1b",
            "gpt-oss-20b",
            "nomic-embed-text-v1.5",
            "bge-small-en-v1.5",
            "all-minilm-l6-v2",
            "multilingual-e5-small",
            "paraphrase-multilingual-minilm-l12-v2",
            "bge-m3",
        ] {
            assert!(find(family).unwrap().is_some(), "{family} is missing");
        }
        let mut names: Vec<_> = all.iter().map(|e| e.name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all.len(), "names are unique");
        for e in &all {
            assert!(
                matches!(e.kind.as_str(), "chat" | "embedding"),
                "{}",
                e.name
            );
            assert!(e.file.ends_with(".gguf"), "{}", e.name);
            // Every embedding model says which languages it covers, and the
            // search's keyword lean agrees with it.
            if e.kind == "embedding" {
                let langs = e.languages.as_deref().unwrap_or_default();
                assert!(!langs.is_empty(), "{}", e.name);
                assert_eq!(
                    langs != "English",
                    crate::answer::retrieve::multilingual_embedder(&e.name),
                    "{}",
                    e.name
                );
            }
            if let Some(sha) = &e.sha256 {
                assert!(
                    sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit()),
                    "{}",
                    e.name
                );
            }
            assert!(
                e.layers > 0 && e.heads >= e.kv_heads && e.context >= 512,
                "{}",
                e.name
            );
        }
    }
}

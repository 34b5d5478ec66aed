//! Arguments shared by several commands: the global options (into the service's
//! [`Overrides`]) and the search restrictions of `ask` and `search`.

use anyhow::Result;
use clap::Args;
use docchat_service::Overrides;
use docchat_service::answer::retrieve::SearchMode;
use docchat_service::config;
use docchat_store::SearchFilter;
use std::ffi::OsString;
use std::path::PathBuf;

/// Options shared by all commands (defaults < docchat.toml < DOCCHAT_* < flags).
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Configuration file [default: ./docchat.toml when present]
    #[arg(long, global = true, env = "DOCCHAT_CONFIG")]
    pub config: Option<PathBuf>,
    /// Where the index lives [default: ~/.local/share/docchat]
    #[arg(long, global = true, env = "DOCCHAT_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Where the index and the chats are shared: s3://bucket/prefix (endpoint,
    /// region and keys from AWS_* or store_options) or a folder [default: in the
    /// data folder, not shared]
    #[arg(long, global = true, env = "DOCCHAT_STORE")]
    pub store: Option<String>,
    /// An OpenAI-compatible server that writes the answers instead of the chat
    /// model (http://HOST:PORT/v1: llama-server, vLLM, another docchat …)
    #[arg(long, global = true, env = "DOCCHAT_GENERATOR")]
    pub generator: Option<String>,
    /// An OpenAI-compatible server that embeds the questions instead of the
    /// embedding model; refused unless its vectors are the index's
    #[arg(long, global = true, env = "DOCCHAT_EMBEDDER")]
    pub embedder: Option<String>,
    /// Folder of the default models [default: ~/.cache/docchat/models]
    #[arg(long, global = true, env = "DOCCHAT_MODELS_DIR")]
    pub models_dir: Option<PathBuf>,
    /// Chat model (GGUF file) [default: Qwen2.5-Coder-0.5B-Instruct in the models folder]
    #[arg(long, global = true, env = "DOCCHAT_CHAT_MODEL")]
    pub chat_model: Option<PathBuf>,
    /// Embedding model (GGUF file) [default: all-MiniLM-L6-v2 in the models folder]
    #[arg(long, global = true, env = "DOCCHAT_EMBEDDING_MODEL")]
    pub embedding_model: Option<PathBuf>,
    /// CPU threads for inference [default: all cores]
    #[arg(long, global = true, env = "DOCCHAT_THREADS")]
    pub threads: Option<i32>,
    /// Context size of the chat model in tokens [default: 4096]
    #[arg(long, global = true, env = "DOCCHAT_CTX_SIZE")]
    pub ctx_size: Option<u32>,
    /// Model layers to offload to the GPU (GPU builds) [default: 0]
    #[arg(long, global = true, env = "DOCCHAT_GPU_LAYERS")]
    pub gpu_layers: Option<u32>,
    /// Tokens per prompt-processing batch [default: 512]
    #[arg(long, global = true, env = "DOCCHAT_BATCH_SIZE")]
    pub batch_size: Option<u32>,
    /// Tokens per compute pass (at most the batch size) [default: 512]
    #[arg(long, global = true, env = "DOCCHAT_UBATCH_SIZE")]
    pub ubatch_size: Option<u32>,
    /// Flash attention: auto, on or off [default: auto]
    #[arg(long, global = true, env = "DOCCHAT_FLASH_ATTN")]
    pub flash_attn: Option<docchat_llm::FlashAttention>,
    /// Read the model files instead of memory-mapping them
    #[arg(long, global = true, env = "DOCCHAT_NO_MMAP")]
    pub no_mmap: bool,
    /// Keep mixture-of-experts weights in RAM (with --gpu-layers: the rest on the GPU)
    #[arg(long, global = true, env = "DOCCHAT_CPU_MOE")]
    pub cpu_moe: bool,
}

impl GlobalArgs {
    /// What the flags and the environment set, for the service.
    pub fn overrides(&self) -> Overrides {
        Overrides {
            config: self.config.clone(),
            data_dir: self.data_dir.clone(),
            store: self.store.clone(),
            generator: self.generator.clone(),
            embedder: self.embedder.clone(),
            models_dir: self.models_dir.clone(),
            chat_model: self.chat_model.clone(),
            embedding_model: self.embedding_model.clone(),
            threads: self.threads,
            ctx_size: self.ctx_size,
            gpu_layers: self.gpu_layers,
            batch_size: self.batch_size,
            ubatch_size: self.ubatch_size,
            flash_attn: self.flash_attn,
            no_mmap: self.no_mmap,
            cpu_moe: self.cpu_moe,
        }
    }

    /// The options given, as the `DOCCHAT_*` variables a child docchat program
    /// (`docchat-bench`) reads them from.
    pub fn as_env(&self) -> Vec<(&'static str, OsString)> {
        let mut env: Vec<(&'static str, OsString)> = Vec::new();
        let mut path = |k, v: &Option<PathBuf>| {
            if let Some(v) = v {
                env.push((k, v.clone().into_os_string()));
            }
        };
        path("DOCCHAT_CONFIG", &self.config);
        path("DOCCHAT_DATA_DIR", &self.data_dir);
        path("DOCCHAT_STORE", &self.store.clone().map(PathBuf::from));
        path(
            "DOCCHAT_GENERATOR",
            &self.generator.clone().map(PathBuf::from),
        );
        path(
            "DOCCHAT_EMBEDDER",
            &self.embedder.clone().map(PathBuf::from),
        );
        path("DOCCHAT_MODELS_DIR", &self.models_dir);
        path("DOCCHAT_CHAT_MODEL", &self.chat_model);
        path("DOCCHAT_EMBEDDING_MODEL", &self.embedding_model);
        let mut num = |k, v: Option<String>| {
            if let Some(v) = v {
                env.push((k, v.into()));
            }
        };
        num("DOCCHAT_THREADS", self.threads.map(|v| v.to_string()));
        num("DOCCHAT_CTX_SIZE", self.ctx_size.map(|v| v.to_string()));
        num("DOCCHAT_GPU_LAYERS", self.gpu_layers.map(|v| v.to_string()));
        num("DOCCHAT_BATCH_SIZE", self.batch_size.map(|v| v.to_string()));
        num(
            "DOCCHAT_UBATCH_SIZE",
            self.ubatch_size.map(|v| v.to_string()),
        );
        num(
            "DOCCHAT_FLASH_ATTN",
            self.flash_attn.map(|v| v.as_str().to_string()),
        );
        num("DOCCHAT_NO_MMAP", self.no_mmap.then(|| "true".to_string()));
        num("DOCCHAT_CPU_MOE", self.cpu_moe.then(|| "true".to_string()));
        env
    }
}

/// Restrictions shared by `ask` and `search`.
#[derive(Debug, Args)]
pub struct FilterArgs {
    /// Search mode [default: hybrid, or docchat.toml's retrieval.mode]
    #[arg(long)]
    pub mode: Option<SearchMode>,
    /// Only search these collections
    #[arg(long = "collection")]
    pub collections: Vec<String>,
    /// Only documents whose path (inside its folder) starts with this
    #[arg(long)]
    pub path_prefix: Option<String>,
    /// Only documents whose path matches this glob (`*`, `?`)
    #[arg(long)]
    pub glob: Option<String>,
    /// Only these file types, by extension (pdf, docx, md, txt, html)
    #[arg(long = "type")]
    pub types: Vec<String>,
    /// Only documents modified on or after this day (YYYY-MM-DD, UTC)
    #[arg(long)]
    pub after: Option<String>,
    /// Only documents modified before this day (YYYY-MM-DD, UTC)
    #[arg(long)]
    pub before: Option<String>,
}

impl FilterArgs {
    pub fn to_filter(&self) -> Result<SearchFilter> {
        let day = |d: &Option<String>| -> Result<Option<i64>> {
            d.as_deref().map(config::parse_day_ms).transpose()
        };
        Ok(SearchFilter {
            collections: self.collections.clone(),
            path_prefix: self.path_prefix.clone(),
            path_glob: self.glob.clone(),
            extensions: self.types.clone(),
            modified_after_ms: day(&self.after)?,
            modified_before_ms: day(&self.before)?,
            documents: Vec::new(),
        })
    }
}

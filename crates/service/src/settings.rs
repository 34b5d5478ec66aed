//! Settings resolved once at start: defaults < `docchat.toml` < `DOCCHAT_*`
//! environment < flags. The command line fills [`Overrides`]; the service never sees
//! its parser.

use crate::answer::rag::{AskOptions, Rag};
use crate::answer::retrieve::Retriever;
use crate::config::{self, FileConfig};
use crate::index::isolate::ExtractLimits;
use crate::models::{self, ModelPaths};
use anyhow::{Context, Result};
use docchat_core::{Embedder, Generator};
use docchat_llm::{EngineOptions, FlashAttention};
use docchat_store::{Access, ChatStore, Lease, Location, SearchTuning, Store};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// What the user set outside `docchat.toml` (environment or flags); `None` and
/// `false` leave the choice to the file, then to the default.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// The configuration file [default: ./docchat.toml when present].
    pub config: Option<PathBuf>,
    /// Where the index lives.
    pub data_dir: Option<PathBuf>,
    /// Where the index and the chats are shared (`s3://bucket/prefix` or a folder).
    pub store: Option<String>,
    /// An OpenAI-compatible server that generates instead of the chat model.
    pub generator: Option<String>,
    /// An OpenAI-compatible server that embeds the questions instead of the
    /// embedding model.
    pub embedder: Option<String>,
    /// Folder of the default models.
    pub models_dir: Option<PathBuf>,
    /// Chat model file.
    pub chat_model: Option<PathBuf>,
    /// Embedding model file.
    pub embedding_model: Option<PathBuf>,
    /// CPU threads for inference.
    pub threads: Option<i32>,
    /// Context size of the chat model in tokens.
    pub ctx_size: Option<u32>,
    /// Model layers offloaded to the GPU.
    pub gpu_layers: Option<u32>,
    /// Tokens per prompt-processing batch.
    pub batch_size: Option<u32>,
    /// Tokens per compute pass.
    pub ubatch_size: Option<u32>,
    /// Flash attention.
    pub flash_attn: Option<FlashAttention>,
    /// Read the model files instead of memory-mapping them.
    pub no_mmap: bool,
    /// Keep mixture-of-experts weights in RAM.
    pub cpu_moe: bool,
}

impl Overrides {
    /// The overrides of the `DOCCHAT_*` environment variables (the ones docchat's
    /// global flags read too): for programs without those flags, `docchat-bench`.
    pub fn from_env() -> Result<Self> {
        fn var(key: &str) -> Option<String> {
            std::env::var(key).ok().filter(|v| !v.is_empty())
        }
        fn path(key: &str) -> Option<PathBuf> {
            var(key).map(PathBuf::from)
        }
        fn parsed<T: std::str::FromStr>(key: &str) -> Result<Option<T>>
        where
            T::Err: std::fmt::Display,
        {
            var(key)
                .map(|v| v.parse().map_err(|e| anyhow::anyhow!("{key}={v}: {e}")))
                .transpose()
        }
        // Set and not one of the words for false (as the flags read them).
        fn flag(key: &str) -> bool {
            var(key).is_some_and(|v| {
                !["0", "false", "no", "off", "n", "f"].contains(&v.to_ascii_lowercase().as_str())
            })
        }
        Ok(Self {
            config: path("DOCCHAT_CONFIG"),
            data_dir: path("DOCCHAT_DATA_DIR"),
            store: var("DOCCHAT_STORE"),
            generator: var("DOCCHAT_GENERATOR"),
            embedder: var("DOCCHAT_EMBEDDER"),
            models_dir: path("DOCCHAT_MODELS_DIR"),
            chat_model: path("DOCCHAT_CHAT_MODEL"),
            embedding_model: path("DOCCHAT_EMBEDDING_MODEL"),
            threads: parsed("DOCCHAT_THREADS")?,
            ctx_size: parsed("DOCCHAT_CTX_SIZE")?,
            gpu_layers: parsed("DOCCHAT_GPU_LAYERS")?,
            batch_size: parsed("DOCCHAT_BATCH_SIZE")?,
            ubatch_size: parsed("DOCCHAT_UBATCH_SIZE")?,
            flash_attn: parsed("DOCCHAT_FLASH_ATTN")?,
            no_mmap: flag("DOCCHAT_NO_MMAP"),
            cpu_moe: flag("DOCCHAT_CPU_MOE"),
        })
    }
}

/// Files larger than this many MB are not read unless `max_file_mb` says more.
pub const DEFAULT_MAX_FILE_MB: u64 = 1024;

/// Resolved settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where the index and the chats live.
    pub data_dir: PathBuf,
    /// The model files.
    pub models: ModelPaths,
    /// Engine options models are loaded with.
    pub engine: EngineOptions,
    /// The configuration file's options.
    pub file: Arc<FileConfig>,
    /// Wall-clock limit of one extraction, in seconds.
    pub extract_timeout_s: u64,
    /// Memory cap of one extraction, in MB.
    pub extract_memory_mb: u64,
    /// Files larger than this, in MB, are not read.
    pub max_file_mb: u64,
    /// The configuration file given (`--config`), if any.
    pub config_file: Option<PathBuf>,
    /// Where the index and the chats are shared with other docchat processes
    /// (`None`: in the data folder, for this process alone).
    pub store: Option<Location>,
    /// How stale a reader's view of a shared store may be.
    pub store_refresh: Duration,
    /// An OpenAI-compatible server that generates instead of the chat model.
    pub generator_url: Option<String>,
    /// An OpenAI-compatible server that embeds instead of the embedding model.
    pub embedder_url: Option<String>,
}

/// How stale a reader's view of a shared store may be, unless configured.
pub const STORE_REFRESH: Duration = Duration::from_secs(2);
/// The folder of a shared store holding the chat history.
pub const SHARED_CHATS_DIR: &str = "chats";

/// How long the writer's lease of a shared store lasts unless renewed (it is
/// renewed every third of it).
pub const LEASE_TTL: Duration = Duration::from_secs(15);

/// The folder of the data directory where the notes of whole-document readings are
/// kept.
pub const NOTES_DIR: &str = "notes";

impl Settings {
    /// Reads the configuration file and applies `o` over it.
    pub fn resolve(o: &Overrides) -> Result<Self> {
        let file = FileConfig::load(o.config.as_deref())?;
        let data_dir = o
            .data_dir
            .clone()
            .or_else(|| file.data_dir.clone())
            .unwrap_or_else(config::default_data_dir);
        let models_dir = o
            .models_dir
            .clone()
            .or_else(|| file.models_dir.clone())
            .unwrap_or_else(config::default_models_dir);
        let models = ModelPaths::resolve(
            models_dir,
            o.chat_model.clone().or_else(|| file.chat_model.clone()),
            o.embedding_model
                .clone()
                .or_else(|| file.embedding_model.clone()),
        );
        let engine = engine_options(o, &file);
        let store = match o.store.clone().or_else(|| file.store.clone()) {
            Some(text) => Some(
                Location::parse(&text)
                    .context("--store")?
                    .with_options(file.store_options.clone()),
            ),
            None => None,
        };
        let store_refresh = file.store_refresh_s.map_or(STORE_REFRESH, |s| {
            Duration::from_secs_f64(s.clamp(0.0, 3600.0))
        });
        let generator_url = o
            .generator
            .clone()
            .or_else(|| file.generator.clone())
            .filter(|g| !g.trim().is_empty());
        let embedder_url = o
            .embedder
            .clone()
            .or_else(|| file.embedder.clone())
            .filter(|g| !g.trim().is_empty());
        Ok(Self {
            store,
            store_refresh,
            generator_url,
            embedder_url,
            data_dir,
            models,
            engine,
            extract_timeout_s: file.extract_timeout_s.unwrap_or(120),
            extract_memory_mb: file.extract_memory_mb.unwrap_or(4096),
            max_file_mb: file.max_file_mb.unwrap_or(DEFAULT_MAX_FILE_MB),
            config_file: o.config.clone(),
            file: Arc::new(file),
        })
    }

    /// The folder of the chat history (and of the first index).
    pub fn index_dir(&self) -> PathBuf {
        self.data_dir.join(crate::index::switch::FIRST_INDEX_DIR)
    }

    /// Loads the embedding model (off the async runtime), or connects to the
    /// remote embedder when one is set.
    pub async fn embedder(&self) -> Result<Arc<dyn Embedder>> {
        if let Some(url) = &self.embedder_url {
            return Ok(Arc::new(crate::remote::RemoteEmbedder::connect(url).await?));
        }
        let (paths, opts) = (self.models.clone(), self.engine.clone());
        tokio::task::spawn_blocking(move || models::load_embedder(&paths, &opts)).await?
    }

    /// Loads the chat model (off the async runtime), or connects to the remote
    /// generator when one is set.
    pub async fn generator(&self) -> Result<Arc<dyn Generator>> {
        if let Some(url) = &self.generator_url {
            let remote = crate::remote::RemoteGenerator::connect(url, self.engine.ctx_size).await?;
            return Ok(Arc::new(remote));
        }
        let (path, opts) = (self.models.chat.clone(), self.engine.clone());
        tokio::task::spawn_blocking(move || models::load_generator(&path, &opts)).await?
    }

    /// The index of `embedder` in the shared store, opened to read or to write.
    pub fn shared_index(&self, embedder_id: &str) -> Option<Location> {
        self.store
            .as_ref()
            .map(|s| s.join(&crate::index::switch::dir_for(embedder_id)))
    }

    /// Opens the shared store's index of `embedder` to read (a reader, or a
    /// command that only reads).
    pub async fn read_shared(&self, embedder: &Arc<dyn Embedder>) -> Result<Store> {
        let at = self
            .shared_index(embedder.id())
            .context("no shared store is set (--store)")?;
        Ok(Store::open_at(
            &at,
            embedder.dim(),
            Access::Read {
                refresh: self.store_refresh,
            },
        )
        .await
        .with_context(|| format!("cannot open the index of {} in {at}", embedder.id()))?
        .with_tuning(self.tuning()))
    }

    /// Takes the writer's lease of the shared store, then opens its index of
    /// `embedder` to write. The lease must be kept ([`Lease::keep`]) while
    /// writing.
    pub async fn write_shared(&self, embedder: &Arc<dyn Embedder>) -> Result<(Store, Arc<Lease>)> {
        let root = self
            .store
            .as_ref()
            .context("no shared store is set (--store)")?;
        let lease = Lease::acquire(root, crate::settings::LEASE_TTL).await?;
        let at = self.shared_index(embedder.id()).expect("a store is set");
        let store = Store::open_at(&at, embedder.dim(), Access::Write)
            .await
            .with_context(|| format!("cannot open the index of {} in {at}", embedder.id()))?
            .with_tuning(self.tuning());
        Ok((store, lease))
    }

    /// The index of `embedder` to write: in the data folder as always, or in the
    /// shared store under the writer's lease, kept from now on. When the lease is
    /// lost (another writer took the store over) the process stops at once.
    /// Release the lease ([`Lease::release`]) on a clean stop.
    pub async fn writable_store(
        &self,
        embedder: &Arc<dyn Embedder>,
    ) -> Result<(Store, Option<Arc<Lease>>)> {
        let Some(root) = &self.store else {
            return Ok((self.store(embedder).await?, None));
        };
        let (store, lease) = self.write_shared(embedder).await?;
        let uri = root.to_string();
        lease.keep(move |why| {
            tracing::error!(store = %uri, reason = %why, "the writer's lease is lost: stopping");
            eprintln!("docchat: the writer's lease of {uri} is lost ({why}); stopping");
            std::process::exit(3);
        });
        tracing::info!(store = %root, "writing to the shared store");
        Ok((store, Some(lease)))
    }

    /// With a remote embedder: refuses it unless its vectors are the index's
    /// (the same dimension, the same vector for a stored passage).
    pub async fn check_embedder(&self, store: &Store, embedder: &Arc<dyn Embedder>) -> Result<()> {
        if self.embedder_url.is_some() {
            crate::remote::check_embedder(store, embedder).await?;
        }
        Ok(())
    }

    /// The chat history: in the shared store when there is one, else in the data
    /// folder.
    pub async fn chats(&self) -> Result<ChatStore> {
        match &self.store {
            Some(s) => {
                let at = s.join(SHARED_CHATS_DIR);
                ChatStore::open_at(&at, Some(self.store_refresh))
                    .await
                    .with_context(|| format!("cannot open the chat history in {at}"))
            }
            None => Ok(ChatStore::open(&self.index_dir()).await?),
        }
    }

    /// Opens the index of `embedder`, tuned as configured; when the index in use was
    /// made by another embedding model, its text is re-embedded first. With a
    /// shared store, its index of `embedder`, to read.
    pub async fn store(&self, embedder: &Arc<dyn Embedder>) -> Result<Store> {
        if self.store.is_some() {
            return self.read_shared(embedder).await;
        }
        crate::index::switch::open_current(
            &self.data_dir,
            &self.models.dir,
            embedder,
            &self.models.embedding,
            self.tuning(),
        )
        .await
    }

    /// The embedding model and the index.
    pub async fn retriever(&self) -> Result<Retriever> {
        let embedder = self.embedder().await?;
        let store = self.store(&embedder).await?;
        self.check_embedder(&store, &embedder).await?;
        Ok(Retriever { store, embedder })
    }

    /// Retrieval and the chat model.
    pub async fn rag(&self) -> Result<Rag> {
        let retriever = self.retriever().await?;
        Ok(Rag {
            retriever,
            generator: self.generator().await?,
        })
    }

    /// Search tuning from the configuration.
    pub fn tuning(&self) -> SearchTuning {
        SearchTuning {
            vector_index_min_rows: self.file.retrieval.vector_index_min_rows,
            ..SearchTuning::default()
        }
    }

    /// Opens the index folder `dir` of the data directory.
    pub async fn open_index(&self, dir: &str, dim: usize) -> Result<Store> {
        Ok(Store::open(&self.data_dir.join(dir), dim)
            .await?
            .with_tuning(self.tuning()))
    }

    /// Question defaults from the configuration.
    pub fn ask_options(&self) -> AskOptions {
        let r = &self.file.retrieval;
        AskOptions {
            top_k: crate::answer::clamp_top_k(r.top_k),
            mode: r.mode,
            fusion: r.fusion(),
            min_similarity: r.min_similarity.max(0.0),
            chat_passages: r.chat_passages.max(1),
            passage_bytes: r.passage_bytes,
            instruction: self.file.instruction.as_deref().map(Into::into),
            read: crate::answer::read::ReadOptions {
                reading: self.file.reading.mode,
                max_read_tokens: self.file.reading.max_read_tokens.max(1),
                window_tokens: self.file.reading.window_tokens,
                cache_dir: Some(self.data_dir.join(NOTES_DIR)),
                cache_bytes: self.file.reading.notes_cache_mb << 20,
                waiting: crate::answer::read::Waiting::default(),
            },
            ..AskOptions::default()
        }
    }

    /// The configuration file `models use` and `collections` write to.
    pub fn config_path(&self) -> PathBuf {
        self.config_file
            .clone()
            .unwrap_or_else(|| PathBuf::from("docchat.toml"))
    }

    /// The parents of folders the browser and the API may add:
    /// `DOCCHAT_ALLOWED_FOLDERS` (separated by `:`), else `allowed_folders` of the
    /// configuration, else the user's home.
    pub fn allowed_folders(&self) -> Vec<PathBuf> {
        if let Some(v) = std::env::var_os("DOCCHAT_ALLOWED_FOLDERS") {
            return std::env::split_paths(&v)
                .filter(|p| !p.as_os_str().is_empty())
                .collect();
        }
        if let Some(list) = &self.file.allowed_folders {
            return list.clone();
        }
        std::env::var_os("HOME")
            .map(PathBuf::from)
            .into_iter()
            .collect()
    }

    /// How OCR reads, or `None` when it is off (`ocr = false`, or no Tesseract
    /// language data installed).
    pub fn ocr(&self) -> Option<docchat_ingest::OcrOptions> {
        if self.file.ocr == Some(false) {
            return None;
        }
        let page_timeout =
            std::time::Duration::from_secs(self.file.ocr_page_timeout_s.unwrap_or(120).max(1));
        let installed = docchat_ingest::ocr::installed_languages();
        let languages = match &self.file.ocr_languages {
            Some(wanted) => {
                let missing: Vec<&String> =
                    wanted.iter().filter(|l| !installed.contains(l)).collect();
                if !missing.is_empty() {
                    tracing::warn!(
                        ?missing,
                        ?installed,
                        "OCR languages without installed data are left out"
                    );
                }
                wanted
                    .iter()
                    .filter(|l| installed.contains(l))
                    .cloned()
                    .collect()
            }
            None => installed,
        };
        if languages.is_empty() {
            tracing::info!("OCR is off: Tesseract or its language data is not installed");
            return None;
        }
        Some(docchat_ingest::OcrOptions {
            languages,
            page_timeout,
        })
    }

    /// The limits of one extraction. Also makes the data folder private (0700) and
    /// readies the extraction folder inside it (emptied: call once, at start).
    pub fn limits(&self) -> Result<ExtractLimits> {
        let mut limits = ExtractLimits::new(self.extract_timeout_s, self.extract_memory_mb)?;
        limits.max_file_bytes = self.max_file_mb.saturating_mul(1 << 20);
        limits.ocr = self.ocr();
        // The index holds the documents' text: only docchat's user may enter.
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::create_dir_all(&self.data_dir)?;
            let mode = std::fs::metadata(&self.data_dir)?.permissions().mode();
            if mode & 0o077 != 0 {
                std::fs::set_permissions(&self.data_dir, std::fs::Permissions::from_mode(0o700))
                    .with_context(|| format!("cannot restrict {}", self.data_dir.display()))?;
            }
        }
        limits.in_private_dir(self.data_dir.join("extracting"))
    }
}

/// Engine options: `o` over the file over the defaults.
fn engine_options(o: &Overrides, file: &FileConfig) -> EngineOptions {
    let defaults = EngineOptions::default();
    EngineOptions {
        threads: o.threads.or(file.threads).unwrap_or(defaults.threads),
        ctx_size: o.ctx_size.or(file.ctx_size).unwrap_or(defaults.ctx_size),
        gpu_layers: o
            .gpu_layers
            .or(file.gpu_layers)
            .unwrap_or(defaults.gpu_layers),
        batch_size: o
            .batch_size
            .or(file.batch_size)
            .unwrap_or(defaults.batch_size)
            .max(1),
        ubatch_size: o
            .ubatch_size
            .or(file.ubatch_size)
            .unwrap_or(defaults.ubatch_size)
            .max(1),
        flash_attention: o
            .flash_attn
            .or(file.flash_attn)
            .unwrap_or(defaults.flash_attention),
        mmap: !o.no_mmap && file.mmap.unwrap_or(defaults.mmap),
        cpu_moe: o.cpu_moe || file.cpu_moe.unwrap_or(defaults.cpu_moe),
        ..defaults
    }
}

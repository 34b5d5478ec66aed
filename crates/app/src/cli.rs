//! The commands.

use crate::GlobalArgs;
use crate::config::{self, FileConfig, WatchRoot};
use crate::indexer::Indexer;
use crate::isolate::ExtractLimits;
use crate::models::{self, ModelPaths};
use crate::rag::{AnswerEvent, AskOptions, Rag};
use crate::retrieve::{Retriever, SearchMode, SearchRequest};
use crate::server::{self, AppState};
use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use docchat_core::Embedder;
use docchat_llm::EngineOptions;
use docchat_store::{ChatStore, DocState, SearchFilter, SearchTuning, Store};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// Resolved settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub models: ModelPaths,
    pub engine: EngineOptions,
    pub file: Arc<FileConfig>,
    pub extract_timeout_s: u64,
    pub extract_memory_mb: u64,
    /// The configuration file given (`--config`), if any.
    pub config_file: Option<PathBuf>,
}

impl Settings {
    pub fn resolve(g: &GlobalArgs) -> Result<Self> {
        let file = FileConfig::load(g.config.as_deref())?;
        let data_dir = g
            .data_dir
            .clone()
            .or_else(|| file.data_dir.clone())
            .unwrap_or_else(config::default_data_dir);
        let models_dir = g
            .models_dir
            .clone()
            .or_else(|| file.models_dir.clone())
            .unwrap_or_else(config::default_models_dir);
        let models = ModelPaths::resolve(
            models_dir,
            g.chat_model.clone().or_else(|| file.chat_model.clone()),
            g.embedding_model
                .clone()
                .or_else(|| file.embedding_model.clone()),
        );
        let defaults = EngineOptions::default();
        let engine = EngineOptions {
            threads: g.threads.or(file.threads).unwrap_or(defaults.threads),
            ctx_size: g.ctx_size.or(file.ctx_size).unwrap_or(defaults.ctx_size),
            gpu_layers: g
                .gpu_layers
                .or(file.gpu_layers)
                .unwrap_or(defaults.gpu_layers),
            batch_size: g
                .batch_size
                .or(file.batch_size)
                .unwrap_or(defaults.batch_size)
                .max(1),
            ubatch_size: g
                .ubatch_size
                .or(file.ubatch_size)
                .unwrap_or(defaults.ubatch_size)
                .max(1),
            flash_attention: g
                .flash_attn
                .or(file.flash_attn)
                .unwrap_or(defaults.flash_attention),
            mmap: !g.no_mmap && file.mmap.unwrap_or(defaults.mmap),
            cpu_moe: g.cpu_moe || file.cpu_moe.unwrap_or(defaults.cpu_moe),
            ..defaults
        };
        Ok(Self {
            data_dir,
            models,
            engine,
            extract_timeout_s: file.extract_timeout_s.unwrap_or(120),
            extract_memory_mb: file.extract_memory_mb.unwrap_or(4096),
            config_file: g.config.clone(),
            file: Arc::new(file),
        })
    }

    /// The folder of the chat history (and of the first index).
    fn index_dir(&self) -> PathBuf {
        self.data_dir.join(crate::switch::FIRST_INDEX_DIR)
    }

    async fn embedder(&self) -> Result<Arc<dyn Embedder>> {
        let (paths, opts) = (self.models.clone(), self.engine.clone());
        tokio::task::spawn_blocking(move || models::load_embedder(&paths, &opts)).await?
    }

    /// Opens the index of `embedder`, tuned as configured; when the index in use was
    /// made by another embedding model, its text is re-embedded first.
    pub async fn store(&self, embedder: &Arc<dyn Embedder>) -> Result<Store> {
        crate::switch::open_current(
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
        Ok(Retriever { store, embedder })
    }

    async fn generator(&self) -> Result<Arc<dyn docchat_core::Generator>> {
        let (path, opts) = (self.models.chat.clone(), self.engine.clone());
        tokio::task::spawn_blocking(move || models::load_generator(&path, &opts)).await?
    }

    async fn rag(&self) -> Result<Rag> {
        let retriever = self.retriever().await?;
        Ok(Rag {
            retriever,
            generator: self.generator().await?,
        })
    }

    fn tuning(&self) -> SearchTuning {
        SearchTuning {
            vector_index_min_rows: self.file.retrieval.vector_index_min_rows,
            ..SearchTuning::default()
        }
    }

    /// Opens the index folder `dir` of the data directory.
    async fn open_index(&self, dir: &str, dim: usize) -> Result<Store> {
        Ok(Store::open(&self.data_dir.join(dir), dim)
            .await?
            .with_tuning(self.tuning()))
    }

    /// Question defaults from the configuration.
    pub fn ask_options(&self) -> AskOptions {
        let r = &self.file.retrieval;
        AskOptions {
            top_k: r.top_k.clamp(1, 50),
            mode: r.mode,
            fusion: r.fusion(),
            ..AskOptions::default()
        }
    }

    /// The configuration file `models use` and `collections` write to.
    pub fn config_path(&self) -> PathBuf {
        self.config_file
            .clone()
            .unwrap_or_else(|| PathBuf::from("docchat.toml"))
    }

    fn limits(&self) -> Result<ExtractLimits> {
        ExtractLimits::new(self.extract_timeout_s, self.extract_memory_mb)
    }
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// File listing the folders to watch, one per line: `PATH [= collection]`
    #[arg(long, env = "DOCCHAT_WATCH_DIRS")]
    watch_dirs: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1]
    #[arg(long, env = "DOCCHAT_HOST")]
    host: Option<String>,
    /// Port (0 picks a free one) [default: 8080]
    #[arg(long, env = "DOCCHAT_PORT")]
    port: Option<u16>,
    /// Requests that may wait for the chat model (and for the embedding model)
    /// while one runs; past that, requests get 503 with Retry-After [default: 8]
    #[arg(long, env = "DOCCHAT_MAX_QUEUE")]
    max_queue: Option<usize>,
    /// Largest file the browser may upload, in MB [default: 100]
    #[arg(long, env = "DOCCHAT_MAX_UPLOAD_MB")]
    max_upload_mb: Option<usize>,
    /// Secret every request must carry (`Authorization: Bearer KEY`, or the browser's
    /// sign-in); required to listen on anything but loopback
    #[arg(long, env = "DOCCHAT_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// File holding the API key (kept out of the process list)
    #[arg(long, env = "DOCCHAT_API_KEY_FILE")]
    api_key_file: Option<PathBuf>,
    /// Host name the browser may use besides localhost, 127.0.0.1 and [::1] (a guard
    /// against DNS rebinding); repeatable
    #[arg(long = "allowed-host", value_name = "NAME")]
    allowed_hosts: Vec<String>,
}

/// Fails with what to do when docchat cannot write `dir`, where it keeps its index
/// and chats.
pub fn check_writable(dir: &Path) -> Result<()> {
    let probe = dir.join(".docchat-write-check");
    let result = std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(&probe, b"docchat"))
        .and_then(|()| std::fs::remove_file(&probe));
    let Err(e) = result else {
        return Ok(());
    };
    let why = match e.raw_os_error() {
        Some(30) => "it is on a read-only file system",
        Some(28) => "the disk is full",
        Some(13 | 1) => "permission denied",
        _ => "it cannot be written",
    };
    bail!(
        "cannot use the data folder {}: {why} ({e}). docchat keeps its index and chats there: \
         make it writable (or free space), or choose another with --data-dir",
        dir.display()
    )
}

/// The server's access rules from the flags and the configuration file.
fn guard_of(s: &Settings, a: &ServeArgs, host: &str) -> Result<crate::guard::Guard> {
    let file = a
        .api_key_file
        .clone()
        .or_else(|| s.file.api_key_file.clone());
    let key = match (&a.api_key, file) {
        (Some(k), _) => Some(k.clone()),
        (None, Some(f)) => Some(
            std::fs::read_to_string(&f)
                .with_context(|| format!("cannot read the API key file {}", f.display()))?,
        ),
        (None, None) => None,
    };
    let mut allowed = a.allowed_hosts.clone();
    allowed.extend(s.file.allowed_hosts.iter().cloned());
    crate::guard::Guard::new(host, key, allowed)
}

pub async fn serve(s: Settings, a: ServeArgs) -> Result<ExitCode> {
    let host = a
        .host
        .clone()
        .or_else(|| s.file.host.clone())
        .unwrap_or_else(|| "127.0.0.1".into());
    // Refused before anything loads: an open address without a key, a data folder
    // docchat cannot write.
    let guard = Arc::new(guard_of(&s, &a, &host)?);
    check_writable(&s.data_dir)?;
    let watch_file = a.watch_dirs.or_else(|| s.file.watch_dirs.clone());
    let roots = match &watch_file {
        Some(f) => config::read_watch_dirs(f)?,
        None => Vec::new(),
    };
    if roots.is_empty() {
        tracing::warn!("no folders to watch (pass --watch-dirs FILE)");
    }
    for r in &roots {
        tracing::info!(path = %r.path.display(), collection = %r.collection, "watching");
    }
    let embedder = s.embedder().await?;
    let generator = s.generator().await?;
    let switch: crate::switch::SwitchProgress = Arc::default();
    let plan = crate::switch::plan(
        &s.data_dir,
        &s.models.dir,
        embedder.id(),
        &s.models.embedding,
    )
    .await?;
    // The index that serves now, and the switch to run, if any.
    let (store, serving, pending) = match plan {
        crate::switch::Plan::Current(a) => (
            s.open_index(&a.dir, embedder.dim()).await?,
            Arc::clone(&embedder),
            None,
        ),
        crate::switch::Plan::Switch { from, to } => {
            let (path, opts) = (from.model.clone(), s.engine.clone());
            let paths = ModelPaths {
                embedding: path.clone(),
                ..s.models.clone()
            };
            let old =
                tokio::task::spawn_blocking(move || models::load_embedder(&paths, &opts)).await?;
            match old {
                Ok(old) => {
                    tracing::info!(from = %from.embedder, to = %to.embedder,
                        "switching the embedding model: the old index serves while the text is re-embedded");
                    let store = s.open_index(&from.dir, old.dim()).await?;
                    let target = s.open_index(&to.dir, embedder.dim()).await?;
                    (store, old, Some((from, to, target)))
                }
                Err(e) => {
                    tracing::warn!(model = %path.display(), error = format!("{e:#}"),
                        "the previous embedding model cannot be loaded: indexing the files again with the new one");
                    crate::switch::write_active(&s.data_dir, &to)?;
                    (
                        s.open_index(&to.dir, embedder.dim()).await?,
                        Arc::clone(&embedder),
                        None,
                    )
                }
            }
        }
    };
    let limits = s.limits()?;
    let indexer = Indexer::new(
        store.clone(),
        Arc::clone(&serving),
        roots.clone(),
        limits.clone(),
    );
    tokio::spawn(Arc::clone(&indexer).run());
    let live: server::LiveSlot = Arc::new(std::sync::RwLock::new(server::Live {
        rag: Rag {
            retriever: Retriever {
                store,
                embedder: serving,
            },
            generator: Arc::clone(&generator),
        },
        indexer: Arc::clone(&indexer),
    }));
    let watch_live = Arc::clone(&live);
    let watcher = crate::watch::start(&indexer, move || {
        Arc::clone(
            &watch_live
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .indexer,
        )
    })?;
    {
        let ix = Arc::clone(&indexer);
        tokio::spawn(async move {
            if let Err(e) = ix.reconcile().await {
                tracing::error!(error = format!("{e:#}"), "startup scan failed");
            }
        });
    }
    if let Some((from, to, target)) = pending {
        let job = SwitchJob {
            data_dir: s.data_dir.clone(),
            live: Arc::clone(&live),
            progress: Arc::clone(&switch),
            embedder,
            generator,
            limits,
        };
        tokio::spawn(job.run(from, to, target));
    }
    let port = a.port.or(s.file.port).unwrap_or(8080);
    let listener = tokio::net::TcpListener::bind((host.as_str(), port))
        .await
        .with_context(|| format!("cannot listen on {host}:{port}"))?;
    let addr = listener.local_addr()?;
    // Streamed answers are many small writes: send each at once instead of
    // holding it until the previous one is acknowledged.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
    });
    println!("listening on http://{addr}");
    std::io::stdout().flush()?;
    let queue = a.max_queue.or(s.file.max_queue).unwrap_or(8);
    let app = server::router(
        AppState {
            live,
            switch,
            ask_defaults: s.ask_options(),
            chats: ChatStore::open(&s.index_dir()).await?,
            folders: Arc::new(crate::folders::Folders::new(watcher, watch_file)),
            max_upload_bytes: a
                .max_upload_mb
                .or(s.file.max_upload_mb)
                .unwrap_or(100)
                .saturating_mul(1 << 20),
            models: s.models.clone(),
            ctx_size: u64::from(s.engine.ctx_size),
            engine: s.engine.clone(),
            cpu: Arc::default(),
            chat_slots: crate::admission::Admission::with_priority(
                queue,
                Some(Arc::clone(&s.engine.priority)),
            ),
            embed_slots: crate::admission::Admission::new(queue),
            started_unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        },
        guard,
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    Ok(ExitCode::SUCCESS)
}

/// A switch of the embedding model in a running server.
struct SwitchJob {
    data_dir: PathBuf,
    live: server::LiveSlot,
    progress: crate::switch::SwitchProgress,
    embedder: Arc<dyn Embedder>,
    generator: Arc<dyn docchat_core::Generator>,
    limits: ExtractLimits,
}

impl SwitchJob {
    /// Re-embeds the old index's text into `target` (again until a pass finds
    /// nothing changed while the old indexer is idle), then makes `target` the index
    /// in use: pointer file first, then the live index, then a scan of the folders.
    async fn run(
        self,
        from: crate::switch::ActiveIndex,
        to: crate::switch::ActiveIndex,
        target: Store,
    ) {
        let status = |state: &str, error: Option<String>| {
            let mut p = self
                .progress
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let s = p.get_or_insert_with(|| crate::switch::SwitchStatus {
                from: from.embedder.clone(),
                to: to.embedder.clone(),
                ..Default::default()
            });
            s.state = state.to_string();
            s.error = error;
        };
        status("re-embedding", None);
        let result: Result<()> = async {
            loop {
                let old = self
                    .live
                    .read()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .clone();
                old.indexer.wait_idle().await;
                let n = crate::switch::reembed(
                    &old.rag.retriever.store,
                    &target,
                    Arc::clone(&self.embedder),
                    &self.progress,
                )
                .await?;
                if n == 0 && old.indexer.queue_len() == 0 {
                    break;
                }
            }
            crate::switch::write_active(&self.data_dir, &to)?;
            // The folders watched now (some may have been added meanwhile).
            let roots = self
                .live
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .indexer
                .roots();
            let indexer = Indexer::new(
                target.clone(),
                Arc::clone(&self.embedder),
                roots,
                self.limits.clone(),
            );
            tokio::spawn(Arc::clone(&indexer).run());
            {
                // The switch is done the moment the new index serves: marked under
                // the same lock, so a status never shows one without the other.
                let mut live = self
                    .live
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                *live = server::Live {
                    rag: Rag {
                        retriever: Retriever {
                            store: target,
                            embedder: Arc::clone(&self.embedder),
                        },
                        generator: Arc::clone(&self.generator),
                    },
                    indexer: Arc::clone(&indexer),
                };
                status("done", None);
            }
            tracing::info!(to = %to.embedder, "embedding model switched");
            // Files changed in the last moments are found by the scan.
            if let Err(e) = indexer.reconcile().await {
                tracing::warn!(
                    error = format!("{e:#}"),
                    "the scan after the switch failed; files are picked up at their next change"
                );
            }
            Ok(())
        }
        .await;
        match result {
            Ok(()) => {}
            Err(e) => {
                tracing::error!(
                    error = format!("{e:#}"),
                    "the embedding model switch failed; the previous index keeps serving"
                );
                status("failed", Some(format!("{e:#}")));
            }
        }
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
}

#[derive(Debug, Args)]
pub struct IndexArgs {
    /// Files or folders to index
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Collection name [default: each folder's name]
    #[arg(long)]
    collection: Option<String>,
}

/// Watch roots for the paths given on the command line: each folder (or a file's
/// folder) names its collection unless `collection` is given.
fn roots_of(paths: &[PathBuf], collection: Option<&str>) -> Result<Vec<WatchRoot>> {
    let mut roots = Vec::new();
    for p in paths {
        let path =
            std::fs::canonicalize(p).with_context(|| format!("{} does not exist", p.display()))?;
        let collection = collection.map(str::to_string).unwrap_or_else(|| {
            let named = if path.is_dir() {
                Some(path.as_path())
            } else {
                path.parent()
            };
            named
                .and_then(|d| d.file_name())
                .map_or_else(|| "documents".into(), |n| n.to_string_lossy().into_owned())
        });
        roots.push(WatchRoot { path, collection });
    }
    Ok(roots)
}

pub async fn index(s: Settings, a: IndexArgs) -> Result<ExitCode> {
    let roots = roots_of(&a.paths, a.collection.as_deref())?;
    check_writable(&s.data_dir)?;
    let embedder = s.embedder().await?;
    let store = s.store(&embedder).await?;
    let indexer = Indexer::new(store.clone(), embedder, roots.clone(), s.limits()?);
    tokio::spawn(Arc::clone(&indexer).run());
    indexer.reconcile().await?;
    let total = indexer.queue_len() as u64;
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} files  {elapsed_precise}, eta {eta}  {msg}",
        )
        .expect("valid template"),
    );
    {
        let wait = indexer.wait_idle();
        tokio::pin!(wait);
        loop {
            tokio::select! {
                () = &mut wait => break,
                () = tokio::time::sleep(Duration::from_millis(250)) => {
                    bar.set_position(total.saturating_sub(indexer.queue_len() as u64));
                    bar.set_message(format!(
                        "{} chunks embedded",
                        indexer.stats.chunks_embedded.load(std::sync::atomic::Ordering::SeqCst)
                    ));
                }
            }
        }
    }
    bar.finish_and_clear();
    let collections: Vec<&str> = roots.iter().map(|r| r.collection.as_str()).collect();
    let docs: Vec<_> = store
        .documents()
        .await?
        .into_iter()
        .filter(|d| collections.contains(&d.collection.as_str()))
        .collect();
    let indexed = docs.iter().filter(|d| d.state == DocState::Indexed).count();
    let failed: Vec<_> = docs
        .iter()
        .filter(|d| d.state == DocState::Failed)
        .collect();
    println!(
        "{indexed} indexed, {} failed, {} chunks embedded in this run",
        failed.len(),
        indexer
            .stats
            .chunks_embedded
            .load(std::sync::atomic::Ordering::SeqCst)
    );
    for d in failed {
        println!(
            "  failed  {}/{}: {}",
            d.collection,
            d.path,
            d.error.as_deref().unwrap_or("")
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct AskArgs {
    /// The question
    question: String,
    /// Print the answer and its citations as one JSON object
    #[arg(long)]
    json: bool,
    /// Passages to retrieve [default: 6, or docchat.toml's retrieval.top_k]
    #[arg(long)]
    top_k: Option<usize>,
    #[command(flatten)]
    filter: FilterArgs,
    /// Most tokens in the answer
    #[arg(long, default_value_t = 256)]
    max_tokens: u32,
}

pub async fn ask(s: Settings, a: AskArgs) -> Result<ExitCode> {
    if a.question.trim().is_empty() {
        bail!("the question is empty");
    }
    let rag = s.rag().await?;
    let mut opts = s.ask_options();
    if let Some(k) = a.top_k {
        opts.top_k = k.clamp(1, 50);
    }
    if let Some(m) = a.filter.mode {
        opts.mode = m;
    }
    opts.filter = a.filter.to_filter()?;
    opts.params.max_tokens = a.max_tokens.max(1);
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(async move { rag.answer(a.question, Vec::new(), opts, tx).await });
    let mut answer = String::new();
    let mut citations = Vec::new();
    let mut done = None;
    let mut stdout = std::io::stdout();
    while let Some(ev) = rx.recv().await {
        match ev {
            AnswerEvent::Token(t) => {
                if !a.json {
                    print!("{t}");
                    stdout.flush()?;
                }
                answer.push_str(&t);
            }
            AnswerEvent::Citations(c) => citations = c.citations,
            AnswerEvent::Done(stats) => done = Some(stats),
            AnswerEvent::Error(m) => bail!("{m}"),
        }
    }
    if a.json {
        let out =
            serde_json::json!({ "answer": answer.trim(), "citations": citations, "stats": done });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!();
        if !citations.is_empty() {
            println!("\nSources:");
        }
        for c in &citations {
            let pages = if c.page_start == c.page_end {
                format!("p. {}", c.page_start)
            } else {
                format!("pp. {}-{}", c.page_start, c.page_end)
            };
            println!(
                "  [{}] {}/{} {}  (score {:.3}){}",
                c.n,
                c.collection,
                c.path,
                pages,
                c.score,
                if c.cited { "  cited" } else { "" }
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Restrictions shared by `ask` and `search`.
#[derive(Debug, Args)]
pub struct FilterArgs {
    /// Search mode [default: hybrid, or docchat.toml's retrieval.mode]
    #[arg(long, value_enum)]
    mode: Option<SearchMode>,
    /// Only search these collections
    #[arg(long = "collection")]
    collections: Vec<String>,
    /// Only documents whose path (inside its folder) starts with this
    #[arg(long)]
    path_prefix: Option<String>,
    /// Only documents whose path matches this glob (`*`, `?`)
    #[arg(long)]
    glob: Option<String>,
    /// Only these file types, by extension (pdf, docx, md, txt, html)
    #[arg(long = "type")]
    types: Vec<String>,
    /// Only documents modified on or after this day (YYYY-MM-DD, UTC)
    #[arg(long)]
    after: Option<String>,
    /// Only documents modified before this day (YYYY-MM-DD, UTC)
    #[arg(long)]
    before: Option<String>,
}

impl FilterArgs {
    fn to_filter(&self) -> Result<SearchFilter> {
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
        })
    }
}

#[derive(Debug, Args)]
pub struct SearchArgs {
    /// The query
    query: String,
    /// Passages to show
    #[arg(long, default_value_t = 10)]
    top_k: usize,
    #[command(flatten)]
    filter: FilterArgs,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

pub async fn search(s: Settings, a: SearchArgs) -> Result<ExitCode> {
    if a.query.trim().is_empty() {
        bail!("the query is empty");
    }
    let retriever = s.retriever().await?;
    let req = SearchRequest {
        mode: a.filter.mode.unwrap_or(s.file.retrieval.mode),
        filter: a.filter.to_filter()?,
        fusion: s.file.retrieval.fusion(),
        ..SearchRequest::new(a.query, a.top_k.clamp(1, 100))
    };
    let passages = retriever.search(&req).await?;
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "hits": passages }))?
        );
    } else {
        for (i, h) in passages.iter().enumerate() {
            let snippet: String = h.text.split_whitespace().collect::<Vec<_>>().join(" ");
            let short: String = snippet.chars().take(160).collect();
            println!(
                "{:>2}. {:.3}  {}/{} p. {}\n    {short}",
                i + 1,
                h.score,
                h.collection,
                h.path,
                h.page_start
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Questions, one JSON object per line: {"question", "file", "page"?, "pages"?}
    questions: PathBuf,
    /// Modes to compare [default: vector, keyword and hybrid]
    #[arg(long = "mode", value_enum)]
    modes: Vec<SearchMode>,
    /// Only search these collections
    #[arg(long = "collection")]
    collections: Vec<String>,
    /// List the questions each mode missed
    #[arg(long)]
    verbose: bool,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

pub async fn eval(s: Settings, a: EvalArgs) -> Result<ExitCode> {
    let questions = crate::eval::read_questions(&a.questions)?;
    let retriever = s.retriever().await?;
    if retriever.store.count_chunks(None).await? == 0 {
        bail!("the index is empty: index the documents first (docchat index)");
    }
    let modes = if a.modes.is_empty() {
        SearchMode::ALL.to_vec()
    } else {
        a.modes
    };
    let filter = SearchFilter::collections(a.collections);
    let reports = crate::eval::run(
        &retriever,
        &questions,
        &modes,
        s.file.retrieval.fusion(),
        &filter,
    )
    .await?;
    if a.json {
        let out = serde_json::json!({
            "questions": questions.len(),
            "chunks": retriever.store.count_chunks(None).await?,
            "modes": reports,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!(
            "{} questions, {} chunks; latency excludes the query embedding\n",
            questions.len(),
            retriever.store.count_chunks(None).await?
        );
        print!("{}", crate::eval::table(&reports));
        if a.verbose {
            for r in &reports {
                for q in &r.missed {
                    println!("  {} missed: {q}", r.mode.as_str());
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Retrieval latency at 10k and 100k chunks (synthetic text and vectors),
    /// for each search mode, exact and with the vector index.
    Search(BenchSearchArgs),
    /// Index folders into a fresh index and report pages/s, chunks/s and the share
    /// of wall time spent embedding.
    Ingest(BenchIngestArgs),
    /// A fresh server indexes DOCS while clients ask, search, upload and walk away
    /// from answers: latency, 503s, errors, peak memory, and how soon a slot a
    /// client left serves the next question.
    Load(BenchLoadArgs),
    /// Prompt processing and generation tokens/s of docchat's engine against
    /// llama.cpp's llama-bench, same model, threads and batch sizes.
    Engine(BenchEngineArgs),
    /// The same streamed chat request through docchat's OpenAI endpoint and through
    /// llama.cpp's llama-server, same model and settings: generation tokens/s and
    /// time to the first token.
    Serve(BenchServeArgs),
    /// Embedding throughput of docchat's embedder against llama.cpp's
    /// llama-embedding on the chunks docchat makes of PATHS.
    Embed(BenchEmbedArgs),
    /// Re-indexing after a one-paragraph edit of a long PDF, against the Python
    /// peer re-ingesting the file.
    Reindex(BenchReindexArgs),
    /// A big document indexed by a fresh server while questions are asked: the
    /// indexing time and the time to first token, idle and during indexing.
    Busy(BenchBusyArgs),
    /// Time to first token of RAG answers through /api/chat against llama-bench's
    /// prompt processing of prompts of the same length.
    Ttft(BenchTtftArgs),
    /// Cold start, and a restart over an unchanged folder of many files.
    Start(BenchStartArgs),
}

#[derive(Debug, Args)]
pub struct BenchStartArgs {
    /// Small files in the watched folder
    #[arg(long, default_value_t = 1000)]
    files: usize,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct BenchTtftArgs {
    /// Documents indexed before the questions (a file or a folder)
    docs: PathBuf,
    /// Questions asked
    #[arg(long, default_value_t = 8)]
    questions: usize,
    /// llama.cpp's llama-bench [default: the one scripts/baselines.sh builds]
    #[arg(long)]
    llama_bench: Option<PathBuf>,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct BenchBusyArgs {
    /// The big document (a file or a folder)
    doc: PathBuf,
    /// Documents indexed first, so that questions have passages from the start
    #[arg(long)]
    seed: Option<PathBuf>,
    /// Questions asked idle before, during indexing, and idle after
    #[arg(long, default_value_t = 5)]
    questions: usize,
    /// Seconds into the indexing when the questions are asked
    #[arg(long, default_value_t = 60)]
    ask_after: u64,
    /// Tokens per answer
    #[arg(long, default_value_t = 16)]
    max_tokens: u32,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct BenchReindexArgs {
    /// A long PDF (it is copied; the original is not touched)
    pdf: PathBuf,
    /// Measure docchat alone
    #[arg(long)]
    docchat_only: bool,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct BenchEmbedArgs {
    /// Documents whose chunks are embedded
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Chunks to embed per run (the first ones)
    #[arg(long, default_value_t = 256)]
    chunks: usize,
    /// Measured runs per engine (medians are reported)
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// llama.cpp's llama-embedding [default: the one scripts/baselines.sh builds, if any]
    #[arg(long)]
    llama_embedding: Option<PathBuf>,
    /// Measure docchat alone
    #[arg(long, conflicts_with = "llama_embedding")]
    docchat_only: bool,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct BenchServeArgs {
    /// Tokens per answer
    #[arg(long, default_value_t = 128)]
    max_tokens: u32,
    /// Requests per server (medians are reported)
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// llama.cpp's llama-server [default: the one scripts/baselines.sh builds]
    #[arg(long)]
    llama_server: Option<PathBuf>,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct BenchEngineArgs {
    /// Prompt tokens
    #[arg(long, default_value_t = 512)]
    prompt: usize,
    /// Generated tokens
    #[arg(long, default_value_t = 128)]
    generate: u32,
    /// Measured runs of each engine (medians are reported)
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// llama.cpp's llama-bench [default: the one scripts/baselines.sh builds, if any]
    #[arg(long)]
    llama_bench: Option<PathBuf>,
    /// Measure docchat alone
    #[arg(long, conflicts_with = "llama_bench")]
    docchat_only: bool,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

/// The llama.cpp tool `name` scripts/baselines.sh builds, where it is.
fn baseline_tool(name: &str) -> Option<PathBuf> {
    let mut builds: Vec<PathBuf> = std::fs::read_dir(crate::bench_peer::bench_cache()?)
        .ok()?
        .flatten()
        .map(|e| e.path().join("bin").join(name))
        .filter(|p| p.is_file())
        .collect();
    builds.sort();
    builds.pop()
}

#[derive(Debug, Args)]
pub struct BenchLoadArgs {
    /// Documents (a file or a folder) to index during the load
    docs: PathBuf,
    /// Seconds of mixed load
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Clients asking questions
    #[arg(long, default_value_t = 4)]
    chat_clients: usize,
    /// Clients searching
    #[arg(long, default_value_t = 2)]
    search_clients: usize,
    /// Clients uploading files
    #[arg(long, default_value_t = 1)]
    upload_clients: usize,
    /// The server's --max-queue
    #[arg(long, default_value_t = 2)]
    max_queue: usize,
    /// Tokens per answer
    #[arg(long, default_value_t = 48)]
    max_tokens: u32,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct BenchIngestArgs {
    /// Files or folders to index
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Also run with extraction and embedding one after the other, for comparison
    #[arg(long)]
    compare_sequential: bool,
    /// Also run the Python peer pipeline (pypdf + llama-cpp-python + lancedb, set
    /// up by scripts/baselines.sh) on the same PDFs, taking turns
    #[arg(long)]
    peer: bool,
    /// Runs of each (medians are compared)
    #[arg(long, default_value_t = 1)]
    runs: usize,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct BenchSearchArgs {
    /// Table sizes to measure, ascending [default: 10000 and 100000]
    #[arg(long = "chunks", value_delimiter = ',')]
    sizes: Vec<usize>,
    /// Queries per measurement
    #[arg(long, default_value_t = 200)]
    queries: usize,
    /// Empty folder for the synthetic table [default: a temporary folder]
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

pub async fn bench(s: Settings, c: BenchCommand) -> Result<ExitCode> {
    match c {
        BenchCommand::Embed(a) => {
            let embedder = s.embedder().await?;
            let mut texts = Vec::new();
            for root in roots_of(&a.paths, None)? {
                let mut files = Vec::new();
                if root.path.is_dir() {
                    crate::indexer::walk_files(&root.path, &mut files);
                } else {
                    files.push(root.path.clone());
                }
                for f in files {
                    let Ok(extracted) = docchat_ingest::extract_file(&f) else {
                        continue;
                    };
                    let drafts = docchat_ingest::chunk_pages(
                        &extracted.pages,
                        embedder.as_ref(),
                        &docchat_ingest::ChunkOptions::default(),
                    );
                    texts.extend(drafts.into_iter().map(|d| d.text));
                }
            }
            texts.truncate(a.chunks);
            if texts.is_empty() {
                bail!("no text to embed in the given paths");
            }
            let tool = if a.docchat_only {
                None
            } else {
                a.llama_embedding
                    .or_else(|| baseline_tool("llama-embedding"))
            };
            let settings = crate::bench_embed::EmbedSettings {
                threads: s.engine.thread_count(),
                batch: s.engine.batch_size,
                ubatch: s.engine.ubatch_size.clamp(1, s.engine.batch_size.max(1)),
                runs: a.runs.max(1),
            };
            let model = s.models.embedding.clone();
            let n = texts.len();
            let report = tokio::task::spawn_blocking(move || {
                crate::bench_embed::run(
                    embedder.as_ref(),
                    tool.as_deref(),
                    &model,
                    &texts,
                    &settings,
                )
            })
            .await??;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!("{}: {n} chunks per run\n", s.models.embedding.display());
                print!("{}", crate::bench_engine::table(&report.figures));
                for r in &report.baseline_runs {
                    println!(
                        "llama-embedding: its batches of these chunks took {:.2} s by its log; its own prompt-eval timer says {:.2} s for all its batches",
                        r.wall_s, r.timer_s
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        BenchCommand::Serve(a) => {
            let tool = a
                .llama_server
                .or_else(|| baseline_tool("llama-server"))
                .context("no llama-server: run scripts/baselines.sh or pass --llama-server")?;
            let settings = crate::bench_serve::ServeSettings {
                model: s.models.chat.clone(),
                embedding: s.models.embedding.clone(),
                threads: s.engine.thread_count(),
                ctx: s.engine.ctx_size,
                batch: s.engine.batch_size,
                ubatch: s.engine.ubatch_size.clamp(1, s.engine.batch_size.max(1)),
                max_tokens: a.max_tokens,
                runs: a.runs.max(1),
            };
            let figures =
                tokio::task::spawn_blocking(move || crate::bench_serve::run(&tool, &settings))
                    .await??;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&figures)?);
            } else {
                println!(
                    "{}: streamed chat requests, {} tokens each\n",
                    s.models.chat.display(),
                    a.max_tokens
                );
                print!("{}", crate::bench_engine::table(&figures));
            }
            Ok(ExitCode::SUCCESS)
        }
        BenchCommand::Engine(a) => {
            let settings = crate::bench_engine::SpeedSettings {
                threads: s.engine.thread_count(),
                batch: s.engine.batch_size,
                ubatch: s.engine.ubatch_size.clamp(1, s.engine.batch_size.max(1)),
                n_prompt: a.prompt,
                n_gen: a.generate,
                runs: a.runs.max(1),
            };
            let tool = if a.docchat_only {
                None
            } else {
                a.llama_bench.or_else(|| baseline_tool("llama-bench"))
            };
            // The engines take turns, one run each, so that a slower minute of a
            // shared machine weighs on both alike.
            let generator = s.generator().await?;
            let (n_prompt, n_gen) = (a.prompt, a.generate);
            let one = crate::bench_engine::SpeedSettings {
                runs: 1,
                ..settings.clone()
            };
            let mut figures = Vec::new();
            if tool.is_none() {
                eprintln!("no llama-bench (run scripts/baselines.sh): docchat alone");
            }
            for run in 1..=settings.runs {
                eprintln!("run {run}/{}", settings.runs);
                let g = Arc::clone(&generator);
                let ours = tokio::task::spawn_blocking(move || {
                    crate::bench_engine::docchat_speed(g.as_ref(), n_prompt, n_gen, 1)
                })
                .await??;
                crate::bench_engine::merge(&mut figures, ours);
                if let Some(tool) = &tool {
                    let theirs = crate::bench_engine::llama_bench(tool, &s.models.chat, &one)?;
                    crate::bench_engine::merge(&mut figures, theirs);
                }
            }
            if a.json {
                println!("{}", serde_json::to_string_pretty(&figures)?);
            } else {
                println!(
                    "{} with {} threads, batch {}/{}\n",
                    s.models.chat.display(),
                    settings.threads,
                    settings.batch,
                    settings.ubatch
                );
                print!("{}", crate::bench_engine::table(&figures));
            }
            Ok(ExitCode::SUCCESS)
        }
        BenchCommand::Load(a) => {
            let opts = crate::load::LoadOptions {
                docs: a.docs,
                duration: std::time::Duration::from_secs(a.seconds),
                chat_clients: a.chat_clients,
                search_clients: a.search_clients,
                upload_clients: a.upload_clients,
                max_queue: a.max_queue,
                max_tokens: a.max_tokens,
                models: s.models.clone(),
            };
            let report = tokio::task::spawn_blocking(move || crate::load::run(&opts)).await??;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", crate::load::table(&report));
            }
            let failed = !report.alive || report.kinds.iter().any(|k| k.errors > 0);
            Ok(if failed {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
        BenchCommand::Ingest(a) => {
            let roots = roots_of(&a.paths, None)?;
            let embedder = s.embedder().await?;
            let python = if a.peer {
                Some(
                    crate::bench_peer::peer_python()
                        .context("no Python peer: run scripts/baselines.sh to set it up")?,
                )
            } else {
                None
            };
            let mut figures = Vec::new();
            let modes: &[bool] = if a.compare_sequential {
                &[false, true]
            } else {
                &[true]
            };
            for _ in 0..a.runs.max(1) {
                for &pipelined in modes {
                    let tmp = tempfile::Builder::new()
                        .prefix("docchat-bench-")
                        .tempdir()?;
                    let f = crate::bench::ingest(
                        tmp.path(),
                        Arc::clone(&embedder),
                        roots.clone(),
                        s.limits()?,
                        pipelined,
                    )
                    .await?;
                    eprintln!("{} run: {:.1} s", f.mode, f.wall_s);
                    figures.push(f);
                }
                if let Some(python) = &python {
                    let tmp = tempfile::Builder::new()
                        .prefix("docchat-bench-peer-")
                        .tempdir()?;
                    let (python, model, paths) =
                        (python.clone(), s.models.embedding.clone(), a.paths.clone());
                    let threads = s.engine.thread_count();
                    let peer = tokio::task::spawn_blocking(move || {
                        crate::bench_peer::run_peer(
                            &python,
                            &model,
                            tmp.path(),
                            threads,
                            "ingest",
                            &paths,
                        )
                    })
                    .await??;
                    let f = crate::bench::IngestFigure::of_peer(&peer);
                    eprintln!("{} run: {:.1} s", f.mode, f.wall_s);
                    figures.push(f);
                }
            }
            if a.json {
                println!("{}", serde_json::to_string_pretty(&figures)?);
            } else {
                print!("{}", crate::bench::ingest_table(&figures));
                print!("{}", crate::bench::ingest_ratios(&figures));
            }
            Ok(ExitCode::SUCCESS)
        }
        BenchCommand::Start(a) => {
            let models = s.models.clone();
            let r = tokio::task::spawn_blocking(move || crate::bench_start::run(a.files, &models))
                .await??;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                print!("{}", crate::bench_start::table(&r));
            }
            Ok(if r.restart_embedded == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        BenchCommand::Ttft(a) => {
            let tool = a
                .llama_bench
                .or_else(|| baseline_tool("llama-bench"))
                .context("no llama-bench: run scripts/baselines.sh, or pass --llama-bench")?;
            let opts = crate::bench_ttft::TtftOptions {
                docs: a.docs,
                questions: a.questions.max(1),
                models: s.models.clone(),
                llama_bench: tool.clone(),
                speed: crate::bench_engine::SpeedSettings {
                    threads: s.engine.thread_count(),
                    batch: s.engine.batch_size,
                    ubatch: s.engine.ubatch_size.clamp(1, s.engine.batch_size.max(1)),
                    n_prompt: 0,
                    n_gen: 0,
                    runs: 1,
                },
            };
            let rows = tokio::task::spawn_blocking(move || crate::bench_ttft::run(&opts)).await??;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                print!("{}", crate::bench_ttft::table(&rows, &tool));
            }
            Ok(ExitCode::SUCCESS)
        }
        BenchCommand::Busy(a) => {
            let opts = crate::bench_busy::BusyOptions {
                doc: a.doc,
                seed: a.seed,
                questions: a.questions.max(1),
                ask_after: std::time::Duration::from_secs(a.ask_after),
                max_tokens: a.max_tokens,
                models: s.models.clone(),
            };
            let r = tokio::task::spawn_blocking(move || crate::bench_busy::run(&opts)).await??;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                print!("{}", crate::bench_busy::table(&r));
            }
            Ok(ExitCode::SUCCESS)
        }
        BenchCommand::Reindex(a) => {
            let embedder = s.embedder().await?;
            let python = if a.docchat_only {
                None
            } else {
                Some(crate::bench_peer::peer_python().context(
                    "no Python peer: run scripts/baselines.sh to set it up (or pass --docchat-only)",
                )?)
            };
            let (edit, figures) = crate::bench_peer::reindex(
                embedder,
                &s.models.embedding,
                s.engine.thread_count(),
                python.as_deref(),
                &a.pdf,
                s.limits()?,
            )
            .await?;
            if a.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(
                        &serde_json::json!({"edit": edit, "runs": figures})
                    )?
                );
            } else {
                print!("{}", crate::bench_peer::reindex_table(&edit, &figures));
            }
            Ok(ExitCode::SUCCESS)
        }
        BenchCommand::Search(a) => {
            let sizes = if a.sizes.is_empty() {
                vec![10_000, 100_000]
            } else {
                a.sizes
            };
            let retriever = s.retriever().await?;
            let tmp;
            let dir = match a.dir {
                Some(d) => d,
                None => {
                    tmp = tempfile::Builder::new()
                        .prefix("docchat-bench-")
                        .tempdir()?;
                    tmp.path().to_path_buf()
                }
            };
            let figures = crate::bench::search(&dir, &retriever, &sizes, a.queries, |m| {
                eprintln!("{m}");
            })
            .await?;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&figures)?);
            } else {
                println!(
                    "{} queries per row; latency of the whole retrieval, query embedding excluded\n",
                    a.queries
                );
                print!("{}", crate::bench::table(&figures));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

#[derive(Debug, Args)]
pub struct CollectionActionArgs {
    /// The collection (a watched folder's name)
    collection: String,
    /// The running server [default: http://HOST:PORT from the configuration,
    /// else http://127.0.0.1:8080]
    #[arg(long, env = "DOCCHAT_SERVER")]
    server: Option<String>,
}

/// Pauses, resumes or cancels the indexing of a collection in the running server.
pub async fn collection_action(
    s: Settings,
    action: &'static str,
    a: CollectionActionArgs,
) -> Result<ExitCode> {
    let base = a.server.unwrap_or_else(|| {
        format!(
            "http://{}:{}",
            s.file.host.as_deref().unwrap_or("127.0.0.1"),
            s.file.port.unwrap_or(8080)
        )
    });
    let path = format!("/api/collections/{}/{action}", url_escape(&a.collection));
    let body = tokio::task::spawn_blocking(move || crate::client::post(&base, &path)).await??;
    let v: serde_json::Value = serde_json::from_str(&body)?;
    let p = &v["progress"];
    println!(
        "{action}: {} ({} files dropped); queue {}, paused: {}",
        a.collection, v["dropped"], p["queued"], p["paused"]
    );
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct ForgetArgs {
    /// The collection whose documents leave the index
    collection: String,
}

/// Removes a collection's documents and chunks from the index (its files are not
/// touched). This is how the index of a folder that is gone for good is dropped:
/// docchat never does it on its own.
pub async fn forget(s: Settings, a: ForgetArgs) -> Result<ExitCode> {
    let embedder = s.embedder().await?;
    let store = s.store(&embedder).await?;
    let docs: Vec<_> = store
        .documents()
        .await?
        .into_iter()
        .filter(|d| d.collection == a.collection)
        .collect();
    if docs.is_empty() {
        bail!("no documents in collection {:?}", a.collection);
    }
    for d in &docs {
        store.delete_document(&d.id).await?;
    }
    println!(
        "forgot {} documents of collection {}",
        docs.len(),
        a.collection
    );
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The chat's id (from `docchat export` or the web UI) [default: list the chats]
    chat_id: Option<String>,
    /// Write the Markdown to this file [default: standard output]
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Writes a chat as Markdown with its citations, or lists the chats.
pub async fn export(s: Settings, a: ExportArgs) -> Result<ExitCode> {
    let chats = ChatStore::open(&s.index_dir()).await?;
    let Some(id) = a.chat_id else {
        let all = chats.chats().await?;
        if all.is_empty() {
            println!("no chats yet");
        }
        for c in all {
            println!("{}  {}", c.id, c.title);
        }
        return Ok(ExitCode::SUCCESS);
    };
    let chat = chats
        .chat(&id)
        .await?
        .with_context(|| format!("no chat {id:?} (docchat export lists them)"))?;
    let md = crate::history::markdown(&chat, &chats.messages(&id).await?);
    match a.out {
        Some(path) => {
            std::fs::write(&path, md)
                .with_context(|| format!("cannot write {}", path.display()))?;
            println!("wrote {}", path.display());
        }
        None => print!("{md}"),
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct CollectionsArgs {
    /// The watch-dirs file [default: docchat.toml's watch_dirs]
    #[arg(long, global = true, env = "DOCCHAT_WATCH_DIRS")]
    watch_dirs: Option<PathBuf>,
    /// A running server to change at once (it updates its watch-dirs file too),
    /// e.g. http://127.0.0.1:8080
    #[arg(long, global = true, env = "DOCCHAT_SERVER")]
    server: Option<String>,
    #[command(subcommand)]
    command: CollectionsCommand,
}

#[derive(Debug, Subcommand)]
pub enum CollectionsCommand {
    /// Each watched folder with its documents (indexed, failed, pending), and
    /// collections of the index that no folder feeds any more.
    List {
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Watch a folder as a new collection (the server indexes it at its next start).
    Add {
        /// The folder
        path: PathBuf,
        /// Collection name [default: the folder's name]
        #[arg(long)]
        name: Option<String>,
    },
    /// Stop watching a collection's folder; its documents stay searchable until
    /// `docchat forget NAME` (or `--forget`).
    Remove {
        /// The collection
        name: String,
        /// Also remove its documents from the index
        #[arg(long)]
        forget: bool,
    },
}

pub async fn collections(s: Settings, a: CollectionsArgs) -> Result<ExitCode> {
    if let Some(base) = a.server {
        return collections_on_server(base, a.command).await;
    }
    let Some(file) = a.watch_dirs.or_else(|| s.file.watch_dirs.clone()) else {
        bail!("no watch-dirs file: pass --watch-dirs FILE (or set watch_dirs in docchat.toml)");
    };
    let text = match std::fs::read_to_string(&file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", file.display())),
    };
    let base = file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), std::path::Path::to_path_buf);
    let base = std::fs::canonicalize(&base).unwrap_or(base);
    match a.command {
        CollectionsCommand::Add { path, name } => {
            let path = config::check_folder(&path)?;
            let collection = name.unwrap_or_else(|| {
                path.file_name()
                    .map_or_else(|| "documents".into(), |n| n.to_string_lossy().into_owned())
            });
            let root = WatchRoot { path, collection };
            let updated = config::add_watch_line(&text, &base, &root)?;
            std::fs::write(&file, updated)
                .with_context(|| format!("cannot write {}", file.display()))?;
            println!(
                "watching {} as {:?} (in {}); the server indexes it at its next start",
                root.path.display(),
                root.collection,
                file.display()
            );
        }
        CollectionsCommand::Remove { name, forget } => {
            let (updated, removed) = config::remove_watch_lines(&text, &base, &name)?;
            if removed == 0 {
                bail!("no collection {name:?} in {}", file.display());
            }
            std::fs::write(&file, updated)
                .with_context(|| format!("cannot write {}", file.display()))?;
            if forget {
                let store = s.store(&s.embedder().await?).await?;
                let docs: Vec<_> = store
                    .documents()
                    .await?
                    .into_iter()
                    .filter(|d| d.collection == name)
                    .collect();
                for d in &docs {
                    store.delete_document(&d.id).await?;
                }
                println!(
                    "stopped watching {name:?} and removed its {} documents",
                    docs.len()
                );
            } else {
                println!(
                    "stopped watching {name:?}; its documents stay searchable until `docchat forget {name}`"
                );
            }
        }
        CollectionsCommand::List { json } => {
            let roots = config::parse_watch_dirs(&text, &base)?;
            let store = s.store(&s.embedder().await?).await?;
            let rows = crate::folders::collection_rows(&roots, &store.documents().await?, &[]);
            print_collections(&rows, json)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `collections` against a running server: the change applies at once.
async fn collections_on_server(base: String, c: CollectionsCommand) -> Result<ExitCode> {
    let call = move |method: &'static str, path: String, body: Option<String>| {
        let base = base.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                crate::client::request(&base, method, &path, body.as_deref())
            })
            .await?
        }
    };
    match c {
        CollectionsCommand::Add { path, name } => {
            let path = std::fs::canonicalize(&path)
                .with_context(|| format!("{} does not exist", path.display()))?;
            let body = serde_json::json!({ "path": path, "name": name }).to_string();
            let out: serde_json::Value =
                serde_json::from_str(&call("POST", "/api/collections".into(), Some(body)).await?)?;
            println!(
                "watching {} as {} in the running server; its files are being indexed",
                out["path"], out["name"]
            );
        }
        CollectionsCommand::Remove { name, forget } => {
            let path = format!(
                "/api/collections/{}{}",
                url_escape(&name),
                if forget { "?forget=true" } else { "" }
            );
            let out: serde_json::Value = serde_json::from_str(&call("DELETE", path, None).await?)?;
            println!(
                "stopped watching {name:?} in the running server ({} documents removed)",
                out["forgotten"]
            );
        }
        CollectionsCommand::List { json } => {
            let out: serde_json::Value =
                serde_json::from_str(&call("GET", "/api/collections".into(), None).await?)?;
            let rows = out["collections"].as_array().cloned().unwrap_or_default();
            print_collections(&rows, json)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Collection rows as JSON, or one line each.
fn print_collections(rows: &[serde_json::Value], json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(rows)?);
        return Ok(());
    }
    for r in rows {
        let place = match r["path"].as_str() {
            Some(p) if r["folder_exists"] == true => p.to_string(),
            Some(p) => format!("{p} (folder missing)"),
            None => "not watched; `docchat forget` drops it".to_string(),
        };
        println!(
            "{:<24} {:>5} indexed {:>4} failed {:>4} pending  {place}{}",
            r["name"].as_str().unwrap_or(""),
            r["indexed"],
            r["failed"],
            r["pending"],
            if r["paused"] == true {
                "  (paused)"
            } else {
                ""
            }
        );
    }
    Ok(())
}

/// Percent-encodes a path segment.
fn url_escape(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print JSON
    #[arg(long)]
    json: bool,
}

pub async fn status(s: Settings, a: StatusArgs) -> Result<ExitCode> {
    let embedder = s.embedder().await?;
    let store = s.store(&embedder).await?;
    let docs = store.documents().await?;
    if a.json {
        let integrity = store.integrity().await?;
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({ "documents": docs, "integrity": integrity })
            )?
        );
        return Ok(ExitCode::SUCCESS);
    }
    let count = |st: DocState| docs.iter().filter(|d| d.state == st).count();
    println!(
        "{} documents: {} indexed, {} failed, {} pending; {} chunks",
        docs.len(),
        count(DocState::Indexed),
        count(DocState::Failed),
        count(DocState::Pending),
        store.count_chunks(None).await?
    );
    for d in &docs {
        let state = d.state.as_str();
        match d.state {
            DocState::Failed => println!(
                "  {state:<8} {}/{}: {}",
                d.collection,
                d.path,
                d.error.as_deref().unwrap_or("")
            ),
            _ => println!(
                "  {state:<8} {}/{}  ({} pages, {} chunks)",
                d.collection, d.path, d.pages, d.chunks
            ),
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// List the GGUF models docchat knows (the models folder and the configured
    /// paths), from their metadata; `--catalog` lists the catalog of well-known models.
    List {
        /// List the catalog of well-known models instead, with the memory each needs
        #[arg(long)]
        catalog: bool,
        /// Context size for the memory column [default: the configured context size]
        #[arg(long)]
        ctx: Option<u64>,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Memory a model needs (weights, KV cache at the context, compute buffers)
    /// against this machine's memory: fits, tight or will not fit, and the largest
    /// context that fits.
    Info {
        /// A GGUF path, a file in the models folder, or a catalog name
        model: String,
        /// Context size in tokens [default: the configured context size]
        #[arg(long)]
        ctx: Option<u64>,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Download a model from the catalog (`docchat models list --catalog`) or by
    /// `OWNER/REPO/FILE.gguf`: resumable, sha256-verified, into the models folder.
    Pull {
        /// A catalog name, or OWNER/REPO/FILE.gguf
        model: String,
        /// Where files are served from [default: https://huggingface.co]
        #[arg(long, env = "DOCCHAT_MODELS_ENDPOINT")]
        endpoint: Option<String>,
        /// The expected sha256 (needed for files the catalog has no checksum for)
        #[arg(long)]
        sha256: Option<String>,
        /// Accept a file without a known checksum (its sha256 is printed)
        #[arg(long, conflicts_with = "sha256")]
        no_verify: bool,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Use a model from now on: writes `chat_model` or `embedding_model` (by the
    /// model's kind) into the configuration file.
    Use {
        /// A GGUF path, a file in the models folder, or a catalog name
        model: String,
    },
    /// Convert a BERT-family sentence-transformers checkpoint to a GGUF embedding model.
    Import {
        /// Folder with config.json, model.safetensors and vocab.txt / tokenizer.json
        dir: PathBuf,
        /// Output file [default: the default embedding model path]
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

pub async fn models(s: Settings, c: ModelsCommand) -> Result<ExitCode> {
    match c {
        ModelsCommand::Import { dir, out } => {
            let out = out.unwrap_or_else(|| s.models.embedding.clone());
            let target = out.clone();
            let summary = tokio::task::spawn_blocking(move || {
                docchat_llm::import::import_sentence_transformer(&dir, &target)
            })
            .await??;
            println!(
                "wrote {} ({} tensors, {} tokens, {} dimensions, {} pooling)",
                out.display(),
                summary.tensors,
                summary.vocab,
                summary.dim,
                summary.pooling
            );
        }
        ModelsCommand::List { catalog, ctx, json } => {
            let ctx = ctx.unwrap_or(u64::from(s.engine.ctx_size));
            let rows = if catalog {
                models::catalog_rows(ctx)?
            } else {
                models::known_models(&s.models)
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                print!("{}", models::table(&rows, ctx));
            }
        }
        ModelsCommand::Info { model, ctx, json } => {
            let ctx = ctx.unwrap_or(u64::from(s.engine.ctx_size));
            let report = models::info(&s.models, &model, ctx)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", report.render());
            }
        }
        ModelsCommand::Pull {
            model,
            endpoint,
            sha256,
            no_verify,
            json,
        } => {
            let endpoint = endpoint
                .or_else(|| s.file.models_endpoint.clone())
                .unwrap_or_else(|| crate::pull::DEFAULT_ENDPOINT.to_string());
            let download =
                models::download_for(&s.models.dir, &endpoint, &model, sha256, no_verify)?;
            let pulled = crate::pull::pull(&download, !json).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&pulled)?);
            } else if pulled.already_present {
                println!(
                    "{} is already here (sha256 {})",
                    pulled.path.display(),
                    pulled.sha256
                );
            } else {
                println!(
                    "downloaded {} ({} bytes{}), sha256 {}{}",
                    pulled.path.display(),
                    pulled.bytes,
                    if pulled.resumed_from > 0 {
                        format!(", resumed at {}", pulled.resumed_from)
                    } else {
                        String::new()
                    },
                    pulled.sha256,
                    if download.sha256.is_some() {
                        " (verified)"
                    } else {
                        " (not verified)"
                    }
                );
            }
        }
        ModelsCommand::Use { model } => {
            let path = models::resolve_model_path(&s.models.dir, &model)?;
            let meta = docchat_llm::meta::read_info(&path)?;
            let key = if meta.embedding {
                "embedding_model"
            } else {
                "chat_model"
            };
            let config = s.config_path();
            let text = match std::fs::read_to_string(&config) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
                Err(e) => {
                    return Err(e).with_context(|| format!("cannot read {}", config.display()));
                }
            };
            let updated = config::set_top_level_key(&text, key, &path.display().to_string());
            toml::from_str::<FileConfig>(&updated)
                .with_context(|| format!("{} would not be valid", config.display()))?;
            std::fs::write(&config, updated)
                .with_context(|| format!("cannot write {}", config.display()))?;
            println!(
                "{key} = {} in {}{}",
                path.display(),
                config.display(),
                if meta.embedding {
                    "\nat the next start the indexed text is re-embedded with it in the background, \
                     nothing extracted again; the current index answers until then"
                } else {
                    ""
                }
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

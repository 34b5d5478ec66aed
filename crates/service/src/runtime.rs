//! A running docchat: the models, the index in use with its indexer and file
//! watcher, the chat history, and, when the embedding model changed since the last
//! run, the switch that re-embeds the index while the old one serves.

use crate::answer::rag::Rag;
use crate::answer::retrieve::Retriever;
use crate::config::WatchRoot;
use crate::index::Indexer;
use crate::index::folders::Folders;
use crate::index::isolate::ExtractLimits;
use crate::index::switch::{self, ActiveIndex, Plan, SwitchProgress, SwitchStatus};
use crate::models::{self, ModelPaths};
use crate::settings::Settings;
use anyhow::Result;
use docchat_core::{Embedder, Generator};
use docchat_store::{ChatStore, Lease, Store};
use std::path::PathBuf;
use std::sync::{Arc, PoisonError, RwLock};

/// The index in use and what works on it; replaced as a whole when a switch of
/// the embedding model completes.
#[derive(Clone)]
pub struct Live {
    /// Retrieval and generation.
    pub rag: Rag,
    /// The indexer (status, queue).
    pub indexer: Arc<Indexer>,
}

/// The live index, shared by the handlers, the file watcher and a switch.
pub type LiveSlot = Arc<RwLock<Live>>;

/// What [`Runtime::start`] started.
pub struct Runtime {
    /// The index in use.
    pub live: LiveSlot,
    /// A switch of the embedding model, while one runs (and its outcome).
    pub switch: SwitchProgress,
    /// The watched folders, changed while running.
    pub folders: Arc<Folders>,
    /// Chat history.
    pub chats: ChatStore,
    /// The writer's lease of a shared store (released on a clean stop).
    pub lease: Option<Arc<Lease>>,
    /// Whether this process only serves questions from a shared store.
    pub reader: bool,
}

/// A switch to run: the index that serves meanwhile, the one to fill, and its store.
type Pending = (ActiveIndex, ActiveIndex, Store);

impl Runtime {
    /// Loads the models, opens the index in use, starts its indexer (with a scan of
    /// `roots`) and the file watcher, and the switch of the embedding model if one
    /// is due. `watch_file` is where changes to the folders are written.
    pub async fn start(
        s: &Settings,
        roots: Vec<WatchRoot>,
        watch_file: Option<PathBuf>,
    ) -> Result<Self> {
        let embedder = s.embedder().await?;
        let generator = s.generator().await?;
        let (store, serving, pending, lease) = if s.store.is_some() {
            // A shared store: one index per embedding model, no switch in place;
            // written only under the lease.
            let (store, lease) = s.writable_store(&embedder).await?;
            (store, Arc::clone(&embedder), None, lease)
        } else {
            let (store, serving, pending) = open_serving(s, &embedder).await?;
            (store, serving, pending, None)
        };
        s.check_embedder(&store, &serving).await?;
        let limits = s.limits()?;
        let indexer = Indexer::new(store.clone(), Arc::clone(&serving), roots, limits.clone());
        tokio::spawn(Arc::clone(&indexer).run());
        let live: LiveSlot = Arc::new(RwLock::new(Live {
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
        let watcher = crate::index::watch::start(&indexer, move || {
            Arc::clone(
                &watch_live
                    .read()
                    .unwrap_or_else(PoisonError::into_inner)
                    .indexer,
            )
        })?;
        tokio::spawn(async move {
            if let Err(e) = indexer.reconcile().await {
                tracing::error!(error = format!("{e:#}"), "startup scan failed");
            }
        });
        let progress: SwitchProgress = Arc::default();
        if let Some((from, to, target)) = pending {
            let job = SwitchJob {
                data_dir: s.data_dir.clone(),
                live: Arc::clone(&live),
                progress: Arc::clone(&progress),
                embedder,
                generator,
                limits,
            };
            tokio::spawn(job.run(from, to, target));
        }
        Ok(Self {
            live,
            switch: progress,
            folders: Arc::new(Folders::new(watcher, watch_file)),
            chats: s.chats().await?,
            lease,
            reader: false,
        })
    }

    /// A reader of the shared store: the models and the index the writer keeps,
    /// read at most the configured refresh behind it; no watcher, no indexing, no
    /// writes but the chats.
    pub async fn reader(s: &Settings) -> Result<Self> {
        anyhow::ensure!(
            s.store.is_some(),
            "--role reader serves questions from a shared store: set --store (s3://bucket/prefix or a folder)"
        );
        let embedder = s.embedder().await?;
        let generator = s.generator().await?;
        let store = s.read_shared(&embedder).await?;
        s.check_embedder(&store, &embedder).await?;
        tracing::info!(store = %s.store.as_ref().map(ToString::to_string).unwrap_or_default(),
            refresh_ms = s.store_refresh.as_millis() as u64, "serving questions from the shared store");
        // An indexer that never runs: the status and the documents list read the
        // store through it.
        let indexer = Indexer::new(
            store.clone(),
            Arc::clone(&embedder),
            Vec::new(),
            s.limits()?,
        );
        let live: LiveSlot = Arc::new(RwLock::new(Live {
            rag: Rag {
                retriever: Retriever { store, embedder },
                generator,
            },
            indexer,
        }));
        Ok(Self {
            live,
            switch: Arc::default(),
            folders: Arc::new(Folders::none()),
            chats: s.chats().await?,
            lease: None,
            reader: true,
        })
    }
}

/// The index that serves now, the embedder of its vectors, and the switch to run.
async fn open_serving(
    s: &Settings,
    embedder: &Arc<dyn Embedder>,
) -> Result<(Store, Arc<dyn Embedder>, Option<Pending>)> {
    let plan = switch::plan(
        &s.data_dir,
        &s.models.dir,
        embedder.id(),
        &s.models.embedding,
    )
    .await?;
    let (from, to) = match plan {
        Plan::Current(a) => {
            let store = s.open_index(&a.dir, embedder.dim()).await?;
            return Ok((store, Arc::clone(embedder), None));
        }
        Plan::Switch { from, to } => (from, to),
    };
    let (path, opts) = (from.model.clone(), s.engine.clone());
    let paths = ModelPaths {
        embedding: path.clone(),
        ..s.models.clone()
    };
    match tokio::task::spawn_blocking(move || models::load_embedder(&paths, &opts)).await? {
        Ok(old) => {
            tracing::info!(from = %from.embedder, to = %to.embedder,
                "switching the embedding model: the old index serves while the text is re-embedded");
            let store = s.open_index(&from.dir, old.dim()).await?;
            let target = s.open_index(&to.dir, embedder.dim()).await?;
            Ok((store, old, Some((from, to, target))))
        }
        Err(e) => {
            tracing::warn!(model = %path.display(), error = format!("{e:#}"),
                "the previous embedding model cannot be loaded: indexing the files again with the new one");
            switch::write_active(&s.data_dir, &to)?;
            let store = s.open_index(&to.dir, embedder.dim()).await?;
            Ok((store, Arc::clone(embedder), None))
        }
    }
}

/// A switch of the embedding model in a running server.
struct SwitchJob {
    data_dir: PathBuf,
    live: LiveSlot,
    progress: SwitchProgress,
    embedder: Arc<dyn Embedder>,
    generator: Arc<dyn Generator>,
    limits: ExtractLimits,
}

impl SwitchJob {
    /// Re-embeds the old index's text into `target`, then makes it the index in use;
    /// on failure the old index keeps serving and the status says why.
    async fn run(self, from: ActiveIndex, to: ActiveIndex, target: Store) {
        self.status(&from, &to, "re-embedding", None);
        match self.switch(&to, target).await {
            Ok(()) => {}
            Err(e) => {
                tracing::error!(
                    error = format!("{e:#}"),
                    "the embedding model switch failed; the previous index keeps serving"
                );
                self.status(&from, &to, "failed", Some(format!("{e:#}")));
            }
        }
    }

    fn status(&self, from: &ActiveIndex, to: &ActiveIndex, state: &str, error: Option<String>) {
        let mut p = self.progress.lock().unwrap_or_else(PoisonError::into_inner);
        let s = p.get_or_insert_with(|| SwitchStatus {
            from: from.embedder.clone(),
            to: to.embedder.clone(),
            ..Default::default()
        });
        s.state = state.to_string();
        s.error = error;
    }

    fn current(&self) -> Live {
        self.live
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Re-embeds (again until a pass finds nothing changed while the old indexer is
    /// idle), then: pointer file first, then the live index, then a scan of the
    /// folders.
    async fn switch(&self, to: &ActiveIndex, target: Store) -> Result<()> {
        loop {
            let old = self.current();
            old.indexer.wait_idle().await;
            let n = switch::reembed(
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
        switch::write_active(&self.data_dir, to)?;
        // The folders watched now (some may have been added meanwhile).
        let roots = self.current().indexer.roots();
        let indexer = Indexer::new(
            target.clone(),
            Arc::clone(&self.embedder),
            roots,
            self.limits.clone(),
        );
        tokio::spawn(Arc::clone(&indexer).run());
        {
            // The switch is done the moment the new index serves: marked under the
            // same lock, so a status never shows one without the other.
            let mut live = self.live.write().unwrap_or_else(PoisonError::into_inner);
            *live = Live {
                rag: Rag {
                    retriever: Retriever {
                        store: target,
                        embedder: Arc::clone(&self.embedder),
                    },
                    generator: Arc::clone(&self.generator),
                },
                indexer: Arc::clone(&indexer),
            };
            let mut p = self.progress.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(s) = p.as_mut() {
                s.state = "done".to_string();
                s.error = None;
            }
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
}

//! What the handlers share, made once from the started service.

use docchat_service::admission::Admission;
use docchat_service::answer::rag::AskOptions;
use docchat_service::index::switch::{SwitchProgress, SwitchStatus};
use docchat_service::{Live, LiveSlot, Runtime, Settings};
use docchat_store::ChatStore;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Searches that may run at once; more are refused (503) until one ends.
pub const MAX_SEARCHES: usize = 8;
/// Open `/api/events` streams (a browser tab keeps one); more are refused.
pub const MAX_EVENT_STREAMS: usize = 32;
/// Uploads that may be received at once (each holds its body in memory).
pub const MAX_UPLOADS: usize = 4;

/// A bound on requests of one kind that run at once.
#[derive(Debug, Clone)]
pub struct Bound {
    what: &'static str,
    limit: usize,
    slots: Arc<Semaphore>,
}

impl Bound {
    /// At most `n` at once; `what` names them in the refusal.
    pub fn new(what: &'static str, n: usize) -> Self {
        Self {
            what,
            limit: n,
            slots: Arc::new(Semaphore::new(n)),
        }
    }

    /// Places taken now.
    pub fn in_use(&self) -> usize {
        self.limit - self.slots.available_permits()
    }

    /// A place, held until dropped; `Crowded` when all are taken.
    pub fn enter(&self) -> Result<OwnedSemaphorePermit, crate::ApiError> {
        Arc::clone(&self.slots).try_acquire_owned().map_err(|_| {
            crate::ApiError::Crowded(format!("too many {} at once; retry in a moment", self.what))
        })
    }
}

/// The server's own bounds.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Requests that may wait for the chat model (and, apart, for the embedding
    /// model) while one runs; past that, 503 with Retry-After.
    pub queue: usize,
    /// Largest accepted upload, in bytes.
    pub max_upload_bytes: usize,
}

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The index in use.
    pub live: LiveSlot,
    /// A switch of the embedding model, while one runs (and its outcome).
    pub switch: SwitchProgress,
    /// Question defaults (from the configuration).
    pub ask_defaults: AskOptions,
    /// Places in line for the chat model.
    pub chat_slots: Arc<Admission>,
    /// Places in line for the embedding model (API requests).
    pub embed_slots: Arc<Admission>,
    /// When the server started (Unix seconds).
    pub started_unix: u64,
    /// Chat history.
    pub chats: ChatStore,
    /// The watched folders, changed while running.
    pub folders: Arc<docchat_service::index::folders::Folders>,
    /// Largest accepted upload, in bytes.
    pub max_upload_bytes: usize,
    /// The model files (for the model picker).
    pub models: docchat_service::models::ModelPaths,
    /// The chat model's context size as configured.
    pub ctx_size: u64,
    /// Engine options models are loaded with.
    pub engine: docchat_llm::EngineOptions,
    /// The last CPU reading (for the resources view).
    pub cpu: Arc<std::sync::Mutex<Option<(std::time::Instant, u64)>>>,
    /// Searches running.
    pub searches: Bound,
    /// `/api/events` streams open.
    pub event_streams: Bound,
    /// Uploads being received.
    pub uploads: Bound,
    /// The only parents of folders the API may add (and never a hidden or a
    /// system folder, nor one inside the data folder).
    pub allowed_folders: Vec<PathBuf>,
    /// The data folder.
    pub data_dir: PathBuf,
    /// Whether this server only answers from a shared store (`--role reader`).
    pub reader: bool,
    /// The shared store, as shown (`s3://bucket/prefix`, without its options).
    pub store: Option<String>,
}

impl AppState {
    /// The state of a server over `runtime`, started with `settings`.
    pub fn new(runtime: Runtime, settings: &Settings, limits: Limits) -> Self {
        let chat_slots =
            Admission::with_priority(limits.queue, Some(Arc::clone(&settings.engine.priority)));
        let mut ask_defaults = settings.ask_options();
        // A whole-document reading lets the other questions go first.
        let slots = Arc::clone(&chat_slots);
        ask_defaults.read.waiting =
            docchat_service::answer::read::Waiting::new(move || slots.in_flight());
        Self {
            live: runtime.live,
            switch: runtime.switch,
            ask_defaults,
            chats: runtime.chats,
            folders: runtime.folders,
            max_upload_bytes: limits.max_upload_bytes,
            models: settings.models.clone(),
            ctx_size: u64::from(settings.engine.ctx_size),
            engine: settings.engine.clone(),
            cpu: Arc::default(),
            searches: Bound::new("searches", MAX_SEARCHES),
            event_streams: Bound::new("open event streams", MAX_EVENT_STREAMS),
            uploads: Bound::new("uploads", MAX_UPLOADS),
            allowed_folders: settings.allowed_folders(),
            data_dir: settings.data_dir.clone(),
            reader: runtime.reader,
            store: settings.store.as_ref().map(ToString::to_string),
            chat_slots,
            embed_slots: Admission::new(limits.queue),
            started_unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        }
    }

    /// The index in use now.
    pub fn live(&self) -> Live {
        self.live
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The live index together with the embedding switch's progress, read under
    /// the live slot's lock: the switch marks itself done under that lock when it
    /// swaps the index, so the two always agree.
    pub fn live_and_switch(&self) -> (Live, Option<SwitchStatus>) {
        let live = self
            .live
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let switch = self
            .switch
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        (live.clone(), switch)
    }
}

//! Keeps the index in step with the watched folders: a startup reconcile scan plus
//! file-system events feed a per-path, debounced queue; one worker extracts (in a
//! child process), chunks, embeds what changed and writes each document in one go,
//! or a long new one in parts of [`PART_CHUNKS`] chunks.
//!
//! Order of writes for crash safety: the manifest row goes to `pending` first, then
//! the chunks are replaced (or appended part by part), then the row becomes
//! `indexed` (or `failed`). A crash leaves a `pending` row, which the next start
//! redoes, reusing the vectors of the chunks already written; a crash while
//! deleting leaves orphan chunks, which the worker removes when it starts, before it
//! writes anything (never later: new documents are written chunks first, and their
//! chunks would look orphaned until their rows follow).
//!
//! Every write of a document holds [`Indexer::writing`] and first checks that its
//! collection is still watched, so a folder removed or forgotten meanwhile gets
//! nothing written after it is gone.

mod files;
pub mod folders;
pub mod isolate;
mod prepare;
pub mod progress;
pub mod switch;
pub mod watch;
mod write;

use files::relative;
pub use files::{inside_root, is_ignored, walk_files};

use crate::clock::now_ms;
use crate::config::WatchRoot;
use crate::disk::describe_write_error;
use crate::index::isolate::ExtractLimits;
use anyhow::{Context, Result};
use docchat_core::{ChunkDraft, Embedder, FileKind, document_id};
use docchat_ingest::{ChunkOptions, chunk_pages};
use docchat_store::{ChunkRecord, DocState, DocumentRecord, Store};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, UNIX_EPOCH};
use tokio::sync::Notify;

use progress::{Change, DocumentEvent, IndexEvent, Progress, Tracker};

/// Texts per embedding call: the embedding model serves one call at a time, so a
/// question's embedding waits for at most one of these (under a second on 2
/// cores); the model batches tokens internally either way.
const EMBED_BATCH: usize = 16;
/// Extracted documents that may wait for the writing task, and the most it
/// writes in one go.
const WRITE_BATCH: usize = 8;
/// Chunks after which the new documents gathered by the writing task are written
/// without waiting for the rest of its batch.
const FLUSH_CHUNKS: usize = 64;
/// Chunks of a new document embedded and written at a time once it has more than
/// this: a long document's chunks, vectors and write buffers are never all in
/// memory at once, and its first parts are searchable while the rest is embedded.
const PART_CHUNKS: usize = 256;
/// Documents written between compactions during a long run.
const COMPACT_EVERY: u64 = 40;
/// A file modified less than this long ago may still be being written.
const SETTLE_MS: i64 = 1_000;

/// Work done since the process started.
#[derive(Debug, Default)]
pub struct Stats {
    /// Chunks sent to the embedding model.
    pub chunks_embedded: AtomicU64,
    /// Documents run through an extractor.
    pub documents_extracted: AtomicU64,
    /// Documents renamed or moved without extracting or embedding.
    pub documents_moved: AtomicU64,
    /// Time spent in embedding calls, µs.
    pub embed_us: AtomicU64,
    /// Time spent extracting (child processes included), µs.
    pub extract_us: AtomicU64,
    /// Pages of documents indexed.
    pub pages_indexed: AtomicU64,
}

/// A document extracted and chunked, waiting for its embeddings.
struct Work {
    root: WatchRoot,
    rel: String,
    id: String,
    doc: DocumentRecord,
    /// The extraction's metadata (its pages are dropped once chunked).
    extracted: docchat_core::Extracted,
    pages: u32,
    drafts: Vec<ChunkDraft>,
    started: Instant,
    extract_ms: u64,
}

/// A document embedded, ready to be written.
struct Embedded {
    doc: DocumentRecord,
    records: Vec<ChunkRecord>,
    /// Whether the document has a manifest row (and maybe chunks) already.
    stored: bool,
}

/// What [`Indexer::prepare`] left to do.
enum Step {
    /// Nothing: the path is handled.
    Done,
    /// The path went back to the queue.
    Requeued,
    /// Embed and write.
    Embed(Box<Work>),
    /// Record the failure (written by the same task as the embedded documents,
    /// so the manifest writes of one document never race).
    Fail(Box<DocumentRecord>, String),
}

/// The indexer of one data directory.
pub struct Indexer {
    store: Store,
    embedder: Arc<dyn Embedder>,
    roots: std::sync::RwLock<Vec<WatchRoot>>,
    limits: ExtractLimits,
    chunking: ChunkOptions,
    debounce: Duration,
    queue: Mutex<HashMap<PathBuf, Instant>>,
    wake: Notify,
    idle: Notify,
    in_flight: AtomicUsize,
    reconciled: AtomicBool,
    /// Chunks were written since the search indexes were last optimized.
    dirty: AtomicBool,
    /// Gone paths whose removal waits for the rest of the queue: a file renamed or
    /// moved shows up as a new path, and that one is processed first, so the
    /// document moves instead of being removed and indexed again.
    deferred: Mutex<HashSet<PathBuf>>,
    /// Documents written (for compaction during long runs).
    writes: AtomicU64,
    /// Extract the next file while the current one is embedded.
    pipeline: AtomicBool,
    /// Collections whose queued files wait.
    paused: Mutex<HashSet<String>>,
    /// PDFs with pages to read by OCR: they wait, as images do, until no file
    /// with text is ready.
    ocr_wait: Mutex<HashSet<PathBuf>>,
    /// Progress and per-document events.
    pub events: Tracker,
    /// Work counters.
    pub stats: Stats,
    /// Paths whose writes failed for docchat's own reasons (a full disk, a
    /// read-only data folder), with the tries so far: they are tried again.
    retries: Mutex<HashMap<PathBuf, u32>>,
    /// The last such failure, while any path waits for a retry.
    write_error: Mutex<Option<WriteError>>,
    /// Held by every write of a document and by [`Indexer::forget`].
    writing: tokio::sync::Mutex<()>,
    /// Paths to look at again at a later time, not counted as queued: documents
    /// whose reading failed for a reason that may pass, files and folders that
    /// could not be reached.
    later: Mutex<HashMap<PathBuf, Instant>>,
    /// Tries so far of documents whose reading keeps failing for such a reason.
    read_tries: Mutex<HashMap<PathBuf, u32>>,
    /// Files and folders that cannot be reached right now.
    unreachable: Mutex<std::collections::BTreeMap<PathBuf, Unavailable>>,
}

/// A file or folder docchat cannot reach right now (a folder it may not read, a
/// share that is offline): its documents are kept, and it is looked at again.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Unavailable {
    /// The path.
    pub path: String,
    /// Why, as the system said.
    pub reason: String,
    /// Since when (ms since the epoch).
    pub since_ms: i64,
}

/// A file with text due within this long goes before a file read by OCR that is
/// due now.
const OCR_YIELD: Duration = Duration::from_secs(10);

/// How long an unreachable file or folder waits before it is looked at again.
const RECHECK: Duration = Duration::from_secs(30);
/// Tries of a document whose reading keeps failing for a reason that may pass,
/// before it waits for its next change or the next start.
const MAX_READ_TRIES: u32 = 5;

/// Wait before try `n` (1-based) of such a document: a minute, doubling.
fn read_retry_wait(n: u32) -> Duration {
    Duration::from_secs(60 << n.saturating_sub(1).min(6))
}

/// A failure to write the index that is not the document's fault.
#[derive(Debug, Clone, serde::Serialize)]
pub struct WriteError {
    /// What went wrong, for the user.
    pub message: String,
    /// Documents waiting to be tried again.
    pub waiting: usize,
    /// When it last happened (ms since the epoch).
    pub at_ms: i64,
}

/// Tries of a path whose write keeps failing before it waits for the next scan.
const MAX_WRITE_TRIES: u32 = 30;

/// Wait before try `n` (1-based) of a failed write: 2 s doubling to a minute.
fn retry_wait(n: u32) -> Duration {
    Duration::from_secs((2u64 << n.saturating_sub(1).min(5)).min(60))
}

impl Indexer {
    /// A new indexer over `roots`.
    pub fn new(
        store: Store,
        embedder: Arc<dyn Embedder>,
        roots: Vec<WatchRoot>,
        limits: ExtractLimits,
    ) -> Arc<Self> {
        Arc::new(Self {
            store,
            embedder,
            roots: std::sync::RwLock::new(roots),
            limits,
            chunking: ChunkOptions::default(),
            debounce: Duration::from_millis(750),
            queue: Mutex::new(HashMap::new()),
            wake: Notify::new(),
            idle: Notify::new(),
            in_flight: AtomicUsize::new(0),
            reconciled: AtomicBool::new(false),
            dirty: AtomicBool::new(false),
            deferred: Mutex::new(HashSet::new()),
            pipeline: AtomicBool::new(true),
            writes: AtomicU64::new(0),
            paused: Mutex::new(HashSet::new()),
            ocr_wait: Mutex::new(HashSet::new()),
            events: Tracker::default(),
            stats: Stats::default(),
            retries: Mutex::new(HashMap::new()),
            write_error: Mutex::new(None),
            writing: tokio::sync::Mutex::new(()),
            later: Mutex::new(HashMap::new()),
            read_tries: Mutex::new(HashMap::new()),
            unreachable: Mutex::new(std::collections::BTreeMap::new()),
        })
    }

    /// Files and folders that cannot be reached right now, by path.
    pub fn unavailable(&self) -> Vec<Unavailable> {
        self.unreachable
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }

    /// Records that `path` cannot be reached (its documents stay) and looks at it
    /// again after [`RECHECK`].
    fn mark_unreachable(&self, path: &Path, reason: String) {
        let fresh = self
            .unreachable
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(
                path.to_path_buf(),
                Unavailable {
                    path: path.display().to_string(),
                    reason: reason.clone(),
                    since_ms: now_ms(),
                },
            )
            .is_none();
        if fresh {
            tracing::warn!(path = %path.display(), reason, "cannot be reached; its documents are kept and it is looked at again");
        }
        self.look_again(path, Instant::now() + RECHECK);
    }

    /// `path` can be reached: it, and the folders above it, are no longer marked.
    fn reachable(&self, path: &Path) {
        let mut u = self
            .unreachable
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !u.is_empty() {
            u.retain(|p, _| !path.starts_with(p));
        }
    }

    /// Queues `path` at `at` (or earlier, if it is due earlier already); until
    /// then it is not counted as queued.
    fn look_again(&self, path: &Path, at: Instant) {
        self.later
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(path.to_path_buf())
            .and_modify(|t| *t = (*t).min(at))
            .or_insert(at);
        self.wake.notify_one();
    }

    /// Removes every document of `collection` from the index (the files stay),
    /// after any write of it in progress; nothing of it is written afterwards
    /// unless its folder is watched. Running it again finishes one that failed
    /// half-way. Returns how many documents and chunks there were.
    pub async fn forget(&self, collection: &str) -> Result<(usize, usize)> {
        self.cancel(collection);
        let _writing = self.writing.lock().await;
        let removed = self.store.delete_collection(collection).await?;
        self.dirty.store(true, Ordering::SeqCst);
        Ok(removed)
    }

    /// The failure that keeps documents from being written, while one does.
    pub fn write_error(&self) -> Option<WriteError> {
        self.write_error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The watched folders.
    pub fn roots(&self) -> Vec<WatchRoot> {
        self.roots
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Starts watching `root` (its files are queued by the next [`Indexer::reconcile`]).
    /// Refuses a collection name or a folder that is watched already.
    pub fn add_root(&self, root: WatchRoot) -> Result<()> {
        let mut roots = self
            .roots
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(r) = roots
            .iter()
            .find(|r| r.collection == root.collection || r.path == root.path)
        {
            anyhow::bail!(
                "{} is watched already as {:?}",
                r.path.display(),
                r.collection
            );
        }
        roots.push(root);
        Ok(())
    }

    /// Stops watching the folder of `collection` and drops its queued files; its
    /// documents stay in the index. Returns the folder, if it was watched.
    pub fn remove_root(&self, collection: &str) -> Option<WatchRoot> {
        self.cancel(collection);
        let mut roots = self
            .roots
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let i = roots.iter().position(|r| r.collection == collection)?;
        Some(roots.remove(i))
    }

    /// Files waiting or being worked on.
    pub fn queue_len(&self) -> usize {
        self.lock_queue().len() + self.in_flight.load(Ordering::SeqCst)
    }

    /// Whether the startup scan has queued everything it found.
    pub fn reconciled(&self) -> bool {
        self.reconciled.load(Ordering::SeqCst)
    }

    fn lock_queue(&self) -> std::sync::MutexGuard<'_, HashMap<PathBuf, Instant>> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `path` after the debounce delay (restarted by every new event, so a
    /// burst of writes becomes one update).
    pub fn enqueue(&self, path: PathBuf) {
        self.enqueue_at(path, Instant::now() + self.debounce);
    }

    fn enqueue_at(&self, path: PathBuf, ready: Instant) {
        // Only the part inside the watched folder decides (the folder itself may
        // live under a hidden directory).
        match self.root_of(&path) {
            Some(root) if !is_ignored(path.strip_prefix(&root.path).unwrap_or(&path)) => {}
            _ => return,
        }
        if self.lock_queue().insert(path, ready).is_none() {
            self.events
                .added(1, self.stats.chunks_embedded.load(Ordering::SeqCst));
        }
        self.wake.notify_one();
    }

    /// Puts the path in hand back in the queue, to be handled at `ready`.
    fn requeue(&self, path: &Path, ready: Instant) {
        self.lock_queue().insert(path.to_path_buf(), ready);
        self.wake.notify_one();
    }

    fn lock_paused(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.paused.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Collections whose indexing is paused, sorted.
    pub fn paused(&self) -> Vec<String> {
        let mut v: Vec<String> = self.lock_paused().iter().cloned().collect();
        v.sort();
        v
    }

    /// Whether `collection` is watched.
    pub fn has_collection(&self, collection: &str) -> bool {
        self.roots().iter().any(|r| r.collection == collection)
    }

    /// Holds the queued files of `collection` until [`Indexer::resume`] (the file in
    /// hand finishes).
    pub fn pause(&self, collection: &str) {
        self.lock_paused().insert(collection.to_string());
        self.publish_progress();
    }

    /// Lets the queued files of `collection` go on.
    pub fn resume(&self, collection: &str) {
        self.lock_paused().remove(collection);
        self.wake.notify_one();
        self.publish_progress();
    }

    /// Drops the queued files of `collection`: they are picked up again by the next
    /// change to them or the next start. Returns how many were dropped.
    pub fn cancel(&self, collection: &str) -> usize {
        let dropped = {
            let mut q = self.lock_queue();
            let before = q.len();
            q.retain(|p, _| self.root_of(p).is_none_or(|r| r.collection != collection));
            before - q.len()
        };
        let of_collection =
            |p: &PathBuf| self.root_of(p).is_some_and(|r| r.collection == collection);
        self.later
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|p, _| !of_collection(p));
        self.unreachable
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|p, _| !of_collection(p));
        self.events.finished(dropped as u64);
        self.idle.notify_waiters();
        self.publish_progress();
        dropped
    }

    /// The progress figures now.
    pub fn progress(&self) -> Progress {
        self.events.progress(
            self.queue_len(),
            self.stats.chunks_embedded.load(Ordering::SeqCst),
            self.paused(),
        )
    }

    fn publish_progress(&self) {
        self.events.send(IndexEvent::Progress(self.progress()));
    }

    fn publish(&self, doc: &DocumentRecord, state: Change, from: Option<String>) {
        self.events.send(IndexEvent::Document(DocumentEvent {
            id: doc.id.clone(),
            collection: doc.collection.clone(),
            path: doc.path.clone(),
            state,
            error: doc.error.clone(),
            pages: doc.pages,
            chunks: doc.chunks,
            from,
        }));
    }

    /// Waits until the queue is empty and nothing is being worked on.
    pub async fn wait_idle(&self) {
        loop {
            let idle = self.idle.notified();
            if self.reconciled() && self.queue_len() == 0 {
                return;
            }
            let _ = tokio::time::timeout(Duration::from_millis(200), idle).await;
        }
    }

    /// Startup scan: queues every supported file of every watched folder, and every
    /// manifest document whose file is gone (its processing removes it). Documents of
    /// a watched folder that is missing right now (an unplugged disk) are kept.
    pub async fn reconcile(&self) -> Result<()> {
        let roots = self.roots();
        let (files, unreadable) = tokio::task::spawn_blocking(move || {
            let (mut files, mut unreadable) = (Vec::new(), Vec::new());
            for root in &roots {
                if root.path.is_dir() {
                    unreadable.extend(walk_files(&root.path, &mut files));
                } else if root.path.is_file() {
                    files.push(root.path.clone());
                } else {
                    tracing::warn!(path = %root.path.display(), "watched folder is missing; its documents are kept");
                }
            }
            (files, unreadable)
        })
        .await?;
        // The documents below a folder that cannot be read are not in `files`:
        // each is looked at (and kept, unreachable) like any other.
        for (folder, reason) in unreadable {
            self.mark_unreachable(&folder, reason);
        }
        let found: HashSet<&PathBuf> = files.iter().collect();
        let now = Instant::now();
        for doc in self.store.documents().await? {
            let abs = doc.file();
            let Some(root) = self.root_of(&abs) else {
                continue;
            };
            if root.collection == doc.collection && root.path.exists() && !found.contains(&abs) {
                self.enqueue_at(abs, now);
            }
        }
        for f in &files {
            self.enqueue_at(f.clone(), now);
        }
        tracing::info!(
            files = files.len(),
            "startup scan queued the watched folders"
        );
        self.reconciled.store(true, Ordering::SeqCst);
        self.idle.notify_waiters();
        Ok(())
    }

    /// Reacts to a file-system event on `path`: a folder queues its files; a path
    /// that is gone also queues the documents that were under it.
    pub async fn on_event_path(&self, path: PathBuf) -> Result<()> {
        if path.is_dir() {
            return self.queue_folder(&path).await;
        }
        // Only "not found" means gone: a path that cannot be looked at right now
        // (a folder that may not be read, an offline share) keeps its documents.
        if std::fs::symlink_metadata(&path).is_err_and(|e| {
            matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
            )
        }) {
            for doc in self.store.documents().await? {
                let file = doc.file();
                if file.starts_with(&path) && file != path {
                    self.enqueue(file);
                }
            }
        }
        if FileKind::from_path(&path).is_some() {
            self.enqueue(path);
        }
        Ok(())
    }

    /// Queues the files under `folder`; its sub-folders that cannot be read are
    /// marked unreachable.
    async fn queue_folder(&self, folder: &Path) -> Result<()> {
        let p = folder.to_path_buf();
        let (files, unreadable) = tokio::task::spawn_blocking(move || {
            let mut files = Vec::new();
            let unreadable = walk_files(&p, &mut files);
            (files, unreadable)
        })
        .await?;
        if !unreadable.iter().any(|(f, _)| f == folder) {
            self.reachable(folder);
        }
        for (f, reason) in unreadable {
            self.mark_unreachable(&f, reason);
        }
        for f in files {
            self.enqueue(f);
        }
        Ok(())
    }

    /// Whether extraction of the next file overlaps the embedding of the current
    /// one (the default); off, files are handled strictly one after the other.
    pub fn set_pipeline(&self, on: bool) {
        self.pipeline.store(on, Ordering::SeqCst);
    }

    /// The worker, forever: one task takes queued paths and extracts and chunks
    /// them; a second embeds and writes, so the embedding model never waits for
    /// an extraction (at most one extracted document waits for it).
    pub async fn run(self: Arc<Self>) {
        // Before anything is written: what an interrupted run left is repaired.
        match self.store.repair().await {
            Ok((0, 0)) => {}
            Ok((orphans, redone)) => tracing::info!(
                orphans,
                redone,
                "repaired what an interrupted run left: chunks of no document removed, documents with missing chunks redone"
            ),
            Err(e) => tracing::error!(error = format!("{e:#}"), "the index check at start failed"),
        }
        let (tx, mut rx) = tokio::sync::mpsc::channel::<(PathBuf, Step)>(WRITE_BATCH);
        let me = Arc::clone(&self);
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut jobs = vec![first];
                while jobs.len() < WRITE_BATCH {
                    match rx.try_recv() {
                        Ok(job) => jobs.push(job),
                        Err(_) => break,
                    }
                }
                me.write_batch(jobs).await;
            }
        });
        loop {
            let path = self.next_ready().await;
            match self.prepare(&path).await {
                Ok(step @ (Step::Embed(_) | Step::Fail(..)))
                    if self.pipeline.load(Ordering::SeqCst) =>
                {
                    if tx.send((path, step)).await.is_err() {
                        tracing::error!("the embedding task has stopped");
                        return;
                    }
                }
                Ok(step @ (Step::Embed(_) | Step::Fail(..))) => {
                    let result = self.write(step).await;
                    self.handled(&path, result, true).await;
                }
                Ok(Step::Done) => self.handled(&path, Ok(()), true).await,
                Ok(Step::Requeued) => self.handled(&path, Ok(()), false).await,
                Err(e) => self.handled(&path, Err(e), true).await,
            }
        }
    }

    /// The writing half of a prepared step.
    async fn write(&self, step: Step) -> Result<()> {
        match step {
            Step::Embed(work) => self.finish(*work).await,
            Step::Fail(doc, reason) => self.fail(*doc, reason).await,
            Step::Done | Step::Requeued => Ok(()),
        }
    }

    /// Bookkeeping once a path in hand is handled (`counted`) or back in the queue.
    async fn handled(&self, path: &Path, result: Result<()>, mut counted: bool) {
        if let Err(e) = result {
            // docchat's own failure, not the document's (those are Step::Fail): the
            // data folder is full or read-only, the database refused. The document
            // is tried again, later and later, and the status says why it waits.
            let message = describe_write_error(&e);
            tracing::error!(path = %path.display(), error = format!("{e:#}"), "indexing failed; will try again");
            let mut retries = self
                .retries
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let tries = retries.entry(path.to_path_buf()).or_insert(0);
            *tries += 1;
            if *tries <= MAX_WRITE_TRIES {
                self.requeue(path, Instant::now() + retry_wait(*tries));
                counted = false;
            } else {
                retries.remove(path);
            }
            *self
                .write_error
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(WriteError {
                message,
                waiting: retries.len(),
                at_ms: now_ms(),
            });
        } else if counted {
            let mut retries = self
                .retries
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if retries.remove(path).is_some() && retries.is_empty() {
                *self
                    .write_error
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
                tracing::info!("writing the index works again");
            }
        }
        if counted {
            self.events.finished(1);
        }
        let last = self.lock_queue().is_empty() && self.in_flight.load(Ordering::SeqCst) == 1;
        if last && self.dirty.swap(false, Ordering::SeqCst) {
            self.optimize_indexes().await;
        }
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        self.publish_progress();
        if self.queue_len() == 0 {
            self.events.idle();
        }
        self.idle.notify_waiters();
    }

    /// Folds new chunks into the search indexes (building them when due) and
    /// compacts the tables. Runs when the queue has drained, so it never slows
    /// indexing down; searches are correct without it, only slower.
    async fn optimize_indexes(&self) {
        let started = Instant::now();
        match self.store.optimize().await {
            Ok(r) => tracing::info!(
                chunks = r.rows,
                vector_index = r.vector_index,
                ms = started.elapsed().as_millis() as u64,
                "search indexes optimized"
            ),
            Err(e) => tracing::warn!(error = %e, "optimizing the search indexes failed"),
        }
        docchat_llm::heap::trim();
    }

    async fn next_ready(&self) -> PathBuf {
        loop {
            // Paths due to be looked at again join the queue.
            let (due, next_later) = {
                let mut later = self
                    .later
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let now = Instant::now();
                let due: Vec<PathBuf> = later
                    .iter()
                    .filter(|(_, t)| **t <= now)
                    .map(|(p, _)| p.clone())
                    .collect();
                for p in &due {
                    later.remove(p);
                }
                (
                    due,
                    later
                        .values()
                        .min()
                        .map(|t| t.saturating_duration_since(now)),
                )
            };
            for p in due {
                self.enqueue_at(p, Instant::now());
            }
            let wait = {
                let paused = self.lock_paused().clone();
                let mut q = self.lock_queue();
                let now = Instant::now();
                let open: Vec<(&PathBuf, &Instant)> = q
                    .iter()
                    .filter(|(p, _)| {
                        paused.is_empty()
                            || self
                                .root_of(p)
                                .is_none_or(|r| !paused.contains(&r.collection))
                    })
                    .collect();
                // Files read by OCR come last: after every file with text that is
                // ready now or soon (a file still settling, or debounced).
                let text_first = open
                    .iter()
                    .filter(|(p, t)| **t <= now + OCR_YIELD && !self.waits_for_ocr(p))
                    .min_by_key(|(_, t)| **t);
                match text_first
                    .or_else(|| open.iter().min_by_key(|(_, t)| **t))
                    .map(|(p, t)| ((*p).clone(), **t))
                {
                    Some((p, t)) if t <= now => {
                        q.remove(&p);
                        self.in_flight.fetch_add(1, Ordering::SeqCst);
                        return p;
                    }
                    Some((_, t)) => Some(t - now),
                    None => None,
                }
            };
            let wait = match (wait, next_later) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let woken = self.wake.notified();
            match wait {
                Some(d) => {
                    let _ = tokio::time::timeout(d, woken).await;
                }
                None => woken.await,
            }
        }
    }
}

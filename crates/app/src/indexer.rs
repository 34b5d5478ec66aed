//! Keeps the index in step with the watched folders: a startup reconcile scan plus
//! file-system events feed a per-path, debounced queue; one worker extracts (in a
//! child process), chunks, embeds what changed and writes each document in one go,
//! or a long new one in parts of [`PART_CHUNKS`] chunks.
//!
//! Order of writes for crash safety: the manifest row goes to `pending` first, then
//! the chunks are replaced (or appended part by part), then the row becomes
//! `indexed` (or `failed`). A crash leaves a `pending` row, which the next start
//! redoes, reusing the vectors of the chunks already written; a crash while
//! deleting leaves orphan chunks, which the reconcile removes.

use crate::config::WatchRoot;
use crate::history::now_ms;
use crate::isolate::{self, ExtractLimits};
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

use crate::progress::{Change, DocumentEvent, IndexEvent, Progress, Tracker};

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

/// The manifest row of a document that failed.
fn failed_row(mut doc: DocumentRecord, reason: String) -> DocumentRecord {
    doc.state = DocState::Failed;
    doc.error = Some(reason);
    doc.chunks = 0;
    doc.indexed_at_ms = now_ms();
    doc
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
    /// Progress and per-document events.
    pub events: Tracker,
    /// Work counters.
    pub stats: Stats,
    /// Paths whose writes failed for docchat's own reasons (a full disk, a
    /// read-only data folder), with the tries so far: they are tried again.
    retries: Mutex<HashMap<PathBuf, u32>>,
    /// The last such failure, while any path waits for a retry.
    write_error: Mutex<Option<WriteError>>,
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
            events: Tracker::default(),
            stats: Stats::default(),
            retries: Mutex::new(HashMap::new()),
            write_error: Mutex::new(None),
        })
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
        let removed = self.store.remove_orphan_chunks().await?;
        if removed > 0 {
            tracing::info!(removed, "removed chunks left by an interrupted run");
        }
        let roots = self.roots();
        let files = tokio::task::spawn_blocking(move || {
            let mut files = Vec::new();
            for root in &roots {
                if root.path.is_dir() {
                    walk_files(&root.path, &mut files);
                } else if root.path.is_file() {
                    files.push(root.path.clone());
                } else {
                    tracing::warn!(path = %root.path.display(), "watched folder is missing; its documents are kept");
                }
            }
            files
        })
        .await?;
        let found: HashSet<&PathBuf> = files.iter().collect();
        let now = Instant::now();
        for doc in self.store.documents().await? {
            let abs = PathBuf::from(&doc.abs_path);
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
            let p = path.clone();
            let files = tokio::task::spawn_blocking(move || {
                let mut files = Vec::new();
                walk_files(&p, &mut files);
                files
            })
            .await?;
            for f in files {
                self.enqueue(f);
            }
            return Ok(());
        }
        if !path.exists() {
            let prefix = format!("{}/", path.display());
            for doc in self.store.documents().await? {
                if doc.abs_path.starts_with(&prefix) {
                    self.enqueue(PathBuf::from(doc.abs_path));
                }
            }
        }
        if FileKind::from_path(&path).is_some() {
            self.enqueue(path);
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
            let wait = {
                let paused = self.lock_paused().clone();
                let mut q = self.lock_queue();
                let now = Instant::now();
                match q
                    .iter()
                    .filter(|(p, _)| {
                        paused.is_empty()
                            || self
                                .root_of(p)
                                .is_none_or(|r| !paused.contains(&r.collection))
                    })
                    .min_by_key(|(_, t)| **t)
                    .map(|(p, t)| (p.clone(), *t))
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
            let woken = self.wake.notified();
            match wait {
                Some(d) => {
                    let _ = tokio::time::timeout(d, woken).await;
                }
                None => woken.await,
            }
        }
    }

    fn root_of(&self, path: &Path) -> Option<WatchRoot> {
        self.roots
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .filter(|r| path.starts_with(&r.path))
            .max_by_key(|r| r.path.as_os_str().len())
            .cloned()
    }

    /// Everything up to the chunks of `path`: what needs no embedding (unchanged,
    /// removed, moved, failed, not settled yet) is done here.
    async fn prepare(&self, path: &Path) -> Result<Step> {
        let Some(root) = self.root_of(path) else {
            return Ok(Step::Done);
        };
        let rel = relative(&root.path, path);
        let id = document_id(&root.collection, &rel);
        let existing = self.store.document(&id).await?;
        let meta = tokio::fs::metadata(path).await.ok().filter(|m| m.is_file());
        let Some(meta) = meta else {
            if existing.is_some() {
                if !root.path.exists() {
                    // The whole watched folder is gone (an unplugged disk, an
                    // unmounted share): keep its documents until it is back or
                    // the user forgets it.
                    return Ok(Step::Done);
                }
                if self.defer_removal(path) {
                    return Ok(Step::Requeued);
                }
                self.store.delete_document(&id).await?;
                self.dirty.store(true, Ordering::SeqCst);
                if let Some(d) = &existing {
                    self.publish(d, Change::Removed, None);
                }
                tracing::info!(path = %rel, collection = %root.collection, "removed");
            }
            return Ok(Step::Done);
        };
        let size = meta.len();
        let mtime_ms = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_millis() as i64);
        // A file written within the settle time may still be being copied: look
        // again once it has been quiet that long.
        let age_ms = now_ms() - mtime_ms;
        if (0..SETTLE_MS).contains(&age_ms) {
            let wait = Duration::from_millis((SETTLE_MS - age_ms) as u64 + 50);
            self.requeue(path, Instant::now() + wait);
            return Ok(Step::Requeued);
        }
        let embedder_id = self.embedder.id().to_string();
        let current =
            |d: &DocumentRecord| d.state != DocState::Pending && d.embedder == embedder_id;
        if let Some(d) = &existing
            && current(d)
            && d.size == size
            && d.mtime_ms == mtime_ms
        {
            return Ok(Step::Done);
        }

        if !inside_root(&root.path, path) {
            let doc = self.record(&root, &rel, &id, path, size, mtime_ms, String::new());
            return Ok(Step::Fail(
                Box::new(doc),
                "not indexed: a link to a file outside the watched folder".into(),
            ));
        }
        let bytes = match tokio::fs::read(path).await {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Box::pin(self.prepare(path)).await;
            }
            Err(e) => {
                let doc = self.record(&root, &rel, &id, path, size, mtime_ms, String::new());
                return Ok(Step::Fail(Box::new(doc), format!("cannot read file: {e}")));
            }
        };
        let bytes_len = bytes.len() as u64;
        let hash =
            tokio::task::spawn_blocking(move || blake3::hash(&bytes).to_hex().to_string()).await?;
        if let Some(d) = &existing
            && current(d)
            && d.content_hash == hash
        {
            // Touched but unchanged: only the file's metadata moves.
            let mut d = d.clone();
            d.size = size;
            d.mtime_ms = mtime_ms;
            d.abs_path = path.display().to_string();
            self.store.put_document(&d).await?;
            return Ok(Step::Done);
        }

        if bytes_len != size {
            // Changed while being read: read it again when it settles.
            self.requeue(path, Instant::now() + self.debounce);
            return Ok(Step::Requeued);
        }
        if existing.is_none()
            && let Some(from) = self.moved_from(&hash).await?
        {
            return self
                .move_document(from, &root, &rel, &id, path, size, mtime_ms)
                .await
                .map(|()| Step::Done);
        }

        let mut doc = self.record(&root, &rel, &id, path, size, mtime_ms, hash);
        if let Some(d) = &existing {
            // A document indexed before is marked pending while it is redone: a
            // crash leaves it pending, and the next start redoes it. A new one
            // needs no row yet: a crash before its row is written leaves only
            // orphan chunks, which the next start removes before indexing it.
            doc.pages = d.pages;
            doc.chunks = d.chunks;
            self.store.put_document(&doc).await?;
        }
        self.publish(&doc, Change::Pending, None);

        let started = Instant::now();
        let extracted = isolate::extract(path, &self.limits).await?;
        self.stats
            .extract_us
            .fetch_add(started.elapsed().as_micros() as u64, Ordering::SeqCst);
        self.stats
            .documents_extracted
            .fetch_add(1, Ordering::SeqCst);
        let mut extracted = match extracted {
            Ok(e) => e,
            Err(reason) => return Ok(Step::Fail(Box::new(doc), reason)),
        };
        let extract_ms = started.elapsed().as_millis() as u64;

        let embedder = Arc::clone(&self.embedder);
        let opts = self.chunking;
        let pages = std::mem::take(&mut extracted.pages);
        let page_count = pages.len() as u32;
        let drafts =
            tokio::task::spawn_blocking(move || chunk_pages(&pages, embedder.as_ref(), &opts))
                .await?;
        if drafts.is_empty() {
            return Ok(Step::Fail(
                Box::new(doc),
                "no text: the document has no words to index".into(),
            ));
        }
        Ok(Step::Embed(Box::new(Work {
            root: root.clone(),
            rel,
            id,
            doc,
            extracted,
            pages: page_count,
            drafts,
            started,
            extract_ms,
        })))
    }

    /// Embeds the chunks of prepared `work` that have no vector yet and writes the
    /// document.
    async fn finish(&self, work: Work) -> Result<()> {
        let embedded = self.embed_work(work).await?;
        self.store_embedded(embedded).await
    }

    /// Embeds the chunks of `work` that have no vector yet; nothing is written.
    async fn embed_work(&self, mut work: Work) -> Result<Embedded> {
        // Chunks whose text is unchanged keep their vectors (a document with no
        // manifest row has no chunks stored).
        let stored = self.store.document(&work.id).await?.is_some();
        let mut vectors = if stored {
            self.store.chunk_vectors(&work.id).await?
        } else {
            HashMap::new()
        };
        let drafts = std::mem::take(&mut work.drafts);
        let embedded = self.embed_missing(&drafts, &mut vectors).await?;
        let records = into_records(&work.root, &work.rel, &work.id, 0, drafts, &mut vectors);
        drop(vectors);
        let doc = self.indexed_row(work, records.len(), embedded);
        Ok(Embedded {
            doc,
            records,
            stored,
        })
    }

    /// Embeds (in the background, [`EMBED_BATCH`] at a time) the drafts whose text
    /// has no vector in `vectors`, each text once, and adds their vectors there.
    /// Returns how many texts were embedded.
    async fn embed_missing(
        &self,
        drafts: &[ChunkDraft],
        vectors: &mut HashMap<String, Vec<f32>>,
    ) -> Result<usize> {
        let mut queued = HashSet::new();
        let missing: Vec<&ChunkDraft> = drafts
            .iter()
            .filter(|d| !vectors.contains_key(&d.hash) && queued.insert(d.hash.as_str()))
            .collect();
        for batch in missing.chunks(EMBED_BATCH) {
            let embedder = Arc::clone(&self.embedder);
            let texts: Vec<String> = batch.iter().map(|d| d.text.clone()).collect();
            let t = Instant::now();
            let embedded = tokio::task::spawn_blocking(move || embedder.embed_background(&texts))
                .await?
                .context("embedding failed")?;
            self.stats
                .embed_us
                .fetch_add(t.elapsed().as_micros() as u64, Ordering::SeqCst);
            self.stats
                .chunks_embedded
                .fetch_add(batch.len() as u64, Ordering::SeqCst);
            for (d, v) in batch.iter().zip(embedded) {
                vectors.insert(d.hash.clone(), v);
            }
        }
        Ok(missing.len())
    }

    /// The manifest row of `work` once its `chunks` chunks are stored, `embedded`
    /// of them embedded now (the others kept their vectors).
    fn indexed_row(&self, work: Work, chunks: usize, embedded: usize) -> DocumentRecord {
        let Work {
            root,
            rel,
            mut doc,
            extracted,
            pages,
            started,
            extract_ms,
            ..
        } = work;
        doc.state = DocState::Indexed;
        doc.error = None;
        doc.pages = pages;
        doc.chunks = chunks as u32;
        self.stats
            .pages_indexed
            .fetch_add(u64::from(pages), Ordering::SeqCst);
        doc.extractor = extracted.extractor;
        doc.title = extracted.title;
        doc.author = extracted.author;
        doc.indexed_at_ms = now_ms();
        tracing::debug!(
            path = %rel,
            collection = %root.collection,
            pages = doc.pages,
            chunks = doc.chunks,
            embedded,
            reused = chunks - embedded,
            extract_ms,
            total_ms = started.elapsed().as_millis() as u64,
            "embedded"
        );
        doc
    }

    /// Embeds and writes a document with many chunks. A new one goes
    /// [`PART_CHUNKS`] chunks at a time under a pending manifest row, which turns
    /// `indexed` once the last part is written: a crash or a failed write leaves
    /// the row pending, and redoing it reuses the vectors of the parts written.
    /// One stored already is replaced in one go, as any other.
    async fn write_in_parts(&self, mut work: Work) -> Result<()> {
        if self.store.document(&work.id).await?.is_some() {
            return self.finish(work).await;
        }
        self.store.put_document(&work.doc).await?;
        let drafts = std::mem::take(&mut work.drafts);
        let total = drafts.len();
        let mut drafts = drafts.into_iter();
        let (mut first, mut embedded) = (0, 0);
        while first < total {
            let part: Vec<ChunkDraft> = drafts.by_ref().take(PART_CHUNKS).collect();
            let mut vectors = HashMap::new();
            embedded += self.embed_missing(&part, &mut vectors).await?;
            let n = part.len();
            let records = into_records(&work.root, &work.rel, &work.id, first, part, &mut vectors);
            drop(vectors);
            self.store.append_chunks(&records).await?;
            self.dirty.store(true, Ordering::SeqCst);
            first += n;
            tracing::debug!(path = %work.rel, written = first, total, "part written");
        }
        let doc = self.indexed_row(work, total, embedded);
        self.store.put_document(&doc).await?;
        self.written(&[(doc, Change::Indexed)]).await;
        Ok(())
    }

    /// Writes one embedded document: its chunks replace any stored ones, then its
    /// manifest row.
    async fn store_embedded(&self, e: Embedded) -> Result<()> {
        let Embedded {
            doc,
            records,
            stored,
        } = e;
        if stored {
            self.store.replace_chunks(&doc.id, &records).await?;
            self.store.put_document(&doc).await?;
        } else {
            // Nothing of this document is stored: one append each, no delete.
            self.store.append_chunks(&records).await?;
            self.store.insert_document(&doc).await?;
        }
        self.written(&[(doc, Change::Indexed)]).await;
        Ok(())
    }

    /// Writes new documents (no manifest row yet) together: all their chunks in
    /// one append, then all their rows in one. A crash in between leaves orphan
    /// chunks only, removed at the next start.
    async fn store_new(
        &self,
        chunks: &[ChunkRecord],
        rows: Vec<(DocumentRecord, Change)>,
    ) -> Result<()> {
        self.store.append_chunks(chunks).await?;
        let docs: Vec<DocumentRecord> = rows.iter().map(|(d, _)| d.clone()).collect();
        self.store.insert_documents(&docs).await?;
        self.written(&rows).await;
        Ok(())
    }

    /// After documents are written: events, logs, compaction during long runs.
    async fn written(&self, rows: &[(DocumentRecord, Change)]) {
        self.dirty.store(true, Ordering::SeqCst);
        for (doc, change) in rows {
            self.publish(doc, *change, None);
            match change {
                Change::Failed => tracing::warn!(
                    path = %doc.path,
                    collection = %doc.collection,
                    reason = doc.error.as_deref().unwrap_or(""),
                    "failed"
                ),
                _ => tracing::info!(
                    path = %doc.path,
                    collection = %doc.collection,
                    pages = doc.pages,
                    chunks = doc.chunks,
                    "indexed"
                ),
            }
        }
        // Every commit adds a small fragment; many of them slow every query down,
        // so a long run compacts as it goes.
        let before = self.writes.fetch_add(rows.len() as u64, Ordering::SeqCst);
        if before / COMPACT_EVERY != (before + rows.len() as u64) / COMPACT_EVERY {
            if let Err(e) = self.store.compact().await {
                tracing::warn!(error = %e, "compaction failed");
            }
        }
    }

    /// Whether the removal of gone `path` waits: it does while other work is
    /// queued (once per burst: a path already deferred is not deferred again until
    /// the rest has been done).
    fn defer_removal(&self, path: &Path) -> bool {
        let mut deferred = self.deferred.lock().unwrap_or_else(|e| e.into_inner());
        let others = {
            let q = self.lock_queue();
            q.keys().any(|p| !deferred.contains(p))
        };
        if others {
            deferred.insert(path.to_path_buf());
            let last = self.lock_queue().values().max().copied();
            let ready = last.map_or_else(Instant::now, |t| t + Duration::from_millis(1));
            drop(deferred);
            self.requeue(path, ready);
            return true;
        }
        deferred.remove(path);
        false
    }

    /// An indexed document with this content whose file is gone: the file was
    /// renamed or moved.
    async fn moved_from(&self, hash: &str) -> Result<Option<DocumentRecord>> {
        let embedder_id = self.embedder.id();
        for d in self.store.documents_with_hash(hash).await? {
            if d.state == DocState::Indexed
                && d.embedder == embedder_id
                && !Path::new(&d.abs_path).exists()
            {
                return Ok(Some(d));
            }
        }
        Ok(None)
    }

    /// Moves document `from` to a new path (and maybe collection) without
    /// extracting or embedding: its chunks are copied under the new id, then the
    /// old document is removed. A crash in between leaves the new row pending
    /// (redone on restart) or the old one with a gone file (removed on restart).
    #[allow(clippy::too_many_arguments)]
    async fn move_document(
        &self,
        from: DocumentRecord,
        root: &WatchRoot,
        rel: &str,
        id: &str,
        path: &Path,
        size: u64,
        mtime_ms: i64,
    ) -> Result<()> {
        let mut doc = self.record(
            root,
            rel,
            id,
            path,
            size,
            mtime_ms,
            from.content_hash.clone(),
        );
        self.store.put_document(&doc).await?;
        let chunks: Vec<ChunkRecord> = self
            .store
            .document_chunks(&from.id)
            .await?
            .into_iter()
            .map(|c| {
                let ordinal = docchat_store::chunk_ordinal(&c.id).unwrap_or(0);
                ChunkRecord {
                    id: docchat_store::chunk_id(id, ordinal),
                    document_id: id.to_string(),
                    collection: root.collection.clone(),
                    path: rel.to_string(),
                    ..c
                }
            })
            .collect();
        self.store.replace_chunks(id, &chunks).await?;
        doc.state = DocState::Indexed;
        doc.pages = from.pages;
        doc.chunks = chunks.len() as u32;
        doc.extractor = from.extractor.clone();
        doc.title = from.title.clone();
        doc.author = from.author.clone();
        doc.indexed_at_ms = now_ms();
        self.store.put_document(&doc).await?;
        self.store.delete_document(&from.id).await?;
        self.dirty.store(true, Ordering::SeqCst);
        self.stats.documents_moved.fetch_add(1, Ordering::SeqCst);
        self.publish(
            &doc,
            Change::Moved,
            Some(format!("{}/{}", from.collection, from.path)),
        );
        tracing::info!(
            from = %format!("{}/{}", from.collection, from.path),
            to = %format!("{}/{}", root.collection, rel),
            chunks = doc.chunks,
            "moved"
        );
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        root: &WatchRoot,
        rel: &str,
        id: &str,
        path: &Path,
        size: u64,
        mtime_ms: i64,
        hash: String,
    ) -> DocumentRecord {
        DocumentRecord {
            id: id.to_string(),
            collection: root.collection.clone(),
            path: rel.to_string(),
            abs_path: path.display().to_string(),
            size,
            mtime_ms,
            content_hash: hash,
            state: DocState::Pending,
            error: None,
            pages: 0,
            chunks: 0,
            embedder: self.embedder.id().to_string(),
            extractor: String::new(),
            title: None,
            author: None,
            indexed_at_ms: now_ms(),
        }
    }

    async fn fail(&self, doc: DocumentRecord, reason: String) -> Result<()> {
        let doc = failed_row(doc, reason);
        if self.store.document(&doc.id).await?.is_some() {
            self.store.replace_chunks(&doc.id, &[]).await?;
            self.store.put_document(&doc).await?;
        } else {
            self.store.insert_document(&doc).await?;
        }
        self.written(&[(doc, Change::Failed)]).await;
        Ok(())
    }

    /// The writing task: takes what is ready (up to [`WRITE_BATCH`] documents)
    /// and writes the new documents among them in one go.
    async fn write_batch(&self, jobs: Vec<(PathBuf, Step)>) {
        let mut chunks: Vec<ChunkRecord> = Vec::new();
        let mut rows: Vec<(DocumentRecord, Change)> = Vec::new();
        let mut paths: Vec<PathBuf> = Vec::new();
        for (path, step) in jobs {
            // A second version of a document of this batch waits for the first
            // to be written.
            let id = match &step {
                Step::Embed(w) => Some(w.id.clone()),
                Step::Fail(d, _) => Some(d.id.clone()),
                _ => None,
            };
            if id.is_some_and(|id| rows.iter().any(|(d, _)| d.id == id)) {
                self.flush_new(&mut chunks, &mut rows, &mut paths).await;
            }
            let result = match step {
                Step::Embed(work) if work.drafts.len() > PART_CHUNKS => {
                    self.write_in_parts(*work).await
                }
                Step::Embed(work) => match self.embed_work(*work).await {
                    Ok(e) if !e.stored => {
                        chunks.extend(e.records);
                        rows.push((e.doc, Change::Indexed));
                        paths.push(path);
                        // Small documents share a commit; one with many chunks
                        // is searchable as soon as it is embedded.
                        if chunks.len() >= FLUSH_CHUNKS {
                            self.flush_new(&mut chunks, &mut rows, &mut paths).await;
                        }
                        continue;
                    }
                    Ok(e) => self.store_embedded(e).await,
                    Err(e) => Err(e),
                },
                Step::Fail(doc, reason) => match self.store.document(&doc.id).await {
                    Ok(None) => {
                        rows.push((failed_row(*doc, reason), Change::Failed));
                        paths.push(path);
                        continue;
                    }
                    Ok(Some(_)) => self.fail(*doc, reason).await,
                    Err(e) => Err(e.into()),
                },
                Step::Done | Step::Requeued => Ok(()),
            };
            self.handled(&path, result, true).await;
        }
        self.flush_new(&mut chunks, &mut rows, &mut paths).await;
    }

    async fn flush_new(
        &self,
        chunks: &mut Vec<ChunkRecord>,
        rows: &mut Vec<(DocumentRecord, Change)>,
        paths: &mut Vec<PathBuf>,
    ) {
        if rows.is_empty() {
            return;
        }
        let result = self.store_new(chunks, std::mem::take(rows)).await;
        chunks.clear();
        let error = result.err().map(|e| format!("{e:#}"));
        for path in paths.drain(..) {
            let r = match &error {
                Some(e) => Err(anyhow::anyhow!("writing a batch of documents failed: {e}")),
                None => Ok(()),
            };
            self.handled(&path, r, true).await;
        }
    }
}

/// The chunk rows of `drafts`, numbered from `first`, each with its text's vector
/// from `vectors` (moved out at the text's last use).
fn into_records(
    root: &WatchRoot,
    rel: &str,
    id: &str,
    first: usize,
    drafts: Vec<ChunkDraft>,
    vectors: &mut HashMap<String, Vec<f32>>,
) -> Vec<ChunkRecord> {
    let mut uses: HashMap<String, usize> = HashMap::new();
    for d in &drafts {
        *uses.entry(d.hash.clone()).or_default() += 1;
    }
    drafts
        .into_iter()
        .enumerate()
        .map(|(i, d)| {
            let left = uses.get_mut(&d.hash).map_or(0, |n| {
                *n -= 1;
                *n
            });
            let vector = if left == 0 {
                vectors.remove(&d.hash)
            } else {
                vectors.get(&d.hash).cloned()
            };
            ChunkRecord {
                id: format!("{id}-{:05}", first + i),
                document_id: id.to_string(),
                collection: root.collection.clone(),
                path: rel.to_string(),
                page_start: d.page_start,
                page_end: d.page_end,
                byte_start: d.byte_start,
                byte_end: d.byte_end,
                hash: d.hash,
                text: d.text,
                vector: vector.unwrap_or_default(),
            }
        })
        .collect()
}

/// `path` relative to `root`, with `/` separators (a root that is a file: its name).
fn relative(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    let parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.is_empty() {
        path.file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
    } else {
        parts.join("/")
    }
}

/// A failure to write the index in words a user can act on (the whole chain of
/// causes goes to the log).
pub fn describe_write_error(e: &anyhow::Error) -> String {
    let text = format!("{e:#}");
    let lower = text.to_lowercase();
    if lower.contains("no space left") || lower.contains("os error 28") {
        "the data folder is full (no space left on device); free some space and docchat goes on"
            .into()
    } else if lower.contains("read-only file system") || lower.contains("os error 30") {
        "the data folder is read-only; make it writable and docchat goes on".into()
    } else if lower.contains("permission denied") || lower.contains("os error 13") {
        "docchat may not write its data folder (permission denied); fix its permissions and \
         docchat goes on"
            .into()
    } else {
        text
    }
}

/// Whether `path`, links resolved, lies inside the watched folder (or file) `root`.
/// A link that leads out of its folder is not a document of that folder: indexing it
/// or serving it would hand out a file the user never chose to share.
pub fn inside_root(root: &Path, path: &Path) -> bool {
    match (std::fs::canonicalize(root), std::fs::canonicalize(path)) {
        (Ok(root), Ok(path)) => path.starts_with(root),
        _ => false,
    }
}

/// Hidden files and folders, office lock files and partial downloads are not
/// documents. `path` is relative to its watched folder.
pub fn is_ignored(path: &Path) -> bool {
    path.components().any(|c| {
        let name = c.as_os_str().to_string_lossy();
        name.starts_with('.') && name != "." && name != ".."
    }) || path.file_name().is_some_and(|n| {
        let n = n.to_string_lossy().to_lowercase();
        n.starts_with("~$")
            || n.ends_with('~')
            || [".part", ".tmp", ".crdownload", ".download", ".swp"]
                .iter()
                .any(|s| n.ends_with(s))
    })
}

/// Supported files under `dir`, following symlinks without looping.
pub fn walk_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut seen = HashSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(canonical) = std::fs::canonicalize(&d) else {
            continue;
        };
        if !seen.insert(canonical) {
            continue;
        }
        let Ok(entries) = std::fs::read_dir(&d) else {
            tracing::warn!(path = %d.display(), "cannot read folder");
            continue;
        };
        let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        paths.sort();
        for p in paths {
            if is_ignored(p.strip_prefix(dir).unwrap_or(&p)) {
                continue;
            }
            match std::fs::metadata(&p) {
                Ok(m) if m.is_dir() && !inside_root(dir, &p) => {
                    tracing::warn!(path = %p.display(), "not followed: a link to a folder outside the watched folder");
                }
                Ok(m) if m.is_dir() => stack.push(p),
                Ok(m) if m.is_file() && FileKind::from_path(&p).is_some() => out.push(p),
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ignored_names() {
        assert!(is_ignored(Path::new("a/.hidden/x.pdf")));
        assert!(is_ignored(Path::new("~$report.docx")));
        assert!(is_ignored(Path::new("x.pdf.part")));
        assert!(is_ignored(Path::new("notes.txt~")));
        assert!(!is_ignored(Path::new("reports/q1.pdf")));
    }

    #[test]
    fn relative_paths_use_slashes() {
        assert_eq!(
            relative(Path::new("/r"), Path::new("/r/a/b.pdf")),
            "a/b.pdf"
        );
        assert_eq!(
            relative(Path::new("/r/b.pdf"), Path::new("/r/b.pdf")),
            "b.pdf"
        );
    }

    #[test]
    fn walk_skips_hidden_and_follows_links_once() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("sub/.git")).unwrap();
        std::fs::write(root.join("sub/a.pdf"), b"x").unwrap();
        std::fs::write(root.join("sub/.git/b.md"), b"x").unwrap();
        std::fs::write(root.join("c.exe"), b"x").unwrap();
        std::os::unix::fs::symlink(root, root.join("sub/loop")).unwrap();
        let mut files = Vec::new();
        walk_files(root, &mut files);
        assert_eq!(files, vec![root.join("sub/a.pdf")]);
    }
}

//! The indexer's first half: from a path to the chunks to embed. What needs no
//! embedding (unchanged, removed, moved, failed, not settled yet) ends here.

use super::*;
use crate::index::isolate::{self, Extraction, OcrPass};
use crate::index::progress::OcrProgress;
use docchat_core::Location;

/// The reason of a document that could not be read, before the system's words.
pub(super) const READ_FAILED: &str = "cannot read file";
/// The reason of a link that leads out of its watched folder: the only failure
/// that drops the previous version of a document (it was never meant to be shared).
pub(super) const OUTSIDE: &str = "not indexed: a link to a file outside the watched folder";

/// Whether a document failed for a reason that may pass (a read error, an
/// extraction that ran out of time on a busy machine): it is tried again at start,
/// when its file or its attributes change (a `chmod` that fixes "Permission
/// denied"), and after a while, waiting longer after each failure.
pub fn failed_for_now(reason: &str) -> bool {
    reason.starts_with(READ_FAILED) || reason.starts_with(isolate::TIMEOUT)
}

impl Indexer {
    pub(super) fn root_of(&self, path: &Path) -> Option<WatchRoot> {
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
    pub(super) async fn prepare(&self, path: &Path) -> Result<Step> {
        let Some(root) = self.root_of(path) else {
            return Ok(Step::Done);
        };
        let rel = relative(&root.path, path);
        let id = document_id(&root.collection, &rel);
        let existing = self.store.document(&id).await?;
        let meta = match tokio::fs::metadata(path).await {
            Ok(meta) => meta,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                ) =>
            {
                return self.gone(&root, &rel, path, existing.as_ref()).await;
            }
            Err(e) => {
                // Not "gone": it cannot be looked at right now.
                self.mark_unreachable(path, e.to_string());
                return Ok(Step::Done);
            }
        };
        self.reachable(path);
        if meta.is_dir() && existing.is_none() {
            // A folder looked at again: its files are queued.
            self.queue_folder(path).await?;
            return Ok(Step::Done);
        }
        if !meta.is_file() {
            return self.gone(&root, &rel, path, existing.as_ref()).await;
        }
        let size = meta.len();
        let mtime_ms = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_millis() as i64);
        if self.requeued_until_settled(path, mtime_ms) {
            return Ok(Step::Requeued);
        }
        let current = existing.as_ref().filter(|d| self.is_current(d));
        if current.is_some_and(|d| d.size == size && d.mtime_ms == mtime_ms) {
            return Ok(Step::Done);
        }
        let record = |hash: String| self.record(&root, &rel, &id, path, size, mtime_ms, hash);
        if !inside_root(&root.path, path) {
            return Ok(Step::Fail(Box::new(record(String::new())), OUTSIDE.into()));
        }
        let cap = self.limits.max_file_bytes;
        if cap > 0 && size > cap {
            let reason = format!(
                "too large: {} MB is over the limit of {} MB (max_file_mb in docchat.toml)",
                size >> 20,
                cap >> 20
            );
            return Ok(Step::Fail(Box::new(record(String::new())), reason));
        }
        let file = path.to_path_buf();
        let read = tokio::task::spawn_blocking(move || hash_file(&file));
        let (bytes_len, hash) = match read.await? {
            Ok(read) => read,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Box::pin(self.prepare(path)).await;
            }
            Err(e) => {
                let reason = format!("{READ_FAILED}: {e}");
                return Ok(Step::Fail(Box::new(record(String::new())), reason));
            }
        };
        if let Some(d) = current.filter(|d| d.content_hash == hash) {
            // Touched but unchanged: only the file's metadata moves.
            let mut d = d.clone();
            d.size = size;
            d.mtime_ms = mtime_ms;
            d.abs_path = docchat_store::stored_path(path);
            if let Some(_writing) = self.may_write(&d.collection).await {
                self.store.put_document(&d).await?;
            }
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
        let mut doc = record(hash);
        if let Some(d) = &existing {
            // A document indexed before is marked pending while it is redone: a
            // crash leaves it pending, and the next start redoes it. A new one
            // needs no row yet: a crash before its row is written leaves only
            // orphan chunks, which the next start removes before indexing it.
            doc.pages = d.pages;
            doc.chunks = d.chunks;
            let Some(_writing) = self.may_write(&doc.collection).await else {
                return Ok(Step::Done);
            };
            self.store.put_document(&doc).await?;
        }
        self.publish(&doc, Change::Pending, None);
        self.extract_and_chunk(path, root, rel, id, doc).await
    }

    /// Whether `path` is read by OCR (an image, or a PDF with scanned pages): it
    /// waits until the files with text are done.
    pub(super) fn waits_for_ocr(&self, path: &Path) -> bool {
        FileKind::from_path(path) == Some(FileKind::Image) || self.lock_ocr_wait().contains(path)
    }

    pub(super) fn lock_ocr_wait(&self) -> std::sync::MutexGuard<'_, HashSet<PathBuf>> {
        self.ocr_wait.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A file written within the settle time may still be being copied: it goes
    /// back to the queue until it has been quiet that long.
    pub(super) fn requeued_until_settled(&self, path: &Path, mtime_ms: i64) -> bool {
        let age_ms = now_ms() - mtime_ms;
        let settling = (0..SETTLE_MS).contains(&age_ms);
        if settling {
            let wait = Duration::from_millis((SETTLE_MS - age_ms) as u64 + 50);
            self.requeue(path, Instant::now() + wait);
        }
        settling
    }

    /// Whether `d` was indexed, and by the embedding model in use, or failed for
    /// a reason that stays while the file does.
    pub(super) fn is_current(&self, d: &DocumentRecord) -> bool {
        let retry = d.state == DocState::Failed && d.error.as_deref().is_some_and(failed_for_now);
        d.state != DocState::Pending && !retry && d.embedder == self.embedder.id()
    }

    /// `path` is no longer a file: its document goes, unless its whole folder is
    /// gone (an unplugged disk, an unmounted share: kept until it is back or the
    /// user forgets it) or the removal may be half of a move.
    pub(super) async fn gone(
        &self,
        root: &WatchRoot,
        rel: &str,
        path: &Path,
        existing: Option<&DocumentRecord>,
    ) -> Result<Step> {
        let Some(d) = existing else {
            return Ok(Step::Done);
        };
        if !root.path.exists() {
            return Ok(Step::Done);
        }
        if self.defer_removal(path) {
            return Ok(Step::Requeued);
        }
        {
            let _writing = self.writing.lock().await;
            self.store.delete_document(&d.id).await?;
        }
        self.dirty.store(true, Ordering::SeqCst);
        self.publish(d, Change::Removed, None);
        tracing::info!(path = %rel, collection = %root.collection, "removed");
        Ok(Step::Done)
    }

    /// Extracts `path` in a child process and chunks its pages.
    pub(super) async fn extract_and_chunk(
        &self,
        path: &Path,
        root: WatchRoot,
        rel: String,
        id: String,
        doc: DocumentRecord,
    ) -> Result<Step> {
        let started = Instant::now();
        // With OCR on, a PDF is first read for its text layer only; one with pages
        // to read by OCR waits until the files with text are done (as images do),
        // and is then read again with OCR.
        let pass = if self.limits.ocr.is_none() {
            OcrPass::Off
        } else if self.waits_for_ocr(path) {
            OcrPass::Run
        } else {
            OcrPass::Detect
        };
        let on_page = |done: u32, total: u32| {
            self.events.ocr(Some(OcrProgress {
                collection: root.collection.clone(),
                path: rel.clone(),
                done,
                total,
            }));
            self.publish_progress();
        };
        let extraction = isolate::extract(path, &self.limits, pass, &on_page).await;
        if pass == OcrPass::Run {
            self.events.ocr(None);
            self.lock_ocr_wait().remove(path);
        }
        let extraction = extraction?;
        if pass == OcrPass::Detect
            && let Extraction::Ok(e) = &extraction
            && !e.ocr_wanted.is_empty()
        {
            tracing::info!(path = %rel, pages = e.ocr_wanted.len(), "pages to read by OCR; after the files with text");
            self.lock_ocr_wait().insert(path.to_path_buf());
            self.requeue(path, Instant::now());
            return Ok(Step::Requeued);
        }
        self.stats
            .extract_us
            .fetch_add(started.elapsed().as_micros() as u64, Ordering::SeqCst);
        self.stats
            .documents_extracted
            .fetch_add(1, Ordering::SeqCst);
        let mut extracted = match extraction {
            Extraction::Ok(e) => e,
            Extraction::Failed(why) => return Ok(Step::Fail(Box::new(doc), why.to_string())),
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
            root,
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

    /// Whether the removal of gone `path` waits: it does while other work is
    /// queued (once per burst: a path already deferred is not deferred again until
    /// the rest has been done).
    pub(super) fn defer_removal(&self, path: &Path) -> bool {
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
    pub(super) async fn moved_from(&self, hash: &str) -> Result<Option<DocumentRecord>> {
        let embedder_id = self.embedder.id();
        for d in self.store.documents_with_hash(hash).await? {
            if d.state == DocState::Indexed && d.embedder == embedder_id && !d.file().exists() {
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
    pub(super) async fn move_document(
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
        let Some(_writing) = self.may_write(&root.collection).await else {
            return Ok(());
        };
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
                    at: Location {
                        document_id: id.to_string(),
                        collection: root.collection.clone(),
                        path: rel.to_string(),
                        ..c.at
                    },
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
    pub(super) fn record(
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
            abs_path: docchat_store::stored_path(path),
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
}

/// The size and blake3 hash of the file at `path`, read in pieces: a file of any
/// size is hashed in a fixed amount of memory.
fn hash_file(path: &Path) -> std::io::Result<(u64, String)> {
    let mut hasher = blake3::Hasher::new();
    let n = std::io::copy(&mut std::fs::File::open(path)?, &mut hasher)?;
    Ok((n, hasher.finalize().to_hex().to_string()))
}

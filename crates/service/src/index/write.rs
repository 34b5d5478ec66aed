//! The indexer's second half: chunks embedded (only those without a vector) and
//! documents written, in batches, or a long new one in parts.

use super::prepare::{OUTSIDE, failed_for_now};
use super::*;
use docchat_core::Location;

impl Indexer {
    /// The write lock, if documents of `collection` may still be written (its
    /// folder is watched); `None`, and nothing may be written, otherwise.
    pub(super) async fn may_write(
        &self,
        collection: &str,
    ) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        let guard = self.writing.lock().await;
        if self.has_collection(collection) {
            Some(guard)
        } else {
            tracing::info!(collection, "not written: the folder is no longer watched");
            None
        }
    }

    /// Embeds the chunks of prepared `work` that have no vector yet and writes the
    /// document.
    pub(super) async fn finish(&self, work: Work) -> Result<()> {
        let embedded = self.embed_work(work).await?;
        self.store_embedded(embedded).await
    }

    /// Embeds the chunks of `work` that have no vector yet; nothing is written.
    pub(super) async fn embed_work(&self, mut work: Work) -> Result<Embedded> {
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
    pub(super) async fn embed_missing(
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
    pub(super) fn indexed_row(&self, work: Work, chunks: usize, embedded: usize) -> DocumentRecord {
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
    pub(super) async fn write_in_parts(&self, mut work: Work) -> Result<()> {
        if self.store.document(&work.id).await?.is_some() {
            return self.finish(work).await;
        }
        let collection = work.root.collection.clone();
        {
            let Some(_writing) = self.may_write(&collection).await else {
                return Ok(());
            };
            self.store.put_document(&work.doc).await?;
        }
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
            let Some(_writing) = self.may_write(&collection).await else {
                return Ok(());
            };
            self.store.append_chunks(&records).await?;
            self.dirty.store(true, Ordering::SeqCst);
            first += n;
            tracing::debug!(path = %work.rel, written = first, total, "part written");
        }
        let doc = self.indexed_row(work, total, embedded);
        {
            let Some(_writing) = self.may_write(&collection).await else {
                return Ok(());
            };
            self.store.put_document(&doc).await?;
        }
        self.written(&[(doc, Change::Indexed)]).await;
        Ok(())
    }

    /// Writes one embedded document: its chunks replace any stored ones, then its
    /// manifest row.
    pub(super) async fn store_embedded(&self, e: Embedded) -> Result<()> {
        let Embedded {
            doc,
            records,
            stored,
        } = e;
        {
            let Some(_writing) = self.may_write(&doc.collection).await else {
                return Ok(());
            };
            if stored {
                self.store.replace_chunks(&doc.id, &records).await?;
                self.store.put_document(&doc).await?;
            } else {
                // Nothing of this document is stored: one append each, no delete.
                self.store.append_chunks(&records).await?;
                self.store.insert_document(&doc).await?;
            }
        }
        self.written(&[(doc, Change::Indexed)]).await;
        Ok(())
    }

    /// Writes new documents (no manifest row yet) together: all their chunks in
    /// one append, then all their rows in one. A crash in between leaves orphan
    /// chunks only, removed at the next start. Documents of a folder no longer
    /// watched are left out.
    pub(super) async fn store_new(
        &self,
        chunks: &[ChunkRecord],
        mut rows: Vec<(DocumentRecord, Change)>,
    ) -> Result<()> {
        {
            let _writing = self.writing.lock().await;
            let before = rows.len();
            rows.retain(|(d, _)| self.has_collection(&d.collection));
            if rows.is_empty() {
                return Ok(());
            }
            let kept: Vec<ChunkRecord>;
            let chunks = if rows.len() == before {
                chunks
            } else {
                kept = chunks
                    .iter()
                    .filter(|c| rows.iter().any(|(d, _)| d.id == c.at.document_id))
                    .cloned()
                    .collect();
                &kept
            };
            self.store.append_chunks(chunks).await?;
            crate::hooks::pause(crate::hooks::NEW_ROWS).await;
            let docs: Vec<DocumentRecord> = rows.iter().map(|(d, _)| d.clone()).collect();
            self.store.insert_documents(&docs).await?;
        }
        self.written(&rows).await;
        Ok(())
    }

    /// After documents are written: events, logs, compaction during long runs.
    pub(super) async fn written(&self, rows: &[(DocumentRecord, Change)]) {
        self.dirty.store(true, Ordering::SeqCst);
        for (doc, change) in rows {
            self.publish(doc, *change, None);
            self.schedule_retry(doc);
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
        if before / COMPACT_EVERY != (before + rows.len() as u64) / COMPACT_EVERY
            && let Err(e) = self.store.compact().await
        {
            tracing::warn!(error = %e, "compaction failed");
        }
    }

    /// Records that `doc` failed. The chunks of its previous version stay
    /// searchable until a new version is extracted (a failure on a busy machine
    /// or an unreadable moment must not empty a good index), except for a link
    /// that now leads out of the folder.
    pub(super) async fn fail(&self, doc: DocumentRecord, reason: String) -> Result<()> {
        let doc = {
            let Some(_writing) = self.may_write(&doc.collection).await else {
                return Ok(());
            };
            let previous = self.store.document(&doc.id).await?;
            let doc = failed_row(doc, reason, previous.as_ref());
            if previous.is_some() {
                if doc.chunks == 0 {
                    self.store.replace_chunks(&doc.id, &[]).await?;
                }
                self.store.put_document(&doc).await?;
            } else {
                self.store.insert_document(&doc).await?;
            }
            doc
        };
        self.written(&[(doc, Change::Failed)]).await;
        Ok(())
    }

    /// The writing task: takes what is ready (up to [`WRITE_BATCH`] documents)
    /// and writes the new documents among them in one go.
    pub(super) async fn write_batch(&self, jobs: Vec<(PathBuf, Step)>) {
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
                        rows.push((failed_row(*doc, reason, None), Change::Failed));
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

    pub(super) async fn flush_new(
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

impl Indexer {
    /// A document that failed for a reason that may pass is looked at again after
    /// a while, waiting longer after each failure; any other outcome ends that.
    fn schedule_retry(&self, doc: &DocumentRecord) {
        let path = doc.file();
        let mut tries = self
            .read_tries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let transient =
            doc.state == DocState::Failed && doc.error.as_deref().is_some_and(failed_for_now);
        if !transient {
            tries.remove(&path);
            return;
        }
        let n = tries.entry(path.clone()).or_insert(0);
        *n += 1;
        if *n <= MAX_READ_TRIES {
            let wait = read_retry_wait(*n);
            tracing::info!(path = %doc.path, try_after_s = wait.as_secs(), "will try to read it again");
            self.look_again(&path, Instant::now() + wait);
        }
    }
}

/// The manifest row of a document that failed; the chunks of `previous` (its
/// row before) are kept, and counted, unless the reason is [`OUTSIDE`].
pub(super) fn failed_row(
    mut doc: DocumentRecord,
    reason: String,
    previous: Option<&DocumentRecord>,
) -> DocumentRecord {
    doc.state = DocState::Failed;
    doc.indexed_at_ms = now_ms();
    match previous.filter(|p| p.chunks > 0 && reason != OUTSIDE) {
        Some(p) => {
            doc.error = Some(format!("{reason} (the previous version stays searchable)"));
            doc.chunks = p.chunks;
            doc.pages = p.pages;
            doc.extractor.clone_from(&p.extractor);
            doc.title.clone_from(&p.title);
            doc.author.clone_from(&p.author);
        }
        None => {
            doc.error = Some(reason);
            doc.chunks = 0;
        }
    }
    doc
}

/// The chunk rows of `drafts`, numbered from `first`, each with its text's vector
/// from `vectors` (moved out at the text's last use).
pub(super) fn into_records(
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
                at: Location {
                    document_id: id.to_string(),
                    collection: root.collection.clone(),
                    path: rel.to_string(),
                    page_start: d.page_start,
                    page_end: d.page_end,
                    byte_start: d.byte_start,
                    byte_end: d.byte_end,
                    match_start: d.byte_start,
                    match_end: d.byte_end,
                },
                hash: d.hash,
                text: d.text,
                vector: vector.unwrap_or_default(),
            }
        })
        .collect()
}

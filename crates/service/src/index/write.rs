//! The indexer's second half: chunks embedded (only those without a vector) and
//! documents written, in batches, or a long new one in parts.

use super::*;
use docchat_core::Location;

impl Indexer {
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
    pub(super) async fn store_embedded(&self, e: Embedded) -> Result<()> {
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
    pub(super) async fn store_new(
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
    pub(super) async fn written(&self, rows: &[(DocumentRecord, Change)]) {
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
        if before / COMPACT_EVERY != (before + rows.len() as u64) / COMPACT_EVERY
            && let Err(e) = self.store.compact().await
        {
            tracing::warn!(error = %e, "compaction failed");
        }
    }

    pub(super) async fn fail(&self, doc: DocumentRecord, reason: String) -> Result<()> {
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

/// The manifest row of a document that failed.
pub(super) fn failed_row(mut doc: DocumentRecord, reason: String) -> DocumentRecord {
    doc.state = DocState::Failed;
    doc.error = Some(reason);
    doc.chunks = 0;
    doc.indexed_at_ms = now_ms();
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

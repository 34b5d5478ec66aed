use crate::arrow_rows::{
    Columns, chunks_batch, chunks_schema, documents_batch, documents_from, documents_schema,
    hits_from, keyword_batch, keyword_fields, vector_dim,
};
use crate::arrow_rows::{chunks_from, hits_from_plain};
use crate::keywords::{self, Language};
use crate::location::Location;
use crate::{ChunkRecord, DocState, DocumentRecord, Error, Result, SearchFilter, SearchHit};
use arrow_array::{RecordBatch, RecordBatchIterator};
use futures::TryStreamExt;
use lancedb::index::Index;
use lancedb::index::scalar::{FtsIndexBuilder, FullTextSearchQuery};
use lancedb::index::vector::IvfHnswSqIndexBuilder;
use lancedb::query::{ExecutableQuery, QueryBase, Select};
use lancedb::table::{CompactionOptions, OptimizeAction, OptimizeOptions};
use lancedb::{Connection, DistanceType, Table};
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

const DOCUMENTS: &str = "documents";
const CHUNKS: &str = "chunks";

/// Columns returned by searches (everything but the vector).
const HIT_COLUMNS: [&str; 10] = [
    "id",
    "document_id",
    "collection",
    "path",
    "page_start",
    "page_end",
    "byte_start",
    "byte_end",
    "hash",
    "text",
];

/// The LanceDB database of one docchat data directory.
#[derive(Clone)]
pub struct Store {
    documents: Table,
    chunks: Table,
    dim: usize,
    tuning: SearchTuning,
    indexes: Arc<Indexes>,
    access: Access,
}

/// How a process uses a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// The only writer: creates, writes, builds the search indexes.
    Write,
    /// A reader: reads what the writer made, at most `refresh` behind it.
    Read {
        /// How stale a read may be before the store is checked for new versions.
        refresh: std::time::Duration,
    },
}

impl Access {
    fn refresh(self) -> Option<std::time::Duration> {
        match self {
            Access::Write => None,
            Access::Read { refresh } => Some(refresh),
        }
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("dim", &self.dim)
            .finish_non_exhaustive()
    }
}

/// Quotes a string for a LanceDB SQL filter.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The rows of `table` that match `filter` (all rows without one), with only
/// `columns` (all without), converted batch by batch.
async fn select<T>(
    table: &Table,
    filter: Option<String>,
    columns: Option<&[&str]>,
    convert: impl Fn(&RecordBatch) -> Result<Vec<T>>,
) -> Result<Vec<T>> {
    let mut query = table.query();
    if let Some(f) = filter {
        query = query.only_if(f);
    }
    if let Some(c) = columns {
        query = query.select(Select::columns(c));
    }
    let mut out = Vec::new();
    for b in &collect(query.execute().await?).await? {
        out.extend(convert(b)?);
    }
    Ok(out)
}

async fn collect(stream: lancedb::arrow::SendableRecordBatchStream) -> Result<Vec<RecordBatch>> {
    Ok(stream.try_collect::<Vec<_>>().await?)
}

impl Store {
    /// Opens (creating if needed) the database in `dir` for vectors of `dim`
    /// dimensions, to write.
    pub async fn open(dir: &Path, dim: usize) -> Result<Self> {
        Self::open_at(&Location::folder(dir), dim, Access::Write).await
    }

    /// Opens the database at `location` for vectors of `dim` dimensions. A writer
    /// creates the tables when missing and brings an old layout over; a reader
    /// only reads what a writer made, and sees its new versions within
    /// [`Access::Read`]'s `refresh`.
    pub async fn open_at(location: &Location, dim: usize, access: Access) -> Result<Self> {
        let db = location.connect(access.refresh()).await?;
        let names = db
            .table_names()
            .execute()
            .await
            .map_err(|e| location.unreachable(e))?;
        let (documents, mut chunks) = match access {
            Access::Write => (
                open_or_create(&db, &names, DOCUMENTS, documents_schema()).await?,
                open_or_create(&db, &names, CHUNKS, chunks_schema(dim)).await?,
            ),
            Access::Read { .. } => {
                if !names.iter().any(|n| n == CHUNKS) || !names.iter().any(|n| n == DOCUMENTS) {
                    return Err(Error::Location {
                        uri: location.uri().to_string(),
                        detail: "no docchat index here yet: start the writer \
                                 (docchat serve without --role reader) on this store first"
                            .into(),
                    });
                }
                (
                    db.open_table(DOCUMENTS).execute().await?,
                    db.open_table(CHUNKS).execute().await?,
                )
            }
        };
        let mut schema = chunks.schema().await?;
        if schema.field_with_name("keywords").is_err() {
            if access != Access::Write {
                return Err(Error::Location {
                    uri: location.uri().to_string(),
                    detail: "the index was made by an older docchat: start the writer on it \
                             once to bring it over"
                        .into(),
                });
            }
            if let Err(e) = add_keyword_columns(&chunks).await {
                // Another process opening the same old store at once may have
                // added them first, and this commit conflicted: that is fine.
                chunks = db.open_table(CHUNKS).execute().await?;
                if chunks.schema().await?.field_with_name("keywords").is_err() {
                    return Err(e);
                }
            }
            schema = chunks.schema().await?;
        }
        let found = vector_dim(&schema).unwrap_or(0);
        if found != dim {
            return Err(Error::DimensionMismatch {
                expected: dim,
                found,
            });
        }
        Ok(Self {
            documents,
            chunks,
            dim,
            tuning: SearchTuning::default(),
            indexes: Arc::default(),
            access,
        })
    }

    /// Opens an existing database in `dir` with the vector dimension it has (to read
    /// an index made by another embedding model).
    pub async fn open_any(dir: &Path) -> Result<Self> {
        let location = Location::folder(dir);
        let db = location.connect(None).await?;
        let names = db.table_names().execute().await?;
        if !names.iter().any(|n| n == CHUNKS) {
            return Err(Error::Schema {
                table: CHUNKS,
                detail: format!("no index in {}", dir.display()),
            });
        }
        let schema = db.open_table(CHUNKS).execute().await?.schema().await?;
        let dim = vector_dim(&schema).unwrap_or(0);
        Self::open(dir, dim).await
    }

    /// Whether this store only reads (a reader's).
    pub fn read_only(&self) -> bool {
        self.access != Access::Write
    }

    /// The same store with other search tuning.
    pub fn with_tuning(mut self, tuning: SearchTuning) -> Self {
        self.tuning = tuning;
        self
    }

    /// Vector dimension of the chunks table.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// All manifest rows.
    pub async fn documents(&self) -> Result<Vec<DocumentRecord>> {
        let mut out = select(&self.documents, None, None, documents_from).await?;
        out.sort_by(|a, b| (&a.collection, &a.path).cmp(&(&b.collection, &b.path)));
        Ok(out)
    }

    /// One manifest row.
    pub async fn document(&self, id: &str) -> Result<Option<DocumentRecord>> {
        let filter = format!("id = {}", quote(id));
        let rows = select(&self.documents, Some(filter), None, documents_from).await?;
        Ok(rows.into_iter().next())
    }

    /// The manifest rows of `ids` (missing ids are skipped), in one query.
    pub async fn documents_by_id(&self, ids: &[String]) -> Result<Vec<DocumentRecord>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let list: Vec<String> = ids.iter().map(|id| quote(id)).collect();
        let filter = format!("id IN ({})", list.join(", "));
        select(&self.documents, Some(filter), None, documents_from).await
    }

    /// Inserts or replaces a manifest row (one commit).
    pub async fn put_document(&self, doc: &DocumentRecord) -> Result<()> {
        let batch = documents_batch(std::slice::from_ref(doc))?;
        let schema = batch.schema();
        let reader = RecordBatchIterator::new(vec![Ok(batch)], schema);
        let mut merge = self.documents.merge_insert(&["id"]);
        merge
            .when_matched_update_all(None)
            .when_not_matched_insert_all();
        merge.execute(Box::new(reader)).await?;
        Ok(())
    }

    /// Appends the manifest row of a document that has none (one cheap commit;
    /// [`Store::put_document`] is the upsert).
    pub async fn insert_document(&self, doc: &DocumentRecord) -> Result<()> {
        self.insert_documents(std::slice::from_ref(doc)).await
    }

    /// Appends the manifest rows of documents that have none, in one commit.
    pub async fn insert_documents(&self, docs: &[DocumentRecord]) -> Result<()> {
        if !docs.is_empty() {
            let batch = documents_batch(docs)?;
            self.documents.add(batch).execute().await?;
        }
        Ok(())
    }

    /// Removes a document: the manifest row first, then its chunks. A crash in
    /// between leaves orphan chunks, which [`Store::remove_orphan_chunks`] clears.
    pub async fn delete_document(&self, id: &str) -> Result<()> {
        self.documents
            .delete(&format!("id = {}", quote(id)))
            .await?;
        self.chunks
            .delete(&format!("document_id = {}", quote(id)))
            .await?;
        self.chunks_changed();
        Ok(())
    }

    /// The stored vectors of a document's chunks, by chunk hash: unchanged chunks
    /// of an edited document are not embedded again.
    pub async fn chunk_vectors(&self, document_id: &str) -> Result<HashMap<String, Vec<f32>>> {
        let batches = collect(
            self.chunks
                .query()
                .only_if(format!("document_id = {}", quote(document_id)))
                .select(Select::columns(&["hash", "vector"]))
                .execute()
                .await?,
        )
        .await?;
        let mut out = HashMap::new();
        for b in &batches {
            let c = Columns::new(b, CHUNKS);
            let hashes = c.str("hash")?;
            let vectors = c.vectors("vector")?;
            let values = vectors
                .values()
                .as_any()
                .downcast_ref::<arrow_array::Float32Array>()
                .ok_or_else(|| Error::Schema {
                    table: CHUNKS,
                    detail: "vector items are not f32".into(),
                })?;
            let dim = vectors.value_length() as usize;
            for i in 0..b.num_rows() {
                let start = vectors.value_offset(i) as usize;
                out.insert(
                    hashes.value(i).to_string(),
                    values.values()[start..start + dim].to_vec(),
                );
            }
        }
        Ok(out)
    }

    /// All chunks of a document, vectors included, in order.
    pub async fn document_chunks(&self, document_id: &str) -> Result<Vec<ChunkRecord>> {
        let filter = format!("document_id = {}", quote(document_id));
        let mut out = select(&self.chunks, Some(filter), None, chunks_from).await?;
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    /// Manifest rows whose file has this content hash.
    pub async fn documents_with_hash(&self, content_hash: &str) -> Result<Vec<DocumentRecord>> {
        let filter = format!("content_hash = {}", quote(content_hash));
        select(&self.documents, Some(filter), None, documents_from).await
    }

    /// Replaces all chunks of a document with `chunks`.
    pub async fn replace_chunks(&self, document_id: &str, chunks: &[ChunkRecord]) -> Result<()> {
        self.chunks
            .delete(&format!("document_id = {}", quote(document_id)))
            .await?;
        if !chunks.is_empty() {
            let batch = chunks_batch(chunks, self.dim)?;
            self.chunks.add(batch).execute().await?;
            self.chunks_changed();
        }
        Ok(())
    }

    /// Number of chunks, of one document or of all.
    pub async fn count_chunks(&self, document_id: Option<&str>) -> Result<usize> {
        let filter = document_id.map(|id| format!("document_id = {}", quote(id)));
        Ok(self.chunks.count_rows(filter).await?)
    }

    /// Checks that chunks and manifest agree: what a crash must never leave behind.
    pub async fn integrity(&self) -> Result<Integrity> {
        let docs = self.documents().await?;
        // A pending document may have any number of chunks: the previous
        // version's while it is redone, the parts written so far of a long one.
        let expected: HashMap<&str, Option<u32>> = docs
            .iter()
            .map(|d| {
                // A failed document keeps the chunks of its last good version
                // (its row says how many), none if it never had one.
                let n = match d.state {
                    DocState::Indexed | DocState::Failed => Some(d.chunks),
                    DocState::Pending => None,
                };
                (d.id.as_str(), n)
            })
            .collect();
        let batches = collect(
            self.chunks
                .query()
                .select(Select::columns(&["id", "document_id"]))
                .execute()
                .await?,
        )
        .await?;
        let mut ids = HashSet::new();
        let mut per_doc: HashMap<String, u32> = HashMap::new();
        let mut report = Integrity::default();
        for b in &batches {
            let c = Columns::new(b, CHUNKS);
            let (id, doc) = (c.str("id")?, c.str("document_id")?);
            for i in 0..b.num_rows() {
                report.chunks += 1;
                if !ids.insert(id.value(i).to_string()) {
                    report.duplicate_chunk_ids += 1;
                }
                if expected.contains_key(doc.value(i)) {
                    *per_doc.entry(doc.value(i).to_string()).or_default() += 1;
                } else {
                    report.orphan_chunks += 1;
                }
            }
        }
        report.pending_documents = docs.iter().filter(|d| d.state == DocState::Pending).count();
        report.mismatched_ids = expected
            .iter()
            .filter(|(id, n)| n.is_some_and(|n| per_doc.get(**id).copied().unwrap_or(0) != n))
            .map(|(id, _)| (*id).to_string())
            .collect();
        report.mismatched_ids.sort();
        report.mismatched_documents = report.mismatched_ids.len();
        Ok(report)
    }

    /// Repairs what [`Store::integrity`] finds: chunks of no document are removed,
    /// and a document whose stored chunks differ from its row is marked `pending`, so
    /// the indexer redoes it (reusing the vectors of the chunks it has). Returns how
    /// many of each. Must not run while documents are being written.
    pub async fn repair(&self) -> Result<(usize, usize)> {
        let orphans = self.remove_orphan_chunks().await?;
        let report = self.integrity().await?;
        let mut marked = 0;
        for id in &report.mismatched_ids {
            if let Some(mut d) = self.document(id).await? {
                d.state = DocState::Pending;
                self.put_document(&d).await?;
                marked += 1;
            }
        }
        Ok((orphans, marked))
    }

    /// Removes every document and chunk of `collection` (the files stay). Safe to
    /// run again after a failure half-way: what is left goes the next time.
    /// Returns how many documents and chunks there were.
    pub async fn delete_collection(&self, collection: &str) -> Result<(usize, usize)> {
        let filter = format!("collection = {}", quote(collection));
        let docs = self.documents.count_rows(Some(filter.clone())).await?;
        let chunks = self.chunks.count_rows(Some(filter.clone())).await?;
        // Rows first: a stop in between leaves chunks of no document, which the
        // next start removes, never a row whose chunks are gone.
        if docs > 0 {
            self.documents.delete(&filter).await?;
        }
        if chunks > 0 {
            self.chunks.delete(&filter).await?;
            self.chunks_changed();
        }
        Ok((docs, chunks))
    }

    /// Deletes chunks whose document is not in the manifest (left by a crash).
    pub async fn remove_orphan_chunks(&self) -> Result<usize> {
        let known: HashSet<String> = self.documents().await?.into_iter().map(|d| d.id).collect();
        let batches = collect(
            self.chunks
                .query()
                .select(Select::columns(&["document_id"]))
                .execute()
                .await?,
        )
        .await?;
        let mut orphans = HashSet::new();
        for b in &batches {
            let ids = Columns::new(b, CHUNKS).str("document_id")?;
            for i in 0..b.num_rows() {
                if !known.contains(ids.value(i)) {
                    orphans.insert(ids.value(i).to_string());
                }
            }
        }
        let mut removed = 0;
        for id in orphans {
            let filter = format!("document_id = {}", quote(&id));
            removed += self.chunks.count_rows(Some(filter.clone())).await?;
            self.chunks.delete(&filter).await?;
            self.chunks_changed();
        }
        Ok(removed)
    }

    /// The `k` chunks nearest to `vector` (cosine), best first. Below
    /// [`SearchTuning::vector_index_min_rows`] the search is exact; above it the
    /// ANN index answers, its candidates re-ranked by exact distance, and rows not
    /// yet in the index are searched exactly.
    pub async fn vector_search(
        &self,
        vector: &[f32],
        k: usize,
        filter: &SearchFilter,
    ) -> Result<Vec<SearchHit>> {
        let mut query = self
            .chunks
            .query()
            .nearest_to(vector)?
            .distance_type(DistanceType::Cosine)
            .nprobes(self.tuning.nprobes)?
            .refine_factor(self.tuning.refine_factor)
            .select(Select::columns(&HIT_COLUMNS))
            .limit(k.max(1));
        if let Some(f) = self.filter_sql(filter).await? {
            query = query.only_if(f);
        }
        let batches = collect(query.execute().await?).await?;
        let mut hits = Vec::new();
        for b in &batches {
            hits.extend(hits_from(b, "_distance", |d| 1.0 - d)?);
        }
        hits.sort_by(|a, b| b.score.total_cmp(&a.score));
        Ok(hits)
    }

    /// The `k` chunks that best match `query` by BM25 over their words (stemmed,
    /// stop words removed, each chunk in its own language), best first. Rows
    /// written since the full-text index was last updated are searched too.
    pub async fn keyword_search(
        &self,
        query: &str,
        k: usize,
        filter: &SearchFilter,
    ) -> Result<Vec<SearchHit>> {
        let words = self.query_keywords(query).await?;
        self.keyword_search_words(&words, k, filter).await
    }

    /// [`Store::keyword_search`] for a question already analysed
    /// ([`Store::query_keywords`]).
    pub async fn keyword_search_words(
        &self,
        words: &QueryKeywords,
        k: usize,
        filter: &SearchFilter,
    ) -> Result<Vec<SearchHit>> {
        if words.words.is_empty() || !self.ensure_fts_index().await? {
            return Ok(Vec::new());
        }
        let fts = FullTextSearchQuery::new(words.words.join(" "))
            .with_column("keywords".to_string())
            .map_err(lancedb::Error::from)?
            .limit(Some(k.max(1) as i64));
        let mut q = self
            .chunks
            .query()
            .full_text_search(fts)
            .select(Select::columns(&HIT_COLUMNS))
            .limit(k.max(1));
        if let Some(f) = self.filter_sql(filter).await? {
            q = q.only_if(f);
        }
        let batches = collect(q.execute().await?).await?;
        let mut hits = Vec::new();
        for b in &batches {
            hits.extend(hits_from(b, "_score", |s| s)?);
        }
        hits.sort_by(|a, b| b.score.total_cmp(&a.score));
        Ok(hits)
    }

    /// How `query` is analysed for the keyword index: in its own language when its
    /// words tell one, else in each language the index holds (its words then match
    /// chunks of any of them).
    pub async fn query_keywords(&self, query: &str) -> Result<QueryKeywords> {
        let (langs, told) = match keywords::detect(query) {
            Some(lang) => (vec![lang], true),
            None => {
                let mut langs: Vec<Language> = self
                    .languages()
                    .await?
                    .into_iter()
                    .map(|(l, _)| l)
                    .collect();
                if langs.is_empty() {
                    langs.push(Language::English);
                }
                (langs, false)
            }
        };
        let mut words: Vec<String> = Vec::new();
        for lang in &langs {
            for w in keywords::analyse(query, *lang) {
                if !words.contains(&w) {
                    words.push(w);
                }
            }
        }
        Ok(QueryKeywords { langs, told, words })
    }

    /// The languages of the indexed chunks, with how many chunks each, most first.
    pub async fn languages(&self) -> Result<Vec<(Language, usize)>> {
        if let Some(langs) = self.indexes.languages.lock().expect("poisoned").clone() {
            return Ok(langs);
        }
        let batches = collect(
            self.chunks
                .query()
                .select(Select::columns(&["lang"]))
                .execute()
                .await?,
        )
        .await?;
        let mut counts: HashMap<Language, usize> = HashMap::new();
        for b in &batches {
            let codes = Columns::new(b, CHUNKS).str("lang")?;
            for code in codes.iter().flatten() {
                if let Some(lang) = Language::from_code(code) {
                    *counts.entry(lang).or_default() += 1;
                }
            }
        }
        let mut langs: Vec<(Language, usize)> = counts.into_iter().collect();
        langs.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        if !self.read_only() {
            // A reader's store changes under it: it reads them each time.
            *self.indexes.languages.lock().expect("poisoned") = Some(langs.clone());
        }
        Ok(langs)
    }

    /// Forgets the cached [`Store::languages`] after a write.
    fn chunks_changed(&self) {
        *self.indexes.languages.lock().expect("poisoned") = None;
    }

    /// Chunks by id (for neighbour expansion), with score 0; missing ids are
    /// skipped.
    pub async fn chunks_by_id(&self, ids: &[String]) -> Result<Vec<SearchHit>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let list: Vec<String> = ids.iter().map(|id| quote(id)).collect();
        let filter = format!("id IN ({})", list.join(", "));
        select(
            &self.chunks,
            Some(filter),
            Some(&HIT_COLUMNS),
            hits_from_plain,
        )
        .await
    }

    /// Creates the full-text index when it is missing and there is text to index.
    /// Returns whether it exists.
    async fn ensure_fts_index(&self) -> Result<bool> {
        if self.indexes.fts.load(Ordering::Acquire) {
            return Ok(true);
        }
        if self.read_only() {
            // The writer builds it; until then a reader finds no keyword hits.
            let has = self.has_index(FTS_INDEX).await?;
            self.indexes.fts.store(has, Ordering::Release);
            return Ok(has);
        }
        let _guard = self.indexes.building.lock().await;
        if self.indexes.fts.load(Ordering::Acquire) {
            return Ok(true);
        }
        if self.has_index(OLD_FTS_INDEX).await? {
            self.chunks.drop_index(OLD_FTS_INDEX).await?;
        }
        if !self.has_index(FTS_INDEX).await? {
            if self.chunks.count_rows(None).await? == 0 {
                return Ok(false);
            }
            // The words are analysed already, each chunk in its language: the
            // index only splits them.
            let params =
                FtsIndexBuilder::new("whitespace".to_string(), lance_tokenizer::Language::English)
                    .lower_case(false)
                    .stem(false)
                    .remove_stop_words(false)
                    .ascii_folding(false);
            self.chunks
                .create_index(&["keywords"], Index::FTS(params))
                .name(FTS_INDEX.to_string())
                .execute()
                .await?;
            tracing::info!("full-text index created");
        }
        self.indexes.fts.store(true, Ordering::Release);
        Ok(true)
    }

    async fn has_index(&self, name: &str) -> Result<bool> {
        Ok(self
            .chunks
            .list_indices()
            .await?
            .iter()
            .any(|i| i.name == name))
    }

    /// Brings the search indexes up to date: creates the full-text index, creates
    /// the vector index once the table is large enough, folds new rows into both,
    /// compacts small fragments and drops old versions. Meant for the background,
    /// when indexing is idle; searches are correct without it, only slower.
    pub async fn optimize(&self) -> Result<IndexReport> {
        self.ensure_fts_index().await?;
        let _guard = self.indexes.building.lock().await;
        let rows = self.chunks.count_rows(None).await?;
        let mut report = IndexReport {
            rows,
            ..IndexReport::default()
        };
        let min_rows = self.tuning.vector_index_min_rows;
        if min_rows > 0 && rows >= min_rows && !self.has_index(VECTOR_INDEX).await? {
            self.create_vector_index().await?;
            report.vector_index_built = true;
        }
        self.compact().await?;
        for table in [&self.chunks, &self.documents] {
            table
                .optimize(OptimizeAction::Prune {
                    older_than: Some(chrono::Duration::minutes(10)),
                    delete_unverified: None,
                    error_if_tagged_old_versions: None,
                })
                .await?;
        }
        self.chunks
            .optimize(OptimizeAction::Index(OptimizeOptions::default()))
            .await?;
        report.fts_index = self.has_index(FTS_INDEX).await?;
        report.vector_index = self.has_index(VECTOR_INDEX).await?;
        Ok(report)
    }

    /// Merges the small fragments that per-document writes leave (both tables);
    /// indexes are remapped, not rebuilt.
    pub async fn compact(&self) -> Result<()> {
        for table in [&self.chunks, &self.documents] {
            table
                .optimize(OptimizeAction::Compact {
                    options: CompactionOptions::default(),
                    remap_options: None,
                })
                .await?;
        }
        Ok(())
    }

    /// Builds the ANN vector index now, whatever the table's size (replacing one
    /// that exists). [`Store::optimize`] does this once the table is large enough.
    pub async fn build_vector_index(&self) -> Result<()> {
        let _guard = self.indexes.building.lock().await;
        self.create_vector_index().await
    }

    async fn create_vector_index(&self) -> Result<()> {
        let started = std::time::Instant::now();
        self.chunks
            .create_index(
                &["vector"],
                Index::IvfHnswSq(
                    IvfHnswSqIndexBuilder::default().distance_type(DistanceType::Cosine),
                ),
            )
            .name(VECTOR_INDEX.to_string())
            .replace(true)
            .execute()
            .await?;
        let rows = self.chunks.count_rows(None).await?;
        let ms = started.elapsed().as_millis() as u64;
        tracing::info!(rows, ms, "vector index built");
        Ok(())
    }

    /// Drops the ANN vector index (searches become exact), if there is one.
    pub async fn drop_vector_index(&self) -> Result<()> {
        let _guard = self.indexes.building.lock().await;
        if self.has_index(VECTOR_INDEX).await? {
            self.chunks.drop_index(VECTOR_INDEX).await?;
        }
        Ok(())
    }

    /// Appends chunks in one commit (bulk loads; [`Store::replace_chunks`] is the
    /// per-document path).
    pub async fn append_chunks(&self, chunks: &[ChunkRecord]) -> Result<()> {
        if !chunks.is_empty() {
            let batch = chunks_batch(chunks, self.dim)?;
            self.chunks.add(batch).execute().await?;
            self.chunks_changed();
        }
        Ok(())
    }

    /// The SQL condition of `filter`, if it restricts anything.
    async fn filter_sql(&self, filter: &SearchFilter) -> Result<Option<String>> {
        let documents = if filter.has_dates() {
            let after = filter.modified_after_ms.unwrap_or(i64::MIN);
            let before = filter.modified_before_ms.unwrap_or(i64::MAX);
            let batches = collect(
                self.documents
                    .query()
                    .only_if(format!("mtime_ms >= {after} AND mtime_ms < {before}"))
                    .select(Select::columns(&["id"]))
                    .execute()
                    .await?,
            )
            .await?;
            let mut ids = Vec::new();
            for b in &batches {
                let c = Columns::new(b, DOCUMENTS).str("id")?;
                ids.extend((0..b.num_rows()).map(|i| c.value(i).to_string()));
            }
            Some(ids)
        } else {
            None
        };
        let documents = match (documents, filter.documents.is_empty()) {
            (d, true) => d,
            (None, false) => Some(filter.documents.clone()),
            (Some(d), false) => Some(
                d.into_iter()
                    .filter(|i| filter.documents.contains(i))
                    .collect(),
            ),
        };
        Ok(filter_sql(filter, documents.as_deref()))
    }
}

/// Index names.
const FTS_INDEX: &str = "keywords_fts";
/// The full-text index of stores made before chunks had `keywords`: over `text`,
/// analysed as English.
const OLD_FTS_INDEX: &str = "text_fts";
const VECTOR_INDEX: &str = "vector_ann";

/// How searches use the indexes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SearchTuning {
    /// The vector index is built once the chunk table has this many rows (0:
    /// never); below it exact search is fast enough. See BENCHMARKS.md.
    pub vector_index_min_rows: usize,
    /// IVF partitions probed per query.
    pub nprobes: usize,
    /// ANN candidates re-ranked by exact distance, as a multiple of `k`.
    pub refine_factor: u32,
}

impl Default for SearchTuning {
    fn default() -> Self {
        Self {
            vector_index_min_rows: 10_000,
            nprobes: 20,
            refine_factor: 4,
        }
    }
}

/// What [`Store::integrity`] found; all zero but `chunks` in a healthy index.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Integrity {
    /// Chunk rows.
    pub chunks: usize,
    /// Rows whose chunk id another row has too.
    pub duplicate_chunk_ids: usize,
    /// Rows whose document is not in the manifest.
    pub orphan_chunks: usize,
    /// Documents left `pending`.
    pub pending_documents: usize,
    /// Documents whose stored chunk count differs from their rows (pending ones
    /// are not counted).
    pub mismatched_documents: usize,
    /// Their ids.
    #[serde(skip)]
    pub mismatched_ids: Vec<String>,
}

/// What [`Store::optimize`] found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexReport {
    /// Chunks in the table.
    pub rows: usize,
    /// Whether the full-text index exists.
    pub fts_index: bool,
    /// Whether the vector index exists.
    pub vector_index: bool,
    /// Whether this call built the vector index.
    pub vector_index_built: bool,
}

/// Index state shared by the clones of a store.
#[derive(Debug, Default)]
struct Indexes {
    fts: AtomicBool,
    building: tokio::sync::Mutex<()>,
    languages: std::sync::Mutex<Option<Vec<(Language, usize)>>>,
}

/// A question as the keyword index reads it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct QueryKeywords {
    /// The languages it was analysed in.
    pub langs: Vec<Language>,
    /// Whether its language was told from its words (else it was analysed in
    /// each language of the index).
    pub told: bool,
    /// Its analysed words, in order, each once.
    pub words: Vec<String>,
}

/// Adds `lang` and `keywords` to a chunks table made before they existed, from
/// each row's text, in one commit; the full-text index over `text` is replaced
/// on its next use ([`Store::keyword_search`], [`Store::optimize`]).
async fn add_keyword_columns(chunks: &Table) -> Result<()> {
    let started = std::time::Instant::now();
    let mapper = |batch: &RecordBatch| {
        let texts = Columns::new(batch, CHUNKS)
            .str("text")
            .map_err(|e| lance::Error::invalid_input(e.to_string()))?;
        let texts: Vec<&str> = texts.iter().map(|t| t.unwrap_or("")).collect();
        keyword_batch(&texts).map_err(|e| lance::Error::invalid_input(e.to_string()))
    };
    let udf = lance::dataset::BatchUDF {
        mapper: Box::new(mapper),
        output_schema: keyword_fields(),
        result_checkpoint: None,
    };
    chunks
        .add_columns()
        .transform(lancedb::table::NewColumnTransform::BatchUDF(udf))
        .read_columns(["text"])
        .execute()
        .await?;
    let rows = chunks.count_rows(None).await?;
    let ms = started.elapsed().as_millis() as u64;
    tracing::info!(
        rows,
        ms,
        "chunks analysed for the language-aware keyword index"
    );
    Ok(())
}

/// Escapes a literal for a SQL `LIKE` pattern (with `\` as the escape character).
fn like_literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Turns a glob into a `LIKE` pattern: `*` is `%`, `?` is `_`.
fn glob_like(glob: &str) -> String {
    let mut out = String::with_capacity(glob.len());
    for c in glob.chars() {
        match c {
            '*' => {
                if !out.ends_with('%') || out.ends_with("\\%") {
                    out.push('%');
                }
            }
            '?' => out.push('_'),
            c => out.push_str(&like_literal(&c.to_string())),
        }
    }
    out
}

/// The SQL condition of `filter`; `documents` is the set of document ids allowed
/// by its dates, when it has any.
fn filter_sql(filter: &SearchFilter, documents: Option<&[String]>) -> Option<String> {
    let mut parts = Vec::new();
    if !filter.collections.is_empty() {
        let list: Vec<String> = filter.collections.iter().map(|c| quote(c)).collect();
        parts.push(format!("collection IN ({})", list.join(", ")));
    }
    if let Some(prefix) = filter.path_prefix.as_deref().filter(|p| !p.is_empty()) {
        parts.push(format!(
            "path LIKE {} ESCAPE '\\'",
            quote(&format!("{}%", like_literal(prefix)))
        ));
    }
    if let Some(glob) = filter.path_glob.as_deref().filter(|g| !g.is_empty()) {
        parts.push(format!("path LIKE {} ESCAPE '\\'", quote(&glob_like(glob))));
    }
    if !filter.extensions.is_empty() {
        let ors: Vec<String> = filter
            .extensions
            .iter()
            .map(|e| {
                let e = e.trim_start_matches('.').to_lowercase();
                format!(
                    "lower(path) LIKE {} ESCAPE '\\'",
                    quote(&format!("%.{}", like_literal(&e)))
                )
            })
            .collect();
        parts.push(format!("({})", ors.join(" OR ")));
    }
    if let Some(ids) = documents {
        if ids.is_empty() {
            parts.push("false".into());
        } else {
            let list: Vec<String> = ids.iter().map(|id| quote(id)).collect();
            parts.push(format!("document_id IN ({})", list.join(", ")));
        }
    }
    (!parts.is_empty()).then(|| parts.join(" AND "))
}

async fn open_or_create(
    db: &Connection,
    names: &[String],
    name: &str,
    schema: arrow_schema::SchemaRef,
) -> Result<Table> {
    if names.iter().any(|n| n == name) {
        Ok(db.open_table(name).execute().await?)
    } else {
        Ok(db.create_empty_table(name, schema).execute().await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_quote_values() {
        assert_eq!(quote("it's"), "'it''s'");
        let f = SearchFilter::collections(vec!["a".into(), "b'c".into()]);
        assert_eq!(filter_sql(&f, None).unwrap(), "collection IN ('a', 'b''c')");
        assert_eq!(filter_sql(&SearchFilter::default(), None), None);
    }

    #[test]
    fn filters_combine_paths_types_and_dates() {
        let f = SearchFilter {
            path_prefix: Some("cases/2024_".into()),
            path_glob: Some("*/*.pdf".into()),
            extensions: vec![".PDF".into(), "docx".into()],
            ..SearchFilter::default()
        };
        assert_eq!(
            filter_sql(&f, Some(&["d1".into()])).unwrap(),
            "path LIKE 'cases/2024\\_%' ESCAPE '\\' AND path LIKE '%/%.pdf' ESCAPE '\\' \
             AND (lower(path) LIKE '%.pdf' ESCAPE '\\' OR lower(path) LIKE '%.docx' ESCAPE '\\') \
             AND document_id IN ('d1')"
        );
        assert_eq!(
            filter_sql(&SearchFilter::default(), Some(&[])).unwrap(),
            "false"
        );
        assert_eq!(glob_like("a**b?"), "a%b_");
        assert_eq!(glob_like("100%*"), "100\\%%");
    }
}

#[cfg(test)]
mod lance_tests {
    use super::*;
    use docchat_core::Location;

    fn doc(id: &str, collection: &str) -> DocumentRecord {
        DocumentRecord {
            id: id.into(),
            collection: collection.into(),
            path: format!("{id}.pdf"),
            abs_path: format!("/docs/{id}.pdf"),
            size: 1,
            mtime_ms: 1,
            content_hash: "h".into(),
            state: DocState::Indexed,
            error: None,
            pages: 1,
            chunks: 2,
            embedder: "e".into(),
            extractor: "x".into(),
            title: None,
            author: None,
            indexed_at_ms: 1,
        }
    }

    fn chunk(doc: &str, collection: &str, i: u32, v: [f32; 3]) -> ChunkRecord {
        ChunkRecord {
            id: format!("{doc}-{i}"),
            at: Location {
                document_id: doc.into(),
                collection: collection.into(),
                path: format!("{doc}.pdf"),
                page_start: i + 1,
                page_end: i + 1,
                byte_start: 0,
                byte_end: 4,
                match_start: 0,
                match_end: 4,
            },
            hash: format!("{doc}{i}"),
            text: format!("text {doc} {i}"),
            vector: v.to_vec(),
        }
    }

    fn said(doc: &str, text: &str) -> ChunkRecord {
        ChunkRecord {
            text: text.into(),
            ..chunk(doc, "c", 0, [1.0, 0.0, 0.0])
        }
    }

    const ITALIAN: &str = "I pacchetti sorgenti vengono compilati dal manutentore \
                           prima del caricamento nell'archivio.";
    const ENGLISH: &str = "The maintainer builds the source packages before they \
                           are uploaded to the archive.";
    const GERMAN: &str = "Der Betreuer baut die Quellpakete, bevor sie in das \
                          Archiv hochgeladen werden.";

    #[tokio::test]
    async fn each_chunk_is_searched_in_its_language_and_old_stores_migrate() {
        let dir = tempfile::tempdir().unwrap();
        let chunks = [said("it", ITALIAN), said("en", ENGLISH), said("de", GERMAN)];
        // A store of the previous layout: no `lang` or `keywords`, one full-text
        // index over `text` analysed as English.
        {
            let db = lancedb::connect(&dir.path().to_string_lossy())
                .execute()
                .await
                .unwrap();
            let full = chunks_batch(&chunks, 3).unwrap();
            let old = full.project(&(0..11).collect::<Vec<_>>()).unwrap();
            let table = db
                .create_empty_table(CHUNKS, old.schema())
                .execute()
                .await
                .unwrap();
            table.add(old).execute().await.unwrap();
            table
                .create_index(&["text"], Index::FTS(FtsIndexBuilder::default()))
                .name(OLD_FTS_INDEX.to_string())
                .execute()
                .await
                .unwrap();
            // There, an Italian question misses its Italian passage: English
            // stemming leaves "pacchetto" and "pacchetti" apart.
            let q = FullTextSearchQuery::new("Chi compila un pacchetto sorgente?".into());
            let found = collect(
                table
                    .query()
                    .full_text_search(q)
                    .select(Select::columns(&["id"]))
                    .execute()
                    .await
                    .unwrap(),
            )
            .await
            .unwrap();
            assert_eq!(found.iter().map(|b| b.num_rows()).sum::<usize>(), 0);
        }
        let store = Store::open(dir.path(), 3).await.unwrap();
        let schema = store.chunks.schema().await.unwrap();
        assert!(schema.field_with_name("keywords").is_ok());
        assert_eq!(store.count_chunks(None).await.unwrap(), 3);
        let mut langs = store.languages().await.unwrap();
        langs.sort();
        assert_eq!(
            langs,
            vec![
                (Language::English, 1),
                (Language::German, 1),
                (Language::Italian, 1)
            ]
        );

        let all = SearchFilter::default();
        let top = |hits: Vec<SearchHit>| hits.first().map(|h| h.at.document_id.clone());
        for (question, doc) in [
            ("Chi compila un pacchetto sorgente?", "it"),
            ("Who builds a source package?", "en"),
            ("Wer baut ein Quellpaket für das Archiv?", "de"),
        ] {
            let hits = store.keyword_search(question, 3, &all).await.unwrap();
            assert_eq!(top(hits), Some(doc.to_string()), "{question}");
        }
        assert!(!store.has_index(OLD_FTS_INDEX).await.unwrap());
        assert!(store.has_index(FTS_INDEX).await.unwrap());

        // Too short to tell: analysed in each language of the index.
        let short = store.query_keywords("Quellpakete").await.unwrap();
        assert!(!short.told);
        assert_eq!(short.langs.len(), 3);
        let hits = store.keyword_search("Quellpakete", 3, &all).await.unwrap();
        assert_eq!(top(hits), Some("de".to_string()));

        // Chunks written now are analysed on the way in, and the languages follow.
        store
            .replace_chunks(
                "fr",
                &[said(
                    "fr",
                    "Le responsable construit les paquets source avant leur envoi.",
                )],
            )
            .await
            .unwrap();
        let hits = store
            .keyword_search("Qui construit le paquet source ?", 3, &all)
            .await
            .unwrap();
        assert_eq!(top(hits), Some("fr".to_string()));
        assert_eq!(store.languages().await.unwrap().len(), 4);
    }

    #[tokio::test]
    async fn documents_chunks_search_and_repair() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 3).await.unwrap();
        store.put_document(&doc("a", "one")).await.unwrap();
        store.put_document(&doc("b", "two")).await.unwrap();
        store
            .replace_chunks(
                "a",
                &[
                    chunk("a", "one", 0, [1.0, 0.0, 0.0]),
                    chunk("a", "one", 1, [0.0, 1.0, 0.0]),
                ],
            )
            .await
            .unwrap();
        store
            .replace_chunks("b", &[chunk("b", "two", 0, [0.9, 0.1, 0.0])])
            .await
            .unwrap();

        // Upsert replaces, never duplicates.
        let mut a = doc("a", "one");
        a.state = DocState::Failed;
        a.error = Some("corrupt: x".into());
        store.put_document(&a).await.unwrap();
        let docs = store.documents().await.unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(store.document("a").await.unwrap().unwrap(), a);

        let hits = store
            .vector_search(&[1.0, 0.0, 0.0], 2, &SearchFilter::default())
            .await
            .unwrap();
        assert_eq!(hits[0].chunk_id, "a-0");
        assert!((hits[0].score - 1.0).abs() < 1e-5);
        assert_eq!(hits[1].chunk_id, "b-0");
        let only_two = SearchFilter::collections(vec!["two".into()]);
        let hits = store
            .vector_search(&[1.0, 0.0, 0.0], 5, &only_two)
            .await
            .unwrap();
        assert!(hits.iter().all(|h| h.at.collection == "two"));

        let vectors = store.chunk_vectors("a").await.unwrap();
        assert_eq!(vectors["a1"], vec![0.0, 1.0, 0.0]);

        // Replacing chunks drops the old ones.
        store
            .replace_chunks("a", &[chunk("a", "one", 5, [0.0, 0.0, 1.0])])
            .await
            .unwrap();
        assert_eq!(store.count_chunks(Some("a")).await.unwrap(), 1);

        // Deleting removes row and chunks; orphans (a crash mid-delete) are repaired.
        store.delete_document("b").await.unwrap();
        assert!(store.document("b").await.unwrap().is_none());
        assert_eq!(store.count_chunks(Some("b")).await.unwrap(), 0);
        store
            .replace_chunks("ghost", &[chunk("ghost", "one", 0, [1.0, 1.0, 0.0])])
            .await
            .unwrap();
        let damaged = store.integrity().await.unwrap();
        assert_eq!(damaged.orphan_chunks, 1, "{damaged:?}");
        assert_eq!(store.remove_orphan_chunks().await.unwrap(), 1);
        let healthy = store.integrity().await.unwrap();
        assert_eq!(
            (healthy.orphan_chunks, healthy.duplicate_chunk_ids),
            (0, 0),
            "{healthy:?}"
        );
        assert_eq!(store.count_chunks(None).await.unwrap(), 1);

        // A row whose chunks are not all there is marked pending, to be redone.
        store.delete_document("a").await.unwrap();
        let mut a = doc("a", "one");
        a.chunks = 3;
        store.put_document(&a).await.unwrap();
        store
            .replace_chunks("a", &[chunk("a", "one", 0, [1.0, 0.0, 0.0])])
            .await
            .unwrap();
        store
            .replace_chunks("ghost", &[chunk("ghost", "one", 0, [1.0, 1.0, 0.0])])
            .await
            .unwrap();
        let damaged = store.integrity().await.unwrap();
        assert_eq!(damaged.mismatched_ids, vec!["a".to_string()], "{damaged:?}");
        assert_eq!(store.repair().await.unwrap(), (1, 1));
        let repaired = store.integrity().await.unwrap();
        assert_eq!(
            (repaired.orphan_chunks, repaired.mismatched_documents),
            (0, 0),
            "{repaired:?}"
        );
        assert_eq!(repaired.pending_documents, 1);
        assert_eq!(
            store.document("a").await.unwrap().unwrap().state,
            DocState::Pending
        );

        // Reopening keeps everything; another dimension is refused.
        drop(store);
        let store = Store::open(dir.path(), 3).await.unwrap();
        assert_eq!(store.documents().await.unwrap().len(), 1);
        assert!(matches!(
            Store::open(dir.path(), 4).await,
            Err(Error::DimensionMismatch {
                expected: 4,
                found: 3
            })
        ));
    }

    fn text_chunk(doc: &str, path: &str, i: u32, text: &str, v: [f32; 3]) -> ChunkRecord {
        let c = chunk(doc, "one", i, v);
        ChunkRecord {
            at: Location {
                path: path.into(),
                ..c.at
            },
            text: text.into(),
            hash: format!("{doc}{i}{text}"),
            ..c
        }
    }

    #[tokio::test]
    async fn keyword_search_filters_and_fresh_rows() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 3).await.unwrap();
        // Nothing indexed yet: keyword search answers empty, not an error.
        let none = store
            .keyword_search("anything", 5, &SearchFilter::default())
            .await
            .unwrap();
        assert!(none.is_empty());
        let mut a = doc("a", "one");
        a.path = "cases/2024_q1/brief.pdf".into();
        a.mtime_ms = 1_000;
        let mut b = doc("b", "one");
        b.path = "notes/memo.docx".into();
        b.mtime_ms = 5_000;
        store.put_document(&a).await.unwrap();
        store.put_document(&b).await.unwrap();
        store
            .replace_chunks(
                "a",
                &[
                    text_chunk(
                        "a",
                        &a.path,
                        0,
                        "The indemnification clause survives termination.",
                        [1.0, 0.0, 0.0],
                    ),
                    text_chunk(
                        "a",
                        &a.path,
                        1,
                        "Payment is due within thirty days.",
                        [0.0, 1.0, 0.0],
                    ),
                ],
            )
            .await
            .unwrap();
        store
            .replace_chunks(
                "b",
                &[text_chunk(
                    "b",
                    &b.path,
                    0,
                    "Memo about the termination of the lease.",
                    [0.0, 0.0, 1.0],
                )],
            )
            .await
            .unwrap();
        let all = SearchFilter::default();
        let hits = store.keyword_search("terminated", 5, &all).await.unwrap();
        let ids: Vec<&str> = hits.iter().map(|h| h.chunk_id.as_str()).collect();
        assert_eq!(ids.len(), 2, "stemming matches both: {ids:?}");
        assert!(hits[0].score > 0.0);
        let hits = store
            .keyword_search("indemnification", 5, &all)
            .await
            .unwrap();
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].chunk_id, "a-0");

        // Filters: path prefix (with a LIKE wildcard character in it), glob, type, date.
        let prefix = SearchFilter {
            path_prefix: Some("cases/2024_".into()),
            ..SearchFilter::default()
        };
        let hits = store
            .keyword_search("termination", 5, &prefix)
            .await
            .unwrap();
        assert!(hits.iter().all(|h| h.at.document_id == "a") && !hits.is_empty());
        let underscore_is_literal = SearchFilter {
            path_prefix: Some("cases/2024x".into()),
            ..SearchFilter::default()
        };
        assert!(
            store
                .keyword_search("termination", 5, &underscore_is_literal)
                .await
                .unwrap()
                .is_empty()
        );
        let glob = SearchFilter {
            path_glob: Some("notes/*.docx".into()),
            ..SearchFilter::default()
        };
        let hits = store.keyword_search("termination", 5, &glob).await.unwrap();
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].at.document_id, "b");
        let pdf_only = SearchFilter {
            extensions: vec!["PDF".into()],
            ..SearchFilter::default()
        };
        let hits = store
            .vector_search(&[0.0, 0.0, 1.0], 5, &pdf_only)
            .await
            .unwrap();
        assert!(!hits.is_empty() && hits.iter().all(|h| h.at.document_id == "a"));
        let recent = SearchFilter {
            modified_after_ms: Some(2_000),
            ..SearchFilter::default()
        };
        let hits = store
            .vector_search(&[1.0, 0.0, 0.0], 5, &recent)
            .await
            .unwrap();
        assert!(!hits.is_empty() && hits.iter().all(|h| h.at.document_id == "b"));

        // After optimizing, rows written later are found at once, and deleted
        // ones are gone.
        let report = store.optimize().await.unwrap();
        assert!(report.fts_index);
        assert_eq!(report.rows, 3);
        store
            .replace_chunks(
                "b",
                &[text_chunk(
                    "b",
                    &b.path,
                    0,
                    "A novel arbitration provision.",
                    [0.0, 0.0, 1.0],
                )],
            )
            .await
            .unwrap();
        let hits = store.keyword_search("arbitration", 5, &all).await.unwrap();
        assert_eq!(
            hits.len(),
            1,
            "a fresh row is searchable before the index catches up"
        );
        let hits = store.keyword_search("lease", 5, &all).await.unwrap();
        assert!(hits.is_empty(), "the replaced row is gone: {hits:?}");
        let by_id = store
            .chunks_by_id(&["a-1".to_string(), "missing".to_string()])
            .await
            .unwrap();
        assert_eq!(by_id.len(), 1);
        assert_eq!(by_id[0].text, "Payment is due within thirty days.");
    }
}

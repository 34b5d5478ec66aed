use crate::arrow_rows::{
    Columns, chunks_batch, chunks_schema, documents_batch, documents_from, documents_schema,
    hits_from, vector_dim,
};
use crate::{ChunkRecord, DocumentRecord, Error, Result, SearchFilter, SearchHit};
use arrow_array::{RecordBatch, RecordBatchIterator};
use futures::TryStreamExt;
use lancedb::query::{ExecutableQuery, QueryBase, Select};
use lancedb::{Connection, DistanceType, Table};
use std::collections::{HashMap, HashSet};
use std::path::Path;

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

async fn collect(stream: lancedb::arrow::SendableRecordBatchStream) -> Result<Vec<RecordBatch>> {
    Ok(stream.try_collect::<Vec<_>>().await?)
}

impl Store {
    /// Opens (creating if needed) the database in `dir` for vectors of `dim`
    /// dimensions.
    pub async fn open(dir: &Path, dim: usize) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| Error::Schema {
            table: DOCUMENTS,
            detail: format!("cannot create {}: {e}", dir.display()),
        })?;
        let db = lancedb::connect(&dir.to_string_lossy()).execute().await?;
        let names = db.table_names().execute().await?;
        let documents = open_or_create(&db, &names, DOCUMENTS, documents_schema()).await?;
        let chunks = open_or_create(&db, &names, CHUNKS, chunks_schema(dim)).await?;
        let schema = chunks.schema().await?;
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
        })
    }

    /// Vector dimension of the chunks table.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// All manifest rows.
    pub async fn documents(&self) -> Result<Vec<DocumentRecord>> {
        let batches = collect(self.documents.query().execute().await?).await?;
        let mut out = Vec::new();
        for b in &batches {
            out.extend(documents_from(b)?);
        }
        out.sort_by(|a, b| (&a.collection, &a.path).cmp(&(&b.collection, &b.path)));
        Ok(out)
    }

    /// One manifest row.
    pub async fn document(&self, id: &str) -> Result<Option<DocumentRecord>> {
        let batches = collect(
            self.documents
                .query()
                .only_if(format!("id = {}", quote(id)))
                .execute()
                .await?,
        )
        .await?;
        for b in &batches {
            if let Some(d) = documents_from(b)?.into_iter().next() {
                return Ok(Some(d));
            }
        }
        Ok(None)
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

    /// Removes a document: the manifest row first, then its chunks. A crash in
    /// between leaves orphan chunks, which [`Store::remove_orphan_chunks`] clears.
    pub async fn delete_document(&self, id: &str) -> Result<()> {
        self.documents
            .delete(&format!("id = {}", quote(id)))
            .await?;
        self.chunks
            .delete(&format!("document_id = {}", quote(id)))
            .await?;
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

    /// Replaces all chunks of a document with `chunks`.
    pub async fn replace_chunks(&self, document_id: &str, chunks: &[ChunkRecord]) -> Result<()> {
        self.chunks
            .delete(&format!("document_id = {}", quote(document_id)))
            .await?;
        if !chunks.is_empty() {
            let batch = chunks_batch(chunks, self.dim)?;
            self.chunks.add(batch).execute().await?;
        }
        Ok(())
    }

    /// Number of chunks, of one document or of all.
    pub async fn count_chunks(&self, document_id: Option<&str>) -> Result<usize> {
        let filter = document_id.map(|id| format!("document_id = {}", quote(id)));
        Ok(self.chunks.count_rows(filter).await?)
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
        }
        Ok(removed)
    }

    /// The `k` chunks nearest to `vector` (cosine), best first.
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
            .select(Select::columns(&HIT_COLUMNS))
            .limit(k.max(1));
        if let Some(f) = filter_sql(filter) {
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
}

fn filter_sql(filter: &SearchFilter) -> Option<String> {
    if filter.collections.is_empty() {
        return None;
    }
    let list: Vec<String> = filter.collections.iter().map(|c| quote(c)).collect();
    Some(format!("collection IN ({})", list.join(", ")))
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
        let f = SearchFilter {
            collections: vec!["a".into(), "b'c".into()],
        };
        assert_eq!(filter_sql(&f).unwrap(), "collection IN ('a', 'b''c')");
        assert_eq!(filter_sql(&SearchFilter::default()), None);
    }
}

#[cfg(test)]
mod lance_tests {
    use super::*;
    use crate::DocState;

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
            document_id: doc.into(),
            collection: collection.into(),
            path: format!("{doc}.pdf"),
            page_start: i + 1,
            page_end: i + 1,
            byte_start: 0,
            byte_end: 4,
            hash: format!("{doc}{i}"),
            text: format!("text {doc} {i}"),
            vector: v.to_vec(),
        }
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
        let only_two = SearchFilter {
            collections: vec!["two".into()],
        };
        let hits = store
            .vector_search(&[1.0, 0.0, 0.0], 5, &only_two)
            .await
            .unwrap();
        assert!(hits.iter().all(|h| h.collection == "two"));

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
        assert_eq!(store.remove_orphan_chunks().await.unwrap(), 1);
        assert_eq!(store.count_chunks(None).await.unwrap(), 1);

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
}

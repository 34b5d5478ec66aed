//! Conversions between records and Arrow record batches.

use crate::{ChunkRecord, DocState, DocumentRecord, Error, Result, SearchHit};
use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Int64Type, UInt32Type, UInt64Type};
use arrow_array::{
    Array, ArrayRef, FixedSizeListArray, Float32Array, Int64Array, RecordBatch, StringArray,
    UInt32Array, UInt64Array,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use docchat_core::Location;
use std::sync::Arc;

pub(crate) fn documents_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("collection", DataType::Utf8, false),
        Field::new("path", DataType::Utf8, false),
        Field::new("abs_path", DataType::Utf8, false),
        Field::new("size", DataType::UInt64, false),
        Field::new("mtime_ms", DataType::Int64, false),
        Field::new("content_hash", DataType::Utf8, false),
        Field::new("state", DataType::Utf8, false),
        Field::new("error", DataType::Utf8, true),
        Field::new("pages", DataType::UInt32, false),
        Field::new("chunks", DataType::UInt32, false),
        Field::new("embedder", DataType::Utf8, false),
        Field::new("extractor", DataType::Utf8, false),
        Field::new("title", DataType::Utf8, true),
        Field::new("author", DataType::Utf8, true),
        Field::new("indexed_at_ms", DataType::Int64, false),
    ]))
}

pub(crate) fn chunks_schema(dim: usize) -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("document_id", DataType::Utf8, false),
        Field::new("collection", DataType::Utf8, false),
        Field::new("path", DataType::Utf8, false),
        Field::new("page_start", DataType::UInt32, false),
        Field::new("page_end", DataType::UInt32, false),
        Field::new("byte_start", DataType::UInt32, false),
        Field::new("byte_end", DataType::UInt32, false),
        Field::new("hash", DataType::Utf8, false),
        Field::new("text", DataType::Utf8, false),
        Field::new(
            "vector",
            DataType::FixedSizeList(
                Arc::new(Field::new("item", DataType::Float32, true)),
                dim as i32,
            ),
            false,
        ),
        Field::new("lang", DataType::Utf8, false),
        Field::new("keywords", DataType::Utf8, false),
    ]))
}

/// The columns of the chunks table derived from `text` for the keyword index:
/// its language (ISO 639-1 code) and its analysed words (see [`crate::keywords`]).
pub(crate) fn keyword_fields() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("lang", DataType::Utf8, false),
        Field::new("keywords", DataType::Utf8, false),
    ]))
}

/// The [`keyword_fields`] of `texts` (the chunks of one document, or a run of
/// rows), as a batch.
pub(crate) fn keyword_batch(texts: &[&str]) -> Result<RecordBatch> {
    let (langs, words) = keyword_columns(texts);
    Ok(RecordBatch::try_new(keyword_fields(), vec![langs, words])?)
}

fn keyword_columns(texts: &[&str]) -> (ArrayRef, ArrayRef) {
    let langs = crate::keywords::detect_each(texts);
    let words: Vec<String> = texts
        .iter()
        .zip(&langs)
        .map(|(t, l)| crate::keywords::keywords(t, *l))
        .collect();
    (
        strings(langs.iter().map(|l| l.code())),
        strings(words.iter().map(String::as_str)),
    )
}

/// Dimension of the `vector` column of a chunks schema.
pub(crate) fn vector_dim(schema: &Schema) -> Option<usize> {
    match schema.field_with_name("vector").ok()?.data_type() {
        DataType::FixedSizeList(_, n) => Some(*n as usize),
        _ => None,
    }
}

fn strings<'a>(values: impl Iterator<Item = &'a str>) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(values))
}

fn opt_strings<'a>(values: impl Iterator<Item = Option<&'a str>>) -> ArrayRef {
    Arc::new(values.collect::<StringArray>())
}

pub(crate) fn documents_batch(docs: &[DocumentRecord]) -> Result<RecordBatch> {
    let cols: Vec<ArrayRef> = vec![
        strings(docs.iter().map(|d| d.id.as_str())),
        strings(docs.iter().map(|d| d.collection.as_str())),
        strings(docs.iter().map(|d| d.path.as_str())),
        strings(docs.iter().map(|d| d.abs_path.as_str())),
        Arc::new(UInt64Array::from_iter_values(docs.iter().map(|d| d.size))),
        Arc::new(Int64Array::from_iter_values(
            docs.iter().map(|d| d.mtime_ms),
        )),
        strings(docs.iter().map(|d| d.content_hash.as_str())),
        strings(docs.iter().map(|d| d.state.as_str())),
        opt_strings(docs.iter().map(|d| d.error.as_deref())),
        Arc::new(UInt32Array::from_iter_values(docs.iter().map(|d| d.pages))),
        Arc::new(UInt32Array::from_iter_values(docs.iter().map(|d| d.chunks))),
        strings(docs.iter().map(|d| d.embedder.as_str())),
        strings(docs.iter().map(|d| d.extractor.as_str())),
        opt_strings(docs.iter().map(|d| d.title.as_deref())),
        opt_strings(docs.iter().map(|d| d.author.as_deref())),
        Arc::new(Int64Array::from_iter_values(
            docs.iter().map(|d| d.indexed_at_ms),
        )),
    ];
    Ok(RecordBatch::try_new(documents_schema(), cols)?)
}

pub(crate) fn chunks_batch(chunks: &[ChunkRecord], dim: usize) -> Result<RecordBatch> {
    let mut flat = Vec::with_capacity(chunks.len() * dim);
    for c in chunks {
        if c.vector.len() != dim {
            return Err(Error::DimensionMismatch {
                expected: dim,
                found: c.vector.len(),
            });
        }
        flat.extend_from_slice(&c.vector);
    }
    let vectors = FixedSizeListArray::try_new(
        Arc::new(Field::new("item", DataType::Float32, true)),
        dim as i32,
        Arc::new(Float32Array::from(flat)),
        None,
    )?;
    let u32s = |f: fn(&ChunkRecord) -> u32| -> ArrayRef {
        Arc::new(UInt32Array::from_iter_values(chunks.iter().map(f)))
    };
    let cols: Vec<ArrayRef> = vec![
        strings(chunks.iter().map(|c| c.id.as_str())),
        strings(chunks.iter().map(|c| c.at.document_id.as_str())),
        strings(chunks.iter().map(|c| c.at.collection.as_str())),
        strings(chunks.iter().map(|c| c.at.path.as_str())),
        u32s(|c| c.at.page_start),
        u32s(|c| c.at.page_end),
        u32s(|c| c.at.byte_start),
        u32s(|c| c.at.byte_end),
        strings(chunks.iter().map(|c| c.hash.as_str())),
        strings(chunks.iter().map(|c| c.text.as_str())),
        Arc::new(vectors),
    ];
    let texts: Vec<&str> = chunks.iter().map(|c| c.text.as_str()).collect();
    let (langs, words) = keyword_columns(&texts);
    let cols = [cols, vec![langs, words]].concat();
    Ok(RecordBatch::try_new(chunks_schema(dim), cols)?)
}

/// Typed access to the columns of a batch, with a clear error for a missing column.
pub(crate) struct Columns<'a> {
    batch: &'a RecordBatch,
    table: &'static str,
}

impl<'a> Columns<'a> {
    pub(crate) fn new(batch: &'a RecordBatch, table: &'static str) -> Self {
        Self { batch, table }
    }

    fn col(&self, name: &str) -> Result<&'a ArrayRef> {
        self.batch
            .column_by_name(name)
            .ok_or_else(|| Error::Schema {
                table: self.table,
                detail: format!("missing column {name}"),
            })
    }

    pub(crate) fn str(&self, name: &str) -> Result<&'a StringArray> {
        self.col(name)?
            .as_string_opt::<i32>()
            .ok_or_else(|| self.bad(name))
    }

    pub(crate) fn u32(&self, name: &str) -> Result<&'a UInt32Array> {
        self.col(name)?
            .as_primitive_opt::<UInt32Type>()
            .ok_or_else(|| self.bad(name))
    }

    pub(crate) fn u64(&self, name: &str) -> Result<&'a UInt64Array> {
        self.col(name)?
            .as_primitive_opt::<UInt64Type>()
            .ok_or_else(|| self.bad(name))
    }

    pub(crate) fn i64(&self, name: &str) -> Result<&'a Int64Array> {
        self.col(name)?
            .as_primitive_opt::<Int64Type>()
            .ok_or_else(|| self.bad(name))
    }

    pub(crate) fn f32(&self, name: &str) -> Result<&'a Float32Array> {
        self.col(name)?
            .as_primitive_opt::<Float32Type>()
            .ok_or_else(|| self.bad(name))
    }

    pub(crate) fn vectors(&self, name: &str) -> Result<&'a FixedSizeListArray> {
        self.col(name)?
            .as_fixed_size_list_opt()
            .ok_or_else(|| self.bad(name))
    }

    fn bad(&self, name: &str) -> Error {
        Error::Schema {
            table: self.table,
            detail: format!("column {name} has an unexpected type"),
        }
    }
}

fn opt(a: &StringArray, i: usize) -> Option<String> {
    (!a.is_null(i)).then(|| a.value(i).to_string())
}

pub(crate) fn documents_from(batch: &RecordBatch) -> Result<Vec<DocumentRecord>> {
    let c = Columns::new(batch, "documents");
    let (id, collection, path, abs_path) = (
        c.str("id")?,
        c.str("collection")?,
        c.str("path")?,
        c.str("abs_path")?,
    );
    let (size, mtime, hash, state) = (
        c.u64("size")?,
        c.i64("mtime_ms")?,
        c.str("content_hash")?,
        c.str("state")?,
    );
    let (error, pages, chunks) = (c.str("error")?, c.u32("pages")?, c.u32("chunks")?);
    let (embedder, extractor, title, author) = (
        c.str("embedder")?,
        c.str("extractor")?,
        c.str("title")?,
        c.str("author")?,
    );
    let indexed_at = c.i64("indexed_at_ms")?;
    (0..batch.num_rows())
        .map(|i| {
            Ok(DocumentRecord {
                id: id.value(i).to_string(),
                collection: collection.value(i).to_string(),
                path: path.value(i).to_string(),
                abs_path: abs_path.value(i).to_string(),
                size: size.value(i),
                mtime_ms: mtime.value(i),
                content_hash: hash.value(i).to_string(),
                state: DocState::parse(state.value(i)).ok_or_else(|| Error::Schema {
                    table: "documents",
                    detail: format!("unknown state {:?}", state.value(i)),
                })?,
                error: opt(error, i),
                pages: pages.value(i),
                chunks: chunks.value(i),
                embedder: embedder.value(i).to_string(),
                extractor: extractor.value(i).to_string(),
                title: opt(title, i),
                author: opt(author, i),
                indexed_at_ms: indexed_at.value(i),
            })
        })
        .collect()
}

/// Search hits from a result batch; `score` maps the row's raw score column.
pub(crate) fn hits_from(
    batch: &RecordBatch,
    score_column: &str,
    score: impl Fn(f32) -> f32,
) -> Result<Vec<SearchHit>> {
    let raw = Columns::new(batch, "chunks").f32(score_column)?;
    hits_with(batch, |i| score(raw.value(i)))
}

/// Full chunk rows (vectors included).
pub(crate) fn chunks_from(batch: &RecordBatch) -> Result<Vec<ChunkRecord>> {
    let hits = hits_with(batch, |_| 0.0)?;
    let c = Columns::new(batch, "chunks");
    let hashes = c.str("hash")?;
    let vectors = c.vectors("vector")?;
    let values = vectors
        .values()
        .as_any()
        .downcast_ref::<Float32Array>()
        .ok_or_else(|| Error::Schema {
            table: "chunks",
            detail: "vector items are not f32".into(),
        })?;
    let dim = vectors.value_length() as usize;
    Ok(hits
        .into_iter()
        .enumerate()
        .map(|(i, h)| {
            let start = vectors.value_offset(i) as usize;
            ChunkRecord {
                id: h.chunk_id,
                at: h.at,
                hash: hashes.value(i).to_string(),
                text: h.text,
                vector: values.values()[start..start + dim].to_vec(),
            }
        })
        .collect())
}

/// Rows of a chunks batch without a score column (score 0).
pub(crate) fn hits_from_plain(batch: &RecordBatch) -> Result<Vec<SearchHit>> {
    hits_with(batch, |_| 0.0)
}

fn hits_with(batch: &RecordBatch, score: impl Fn(usize) -> f32) -> Result<Vec<SearchHit>> {
    let c = Columns::new(batch, "chunks");
    let (id, doc, collection, path) = (
        c.str("id")?,
        c.str("document_id")?,
        c.str("collection")?,
        c.str("path")?,
    );
    let (ps, pe, bs, be) = (
        c.u32("page_start")?,
        c.u32("page_end")?,
        c.u32("byte_start")?,
        c.u32("byte_end")?,
    );
    let text = c.str("text")?;
    Ok((0..batch.num_rows())
        .map(|i| SearchHit {
            chunk_id: id.value(i).to_string(),
            at: Location {
                document_id: doc.value(i).to_string(),
                collection: collection.value(i).to_string(),
                path: path.value(i).to_string(),
                page_start: ps.value(i),
                page_end: pe.value(i),
                byte_start: bs.value(i),
                byte_end: be.value(i),
                match_start: bs.value(i),
                match_end: be.value(i),
            },
            text: text.value(i).to_string(),
            score: score(i),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> DocumentRecord {
        DocumentRecord {
            id: "d1".into(),
            collection: "c".into(),
            path: "a.pdf".into(),
            abs_path: "/x/a.pdf".into(),
            size: 10,
            mtime_ms: 5,
            content_hash: "h".into(),
            state: DocState::Failed,
            error: Some("corrupt".into()),
            pages: 2,
            chunks: 0,
            embedder: "e".into(),
            extractor: "pdf-extract".into(),
            title: None,
            author: Some("A".into()),
            indexed_at_ms: 7,
        }
    }

    #[test]
    fn documents_round_trip() {
        let d = doc();
        let batch = documents_batch(std::slice::from_ref(&d)).unwrap();
        assert_eq!(documents_from(&batch).unwrap(), vec![d]);
    }

    #[test]
    fn chunk_vectors_must_match_the_dimension() {
        let c = ChunkRecord {
            id: "c".into(),
            at: Location {
                document_id: "d".into(),
                collection: "c".into(),
                path: "p".into(),
                page_start: 1,
                page_end: 1,
                byte_start: 0,
                byte_end: 1,
                match_start: 0,
                match_end: 1,
            },
            hash: "h".into(),
            text: "t".into(),
            vector: vec![0.0; 3],
        };
        assert!(chunks_batch(std::slice::from_ref(&c), 3).is_ok());
        assert!(matches!(
            chunks_batch(&[c], 4),
            Err(Error::DimensionMismatch { .. })
        ));
    }
}

//! `/api/documents/{id}`: the original file of an indexed document, and its text
//! page by page.

use crate::error::ApiError;
use crate::keys::Principal;
use crate::state::AppState;
use axum::Extension;
use axum::Json;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use docchat_core::FileKind;
use docchat_store::{DocState, DocumentRecord};
use serde::Deserialize;
use serde_json::json;

/// Serves the original file of an indexed document (and nothing else: ids come
/// from the manifest, never from a path in the request).
pub(crate) async fn document_file(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    UrlPath(id): UrlPath<String>,
) -> Result<Response, ApiError> {
    let doc = state
        .live()
        .rag
        .retriever
        .store
        .document(&id)
        .await?
        // A failed document whose previous version stays searchable is cited too.
        .filter(|d| d.state == DocState::Indexed || d.chunks > 0)
        // Nor is a document of a collection the key may not read.
        .filter(|d| who.may_read(&d.collection))
        .ok_or_else(|| ApiError::NotFound(format!("no indexed document {id:?}")))?;
    let path = doc.file();
    let inside = {
        let doc = doc.clone();
        tokio::task::spawn_blocking(move || still_inside(&doc))
            .await
            .unwrap_or(false)
    };
    if !inside {
        return Err(ApiError::NotFound(format!(
            "the file of document {id:?} is gone, or is now a link out of its folder"
        )));
    }
    let gone = || ApiError::NotFound(format!("the file of document {id:?} is gone"));
    let file = tokio::fs::File::open(&path).await.map_err(|_| gone())?;
    let len = file.metadata().await.map_err(|_| gone())?.len();
    let mime = FileKind::from_path(&path).map_or("application/octet-stream", FileKind::mime);
    let name = path.file_name().map_or_else(
        || "document".into(),
        |n| n.to_string_lossy().replace('"', "'"),
    );
    // Sent as it is read: a file of any size takes a fixed amount of memory.
    // (At most the length announced, should the file grow meanwhile.)
    let file = tokio::io::AsyncReadExt::take(file, len);
    let mut res = axum::body::Body::from_stream(read_in_pieces(file)).into_response();
    res.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    if mime == FileKind::Html.mime() {
        crate::guard::sandboxed(&mut res);
    }
    let headers = res.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
    if let Ok(v) = HeaderValue::from_str(&format!(
        "inline; filename=\"{}\"",
        name.replace(|c: char| !c.is_ascii() || c.is_control(), "_")
    )) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    Ok(res)
}

/// The bytes of `file`, 64 KiB at a time; a read error ends the stream with it.
fn read_in_pieces(
    file: impl tokio::io::AsyncRead + Unpin + Send + 'static,
) -> impl futures::Stream<Item = std::io::Result<axum::body::Bytes>> {
    use tokio::io::AsyncReadExt;
    futures::stream::unfold(Some(file), |file| async move {
        let mut file = file?;
        let mut buf = vec![0u8; 64 << 10];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(axum::body::Bytes::from(buf)), Some(file)))
            }
            Err(e) => Some((Err(e), None)),
        }
    })
}

/// Whether the file of `doc` is still a plain file inside the folder it was indexed
/// from: a file replaced by a link to elsewhere since is not served.
pub(crate) fn still_inside(doc: &DocumentRecord) -> bool {
    let abs = doc.file();
    let abs = abs.as_path();
    let mut root = abs.to_path_buf();
    for _ in doc.path.split('/').filter(|c| !c.is_empty()) {
        if !root.pop() {
            return false;
        }
    }
    // The same path, in the form the manifest keeps (names in any encoding).
    let rel: Vec<String> = abs
        .strip_prefix(&root)
        .map(|r| {
            r.components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    rel.join("/") == doc.path
        && docchat_service::index::inside_root(&root, abs)
        && std::fs::metadata(abs).is_ok_and(|m| m.is_file())
}

#[derive(Debug, Deserialize)]
pub(crate) struct PageQuery {
    page: u32,
}

/// The extracted text of one page, rebuilt from the document's chunks (their byte
/// ranges are exact, so the citations' byte ranges apply to it): how a DOCX or text
/// source is shown, scrolled to the passage.
pub(crate) async fn document_text(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    UrlPath(id): UrlPath<String>,
    axum::extract::Query(q): axum::extract::Query<PageQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let store = state.live().rag.retriever.store;
    let doc = store
        .document(&id)
        .await?
        // A failed document whose previous version stays searchable is cited too.
        .filter(|d| d.state == DocState::Indexed || d.chunks > 0)
        // Nor is a document of a collection the key may not read.
        .filter(|d| who.may_read(&d.collection))
        .ok_or_else(|| ApiError::NotFound(format!("no indexed document {id:?}")))?;
    if q.page == 0 || q.page > doc.pages {
        return Err(ApiError::BadRequest(format!(
            "page {} is not in 1..={}",
            q.page, doc.pages
        )));
    }
    let mut chunks: Vec<_> = store
        .document_chunks(&id)
        .await?
        .into_iter()
        .filter(|c| c.at.page_start == q.page)
        .collect();
    chunks.sort_by_key(|c| (c.at.byte_start, c.at.byte_end));
    Ok(Json(json!({
        "document_id": doc.id, "collection": doc.collection, "path": doc.path,
        "page": q.page, "pages": doc.pages, "text": page_text(&chunks),
    })))
}

/// Lays chunk texts out at their byte offsets: overlaps are written once, gaps (text
/// no chunk holds, such as trimmed spaces) become spaces, so offsets stay exact.
pub(crate) fn page_text(chunks: &[docchat_store::ChunkRecord]) -> String {
    let mut out = String::new();
    for c in chunks {
        let start = c.at.byte_start as usize;
        if start > out.len() {
            out.push_str(&" ".repeat(start - out.len()));
        }
        let skip = out.len() - start;
        match c.text.get(skip..) {
            Some(rest) => out.push_str(rest),
            None => {
                // An overlap that ends inside a character: pad to the next boundary.
                let next = (skip..=c.text.len())
                    .find(|&i| c.text.is_char_boundary(i))
                    .unwrap_or(c.text.len());
                out.push_str(&" ".repeat(next - skip));
                out.push_str(&c.text[next..]);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::page_text;
    use docchat_core::Location;
    use docchat_store::ChunkRecord;

    fn chunk(start: u32, text: &str) -> ChunkRecord {
        ChunkRecord {
            id: String::new(),
            at: Location {
                document_id: String::new(),
                collection: String::new(),
                path: String::new(),
                page_start: 1,
                page_end: 1,
                byte_start: start,
                byte_end: start + text.len() as u32,
                match_start: start,
                match_end: start + text.len() as u32,
            },
            hash: String::new(),
            text: text.into(),
            vector: Vec::new(),
        }
    }

    #[test]
    fn page_text_keeps_byte_offsets() {
        let page = "Alpha beta gamma. Delta épsilon zeta.";
        let a = chunk(0, &page[..17]);
        let b = chunk(11, &page[11..]);
        assert_eq!(page_text(&[a.clone(), b]), page);
        // A gap (trimmed text) becomes spaces of the same length.
        let c = chunk(18, &page[18..]);
        let rebuilt = page_text(&[a, c]);
        assert_eq!(rebuilt.len(), page.len());
        assert_eq!(&rebuilt[18..], &page[18..]);
    }
}

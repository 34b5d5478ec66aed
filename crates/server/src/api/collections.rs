//! `/api/collections`: the watched folders, added, removed, paused, resumed, and
//! files uploaded into one.

use crate::error::ApiError;
use crate::keys::Principal;
use crate::state::AppState;
use axum::Extension;
use axum::Json;
use axum::extract::{Path as UrlPath, State};
use axum::http::{StatusCode, header};
use docchat_core::FileKind;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

/// `POST /api/collections/{name}/pause|resume|cancel`.
pub(crate) async fn collection_action(
    State(state): State<AppState>,
    UrlPath((name, action)): UrlPath<(String, String)>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let ix = &state.live().indexer;
    if !ix.has_collection(&name) {
        return Err(ApiError::NotFound(format!(
            "no watched collection {name:?}"
        )));
    }
    let mut dropped = 0;
    match action.as_str() {
        "pause" => ix.pause(&name),
        "resume" => ix.resume(&name),
        "cancel" => dropped = ix.cancel(&name),
        other => {
            return Err(ApiError::BadRequest(format!(
                "unknown action {other:?}: use pause, resume or cancel"
            )));
        }
    }
    Ok(Json(json!({
        "collection": name,
        "action": action,
        "dropped": dropped,
        "progress": ix.progress(),
    })))
}

/// `GET /api/collections`: each watched folder with its document counts and whether
/// its indexing is paused, and collections of the index no folder feeds any more.
pub(crate) async fn list_collections(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let live = state.live();
    let docs = live.rag.retriever.store.documents().await?;
    let mut rows = docchat_service::index::folders::collection_rows(
        &live.indexer.roots(),
        &docs,
        &live.indexer.paused(),
    );
    rows.retain(|r| r["name"].as_str().is_some_and(|n| who.may_read(n)));
    Ok(Json(json!({ "collections": rows })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AddCollection {
    path: String,
    #[serde(default)]
    name: Option<String>,
}

/// `POST /api/collections` `{"path", "name"?}`: watches a folder from now on (and
/// after a restart); its files are queued at once.
pub(crate) async fn add_collection(
    State(state): State<AppState>,
    Json(req): Json<AddCollection>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let live = state.live();
    let path = std::path::PathBuf::from(req.path.trim());
    if !path.is_absolute() {
        return Err(ApiError::BadRequest(format!(
            "give the folder's full path, not {:?}",
            req.path
        )));
    }
    let checked = docchat_service::config::check_folder(&path)
        .and_then(|p| {
            docchat_service::config::check_shared_folder(
                &p,
                &state.allowed_folders,
                &state.data_dir,
            )
            .map(|()| p)
        })
        .map_err(|e| ApiError::BadRequest(format!("{e:#}")))?;
    let root = state
        .folders
        .add(&live.indexer, &checked, req.name)
        .map_err(|e| ApiError::BadRequest(format!("{e:#}")))?;
    let ix = Arc::clone(&live.indexer);
    tokio::spawn(async move {
        if let Err(e) = ix.reconcile().await {
            tracing::error!(error = format!("{e:#}"), "scan of a new folder failed");
        }
    });
    tracing::info!(path = %root.path.display(), collection = %root.collection, "watching");
    Ok((
        StatusCode::CREATED,
        Json(json!({ "name": root.collection, "path": root.path })),
    ))
}

#[derive(Debug, Deserialize)]
pub(crate) struct RemoveCollection {
    #[serde(default)]
    forget: bool,
}

/// `DELETE /api/collections/{name}[?forget=true]`: stops watching the folder; with
/// `forget`, its documents leave the index too (the files stay).
pub(crate) async fn remove_collection(
    State(state): State<AppState>,
    UrlPath(name): UrlPath<String>,
    axum::extract::Query(q): axum::extract::Query<RemoveCollection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let live = state.live();
    let root = state.folders.remove(&live.indexer, &name)?;
    if root.is_none() && !q.forget {
        return Err(ApiError::NotFound(format!(
            "no watched collection {name:?}"
        )));
    }
    // A collection no folder feeds any more can still be forgotten: one forget
    // that stopped half-way is finished by the next.
    let (forgotten, chunks) = if q.forget {
        live.indexer.forget(&name).await?
    } else {
        (0, 0)
    };
    if root.is_none() && forgotten == 0 && chunks == 0 {
        return Err(ApiError::NotFound(format!(
            "no collection {name:?} is watched or in the index"
        )));
    }
    Ok(Json(json!({
        "name": name,
        "path": root.map(|r| r.path),
        "forgotten": forgotten,
    })))
}

#[derive(Debug, Deserialize)]
pub(crate) struct UploadQuery {
    name: String,
}

/// `POST /api/collections/{name}/files?name=FILE` with the file as the body: checked
/// (size, type by content, name) and written into the collection's folder, where the
/// watcher picks it up.
pub(crate) async fn upload(
    State(state): State<AppState>,
    UrlPath(collection): UrlPath<String>,
    axum::extract::Query(q): axum::extract::Query<UploadQuery>,
    headers: axum::http::HeaderMap,
    body: axum::body::Body,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    use crate::upload::{Refused, check_content, clean_name, write_into};
    let _place = state.uploads.enter()?;
    let root = state
        .live()
        .indexer
        .roots()
        .into_iter()
        .find(|r| r.collection == collection)
        .ok_or_else(|| ApiError::NotFound(format!("no watched collection {collection:?}")))?;
    if !root.path.is_dir() {
        return Err(ApiError::BadRequest(format!(
            "the folder of {collection:?} ({}) is missing",
            root.path.display()
        )));
    }
    let name = clean_name(&q.name).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    if FileKind::from_path(std::path::Path::new(&name)).is_none() {
        return Err(ApiError::Unsupported(format!(
            "{name}: docchat reads PDF, Word (.docx), text, Markdown and HTML files"
        )));
    }
    let limit = state.max_upload_bytes;
    let too_large = || {
        ApiError::TooLarge(format!(
            "{name} is larger than the upload limit of {} MB",
            limit >> 20
        ))
    };
    // A declared size over the limit is refused before any of the body is read.
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| too_large())?;
    check_content(&name, &bytes).map_err(|e| match e {
        Refused::BadName(m) => ApiError::BadRequest(m),
        Refused::BadType(m) => ApiError::Unsupported(m),
    })?;
    let folder = root.path.clone();
    let size = bytes.len();
    let written = tokio::task::spawn_blocking(move || write_into(&folder, &name, &bytes))
        .await
        .map_err(|e| ApiError::Internal(e.into()))?
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => ApiError::BadRequest(e.to_string()),
            _ => ApiError::Internal(anyhow::Error::new(e).context("cannot write the upload")),
        })?;
    let file = written
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    tracing::info!(collection = %collection, file = %file, size, "uploaded");
    Ok((
        StatusCode::CREATED,
        Json(json!({ "collection": collection, "path": file, "size": size })),
    ))
}

//! `/api/chats`: the chat history, renamed, deleted, exported to Markdown.

use crate::error::ApiError;
use crate::keys::Principal;
use crate::state::AppState;
use axum::Extension;
use axum::Json;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use docchat_service::clock::now_ms;
use docchat_store::ChatRecord;
use serde::Deserialize;
use serde_json::json;

/// `GET /api/chats`: the history, most recent first.
pub(crate) async fn list_chats(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(
        json!({ "chats": state.chats.chats_of(who.chats_owner()).await? }),
    ))
}

/// The chat `id`, when `who` may see it (its own, or any for the only user).
pub(crate) async fn chat_or_404(
    state: &AppState,
    who: &Principal,
    id: &str,
) -> Result<ChatRecord, ApiError> {
    state
        .chats
        .chat(id)
        .await?
        .filter(|c| who.chats_owner().is_none_or(|o| c.owner == o))
        .ok_or_else(|| ApiError::NotFound(format!("no chat {id:?}")))
}

/// `GET /api/chats/{id}`: a chat with its messages (answers with their sources).
pub(crate) async fn get_chat(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    UrlPath(id): UrlPath<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let chat = chat_or_404(&state, &who, &id).await?;
    let messages: Vec<_> = state
        .chats
        .messages(&id)
        .await?
        .into_iter()
        .map(|m| {
            let mut record: serde_json::Value = m
                .sources
                .as_deref()
                .and_then(|s| serde_json::from_str(s).ok())
                .unwrap_or(serde_json::Value::Null);
            super::wire::link_stored(&mut record["sources"]);
            json!({
                "seq": m.seq, "role": m.role, "content": m.content, "created_ms": m.created_ms,
                "sources": record["sources"], "stats": record["stats"],
                "stopped": record["stopped"] == true,
                "partial": record["partial"] == true,
            })
        })
        .collect();
    Ok(Json(json!({ "chat": chat, "messages": messages })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RenameRequest {
    title: String,
}

/// `PATCH /api/chats/{id}` `{"title"}`.
pub(crate) async fn rename_chat(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    UrlPath(id): UrlPath<String>,
    Json(req): Json<RenameRequest>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let title = req.title.trim();
    if title.is_empty() || title.chars().count() > 200 {
        return Err(ApiError::BadRequest(
            "a title has 1 to 200 characters".into(),
        ));
    }
    let mut chat = chat_or_404(&state, &who, &id).await?;
    chat.title = title.to_string();
    chat.updated_ms = now_ms();
    state.chats.put_chat(&chat).await?;
    Ok(Json(json!({ "chat": chat })))
}

/// `DELETE /api/chats/{id}`.
pub(crate) async fn delete_chat(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    UrlPath(id): UrlPath<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    chat_or_404(&state, &who, &id).await?;
    state.chats.delete_chat(&id).await?;
    Ok(Json(json!({ "deleted": id })))
}

/// `GET /api/chats/{id}/export`: the chat as Markdown, with its citations.
pub(crate) async fn export_chat(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    UrlPath(id): UrlPath<String>,
) -> Result<Response, ApiError> {
    let chat = chat_or_404(&state, &who, &id).await?;
    let messages = state.chats.messages(&id).await?;
    let mut res = docchat_service::answer::history::markdown(&chat, &messages).into_response();
    let headers = res.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/markdown; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"chat-{id}.md\"")) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(res)
}

//! The HTTP server: the web UI, `/api/status`, `/api/chat` (SSE), `/api/search`,
//! and the original files of indexed documents.

use crate::admission::{Admission, Busy};
use crate::history::now_ms;
use crate::indexer::Indexer;
use crate::rag::{AnswerEvent, AskOptions, Rag};
use crate::retrieve::{Fusion, SearchMode, SearchRequest as Retrieval};
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use docchat_core::{ChatTurn, FileKind};
use docchat_store::{ChatRecord, ChatStore, DocState, DocumentRecord, SearchFilter};
use serde::Deserialize;
use serde_json::json;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;

const INDEX_HTML: &str = include_str!("../../../web/index.html");
const APP_JS: &str = include_str!("../../../web/app.js");
const STYLE_CSS: &str = include_str!("../../../web/style.css");
const VIEW_HTML: &str = include_str!("../../../web/view.html");
const VIEW_JS: &str = include_str!("../../../web/view.js");

/// Longest accepted question, in bytes.
const MAX_QUESTION: usize = 8 * 1024;
/// Most passages one request may ask for.
const MAX_TOP_K: usize = 50;

/// The index in use and what works on it; replaced as a whole when a switch of
/// the embedding model completes.
#[derive(Clone)]
pub struct Live {
    /// Retrieval and generation.
    pub rag: Rag,
    /// The indexer (status, queue).
    pub indexer: Arc<Indexer>,
}

/// The live index, shared by the handlers, the file watcher and a switch.
pub type LiveSlot = Arc<std::sync::RwLock<Live>>;

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The index in use.
    pub live: LiveSlot,
    /// A switch of the embedding model, while one runs (and its outcome).
    pub switch: crate::switch::SwitchProgress,
    /// Question defaults (from the configuration).
    pub ask_defaults: AskOptions,
    /// Places in line for the chat model.
    pub chat_slots: Arc<Admission>,
    /// Places in line for the embedding model (API requests).
    pub embed_slots: Arc<Admission>,
    /// When the server started (Unix seconds).
    pub started_unix: u64,
    /// Chat history.
    pub chats: ChatStore,
    /// The watched folders, changed while running.
    pub folders: Arc<crate::folders::Folders>,
    /// Largest accepted upload, in bytes.
    pub max_upload_bytes: usize,
    /// The model files (for the model picker).
    pub models: crate::models::ModelPaths,
    /// The chat model's context size as configured.
    pub ctx_size: u64,
    /// Engine options models are loaded with.
    pub engine: docchat_llm::EngineOptions,
    /// The last CPU reading (for the resources view).
    pub cpu: Arc<std::sync::Mutex<Option<(std::time::Instant, u64)>>>,
}

impl AppState {
    /// The index in use now.
    pub fn live(&self) -> Live {
        self.live
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The live index together with the embedding switch's progress, read under
    /// the live slot's lock: the switch marks itself done under that lock when it
    /// swaps the index, so the two always agree.
    fn live_and_switch(&self) -> (Live, Option<crate::switch::SwitchStatus>) {
        let live = self
            .live
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let switch = self
            .switch
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        (live.clone(), switch)
    }
}

/// Errors of the API, each with its status.
#[derive(Debug)]
pub enum ApiError {
    /// The request is wrong; the message says how.
    BadRequest(String),
    /// No such thing.
    NotFound(String),
    /// Too many requests wait for the model.
    Busy(Busy),
    /// The upload is larger than allowed.
    TooLarge(String),
    /// The upload is of a type docchat does not read, or not what it claims.
    Unsupported(String),
    /// docchat failed; details go to the log, not to the client.
    Internal(anyhow::Error),
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> Self {
        Self::Internal(e)
    }
}

impl From<docchat_store::Error> for ApiError {
    fn from(e: docchat_store::Error) -> Self {
        Self::Internal(e.into())
    }
}

impl From<Busy> for ApiError {
    fn from(b: Busy) -> Self {
        Self::Busy(b)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            Self::Busy(b) => {
                let mut res = (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Json(json!({ "error": { "message": "docchat is busy: too many questions are waiting for the model; retry later" } })),
                )
                    .into_response();
                if let Ok(v) = HeaderValue::from_str(&b.retry_after_s.to_string()) {
                    res.headers_mut().insert(header::RETRY_AFTER, v);
                }
                return res;
            }
            Self::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
            Self::NotFound(m) => (StatusCode::NOT_FOUND, m),
            Self::TooLarge(m) => (StatusCode::PAYLOAD_TOO_LARGE, m),
            Self::Unsupported(m) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, m),
            Self::Internal(e) => {
                tracing::error!(error = format!("{e:#}"), "request failed");
                let described = crate::indexer::describe_write_error(&e);
                if described.starts_with("the data folder is") {
                    // A full or read-only data folder: the user can fix that.
                    (StatusCode::INSUFFICIENT_STORAGE, described)
                } else {
                    (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "internal error; see the server log".to_string(),
                    )
                }
            }
        };
        (status, Json(json!({ "error": { "message": message } }))).into_response()
    }
}

/// The application's routes, every one behind `guard`.
pub fn router(state: AppState, guard: Arc<crate::guard::Guard>) -> Router {
    let login = Router::new()
        .route(
            "/login",
            get(crate::guard::login_page).post(crate::guard::login),
        )
        .with_state(Arc::clone(&guard));
    Router::new()
        .route("/", get(|| async { Html(INDEX_HTML) }))
        .route(
            "/app.js",
            get(|| async { asset(APP_JS, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/style.css",
            get(|| async { asset(STYLE_CSS, "text/css; charset=utf-8") }),
        )
        .route("/api/status", get(status))
        .route("/api/chat", post(chat))
        .route("/api/chats", get(list_chats))
        .route(
            "/api/chats/{id}",
            get(get_chat).patch(rename_chat).delete(delete_chat),
        )
        .route("/api/chats/{id}/export", get(export_chat))
        .route("/api/search", post(search))
        .route("/api/documents/{id}/file", get(document_file))
        .route("/api/documents/{id}/text", get(document_text))
        .route("/view.html", get(|| async { Html(VIEW_HTML) }))
        .route(
            "/view.js",
            get(|| async { asset(VIEW_JS, "text/javascript; charset=utf-8") }),
        )
        .route("/api/events", get(events))
        .route(
            "/api/collections",
            get(list_collections).post(add_collection),
        )
        .route(
            "/api/collections/{name}",
            axum::routing::delete(remove_collection),
        )
        .route("/api/collections/{name}/files", post(upload))
        .route("/api/collections/{name}/{action}", post(collection_action))
        .route("/api/models", get(models))
        .route("/api/models/use", post(use_model))
        .route("/api/resources", get(resources))
        .nest("/v1", crate::openai::router())
        .with_state(state)
        .merge(login)
        .layer(axum::middleware::from_fn_with_state(
            guard,
            crate::guard::check,
        ))
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

async fn status(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let (live, switch) = state.live_and_switch();
    let docs = live.rag.retriever.store.documents().await?;
    let count = |s: DocState| docs.iter().filter(|d| d.state == s).count();
    let (indexed, failed, pending) = (
        count(DocState::Indexed),
        count(DocState::Failed),
        count(DocState::Pending),
    );
    let documents: Vec<_> = docs
        .iter()
        .map(|d| {
            json!({
                "id": d.id, "path": d.path, "collection": d.collection,
                "state": d.state, "error": d.error, "pages": d.pages, "chunks": d.chunks,
                "title": d.title, "author": d.author, "extractor": d.extractor, "size": d.size,
            })
        })
        .collect();
    let ix = &live.indexer;
    Ok(Json(json!({
        "documents": documents,
        "counts": { "indexed": indexed, "failed": failed, "pending": pending },
        "queue": ix.queue_len(),
        "requests": {
            "chat_in_flight": state.chat_slots.in_flight(),
            "chat_limit": state.chat_slots.limit(),
            "embedding_in_flight": state.embed_slots.in_flight(),
        },
        "reconciled": ix.reconciled(),
        "write_error": ix.write_error(),
        "progress": ix.progress(),
        "stats": {
            "chunks_embedded": ix.stats.chunks_embedded.load(Ordering::SeqCst),
            "documents_extracted": ix.stats.documents_extracted.load(Ordering::SeqCst),
            "documents_moved": ix.stats.documents_moved.load(Ordering::SeqCst),
        },
        "collections": ix.roots().iter().map(|r| json!({"name": r.collection, "path": r.path})).collect::<Vec<_>>(),
        "embedding_switch": switch,
        "models": {
            "chat": live.rag.generator.id(),
            "embedding": live.rag.retriever.embedder.id(),
        },
    })))
}

#[derive(Debug, Deserialize)]
struct ChatRequest {
    question: String,
    /// The chat this question continues; a new chat when absent.
    #[serde(default)]
    chat_id: Option<String>,
    /// `false`: answer without keeping the chat (then `history` gives the
    /// conversation so far).
    #[serde(default)]
    save: Option<bool>,
    /// The conversation so far, oldest first, for a follow-up that is not saved.
    #[serde(default)]
    history: Vec<ChatTurn>,
    #[serde(default)]
    collections: Vec<String>,
    #[serde(default)]
    filter: Option<SearchFilter>,
    #[serde(default)]
    mode: Option<SearchMode>,
    #[serde(default)]
    top_k: Option<usize>,
    #[serde(default)]
    max_tokens: Option<u32>,
    #[serde(default)]
    temperature: Option<f32>,
    /// Generate exactly `max_tokens` (no end of text, no stop strings), as
    /// llama-server's `ignore_eos`: for benchmarks and tests.
    #[serde(default)]
    ignore_eos: bool,
}

fn check_question(q: &str) -> Result<(), ApiError> {
    if q.trim().is_empty() {
        return Err(ApiError::BadRequest("the question is empty".into()));
    }
    if q.len() > MAX_QUESTION {
        return Err(ApiError::BadRequest(format!(
            "the question is longer than {MAX_QUESTION} bytes"
        )));
    }
    Ok(())
}

fn check_top_k(k: Option<usize>, default: usize) -> Result<usize, ApiError> {
    match k {
        None => Ok(default),
        Some(k) if (1..=MAX_TOP_K).contains(&k) => Ok(k),
        Some(k) => Err(ApiError::BadRequest(format!(
            "top_k must be between 1 and {MAX_TOP_K}, not {k}"
        ))),
    }
}

async fn chat(
    State(state): State<AppState>,
    Json(req): Json<ChatRequest>,
) -> Result<Sse<impl futures::Stream<Item = Result<Event, Infallible>>>, ApiError> {
    check_question(&req.question)?;
    let mut opts = state.ask_defaults.clone();
    opts.filter = request_filter(req.filter, req.collections);
    opts.mode = req.mode.unwrap_or(opts.mode);
    opts.top_k = check_top_k(req.top_k, opts.top_k)?;
    if let Some(m) = req.max_tokens {
        opts.params.max_tokens = m.clamp(1, 4096);
    }
    if let Some(t) = req.temperature {
        opts.params.temperature = t.clamp(0.0, 2.0);
    }
    opts.params.ignore_eos = req.ignore_eos;
    let chat = if req.save == Some(false) {
        None
    } else {
        Some(match &req.chat_id {
            Some(id) => chat_or_404(&state, id).await?,
            None => {
                let now = now_ms();
                ChatRecord {
                    id: crate::history::new_chat_id(),
                    title: crate::history::title_of(&req.question),
                    created_ms: now,
                    updated_ms: now,
                }
            }
        })
    };
    let permit = state.chat_slots.try_enter()?;
    let (tx, rx) = mpsc::channel(64);
    let rag = state.live().rag.clone();
    let first = chat.as_ref().map(|c| {
        Event::default()
            .event("chat")
            .data(json!({"id": c.id, "title": c.title}).to_string())
    });
    let chats = state.chats.clone();
    tokio::spawn(async move {
        match chat {
            Some(chat) => {
                let (id, out) = (chat.id.clone(), tx.clone());
                let kept =
                    crate::history::answer_in_chat(rag, chats, chat, req.question, opts, out).await;
                if let Err(e) = kept {
                    tracing::error!(chat = id, error = format!("{e:#}"), "cannot keep the chat");
                    let message = format!("the chat could not be saved: {e:#}");
                    let _ = tx.send(AnswerEvent::Error(message)).await;
                }
            }
            None => {
                rag.answer(req.question, req.history, opts, tx.clone())
                    .await
            }
        }
        // The place is free before the stream ends (when the last sender goes).
        drop(permit);
        drop(tx);
    });
    let stream = tokio_stream::iter(first.map(Ok))
        .chain(ReceiverStream::new(rx).map(|ev| Ok(sse_event(ev))));
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

fn sse_event(ev: AnswerEvent) -> Event {
    let (name, data) = match ev {
        AnswerEvent::Token(text) => ("token", json!({ "text": text })),
        AnswerEvent::Citations(c) => ("citations", json!(c)),
        AnswerEvent::Done(s) => (
            "done",
            json!({
                "tokens": s.tokens, "prompt_tokens": s.prompt_tokens, "ttft_ms": s.ttft_ms,
                "tokens_per_s": s.tokens_per_s, "finish_reason": s.finish_reason,
            }),
        ),
        AnswerEvent::Error(message) => ("error", json!({ "message": message })),
    };
    Event::default().event(name).data(data.to_string())
}

/// The filter of a request: `filter`, with the older top-level `collections`
/// folded in.
fn request_filter(filter: Option<SearchFilter>, collections: Vec<String>) -> SearchFilter {
    let mut f = filter.unwrap_or_default();
    for c in collections {
        if !f.collections.contains(&c) {
            f.collections.push(c);
        }
    }
    f
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchRequest {
    query: String,
    #[serde(default)]
    top_k: Option<usize>,
    #[serde(default)]
    mode: Option<SearchMode>,
    #[serde(default)]
    collections: Vec<String>,
    #[serde(default)]
    filter: Option<SearchFilter>,
    #[serde(default)]
    fusion: Option<Fusion>,
    #[serde(default)]
    expand: Option<bool>,
}

/// `POST /api/search`: passages only, no generation.
async fn search(
    State(state): State<AppState>,
    Json(req): Json<SearchRequest>,
) -> Result<Json<serde_json::Value>, ApiError> {
    check_question(&req.query)?;
    let top_k = check_top_k(req.top_k, 10)?;
    let defaults = &state.ask_defaults;
    let retrieval = Retrieval {
        query: req.query,
        mode: req.mode.unwrap_or(defaults.mode),
        top_k,
        filter: request_filter(req.filter, req.collections),
        fusion: req.fusion.unwrap_or(defaults.fusion),
        expand: req.expand.unwrap_or(true),
    };
    let started = std::time::Instant::now();
    let passages = state.live().rag.retriever.search(&retrieval).await?;
    let hits: Vec<_> = passages
        .iter()
        .map(|p| {
            json!({
                "document_id": p.document_id, "collection": p.collection, "path": p.path,
                "page_start": p.page_start, "page_end": p.page_end,
                "byte_start": p.byte_start, "byte_end": p.byte_end,
                "match_start": p.match_start, "match_end": p.match_end,
                "snippet": p.text, "score": p.score,
                "url": format!("/api/documents/{}/file#page={}", p.document_id, p.page_start),
            })
        })
        .collect();
    Ok(Json(json!({
        "mode": retrieval.mode,
        "hits": hits,
        "took_ms": started.elapsed().as_secs_f64() * 1000.0,
    })))
}

/// `GET /api/events`: indexing progress as Server-Sent Events — `progress` now and
/// after every file, `document` on every state change.
async fn events(
    State(state): State<AppState>,
) -> Sse<impl futures::Stream<Item = Result<Event, Infallible>>> {
    use tokio_stream::wrappers::BroadcastStream;
    let ix = &state.live().indexer;
    let rx = ix.events.subscribe();
    let first = crate::progress::IndexEvent::Progress(ix.progress());
    let stream = tokio_stream::once(first)
        .chain(BroadcastStream::new(rx).filter_map(Result::ok))
        .map(|ev| {
            Ok(Event::default()
                .event(ev.name())
                .data(json!(ev).to_string()))
        });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// `POST /api/collections/{name}/pause|resume|cancel`.
async fn collection_action(
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

/// Serves the original file of an indexed document (and nothing else: ids come
/// from the manifest, never from a path in the request).
async fn document_file(
    State(state): State<AppState>,
    UrlPath(id): UrlPath<String>,
) -> Result<Response, ApiError> {
    let doc = state
        .live()
        .rag
        .retriever
        .store
        .document(&id)
        .await?
        .filter(|d| d.state == DocState::Indexed)
        .ok_or_else(|| ApiError::NotFound(format!("no indexed document {id:?}")))?;
    let path = std::path::PathBuf::from(&doc.abs_path);
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
    let bytes = tokio::fs::read(&path)
        .await
        .map_err(|_| ApiError::NotFound(format!("the file of document {id:?} is gone")))?;
    let mime = FileKind::from_path(&path).map_or("application/octet-stream", FileKind::mime);
    let name = path.file_name().map_or_else(
        || "document".into(),
        |n| n.to_string_lossy().replace('"', "'"),
    );
    let mut res = bytes.into_response();
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

/// Whether the file of `doc` is still a plain file inside the folder it was indexed
/// from: a file replaced by a link to elsewhere since is not served.
fn still_inside(doc: &DocumentRecord) -> bool {
    let abs = std::path::Path::new(&doc.abs_path);
    let mut root = abs.to_path_buf();
    for _ in doc.path.split('/').filter(|c| !c.is_empty()) {
        if !root.pop() {
            return false;
        }
    }
    root.join(&doc.path) == abs
        && crate::indexer::inside_root(&root, abs)
        && std::fs::metadata(abs).is_ok_and(|m| m.is_file())
}

/// `GET /api/chats`: the history, most recent first.
async fn list_chats(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(json!({ "chats": state.chats.chats().await? })))
}

async fn chat_or_404(state: &AppState, id: &str) -> Result<ChatRecord, ApiError> {
    state
        .chats
        .chat(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no chat {id:?}")))
}

/// `GET /api/chats/{id}`: a chat with its messages (answers with their sources).
async fn get_chat(
    State(state): State<AppState>,
    UrlPath(id): UrlPath<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let chat = chat_or_404(&state, &id).await?;
    let messages: Vec<_> = state
        .chats
        .messages(&id)
        .await?
        .into_iter()
        .map(|m| {
            let record: serde_json::Value = m
                .sources
                .as_deref()
                .and_then(|s| serde_json::from_str(s).ok())
                .unwrap_or(serde_json::Value::Null);
            json!({
                "seq": m.seq, "role": m.role, "content": m.content, "created_ms": m.created_ms,
                "sources": record["sources"], "stats": record["stats"],
                "stopped": record["stopped"] == true,
            })
        })
        .collect();
    Ok(Json(json!({ "chat": chat, "messages": messages })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RenameRequest {
    title: String,
}

/// `PATCH /api/chats/{id}` `{"title"}`.
async fn rename_chat(
    State(state): State<AppState>,
    UrlPath(id): UrlPath<String>,
    Json(req): Json<RenameRequest>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let title = req.title.trim();
    if title.is_empty() || title.chars().count() > 200 {
        return Err(ApiError::BadRequest(
            "a title has 1 to 200 characters".into(),
        ));
    }
    let mut chat = chat_or_404(&state, &id).await?;
    chat.title = title.to_string();
    chat.updated_ms = now_ms();
    state.chats.put_chat(&chat).await?;
    Ok(Json(json!({ "chat": chat })))
}

/// `DELETE /api/chats/{id}`.
async fn delete_chat(
    State(state): State<AppState>,
    UrlPath(id): UrlPath<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    chat_or_404(&state, &id).await?;
    state.chats.delete_chat(&id).await?;
    Ok(Json(json!({ "deleted": id })))
}

/// `GET /api/chats/{id}/export`: the chat as Markdown, with its citations.
async fn export_chat(
    State(state): State<AppState>,
    UrlPath(id): UrlPath<String>,
) -> Result<Response, ApiError> {
    let chat = chat_or_404(&state, &id).await?;
    let messages = state.chats.messages(&id).await?;
    let mut res = crate::history::markdown(&chat, &messages).into_response();
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

/// `GET /api/collections`: each watched folder with its document counts and whether
/// its indexing is paused, and collections of the index no folder feeds any more.
async fn list_collections(
    State(state): State<AppState>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let live = state.live();
    let docs = live.rag.retriever.store.documents().await?;
    let rows =
        crate::folders::collection_rows(&live.indexer.roots(), &docs, &live.indexer.paused());
    Ok(Json(json!({ "collections": rows })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AddCollection {
    path: String,
    #[serde(default)]
    name: Option<String>,
}

/// `POST /api/collections` `{"path", "name"?}`: watches a folder from now on (and
/// after a restart); its files are queued at once.
async fn add_collection(
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
    let root = state
        .folders
        .add(&live.indexer, &path, req.name)
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
struct RemoveCollection {
    #[serde(default)]
    forget: bool,
}

/// `DELETE /api/collections/{name}[?forget=true]`: stops watching the folder; with
/// `forget`, its documents leave the index too (the files stay).
async fn remove_collection(
    State(state): State<AppState>,
    UrlPath(name): UrlPath<String>,
    axum::extract::Query(q): axum::extract::Query<RemoveCollection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let live = state.live();
    let root = state
        .folders
        .remove(&live.indexer, &name)?
        .ok_or_else(|| ApiError::NotFound(format!("no watched collection {name:?}")))?;
    let mut forgotten = 0;
    if q.forget {
        let store = &live.rag.retriever.store;
        for d in store.documents().await? {
            if d.collection == name {
                store.delete_document(&d.id).await?;
                forgotten += 1;
            }
        }
    }
    Ok(Json(
        json!({ "name": name, "path": root.path, "forgotten": forgotten }),
    ))
}

#[derive(Debug, Deserialize)]
struct UploadQuery {
    name: String,
}

/// `POST /api/collections/{name}/files?name=FILE` with the file as the body: checked
/// (size, type by content, name) and written into the collection's folder, where the
/// watcher picks it up.
async fn upload(
    State(state): State<AppState>,
    UrlPath(collection): UrlPath<String>,
    axum::extract::Query(q): axum::extract::Query<UploadQuery>,
    headers: axum::http::HeaderMap,
    body: axum::body::Body,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    use crate::upload::{Refused, check_content, clean_name, write_into};
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
        .map_err(|e| {
            ApiError::Internal(anyhow::Error::new(e).context("cannot write the upload"))
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

/// `GET /api/models`: the models in use and the settings of answers, the GGUF
/// files docchat knows and the catalog, each with the memory it needs at the
/// configured context against this machine's memory.
async fn models(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let live = state.live();
    let ctx = state.ctx_size;
    let (paths, defaults) = (state.models.clone(), state.ask_defaults.clone());
    let (known, catalog, system) = tokio::task::spawn_blocking(move || {
        let mut known = crate::models::known_models(&paths);
        for row in &mut known {
            if let Some(info) = &row.info {
                let at = ctx.min(info.context_length.max(1));
                row.memory = Some(docchat_llm::meta::estimate_memory(info, at));
            }
        }
        (
            known,
            crate::models::catalog_rows(ctx),
            crate::models::system_memory(),
        )
    })
    .await
    .map_err(|e| ApiError::Internal(e.into()))?;
    let catalog = catalog?;
    let fit = |m: &Option<docchat_llm::meta::MemoryEstimate>| {
        m.map(|m| docchat_llm::meta::Fit::of(m.total(), system.available).as_str())
    };
    let rows = |rows: &[crate::models::ModelRow]| -> Vec<serde_json::Value> {
        rows.iter()
            .map(|r| {
                let mut v = json!(r);
                v["fit"] = json!(fit(&r.memory));
                v
            })
            .collect()
    };
    Ok(Json(json!({
        "in_use": {
            "chat": live.rag.generator.id(),
            "embedding": live.rag.retriever.embedder.id(),
            "context_size": live.rag.generator.context_size(),
        },
        "settings": {
            "top_k": defaults.top_k, "mode": defaults.mode,
            "temperature": defaults.params.temperature, "max_tokens": defaults.params.max_tokens,
            "max_upload_bytes": state.max_upload_bytes,
        },
        "system": system,
        "models": rows(&known),
        "catalog": rows(&catalog),
    })))
}

/// Resident memory and CPU time of this process, from `/proc/self`.
fn process_figures() -> (u64, u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces): utime is the 14th
    // field of the line, stime the 15th, in clock ticks (100 per second).
    let ticks = stat
        .rsplit_once(')')
        .map(|(_, rest)| {
            let f: Vec<&str> = rest.split_whitespace().collect();
            let n = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            n(11) + n(12)
        })
        .unwrap_or(0);
    (field("VmRSS:") * 1024, field("Threads:"), ticks)
}

/// `GET /api/resources`: process memory and CPU use, the machine's memory, and what
/// is loaded.
async fn resources(State(state): State<AppState>) -> Json<serde_json::Value> {
    let live = state.live();
    let (rss, threads, ticks) = process_figures();
    let now = std::time::Instant::now();
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let cpu_percent = {
        let mut last = state
            .cpu
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let pct = last.map(|(at, t)| {
            let secs = now.duration_since(at).as_secs_f64().max(1e-3);
            (ticks.saturating_sub(t) as f64 / 100.0) / secs / cores as f64 * 100.0
        });
        *last = Some((now, ticks));
        pct
    };
    Json(json!({
        "process": {
            "rss_bytes": rss, "threads": threads,
            "cpu_seconds": ticks as f64 / 100.0,
            "cpu_percent": cpu_percent, "cores": cores,
        },
        "system": crate::models::system_memory(),
        "models": {
            "chat": { "id": live.rag.generator.id(), "loaded": true,
                      "context_size": live.rag.generator.context_size() },
            "embedding": { "id": live.rag.retriever.embedder.id(), "loaded": true,
                           "dimensions": live.rag.retriever.embedder.dim() },
        },
        "requests": {
            "chat_in_flight": state.chat_slots.in_flight(),
            "chat_limit": state.chat_slots.limit(),
        },
        "uptime_s": std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
            .saturating_sub(state.started_unix),
    }))
}

#[derive(Debug, Deserialize)]
struct PageQuery {
    page: u32,
}

/// The extracted text of one page, rebuilt from the document's chunks (their byte
/// ranges are exact, so the citations' byte ranges apply to it): how a DOCX or text
/// source is shown, scrolled to the passage.
async fn document_text(
    State(state): State<AppState>,
    UrlPath(id): UrlPath<String>,
    axum::extract::Query(q): axum::extract::Query<PageQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let store = state.live().rag.retriever.store;
    let doc = store
        .document(&id)
        .await?
        .filter(|d| d.state == DocState::Indexed)
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
        .filter(|c| c.page_start == q.page)
        .collect();
    chunks.sort_by_key(|c| (c.byte_start, c.byte_end));
    Ok(Json(json!({
        "document_id": doc.id, "collection": doc.collection, "path": doc.path,
        "page": q.page, "pages": doc.pages, "text": page_text(&chunks),
    })))
}

/// Lays chunk texts out at their byte offsets: overlaps are written once, gaps (text
/// no chunk holds, such as trimmed spaces) become spaces, so offsets stay exact.
fn page_text(chunks: &[docchat_store::ChunkRecord]) -> String {
    let mut out = String::new();
    for c in chunks {
        let start = c.byte_start as usize;
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
    use docchat_store::ChunkRecord;

    fn chunk(start: u32, text: &str) -> ChunkRecord {
        ChunkRecord {
            id: String::new(),
            document_id: String::new(),
            collection: String::new(),
            path: String::new(),
            page_start: 1,
            page_end: 1,
            byte_start: start,
            byte_end: start + text.len() as u32,
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UseModel {
    model: String,
}

/// `POST /api/models/use` `{"model"}`: answers come from another chat model from
/// now on (for this run; `docchat models use` makes it the configured one). Refused
/// when it will not fit in the memory free now, or when it is an embedding model
/// (a switch that re-embeds the index: `docchat models use`, then a restart).
async fn use_model(
    State(state): State<AppState>,
    Json(req): Json<UseModel>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let path = crate::models::resolve_model_path(&state.models.dir, req.model.trim())
        .map_err(|e| ApiError::BadRequest(format!("{e:#}")))?;
    let info =
        docchat_llm::meta::read_info(&path).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    if info.embedding {
        return Err(ApiError::BadRequest(format!(
            "{} is an embedding model: switching it re-embeds the index; run `docchat models use {}` and restart",
            path.display(),
            req.model.trim()
        )));
    }
    let need =
        docchat_llm::meta::estimate_memory(&info, state.ctx_size.min(info.context_length.max(1)));
    let available = crate::models::system_memory().available;
    if docchat_llm::meta::Fit::of(need.total(), available) == docchat_llm::meta::Fit::WillNotFit {
        return Err(ApiError::BadRequest(format!(
            "{} needs about {} MiB at this context and {} MiB are free",
            path.display(),
            need.total() >> 20,
            available >> 20
        )));
    }
    let opts = state.engine.clone();
    let generator =
        tokio::task::spawn_blocking(move || crate::models::load_generator(&path, &opts))
            .await
            .map_err(|e| ApiError::Internal(e.into()))?
            .map_err(|e| ApiError::BadRequest(format!("{e:#}")))?;
    let (id, ctx) = (generator.id().to_string(), generator.context_size());
    state
        .live
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .rag
        .generator = generator;
    tracing::info!(model = %id, "chat model switched");
    Ok(Json(json!({ "chat": id, "context_size": ctx })))
}

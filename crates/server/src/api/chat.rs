//! `/api/chat` (an answer streamed over SSE, kept in a chat) and `/api/search`.

use super::chats::chat_or_404;
use super::wire::{
    ChatEvent, DoneEvent, ErrorEvent, Explain, Hit, SearchBody, SourcesBody, TokenEvent,
};
use crate::error::ApiError;
use crate::keys::Principal;
use crate::state::AppState;
use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use docchat_core::ChatTurn;
use docchat_service::answer::MAX_TOP_K;
use docchat_service::answer::rag::{AnswerEvent, asks_about_the_documents};
use docchat_service::answer::read::Reading;
use docchat_service::answer::retrieve::{Fusion, SearchMode, SearchRequest as Retrieval, Trace};
use docchat_service::clock::now_ms;
use docchat_store::{ChatRecord, SearchFilter};
use serde::Deserialize;
use std::convert::Infallible;
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;

/// Longest accepted question, in bytes.
pub(crate) const MAX_QUESTION: usize = 8 * 1024;

#[derive(Debug, Deserialize)]
pub(crate) struct ChatRequest {
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
    /// Only these documents (ids): a question about them as a whole ("summarize",
    /// "list every…") reads them to the end.
    #[serde(default)]
    documents: Vec<String>,
    /// `auto` (the question decides), `retrieve` or `whole`.
    #[serde(default)]
    reading: Option<Reading>,
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

pub(crate) fn check_question(q: &str) -> Result<(), ApiError> {
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

/// Documents a question is scoped to must be in the index.
pub(crate) async fn check_documents(
    state: &AppState,
    who: &Principal,
    ids: &[String],
) -> Result<(), ApiError> {
    if ids.is_empty() {
        return Ok(());
    }
    if ids.len() > 100 {
        return Err(ApiError::BadRequest(
            "at most 100 documents per question".into(),
        ));
    }
    let found = state
        .live()
        .rag
        .retriever
        .store
        .documents_by_id(ids)
        .await?;
    // A document of a collection the key may not read is not there for it.
    let missing: Vec<&String> = ids
        .iter()
        .filter(|i| {
            !found
                .iter()
                .any(|d| &d.id == *i && who.may_read(&d.collection))
        })
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(ApiError::BadRequest(format!(
            "no such document: {}",
            missing
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )))
    }
}

/// A 503 with the reason when the generator cannot generate now (a remote one
/// that does not answer), before any answer starts streaming.
pub(crate) async fn check_generator(
    generator: &std::sync::Arc<dyn docchat_core::Generator>,
) -> Result<(), ApiError> {
    let g = std::sync::Arc::clone(generator);
    tokio::task::spawn_blocking(move || g.available())
        .await
        .map_err(|e| ApiError::Internal(e.into()))?
        .map_err(ApiError::Unavailable)
}

pub(crate) fn check_top_k(k: Option<usize>, default: usize) -> Result<usize, ApiError> {
    match k {
        None => Ok(default),
        Some(k) if (1..=MAX_TOP_K).contains(&k) => Ok(k),
        Some(k) => Err(ApiError::BadRequest(format!(
            "top_k must be between 1 and {MAX_TOP_K}, not {k}"
        ))),
    }
}

pub(crate) async fn chat(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Json(req): Json<ChatRequest>,
) -> Result<Sse<impl futures::Stream<Item = Result<Event, Infallible>>>, ApiError> {
    check_question(&req.question)?;
    let mut opts = state.ask_defaults.clone();
    opts.filter = req
        .filter
        .unwrap_or_default()
        .with_collections(req.collections);
    opts.filter.documents.extend(req.documents);
    who.restrict(&mut opts.filter)?;
    check_documents(&state, &who, &opts.filter.documents).await?;
    opts.read.reading = req.reading.unwrap_or(opts.read.reading);
    if opts.read.reading == Reading::Whole && opts.filter.documents.is_empty() {
        return Err(ApiError::BadRequest(
            "reading \"whole\" needs documents to read".into(),
        ));
    }
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
            Some(id) => chat_or_404(&state, &who, id).await?,
            None => {
                let now = now_ms();
                ChatRecord {
                    id: docchat_service::answer::history::new_chat_id(),
                    title: docchat_service::answer::history::title_of(&req.question),
                    created_ms: now,
                    updated_ms: now,
                    owner: who.owner().to_string(),
                }
            }
        })
    };
    let rag = state.live().rag.clone();
    check_generator(&rag.generator).await?;
    let permit = state.chat_slots.try_enter()?;
    let (tx, rx) = mpsc::channel(64);
    let first = chat.as_ref().map(|c| {
        event(
            "chat",
            &ChatEvent {
                id: &c.id,
                title: &c.title,
            },
        )
    });
    let chats = state.chats.clone();
    tokio::spawn(async move {
        match chat {
            Some(chat) => {
                let (id, out) = (chat.id.clone(), tx.clone());
                let kept = docchat_service::answer::history::answer_in_chat(
                    rag,
                    chats,
                    chat,
                    req.question,
                    opts,
                    out,
                )
                .await;
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

pub(crate) fn sse_event(ev: AnswerEvent) -> Event {
    match ev {
        AnswerEvent::Token(text) => event("token", &TokenEvent { text: &text }),
        AnswerEvent::Citations(c) => event("citations", &SourcesBody::from(&c)),
        AnswerEvent::Done(s) => event("done", &DoneEvent::from(&s)),
        AnswerEvent::Reading(p) => event("reading", &p),
        AnswerEvent::Error(message) => event("error", &ErrorEvent { message: &message }),
    }
}

/// The server-sent event `name` with `data` as JSON.
pub(crate) fn event(name: &str, data: &impl serde::Serialize) -> Event {
    Event::default()
        .event(name)
        .data(serde_json::to_string(data).unwrap_or_default())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SearchRequest {
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
    /// Also return both rankings and what fusion kept.
    #[serde(default)]
    explain: bool,
}

/// `POST /api/search`: passages only, no generation.
pub(crate) async fn search(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Json(req): Json<SearchRequest>,
) -> Result<Json<SearchBody>, ApiError> {
    let _place = state.searches.enter()?;
    docchat_service::hooks::pause(docchat_service::hooks::SEARCH).await;
    check_question(&req.query)?;
    let top_k = check_top_k(req.top_k, 10)?;
    let defaults = &state.ask_defaults;
    let mut retrieval = Retrieval {
        query: req.query,
        mode: req.mode.unwrap_or(defaults.mode),
        top_k,
        filter: req
            .filter
            .unwrap_or_default()
            .with_collections(req.collections),
        fusion: req.fusion.unwrap_or(defaults.fusion),
        expand: req.expand.unwrap_or(true),
    };
    who.restrict(&mut retrieval.filter)?;
    check_documents(&state, &who, &retrieval.filter.documents).await?;
    let started = std::time::Instant::now();
    let trace = state.live().rag.retriever.trace(&retrieval).await?;
    let nearest_similarity = trace.nearest_similarity();
    let about_the_documents = asks_about_the_documents(&retrieval.query);
    let Trace {
        vector,
        keyword,
        keywords,
        fused,
        passages,
    } = trace;
    let explain = req.explain.then(|| Explain {
        nearest_similarity,
        min_similarity: defaults.min_similarity,
        about_the_documents,
        chat_passages: defaults.chat_passages,
        vector,
        keyword,
        keywords,
        fused,
    });
    Ok(Json(SearchBody {
        mode: retrieval.mode,
        hits: passages.into_iter().map(Hit::from).collect(),
        took_ms: started.elapsed().as_secs_f64() * 1000.0,
        explain,
    }))
}

//! The OpenAI-compatible API under `/v1`: `GET /v1/models`, `POST /v1/chat/completions`
//! (streamed or not) and `POST /v1/embeddings`, with errors in OpenAI's shape.
//!
//! The model `docchat` answers from the indexed documents (retrieval, then
//! generation) and adds `citations` to its responses; the chat model's own id
//! answers without retrieval, like llama-server would.

use crate::AppState;
use crate::keys::Principal;
use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use docchat_core::{
    ChatTurn, FinishReason, GenerationParams, GenerationStats, PLAIN_USER_PREFIX, Role,
};
use docchat_service::admission::{Busy, Permit};
use docchat_service::answer::MAX_TOP_K;
use docchat_service::answer::rag::{AnswerEvent, Citation};
use serde_json::{Value, json};
use std::convert::Infallible;
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

mod embeddings;
mod types;

use types::{ChatCompletionRequest, Content, DocchatOptions, Message, OneOrMany};

/// The model id that answers from the documents.
pub const RAG_MODEL: &str = "docchat";
/// Most stop strings, as OpenAI allows.
const MAX_STOPS: usize = 4;

/// The `/v1` routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/models", get(list_models))
        .route("/models/{id}", get(get_model))
        .route("/chat/completions", post(chat_completions))
        .route("/embeddings", post(embeddings::embeddings))
        .fallback(|| async {
            OaiError::new(
                StatusCode::NOT_FOUND,
                "invalid_request_error",
                "unknown endpoint: docchat serves /v1/models, /v1/chat/completions and /v1/embeddings",
            )
        })
}

/// An error in OpenAI's shape: `{"error": {"message", "type", "param", "code"}}`.
#[derive(Debug)]
pub struct OaiError {
    status: StatusCode,
    kind: &'static str,
    message: String,
    param: Option<&'static str>,
    code: Option<&'static str>,
    retry_after_s: Option<u64>,
}

impl OaiError {
    fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            message: message.into(),
            param: None,
            code: None,
            retry_after_s: None,
        }
    }

    fn invalid(message: impl Into<String>, param: Option<&'static str>) -> Self {
        Self {
            param,
            ..Self::new(StatusCode::BAD_REQUEST, "invalid_request_error", message)
        }
    }

    fn with_code(mut self, code: &'static str) -> Self {
        self.code = Some(code);
        self
    }

    fn model_not_found(model: &str) -> Self {
        Self {
            param: Some("model"),
            ..Self::new(
                StatusCode::NOT_FOUND,
                "invalid_request_error",
                format!("The model `{model}` does not exist; GET /v1/models lists the models."),
            )
        }
        .with_code("model_not_found")
    }

    /// The API error of docchat's own API, in OpenAI's terms.
    fn of_api(e: crate::ApiError) -> Self {
        use crate::ApiError as E;
        match e {
            E::Unavailable(why) => Self::unavailable(why),
            E::Forbidden(why) => {
                Self::new(StatusCode::FORBIDDEN, "permission_error", why).with_code("forbidden")
            }
            E::BadRequest(why) => Self::invalid(why, Some("docchat")),
            E::NotFound(why) => Self::invalid(why, Some("docchat")),
            E::Internal(e) => Self::internal(&e),
            other => Self::internal(&anyhow::anyhow!("{other:?}")),
        }
    }

    /// A 503: what docchat needs is down (the remote generator, the store).
    fn unavailable(message: String) -> Self {
        Self {
            retry_after_s: Some(5),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, "server_error", message)
        }
        .with_code("unavailable")
    }

    fn internal(e: &anyhow::Error) -> Self {
        if let Some(why) = crate::error::unavailable(e) {
            return Self::unavailable(why);
        }
        tracing::error!(error = format!("{e:#}"), "request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "internal error; see the server log",
        )
    }

    fn body(&self) -> Value {
        json!({ "error": {
            "message": self.message, "type": self.kind, "param": self.param, "code": self.code,
        }})
    }
}

impl From<Busy> for OaiError {
    fn from(b: Busy) -> Self {
        Self {
            retry_after_s: Some(b.retry_after_s),
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "server_error",
                "docchat is busy: too many requests are waiting for the model; retry later",
            )
        }
        .with_code("overloaded")
    }
}

impl IntoResponse for OaiError {
    fn into_response(self) -> Response {
        let mut res = (self.status, Json(self.body())).into_response();
        if let Some(s) = self.retry_after_s
            && let Ok(v) = HeaderValue::from_str(&s.to_string())
        {
            res.headers_mut().insert(header::RETRY_AFTER, v);
        }
        res
    }
}

fn parse<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, OaiError> {
    if body.is_empty() {
        return Err(OaiError::invalid("the request has no JSON body", None));
    }
    serde_json::from_slice(body)
        .map_err(|e| OaiError::invalid(format!("invalid JSON body: {e}"), None))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A fresh response id with the given prefix.
fn new_id(prefix: &str) -> String {
    format!("{prefix}-{}", docchat_service::clock::fresh_hex(24))
}

fn model_entries(state: &AppState) -> Vec<Value> {
    let created = state.started_unix;
    vec![
        json!({
            "id": RAG_MODEL, "object": "model", "created": created, "owned_by": "docchat",
            "kind": "rag", "description": format!(
                "answers from your indexed documents with citations, written by {}",
                state.live().rag.generator.id()),
        }),
        json!({
            "id": state.live().rag.generator.id(), "object": "model", "created": created,
            "owned_by": "docchat", "kind": "chat",
            "context_length": state.live().rag.generator.context_size(),
        }),
        json!({
            "id": state.live().rag.retriever.embedder.id(), "object": "model", "created": created,
            "owned_by": "docchat", "kind": "embedding",
            "dimensions": state.live().rag.retriever.embedder.dim(),
        }),
    ]
}

async fn list_models(State(state): State<AppState>) -> Json<Value> {
    Json(json!({ "object": "list", "data": model_entries(&state) }))
}

async fn get_model(
    State(state): State<AppState>,
    UrlPath(id): UrlPath<String>,
) -> Result<Json<Value>, OaiError> {
    model_entries(&state)
        .into_iter()
        .find(|m| m["id"] == id.as_str())
        .map(Json)
        .ok_or_else(|| OaiError::model_not_found(&id))
}

fn turns_of(messages: Vec<Message>) -> Result<Vec<ChatTurn>, OaiError> {
    if messages.is_empty() {
        return Err(OaiError::invalid("`messages` is empty", Some("messages")));
    }
    let mut turns = Vec::with_capacity(messages.len());
    for (i, m) in messages.into_iter().enumerate() {
        let role = match m.role.as_str() {
            "system" | "developer" => Role::System,
            "user" => Role::User,
            "assistant" => Role::Assistant,
            other => {
                return Err(OaiError::invalid(
                    format!(
                        "messages[{i}]: role `{other}` is not supported (use system, user or assistant)"
                    ),
                    Some("messages"),
                ));
            }
        };
        let content = match m.content {
            None => String::new(),
            Some(Content::Text(t)) => t,
            Some(Content::Parts(parts)) => {
                let mut text = String::new();
                for p in parts {
                    match (p.kind.as_str(), p.text) {
                        ("text", Some(t)) => text.push_str(&t),
                        (kind, _) => {
                            return Err(OaiError::invalid(
                                format!(
                                    "messages[{i}]: content of type `{kind}` is not supported; docchat's models read text"
                                ),
                                Some("messages"),
                            ));
                        }
                    }
                }
                text
            }
        };
        turns.push(ChatTurn::new(role, content));
    }
    Ok(turns)
}

/// The sampling settings of a request, over the server's defaults.
/// What docchat does not do: several choices, tools, log-probabilities.
fn refuse_unsupported(req: &ChatCompletionRequest) -> Result<(), OaiError> {
    if let Some(n) = req.n
        && n != 1
    {
        return Err(OaiError::invalid("only n = 1 is supported", Some("n")));
    }
    if req.tools.as_ref().is_some_and(|t| !t.is_empty()) {
        return Err(OaiError::invalid("tools are not supported", Some("tools")));
    }
    if req.logprobs == Some(true) {
        return Err(OaiError::invalid(
            "logprobs are not supported",
            Some("logprobs"),
        ));
    }
    Ok(())
}

fn params_of(
    req: &ChatCompletionRequest,
    defaults: &GenerationParams,
) -> Result<GenerationParams, OaiError> {
    refuse_unsupported(req)?;
    let mut p = defaults.clone();
    if let Some(m) = req.max_completion_tokens.or(req.max_tokens) {
        if m == 0 {
            return Err(OaiError::invalid(
                "max_tokens must be at least 1",
                Some("max_tokens"),
            ));
        }
        p.max_tokens = m;
    }
    if let Some(t) = req.temperature {
        if !(0.0..=2.0).contains(&t) {
            return Err(OaiError::invalid(
                format!("temperature must be between 0 and 2, not {t}"),
                Some("temperature"),
            ));
        }
        p.temperature = t;
    }
    if let Some(t) = req.top_p {
        if !(t > 0.0 && t <= 1.0) {
            return Err(OaiError::invalid(
                format!("top_p must be in (0, 1], not {t}"),
                Some("top_p"),
            ));
        }
        p.top_p = t;
    }
    for (value, name) in [
        (req.frequency_penalty, "frequency_penalty"),
        (req.presence_penalty, "presence_penalty"),
    ] {
        if let Some(v) = value
            && !(-2.0..=2.0).contains(&v)
        {
            return Err(OaiError::invalid(
                format!("{name} must be between -2 and 2, not {v}"),
                Some(name),
            ));
        }
    }
    p.ignore_eos = req.ignore_eos.unwrap_or(false);
    p.cache_prompt = req.cache_prompt.unwrap_or(true);
    p.frequency_penalty = req.frequency_penalty.unwrap_or(p.frequency_penalty);
    p.presence_penalty = req.presence_penalty.unwrap_or(p.presence_penalty);
    if let Some(seed) = req.seed {
        // Seeds are 32-bit in llama.cpp; larger ones are folded in.
        p.seed = (seed as u64 ^ (seed as u64 >> 32)) as u32;
    }
    if let Some(stop) = &req.stop {
        let stops: Vec<String> = match stop {
            OneOrMany::One(s) => vec![s.clone()],
            OneOrMany::Many(v) => v.clone(),
        };
        if stops.len() > MAX_STOPS {
            return Err(OaiError::invalid(
                format!("at most {MAX_STOPS} stop strings are allowed"),
                Some("stop"),
            ));
        }
        p.stop = stops.into_iter().filter(|s| !s.is_empty()).collect();
    }
    Ok(p)
}

/// What a generation produced, for the non-streamed response.
#[derive(Default)]
struct Collected {
    text: String,
    citations: Option<Vec<Citation>>,
    stats: Option<GenerationStats>,
}

async fn chat_completions(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    body: Bytes,
) -> Result<Response, OaiError> {
    let req: ChatCompletionRequest = parse(&body)?;
    let generator = &state.live().rag.generator;
    let rag = req.model == RAG_MODEL;
    if !rag && req.model != generator.id() {
        return Err(OaiError::model_not_found(&req.model));
    }
    let params = params_of(&req, &state.ask_defaults.params)?;
    let include_usage = req.stream_options.as_ref().is_some_and(|o| o.include_usage);
    let (stream, model, docchat) = (
        req.stream,
        req.model.clone(),
        req.docchat.unwrap_or_default(),
    );
    let turns = turns_of(req.messages)?;
    crate::api::chat::check_generator(generator)
        .await
        .map_err(OaiError::of_api)?;
    if rag {
        crate::api::chat::check_documents(&state, &who, &docchat.documents)
            .await
            .map_err(OaiError::of_api)?;
    }
    let permit = state.chat_slots.try_enter()?;
    let rx = if rag {
        answer_from_documents(&state, &who, turns, docchat, params)?
    } else {
        complete(&state, turns, params).await?
    };
    let header = ChunkHeader {
        id: new_id("chatcmpl"),
        created: unix_now(),
        model,
    };
    if stream {
        let (events_tx, events_rx) = mpsc::channel::<Event>(64);
        tokio::spawn(stream_chunks(header, rx, events_tx, include_usage, permit));
        let sse = Sse::new(tokio_stream::StreamExt::map(
            ReceiverStream::new(events_rx),
            Ok::<_, Infallible>,
        ))
        .keep_alive(KeepAlive::default());
        return Ok(sse.into_response());
    }
    let collected = collect(rx).await?;
    drop(permit);
    let stats = collected.stats.unwrap_or_default();
    let mut body = json!({
        "id": header.id, "object": "chat.completion", "created": header.created,
        "model": header.model,
        "choices": [{
            "index": 0,
            "message": { "role": "assistant", "content": collected.text, "refusal": null },
            "finish_reason": finish_reason(&stats),
            "logprobs": null,
        }],
        "usage": usage(&stats),
    });
    if let Some(c) = collected.citations {
        body["citations"] = json!(crate::api::wire::linked(&c));
    }
    Ok(Json(body).into_response())
}

/// The model `docchat`: the last message is the question, answered from the
/// documents `docchat` allows; earlier turns are the conversation.
fn answer_from_documents(
    state: &AppState,
    who: &Principal,
    mut turns: Vec<ChatTurn>,
    docchat: DocchatOptions,
    mut params: GenerationParams,
) -> Result<mpsc::Receiver<AnswerEvent>, OaiError> {
    let Some(last) = turns.pop().filter(|t| t.role == Role::User) else {
        return Err(OaiError::invalid(
            "the last message must be the user's question",
            Some("messages"),
        ));
    };
    if last.content.trim().is_empty() {
        return Err(OaiError::invalid("the question is empty", Some("messages")));
    }
    if last.content.len() > crate::api::chat::MAX_QUESTION {
        return Err(OaiError::invalid(
            format!(
                "the question is longer than {} bytes",
                crate::api::chat::MAX_QUESTION
            ),
            Some("messages"),
        ));
    }
    let mut opts = state.ask_defaults.clone();
    opts.filter = docchat
        .filter
        .unwrap_or_default()
        .with_collections(docchat.collections);
    opts.filter.documents.extend(docchat.documents);
    who.restrict(&mut opts.filter).map_err(OaiError::of_api)?;
    opts.read.reading = docchat.reading.unwrap_or(opts.read.reading);
    opts.mode = docchat.mode.unwrap_or(opts.mode);
    if let Some(k) = docchat.top_k {
        if !(1..=MAX_TOP_K).contains(&k) {
            return Err(OaiError::invalid(
                format!("docchat.top_k must be between 1 and {MAX_TOP_K}"),
                Some("docchat"),
            ));
        }
        opts.top_k = k;
    }
    let rag = state.live().rag;
    // The sources need room: an answer gets at most half the context.
    params.max_tokens = params
        .max_tokens
        .min(rag.generator.context_size() as u32 / 2);
    opts.params = params;
    // docchat's own instructions come first; the client's system messages are not
    // used in document answers.
    let history: Vec<ChatTurn> = turns
        .into_iter()
        .filter(|t| t.role != Role::System)
        .collect();
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move { rag.answer(last.content, history, opts, tx).await });
    Ok(rx)
}

/// The chat model's own id: the conversation completed without retrieval. The
/// prompt is rendered and counted on a blocking thread, off the async runtime.
async fn complete(
    state: &AppState,
    turns: Vec<ChatTurn>,
    mut params: GenerationParams,
) -> Result<mpsc::Receiver<AnswerEvent>, OaiError> {
    let engine = state.live().rag;
    let generator = std::sync::Arc::clone(&engine.generator);
    let (prompt, prompt_tokens) = tokio::task::spawn_blocking(move || {
        let prompt = generator.render_chat(&turns);
        let n = generator.count_tokens(&prompt);
        (prompt, n)
    })
    .await
    .map_err(|e| OaiError::internal(&e.into()))?;
    let context = engine.generator.context_size();
    if prompt_tokens + 1 > context {
        return Err(OaiError::invalid(
            format!(
                "the messages take {prompt_tokens} tokens; the model's context holds {context}"
            ),
            Some("messages"),
        )
        .with_code("context_length_exceeded"));
    }
    if !engine.generator.has_chat_template() {
        params.stop.push(PLAIN_USER_PREFIX.to_string());
    }
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move { engine.complete(prompt, params, tx).await });
    Ok(rx)
}

async fn collect(mut rx: mpsc::Receiver<AnswerEvent>) -> Result<Collected, OaiError> {
    let mut out = Collected::default();
    while let Some(ev) = rx.recv().await {
        match ev {
            AnswerEvent::Token(t) => out.text.push_str(&t),
            AnswerEvent::Citations(s) => out.citations = Some(s.citations),
            AnswerEvent::Done(s) => out.stats = Some(s),
            AnswerEvent::Reading(_) => {}
            AnswerEvent::Error(m) => return Err(OaiError::internal(&anyhow::anyhow!(m))),
        }
    }
    if out.stats.is_none() {
        return Err(OaiError::internal(&anyhow::anyhow!(
            "the generation ended early"
        )));
    }
    Ok(out)
}

/// OpenAI's finish reason: `length`, or `stop` (a cancelled answer has no reader).
fn finish_reason(s: &GenerationStats) -> &'static str {
    match s.finish_reason {
        FinishReason::Length => "length",
        FinishReason::Stop | FinishReason::Cancelled => "stop",
    }
}

fn usage(s: &GenerationStats) -> Value {
    json!({
        "prompt_tokens": s.prompt_tokens,
        "completion_tokens": s.tokens,
        "total_tokens": s.prompt_tokens + s.tokens,
        "prompt_tokens_details": { "cached_tokens": s.cached_tokens },
    })
}

struct ChunkHeader {
    id: String,
    created: u64,
    model: String,
}

impl ChunkHeader {
    fn chunk(&self, delta: &Value, finish: Option<&str>) -> Value {
        json!({
            "id": self.id, "object": "chat.completion.chunk", "created": self.created,
            "model": self.model,
            "choices": [{ "index": 0, "delta": delta, "finish_reason": finish, "logprobs": null }],
        })
    }
}

/// Turns the answer's events into `chat.completion.chunk` events: a first chunk with
/// the role, one per piece of text, a last one with the finish reason (and the
/// citations of a `docchat` answer), the usage when asked for, then `[DONE]`. Holds
/// the request's place in line until the answer ends or the client leaves.
async fn stream_chunks(
    head: ChunkHeader,
    mut rx: mpsc::Receiver<AnswerEvent>,
    out: mpsc::Sender<Event>,
    include_usage: bool,
    permit: Permit,
) {
    let data = |v: Value| Event::default().data(v.to_string());
    if out
        .send(data(
            head.chunk(&json!({"role": "assistant", "content": ""}), None),
        ))
        .await
        .is_err()
    {
        return;
    }
    let mut citations = None;
    while let Some(ev) = rx.recv().await {
        let event = match ev {
            AnswerEvent::Token(t) => data(head.chunk(&json!({ "content": t }), None)),
            AnswerEvent::Citations(s) => {
                citations = Some(s.citations);
                continue;
            }
            // The coverage is in the text; progress has no place in the schema.
            AnswerEvent::Reading(_) => continue,
            AnswerEvent::Done(stats) => {
                let mut last = head.chunk(&json!({}), Some(finish_reason(&stats)));
                if let Some(c) = citations.take() {
                    last["citations"] = json!(crate::api::wire::linked(&c));
                }
                if out.send(data(last)).await.is_err() {
                    return;
                }
                if include_usage {
                    let mut u = head.chunk(&json!({}), None);
                    u["choices"] = json!([]);
                    u["usage"] = usage(&stats);
                    if out.send(data(u)).await.is_err() {
                        return;
                    }
                }
                break;
            }
            AnswerEvent::Error(m) => {
                tracing::error!(error = m, "streamed generation failed");
                let e = OaiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "server_error",
                    "the generation failed; see the server log",
                );
                let _ = out.send(data(e.body())).await;
                break;
            }
        };
        if out.send(event).await.is_err() {
            // The client left: dropping `rx` stops the generation.
            return;
        }
    }
    // The place is free before the client can see the end and send its next request.
    drop(permit);
    let _ = out.send(Event::default().data("[DONE]")).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_vectors_are_little_endian_f32() {
        use base64::Engine as _;
        let s = embeddings::encode_base64(&[1.0, -0.5]);
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(s)
            .expect("valid base64");
        assert_eq!(
            bytes,
            [1.0f32.to_le_bytes(), (-0.5f32).to_le_bytes()].concat()
        );
    }

    #[test]
    fn sampling_settings_are_checked() {
        let req = |extra: Value| -> ChatCompletionRequest {
            let mut v = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
            v.as_object_mut()
                .expect("object")
                .extend(extra.as_object().expect("object").clone());
            serde_json::from_value(v).expect("parses")
        };
        let d = GenerationParams::default();
        let p = params_of(
            &req(json!({"temperature": 0.0, "stop": "END", "max_tokens": 7, "seed": 5})),
            &d,
        )
        .expect("valid");
        assert_eq!((p.temperature, p.max_tokens, p.seed), (0.0, 7, 5));
        assert_eq!(p.stop, ["END"]);
        for bad in [
            json!({"temperature": 3.0}),
            json!({"top_p": 0.0}),
            json!({"n": 2}),
            json!({"max_tokens": 0}),
            json!({"stop": ["a", "b", "c", "d", "e"]}),
        ] {
            let e = params_of(&req(bad.clone()), &d).expect_err("rejected");
            assert_eq!(e.status, StatusCode::BAD_REQUEST, "{bad}");
            assert_eq!(e.kind, "invalid_request_error");
        }
    }

    #[test]
    fn message_content_may_be_text_parts() {
        let msgs: Vec<Message> = serde_json::from_value(json!([
            {"role": "developer", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "Hello "}, {"type": "text", "text": "there"}]},
        ]))
        .expect("parses");
        let turns = turns_of(msgs).expect("valid");
        assert_eq!(turns[0].role, Role::System);
        assert_eq!(turns[1].content, "Hello there");
        let images: Vec<Message> = serde_json::from_value(json!([
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]},
        ]))
        .expect("parses");
        assert!(turns_of(images).is_err());
    }
}

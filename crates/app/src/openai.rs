//! The OpenAI-compatible API under `/v1`: `GET /v1/models`, `POST /v1/chat/completions`
//! (streamed or not) and `POST /v1/embeddings`, with errors in OpenAI's shape.
//!
//! The model `docchat` answers from the indexed documents (retrieval, then
//! generation) and adds `citations` to its responses; the chat model's own id
//! answers without retrieval, like llama-server would.

use crate::admission::{Busy, Permit};
use crate::rag::{AnswerEvent, Citation};
use crate::retrieve::SearchMode;
use crate::server::AppState;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use docchat_core::{ChatTurn, GenerationParams, GenerationStats, PLAIN_USER_PREFIX, Role};
use docchat_store::SearchFilter;
use serde::Deserialize;
use serde_json::{Value, json};
use std::convert::Infallible;
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

/// The model id that answers from the documents.
pub const RAG_MODEL: &str = "docchat";
/// Most inputs of one embeddings request.
const MAX_EMBEDDING_INPUTS: usize = 2048;
/// Most stop strings, as OpenAI allows.
const MAX_STOPS: usize = 4;

/// The `/v1` routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/models", get(list_models))
        .route("/models/{id}", get(get_model))
        .route("/chat/completions", post(chat_completions))
        .route("/embeddings", post(embeddings))
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

    fn internal(e: &anyhow::Error) -> Self {
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
    format!("{prefix}-{}", crate::history::fresh_hex(24))
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

/// A string or a list of strings.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Content {
    Text(String),
    Parts(Vec<ContentPart>),
}

#[derive(Debug, Deserialize)]
struct ContentPart {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Message {
    role: String,
    #[serde(default)]
    content: Option<Content>,
}

#[derive(Debug, Default, Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: bool,
}

/// docchat's own request field: which documents a `docchat` answer may use.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct DocchatOptions {
    collections: Vec<String>,
    filter: Option<SearchFilter>,
    mode: Option<SearchMode>,
    top_k: Option<usize>,
}

#[derive(Debug, Deserialize)]
struct ChatCompletionRequest {
    model: String,
    messages: Vec<Message>,
    #[serde(default)]
    stream: bool,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
    #[serde(default)]
    max_tokens: Option<u32>,
    #[serde(default)]
    max_completion_tokens: Option<u32>,
    #[serde(default)]
    temperature: Option<f32>,
    #[serde(default)]
    top_p: Option<f32>,
    #[serde(default)]
    stop: Option<OneOrMany>,
    #[serde(default)]
    seed: Option<i64>,
    #[serde(default)]
    n: Option<u32>,
    #[serde(default)]
    frequency_penalty: Option<f32>,
    #[serde(default)]
    presence_penalty: Option<f32>,
    #[serde(default)]
    tools: Option<Vec<Value>>,
    #[serde(default)]
    logprobs: Option<bool>,
    #[serde(default)]
    ignore_eos: Option<bool>,
    #[serde(default)]
    /// llama-server's `cache_prompt` (default on): reuse the KV cache of the
    /// previous request's common prefix.
    cache_prompt: Option<bool>,
    #[serde(default)]
    docchat: Option<DocchatOptions>,
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
fn params_of(
    req: &ChatCompletionRequest,
    defaults: &GenerationParams,
) -> Result<GenerationParams, OaiError> {
    let mut p = defaults.clone();
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
    body: Bytes,
) -> Result<Response, OaiError> {
    let req: ChatCompletionRequest = parse(&body)?;
    let generator = &state.live().rag.generator;
    let rag = req.model == RAG_MODEL;
    if !rag && req.model != generator.id() {
        return Err(OaiError::model_not_found(&req.model));
    }
    let mut params = params_of(&req, &state.ask_defaults.params)?;
    let include_usage = req.stream_options.as_ref().is_some_and(|o| o.include_usage);
    let (stream, model, docchat) = (
        req.stream,
        req.model.clone(),
        req.docchat.unwrap_or_default(),
    );
    let mut turns = turns_of(req.messages)?;
    let permit = state.chat_slots.try_enter()?;

    let (tx, rx) = mpsc::channel(64);
    if rag {
        let Some(last) = turns.pop().filter(|t| t.role == Role::User) else {
            return Err(OaiError::invalid(
                "the last message must be the user's question",
                Some("messages"),
            ));
        };
        if last.content.trim().is_empty() {
            return Err(OaiError::invalid("the question is empty", Some("messages")));
        }
        let mut opts = state.ask_defaults.clone();
        let mut filter = docchat.filter.unwrap_or_default();
        for c in docchat.collections {
            if !filter.collections.contains(&c) {
                filter.collections.push(c);
            }
        }
        opts.filter = filter;
        opts.mode = docchat.mode.unwrap_or(opts.mode);
        if let Some(k) = docchat.top_k {
            if !(1..=50).contains(&k) {
                return Err(OaiError::invalid(
                    "docchat.top_k must be between 1 and 50",
                    Some("docchat"),
                ));
            }
            opts.top_k = k;
        }
        // The sources need room: an answer gets at most half the context.
        params.max_tokens = params.max_tokens.min(generator.context_size() as u32 / 2);
        opts.params = params;
        // docchat's own instructions come first; the client's system messages are
        // not used in document answers.
        let history: Vec<ChatTurn> = turns
            .into_iter()
            .filter(|t| t.role != Role::System)
            .collect();
        let rag_engine = state.live().rag.clone();
        tokio::spawn(async move { rag_engine.answer(last.content, history, opts, tx).await });
    } else {
        let prompt = generator.render_chat(&turns);
        let prompt_tokens = generator.count_tokens(&prompt);
        if prompt_tokens + 1 > generator.context_size() {
            return Err(OaiError::invalid(
                format!(
                    "the messages take {prompt_tokens} tokens; the model's context holds {}",
                    generator.context_size()
                ),
                Some("messages"),
            )
            .with_code("context_length_exceeded"));
        }
        if !generator.has_chat_template() {
            params.stop.push(PLAIN_USER_PREFIX.to_string());
        }
        let engine = state.live().rag.clone();
        tokio::spawn(async move { engine.complete(prompt, params, tx).await });
    }

    let id = new_id("chatcmpl");
    let created = unix_now();
    if stream {
        let (events_tx, events_rx) = mpsc::channel::<Event>(64);
        tokio::spawn(stream_chunks(
            ChunkHeader { id, created, model },
            rx,
            events_tx,
            include_usage,
            permit,
        ));
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
        "id": id, "object": "chat.completion", "created": created, "model": model,
        "choices": [{
            "index": 0,
            "message": { "role": "assistant", "content": collected.text, "refusal": null },
            "finish_reason": finish_reason(&stats),
            "logprobs": null,
        }],
        "usage": usage(&stats),
    });
    if let Some(c) = collected.citations {
        body["citations"] = json!(c);
    }
    Ok(Json(body).into_response())
}

async fn collect(mut rx: mpsc::Receiver<AnswerEvent>) -> Result<Collected, OaiError> {
    let mut out = Collected::default();
    while let Some(ev) = rx.recv().await {
        match ev {
            AnswerEvent::Token(t) => out.text.push_str(&t),
            AnswerEvent::Citations(s) => out.citations = Some(s.citations),
            AnswerEvent::Done(s) => out.stats = Some(s),
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

fn finish_reason(s: &GenerationStats) -> &'static str {
    if s.finish_reason == "length" {
        "length"
    } else {
        "stop"
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
    fn chunk(&self, delta: Value, finish: Option<&str>) -> Value {
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
            head.chunk(json!({"role": "assistant", "content": ""}), None),
        ))
        .await
        .is_err()
    {
        return;
    }
    let mut citations = None;
    while let Some(ev) = rx.recv().await {
        let event = match ev {
            AnswerEvent::Token(t) => data(head.chunk(json!({ "content": t }), None)),
            AnswerEvent::Citations(s) => {
                citations = Some(s.citations);
                continue;
            }
            AnswerEvent::Done(stats) => {
                let mut last = head.chunk(json!({}), Some(finish_reason(&stats)));
                if let Some(c) = citations.take() {
                    last["citations"] = json!(c);
                }
                if out.send(data(last)).await.is_err() {
                    return;
                }
                if include_usage {
                    let mut u = head.chunk(json!({}), None);
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

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum EmbeddingInput {
    One(String),
    Many(Vec<String>),
    /// Token ids: recognized so they can be refused with a clear message.
    Tokens(#[allow(dead_code)] Vec<i64>),
    TokenBatches(#[allow(dead_code)] Vec<Vec<i64>>),
}

#[derive(Debug, Deserialize)]
struct EmbeddingRequest {
    model: String,
    input: EmbeddingInput,
    #[serde(default)]
    encoding_format: Option<String>,
    #[serde(default)]
    dimensions: Option<usize>,
}

async fn embeddings(State(state): State<AppState>, body: Bytes) -> Result<Response, OaiError> {
    let req: EmbeddingRequest = parse(&body)?;
    let embedder = std::sync::Arc::clone(&state.live().rag.retriever.embedder);
    if req.model != embedder.id() && req.model != RAG_MODEL {
        return Err(OaiError::model_not_found(&req.model));
    }
    let texts = match req.input {
        EmbeddingInput::One(s) => vec![s],
        EmbeddingInput::Many(v) => v,
        EmbeddingInput::Tokens(_) | EmbeddingInput::TokenBatches(_) => {
            return Err(OaiError::invalid(
                "token arrays are not supported as input; send text",
                Some("input"),
            ));
        }
    };
    if texts.is_empty() {
        return Err(OaiError::invalid("`input` is empty", Some("input")));
    }
    if texts.len() > MAX_EMBEDDING_INPUTS {
        return Err(OaiError::invalid(
            format!("at most {MAX_EMBEDDING_INPUTS} inputs per request"),
            Some("input"),
        ));
    }
    if let Some(i) = texts.iter().position(|t| t.is_empty()) {
        return Err(OaiError::invalid(
            format!("input[{i}] is an empty string"),
            Some("input"),
        ));
    }
    if let Some(d) = req.dimensions
        && d != embedder.dim()
    {
        return Err(OaiError::invalid(
            format!(
                "{} makes vectors of {} dimensions, not {d}",
                embedder.id(),
                embedder.dim()
            ),
            Some("dimensions"),
        ));
    }
    let base64 = match req.encoding_format.as_deref() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => {
            return Err(OaiError::invalid(
                format!("encoding_format must be float or base64, not {other}"),
                Some("encoding_format"),
            ));
        }
    };
    let _permit = state.embed_slots.try_enter()?;
    let model = embedder.id().to_string();
    let (vectors, tokens) = tokio::task::spawn_blocking(move || {
        let max = embedder.max_tokens();
        let tokens: usize = texts
            .iter()
            .map(|t| embedder.count_tokens(t).min(max))
            .sum();
        embedder.embed(&texts).map(|v| (v, tokens))
    })
    .await
    .map_err(|e| OaiError::internal(&e.into()))?
    .map_err(|e| OaiError::internal(&e.into()))?;
    let data: Vec<Value> = vectors
        .iter()
        .enumerate()
        .map(|(index, v)| {
            let embedding = if base64 {
                json!(encode_base64(v))
            } else {
                json!(v)
            };
            json!({ "object": "embedding", "index": index, "embedding": embedding })
        })
        .collect();
    Ok(Json(json!({
        "object": "list",
        "data": data,
        "model": model,
        "usage": { "prompt_tokens": tokens, "total_tokens": tokens },
    }))
    .into_response())
}

/// A vector as OpenAI's base64 encoding: the little-endian `f32`s, base64.
fn encode_base64(v: &[f32]) -> String {
    use base64::Engine as _;
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_vectors_are_little_endian_f32() {
        use base64::Engine as _;
        let s = encode_base64(&[1.0, -0.5]);
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

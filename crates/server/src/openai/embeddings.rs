//! `/v1/embeddings`: vectors of the embedding model in use, as floats or base64.

use super::types::{EmbeddingInput, EmbeddingRequest};
use super::{OaiError, RAG_MODEL, parse};
use crate::state::AppState;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// Most texts one request may embed.
const MAX_EMBEDDING_INPUTS: usize = 2048;

pub(super) async fn embeddings(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Response, OaiError> {
    let req: EmbeddingRequest = parse(&body)?;
    let embedder = std::sync::Arc::clone(&state.live().rag.retriever.embedder);
    if req.model != embedder.id() && req.model != RAG_MODEL {
        return Err(OaiError::model_not_found(&req.model));
    }
    let texts = texts_of(req.input)?;
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

/// The texts of a request, checked: text only, at least one, none empty, at most
/// [`MAX_EMBEDDING_INPUTS`].
fn texts_of(input: EmbeddingInput) -> Result<Vec<String>, OaiError> {
    let texts = match input {
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
    Ok(texts)
}

/// A vector as OpenAI's base64 encoding: the little-endian `f32`s, base64.
pub(super) fn encode_base64(v: &[f32]) -> String {
    use base64::Engine as _;
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

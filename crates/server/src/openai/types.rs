//! The OpenAI request bodies docchat reads (unknown fields of the OpenAI schema are
//! accepted and ignored, docchat's own `docchat` field is checked strictly).

use docchat_service::answer::retrieve::SearchMode;
use docchat_store::SearchFilter;
use serde::Deserialize;
use serde_json::Value;

/// A string or a list of strings.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum Content {
    Text(String),
    Parts(Vec<ContentPart>),
}

#[derive(Debug, Deserialize)]
pub(super) struct ContentPart {
    #[serde(rename = "type")]
    pub(super) kind: String,
    #[serde(default)]
    pub(super) text: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct Message {
    pub(super) role: String,
    #[serde(default)]
    pub(super) content: Option<Content>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct StreamOptions {
    #[serde(default)]
    pub(super) include_usage: bool,
}

/// docchat's own request field: which documents a `docchat` answer may use.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct DocchatOptions {
    pub(super) collections: Vec<String>,
    pub(super) filter: Option<SearchFilter>,
    pub(super) mode: Option<SearchMode>,
    pub(super) top_k: Option<usize>,
    /// Only these documents (ids): a question about them may read them whole.
    pub(super) documents: Vec<String>,
    /// `auto`, `retrieve` or `whole`.
    pub(super) reading: Option<docchat_service::answer::read::Reading>,
}

#[derive(Debug, Deserialize)]
pub(super) struct ChatCompletionRequest {
    pub(super) model: String,
    pub(super) messages: Vec<Message>,
    #[serde(default)]
    pub(super) stream: bool,
    #[serde(default)]
    pub(super) stream_options: Option<StreamOptions>,
    #[serde(default)]
    pub(super) max_tokens: Option<u32>,
    #[serde(default)]
    pub(super) max_completion_tokens: Option<u32>,
    #[serde(default)]
    pub(super) temperature: Option<f32>,
    #[serde(default)]
    pub(super) top_p: Option<f32>,
    #[serde(default)]
    pub(super) stop: Option<OneOrMany>,
    #[serde(default)]
    pub(super) seed: Option<i64>,
    #[serde(default)]
    pub(super) n: Option<u32>,
    #[serde(default)]
    pub(super) frequency_penalty: Option<f32>,
    #[serde(default)]
    pub(super) presence_penalty: Option<f32>,
    #[serde(default)]
    pub(super) tools: Option<Vec<Value>>,
    #[serde(default)]
    pub(super) logprobs: Option<bool>,
    #[serde(default)]
    pub(super) ignore_eos: Option<bool>,
    #[serde(default)]
    /// llama-server's `cache_prompt` (default on): reuse the KV cache of the
    /// previous request's common prefix.
    pub(super) cache_prompt: Option<bool>,
    #[serde(default)]
    pub(super) docchat: Option<DocchatOptions>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum EmbeddingInput {
    One(String),
    Many(Vec<String>),
    /// Token ids: recognized so they can be refused with a clear message.
    Tokens(#[allow(dead_code)] Vec<i64>),
    TokenBatches(#[allow(dead_code)] Vec<Vec<i64>>),
}

#[derive(Debug, Deserialize)]
pub(super) struct EmbeddingRequest {
    pub(super) model: String,
    pub(super) input: EmbeddingInput,
    #[serde(default)]
    pub(super) encoding_format: Option<String>,
    #[serde(default)]
    pub(super) dimensions: Option<usize>,
}

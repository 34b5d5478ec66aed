use crate::Result;
use serde::{Deserialize, Serialize};

/// Counts tokens of a model's tokenizer; chunk sizes and prompt budgets are measured
/// in these.
pub trait TokenCounter: Send + Sync {
    /// Number of tokens `text` encodes to (without special tokens).
    fn count_tokens(&self, text: &str) -> usize;
}

/// A text embedding model.
///
/// Calls block: run them off the async runtime (the llama.cpp implementation does the
/// work on its own worker thread).
pub trait Embedder: TokenCounter {
    /// Identifier of the model (changes when the model changes).
    fn id(&self) -> &str;
    /// Dimension of the vectors.
    fn dim(&self) -> usize;
    /// Most tokens one input may have; longer inputs are truncated.
    fn max_tokens(&self) -> usize;
    /// Embeds each text into an L2-normalized vector.
    fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>>;
}

/// Sampling settings of one generation.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct GenerationParams {
    /// Most tokens to generate.
    pub max_tokens: u32,
    /// Softmax temperature; 0 means greedy.
    pub temperature: f32,
    /// Nucleus sampling threshold.
    pub top_p: f32,
    /// Minimum probability relative to the best token.
    pub min_p: f32,
    /// Top-k cut-off (0 disables).
    pub top_k: i32,
    /// Penalty on repeating recent tokens (1.0 disables).
    pub repeat_penalty: f32,
    /// How many recent tokens the repeat penalty looks at.
    pub repeat_last_n: i32,
    /// Random seed.
    pub seed: u32,
    /// Strings that end the generation when produced.
    pub stop: Vec<String>,
}

impl Default for GenerationParams {
    fn default() -> Self {
        // Small local models loop under greedy decoding: keep a repetition penalty
        // and moderate sampling on by default.
        Self {
            max_tokens: 256,
            temperature: 0.3,
            top_p: 0.9,
            min_p: 0.05,
            top_k: 40,
            repeat_penalty: 1.15,
            repeat_last_n: 128,
            seed: 42,
            stop: Vec::new(),
        }
    }
}

/// Figures of a finished generation.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct GenerationStats {
    /// Tokens in the prompt.
    pub prompt_tokens: u32,
    /// Tokens generated.
    pub tokens: u32,
    /// Milliseconds from the request to the first generated token.
    pub ttft_ms: u64,
    /// Generated tokens per second (after the first).
    pub tokens_per_s: f64,
    /// Why generation stopped: `stop` (end of text or a stop string), `length`, or
    /// `cancelled`.
    pub finish_reason: String,
}

/// A text generation model.
pub trait Generator: TokenCounter {
    /// Identifier of the model.
    fn id(&self) -> &str;
    /// Context window in tokens.
    fn context_size(&self) -> usize;
    /// Whether prompts are rendered with a chat template (else: plain completion).
    fn has_chat_template(&self) -> bool;
    /// Renders a system and a user message into the model's prompt format: its chat
    /// template if it has one, a plain completion prompt otherwise.
    fn render_prompt(&self, system: &str, user: &str) -> String;
    /// Generates a continuation of `prompt`, handing each piece of text to `sink` as
    /// it is decoded. When `sink` returns `false` the consumer is gone and decoding
    /// stops at once. Blocks until done.
    fn generate(
        &self,
        prompt: &str,
        params: &GenerationParams,
        sink: &mut dyn FnMut(&str) -> bool,
    ) -> Result<GenerationStats>;
}

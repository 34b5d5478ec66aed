use crate::Result;
use serde::{Deserialize, Serialize};

/// Who speaks a turn of a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions.
    System,
    /// The user.
    User,
    /// The model.
    Assistant,
}

impl Role {
    /// The name chat templates use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::System => "system",
            Self::User => "user",
            Self::Assistant => "assistant",
        }
    }
}

/// One turn of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatTurn {
    /// Who speaks.
    pub role: Role,
    /// What is said.
    pub content: String,
}

impl ChatTurn {
    /// A turn.
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
        }
    }
}

/// The stop string that ends a model's turn in [`plain_prompt`]'s format.
pub const PLAIN_USER_PREFIX: &str = "\nUser:";

/// The prompt of a model without a chat template. One user message (after an
/// optional system message) is given as it is, so a completion-style message such
/// as `Question: …\nAnswer:` reads naturally; a longer conversation becomes a
/// `User:` / `Assistant:` transcript ending with `Assistant:`.
pub fn plain_prompt(turns: &[ChatTurn]) -> String {
    let system: Vec<&str> = turns
        .iter()
        .filter(|t| t.role == Role::System)
        .map(|t| t.content.as_str())
        .collect();
    let rest: Vec<&ChatTurn> = turns.iter().filter(|t| t.role != Role::System).collect();
    let mut out = system.join("\n\n");
    if !out.is_empty() {
        out.push_str("\n\n");
    }
    if let [only] = rest.as_slice()
        && only.role == Role::User
    {
        out.push_str(&only.content);
        return out;
    }
    for t in rest {
        let name = if t.role == Role::User {
            "User"
        } else {
            "Assistant"
        };
        out.push_str(&format!("{name}: {}\n", t.content.trim()));
    }
    out.push_str("Assistant:");
    out
}

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
    /// Like [`Embedder::embed`], for background work (indexing): it yields to
    /// foreground embedding and pauses while a user waits for an answer.
    fn embed_background(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        self.embed(texts)
    }
    /// Microseconds spent in the model's batches so far (each from its decode to
    /// its vectors read out, as llama.cpp times its "prompt eval"); 0 when the
    /// embedder does not keep count.
    fn batch_us(&self) -> u64 {
        0
    }
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
    /// Penalty on tokens in proportion to how often they appeared (0 disables).
    pub frequency_penalty: f32,
    /// Penalty on tokens that appeared at all (0 disables).
    pub presence_penalty: f32,
    /// Random seed.
    pub seed: u32,
    /// Strings that end the generation when produced.
    pub stop: Vec<String>,
    /// Never end at an end-of-generation token: always produce `max_tokens`
    /// (for benchmarks, as llama-server's `ignore_eos`).
    pub ignore_eos: bool,
    /// Start from the KV cache an earlier request left when the prompt begins the
    /// same way (llama-server's `cache_prompt`); off: the whole prompt is processed.
    pub cache_prompt: bool,
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
            frequency_penalty: 0.0,
            presence_penalty: 0.0,
            seed: 42,
            stop: Vec::new(),
            ignore_eos: false,
            cache_prompt: true,
        }
    }
}

/// Figures of a finished generation.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct GenerationStats {
    /// Tokens in the prompt.
    pub prompt_tokens: u32,
    /// Of those, the leading ones whose KV cache an earlier request left (not
    /// processed again).
    pub cached_tokens: u32,
    /// Tokens generated.
    pub tokens: u32,
    /// Milliseconds from the request to the first generated token.
    pub ttft_ms: u64,
    /// Generated tokens per second (after the first).
    pub tokens_per_s: f64,
    /// Why generation stopped.
    pub finish_reason: FinishReason,
}

/// Why a generation stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FinishReason {
    /// The end of the text, or a stop string.
    #[default]
    Stop,
    /// The most tokens allowed were generated.
    Length,
    /// The client went away (or the request was cancelled).
    Cancelled,
}

impl FinishReason {
    /// The lower-case name (as serialized).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stop => "stop",
            Self::Length => "length",
            Self::Cancelled => "cancelled",
        }
    }
}

/// A text generation model.
pub trait Generator: TokenCounter {
    /// Identifier of the model.
    fn id(&self) -> &str;
    /// Context window in tokens.
    fn context_size(&self) -> usize;
    /// Whether prompts are rendered with a chat template (else: plain completion).
    fn has_chat_template(&self) -> bool;
    /// Renders a conversation into the model's prompt format, ready for the
    /// assistant's next turn: its chat template if it has one, [`plain_prompt`]
    /// otherwise.
    fn render_chat(&self, turns: &[ChatTurn]) -> String;
    /// Renders a system and a user message (an empty system message is left out).
    fn render_prompt(&self, system: &str, user: &str) -> String {
        let mut turns = Vec::with_capacity(2);
        if !system.is_empty() {
            turns.push(ChatTurn::new(Role::System, system));
        }
        turns.push(ChatTurn::new(Role::User, user));
        self.render_chat(&turns)
    }
    /// Generates a continuation of `prompt`, handing each piece of text to `sink` as
    /// it is decoded. When `sink` returns `false` the consumer is gone and decoding
    /// stops at once. Blocks until done.
    fn generate(
        &self,
        prompt: &str,
        params: &GenerationParams,
        sink: &mut dyn FnMut(&str) -> bool,
    ) -> Result<GenerationStats>;

    /// Like [`Generator::generate`], with a sink the model may call from its own
    /// thread, which spares a thread hop per token when the caller only forwards
    /// the pieces.
    fn generate_send(
        &self,
        prompt: &str,
        params: &GenerationParams,
        mut sink: Box<dyn FnMut(&str) -> bool + Send>,
    ) -> Result<GenerationStats> {
        self.generate(prompt, params, &mut *sink)
    }

    /// Whether the model can generate now; `Err` says why not (a remote server
    /// that does not answer). A local model always can.
    fn available(&self) -> std::result::Result<(), String> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_prompt_keeps_a_single_message_as_it_is() {
        let turns = [
            ChatTurn::new(Role::System, "Be brief."),
            ChatTurn::new(Role::User, "Question: why?\nAnswer:"),
        ];
        assert_eq!(plain_prompt(&turns), "Be brief.\n\nQuestion: why?\nAnswer:");
        assert_eq!(plain_prompt(&turns[1..]), "Question: why?\nAnswer:");
    }

    #[test]
    fn plain_prompt_writes_a_conversation_as_a_transcript() {
        let turns = [
            ChatTurn::new(Role::User, "Hi"),
            ChatTurn::new(Role::Assistant, "Hello.\n"),
            ChatTurn::new(Role::User, "Name a colour."),
        ];
        let p = plain_prompt(&turns);
        assert_eq!(
            p,
            "User: Hi\nAssistant: Hello.\nUser: Name a colour.\nAssistant:"
        );
        assert!(p.contains(PLAIN_USER_PREFIX));
    }
}

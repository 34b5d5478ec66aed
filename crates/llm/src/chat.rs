use crate::backend::{EngineOptions, backend, load_model};
use crate::pick::{Picker, eog_tokens};
use crate::utf8::Utf8Stream;
use crate::{Error, Result};
use docchat_core::{
    ChatTurn, FinishReason, GenerationParams, GenerationStats, Generator, TokenCounter,
    plain_prompt,
};
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::{LlamaChatMessage, LlamaChatTemplate, LlamaModel};
use llama_cpp_2::token::LlamaToken;
use std::num::NonZeroU32;
use std::path::Path;
use std::sync::{Arc, mpsc};
use std::time::Instant;

enum Event {
    Piece(String),
    Done(Result<GenerationStats>),
}

/// Where the pieces of an answer go.
type Sink = Box<dyn FnMut(&str) -> bool + Send>;

struct Job {
    prompt: String,
    params: GenerationParams,
    events: mpsc::SyncSender<Event>,
    /// Called on the worker thread with each piece, when the caller gave one;
    /// otherwise pieces travel over `events`.
    sink: Option<Sink>,
}

impl Job {
    /// Hands a piece to the consumer; `false` when it is gone.
    fn emit(&mut self, text: String) -> bool {
        match &mut self.sink {
            Some(sink) => sink(&text),
            None => self.events.send(Event::Piece(text)).is_ok(),
        }
    }
}

/// A GGUF chat or completion model served by one worker thread.
pub struct ChatModel {
    id: String,
    ctx_size: usize,
    model: Arc<LlamaModel>,
    template: Option<String>,
    jobs: mpsc::Sender<Job>,
}

impl std::fmt::Debug for ChatModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatModel")
            .field("id", &self.id)
            .field("ctx_size", &self.ctx_size)
            .field("has_template", &self.template.is_some())
            .finish_non_exhaustive()
    }
}

impl ChatModel {
    /// Loads the model and starts its worker; returns once the worker has its context.
    pub fn load(path: &Path, opts: &EngineOptions) -> Result<Self> {
        let (model, id) = load_model(path, opts)?;
        let train = model.n_ctx_train().max(512);
        let ctx_size = if opts.ctx_size == 0 {
            train.min(8192)
        } else {
            opts.ctx_size.min(train)
        };
        // A model without a chat template (a base model) is prompted as plain text.
        let template = model
            .chat_template(None)
            .ok()
            .and_then(|t| t.to_string().ok());

        let (jobs, rx) = mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = mpsc::channel::<Result<()>>();
        let worker_model = Arc::clone(&model);
        let ctx_params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(ctx_size))
            .with_n_batch(opts.batch_size)
            .with_n_ubatch(opts.ubatch_size.clamp(1, opts.batch_size.max(1)))
            .with_flash_attention_policy(opts.flash_attention.policy())
            .with_n_threads(opts.thread_count())
            .with_n_threads_batch(opts.thread_count());
        let batch_size = opts.batch_size as usize;
        std::thread::Builder::new()
            .name("docchat-generate".into())
            .spawn(move || worker(&worker_model, ctx_params, batch_size, &ready_tx, &rx))?;
        ready_rx.recv().map_err(|_| Error::WorkerGone)??;
        Ok(Self {
            id,
            ctx_size: ctx_size as usize,
            model,
            template,
            jobs,
        })
    }
}

fn worker(
    model: &LlamaModel,
    params: LlamaContextParams,
    batch_size: usize,
    ready: &mpsc::Sender<Result<()>>,
    jobs: &mpsc::Receiver<Job>,
) {
    let backend = match backend() {
        Ok(b) => b,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let mut ctx = match model.new_context(backend, params) {
        Ok(c) => c,
        Err(e) => {
            let _ = ready.send(Err(Error::Inference(format!(
                "cannot create generation context: {e}"
            ))));
            return;
        }
    };
    let _ = ready.send(Ok(()));
    let mut session = Session {
        model,
        batch: LlamaBatch::new(batch_size.max(1), 1),
        batch_size: batch_size.max(1),
        cached: Vec::new(),
        eog: eog_tokens(model),
    };
    while let Ok(mut job) = jobs.recv() {
        let result = session.run(&mut ctx, &mut job);
        let _ = job.events.send(Event::Done(result));
    }
}

/// The worker's state between jobs: the tokens whose KV entries are in the context,
/// so a prompt that starts like the previous one (same system prompt) skips that part.
struct Session<'m> {
    model: &'m LlamaModel,
    batch: LlamaBatch<'static>,
    batch_size: usize,
    cached: Vec<LlamaToken>,
    /// The model's end-of-generation tokens, banned for `ignore_eos` requests.
    eog: Vec<i32>,
}

impl Session<'_> {
    fn run(&mut self, ctx: &mut LlamaContext<'_>, job: &mut Job) -> Result<GenerationStats> {
        let started = Instant::now();
        let vocab = self.model.vocab();
        let prompt = vocab.tokenize(job.prompt.as_bytes(), true, true);
        let n_ctx = ctx.n_ctx() as usize;
        let max_new = job.params.max_tokens.max(1) as usize;
        if prompt.is_empty() {
            return Err(Error::Inference("empty prompt".into()));
        }
        if prompt.len() + 1 > n_ctx {
            return Err(Error::Inference(format!(
                "prompt of {} tokens does not fit the context of {n_ctx}",
                prompt.len()
            )));
        }

        // Reuse the KV cache of the longest common prefix with the previous prompt;
        // at least the last prompt token is decoded again to get fresh logits.
        let common = if job.params.cache_prompt {
            self.cached
                .iter()
                .zip(&prompt)
                .take_while(|(a, b)| a == b)
                .count()
                .min(prompt.len() - 1)
        } else {
            0
        };
        if !ctx
            .clear_kv_cache_seq(Some(0), Some(common as u32), None)
            .unwrap_or(false)
        {
            ctx.clear_kv_cache();
            self.cached.clear();
            return self.generate(ctx, &prompt, 0, max_new, job, started);
        }
        self.cached.truncate(common);
        self.generate(ctx, &prompt, common, max_new, job, started)
    }

    /// Prompt processing from `start` (the tokens before it are in the KV cache),
    /// one batch at a time; logits only for the last token.
    fn process_prompt(
        &mut self,
        ctx: &mut LlamaContext<'_>,
        prompt: &[LlamaToken],
        start: usize,
    ) -> Result<()> {
        let mut pos = start;
        while pos < prompt.len() {
            let end = (pos + self.batch_size).min(prompt.len());
            self.batch.clear();
            for (i, tok) in prompt[pos..end].iter().enumerate() {
                let p = pos + i;
                self.batch
                    .add(*tok, p as i32, &[0], p == prompt.len() - 1)
                    .map_err(|e| Error::Inference(e.to_string()))?;
            }
            ctx.decode(&mut self.batch)
                .map_err(|e| Error::Inference(format!("prompt decode: {e}")))?;
            self.cached.extend_from_slice(&prompt[pos..end]);
            pos = end;
        }
        Ok(())
    }

    fn generate(
        &mut self,
        ctx: &mut LlamaContext<'_>,
        prompt: &[LlamaToken],
        start: usize,
        max_new: usize,
        job: &mut Job,
        started: Instant,
    ) -> Result<GenerationStats> {
        let vocab = self.model.vocab();
        let n_ctx = ctx.n_ctx() as usize;
        let pp_started = Instant::now();
        self.process_prompt(ctx, prompt, start)?;
        tracing::debug!(
            tokens = prompt.len() - start,
            ms = pp_started.elapsed().as_millis(),
            waited_ms = (pp_started - started).as_millis(),
            "prompt processed"
        );
        let mut picker = Picker::new(self.model, &self.eog, &job.params);
        let mut stats = GenerationStats {
            prompt_tokens: prompt.len() as u32,
            cached_tokens: start as u32,
            finish_reason: FinishReason::Length,
            ..GenerationStats::default()
        };
        let mut utf8 = Utf8Stream::default();
        let stop_strings = job.params.stop.clone();
        let mut stops = StopFilter::new(&stop_strings);
        let mut first_token_at = None;
        let mut logits_index = self.batch.n_tokens() - 1;
        for (step, n_past) in (1..=max_new).zip(prompt.len()..) {
            if n_past >= n_ctx {
                break;
            }
            let token = picker
                .pick(ctx, logits_index)
                .ok_or_else(|| Error::Inference("the sampler chose no token".into()))?;
            if first_token_at.is_none() {
                first_token_at = Some(Instant::now());
                stats.ttft_ms = started.elapsed().as_millis() as u64;
            }
            if vocab.is_eog(token) {
                stats.finish_reason = FinishReason::Stop;
                break;
            }
            stats.tokens += 1;
            let piece = vocab.token_to_piece(token, false, None);
            let text = utf8.push(&piece);
            let (emit, stopped) = stops.feed(&text);
            if !emit.is_empty() && !job.emit(emit) {
                stats.finish_reason = FinishReason::Cancelled;
                return Ok(stats);
            }
            if stopped {
                stats.finish_reason = FinishReason::Stop;
                break;
            }
            if step == max_new {
                // The last token asked for: decoding it would only compute logits
                // nobody reads. It stays out of the KV cache (and of `cached`), so
                // the next prompt's common prefix stops before it.
                break;
            }
            self.batch.clear();
            self.batch
                .add(token, n_past as i32, &[0], true)
                .map_err(|e| Error::Inference(e.to_string()))?;
            ctx.decode(&mut self.batch)
                .map_err(|e| Error::Inference(format!("decode: {e}")))?;
            self.cached.push(token);
            logits_index = 0;
        }
        let rest = stops.finish(&utf8.finish());
        if !rest.is_empty() && !job.emit(rest) {
            stats.finish_reason = FinishReason::Cancelled;
        }
        if let Some(t) = first_token_at {
            let secs = t.elapsed().as_secs_f64();
            if stats.tokens > 1 && secs > 0.0 {
                stats.tokens_per_s = f64::from(stats.tokens - 1) / secs;
            }
        }
        Ok(stats)
    }
}

/// Holds back text that may be the start of a stop string, and cuts at a stop string.
/// Stop strings count only once the answer has content: leading whitespace and
/// markup before the first word never end a generation with nothing said.
struct StopFilter<'a> {
    stops: &'a [String],
    held: String,
    /// Byte offset in `held` where stop strings may start matching.
    armed_at: Option<usize>,
}

impl<'a> StopFilter<'a> {
    fn new(stops: &'a [String]) -> Self {
        Self {
            stops,
            held: String::new(),
            armed_at: None,
        }
    }

    /// Returns the text that is safe to emit, and whether a stop string was reached.
    fn feed(&mut self, text: &str) -> (String, bool) {
        self.held.push_str(text);
        if self.armed_at.is_none() {
            self.armed_at = self.held.find(|c: char| c.is_alphanumeric());
        }
        let Some(from) = self.armed_at else {
            return (String::new(), false);
        };
        let first_stop = self
            .stops
            .iter()
            .filter(|s| !s.is_empty())
            .filter_map(|s| self.held[from..].find(s.as_str()).map(|i| i + from))
            .min();
        if let Some(at) = first_stop {
            let out = self.held[..at].to_string();
            self.held.clear();
            return (out, true);
        }
        // Keep the longest suffix that is a prefix of a stop string.
        let mut keep = 0;
        for s in self.stops {
            for (i, _) in self.held.char_indices().filter(|(i, _)| *i >= from) {
                let suffix = &self.held[i..];
                if suffix.len() > keep && s.starts_with(suffix) {
                    keep = suffix.len();
                }
            }
        }
        let cut = self.held.len() - keep;
        let out = self.held[..cut].to_string();
        self.held.drain(..cut);
        self.armed_at = Some(0);
        (out, false)
    }

    fn finish(&mut self, tail: &str) -> String {
        let (mut out, stopped) = self.feed(tail);
        if !stopped {
            out.push_str(&self.held);
        }
        self.held.clear();
        out
    }
}

impl TokenCounter for ChatModel {
    fn count_tokens(&self, text: &str) -> usize {
        self.model
            .vocab()
            .tokenize(text.as_bytes(), false, true)
            .len()
    }
}

impl Generator for ChatModel {
    fn id(&self) -> &str {
        &self.id
    }

    fn context_size(&self) -> usize {
        self.ctx_size
    }

    fn has_chat_template(&self) -> bool {
        self.template.is_some()
    }

    fn render_chat(&self, turns: &[ChatTurn]) -> String {
        if let Some(tmpl) = &self.template {
            let messages = turns
                .iter()
                .map(|t| LlamaChatMessage::new(t.role.as_str().into(), t.content.clone()))
                .collect::<std::result::Result<Vec<_>, _>>();
            let rendered = LlamaChatTemplate::new(tmpl)
                .ok()
                .zip(messages.ok())
                .and_then(|(t, m)| self.model.apply_chat_template(&t, &m, true).ok());
            if let Some(r) = rendered {
                return r;
            }
        }
        plain_prompt(turns)
    }

    fn generate(
        &self,
        prompt: &str,
        params: &GenerationParams,
        sink: &mut dyn FnMut(&str) -> bool,
    ) -> docchat_core::Result<GenerationStats> {
        // A small buffer: the worker runs at most a few tokens ahead of the consumer.
        let (events, rx) = mpsc::sync_channel(16);
        self.jobs
            .send(Job {
                prompt: prompt.to_string(),
                params: params.clone(),
                events,
                sink: None,
            })
            .map_err(|_| Error::WorkerGone)?;
        loop {
            match rx.recv() {
                Ok(Event::Piece(text)) => {
                    if !sink(&text) {
                        // Dropping the receiver makes the worker's next send fail,
                        // which stops decoding.
                        drop(rx);
                        return Err(docchat_core::Error::Cancelled);
                    }
                }
                Ok(Event::Done(result)) => return Ok(result?),
                Err(_) => return Err(Error::WorkerGone.into()),
            }
        }
    }

    fn generate_send(
        &self,
        prompt: &str,
        params: &GenerationParams,
        sink: Sink,
    ) -> docchat_core::Result<GenerationStats> {
        // The worker calls the sink itself: no thread hop per token.
        let (events, rx) = mpsc::sync_channel(1);
        self.jobs
            .send(Job {
                prompt: prompt.to_string(),
                params: params.clone(),
                events,
                sink: Some(sink),
            })
            .map_err(|_| Error::WorkerGone)?;
        match rx.recv() {
            Ok(Event::Done(Ok(stats))) if stats.finish_reason == FinishReason::Cancelled => {
                Err(docchat_core::Error::Cancelled)
            }
            Ok(Event::Done(result)) => Ok(result?),
            Ok(Event::Piece(_)) | Err(_) => Err(Error::WorkerGone.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::StopFilter;

    #[test]
    fn stop_strings_cut_and_hold_back() {
        let stops = vec!["\nQuestion:".to_string()];
        let mut f = StopFilter::new(&stops);
        assert_eq!(f.feed("The answer"), ("The answer".into(), false));
        assert_eq!(f.feed(" is 4.\nQue"), (" is 4.".into(), false));
        assert_eq!(f.feed("stion: next"), (String::new(), true));
    }

    #[test]
    fn stops_wait_for_content() {
        let stops = vec!["\n[".to_string()];
        let mut f = StopFilter::new(&stops);
        assert_eq!(f.feed("\n"), (String::new(), false));
        assert_eq!(f.feed("[1] The"), ("\n[1] The".into(), false));
        assert_eq!(f.feed(" answer.\n[2]"), (" answer.".into(), true));
    }

    #[test]
    fn held_text_is_released_at_the_end() {
        let stops = vec!["END".to_string()];
        let mut f = StopFilter::new(&stops);
        assert_eq!(f.feed("abcE"), ("abc".into(), false));
        assert_eq!(f.finish(""), "E");
    }
}

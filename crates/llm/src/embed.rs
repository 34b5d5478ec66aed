use crate::backend::{EngineOptions, backend, load_model};
use crate::{Error, Result};
use docchat_core::{Embedder, Priority, TokenCounter};
use llama_cpp_2::context::params::{LlamaContextParams, LlamaPoolingType};
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;
use std::collections::VecDeque;
use std::num::NonZeroU32;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

/// Tokens decoded together in one batch (also the context size of the worker).
/// Sequences packed into one batch are masked from each other, but llama.cpp still
/// computes attention across the whole batch, which grows with its square: 512
/// tokens embed about 30 % faster than 2,048 on 2 cores (`docchat bench embed`).
const BATCH_TOKENS: u32 = 512;
/// Most sequences in one batch.
const MAX_SEQS: u32 = 64;

/// How often a paused background job looks for foreground requests.
const PAUSE_STEP: Duration = Duration::from_millis(5);

struct Job {
    texts: Vec<String>,
    /// Background (indexing): runs only while no foreground job waits and no user
    /// waits for an answer, one batch at a time.
    background: bool,
    reply: mpsc::Sender<Result<Vec<Vec<f32>>>>,
}

/// A GGUF embedding model served by one worker thread.
pub struct EmbeddingModel {
    id: String,
    dim: usize,
    max_tokens: usize,
    model: Arc<LlamaModel>,
    jobs: mpsc::Sender<Job>,
    /// Time spent in batches, µs.
    batch_us: Arc<AtomicU64>,
}

impl std::fmt::Debug for EmbeddingModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddingModel")
            .field("id", &self.id)
            .field("dim", &self.dim)
            .finish_non_exhaustive()
    }
}

impl EmbeddingModel {
    /// Loads the model and starts its worker; returns once the worker has its context
    /// (a failure to create it is reported here, not later).
    pub fn load(path: &Path, opts: &EngineOptions) -> Result<Self> {
        let (model, id) = load_model(path, opts)?;
        let dim = usize::try_from(model.n_embd()).unwrap_or(0);
        let max_tokens = (model.n_ctx_train() as usize).clamp(16, BATCH_TOKENS as usize);

        let (jobs, rx) = mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = mpsc::channel::<Result<()>>();
        let worker_model = Arc::clone(&model);
        let threads = opts.thread_count();
        let priority = Arc::clone(&opts.priority);
        let batch_us = Arc::new(AtomicU64::new(0));
        let timer = Arc::clone(&batch_us);
        std::thread::Builder::new()
            .name("docchat-embed".into())
            .spawn(move || worker(&worker_model, threads, &priority, &timer, &ready_tx, &rx))?;
        ready_rx.recv().map_err(|_| Error::WorkerGone)??;
        Ok(Self {
            id,
            dim,
            max_tokens,
            model,
            jobs,
            batch_us,
        })
    }

    fn embed_blocking(&self, texts: Vec<String>, background: bool) -> Result<Vec<Vec<f32>>> {
        let (reply, rx) = mpsc::channel();
        self.jobs
            .send(Job {
                texts,
                background,
                reply,
            })
            .map_err(|_| Error::WorkerGone)?;
        rx.recv().map_err(|_| Error::WorkerGone)?
    }
}

fn context_params(threads: i32) -> LlamaContextParams {
    LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(BATCH_TOKENS))
        .with_n_batch(BATCH_TOKENS)
        .with_n_ubatch(BATCH_TOKENS)
        .with_n_seq_max(MAX_SEQS)
        .with_embeddings(true)
        .with_pooling_type(LlamaPoolingType::Mean)
        .with_n_threads(threads)
        .with_n_threads_batch(threads)
}

fn worker(
    model: &LlamaModel,
    threads: i32,
    priority: &Priority,
    batch_us: &AtomicU64,
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
    let mut ctx = match model.new_context(backend, context_params(threads)) {
        Ok(c) => c,
        Err(e) => {
            let _ = ready.send(Err(Error::Inference(format!(
                "cannot create embedding context: {e}"
            ))));
            return;
        }
    };
    let _ = ready.send(Ok(()));
    let max_tokens = (model.n_ctx_train() as usize).clamp(16, BATCH_TOKENS as usize);
    let mut batch = LlamaBatch::new(BATCH_TOKENS as usize, MAX_SEQS as i32);
    let mut outputs = Outputs {
        n_vocab: model.n_vocab().max(0) as usize,
        released: 0,
        batch_us,
    };
    let mut foreground: VecDeque<Job> = VecDeque::new();
    let mut background: VecDeque<(Job, Packing)> = VecDeque::new();
    let mut open = true;
    loop {
        // Take in what has arrived; block only when there is nothing to do.
        let idle = foreground.is_empty() && background.is_empty();
        if idle && !open {
            return;
        }
        let next = if idle {
            jobs.recv().map_err(|_| mpsc::TryRecvError::Disconnected)
        } else {
            jobs.try_recv()
        };
        match next {
            Ok(job) if job.background => {
                let packing = Packing::new(model, &job.texts, max_tokens);
                background.push_back((job, packing));
                continue;
            }
            Ok(job) => {
                foreground.push_back(job);
                continue;
            }
            Err(mpsc::TryRecvError::Disconnected) => open = false,
            Err(mpsc::TryRecvError::Empty) => {}
        }
        if let Some(job) = foreground.pop_front() {
            let packing = Packing::new(model, &job.texts, max_tokens);
            let result = packing.run(&mut ctx, &mut batch, &mut outputs);
            let _ = job.reply.send(result);
            continue;
        }
        // Background work goes one batch at a time, and not while a user waits:
        // a question asked during indexing gets the cores to itself.
        if priority.wait_turn(PAUSE_STEP) {
            background_step(&mut background, &mut ctx, &mut batch, &mut outputs);
        }
    }
}

/// One batch of the first background job; its reply once it is done (or failed).
fn background_step(
    background: &mut VecDeque<(Job, Packing)>,
    ctx: &mut llama_cpp_2::context::LlamaContext<'_>,
    batch: &mut LlamaBatch<'_>,
    outputs: &mut Outputs<'_>,
) {
    let Some((job, packing)) = background.front_mut() else {
        return;
    };
    match packing.step(ctx, batch, outputs) {
        Ok(false) => {}
        Ok(true) => {
            let (job, packing) = background.pop_front().expect("front");
            let _ = job.reply.send(Ok(packing.out));
        }
        Err(e) => {
            let _ = job.reply.send(Err(e));
            background.pop_front();
        }
    }
}

fn tokenize(model: &LlamaModel, text: &str, max_tokens: usize) -> Vec<LlamaToken> {
    let mut tokens = model.vocab().tokenize(text.as_bytes(), true, false);
    if tokens.len() > max_tokens {
        // Keep the end-of-sequence token of models that add one.
        let last = *tokens.last().expect("non-empty");
        tokens.truncate(max_tokens);
        if model.vocab().should_add_eos() {
            tokens[max_tokens - 1] = last;
        }
    }
    if tokens.is_empty() {
        tokens.push(model.vocab().bos());
    }
    tokens
}

/// One job's texts, tokenized, embedded a batch at a time.
struct Packing {
    tokenized: Vec<Vec<LlamaToken>>,
    /// The first sequence not embedded yet.
    start: usize,
    out: Vec<Vec<f32>>,
}

impl Packing {
    fn new(model: &LlamaModel, texts: &[String], max_tokens: usize) -> Self {
        let tokenized: Vec<Vec<LlamaToken>> = texts
            .iter()
            .map(|t| tokenize(model, t, max_tokens))
            .collect();
        Self {
            out: Vec::with_capacity(tokenized.len()),
            tokenized,
            start: 0,
        }
    }

    /// Embeds the next batch (as many whole sequences as fit); returns whether all
    /// are done.
    /// Every batch at once: the vectors of all the texts.
    fn run(
        mut self,
        ctx: &mut llama_cpp_2::context::LlamaContext<'_>,
        batch: &mut LlamaBatch<'_>,
        outputs: &mut Outputs<'_>,
    ) -> Result<Vec<Vec<f32>>> {
        while !self.step(ctx, batch, outputs)? {}
        Ok(self.out)
    }

    fn step(
        &mut self,
        ctx: &mut llama_cpp_2::context::LlamaContext<'_>,
        batch: &mut LlamaBatch<'_>,
        outputs: &mut Outputs<'_>,
    ) -> Result<bool> {
        let (tokenized, start) = (&self.tokenized, self.start);
        if start >= tokenized.len() {
            return Ok(true);
        }
        let mut end = start;
        let mut used = 0;
        while end < tokenized.len()
            && end - start < MAX_SEQS as usize
            && used + tokenized[end].len() <= BATCH_TOKENS as usize
        {
            used += tokenized[end].len();
            end += 1;
        }
        batch.clear();
        for (seq, tokens) in tokenized[start..end].iter().enumerate() {
            batch
                .add_sequence(tokens, seq as i32, true)
                .map_err(|e| Error::Inference(e.to_string()))?;
        }
        let started = Instant::now();
        ctx.clear_kv_cache();
        ctx.decode(batch)
            .map_err(|e| Error::Inference(format!("embedding decode: {e}")))?;
        outputs.release(ctx, used);
        for seq in 0..(end - start) {
            let v = ctx
                .embeddings_seq_ith(seq as i32)
                .map_err(|e| Error::Inference(format!("embedding output: {e}")))?;
            self.out.push(normalized(v));
        }
        outputs
            .batch_us
            .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        self.start = end;
        Ok(end >= tokenized.len())
    }
}

/// What the worker keeps across batches: how much of the logits memory it gave
/// back, and the time spent in batches.
///
/// llama.cpp sets memory aside for logits in an embedding context too.
/// With embeddings on, every token of a batch is an output, and llama.cpp reserves
/// (and zeroes) room for the logits of each: 512 tokens × 30,522 × 4 bytes = 62 MB
/// for MiniLM, which no embedding reads. Once zeroed, those pages stay resident.
/// After a batch larger than any before (the only time llama.cpp reallocates and
/// zeroes that buffer), the pages of the logits rows are handed back to the
/// kernel; they read as zeros, as they were, and nothing writes them for a model
/// without an output head (one with a head gets them back, rewritten, each batch).
struct Outputs<'a> {
    n_vocab: usize,
    /// Outputs whose logit rows were released.
    released: usize,
    /// The embedder's count of time spent in batches, µs.
    batch_us: &'a AtomicU64,
}

impl Outputs<'_> {
    fn release(&mut self, ctx: &llama_cpp_2::context::LlamaContext<'_>, n_outputs: usize) {
        if n_outputs <= self.released {
            return;
        }
        self.released = n_outputs;
        crate::heap::release_read_logits(ctx, self.n_vocab * n_outputs);
    }
}

fn normalized(v: &[f32]) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter().map(|x| x / norm).collect()
    } else {
        v.to_vec()
    }
}

impl TokenCounter for EmbeddingModel {
    fn count_tokens(&self, text: &str) -> usize {
        self.model
            .vocab()
            .tokenize(text.as_bytes(), false, false)
            .len()
    }
}

impl Embedder for EmbeddingModel {
    fn id(&self) -> &str {
        &self.id
    }

    fn dim(&self) -> usize {
        self.dim
    }

    fn max_tokens(&self) -> usize {
        self.max_tokens
    }

    fn embed(&self, texts: &[String]) -> docchat_core::Result<Vec<Vec<f32>>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self.embed_blocking(texts.to_vec(), false)?)
    }

    fn embed_background(&self, texts: &[String]) -> docchat_core::Result<Vec<Vec<f32>>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self.embed_blocking(texts.to_vec(), true)?)
    }

    fn batch_us(&self) -> u64 {
        self.batch_us.load(Ordering::Relaxed)
    }
}

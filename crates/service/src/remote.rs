//! Models on another server that speaks the OpenAI API: generation (`--generator
//! http://HOST:PORT/v1`: llama-server, vLLM, LM Studio, another docchat) gets the
//! same prompt as the chat model would, as system and user messages, streamed back
//! piece by piece (a client that goes away closes the request, which stops the
//! remote generation too); embedding (`--embedder URL`) embeds the questions, once
//! its vectors are checked against the index's.

use anyhow::{Context, Result, anyhow};
use docchat_core::{
    ChatTurn, Embedder, FinishReason, GenerationParams, GenerationStats, Generator, TokenCounter,
};
use futures::StreamExt;
use serde_json::{Value, json};
use std::net::ToSocketAddrs;
use std::time::{Duration, Instant};

/// Marks a prompt rendered by [`RemoteGenerator::render_chat`]: the messages follow
/// as JSON (sent to `/chat/completions`); any other prompt goes to `/completions`.
const MESSAGES: &str = "\u{1}docchat-messages\u{1}";
/// How long connecting may take.
const CONNECT: Duration = Duration::from_secs(3);
/// Longest silence inside a streamed answer before it is given up.
const SILENCE: Duration = Duration::from_secs(120);

/// The remote server cannot be reached or failed: a 503 with the reason.
#[derive(Debug)]
pub struct GeneratorDown(pub String);

impl std::fmt::Display for GeneratorDown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for GeneratorDown {}

/// A generator on another server.
#[derive(Debug)]
pub struct RemoteGenerator {
    base: String,
    model: String,
    context: usize,
    key: Option<String>,
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

impl RemoteGenerator {
    /// The server at `url` (its `/v1` root); asks it which model it serves. A
    /// server down at start is not an error (questions get 503 until it answers);
    /// the key, if it needs one, is `DOCCHAT_GENERATOR_KEY`.
    pub async fn connect(url: &str, context: u32) -> Result<Self> {
        let base = url.trim().trim_end_matches('/').to_string();
        let parsed = reqwest::Url::parse(&base)
            .with_context(|| format!("--generator {base}: not a URL (http://HOST:PORT/v1)"))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            anyhow::bail!("--generator {base}: not an http(s) URL (http://HOST:PORT/v1)");
        }
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT)
            .read_timeout(SILENCE)
            .build()?;
        let key = std::env::var("DOCCHAT_GENERATOR_KEY")
            .ok()
            .filter(|k| !k.is_empty());
        let mut g = Self {
            model: String::new(),
            base,
            context: context.max(512) as usize,
            key,
            client,
            runtime: tokio::runtime::Handle::current(),
        };
        match g.served_model().await {
            Ok(m) => {
                tracing::info!(generator = %g.base, model = %m, "answers are generated remotely");
                g.model = m;
            }
            Err(e) => {
                tracing::warn!(generator = %g.base, error = %e,
                    "the generator does not answer yet: questions get 503 until it does");
                g.model = "remote".into();
            }
        }
        Ok(g)
    }

    fn request(&self, path: &str) -> reqwest::RequestBuilder {
        let r = self.client.post(format!("{}{path}", self.base));
        match &self.key {
            Some(k) => r.bearer_auth(k),
            None => r,
        }
    }

    /// The model to ask for: `DOCCHAT_GENERATOR_MODEL` when set, else the chat
    /// model `/models` lists (one marked `"kind": "chat"`, as docchat marks its
    /// own, else the first that is not an embedding model).
    async fn served_model(&self) -> Result<String> {
        if let Ok(m) = std::env::var("DOCCHAT_GENERATOR_MODEL")
            && !m.is_empty()
        {
            return Ok(m);
        }
        let mut r = self.client.get(format!("{}/models", self.base));
        if let Some(k) = &self.key {
            r = r.bearer_auth(k);
        }
        let body: Value = r
            .timeout(CONNECT)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        pick_model(&body).ok_or_else(|| anyhow!("{}/models lists no chat model", self.base))
    }

    fn down(&self, what: impl std::fmt::Display) -> anyhow::Error {
        anyhow::Error::new(GeneratorDown(format!(
            "the generator at {} {what}",
            self.base
        )))
    }

    /// The request body for `prompt`.
    fn body(&self, prompt: &str, params: &GenerationParams) -> Result<(&'static str, Value)> {
        let mut body = json!({
            "model": self.model,
            "stream": true,
            "max_tokens": params.max_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "seed": params.seed,
        });
        if params.frequency_penalty != 0.0 {
            body["frequency_penalty"] = json!(params.frequency_penalty);
        }
        if params.presence_penalty != 0.0 {
            body["presence_penalty"] = json!(params.presence_penalty);
        }
        if !params.stop.is_empty() {
            // The API takes at most four.
            body["stop"] = json!(params.stop.iter().take(4).collect::<Vec<_>>());
        }
        if params.ignore_eos {
            body["ignore_eos"] = json!(true);
        }
        match prompt.strip_prefix(MESSAGES) {
            Some(messages) => {
                let turns: Vec<ChatTurn> = serde_json::from_str(messages)?;
                body["messages"] = turns
                    .iter()
                    .map(|t| json!({ "role": t.role.as_str(), "content": t.content }))
                    .collect();
                Ok(("/chat/completions", body))
            }
            None => {
                body["prompt"] = json!(prompt);
                Ok(("/completions", body))
            }
        }
    }

    async fn stream(
        &self,
        prompt: &str,
        params: &GenerationParams,
        sink: &mut (dyn FnMut(&str) -> bool + Send),
    ) -> Result<GenerationStats> {
        let (path, body) = self.body(prompt, params)?;
        let started = Instant::now();
        let res = self
            .request(path)
            .json(&body)
            .send()
            .await
            .map_err(|e| self.down(format_args!("cannot be reached: {}", root_cause(&e))))?;
        if !res.status().is_success() {
            let status = res.status();
            let text = res.text().await.unwrap_or_default();
            let detail: String = text.chars().take(300).collect();
            return Err(self.down(format_args!("answered {status}: {detail}")));
        }
        let mut stats = GenerationStats {
            prompt_tokens: u32::try_from(self.count_tokens(prompt)).unwrap_or(u32::MAX),
            ..GenerationStats::default()
        };
        let mut first: Option<Instant> = None;
        let mut pending = String::new();
        let mut bytes = res.bytes_stream();
        while let Some(chunk) = bytes.next().await {
            let chunk =
                chunk.map_err(|e| self.down(format_args!("broke off: {}", root_cause(&e))))?;
            pending.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = pending.find('\n') {
                let line: String = pending.drain(..=end).collect();
                let Some(data) = line.trim().strip_prefix("data:") else {
                    continue;
                };
                let data = data.trim();
                if data == "[DONE]" {
                    return Ok(finish(stats, first, started));
                }
                let Ok(v) = serde_json::from_str::<Value>(data) else {
                    continue;
                };
                if let Some(e) = v.get("error") {
                    return Err(self.down(format_args!("failed: {e}")));
                }
                let choice = &v["choices"][0];
                let piece = choice["delta"]["content"]
                    .as_str()
                    .or_else(|| choice["text"].as_str())
                    .unwrap_or("");
                if !piece.is_empty() {
                    first.get_or_insert_with(Instant::now);
                    stats.tokens += 1;
                    if !sink(piece) {
                        stats.finish_reason = FinishReason::Cancelled;
                        // Dropping the response closes the connection: the
                        // remote server stops generating.
                        return Ok(finish(stats, first, started));
                    }
                }
                match choice["finish_reason"].as_str() {
                    Some("length") => stats.finish_reason = FinishReason::Length,
                    Some(_) => stats.finish_reason = FinishReason::Stop,
                    None => {}
                }
                if let Some(n) = v["usage"]["completion_tokens"].as_u64() {
                    stats.tokens = u32::try_from(n).unwrap_or(stats.tokens);
                }
                if let Some(n) = v["usage"]["prompt_tokens"].as_u64() {
                    stats.prompt_tokens = u32::try_from(n).unwrap_or(stats.prompt_tokens);
                }
            }
        }
        Ok(finish(stats, first, started))
    }
}

/// A remote model's error in the models' terms: a server that cannot be reached or
/// failed is `Unavailable` (a 503 for the client), anything else a model error.
fn core_error(e: anyhow::Error) -> docchat_core::Error {
    match e.downcast_ref::<GeneratorDown>() {
        Some(down) => docchat_core::Error::Unavailable(down.0.clone()),
        None => docchat_core::Error::Model(format!("{e:#}")),
    }
}

/// The chat model of a `/models` answer.
fn pick_model(body: &Value) -> Option<String> {
    let models = body["data"].as_array()?;
    let id = |m: &Value| m["id"].as_str().map(str::to_string);
    models
        .iter()
        .find(|m| m["kind"] == "chat")
        .and_then(id)
        .or_else(|| {
            models
                .iter()
                .filter(|m| m["kind"].is_null())
                .filter_map(id)
                .find(|i| !i.to_ascii_lowercase().contains("embed"))
        })
}

fn finish(mut stats: GenerationStats, first: Option<Instant>, started: Instant) -> GenerationStats {
    if let Some(f) = first {
        stats.ttft_ms = u64::try_from(f.duration_since(started).as_millis()).unwrap_or(u64::MAX);
        let after = f.elapsed().as_secs_f64();
        if stats.tokens > 1 && after > 0.0 {
            stats.tokens_per_s = f64::from(stats.tokens - 1) / after;
        }
    }
    stats
}

/// The innermost cause of an error ("Connection refused"), which says more than
/// reqwest's outer message.
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

impl TokenCounter for RemoteGenerator {
    /// An estimate (the remote tokenizer is not at hand): four bytes a token, as
    /// for English text with the usual tokenizers; prompts are cut by it.
    fn count_tokens(&self, text: &str) -> usize {
        text.len().div_ceil(4)
    }
}

impl Generator for RemoteGenerator {
    fn id(&self) -> &str {
        &self.model
    }

    fn context_size(&self) -> usize {
        self.context
    }

    fn has_chat_template(&self) -> bool {
        true
    }

    fn render_chat(&self, turns: &[ChatTurn]) -> String {
        format!(
            "{MESSAGES}{}",
            serde_json::to_string(turns).expect("turns serialize")
        )
    }

    fn generate(
        &self,
        prompt: &str,
        params: &GenerationParams,
        sink: &mut dyn FnMut(&str) -> bool,
    ) -> docchat_core::Result<GenerationStats> {
        // Called off the async runtime (a blocking thread): wait for the stream
        // there. The sink stays on this thread.
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        let (keep_tx, keep_rx) = std::sync::mpsc::channel::<bool>();
        let run = {
            let (prompt, params) = (prompt.to_string(), params.clone());
            let this: &Self = self;
            async move {
                let mut forward = move |piece: &str| {
                    tx.send(piece.to_string()).is_ok() && keep_rx.recv().unwrap_or(false)
                };
                this.stream(&prompt, &params, &mut forward).await
            }
        };
        std::thread::scope(|scope| {
            let worker = scope.spawn(|| self.runtime.block_on(run));
            while let Some(piece) = rx.blocking_recv() {
                let keep = sink(&piece);
                let _ = keep_tx.send(keep);
            }
            worker
                .join()
                .unwrap_or_else(|_| Err(anyhow!("the generator's stream panicked")))
        })
        .map_err(core_error)
    }

    fn available(&self) -> std::result::Result<(), String> {
        let Ok(url) = reqwest::Url::parse(&self.base) else {
            return Err(format!("the generator address {} is not a URL", self.base));
        };
        let host = url.host_str().unwrap_or("localhost");
        let port = url.port_or_known_default().unwrap_or(80);
        let addrs = (host, port)
            .to_socket_addrs()
            .map_err(|e| format!("the generator at {} cannot be reached: {e}", self.base))?;
        let mut last = String::from("no address");
        for a in addrs {
            match std::net::TcpStream::connect_timeout(&a, CONNECT) {
                Ok(_) => return Ok(()),
                Err(e) => last = e.to_string(),
            }
        }
        Err(format!(
            "the generator at {} cannot be reached: {last}",
            self.base
        ))
    }
}

/// An embedding model on another server (`/v1/embeddings`).
#[derive(Debug)]
pub struct RemoteEmbedder {
    base: String,
    model: String,
    dim: usize,
    key: Option<String>,
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

impl RemoteEmbedder {
    /// The server at `url`: its embedding model (`DOCCHAT_EMBEDDER_MODEL`, else the
    /// one `/models` marks `"kind": "embedding"` or names `embed…`), and the
    /// dimension of its vectors, from a first request. A server that does not
    /// answer is an error: the index cannot be searched without it.
    pub async fn connect(url: &str) -> Result<Self> {
        let base = url.trim().trim_end_matches('/').to_string();
        let parsed = reqwest::Url::parse(&base)
            .with_context(|| format!("--embedder {base}: not a URL (http://HOST:PORT/v1)"))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            anyhow::bail!("--embedder {base}: not an http(s) URL (http://HOST:PORT/v1)");
        }
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT)
            .timeout(Duration::from_secs(120))
            .build()?;
        let key = std::env::var("DOCCHAT_EMBEDDER_KEY")
            .ok()
            .filter(|k| !k.is_empty());
        let mut e = Self {
            base,
            model: String::new(),
            dim: 0,
            key,
            client,
            runtime: tokio::runtime::Handle::current(),
        };
        e.model = match std::env::var("DOCCHAT_EMBEDDER_MODEL") {
            Ok(m) if !m.is_empty() => m,
            _ => {
                let mut r = e.client.get(format!("{}/models", e.base));
                if let Some(k) = &e.key {
                    r = r.bearer_auth(k);
                }
                let body: Value = r
                    .send()
                    .await
                    .map_err(|err| {
                        anyhow!(
                            "the embedder at {} cannot be reached: {}",
                            e.base,
                            root_cause(&err)
                        )
                    })?
                    .error_for_status()?
                    .json()
                    .await?;
                pick_embedding_model(&body)
                    .ok_or_else(|| anyhow!("{}/models lists no embedding model", e.base))?
            }
        };
        let probe = e.embed_async(&["docchat".to_string()]).await?;
        e.dim = probe.first().map_or(0, Vec::len);
        anyhow::ensure!(
            e.dim > 0,
            "the embedder at {} returned an empty vector",
            e.base
        );
        tracing::info!(embedder = %e.base, model = %e.model, dim = e.dim, "questions are embedded remotely");
        Ok(e)
    }

    async fn embed_async(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        let mut r = self
            .client
            .post(format!("{}/embeddings", self.base))
            .json(&json!({ "model": self.model, "input": texts }));
        if let Some(k) = &self.key {
            r = r.bearer_auth(k);
        }
        let res = r.send().await.map_err(|e| {
            anyhow::Error::new(GeneratorDown(format!(
                "the embedder at {} cannot be reached: {}",
                self.base,
                root_cause(&e)
            )))
        })?;
        if !res.status().is_success() {
            let status = res.status();
            let text: String = res
                .text()
                .await
                .unwrap_or_default()
                .chars()
                .take(300)
                .collect();
            return Err(anyhow::Error::new(GeneratorDown(format!(
                "the embedder at {} answered {status}: {text}",
                self.base
            ))));
        }
        let body: Value = res.json().await?;
        let mut rows: Vec<(usize, Vec<f32>)> = body["data"]
            .as_array()
            .ok_or_else(|| anyhow!("the embedder at {} sent no data", self.base))?
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let index = d["index"].as_u64().map_or(i, |n| n as usize);
                let v: Vec<f32> = d["embedding"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|x| x.as_f64())
                            .map(|x| x as f32)
                            .collect()
                    })
                    .unwrap_or_default();
                (index, normalized(v))
            })
            .collect();
        rows.sort_by_key(|(i, _)| *i);
        anyhow::ensure!(
            rows.len() == texts.len(),
            "the embedder at {} returned {} vectors for {} texts",
            self.base,
            rows.len(),
            texts.len()
        );
        Ok(rows.into_iter().map(|(_, v)| v).collect())
    }
}

/// `v` scaled to length 1 (docchat's vectors are compared by cosine).
fn normalized(mut v: Vec<f32>) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    v
}

/// The embedding model of a `/models` answer.
fn pick_embedding_model(body: &Value) -> Option<String> {
    let models = body["data"].as_array()?;
    let id = |m: &Value| m["id"].as_str().map(str::to_string);
    models
        .iter()
        .find(|m| m["kind"] == "embedding")
        .and_then(id)
        .or_else(|| {
            models
                .iter()
                .filter_map(id)
                .find(|i| i.to_ascii_lowercase().contains("embed") || i.contains("MiniLM"))
        })
        .or_else(|| (models.len() == 1).then(|| id(&models[0])).flatten())
}

impl TokenCounter for RemoteEmbedder {
    fn count_tokens(&self, text: &str) -> usize {
        text.len().div_ceil(4)
    }
}

impl Embedder for RemoteEmbedder {
    fn id(&self) -> &str {
        &self.model
    }

    fn dim(&self) -> usize {
        self.dim
    }

    fn max_tokens(&self) -> usize {
        512
    }

    fn embed(&self, texts: &[String]) -> docchat_core::Result<Vec<Vec<f32>>> {
        std::thread::scope(|scope| {
            scope
                .spawn(|| self.runtime.block_on(self.embed_async(texts)))
                .join()
                .unwrap_or_else(|_| Err(anyhow!("the embedding request panicked")))
        })
        .map_err(core_error)
    }
}

/// Cosine at or above which a remote model's vector of a stored passage is the
/// index's own (the same model gives the same vector, up to float noise).
pub const SAME_MODEL_COSINE: f32 = 0.98;

/// Refuses a remote embedder whose vectors are not those of the index: another
/// dimension, or another vector for a passage the index holds.
pub async fn check_embedder(
    store: &docchat_store::Store,
    embedder: &std::sync::Arc<dyn Embedder>,
) -> Result<()> {
    if store.dim() != embedder.dim() {
        anyhow::bail!(
            "the embedder {} makes {}-dimensional vectors, the index holds {}-dimensional ones: \
             it is not the index's embedding model",
            embedder.id(),
            embedder.dim(),
            store.dim()
        );
    }
    let docs = store.documents().await?;
    let Some(doc) = docs
        .iter()
        .find(|d| d.state == docchat_store::DocState::Indexed)
    else {
        return Ok(());
    };
    let chunks = store.document_chunks(&doc.id).await?;
    let vectors = store.chunk_vectors(&doc.id).await?;
    let Some((text, stored)) = chunks
        .iter()
        .find_map(|c| vectors.get(&c.hash).map(|v| (c.text.clone(), v.clone())))
    else {
        return Ok(());
    };
    let e = std::sync::Arc::clone(embedder);
    let remote = tokio::task::spawn_blocking(move || e.embed(&[text])).await??;
    let cosine: f32 = remote[0].iter().zip(&stored).map(|(a, b)| a * b).sum();
    if cosine < SAME_MODEL_COSINE {
        anyhow::bail!(
            "the embedder {} does not make the index's vectors: a stored passage of {} comes out \
             at cosine {cosine:.3} to its indexed vector (the same model gives at least \
             {SAME_MODEL_COSINE})",
            embedder.id(),
            doc.path
        );
    }
    tracing::info!(cosine, "the remote embedder makes the index's vectors");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use docchat_core::Role;

    fn generator() -> RemoteGenerator {
        RemoteGenerator {
            base: "http://127.0.0.1:9/v1".into(),
            model: "m".into(),
            context: 4096,
            key: None,
            client: reqwest::Client::new(),
            runtime: tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap()
                .handle()
                .clone(),
        }
    }

    #[test]
    fn a_rendered_chat_goes_as_messages_and_a_bare_prompt_as_a_completion() {
        let g = generator();
        let prompt = g.render_prompt("Answer from the passages.", "Question: why?");
        let params = GenerationParams {
            stop: vec!["a".into(), "b".into(), "c".into(), "d".into(), "e".into()],
            ..GenerationParams::default()
        };
        let (path, body) = g.body(&prompt, &params).unwrap();
        assert_eq!(path, "/chat/completions");
        assert_eq!(body["messages"][0]["role"], Role::System.as_str());
        assert_eq!(body["messages"][1]["content"], "Question: why?");
        assert_eq!(body["stop"].as_array().unwrap().len(), 4);
        assert_eq!(body["stream"], true);
        let (path, body) = g.body("Once upon", &params).unwrap();
        assert_eq!(path, "/completions");
        assert_eq!(body["prompt"], "Once upon");
    }

    #[test]
    fn the_chat_model_is_picked_from_the_list() {
        let docchat = json!({ "data": [
            { "id": "docchat", "kind": "rag" },
            { "id": "qwen", "kind": "chat" },
            { "id": "minilm", "kind": "embedding" },
        ]});
        assert_eq!(pick_model(&docchat).as_deref(), Some("qwen"));
        let vllm = json!({ "data": [{ "id": "bge-embed" }, { "id": "Qwen/Qwen2.5-7B" }] });
        assert_eq!(pick_model(&vllm).as_deref(), Some("Qwen/Qwen2.5-7B"));
        assert_eq!(pick_model(&json!({ "data": [] })), None);
    }

    /// A fixed vector per text (pure logic, for the dimension check).
    struct Fixed(usize);

    impl TokenCounter for Fixed {
        fn count_tokens(&self, text: &str) -> usize {
            text.len()
        }
    }

    impl Embedder for Fixed {
        fn id(&self) -> &str {
            "fixed"
        }
        fn dim(&self) -> usize {
            self.0
        }
        fn max_tokens(&self) -> usize {
            512
        }
        fn embed(&self, texts: &[String]) -> docchat_core::Result<Vec<Vec<f32>>> {
            Ok(texts
                .iter()
                .map(|_| normalized(vec![1.0; self.0]))
                .collect())
        }
    }

    #[tokio::test]
    async fn an_embedder_of_another_dimension_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = docchat_store::Store::open(dir.path(), 3).await.unwrap();
        let other: std::sync::Arc<dyn Embedder> = std::sync::Arc::new(Fixed(4));
        let e = check_embedder(&store, &other)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("makes 4-dimensional vectors, the index holds 3-dimensional"),
            "{e}"
        );
        let same: std::sync::Arc<dyn Embedder> = std::sync::Arc::new(Fixed(3));
        check_embedder(&store, &same).await.unwrap();
    }

    #[test]
    fn vectors_come_back_normalized_and_models_are_picked() {
        let v = normalized(vec![3.0, 4.0]);
        assert!((v[0] - 0.6).abs() < 1e-6 && (v[1] - 0.8).abs() < 1e-6);
        let docchat = json!({ "data": [
            { "id": "docchat", "kind": "rag" },
            { "id": "qwen", "kind": "chat" },
            { "id": "all-MiniLM-L6-v2", "kind": "embedding" },
        ]});
        assert_eq!(
            pick_embedding_model(&docchat).as_deref(),
            Some("all-MiniLM-L6-v2")
        );
        let plain = json!({ "data": [{ "id": "llama" }, { "id": "nomic-embed-text" }] });
        assert_eq!(
            pick_embedding_model(&plain).as_deref(),
            Some("nomic-embed-text")
        );
    }

    #[test]
    fn a_server_that_is_not_there_is_unavailable_with_the_reason() {
        let g = generator();
        let why = g.available().unwrap_err();
        assert!(
            why.contains("http://127.0.0.1:9/v1 cannot be reached"),
            "{why}"
        );
    }
}

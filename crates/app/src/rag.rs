//! Retrieval-augmented answers: retrieve passages, pack them into the prompt within
//! the chat model's context, stream the answer, and cite the sources given.

use anyhow::{Context, Result};
use docchat_core::{Embedder, GenerationParams, GenerationStats, Generator};
use docchat_store::{SearchFilter, SearchHit, Store};
use serde::Serialize;
use std::sync::Arc;
use tokio::sync::mpsc;

/// The instruction given before the sources.
const SYSTEM: &str = "You answer questions using only the numbered excerpts from the user's \
documents below. Cite the excerpts you use with their numbers in brackets, like [1]. If the \
excerpts do not contain the answer, say that the documents do not say.";

/// A source of an answer, as the client sees it.
#[derive(Debug, Clone, Serialize)]
pub struct Citation {
    /// Number of the source in the prompt (`[n]`).
    pub n: usize,
    /// Document id.
    pub document_id: String,
    /// Collection.
    pub collection: String,
    /// Path relative to its watched folder.
    pub path: String,
    /// First page.
    pub page_start: u32,
    /// Last page.
    pub page_end: u32,
    /// Byte range of the snippet in the page's extracted text.
    pub byte_start: u32,
    /// End of that range.
    pub byte_end: u32,
    /// The passage.
    pub snippet: String,
    /// Retrieval score.
    pub score: f32,
    /// Opens the source at its page.
    pub url: String,
}

impl Citation {
    fn from_hit(n: usize, hit: &SearchHit) -> Self {
        Self {
            n,
            document_id: hit.document_id.clone(),
            collection: hit.collection.clone(),
            path: hit.path.clone(),
            page_start: hit.page_start,
            page_end: hit.page_end,
            byte_start: hit.byte_start,
            byte_end: hit.byte_end,
            snippet: hit.text.clone(),
            score: hit.score,
            url: format!(
                "/api/documents/{}/file#page={}",
                hit.document_id, hit.page_start
            ),
        }
    }
}

/// What an answer stream carries.
#[derive(Debug)]
pub enum AnswerEvent {
    /// A piece of the answer.
    Token(String),
    /// The sources given to the model.
    Citations(Vec<Citation>),
    /// The end, with figures.
    Done(GenerationStats),
    /// The answer failed.
    Error(String),
}

/// Retrieval and generation over one index.
#[derive(Clone)]
pub struct Rag {
    /// The index.
    pub store: Store,
    /// Embeds questions.
    pub embedder: Arc<dyn Embedder>,
    /// Writes answers.
    pub generator: Arc<dyn Generator>,
}

/// Options of one question.
#[derive(Debug, Clone)]
pub struct AskOptions {
    /// Passages to retrieve.
    pub top_k: usize,
    /// Restriction of the search.
    pub filter: SearchFilter,
    /// Sampling.
    pub params: GenerationParams,
}

impl Default for AskOptions {
    fn default() -> Self {
        Self {
            top_k: 6,
            filter: SearchFilter::default(),
            params: GenerationParams::default(),
        }
    }
}

/// Embeds `query` and returns the nearest chunks.
pub async fn search(
    store: &Store,
    embedder: &Arc<dyn Embedder>,
    query: &str,
    top_k: usize,
    filter: &SearchFilter,
) -> Result<Vec<SearchHit>> {
    let e = Arc::clone(embedder);
    let q = vec![query.to_string()];
    let mut vectors = tokio::task::spawn_blocking(move || e.embed(&q))
        .await?
        .context("cannot embed the query")?;
    let v = vectors.pop().context("the embedder returned no vector")?;
    Ok(store.vector_search(&v, top_k, filter).await?)
}

impl Rag {
    /// Answers `question`, sending events to `tx` until done; stops early when the
    /// receiver is dropped.
    pub async fn answer(&self, question: String, opts: AskOptions, tx: mpsc::Sender<AnswerEvent>) {
        if let Err(e) = self.answer_inner(question, opts, &tx).await {
            tracing::error!(error = format!("{e:#}"), "answer failed");
            let _ = tx.send(AnswerEvent::Error(format!("{e:#}"))).await;
        }
    }

    async fn answer_inner(
        &self,
        question: String,
        opts: AskOptions,
        tx: &mpsc::Sender<AnswerEvent>,
    ) -> Result<()> {
        let hits = search(
            &self.store,
            &self.embedder,
            &question,
            opts.top_k,
            &opts.filter,
        )
        .await?;
        let generator = Arc::clone(&self.generator);
        let (prompt, used) = build_prompt(
            generator.as_ref(),
            &question,
            &hits,
            opts.params.max_tokens as usize,
        );
        let citations: Vec<Citation> = used
            .iter()
            .enumerate()
            .map(|(i, h)| Citation::from_hit(i + 1, h))
            .collect();
        let mut params = opts.params.clone();
        if !generator.has_chat_template() {
            // A base model tends to go on with the prompt's pattern: a new
            // question or a new numbered source ends the answer.
            params
                .stop
                .extend(["\nQuestion:", "\n\n\n", "\n["].map(String::from));
        }
        let token_tx = tx.clone();
        let stats = tokio::task::spawn_blocking(move || {
            let mut sink = |piece: &str| {
                token_tx
                    .blocking_send(AnswerEvent::Token(piece.to_string()))
                    .is_ok()
            };
            generator.generate(&prompt, &params, &mut sink)
        })
        .await?;
        let stats = match stats {
            Ok(s) => s,
            Err(docchat_core::Error::Cancelled) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        if tx.send(AnswerEvent::Citations(citations)).await.is_ok() {
            let _ = tx.send(AnswerEvent::Done(stats)).await;
        }
        Ok(())
    }
}

/// Renders the prompt with as many passages as fit the context (best first) and
/// returns it with the passages used, numbered in that order.
pub fn build_prompt<'h>(
    generator: &dyn Generator,
    question: &str,
    hits: &'h [SearchHit],
    answer_tokens: usize,
) -> (String, Vec<&'h SearchHit>) {
    let budget = generator.context_size().saturating_sub(answer_tokens + 64);
    let mut used: Vec<&SearchHit> = Vec::new();
    let mut prompt = render(generator, question, &used);
    for hit in hits {
        used.push(hit);
        let candidate = render(generator, question, &used);
        if generator.count_tokens(&candidate) > budget {
            used.pop();
            break;
        }
        prompt = candidate;
    }
    (prompt, used)
}

fn render(generator: &dyn Generator, question: &str, sources: &[&SearchHit]) -> String {
    let mut user = String::new();
    for (i, h) in sources.iter().enumerate() {
        let pages = if h.page_start == h.page_end {
            format!("page {}", h.page_start)
        } else {
            format!("pages {}-{}", h.page_start, h.page_end)
        };
        user.push_str(&format!(
            "[{}] ({}, {})\n{}\n\n",
            i + 1,
            h.path,
            pages,
            h.text.trim()
        ));
    }
    if sources.is_empty() {
        user.push_str("(No excerpts were found in the documents.)\n\n");
    }
    user.push_str(&format!("Question: {}\nAnswer:", question.trim()));
    generator.render_prompt(SYSTEM, &user)
}

#[cfg(test)]
mod tests {
    use super::*;
    use docchat_core::TokenCounter;

    /// A plain-prompt model whose tokens are bytes: tests the packing logic only.
    struct Bytes(usize);
    impl TokenCounter for Bytes {
        fn count_tokens(&self, text: &str) -> usize {
            text.len()
        }
    }
    impl Generator for Bytes {
        fn id(&self) -> &str {
            "bytes"
        }
        fn context_size(&self) -> usize {
            self.0
        }
        fn has_chat_template(&self) -> bool {
            false
        }
        fn render_prompt(&self, system: &str, user: &str) -> String {
            format!("{system}\n\n{user}")
        }
        fn generate(
            &self,
            _: &str,
            _: &GenerationParams,
            _: &mut dyn FnMut(&str) -> bool,
        ) -> docchat_core::Result<GenerationStats> {
            unreachable!("not used by these tests")
        }
    }

    fn hit(text: &str, page: u32) -> SearchHit {
        SearchHit {
            chunk_id: format!("c{page}"),
            document_id: "d".into(),
            collection: "c".into(),
            path: "paper.pdf".into(),
            page_start: page,
            page_end: page,
            byte_start: 0,
            byte_end: text.len() as u32,
            text: text.into(),
            score: 0.5,
        }
    }

    #[test]
    fn prompt_numbers_sources_and_respects_the_budget() {
        let hits = vec![
            hit(&"a".repeat(300), 2),
            hit(&"b".repeat(300), 5),
            hit(&"c".repeat(300), 9),
        ];
        let g = Bytes(SYSTEM.len() + 1000 + 100 + 64);
        let (prompt, used) = build_prompt(&g, "What?", &hits, 100);
        assert_eq!(used.len(), 2, "the third passage does not fit");
        assert!(prompt.contains("[1] (paper.pdf, page 2)"));
        assert!(prompt.contains("[2] (paper.pdf, page 5)"));
        assert!(!prompt.contains("[3]"));
        assert!(prompt.ends_with("Question: What?\nAnswer:"));
        assert!(g.count_tokens(&prompt) <= g.context_size() - 164);
    }

    #[test]
    fn citations_link_to_the_page() {
        let c = Citation::from_hit(3, &hit("text", 7));
        assert_eq!(c.n, 3);
        assert_eq!(c.url, "/api/documents/d/file#page=7");
    }
}

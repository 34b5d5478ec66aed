//! Retrieval-augmented answers: retrieve passages, pack them into the prompt within
//! the chat model's context, stream the answer, and cite the sources given.

use crate::answer::check::{self, Claim};
use crate::answer::focus;
use crate::answer::retrieve::{
    Fusion, Passage, Retriever, SearchMode, SearchRequest, cited_markers,
};
use anyhow::Result;
use docchat_core::Location;
use docchat_core::{ChatTurn, GenerationParams, GenerationStats, Generator, Role};
use docchat_store::SearchFilter;
use serde::Serialize;
use std::sync::Arc;
use tokio::sync::mpsc;

/// The instruction given before the sources.
const SYSTEM: &str = "You answer questions using only the numbered excerpts from the user's \
documents below. Cite the excerpts you use with their numbers in brackets, like [1]. If the \
excerpts do not contain the answer, say that the documents do not say.";

/// The instruction of a model with a chat template (an instruction-tuned model):
/// grounded, short, cited sentence by sentence, and a plain refusal.
const GROUNDED: &str = "You answer questions about the user's documents, using only the \
numbered passages given with the question. Answer in one to three sentences, in the language \
of the question, keeping the passages' own words for names, numbers, functions and settings. \
End each sentence with the number of the passage it comes from, like [2]. Only if no passage \
is about the question, reply: The documents do not say.";

/// The default of [`AskOptions::chat_passages`] (more cost time to the first token
/// and add distractors: BENCHMARKS.md, "Answers").
pub const CHAT_PASSAGES: usize = 4;

/// A source of an answer, as the client sees it.
#[derive(Debug, Clone, Serialize)]
pub struct Citation {
    /// Number of the source in the prompt (`[n]`).
    pub n: usize,
    /// Where it is.
    #[serde(flatten)]
    pub at: Location,
    /// The passage.
    pub snippet: String,
    /// Retrieval score.
    pub score: f32,
    /// Whether the answer cites this source with `[n]`.
    pub cited: bool,
    /// For a cited source: whether it holds what every sentence citing it says
    /// (`false`: some claim cited to it is not in it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supported: Option<bool>,
    /// docchat found in it a sentence of the answer that no source the model
    /// cited holds (`Claim::found_in`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub found: bool,
    /// Its text was read by OCR from a scanned page or an image.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ocr: bool,
}

impl Citation {
    /// The source numbered `n` in the prompt.
    pub fn from_passage(n: usize, p: &Passage) -> Self {
        Self {
            n,
            at: p.at.clone(),
            snippet: p.text.clone(),
            score: p.score,
            cited: false,
            supported: None,
            found: false,
            ocr: p.ocr,
        }
    }
}

/// The sources of a finished answer, with the answer's `[n]` markers mapped.
#[derive(Debug, Clone, Serialize)]
pub struct Sources {
    /// Every source given to the model, numbered as in the prompt.
    pub citations: Vec<Citation>,
    /// Numbers the answer cites, in order of first mention.
    pub cited: Vec<usize>,
    /// Numbers the answer cites that name no source (the model made them up).
    pub unknown: Vec<usize>,
    /// The answer's sentences that state something, each checked against the
    /// sources it cites.
    pub claims: Vec<Claim>,
    /// Nothing the answer states is in any of its sources (`check::unfounded`):
    /// shown as a warning that it may be made up.
    pub unfounded: bool,
}

impl Sources {
    /// Maps the markers of `answer` onto `citations` and checks each claim
    /// against the sources it cites.
    pub fn map(mut citations: Vec<Citation>, answer: &str) -> Self {
        let (cited, unknown) = cited_markers(answer, citations.len());
        let passages: Vec<&str> = citations.iter().map(|c| c.snippet.as_str()).collect();
        let claims = check::check(answer, &passages);
        let unfounded = check::unfounded(&claims, &passages);
        for c in &mut citations {
            c.cited = cited.contains(&c.n);
            c.found = claims.iter().any(|claim| claim.found_in == Some(c.n));
            c.supported = c.cited.then(|| {
                claims
                    .iter()
                    .flat_map(|claim| &claim.cites)
                    .filter(|cite| cite.n == c.n)
                    .all(|cite| cite.supported)
            });
        }
        Self {
            citations,
            cited,
            unknown,
            claims,
            unfounded,
        }
    }

    /// Cited markers whose source does not hold the claim, and all cited markers.
    pub fn unsupported(&self) -> (usize, usize) {
        let cites = self.claims.iter().flat_map(|c| &c.cites);
        let all = cites.clone().count();
        (cites.filter(|c| !c.supported).count(), all)
    }
}

/// What an answer stream carries.
#[derive(Debug)]
pub enum AnswerEvent {
    /// A piece of the answer.
    Token(String),
    /// The sources given to the model, mapped to the answer's markers.
    Citations(Sources),
    /// The end, with figures.
    Done(GenerationStats),
    /// Progress of a whole-document reading (before its answer).
    Reading(crate::answer::read::ReadProgress),
    /// The answer failed.
    Error(String),
}

/// Retrieval and generation over one index.
#[derive(Clone)]
pub struct Rag {
    /// Finds passages.
    pub retriever: Retriever,
    /// Writes answers.
    pub generator: Arc<dyn Generator>,
}

/// Options of one question.
#[derive(Debug, Clone)]
pub struct AskOptions {
    /// Passages to retrieve.
    pub top_k: usize,
    /// Which index finds them.
    pub mode: SearchMode,
    /// Fusion weights of hybrid search.
    pub fusion: Fusion,
    /// Restriction of the search.
    pub filter: SearchFilter,
    /// Sampling.
    pub params: GenerationParams,
    /// Cosine similarity of the nearest chunk below which the documents are taken
    /// not to hold the answer: no generation, docchat says so and lists what it
    /// looked at (0 turns this off; keyword-only search has no similarity).
    pub min_similarity: f32,
    /// Passages an instruction-tuned model is given at most: the first ones of the
    /// ranking (a base model gets as many as fit its context).
    pub chat_passages: usize,
    /// Longest passage, in bytes, an instruction-tuned model is given: each is cut
    /// to its sentences that hold the question's words (0: whole passages).
    pub passage_bytes: usize,
    /// The instruction an instruction-tuned model is given before the passages, in
    /// place of docchat's own grounded instruction (`None`: docchat's).
    pub instruction: Option<Arc<str>>,
    /// Whole-document readings (questions scoped with `filter.documents`).
    pub read: crate::answer::read::ReadOptions,
}

/// The default of [`AskOptions::passage_bytes`], chosen with the answer benchmark
/// (BENCHMARKS.md, "Answers").
pub const PASSAGE_BYTES: usize = 0;

/// The default of [`AskOptions::min_similarity`], chosen on the labelled set
/// (BENCHMARKS.md, "Nothing close"): below every answerable question's nearest
/// chunk, above most questions the documents do not answer.
pub const MIN_SIMILARITY: f32 = 0.30;

impl Default for AskOptions {
    fn default() -> Self {
        Self {
            top_k: 6,
            mode: SearchMode::Hybrid,
            fusion: Fusion::default(),
            filter: SearchFilter::default(),
            params: GenerationParams::default(),
            min_similarity: MIN_SIMILARITY,
            chat_passages: CHAT_PASSAGES,
            passage_bytes: PASSAGE_BYTES,
            instruction: None,
            read: crate::answer::read::ReadOptions::default(),
        }
    }
}

/// What docchat answers, in place of the model, when nothing in the documents is
/// close to the question.
pub const NOTHING_CLOSE: &str =
    "The documents do not seem to contain this: nothing in them is close to the question.";

/// [`NOTHING_CLOSE`] in Italian.
pub const NOTHING_CLOSE_IT: &str = "I documenti non sembrano contenere questa informazione: \
nulla in essi è vicino alla domanda.";

/// The "nothing close" answer in `lang`, naming the files and pages of the nearest
/// passages (three at most).
fn nothing_close_text(lang: crate::answer::lang::Lang, nearest: &[Passage]) -> String {
    use crate::answer::lang::{Lang, pages};
    let mut text = match lang {
        Lang::English => NOTHING_CLOSE,
        Lang::Italian => NOTHING_CLOSE_IT,
        Lang::German => {
            "Die Dokumente scheinen das nicht zu enthalten: nichts darin kommt der Frage nahe."
        }
        Lang::French => {
            "Les documents ne semblent pas contenir cette information : rien n'y est proche \
             de la question."
        }
        Lang::Spanish => {
            "Los documentos no parecen contener esta información: nada en ellos se acerca a \
             la pregunta."
        }
    }
    .to_string();
    if nearest.is_empty() {
        return text;
    }
    let places: Vec<String> = nearest
        .iter()
        .take(3)
        .map(|p| format!("{} ({})", p.at.path, pages(lang, &p.at)))
        .collect();
    let places = places.join(", ");
    text.push_str(&match lang {
        Lang::English => format!(" The nearest passages, listed under Sources, are in {places}."),
        Lang::Italian => format!(" I passi più vicini, elencati tra le Fonti, sono in {places}."),
        Lang::German => format!(" Die nächsten Passagen stehen in {places}."),
        Lang::French => format!(" Les passages les plus proches sont dans {places}."),
        Lang::Spanish => format!(" Los pasajes más cercanos están en {places}."),
    });
    text
}

impl Rag {
    /// Answers `question` (a follow-up of `history` when that is not empty), sending
    /// events to `tx` until done; stops early when the receiver is dropped.
    pub async fn answer(
        &self,
        question: String,
        history: Vec<ChatTurn>,
        opts: AskOptions,
        tx: mpsc::Sender<AnswerEvent>,
    ) {
        if let Err(e) = self.answer_inner(question, &history, opts, &tx).await {
            tracing::error!(error = format!("{e:#}"), "answer failed");
            let _ = tx.send(AnswerEvent::Error(format!("{e:#}"))).await;
        }
    }

    /// Generates a continuation of `prompt` without retrieval: `Token`s, then `Done`
    /// (or `Error`).
    pub async fn complete(
        &self,
        prompt: String,
        params: GenerationParams,
        tx: mpsc::Sender<AnswerEvent>,
    ) {
        match generate(Arc::clone(&self.generator), prompt, params, &tx).await {
            Ok(Some((stats, _))) => {
                let _ = tx.send(AnswerEvent::Done(stats)).await;
            }
            Ok(None) => {}
            Err(e) => {
                tracing::error!(error = format!("{e:#}"), "generation failed");
                let _ = tx.send(AnswerEvent::Error(format!("{e:#}"))).await;
            }
        }
    }

    async fn answer_inner(
        &self,
        question: String,
        history: &[ChatTurn],
        opts: AskOptions,
        tx: &mpsc::Sender<AnswerEvent>,
    ) -> Result<()> {
        let scoped = !opts.filter.documents.is_empty();
        if let Some(kind) = crate::answer::read::route(&question, opts.read.reading, scoped) {
            return self.read_whole(&question, kind, &opts, tx).await;
        }
        let started = std::time::Instant::now();
        // An instruction-tuned model answers more often from the passages as
        // retrieved than from passages widened to whole sentences by their
        // neighbours (BENCHMARKS.md, "Answers"); a base model gets them widened.
        let expand = !self.generator.has_chat_template();
        let trace = self
            .retriever
            .trace(&SearchRequest {
                query: retrieval_query(&question, history),
                mode: opts.mode,
                top_k: opts.top_k,
                filter: opts.filter.clone(),
                fusion: opts.fusion,
                expand,
            })
            .await?;
        if let Some(nearest) = trace.nearest_similarity()
            && nearest < opts.min_similarity
            && !asks_about_the_documents(&question)
        {
            tracing::info!(nearest, min = opts.min_similarity, "nothing close");
            let lang = crate::answer::lang::of(&question);
            return nothing_close(&trace.passages, lang, started, tx).await;
        }
        let retrieved_ms = started.elapsed().as_millis();
        let mut hits = trace.passages;
        let generator = Arc::clone(&self.generator);
        if generator.has_chat_template() && opts.passage_bytes > 0 {
            for h in hits.iter_mut().take(opts.chat_passages) {
                focus::focus(h, &question, opts.passage_bytes);
            }
        }
        // Fitting the passages into the context tokenizes them again and again:
        // work for a blocking thread, not for the async runtime.
        let (prompt, citations) = {
            let (g, question, history) = (Arc::clone(&generator), question, history.to_vec());
            let answer_tokens = opts.params.max_tokens as usize;
            let shape = PromptShape {
                chat_passages: opts.chat_passages.max(1),
                instruction: opts.instruction.clone(),
            };
            tokio::task::spawn_blocking(move || {
                let (prompt, used) = build_prompt(
                    g.as_ref(),
                    &question,
                    &history,
                    &hits,
                    answer_tokens,
                    &shape,
                );
                let citations: Vec<Citation> = used
                    .iter()
                    .enumerate()
                    .map(|(i, h)| Citation::from_passage(i + 1, h))
                    .collect();
                (prompt, citations)
            })
            .await?
        };
        tracing::debug!(
            retrieved_ms,
            prompt_ms = started.elapsed().as_millis(),
            "prompt ready"
        );
        let mut params = opts.params.clone();
        if !generator.has_chat_template() && !params.ignore_eos {
            // A base model tends to go on with the prompt's pattern: a new
            // question or a new numbered source ends the answer.
            params
                .stop
                .extend(["\nQuestion:", "\n\n\n", "\n["].map(String::from));
        }
        let Some((stats, answer)) = generate(generator, prompt, params, tx).await? else {
            return Ok(());
        };
        let sources = Sources::map(citations, &answer);
        if tx.send(AnswerEvent::Citations(sources)).await.is_ok() {
            let _ = tx.send(AnswerEvent::Done(stats)).await;
        }
        Ok(())
    }
}

/// Words of a request about the documents as a whole ("summarize these
/// documents", "write an essay about everything in them"): no single passage is
/// close to it, yet the documents hold what it asks for, so the "nothing close"
/// answer does not apply.
const ABOUT_THE_DOCUMENTS: &[&str] = &[
    "summar",
    "overview",
    "outline",
    "essay",
    "everything",
    "these documents",
    "this document",
    "the documents",
    "my documents",
    "these files",
    "this file",
    "riassun",
    "riassum",
    "documenti",
    "documento",
];

/// Whether `question` asks about the documents as a whole.
pub fn asks_about_the_documents(question: &str) -> bool {
    let q = question.to_lowercase();
    ABOUT_THE_DOCUMENTS.iter().any(|w| q.contains(w))
}

/// Answers, without the model, that the documents do not seem to hold the answer,
/// naming the nearest passages (the sources, none of them cited).
async fn nothing_close(
    nearest: &[Passage],
    lang: crate::answer::lang::Lang,
    started: std::time::Instant,
    tx: &mpsc::Sender<AnswerEvent>,
) -> Result<()> {
    let text = nothing_close_text(lang, nearest);
    let stats = GenerationStats {
        ttft_ms: (started.elapsed().as_millis() as u64).max(1),
        ..GenerationStats::default()
    };
    let sources = Sources {
        citations: nearest
            .iter()
            .enumerate()
            .map(|(i, p)| Citation::from_passage(i + 1, p))
            .collect(),
        cited: Vec::new(),
        unknown: Vec::new(),
        // docchat's own words, not the model's: nothing to check.
        claims: Vec::new(),
        unfounded: false,
    };
    for event in [
        AnswerEvent::Token(text),
        AnswerEvent::Citations(sources),
        AnswerEvent::Done(stats),
    ] {
        if tx.send(event).await.is_err() {
            break;
        }
    }
    Ok(())
}

/// Runs one generation off the runtime, sending each piece as a `Token`; returns the
/// figures and the whole text, or `None` when the receiver went away.
pub(crate) async fn generate(
    generator: Arc<dyn Generator>,
    prompt: String,
    params: GenerationParams,
    tx: &mpsc::Sender<AnswerEvent>,
) -> Result<Option<(GenerationStats, String)>> {
    let token_tx = tx.clone();
    let answer = Arc::new(std::sync::Mutex::new(String::new()));
    let text = Arc::clone(&answer);
    // The model's thread sends each piece straight to the stream.
    let sink = Box::new(move |piece: &str| {
        text.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push_str(piece);
        token_tx
            .blocking_send(AnswerEvent::Token(piece.to_string()))
            .is_ok()
    });
    let stats =
        tokio::task::spawn_blocking(move || generator.generate_send(&prompt, &params, sink))
            .await?;
    let answer = std::mem::take(
        &mut *answer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    match stats {
        Ok(s) => Ok(Some((s, answer))),
        Err(docchat_core::Error::Cancelled) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Words below which a follow-up question is searched together with the previous
/// question ("and its second argument?" means little on its own).
const SHORT_FOLLOW_UP_WORDS: usize = 8;

/// What retrieval searches for: the question, and for a short follow-up also the
/// user's previous question.
pub fn retrieval_query(question: &str, history: &[ChatTurn]) -> String {
    let previous = history.iter().rev().find(|t| t.role == Role::User);
    match previous {
        Some(p) if question.split_whitespace().count() < SHORT_FOLLOW_UP_WORDS => {
            format!("{} {}", p.content.trim(), question.trim())
        }
        _ => question.to_string(),
    }
}

/// How the prompt of an instruction-tuned model is made.
#[derive(Debug, Clone)]
pub struct PromptShape {
    /// Passages it is given at most.
    pub chat_passages: usize,
    /// Its instruction (`None`: docchat's grounded one).
    pub instruction: Option<Arc<str>>,
}

impl Default for PromptShape {
    fn default() -> Self {
        Self {
            chat_passages: CHAT_PASSAGES,
            instruction: None,
        }
    }
}

/// Renders the prompt with as much of the conversation (newest turns first, up to a
/// quarter of the budget) and as many passages (best first) as fit the context, and
/// returns it with the passages used, numbered in that order.
pub fn build_prompt<'h>(
    generator: &dyn Generator,
    question: &str,
    history: &[ChatTurn],
    hits: &'h [Passage],
    answer_tokens: usize,
    shape: &PromptShape,
) -> (String, Vec<&'h Passage>) {
    let budget = generator.context_size().saturating_sub(answer_tokens + 64);
    let mut earlier = String::new();
    for turn in history.iter().rev().filter(|t| t.role != Role::System) {
        let line = match turn.role {
            Role::User => format!("Question: {}\n", turn.content.trim()),
            _ => format!("Answer: {}\n", turn.content.trim()),
        };
        let candidate = format!("{line}{earlier}");
        if generator.count_tokens(&candidate) > budget / 4 {
            break;
        }
        earlier = candidate;
    }
    let mut used: Vec<&Passage> = Vec::new();
    let instruction = shape.instruction.as_deref().unwrap_or(GROUNDED);
    let mut prompt = render(generator, question, &earlier, &used, instruction);
    let most = if generator.has_chat_template() {
        shape.chat_passages
    } else {
        usize::MAX
    };
    for hit in hits.iter().take(most) {
        used.push(hit);
        let candidate = render(generator, question, &earlier, &used, instruction);
        if generator.count_tokens(&candidate) > budget {
            used.pop();
            break;
        }
        prompt = candidate;
    }
    (prompt, used)
}

fn render(
    generator: &dyn Generator,
    question: &str,
    earlier: &str,
    sources: &[&Passage],
    instruction: &str,
) -> String {
    let mut user = String::new();
    if !earlier.is_empty() {
        user.push_str("Earlier in this conversation:\n");
        user.push_str(earlier);
        user.push('\n');
    }
    if generator.has_chat_template() {
        return render_chat(generator, question, &user, sources, instruction);
    }
    for (i, h) in sources.iter().enumerate() {
        let pages = if h.at.page_start == h.at.page_end {
            format!("page {}", h.at.page_start)
        } else {
            format!("pages {}-{}", h.at.page_start, h.at.page_end)
        };
        user.push_str(&format!(
            "[{}] ({}, {})\n{}\n\n",
            i + 1,
            h.at.path,
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

/// The prompt of a model with a chat template: the instruction, the passages as
/// `Passage [n] (file, p. N):` blocks, then the question.
fn render_chat(
    generator: &dyn Generator,
    question: &str,
    earlier: &str,
    sources: &[&Passage],
    instruction: &str,
) -> String {
    let mut user = earlier.to_string();
    for (i, h) in sources.iter().enumerate() {
        user.push_str(&format!(
            "Passage [{}] ({}, {}):\n{}\n\n",
            i + 1,
            h.at.path,
            h.at.pages(),
            h.text.trim()
        ));
    }
    if sources.is_empty() {
        user.push_str("(No passages were found in the documents.)\n\n");
    }
    user.push_str(&format!("Question: {}", question.trim()));
    // Small models drift into English after English-looking passages; a last line
    // in the question's language keeps them in it (BENCHMARKS.md, "Answers in the
    // question's language").
    if let Some(line) = crate::answer::lang::answer_in(question) {
        user.push('\n');
        user.push_str(&line);
    }
    generator.render_prompt(instruction, &user)
}

#[cfg(test)]
mod tests {
    use super::*;
    use docchat_core::TokenCounter;

    /// A model whose tokens are bytes (its context size, and whether it has a chat
    /// template): tests the packing logic only.
    struct Bytes(usize, bool);

    impl Bytes {
        fn plain(context: usize) -> Self {
            Self(context, false)
        }
    }

    #[test]
    fn nothing_close_is_said_in_the_questions_language() {
        use crate::answer::lang::{Lang, of};
        let near = [hit("x", 4), hit("y", 7)];
        for (question, start, place) in [
            (
                "Who won the 2018 World Cup?",
                "The documents do not seem",
                "paper.pdf (p. 4)",
            ),
            (
                "Chi ha vinto i Mondiali di calcio del 2018?",
                "I documenti non sembrano",
                "paper.pdf (pagina 4)",
            ),
            (
                "Wer hat die Fußballweltmeisterschaft 2018 gewonnen?",
                "Die Dokumente scheinen",
                "paper.pdf (Seite 4)",
            ),
            (
                "Qui a gagné la Coupe du monde de football en 2018 ?",
                "Les documents ne semblent",
                "paper.pdf (page 4)",
            ),
            (
                "¿Quién ganó la Copa del Mundo de fútbol de 2018?",
                "Los documentos no parecen",
                "paper.pdf (página 4)",
            ),
        ] {
            let text = nothing_close_text(of(question), &near);
            assert!(text.starts_with(start), "{question}: {text}");
            assert!(text.contains(place), "{question}: {text}");
        }
        assert_eq!(nothing_close_text(Lang::English, &[]), NOTHING_CLOSE);
    }

    #[test]
    fn an_instruct_model_gets_the_grounded_prompt_and_the_first_passages_only() {
        let hits: Vec<Passage> = (1..=8)
            .map(|p| hit(&format!("text of page {p}"), p))
            .collect();
        let (prompt, used) = build_prompt(
            &Bytes(100_000, true),
            "Why?",
            &[],
            &hits,
            100,
            &PromptShape::default(),
        );
        assert_eq!(used.len(), CHAT_PASSAGES);
        assert!(prompt.contains("The documents do not say."), "{prompt}");
        assert!(
            prompt.contains("Passage [4] (paper.pdf, p. 4):"),
            "{prompt}"
        );
        assert!(!prompt.contains("page 5"), "{prompt}");
        assert!(!prompt.contains("Answer in English"), "{prompt}");
        // A question in another language is answered in it.
        let (prompt, _) = build_prompt(
            &Bytes(100_000, true),
            "Quale comando crea il pacchetto sorgente?",
            &[],
            &hits,
            100,
            &PromptShape::default(),
        );
        assert!(
            prompt
                .trim_end()
                .ends_with("sorgente?\nRispondi in italiano, con le parole dei passi."),
            "{prompt}"
        );
        // A configured instruction takes the place of docchat's own.
        let shape = PromptShape {
            instruction: Some("Answer like a lawyer.".into()),
            ..PromptShape::default()
        };
        let (prompt, _) = build_prompt(&Bytes(100_000, true), "Why?", &[], &hits, 100, &shape);
        assert!(prompt.contains("Answer like a lawyer."), "{prompt}");
        assert!(!prompt.contains("The documents do not say."), "{prompt}");
        // A base model keeps the packing: everything that fits.
        let (_, used) = build_prompt(
            &Bytes::plain(100_000),
            "Why?",
            &[],
            &hits,
            100,
            &PromptShape::default(),
        );
        assert_eq!(used.len(), 8);
    }

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
            self.1
        }
        fn render_chat(&self, turns: &[ChatTurn]) -> String {
            docchat_core::plain_prompt(turns)
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

    fn hit(text: &str, page: u32) -> Passage {
        Passage {
            at: Location {
                document_id: "d".into(),
                collection: "c".into(),
                path: "paper.pdf".into(),
                page_start: page,
                page_end: page,
                byte_start: 0,
                byte_end: text.len() as u32,
                match_start: 0,
                match_end: text.len() as u32,
            },
            text: text.into(),
            score: 0.5,
            chunk_ids: vec![format!("d-{page:05}")],
            ocr: false,
        }
    }

    #[test]
    fn prompt_numbers_sources_and_respects_the_budget() {
        let hits = vec![
            hit(&"a".repeat(300), 2),
            hit(&"b".repeat(300), 5),
            hit(&"c".repeat(300), 9),
        ];
        let g = Bytes::plain(SYSTEM.len() + 1000 + 100 + 64);
        let (prompt, used) = build_prompt(&g, "What?", &[], &hits, 100, &PromptShape::default());
        assert_eq!(used.len(), 2, "the third passage does not fit");
        assert!(prompt.contains("[1] (paper.pdf, page 2)"));
        assert!(prompt.contains("[2] (paper.pdf, page 5)"));
        assert!(!prompt.contains("[3]"));
        assert!(prompt.ends_with("Question: What?\nAnswer:"));
        assert!(g.count_tokens(&prompt) <= g.context_size() - 164);
    }

    #[test]
    fn follow_ups_carry_the_conversation() {
        let history = vec![
            ChatTurn::new(Role::User, "How is .Call used to call C code?"),
            ChatTurn::new(Role::Assistant, "With registered routines [1]."),
        ];
        let q = retrieval_query("And its arguments?", &history);
        assert_eq!(q, "How is .Call used to call C code? And its arguments?");
        let long = "What does the manual say about registering native routines?";
        assert_eq!(retrieval_query(long, &history), long);

        let hits = vec![hit("x", 1)];
        let g = Bytes::plain(4000);
        let (prompt, _) = build_prompt(
            &g,
            "And its arguments?",
            &history,
            &hits,
            100,
            &PromptShape::default(),
        );
        assert!(prompt.contains("Earlier in this conversation:\nQuestion: How is .Call"));
        assert!(prompt.contains("Answer: With registered routines [1].\n"));
        assert!(prompt.ends_with("Question: And its arguments?\nAnswer:"));

        // A conversation longer than a quarter of the budget keeps its newest turns.
        let long_history: Vec<ChatTurn> = (0..50)
            .map(|i| {
                ChatTurn::new(
                    Role::User,
                    format!("question number {i:02} {}", "w".repeat(40)),
                )
            })
            .collect();
        let (prompt, _) =
            build_prompt(&g, "Q?", &long_history, &hits, 100, &PromptShape::default());
        assert!(prompt.contains("question number 49"));
        assert!(!prompt.contains("question number 00"));
    }

    #[test]
    fn requests_about_the_documents_as_a_whole_are_not_turned_away() {
        for q in [
            "Write a very long essay about everything in these documents.",
            "Summarize this document",
            "Riassumi i documenti",
        ] {
            assert!(asks_about_the_documents(q), "{q}");
        }
        for q in [
            "Who won the 2018 FIFA World Cup?",
            "What is the dose of ibuprofen?",
        ] {
            assert!(!asks_about_the_documents(q), "{q}");
        }
    }

    #[test]
    fn citations_are_numbered_and_mapped() {
        let c = Citation::from_passage(2, &hit("text", 7));
        assert_eq!(c.n, 2);
        assert_eq!(c.at.page_start, 7);
        let sources = Sources::map(
            vec![c, Citation::from_passage(1, &hit("other", 2))],
            "As [2] says, and [7].",
        );
        assert!(sources.citations[0].cited);
        assert!(!sources.citations[1].cited);
        assert_eq!(sources.unknown, vec![7]);
    }
}

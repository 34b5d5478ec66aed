//! `docchat eval --answers`: the answers themselves, graded. Each labelled question
//! goes through the whole answer path (retrieval, prompt, generation, citations) of
//! every model given, the models taking turns question by question, and is scored:
//!
//! - **answered**: the answer contains one of the question's key facts (written from
//!   the document's text, compared case- and space-insensitively);
//! - **cited right**: a source the answer cites covers the labelled page: one the
//!   model cites with `[n]`, or one in which docchat found a sentence of the answer
//!   that no source cited by the model holds (`Claim::found_in`); **cited right by
//!   the model** counts the model's own markers only;
//! - **not in the documents**: for a question no document answers, the answer says
//!   so instead of making something up;
//! - **in its language**: the answer is written in the question's language (both
//!   told by their words; answers too short to tell are not counted);
//! - time to first token and generation speed.

use crate::answer::eval::{Latency, Question};
use crate::answer::rag::{AnswerEvent, AskOptions, Rag, Sources};
use anyhow::{Result, bail};
use docchat_core::GenerationStats;
use docchat_store::keywords::detect;
use serde::Serialize;
use tokio::sync::mpsc;

/// Words with which an answer says that the documents do not answer the question.
const NOT_IN_DOCUMENTS: &[&str] = &[
    "do not seem to contain",
    "scheinen das nicht zu enthalten",
    "ne semblent pas contenir",
    "no parecen contener",
    "non sembrano contenere",
    "non contengono",
    "non dicono",
    "non menzion",
    "nessuna informazione",
    "do not say",
    "does not say",
    "don't say",
    "do not contain",
    "does not contain",
    "do not mention",
    "does not mention",
    "no information",
    "not mentioned",
    "not provide",
];

/// One answer, graded.
#[derive(Debug, Clone, Serialize)]
pub struct Graded {
    /// The question.
    pub question: String,
    /// The answer.
    pub answer: String,
    /// Whether a document answers the question (it has key facts).
    pub answerable: bool,
    /// The answer contains a key fact.
    pub answered: bool,
    /// A source cited by the model or by docchat covers the labelled page.
    pub cited_right: bool,
    /// A source the model cites with `[n]` covers the labelled page.
    pub cited_right_by_model: bool,
    /// The answer says that the documents do not answer.
    pub says_not_in_documents: bool,
    /// The answer is in the question's language (`None`: one of them is too short
    /// to tell).
    pub same_language: Option<bool>,
    /// Nothing the answer states is in any of its sources (shown as possibly made
    /// up).
    pub unfounded: bool,
    /// Cited markers whose source does not hold the sentence's content words.
    pub unsupported: usize,
    /// Cited markers.
    pub cites: usize,
    /// Sentences that state something and cite nothing.
    pub uncited: usize,
    /// Sentences that state something or cite a source.
    pub claims: usize,
    /// The sources the answer was given, as the answer cites them.
    pub sources: Vec<GradedSource>,
    /// Milliseconds to the first token.
    pub ttft_ms: f64,
    /// Tokens in the prompt (0: answered without the model).
    pub prompt_tokens: u32,
    /// Generated tokens per second.
    pub tokens_per_s: f64,
}

/// One source of a graded answer.
#[derive(Debug, Clone, Serialize)]
pub struct GradedSource {
    /// Its number in the prompt.
    pub n: usize,
    /// The document and its pages.
    pub at: String,
    /// The answer cites it with `[n]`.
    pub cited: bool,
    /// docchat placed a sentence of the answer in it.
    pub found: bool,
    /// For a cited source: whether it holds what cites it.
    pub supported: Option<bool>,
    /// It covers the labelled page.
    pub right: bool,
}

/// The figures of one model.
#[derive(Debug, Clone, Serialize)]
pub struct ModelReport {
    /// The chat model's id.
    pub model: String,
    /// Questions a document answers.
    pub answerable: usize,
    /// Share of those whose answer contains a key fact.
    pub answered: f64,
    /// Share of those with a cited source (by the model or by docchat) on the
    /// labelled page.
    pub cited_right: f64,
    /// Share of those with a source the model cites on the labelled page.
    pub cited_right_by_model: f64,
    /// Questions no document answers.
    pub unanswerable: usize,
    /// Share of those answered with "not in the documents".
    pub not_in_documents: f64,
    /// Share of the answers (long enough to tell) in the question's language.
    pub same_language: f64,
    /// Share of the model's cited markers whose source does not support the
    /// sentence (`None`: the model cited nothing, which is not citing well).
    pub unsupported: Option<f64>,
    /// Share of the answers' claims that cite nothing.
    pub uncited: f64,
    /// Share of the questions a document answers whose answer is flagged as found
    /// in no source (a false alarm when the answer is right).
    pub unfounded_answerable: f64,
    /// Share of the questions nothing answers whose answer is flagged as found in
    /// no source.
    pub unfounded_unanswerable: f64,
    /// Time to the first token of the answers the model wrote.
    pub ttft: Latency,
    /// Median generation speed, tokens per second.
    pub tokens_per_s: f64,
    /// Median prompt length, in tokens.
    pub prompt_tokens: f64,
    /// Every answer.
    pub answers: Vec<Graded>,
}

/// Runs every question through every model in `models`, the models taking turns.
pub async fn run(
    models: &[Rag],
    questions: &[Question],
    opts: &AskOptions,
) -> Result<Vec<ModelReport>> {
    if models.is_empty() {
        bail!("no model to answer with");
    }
    let mut graded: Vec<Vec<Graded>> = vec![Vec::new(); models.len()];
    for (i, q) in questions.iter().enumerate() {
        for (m, rag) in models.iter().enumerate() {
            let (answer, sources, stats) = ask(rag, q, opts).await?;
            let g = grade(q, answer, &sources, &stats);
            tracing::info!(
                question = i + 1,
                model = rag.generator.id(),
                answered = g.answered,
                cited_right = g.cited_right,
                ttft_ms = g.ttft_ms,
                "graded"
            );
            graded[m].push(g);
        }
    }
    Ok(models
        .iter()
        .zip(graded)
        .map(|(rag, answers)| report(rag.generator.id(), answers))
        .collect())
}

/// The answer to `q`, its sources and figures.
async fn ask(
    rag: &Rag,
    q: &Question,
    opts: &AskOptions,
) -> Result<(String, Sources, GenerationStats)> {
    let (tx, mut rx) = mpsc::channel(64);
    let (rag, question, opts) = (rag.clone(), q.question.clone(), opts.clone());
    tokio::spawn(async move { rag.answer(question, Vec::new(), opts, tx).await });
    let (mut answer, mut sources, mut stats) = (String::new(), None, None);
    while let Some(ev) = rx.recv().await {
        match ev {
            AnswerEvent::Token(t) => answer.push_str(&t),
            AnswerEvent::Citations(s) => sources = Some(s),
            AnswerEvent::Done(s) => stats = Some(s),
            AnswerEvent::Reading(_) => {}
            AnswerEvent::Error(m) => bail!("{}: {m}", q.question),
        }
    }
    let Some(stats) = stats else {
        bail!("{}: the answer ended early", q.question);
    };
    let sources = sources.unwrap_or_else(|| Sources::map(Vec::new(), &answer));
    Ok((answer.trim().to_string(), sources, stats))
}

/// Lower case, runs of white space as one space.
fn normalized(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// Grades one answer.
pub fn grade(q: &Question, answer: String, sources: &Sources, stats: &GenerationStats) -> Graded {
    let text = normalized(&answer);
    let answerable = !q.facts.is_empty();
    let answered = q.facts.iter().any(|f| text.contains(&normalized(f)));
    let cited_right_by_model = sources
        .citations
        .iter()
        .any(|c| c.cited && q.is_page_of(&c.at));
    let cited_right = sources
        .citations
        .iter()
        .any(|c| (c.cited || c.found) && q.is_page_of(&c.at));
    let (unsupported, cites) = sources.unsupported();
    let says_not_in_documents = NOT_IN_DOCUMENTS.iter().any(|w| text.contains(w));
    let same_language = match (detect(&q.question), detect(&answer)) {
        (Some(a), Some(b)) => Some(a == b),
        _ => None,
    };
    Graded {
        question: q.question.clone(),
        answer,
        answerable,
        answered,
        cited_right,
        cited_right_by_model,
        says_not_in_documents,
        same_language,
        unsupported,
        cites,
        uncited: sources.claims.iter().filter(|c| c.uncited).count(),
        unfounded: sources.unfounded,
        sources: sources
            .citations
            .iter()
            .map(|c| GradedSource {
                n: c.n,
                at: format!("{} {}", c.at.path, c.at.pages()),
                cited: c.cited,
                found: c.found,
                supported: c.supported,
                right: q.is_page_of(&c.at),
            })
            .collect(),
        claims: sources.claims.len(),
        ttft_ms: stats.ttft_ms as f64,
        prompt_tokens: stats.prompt_tokens,
        tokens_per_s: stats.tokens_per_s,
    }
}

fn report(model: &str, answers: Vec<Graded>) -> ModelReport {
    let (yes, no): (Vec<&Graded>, Vec<&Graded>) = answers.iter().partition(|g| g.answerable);
    let share = |v: &[&Graded], f: fn(&Graded) -> bool| {
        if v.is_empty() {
            0.0
        } else {
            v.iter().filter(|g| f(g)).count() as f64 / v.len() as f64
        }
    };
    let ratio = |part: usize, whole: usize| {
        if whole == 0 {
            0.0
        } else {
            part as f64 / whole as f64
        }
    };
    let sum = |f: fn(&Graded) -> usize| answers.iter().map(f).sum::<usize>();
    let cites = sum(|g| g.cites);
    let unsupported = (cites > 0).then(|| ratio(sum(|g| g.unsupported), cites));
    let uncited = ratio(sum(|g| g.uncited), sum(|g| g.claims));
    // The model's speed: answers docchat gave without it ("nothing close") are
    // left out.
    let generated: Vec<&Graded> = answers.iter().filter(|g| g.prompt_tokens > 0).collect();
    let ttft: Vec<f64> = generated.iter().map(|g| g.ttft_ms).collect();
    let speeds: Vec<f64> = generated.iter().map(|g| g.tokens_per_s).collect();
    let prompts: Vec<f64> = generated
        .iter()
        .map(|g| f64::from(g.prompt_tokens))
        .collect();
    ModelReport {
        model: model.to_string(),
        answerable: yes.len(),
        answered: share(&yes, |g| g.answered),
        cited_right: share(&yes, |g| g.cited_right),
        cited_right_by_model: share(&yes, |g| g.cited_right_by_model),
        unanswerable: no.len(),
        not_in_documents: share(&no, |g| g.says_not_in_documents),
        same_language: {
            let told: Vec<&Graded> = answers
                .iter()
                .filter(|g| g.same_language.is_some())
                .collect();
            share(&told, |g| g.same_language == Some(true))
        },
        unsupported,
        uncited,
        unfounded_answerable: share(&yes, |g| g.unfounded),
        unfounded_unanswerable: share(&no, |g| g.unfounded),
        ttft: Latency::of(&ttft),
        tokens_per_s: Latency::of(&speeds).p50_ms,
        prompt_tokens: Latency::of(&prompts).p50_ms,
        answers,
    }
}

/// The reports as a text table.
pub fn table(reports: &[ModelReport]) -> String {
    let mut out = String::from(
        "model                              answerable  answered  cited right  by model  unsupported  uncited  unfounded  unanswerable  not in docs  unfounded  same lang  TTFT p50 ms  TTFT p95 ms  tok/s  prompt p50\n",
    );
    for r in reports {
        let unsupported = r
            .unsupported
            .map_or_else(|| "n/a".to_string(), |u| format!("{u:.2}"));
        out.push_str(&format!(
            "{:<34} {:>10}  {:>8.2}  {:>11.2}  {:>8.2}  {:>11}  {:>7.2}  {:>9.2}  {:>12}  {:>11.2}  {:>9.2}  {:>9.2}  {:>11.0}  {:>11.0}  {:>5.1}  {:>10.0}\n",
            r.model,
            r.answerable,
            r.answered,
            r.cited_right,
            r.cited_right_by_model,
            unsupported,
            r.uncited,
            r.unfounded_answerable,
            r.unanswerable,
            r.not_in_documents,
            r.unfounded_unanswerable,
            r.same_language,
            r.ttft.p50_ms,
            r.ttft.p95_ms,
            r.tokens_per_s,
            r.prompt_tokens,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::answer::rag::Citation;
    use docchat_core::Location;

    fn question(facts: &[&str]) -> Question {
        serde_json::from_value(serde_json::json!({
            "question": "How?", "file": "manuals/R-exts.pdf", "page": 12, "facts": facts,
        }))
        .unwrap()
    }

    /// The sources of `answer` when source 1 is `snippet` on `page`.
    fn sources(page: u32, snippet: &str, answer: &str) -> Sources {
        let c = Citation {
            n: 1,
            at: Location {
                collection: "manuals".into(),
                path: "R-exts.pdf".into(),
                page_start: page,
                page_end: page,
                ..Location::default()
            },
            snippet: snippet.into(),
            score: 1.0,
            cited: false,
            supported: None,
            found: false,
            ocr: false,
        };
        Sources::map(vec![c], answer)
    }

    #[test]
    fn answers_are_graded_by_fact_page_support_and_refusal() {
        let stats = GenerationStats::default();
        let q = question(&["Authors@R", "person()"]);
        let page = "The Authors@R field lists the authors.";
        let answer = "Use the  authors@r field [1].";
        let g = grade(&q, answer.into(), &sources(12, page, answer), &stats);
        assert!(g.answerable && g.answered && g.cited_right);
        assert_eq!((g.unsupported, g.cites, g.uncited), (0, 1, 0));
        // The right page given but not cited, or cited on another page: not right.
        let answer = "Use the Maintainer field.";
        let g = grade(&q, answer.into(), &sources(12, page, answer), &stats);
        assert!(!g.answered && !g.cited_right);
        assert_eq!((g.uncited, g.claims), (1, 1));
        let answer = "See the Authors@R field [1].";
        let g = grade(&q, answer.into(), &sources(40, page, answer), &stats);
        assert!(!g.cited_right);
        // A claim its source does not hold.
        let answer = "Write 42 authors in Authors@R [1].";
        let unsupported = grade(&q, answer.into(), &sources(12, page, answer), &stats);
        assert_eq!((unsupported.unsupported, unsupported.cites), (1, 1));
        // A question no document answers: saying so is the right answer.
        let none = question(&[]);
        let answer = "The documents do not say.";
        let g = grade(&none, answer.into(), &sources(1, "", answer), &stats);
        assert!(!g.answerable && g.says_not_in_documents);
        let r = report("m", vec![g, unsupported]);
        assert_eq!((r.answerable, r.unanswerable), (1, 1));
        assert_eq!(r.not_in_documents, 1.0);
        assert_eq!(r.unsupported, Some(1.0));
        // A model that cites nothing has no unsupported rate, not a perfect one.
        let answer = "Use the Maintainer field.";
        let g = grade(&q, answer.into(), &sources(12, page, answer), &stats);
        assert_eq!(report("m", vec![g]).unsupported, None);
    }

    #[test]
    fn a_source_docchat_found_counts_as_cited_but_not_as_the_models() {
        let stats = GenerationStats::default();
        let q = question(&["Authors@R"]);
        let page = "The Authors@R field lists each author with person().";
        let answer = "Name them in the Authors@R field with person().";
        let g = grade(&q, answer.into(), &sources(12, page, answer), &stats);
        assert!(g.cited_right && !g.cited_right_by_model, "{g:?}");
        assert_eq!(g.uncited, 1);
        // On another page, docchat's citation is not right either.
        let g = grade(&q, answer.into(), &sources(40, page, answer), &stats);
        assert!(!g.cited_right);
    }
}

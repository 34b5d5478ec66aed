//! `docchat eval --answers`: the answers themselves, graded. Each labelled question
//! goes through the whole answer path (retrieval, prompt, generation, citations) of
//! every model given, the models taking turns question by question, and is scored:
//!
//! - **answered**: the answer contains one of the question's key facts (written from
//!   the document's text, compared case- and space-insensitively);
//! - **cited right**: a source the answer cites with `[n]` covers the labelled page;
//! - **not in the documents**: for a question no document answers, the answer says
//!   so instead of making something up;
//! - time to first token and generation speed.

use crate::answer::eval::{Latency, Question};
use crate::answer::rag::{AnswerEvent, AskOptions, Citation, Rag};
use anyhow::{Result, bail};
use docchat_core::GenerationStats;
use serde::Serialize;
use tokio::sync::mpsc;

/// Words with which an answer says that the documents do not answer the question.
const NOT_IN_DOCUMENTS: [&str; 10] = [
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
    /// A cited source covers the labelled page.
    pub cited_right: bool,
    /// The answer says that the documents do not answer.
    pub says_not_in_documents: bool,
    /// Milliseconds to the first token.
    pub ttft_ms: f64,
    /// Generated tokens per second.
    pub tokens_per_s: f64,
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
    /// Share of those with a cited source on the labelled page.
    pub cited_right: f64,
    /// Questions no document answers.
    pub unanswerable: usize,
    /// Share of those answered with "not in the documents".
    pub not_in_documents: f64,
    /// Time to the first token.
    pub ttft: Latency,
    /// Median generation speed, tokens per second.
    pub tokens_per_s: f64,
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
            let (answer, citations, stats) = ask(rag, q, opts).await?;
            let g = grade(q, answer, &citations, &stats);
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
) -> Result<(String, Vec<Citation>, GenerationStats)> {
    let (tx, mut rx) = mpsc::channel(64);
    let (rag, question, opts) = (rag.clone(), q.question.clone(), opts.clone());
    tokio::spawn(async move { rag.answer(question, Vec::new(), opts, tx).await });
    let (mut answer, mut citations, mut stats) = (String::new(), Vec::new(), None);
    while let Some(ev) = rx.recv().await {
        match ev {
            AnswerEvent::Token(t) => answer.push_str(&t),
            AnswerEvent::Citations(s) => citations = s.citations,
            AnswerEvent::Done(s) => stats = Some(s),
            AnswerEvent::Error(m) => bail!("{}: {m}", q.question),
        }
    }
    let Some(stats) = stats else {
        bail!("{}: the answer ended early", q.question);
    };
    Ok((answer.trim().to_string(), citations, stats))
}

/// Lower case, runs of white space as one space.
fn normalized(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// Grades one answer.
pub fn grade(
    q: &Question,
    answer: String,
    citations: &[Citation],
    stats: &GenerationStats,
) -> Graded {
    let text = normalized(&answer);
    let answerable = !q.facts.is_empty();
    let answered = q.facts.iter().any(|f| text.contains(&normalized(f)));
    let cited_right = citations.iter().any(|c| c.cited && q.is_page_of(&c.at));
    let says_not_in_documents = NOT_IN_DOCUMENTS.iter().any(|w| text.contains(w));
    Graded {
        question: q.question.clone(),
        answer,
        answerable,
        answered,
        cited_right,
        says_not_in_documents,
        ttft_ms: stats.ttft_ms as f64,
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
    let ttft: Vec<f64> = answers.iter().map(|g| g.ttft_ms).collect();
    let speeds: Vec<f64> = answers.iter().map(|g| g.tokens_per_s).collect();
    ModelReport {
        model: model.to_string(),
        answerable: yes.len(),
        answered: share(&yes, |g| g.answered),
        cited_right: share(&yes, |g| g.cited_right),
        unanswerable: no.len(),
        not_in_documents: share(&no, |g| g.says_not_in_documents),
        ttft: Latency::of(&ttft),
        tokens_per_s: Latency::of(&speeds).p50_ms,
        answers,
    }
}

/// The reports as a text table.
pub fn table(reports: &[ModelReport]) -> String {
    let mut out = String::from(
        "model                              answerable  answered  cited right  unanswerable  not in docs  TTFT p50 ms  TTFT p95 ms  tok/s\n",
    );
    for r in reports {
        out.push_str(&format!(
            "{:<34} {:>10}  {:>8.2}  {:>11.2}  {:>12}  {:>11.2}  {:>11.0}  {:>11.0}  {:>5.1}\n",
            r.model,
            r.answerable,
            r.answered,
            r.cited_right,
            r.unanswerable,
            r.not_in_documents,
            r.ttft.p50_ms,
            r.ttft.p95_ms,
            r.tokens_per_s,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use docchat_core::Location;

    fn question(facts: &[&str]) -> Question {
        serde_json::from_value(serde_json::json!({
            "question": "How?", "file": "manuals/R-exts.pdf", "page": 12, "facts": facts,
        }))
        .unwrap()
    }

    fn citation(page: u32, cited: bool) -> Citation {
        Citation {
            n: 1,
            at: Location {
                collection: "manuals".into(),
                path: "R-exts.pdf".into(),
                page_start: page,
                page_end: page,
                ..Location::default()
            },
            snippet: String::new(),
            score: 1.0,
            cited,
        }
    }

    #[test]
    fn answers_are_graded_by_fact_page_and_refusal() {
        let stats = GenerationStats::default();
        let q = question(&["Authors@R", "person()"]);
        let g = grade(
            &q,
            "Use the  authors@r field [1].".into(),
            &[citation(12, true)],
            &stats,
        );
        assert!(g.answerable && g.answered && g.cited_right);
        // The right page given but not cited, or cited on another page: not right.
        let g = grade(&q, "Use a field.".into(), &[citation(12, false)], &stats);
        assert!(!g.answered && !g.cited_right);
        let g = grade(&q, "See [1].".into(), &[citation(40, true)], &stats);
        assert!(!g.cited_right);
        // A question no document answers: saying so is the right answer.
        let none = question(&[]);
        let g = grade(&none, "The documents do not say.".into(), &[], &stats);
        assert!(!g.answerable && g.says_not_in_documents);
        let r = report("m", vec![g]);
        assert_eq!((r.answerable, r.unanswerable), (0, 1));
        assert_eq!(r.not_in_documents, 1.0);
    }
}

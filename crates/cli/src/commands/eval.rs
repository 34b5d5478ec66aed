//! `docchat eval`: recall@k, MRR and latency of each search mode over labelled
//! questions; with `--answers`, the answers themselves, graded, model against model.

use anyhow::{Context, Result, bail};
use clap::Args;
use docchat_service::Settings;
use docchat_service::answer::eval::{self, Question};
use docchat_service::answer::grade;
use docchat_service::answer::rag::Rag;
use docchat_service::answer::retrieve::{Retriever, SearchMode};
use docchat_service::models;
use docchat_store::SearchFilter;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Questions, one JSON object per line: {"question", "file", "page"?, "pages"?,
    /// "facts"?} (`"file": ""` and no facts: no document answers it)
    questions: PathBuf,
    /// Grade the answers instead of the retrieval: answered (a key fact in the
    /// answer), cited right, "not in the documents" when nothing answers,
    /// time to first token
    #[arg(long)]
    answers: bool,
    /// With --answers: the chat models to compare, taking turns question by question
    /// [default: the configured chat model]
    #[arg(long = "model", requires = "answers")]
    models: Vec<PathBuf>,
    /// With --answers: most tokens per answer
    #[arg(long, default_value_t = 160, requires = "answers")]
    max_tokens: u32,
    /// With --answers: only the first N questions
    #[arg(long, requires = "answers")]
    limit: Option<usize>,
    /// Nearest-chunk similarity under which a question gets "nothing close"
    /// instead of an answer [default: retrieval.min_similarity of docchat.toml]
    #[arg(long)]
    min_similarity: Option<f32>,
    /// With --answers: passages an instruction-tuned model is given
    /// [default: retrieval.chat_passages]
    #[arg(long, requires = "answers")]
    passages: Option<usize>,
    /// With --answers: longest passage in bytes an instruction-tuned model is
    /// given, 0 for whole passages [default: retrieval.passage_bytes]
    #[arg(long, requires = "answers")]
    passage_bytes: Option<usize>,
    /// With --answers: a file holding the instruction an instruction-tuned model is
    /// given before the passages [default: instruction of docchat.toml, or
    /// docchat's own]
    #[arg(long, requires = "answers")]
    instruction: Option<PathBuf>,
    /// With --answers: sampling temperature [default: the server's]
    #[arg(long, requires = "answers")]
    temperature: Option<f32>,
    /// Modes to compare [default: vector, keyword and hybrid]
    #[arg(long = "mode")]
    modes: Vec<SearchMode>,
    /// Only search these collections
    #[arg(long = "collection")]
    collections: Vec<String>,
    /// List the questions each mode missed
    #[arg(long)]
    verbose: bool,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

pub async fn eval(s: Settings, a: EvalArgs) -> Result<ExitCode> {
    let questions = eval::read_questions(&a.questions)?;
    let retriever = s.retriever().await?;
    if retriever.store.count_chunks(None).await? == 0 {
        bail!("the index is empty: index the documents first (docchat index)");
    }
    if a.answers {
        return answers(&s, a, retriever, questions).await;
    }
    let filter = SearchFilter::collections(a.collections.clone());
    let min_similarity = a.min_similarity.unwrap_or(s.ask_options().min_similarity);
    let vectors = eval::embed_all(&retriever, &questions).await?;
    let nearness =
        eval::nearness(&retriever, &questions, &vectors, &filter, min_similarity).await?;
    // Retrieval is scored on the questions a document answers.
    let (questions, vectors): (Vec<Question>, Vec<Vec<f32>>) = questions
        .into_iter()
        .zip(vectors)
        .filter(|(q, _)| q.has_file())
        .unzip();
    let modes = if a.modes.is_empty() {
        SearchMode::ALL.to_vec()
    } else {
        a.modes
    };
    let reports = eval::run(
        &retriever,
        &questions,
        &vectors,
        &modes,
        s.file.retrieval.fusion(),
        &filter,
    )
    .await?;
    if a.json {
        let out = serde_json::json!({
            "questions": questions.len(),
            "chunks": retriever.store.count_chunks(None).await?,
            "modes": reports,
            "nearness": nearness,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!(
            "{} questions, {} chunks; latency excludes the query embedding\n",
            questions.len(),
            retriever.store.count_chunks(None).await?
        );
        print!("{}", eval::table(&reports));
        print!("\n{}", nearness.summary());
        if a.verbose {
            for r in &reports {
                for q in &r.missed {
                    println!("  {} missed: {q}", r.mode.as_str());
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `docchat eval --answers`.
async fn answers(
    s: &Settings,
    a: EvalArgs,
    retriever: Retriever,
    mut questions: Vec<Question>,
) -> Result<ExitCode> {
    if let Some(n) = a.limit {
        questions.truncate(n.max(1));
    }
    let paths = if a.models.is_empty() {
        vec![s.models.chat.clone()]
    } else {
        a.models.clone()
    };
    let mut models = Vec::new();
    for path in paths {
        let opts = s.engine.clone();
        let generator =
            tokio::task::spawn_blocking(move || models::load_generator(&path, &opts)).await??;
        models.push(Rag {
            retriever: retriever.clone(),
            generator,
        });
    }
    let mut opts = s.ask_options();
    opts.filter = SearchFilter::collections(a.collections.clone());
    opts.params.max_tokens = a.max_tokens.max(1);
    if let Some(m) = a.min_similarity {
        opts.min_similarity = m;
    }
    if let Some(n) = a.passages {
        opts.chat_passages = n.max(1);
    }
    if let Some(b) = a.passage_bytes {
        opts.passage_bytes = b;
    }
    if let Some(path) = &a.instruction {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the instruction {}", path.display()))?;
        opts.instruction = Some(text.trim().into());
    }
    if let Some(t) = a.temperature {
        opts.params.temperature = t.max(0.0);
    }
    let reports = grade::run(&models, &questions, &opts).await?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
    } else {
        println!(
            "{} questions, at most {} tokens per answer\n",
            questions.len(),
            opts.params.max_tokens
        );
        print!("{}", grade::table(&reports));
        if a.verbose {
            for r in &reports {
                for g in &r.answers {
                    println!(
                        "\n[{}] {}\n  answered {} cited right {} (by the model {}) not-in-docs {} unfounded {}\n  {}",
                        r.model,
                        g.question,
                        g.answered,
                        g.cited_right,
                        g.cited_right_by_model,
                        g.says_not_in_documents,
                        g.unfounded,
                        g.answer.replace('\n', " ")
                    );
                    for src in &g.sources {
                        let how = match (src.cited, src.supported, src.found) {
                            (true, Some(false), _) => "cited, unsupported",
                            (true, _, _) => "cited",
                            (false, _, true) => "placed by docchat",
                            _ => "not cited",
                        };
                        let right = if src.right { ", the labelled page" } else { "" };
                        println!("  [{}] {} ({how}{right})", src.n, src.at);
                    }
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

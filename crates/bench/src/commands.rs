//! The benchmark commands: each parses its options, runs its harness, prints a
//! table (or JSON with `--json`).

use crate::harness::{baseline_tool, docchat_exe};
use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use docchat_service::Settings;
use docchat_service::config::roots_of;
use docchat_service::index::isolate::ExtractLimits;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Retrieval latency at 10k and 100k chunks (synthetic text and vectors),
    /// for each search mode, exact and with the vector index.
    Search(BenchSearchArgs),
    /// Index folders into a fresh index and report pages/s, chunks/s and the share
    /// of wall time spent embedding.
    Ingest(BenchIngestArgs),
    /// A fresh server indexes DOCS while clients ask, search, upload and walk away
    /// from answers: latency, 503s, errors, peak memory, and how soon a slot a
    /// client left serves the next question.
    Load(BenchLoadArgs),
    /// Prompt processing and generation tokens/s of docchat's engine against
    /// llama.cpp's llama-bench, same model, threads and batch sizes.
    Engine(BenchEngineArgs),
    /// The same streamed chat request through docchat's OpenAI endpoint and through
    /// llama.cpp's llama-server, same model and settings: generation tokens/s and
    /// time to the first token.
    Serve(BenchServeArgs),
    /// Embedding throughput of docchat's embedder against llama.cpp's
    /// llama-embedding on the chunks docchat makes of PATHS.
    Embed(BenchEmbedArgs),
    /// Re-indexing after a one-paragraph edit of a long PDF, against the Python
    /// peer re-ingesting the file.
    Reindex(BenchReindexArgs),
    /// A big document indexed by a fresh server while questions are asked: the
    /// indexing time and the time to first token, idle and during indexing.
    Busy(BenchBusyArgs),
    /// Time to first token of RAG answers through /api/chat against llama-bench's
    /// prompt processing of prompts of the same length.
    Ttft(BenchTtftArgs),
    /// Cold start, and a restart over an unchanged folder of many files.
    Start(BenchStartArgs),
    /// What OCR adds on a folder of PDFs and images: files with no text layer that
    /// become readable, and the time per page.
    Ocr(BenchOcrArgs),
    /// The same folders indexed into a local folder and into a shared store
    /// (s3://…), then the same questions searched from each as a reader: indexing
    /// throughput and retrieval latency p50/p95 side by side.
    Store(BenchStoreArgs),
}

#[derive(Debug, Args)]
pub struct BenchStoreArgs {
    /// Files or folders to index
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// The shared store to compare with the local folder (s3://bucket/prefix; a
    /// fresh prefix under it is used)
    #[arg(long)]
    store: String,
    /// JSONL file of questions (`{"question": …}` per line)
    #[arg(long, default_value = "tests/eval/qa.jsonl")]
    questions: PathBuf,
    /// Most questions read from it
    #[arg(long, default_value_t = 40)]
    most: usize,
    /// Times each question is asked per store and mode
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct BenchOcrArgs {
    /// The folder (its PDFs and images, not its subfolders)
    folder: PathBuf,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct BenchStartArgs {
    /// Small files in the watched folder
    #[arg(long, default_value_t = 1000)]
    files: usize,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct BenchTtftArgs {
    /// Documents indexed before the questions (a file or a folder)
    docs: PathBuf,
    /// Questions asked
    #[arg(long, default_value_t = 8)]
    questions: usize,
    /// llama.cpp's llama-bench [default: the one scripts/baselines.sh builds]
    #[arg(long)]
    llama_bench: Option<PathBuf>,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct BenchBusyArgs {
    /// The big document (a file or a folder)
    doc: PathBuf,
    /// Documents indexed first, so that questions have passages from the start
    #[arg(long)]
    seed: Option<PathBuf>,
    /// Questions asked idle before, during indexing, and idle after
    #[arg(long, default_value_t = 5)]
    questions: usize,
    /// Seconds into the indexing when the questions are asked
    #[arg(long, default_value_t = 60)]
    ask_after: u64,
    /// Tokens per answer
    #[arg(long, default_value_t = 16)]
    max_tokens: u32,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct BenchReindexArgs {
    /// A long PDF (it is copied; the original is not touched)
    pdf: PathBuf,
    /// Measure docchat alone
    #[arg(long)]
    docchat_only: bool,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct BenchEmbedArgs {
    /// Documents whose chunks are embedded
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Chunks to embed per run (the first ones)
    #[arg(long, default_value_t = 256)]
    chunks: usize,
    /// Measured runs per engine (medians are reported)
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// llama.cpp's llama-embedding [default: the one scripts/baselines.sh builds, if any]
    #[arg(long)]
    llama_embedding: Option<PathBuf>,
    /// Measure docchat alone
    #[arg(long, conflicts_with = "llama_embedding")]
    docchat_only: bool,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct BenchServeArgs {
    /// Tokens per answer
    #[arg(long, default_value_t = 128)]
    max_tokens: u32,
    /// Requests per server (medians are reported)
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// llama.cpp's llama-server [default: the one scripts/baselines.sh builds]
    #[arg(long)]
    llama_server: Option<PathBuf>,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct BenchEngineArgs {
    /// Prompt tokens
    #[arg(long, default_value_t = 512)]
    prompt: usize,
    /// Generated tokens
    #[arg(long, default_value_t = 128)]
    generate: u32,
    /// Measured runs of each engine (medians are reported)
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// llama.cpp's llama-bench [default: the one scripts/baselines.sh builds, if any]
    #[arg(long)]
    llama_bench: Option<PathBuf>,
    /// Measure docchat alone
    #[arg(long, conflicts_with = "llama_bench")]
    docchat_only: bool,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct BenchLoadArgs {
    /// Documents (a file or a folder) to index during the load
    docs: PathBuf,
    /// Seconds of mixed load
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Clients asking questions
    #[arg(long, default_value_t = 4)]
    chat_clients: usize,
    /// Clients searching
    #[arg(long, default_value_t = 2)]
    search_clients: usize,
    /// Clients uploading files
    #[arg(long, default_value_t = 1)]
    upload_clients: usize,
    /// The server's --max-queue
    #[arg(long, default_value_t = 2)]
    max_queue: usize,
    /// Tokens per answer
    #[arg(long, default_value_t = 48)]
    max_tokens: u32,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct BenchIngestArgs {
    /// Files or folders to index
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Also run with extraction and embedding one after the other, for comparison
    #[arg(long)]
    compare_sequential: bool,
    /// Also run the Python peer pipeline (pypdf + llama-cpp-python + lancedb, set
    /// up by scripts/baselines.sh) on the same PDFs, taking turns
    #[arg(long)]
    peer: bool,
    /// Runs of each (medians are compared)
    #[arg(long, default_value_t = 1)]
    runs: usize,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct BenchSearchArgs {
    /// Table sizes to measure, ascending [default: 10000 and 100000]
    #[arg(long = "chunks", value_delimiter = ',')]
    sizes: Vec<usize>,
    /// Queries per measurement
    #[arg(long, default_value_t = 200)]
    queries: usize,
    /// Empty folder for the synthetic table [default: a temporary folder]
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

pub async fn run(s: &Settings, c: BenchCommand) -> Result<ExitCode> {
    match c {
        BenchCommand::Embed(a) => embed(s, a).await,
        BenchCommand::Serve(a) => serve(s, a).await,
        BenchCommand::Engine(a) => engine(s, a).await,
        BenchCommand::Load(a) => load(s, a).await,
        BenchCommand::Ingest(a) => ingest(s, a).await,
        BenchCommand::Start(a) => start(s, a).await,
        BenchCommand::Ttft(a) => ttft(s, a).await,
        BenchCommand::Busy(a) => busy(s, a).await,
        BenchCommand::Reindex(a) => reindex(s, a).await,
        BenchCommand::Search(a) => search(s, a).await,
        BenchCommand::Ocr(a) => ocr(s, a).await,
        BenchCommand::Store(a) => store(s, a).await,
    }
}

async fn store(s: &Settings, a: BenchStoreArgs) -> Result<ExitCode> {
    let roots = roots_of(&a.paths, None)?;
    let remote =
        docchat_store::Location::parse(&a.store)?.with_options(s.file.store_options.clone());
    let questions = crate::store::questions(&a.questions, a.most)?;
    let embedder = s.embedder().await?;
    let figures =
        crate::store::compare(&remote, embedder, roots, limits(s)?, &questions, a.rounds).await?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&figures)?);
    } else {
        println!(
            "{} questions x {} rounds per store and mode; retrieval as a reader, query embedding excluded\n",
            questions.len(),
            a.rounds
        );
        print!("{}", crate::store::table(&figures));
    }
    Ok(ExitCode::SUCCESS)
}

async fn ocr(s: &Settings, a: BenchOcrArgs) -> Result<ExitCode> {
    let r = crate::ocr::run(&a.folder, &limits(s)?).await?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        print!("{}", crate::ocr::table(&r));
    }
    Ok(ExitCode::SUCCESS)
}

async fn embed(s: &Settings, a: BenchEmbedArgs) -> Result<ExitCode> {
    let embedder = s.embedder().await?;
    let mut texts = Vec::new();
    for root in roots_of(&a.paths, None)? {
        let mut files = Vec::new();
        if root.path.is_dir() {
            docchat_service::index::walk_files(&root.path, &mut files);
        } else {
            files.push(root.path.clone());
        }
        for f in files {
            let Ok(extracted) = docchat_ingest::extract_file(&f) else {
                continue;
            };
            let drafts = docchat_ingest::chunk_pages(
                &extracted.pages,
                embedder.as_ref(),
                &docchat_ingest::ChunkOptions::default(),
            );
            texts.extend(drafts.into_iter().map(|d| d.text));
        }
    }
    texts.truncate(a.chunks);
    if texts.is_empty() {
        bail!("no text to embed in the given paths");
    }
    let tool = if a.docchat_only {
        None
    } else {
        a.llama_embedding
            .or_else(|| baseline_tool("llama-embedding"))
    };
    let settings = crate::embed::EmbedSettings {
        threads: s.engine.thread_count(),
        batch: s.engine.batch_size,
        ubatch: s.engine.ubatch_size.clamp(1, s.engine.batch_size.max(1)),
        runs: a.runs.max(1),
    };
    let model = s.models.embedding.clone();
    let n = texts.len();
    let report = tokio::task::spawn_blocking(move || {
        crate::embed::run(
            embedder.as_ref(),
            tool.as_deref(),
            &model,
            &texts,
            &settings,
        )
    })
    .await??;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{}: {n} chunks per run\n", s.models.embedding.display());
        print!("{}", crate::engine::table(&report.figures));
        for r in &report.baseline_runs {
            println!(
                "llama-embedding: its batches of these chunks took {:.2} s by its log; its own prompt-eval timer says {:.2} s for all its batches",
                r.wall_s, r.timer_s
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn serve(s: &Settings, a: BenchServeArgs) -> Result<ExitCode> {
    let tool = a
        .llama_server
        .or_else(|| baseline_tool("llama-server"))
        .context("no llama-server: run scripts/baselines.sh or pass --llama-server")?;
    let settings = crate::serve::ServeSettings {
        model: s.models.chat.clone(),
        embedding: s.models.embedding.clone(),
        threads: s.engine.thread_count(),
        ctx: s.engine.ctx_size,
        batch: s.engine.batch_size,
        ubatch: s.engine.ubatch_size.clamp(1, s.engine.batch_size.max(1)),
        max_tokens: a.max_tokens,
        runs: a.runs.max(1),
    };
    let figures =
        tokio::task::spawn_blocking(move || crate::serve::run(&tool, &settings)).await??;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&figures)?);
    } else {
        println!(
            "{}: streamed chat requests, {} tokens each\n",
            s.models.chat.display(),
            a.max_tokens
        );
        print!("{}", crate::engine::table(&figures));
    }
    Ok(ExitCode::SUCCESS)
}

async fn engine(s: &Settings, a: BenchEngineArgs) -> Result<ExitCode> {
    let settings = crate::engine::SpeedSettings {
        threads: s.engine.thread_count(),
        batch: s.engine.batch_size,
        ubatch: s.engine.ubatch_size.clamp(1, s.engine.batch_size.max(1)),
        n_prompt: a.prompt,
        n_gen: a.generate,
        runs: a.runs.max(1),
    };
    let tool = if a.docchat_only {
        None
    } else {
        a.llama_bench.or_else(|| baseline_tool("llama-bench"))
    };
    // The engines take turns, one run each, so that a slower minute of a
    // shared machine weighs on both alike.
    let generator = s.generator().await?;
    let (n_prompt, n_gen) = (a.prompt, a.generate);
    let one = crate::engine::SpeedSettings {
        runs: 1,
        ..settings.clone()
    };
    let mut figures = Vec::new();
    if tool.is_none() {
        eprintln!("no llama-bench (run scripts/baselines.sh): docchat alone");
    }
    for run in 1..=settings.runs {
        eprintln!("run {run}/{}", settings.runs);
        let g = Arc::clone(&generator);
        let ours = tokio::task::spawn_blocking(move || {
            crate::engine::docchat_speed(g.as_ref(), n_prompt, n_gen, 1)
        })
        .await??;
        crate::engine::merge(&mut figures, ours);
        if let Some(tool) = &tool {
            let theirs = crate::engine::llama_bench(tool, &s.models.chat, &one)?;
            crate::engine::merge(&mut figures, theirs);
        }
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&figures)?);
    } else {
        println!(
            "{} with {} threads, batch {}/{}\n",
            s.models.chat.display(),
            settings.threads,
            settings.batch,
            settings.ubatch
        );
        print!("{}", crate::engine::table(&figures));
    }
    Ok(ExitCode::SUCCESS)
}

async fn load(s: &Settings, a: BenchLoadArgs) -> Result<ExitCode> {
    let opts = crate::load::LoadOptions {
        docs: a.docs,
        duration: std::time::Duration::from_secs(a.seconds),
        chat_clients: a.chat_clients,
        search_clients: a.search_clients,
        upload_clients: a.upload_clients,
        max_queue: a.max_queue,
        max_tokens: a.max_tokens,
        models: s.models.clone(),
    };
    let report = tokio::task::spawn_blocking(move || crate::load::run(&opts)).await??;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", crate::load::table(&report));
    }
    let failed = !report.alive || report.kinds.iter().any(|k| k.errors > 0);
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

async fn ingest(s: &Settings, a: BenchIngestArgs) -> Result<ExitCode> {
    let roots = roots_of(&a.paths, None)?;
    let embedder = s.embedder().await?;
    let python = if a.peer {
        Some(
            crate::peer::peer_python()
                .context("no Python peer: run scripts/baselines.sh to set it up")?,
        )
    } else {
        None
    };
    let mut figures = Vec::new();
    let modes: &[bool] = if a.compare_sequential {
        &[false, true]
    } else {
        &[true]
    };
    for _ in 0..a.runs.max(1) {
        for &pipelined in modes {
            let tmp = tempfile::Builder::new()
                .prefix("docchat-bench-")
                .tempdir()?;
            let f = crate::ingest::ingest(
                tmp.path(),
                Arc::clone(&embedder),
                roots.clone(),
                limits(s)?,
                pipelined,
            )
            .await?;
            eprintln!("{} run: {:.1} s", f.mode, f.wall_s);
            figures.push(f);
        }
        if let Some(python) = &python {
            let tmp = tempfile::Builder::new()
                .prefix("docchat-bench-peer-")
                .tempdir()?;
            let (python, model, paths) =
                (python.clone(), s.models.embedding.clone(), a.paths.clone());
            let threads = s.engine.thread_count();
            let peer = tokio::task::spawn_blocking(move || {
                crate::peer::run_peer(&python, &model, tmp.path(), threads, "ingest", &paths)
            })
            .await??;
            let f = crate::ingest::IngestFigure::of_peer(&peer);
            eprintln!("{} run: {:.1} s", f.mode, f.wall_s);
            figures.push(f);
        }
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&figures)?);
    } else {
        print!("{}", crate::ingest::ingest_table(&figures));
        print!("{}", crate::ingest::ingest_ratios(&figures));
    }
    Ok(ExitCode::SUCCESS)
}

async fn start(s: &Settings, a: BenchStartArgs) -> Result<ExitCode> {
    let models = s.models.clone();
    let r = tokio::task::spawn_blocking(move || crate::start::run(a.files, &models)).await??;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        print!("{}", crate::start::table(&r));
    }
    Ok(if r.restart_embedded == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn ttft(s: &Settings, a: BenchTtftArgs) -> Result<ExitCode> {
    let tool = a
        .llama_bench
        .or_else(|| baseline_tool("llama-bench"))
        .context("no llama-bench: run scripts/baselines.sh, or pass --llama-bench")?;
    let opts = crate::ttft::TtftOptions {
        docs: a.docs,
        questions: a.questions.max(1),
        models: s.models.clone(),
        llama_bench: tool.clone(),
        speed: crate::engine::SpeedSettings {
            threads: s.engine.thread_count(),
            batch: s.engine.batch_size,
            ubatch: s.engine.ubatch_size.clamp(1, s.engine.batch_size.max(1)),
            n_prompt: 0,
            n_gen: 0,
            runs: 1,
        },
    };
    let rows = tokio::task::spawn_blocking(move || crate::ttft::run(&opts)).await??;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        print!("{}", crate::ttft::table(&rows, &tool));
    }
    Ok(ExitCode::SUCCESS)
}

async fn busy(s: &Settings, a: BenchBusyArgs) -> Result<ExitCode> {
    let opts = crate::busy::BusyOptions {
        doc: a.doc,
        seed: a.seed,
        questions: a.questions.max(1),
        ask_after: std::time::Duration::from_secs(a.ask_after),
        max_tokens: a.max_tokens,
        models: s.models.clone(),
    };
    let r = tokio::task::spawn_blocking(move || crate::busy::run(&opts)).await??;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        print!("{}", crate::busy::table(&r));
    }
    Ok(ExitCode::SUCCESS)
}

async fn reindex(s: &Settings, a: BenchReindexArgs) -> Result<ExitCode> {
    let embedder = s.embedder().await?;
    let python = if a.docchat_only {
        None
    } else {
        Some(crate::peer::peer_python().context(
            "no Python peer: run scripts/baselines.sh to set it up (or pass --docchat-only)",
        )?)
    };
    let (edit, figures) = crate::peer::reindex(
        embedder,
        &s.models.embedding,
        s.engine.thread_count(),
        python.as_deref(),
        &a.pdf,
        limits(s)?,
    )
    .await?;
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({"edit": edit, "runs": figures}))?
        );
    } else {
        print!("{}", crate::peer::reindex_table(&edit, &figures));
    }
    Ok(ExitCode::SUCCESS)
}

async fn search(s: &Settings, a: BenchSearchArgs) -> Result<ExitCode> {
    let sizes = if a.sizes.is_empty() {
        vec![10_000, 100_000]
    } else {
        a.sizes
    };
    let retriever = s.retriever().await?;
    let tmp;
    let dir = match a.dir {
        Some(d) => d,
        None => {
            tmp = tempfile::Builder::new()
                .prefix("docchat-bench-")
                .tempdir()?;
            tmp.path().to_path_buf()
        }
    };
    let figures = crate::search::search(&dir, &retriever, &sizes, a.queries, |m| {
        eprintln!("{m}");
    })
    .await?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&figures)?);
    } else {
        println!(
            "{} queries per row; latency of the whole retrieval, query embedding excluded\n",
            a.queries
        );
        print!("{}", crate::search::table(&figures));
    }
    Ok(ExitCode::SUCCESS)
}

/// The extraction limits of the settings, run by the `docchat` binary beside this
/// one (`docchat extract` is its hidden command).
fn limits(s: &Settings) -> Result<ExtractLimits> {
    Ok(ExtractLimits {
        exe: docchat_exe()?,
        ..s.limits()?
    })
}

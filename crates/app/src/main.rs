//! docchat: private, offline chat with your own documents.

mod admission;
mod bench;
mod bench_busy;
mod bench_embed;
mod bench_engine;
mod bench_peer;
mod bench_serve;
mod bench_start;
mod bench_ttft;
mod catalog;
mod cli;
mod client;
mod config;
mod eval;
mod folders;
mod guard;
mod history;
mod indexer;
mod isolate;
mod load;
mod models;
mod openai;
mod progress;
mod pull;
mod rag;
mod retrieve;
mod server;
mod switch;
mod upload;
mod watch;

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Private, offline chat with your own documents: PDF, Word, text, Markdown and HTML
/// files are indexed locally and answered from with citations to file and page.
#[derive(Debug, Parser)]
#[command(name = "docchat", version)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

/// Options shared by all commands (defaults < docchat.toml < DOCCHAT_* < flags).
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Configuration file [default: ./docchat.toml when present]
    #[arg(long, global = true, env = "DOCCHAT_CONFIG")]
    pub config: Option<PathBuf>,
    /// Where the index lives [default: ~/.local/share/docchat]
    #[arg(long, global = true, env = "DOCCHAT_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Folder of the default models [default: ~/.cache/docchat/models]
    #[arg(long, global = true, env = "DOCCHAT_MODELS_DIR")]
    pub models_dir: Option<PathBuf>,
    /// Chat model (GGUF file) [default: Gemma 3 270M in the models folder]
    #[arg(long, global = true, env = "DOCCHAT_CHAT_MODEL")]
    pub chat_model: Option<PathBuf>,
    /// Embedding model (GGUF file) [default: all-MiniLM-L6-v2 in the models folder]
    #[arg(long, global = true, env = "DOCCHAT_EMBEDDING_MODEL")]
    pub embedding_model: Option<PathBuf>,
    /// CPU threads for inference [default: all cores]
    #[arg(long, global = true, env = "DOCCHAT_THREADS")]
    pub threads: Option<i32>,
    /// Context size of the chat model in tokens [default: 4096]
    #[arg(long, global = true, env = "DOCCHAT_CTX_SIZE")]
    pub ctx_size: Option<u32>,
    /// Model layers to offload to the GPU (GPU builds) [default: 0]
    #[arg(long, global = true, env = "DOCCHAT_GPU_LAYERS")]
    pub gpu_layers: Option<u32>,
    /// Tokens per prompt-processing batch [default: 512]
    #[arg(long, global = true, env = "DOCCHAT_BATCH_SIZE")]
    pub batch_size: Option<u32>,
    /// Tokens per compute pass (at most the batch size) [default: 512]
    #[arg(long, global = true, env = "DOCCHAT_UBATCH_SIZE")]
    pub ubatch_size: Option<u32>,
    /// Flash attention: auto, on or off [default: auto]
    #[arg(long, global = true, env = "DOCCHAT_FLASH_ATTN")]
    pub flash_attn: Option<docchat_llm::FlashAttention>,
    /// Read the model files instead of memory-mapping them
    #[arg(long, global = true, env = "DOCCHAT_NO_MMAP")]
    pub no_mmap: bool,
    /// Keep mixture-of-experts weights in RAM (with --gpu-layers: the rest on the GPU)
    #[arg(long, global = true, env = "DOCCHAT_CPU_MOE")]
    pub cpu_moe: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server: web UI, API, and the indexer watching your folders.
    Serve(cli::ServeArgs),
    /// Index files or folders once, with a progress bar, then exit.
    Index(cli::IndexArgs),
    /// Ask a question; the answer streams to the terminal with its sources.
    Ask(cli::AskArgs),
    /// Show the passages that match a query.
    Search(cli::SearchArgs),
    /// Measure retrieval: recall@1/5/10, MRR and latency of each search mode over
    /// a labelled question set.
    Eval(cli::EvalArgs),
    /// List indexed documents, and failed ones with the reason.
    Status(cli::StatusArgs),
    /// Pause the indexing of a collection in the running server.
    Pause(cli::CollectionActionArgs),
    /// Resume the indexing of a collection in the running server.
    Resume(cli::CollectionActionArgs),
    /// Drop the queued files of a collection in the running server.
    Cancel(cli::CollectionActionArgs),
    /// Remove a collection's documents from the index (the files stay).
    Forget(cli::ForgetArgs),
    /// Export a chat to Markdown with its citations (without an id: list the chats).
    Export(cli::ExportArgs),
    /// The watched folders (collections) of the watch-dirs file: list, add, remove.
    Collections(cli::CollectionsArgs),
    /// Benchmarks.
    #[command(subcommand)]
    Bench(cli::BenchCommand),
    /// Manage models.
    #[command(subcommand)]
    Models(cli::ModelsCommand),
    /// Extract one file's text as JSON (used internally, in a child process).
    #[command(hide = true)]
    Extract {
        /// The file.
        path: PathBuf,
        /// Where to write the result.
        #[arg(long)]
        out: PathBuf,
        /// Address-space limit in bytes (0: none).
        #[arg(long, default_value_t = 0)]
        memory_bytes: u64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Extract {
        path,
        out,
        memory_bytes,
    } = &cli.command
    {
        return match isolate::run_child(path, out, *memory_bytes) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("docchat extract: {e:#}");
                ExitCode::from(2)
            }
        };
    }
    docchat_llm::heap::limit_arenas();
    init_tracing();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let result = runtime.block_on(async move {
        let settings = cli::Settings::resolve(&cli.global)?;
        match cli.command {
            Command::Serve(a) => cli::serve(settings, a).await,
            Command::Index(a) => cli::index(settings, a).await,
            Command::Ask(a) => cli::ask(settings, a).await,
            Command::Search(a) => cli::search(settings, a).await,
            Command::Eval(a) => cli::eval(settings, a).await,
            Command::Status(a) => cli::status(settings, a).await,
            Command::Models(c) => cli::models(settings, c).await,
            Command::Bench(c) => cli::bench(settings, c).await,
            Command::Forget(a) => cli::forget(settings, a).await,
            Command::Collections(a) => cli::collections(settings, a).await,
            Command::Export(a) => cli::export(settings, a).await,
            Command::Pause(a) => cli::collection_action(settings, "pause", a).await,
            Command::Resume(a) => cli::collection_action(settings, "resume", a).await,
            Command::Cancel(a) => cli::collection_action(settings, "cancel", a).await,
            Command::Extract { .. } => unreachable!("handled before the runtime starts"),
        }
    });
    // Inference threads do not need an orderly goodbye.
    runtime.shutdown_background();
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(exit_status(&e))
        }
    }
}

/// Exit statuses: 0 done; 1 failed; 2 wrong usage (from the argument parser);
/// 3 the running server cannot be reached; 4 a download failed its checksum.
fn exit_status(e: &anyhow::Error) -> u8 {
    if e.downcast_ref::<client::Unreachable>().is_some() {
        3
    } else if e.downcast_ref::<pull::ChecksumMismatch>().is_some() {
        4
    } else {
        1
    }
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new("docchat=info,docchat_store=info,docchat_ingest=info,docchat_llm=info")
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

//! docchat: private, offline chat with your own documents. The binary parses the
//! command line, runs the command (`commands/`) and turns its outcome into an exit
//! status; what the commands do lives in `docchat-service` and `docchat-server`.

mod args;
mod client;
mod commands;

use args::GlobalArgs;
use clap::{Parser, Subcommand};
use docchat_service::Settings;
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

/// Private, offline chat with your own documents: PDF, Word, PowerPoint, spreadsheet,
/// EPUB, text, Markdown and HTML files are indexed locally and answered from with
/// citations to file and page (slide, sheet, chapter).
#[derive(Debug, Parser)]
#[command(name = "docchat", version)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server: web UI, API, and the indexer watching your folders.
    Serve(commands::serve::ServeArgs),
    /// Index files or folders once, with a progress bar, then exit.
    Index(commands::index::IndexArgs),
    /// Ask a question; the answer streams to the terminal with its sources.
    Ask(commands::ask::AskArgs),
    /// Show the passages that match a query.
    Search(commands::search::SearchArgs),
    /// Measure retrieval: recall@1/5/10, MRR and latency of each search mode over
    /// a labelled question set.
    Eval(commands::eval::EvalArgs),
    /// List indexed documents, and failed ones with the reason.
    Status(commands::status::StatusArgs),
    /// Pause the indexing of a collection in the running server.
    Pause(commands::collections::CollectionActionArgs),
    /// Resume the indexing of a collection in the running server.
    Resume(commands::collections::CollectionActionArgs),
    /// Drop the queued files of a collection in the running server.
    Cancel(commands::collections::CollectionActionArgs),
    /// Remove a collection's documents from the index (the files stay).
    Forget(commands::collections::ForgetArgs),
    /// Export a chat to Markdown with its citations (without an id: list the chats).
    Export(commands::export::ExportArgs),
    /// The watched folders (collections) of the watch-dirs file: list, add, remove.
    Collections(commands::collections::CollectionsArgs),
    /// Benchmarks (`docchat bench --help`): runs docchat-bench, installed beside docchat.
    #[command(disable_help_flag = true)]
    Bench {
        /// The benchmark and its options.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
    /// Manage models.
    #[command(subcommand)]
    Models(commands::models::ModelsCommand),
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
        /// OCR of pages without a text layer: off, detect (list them) or run.
        #[arg(long, default_value = "off")]
        ocr: String,
        /// OCR languages, Tesseract's codes joined by `+`.
        #[arg(long, default_value = "")]
        ocr_languages: String,
        /// Time limit of OCR of one page, in seconds.
        #[arg(long, default_value_t = 120)]
        ocr_page_timeout_s: u64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match &cli.command {
        Command::Extract {
            path,
            out,
            memory_bytes,
            ocr,
            ocr_languages,
            ocr_page_timeout_s,
        } => {
            use docchat_service::index::isolate::{OcrPass, child_ocr, run_child};
            let Some(pass) = OcrPass::parse(ocr) else {
                eprintln!("docchat extract: --ocr is off, detect or run");
                return ExitCode::from(2);
            };
            let ocr = child_ocr(pass, ocr_languages, *ocr_page_timeout_s);
            return match run_child(path, out, *memory_bytes, &ocr) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("docchat extract: {e:#}");
                    ExitCode::from(2)
                }
            };
        }
        Command::Bench { args } => return commands::bench::run(&cli.global, args),
        _ => {}
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
        let settings = Settings::resolve(&cli.global.overrides())?;
        run(settings, cli.command).await
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

async fn run(settings: Settings, command: Command) -> anyhow::Result<ExitCode> {
    use commands::*;
    match command {
        Command::Serve(a) => serve::serve(settings, a).await,
        Command::Index(a) => index::index(settings, a).await,
        Command::Ask(a) => ask::ask(settings, a).await,
        Command::Search(a) => search::search(settings, a).await,
        Command::Eval(a) => eval::eval(settings, a).await,
        Command::Status(a) => status::status(settings, a).await,
        Command::Models(c) => models::models(settings, c).await,
        Command::Forget(a) => collections::forget(settings, a).await,
        Command::Collections(a) => collections::collections(settings, a).await,
        Command::Export(a) => export::export(settings, a).await,
        Command::Pause(a) => collections::collection_action(settings, "pause", a).await,
        Command::Resume(a) => collections::collection_action(settings, "resume", a).await,
        Command::Cancel(a) => collections::collection_action(settings, "cancel", a).await,
        Command::Extract { .. } | Command::Bench { .. } => {
            unreachable!("handled before the runtime starts")
        }
    }
}

/// Exit statuses: 0 done; 1 failed; 2 wrong usage (from the argument parser);
/// 3 the running server cannot be reached; 4 a download failed its checksum.
fn exit_status(e: &anyhow::Error) -> u8 {
    if e.downcast_ref::<client::Unreachable>().is_some() {
        3
    } else if e
        .downcast_ref::<docchat_service::models::pull::ChecksumMismatch>()
        .is_some()
    {
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

//! docchat-bench: docchat's benchmarks, each side by side with its baseline in one
//! run (`docchat bench …` runs this binary). Settings come from the same
//! `DOCCHAT_*` variables and `docchat.toml` as docchat's (`docchat`'s global flags
//! before `bench` are passed on as those variables).

mod busy;
mod commands;
mod embed;
mod engine;
mod harness;
mod http;
mod ingest;
mod load;
mod ocr;
mod peer;
mod search;
mod serve;
mod start;
mod store;
mod synthetic;
mod ttft;

use clap::Parser;
use docchat_service::{Overrides, Settings};
use std::process::ExitCode;

/// docchat's benchmarks: retrieval, ingest, load, engine, serving, embedding,
/// re-indexing, answers while indexing, time to first token, start-up.
#[derive(Debug, Parser)]
#[command(name = "docchat bench", version)]
struct Cli {
    #[command(subcommand)]
    command: commands::BenchCommand,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    docchat_llm::heap::limit_arenas();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("docchat=info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let result = runtime.block_on(async move {
        let settings = Settings::resolve(&Overrides::from_env()?)?;
        commands::run(&settings, cli.command).await
    });
    runtime.shutdown_background();
    result.unwrap_or_else(|e| {
        eprintln!("error: {e:#}");
        ExitCode::FAILURE
    })
}

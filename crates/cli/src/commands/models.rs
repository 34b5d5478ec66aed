//! `docchat models`: list, pull, use, import.

use anyhow::Result;
use clap::Subcommand;
use docchat_service::Settings;
use docchat_service::config::{self};
use docchat_service::models::{self, pull};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// List the GGUF models docchat knows (the models folder and the configured
    /// paths), from their metadata; `--catalog` lists the catalog of well-known models.
    List {
        /// List the catalog of well-known models instead, with the memory each needs
        #[arg(long)]
        catalog: bool,
        /// Context size for the memory column [default: the configured context size]
        #[arg(long)]
        ctx: Option<u64>,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Memory a model needs (weights, KV cache at the context, compute buffers)
    /// against this machine's memory: fits, tight or will not fit, and the largest
    /// context that fits.
    Info {
        /// A GGUF path, a file in the models folder, or a catalog name
        model: String,
        /// Context size in tokens [default: the configured context size]
        #[arg(long)]
        ctx: Option<u64>,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Download a model from the catalog (`docchat models list --catalog`) or by
    /// `OWNER/REPO/FILE.gguf`: resumable, sha256-verified, into the models folder.
    Pull {
        /// A catalog name, or OWNER/REPO/FILE.gguf
        model: String,
        /// Where files are served from [default: https://huggingface.co]
        #[arg(long, env = "DOCCHAT_MODELS_ENDPOINT")]
        endpoint: Option<String>,
        /// The expected sha256 (needed for files the catalog has no checksum for)
        #[arg(long)]
        sha256: Option<String>,
        /// Accept a file without a known checksum (its sha256 is printed)
        #[arg(long, conflicts_with = "sha256")]
        no_verify: bool,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Use a model from now on: writes `chat_model` or `embedding_model` (by the
    /// model's kind) into the configuration file.
    Use {
        /// A GGUF path, a file in the models folder, or a catalog name
        model: String,
    },
    /// Convert a BERT-family sentence-transformers checkpoint to a GGUF embedding model.
    Import {
        /// Folder with config.json, model.safetensors and vocab.txt / tokenizer.json
        dir: PathBuf,
        /// Output file [default: the default embedding model path]
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

pub async fn models(s: Settings, c: ModelsCommand) -> Result<ExitCode> {
    match c {
        ModelsCommand::Import { dir, out } => {
            let out = out.unwrap_or_else(|| s.models.embedding.clone());
            let target = out.clone();
            let summary = tokio::task::spawn_blocking(move || {
                docchat_llm::import::import_sentence_transformer(&dir, &target)
            })
            .await??;
            println!(
                "wrote {} ({} tensors, {} tokens, {} dimensions, {} pooling)",
                out.display(),
                summary.tensors,
                summary.vocab,
                summary.dim,
                summary.pooling
            );
        }
        ModelsCommand::List { catalog, ctx, json } => {
            let ctx = ctx.unwrap_or(u64::from(s.engine.ctx_size));
            let rows = if catalog {
                models::catalog_rows(ctx)?
            } else {
                models::known_models(&s.models)
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                print!("{}", models::table(&rows, ctx));
            }
        }
        ModelsCommand::Info { model, ctx, json } => {
            let ctx = ctx.unwrap_or(u64::from(s.engine.ctx_size));
            let report = models::info(&s.models, &model, ctx)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", report.render());
            }
        }
        ModelsCommand::Pull {
            model,
            endpoint,
            sha256,
            no_verify,
            json,
        } => pull_model(&s, model, endpoint, sha256, no_verify, json).await?,
        ModelsCommand::Use { model } => use_model(&s, &model)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// `docchat models pull`.
async fn pull_model(
    s: &Settings,
    model: String,
    endpoint: Option<String>,
    sha256: Option<String>,
    no_verify: bool,
    json: bool,
) -> Result<()> {
    let endpoint = endpoint
        .or_else(|| s.file.models_endpoint.clone())
        .unwrap_or_else(|| docchat_service::models::pull::DEFAULT_ENDPOINT.to_string());
    let download = models::download_for(&s.models.dir, &endpoint, &model, sha256, no_verify)?;
    let bar = Bar::default();
    let progress: &dyn pull::PullProgress = if json { &() } else { &bar };
    let pulled = pull::pull(&download, progress).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&pulled)?);
    } else if pulled.already_present {
        println!(
            "{} is already here (sha256 {})",
            pulled.path.display(),
            pulled.sha256
        );
    } else {
        println!(
            "downloaded {} ({} bytes{}), sha256 {}{}",
            pulled.path.display(),
            pulled.bytes,
            if pulled.resumed_from > 0 {
                format!(", resumed at {}", pulled.resumed_from)
            } else {
                String::new()
            },
            pulled.sha256,
            if download.sha256.is_some() {
                " (verified)"
            } else {
                " (not verified)"
            }
        );
    }
    Ok(())
}

/// `docchat models use`: the model goes into the configuration file.
fn use_model(s: &Settings, model: &str) -> Result<()> {
    let path = models::resolve_model_path(&s.models.dir, model)?;
    let meta = docchat_llm::meta::read_info(&path)?;
    let key = if meta.embedding {
        "embedding_model"
    } else {
        "chat_model"
    };
    let config = s.config_path();
    config::write_top_level_key(&config, key, &path.display().to_string())?;
    println!(
        "{key} = {} in {}{}",
        path.display(),
        config.display(),
        if meta.embedding {
            "\nat the next start the indexed text is re-embedded with it in the background, \
             nothing extracted again; the current index answers until then"
        } else {
            ""
        }
    );
    Ok(())
}

/// A progress bar on the terminal for `models pull`.
#[derive(Default)]
struct Bar(std::sync::OnceLock<indicatif::ProgressBar>);

impl pull::PullProgress for Bar {
    fn start(&self, name: &str, at: u64, total: Option<u64>) {
        let bar = indicatif::ProgressBar::new(total.unwrap_or(0));
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {bytes}/{total_bytes}  {bytes_per_sec}, eta {eta}  {msg}",
            )
            .expect("valid template"),
        );
        bar.set_position(at);
        bar.set_message(name.to_string());
        let _ = self.0.set(bar);
    }

    fn advance(&self, at: u64) {
        if let Some(b) = self.0.get() {
            b.set_position(at);
        }
    }

    fn finish(&self) {
        if let Some(b) = self.0.get() {
            b.finish_and_clear();
        }
    }
}

//! `docchat serve`: the web UI, the API and the indexer watching the folders.

use anyhow::{Context, Result};
use clap::Args;
use docchat_server::guard::Guard;
use docchat_server::{AppState, Limits};
use docchat_service::config;
use docchat_service::disk::check_writable;
use docchat_service::{Runtime, Settings};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// File listing the folders to watch, one per line: `PATH [= collection]`
    #[arg(long, env = "DOCCHAT_WATCH_DIRS")]
    watch_dirs: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1]
    #[arg(long, env = "DOCCHAT_HOST")]
    host: Option<String>,
    /// Port (0 picks a free one) [default: 8080]
    #[arg(long, env = "DOCCHAT_PORT")]
    port: Option<u16>,
    /// Requests that may wait for the chat model (and for the embedding model)
    /// while one runs; past that, requests get 503 with Retry-After [default: 8]
    #[arg(long, env = "DOCCHAT_MAX_QUEUE")]
    max_queue: Option<usize>,
    /// Largest file the browser may upload, in MB [default: 100]
    #[arg(long, env = "DOCCHAT_MAX_UPLOAD_MB")]
    max_upload_mb: Option<usize>,
    /// Secret every request must carry (`Authorization: Bearer KEY`, or the browser's
    /// sign-in); required to listen on anything but loopback
    #[arg(long, env = "DOCCHAT_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// File holding the API key (kept out of the process list)
    #[arg(long, env = "DOCCHAT_API_KEY_FILE")]
    api_key_file: Option<PathBuf>,
    /// keys.toml: several API keys, each with a name and the collections it may
    /// read ([[key]] name, key, collections); chats are per key
    #[arg(long, env = "DOCCHAT_KEYS_FILE")]
    keys_file: Option<PathBuf>,
    /// Host name the browser may use besides localhost, 127.0.0.1 and [::1] (a guard
    /// against DNS rebinding); repeatable
    #[arg(long = "allowed-host", value_name = "NAME")]
    allowed_hosts: Vec<String>,
    /// writer: index the watched folders into the store (one per store); reader:
    /// answer questions from a shared store (--store) that a writer keeps
    #[arg(long, env = "DOCCHAT_ROLE", value_enum, default_value_t = Role::Writer)]
    role: Role,
}

/// What a `docchat serve` does with its store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Role {
    /// Indexes and answers (the only writer of its store).
    Writer,
    /// Answers from a shared store a writer keeps; writes only chats.
    Reader,
}

/// The server's access rules from the flags and the configuration file.
fn guard_of(s: &Settings, a: &ServeArgs, host: &str) -> Result<Guard> {
    let file = a
        .api_key_file
        .clone()
        .or_else(|| s.file.api_key_file.clone());
    let key = match (&a.api_key, file) {
        (Some(k), _) => Some(k.clone()),
        (None, Some(f)) => Some(
            std::fs::read_to_string(&f)
                .with_context(|| format!("cannot read the API key file {}", f.display()))?,
        ),
        (None, None) => None,
    };
    let mut allowed = a.allowed_hosts.clone();
    allowed.extend(s.file.allowed_hosts.iter().cloned());
    let keys = match a.keys_file.clone().or_else(|| s.file.keys_file.clone()) {
        Some(f) => docchat_server::keys::load(&f)?,
        None => Vec::new(),
    };
    if key.is_some() && !keys.is_empty() {
        anyhow::bail!("give either one API key or a keys file, not both");
    }
    // With a keys file every request needs one of its keys, on loopback too: the
    // keys are what keeps one user's collections from another's.
    let key = key.or_else(|| keys.first().map(|(k, _)| k.clone()));
    Guard::new(host, key, allowed)?.with_keys(keys)
}

/// `docchat serve`: refuses an open address without a key and a data folder it
/// cannot write before anything loads; then starts the service and serves it.
pub async fn serve(s: Settings, a: ServeArgs) -> Result<ExitCode> {
    let host = a
        .host
        .clone()
        .or_else(|| s.file.host.clone())
        .unwrap_or_else(|| "127.0.0.1".into());
    let guard = guard_of(&s, &a, &host)?;
    check_writable(&s.data_dir)?;
    let runtime = match a.role {
        Role::Reader => Runtime::reader(&s).await?,
        Role::Writer => {
            let watch_file = a.watch_dirs.clone().or_else(|| s.file.watch_dirs.clone());
            let roots = match &watch_file {
                Some(f) => config::read_watch_dirs(f)?,
                None => Vec::new(),
            };
            if roots.is_empty() {
                tracing::warn!("no folders to watch (pass --watch-dirs FILE)");
            }
            for r in &roots {
                tracing::info!(path = %r.path.display(), collection = %r.collection, "watching");
            }
            Runtime::start(&s, roots, watch_file).await?
        }
    };
    let lease = runtime.lease.clone();
    let port = a.port.or(s.file.port).unwrap_or(8080);
    let listener = tokio::net::TcpListener::bind((host.as_str(), port))
        .await
        .with_context(|| format!("cannot listen on {host}:{port}"))?;
    println!("listening on http://{}", listener.local_addr()?);
    std::io::stdout().flush()?;
    let limits = Limits {
        queue: a.max_queue.or(s.file.max_queue).unwrap_or(8),
        max_upload_bytes: a
            .max_upload_mb
            .or(s.file.max_upload_mb)
            .unwrap_or(100)
            .saturating_mul(1 << 20),
    };
    let state = AppState::new(runtime, &s, limits);
    docchat_server::serve(listener, state, guard, shutdown_signal()).await?;
    if let Some(lease) = lease
        && let Err(e) = lease.release().await
    {
        tracing::warn!(error = %e, "cannot give the writer's lease back; it runs out by itself");
    }
    Ok(ExitCode::SUCCESS)
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
}

//! The watched folders: `collections` (list, add, remove), `forget`, and `pause`,
//! `resume`, `cancel` sent to the running server.

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use docchat_service::Settings;
use docchat_service::config::{self, WatchRoot};
use docchat_service::index::folders;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct CollectionActionArgs {
    /// The collection (a watched folder's name)
    collection: String,
    /// The running server [default: http://HOST:PORT from the configuration,
    /// else http://127.0.0.1:8080]
    #[arg(long, env = "DOCCHAT_SERVER")]
    server: Option<String>,
}

/// Pauses, resumes or cancels the indexing of a collection in the running server.
pub async fn collection_action(
    s: Settings,
    action: &'static str,
    a: CollectionActionArgs,
) -> Result<ExitCode> {
    let base = a.server.unwrap_or_else(|| {
        format!(
            "http://{}:{}",
            s.file.host.as_deref().unwrap_or("127.0.0.1"),
            s.file.port.unwrap_or(8080)
        )
    });
    let path = format!("/api/collections/{}/{action}", url_escape(&a.collection));
    let body = tokio::task::spawn_blocking(move || crate::client::post(&base, &path)).await??;
    let v: serde_json::Value = serde_json::from_str(&body)?;
    let p = &v["progress"];
    println!(
        "{action}: {} ({} files dropped); queue {}, paused: {}",
        a.collection, v["dropped"], p["queued"], p["paused"]
    );
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct ForgetArgs {
    /// The collection whose documents leave the index
    collection: String,
}

/// Removes a collection's documents and chunks from the index (its files are not
/// touched). This is how the index of a folder that is gone for good is dropped:
/// docchat never does it on its own.
pub async fn forget(s: Settings, a: ForgetArgs) -> Result<ExitCode> {
    let embedder = s.embedder().await?;
    let (store, lease) = s.writable_store(&embedder).await?;
    let n = folders::forget(&store, &a.collection).await?;
    if let Some(lease) = lease {
        lease.release().await?;
    }
    if n == 0 {
        bail!("no documents in collection {:?}", a.collection);
    }
    println!("forgot {n} documents of collection {}", a.collection);
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct CollectionsArgs {
    /// The watch-dirs file [default: docchat.toml's watch_dirs]
    #[arg(long, global = true, env = "DOCCHAT_WATCH_DIRS")]
    watch_dirs: Option<PathBuf>,
    /// A running server to change at once (it updates its watch-dirs file too),
    /// e.g. http://127.0.0.1:8080
    #[arg(long, global = true, env = "DOCCHAT_SERVER")]
    server: Option<String>,
    #[command(subcommand)]
    command: CollectionsCommand,
}

#[derive(Debug, Subcommand)]
pub enum CollectionsCommand {
    /// Each watched folder with its documents (indexed, failed, pending), and
    /// collections of the index that no folder feeds any more.
    List {
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Watch a folder as a new collection (the server indexes it at its next start).
    Add {
        /// The folder
        path: PathBuf,
        /// Collection name [default: the folder's name]
        #[arg(long)]
        name: Option<String>,
    },
    /// Stop watching a collection's folder; its documents stay searchable until
    /// `docchat forget NAME` (or `--forget`).
    Remove {
        /// The collection
        name: String,
        /// Also remove its documents from the index
        #[arg(long)]
        forget: bool,
    },
}

pub async fn collections(s: Settings, a: CollectionsArgs) -> Result<ExitCode> {
    if let Some(base) = a.server {
        return collections_on_server(base, a.command).await;
    }
    let Some(file) = a.watch_dirs.or_else(|| s.file.watch_dirs.clone()) else {
        bail!("no watch-dirs file: pass --watch-dirs FILE (or set watch_dirs in docchat.toml)");
    };
    let text = match std::fs::read_to_string(&file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", file.display())),
    };
    let base = file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), std::path::Path::to_path_buf);
    let base = std::fs::canonicalize(&base).unwrap_or(base);
    match a.command {
        CollectionsCommand::Add { path, name } => {
            let path = config::check_folder(&path)?;
            let collection = name.unwrap_or_else(|| {
                path.file_name()
                    .map_or_else(|| "documents".into(), |n| n.to_string_lossy().into_owned())
            });
            let root = WatchRoot { path, collection };
            let updated = config::add_watch_line(&text, &base, &root)?;
            std::fs::write(&file, updated)
                .with_context(|| format!("cannot write {}", file.display()))?;
            println!(
                "watching {} as {:?} (in {}); the server indexes it at its next start",
                root.path.display(),
                root.collection,
                file.display()
            );
        }
        CollectionsCommand::Remove { name, forget } => {
            let (updated, removed) = config::remove_watch_lines(&text, &base, &name)?;
            if removed == 0 {
                bail!("no collection {name:?} in {}", file.display());
            }
            std::fs::write(&file, updated)
                .with_context(|| format!("cannot write {}", file.display()))?;
            if forget {
                let (store, lease) = s.writable_store(&s.embedder().await?).await?;
                let n = folders::forget(&store, &name).await?;
                if let Some(lease) = lease {
                    lease.release().await?;
                }
                println!("stopped watching {name:?} and removed its {n} documents");
            } else {
                println!(
                    "stopped watching {name:?}; its documents stay searchable until `docchat forget {name}`"
                );
            }
        }
        CollectionsCommand::List { json } => {
            let roots = config::parse_watch_dirs(&text, &base)?;
            let store = s.store(&s.embedder().await?).await?;
            let rows = docchat_service::index::folders::collection_rows(
                &roots,
                &store.documents().await?,
                &[],
            );
            print_collections(&rows, json)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `collections` against a running server: the change applies at once.
async fn collections_on_server(base: String, c: CollectionsCommand) -> Result<ExitCode> {
    let call = move |method: &'static str, path: String, body: Option<String>| {
        let base = base.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                crate::client::request(&base, method, &path, body.as_deref())
            })
            .await?
        }
    };
    match c {
        CollectionsCommand::Add { path, name } => {
            let path = std::fs::canonicalize(&path)
                .with_context(|| format!("{} does not exist", path.display()))?;
            let body = serde_json::json!({ "path": path, "name": name }).to_string();
            let out: serde_json::Value =
                serde_json::from_str(&call("POST", "/api/collections".into(), Some(body)).await?)?;
            println!(
                "watching {} as {} in the running server; its files are being indexed",
                out["path"], out["name"]
            );
        }
        CollectionsCommand::Remove { name, forget } => {
            let path = format!(
                "/api/collections/{}{}",
                url_escape(&name),
                if forget { "?forget=true" } else { "" }
            );
            let out: serde_json::Value = serde_json::from_str(&call("DELETE", path, None).await?)?;
            println!(
                "stopped watching {name:?} in the running server ({} documents removed)",
                out["forgotten"]
            );
        }
        CollectionsCommand::List { json } => {
            let out: serde_json::Value =
                serde_json::from_str(&call("GET", "/api/collections".into(), None).await?)?;
            let rows = out["collections"].as_array().cloned().unwrap_or_default();
            print_collections(&rows, json)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Collection rows as JSON, or one line each.
fn print_collections(rows: &[serde_json::Value], json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(rows)?);
        return Ok(());
    }
    for r in rows {
        let place = match r["path"].as_str() {
            Some(p) if r["folder_exists"] == true => p.to_string(),
            Some(p) => format!("{p} (folder missing)"),
            None => "not watched; `docchat forget` drops it".to_string(),
        };
        println!(
            "{:<24} {:>5} indexed {:>4} failed {:>4} pending  {place}{}",
            r["name"].as_str().unwrap_or(""),
            r["indexed"],
            r["failed"],
            r["pending"],
            if r["paused"] == true {
                "  (paused)"
            } else {
                ""
            }
        );
    }
    Ok(())
}

/// Percent-encodes a path segment.
fn url_escape(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

//! Adding and removing watched folders while the server runs: the indexer's roots,
//! the file watcher and the watch-dirs file change together.

use crate::config::{self, WatchRoot};
use crate::index::Indexer;
use anyhow::{Context, Result};
use docchat_store::{DocState, DocumentRecord};
use notify::{RecommendedWatcher, Watcher};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// One row per watched folder (name, path, whether the folder is there, whether its
/// indexing is paused, documents indexed / failed / pending), then one per collection
/// of the index that no watched folder feeds any more.
pub fn collection_rows(
    roots: &[WatchRoot],
    docs: &[DocumentRecord],
    paused: &[String],
) -> Vec<Value> {
    let count = |c: &str, st: DocState| {
        docs.iter()
            .filter(|d| d.collection == c && d.state == st)
            .count()
    };
    let row = |name: &str, path: Option<&Path>| {
        json!({
            "name": name, "path": path, "watched": path.is_some(),
            "folder_exists": path.is_some_and(Path::is_dir),
            "paused": paused.iter().any(|p| p == name),
            "indexed": count(name, DocState::Indexed),
            "failed": count(name, DocState::Failed),
            "pending": count(name, DocState::Pending),
        })
    };
    let mut rows: Vec<Value> = roots
        .iter()
        .map(|r| row(&r.collection, Some(&r.path)))
        .collect();
    let mut others: Vec<&str> = docs
        .iter()
        .map(|d| d.collection.as_str())
        .filter(|c| !roots.iter().any(|r| r.collection == *c))
        .collect();
    others.sort_unstable();
    others.dedup();
    rows.extend(others.into_iter().map(|c| row(c, None)));
    rows
}

/// The server's hold on its watched folders.
pub struct Folders {
    watcher: Mutex<Option<RecommendedWatcher>>,
    /// The watch-dirs file changes are written to, so they outlive a restart.
    watch_file: Option<PathBuf>,
}

impl std::fmt::Debug for Folders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Folders")
            .field("watch_file", &self.watch_file)
            .finish_non_exhaustive()
    }
}

fn base_of(file: &Path) -> PathBuf {
    let base = file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    std::fs::canonicalize(&base).unwrap_or(base)
}

fn read_or_empty(file: &Path) -> Result<String> {
    match std::fs::read_to_string(file) {
        Ok(t) => Ok(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", file.display())),
    }
}

impl Folders {
    /// Takes over the running watcher and the watch-dirs file.
    pub fn new(watcher: RecommendedWatcher, watch_file: Option<PathBuf>) -> Self {
        Self {
            watcher: Mutex::new(Some(watcher)),
            watch_file,
        }
    }

    /// No folders are watched here (a reader of a shared store).
    pub fn none() -> Self {
        Self {
            watcher: Mutex::new(None),
            watch_file: None,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<RecommendedWatcher>> {
        self.watcher
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Watches `path` as collection `name` (the folder's name by default): checks
    /// that it is a readable folder, adds it to the indexer and the watcher, and
    /// writes it to the watch-dirs file. The caller queues its files.
    pub fn add(&self, ix: &Indexer, path: &Path, name: Option<String>) -> Result<WatchRoot> {
        let path = config::check_folder(path)?;
        let collection = name
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| {
                path.file_name()
                    .map_or_else(|| "documents".into(), |n| n.to_string_lossy().into_owned())
            });
        let root = WatchRoot { path, collection };
        // Checked against the file first, so nothing changes when it refuses.
        let updated = match &self.watch_file {
            Some(f) => Some(config::add_watch_line(
                &read_or_empty(f)?,
                &base_of(f),
                &root,
            )?),
            None => None,
        };
        ix.add_root(root.clone())?;
        if let Some(w) = self.lock().as_mut()
            && let Err(e) = crate::index::watch::watch_tree(w, &root.path)
        {
            ix.remove_root(&root.collection);
            return Err(e).with_context(|| format!("cannot watch {}", root.path.display()));
        }
        if let (Some(f), Some(text)) = (&self.watch_file, updated) {
            std::fs::write(f, text).with_context(|| format!("cannot write {}", f.display()))?;
        }
        Ok(root)
    }

    /// Stops watching `collection`'s folder (its documents stay in the index) and
    /// removes it from the watch-dirs file. `None` if no such collection is watched.
    pub fn remove(&self, ix: &Indexer, collection: &str) -> Result<Option<WatchRoot>> {
        let Some(root) = ix.remove_root(collection) else {
            return Ok(None);
        };
        if let Some(w) = self.lock().as_mut() {
            // A folder that is gone is not watched any more anyway.
            let _ = w.unwatch(&root.path);
        }
        if let Some(f) = &self.watch_file {
            let (text, _) =
                config::remove_watch_lines(&read_or_empty(f)?, &base_of(f), collection)?;
            std::fs::write(f, text).with_context(|| format!("cannot write {}", f.display()))?;
        }
        Ok(Some(root))
    }
}

/// Removes the documents of `collection` from the index (the files stay); how many
/// there were. Not for a running indexer's store: [`Indexer::forget`] waits for
/// its writes.
pub async fn forget(store: &docchat_store::Store, collection: &str) -> Result<usize> {
    Ok(store.delete_collection(collection).await?.0)
}

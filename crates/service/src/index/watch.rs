//! File-system events (notify) into the indexer's queue.

use crate::index::Indexer;
use anyhow::Result;
use notify::event::{AccessKind, AccessMode, EventKind};
use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use std::path::Path;
use std::sync::Arc;

/// Watches `dir` and everything below it. A sub-folder that cannot be read fails a
/// recursive watch as a whole: then each folder that can be read is watched apart
/// (folders created later under those are found by their events, not watched),
/// and the ones that cannot are left to the indexer, which reports them.
pub fn watch_tree(watcher: &mut RecommendedWatcher, dir: &Path) -> Result<()> {
    match watcher.watch(dir, RecursiveMode::Recursive) {
        Ok(()) => Ok(()),
        Err(e) if matches!(e.kind, notify::ErrorKind::MaxFilesWatch) => Err(e.into()),
        Err(e) => {
            let Ok(entries) = std::fs::read_dir(dir) else {
                tracing::warn!(path = %dir.display(), error = %e, "cannot watch a folder that cannot be read");
                return Ok(());
            };
            watcher.watch(dir, RecursiveMode::NonRecursive)?;
            for entry in entries.flatten() {
                let path = entry.path();
                let hidden = entry.file_name().to_string_lossy().starts_with('.');
                if !hidden && entry.file_type().is_ok_and(|t| t.is_dir()) {
                    watch_tree(watcher, &path)?;
                }
            }
            Ok(())
        }
    }
}

/// Watches every existing root of `indexer`; events go to the indexer `current`
/// returns at that moment (the live one). The returned watcher must be kept alive.
pub fn start(
    indexer: &Arc<Indexer>,
    current: impl Fn() -> Arc<Indexer> + Send + 'static,
) -> Result<RecommendedWatcher> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        let _ = tx.send(res);
    })?;
    for root in indexer.roots() {
        if root.path.exists() {
            watch_tree(&mut watcher, &root.path)?;
        }
    }
    tokio::spawn(async move {
        while let Some(res) = rx.recv().await {
            let ix = current();
            let event = match res {
                Ok(e) => e,
                Err(e) => {
                    tracing::warn!(error = %e, "file watcher error; rescanning");
                    if let Err(e) = ix.reconcile().await {
                        tracing::error!(error = format!("{e:#}"), "rescan failed");
                    }
                    continue;
                }
            };
            // Reads (ours included) change nothing; a closed write does.
            if let EventKind::Access(kind) = event.kind
                && kind != AccessKind::Close(AccessMode::Write)
            {
                continue;
            }
            for path in event.paths {
                if let Err(e) = ix.on_event_path(path).await {
                    tracing::error!(error = format!("{e:#}"), "cannot queue a changed file");
                }
            }
        }
    });
    Ok(watcher)
}

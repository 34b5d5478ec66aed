//! File-system events (notify) into the indexer's queue.

use crate::index::Indexer;
use anyhow::Result;
use notify::event::{AccessKind, AccessMode, EventKind};
use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use std::sync::Arc;

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
            watcher.watch(&root.path, RecursiveMode::Recursive)?;
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

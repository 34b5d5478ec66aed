//! Switching the embedding model without losing search: each embedding model has
//! its own index folder, `active-index.json` names the one in use, and a switch
//! re-embeds the stored chunk texts (no extraction) into the new folder while the
//! old index keeps answering; then the pointer moves, atomically.

use anyhow::{Context, Result};
use docchat_core::Embedder;
use docchat_store::{DocState, SearchTuning, Store};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The folder of the index made before per-model folders existed, and of the first.
pub const FIRST_INDEX_DIR: &str = "index";
const POINTER: &str = "active-index.json";
/// Texts per embedding call while re-embedding.
const BATCH: usize = 16;

/// The index in use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActiveIndex {
    /// Folder inside the data directory.
    pub dir: String,
    /// Id of the embedding model that made it.
    pub embedder: String,
    /// Where that model's file is (to keep serving with it during a switch).
    pub model: PathBuf,
}

/// What a start with a given embedding model finds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// The active index was made by this model (or there is none yet).
    Current(ActiveIndex),
    /// The active index was made by another model: re-embed into `to`.
    Switch {
        /// The index in use now.
        from: ActiveIndex,
        /// The index to build.
        to: ActiveIndex,
    },
}

/// The folder of the index of `embedder_id`.
pub fn dir_for(embedder_id: &str) -> String {
    let slug: String = embedder_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("index-{slug}")
}

fn pointer(data_dir: &Path) -> PathBuf {
    data_dir.join(POINTER)
}

/// Reads `active-index.json`.
pub fn read_active(data_dir: &Path) -> Result<Option<ActiveIndex>> {
    match std::fs::read_to_string(pointer(data_dir)) {
        Ok(text) => {
            Ok(Some(serde_json::from_str(&text).with_context(|| {
                format!("invalid {}", pointer(data_dir).display())
            })?))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", pointer(data_dir).display())),
    }
}

/// Writes `active-index.json` atomically (a crash leaves the old or the new one).
pub fn write_active(data_dir: &Path, active: &ActiveIndex) -> Result<()> {
    std::fs::create_dir_all(data_dir)?;
    let tmp = data_dir.join(format!("{POINTER}.tmp"));
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(serde_json::to_string_pretty(active)?.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, pointer(data_dir))?;
    if let Ok(d) = std::fs::File::open(data_dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// The embedder of an index made before `active-index.json` existed: the one its
/// documents name (all the same), or `None` for an empty or missing index.
async fn legacy_embedder(data_dir: &Path) -> Result<Option<String>> {
    let dir = data_dir.join(FIRST_INDEX_DIR);
    if !dir.join("documents.lance").exists() {
        return Ok(None);
    }
    // The dimension does not matter for reading the manifest: open with whatever
    // the chunks table has.
    let docs = Store::open_any(&dir).await?.documents().await?;
    Ok(docs
        .iter()
        .find(|d| d.state == DocState::Indexed)
        .map(|d| d.embedder.clone()))
}

/// Decides which index a start with the embedding model `embedder` (file `model`)
/// uses, and whether a switch is needed. `models_dir` finds the model of an index
/// made before the pointer existed (ids are file stems).
pub async fn plan(
    data_dir: &Path,
    models_dir: &Path,
    embedder: &str,
    model: &Path,
) -> Result<Plan> {
    let wanted = |dir: String| ActiveIndex {
        dir,
        embedder: embedder.to_string(),
        model: model.to_path_buf(),
    };
    let active = match read_active(data_dir)? {
        Some(a) => a,
        None => match legacy_embedder(data_dir).await? {
            None => {
                let a = wanted(FIRST_INDEX_DIR.into());
                write_active(data_dir, &a)?;
                return Ok(Plan::Current(a));
            }
            Some(id) => {
                let a = ActiveIndex {
                    dir: FIRST_INDEX_DIR.into(),
                    model: models_dir.join(format!("{id}.gguf")),
                    embedder: id,
                };
                write_active(data_dir, &a)?;
                a
            }
        },
    };
    if active.embedder == embedder {
        return Ok(Plan::Current(active));
    }
    Ok(Plan::Switch {
        from: active,
        to: wanted(dir_for(embedder)),
    })
}

/// Where a switch stands, for `/api/status`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SwitchStatus {
    /// Model in use until the switch completes.
    pub from: String,
    /// Model being switched to.
    pub to: String,
    /// `re-embedding`, `done` or `failed`.
    pub state: String,
    /// Documents re-embedded so far.
    pub documents_done: usize,
    /// Documents to re-embed.
    pub documents_total: usize,
    /// Chunks re-embedded so far.
    pub chunks: usize,
    /// Why it failed.
    pub error: Option<String>,
}

/// Shared view of a running switch.
pub type SwitchProgress = Arc<Mutex<Option<SwitchStatus>>>;

/// Copies `old`'s documents into `new` with vectors from `embedder`: the chunk texts
/// are re-embedded, nothing is extracted again. Documents already in `new` with the
/// same content are skipped, so an interrupted switch resumes where it stopped, and
/// a second pass after changes only does the changed documents. Returns the
/// documents re-embedded in this pass.
pub async fn reembed(
    old: &Store,
    new: &Store,
    embedder: Arc<dyn Embedder>,
    progress: &SwitchProgress,
) -> Result<usize> {
    let old_docs = old.documents().await?;
    let done: HashMap<String, String> = new
        .documents()
        .await?
        .into_iter()
        .filter(|d| d.embedder == embedder.id() && d.state != DocState::Pending)
        .map(|d| (d.id, d.content_hash))
        .collect();
    let todo: Vec<_> = old_docs
        .iter()
        .filter(|d| d.state != DocState::Pending)
        .filter(|d| done.get(&d.id) != Some(&d.content_hash))
        .collect();
    if let Some(p) = progress.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
        p.documents_total = p.documents_done + todo.len();
    }
    for doc in &todo {
        let mut record = (*doc).clone();
        record.embedder = embedder.id().to_string();
        if doc.state == DocState::Indexed {
            let mut chunks = old.document_chunks(&doc.id).await?;
            for batch in chunks.chunks_mut(BATCH) {
                let texts: Vec<String> = batch.iter().map(|c| c.text.clone()).collect();
                let e = Arc::clone(&embedder);
                let vectors =
                    tokio::task::spawn_blocking(move || e.embed_background(&texts)).await??;
                for (c, v) in batch.iter_mut().zip(vectors) {
                    c.vector = v;
                }
            }
            new.replace_chunks(&doc.id, &chunks).await?;
            if let Some(p) = progress.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
                p.chunks += chunks.len();
            }
        }
        new.put_document(&record).await?;
        if let Some(p) = progress.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            p.documents_done += 1;
        }
    }
    // Documents removed from the old index meanwhile leave the new one too.
    for d in new.documents().await? {
        if !old_docs.iter().any(|o| o.id == d.id) {
            new.delete_document(&d.id).await?;
        }
    }
    Ok(todo.len())
}

/// Opens the index of `embedder` for a one-shot command: switches first (in the
/// foreground, reporting on stderr) when the active index was made by another model.
pub async fn open_current(
    data_dir: &Path,
    models_dir: &Path,
    embedder: &Arc<dyn Embedder>,
    model: &Path,
    tuning: SearchTuning,
) -> Result<Store> {
    match plan(data_dir, models_dir, embedder.id(), model).await? {
        Plan::Current(a) => Ok(Store::open(&data_dir.join(&a.dir), embedder.dim())
            .await?
            .with_tuning(tuning)),
        Plan::Switch { from, to } => {
            eprintln!(
                "switching the embedding model from {} to {}: re-embedding the indexed text (nothing is extracted again)",
                from.embedder, to.embedder
            );
            let old = Store::open_any(&data_dir.join(&from.dir)).await?;
            let new = Store::open(&data_dir.join(&to.dir), embedder.dim()).await?;
            let progress: SwitchProgress = Arc::default();
            let n = reembed(&old, &new, Arc::clone(embedder), &progress).await?;
            write_active(data_dir, &to)?;
            eprintln!("re-embedded {n} documents; {} is in use", to.embedder);
            Ok(new.with_tuning(tuning))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_are_named_after_the_model() {
        assert_eq!(
            dir_for("bge-small-en-v1.5-q8_0"),
            "index-bge-small-en-v1.5-q8_0"
        );
        assert_eq!(dir_for("a/b c"), "index-a_b_c");
    }

    #[tokio::test]
    async fn a_fresh_data_dir_uses_the_first_folder_and_a_new_model_switches() {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path();
        let p = plan(data, data, "model-a", Path::new("/m/model-a.gguf"))
            .await
            .unwrap();
        let Plan::Current(a) = p else { panic!("{p:?}") };
        assert_eq!(a.dir, FIRST_INDEX_DIR);
        assert_eq!(read_active(data).unwrap(), Some(a.clone()));
        let again = plan(data, data, "model-a", Path::new("/m/model-a.gguf"))
            .await
            .unwrap();
        assert_eq!(again, Plan::Current(a.clone()));
        let p = plan(data, data, "model-b", Path::new("/m/model-b.gguf"))
            .await
            .unwrap();
        let Plan::Switch { from, to } = p else {
            panic!("{p:?}")
        };
        assert_eq!(from, a);
        assert_eq!(to.dir, "index-model-b");
        assert_eq!(to.embedder, "model-b");
    }
}

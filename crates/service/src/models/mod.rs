//! Finding and loading the models.

pub mod catalog;
pub mod pull;

use crate::config::{DEFAULT_CHAT_MODEL, DEFAULT_EMBEDDING_MODEL, DEFAULT_EMBEDDING_SOURCE};
use anyhow::{Context, Result, bail};
use docchat_core::{Embedder, Generator};
use docchat_llm::meta::{self, Fit, MemoryEstimate, ModelInfo};
use docchat_llm::{ChatModel, EmbeddingModel, EngineOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where the models are.
#[derive(Debug, Clone)]
pub struct ModelPaths {
    /// Folder of the default models.
    pub dir: PathBuf,
    /// Chat model file (explicit or default).
    pub chat: PathBuf,
    /// Embedding model file (explicit or default).
    pub embedding: PathBuf,
}

impl ModelPaths {
    /// Explicit paths win; otherwise the defaults in `dir`.
    pub fn resolve(dir: PathBuf, chat: Option<PathBuf>, embedding: Option<PathBuf>) -> Self {
        Self {
            chat: chat.unwrap_or_else(|| dir.join(DEFAULT_CHAT_MODEL)),
            embedding: embedding.unwrap_or_else(|| dir.join(DEFAULT_EMBEDDING_MODEL)),
            dir,
        }
    }
}

/// Loads the embedding model; the default one is imported from its checkpoint on
/// first use when the setup script fetched the checkpoint but no GGUF exists yet.
/// What to do about a model file that will not load.
const REPLACE_MODEL: &str = "Replace the file: for the default models run scripts/setup.sh \
     again (it checks their checksums), for a catalog model run \
     `docchat models pull ID`, or point --chat-model / --embedding-model at a good GGUF file";

pub fn load_embedder(paths: &ModelPaths, opts: &EngineOptions) -> Result<Arc<dyn Embedder>> {
    if !paths.embedding.exists() {
        let source = paths.dir.join(DEFAULT_EMBEDDING_SOURCE);
        if paths.embedding == paths.dir.join(DEFAULT_EMBEDDING_MODEL)
            && source.join("config.json").exists()
        {
            tracing::info!(from = %source.display(), "importing the default embedding model");
            docchat_llm::import::import_sentence_transformer(&source, &paths.embedding)
                .context("cannot import the default embedding model")?;
        } else {
            bail!(
                "embedding model not found at {} (run scripts/setup.sh, or pass --embedding-model)",
                paths.embedding.display()
            );
        }
    }
    let model = EmbeddingModel::load(&paths.embedding, opts)
        .map_err(|e| anyhow::anyhow!("{e}\n{REPLACE_MODEL}"))?;
    tracing::info!(model = %model.id(), dim = model.dim(), "embedding model ready");
    Ok(Arc::new(model))
}

/// Loads the chat model.
pub fn load_generator(path: &Path, opts: &EngineOptions) -> Result<Arc<dyn Generator>> {
    if !path.exists() {
        bail!(
            "chat model not found at {} (run scripts/setup.sh, or pass --chat-model)",
            path.display()
        );
    }
    let model = ChatModel::load(path, opts).map_err(|e| anyhow::anyhow!("{e}\n{REPLACE_MODEL}"))?;
    tracing::info!(
        model = %model.id(),
        ctx = model.context_size(),
        chat_template = model.has_chat_template(),
        "chat model ready"
    );
    Ok(Arc::new(model))
}

/// One row of `docchat models list`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ModelRow {
    /// File name or catalog name.
    pub name: String,
    /// Where the file is (absent for catalog rows not downloaded).
    pub path: Option<PathBuf>,
    /// `chat model`, `embedding model`, or empty.
    pub in_use: Option<&'static str>,
    /// What the metadata says (absent when the file cannot be read).
    pub info: Option<ModelInfo>,
    /// Why the file cannot be read.
    pub error: Option<String>,
    /// Memory needed at the listed context.
    pub memory: Option<MemoryEstimate>,
    /// Catalog facts: family, parameters, source, checksum.
    pub catalog: Option<catalog::Entry>,
}

/// The GGUF files in the models folder and the configured paths.
pub fn known_models(paths: &ModelPaths) -> Vec<ModelRow> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(&paths.dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| {
                    p.extension()
                        .is_some_and(|x| x.eq_ignore_ascii_case("gguf"))
                })
                .collect()
        })
        .unwrap_or_default();
    for p in [&paths.chat, &paths.embedding] {
        if !files.contains(p) {
            files.push(p.clone());
        }
    }
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let in_use = if path == paths.chat {
                Some("chat model")
            } else if path == paths.embedding {
                Some("embedding model")
            } else {
                None
            };
            let (info, error) = match meta::read_info(&path) {
                Ok(i) => (Some(i), None),
                Err(e) if !path.exists() => (None, Some(format!("missing ({e})"))),
                Err(e) => (None, Some(e.to_string())),
            };
            ModelRow {
                name: path
                    .file_name()
                    .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
                path: Some(path),
                in_use,
                info,
                error,
                memory: None,
                catalog: None,
            }
        })
        .collect()
}

/// The catalog, with each model's memory at `ctx`.
pub fn catalog_rows(ctx: u64) -> Result<Vec<ModelRow>> {
    Ok(catalog::entries()?
        .into_iter()
        .map(|e| {
            let info = e.info();
            ModelRow {
                name: e.name.clone(),
                path: None,
                in_use: None,
                memory: Some(meta::estimate_memory(&info, ctx.min(info.context_length))),
                info: Some(info),
                error: None,
                catalog: Some(e),
            }
        })
        .collect())
}

fn mib(bytes: u64) -> String {
    if bytes >= 10 << 30 {
        format!("{:.1} GiB", bytes as f64 / f64::from(1u32 << 30))
    } else {
        format!("{} MiB", bytes.div_ceil(1 << 20))
    }
}

/// The rows as a table.
pub fn table(rows: &[ModelRow], ctx: u64) -> String {
    let mut out = String::new();
    let catalog = rows.iter().any(|r| r.catalog.is_some());
    if catalog {
        out.push_str(&format!(
            "{:<22} {:<10} {:<18} {:<8} {:>9} {:>10}  {}\n",
            "NAME",
            "KIND",
            "PARAMETERS",
            "QUANT",
            "FILE",
            format!("AT {ctx}"),
            "SOURCE"
        ));
    } else {
        out.push_str(&format!(
            "{:<44} {:<10} {:<12} {:>7} {:<9} {:>8} {:>9}  {}\n",
            "FILE", "KIND", "ARCH", "PARAMS", "QUANT", "CONTEXT", "SIZE", "USE"
        ));
    }
    let avail = system_memory().available;
    for r in rows {
        match (&r.info, &r.catalog) {
            (Some(i), Some(c)) => {
                let need = r.memory.map_or(0, |m| m.total());
                let source = if c.repo.is_empty() {
                    "installed by scripts/setup.sh".to_string()
                } else {
                    format!("{}/{}", c.repo, c.file)
                };
                out.push_str(&format!(
                    "{:<22} {:<10} {:<18} {:<8} {:>9} {:>10}  {source}{}\n",
                    c.name,
                    i.kind(),
                    c.params,
                    c.quant,
                    mib(i.file_size),
                    format!("{} {}", mib(need), fit_mark(Fit::of(need, avail))),
                    if c.sha256.is_some() {
                        ""
                    } else {
                        "  (no checksum)"
                    },
                ));
            }
            (Some(i), None) => out.push_str(&format!(
                "{:<44} {:<10} {:<12} {:>7} {:<9} {:>8} {:>9}  {}\n",
                r.name,
                i.kind(),
                i.architecture,
                i.parameters_label(),
                i.quantization,
                i.context_length,
                mib(i.file_size),
                r.in_use.unwrap_or(""),
            )),
            _ => out.push_str(&format!(
                "{:<44} {}{}\n",
                r.name,
                r.error.as_deref().unwrap_or("unreadable"),
                r.in_use.map(|u| format!("  [{u}]")).unwrap_or_default()
            )),
        }
    }
    if catalog {
        out.push_str(&format!(
            "\n(+) fits, (~) tight, (-) will not fit in the {} available now\n",
            mib(avail)
        ));
    }
    out
}

fn fit_mark(f: Fit) -> &'static str {
    match f {
        Fit::Fits => "(+)",
        Fit::Tight => "(~)",
        Fit::WillNotFit => "(-)",
    }
}

/// This machine's memory, in bytes, from `/proc/meminfo`.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct SystemMemory {
    pub total: u64,
    pub available: u64,
}

/// Reads `/proc/meminfo` (zeros where it cannot be read).
pub fn system_memory() -> SystemMemory {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .map_or(0, |kb| kb * 1024)
    };
    SystemMemory {
        total: field("MemTotal:"),
        available: field("MemAvailable:"),
    }
}

/// GPU memory (total, free) in bytes of the first NVIDIA GPU, when `nvidia-smi` is there.
pub fn gpu_memory() -> Option<(u64, u64)> {
    let out = std::process::Command::new("nvidia-smi")
        .args([
            "--query-gpu=memory.total,memory.free",
            "--format=csv,noheader,nounits",
        ])
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let mut it = text
        .lines()
        .next()?
        .split(',')
        .map(|v| v.trim().parse::<u64>().ok());
    Some((it.next()?? << 20, it.next()?? << 20))
}

/// `docchat models info`: the need against what the machine has.
#[derive(Debug, Clone, serde::Serialize)]
pub struct InfoReport {
    pub model: String,
    pub path: Option<PathBuf>,
    pub info: ModelInfo,
    pub memory: MemoryEstimate,
    pub system: SystemMemory,
    /// `fits`, `tight` or `will_not_fit`, against the available RAM.
    pub fit: Fit,
    /// The largest context (multiple of 256) that fits, if any.
    pub largest_context: Option<u64>,
    /// GPU memory (total, free), where an NVIDIA GPU is present.
    pub gpu: Option<(u64, u64)>,
    /// How the weights and cache compare with the free GPU memory.
    pub gpu_fit: Option<Fit>,
    /// For an embedding model, the languages its vectors cover.
    pub languages: Option<String>,
}

/// Vocabularies this large hold the pieces of many scripts and languages
/// (XLM-RoBERTa's has 250,002); English BERT's has 30,522.
const MULTILINGUAL_VOCAB: u64 = 200_000;

/// The languages an embedding model covers: the catalog's word, else what its
/// name or vocabulary says.
fn embedding_languages(info: &ModelInfo, name: &str, entry: Option<&catalog::Entry>) -> String {
    if let Some(l) = entry.and_then(|e| e.languages.clone()) {
        return l;
    }
    if crate::answer::retrieve::multilingual_embedder(name) || info.vocab_size >= MULTILINGUAL_VOCAB
    {
        "many languages (a multilingual vocabulary)".to_string()
    } else {
        "English, by its vocabulary (other languages are searched by their keywords)".to_string()
    }
}

impl InfoReport {
    /// The report for a terminal.
    pub fn render(&self) -> String {
        let i = &self.info;
        let m = &self.memory;
        let mut out = format!(
            "{}: {} {} ({}), {} parameters, {} layers, context {} (trained)\n",
            self.model,
            i.kind(),
            i.architecture,
            i.quantization,
            i.parameters_label(),
            i.layers,
            i.context_length
        );
        out.push_str(&format!(
            "memory at a context of {} tokens:\n  weights   {:>10}\n  KV cache  {:>10}\n  compute   {:>10}\n  total     {:>10}\n",
            m.ctx,
            mib(m.weights),
            mib(m.kv_cache),
            mib(m.compute),
            mib(m.total())
        ));
        out.push_str(&format!(
            "this machine: {} available of {} RAM: {}\n",
            mib(self.system.available),
            mib(self.system.total),
            self.fit.as_str()
        ));
        if let (Some((total, free)), Some(f)) = (self.gpu, self.gpu_fit) {
            out.push_str(&format!(
                "GPU: {} free of {}: {} with every layer offloaded\n",
                mib(free),
                mib(total),
                f.as_str()
            ));
        }
        if let Some(l) = &self.languages {
            out.push_str(&format!("languages: {l}\n"));
        }
        match self.largest_context {
            Some(c) => out.push_str(&format!("largest context that fits: {c} tokens\n")),
            None => out.push_str("not even a 256-token context fits in the available memory\n"),
        }
        out
    }
}

/// A model argument as a file: a path, a file in the models folder, or the file of
/// a catalog entry in the models folder.
pub fn resolve_model_path(dir: &Path, model: &str) -> Result<PathBuf> {
    let direct = PathBuf::from(model);
    if direct.is_file() {
        return Ok(std::fs::canonicalize(&direct)?);
    }
    let in_dir = dir.join(model);
    if in_dir.is_file() {
        return Ok(in_dir);
    }
    if let Some(e) = catalog::find(model)? {
        let p = dir.join(&e.file);
        if p.is_file() {
            return Ok(p);
        }
        bail!(
            "{model} is in the catalog but not downloaded; run: docchat models pull {}",
            e.name
        );
    }
    bail!(
        "no model {model:?}: not a file, not in {}, not in the catalog (docchat models list --catalog)",
        dir.display()
    )
}

/// `docchat models info MODEL --ctx N`: from the file when it is here, else from
/// the catalog's figures.
pub fn info(paths: &ModelPaths, model: &str, ctx: u64) -> Result<InfoReport> {
    let (info, path) = match resolve_model_path(&paths.dir, model) {
        Ok(p) => (meta::read_info(&p)?, Some(p)),
        Err(e) => match catalog::find(model)? {
            Some(entry) => (entry.info(), None),
            None => return Err(e),
        },
    };
    let memory = meta::estimate_memory(&info, ctx);
    let system = system_memory();
    let gpu = gpu_memory();
    let entry = catalog::find(model)?.or_else(|| {
        let file = path.as_ref()?.file_name()?.to_str()?.to_string();
        catalog::entries()
            .ok()?
            .into_iter()
            .find(|e| e.file.eq_ignore_ascii_case(&file))
    });
    let languages = info
        .embedding
        .then(|| embedding_languages(&info, model, entry.as_ref()));
    Ok(InfoReport {
        model: model.to_string(),
        path,
        fit: Fit::of(memory.total(), system.available),
        largest_context: meta::largest_context(&info, system.available),
        gpu_fit: gpu.map(|(_, free)| Fit::of(memory.total(), free)),
        gpu,
        info,
        memory,
        system,
        languages,
    })
}

/// What `docchat models pull MODEL` fetches.
pub fn download_for(
    dir: &Path,
    endpoint: &str,
    model: &str,
    sha256: Option<String>,
    no_verify: bool,
) -> Result<crate::models::pull::Download> {
    let sha256 = sha256.map(|s| s.trim().to_ascii_lowercase());
    if let Some(s) = &sha256
        && (s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        bail!("--sha256 takes 64 hexadecimal digits");
    }
    let (repo, file, known) = if let Some(e) = catalog::find(model)? {
        if e.repo.is_empty() {
            bail!(
                "{} is {}; there is nothing to download",
                e.name,
                e.note.as_deref().unwrap_or("installed by scripts/setup.sh")
            );
        }
        (e.repo, e.file, e.sha256)
    } else {
        let Some((repo, file)) = model.rsplit_once('/') else {
            bail!(
                "{model:?} is not in the catalog (docchat models list --catalog) and not OWNER/REPO/FILE.gguf"
            );
        };
        if !repo.contains('/') || !file.ends_with(".gguf") || file.contains("..") {
            bail!("{model:?}: name a file as OWNER/REPO/FILE.gguf");
        }
        (repo.to_string(), file.to_string(), None)
    };
    let expected = match (sha256, known) {
        (Some(given), Some(k)) if given != k => {
            bail!("--sha256 {given} differs from the catalog's checksum {k}")
        }
        (Some(s), _) | (None, Some(s)) => Some(s),
        (None, None) if no_verify => None,
        (None, None) => bail!(
            "no checksum is known for {file}: pass --sha256 HEX (from the model's page), or --no-verify to accept it unverified"
        ),
    };
    Ok(crate::models::pull::Download {
        url: crate::models::pull::file_url(endpoint, &repo, &file),
        dest: dir.join(&file),
        sha256: expected,
    })
}

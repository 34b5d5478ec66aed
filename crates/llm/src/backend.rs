use crate::{Error, Result};
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::{LogOptions, send_logs_to_tracing};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

static BACKEND: OnceLock<LlamaBackend> = OnceLock::new();
static INIT: Mutex<()> = Mutex::new(());

/// The process-wide llama.cpp backend (initialized once; its log goes to `tracing`).
pub(crate) fn backend() -> Result<&'static LlamaBackend> {
    if let Some(b) = BACKEND.get() {
        return Ok(b);
    }
    let _guard = INIT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(b) = BACKEND.get() {
        return Ok(b);
    }
    send_logs_to_tracing(LogOptions::default());
    let b = LlamaBackend::init().map_err(|e| Error::Backend(e.to_string()))?;
    Ok(BACKEND.get_or_init(|| b))
}

/// Loads a GGUF model with the engine options; returns it with its id (the file
/// name without extension).
pub(crate) fn load_model(path: &Path, opts: &EngineOptions) -> Result<(Arc<LlamaModel>, String)> {
    let params = LlamaModelParams::default()
        .with_n_gpu_layers(opts.gpu_layers)
        .with_use_mmap(opts.mmap);
    let model = LlamaModel::load_from_file(backend()?, path, &params).map_err(|e| Error::Load {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    let id = path
        .file_stem()
        .map_or_else(|| "model".into(), |s| s.to_string_lossy().into_owned());
    Ok((Arc::new(model), id))
}

/// Options of the engine, mirroring llama-server's.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct EngineOptions {
    /// Context size in tokens (0: the model's training context, capped at 8192).
    pub ctx_size: u32,
    /// Threads for generation (0: all cores).
    pub threads: i32,
    /// Logical batch size for prompt processing.
    pub batch_size: u32,
    /// Layers to offload to the GPU (needs a GPU build).
    pub gpu_layers: u32,
    /// Memory-map the model file.
    pub mmap: bool,
    /// Use flash attention when the backend supports it.
    pub flash_attention: bool,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            ctx_size: 4096,
            threads: 0,
            batch_size: 512,
            gpu_layers: 0,
            mmap: true,
            flash_attention: false,
        }
    }
}

impl EngineOptions {
    pub(crate) fn thread_count(&self) -> i32 {
        if self.threads > 0 {
            self.threads
        } else {
            std::thread::available_parallelism().map_or(4, |n| i32::try_from(n.get()).unwrap_or(4))
        }
    }
}

/// A one-line description of what the llama.cpp build supports.
pub fn system_info() -> Result<String> {
    let b = backend()?;
    Ok(format!(
        "gpu_offload={} mmap={}",
        b.supports_gpu_offload(),
        b.supports_mmap()
    ))
}

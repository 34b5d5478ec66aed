use crate::{Error, Result};
use docchat_core::Priority;
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
    let mut params = std::pin::pin!(
        LlamaModelParams::default()
            .with_n_gpu_layers(opts.gpu_layers)
            .with_use_mmap(opts.mmap)
    );
    if opts.cpu_moe {
        // Mixture-of-experts weights stay in host memory; the rest may go to the GPU.
        params.as_mut().add_cpu_moe_override();
    }
    // A damaged or incomplete file is named with what is wrong, not llama.cpp's
    // bare "null result".
    crate::meta::read_info(path)?;
    let model = LlamaModel::load_from_file(backend()?, path, &params).map_err(|e| Error::Load {
        path: path.display().to_string(),
        reason: format!("llama.cpp cannot load it ({e})"),
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
    /// Logical batch size for prompt processing (tokens per decode call).
    pub batch_size: u32,
    /// Physical batch size (tokens per compute pass; at most `batch_size`).
    pub ubatch_size: u32,
    /// Layers to offload to the GPU (needs a GPU build).
    pub gpu_layers: u32,
    /// Memory-map the model file.
    pub mmap: bool,
    /// Flash attention: on, off, or left to llama.cpp (`auto`).
    pub flash_attention: FlashAttention,
    /// Keep the experts of a mixture-of-experts model in host memory (with a GPU:
    /// the dense layers go to the GPU, the experts stay in RAM).
    pub cpu_moe: bool,
    /// Shared by every model loaded with these options: background embedding
    /// pauses while foreground work (a user waiting for an answer) holds it.
    #[serde(skip)]
    pub priority: Arc<Priority>,
}

/// Whether the attention uses llama.cpp's flash-attention kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FlashAttention {
    /// llama.cpp decides per backend.
    #[default]
    Auto,
    /// Always.
    On,
    /// Never.
    Off,
}

impl FlashAttention {
    /// The name `from_str` reads back: auto, on or off.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::On => "on",
            Self::Off => "off",
        }
    }

    /// llama.cpp's `llama_flash_attn_type` value.
    pub(crate) fn policy(self) -> i32 {
        match self {
            Self::Auto => -1,
            Self::Off => 0,
            Self::On => 1,
        }
    }
}

impl std::str::FromStr for FlashAttention {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "auto" => Ok(Self::Auto),
            "on" | "true" | "1" => Ok(Self::On),
            "off" | "false" | "0" => Ok(Self::Off),
            other => Err(format!("flash attention is auto, on or off, not {other:?}")),
        }
    }
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            ctx_size: 4096,
            threads: 0,
            batch_size: 512,
            ubatch_size: 512,
            gpu_layers: 0,
            mmap: true,
            flash_attention: FlashAttention::Auto,
            cpu_moe: false,
            priority: Priority::new(),
        }
    }
}

impl EngineOptions {
    /// The threads llama.cpp runs with: `threads`, else every available core.
    pub fn thread_count(&self) -> i32 {
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

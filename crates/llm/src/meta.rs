//! What a GGUF file says about its model, read straight from the header (no
//! llama.cpp, no loading), and what running it costs in memory.

use crate::{Error, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

/// The facts of a GGUF model that matter to a user choosing one.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ModelInfo {
    /// `general.architecture` (`llama`, `gemma3`, `bert`, …).
    pub architecture: String,
    /// `general.name`, when the file has one.
    pub name: Option<String>,
    /// Parameters, counted from the tensor shapes.
    pub parameters: u64,
    /// Quantization of the weights (`Q4_K_M`, `F16`, …), from `general.file_type`.
    pub quantization: String,
    /// Context length the model was trained for.
    pub context_length: u64,
    /// Transformer blocks.
    pub layers: u64,
    /// Width of the hidden state.
    pub embedding_length: u64,
    /// Attention heads.
    pub heads: u64,
    /// Key/value heads (fewer than `heads` with grouped-query attention).
    pub kv_heads: u64,
    /// Width of one key head.
    pub key_length: u64,
    /// Width of one value head.
    pub value_length: u64,
    /// Tokens in the vocabulary.
    pub vocab_size: u64,
    /// Experts of a mixture-of-experts model (0 for a dense one).
    pub experts: u64,
    /// Whether this is an embedding model (pooled output) rather than a chat model.
    pub embedding: bool,
    /// Whether the file carries a chat template.
    pub chat_template: bool,
    /// File size in bytes.
    pub file_size: u64,
}

impl ModelInfo {
    /// `embedding` or `chat`.
    pub fn kind(&self) -> &'static str {
        if self.embedding { "embedding" } else { "chat" }
    }

    /// Parameters in a short form: `270M`, `1.2B`.
    pub fn parameters_label(&self) -> String {
        let p = self.parameters as f64;
        if p >= 1e9 {
            format!("{:.1}B", p / 1e9)
        } else {
            format!("{:.0}M", p / 1e6)
        }
    }
}

/// Memory needed to run a model at a context size, in bytes.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct MemoryEstimate {
    /// Context size in tokens.
    pub ctx: u64,
    /// The weights (the tensor data of the file).
    pub weights: u64,
    /// The KV cache (f16 keys and values of every layer at `ctx` tokens).
    pub kv_cache: u64,
    /// Compute buffers: attention scores, activations and logits of one batch.
    pub compute: u64,
}

impl MemoryEstimate {
    /// All of it.
    pub fn total(&self) -> u64 {
        self.weights + self.kv_cache + self.compute
    }
}

/// Tokens per batch the estimate assumes (llama.cpp's default micro-batch).
const UBATCH: u64 = 512;
/// Fixed overhead of a context: graph, scratch, runtime.
const OVERHEAD: u64 = 48 << 20;

/// What running `info` with a context of `ctx` tokens needs: llama.cpp's layout of
/// f16 keys and values for every layer, attention scores of one micro-batch over the
/// whole context, activations, and the logits of one token.
pub fn estimate_memory(info: &ModelInfo, ctx: u64) -> MemoryEstimate {
    let ctx = ctx.max(1);
    let kv_width = info.kv_heads * (info.key_length + info.value_length);
    let kv_cache = info.layers * ctx * kv_width * 2;
    let ubatch = UBATCH.min(ctx);
    let scores = info.heads * ctx * ubatch * 4;
    let activations = info.embedding_length * ubatch * 4 * 8;
    let logits = info.vocab_size * 4 * if info.embedding { 0 } else { 1 };
    MemoryEstimate {
        ctx,
        weights: info.file_size,
        kv_cache,
        compute: scores + activations + logits + OVERHEAD,
    }
}

/// How a need compares with what the machine has.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Fit {
    /// Within 80 % of the available memory.
    Fits,
    /// Within the available memory, but with little left for anything else.
    Tight,
    /// More than the available memory.
    WillNotFit,
}

impl Fit {
    /// Compares `need` with `available` bytes.
    pub fn of(need: u64, available: u64) -> Self {
        if need.saturating_mul(10) <= available.saturating_mul(8) {
            Self::Fits
        } else if need <= available {
            Self::Tight
        } else {
            Self::WillNotFit
        }
    }

    /// `fits`, `tight` or `will not fit`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fits => "fits",
            Self::Tight => "tight",
            Self::WillNotFit => "will not fit",
        }
    }
}

/// The largest context (a multiple of 256, at most the trained length) whose need
/// stays within 80 % of `available`; `None` when not even 256 tokens fit.
pub fn largest_context(info: &ModelInfo, available: u64) -> Option<u64> {
    let limit = info.context_length.max(256);
    let fits = |ctx: u64| Fit::of(estimate_memory(info, ctx).total(), available) == Fit::Fits;
    if !fits(256) {
        return None;
    }
    let (mut lo, mut hi) = (1u64, limit / 256);
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if fits(mid * 256) {
            lo = mid
        } else {
            hi = mid - 1
        }
    }
    Some(lo * 256)
}

/// A metadata value, as far as the summary needs it.
#[derive(Debug, Clone, PartialEq)]
enum Meta {
    Int(i128),
    Float(f64),
    Bool(bool),
    Str(String),
    /// An array: its length and, for integer arrays, the largest element.
    Array {
        len: u64,
        max_int: Option<i128>,
    },
}

impl Meta {
    fn as_u64(&self) -> Option<u64> {
        match self {
            Self::Int(i) => u64::try_from(*i).ok(),
            Self::Array {
                max_int: Some(m), ..
            } => u64::try_from(*m).ok(),
            _ => None,
        }
    }
}

struct Reader<R> {
    inner: R,
    path: String,
}

impl<R: Read + Seek> Reader<R> {
    fn bad(&self, what: impl std::fmt::Display) -> Error {
        Error::Load {
            path: self.path.clone(),
            reason: format!("not a valid GGUF file: {what}"),
        }
    }

    fn bytes<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut b = [0u8; N];
        self.inner
            .read_exact(&mut b)
            .map_err(|e| self.bad(format!("truncated header ({e})")))?;
        Ok(b)
    }

    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.bytes()?))
    }

    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.bytes()?))
    }

    fn string(&mut self) -> Result<String> {
        let len = self.u64()?;
        if len > 64 << 20 {
            return Err(self.bad(format!("a string of {len} bytes")));
        }
        let mut buf = vec![0u8; len as usize];
        self.inner
            .read_exact(&mut buf)
            .map_err(|e| self.bad(format!("truncated string ({e})")))?;
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }

    fn skip(&mut self, n: u64) -> Result<()> {
        let n = i64::try_from(n).map_err(|_| self.bad("a value too large"))?;
        self.inner.seek(SeekFrom::Current(n))?;
        Ok(())
    }

    /// Reads a value of GGUF type `ty`.
    fn value(&mut self, ty: u32) -> Result<Meta> {
        Ok(match ty {
            0 => Meta::Int(i128::from(self.bytes::<1>()?[0])),
            1 => Meta::Int(i128::from(i8::from_le_bytes(self.bytes()?))),
            2 => Meta::Int(i128::from(u16::from_le_bytes(self.bytes()?))),
            3 => Meta::Int(i128::from(i16::from_le_bytes(self.bytes()?))),
            4 => Meta::Int(i128::from(self.u32()?)),
            5 => Meta::Int(i128::from(i32::from_le_bytes(self.bytes()?))),
            6 => Meta::Float(f64::from(f32::from_le_bytes(self.bytes()?))),
            7 => Meta::Bool(self.bytes::<1>()?[0] != 0),
            8 => Meta::Str(self.string()?),
            9 => {
                let item = self.u32()?;
                let len = self.u64()?;
                let width = match item {
                    0 | 1 | 7 => Some(1),
                    2 | 3 => Some(2),
                    4..=6 => Some(4),
                    10..=12 => Some(8),
                    _ => None,
                };
                let integer = matches!(item, 0..=5 | 10 | 11);
                match width {
                    // Integer arrays (per-layer head counts) are read for their
                    // maximum; other fixed-width arrays are skipped.
                    Some(_) if integer && len <= 4096 => {
                        let mut max = None;
                        for _ in 0..len {
                            if let Meta::Int(i) = self.value(item)? {
                                max = Some(max.map_or(i, |m: i128| m.max(i)));
                            }
                        }
                        Meta::Array { len, max_int: max }
                    }
                    Some(w) => {
                        self.skip(w * len)?;
                        Meta::Array { len, max_int: None }
                    }
                    None if item == 8 => {
                        for _ in 0..len {
                            let n = self.u64()?;
                            self.skip(n)?;
                        }
                        Meta::Array { len, max_int: None }
                    }
                    None => return Err(self.bad(format!("an array of type {item}"))),
                }
            }
            10 => Meta::Int(i128::from(self.u64()?)),
            11 => Meta::Int(i128::from(i64::from_le_bytes(self.bytes()?))),
            12 => Meta::Float(f64::from_le_bytes(self.bytes()?)),
            other => return Err(self.bad(format!("a value of type {other}"))),
        })
    }
}

/// Bytes of `count` elements of ggml tensor type `ty` (`None` for a type not known
/// here): (elements per block, bytes per block) as ggml lays them out.
fn tensor_bytes(ty: u32, count: u64) -> Option<u64> {
    let (block, size) = match ty {
        0 => (1, 4),       // F32
        1 => (1, 2),       // F16
        2 => (32, 18),     // Q4_0
        3 => (32, 20),     // Q4_1
        6 => (32, 22),     // Q5_0
        7 => (32, 24),     // Q5_1
        8 => (32, 34),     // Q8_0
        9 => (32, 36),     // Q8_1
        10 => (256, 84),   // Q2_K
        11 => (256, 110),  // Q3_K
        12 => (256, 144),  // Q4_K
        13 => (256, 176),  // Q5_K
        14 => (256, 210),  // Q6_K
        15 => (256, 292),  // Q8_K
        24 => (1, 1),      // I8
        25 | 30 => (1, 2), // I16, BF16
        26 => (1, 4),      // I32
        27 | 28 => (1, 8), // I64, F64
        _ => return None,
    };
    Some(count.div_ceil(block) * size)
}

/// The name llama.cpp gives a `general.file_type`.
fn quantization_name(file_type: u64) -> String {
    let name = match file_type {
        0 => "F32",
        1 => "F16",
        2 => "Q4_0",
        3 => "Q4_1",
        7 => "Q8_0",
        8 => "Q5_0",
        9 => "Q5_1",
        10 => "Q2_K",
        11 => "Q3_K_S",
        12 => "Q3_K_M",
        13 => "Q3_K_L",
        14 => "Q4_K_S",
        15 => "Q4_K_M",
        16 => "Q5_K_S",
        17 => "Q5_K_M",
        18 => "Q6_K",
        19 => "IQ2_XXS",
        20 => "IQ2_XS",
        21 => "Q2_K_S",
        22 => "IQ3_XS",
        23 => "IQ3_XXS",
        24 => "IQ1_S",
        25 => "IQ4_NL",
        26 => "IQ3_S",
        27 => "IQ3_M",
        28 => "IQ2_S",
        29 => "IQ2_M",
        30 => "IQ4_XS",
        31 => "IQ1_M",
        32 => "BF16",
        36 => "TQ1_0",
        37 => "TQ2_0",
        38 => "MXFP4_MOE",
        other => return format!("type {other}"),
    };
    name.to_string()
}

/// Architectures whose models llama.cpp runs as embedding models.
const EMBEDDING_ARCHITECTURES: &[&str] = &[
    "bert",
    "nomic-bert",
    "nomic-bert-moe",
    "jina-bert-v2",
    "modern-bert",
    "t5encoder",
];

/// Reads the summary of the GGUF model at `path`.
pub fn read_info(path: &Path) -> Result<ModelInfo> {
    let file = std::fs::File::open(path)?;
    let file_size = file.metadata()?.len();
    let mut r = Reader {
        inner: BufReader::new(file),
        path: path.display().to_string(),
    };
    if &r.bytes::<4>()? != b"GGUF" {
        return Err(r.bad("no GGUF magic"));
    }
    let version = r.u32()?;
    if !(2..=3).contains(&version) {
        return Err(r.bad(format!("version {version}")));
    }
    let tensors = r.u64()?;
    let kvs = r.u64()?;
    if tensors > 1 << 24 || kvs > 1 << 20 {
        return Err(r.bad("implausible counts"));
    }
    let mut meta = BTreeMap::new();
    for _ in 0..kvs {
        let key = r.string()?;
        let ty = r.u32()?;
        let value = r.value(ty)?;
        meta.insert(key, value);
    }
    let parameters = check_tensors(&mut r, tensors, &meta, file_size)?;
    info_of(&meta, parameters, file_size).ok_or_else(|| r.bad("no general.architecture"))
}

/// Reads the tensor infos: the parameter count, after checking that the file is
/// long enough for the tensors' data (an interrupted download or copy is not).
fn check_tensors(
    r: &mut Reader<BufReader<std::fs::File>>,
    tensors: u64,
    meta: &BTreeMap<String, Meta>,
    file_size: u64,
) -> Result<u64> {
    let mut parameters = 0u64;
    // Where the tensor data ends, relative to its start, as far as the types tell.
    let mut data_end = 0u64;
    for _ in 0..tensors {
        let _name = r.string()?;
        let dims = r.u32()?;
        if dims > 8 {
            return Err(r.bad(format!("a tensor of {dims} dimensions")));
        }
        let mut count = 1u64;
        for _ in 0..dims {
            count = count.saturating_mul(r.u64()?);
        }
        let ty = r.u32()?;
        let offset = r.u64()?;
        parameters = parameters.saturating_add(count);
        let bytes = tensor_bytes(ty, count).unwrap_or(0);
        data_end = data_end.max(offset.saturating_add(bytes));
    }
    let alignment = meta
        .get("general.alignment")
        .and_then(Meta::as_u64)
        .filter(|a| a.is_power_of_two())
        .unwrap_or(32);
    let header_end = r.inner.stream_position()?;
    let data_start = header_end.div_ceil(alignment) * alignment;
    let needed = data_start.saturating_add(data_end);
    if tensors > 0 && file_size < needed {
        return Err(Error::Load {
            path: r.path.clone(),
            reason: format!(
                "the file is incomplete: {file_size} bytes where its tensors need {needed} \
                 (an interrupted download or copy)"
            ),
        });
    }

    Ok(parameters)
}

/// What the metadata says of the model (`None`: no architecture).
fn info_of(meta: &BTreeMap<String, Meta>, parameters: u64, file_size: u64) -> Option<ModelInfo> {
    let text = |k: &str| match meta.get(k) {
        Some(Meta::Str(s)) => Some(s.clone()),
        _ => None,
    };
    let architecture = text("general.architecture")?;
    let arch_u64 = |k: &str| {
        meta.get(&format!("{architecture}.{k}"))
            .and_then(Meta::as_u64)
    };
    let embedding_length = arch_u64("embedding_length").unwrap_or(0);
    let heads = arch_u64("attention.head_count").unwrap_or(1).max(1);
    let kv_heads = arch_u64("attention.head_count_kv").unwrap_or(heads);
    let head_width = embedding_length / heads;
    let vocab_size = match meta.get("tokenizer.ggml.tokens") {
        Some(Meta::Array { len, .. }) => *len,
        _ => arch_u64("vocab_size").unwrap_or(0),
    };
    let embedding = meta.contains_key(&format!("{architecture}.pooling_type"))
        || EMBEDDING_ARCHITECTURES.contains(&architecture.as_str());
    Some(ModelInfo {
        name: text("general.name"),
        parameters,
        quantization: meta
            .get("general.file_type")
            .and_then(Meta::as_u64)
            .map_or_else(|| "unknown".into(), quantization_name),
        context_length: arch_u64("context_length").unwrap_or(0),
        layers: arch_u64("block_count").unwrap_or(0),
        embedding_length,
        heads,
        kv_heads,
        key_length: arch_u64("attention.key_length").unwrap_or(head_width),
        value_length: arch_u64("attention.value_length").unwrap_or(head_width),
        vocab_size,
        experts: arch_u64("expert_count").unwrap_or(0),
        embedding,
        chat_template: meta.contains_key("tokenizer.chat_template"),
        file_size,
        architecture,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gguf::{self, Tensor, TensorType, Value};

    fn sample(dir: &Path) -> std::path::PathBuf {
        let path = dir.join("tiny.gguf");
        let kv = vec![
            (
                "general.architecture".to_string(),
                Value::Str("llama".into()),
            ),
            ("general.name".to_string(), Value::Str("Tiny".into())),
            ("general.file_type".to_string(), Value::U32(15)),
            ("llama.context_length".to_string(), Value::U32(8192)),
            ("llama.block_count".to_string(), Value::U32(16)),
            ("llama.embedding_length".to_string(), Value::U32(2048)),
            ("llama.attention.head_count".to_string(), Value::U32(32)),
            (
                "llama.attention.head_count_kv".to_string(),
                Value::I32Array(vec![8; 16]),
            ),
            (
                "tokenizer.ggml.tokens".to_string(),
                Value::StrArray(vec!["a".into(), "b".into(), "c".into()]),
            ),
            (
                "tokenizer.chat_template".to_string(),
                Value::Str("{{ x }}".into()),
            ),
        ];
        let tensors = vec![
            Tensor {
                name: "a".into(),
                shape: vec![3, 4],
                dtype: TensorType::F32,
                data: vec![0; 48],
            },
            Tensor {
                name: "b".into(),
                shape: vec![5],
                dtype: TensorType::F16,
                data: vec![0; 10],
            },
        ];
        let mut out = std::fs::File::create(&path).unwrap();
        gguf::write(&mut out, &kv, &tensors).unwrap();
        path
    }

    #[test]
    fn the_header_describes_the_model() {
        let dir = tempfile::tempdir().unwrap();
        let info = read_info(&sample(dir.path())).unwrap();
        assert_eq!(info.architecture, "llama");
        assert_eq!(info.name.as_deref(), Some("Tiny"));
        assert_eq!(info.quantization, "Q4_K_M");
        assert_eq!(
            (info.parameters, info.layers, info.context_length),
            (17, 16, 8192)
        );
        assert_eq!((info.heads, info.kv_heads, info.key_length), (32, 8, 64));
        assert_eq!(info.vocab_size, 3);
        assert!(info.chat_template && !info.embedding);
        assert_eq!(info.kind(), "chat");
    }

    #[test]
    fn kv_cache_grows_with_the_context_and_the_fit_is_judged() {
        let info = ModelInfo {
            layers: 16,
            kv_heads: 8,
            key_length: 64,
            value_length: 64,
            heads: 32,
            embedding_length: 2048,
            vocab_size: 128_256,
            context_length: 131_072,
            file_size: 800 << 20,
            ..ModelInfo::default()
        };
        // 16 layers x 4096 tokens x 8 heads x (64 + 64) x 2 bytes = 128 MiB.
        let m = estimate_memory(&info, 4096);
        assert_eq!(m.kv_cache, 128 << 20);
        assert_eq!(estimate_memory(&info, 8192).kv_cache, 256 << 20);
        assert_eq!(Fit::of(m.total(), 8 << 30), Fit::Fits);
        assert_eq!(Fit::of(m.total(), m.total() + 1), Fit::Tight);
        assert_eq!(Fit::of(m.total(), 512 << 20), Fit::WillNotFit);
        let ctx = largest_context(&info, 2 << 30).expect("some context fits");
        assert_eq!(ctx % 256, 0);
        assert_eq!(
            Fit::of(estimate_memory(&info, ctx).total(), 2 << 30),
            Fit::Fits
        );
        assert_ne!(
            Fit::of(estimate_memory(&info, ctx + 256).total(), 2 << 30),
            Fit::Fits
        );
        assert_eq!(largest_context(&info, 64 << 30), Some(131_072));
        assert_eq!(largest_context(&info, 100 << 20), None);
    }

    #[test]
    fn other_files_are_refused_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.gguf");
        std::fs::write(&p, b"%PDF-1.4 not a model").unwrap();
        let e = read_info(&p).unwrap_err().to_string();
        assert!(e.contains("not a valid GGUF file"), "{e}");
        std::fs::write(&p, b"GGUF\x03\0\0\0").unwrap();
        assert!(read_info(&p).unwrap_err().to_string().contains("truncated"));
    }
}

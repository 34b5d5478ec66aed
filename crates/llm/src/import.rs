//! Import of a BERT-family sentence-transformers checkpoint (config.json,
//! model.safetensors, vocab.txt or tokenizer.json, 1_Pooling/config.json) into a GGUF
//! that llama.cpp loads as an embedding model.

use crate::gguf::{self, Tensor, TensorType, Value};
use crate::{Error, Result};
use half::{bf16, f16};
use safetensors::{Dtype, SafeTensors};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, Deserialize)]
struct BertConfig {
    hidden_size: u32,
    intermediate_size: u32,
    num_attention_heads: u32,
    num_hidden_layers: u32,
    max_position_embeddings: u32,
    #[serde(default = "default_eps")]
    layer_norm_eps: f32,
    #[serde(default)]
    model_type: Option<String>,
}

fn default_eps() -> f32 {
    1e-12
}

#[derive(Debug, Default, Deserialize)]
struct PoolingConfig {
    #[serde(default)]
    pooling_mode_cls_token: bool,
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
}

/// What an import produced.
#[derive(Debug, Clone)]
pub struct ImportSummary {
    /// Tensors written.
    pub tensors: usize,
    /// Vocabulary size.
    pub vocab: usize,
    /// Embedding dimension.
    pub dim: u32,
    /// Pooling written into the GGUF (`mean` or `cls`).
    pub pooling: &'static str,
}

const SPECIALS: [&str; 5] = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];

/// Converts the checkpoint in `dir` into a GGUF at `out` (f16 matrices, f32 norms
/// and biases). The file is written under a temporary name and renamed at the end,
/// so a crash never leaves a half-written model behind.
pub fn import_sentence_transformer(dir: &Path, out: &Path) -> Result<ImportSummary> {
    let config: BertConfig = read_json(&dir.join("config.json"))?;
    if let Some(t) = &config.model_type
        && !matches!(t.as_str(), "bert" | "roberta" | "xlm-roberta")
    {
        return Err(Error::Import(format!(
            "model_type {t:?} is not a BERT-family encoder"
        )));
    }
    let (pooling_type, pooling_name) = pooling_of(dir)?;
    let vocab = read_vocab(dir)?;
    let name = dir
        .file_name()
        .map_or_else(|| "bert".into(), |n| n.to_string_lossy().into_owned());
    let metadata = metadata_of(&config, name, &vocab, pooling_type)?;
    let tensors = tensors_of(dir)?;
    let expected = 5 + 16 * config.num_hidden_layers as usize;
    if tensors.len() != expected {
        return Err(Error::Import(format!(
            "expected {expected} BERT tensors, found {}",
            tensors.len()
        )));
    }

    write_gguf(out, &metadata, &tensors)?;
    Ok(ImportSummary {
        tensors: tensors.len(),
        vocab: vocab.len(),
        dim: config.hidden_size,
        pooling: pooling_name,
    })
}

/// The pooling of the checkpoint (its `1_Pooling/config.json`; mean without one):
/// llama.cpp's pooling type and its name.
fn pooling_of(dir: &Path) -> Result<(u32, &'static str)> {
    let pooling_path = dir.join("1_Pooling/config.json");
    let pooling: PoolingConfig = if pooling_path.exists() {
        read_json(&pooling_path)?
    } else {
        PoolingConfig {
            pooling_mode_mean_tokens: true,
            ..PoolingConfig::default()
        }
    };
    Ok(
        if pooling.pooling_mode_cls_token && !pooling.pooling_mode_mean_tokens {
            (2u32, "cls")
        } else {
            (1u32, "mean")
        },
    )
}

/// The GGUF metadata of a BERT encoder with `vocab`: architecture, sizes, pooling
/// and the WordPiece tokenizer with its special tokens.
fn metadata_of(
    config: &BertConfig,
    name: String,
    vocab: &[String],
    pooling_type: u32,
) -> Result<Vec<(String, Value)>> {
    let id_of = |tok: &str| -> Result<i32> {
        vocab
            .iter()
            .position(|t| t == tok)
            .map(|i| i as i32)
            .ok_or_else(|| Error::Import(format!("vocabulary has no {tok}")))
    };
    let (pad, unk, cls, sep, mask) = (
        id_of("[PAD]")?,
        id_of("[UNK]")?,
        id_of("[CLS]")?,
        id_of("[SEP]")?,
        id_of("[MASK]")?,
    );
    let tokens: Vec<String> = vocab.iter().map(|t| gguf_token(t)).collect();
    let token_types: Vec<i32> = vocab
        .iter()
        .map(|t| if SPECIALS.contains(&t.as_str()) { 3 } else { 1 })
        .collect();

    let s = |v: &str| Value::Str(v.to_string());
    Ok(vec![
        ("general.architecture", s("bert")),
        ("general.name", Value::Str(name)),
        ("general.file_type", Value::U32(1)),
        (
            "bert.context_length",
            Value::U32(config.max_position_embeddings),
        ),
        ("bert.embedding_length", Value::U32(config.hidden_size)),
        (
            "bert.feed_forward_length",
            Value::U32(config.intermediate_size),
        ),
        ("bert.block_count", Value::U32(config.num_hidden_layers)),
        (
            "bert.attention.head_count",
            Value::U32(config.num_attention_heads),
        ),
        (
            "bert.attention.layer_norm_epsilon",
            Value::F32(config.layer_norm_eps),
        ),
        ("bert.attention.causal", Value::Bool(false)),
        ("bert.pooling_type", Value::U32(pooling_type)),
        ("tokenizer.ggml.model", s("bert")),
        ("tokenizer.ggml.pre", s("default")),
        ("tokenizer.ggml.tokens", Value::StrArray(tokens)),
        ("tokenizer.ggml.token_type", Value::I32Array(token_types)),
        ("tokenizer.ggml.token_type_count", Value::U32(2)),
        ("tokenizer.ggml.unknown_token_id", Value::U32(unk as u32)),
        // llama.cpp spells this key "seperator".
        ("tokenizer.ggml.seperator_token_id", Value::U32(sep as u32)),
        ("tokenizer.ggml.padding_token_id", Value::U32(pad as u32)),
        ("tokenizer.ggml.mask_token_id", Value::U32(mask as u32)),
        ("tokenizer.ggml.bos_token_id", Value::U32(cls as u32)),
        ("tokenizer.ggml.eos_token_id", Value::U32(sep as u32)),
        ("tokenizer.ggml.add_bos_token", Value::Bool(true)),
        ("tokenizer.ggml.add_eos_token", Value::Bool(true)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect())
}

/// The tensors of `model.safetensors` under their GGUF names: matrices in F16,
/// the rest in F32.
fn tensors_of(dir: &Path) -> Result<Vec<Tensor>> {
    let bytes = std::fs::read(dir.join("model.safetensors"))?;
    let st = SafeTensors::deserialize(&bytes)
        .map_err(|e| Error::Import(format!("model.safetensors: {e}")))?;
    let mut tensors = Vec::new();
    let mut names: Vec<String> = st.names().into_iter().map(str::to_string).collect();
    names.sort();
    for hf_name in names {
        let Some((gguf_name, dtype)) = map_tensor_name(&hf_name) else {
            continue;
        };
        let view = st
            .tensor(&hf_name)
            .map_err(|e| Error::Import(format!("{hf_name}: {e}")))?;
        let values = to_f32(view.dtype(), view.data()).ok_or_else(|| {
            Error::Import(format!("{hf_name}: unsupported dtype {:?}", view.dtype()))
        })?;
        let shape: Vec<u64> = view.shape().iter().map(|d| *d as u64).collect();
        let dtype = if shape.len() == 2 {
            dtype
        } else {
            TensorType::F32
        };
        let data = match dtype {
            TensorType::F32 => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            TensorType::F16 => values
                .iter()
                .flat_map(|v| f16::from_f32(*v).to_le_bytes())
                .collect(),
        };
        tensors.push(Tensor {
            name: gguf_name,
            shape,
            dtype,
            data,
        });
    }
    Ok(tensors)
}

/// Writes the GGUF file `out` whole or not at all (a partial file, then a rename).
fn write_gguf(out: &Path, metadata: &[(String, Value)], tensors: &[Tensor]) -> Result<()> {
    let tmp = out.with_extension("gguf.partial");
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    {
        let file = std::fs::File::create(&tmp)?;
        let mut w = std::io::BufWriter::new(file);
        gguf::write(&mut w, metadata, tensors)?;
        w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    }
    std::fs::rename(&tmp, out)?;
    Ok(())
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Import(format!("{}: {e}", path.display())))?;
    serde_json::from_str(&text).map_err(|e| Error::Import(format!("{}: {e}", path.display())))
}

/// The vocabulary in id order, from vocab.txt or else tokenizer.json.
fn read_vocab(dir: &Path) -> Result<Vec<String>> {
    let vocab_txt = dir.join("vocab.txt");
    if vocab_txt.exists() {
        let text = std::fs::read_to_string(&vocab_txt)?;
        return Ok(text.lines().map(str::to_string).collect());
    }
    #[derive(Deserialize)]
    struct TokenizerJson {
        model: TokenizerModel,
    }
    #[derive(Deserialize)]
    struct TokenizerModel {
        vocab: BTreeMap<String, u32>,
    }
    let tj: TokenizerJson = read_json(&dir.join("tokenizer.json"))?;
    let mut vocab = vec![String::new(); tj.model.vocab.len()];
    for (tok, id) in tj.model.vocab {
        let slot = vocab
            .get_mut(id as usize)
            .ok_or_else(|| Error::Import(format!("token id {id} out of range")))?;
        *slot = tok;
    }
    Ok(vocab)
}

/// llama.cpp's WordPiece vocabulary: continuations `##x` become `x`, word starts get
/// the `▁` marker, bracketed specials stay as they are.
fn gguf_token(t: &str) -> String {
    if t.starts_with('[') && t.ends_with(']') {
        t.to_string()
    } else if let Some(rest) = t.strip_prefix("##") {
        rest.to_string()
    } else {
        format!("\u{2581}{t}")
    }
}

/// The GGUF name and preferred type of a Hugging Face BERT tensor; `None` for tensors
/// llama.cpp does not use.
fn map_tensor_name(hf: &str) -> Option<(String, TensorType)> {
    let name = hf
        .strip_prefix("bert.")
        .or_else(|| hf.strip_prefix("roberta."))
        .unwrap_or(hf);
    let (base, suffix) = name.rsplit_once('.')?;
    if !matches!(suffix, "weight" | "bias") {
        return None;
    }
    let mapped = match base {
        "embeddings.word_embeddings" => "token_embd".to_string(),
        "embeddings.position_embeddings" => "position_embd".to_string(),
        "embeddings.token_type_embeddings" => {
            return Some(("token_types.weight".into(), TensorType::F32));
        }
        "embeddings.LayerNorm" => "token_embd_norm".to_string(),
        _ => {
            let rest = base.strip_prefix("encoder.layer.")?;
            let (n, part) = rest.split_once('.')?;
            let n: u32 = n.parse().ok()?;
            let sub = match part {
                "attention.self.query" => "attn_q",
                "attention.self.key" => "attn_k",
                "attention.self.value" => "attn_v",
                "attention.output.dense" => "attn_output",
                "attention.output.LayerNorm" => "attn_output_norm",
                "intermediate.dense" => "ffn_up",
                "output.dense" => "ffn_down",
                "output.LayerNorm" => "layer_output_norm",
                _ => return None,
            };
            format!("blk.{n}.{sub}")
        }
    };
    Some((format!("{mapped}.{suffix}"), TensorType::F16))
}

fn to_f32(dtype: Dtype, data: &[u8]) -> Option<Vec<f32>> {
    Some(match dtype {
        Dtype::F32 => data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        Dtype::F16 => data
            .chunks_exact(2)
            .map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        Dtype::BF16 => data
            .chunks_exact(2)
            .map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_spelling() {
        assert_eq!(gguf_token("[CLS]"), "[CLS]");
        assert_eq!(gguf_token("##ing"), "ing");
        assert_eq!(gguf_token("play"), "\u{2581}play");
    }

    #[test]
    fn tensor_names() {
        assert_eq!(
            map_tensor_name("encoder.layer.3.attention.self.query.weight"),
            Some(("blk.3.attn_q.weight".into(), TensorType::F16))
        );
        assert_eq!(
            map_tensor_name("bert.embeddings.LayerNorm.bias"),
            Some(("token_embd_norm.bias".into(), TensorType::F16))
        );
        assert_eq!(
            map_tensor_name("embeddings.token_type_embeddings.weight"),
            Some(("token_types.weight".into(), TensorType::F32))
        );
        assert_eq!(map_tensor_name("embeddings.position_ids"), None);
        assert_eq!(map_tensor_name("pooler.dense.weight"), None);
    }
}

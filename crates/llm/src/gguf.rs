//! A small GGUF (version 3) writer: metadata key/values and tensors, as llama.cpp
//! reads them.

use std::io::{self, Write};

/// Tensor data types this writer emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TensorType {
    /// 32-bit float.
    F32,
    /// 16-bit float.
    F16,
}

impl TensorType {
    fn ggml_type(self) -> u32 {
        match self {
            Self::F32 => 0,
            Self::F16 => 1,
        }
    }
}

/// A metadata value.
#[derive(Debug, Clone)]
pub enum Value {
    /// `u32`.
    U32(u32),
    /// `i32`.
    I32(i32),
    /// `f32`.
    F32(f32),
    /// `bool`.
    Bool(bool),
    /// UTF-8 string.
    Str(String),
    /// Array of strings.
    StrArray(Vec<String>),
    /// Array of `i32`.
    I32Array(Vec<i32>),
    /// Array of `f32`.
    F32Array(Vec<f32>),
}

/// One tensor: its GGUF name, its shape as the source framework writes it
/// (row-major, outermost first), its type and its little-endian data.
#[derive(Debug, Clone)]
pub struct Tensor {
    /// GGUF tensor name.
    pub name: String,
    /// Shape, outermost dimension first (as in PyTorch / safetensors).
    pub shape: Vec<u64>,
    /// Element type of `data`.
    pub dtype: TensorType,
    /// Raw little-endian elements.
    pub data: Vec<u8>,
}

const ALIGNMENT: u64 = 32;

/// Writes a GGUF file.
pub fn write(
    out: &mut impl Write,
    metadata: &[(String, Value)],
    tensors: &[Tensor],
) -> io::Result<()> {
    let mut header = Vec::new();
    header.extend_from_slice(b"GGUF");
    header.extend_from_slice(&3u32.to_le_bytes());
    header.extend_from_slice(&(tensors.len() as u64).to_le_bytes());
    header.extend_from_slice(&(metadata.len() as u64).to_le_bytes());
    for (key, value) in metadata {
        put_str(&mut header, key);
        put_value(&mut header, value);
    }
    let mut offset = 0u64;
    for t in tensors {
        put_str(&mut header, &t.name);
        header.extend_from_slice(&(t.shape.len() as u32).to_le_bytes());
        // ggml lists dimensions innermost first.
        for d in t.shape.iter().rev() {
            header.extend_from_slice(&d.to_le_bytes());
        }
        header.extend_from_slice(&t.dtype.ggml_type().to_le_bytes());
        header.extend_from_slice(&offset.to_le_bytes());
        offset = align(offset + t.data.len() as u64);
    }
    let padded = align(header.len() as u64) as usize;
    header.resize(padded, 0);
    out.write_all(&header)?;
    for t in tensors {
        out.write_all(&t.data)?;
        let pad = align(t.data.len() as u64) - t.data.len() as u64;
        out.write_all(&vec![0u8; pad as usize])?;
    }
    out.flush()
}

fn align(n: u64) -> u64 {
    n.div_ceil(ALIGNMENT) * ALIGNMENT
}

fn put_str(buf: &mut Vec<u8>, s: &str) {
    buf.extend_from_slice(&(s.len() as u64).to_le_bytes());
    buf.extend_from_slice(s.as_bytes());
}

// GGUF value type ids.
const T_U32: u32 = 4;
const T_I32: u32 = 5;
const T_F32: u32 = 6;
const T_BOOL: u32 = 7;
const T_STR: u32 = 8;
const T_ARRAY: u32 = 9;

fn put_value(buf: &mut Vec<u8>, v: &Value) {
    match v {
        Value::U32(x) => {
            buf.extend_from_slice(&T_U32.to_le_bytes());
            buf.extend_from_slice(&x.to_le_bytes());
        }
        Value::I32(x) => {
            buf.extend_from_slice(&T_I32.to_le_bytes());
            buf.extend_from_slice(&x.to_le_bytes());
        }
        Value::F32(x) => {
            buf.extend_from_slice(&T_F32.to_le_bytes());
            buf.extend_from_slice(&x.to_le_bytes());
        }
        Value::Bool(x) => {
            buf.extend_from_slice(&T_BOOL.to_le_bytes());
            buf.push(u8::from(*x));
        }
        Value::Str(s) => {
            buf.extend_from_slice(&T_STR.to_le_bytes());
            put_str(buf, s);
        }
        Value::StrArray(items) => {
            array_header(buf, T_STR, items.len());
            for s in items {
                put_str(buf, s);
            }
        }
        Value::I32Array(items) => {
            array_header(buf, T_I32, items.len());
            for x in items {
                buf.extend_from_slice(&x.to_le_bytes());
            }
        }
        Value::F32Array(items) => {
            array_header(buf, T_F32, items.len());
            for x in items {
                buf.extend_from_slice(&x.to_le_bytes());
            }
        }
    }
}

fn array_header(buf: &mut Vec<u8>, item_type: u32, len: usize) {
    buf.extend_from_slice(&T_ARRAY.to_le_bytes());
    buf.extend_from_slice(&item_type.to_le_bytes());
    buf.extend_from_slice(&(len as u64).to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_layout_and_alignment() {
        let mut out = Vec::new();
        let meta = vec![(
            "general.architecture".to_string(),
            Value::Str("bert".into()),
        )];
        let tensors = vec![Tensor {
            name: "t".into(),
            shape: vec![2, 3],
            dtype: TensorType::F32,
            data: vec![0u8; 24],
        }];
        write(&mut out, &meta, &tensors).unwrap();
        assert_eq!(&out[..4], b"GGUF");
        assert_eq!(u32::from_le_bytes(out[4..8].try_into().unwrap()), 3);
        assert_eq!(u64::from_le_bytes(out[8..16].try_into().unwrap()), 1);
        assert_eq!(u64::from_le_bytes(out[16..24].try_into().unwrap()), 1);
        // Data starts aligned and the file ends on the alignment too.
        assert_eq!(out.len() % 32, 0);
        let tail = &out[out.len() - 32..];
        assert_eq!(&tail[..24], &[0u8; 24][..]);
        // Dimensions are written innermost first: 3 then 2.
        let needle: Vec<u8> = [3u64.to_le_bytes(), 2u64.to_le_bytes()].concat();
        assert!(out.windows(16).any(|w| w == needle.as_slice()));
    }
}

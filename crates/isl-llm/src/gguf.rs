//! GGUF files: the header, the metadata, and the llama hyper-parameters checked from it.

use std::io::{Read, Seek, SeekFrom};

use candle_core::quantized::gguf_file::{Content, Value};

use crate::error::{LlmError, Result};

/// A parsed GGUF header: metadata and tensor directory (no tensor data read yet).
#[derive(Debug)]
pub struct GgufFile {
    /// candle's view of the header.
    pub content: Content,
}

impl GgufFile {
    /// Reads the header from `reader`, checking the magic first so that a foreign file gets a
    /// clear error, and turning a truncated header into [`LlmError::Malformed`].
    pub fn read<R: Read + Seek>(reader: &mut R) -> Result<Self> {
        let mut magic = [0u8; 4];
        reader.seek(SeekFrom::Start(0)).map_err(|e| LlmError::Malformed(e.to_string()))?;
        if reader.read_exact(&mut magic).is_err() {
            return Err(LlmError::NotGguf("shorter than the 4-byte magic".into()));
        }
        if &magic != b"GGUF" {
            return Err(LlmError::NotGguf(format!("magic is {magic:02x?}, not \"GGUF\"")));
        }
        reader.seek(SeekFrom::Start(0)).map_err(|e| LlmError::Malformed(e.to_string()))?;
        let content = Content::read(reader).map_err(|e| LlmError::Malformed(e.to_string()))?;
        Ok(GgufFile { content })
    }

    /// The metadata value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.content.metadata.get(key)
    }

    /// A string value.
    pub fn string(&self, key: &str) -> Result<&str> {
        match self.get(key) {
            Some(Value::String(s)) => Ok(s),
            Some(_) => Err(meta(key, "is not a string")),
            None => Err(meta(key, "is missing")),
        }
    }

    /// An unsigned integer value (any integer width).
    pub fn uint(&self, key: &str) -> Result<u64> {
        let v = self.get(key).ok_or_else(|| meta(key, "is missing"))?;
        let n = match v {
            Value::U8(x) => u64::from(*x),
            Value::U16(x) => u64::from(*x),
            Value::U32(x) => u64::from(*x),
            Value::U64(x) => *x,
            Value::I8(x) => u64::try_from(*x).map_err(|_| meta(key, "is negative"))?,
            Value::I16(x) => u64::try_from(*x).map_err(|_| meta(key, "is negative"))?,
            Value::I32(x) => u64::try_from(*x).map_err(|_| meta(key, "is negative"))?,
            Value::I64(x) => u64::try_from(*x).map_err(|_| meta(key, "is negative"))?,
            _ => return Err(meta(key, "is not an integer")),
        };
        Ok(n)
    }

    /// A float value.
    pub fn float(&self, key: &str) -> Result<f64> {
        match self.get(key) {
            Some(Value::F32(x)) => Ok(f64::from(*x)),
            Some(Value::F64(x)) => Ok(*x),
            Some(_) => Err(meta(key, "is not a float")),
            None => Err(meta(key, "is missing")),
        }
    }

    /// A boolean value.
    pub fn boolean(&self, key: &str) -> Option<bool> {
        match self.get(key) {
            Some(Value::Bool(b)) => Some(*b),
            _ => None,
        }
    }

    /// An array of strings.
    pub fn strings(&self, key: &str) -> Result<Vec<&str>> {
        match self.get(key) {
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.as_str()),
                    _ => Err(meta(key, "has an element that is not a string")),
                })
                .collect(),
            Some(_) => Err(meta(key, "is not an array")),
            None => Err(meta(key, "is missing")),
        }
    }

    /// An array of integers.
    pub fn ints(&self, key: &str) -> Result<Vec<i64>> {
        match self.get(key) {
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| match v {
                    Value::I32(x) => Ok(i64::from(*x)),
                    Value::U32(x) => Ok(i64::from(*x)),
                    Value::I8(x) => Ok(i64::from(*x)),
                    Value::U8(x) => Ok(i64::from(*x)),
                    Value::I64(x) => Ok(*x),
                    _ => Err(meta(key, "has an element that is not an integer")),
                })
                .collect(),
            Some(_) => Err(meta(key, "is not an array")),
            None => Err(meta(key, "is missing")),
        }
    }

    /// An array of floats (`f32` or `f64` elements, as `f32`).
    pub fn floats(&self, key: &str) -> Result<Vec<f32>> {
        match self.get(key) {
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| match v {
                    Value::F32(x) => Ok(*x),
                    Value::F64(x) => Ok(*x as f32),
                    _ => Err(meta(key, "has an element that is not a float")),
                })
                .collect(),
            Some(_) => Err(meta(key, "is not an array")),
            None => Err(meta(key, "is missing")),
        }
    }
}

fn meta(key: &str, problem: &str) -> LlmError {
    LlmError::Metadata { key: key.to_string(), problem: problem.to_string() }
}

/// The hyper-parameters of a llama-architecture model, read from GGUF metadata and checked.
#[derive(Debug, Clone, PartialEq)]
pub struct LlamaConfig {
    /// `general.architecture` (`llama`, `qwen2`, ...).
    pub architecture: String,
    /// `general.name`, when present.
    pub name: String,
    /// Transformer blocks.
    pub block_count: usize,
    /// Hidden size.
    pub embedding_length: usize,
    /// Feed-forward inner size.
    pub feed_forward_length: usize,
    /// Query heads.
    pub head_count: usize,
    /// Key/value heads (grouped-query attention when fewer than `head_count`).
    pub head_count_kv: usize,
    /// Size of one head.
    pub head_dim: usize,
    /// Dimensions rotated by RoPE (the whole head for llama).
    pub rope_dimension_count: usize,
    /// RoPE base frequency.
    pub rope_freq_base: f32,
    /// RMS-norm epsilon.
    pub rms_norm_eps: f64,
    /// Context length the model was trained for.
    pub context_length: usize,
    /// Vocabulary size.
    pub vocab_size: usize,
}

/// Architectures whose GGUF layout is the llama one (`blk.N.attn_q` ... `output_norm`).
pub const LLAMA_ARCHITECTURES: &[&str] = &["llama", "qwen2", "mistral"];

impl LlamaConfig {
    /// Reads and checks the hyper-parameters: every size positive, heads dividing the hidden
    /// size, key/value heads dividing the query heads.
    pub fn from_gguf(file: &GgufFile) -> Result<Self> {
        let arch = file.string("general.architecture")?.to_string();
        if !LLAMA_ARCHITECTURES.contains(&arch.as_str()) {
            return Err(LlmError::UnsupportedArchitecture(arch));
        }
        let k = |s: &str| format!("{arch}.{s}");
        let u = |s: &str| -> Result<usize> { Ok(file.uint(&k(s))? as usize) };
        let block_count = u("block_count")?;
        let embedding_length = u("embedding_length")?;
        let feed_forward_length = u("feed_forward_length")?;
        let head_count = u("attention.head_count")?;
        let head_count_kv = u("attention.head_count_kv").unwrap_or(head_count);
        let context_length = u("context_length")?;
        for (key, v) in [
            ("block_count", block_count),
            ("embedding_length", embedding_length),
            ("feed_forward_length", feed_forward_length),
            ("attention.head_count", head_count),
            ("attention.head_count_kv", head_count_kv),
            ("context_length", context_length),
        ] {
            if v == 0 {
                return Err(meta(&k(key), "is zero"));
            }
        }
        if !embedding_length.is_multiple_of(head_count) {
            return Err(meta(&k("attention.head_count"), "does not divide embedding_length"));
        }
        if !head_count.is_multiple_of(head_count_kv) {
            return Err(meta(&k("attention.head_count_kv"), "does not divide attention.head_count"));
        }
        let head_dim = embedding_length / head_count;
        let rope_dimension_count = u("rope.dimension_count").unwrap_or(head_dim);
        if rope_dimension_count != head_dim {
            return Err(meta(&k("rope.dimension_count"), "partial rotary embeddings are not supported"));
        }
        if !head_dim.is_multiple_of(2) {
            return Err(meta(&k("attention.head_count"), "gives an odd head size"));
        }
        let rope_freq_base = file.float(&k("rope.freq_base")).unwrap_or(10_000.0) as f32;
        let rms_norm_eps = file.float(&k("attention.layer_norm_rms_epsilon")).unwrap_or(1e-5);
        let vocab_size = match u("vocab_size") {
            Ok(v) => v,
            Err(_) => file.strings("tokenizer.ggml.tokens")?.len(),
        };
        let name = file.string("general.name").unwrap_or("").to_string();
        Ok(LlamaConfig {
            architecture: arch,
            name,
            block_count,
            embedding_length,
            feed_forward_length,
            head_count,
            head_count_kv,
            head_dim,
            rope_dimension_count,
            rope_freq_base,
            rms_norm_eps,
            context_length,
            vocab_size,
        })
    }
}

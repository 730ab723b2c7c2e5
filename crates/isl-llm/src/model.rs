//! The llama forward pass over a *ragged batch*: any number of sequences, each contributing any
//! number of new tokens (a prompt chunk or one decode token), in one pass. The linear layers
//! see all the batch's tokens at once, so each weight is read once per step whatever the batch
//! size; attention runs per sequence against that sequence's own [`SeqCache`].
//!
//! The arithmetic follows llama.cpp's CPU backend where it decides the bits: activations
//! quantised to Q8_1/Q8_0 before each product ([`crate::kernels`]), RMS norm summed in f64,
//! RoPE angles by repeated multiplication, keys, values, queries and attention weights rounded
//! to f16, softmax summed in f64. Transcendentals come from `libm`, so every target agrees.

use std::io::{Read, Seek};

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{Device, Module, Tensor};
use half::f16;

use crate::error::{LlmError, Result};
use crate::gguf::{GgufFile, LlamaConfig};
use crate::kernels::{self, QActs, QWeight};

/// Longest context any model is run with, whatever its metadata claims.
pub const MAX_CONTEXT: usize = 32_768;

/// A weight matrix `rows × cols` (output × input).
enum Linear {
    /// Q4_1 or Q8_0: isl's kernels.
    Own { w: QWeight, rows: usize, cols: usize },
    /// Any other format: candle's quantised matmul (dequantised f32 for F16/F32/BF16).
    Candle { w: QMatMul, rows: usize, cols: usize },
}

impl Linear {
    fn from_qtensor(t: QTensor) -> Result<Self> {
        let (rows, cols) = t.shape().dims2()?;
        let own = match t.dtype() {
            GgmlDType::Q4_1 if cols.is_multiple_of(kernels::QK) => {
                kernels::q4_1_from_bytes(&t.data()?).map(QWeight::Q4_1)
            }
            GgmlDType::Q8_0 if cols.is_multiple_of(kernels::QK) => {
                kernels::q8_0_from_bytes(&t.data()?).map(QWeight::Q8_0)
            }
            _ => None,
        };
        Ok(match own {
            Some(w) => Linear::Own { w, rows, cols },
            None => Linear::Candle { w: QMatMul::from_qtensor(t)?, rows, cols },
        })
    }

    fn rows(&self) -> usize {
        match self {
            Linear::Own { rows, .. } | Linear::Candle { rows, .. } => *rows,
        }
    }

    fn cols(&self) -> usize {
        match self {
            Linear::Own { cols, .. } | Linear::Candle { cols, .. } => *cols,
        }
    }

    /// `x` (n rows of `cols`) times the weight, transposed: n rows of `rows`. `acts` caches the
    /// quantised `x` between products that share it (pass the same `key` for the same `x`).
    fn forward(&self, x: &[f32], acts: &mut ActCache, key: u32) -> Result<Vec<f32>> {
        let n = x.len() / self.cols();
        let mut out = vec![0f32; n * self.rows()];
        match self {
            Linear::Own { w, rows, cols } => {
                let want = w.wants_q8_1();
                if acts.key != Some((key, want)) {
                    acts.acts.quantize(x, *cols, want);
                    acts.key = Some((key, want));
                }
                w.matmul(*rows, *cols, &acts.acts, &mut out);
            }
            Linear::Candle { w, cols, .. } => {
                let t = Tensor::from_slice(x, (n, *cols), &Device::Cpu)?;
                let y = w.forward(&t)?.flatten_all()?.to_vec1::<f32>()?;
                out.copy_from_slice(&y);
            }
        }
        Ok(out)
    }
}

/// Quantised activations kept for the next product with the same input.
#[derive(Default)]
struct ActCache {
    acts: QActs,
    key: Option<(u32, bool)>,
}

struct Block {
    attn_norm: Vec<f32>,
    wq: Linear,
    bq: Option<Vec<f32>>,
    wk: Linear,
    bk: Option<Vec<f32>>,
    wv: Linear,
    bv: Option<Vec<f32>>,
    wo: Linear,
    ffn_norm: Vec<f32>,
    w_gate: Linear,
    w_up: Linear,
    w_down: Linear,
}

/// A llama-architecture model, loaded. Invariant: every tensor has the shape its config implies.
pub struct LlamaModel {
    /// The checked hyper-parameters.
    pub config: LlamaConfig,
    /// The context length sequences are run with (the config's, capped at [`MAX_CONTEXT`]).
    pub context_length: usize,
    tok_embd: QTensor,
    blocks: Vec<Block>,
    output_norm: Vec<f32>,
    lm_head: Linear,
    theta_scale: f32,
    /// Bytes of weights held.
    pub weight_bytes: usize,
}

impl std::fmt::Debug for LlamaModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlamaModel").field("config", &self.config).finish()
    }
}

/// The key/value cache of one sequence: per layer, keys and values of every position so far in
/// f16, position-major (`[position][kv_head][head_dim]`).
#[derive(Clone)]
pub struct SeqCache {
    k: Vec<Vec<f16>>,
    v: Vec<Vec<f16>>,
    len: usize,
    width: usize,
}

impl std::fmt::Debug for SeqCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeqCache").field("len", &self.len).finish()
    }
}

impl SeqCache {
    /// Positions cached.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// A new cache holding a copy of this one's first `n` positions (a shared prompt prefix).
    pub fn fork(&self, n: usize) -> Result<SeqCache> {
        let n = n.min(self.len);
        let w = self.width;
        Ok(SeqCache {
            k: self.k.iter().map(|l| l[..n * w].to_vec()).collect(),
            v: self.v.iter().map(|l| l[..n * w].to_vec()).collect(),
            len: n,
            width: w,
        })
    }

    /// Bytes of keys and values held.
    pub fn bytes(&self, _config: &LlamaConfig) -> usize {
        self.len * self.width * 2 * 2 * self.k.len()
    }
}

/// One sequence's part of a ragged batch.
pub struct BatchItem<'a> {
    /// The sequence's cache; the new tokens are appended to it.
    pub cache: &'a mut SeqCache,
    /// New tokens (at least one).
    pub tokens: &'a [u32],
    /// Whether to return the next-token logits after the last new token.
    pub want_logits: bool,
}

fn load<R: Read + Seek>(file: &GgufFile, r: &mut R, name: &str) -> Result<QTensor> {
    file.content.tensor(r, name, &Device::Cpu).map_err(|e| LlmError::Tensor(format!("{name}: {e}")))
}

fn has(file: &GgufFile, name: &str) -> bool {
    file.content.tensor_infos.contains_key(name)
}

fn vector<R: Read + Seek>(file: &GgufFile, r: &mut R, name: &str, len: usize) -> Result<Vec<f32>> {
    let t = load(file, r, name)?.dequantize(&Device::Cpu)?.flatten_all()?.to_vec1::<f32>()?;
    if t.len() != len {
        return Err(LlmError::Tensor(format!("{name} has {} values, expected {len}", t.len())));
    }
    Ok(t)
}

impl LlamaModel {
    /// Loads the weights of the model in `file` from `reader` (the same file).
    pub fn load<R: Read + Seek>(file: &GgufFile, reader: &mut R) -> Result<Self> {
        let config = LlamaConfig::from_gguf(file)?;
        let d = config.embedding_length;
        let kv = config.head_count_kv * config.head_dim;
        let mut weight_bytes = 0usize;
        let tok_embd = load(file, reader, "token_embd.weight")?;
        weight_bytes += tok_embd.storage_size_in_bytes();
        let (rows, cols) = tok_embd.shape().dims2()?;
        if cols != d || rows != config.vocab_size {
            return Err(LlmError::Tensor(format!(
                "token_embd.weight is {rows}x{cols}, the metadata says {}x{d}",
                config.vocab_size
            )));
        }
        let mut linear = |name: &str, r: &mut R, rows: usize, cols: usize| -> Result<Linear> {
            let t = load(file, r, name)?;
            weight_bytes += t.storage_size_in_bytes();
            let l = Linear::from_qtensor(t)?;
            if l.rows() != rows || l.cols() != cols {
                return Err(LlmError::Tensor(format!("{name} is {}x{}, expected {rows}x{cols}", l.rows(), l.cols())));
            }
            Ok(l)
        };
        let mut blocks = Vec::with_capacity(config.block_count);
        let ff = config.feed_forward_length;
        for i in 0..config.block_count {
            let p = format!("blk.{i}");
            let bias = |r: &mut R, name: &str, len: usize| -> Result<Option<Vec<f32>>> {
                let n = format!("{p}.{name}.bias");
                if has(file, &n) { vector(file, r, &n, len).map(Some) } else { Ok(None) }
            };
            let attn_norm = vector(file, reader, &format!("{p}.attn_norm.weight"), d)?;
            let bq = bias(reader, "attn_q", d)?;
            let bk = bias(reader, "attn_k", kv)?;
            let bv = bias(reader, "attn_v", kv)?;
            let ffn_norm = vector(file, reader, &format!("{p}.ffn_norm.weight"), d)?;
            blocks.push(Block {
                attn_norm,
                wq: linear(&format!("{p}.attn_q.weight"), reader, d, d)?,
                bq,
                wk: linear(&format!("{p}.attn_k.weight"), reader, kv, d)?,
                bk,
                wv: linear(&format!("{p}.attn_v.weight"), reader, kv, d)?,
                bv,
                wo: linear(&format!("{p}.attn_output.weight"), reader, d, d)?,
                ffn_norm,
                w_gate: linear(&format!("{p}.ffn_gate.weight"), reader, ff, d)?,
                w_up: linear(&format!("{p}.ffn_up.weight"), reader, ff, d)?,
                w_down: linear(&format!("{p}.ffn_down.weight"), reader, d, ff)?,
            });
        }
        let output_norm = vector(file, reader, "output_norm.weight", d)?;
        let lm_head = if has(file, "output.weight") {
            linear("output.weight", reader, config.vocab_size, d)?
        } else {
            // Tied embeddings (SmolLM2, small Qwen2.5): the output projection is the embedding.
            Linear::from_qtensor(load(file, reader, "token_embd.weight")?)?
        };
        let context_length = config.context_length.min(MAX_CONTEXT);
        let theta_scale = libm::powf(config.rope_freq_base, -2.0 / config.rope_dimension_count as f32);
        Ok(LlamaModel { config, context_length, tok_embd, blocks, output_norm, lm_head, theta_scale, weight_bytes })
    }

    /// An empty cache for a new sequence.
    pub fn new_cache(&self) -> SeqCache {
        let n = self.config.block_count;
        SeqCache {
            k: vec![Vec::new(); n],
            v: vec![Vec::new(); n],
            len: 0,
            width: self.config.head_count_kv * self.config.head_dim,
        }
    }

    /// Rotates `x` (`heads × head_dim`, one token at position `pos`) in place: adjacent pairs,
    /// angle `pos · scale^i` by repeated f32 multiplication, as ggml's rope cache does.
    fn rope(&self, x: &mut [f32], heads: usize, pos: usize) {
        let hd = self.config.head_dim;
        let mut cs = Vec::with_capacity(hd / 2);
        let mut theta = pos as f32;
        for _ in 0..hd / 2 {
            cs.push((libm::cosf(theta), libm::sinf(theta)));
            theta *= self.theta_scale;
        }
        for h in 0..heads {
            let row = &mut x[h * hd..(h + 1) * hd];
            for (i, &(c, s)) in cs.iter().enumerate() {
                let (x0, x1) = (row[2 * i], row[2 * i + 1]);
                row[2 * i] = x0 * c - x1 * s;
                row[2 * i + 1] = x0 * s + x1 * c;
            }
        }
    }

    /// Runs one step over a ragged batch: appends every item's tokens to its cache and returns,
    /// for each item that asked, the logits of the next token (`vocab_size` floats), in order.
    pub fn forward(&self, items: &mut [BatchItem<'_>]) -> Result<Vec<Option<Vec<f32>>>> {
        let cfg = &self.config;
        let mut ids = Vec::new();
        for it in items.iter() {
            if it.tokens.is_empty() {
                return Err(LlmError::Tensor("a batch item has no tokens".into()));
            }
            if it.cache.len + it.tokens.len() > self.context_length {
                return Err(LlmError::ContextOverflow {
                    prompt: it.cache.len + it.tokens.len(),
                    max_tokens: 0,
                    context: self.context_length,
                });
            }
            if let Some(&bad) = it.tokens.iter().find(|&&t| t as usize >= cfg.vocab_size) {
                return Err(LlmError::Tensor(format!("token id {bad} is outside the vocabulary")));
            }
            ids.extend_from_slice(it.tokens);
        }
        let n = ids.len();
        let d = cfg.embedding_length;
        let (h, hkv, hd) = (cfg.head_count, cfg.head_count_kv, cfg.head_dim);
        let kvw = hkv * hd;
        let group = h / hkv;
        let scale = 1.0 / (hd as f32).sqrt();
        let eps = cfg.rms_norm_eps as f32;
        let ids_t = Tensor::from_vec(ids, n, &Device::Cpu)?;
        let mut x = self.tok_embd.embedding(&ids_t)?.flatten_all()?.to_vec1::<f32>()?;
        let mut acts = ActCache::default();
        let mut xn = vec![0f32; n * d];
        for (layer, b) in self.blocks.iter().enumerate() {
            rms_norm(&x, &b.attn_norm, eps, &mut xn);
            let key = (layer * 4) as u32;
            let mut q = b.wq.forward(&xn, &mut acts, key)?;
            let mut k = b.wk.forward(&xn, &mut acts, key)?;
            let mut v = b.wv.forward(&xn, &mut acts, key)?;
            add_bias(&mut q, b.bq.as_deref());
            add_bias(&mut k, b.bk.as_deref());
            add_bias(&mut v, b.bv.as_deref());
            let mut attn = vec![0f32; n * d];
            let mut row = 0;
            for it in items.iter_mut() {
                let l = it.tokens.len();
                let start = it.cache.len;
                for i in 0..l {
                    let r = row + i;
                    self.rope(&mut q[r * d..(r + 1) * d], h, start + i);
                    self.rope(&mut k[r * kvw..(r + 1) * kvw], hkv, start + i);
                    let kc = &mut it.cache.k[layer];
                    kc.extend(k[r * kvw..(r + 1) * kvw].iter().map(|&x| f16::from_f32(x)));
                    let vc = &mut it.cache.v[layer];
                    vc.extend(v[r * kvw..(r + 1) * kvw].iter().map(|&x| f16::from_f32(x)));
                }
                let kc = &it.cache.k[layer];
                let vc = &it.cache.v[layer];
                let mut scores = Vec::new();
                let mut qh = vec![0f32; hd];
                let mut out = vec![0f32; hd];
                for i in 0..l {
                    let r = row + i;
                    let t = start + i + 1; // positions visible to this token
                    for head in 0..h {
                        let g = head / group;
                        for (dst, &s) in qh.iter_mut().zip(&q[r * d + head * hd..r * d + (head + 1) * hd]) {
                            *dst = f16::from_f32(s).to_f32();
                        }
                        scores.clear();
                        let mut max = f32::NEG_INFINITY;
                        for p in 0..t {
                            let kr = &kc[p * kvw + g * hd..p * kvw + (g + 1) * hd];
                            let mut s = 0f32;
                            for (a, b) in qh.iter().zip(kr) {
                                s += a * b.to_f32();
                            }
                            let s = s * scale;
                            max = max.max(s);
                            scores.push(s);
                        }
                        let mut sum = 0f64;
                        for s in scores.iter_mut() {
                            *s = libm::expf(*s - max);
                            sum += f64::from(*s);
                        }
                        let inv = (1.0 / sum) as f32;
                        out.iter_mut().for_each(|o| *o = 0.0);
                        for (p, s) in scores.iter().enumerate() {
                            let w = f16::from_f32(s * inv).to_f32();
                            let vr = &vc[p * kvw + g * hd..p * kvw + (g + 1) * hd];
                            for (o, b) in out.iter_mut().zip(vr) {
                                *o += w * b.to_f32();
                            }
                        }
                        attn[r * d + head * hd..r * d + (head + 1) * hd].copy_from_slice(&out);
                    }
                }
                row += l;
            }
            let o = b.wo.forward(&attn, &mut acts, key + 1)?;
            for (a, b) in x.iter_mut().zip(&o) {
                *a += b;
            }
            rms_norm(&x, &b.ffn_norm, eps, &mut xn);
            let gate = b.w_gate.forward(&xn, &mut acts, key + 2)?;
            let up = b.w_up.forward(&xn, &mut acts, key + 2)?;
            let hidden: Vec<f32> = gate.iter().zip(&up).map(|(&g, &u)| g / (1.0 + libm::expf(-g)) * u).collect();
            let down = b.w_down.forward(&hidden, &mut acts, key + 3)?;
            for (a, b) in x.iter_mut().zip(&down) {
                *a += b;
            }
        }
        // Logits at the last new token of each item that wants them.
        let mut last = Vec::new();
        let mut row = 0;
        for it in items.iter_mut() {
            let l = it.tokens.len();
            it.cache.len += l;
            if it.want_logits {
                last.extend_from_slice(&x[(row + l - 1) * d..(row + l) * d]);
            }
            row += l;
        }
        let mut result: Vec<Option<Vec<f32>>> = vec![None; items.len()];
        if last.is_empty() {
            return Ok(result);
        }
        let mut xl = vec![0f32; last.len()];
        rms_norm(&last, &self.output_norm, eps, &mut xl);
        let logits = self.lm_head.forward(&xl, &mut acts, u32::MAX)?;
        let vocab = cfg.vocab_size;
        let mut rows = logits.chunks_exact(vocab);
        for (slot, it) in result.iter_mut().zip(items.iter()) {
            if it.want_logits {
                *slot = rows.next().map(|r| r.to_vec());
            }
        }
        Ok(result)
    }

    /// The number of tokens in the vocabulary.
    pub fn vocab_size(&self) -> usize {
        self.config.vocab_size
    }
}

/// ggml's RMS norm: squares summed in f64, `x · 1/sqrt(mean + eps)`, then times the weight.
fn rms_norm(x: &[f32], w: &[f32], eps: f32, out: &mut [f32]) {
    let d = w.len();
    for (xr, or) in x.chunks_exact(d).zip(out.chunks_exact_mut(d)) {
        let sum: f64 = xr.iter().map(|&v| f64::from(v * v)).sum();
        let mean = (sum / d as f64) as f32;
        let s = 1.0 / (mean + eps).sqrt();
        for ((o, &v), &g) in or.iter_mut().zip(xr).zip(w) {
            *o = (v * s) * g;
        }
    }
}

fn add_bias(x: &mut [f32], b: Option<&[f32]>) {
    if let Some(b) = b {
        for row in x.chunks_exact_mut(b.len()) {
            for (a, c) in row.iter_mut().zip(b) {
                *a += c;
            }
        }
    }
}

/// Index of the largest value (the first, on ties), as llama.cpp's greedy sampler picks it.
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0usize;
    for (i, &v) in logits.iter().enumerate() {
        if v > logits[best] {
            best = i;
        }
    }
    best as u32
}

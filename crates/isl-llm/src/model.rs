//! The llama forward pass over a *ragged batch*: any number of sequences, each contributing any
//! number of new tokens (a prompt chunk or one decode token), in one pass. The linear layers
//! see all the batch's tokens at once, so each weight is read once per step whatever the batch
//! size; attention runs per sequence against that sequence's own [`SeqCache`].
//!
//! The arithmetic is llama.cpp's CPU backend's, operation by operation, so that the logits are
//! its bits (on the x86-64 AVX-512 build the fixtures come from): activations quantised to
//! Q8_1/Q8_0 before each product ([`crate::kernels`]), RMS norm summed in f64, RoPE angles by
//! repeated f32 multiplication with glibc's `sincosf` and the rotation's fused multiply-adds,
//! queries, keys, values and attention weights rounded to f16, `q·k` and `Σ w·v` summed in the
//! lane orders of ggml's f16 kernels, softmax and SiLU through ggml's vector `expf` (see
//! [`ggml`]). ggml sums attention in one order for a step of two or more tokens and in another
//! for a one-token step, and llama.cpp runs a prompt as one step and each generated token as a
//! one-token step; here each batch item takes the order from its own history (prompt tokens,
//! chunked or not: the multi-token order; a one-token step once the sequence has returned
//! logits: the one-token order), so an item's results depend neither on what else shares its
//! batch nor on how its prompt was chunked.
//!
//! One forward pass runs on a team of threads ([`team`]) that walk the layers together, each
//! taking its share of every stage, with a barrier between stages.

mod ggml;
mod team;

use std::io::{Read, Seek};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{Device, Module, Tensor};
use half::f16;

use crate::error::{LlmError, Result};
use crate::gguf::{GgufFile, LlamaConfig};
use crate::kernels::{self, BlockQ8_0, BlockQ8_1, QWeight};
use ggml::{Attention, HeadJob, Order};
use team::{Member, Shared};

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
            GgmlDType::Q4_1 => QWeight::q4_1_from_ggml(&t.data()?, rows, cols),
            GgmlDType::Q8_0 => QWeight::q8_0_from_ggml(&t.data()?, rows, cols),
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

    /// The activation format it wants: `Some(true)` Q8_1, `Some(false)` Q8_0, `None` f32.
    fn wants(&self) -> Option<bool> {
        match self {
            Linear::Own { w, .. } => Some(w.wants_q8_1()),
            Linear::Candle { .. } => None,
        }
    }
}

/// One input of a stage of products, as every format its consumers want.
struct Input<'s, 'b> {
    x: &'s Shared<'b, f32>,
    q8_1: &'s Shared<'b, BlockQ8_1>,
    q8_0: &'s Shared<'b, BlockQ8_0>,
    /// Rows.
    n: usize,
    /// Values per row.
    cols: usize,
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

/// How RoPE pairs a head's dimensions.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum RopeMode {
    /// Adjacent pairs `(2i, 2i+1)` (llama; ggml's `GGML_ROPE_TYPE_NORMAL`).
    Normal,
    /// Halves `(i, i + d/2)` (qwen2; ggml's `GGML_ROPE_TYPE_NEOX`).
    Neox,
}

/// A llama-architecture model, loaded. Invariant: every tensor has the shape its config implies.
pub struct LlamaModel {
    /// The checked hyper-parameters.
    pub config: LlamaConfig,
    /// The context length sequences are run with (the config's, capped at [`MAX_CONTEXT`]).
    pub context_length: usize,
    /// The embedding table when the output projection cannot serve as one.
    tok_embd: Option<QTensor>,
    blocks: Vec<Block>,
    output_norm: Vec<f32>,
    lm_head: Linear,
    /// Whether `lm_head` is the embedding table (tied embeddings in Q8_0: rows are looked up
    /// in it directly).
    embed_from_lm_head: bool,
    theta_scale: f32,
    rope_mode: RopeMode,
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
    /// Whether a step has returned logits for this sequence: from then on a one-token step is a
    /// decode step (ggml's one-token attention order); before, every step is prompt.
    decoding: bool,
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
            decoding: false,
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

/// Where a token row of the batch belongs.
#[derive(Clone, Copy)]
struct Row {
    item: usize,
    pos: usize,
}

/// Everything one forward pass shares between the team's members.
struct Pass<'s, 'b> {
    n: usize,
    rows: &'s [Row],
    /// Per item: its f16 summation order.
    orders: &'s [Order],
    /// Per item, per layer: its key and value caches (already grown to hold the new rows).
    caches: &'s [Vec<(Shared<'b, f16>, Shared<'b, f16>)>],
    /// Rows whose logits are wanted, in order.
    out_rows: &'s [usize],
    x: Shared<'b, f32>,
    xn: Shared<'b, f32>,
    q: Shared<'b, f32>,
    k: Shared<'b, f32>,
    v: Shared<'b, f32>,
    attn: Shared<'b, f32>,
    o: Shared<'b, f32>,
    hidden: Shared<'b, f32>,
    q8_1: Shared<'b, BlockQ8_1>,
    q8_0: Shared<'b, BlockQ8_0>,
    /// Per row, `(cos, sin)` for each rotated pair.
    rope: Shared<'b, (f32, f32)>,
    logits: Shared<'b, f32>,
    /// Next attention unit to take.
    next_unit: &'s [AtomicUsize],
    error: &'s Mutex<Option<LlmError>>,
}

impl Pass<'_, '_> {
    fn fail(&self, e: LlmError) {
        let mut slot = self.error.lock().unwrap_or_else(|p| p.into_inner());
        slot.get_or_insert(e);
    }
}

impl LlamaModel {
    /// Loads the weights of the model in `file` from `reader` (the same file).
    pub fn load<R: Read + Seek>(file: &GgufFile, reader: &mut R) -> Result<Self> {
        let config = LlamaConfig::from_gguf(file)?;
        let d = config.embedding_length;
        let kv = config.head_count_kv * config.head_dim;
        let mut weight_bytes = 0usize;
        let tok_embd = load(file, reader, "token_embd.weight")?;
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
        let embd_bytes = tok_embd.storage_size_in_bytes();
        let (lm_head, tok_embd, embed_from_lm_head) = if has(file, "output.weight") {
            (linear("output.weight", reader, config.vocab_size, d)?, Some(tok_embd), false)
        } else {
            // Tied embeddings (SmolLM2, small Qwen2.5): the output projection is the embedding.
            let tied = matches!(tok_embd.dtype(), GgmlDType::Q8_0) && cols.is_multiple_of(kernels::QK);
            if tied {
                (Linear::from_qtensor(tok_embd)?, None, true)
            } else {
                (Linear::from_qtensor(load(file, reader, "token_embd.weight")?)?, Some(tok_embd), false)
            }
        };
        let weight_bytes = weight_bytes + embd_bytes;
        let embed_from_lm_head = embed_from_lm_head && matches!(lm_head, Linear::Own { w: QWeight::Q8_0(_), .. });
        let context_length = config.context_length.min(MAX_CONTEXT);
        // glibc's powf and libm's agree here (checked for the default model's base 1e5).
        let theta_scale = libm::powf(config.rope_freq_base, -2.0 / config.rope_dimension_count as f32);
        let rope_mode = if config.architecture == "qwen2" { RopeMode::Neox } else { RopeMode::Normal };
        Ok(LlamaModel {
            config,
            context_length,
            tok_embd,
            blocks,
            output_norm,
            lm_head,
            embed_from_lm_head,
            theta_scale,
            rope_mode,
            weight_bytes,
        })
    }

    /// An empty cache for a new sequence.
    pub fn new_cache(&self) -> SeqCache {
        let n = self.config.block_count;
        SeqCache {
            k: vec![Vec::new(); n],
            v: vec![Vec::new(); n],
            len: 0,
            width: self.config.head_count_kv * self.config.head_dim,
            decoding: false,
        }
    }

    /// The embeddings of `ids`, row after row.
    fn embed(&self, ids: &[u32]) -> Result<Vec<f32>> {
        let d = self.config.embedding_length;
        if let (true, Linear::Own { w, .. }) = (self.embed_from_lm_head, &self.lm_head) {
            let mut out = Vec::with_capacity(ids.len() * d);
            for &id in ids {
                w.dequantize_q8_0_row(id as usize, d, &mut out);
            }
            return Ok(out);
        }
        let table = self.tok_embd.as_ref().ok_or_else(|| LlmError::Tensor("no embedding table".into()))?;
        let ids_t = Tensor::from_slice(ids, ids.len(), &Device::Cpu)?;
        Ok(table.embedding(&ids_t)?.flatten_all()?.to_vec1::<f32>()?)
    }

    /// Runs one step over a ragged batch: appends every item's tokens to its cache and returns,
    /// for each item that asked, the logits of the next token (`vocab_size` floats), in order.
    pub fn forward(&self, items: &mut [BatchItem<'_>]) -> Result<Vec<Option<Vec<f32>>>> {
        let cfg = &self.config;
        let mut ids = Vec::new();
        let mut rows = Vec::new();
        let mut out_rows = Vec::new();
        let mut orders = Vec::new();
        for (i, it) in items.iter().enumerate() {
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
            rows.extend((0..it.tokens.len()).map(|j| Row { item: i, pos: it.cache.len + j }));
            if it.want_logits {
                out_rows.push(rows.len() - 1);
            }
            // llama.cpp runs a prompt as one multi-token step and each generated token as a
            // one-token step; a prompt's own chunks (of any size, even one token) stay in the
            // multi-token order, so chunked prefill gives the bits of a whole one. (With one
            // position the order does not matter: the only weight is exactly 1.)
            let decode = it.tokens.len() == 1 && it.cache.decoding;
            orders.push(if decode { Order::VecDot } else { Order::Tiny });
        }
        let n = ids.len();
        let (d, kvw, ff, hd) =
            (cfg.embedding_length, cfg.head_count_kv * cfg.head_dim, cfg.feed_forward_length, cfg.head_dim);
        let mut x = self.embed(&ids)?;
        let widest = d.max(ff);
        let mut xn = vec![0f32; n * widest];
        let mut q = vec![0f32; n * d];
        let mut k = vec![0f32; n * kvw];
        let mut v = vec![0f32; n * kvw];
        let mut attn = vec![0f32; n * d];
        let mut o = vec![0f32; n * d];
        let mut hidden = vec![0f32; n * ff];
        let nb = widest / kernels::QK;
        let mut q8_1 = vec![BlockQ8_1::ZERO; n * nb];
        let mut q8_0 = vec![BlockQ8_0::ZERO; n * nb];
        let mut rope = vec![(0f32, 0f32); n * hd / 2];
        let mut logits = vec![0f32; out_rows.len() * cfg.vocab_size];
        let next_unit: Vec<AtomicUsize> = (0..cfg.block_count).map(|_| AtomicUsize::new(0)).collect();
        let error = Mutex::new(None);
        let width = kvw;
        let caches: Vec<Vec<(Shared<'_, f16>, Shared<'_, f16>)>> = items
            .iter_mut()
            .map(|it| {
                let len = (it.cache.len + it.tokens.len()) * width;
                it.cache
                    .k
                    .iter_mut()
                    .zip(it.cache.v.iter_mut())
                    .map(|(kc, vc)| {
                        kc.resize(len, f16::ZERO);
                        vc.resize(len, f16::ZERO);
                        (Shared::new(&mut kc[..]), Shared::new(&mut vc[..]))
                    })
                    .collect()
            })
            .collect();
        {
            let pass = Pass {
                n,
                rows: &rows,
                orders: &orders,
                caches: &caches,
                out_rows: &out_rows,
                x: Shared::new(&mut x),
                xn: Shared::new(&mut xn),
                q: Shared::new(&mut q),
                k: Shared::new(&mut k),
                v: Shared::new(&mut v),
                attn: Shared::new(&mut attn),
                o: Shared::new(&mut o),
                hidden: Shared::new(&mut hidden),
                q8_1: Shared::new(&mut q8_1),
                q8_0: Shared::new(&mut q8_0),
                rope: Shared::new(&mut rope),
                logits: Shared::new(&mut logits),
                next_unit: &next_unit,
                error: &error,
            };
            team::run(threads(), |m| self.member(m, &pass));
        }
        drop(caches);
        if let Some(e) = error.into_inner().unwrap_or_else(|p| p.into_inner()) {
            return Err(e);
        }
        for it in items.iter_mut() {
            it.cache.len += it.tokens.len();
            it.cache.decoding |= it.want_logits;
        }
        let mut rows_out = logits.chunks_exact(cfg.vocab_size);
        Ok(items.iter().map(|it| if it.want_logits { rows_out.next().map(|r| r.to_vec()) } else { None }).collect())
    }

    /// One member's walk through the pass.
    fn member(&self, m: &Member<'_>, p: &Pass<'_, '_>) {
        let cfg = &self.config;
        let n = p.n;
        let (d, h, hkv, hd) = (cfg.embedding_length, cfg.head_count, cfg.head_count_kv, cfg.head_dim);
        let kvw = hkv * hd;
        let ff = cfg.feed_forward_length;
        let eps = cfg.rms_norm_eps as f32;
        // The RoPE table of every row.
        for r in m.share(n, 1) {
            let pos = p.rows[r].pos;
            // SAFETY: row r's table is this member's alone in this stage.
            let t = unsafe { p.rope.part(r * hd / 2..(r + 1) * hd / 2) };
            let mut theta = pos as f32;
            for cs in t.iter_mut() {
                let (s, c) = ggml::sincosf(theta);
                *cs = (c, s);
                theta *= self.theta_scale;
            }
        }
        let mut scratch = Attention::default();
        let mut row_buf = vec![0f32; d.max(ff)];
        let mut gate_buf = Vec::new();
        let mut up_buf = Vec::new();
        for (layer, b) in self.blocks.iter().enumerate() {
            // Residual from the previous layer's feed-forward, then the attention norm.
            for r in m.share(n, 1) {
                // SAFETY: rows are split between members; `o` was written before the barrier
                // that ended the previous stage and is only read here.
                unsafe {
                    let xr = p.x.part(r * d..(r + 1) * d);
                    if layer > 0 {
                        for (a, c) in xr.iter_mut().zip(p.o.get(r * d..(r + 1) * d)) {
                            *a += c;
                        }
                    }
                    rms_norm(xr, &b.attn_norm, eps, p.xn.part(r * d..(r + 1) * d));
                }
            }
            m.sync();
            let input = Input { x: &p.xn, q8_1: &p.q8_1, q8_0: &p.q8_0, n, cols: d };
            quantize(m, &input, &[&b.wq, &b.wk, &b.wv]);
            m.sync();
            products(m, p, &input, &[(&b.wq, &p.q, d), (&b.wk, &p.k, kvw), (&b.wv, &p.v, kvw)]);
            m.sync();
            // Biases, RoPE, and the new keys and values into the caches.
            for r in m.share(n, 1) {
                let row = p.rows[r];
                // SAFETY: row r of q, k, v and position `row.pos` of the item's caches are this
                // member's alone in this stage; the rope table is read only.
                unsafe {
                    let qr = p.q.part(r * d..(r + 1) * d);
                    let kr = p.k.part(r * kvw..(r + 1) * kvw);
                    let vr = p.v.part(r * kvw..(r + 1) * kvw);
                    add_bias(qr, b.bq.as_deref());
                    add_bias(kr, b.bk.as_deref());
                    add_bias(vr, b.bv.as_deref());
                    let table = p.rope.get(r * hd / 2..(r + 1) * hd / 2);
                    rope(qr, hd, table, self.rope_mode);
                    rope(kr, hd, table, self.rope_mode);
                    let (kc, vc) = &p.caches[row.item][layer];
                    let at = row.pos * kvw..(row.pos + 1) * kvw;
                    for (c, &s) in kc.part(at.clone()).iter_mut().zip(kr.iter()) {
                        *c = f16::from_f32(s);
                    }
                    for (c, &s) in vc.part(at).iter_mut().zip(vr.iter()) {
                        *c = f16::from_f32(s);
                    }
                }
            }
            m.sync();
            // Attention: units (row, head), taken in turn by whichever member is free.
            let scale = 1.0 / (hd as f32).sqrt();
            let group = h / hkv;
            loop {
                let u = p.next_unit[layer].fetch_add(1, Ordering::Relaxed);
                if u >= n * h {
                    break;
                }
                let (r, head) = (u / h, u % h);
                let row = p.rows[r];
                let g = head / group;
                let (kc, vc) = &p.caches[row.item][layer];
                let t = row.pos + 1;
                // SAFETY: the caches and q are only read in this stage (written before the
                // barrier); unit u's slice of attn is written by the member that took u alone.
                unsafe {
                    let job = HeadJob {
                        q: p.q.get(r * d + head * hd..r * d + (head + 1) * hd),
                        k: &kc.get(0..t * kvw)[g * hd..],
                        v: &vc.get(0..t * kvw)[g * hd..],
                        stride: kvw,
                        t,
                        scale,
                        order: p.orders[row.item],
                    };
                    scratch.run(&job, p.attn.part(r * d + head * hd..r * d + (head + 1) * hd));
                }
            }
            m.sync();
            let input = Input { x: &p.attn, q8_1: &p.q8_1, q8_0: &p.q8_0, n, cols: d };
            quantize(m, &input, &[&b.wo]);
            m.sync();
            products(m, p, &input, &[(&b.wo, &p.o, d)]);
            m.sync();
            for r in m.share(n, 1) {
                // SAFETY: rows are split between members; `o` is only read.
                unsafe {
                    let xr = p.x.part(r * d..(r + 1) * d);
                    for (a, c) in xr.iter_mut().zip(p.o.get(r * d..(r + 1) * d)) {
                        *a += c;
                    }
                    rms_norm(xr, &b.ffn_norm, eps, p.xn.part(r * d..(r + 1) * d));
                }
            }
            m.sync();
            let input = Input { x: &p.xn, q8_1: &p.q8_1, q8_0: &p.q8_0, n, cols: d };
            quantize(m, &input, &[&b.w_gate, &b.w_up]);
            m.sync();
            // Gate and up for this member's rows of the feed-forward, then SwiGLU on them.
            self.gate_up(m, p, b, &input, &mut gate_buf, &mut up_buf, &mut row_buf);
            m.sync();
            let input = Input { x: &p.hidden, q8_1: &p.q8_1, q8_0: &p.q8_0, n, cols: ff };
            quantize(m, &input, &[&b.w_down]);
            m.sync();
            products(m, p, &input, &[(&b.w_down, &p.o, d)]);
            m.sync();
        }
        // The last residual, the output norm of the rows that want logits, the output product.
        let nl = p.out_rows.len();
        for (i, &r) in p.out_rows.iter().enumerate() {
            if i % m.size != m.id {
                continue;
            }
            // SAFETY: each wanted row (distinct rows) is handled by one member; output row i of
            // xn is that member's alone.
            unsafe {
                let xr = p.x.part(r * d..(r + 1) * d);
                for (a, c) in xr.iter_mut().zip(p.o.get(r * d..(r + 1) * d)) {
                    *a += c;
                }
                rms_norm(xr, &self.output_norm, eps, p.xn.part(i * d..(i + 1) * d));
            }
        }
        m.sync();
        if nl == 0 {
            return;
        }
        let input = Input { x: &p.xn, q8_1: &p.q8_1, q8_0: &p.q8_0, n: nl, cols: d };
        quantize(m, &input, &[&self.lm_head]);
        m.sync();
        products(m, p, &input, &[(&self.lm_head, &p.logits, cfg.vocab_size)]);
    }

    /// The feed-forward's gate and up products for this member's share of its rows, and
    /// `hidden = silu(gate) · up` there.
    #[allow(clippy::too_many_arguments)]
    fn gate_up(
        &self,
        m: &Member<'_>,
        p: &Pass<'_, '_>,
        b: &Block,
        input: &Input<'_, '_>,
        gate: &mut Vec<f32>,
        up: &mut Vec<f32>,
        row: &mut [f32],
    ) {
        let ff = self.config.feed_forward_length;
        let n = input.n;
        let own = matches!((&b.w_gate, &b.w_up), (Linear::Own { .. }, Linear::Own { .. }));
        if !own {
            // Candle's products run whole on member 0.
            if m.id == 0 {
                let (g, u) = match (whole_product(&b.w_gate, input), whole_product(&b.w_up, input)) {
                    (Ok(g), Ok(u)) => (g, u),
                    (Err(e), _) | (_, Err(e)) => return p.fail(e),
                };
                let vec_len = ff / 16 * 16;
                for t in 0..n {
                    // SAFETY: member 0 alone writes hidden in this stage.
                    let out = unsafe { p.hidden.part(t * ff..(t + 1) * ff) };
                    ggml::swiglu(&g[t * ff..(t + 1) * ff], &u[t * ff..(t + 1) * ff], out, vec_len);
                }
            }
            return;
        }
        let range = m.share(ff, 16);
        let len = range.len();
        if len == 0 {
            return;
        }
        gate.clear();
        gate.resize(n * len, 0.0);
        up.clear();
        up.resize(n * len, 0.0);
        for (w, dst) in [(&b.w_gate, &mut *gate), (&b.w_up, &mut *up)] {
            if let Linear::Own { w, cols, .. } = w {
                // SAFETY: the activations are only read in this stage.
                let (a1, a0) = unsafe { (input.q8_1.get(0..input.q8_1.len()), input.q8_0.get(0..input.q8_0.len())) };
                w.matmul_rows(range.start, range.end, *cols, a1, a0, n, |t, r, v| dst[t * len + r - range.start] = v);
            }
        }
        // ggml's SwiGLU takes whole groups of sixteen from the start of each row.
        let vec_len = (ff / 16 * 16).saturating_sub(range.start).min(len);
        for t in 0..n {
            let o = &mut row[..len];
            ggml::swiglu(&gate[t * len..(t + 1) * len], &up[t * len..(t + 1) * len], o, vec_len);
            // SAFETY: columns `range` of every row of hidden are this member's alone.
            unsafe { p.hidden.part(t * ff + range.start..t * ff + range.end) }.copy_from_slice(o);
        }
    }

    /// The number of tokens in the vocabulary.
    pub fn vocab_size(&self) -> usize {
        self.config.vocab_size
    }
}

/// Most threads one forward pass starts (each pass starts its own; past a handful, a decode
/// step's products are too small to share further).
#[cfg(not(target_family = "wasm"))]
const MAX_THREADS: usize = 16;

/// Threads for one forward pass: rayon's count (`RAYON_NUM_THREADS`), at most [`MAX_THREADS`].
fn threads() -> usize {
    #[cfg(not(target_family = "wasm"))]
    {
        rayon::current_num_threads().clamp(1, MAX_THREADS)
    }
    #[cfg(target_family = "wasm")]
    {
        1
    }
}

/// Quantises the input's rows in every format the `consumers` want (this member's rows).
fn quantize(m: &Member<'_>, input: &Input<'_, '_>, consumers: &[&Linear]) {
    let want81 = consumers.iter().any(|l| l.wants() == Some(true));
    let want80 = consumers.iter().any(|l| l.wants() == Some(false));
    let cols = input.cols;
    let nb = cols / kernels::QK;
    for r in m.share(input.n, 1) {
        // SAFETY: row r of the input is only read, row r of the activations is this member's.
        unsafe {
            let x = input.x.get(r * cols..(r + 1) * cols);
            if want81 {
                kernels::quantize_row_q8_1(x, input.q8_1.part(r * nb..(r + 1) * nb));
            }
            if want80 {
                kernels::quantize_row_q8_0(x, input.q8_0.part(r * nb..(r + 1) * nb));
            }
        }
    }
}

/// The products of one input with several weights, as one space of output rows split between
/// the members: `(weight, output, output row length)`, output rows written at `t · len + r`.
fn products(m: &Member<'_>, p: &Pass<'_, '_>, input: &Input<'_, '_>, parts: &[(&Linear, &Shared<'_, f32>, usize)]) {
    // Each weight's rows padded to whole groups of four, so that shares start on a group.
    let padded = |l: &Linear| l.rows().div_ceil(4) * 4;
    let total: usize = parts.iter().map(|(l, ..)| padded(l)).sum();
    let mine = m.share(total, 16);
    let mut base = 0;
    for &(l, out, ld) in parts {
        let rows = l.rows();
        let (a, b) = (mine.start.max(base), mine.end.min(base + rows));
        match l {
            Linear::Own { w, cols, .. } => {
                if a < b {
                    // SAFETY: the activations are only read in this stage; output columns
                    // `a - base .. b - base` of every row are this member's alone.
                    unsafe {
                        let (a1, a0) = (input.q8_1.get(0..input.q8_1.len()), input.q8_0.get(0..input.q8_0.len()));
                        w.matmul_rows(a - base, b - base, *cols, a1, a0, input.n, |t, r, v| out.set(t * ld + r, v));
                    }
                }
            }
            Linear::Candle { .. } => {
                // Candle's product runs whole on member 0.
                if m.id == 0 {
                    match candle_product(l, input) {
                        Ok(y) => {
                            for t in 0..input.n {
                                // SAFETY: member 0 alone writes this output in this stage.
                                unsafe { out.part(t * ld..t * ld + rows) }
                                    .copy_from_slice(&y[t * rows..(t + 1) * rows]);
                            }
                        }
                        Err(e) => p.fail(e),
                    }
                }
            }
        }
        base += padded(l);
    }
}

/// A whole product on the calling member: `n × rows` values.
fn whole_product(l: &Linear, input: &Input<'_, '_>) -> Result<Vec<f32>> {
    let (w, cols) = match l {
        Linear::Candle { .. } => return candle_product(l, input),
        Linear::Own { w, cols, .. } => (w, *cols),
    };
    let rows = l.rows();
    let mut out = vec![0f32; input.n * rows];
    // SAFETY: the activations are only read in this stage.
    let (a1, a0) = unsafe { (input.q8_1.get(0..input.q8_1.len()), input.q8_0.get(0..input.q8_0.len())) };
    w.matmul_rows(0, rows, cols, a1, a0, input.n, |t, r, v| out[t * rows + r] = v);
    Ok(out)
}

/// A whole product through candle, from the f32 input.
fn candle_product(l: &Linear, input: &Input<'_, '_>) -> Result<Vec<f32>> {
    let Linear::Candle { w, cols, .. } = l else {
        return Err(LlmError::Tensor("not a candle weight".into()));
    };
    // SAFETY: the f32 input is only read in this stage.
    let x = unsafe { input.x.get(0..input.n * cols) };
    let t = Tensor::from_slice(x, (input.n, *cols), &Device::Cpu)?;
    Ok(w.forward(&t)?.flatten_all()?.to_vec1::<f32>()?)
}

/// Rotates `x` (heads × `hd`, one token) by the row's `(cos, sin)` table as ggml's
/// `rotate_pairs` does once GCC has contracted it (its out-of-place loop):
/// `fma(x0, c, −x1·s)` and `fma(x0, s, x1·c)`, the products with `x1` rounded.
fn rope(x: &mut [f32], hd: usize, table: &[(f32, f32)], mode: RopeMode) {
    #[cfg(target_arch = "x86_64")]
    if kernels::has_avx2() {
        // SAFETY: AVX2 and FMA were detected at run time.
        return unsafe { rope_fma(x, hd, table, mode) };
    }
    rope_portable(x, hd, table, mode)
}

/// [`rope_portable`] compiled with FMA (the fused operations become instructions).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn rope_fma(x: &mut [f32], hd: usize, table: &[(f32, f32)], mode: RopeMode) {
    rope_portable(x, hd, table, mode)
}

#[inline(always)]
fn rope_portable(x: &mut [f32], hd: usize, table: &[(f32, f32)], mode: RopeMode) {
    for head in x.chunks_exact_mut(hd) {
        for (i, &(c, s)) in table.iter().enumerate() {
            let (a, b) = match mode {
                RopeMode::Normal => (2 * i, 2 * i + 1),
                RopeMode::Neox => (i, i + hd / 2),
            };
            let (x0, x1) = (head[a], head[b]);
            head[a] = x0.mul_add(c, -(x1 * s));
            head[b] = x0.mul_add(s, x1 * c);
        }
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

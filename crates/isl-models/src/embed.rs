//! Sentence embeddings: a BERT-style encoder, mean pooling over real tokens, L2 normalisation.

use tract_onnx::prelude::*;

use crate::error::ModelError;
use crate::manifest::ModelSpec;
use crate::runtime::{OnnxModel, PlanMode, f32_output, i64_tensor};
use crate::tokenize::{EncodedBatch, Overflow, TextTokenizer};

/// Texts per model call when a caller passes many at once (the batcher forms its own batches).
pub const DEFAULT_CHUNK: usize = 32;

/// Embeddings of a list of texts.
#[derive(Debug, Clone, PartialEq)]
pub struct Embeddings {
    /// One unit-length vector per text, in request order.
    pub vectors: Vec<Vec<f32>>,
    /// Indices of the texts cut to the model's token limit.
    pub truncated: Vec<usize>,
    /// Tokens processed (after truncation, special tokens included).
    pub tokens: usize,
}

/// A sentence-embedding model ready to run.
#[derive(Debug)]
pub struct EmbeddingModel {
    spec: ModelSpec,
    tokenizer: TextTokenizer,
    onnx: OnnxModel,
    inputs: Vec<Input>,
    dims: usize,
    pad_multiple: usize,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Input {
    Ids,
    Mask,
    TypeIds,
}

impl EmbeddingModel {
    /// A model from its ONNX and `tokenizer.json` bytes. `mode` chooses how tract plans
    /// shapes; with concrete-shape plans sequence lengths are padded up to a multiple of 8
    /// so that few plans are made.
    pub fn from_bytes(spec: &ModelSpec, onnx: &[u8], tokenizer: &[u8], mode: PlanMode) -> Result<Self, ModelError> {
        let tokenizer = TextTokenizer::from_bytes(&spec.name, tokenizer, spec.max_tokens, spec.fixed_length)?;
        let onnx = OnnxModel::from_bytes(&spec.name, onnx, mode)?;
        let inputs = onnx
            .input_names()
            .iter()
            .map(|n| match n.as_str() {
                "input_ids" => Ok(Input::Ids),
                "attention_mask" => Ok(Input::Mask),
                "token_type_ids" => Ok(Input::TypeIds),
                other => Err(ModelError::load(&spec.name, format!("unexpected model input '{other}'"))),
            })
            .collect::<Result<Vec<_>, _>>()?;
        if !inputs.contains(&Input::Ids) {
            return Err(ModelError::load(&spec.name, "the model has no input_ids input"));
        }
        let dims = spec.dimensions.unwrap_or(0);
        let pad_multiple = if mode.concrete() { 8 } else { 1 };
        Ok(EmbeddingModel { spec: spec.clone(), tokenizer, onnx, inputs, dims, pad_multiple })
    }

    /// The model's name.
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// Embedding size.
    pub fn dimensions(&self) -> usize {
        self.dims
    }

    /// The tokeniser (token counts for the batcher, limits).
    pub fn tokenizer(&self) -> &TextTokenizer {
        &self.tokenizer
    }

    /// The underlying tract model.
    pub fn onnx(&self) -> &OnnxModel {
        &self.onnx
    }

    /// Embeds `texts`: tokenised, sorted by length and run in chunks of at most
    /// [`DEFAULT_CHUNK`] similar lengths (little padding), answers in request order.
    pub fn embed<S: AsRef<str>>(&self, texts: &[S], overflow: Overflow) -> Result<Embeddings, ModelError> {
        self.embed_chunked(texts, overflow, DEFAULT_CHUNK)
    }

    /// [`EmbeddingModel::embed`] with an explicit chunk size (model calls of at most `chunk` texts).
    pub fn embed_chunked<S: AsRef<str>>(
        &self,
        texts: &[S],
        overflow: Overflow,
        chunk: usize,
    ) -> Result<Embeddings, ModelError> {
        let mut encs = Vec::with_capacity(texts.len());
        let mut truncated = Vec::new();
        for (i, t) in texts.iter().enumerate() {
            let (enc, cut) = self.tokenizer.encode(t.as_ref(), "texts", i, overflow)?;
            if cut {
                truncated.push(i);
            }
            encs.push(enc);
        }
        let tokens = encs.iter().map(|e| e.len()).sum();
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| encs[i].len());
        let mut vectors = vec![Vec::new(); texts.len()];
        for group in order.chunks(chunk.max(1)) {
            let batch: Vec<_> = group.iter().map(|&i| encs[i].clone()).collect();
            let padded = self.tokenizer.pad(&batch, vec![false; batch.len()]);
            let out = self.embed_encoded(&padded)?;
            for (&i, v) in group.iter().zip(out) {
                vectors[i] = v;
            }
        }
        Ok(Embeddings { vectors, truncated, tokens })
    }

    /// One model call on an already padded batch: mean-pooled, normalised vectors per row.
    pub fn embed_encoded(&self, batch: &EncodedBatch) -> Result<Vec<Vec<f32>>, ModelError> {
        if batch.batch == 0 {
            return Ok(Vec::new());
        }
        let name = self.name();
        let seq = batch.seq.div_ceil(self.pad_multiple) * self.pad_multiple;
        let widen = |v: &[i64], fill: i64| -> Vec<i64> {
            if seq == batch.seq {
                return v.to_vec();
            }
            let mut out = vec![fill; batch.batch * seq];
            for r in 0..batch.batch {
                out[r * seq..r * seq + batch.seq].copy_from_slice(&v[r * batch.seq..(r + 1) * batch.seq]);
            }
            out
        };
        let ids = widen(&batch.ids, 0);
        let mask = widen(&batch.mask, 0);
        let shape = [batch.batch, seq];
        let mut inputs: TVec<TValue> = TVec::new();
        for input in &self.inputs {
            inputs.push(match input {
                Input::Ids => i64_tensor(name, &shape, &ids)?,
                Input::Mask => i64_tensor(name, &shape, &mask)?,
                Input::TypeIds => i64_tensor(name, &shape, &widen(&batch.type_ids, 0))?,
            });
        }
        let outputs = self.onnx.run(inputs)?;
        let first = outputs.first().ok_or_else(|| ModelError::inference(name, "the model returned no output"))?;
        let (hidden, hshape) = f32_output(name, first)?;
        if hshape.len() != 3 || hshape[0] != batch.batch || hshape[1] != seq {
            return Err(ModelError::inference(name, format!("unexpected output shape {hshape:?}")));
        }
        let dims = hshape[2];
        Ok((0..batch.batch)
            .map(|r| {
                mean_pool_normalise(&hidden[r * seq * dims..(r + 1) * seq * dims], &mask[r * seq..(r + 1) * seq], dims)
            })
            .collect())
    }
}

/// Mean of the rows of `hidden` (`[seq, dims]`) where `mask` is 1, scaled to unit length.
pub fn mean_pool_normalise(hidden: &[f32], mask: &[i64], dims: usize) -> Vec<f32> {
    let mut acc = vec![0f32; dims];
    let mut count = 0f32;
    for (row, &m) in hidden.chunks_exact(dims).zip(mask) {
        if m != 0 {
            for (a, &h) in acc.iter_mut().zip(row) {
                *a += h;
            }
            count += 1.0;
        }
    }
    let count = count.max(1e-9);
    for a in &mut acc {
        *a /= count;
    }
    let norm = acc.iter().map(|a| a * a).sum::<f32>().sqrt().max(1e-12);
    for a in &mut acc {
        *a /= norm;
    }
    acc
}

/// Cosine similarity of two unit vectors (their dot product).
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

//! Natural-language inference: (premise, hypothesis) → entailment / neutral / contradiction.

use serde::{Deserialize, Serialize};
use tract_onnx::prelude::*;

use crate::error::ModelError;
use crate::manifest::ModelSpec;
use crate::runtime::{OnnxModel, PlanMode, f32_output, i64_tensor};
use crate::tokenize::{Overflow, TextTokenizer};

/// Pairs per model call.
pub const NLI_CHUNK: usize = 64;

/// The three labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NliLabel {
    /// The premise implies the hypothesis.
    Entailment,
    /// Neither implies nor contradicts.
    Neutral,
    /// The premise contradicts the hypothesis.
    Contradiction,
}

/// Probabilities of the three labels (they sum to 1).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct NliScores {
    /// P(entailment).
    pub entailment: f32,
    /// P(neutral).
    pub neutral: f32,
    /// P(contradiction).
    pub contradiction: f32,
}

impl NliScores {
    /// The most probable label (ties: entailment, then contradiction, then neutral).
    pub fn label(&self) -> NliLabel {
        if self.entailment >= self.contradiction && self.entailment >= self.neutral {
            NliLabel::Entailment
        } else if self.contradiction >= self.neutral {
            NliLabel::Contradiction
        } else {
            NliLabel::Neutral
        }
    }
}

/// Scores for a list of pairs.
#[derive(Debug, Clone, PartialEq)]
pub struct NliOutput {
    /// One per pair, in request order.
    pub scores: Vec<NliScores>,
    /// Indices of the pairs whose premise or hypothesis was cut to the token limit.
    pub truncated: Vec<usize>,
}

/// An NLI model ready to run.
#[derive(Debug)]
pub struct NliModel {
    spec: ModelSpec,
    tokenizer: TextTokenizer,
    onnx: OnnxModel,
    /// Position of entailment, neutral, contradiction in the model's output.
    label_pos: [usize; 3],
    /// Input order: true where the input is the hypothesis.
    hypothesis_first: bool,
}

impl NliModel {
    /// A model from its ONNX and `tokenizer.json` bytes. The model takes `hypothesis_ids` and
    /// `premise_ids` (`[batch, seq]`, int64) and returns logits in the manifest's label order.
    pub fn from_bytes(spec: &ModelSpec, onnx: &[u8], tokenizer: &[u8], mode: PlanMode) -> Result<Self, ModelError> {
        let tokenizer = TextTokenizer::from_bytes(&spec.name, tokenizer, spec.max_tokens, spec.fixed_length)?;
        let onnx = OnnxModel::from_bytes(&spec.name, onnx, mode)?;
        let names = onnx.input_names();
        let hypothesis_first = match (names.first().map(String::as_str), names.get(1).map(String::as_str)) {
            (Some("hypothesis_ids"), Some("premise_ids")) => true,
            (Some("premise_ids"), Some("hypothesis_ids")) => false,
            _ => return Err(ModelError::load(&spec.name, format!("unsupported NLI inputs {names:?}"))),
        };
        let pos = |label: &str| {
            spec.labels
                .iter()
                .position(|l| l == label)
                .ok_or_else(|| ModelError::load(&spec.name, format!("the manifest gives no '{label}' label")))
        };
        let label_pos = [pos("entailment")?, pos("neutral")?, pos("contradiction")?];
        Ok(NliModel { spec: spec.clone(), tokenizer, onnx, label_pos, hypothesis_first })
    }

    /// The model's name.
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// The text the model was trained on and is reliable for ([`ModelSpec::domain`]).
    pub fn domain(&self) -> &str {
        &self.spec.domain
    }

    /// The tokeniser.
    pub fn tokenizer(&self) -> &TextTokenizer {
        &self.tokenizer
    }

    /// The underlying tract model.
    pub fn onnx(&self) -> &OnnxModel {
        &self.onnx
    }

    /// Label probabilities for each (premise, hypothesis) pair.
    pub fn predict<P: AsRef<str>, H: AsRef<str>>(
        &self,
        pairs: &[(P, H)],
        overflow: Overflow,
    ) -> Result<NliOutput, ModelError> {
        let mut scores = Vec::with_capacity(pairs.len());
        let mut truncated = Vec::new();
        for (c, chunk) in pairs.chunks(NLI_CHUNK).enumerate() {
            let base = c * NLI_CHUNK;
            let premises: Vec<&str> = chunk.iter().map(|(p, _)| p.as_ref()).collect();
            let hypotheses: Vec<&str> = chunk.iter().map(|(_, h)| h.as_ref()).collect();
            let pb = self.tokenizer.encode_batch(&premises, "premise", base, overflow)?;
            let hb = self.tokenizer.encode_batch(&hypotheses, "hypothesis", base, overflow)?;
            for i in 0..chunk.len() {
                if pb.truncated[i] || hb.truncated[i] {
                    truncated.push(base + i);
                }
            }
            // Both inputs share one length (the model's fixed length, or the longer batch).
            let seq = pb.seq.max(hb.seq);
            let ids = |b: &crate::tokenize::EncodedBatch| -> Vec<i64> {
                let pad = b.ids.iter().zip(&b.mask).find(|(_, m)| **m == 0).map(|(i, _)| *i).unwrap_or(0);
                let mut out = vec![pad; b.batch * seq];
                for r in 0..b.batch {
                    out[r * seq..r * seq + b.seq].copy_from_slice(&b.ids[r * b.seq..(r + 1) * b.seq]);
                }
                out
            };
            let name = self.name();
            let shape = [chunk.len(), seq];
            let (p, h) = (i64_tensor(name, &shape, &ids(&pb))?, i64_tensor(name, &shape, &ids(&hb))?);
            let inputs: TVec<TValue> = if self.hypothesis_first { tvec![h, p] } else { tvec![p, h] };
            let outputs = self.onnx.run(inputs)?;
            let first = outputs.first().ok_or_else(|| ModelError::inference(name, "the model returned no output"))?;
            let (logits, shape) = f32_output(name, first)?;
            let labels = self.spec.labels.len();
            if shape != [chunk.len(), labels] {
                return Err(ModelError::inference(name, format!("unexpected output shape {shape:?}")));
            }
            for row in logits.chunks_exact(labels) {
                let probs = softmax(row);
                scores.push(NliScores {
                    entailment: probs[self.label_pos[0]],
                    neutral: probs[self.label_pos[1]],
                    contradiction: probs[self.label_pos[2]],
                });
            }
        }
        Ok(NliOutput { scores, truncated })
    }
}

/// Softmax of logits.
pub fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = logits.iter().map(|&l| (l - max).exp()).collect();
    let sum: f32 = exps.iter().sum();
    exps.iter().map(|e| e / sum).collect()
}

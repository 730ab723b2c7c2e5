//! Claim verification: embed, retrieve the top-k evidence passages by cosine similarity, run
//! NLI (premise = passage, hypothesis = claim) on each, and aggregate to a verdict.

use serde::{Deserialize, Serialize};

use crate::embed::{EmbeddingModel, dot};
use crate::error::ModelError;
use crate::nli::{NliLabel, NliModel, NliScores};
use crate::timing::{Stopwatch, round_ms};
use crate::tokenize::Overflow;

/// A verdict on a claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Some retrieved passage entails the claim.
    Supported,
    /// Some retrieved passage contradicts the claim.
    Refuted,
    /// Neither, with enough confidence.
    NotEnoughEvidence,
}

/// One retrieved passage and what NLI says of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvidenceResult {
    /// The passage.
    pub text: String,
    /// Its position in the evidence list.
    pub index: usize,
    /// Cosine similarity of passage and claim embeddings.
    pub similarity: f32,
    /// The most probable NLI label.
    pub label: NliLabel,
    /// NLI probabilities.
    pub scores: NliScores,
}

/// The answer for one claim.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClaimResult {
    /// The claim.
    pub claim: String,
    /// The verdict.
    pub verdict: Verdict,
    /// Probability behind the verdict: the best entailment (supported) or contradiction
    /// (refuted) probability, or one minus the larger of both (not enough evidence).
    pub confidence: f32,
    /// The top-k passages, most similar first.
    pub evidence: Vec<EvidenceResult>,
}

/// Milliseconds per stage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct VerifyTimings {
    /// Embedding claims (and passages, unless the corpus was embedded beforehand).
    pub embed: f64,
    /// Cosine top-k.
    pub retrieve: f64,
    /// NLI on every (passage, claim) pair, one batched call.
    pub nli: f64,
    /// Verdicts.
    pub aggregate: f64,
    /// Everything.
    pub total: f64,
}

/// Verification of a list of claims.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifyOutput {
    /// One per claim, in request order.
    pub results: Vec<ClaimResult>,
    /// Stage timings.
    pub timings: VerifyTimings,
}

/// Evidence passages with their embeddings: embed a named corpus once at start and reuse it.
#[derive(Debug, Clone)]
pub struct Corpus {
    texts: Vec<String>,
    vectors: Vec<Vec<f32>>,
    model: String,
}

impl Corpus {
    /// Embeds `texts` with `model` (long passages are truncated).
    pub fn embed(model: &EmbeddingModel, texts: Vec<String>) -> Result<Self, ModelError> {
        let vectors = model.embed(&texts, Overflow::Truncate)?.vectors;
        Ok(Corpus { texts, vectors, model: model.name().to_string() })
    }

    /// The passages.
    pub fn texts(&self) -> &[String] {
        &self.texts
    }

    /// The embedding model used.
    pub fn model(&self) -> &str {
        &self.model
    }
}

/// Decision thresholds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VerifyOptions {
    /// A passage supports (refutes) the claim when its entailment (contradiction) probability
    /// is at least this and above the other.
    pub threshold: f32,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions { threshold: 0.5 }
    }
}

/// Where the passages come from.
#[derive(Debug, Clone, Copy)]
pub enum Evidence<'a> {
    /// Passages in the request: embedded in this call.
    Texts(&'a [String]),
    /// A corpus embedded beforehand.
    Corpus(&'a Corpus),
}

/// Verifies `claims` against `evidence`, keeping the `top_k` most similar passages per claim.
pub fn verify(
    embedder: &EmbeddingModel,
    nli: &NliModel,
    claims: &[String],
    evidence: Evidence<'_>,
    top_k: usize,
    options: VerifyOptions,
) -> Result<VerifyOutput, ModelError> {
    let embed = |texts: &[String]| Ok(embedder.embed(texts, Overflow::Truncate)?.vectors);
    let infer = |pairs: &[(&str, &str)]| Ok(nli.predict(pairs, Overflow::Truncate)?.scores);
    verify_with(embedder.name(), &embed, &infer, claims, evidence, top_k, options)
}

/// Embeds texts (unit vectors, long texts cut), for [`verify_with`].
pub type EmbedFn<'a> = dyn Fn(&[String]) -> Result<Vec<Vec<f32>>, ModelError> + 'a;
/// Scores (premise, hypothesis) pairs (long texts cut), for [`verify_with`].
pub type NliFn<'a> = dyn Fn(&[(&str, &str)]) -> Result<Vec<NliScores>, ModelError> + 'a;

/// [`verify`] with the models behind functions (a server runs them through its batchers);
/// `embedder` names the embedding model `embed` runs (a corpus must have been embedded with it).
pub fn verify_with(
    embedder: &str,
    embed: &EmbedFn<'_>,
    nli: &NliFn<'_>,
    claims: &[String],
    evidence: Evidence<'_>,
    top_k: usize,
    options: VerifyOptions,
) -> Result<VerifyOutput, ModelError> {
    let total = Stopwatch::start();
    let mut sw = Stopwatch::start();
    if top_k == 0 {
        return Err(ModelError::InvalidRequest { message: "top_k must be at least 1".into() });
    }
    let claim_vecs = embed(claims)?;
    let owned;
    let (texts, vectors): (&[String], &[Vec<f32>]) = match evidence {
        Evidence::Texts(texts) => {
            owned = embed(texts)?;
            (texts, &owned)
        }
        Evidence::Corpus(c) => {
            if c.model != embedder {
                return Err(ModelError::InvalidRequest {
                    message: format!("the corpus was embedded with '{}', not '{embedder}'", c.model),
                });
            }
            (&c.texts, &c.vectors)
        }
    };
    let embed = sw.lap();

    let k = top_k.min(texts.len());
    let mut picks: Vec<Vec<(usize, f32)>> = Vec::with_capacity(claims.len());
    for cv in &claim_vecs {
        let mut sims: Vec<(usize, f32)> = vectors.iter().enumerate().map(|(i, v)| (i, dot(cv, v))).collect();
        if k < sims.len() {
            sims.select_nth_unstable_by(k, |a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            sims.truncate(k);
        }
        sims.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        picks.push(sims);
    }
    let retrieve = sw.lap();

    let pairs: Vec<(&str, &str)> = picks
        .iter()
        .zip(claims)
        .flat_map(|(p, claim)| p.iter().map(move |&(i, _)| (texts[i].as_str(), claim.as_str())))
        .collect();
    let scores = nli(&pairs)?;
    let nli_ms = sw.lap();

    let mut results = Vec::with_capacity(claims.len());
    let mut at = 0;
    for (claim, p) in claims.iter().zip(&picks) {
        let ev: Vec<EvidenceResult> = p
            .iter()
            .zip(&scores[at..at + p.len()])
            .map(|(&(index, similarity), s)| EvidenceResult {
                text: texts[index].clone(),
                index,
                similarity,
                label: s.label(),
                scores: *s,
            })
            .collect();
        at += p.len();
        let (verdict, confidence) = aggregate(&ev, options);
        results.push(ClaimResult { claim: claim.clone(), verdict, confidence, evidence: ev });
    }
    let aggregate_ms = sw.lap();
    Ok(VerifyOutput {
        results,
        timings: VerifyTimings {
            embed: round_ms(embed),
            retrieve: round_ms(retrieve),
            nli: round_ms(nli_ms),
            aggregate: round_ms(aggregate_ms),
            total: round_ms(total.ms()),
        },
    })
}

/// The verdict from a claim's passages: the strongest entailment against the strongest
/// contradiction.
pub fn aggregate(evidence: &[EvidenceResult], options: VerifyOptions) -> (Verdict, f32) {
    let support = evidence.iter().map(|e| e.scores.entailment).fold(0.0f32, f32::max);
    let refute = evidence.iter().map(|e| e.scores.contradiction).fold(0.0f32, f32::max);
    if support >= options.threshold && support >= refute {
        (Verdict::Supported, support)
    } else if refute >= options.threshold {
        (Verdict::Refuted, refute)
    } else {
        (Verdict::NotEnoughEvidence, 1.0 - support.max(refute))
    }
}

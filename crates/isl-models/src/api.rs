//! Request and response types of `/v1/embed`, `/v1/nli`, `/v1/verify` and `/v1/forecast`, and
//! the functions that answer them from a [`Registry`]: input checks first (422), then the
//! model (503 when missing), then the computation.

use serde::{Deserialize, Serialize};

use crate::error::ModelError;
use crate::forecast::{ForecastTimings, Timestamp, format_rfc3339};
use crate::nli::{NliLabel, NliScores};
use crate::registry::Registry;
use crate::tokenize::Overflow;
use std::sync::Arc;

use crate::embed::EmbeddingModel;
use crate::nli::NliModel;
use crate::verify::{ClaimResult, Corpus, Evidence, VerifyOptions, VerifyOutput, VerifyTimings};

/// Limits on requests (the service's configuration).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ModelLimits {
    /// Most texts in one `/v1/embed` request.
    pub max_texts: usize,
    /// Most bytes in one text (longer texts are refused before tokenising).
    pub max_text_bytes: usize,
    /// Most pairs in one `/v1/nli` request.
    pub max_pairs: usize,
    /// Most claims in one `/v1/verify` request.
    pub max_claims: usize,
    /// Most evidence passages in one `/v1/verify` request.
    pub max_evidence: usize,
    /// Largest `top_k`.
    pub max_top_k: usize,
    /// `top_k` when the request gives none.
    pub default_top_k: usize,
    /// Most points in one `/v1/forecast` series.
    pub max_series_points: usize,
}

impl Default for ModelLimits {
    fn default() -> Self {
        ModelLimits {
            max_texts: 256,
            max_text_bytes: 16 * 1024,
            max_pairs: 256,
            max_claims: 32,
            max_evidence: 1024,
            max_top_k: 20,
            default_top_k: 3,
            max_series_points: 100_000,
        }
    }
}

fn default_true() -> bool {
    true
}

/// `/v1/embed` request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbedRequest {
    /// Texts to embed.
    pub texts: Vec<String>,
    /// Embedding model (default: the first of the manifest, `all-MiniLM-L6-v2`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Cut texts over the model's token limit and list them in `truncated` (default), or
    /// refuse them (`false`: 422 `text_too_long`).
    #[serde(default = "default_true")]
    pub truncate: bool,
}

/// `/v1/embed` response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbedResponse {
    /// The model used.
    pub model: String,
    /// Embedding size.
    pub dimensions: usize,
    /// One unit vector per text (mean pooling over tokens, L2-normalised).
    pub embeddings: Vec<Vec<f32>>,
    /// Indices of texts cut to the model's token limit.
    pub truncated: Vec<usize>,
    /// Tokens processed.
    pub tokens: usize,
}

/// One (premise, hypothesis) pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NliPair {
    /// The premise.
    pub premise: String,
    /// The hypothesis.
    pub hypothesis: String,
}

/// `/v1/nli` request: `pairs`, or the same as two lists `premises` and `hypotheses` of equal
/// length (an extension).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NliRequest {
    /// The pairs.
    #[serde(default)]
    pub pairs: Vec<NliPair>,
    /// Premises, paired by position with `hypotheses`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub premises: Option<Vec<String>>,
    /// Hypotheses, paired by position with `premises`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hypotheses: Option<Vec<String>>,
    /// NLI model (default: the manifest's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// As in [`EmbedRequest::truncate`].
    #[serde(default = "default_true")]
    pub truncate: bool,
}

/// The answer for one pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NliResult {
    /// The most probable label.
    pub label: NliLabel,
    /// The probabilities.
    pub scores: NliScores,
}

/// `/v1/nli` response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NliResponse {
    /// The model used.
    pub model: String,
    /// The text that model was trained on and is reliable for.
    pub domain: String,
    /// One per pair.
    pub results: Vec<NliResult>,
    /// Indices of pairs whose premise or hypothesis was cut to the token limit.
    pub truncated: Vec<usize>,
}

/// `/v1/verify` request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    /// Claims to verify.
    pub claims: Vec<String>,
    /// Evidence passages (empty when `corpus` names one loaded at start).
    #[serde(default)]
    pub evidence: Vec<String>,
    /// Name of a corpus loaded at start (an extension; the service resolves it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corpus: Option<String>,
    /// Passages per claim (default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<usize>,
    /// Embedding model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedding_model: Option<String>,
    /// NLI model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nli_model: Option<String>,
}

/// `/v1/verify` response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerifyResponse {
    /// One per claim.
    pub results: Vec<ClaimResult>,
    /// Milliseconds per stage: `embed`, `retrieve`, `nli`, `aggregate`, `total`.
    pub timings_ms: VerifyTimings,
    /// The embedding model used.
    pub embedding_model: String,
    /// The NLI model used.
    pub nli_model: String,
    /// The text that NLI model was trained on and is reliable for (verdicts follow its labels).
    pub nli_domain: String,
}

/// `/v1/forecast` request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForecastRequest {
    /// Increasing timestamps, epoch seconds or RFC 3339.
    pub timestamps: Vec<Timestamp>,
    /// Values, one per timestamp.
    pub values: Vec<f64>,
    /// Steps to forecast (1 to the model's maximum, 48).
    pub horizon: usize,
    /// Forecasting model (default: the built-in one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
}

/// `/v1/forecast` response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForecastResponse {
    /// The future timestamps, in the format of the request's last timestamp (RFC 3339 in UTC
    /// for text).
    pub timestamps: Vec<Timestamp>,
    /// The forecast.
    pub forecast: Vec<f64>,
    /// Milliseconds per stage: `parse`, `features`, `model`, `inverse`, `total`.
    pub timings_ms: ForecastTimings,
    /// The model used.
    pub model: String,
    /// The series' step in seconds (the median spacing of the window).
    pub step_seconds: f64,
}

pub(crate) fn check_texts(field: &str, texts: &[String], limit: usize, max_bytes: usize) -> Result<(), ModelError> {
    if texts.is_empty() {
        return Err(ModelError::EmptyInput { field: field.into() });
    }
    if texts.len() > limit {
        return Err(ModelError::TooMany { field: field.into(), count: texts.len(), limit });
    }
    check_each(field, texts.iter().map(String::as_str), max_bytes)
}

pub(crate) fn check_each<'a>(
    field: &str,
    texts: impl Iterator<Item = &'a str>,
    max_bytes: usize,
) -> Result<(), ModelError> {
    for (index, t) in texts.enumerate() {
        if t.trim().is_empty() {
            return Err(ModelError::EmptyText { field: field.into(), index });
        }
        if t.len() > max_bytes {
            return Err(ModelError::TextTooLarge { field: field.into(), index, bytes: t.len(), limit: max_bytes });
        }
    }
    Ok(())
}

pub(crate) fn overflow(truncate: bool) -> Overflow {
    if truncate { Overflow::Truncate } else { Overflow::Reject }
}

/// Answers `/v1/embed`.
pub fn embed(registry: &Registry, req: &EmbedRequest, limits: &ModelLimits) -> Result<EmbedResponse, ModelError> {
    check_texts("texts", &req.texts, limits.max_texts, limits.max_text_bytes)?;
    let model = registry.embedding(req.model.as_deref())?;
    let out = model.embed(&req.texts, overflow(req.truncate))?;
    Ok(EmbedResponse {
        model: model.name().to_string(),
        dimensions: model.dimensions(),
        embeddings: out.vectors,
        truncated: out.truncated,
        tokens: out.tokens,
    })
}

/// The pairs of an NLI request, from `pairs` or from `premises` + `hypotheses`.
pub fn nli_pairs(req: &NliRequest) -> Result<Vec<(&str, &str)>, ModelError> {
    match (&req.premises, &req.hypotheses) {
        (None, None) => Ok(req.pairs.iter().map(|p| (p.premise.as_str(), p.hypothesis.as_str())).collect()),
        (Some(p), Some(h)) if req.pairs.is_empty() => {
            if p.len() != h.len() {
                return Err(ModelError::MismatchedLengths {
                    first: "premises".into(),
                    first_len: p.len(),
                    second: "hypotheses".into(),
                    second_len: h.len(),
                });
            }
            Ok(p.iter().zip(h).map(|(p, h)| (p.as_str(), h.as_str())).collect())
        }
        (Some(p), Some(h)) => Err(ModelError::InvalidRequest {
            message: format!(
                "give either pairs or premises and hypotheses, not both ({} pairs, {} premises, {} hypotheses)",
                req.pairs.len(),
                p.len(),
                h.len()
            ),
        }),
        (Some(p), None) => Err(ModelError::MismatchedLengths {
            first: "premises".into(),
            first_len: p.len(),
            second: "hypotheses".into(),
            second_len: 0,
        }),
        (None, Some(h)) => Err(ModelError::MismatchedLengths {
            first: "premises".into(),
            first_len: 0,
            second: "hypotheses".into(),
            second_len: h.len(),
        }),
    }
}

/// Answers `/v1/nli`.
pub fn nli(registry: &Registry, req: &NliRequest, limits: &ModelLimits) -> Result<NliResponse, ModelError> {
    let pairs = nli_pairs(req)?;
    if pairs.is_empty() {
        return Err(ModelError::EmptyInput { field: "pairs".into() });
    }
    if pairs.len() > limits.max_pairs {
        return Err(ModelError::TooMany { field: "pairs".into(), count: pairs.len(), limit: limits.max_pairs });
    }
    check_each("premise", pairs.iter().map(|p| p.0), limits.max_text_bytes)?;
    check_each("hypothesis", pairs.iter().map(|p| p.1), limits.max_text_bytes)?;
    let model = registry.nli(req.model.as_deref())?;
    let out = model.predict(&pairs, overflow(req.truncate))?;
    Ok(NliResponse {
        model: model.name().to_string(),
        domain: model.domain().to_string(),
        results: out.scores.into_iter().map(|scores| NliResult { label: scores.label(), scores }).collect(),
        truncated: out.truncated,
    })
}

/// Answers `/v1/verify`. `corpus` is the named corpus the request asks for, resolved by the
/// caller (`None` when the request gives its evidence).
pub fn verify(
    registry: &Registry,
    req: &VerifyRequest,
    limits: &ModelLimits,
    corpus: Option<&Corpus>,
) -> Result<VerifyResponse, ModelError> {
    verify_using(registry, req, limits, corpus, |embedder, nli, claims, evidence, top_k| {
        crate::verify::verify(embedder, nli, claims, evidence, top_k, VerifyOptions::default())
    })
}

/// [`verify`] with the pipeline run by `run` (model embedding, retrieval, NLI): the checks,
/// model resolution and answer are the same.
pub fn verify_using(
    registry: &Registry,
    req: &VerifyRequest,
    limits: &ModelLimits,
    corpus: Option<&Corpus>,
    mut run: impl FnMut(
        &Arc<EmbeddingModel>,
        &Arc<NliModel>,
        &[String],
        Evidence<'_>,
        usize,
    ) -> Result<VerifyOutput, ModelError>,
) -> Result<VerifyResponse, ModelError> {
    check_texts("claims", &req.claims, limits.max_claims, limits.max_text_bytes)?;
    let evidence = match (corpus, &req.corpus) {
        (Some(c), _) if req.evidence.is_empty() => Evidence::Corpus(c),
        (_, Some(name)) if req.evidence.is_empty() => {
            return Err(ModelError::InvalidRequest { message: format!("unknown corpus '{name}'") });
        }
        (_, Some(_)) => {
            return Err(ModelError::InvalidRequest { message: "give either evidence or corpus, not both".into() });
        }
        _ => {
            check_texts("evidence", &req.evidence, limits.max_evidence, limits.max_text_bytes)?;
            Evidence::Texts(&req.evidence)
        }
    };
    let top_k = req.top_k.unwrap_or(limits.default_top_k);
    if top_k == 0 || top_k > limits.max_top_k {
        return Err(ModelError::InvalidRequest {
            message: format!("top_k must be between 1 and {}", limits.max_top_k),
        });
    }
    let embedder = registry.embedding(req.embedding_model.as_deref())?;
    let nli = registry.nli(req.nli_model.as_deref())?;
    let out = run(&embedder, &nli, &req.claims, evidence, top_k)?;
    Ok(VerifyResponse {
        results: out.results,
        timings_ms: out.timings,
        embedding_model: embedder.name().to_string(),
        nli_model: nli.name().to_string(),
        nli_domain: nli.domain().to_string(),
    })
}

/// Answers `/v1/forecast`.
pub fn forecast(
    registry: &Registry,
    req: &ForecastRequest,
    limits: &ModelLimits,
) -> Result<ForecastResponse, ModelError> {
    let model = registry.forecast(req.model.as_deref())?;
    let f = model.forecast(&req.timestamps, &req.values, req.horizon, limits.max_series_points)?;
    let as_text = matches!(req.timestamps.last(), Some(Timestamp::Text(_)));
    let timestamps = f
        .timestamps
        .iter()
        .map(|&t| if as_text { Timestamp::Text(format_rfc3339(t)) } else { Timestamp::Seconds(t) })
        .collect();
    Ok(ForecastResponse {
        timestamps,
        forecast: f.values,
        timings_ms: f.timings,
        model: model.name().to_string(),
        step_seconds: f.step,
    })
}

//! The request and response shapes of the Monte Carlo routes, and the functions that answer them.
//!
//! Each request type has a `canonical` method (model sorted, defaults filled) so that equal
//! questions serialise to equal bytes; a request without a `seed` is answered with the seed
//! derived from its canonical form ([`CounterfactualRequest::derived_seed`]), so the same
//! question always gets the same answer.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::backend::Backend;
use crate::error::McError;
use crate::estimator::{Estimator, SampleEstimator};
use crate::model::{CheckedModel, ModelSpec, NodeId, SlotRole};
use crate::program::{Program, Query};

/// Limits and defaults for answering Monte Carlo requests.
#[derive(Clone, Debug, PartialEq)]
pub struct McOptions {
    /// The most nodes in a model.
    pub max_nodes: usize,
    /// The most samples one request may draw (for sensitivity: model evaluations in all).
    pub max_samples: u64,
    /// The longest expression, in bytes.
    pub max_expr_len: usize,
    /// The deepest expression nesting (parentheses, unary minus, powers, calls).
    pub max_expr_depth: usize,
    /// The most quantiles in one request.
    pub max_quantiles: usize,
    /// `samples` when a request gives neither `samples` nor `target_error`.
    pub default_samples: u64,
    /// `quantiles` when a request gives none.
    pub default_quantiles: Vec<f64>,
    /// Samples of the first round of adaptive (`target_error`) estimation; each later round
    /// doubles the total.
    pub adaptive_initial_samples: u64,
    /// Samples per scheduling block of the backend (parallel unit and stop-check granularity;
    /// answers do not depend on it).
    pub block_size: usize,
    /// With a `threshold`, fewer plain hits than this switch the tail probability to importance
    /// sampling (0 disables importance sampling).
    pub min_tail_hits: u64,
    /// Samples per cross-entropy pilot round of importance sampling.
    pub importance_pilot_samples: u64,
    /// The most cross-entropy pilot rounds.
    pub importance_max_rounds: u32,
    /// Fraction of a pilot round kept as elite samples.
    pub importance_elite_fraction: f64,
    /// `samples` of a sensitivity request that gives none (per run; a sensitivity analysis makes
    /// `3·inputs + 3` runs).
    pub default_sensitivity_samples: u64,
}

impl Default for McOptions {
    fn default() -> Self {
        McOptions {
            max_nodes: 1000,
            max_samples: 10_000_000,
            max_expr_len: 4096,
            max_expr_depth: 64,
            max_quantiles: 100,
            default_samples: 10_000,
            default_quantiles: vec![0.05, 0.25, 0.5, 0.75, 0.95],
            adaptive_initial_samples: 4096,
            block_size: 4096,
            min_tail_hits: 100,
            importance_pilot_samples: 10_000,
            importance_max_rounds: 10,
            importance_elite_fraction: 0.1,
            default_sensitivity_samples: 4096,
        }
    }
}

/// `/v1/counterfactual` request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CounterfactualRequest {
    /// The model.
    pub model: ModelSpec,
    /// `do(node = value)` assignments of the predicted world (empty: no intervention).
    #[serde(default)]
    pub intervention: BTreeMap<String, f64>,
    /// The node whose distribution is wanted.
    pub outcome: String,
    /// Observed values of the factual world; each evidenced node needs additive noise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<BTreeMap<String, f64>>,
    /// Number of samples (default [`McOptions::default_samples`]); exclusive with `target_error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub samples: Option<u64>,
    /// Draw rounds (doubling) until the standard error of the mean is at most this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_error: Option<f64>,
    /// Cap on samples (default and ceiling [`McOptions::max_samples`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_samples: Option<u64>,
    /// The seed of the random stream (default: derived from the canonical request).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Probabilities in (0, 1) of the wanted quantiles (default [`McOptions::default_quantiles`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantiles: Option<Vec<f64>>,
    /// Report P(outcome > threshold).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    /// Which backend should run it (default: the server's choice). Not part of the derived seed:
    /// the same question gets the same random stream on every backend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<BackendChoice>,
}

/// Which backend runs a Monte Carlo request: `auto` (the GPU for large runs where one is
/// attached and faster, else the CPU), `cpu` or `gpu` (the CPU where no GPU can answer, with a
/// warning in the answer).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendChoice {
    /// The server decides by size and hardware.
    #[default]
    Auto,
    /// The CPU.
    Cpu,
    /// The GPU.
    Gpu,
}

impl BackendChoice {
    /// `auto`, `cpu` or `gpu`.
    pub fn as_str(self) -> &'static str {
        match self {
            BackendChoice::Auto => "auto",
            BackendChoice::Cpu => "cpu",
            BackendChoice::Gpu => "gpu",
        }
    }
}

impl CounterfactualRequest {
    /// Canonical form: model sorted, quantiles sorted without duplicates and defaulted, `samples`
    /// defaulted when there is no `target_error`, `max_samples` defaulted when there is one,
    /// empty evidence removed. The seed is kept as given.
    pub fn canonical(&self, opts: &McOptions) -> CounterfactualRequest {
        let mut quantiles = self.quantiles.clone().unwrap_or_else(|| opts.default_quantiles.clone());
        quantiles.sort_by(f64::total_cmp);
        quantiles.dedup();
        CounterfactualRequest {
            model: self.model.canonical(),
            intervention: self.intervention.clone(),
            outcome: self.outcome.clone(),
            evidence: self.evidence.clone().filter(|e| !e.is_empty()),
            samples: match self.target_error {
                None => Some(self.samples.unwrap_or(opts.default_samples)),
                Some(_) => self.samples,
            },
            target_error: self.target_error,
            max_samples: match self.target_error {
                Some(_) => Some(self.max_samples.unwrap_or(opts.max_samples)),
                None => self.max_samples,
            },
            seed: self.seed,
            quantiles: Some(quantiles),
            threshold: self.threshold,
            backend: self.backend,
        }
    }

    /// The seed used when the request has none: xxh3-64 of the canonical request's JSON
    /// (without a seed or a backend). Identical on every target.
    pub fn derived_seed(&self, opts: &McOptions) -> u64 {
        let mut c = self.canonical(opts);
        c.seed = None;
        c.backend = None;
        xxhash_rust::xxh3::xxh3_64(&serde_json::to_vec(&c).unwrap_or_default())
    }
}

/// `/v1/counterfactual` response.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CounterfactualResponse {
    /// The outcome node.
    pub outcome: String,
    /// Mean of the outcome (weighted by the evidence's likelihood when there is evidence).
    pub mean: f64,
    /// Standard deviation of the outcome.
    pub std: f64,
    /// Monte Carlo standard error of `mean`.
    pub std_error: f64,
    /// Quantiles keyed by their probability written as the shortest decimal (`"0.05"`).
    pub quantiles: BTreeMap<String, f64>,
    /// P(outcome > threshold) when a threshold was given.
    pub probability_above: Option<f64>,
    /// Standard error of `probability_above`.
    pub probability_std_error: Option<f64>,
    /// Samples behind `mean`, `std` and `quantiles` (indices `0..samples_used` of the main
    /// stream, whether drawn at once or in adaptive rounds).
    pub samples_used: u64,
    /// Samples whose outcome was NaN or infinite, left out of every statistic.
    pub non_finite: u64,
    /// The seed used.
    pub seed: u64,
    /// The backend that ran the samples.
    pub backend: String,
    /// How `probability_above` was estimated: `plain` or `importance`.
    pub method: String,
    /// Effective sample size `(Σw)²/Σw²` of a weighted estimate: of the importance run's
    /// samples in the event when `method` is `importance`, else of the main run when evidence
    /// weights it; null for unweighted plain runs.
    pub effective_sample_size: Option<f64>,
    /// Samples drawn for importance sampling (pilot rounds and the final run), when used.
    pub importance_samples: Option<u64>,
    /// With `target_error`: whether the standard error reached it before `max_samples`.
    pub target_met: Option<bool>,
    /// What the answer's reader should know about how it was made (e.g. the GPU was asked for
    /// but could not run this model, so the CPU did). Absent when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// `/v1/sensitivity` request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SensitivityRequest {
    /// The model.
    pub model: ModelSpec,
    /// `do(node = value)` assignments applied in every run.
    #[serde(default)]
    pub intervention: BTreeMap<String, f64>,
    /// The node whose mean and variance are analysed.
    pub outcome: String,
    /// Samples per run (default [`McOptions::default_sensitivity_samples`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub samples: Option<u64>,
    /// The seed (default: derived from the canonical request).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

impl SensitivityRequest {
    /// Canonical form: model sorted, `samples` defaulted; the seed is kept as given.
    pub fn canonical(&self, opts: &McOptions) -> SensitivityRequest {
        SensitivityRequest {
            model: self.model.canonical(),
            intervention: self.intervention.clone(),
            outcome: self.outcome.clone(),
            samples: Some(self.samples.unwrap_or(opts.default_sensitivity_samples)),
            seed: self.seed,
        }
    }

    /// The seed used when the request has none: xxh3-64 of the canonical request's JSON.
    pub fn derived_seed(&self, opts: &McOptions) -> u64 {
        let mut c = self.canonical(opts);
        c.seed = None;
        xxhash_rust::xxh3::xxh3_64(&serde_json::to_vec(&c).unwrap_or_default())
    }
}

/// One uncertain input of a sensitivity analysis.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Driver {
    /// `Demand.intercept`, `Demand<-Price` or `Demand.noise`.
    pub input: String,
    /// The node it belongs to.
    pub node: String,
    /// What it is: `intercept`, `coefficient` or `noise`.
    pub role: SlotRole,
    /// Outcome mean with this input at its 5th percentile (other beliefs at their means, noise
    /// random).
    pub low: f64,
    /// Outcome mean with this input at its 95th percentile.
    pub high: f64,
    /// `|high − low|`: the tornado bar length.
    pub swing: f64,
    /// First-order Sobol index: the share of the outcome's variance explained by this input alone
    /// (estimate clamped to [0, 1]).
    pub variance_share: f64,
    /// Total Sobol index: the share involving this input, interactions included (clamped to [0, 1]).
    pub total_share: f64,
}

/// `/v1/sensitivity` response.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SensitivityResponse {
    /// The outcome node.
    pub outcome: String,
    /// Outcome mean with every belief at its mean (noise random): the tornado's centre.
    pub base: f64,
    /// Outcome mean with everything random.
    pub mean: f64,
    /// Outcome variance with everything random.
    pub variance: f64,
    /// Inputs sorted by `swing`, largest first (ties by name).
    pub drivers: Vec<Driver>,
    /// Samples per run.
    pub samples_used: u64,
    /// Model evaluations in all runs.
    pub evaluations: u64,
    /// Non-finite outcome samples left out, over all runs.
    pub non_finite: u64,
    /// The seed used.
    pub seed: u64,
    /// The backend that ran the samples.
    pub backend: String,
}

/// Names of the request resolved against the checked model.
pub(crate) fn resolve_query(
    model: &CheckedModel,
    outcome: &str,
    intervention: &BTreeMap<String, f64>,
    evidence: Option<&BTreeMap<String, f64>>,
) -> Result<Query, McError> {
    let outcome_name = outcome.to_string();
    let outcome = model.resolve([&outcome_name], "outcome")?[0];
    let pairs = |m: &BTreeMap<String, f64>, field: &str| -> Result<Vec<(NodeId, f64)>, McError> {
        let ids = model.resolve(m.keys(), field)?;
        Ok(ids.into_iter().zip(m.values().copied()).collect())
    };
    Ok(Query {
        outcome,
        intervention: pairs(intervention, "intervention")?,
        evidence: match evidence {
            Some(e) => pairs(e, "evidence")?,
            None => Vec::new(),
        },
    })
}

pub(crate) fn check_values(m: &BTreeMap<String, f64>, field: &str) -> Result<(), McError> {
    match m.iter().find(|(_, v)| !v.is_finite()) {
        Some((k, _)) => {
            Err(McError::InvalidRequest { field: format!("{field}.{k}"), message: "must be a finite number".into() })
        }
        None => Ok(()),
    }
}

/// Answers `/v1/counterfactual`: the distribution of the outcome in the intervened world, given
/// the evidence. `stop` is polled between blocks of samples.
///
/// Plain Monte Carlo over sample indices `0..n` of the main stream; with `target_error`, rounds
/// of doubling size until the standard error of the mean is at most the target (or
/// `max_samples`); the answer equals a fixed run of `samples_used` samples. With a `threshold`
/// whose plain estimate rests on fewer than [`McOptions::min_tail_hits`] hits, the tail
/// probability is re-estimated by importance sampling (cross-entropy mean shifts of the standard
/// normal inputs).
pub fn counterfactual(
    req: &CounterfactualRequest,
    opts: &McOptions,
    backend: &dyn Backend,
    stop: &dyn Fn() -> bool,
) -> Result<CounterfactualResponse, McError> {
    PreparedCounterfactual::new(req, opts)?.run(&SampleEstimator::new(backend), stop)
}

/// [`counterfactual`] with the statistics from any [`Estimator`] (a GPU's device reductions, say):
/// the same checks, limits, seed, adaptive rounds and importance sampling.
pub fn counterfactual_with(
    req: &CounterfactualRequest,
    opts: &McOptions,
    estimator: &dyn Estimator,
    stop: &dyn Fn() -> bool,
) -> Result<CounterfactualResponse, McError> {
    PreparedCounterfactual::new(req, opts)?.run(estimator, stop)
}

/// A checked `/v1/counterfactual` request, compiled: what an estimator needs to decide whether it
/// can answer (the [`Program`]) before it runs anything.
#[derive(Clone, Debug)]
pub struct PreparedCounterfactual {
    plan: crate::estimate::Plan,
    program: Program,
    outcome: String,
    seed: u64,
    opts: McOptions,
}

impl PreparedCounterfactual {
    /// Checks the request against `opts` (limits, fields, the model) and compiles its question.
    /// Every error is the request's fault.
    pub fn new(req: &CounterfactualRequest, opts: &McOptions) -> Result<PreparedCounterfactual, McError> {
        let plan = crate::estimate::Plan::new(req, opts)?;
        let model = CheckedModel::new(&req.model, opts)?;
        let query = resolve_query(&model, &req.outcome, &req.intervention, req.evidence.as_ref())?;
        let program = Program::compile(&model, &query)?;
        let seed = req.seed.unwrap_or_else(|| req.derived_seed(opts));
        Ok(PreparedCounterfactual { plan, program, outcome: req.outcome.clone(), seed, opts: opts.clone() })
    }

    /// The compiled question.
    pub fn program(&self) -> &Program {
        &self.program
    }

    /// The seed the answer uses (the request's, or the derived one).
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The most samples the main run may draw: `samples`, or `max_samples` with `target_error`.
    pub fn max_main_samples(&self) -> u64 {
        self.plan.max_main_samples()
    }

    /// Answers the request with `estimator`'s statistics. `stop` is polled between blocks.
    pub fn run(&self, estimator: &dyn Estimator, stop: &dyn Fn() -> bool) -> Result<CounterfactualResponse, McError> {
        crate::estimate::counterfactual(
            &self.program,
            &self.outcome,
            &self.plan,
            self.seed,
            &self.opts,
            estimator,
            stop,
        )
    }
}

/// Answers `/v1/sensitivity`: tornado swings and Sobol indices of every belief and noise term
/// that reaches the outcome. `stop` is polled between blocks of samples.
pub fn sensitivity(
    req: &SensitivityRequest,
    opts: &McOptions,
    backend: &dyn Backend,
    stop: &dyn Fn() -> bool,
) -> Result<SensitivityResponse, McError> {
    let samples = req.samples.unwrap_or(opts.default_sensitivity_samples);
    if samples < 2 {
        return Err(McError::InvalidRequest { field: "samples".into(), message: "must be at least 2".into() });
    }
    check_values(&req.intervention, "intervention")?;
    let model = CheckedModel::new(&req.model, opts)?;
    let query = resolve_query(&model, &req.outcome, &req.intervention, None)?;
    let program = Program::compile(&model, &query)?;
    let seed = req.seed.unwrap_or_else(|| req.derived_seed(opts));
    crate::sensitivity::analyse(&model, &program, &req.outcome, samples, seed, opts, backend, stop)
}

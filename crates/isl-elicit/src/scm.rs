//! Options from a structural causal model: each candidate intervention is an option, and each
//! attribute is a statistic of one outcome node under it — the Monte Carlo mean, or a quantile
//! (a risk attribute: the 5th percentile of profit, say) — computed by isl-mc's counterfactual
//! engine with one seed for every run (common random numbers: options differ by their
//! interventions, not by their noise).
//!
//! The seed is the request's `seed`, else one derived from the model part of the request alone
//! (model, interventions, samples, attribute nodes and quantiles), so the options keep their
//! values from round to round as answers come in.

use std::collections::BTreeMap;

use isl_mc::{CounterfactualRequest, CpuBackend, McOptions, ModelSpec};
use serde::{Deserialize, Serialize};

use crate::api::{AttributeSpec, ElicitOptions, OptionSpec};
use crate::error::ElicitError;

/// A candidate intervention: one option.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InterventionSpec {
    /// The option's name (unique).
    pub name: String,
    /// `do(node = value)` assignments (empty: the model as it is).
    #[serde(default)]
    pub set: BTreeMap<String, f64>,
}

/// Options from a causal model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScmOptions {
    /// The model (DESIGN.md: nodes with intercepts, parents, expressions, noise).
    pub model: ModelSpec,
    /// The candidate interventions, one option each.
    pub interventions: Vec<InterventionSpec>,
    /// Monte Carlo samples per intervention and outcome node (default
    /// [`ElicitOptions::default_scm_samples`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub samples: Option<u64>,
}

impl ScmOptions {
    /// Canonical form: the model sorted, interventions sorted by name, samples defaulted.
    pub fn canonical(&self, opts: &ElicitOptions) -> ScmOptions {
        let mut interventions = self.interventions.clone();
        interventions.sort_by(|a, b| a.name.cmp(&b.name));
        ScmOptions {
            model: self.model.canonical(),
            interventions,
            samples: Some(self.samples.unwrap_or(opts.default_scm_samples)),
        }
    }
}

/// The seed of the options' Monte Carlo runs when the request gives none: xxh3-64 of the
/// canonical model part and the attributes' nodes and quantiles.
fn derived_seed(scm: &ScmOptions, attributes: &[AttributeSpec], opts: &ElicitOptions) -> u64 {
    let nodes: Vec<(&str, &str, Option<f64>)> =
        attributes.iter().map(|a| (a.name.as_str(), a.node.as_deref().unwrap_or(&a.name), a.quantile)).collect();
    let bytes = serde_json::to_vec(&(scm.canonical(opts), nodes)).unwrap_or_default();
    xxhash_rust::xxh3::xxh3_64(&bytes)
}

/// Computes the options: for each intervention, each attribute's statistic of its node.
pub(crate) fn options(
    scm: &ScmOptions,
    attributes: &[AttributeSpec],
    seed: Option<u64>,
    opts: &ElicitOptions,
    mc: &McOptions,
    stop: &dyn Fn() -> bool,
) -> Result<Vec<OptionSpec>, ElicitError> {
    let scm = scm.canonical(opts);
    let count = scm.interventions.len();
    if count > opts.max_options {
        return Err(ElicitError::OverLimit {
            what: "interventions".into(),
            count: count as u64,
            limit: opts.max_options as u64,
        });
    }
    for (i, iv) in scm.interventions.iter().enumerate() {
        if iv.name.trim().is_empty() {
            return Err(ElicitError::InvalidRequest {
                field: "scm.interventions.name".into(),
                message: "intervention names must be non-empty".into(),
            });
        }
        if i > 0 && scm.interventions[i - 1].name == iv.name {
            return Err(ElicitError::DuplicateName { what: "intervention".into(), name: iv.name.clone() });
        }
    }
    // Statistics wanted per node: the mean and/or quantiles.
    let mut nodes: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for a in attributes {
        let node = a.node.as_deref().unwrap_or(&a.name);
        let qs = nodes.entry(node).or_default();
        if let Some(q) = a.quantile {
            if !(q > 0.0 && q < 1.0) {
                return Err(ElicitError::InvalidRequest {
                    field: format!("attributes.{}.quantile", a.name),
                    message: format!("{q} is not a probability strictly between 0 and 1"),
                });
            }
            qs.push(q);
        }
    }
    let samples = scm.samples.unwrap_or(opts.default_scm_samples);
    let total = samples.saturating_mul(count as u64).saturating_mul(nodes.len() as u64);
    if total > opts.max_scm_samples {
        return Err(ElicitError::OverLimit {
            what: "scm samples (samples × interventions × outcome nodes)".into(),
            count: total,
            limit: opts.max_scm_samples,
        });
    }
    let seed = seed.unwrap_or_else(|| derived_seed(&scm, attributes, opts));
    let backend = CpuBackend::default();
    let mut out = Vec::with_capacity(count);
    for iv in &scm.interventions {
        let mut stats: BTreeMap<&str, isl_mc::CounterfactualResponse> = BTreeMap::new();
        for (&node, qs) in &nodes {
            if stop() {
                return Err(ElicitError::Interrupted);
            }
            let req = CounterfactualRequest {
                model: scm.model.clone(),
                intervention: iv.set.clone(),
                outcome: node.to_string(),
                evidence: None,
                samples: Some(samples),
                target_error: None,
                max_samples: None,
                seed: Some(seed),
                quantiles: Some(qs.clone()),
                threshold: None,
                backend: None,
            };
            stats.insert(node, isl_mc::counterfactual(&req, mc, &backend, stop)?);
        }
        let mut values = BTreeMap::new();
        for a in attributes {
            let s = &stats[a.node.as_deref().unwrap_or(&a.name)];
            let v = match a.quantile {
                None => s.mean,
                Some(q) => s.quantiles.get(&format!("{q}")).copied().unwrap_or(s.mean),
            };
            values.insert(a.name.clone(), v);
        }
        out.push(OptionSpec { name: iv.name.clone(), values });
    }
    Ok(out)
}

//! Helpers shared by the integration tests.
#![allow(dead_code)]

use isl_mc::prelude::*;
use isl_mc::{CounterfactualResponse, Samples};
use serde_json::Value;

/// A model from JSON.
pub fn model(v: Value) -> ModelSpec {
    serde_json::from_value(v).expect("model JSON")
}

/// A counterfactual request from JSON.
pub fn request(v: Value) -> CounterfactualRequest {
    serde_json::from_value(v).expect("request JSON")
}

/// Answers a counterfactual request with default options on the CPU.
pub fn answer(v: Value) -> Result<CounterfactualResponse, McError> {
    counterfactual(&request(v), &McOptions::default(), &CpuBackend::default(), &|| false)
}

/// Raw outcome samples `0..n` of the main stream.
pub fn raw(spec: &ModelSpec, outcome: &str, intervention: &[(&str, f64)], n: usize, seed: u64) -> Samples {
    let opts = McOptions::default();
    let model = CheckedModel::new(spec, &opts).expect("model");
    let query = Query {
        outcome: model.id(outcome).expect("outcome"),
        intervention: intervention.iter().map(|(k, v)| (model.id(k).expect("node"), *v)).collect(),
        evidence: vec![],
    };
    let program = Program::compile(&model, &query).expect("compile");
    let run = RunSpec { seed, stream: 0, start: 0, count: n, slots: &[], block_size: 4096 };
    CpuBackend::default().run(&program, &run, &|| false).expect("run")
}

/// Sample mean, variance (n − 1) and fourth central moment.
pub fn moments(y: &[f64]) -> (f64, f64, f64) {
    let n = y.len() as f64;
    let mean = y.iter().sum::<f64>() / n;
    let m2 = y.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    let m4 = y.iter().map(|v| (v - mean).powi(4)).sum::<f64>() / n;
    (mean, m2, m4)
}

/// Asserts that the sample mean and variance of `y` match `mean` and `var` within 4 standard
/// errors (the variance's standard error from the sample's fourth moment).
pub fn assert_mean_var(y: &[f64], mean: f64, var: f64, what: &str) {
    let n = y.len() as f64;
    let (m, v, m4) = moments(y);
    let se_mean = (v / n).sqrt();
    let se_var = ((m4 - v * v) / n).sqrt();
    assert!((m - mean).abs() <= 4.0 * se_mean, "{what}: mean {m} vs {mean} (se {se_mean})");
    assert!((v - var).abs() <= 4.0 * se_var, "{what}: variance {v} vs {var} (se {se_var})");
}

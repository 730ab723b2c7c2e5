//! Statistics of whole counterfactual answers: the GPU's (device reductions) against the CPU's
//! (stored samples) for the same request, on several models; chunking; unsupported requests.

mod common;

use isl_gpu::{GpuAnswer, GpuError, GpuOptions, Unsupported};
use isl_mc::{CounterfactualRequest, CounterfactualResponse, CpuBackend, McError, McOptions, counterfactual};
use serde_json::{Value, json};

fn request(v: Value) -> CounterfactualRequest {
    serde_json::from_value(v).expect("request")
}

fn linear() -> Value {
    json!({"nodes": [
        {"name": "Price",   "noise": {"dist": "normal", "mean": 10, "std": 1}},
        {"name": "Demand",  "intercept": {"dist": "normal", "mean": 100, "std": 4},
                            "parents": {"Price": {"dist": "normal", "mean": -2.0, "std": 0.3}},
                            "noise": {"dist": "normal", "mean": 0, "std": 5}},
        {"name": "Cost",    "intercept": {"dist": "triangular", "low": 50, "mode": 60, "high": 90},
                            "parents": {"Demand": {"dist": "uniform", "low": 0.5, "high": 1.5}}},
        {"name": "Profit",  "expr": "Price * Demand - Cost"}
    ]})
}

fn expressions() -> Value {
    json!({"nodes": [
        {"name": "A", "intercept": {"dist": "uniform", "low": 0.5, "high": 2.0}},
        {"name": "B", "intercept": {"dist": "lognormal", "mu": 0.0, "sigma": 0.5},
                      "noise": {"dist": "triangular", "low": -1.0, "mode": 0.0, "high": 2.0}},
        {"name": "C", "expr": "exp(A) + log(B + 2) * pow(A, 1.5) - sqrt(abs(B)) + A ^ 2",
                      "noise": {"dist": "normal", "mean": 0, "std": 0.1}},
        {"name": "D", "expr": "max(C, 3) - min(A * B, 1, 2) + C / (1 + A)"}
    ]})
}

/// The CPU's answer and the GPU's, or `None` without an adapter.
fn both(req: &CounterfactualRequest) -> Option<(CounterfactualResponse, CounterfactualResponse)> {
    let gpu = common::engine()?;
    let opts = McOptions::default();
    let cpu = counterfactual(req, &opts, &CpuBackend::default(), &|| false).expect("cpu");
    let got = match gpu.counterfactual(req, &opts, &|| false).expect("gpu") {
        GpuAnswer::Answered(a) => *a,
        GpuAnswer::Unsupported(u) => panic!("unsupported: {u}"),
    };
    Some((cpu, got))
}

/// Same samples, so the statistics agree to f32 rounding (and the quantile histogram's
/// tolerance, 1e-4 standard deviations).
fn assert_close(cpu: &CounterfactualResponse, gpu: &CounterfactualResponse) {
    eprintln!("cpu: {}", serde_json::to_string(cpu).unwrap_or_default());
    eprintln!("gpu: {}", serde_json::to_string(gpu).unwrap_or_default());
    assert_eq!(gpu.backend, "gpu");
    assert_eq!(gpu.samples_used, cpu.samples_used);
    assert_eq!(gpu.non_finite, cpu.non_finite);
    assert_eq!(gpu.seed, cpu.seed);
    assert_eq!(gpu.method, cpu.method);
    assert_eq!(gpu.target_met, cpu.target_met);
    let s = cpu.std;
    assert!((gpu.mean - cpu.mean).abs() <= 1e-6 * cpu.mean.abs() + 1e-5 * s, "mean {} vs {}", gpu.mean, cpu.mean);
    assert!((gpu.std - s).abs() <= 1e-5 * s, "std {} vs {s}", gpu.std);
    assert!((gpu.std_error - cpu.std_error).abs() <= 1e-5 * cpu.std_error);
    assert_eq!(gpu.quantiles.keys().collect::<Vec<_>>(), cpu.quantiles.keys().collect::<Vec<_>>());
    for (k, c) in &cpu.quantiles {
        let g = gpu.quantiles[k];
        assert!((g - c).abs() <= 2e-4 * s + 2e-6 * c.abs(), "quantile {k}: gpu {g} vs cpu {c}");
    }
    match (cpu.probability_above, gpu.probability_above) {
        (Some(c), Some(g)) => {
            // A sample within f32 rounding of the threshold may fall on either side.
            let tol = if cpu.method == "importance" { 1e-3 * c } else { 20.0 / cpu.samples_used as f64 };
            assert!((g - c).abs() <= tol, "P(> t): gpu {g} vs cpu {c}");
        }
        (None, None) => {}
        other => panic!("probability_above {other:?}"),
    }
}

#[test]
fn linear_model_with_uncertain_coefficients() {
    let req = request(json!({"model": linear(), "outcome": "Profit", "samples": 100_000, "seed": 1,
                             "threshold": 700, "quantiles": [0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99]}));
    let Some((cpu, gpu)) = both(&req) else { return };
    assert_close(&cpu, &gpu);
}

#[test]
fn expression_nodes() {
    for outcome in ["C", "D"] {
        let req = request(json!({"model": expressions(), "outcome": outcome, "samples": 60_000, "seed": 2,
                                 "threshold": 5}));
        let Some((cpu, gpu)) = both(&req) else { return };
        assert_close(&cpu, &gpu);
    }
}

#[test]
fn interventions() {
    let req = request(json!({"model": linear(), "outcome": "Profit", "intervention": {"Price": 12, "Demand": 70},
                             "samples": 50_000, "seed": 3, "threshold": 760}));
    let Some((cpu, gpu)) = both(&req) else { return };
    assert_close(&cpu, &gpu);
}

#[test]
fn adaptive_rounds_stop_where_the_cpu_stops() {
    let req = request(json!({"model": linear(), "outcome": "Demand", "target_error": 0.05, "seed": 4,
                             "max_samples": 200_000}));
    let Some((cpu, gpu)) = both(&req) else { return };
    assert_close(&cpu, &gpu);
    assert_eq!(gpu.target_met, Some(true));
}

#[test]
fn rare_tail_by_importance_sampling() {
    // P(Price > 14) = 1 - Phi(4) ~ 3.2e-5: too few plain hits, so cross-entropy importance sampling.
    let req = request(json!({"model": linear(), "outcome": "Price", "samples": 40_000, "seed": 5, "threshold": 14}));
    let Some((cpu, gpu)) = both(&req) else { return };
    assert_eq!(cpu.method, "importance");
    assert_close(&cpu, &gpu);
}

#[test]
fn samples_not_a_multiple_of_the_workgroup_over_several_dispatches() {
    // The test engine dispatches 65 536 samples at a time: 200 003 is four dispatches, the last
    // one partial, and not a multiple of the 4096 samples of a workgroup.
    let req = request(json!({"model": linear(), "outcome": "Profit", "samples": 200_003, "seed": 6,
                             "threshold": 600}));
    let Some((cpu, gpu)) = both(&req) else { return };
    assert_close(&cpu, &gpu);
    for n in [1u64, 2, 4095, 4097] {
        let req = request(json!({"model": linear(), "outcome": "Profit", "samples": n, "seed": 6}));
        let Some((cpu, gpu)) = both(&req) else { return };
        assert_eq!(gpu.samples_used, n);
        assert!((gpu.mean - cpu.mean).abs() <= 1e-5 * cpu.mean.abs(), "{n}: {} vs {}", gpu.mean, cpu.mean);
        if n > 1 {
            assert!((gpu.std - cpu.std).abs() <= 1e-4 * cpu.std, "{n}: {} vs {}", gpu.std, cpu.std);
        } else {
            assert!(gpu.std.is_nan() && cpu.std.is_nan());
        }
        for (k, c) in &cpu.quantiles {
            assert!((gpu.quantiles[k] - c).abs() <= 1e-5 * c.abs(), "{n} {k}: {} vs {c}", gpu.quantiles[k]);
        }
    }
}

#[test]
fn answers_do_not_depend_on_the_dispatch_size() {
    let req = request(json!({"model": linear(), "outcome": "Profit", "samples": 150_000, "seed": 8,
                             "threshold": 650}));
    common::assert_independent_of_dispatch_size(&req);
}

#[test]
fn exact_quantiles_with_zero_tolerance() {
    let Some(exact) = common::engine_with(GpuOptions { quantile_tolerance: 0.0, ..GpuOptions::default() }) else {
        return;
    };
    let req = request(json!({"model": linear(), "outcome": "Demand", "samples": 30_000, "seed": 9,
                             "quantiles": [0.001, 0.3, 0.5, 0.999]}));
    let opts = McOptions::default();
    let cpu = counterfactual(&req, &opts, &CpuBackend::default(), &|| false).expect("cpu");
    let GpuAnswer::Answered(gpu) = exact.counterfactual(&req, &opts, &|| false).expect("gpu") else {
        panic!("unsupported")
    };
    // Each order statistic is the f32 sample itself: only f32 rounding separates them.
    for (k, c) in &cpu.quantiles {
        assert!((gpu.quantiles[k] - c).abs() <= 2e-6 * c.abs(), "{k}: {} vs {c}", gpu.quantiles[k]);
    }
}

#[test]
fn unsupported_requests_say_why() {
    let Some(gpu) = common::engine() else { return };
    let opts = McOptions::default();
    // Evidence on a noise term whose std f32 flushes to zero: its likelihood needs the CPU.
    let tiny = json!({"nodes": [
        {"name": "X", "noise": {"dist": "normal", "mean": 0, "std": 1}},
        {"name": "Y", "parents": {"X": 1}, "noise": {"dist": "normal", "mean": 0, "std": 1e-300}}
    ]});
    let with_evidence =
        request(json!({"model": tiny, "outcome": "X", "evidence": {"Y": 1}, "samples": 1000, "seed": 1}));
    match gpu.counterfactual(&with_evidence, &opts, &|| false).expect("no error") {
        GpuAnswer::Unsupported(u @ Unsupported::EvidenceRange { .. }) => {
            assert!(u.to_string().contains("std = 1e-300"), "{u}");
        }
        other => panic!("{other:?}"),
    }
    // 600 nodes all live until one expression sums them: more registers than a shader allows.
    let mut nodes: Vec<Value> =
        (0..600).map(|i| json!({"name": format!("N{i}"), "noise": {"dist": "normal", "mean": 0, "std": 1}})).collect();
    let sum: Vec<String> = (0..600).map(|i| format!("N{i}")).collect();
    nodes.push(json!({"name": "Total", "expr": sum.join("+")}));
    let big = request(json!({"model": {"nodes": nodes}, "outcome": "Total", "samples": 1000, "seed": 1}));
    match gpu.counterfactual(&big, &opts, &|| false).expect("no error") {
        GpuAnswer::Unsupported(Unsupported::TooManyRegisters { registers, limit }) => assert!(registers > limit),
        other => panic!("{other:?}"),
    }
}

#[test]
fn request_errors_and_deadlines_are_the_cpus() {
    let Some(gpu) = common::engine() else { return };
    let opts = McOptions::default();
    let bad = request(json!({"model": linear(), "outcome": "Nope", "samples": 1000}));
    let cpu = counterfactual(&bad, &opts, &CpuBackend::default(), &|| false).expect_err("cpu rejects");
    assert_eq!(gpu.counterfactual(&bad, &opts, &|| false), Err(GpuError::Request(cpu)));
    let slow = request(json!({"model": linear(), "outcome": "Profit", "samples": 1_000_000, "seed": 1}));
    assert_eq!(gpu.counterfactual(&slow, &opts, &|| true), Err(GpuError::Request(McError::Interrupted)));
}

//! Evidence (likelihood weighting) on the GPU: per-sample log-weights read back against the CPU's
//! for every noise distribution, and whole weighted answers — self-normalised mean, std, standard
//! error, effective sample size, weighted threshold probability, weighted quantiles, importance
//! sampling with evidence — against the CPU's for the same request and seed.
//!
//! Tolerances (the GPU computes samples and log-weights in f32, the CPU in f64; both see the same
//! random numbers):
//! - per sample: outcome within 2e-5 relative (of the run's typical magnitude), log-weight within
//!   1e-4 absolute per unit of |log-weight| (at least 1e-4) — or, where the log-density is steep
//!   at the recovered noise (whose f32 rounding it amplifies), the weight relative to the run's
//!   largest within 1e-6 — and zero likelihood (−∞) exactly where the CPU has it;
//! - answers: mean within 1e-4 std + 1e-6 |mean| (and so far inside one standard error), std and
//!   standard error within 1e-4 relative, effective sample size within 1e-4 relative, threshold
//!   probability within 1e-4 (its standard error within 1e-3 relative), each quantile within
//!   2e-4 std + 2⁻¹⁴ |value| (two level-B histogram bins) — 2e-6 relative (the same f32 sample)
//!   with `quantile_tolerance` 0; `samples_used`, `non_finite`, `method`, `target_met` equal.
//!
//! Measured on lavapipe: means within ~3e-7 std, std / standard error / ESS / P(> t) within
//! ~1e-7 relative, quantiles within 1.3e-5 std of the CPU's.

mod common;

use isl_gpu::{GpuAnswer, GpuError, GpuOptions};
use isl_mc::backend::{Backend, CpuBackend, RunSpec, SlotSetting};
use isl_mc::program::Program;
use isl_mc::{
    CheckedModel, CounterfactualRequest, CounterfactualResponse, McError, McOptions, ModelSpec, Query, counterfactual,
};
use serde_json::{Value, json};

fn request(v: Value) -> CounterfactualRequest {
    serde_json::from_value(v).expect("request")
}

/// Price → Demand → Revenue with uncertain coefficients; `noise` is Demand's noise.
fn pricing(noise: Value) -> Value {
    json!({"nodes": [
        {"name": "Price",   "noise": {"dist": "normal", "mean": 10, "std": 1}},
        {"name": "Demand",  "intercept": {"dist": "normal", "mean": 100, "std": 4},
                            "parents": {"Price": {"dist": "normal", "mean": -2.0, "std": 0.3}},
                            "noise": noise},
        {"name": "Revenue", "expr": "Price * Demand"}
    ]})
}

fn normal_noise() -> Value {
    json!({"dist": "normal", "mean": 0, "std": 5})
}

/// Every noise distribution isl-mc has a log-density for.
fn noises() -> Vec<(&'static str, Value)> {
    vec![
        ("normal", normal_noise()),
        ("lognormal", json!({"dist": "lognormal", "mu": 1.0, "sigma": 0.6})),
        ("uniform", json!({"dist": "uniform", "low": -6.0, "high": 6.0})),
        ("triangular", json!({"dist": "triangular", "low": -8.0, "mode": 1.0, "high": 9.0})),
    ]
}

/// A compiled program with evidence.
fn program(model: Value, outcome: &str, intervention: &[(&str, f64)], evidence: &[(&str, f64)]) -> Program {
    let spec: ModelSpec = serde_json::from_value(model).expect("model");
    let m = CheckedModel::new(&spec, &McOptions::default()).expect("check");
    let ids = |pairs: &[(&str, f64)]| pairs.iter().map(|(n, v)| (m.id(n).expect("node"), *v)).collect();
    let query =
        Query { outcome: m.id(outcome).expect("outcome"), intervention: ids(intervention), evidence: ids(evidence) };
    Program::compile(&m, &query).expect("compile")
}

/// Per-sample outcomes and log-weights of the GPU against the CPU's.
fn compare_samples(program: &Program, seed: u64, start: u64, count: usize) {
    compare_shifted(program, seed, start, count, &[]);
}

/// [`compare_samples`] with per-slot settings (importance-sampling shifts).
fn compare_shifted(program: &Program, seed: u64, start: u64, count: usize, slots: &[SlotSetting]) {
    let Some(gpu) = common::engine() else { return };
    assert!(program.weighted);
    let spec = RunSpec { seed, stream: 0, start, count, slots, block_size: 4096 };
    let cpu = CpuBackend::default().run(program, &spec, &|| false).expect("cpu");
    let got = gpu.debug_samples(program, &spec).expect("gpu");
    let (cw, gw) = (cpu.log_weight.expect("cpu weights"), got.log_weight.expect("gpu weights"));
    assert_eq!((got.outcome.len(), gw.len()), (count, count));
    let mut mags: Vec<f64> = cpu.outcome.iter().filter(|v| v.is_finite()).map(|v| v.abs()).collect();
    mags.sort_by(f64::total_cmp);
    let typical = mags.get(mags.len() / 2).copied().unwrap_or(1.0).max(1e-30);
    let (mut worst_y, mut worst_w, mut zero, mut steep) = (0.0f64, 0.0f64, 0usize, 0usize);
    let max = cw.iter().copied().filter(|w| !w.is_nan()).fold(f64::NEG_INFINITY, f64::max);
    for j in 0..count {
        let (c, g) = (cpu.outcome[j], got.outcome[j]);
        if !c.is_finite() {
            assert!(!g.is_finite(), "sample {}: cpu {c}, gpu {g}", start + j as u64);
        } else {
            let err = (c - g).abs() / c.abs().max(typical);
            worst_y = worst_y.max(err);
            assert!(err <= 2e-5, "sample {}: cpu {c}, gpu {g} ({err:.2e})", start + j as u64);
        }
        let (c, g) = (cw[j], gw[j]);
        if c == f64::NEG_INFINITY {
            assert_eq!(g, f64::NEG_INFINITY, "log-weight {}: cpu {c}, gpu {g}", start + j as u64);
            zero += 1;
            continue;
        }
        assert!(c.is_finite() && g.is_finite(), "log-weight {}: cpu {c}, gpu {g}", start + j as u64);
        let err = (c - g).abs() / c.abs().max(1.0);
        // The recovered noise is `observed − structural part`, in f32 on the GPU: where the
        // log-density is steep (a lognormal's near 0) its rounding moves the log-weight more, but
        // only for weights far below the largest, which then still agree relative to it.
        let werr = ((g - max).exp() - (c - max).exp()).abs();
        if err > 1e-4 {
            steep += 1;
            assert!(werr <= 1e-6, "log-weight {}: cpu {c}, gpu {g} ({err:.2e}; weight {werr:.2e})", start + j as u64);
        } else {
            worst_w = worst_w.max(err);
        }
    }
    eprintln!(
        "{count} samples: worst outcome error {worst_y:.2e}, worst log-weight error {worst_w:.2e}, {zero} zero, \
         {steep} only within 1e-6 of the largest weight"
    );
}

#[test]
fn log_weights_of_every_noise_distribution_match_the_cpu_per_sample() {
    for (name, noise) in noises() {
        eprintln!("{name}");
        // Evidence on Demand recovers its noise (a register); evidence on Price, a root with no
        // parents, recovers a constant noise (its log-density is computed once, in f64).
        let p = program(pricing(noise.clone()), "Revenue", &[("Price", 12.0)], &[("Demand", 80.0)]);
        compare_samples(&p, 21, 0, 4096);
        let p = program(pricing(noise), "Revenue", &[], &[("Price", 10.5), ("Demand", 81.0)]);
        compare_samples(&p, 22, 1 << 33, 4096);
    }
}

#[test]
fn log_weights_of_evidence_and_importance_shifts_together() {
    // A shifted run of a program with evidence (the final run of importance sampling): each
    // log-weight is the evidence's log-density plus the shifts' likelihood ratios.
    let p = program(pricing(normal_noise()), "Revenue", &[("Price", 12.0)], &[("Demand", 80.0)]);
    let mut slots = vec![SlotSetting::default(); p.slots.len()];
    for (k, s) in slots.iter_mut().enumerate() {
        s.shift = 0.25 * (k as f64 + 1.0);
    }
    compare_shifted(&p, 23, 100, 4096, &slots);
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

fn rel(a: f64, b: f64) -> f64 {
    if a == b { 0.0 } else { (a - b).abs() / b.abs().max(f64::MIN_POSITIVE) }
}

/// The tolerances of the module comment.
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
    eprintln!(
        "mean {:.2e} std, std {:.2e}, se {:.2e}, ess {:.2e} (relative)",
        (gpu.mean - cpu.mean).abs() / s,
        rel(gpu.std, s),
        rel(gpu.std_error, cpu.std_error),
        rel(gpu.effective_sample_size.unwrap_or(f64::NAN), cpu.effective_sample_size.unwrap_or(f64::NAN))
    );
    assert!((gpu.mean - cpu.mean).abs() <= 1e-4 * s + 1e-6 * cpu.mean.abs(), "mean {} vs {}", gpu.mean, cpu.mean);
    assert!((gpu.mean - cpu.mean).abs() <= cpu.std_error || s == 0.0, "mean {} vs {}", gpu.mean, cpu.mean);
    assert!(rel(gpu.std, s) <= 1e-4 || (gpu.std - s).abs() <= 1e-6 * cpu.mean.abs(), "std {} vs {s}", gpu.std);
    assert!(
        rel(gpu.std_error, cpu.std_error) <= 1e-4 || (gpu.std_error - cpu.std_error).abs() <= 1e-6 * cpu.mean.abs(),
        "std_error {} vs {}",
        gpu.std_error,
        cpu.std_error
    );
    match (cpu.effective_sample_size, gpu.effective_sample_size) {
        (Some(c), Some(g)) => {
            let tol = if cpu.method == "importance" { 1e-3 } else { 1e-4 };
            assert!(rel(g, c) <= tol, "ess {g} vs {c}");
        }
        other => panic!("effective_sample_size {other:?}"),
    }
    assert_eq!(gpu.quantiles.keys().collect::<Vec<_>>(), cpu.quantiles.keys().collect::<Vec<_>>());
    for (k, c) in &cpu.quantiles {
        let g = gpu.quantiles[k];
        eprintln!("quantile {k}: {:.2e} std", (g - c).abs() / s);
        assert!((g - c).abs() <= 2e-4 * s + c.abs() / 16384.0, "quantile {k}: gpu {g} vs cpu {c}");
    }
    match (cpu.probability_above, gpu.probability_above, cpu.probability_std_error, gpu.probability_std_error) {
        (Some(c), Some(g), Some(cs), Some(gs)) => {
            eprintln!("P(> t): {:.2e}, se {:.2e} relative", rel(g, c), rel(gs, cs));
            let tol = if cpu.method == "importance" { 1e-3 * c } else { 1e-4 };
            assert!((g - c).abs() <= tol, "P(> t): gpu {g} vs cpu {c}");
            assert!(rel(gs, cs) <= 1e-3, "its standard error: gpu {gs} vs cpu {cs}");
        }
        (None, None, None, None) => {}
        other => panic!("probability_above {other:?}"),
    }
}

#[test]
fn weighted_answers_match_the_cpu_for_every_noise_distribution() {
    for (name, noise) in noises() {
        eprintln!("{name}");
        let req = request(json!({"model": pricing(noise), "outcome": "Revenue", "intervention": {"Price": 12},
                                 "evidence": {"Demand": 80}, "samples": 100_000, "seed": 31, "threshold": 950,
                                 "quantiles": [0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99]}));
        let Some((cpu, gpu)) = both(&req) else { return };
        assert_close(&cpu, &gpu);
    }
}

#[test]
fn evidence_on_a_descendant_updates_the_cause() {
    // X ~ N(0, 1), Y = X + N(0, 1); seen Y = 2: X | Y ~ N(1, 1/2), P(X > 1 | Y = 2) = 1/2.
    let spec = json!({"nodes": [
        {"name": "X", "noise": {"dist": "normal", "mean": 0, "std": 1}},
        {"name": "Y", "parents": {"X": 1}, "noise": {"dist": "normal", "mean": 0, "std": 1}}
    ]});
    let req = request(json!({"model": spec, "evidence": {"Y": 2}, "outcome": "X", "samples": 200_003, "seed": 4,
                             "threshold": 1.0}));
    let Some((cpu, gpu)) = both(&req) else { return };
    assert_close(&cpu, &gpu);
    assert!((gpu.mean - 1.0).abs() <= 4.0 * gpu.std_error, "{}", gpu.mean);
    assert!((gpu.probability_above.unwrap_or(0.0) - 0.5).abs() <= 4.0 * gpu.probability_std_error.unwrap_or(0.0));
}

#[test]
fn equal_weights_give_the_exact_answer_and_the_full_sample_size() {
    // X → Y with Y = 2 + 3X + e. Seen X = 1, Y = 4; had X been 2: Y' = 7 in every sample, and
    // every weight is the same, so the effective sample size is the sample count.
    let spec = json!({"nodes": [
        {"name": "X", "noise": {"dist": "normal", "mean": 0, "std": 1}},
        {"name": "Y", "intercept": 2, "parents": {"X": 3}, "noise": {"dist": "normal", "mean": 0, "std": 1}}
    ]});
    let req = request(json!({"model": spec, "evidence": {"X": 1, "Y": 4}, "intervention": {"X": 2},
                             "outcome": "Y", "samples": 5000, "seed": 1}));
    let Some((cpu, gpu)) = both(&req) else { return };
    assert_eq!((gpu.mean, gpu.std, gpu.effective_sample_size), (7.0, 0.0, Some(5000.0)));
    assert_eq!((cpu.mean, cpu.std, cpu.effective_sample_size), (7.0, 0.0, Some(5000.0)));
    assert_eq!(gpu.quantiles, cpu.quantiles);
}

#[test]
fn samples_without_likelihood_weigh_nothing() {
    // Uniform noise on Demand: samples whose recovered noise falls outside [-6, 6] have zero
    // likelihood (log-weight −∞); most do, and they must weigh nothing anywhere.
    let noise = json!({"dist": "uniform", "low": -6.0, "high": 6.0});
    let req = request(json!({"model": pricing(noise), "outcome": "Price", "evidence": {"Demand": 70},
                             "samples": 120_000, "seed": 5, "threshold": 10.5}));
    let Some((cpu, gpu)) = both(&req) else { return };
    assert_close(&cpu, &gpu);
    assert!(gpu.effective_sample_size.unwrap_or(0.0) < 60_000.0);
    // Nothing explains the evidence at all: the CPU's error, from the GPU too.
    let req = request(json!({"model": pricing(json!({"dist": "uniform", "low": -1.0, "high": 1.0})),
                             "outcome": "Price", "evidence": {"Demand": 500}, "samples": 10_000, "seed": 5}));
    let Some(engine) = common::engine() else { return };
    let opts = McOptions::default();
    let cpu = counterfactual(&req, &opts, &CpuBackend::default(), &|| false).expect_err("zero likelihood");
    assert!(matches!(cpu, McError::Abduction { .. }), "{cpu:?}");
    assert_eq!(engine.counterfactual(&req, &opts, &|| false), Err(GpuError::Request(cpu)));
}

#[test]
fn adaptive_rounds_with_evidence_stop_where_the_cpu_stops() {
    let req = request(json!({"model": pricing(normal_noise()), "outcome": "Revenue", "evidence": {"Demand": 85},
                             "intervention": {"Price": 11}, "target_error": 0.15, "seed": 6,
                             "max_samples": 400_000}));
    let Some((cpu, gpu)) = both(&req) else { return };
    assert_close(&cpu, &gpu);
    assert_eq!(gpu.target_met, Some(true));
    assert!(gpu.samples_used > McOptions::default().adaptive_initial_samples);
}

#[test]
fn rare_tail_with_evidence_by_importance_sampling() {
    // Seen Demand = 80 (so Price ~ 10 + a little); P(Price > 14.5) is far below 1e-4: too few
    // plain hits, so cross-entropy importance sampling on top of the likelihood weights.
    let req = request(json!({"model": pricing(normal_noise()), "outcome": "Price", "evidence": {"Demand": 80},
                             "samples": 40_000, "seed": 7, "threshold": 14.5}));
    let Some((cpu, gpu)) = both(&req) else { return };
    assert_eq!(cpu.method, "importance");
    assert_close(&cpu, &gpu);
}

#[test]
fn weighted_answers_do_not_depend_on_the_dispatch_size() {
    let req = request(json!({"model": pricing(normal_noise()), "outcome": "Revenue", "evidence": {"Demand": 80},
                             "samples": 150_000, "seed": 8, "threshold": 650}));
    common::assert_independent_of_dispatch_size(&req);
}

#[test]
fn weighted_quantiles_are_the_f32_samples_with_zero_tolerance() {
    let Some(exact) = common::engine_with(GpuOptions { quantile_tolerance: 0.0, ..GpuOptions::default() }) else {
        return;
    };
    let req = request(json!({"model": pricing(normal_noise()), "outcome": "Revenue", "evidence": {"Demand": 80},
                             "intervention": {"Price": 12}, "samples": 30_000, "seed": 9,
                             "quantiles": [0.001, 0.3, 0.5, 0.999]}));
    let opts = McOptions::default();
    let cpu = counterfactual(&req, &opts, &CpuBackend::default(), &|| false).expect("cpu");
    let GpuAnswer::Answered(gpu) = exact.counterfactual(&req, &opts, &|| false).expect("gpu") else {
        panic!("unsupported")
    };
    // The same sample is picked (its cumulative weight crosses q·Σw on both), so only the f32
    // rounding of its value separates them.
    for (k, c) in &cpu.quantiles {
        assert!((gpu.quantiles[k] - c).abs() <= 2e-6 * c.abs(), "{k}: {} vs {c}", gpu.quantiles[k]);
    }
}

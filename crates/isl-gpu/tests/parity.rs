//! Per-sample parity: the GPU's outcomes (read back through the debug entry point) equal the
//! CPU's for the same seed and indices, within f32 rounding.

mod common;

use isl_mc::backend::{Backend, CpuBackend, RunSpec, SlotSetting};
use isl_mc::program::Program;
use serde_json::json;

fn pricing() -> serde_json::Value {
    json!({"nodes": [
        {"name": "Price",   "noise": {"dist": "normal", "mean": 10, "std": 1}},
        {"name": "Demand",  "intercept": 100,
                            "parents": {"Price": {"dist": "normal", "mean": -2.0, "std": 0.3}},
                            "noise": {"dist": "normal", "mean": 0, "std": 5}},
        {"name": "Revenue", "expr": "Price * Demand"}
    ]})
}

fn expressions() -> serde_json::Value {
    json!({"nodes": [
        {"name": "A", "intercept": {"dist": "uniform", "low": 0.5, "high": 2.0}},
        {"name": "B", "intercept": {"dist": "lognormal", "mu": 0.0, "sigma": 0.5},
                      "noise": {"dist": "triangular", "low": -1.0, "mode": 0.0, "high": 2.0}},
        {"name": "C", "expr": "exp(A) + log(B + 2) * pow(A, 1.5) - sqrt(abs(B)) + A ^ 2",
                      "noise": {"dist": "normal", "mean": 0, "std": 0.1}},
        {"name": "D", "expr": "max(C, 3) - min(A * B, 1, 2) + C / (1 + A)"},
        {"name": "E", "expr": "pow(B - 1, 3) + (A - 1.2) ^ 2 + log(A) * 3"}
    ]})
}

/// Compares `count` samples from index `start`: relative error at most `rel` of the magnitude
/// (the sample's, or the run's median magnitude when larger), non-finite where the CPU's is.
fn compare(program: &Program, seed: u64, start: u64, count: usize, slots: &[SlotSetting], rel: f64) {
    let Some(gpu) = common::engine() else { return };
    let spec = RunSpec { seed, stream: 0, start, count, slots, block_size: 4096 };
    let cpu = CpuBackend::default().run(program, &spec, &|| false).expect("cpu");
    let got = gpu.debug_samples(program, &spec).expect("gpu");
    assert_eq!(got.outcome.len(), count);
    let mut mags: Vec<f64> = cpu.outcome.iter().filter(|v| v.is_finite()).map(|v| v.abs()).collect();
    mags.sort_by(f64::total_cmp);
    let typical = mags.get(mags.len() / 2).copied().unwrap_or(1.0).max(1e-30);
    let mut worst = 0.0f64;
    for (j, (c, g)) in cpu.outcome.iter().zip(&got.outcome).enumerate() {
        if !c.is_finite() {
            assert!(!g.is_finite(), "sample {}: cpu {c}, gpu {g}", start + j as u64);
            continue;
        }
        let err = (c - g).abs() / c.abs().max(typical);
        worst = worst.max(err);
        assert!(err <= rel, "sample {}: cpu {c}, gpu {g} (relative error {err:.2e})", start + j as u64);
    }
    if let (Some(cw), Some(gw)) = (&cpu.log_weight, &got.log_weight) {
        for (j, (c, g)) in cw.iter().zip(gw).enumerate() {
            assert!((c - g).abs() <= rel * c.abs().max(1.0), "log-weight {}: cpu {c}, gpu {g}", start + j as u64);
        }
    }
    eprintln!("{count} samples from {start}: worst relative error {worst:.2e}");
}

#[test]
fn linear_model_with_uncertain_coefficients() {
    let p = common::program(pricing(), "Revenue", &[]);
    compare(&p, 7, 0, 4096, &[], 1e-5);
}

#[test]
fn point_mass_beliefs() {
    // std 0, low == high, low == mode == high and sigma 0 are the constants (no random slot).
    let m = json!({"nodes": [
        {"name": "Price",   "noise": {"dist": "normal", "mean": 10, "std": 1}},
        {"name": "Demand",  "intercept": {"dist": "uniform", "low": 100, "high": 100},
                            "parents": {"Price": {"dist": "normal", "mean": -2.0, "std": 0}},
                            "noise": {"dist": "triangular", "low": 3, "mode": 3, "high": 3}},
        {"name": "Revenue", "expr": "Price * Demand",
                            "noise": {"dist": "lognormal", "mu": 1, "sigma": 0}}
    ]});
    let p = common::program(m, "Revenue", &[]);
    assert_eq!(p.slots.len(), 1);
    compare(&p, 5, 0, 4096, &[], 1e-5);
}

#[test]
fn intervention() {
    let p = common::program(pricing(), "Revenue", &[("Price", 12.0)]);
    compare(&p, 11, 1000, 4000, &[], 1e-5);
}

#[test]
fn expressions_with_exp_log_pow_min_max() {
    for outcome in ["C", "D", "E"] {
        let p = common::program(expressions(), outcome, &[]);
        compare(&p, 3, 0, 4096, &[], 2e-5);
    }
}

#[test]
fn sample_indices_past_the_low_word() {
    // The counter's low word wraps inside the run: the carry into the high word must match.
    let p = common::program(pricing(), "Demand", &[]);
    compare(&p, 99, u64::from(u32::MAX) - 1000, 3000, &[], 1e-5);
}

#[test]
fn importance_shifts_and_log_weights() {
    let p = common::program(expressions(), "D", &[]);
    let mut slots = vec![SlotSetting::default(); p.slots.len()];
    for (k, s) in slots.iter_mut().enumerate() {
        s.shift = 0.3 * (k as f64 + 1.0);
    }
    compare(&p, 5, 0, 2048, &slots, 5e-5);
}

#[test]
fn the_engine_is_shareable_across_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<isl_gpu::GpuEngine>();
}

//! Rare events: importance sampling of a tail probability of about 1e-4.
//!
//! Y = X1 + X2 + X3 with independent standard normals, threshold t at Y's 1 − 1e-4 quantile, so
//! P(Y > t) = erfc(t/√6)/2 = 1e-4. Plain Monte Carlo's relative error with n samples is
//! √((1 − p)/(n·p)) ≈ 100/√n; the cross-entropy mean shift (≈ t/3 per input) brings the relative
//! variance per sample down from ≈ 1e4 to ≈ 4, so importance sampling reaches with 10⁴ samples
//! (relative error ≈ 2%) what plain sampling needs ≈ 2.5·10⁷ samples for: a ratio ≈ 2500 (the
//! test measures ≈ 1.7% over 12 seeds, i.e. ≈ 3.6·10⁷ plain samples, ratio ≈ 3600; it asserts > 1000).

mod common;

use common::*;
use isl_mc::McOptions;
use isl_mc::dist::{inv_norm_cdf, norm_sf};
use serde_json::json;

fn spec() -> serde_json::Value {
    json!({"nodes": [
        {"name": "X1", "noise": {"dist": "normal", "mean": 0, "std": 1}},
        {"name": "X2", "noise": {"dist": "normal", "mean": 0, "std": 1}},
        {"name": "X3", "noise": {"dist": "normal", "mean": 0, "std": 1}},
        {"name": "Y", "parents": {"X1": 1, "X2": 1, "X3": 1}}
    ]})
}

#[test]
fn importance_sampling_beats_plain_sampling_on_a_1e4_tail() {
    let p = 1e-4;
    let t = 3f64.sqrt() * inv_norm_cdf(1.0 - p);
    let exact = norm_sf(t / 3f64.sqrt());
    assert!((exact - p).abs() < 1e-15, "{exact}");

    // Importance sampling, 10⁴ samples, over several seeds.
    let n = 10_000u64;
    let seeds = 12;
    let mut sq = 0.0;
    for seed in 0..seeds {
        let a = answer(json!({"model": spec(), "outcome": "Y", "samples": n, "seed": seed, "threshold": t}))
            .expect("answer");
        assert_eq!(a.method, "importance");
        let est = a.probability_above.expect("p");
        let se = a.probability_std_error.expect("se");
        assert!((est - exact).abs() <= 4.0 * se, "seed {seed}: {est:e} vs {exact:e} (se {se:e})");
        assert!(se / est < 0.05, "seed {seed}: reported relative error {}", se / est);
        assert!(a.effective_sample_size.expect("ess") > 1000.0);
        assert!(a.importance_samples.expect("samples") >= n);
        sq += ((est - exact) / exact).powi(2);
    }
    let is_rel = (sq / f64::from(seeds)).sqrt();
    // Plain sampling with the same number of samples sees about one hit: useless.
    let plain_rel = |samples: f64| ((1.0 - p) / (samples * p)).sqrt();
    assert!(is_rel < 0.05, "importance sampling relative error {is_rel}");
    // Samples plain sampling would need for the same relative error, and the ratio.
    let plain_needed = (1.0 - p) / (p * is_rel * is_rel);
    let ratio = plain_needed / n as f64;
    assert!(ratio > 1000.0, "ratio {ratio} (importance relative error {is_rel}, plain at n: {})", plain_rel(n as f64));
    eprintln!(
        "tail 1e-4: importance sampling relative error {is_rel:.4} with {n} samples; plain needs {plain_needed:.3e} \
         samples for that: ratio {ratio:.0}"
    );

    // Plain sampling, checked empirically: 2·10⁵ samples (≈ 20 hits) give ≈ 22% relative error,
    // ten times worse than importance sampling with a twentieth of the samples.
    let plain = McOptions { min_tail_hits: 0, ..McOptions::default() };
    let req = request(json!({"model": spec(), "outcome": "Y", "samples": 200000, "seed": 1, "threshold": t}));
    let a = isl_mc::counterfactual(&req, &plain, &isl_mc::CpuBackend::default(), &|| false).expect("plain");
    assert_eq!(a.method, "plain");
    let est = a.probability_above.expect("p");
    assert!((est - exact).abs() <= 4.0 * exact * plain_rel(2e5), "{est:e}");
    assert!(plain_rel(2e5) > 5.0 * is_rel);
}

#[test]
fn common_events_stay_plain() {
    let a = answer(json!({"model": spec(), "outcome": "Y", "samples": 10000, "seed": 1, "threshold": 2.0}))
        .expect("answer");
    assert_eq!((a.method.as_str(), a.importance_samples), ("plain", None));
    let exact = norm_sf(2.0 / 3f64.sqrt());
    let est = a.probability_above.expect("p");
    assert!((est - exact).abs() <= 4.0 * a.probability_std_error.expect("se"));
}

#[test]
fn importance_sampling_shifts_uniform_inputs_through_the_normal_cdf() {
    // Irwin–Hall: P(U1 + U2 + U3 > 3 − d) = d³/6 for d ≤ 1; d = 0.1 gives 1/6000.
    let spec = json!({"nodes": [
        {"name": "U1", "noise": {"dist": "uniform", "low": 0, "high": 1}},
        {"name": "U2", "noise": {"dist": "uniform", "low": 0, "high": 1}},
        {"name": "U3", "noise": {"dist": "triangular", "low": 0, "mode": 1, "high": 1}},
        {"name": "S", "expr": "U1 + U2 + U3"}
    ]});
    // With U3 triangular(0, 1, 1) (density 2u): the event needs u3 > 1 − d; with
    // s = u3 − (1 − d) ∈ (0, d], P(U1 + U2 > 2 − s) = s²/2, so
    // P = ∫₀^d (s²/2)·2(1 − d + s) ds = (1 − d)·d³/3 + d⁴/4 = 3.25e-4 for d = 0.1.
    let d: f64 = 0.1;
    let exact = (1.0 - d) * d.powi(3) / 3.0 + d.powi(4) / 4.0;
    let mut z = Vec::new();
    for seed in 0..8 {
        let a = answer(json!({"model": spec, "outcome": "S", "samples": 20000, "seed": seed, "threshold": 3.0 - d}))
            .expect("answer");
        assert_eq!(a.method, "importance");
        let est = a.probability_above.expect("p");
        let se = a.probability_std_error.expect("se");
        assert!((est - exact).abs() <= 4.0 * se, "{est:e} vs {exact:e} (se {se:e})");
        assert!(se / exact < 0.1, "relative error {}", se / exact);
        z.push((est - exact) / se);
    }
    eprintln!("uniform inputs: z-scores {z:.2?}");
}

//! Closed forms on linear-Gaussian models, under interventions, with uncertain coefficients;
//! quantiles of a known normal; adaptive stopping.

mod common;

use common::*;
use isl_mc::dist::inv_norm_cdf;
use serde_json::json;

/// X ~ N(mx, sx²) (noise); Y = b·X + e, b ~ N(mb, sb²) (belief), e ~ N(0, se²).
const MX: f64 = 2.0;
const SX: f64 = 0.5;
const MB: f64 = 1.5;
const SB: f64 = 0.4;
const SE: f64 = 0.7;

fn xy_model() -> serde_json::Value {
    json!({"nodes": [
        {"name": "Y", "parents": {"X": {"dist": "normal", "mean": MB, "std": SB}},
         "noise": {"dist": "normal", "mean": 0, "std": SE}},
        {"name": "X", "noise": {"dist": "normal", "mean": MX, "std": SX}}
    ]})
}

#[test]
fn uncertain_coefficient_mean_and_variance() {
    // E[Y] = mb·mx; Var Y = (mb² + sb²)(mx² + sx²) − mb²·mx² + se² (b and X independent).
    let mean = MB * MX;
    let var = (MB * MB + SB * SB) * (MX * MX + SX * SX) - MB * MB * MX * MX + SE * SE;
    let y = raw(&model(xy_model()), "Y", &[], 200_000, 11).outcome;
    assert_mean_var(&y, mean, var, "Y");
    // The route's own statistics agree.
    let a = answer(json!({"model": xy_model(), "outcome": "Y", "samples": 200000, "seed": 11})).expect("answer");
    assert!((a.mean - mean).abs() <= 4.0 * a.std_error, "{} vs {mean}", a.mean);
    assert!((a.std * a.std - var).abs() / var < 0.02, "{} vs {var}", a.std * a.std);
    assert_eq!((a.samples_used, a.non_finite, a.method.as_str()), (200_000, 0, "plain"));
}

#[test]
fn intervention_cuts_the_cause() {
    // do(X = x0): Y = b·x0 + e, E = mb·x0, Var = sb²·x0² + se².
    let x0 = 3.0;
    let y = raw(&model(xy_model()), "Y", &[("X", x0)], 200_000, 12).outcome;
    assert_mean_var(&y, MB * x0, SB * SB * x0 * x0 + SE * SE, "Y | do(X)");
    // Intervening on the outcome itself gives a point mass.
    let a =
        answer(json!({"model": xy_model(), "intervention": {"Y": 4.25}, "outcome": "Y", "samples": 100, "seed": 1}))
            .expect("answer");
    assert_eq!((a.mean, a.std, a.quantiles["0.5"]), (4.25, 0.0, 4.25));
}

#[test]
fn chain_with_uncertain_intercept_and_fixed_coefficients() {
    // W ~ N(1, 1); V = a + 3W + N(0, 0.5²), a ~ U(1, 3); U = −1 + 0.5·V + N(0, 1).
    let spec = json!({"nodes": [
        {"name": "U", "intercept": -1, "parents": {"V": 0.5}, "noise": {"dist": "normal", "mean": 0, "std": 1}},
        {"name": "V", "intercept": {"dist": "uniform", "low": 1, "high": 3}, "parents": {"W": 3},
         "noise": {"dist": "normal", "mean": 0, "std": 0.5}},
        {"name": "W", "noise": {"dist": "normal", "mean": 1, "std": 1}}
    ]});
    let mean = -1.0 + 0.5 * (2.0 + 3.0);
    let var = 0.25 * (1.0 / 3.0 + 9.0 + 0.25) + 1.0;
    assert_mean_var(&raw(&model(spec.clone()), "U", &[], 200_000, 13).outcome, mean, var, "U");
    // do(W = 0) removes W's variance.
    let var_do = 0.25 * (1.0 / 3.0 + 0.25) + 1.0;
    assert_mean_var(&raw(&model(spec), "U", &[("W", 0.0)], 200_000, 14).outcome, -1.0 + 0.5 * 2.0, var_do, "U | do(W)");
}

#[test]
fn expression_node_under_intervention() {
    // Revenue = Price · Demand, Demand = 100 + b·Price + e: under do(Price = 12),
    // E = 12·(100 − 2·12), Var = 144·(144·0.3² + 5²).
    let spec = json!({"nodes": [
        {"name": "Price", "noise": {"dist": "normal", "mean": 10, "std": 1}},
        {"name": "Demand", "intercept": 100, "parents": {"Price": {"dist": "normal", "mean": -2.0, "std": 0.3}},
         "noise": {"dist": "normal", "mean": 0, "std": 5}},
        {"name": "Revenue", "expr": "Price * Demand"}
    ]});
    let y = raw(&model(spec), "Revenue", &[("Price", 12.0)], 200_000, 15).outcome;
    assert_mean_var(&y, 912.0, 144.0 * (144.0 * 0.09 + 25.0), "Revenue");
}

#[test]
fn quantiles_of_a_known_normal() {
    let (mu, sigma) = (-4.0, 3.0);
    let spec = json!({"nodes": [{"name": "Z", "noise": {"dist": "normal", "mean": mu, "std": sigma}}]});
    let n = 100_000.0;
    let qs = [0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99];
    let a =
        answer(json!({"model": spec, "outcome": "Z", "samples": 100000, "seed": 21, "quantiles": qs})).expect("answer");
    assert_eq!(a.quantiles.len(), qs.len());
    for q in qs {
        let z = inv_norm_cdf(q);
        let want = mu + sigma * z;
        let density = (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt() / sigma;
        let se = (q * (1.0 - q) / n).sqrt() / density;
        let got = a.quantiles[&format!("{q}")];
        assert!((got - want).abs() <= 4.0 * se, "q {q}: {got} vs {want} (se {se})");
    }
    // Keys are the shortest decimal forms, sorted as numbers.
    let keys: Vec<&str> = a.quantiles.keys().map(String::as_str).collect();
    assert_eq!(keys, ["0.01", "0.05", "0.25", "0.5", "0.75", "0.95", "0.99"]);
    // P(Z > μ + σ) = 1 − Φ(1).
    let a = answer(json!({"model": {"nodes": [{"name": "Z", "noise": {"dist": "normal", "mean": mu, "std": sigma}}]},
                          "outcome": "Z", "samples": 100000, "seed": 22, "threshold": mu + sigma}))
    .expect("answer");
    let p = isl_mc::dist::norm_sf(1.0);
    let got = a.probability_above.expect("probability");
    assert!((got - p).abs() <= 4.0 * a.probability_std_error.expect("se"), "{got} vs {p}");
}

#[test]
fn adaptive_stopping_meets_its_target_and_equals_a_fixed_run() {
    let target = 0.01;
    let a = answer(json!({"model": xy_model(), "outcome": "Y", "target_error": target, "seed": 31})).expect("answer");
    assert!(a.std_error <= target, "{} > {target}", a.std_error);
    assert_eq!(a.target_met, Some(true));
    // Rounds double from 4096: the smallest such size that meets the target.
    assert!(a.samples_used.is_power_of_two() && a.samples_used >= 4096, "{}", a.samples_used);
    let half =
        answer(json!({"model": xy_model(), "outcome": "Y", "samples": a.samples_used / 2, "seed": 31})).expect("half");
    assert!(half.std_error > target);
    // The adaptive answer is the fixed run of samples_used samples.
    let fixed =
        answer(json!({"model": xy_model(), "outcome": "Y", "samples": a.samples_used, "seed": 31})).expect("fixed");
    assert_eq!((a.mean, a.std, a.std_error, &a.quantiles), (fixed.mean, fixed.std, fixed.std_error, &fixed.quantiles));
    // A cap that is too small ends the rounds there.
    let capped =
        answer(json!({"model": xy_model(), "outcome": "Y", "target_error": 1e-6, "max_samples": 10000, "seed": 31}))
            .expect("capped");
    assert_eq!((capped.samples_used, capped.target_met), (10_000, Some(false)));
}

#[test]
fn the_seed_is_derived_from_the_canonical_request() {
    let a = answer(json!({"model": xy_model(), "outcome": "Y", "samples": 1000})).expect("a");
    // Same question with nodes in another order and defaults spelled out: same seed, same answer.
    let reordered = json!({"nodes": [xy_model()["nodes"][1].clone(), xy_model()["nodes"][0].clone()]});
    let b = answer(json!({"model": reordered, "outcome": "Y", "samples": 1000, "intervention": {},
                          "quantiles": [0.95, 0.75, 0.5, 0.25, 0.05]}))
    .expect("b");
    assert_eq!(serde_json::to_string(&a).expect("json"), serde_json::to_string(&b).expect("json"));
    let c = answer(json!({"model": xy_model(), "outcome": "Y", "samples": 1001})).expect("c");
    assert_ne!(a.seed, c.seed);
}

//! Counterfactuals by abduction (likelihood weighting) → action → prediction, against closed
//! forms.

mod common;

use common::*;
use serde_json::json;

#[test]
fn fixed_coefficient_counterfactual_is_exact() {
    // X → Y with Y = 2 + 3X + e. Seen X = 1, Y = 4; had X been 2: Y' = y + b(x' − x) = 7, in
    // every sample (std 0).
    let spec = json!({"nodes": [
        {"name": "X", "noise": {"dist": "normal", "mean": 0, "std": 1}},
        {"name": "Y", "intercept": 2, "parents": {"X": 3}, "noise": {"dist": "normal", "mean": 0, "std": 1}}
    ]});
    let a = answer(json!({"model": spec, "evidence": {"X": 1, "Y": 4}, "intervention": {"X": 2},
                          "outcome": "Y", "samples": 5000, "seed": 1}))
    .expect("answer");
    assert_eq!((a.mean, a.std), (7.0, 0.0));
    assert!(a.quantiles.values().all(|&q| q == 7.0));
    assert_eq!(a.effective_sample_size, Some(5000.0));
}

#[test]
fn unobserved_parent_cancels_in_the_counterfactual() {
    // Y = 2 + 3X + 1.5Z + e with Z unobserved: the recovered e absorbs 1.5Z, so Y' = 7 again
    // (up to rounding), while the weights vary with Z.
    let spec = json!({"nodes": [
        {"name": "X", "noise": {"dist": "normal", "mean": 0, "std": 1}},
        {"name": "Z", "noise": {"dist": "normal", "mean": 0, "std": 1}},
        {"name": "Y", "intercept": 2, "parents": {"X": 3, "Z": 1.5}, "noise": {"dist": "normal", "mean": 0, "std": 1}}
    ]});
    let a = answer(json!({"model": spec, "evidence": {"X": 1, "Y": 4}, "intervention": {"X": 2},
                          "outcome": "Y", "samples": 5000, "seed": 2}))
    .expect("answer");
    assert!((a.mean - 7.0).abs() < 1e-12 && a.std < 1e-12, "{} {}", a.mean, a.std);
    let ess = a.effective_sample_size.expect("ess");
    assert!(ess < 5000.0 && ess > 1000.0, "{ess}");
}

#[test]
fn uncertain_coefficient_against_the_weighted_closed_form() {
    // X ~ N(1, 1); Y = b·X + e, b ~ N(2, 0.5²), e ~ N(0, 1). Seen X = 1.5, Y = 4; had X been 3.
    // Y' = y + b·(x' − x), with b's posterior given e = y − b·x ~ N(0, 1):
    // precision 1/0.25 + x² = 6.25, mean (2/0.25 + x·y)/6.25 = 2.24, variance 0.16.
    let spec = json!({"nodes": [
        {"name": "X", "noise": {"dist": "normal", "mean": 1, "std": 1}},
        {"name": "Y", "parents": {"X": {"dist": "normal", "mean": 2, "std": 0.5}},
         "noise": {"dist": "normal", "mean": 0, "std": 1}}
    ]});
    let (x, y, x1): (f64, f64, f64) = (1.5, 4.0, 3.0);
    let precision = 1.0 / 0.25 + x * x;
    let (post_mean, post_var) = ((2.0 / 0.25 + x * y) / precision, 1.0 / precision);
    let mean = y + (x1 - x) * post_mean;
    let std = (x1 - x) * post_var.sqrt();
    let a = answer(json!({"model": spec, "evidence": {"X": x, "Y": y}, "intervention": {"X": x1},
                          "outcome": "Y", "samples": 200000, "seed": 3, "quantiles": [0.5]}))
    .expect("answer");
    assert!((a.mean - mean).abs() <= 4.0 * a.std_error, "mean {} vs {mean} (se {})", a.mean, a.std_error);
    assert!((a.std - std).abs() / std < 0.02, "std {} vs {std}", a.std);
    assert!((a.quantiles["0.5"] - mean).abs() < 0.02, "median {}", a.quantiles["0.5"]);
    let ess = a.effective_sample_size.expect("ess");
    assert!(ess > 10_000.0 && ess < 200_000.0, "{ess}");
}

#[test]
fn evidence_on_a_descendant_updates_the_cause() {
    // X ~ N(0, 1), Y = X + N(0, 1); seen Y = 2: X | Y ~ N(1, 1/2). No intervention.
    let spec = json!({"nodes": [
        {"name": "X", "noise": {"dist": "normal", "mean": 0, "std": 1}},
        {"name": "Y", "parents": {"X": 1}, "noise": {"dist": "normal", "mean": 0, "std": 1}}
    ]});
    let a = answer(json!({"model": spec, "evidence": {"Y": 2}, "outcome": "X", "samples": 200000, "seed": 4,
                          "threshold": 1.0}))
    .expect("answer");
    assert!((a.mean - 1.0).abs() <= 4.0 * a.std_error, "{}", a.mean);
    assert!((a.std - 0.5f64.sqrt()).abs() < 0.01, "{}", a.std);
    // P(X > 1 | Y = 2) = 1/2, by likelihood weights.
    let p = a.probability_above.expect("p");
    assert!((p - 0.5).abs() <= 4.0 * a.probability_std_error.expect("se"), "{p}");
}

#[test]
fn evidence_and_intervention_on_the_same_node_with_other_values() {
    // The classic: "had Price been 12, given that it was 10".
    let spec = json!({"nodes": [
        {"name": "Price", "noise": {"dist": "normal", "mean": 10, "std": 1}},
        {"name": "Demand", "intercept": 100, "parents": {"Price": -2}, "noise": {"dist": "normal", "mean": 0, "std": 5}},
        {"name": "Revenue", "expr": "Price * Demand"}
    ]});
    let a = answer(json!({"model": spec, "evidence": {"Price": 10, "Demand": 83}, "intervention": {"Price": 12},
                          "outcome": "Revenue", "samples": 1000, "seed": 5}))
    .expect("answer");
    // Demand's noise is 83 − 80 = 3, so Demand' = 100 − 24 + 3 = 79 and Revenue' = 948.
    assert_eq!((a.mean, a.std), (948.0, 0.0));
}

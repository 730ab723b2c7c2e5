//! Sensitivity: Sobol first-order and total shares against the closed-form variance
//! decomposition of a linear model with independent normal beliefs, and swings sorted.

mod common;

use isl_mc::dist::inv_norm_cdf;
use isl_mc::prelude::*;
use isl_mc::{SensitivityResponse, SlotRole};
use serde_json::json;

/// X ~ N(mx, sx²) (noise); Y = a + b·X + e, a ~ N(ma, sa²), b ~ N(mb, sb²), e ~ N(0, se²).
const MX: f64 = 2.0;
const SX: f64 = 0.5;
const MA: f64 = 1.0;
const SA: f64 = 0.3;
const MB: f64 = 1.5;
const SB: f64 = 0.4;
const SE: f64 = 0.7;

fn analyse(samples: u64, seed: u64) -> SensitivityResponse {
    let req: SensitivityRequest = serde_json::from_value(json!({"model": {"nodes": [
        {"name": "X", "noise": {"dist": "normal", "mean": MX, "std": SX}},
        {"name": "Y", "intercept": {"dist": "normal", "mean": MA, "std": SA},
         "parents": {"X": {"dist": "normal", "mean": MB, "std": SB}},
         "noise": {"dist": "normal", "mean": 0, "std": SE}}
    ]}, "outcome": "Y", "samples": samples, "seed": seed}))
    .expect("request");
    sensitivity(&req, &McOptions::default(), &CpuBackend::default(), &|| false).expect("answer")
}

#[test]
fn sobol_shares_match_the_variance_decomposition() {
    // Var Y = sa² + mb²·sx² + sb²·mx² + sb²·sx² + se²: first-order terms for a, X, b, e; the
    // interaction sb²·sx² belongs to the totals of b and X.
    let interaction = SB * SB * SX * SX;
    let v = SA * SA + MB * MB * SX * SX + SB * SB * MX * MX + interaction + SE * SE;
    let want = [
        ("Y.intercept", SA * SA / v, SA * SA / v),
        ("X.noise", MB * MB * SX * SX / v, (MB * MB * SX * SX + interaction) / v),
        ("Y<-X", SB * SB * MX * MX / v, (SB * SB * MX * MX + interaction) / v),
        ("Y.noise", SE * SE / v, SE * SE / v),
    ];
    let a = analyse(40_000, 7);
    assert_eq!(a.drivers.len(), 4);
    assert!((a.variance - v).abs() / v < 0.03, "variance {} vs {v}", a.variance);
    assert!((a.mean - (MA + MB * MX)).abs() < 0.02, "mean {}", a.mean);
    for (input, first, total) in want {
        let d = a.drivers.iter().find(|d| d.input == input).expect("driver");
        assert!((d.variance_share - first).abs() < 0.03, "{input}: first-order {} vs {first}", d.variance_share);
        assert!((d.total_share - total).abs() < 0.03, "{input}: total {} vs {total}", d.total_share);
    }
    let sum: f64 = a.drivers.iter().map(|d| d.variance_share).sum();
    assert!((sum - (1.0 - interaction / v)).abs() < 0.05, "first-order shares sum to {sum}");
}

#[test]
fn swings_are_sorted_and_match_closed_forms() {
    let a = analyse(8192, 3);
    assert_eq!(a.samples_used, 8192);
    assert_eq!(a.evaluations, 8192 * (3 * 4 + 3));
    let width = inv_norm_cdf(0.95) - inv_norm_cdf(0.05);
    // Mean of Y with one input at a percentile, the other beliefs at their means, noise random:
    // the swing is that input's 5–95% width times its slope at the means.
    let want =
        [("Y<-X", width * SB * MX), ("X.noise", width * SX * MB), ("Y.noise", width * SE), ("Y.intercept", width * SA)];
    let order: Vec<&str> = a.drivers.iter().map(|d| d.input.as_str()).collect();
    assert_eq!(order, want.iter().map(|w| w.0).collect::<Vec<_>>());
    for w in a.drivers.windows(2) {
        assert!(w[0].swing >= w[1].swing);
    }
    for (input, swing) in want {
        let d = a.drivers.iter().find(|d| d.input == input).expect("driver");
        assert!((d.swing - swing).abs() / swing < 0.02, "{input}: swing {} vs {swing}", d.swing);
        assert!(d.high > d.low, "{input}: positive slopes");
    }
    let b = a.drivers.iter().find(|d| d.input == "Y<-X").expect("b");
    assert_eq!((b.node.as_str(), &b.role), ("Y", &SlotRole::Coefficient));
    // With every belief at its mean, E[Y] = ma + mb·mx.
    assert!((a.base - (MA + MB * MX)).abs() < 0.03, "base {}", a.base);
}

#[test]
fn inputs_cut_off_by_the_intervention_are_not_drivers() {
    let req: SensitivityRequest = serde_json::from_value(json!({"model": {"nodes": [
        {"name": "X", "noise": {"dist": "normal", "mean": MX, "std": SX}},
        {"name": "Y", "parents": {"X": {"dist": "normal", "mean": MB, "std": SB}},
         "noise": {"dist": "normal", "mean": 0, "std": SE}}
    ]}, "intervention": {"X": 3}, "outcome": "Y", "samples": 4096, "seed": 1}))
    .expect("request");
    let a = sensitivity(&req, &McOptions::default(), &CpuBackend::default(), &|| false).expect("answer");
    let inputs: Vec<&str> = a.drivers.iter().map(|d| d.input.as_str()).collect();
    assert_eq!(inputs, ["Y<-X", "Y.noise"]);
}

//! Every bad input gets its own error (never a panic), and the stop callback interrupts.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use std::cell::Cell;

use common::*;
use isl_mc::prelude::*;
use isl_mc::{SensitivityRequest, sensitivity};
use proptest::prelude::*;
use serde_json::{Value, json};

fn normal(mean: f64, std: f64) -> Value {
    json!({"dist": "normal", "mean": mean, "std": std})
}

fn ok_model() -> Value {
    json!({"nodes": [
        {"name": "X", "noise": normal(0.0, 1.0)},
        {"name": "Y", "parents": {"X": 2}, "noise": normal(0.0, 1.0)}
    ]})
}

/// The error of a request, with its code and details.
fn err(req: Value) -> McError {
    answer(req).expect_err("an error")
}

fn check(req: Value, code: &str, details: Value) {
    let e = err(req);
    assert_eq!(e.code(), code, "{e}");
    assert_eq!(e.details(), details, "{e}");
    assert!(e.is_bad_input());
}

#[test]
fn model_errors() {
    check(
        json!({"model": {"nodes": [
            {"name": "B", "parents": {"A": 1}}, {"name": "C", "parents": {"B": 1}},
            {"name": "A", "parents": {"C": 1}}, {"name": "D", "parents": {"A": 1}}
        ]}, "outcome": "D"}),
        "cyclic_graph",
        json!({"cycle": ["A", "B", "C", "A"]}),
    );
    check(
        json!({"model": {"nodes": [{"name": "Q", "expr": "Q + 1"}]}, "outcome": "Q"}),
        "cyclic_graph",
        json!({"cycle": ["Q", "Q"]}),
    );
    // The cycle starts at the smallest name on any cycle, even when a smaller node feeds it.
    check(
        json!({"model": {"nodes": [
            {"name": "A"}, {"name": "M", "parents": {"A": 1, "N": 1}}, {"name": "N", "expr": "M * 2"}
        ]}, "outcome": "A"}),
        "cyclic_graph",
        json!({"cycle": ["M", "N", "M"]}),
    );
    check(
        json!({"model": {"nodes": [{"name": "Y", "parents": {"Z": 1, "W": 2}}, {"name": "V", "expr": "Z + U"}]}, "outcome": "Y"}),
        "unknown_node",
        json!({"field": "parents", "nodes": ["U", "W", "Z"]}),
    );
    check(
        json!({"model": ok_model(), "outcome": "Nope"}),
        "unknown_node",
        json!({"field": "outcome", "nodes": ["Nope"]}),
    );
    // Zero spread is a point mass (tests/point_mass.rs); a negative one is refused.
    check(
        json!({"model": {"nodes": [{"name": "X", "noise": normal(0.0, -0.5)}]}, "outcome": "X"}),
        "invalid_parameter",
        json!({"at": "X.noise"}),
    );
    check(
        json!({"model": {"nodes": [{"name": "X", "noise": normal(0.0, -0.0 - 1e-300)}]}, "outcome": "X"}),
        "invalid_parameter",
        json!({"at": "X.noise"}),
    );
    check(
        json!({"model": {"nodes": [{"name": "X", "intercept": {"dist": "lognormal", "mu": 800, "sigma": 0}}]}, "outcome": "X"}),
        "invalid_parameter",
        json!({"at": "X.intercept"}),
    );
    check(
        json!({"model": {"nodes": [{"name": "X", "noise": normal(0.0, 1.0)},
                                   {"name": "Y", "parents": {"X": {"dist": "lognormal", "mu": 0, "sigma": -1}}}]},
               "outcome": "Y"}),
        "invalid_parameter",
        json!({"at": "Y<-X"}),
    );
    check(
        json!({"model": {"nodes": [{"name": "X", "intercept": {"dist": "uniform", "low": 2, "high": 1}}]}, "outcome": "X"}),
        "invalid_parameter",
        json!({"at": "X.intercept"}),
    );
    check(
        json!({"model": {"nodes": [{"name": "X", "noise": {"dist": "uniform", "low": 1, "high": 0.999}}]}, "outcome": "X"}),
        "invalid_parameter",
        json!({"at": "X.noise"}),
    );
    // Equal bounds with the mode elsewhere is no distribution at all.
    check(
        json!({"model": {"nodes": [{"name": "X", "noise": {"dist": "triangular", "low": 1, "mode": 2, "high": 1}}]}, "outcome": "X"}),
        "invalid_parameter",
        json!({"at": "X.noise"}),
    );
    check(
        json!({"model": {"nodes": [{"name": "X", "noise": {"dist": "triangular", "low": 0, "mode": 3, "high": 2}}]}, "outcome": "X"}),
        "invalid_parameter",
        json!({"at": "X.noise"}),
    );
    check(
        json!({"model": {"nodes": [{"name": "X"}, {"name": "X"}]}, "outcome": "X"}),
        "duplicate_node",
        json!({"node": "X"}),
    );
    check(json!({"model": {"nodes": [{"name": " "}]}, "outcome": " "}), "empty_node_name", json!({"name": " "}));
    check(
        json!({"model": {"nodes": [{"name": "X"}, {"name": "Y", "expr": "X", "parents": {"X": 1}}]}, "outcome": "Y"}),
        "invalid_node",
        json!({"node": "Y"}),
    );
    let long = vec!["X"; 3000].join("+");
    check(
        json!({"model": {"nodes": [{"name": "X"}, {"name": "Y", "expr": long}]}, "outcome": "Y"}),
        "expression_too_long",
        json!({"node": "Y", "length": 5999, "limit": 4096}),
    );
    check(
        json!({"model": {"nodes": [{"name": "X"}, {"name": "Y", "expr": format!("{}X{}", "(".repeat(70), ")".repeat(70))}]}, "outcome": "Y"}),
        "expression_too_deep",
        json!({"node": "Y", "position": 64, "limit": 64}),
    );
    let many: Vec<Value> = (0..1001).map(|i| json!({"name": format!("N{i}")})).collect();
    check(json!({"model": {"nodes": many}, "outcome": "N0"}), "too_many_nodes", json!({"count": 1001, "limit": 1000}));
}

#[test]
fn request_errors() {
    check(
        json!({"model": ok_model(), "outcome": "Y", "samples": 10_000_001}),
        "over_limit",
        json!({"what": "samples", "count": 10_000_001, "limit": 10_000_000}),
    );
    check(
        json!({"model": ok_model(), "outcome": "Y", "samples": 5000, "max_samples": 1000}),
        "over_limit",
        json!({"what": "samples (over max_samples)", "count": 5000, "limit": 1000}),
    );
    check(
        json!({"model": ok_model(), "outcome": "Y", "target_error": 0.1, "max_samples": 20_000_000}),
        "over_limit",
        json!({"what": "max_samples", "count": 20_000_000, "limit": 10_000_000}),
    );
    check(json!({"model": ok_model(), "outcome": "Y", "samples": 0}), "invalid_request", json!({"field": "samples"}));
    for t in [0.0, -1.0] {
        check(
            json!({"model": ok_model(), "outcome": "Y", "target_error": t}),
            "invalid_request",
            json!({"field": "target_error"}),
        );
    }
    check(
        json!({"model": ok_model(), "outcome": "Y", "target_error": 0.1, "samples": 10}),
        "invalid_request",
        json!({"field": "samples"}),
    );
    for q in [0.0, 1.0, -0.5, 1.5] {
        check(
            json!({"model": ok_model(), "outcome": "Y", "quantiles": [0.5, q]}),
            "invalid_request",
            json!({"field": "quantiles"}),
        );
    }
    let qs: Vec<f64> = (1..=101).map(|i| f64::from(i) / 102.0).collect();
    check(
        json!({"model": ok_model(), "outcome": "Y", "quantiles": qs}),
        "over_limit",
        json!({"what": "quantiles", "count": 101, "limit": 100}),
    );
    check(
        json!({"model": ok_model(), "outcome": "Y", "intervention": {"Z": 1, "X": 2, "A": 3}}),
        "unknown_node",
        json!({"field": "intervention", "nodes": ["A", "Z"]}),
    );
    check(
        json!({"model": ok_model(), "outcome": "Y", "evidence": {"Q": 1}}),
        "unknown_node",
        json!({"field": "evidence", "nodes": ["Q"]}),
    );
    // Unknown fields are rejected by the JSON decoder.
    assert!(
        serde_json::from_value::<CounterfactualRequest>(json!({"model": ok_model(), "outcome": "Y", "sample": 5}))
            .is_err()
    );
    assert!(
        serde_json::from_value::<ModelSpec>(
            json!({"nodes": [{"name": "X", "noise": {"dist": "normal", "mean": 0, "std": 1, "sd": 2}}]})
        )
        .is_err()
    );
    assert!(
        serde_json::from_value::<ModelSpec>(json!({"nodes": [{"name": "X", "noise": {"dist": "gamma", "k": 1}}]}))
            .is_err()
    );
}

#[test]
fn abduction_errors() {
    // Evidence on a deterministic node.
    let e = err(json!({"model": {"nodes": [
        {"name": "X", "noise": normal(0.0, 1.0)}, {"name": "Y", "parents": {"X": 2}}
    ]}, "outcome": "Y", "evidence": {"Y": 1}}));
    assert_eq!((e.code(), e.details()), ("abduction_not_exact", json!({"node": "Y"})));
    assert!(e.to_string().starts_with("abduction is not exact because 'Y' has no noise term"), "{e}");
    // Evidence that no sample can explain: the noise density is zero wherever it lands.
    let e = err(json!({"model": {"nodes": [
        {"name": "X", "noise": {"dist": "uniform", "low": 0, "high": 1}},
        {"name": "Y", "parents": {"X": 1}, "noise": {"dist": "uniform", "low": 0, "high": 1}}
    ]}, "outcome": "Y", "evidence": {"Y": 5}}));
    assert_eq!(e.code(), "abduction_not_exact");
    assert!(e.to_string().contains("zero likelihood in every sample"), "{e}");
}

#[test]
fn all_samples_non_finite() {
    let spec = json!({"nodes": [
        {"name": "X", "noise": {"dist": "uniform", "low": 1, "high": 2}},
        {"name": "Y", "expr": "log(-X)"}, {"name": "Z", "expr": "X / 0"}, {"name": "W", "expr": "1 / (X - X)"}
    ]});
    for outcome in ["Y", "Z"] {
        check(
            json!({"model": spec, "outcome": outcome, "samples": 100, "seed": 1}),
            "all_non_finite",
            json!({"outcome": outcome, "samples": 100}),
        );
    }
    // Partly non-finite: counted and left out.
    let spec = json!({"nodes": [
        {"name": "X", "noise": normal(0.0, 1.0)}, {"name": "Y", "expr": "sqrt(X)"}
    ]});
    let a = answer(json!({"model": spec, "outcome": "Y", "samples": 10000, "seed": 1})).expect("answer");
    assert!(a.non_finite > 4500 && a.non_finite < 5500, "{}", a.non_finite);
    assert!(a.mean.is_finite() && a.quantiles.values().all(|q| q.is_finite()));
}

#[test]
fn sensitivity_errors() {
    let req = |v: Value| serde_json::from_value::<SensitivityRequest>(v).expect("request");
    let run = |v: Value| sensitivity(&req(v), &McOptions::default(), &CpuBackend::default(), &|| false);
    assert_eq!(run(json!({"model": ok_model(), "outcome": "Q"})).expect_err("unknown").code(), "unknown_node");
    assert_eq!(
        run(json!({"model": ok_model(), "outcome": "Y", "samples": 1})).expect_err("samples").code(),
        "invalid_request"
    );
    let e = run(json!({"model": ok_model(), "outcome": "Y", "samples": 2_000_000})).expect_err("limit");
    assert_eq!(e.code(), "over_limit");
}

#[test]
fn stop_interrupts_promptly() {
    let req = request(json!({"model": ok_model(), "outcome": "Y", "samples": 10_000_000, "seed": 1}));
    let opts = McOptions::default();
    // Already expired.
    let calls = Cell::new(0);
    let stop = || {
        calls.set(calls.get() + 1);
        true
    };
    let e = counterfactual(&req, &opts, &CpuBackend::default(), &stop).expect_err("interrupted");
    assert_eq!((e, calls.get()), (McError::Interrupted, 1));
    assert_eq!(McError::Interrupted.code(), "deadline_exceeded");
    assert!(!McError::Interrupted.is_bad_input());
    // Expiring after a few polls: the run stops at the next block boundary, long before the
    // 10 million samples are drawn.
    let calls = Cell::new(0);
    let stop = || {
        calls.set(calls.get() + 1);
        calls.get() > 3
    };
    let e = counterfactual(&req, &opts, &CpuBackend::default(), &stop).expect_err("interrupted");
    assert_eq!((e, calls.get()), (McError::Interrupted, 4));
    let sreq: SensitivityRequest =
        serde_json::from_value(json!({"model": ok_model(), "outcome": "Y", "seed": 1})).expect("request");
    assert_eq!(sensitivity(&sreq, &opts, &CpuBackend::default(), &|| true), Err(McError::Interrupted));
}

/// Random requests from a small vocabulary of names, shapes and numbers: always an answer or
/// an error, never a panic.
fn fuzz_param() -> impl Strategy<Value = Value> {
    prop_oneof![
        (-3.0f64..3.0).prop_map(|x| json!(x)),
        ((-3.0f64..3.0), (-1.0f64..2.0)).prop_map(|(m, s)| normal(m, s)),
        ((-3.0f64..3.0), (-3.0f64..3.0)).prop_map(|(a, b)| json!({"dist": "uniform", "low": a, "high": b})),
        ((-1.0f64..1.0), (-0.5f64..1.0)).prop_map(|(m, s)| json!({"dist": "lognormal", "mu": m, "sigma": s})),
        ((-3.0f64..3.0), (-3.0f64..3.0), (-3.0f64..3.0))
            .prop_map(|(a, m, b)| json!({"dist": "triangular", "low": a, "mode": m, "high": b})),
    ]
}

fn fuzz_node() -> impl Strategy<Value = Value> {
    let name = prop_oneof![Just("A"), Just("B"), Just("C"), Just("D"), Just("")];
    let expr = prop_oneof![
        Just("A + B"),
        Just("log(A) * C"),
        Just("(B"),
        Just("A / (B - B)"),
        Just("max(A, 2) ^ C"),
        Just("sqrt(-A)"),
        Just("D(1)"),
        Just("pow(A)"),
        Just("exp(B * 100)"),
    ];
    (
        name,
        prop::option::of(fuzz_param()),
        prop::collection::btree_map(prop_oneof![Just("A"), Just("B"), Just("C"), Just("E")], fuzz_param(), 0..3),
        prop::option::of(fuzz_param()),
        prop::option::of(expr),
        any::<bool>(),
    )
        .prop_map(|(name, intercept, parents, noise, expr, linear)| {
            let mut n = json!({"name": name});
            if linear {
                if let Some(i) = intercept {
                    n["intercept"] = i;
                }
                if !parents.is_empty() {
                    n["parents"] = json!(parents);
                }
            } else if let Some(e) = expr {
                n["expr"] = json!(e);
            }
            if let Some(Value::Object(d)) = noise {
                n["noise"] = Value::Object(d);
            }
            n
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn random_requests_never_panic(
        nodes in prop::collection::vec(fuzz_node(), 0..5),
        outcome in prop_oneof![Just("A"), Just("B"), Just("C"), Just("D")],
        intervention in prop::collection::btree_map(prop_oneof![Just("A"), Just("B"), Just("Z")], -2.0f64..2.0, 0..2),
        evidence in prop::option::of(prop::collection::btree_map(prop_oneof![Just("A"), Just("C")], -2.0f64..2.0, 0..2)),
        threshold in prop::option::of(-2.0f64..5.0),
        samples in 1u64..300,
    ) {
        let req = json!({"model": {"nodes": nodes}, "outcome": outcome, "intervention": intervention,
                         "evidence": evidence, "threshold": threshold, "samples": samples, "seed": 1});
        let opts = McOptions { importance_pilot_samples: 200, ..McOptions::default() };
        if let Ok(r) = serde_json::from_value::<CounterfactualRequest>(req) {
            match counterfactual(&r, &opts, &CpuBackend::default(), &|| false) {
                Ok(a) => prop_assert!(a.samples_used == samples),
                Err(e) => prop_assert!(e.is_bad_input() && !e.to_string().is_empty()),
            }
        }
    }
}

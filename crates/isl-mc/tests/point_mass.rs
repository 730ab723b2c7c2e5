//! Degenerate beliefs are point masses: `std: 0`, `sigma: 0`, `low == high` and
//! `low == mode == high` mean the constant, as numpy's samplers take a zero scale. The
//! definition checked here: a model with a point mass answers exactly (same bytes) as the model
//! with that number written in its place — the same seed, statistics, sensitivity drivers — and
//! the canonical request is the same one (so the derived seed and the cache entry are too).

mod common;

use common::*;
use isl_mc::prelude::*;
use isl_mc::{Dist, SensitivityResponse, sensitivity};
use proptest::prelude::*;
use serde_json::{Value, json};

/// The four families' point masses at `c` (the lognormal's at `exp(mu)`, so `mu = ln c` for
/// `c > 0`; it is left out for `c <= 0`).
fn point_masses(c: f64) -> Vec<Value> {
    let mut forms = vec![
        json!({"dist": "normal", "mean": c, "std": 0}),
        json!({"dist": "normal", "mean": c, "std": -0.0}),
        json!({"dist": "uniform", "low": c, "high": c}),
        json!({"dist": "triangular", "low": c, "mode": c, "high": c}),
    ];
    if c > 0.0 {
        // exp(ln c) is c only up to rounding: compare against the number it is.
        forms.push(json!({"dist": "lognormal", "mu": c.ln(), "sigma": 0}));
    }
    forms
}

/// The number a point-mass JSON stands for.
fn value_of(form: &Value) -> f64 {
    let d: Dist = serde_json::from_value(form.clone()).expect("dist");
    d.point_value().expect("a point mass")
}

/// A model where `coef`, `intercept` and Y's noise are what the caller writes.
fn model(coef: Value, intercept: Value, noise_y: Value) -> Value {
    json!({"nodes": [
        {"name": "X", "noise": {"dist": "normal", "mean": 1, "std": 0.5}},
        {"name": "Y", "intercept": intercept, "parents": {"X": coef}, "noise": noise_y},
        {"name": "Z", "expr": "Y * Y + X", "noise": {"dist": "uniform", "low": -1, "high": 1}}
    ]})
}

fn counterfactual_json(req: Value) -> String {
    serde_json::to_string(&answer(req).expect("answer")).expect("json")
}

fn sensitivity_of(req: Value) -> SensitivityResponse {
    let req: SensitivityRequest = serde_json::from_value(req).expect("request");
    sensitivity(&req, &McOptions::default(), &CpuBackend::default(), &|| false).expect("answer")
}

fn noise() -> Value {
    json!({"dist": "normal", "mean": 0, "std": 1})
}

#[test]
fn a_point_mass_coefficient_or_intercept_answers_as_its_number() {
    for c in [2.5, -1.25, 0.0, 1e-300] {
        for form in point_masses(c) {
            let x = value_of(&form);
            for (with_mass, with_number) in [
                (model(form.clone(), json!(3), noise()), model(json!(x), json!(3), noise())),
                (model(json!(2), form.clone(), noise()), model(json!(2), json!(x), noise())),
            ] {
                for extra in [
                    json!({}),
                    json!({"intervention": {"X": 2}}),
                    json!({"evidence": {"Y": 4.5}}),
                    json!({"threshold": 40}),
                    json!({"target_error": 0.05}),
                ] {
                    let mut a = json!({"model": with_mass, "outcome": "Z", "samples": 4000, "seed": 11});
                    let mut b = json!({"model": with_number, "outcome": "Z", "samples": 4000, "seed": 11});
                    for (k, v) in extra.as_object().expect("object") {
                        a[k] = v.clone();
                        b[k] = v.clone();
                    }
                    if extra.get("target_error").is_some() {
                        a.as_object_mut().expect("object").remove("samples");
                        b.as_object_mut().expect("object").remove("samples");
                    }
                    assert_eq!(counterfactual_json(a.clone()), counterfactual_json(b.clone()), "{form} in {extra}");
                    // Without a seed: the same canonical request, so the same derived seed.
                    a.as_object_mut().expect("object").remove("seed");
                    b.as_object_mut().expect("object").remove("seed");
                    let (ra, rb) = (request(a), request(b));
                    let opts = McOptions::default();
                    assert_eq!(ra.canonical(&opts), rb.canonical(&opts), "{form}");
                    assert_eq!(ra.derived_seed(&opts), rb.derived_seed(&opts), "{form}");
                }
            }
        }
    }
}

#[test]
fn a_point_mass_noise_is_a_constant_offset() {
    // Y = 2·X + noise with the noise at c: the bits of Y = c + 2·X (muladd then add with the
    // intercept at 0 rounds exactly as muladd with the intercept at c).
    for c in [3.0, -0.75] {
        for form in point_masses(c) {
            let x = value_of(&form);
            let mass = model(json!(2), json!(0), form.clone());
            let mut number = model(json!(2), json!(x), noise());
            number["nodes"][1].as_object_mut().expect("node").remove("noise");
            for outcome in ["Y", "Z"] {
                let a = json!({"model": mass, "outcome": outcome, "samples": 3000, "seed": 5, "threshold": 1});
                let b = json!({"model": number, "outcome": outcome, "samples": 3000, "seed": 5, "threshold": 1});
                assert_eq!(counterfactual_json(a), counterfactual_json(b), "{form} -> {outcome}");
            }
        }
    }
    // Noise fixed at 0 is no noise: the canonical model drops it.
    let zero = model(json!(2), json!(1), json!({"dist": "uniform", "low": 0, "high": 0}));
    let mut none = model(json!(2), json!(1), noise());
    none["nodes"][1].as_object_mut().expect("node").remove("noise");
    assert_eq!(
        request(json!({"model": zero, "outcome": "Z"})).canonical(&McOptions::default()),
        request(json!({"model": none, "outcome": "Z"})).canonical(&McOptions::default())
    );
}

#[test]
fn evidence_on_a_node_whose_noise_is_a_point_mass_is_refused() {
    let m = model(json!(2), json!(0), json!({"dist": "normal", "mean": 1, "std": 0}));
    let e = answer(json!({"model": m, "outcome": "Z", "evidence": {"Y": 3}})).expect_err("refused");
    assert_eq!(e.code(), "abduction_not_exact", "{e}");
    assert!(e.to_string().contains("point mass"), "{e}");
}

#[test]
fn sensitivity_sees_no_uncertainty_in_a_point_mass() {
    let with_mass = json!({"model": model(json!({"dist": "triangular", "low": 2, "mode": 2, "high": 2}),
                                          json!({"dist": "normal", "mean": 3, "std": 0.4}), noise()),
                           "outcome": "Z", "samples": 2048, "seed": 9});
    let with_number = json!({"model": model(json!(2), json!({"dist": "normal", "mean": 3, "std": 0.4}), noise()),
                             "outcome": "Z", "samples": 2048, "seed": 9});
    let (a, b) = (sensitivity_of(with_mass), sensitivity_of(with_number));
    assert!(a.drivers.iter().all(|d| d.input != "Y<-X"), "{:?}", a.drivers);
    assert_eq!(serde_json::to_string(&a).expect("json"), serde_json::to_string(&b).expect("json"));
    // A model whose beliefs are all point masses has only its noises left to drive it.
    let all_known = json!({"model": model(json!({"dist": "uniform", "low": 2, "high": 2}),
                                          json!({"dist": "lognormal", "mu": 0, "sigma": 0}), noise()),
                           "outcome": "Y", "samples": 512, "seed": 1});
    let mut inputs: Vec<String> = sensitivity_of(all_known).drivers.into_iter().map(|d| d.input).collect();
    inputs.sort();
    assert_eq!(inputs, ["X.noise", "Y.noise"]);
}

#[test]
fn negative_scales_and_inverted_ranges_stay_refused() {
    for bad in [
        json!({"dist": "normal", "mean": 1, "std": -1e-9}),
        json!({"dist": "lognormal", "mu": 0, "sigma": -1}),
        json!({"dist": "uniform", "low": 1, "high": 0}),
        json!({"dist": "triangular", "low": 1, "mode": 1, "high": 0}),
        json!({"dist": "triangular", "low": 1, "mode": 0, "high": 1}),
    ] {
        let e = answer(json!({"model": model(bad.clone(), json!(0), noise()), "outcome": "Y"})).expect_err("refused");
        assert_eq!(e.code(), "invalid_parameter", "{bad}: {e}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Brute-force definition: a point mass at `c` anywhere a belief goes answers as `c`.
    #[test]
    fn point_masses_equal_their_numbers(c in -1e3f64..1e3, family in 0usize..4, seed in 0u64..1000) {
        let forms = point_masses(c);
        let form = forms[family % forms.len()].clone();
        let x = value_of(&form);
        let a = json!({"model": model(form.clone(), form.clone(), form.clone()), "outcome": "Z",
                       "samples": 500, "seed": seed});
        let mut number = model(json!(x), json!(x), noise());
        if x == 0.0 {
            number["nodes"][1].as_object_mut().expect("node").remove("noise");
        } else {
            number["nodes"][1]["noise"] = json!({"dist": "normal", "mean": x, "std": 0});
        }
        let b = json!({"model": number, "outcome": "Z", "samples": 500, "seed": seed});
        prop_assert_eq!(counterfactual_json(a), counterfactual_json(b));
    }
}

#[test]
fn the_compiled_program_is_the_numbers_program() {
    // Every backend (CPU, GPU shader, wasm) runs the compiled program: equal programs are equal
    // answers there too. The point mass draws no random slot.
    let compile = |m: Value| {
        let spec: ModelSpec = serde_json::from_value(m).expect("model");
        let checked = CheckedModel::new(&spec, &McOptions::default()).expect("model");
        let query = Query { outcome: checked.id("Z").expect("Z"), intervention: vec![], evidence: vec![] };
        Program::compile(&checked, &query).expect("program")
    };
    for form in point_masses(1.5) {
        let x = value_of(&form);
        let a = compile(model(form.clone(), form.clone(), noise()));
        let b = compile(model(json!(x), json!(x), noise()));
        assert_eq!(a, b, "{form}");
        assert_eq!(a.slots.len(), 3, "X.noise, Y.noise, Z.noise: {:?}", a.slots);
    }
}

//! The random stream is counter-based: draws depend on (seed, sample, slot, stream) only, so
//! answers are the same bytes for any thread count, block size, chunk size and instruction set.

mod common;

use common::*;
use isl_mc::prelude::*;
use isl_mc::{SensitivityRequest, rng, sensitivity};
use serde_json::json;

/// A model with every distribution kind, an expression node, uncertain coefficients.
fn mixed_model() -> serde_json::Value {
    json!({"nodes": [
        {"name": "Price", "noise": {"dist": "triangular", "low": 8, "mode": 10, "high": 13}},
        {"name": "Demand", "intercept": {"dist": "uniform", "low": 90, "high": 110},
         "parents": {"Price": {"dist": "normal", "mean": -2.0, "std": 0.3}},
         "noise": {"dist": "normal", "mean": 0, "std": 5}},
        {"name": "Cost", "intercept": {"dist": "lognormal", "mu": 5, "sigma": 0.2},
         "parents": {"Demand": 1.5}, "noise": {"dist": "uniform", "low": -10, "high": 10}},
        {"name": "Profit", "expr": "Price * Demand - Cost - max(0, Demand - 80) ^ 1.5 / 10"}
    ]})
}

/// The answer as JSON text under a pool of `threads` threads.
fn run(threads: usize, block: usize, chunk: usize, portable: bool, req: &serde_json::Value) -> String {
    let opts = McOptions { block_size: block, ..McOptions::default() };
    let backend = CpuBackend { chunk, portable };
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("pool");
    pool.install(|| {
        let a = counterfactual(&request(req.clone()), &opts, &backend, &|| false).expect("answer");
        serde_json::to_string(&a).expect("json")
    })
}

#[test]
fn answers_are_identical_for_any_thread_count_block_chunk_and_instruction_set() {
    let cases = [
        json!({"model": mixed_model(), "intervention": {"Price": 12}, "outcome": "Profit",
               "samples": 30000, "seed": 5, "threshold": 700}),
        // Evidence (likelihood weights) and a rare threshold (importance sampling).
        json!({"model": mixed_model(), "intervention": {"Price": 11}, "evidence": {"Demand": 75, "Price": 10},
               "outcome": "Profit", "samples": 20000, "seed": 9, "threshold": 900,
               "quantiles": [0.01, 0.5, 0.99]}),
        json!({"model": mixed_model(), "outcome": "Cost", "target_error": 0.5, "seed": 3}),
    ];
    for req in &cases {
        let reference = run(1, 4096, 256, false, req);
        for (threads, block, chunk, portable) in
            [(2, 4096, 256, false), (2, 1000, 100, false), (2, 333, 7, true), (1, 77, 1000, true)]
        {
            assert_eq!(
                run(threads, block, chunk, portable, req),
                reference,
                "threads {threads} block {block} chunk {chunk} portable {portable}"
            );
        }
    }
}

#[test]
fn sensitivity_is_identical_across_thread_counts() {
    let req: SensitivityRequest =
        serde_json::from_value(json!({"model": mixed_model(), "outcome": "Profit", "samples": 2000, "seed": 1}))
            .expect("req");
    let go = |threads: usize, portable: bool| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("pool");
        pool.install(|| {
            let backend = CpuBackend { portable, ..CpuBackend::default() };
            serde_json::to_string(&sensitivity(&req, &McOptions::default(), &backend, &|| false).expect("answer"))
                .expect("json")
        })
    };
    let reference = go(1, false);
    assert_eq!(go(2, false), reference);
    assert_eq!(go(2, true), reference);
}

/// A uniform(0, 1) noise node's value is the slot's uniform itself, and a standard normal's is
/// Φ⁻¹ of it: the program reproduces the documented (seed, sample, slot, stream) layout.
#[test]
fn samples_follow_the_documented_counter_layout() {
    let spec = model(json!({"nodes": [
        {"name": "A", "noise": {"dist": "normal", "mean": 0, "std": 1}},
        {"name": "B", "noise": {"dist": "uniform", "low": 0, "high": 1}},
        {"name": "C", "noise": {"dist": "uniform", "low": 0, "high": 1}},
        {"name": "D", "noise": {"dist": "uniform", "low": 0, "high": 1}},
        {"name": "E", "noise": {"dist": "uniform", "low": 0, "high": 1}},
        {"name": "F", "noise": {"dist": "uniform", "low": 0, "high": 1}}
    ]}));
    let opts = McOptions::default();
    let model = CheckedModel::new(&spec, &opts).expect("model");
    let seed = 0x0123_4567_89ab_cdef;
    let start = u64::from(u32::MAX) - 50; // crosses the counter's low-word wrap
    for (name, slot) in [("A", 0u32), ("C", 2), ("F", 5)] {
        let program = Program::compile(&model, &Query { outcome: model.id(name).expect("node"), ..Query::default() })
            .expect("compile");
        for stream in [0, 7] {
            let run = RunSpec { seed, stream, start, count: 300, slots: &[], block_size: 64 };
            let out = CpuBackend::default().run(&program, &run, &|| false).expect("run");
            for (j, v) in out.outcome.iter().enumerate() {
                let u = rng::slot_uniform(seed, start + j as u64, slot, stream);
                let want = if name == "A" { isl_mc::dist::inv_norm_cdf(u) } else { u };
                assert_eq!(v.to_bits(), want.to_bits(), "{name} sample {j}");
            }
        }
    }
}

/// The same seed and sample give the same draw whatever else is computed: two questions about
/// one model share their random numbers (common random numbers across interventions).
#[test]
fn interventions_share_random_numbers() {
    let spec = json!({"nodes": [
        {"name": "X", "noise": {"dist": "normal", "mean": 0, "std": 1}},
        {"name": "Y", "parents": {"X": 2.0}, "noise": {"dist": "normal", "mean": 0, "std": 1}}
    ]});
    let s = model(spec);
    let a = raw(&s, "Y", &[("X", 1.0)], 1000, 4);
    let b = raw(&s, "Y", &[("X", 3.0)], 1000, 4);
    for (x, y) in a.outcome.iter().zip(&b.outcome) {
        assert!((y - x - 4.0).abs() < 1e-12);
    }
}

/// Spelled-out defaults (`"intercept": 0`, `"parents": {}`) canonicalise away: the same model
/// gets the same derived seed and the same answer.
#[test]
fn spelled_out_defaults_do_not_change_the_answer() {
    use isl_mc::prelude::*;
    let plain: CounterfactualRequest = serde_json::from_value(serde_json::json!({
        "model": {"nodes": [{"name": "X", "noise": {"dist": "normal", "mean": 0, "std": 1}},
                            {"name": "Y", "parents": {"X": 2}}]},
        "outcome": "Y", "samples": 1000}))
    .unwrap();
    let spelled: CounterfactualRequest = serde_json::from_value(serde_json::json!({
        "model": {"nodes": [{"name": "Y", "intercept": 0, "parents": {"X": 2}},
                            {"name": "X", "intercept": 0.0, "parents": {}, "noise": {"dist": "normal", "mean": 0, "std": 1}}]},
        "outcome": "Y", "samples": 1000}))
    .unwrap();
    let opts = McOptions::default();
    let (a, b) = (plain.canonical(&opts), spelled.canonical(&opts));
    assert_eq!(a, b);
    let answer = |r: &CounterfactualRequest| {
        serde_json::to_string(&counterfactual(r, &opts, &CpuBackend::default(), &|| false).unwrap()).unwrap()
    };
    assert_eq!(answer(&a), answer(&b));
}

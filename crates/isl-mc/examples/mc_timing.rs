//! Times 10^6 samples of a 30-node linear model with uncertain coefficients: a random DAG (each
//! node after the first has 1–3 earlier parents, the previous node among them, so the outcome —
//! the last node — depends on all), every coefficient a normal belief, every node normal noise. Prints samples/s and node-samples/s, on all threads and per core.
//!
//! `cargo run --release -p isl-mc --example mc_timing [-- SAMPLES [MODEL_JSON_OUT|- [CHUNK [portable]]]]`
//!
//! With a second argument the model is written there as JSON, for the numpy peer
//! (`examples/mc_timing_numpy.py`).
//!
//! Figures on the development VM (Intel Xeon at 2.3 GHz with AVX-512, 2 shared vCPUs), one
//! thread, 10^6 samples: about 10 ns per node-sample with AVX-512, 17 ns with AVX2 only, 28 ns
//! with the portable code (the wasm32 path); numpy 2.4.6 on the same core: about 43 ns. The floor
//! is the normals: AS 241's central rational (28 multiplications and additions, never fused, and
//! a division) for every draw, its logarithmic tail for 15% of them, and Philox-10's twenty
//! 32-bit multiplications per four draws.
use std::time::Instant;

use isl_mc::prelude::*;
use serde_json::{Value, json};

/// The benchmark model shared with the other timings (same seed, same model).
fn model(nodes: usize, seed: u64) -> Value {
    isl_mc::generate::benchmark_model(nodes, seed)
}

fn time(program: &Program, samples: usize, seed: u64, backend: CpuBackend) -> (f64, f64) {
    let spec = RunSpec { seed, stream: 0, start: 0, count: samples, slots: &[], block_size: 4096 };
    // Warm-up, then the best of three.
    let _ = backend.run(program, &RunSpec { count: samples / 10, ..spec.clone() }, &|| false);
    let mut best = f64::INFINITY;
    let mut mean = 0.0;
    for _ in 0..3 {
        let t = Instant::now();
        let out = backend.run(program, &spec, &|| false).expect("run");
        best = best.min(t.elapsed().as_secs_f64());
        mean = out.outcome.iter().sum::<f64>() / samples as f64;
    }
    (best, mean)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let samples: usize = args.next().map_or(1_000_000, |s| s.parse().expect("SAMPLES"));
    let nodes = 30;
    let spec_json = model(nodes, 2024);
    if let Some(path) = args.next().filter(|p| p != "-") {
        std::fs::write(&path, serde_json::to_vec_pretty(&spec_json).expect("json")).expect("write model");
    }
    let mut backend = CpuBackend::default();
    if let Some(chunk) = args.next() {
        backend.chunk = chunk.parse().expect("CHUNK");
    }
    backend.portable = args.next().is_some_and(|a| a == "portable");
    let spec: ModelSpec = serde_json::from_value(spec_json).expect("model");
    let opts = McOptions::default();
    let model = CheckedModel::new(&spec, &opts).expect("check");
    let outcome = model.id(&format!("N{:02}", nodes - 1)).expect("outcome");
    let program = Program::compile(&model, &Query { outcome, ..Query::default() }).expect("compile");
    let slots = program.slots.iter().filter(|s| s.used).count();
    println!(
        "model: {nodes} nodes, {} random slots ({} used by the outcome), {} instructions, {} registers",
        model.slots().len(),
        slots,
        program.instructions.len(),
        program.registers
    );
    let threads = rayon::current_num_threads();
    let (all, mean) = time(&program, samples, 1, backend);
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("pool")
        .install(|| time(&program, samples, 1, backend));
    for (label, secs, cores) in [("all threads", all, threads), ("one thread", one.0, 1)] {
        let per_s = samples as f64 / secs;
        println!(
            "{label} ({cores}): {samples} samples in {:.1} ms: {:.2e} samples/s, {:.2e} node-samples/s, \
             {:.2e} node-samples/s per core, {:.2} ns per node-sample per core",
            secs * 1e3,
            per_s,
            per_s * nodes as f64,
            per_s * nodes as f64 / cores as f64,
            1e9 * secs * cores as f64 / (samples as f64 * nodes as f64),
        );
    }
    println!("outcome mean {mean:.4} (same on one thread: {})", mean == one.1);
    // The whole route: draws, mean/std, exact quantiles by selection, threshold.
    let req: CounterfactualRequest = serde_json::from_value(json!({
        "model": spec, "outcome": format!("N{:02}", nodes - 1), "samples": samples, "seed": 1, "threshold": 2.0
    }))
    .expect("request");
    let t = Instant::now();
    let answer = counterfactual(&req, &opts, &backend, &|| false).expect("answer");
    println!(
        "counterfactual route, {samples} samples, all threads: {:.1} ms (mean {:.4}, median {:.4}, P(> 2) {:.4})",
        t.elapsed().as_secs_f64() * 1e3,
        answer.mean,
        answer.quantiles["0.5"],
        answer.probability_above.unwrap_or(f64::NAN)
    );
}

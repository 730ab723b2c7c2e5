//! GPU vs CPU throughput on the 30-node linear model of isl-mc's `mc_timing` example (the same
//! generator and seed: a random DAG, every coefficient a normal belief, every node normal noise,
//! the outcome the last node), for 10^6 .. 10^MAX samples.
//!
//! `cargo run --release -p isl-gpu --example gpu_timing [-- MAX_EXPONENT [CHUNK_SAMPLES [narrow]]]`
//! (default 8; 9 adds 10^9, which takes minutes on a software adapter; `narrow` forms Philox's
//! products from 16-bit halves even where the adapter has 64-bit integers).
//!
//! Per size it prints, for the GPU: one moments pass (draws, mean/variance, threshold count and
//! the level-A histogram, reading back only workgroup records) and the whole counterfactual route
//! (the moments pass, one or two quantile refinement passes, 5 quantiles and a threshold); for
//! the CPU on all threads: the draws alone (in blocks of 2^22, nothing kept) and, up to 10^7, the
//! whole route (which stores every sample and selects exact quantiles). Then the same route with
//! evidence (N10 observed: likelihood weighting), on the GPU (the weighted moments pass, the
//! weighted level-A histogram pass and one or two refinement passes) and, up to 10^7, the CPU.
//!
//! Figures on the development VM (2 shared vCPUs, no GPU), lavapipe (Mesa 22.3.6, LLVM 15, 256-bit
//! AVX2) as the "GPU", 2^20 samples per dispatch, `gpu_timing 8`: a moments pass 2.8e6 samples/s
//! (8.5e7 node-samples/s) at 10^6 and 10^7, the counterfactual route 1.3–1.4e6 samples/s (two
//! passes: moments, one quantile refinement); the CPU path on the same two cores 6.0e6 samples/s
//! for the draws, 5.3e6 for the route at 10^7. At 10^8 another build shared the cores and every
//! figure halved (GPU pass 1.4e6, route 8.9e5, CPU draws 3.5e6 samples/s). lavapipe runs the
//! shader on the same CPU cores, in f32 and 8 lanes, so it is a correctness vehicle, not a speed-up.
use std::time::Instant;

use isl_gpu::{GpuAnswer, GpuEngine, GpuOptions};
use isl_mc::backend::{Backend, CpuBackend, RunSpec};
use isl_mc::estimator::Estimator;
use isl_mc::prelude::*;
use serde_json::{Value, json};

/// The benchmark model shared with the other timings (same seed, same model).
fn model(nodes: usize, seed: u64) -> Value {
    isl_mc::generate::benchmark_model(nodes, seed)
}

fn rate(label: &str, samples: u64, nodes: usize, secs: f64) {
    let per_s = samples as f64 / secs;
    println!(
        "  {label:<34} {:>10.1} ms  {per_s:>9.3e} samples/s  {:>9.3e} node-samples/s",
        secs * 1e3,
        per_s * nodes as f64
    );
}

fn main() {
    let mut args = std::env::args().skip(1);
    let max_exp: u32 = args.next().map_or(8, |s| s.parse().expect("MAX_EXPONENT"));
    let chunk: u64 = args.next().map_or(0, |s| s.parse().expect("CHUNK_SAMPLES"));
    let wide_multiply = args.next().is_none_or(|s| s != "narrow");
    let nodes = 30;
    let spec_json = model(nodes, 2024);
    let spec: ModelSpec = serde_json::from_value(spec_json.clone()).expect("model");
    let opts = McOptions { max_samples: u64::MAX, ..McOptions::default() };
    let checked = CheckedModel::new(&spec, &opts).expect("check");
    let outcome = format!("N{:02}", nodes - 1);
    let program =
        Program::compile(&checked, &Query { outcome: checked.id(&outcome).expect("outcome"), ..Query::default() })
            .expect("compile");
    println!(
        "model: {nodes} nodes, {} used random slots, {} instructions, {} registers",
        program.used_slots().len(),
        program.instructions.len(),
        program.registers
    );
    let gpu = match GpuEngine::with_options(GpuOptions { chunk_samples: chunk, wide_multiply, ..GpuOptions::default() })
    {
        Ok(Some(g)) => g,
        Ok(None) => {
            println!("no Vulkan adapter: nothing to time (scripts/setup-gpu.sh installs lavapipe)");
            return;
        }
        Err(e) => {
            println!("the Vulkan adapter failed to open: {e}");
            return;
        }
    };
    let a = gpu.adapter();
    println!(
        "GPU: {} ({}, {}), {} samples per dispatch, Philox products {}",
        a.name,
        a.device_type,
        a.driver,
        gpu.chunk_samples(),
        if a.wide_multiply { "64-bit" } else { "from 16-bit halves" }
    );
    println!("CPU: {} threads (rayon)", rayon::current_num_threads());
    let cpu = CpuBackend::default();
    let estimator = gpu.estimator();
    // Warm-up: compile the pipeline, run a little on each.
    {
        let mut run = estimator.main_run(&program, 1, 4096, Some(2.0), &|| false).expect("main run");
        run.extend_to(1 << 16).expect("warm-up");
        let _ = cpu.run(
            &program,
            &RunSpec { seed: 1, stream: 0, start: 0, count: 1 << 16, slots: &[], block_size: 4096 },
            &|| false,
        );
    }
    // Warm-up of the run with evidence: its shader has a second entry point (the weighted
    // moments), compiled on first use.
    {
        let wreq: CounterfactualRequest = serde_json::from_value(json!({
            "model": spec_json, "outcome": outcome, "samples": 1 << 16, "seed": 1, "threshold": 2.0,
            "evidence": {"N10": EVIDENCE}
        }))
        .expect("request");
        let t = Instant::now();
        gpu.counterfactual(&wreq, &opts, &|| false).expect("warm-up with evidence");
        println!("first run with evidence (compiles its pipeline): {:.1} ms", t.elapsed().as_secs_f64() * 1e3);
    }
    for e in 6..=max_exp {
        let n = 10u64.pow(e);
        println!("10^{e} samples:");
        // GPU: one moments pass.
        let t = Instant::now();
        let mut run = estimator.main_run(&program, 1, 4096, Some(2.0), &|| false).expect("main run");
        let m = run.extend_to(n).expect("gpu pass");
        rate("gpu moments pass", n, nodes, t.elapsed().as_secs_f64());
        // GPU: the whole route.
        let req: CounterfactualRequest = serde_json::from_value(json!({
            "model": spec_json, "outcome": outcome, "samples": n, "seed": 1, "threshold": 2.0
        }))
        .expect("request");
        let t = Instant::now();
        let answer = match gpu.counterfactual(&req, &opts, &|| false).expect("gpu route") {
            GpuAnswer::Answered(a) => *a,
            GpuAnswer::Unsupported(u) => panic!("unsupported: {u}"),
        };
        rate("gpu counterfactual route", n, nodes, t.elapsed().as_secs_f64());
        // CPU: draws only, in blocks.
        let t = Instant::now();
        let mut done = 0u64;
        let mut sum = 0.0;
        while done < n {
            let count = (n - done).min(1 << 22);
            let spec = RunSpec { seed: 1, stream: 0, start: done, count: count as usize, slots: &[], block_size: 4096 };
            let s = cpu.run(&program, &spec, &|| false).expect("cpu");
            sum += s.outcome.iter().sum::<f64>();
            done += count;
        }
        rate("cpu draws (all threads)", n, nodes, t.elapsed().as_secs_f64());
        if e <= 7 {
            let t = Instant::now();
            let c = counterfactual(&req, &opts, &cpu, &|| false).expect("cpu route");
            rate("cpu counterfactual route", n, nodes, t.elapsed().as_secs_f64());
            println!(
                "  cpu: mean {:.6} std {:.6} median {:.6} P(>2) {:.6}",
                c.mean,
                c.std,
                c.quantiles["0.5"],
                c.probability_above.unwrap_or(f64::NAN)
            );
        }
        println!(
            "  gpu: mean {:.6} std {:.6} median {:.6} P(>2) {:.6}  (cpu draws mean {:.6}, gpu pass mean {:.6})",
            answer.mean,
            answer.std,
            answer.quantiles["0.5"],
            answer.probability_above.unwrap_or(f64::NAN),
            sum / n as f64,
            m.mean
        );
        // Evidence: the same question with N10 observed (likelihood weighting).
        let mut wreq = req.clone();
        wreq.evidence = Some([("N10".to_string(), EVIDENCE)].into_iter().collect());
        let t = Instant::now();
        let w = match gpu.counterfactual(&wreq, &opts, &|| false).expect("gpu weighted route") {
            GpuAnswer::Answered(a) => *a,
            GpuAnswer::Unsupported(u) => panic!("unsupported: {u}"),
        };
        rate("gpu route with evidence", n, nodes, t.elapsed().as_secs_f64());
        if e <= 7 {
            let t = Instant::now();
            let c = counterfactual(&wreq, &opts, &cpu, &|| false).expect("cpu weighted route");
            rate("cpu route with evidence", n, nodes, t.elapsed().as_secs_f64());
            println!(
                "  cpu, evidence: mean {:.6} std {:.6} median {:.6} P(>2) {:.6} ESS {:.1}",
                c.mean,
                c.std,
                c.quantiles["0.5"],
                c.probability_above.unwrap_or(f64::NAN),
                c.effective_sample_size.unwrap_or(f64::NAN)
            );
        }
        println!(
            "  gpu, evidence: mean {:.6} std {:.6} median {:.6} P(>2) {:.6} ESS {:.1}",
            w.mean,
            w.std,
            w.quantiles["0.5"],
            w.probability_above.unwrap_or(f64::NAN),
            w.effective_sample_size.unwrap_or(f64::NAN)
        );
    }
}

/// The observed value of N10 in the runs with evidence.
const EVIDENCE: f64 = 1.0;

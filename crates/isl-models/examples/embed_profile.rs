//! Where tract spends its time on the embedding model: time per operator kind over repeated
//! runs at one shape (default batch 32 × 32 tokens), with a concrete-shape plan.
//!
//! ```text
//! cargo run --release -p isl-models --example embed_profile -- [--batch 32] [--seq 32] [--threads 2]
//! ```

use std::collections::HashMap;
use std::time::Instant;

use isl_models::default_models_dir;
use isl_models::runtime::set_matmul_threads;
use tract_onnx::prelude::*;

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() -> TractResult<()> {
    let (batch, seq, threads, reps) = (arg("--batch", 32), arg("--seq", 32), arg("--threads", 2), arg("--reps", 10));
    set_matmul_threads(threads);
    if let Some(p) = std::env::args().position(|a| a == "--panels").and_then(|i| std::env::args().nth(i + 1)) {
        tract_linalg::multithread::set_threading_panel_threshold(p.parse().unwrap_or(64));
    }
    let path = default_models_dir().join("all-minilm-l6-v2/model.onnx");
    let model =
        tract_onnx::onnx().with_ignore_value_info(true).model_for_path(path)?.into_typed()?.into_decluttered()?;
    let mut subs = HashMap::new();
    subs.insert(model.sym("batch"), TDim::from(batch as i64));
    subs.insert(model.sym("sequence"), TDim::from(seq as i64));
    let plan = model.set_symbols(&subs)?.into_optimized()?.into_runnable()?;
    let ids: Vec<i64> = (0..batch * seq).map(|i| 1000 + (i as i64 * 7919) % 20000).collect();
    let t = |d: &[i64]| -> TValue { Tensor::from_shape(&[batch, seq], d).unwrap().into() };
    let inputs = || tvec![t(&ids), t(&vec![1; batch * seq]), t(&vec![0; batch * seq])];
    plan.run(inputs())?;
    if std::env::args().any(|a| a == "--kernels") {
        for node in plan.model().nodes().iter().filter(|n| n.op().name() == "OptMatMul").take(4) {
            println!("{}: {:?}", node.name, node.op().info());
        }
    }
    let mut per_op: HashMap<String, (f64, usize)> = HashMap::new();
    let mut state = plan.spawn()?;
    let start = Instant::now();
    for _ in 0..reps {
        state.run_plan_with_eval(inputs(), |ctx, st, node, input| {
            let t0 = Instant::now();
            let r = tract_onnx::tract_core::plan::eval(ctx, st, node, input);
            let e = per_op.entry(node.op().name().to_string()).or_default();
            e.0 += t0.elapsed().as_secs_f64();
            e.1 += 1;
            r
        })?;
    }
    let total = start.elapsed().as_secs_f64();
    println!(
        "batch {batch} × seq {seq}, {threads} threads: {:.2} ms per run, {:.0} texts/s",
        total / reps as f64 * 1e3,
        (batch * reps) as f64 / total
    );
    let mut rows: Vec<_> = per_op.into_iter().collect();
    rows.sort_by(|a, b| b.1.0.total_cmp(&a.1.0));
    for (op, (secs, n)) in rows.iter().take(15) {
        println!(
            "{op:>28}: {:>6.2} ms per run ({:>4.1}%), {} calls per run",
            secs / reps as f64 * 1e3,
            secs / total * 100.0,
            n / reps
        );
    }
    Ok(())
}

//! Embedding throughput (texts/s at batch 1, 8, 32) and NLI throughput (pairs/s) with tract,
//! on the 256 texts of `timing_texts.txt`; its peer `embed_timing_ort.py` does the same with
//! onnxruntime (same model file, texts, batches and thread count).
//!
//! ```text
//! scripts/fetch-models.sh
//! cargo run --release -p isl-models --example embed_timing -- [--threads 2] [--reps 3] [--plan adaptive|per-shape|symbolic]
//! .models-venv/bin/python crates/isl-models/examples/embed_timing_ort.py [--threads 2] [--reps 3]
//! ```
//!
//! Both sort the texts by token count and cut them into consecutive batches (padding to the
//! longest of each batch), warm up over all batches, then time `reps` passes.
//!
//! Measured on the 2-core development machine (AVX-512, another build running: load about 2),
//! 256 texts of 25 tokens on average, texts/s with tokenisation excluded:
//!
//! | batch | onnxruntime 1.32, 2 threads | tract, 2 threads, per-shape plans (1.1 GB) | tract, adaptive (0.4 GB) | tract, 2 workers × 1 thread, adaptive |
//! |---|---|---|---|---|
//! | 1  | 261 | 77  | 78  | 170 |
//! | 8  | 332 | 143 | 117 | 182 |
//! | 32 | 325 | 149 | 110 | 135 |
//!
//! NLI (contract-nli-da, 256 pairs per call, tokenisation included): tract 590 pairs/s,
//! onnxruntime 3,670. All models load in 0.5 s (sha256 checks included); resident memory
//! 182 MB after loading, 416 MB with the four adaptive plans.
//!
//! Why tract is behind (`examples/embed_profile.rs`, batch 32 × 32 tokens, 2 threads, 202 ms
//! per call): matrix products 60% (the AVX-512 16×12 kernel, about 110 GFLOP/s over the two
//! cores, where onnxruntime's MLAS reaches about 170 overall), packing of activations 10%,
//! softmax 10%, the rest element-wise ops and axis moves. At batch 1 the products are small
//! (24 × 384 × 384) and tract's second thread does not pay (1 thread: 91 texts/s, 2: 77), so
//! two single-threaded calls side by side (a batcher with two workers) are faster than one
//! call on two threads.

use std::time::Instant;

use isl_models::prelude::*;
use isl_models::registry::resident_bytes;
use isl_models::runtime::set_matmul_threads;
use isl_models::{EmbeddingModel, PlanMode};

fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned().unwrap_or_else(|| default.to_string())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let threads: usize = arg("--threads", "2").parse()?;
    // Independent model calls run at once by this many threads (each tract call then uses
    // `--threads` for its matrix products: `--workers 2 --threads 1` is two single-threaded
    // calls side by side, what a batcher with two workers does).
    let workers: usize = arg("--workers", "1").parse()?;
    let reps: usize = arg("--reps", "3").parse()?;
    let plan = match arg("--plan", "adaptive").as_str() {
        "symbolic" => PlanMode::Symbolic,
        "per-shape" => PlanMode::PerShape(512),
        _ => RegistryConfig::new(".").embedding_plan,
    };
    set_matmul_threads(threads);
    let texts: Vec<String> = include_str!("timing_texts.txt").lines().map(str::to_string).collect();
    let rss0 = resident_bytes().unwrap_or(0);
    let mut config = RegistryConfig::new(default_models_dir());
    config.embedding_plan = plan;
    let registry = Registry::new(config);
    let t = Instant::now();
    for (name, r) in registry.warmup() {
        let info = r?;
        println!(
            "loaded {name}: {:.0} ms load, {:.0} ms warm-up, weights {:.1} MB, files {:.1} MB, RSS +{:.1} MB",
            info.load_ms,
            info.warmup_ms.unwrap_or(0.0),
            info.weight_bytes as f64 / 1e6,
            info.file_bytes as f64 / 1e6,
            info.rss_delta_bytes.unwrap_or(0) as f64 / 1e6
        );
    }
    println!(
        "all models loaded in {:.2} s; resident memory {:.0} MB (+{:.0} MB)",
        t.elapsed().as_secs_f64(),
        resident_bytes().unwrap_or(0) as f64 / 1e6,
        (resident_bytes().unwrap_or(0) as f64 - rss0 as f64) / 1e6
    );
    let model = registry.embedding(None)?;
    let mut order: Vec<(usize, String)> = texts.iter().map(|t| (model.tokenizer().count(t), t.clone())).collect();
    order.sort_by_key(|(n, _)| *n);
    let tokens: usize = order.iter().map(|(n, _)| n).sum();
    let sorted: Vec<String> = order.into_iter().map(|(_, t)| t).collect();
    println!(
        "{} texts, {tokens} tokens (mean {:.1}); tract, {workers} worker(s) × {threads} matmul thread(s), plan {plan:?}",
        sorted.len(),
        tokens as f64 / sorted.len() as f64
    );
    for batch in [1usize, 8, 32] {
        let (model_only, with_tok) = time_batches(&model, &sorted, batch, reps, workers)?;
        println!("embed batch {batch:>2}: {model_only:>7.1} texts/s (tokenisation excluded), {with_tok:>7.1} with it");
    }
    let nli = registry.nli(None)?;
    let pairs: Vec<(String, String)> =
        sorted.iter().zip(sorted.iter().rev()).map(|(a, b)| (a.clone(), b.clone())).collect();
    nli.predict(&pairs, Overflow::Truncate)?;
    let t = Instant::now();
    for _ in 0..reps {
        nli.predict(&pairs, Overflow::Truncate)?;
    }
    println!("nli ({}): {:.1} pairs/s", nli.name(), (pairs.len() * reps) as f64 / t.elapsed().as_secs_f64());
    println!("resident memory at the end: {:.0} MB", resident_bytes().unwrap_or(0) as f64 / 1e6);
    Ok(())
}

/// Texts/s with the texts tokenised beforehand (as the onnxruntime peer), and with tokenising.
fn time_batches(
    model: &EmbeddingModel,
    texts: &[String],
    batch: usize,
    reps: usize,
    workers: usize,
) -> Result<(f64, f64), ModelError> {
    let encoded = texts
        .chunks(batch)
        .map(|c| model.tokenizer().encode_batch(c, "texts", 0, Overflow::Truncate))
        .collect::<Result<Vec<_>, _>>()?;
    let run = || -> Result<(), ModelError> {
        // Batches dealt round-robin to the workers (similar lengths spread evenly).
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..workers.max(1))
                .map(|w| {
                    let encoded = &encoded;
                    s.spawn(move || -> Result<(), ModelError> {
                        for b in encoded.iter().skip(w).step_by(workers.max(1)) {
                            model.embed_encoded(b)?;
                        }
                        Ok(())
                    })
                })
                .collect();
            handles
                .into_iter()
                .try_for_each(|h| h.join().unwrap_or_else(|_| Err(ModelError::NotReady { model: "worker".into() })))
        })
    };
    run()?; // warm-up: plans for every shape (or the hot ones)
    for _ in 0..4 {
        run()?;
    }
    model.onnx().wait_for_plans(std::time::Duration::from_secs(60));
    let t = Instant::now();
    for _ in 0..reps {
        run()?;
    }
    let model_only = (texts.len() * reps) as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    for _ in 0..reps {
        for chunk in texts.chunks(batch) {
            model.embed_chunked(chunk, Overflow::Truncate, batch)?;
        }
    }
    Ok((model_only, (texts.len() * reps) as f64 / t.elapsed().as_secs_f64()))
}

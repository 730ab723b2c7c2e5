//! Times forward steps over ragged batches: `cargo run --release -p isl-llm --example batch -- MODEL.gguf`.
//! For batch sizes 1..16: a decode step of that many sequences (each with a 256-token context),
//! and the same step with a 64-token prompt chunk beside it; then prompt chunks alone.

use std::time::Instant;

use isl_llm::model::BatchItem;
use isl_llm::prelude::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let path = args.get(1).ok_or("usage: batch MODEL.gguf")?;
    let model = LanguageModel::load("model", &mut std::fs::File::open(path)?)?;
    let m = &model.model;
    let prompt: Vec<u32> = (0..256u32).map(|i| 100 + (i * 37) % 40_000).collect();
    let steps = 16;
    for batch in [1usize, 2, 4, 8, 16] {
        let mut caches: Vec<_> = (0..batch).map(|_| m.new_cache()).collect();
        for c in caches.iter_mut() {
            m.forward(&mut [BatchItem { cache: c, tokens: &prompt, want_logits: true }])?;
        }
        let tokens: Vec<[u32; 1]> = (0..batch).map(|i| [500 + i as u32]).collect();
        let t = Instant::now();
        for _ in 0..steps {
            let mut items: Vec<BatchItem<'_>> = caches
                .iter_mut()
                .zip(tokens.iter())
                .map(|(c, t)| BatchItem { cache: c, tokens: t, want_logits: true })
                .collect();
            m.forward(&mut items)?;
        }
        let per = t.elapsed().as_secs_f64() / steps as f64;
        // The same decode step with a 64-token prompt chunk of another sequence beside it.
        let mut other = m.new_cache();
        let t = Instant::now();
        for s in 0..4 {
            let mut items: Vec<BatchItem<'_>> = caches
                .iter_mut()
                .zip(tokens.iter())
                .map(|(c, t)| BatchItem { cache: c, tokens: t, want_logits: true })
                .collect();
            items.push(BatchItem { cache: &mut other, tokens: &prompt[s * 64..(s + 1) * 64], want_logits: s == 3 });
            m.forward(&mut items)?;
        }
        let mixed = t.elapsed().as_secs_f64() / 4.0;
        println!(
            "batch {batch:2}: decode step {:6.1} ms ({:6.1} tokens/s); with a 64-token chunk {:6.1} ms",
            per * 1e3,
            batch as f64 / per,
            mixed * 1e3
        );
    }
    for chunk in [16usize, 64, 128, 256] {
        let mut c = m.new_cache();
        let t = Instant::now();
        for s in 0..256 / chunk {
            m.forward(&mut [BatchItem {
                cache: &mut c,
                tokens: &prompt[s * chunk..(s + 1) * chunk],
                want_logits: true,
            }])?;
        }
        println!("256-token prompt in chunks of {chunk:3}: {:6.1} ms", t.elapsed().as_secs_f64() * 1e3);
    }
    Ok(())
}

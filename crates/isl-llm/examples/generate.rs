//! Generates from a GGUF model: `cargo run --release -p isl-llm --example generate -- MODEL.gguf "prompt" [max_tokens]`.
//! Prints the text and the decode speed.

use std::time::Instant;

use isl_llm::prelude::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let path = args.get(1).ok_or("usage: generate MODEL.gguf PROMPT [MAX_TOKENS]")?;
    let prompt = args.get(2).cloned().unwrap_or_else(|| "What is the capital of France?".into());
    let max_tokens: usize = args.get(3).map(|s| s.parse()).transpose()?.unwrap_or(64);
    let t = Instant::now();
    let model = LanguageModel::load("model", &mut std::fs::File::open(path)?)?;
    eprintln!("loaded in {:.2} s ({} MB of weights)", t.elapsed().as_secs_f64(), model.model.weight_bytes >> 20);
    let ids = model.chat_prompt(&[ChatMessage { role: "user".into(), content: prompt }])?;
    let t = Instant::now();
    let _ = model.logits(&ids)?;
    let prefill = t.elapsed().as_secs_f64();
    let spec = GenerationSpec {
        prompt: ids.clone(),
        max_tokens,
        sampling: SamplingParams::greedy(),
        stop: vec![],
        logprobs: false,
        top_logprobs: 0,
        stop_at_eos: false,
    };
    let t = Instant::now();
    let out = model.generate(spec)?;
    let all = t.elapsed().as_secs_f64();
    println!("{}", out.text);
    eprintln!(
        "prompt {} tokens: prefill {:.1} ms; {} tokens in {:.2} s: {:.1} tokens/s after prefill",
        ids.len(),
        prefill * 1e3,
        out.tokens.len(),
        all,
        (out.tokens.len() as f64 - 1.0) / (all - prefill)
    );
    Ok(())
}

//! Prints the token ids of a raw prompt and the top next-token logits:
//! `cargo run --release -p isl-llm --example inspect -- MODEL.gguf "raw prompt"`.

use isl_llm::prelude::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let path = args.get(1).ok_or("usage: inspect MODEL.gguf PROMPT")?;
    let prompt = args.get(2).cloned().unwrap_or_default();
    let model = LanguageModel::load("model", &mut std::fs::File::open(path)?)?;
    let ids = model.tokenizer.encode(&prompt, true)?;
    println!("{} {:?}", ids.len(), ids);
    let logits = model.logits(&ids)?;
    if let Ok(path) = std::env::var("ISL_DUMP") {
        let bytes: Vec<u8> = logits.iter().flat_map(|v| v.to_le_bytes()).collect();
        std::fs::write(path, bytes)?;
    }
    let mut idx: Vec<usize> = (0..logits.len()).collect();
    idx.sort_by(|a, b| logits[*b].total_cmp(&logits[*a]));
    for &i in idx.iter().take(5) {
        println!("{i} {:?} {:.4}", model.tokenizer.decode(&[i as u32]), logits[i]);
    }
    let out = model.generate(GenerationSpec {
        prompt: ids,
        max_tokens: 16,
        sampling: SamplingParams::greedy(),
        stop: vec![],
        logprobs: false,
        top_logprobs: 0,
        stop_at_eos: true,
    })?;
    println!("{:?} {:?}", out.tokens, out.text);
    Ok(())
}

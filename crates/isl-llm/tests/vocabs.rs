//! isl-llm's tokenizers against llama.cpp's own tokenizer tests: the vocab-only GGUF files of
//! llama.cpp's `models/` folder with the strings (`.inp`) and token ids (`.out`) its
//! test-tokenizer-0 checks, fetched by `scripts/fetch-llama-vocabs.sh` (run here when missing).
//! SentencePiece (`llama-spm`: Llama 2 / TinyLlama, `phi-3`) and byte-level BPE with each
//! pre-tokenizer isl supports (`llama-bpe`: Llama 3, `qwen2`, `gpt-2`, `starcoder`, `refact`,
//! `command-r`).

use std::path::PathBuf;
use std::sync::OnceLock;

use isl_llm::gguf::GgufFile;
use isl_llm::tokenizer::GgufTokenizer;

/// The folder of the vocabularies, fetched once.
fn vocab_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/fetch-llama-vocabs.sh");
        let out = std::process::Command::new(script).output().expect("run scripts/fetch-llama-vocabs.sh");
        assert!(
            out.status.success(),
            "scripts/fetch-llama-vocabs.sh failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
    })
    .clone()
}

/// The tokenizer of `ggml-vocab-NAME.gguf` and its cases: (text, llama.cpp's ids).
fn vocab(name: &str) -> (GgufTokenizer, Vec<(String, Vec<u32>)>) {
    let dir = vocab_dir();
    let path = dir.join(format!("ggml-vocab-{name}.gguf"));
    let mut f = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let file = GgufFile::read(&mut f).expect("GGUF header");
    let tokenizer = GgufTokenizer::from_gguf(&file).expect("tokenizer");
    let inp = std::fs::read_to_string(dir.join(format!("ggml-vocab-{name}.gguf.inp"))).expect(".inp");
    let out = std::fs::read_to_string(dir.join(format!("ggml-vocab-{name}.gguf.out"))).expect(".out");
    // The .inp separates strings with a marker line; the .out has one line of ids per string.
    let texts: Vec<&str> = inp.split("\n__ggml_vocab_test__\n").collect();
    let ids: Vec<&str> = out.split('\n').collect();
    let cases: Vec<(String, Vec<u32>)> = texts
        .iter()
        .zip(ids.iter())
        .map(|(t, line)| (t.to_string(), line.split_whitespace().map(|x| x.parse().expect("an id")).collect()))
        .collect();
    assert!(cases.len() >= 30, "{name}: {} cases", cases.len());
    (tokenizer, cases)
}

/// Every case tokenises to llama.cpp's ids and decodes back to its text.
fn agrees(name: &str) {
    let (tokenizer, cases) = vocab(name);
    let mut wrong = Vec::new();
    for (text, want) in &cases {
        let got = tokenizer.encode(text, false).expect("encode");
        if &got != want {
            wrong.push(format!("{text:?}: isl {got:?}, llama.cpp {want:?}"));
        }
        assert_eq!(&tokenizer.decode(&got), text, "{name}: decode(encode(s)) for {text:?}");
    }
    assert!(wrong.is_empty(), "{name}: {} of {} strings differ:\n{}", wrong.len(), cases.len(), wrong.join("\n"));
}

#[test]
fn sentencepiece_llama_2_and_tinyllama_agree_with_llama_cpp() {
    agrees("llama-spm");
}

#[test]
fn sentencepiece_phi_3_agrees_with_llama_cpp() {
    agrees("phi-3");
}

#[test]
fn llama_3_bpe_agrees_with_llama_cpp() {
    agrees("llama-bpe");
}

#[test]
fn qwen2_bpe_agrees_with_llama_cpp() {
    agrees("qwen2");
}

#[test]
fn gpt2_bpe_agrees_with_llama_cpp() {
    agrees("gpt-2");
}

#[test]
fn starcoder_bpe_agrees_with_llama_cpp() {
    agrees("starcoder");
}

#[test]
fn refact_bpe_agrees_with_llama_cpp() {
    agrees("refact");
}

#[test]
fn command_r_bpe_agrees_with_llama_cpp() {
    agrees("command-r");
}

#[test]
fn a_sentencepiece_prompt_starts_with_bos_and_matches_special_tokens() {
    let (tokenizer, _) = vocab("llama-spm");
    assert_eq!(tokenizer.pre, "spm");
    let bos = tokenizer.bos.expect("bos");
    let eos = tokenizer.token_id("</s>").expect("</s>");
    assert!(tokenizer.eos.contains(&eos));
    let ids = tokenizer.encode("Hi</s>there", true).expect("encode");
    // BOS, "▁Hi", </s>, then "there" with the space put in front of text after a special token.
    assert_eq!(ids.first(), Some(&bos));
    assert_eq!(ids[2], eos);
    assert_eq!(ids[1], tokenizer.token_id("\u{2581}Hi").expect("▁Hi"));
    assert_eq!(ids[3], tokenizer.token_id("\u{2581}there").expect("▁there"));
    assert_eq!(ids.len(), 4);
}

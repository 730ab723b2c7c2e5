//! The model's own tokenizer, built from its GGUF metadata, in one of two kinds:
//! - byte-level BPE (`tokenizer.ggml.model` = `gpt2`: SmolLM2, Llama 3, Qwen2) with the
//!   pre-tokenizer llama.cpp uses for `tokenizer.ggml.pre` and the vocabulary and merges of the
//!   file; encoding runs Hugging Face `tokenizers` (its BPE, split and byte-level stages, which
//!   build for wasm32);
//! - SentencePiece BPE (`llama`: Llama 2, TinyLlama, Mistral) from the tokens and scores of the
//!   file, merged as llama.cpp merges them ([`spm`]).
//!
//! Both match the file's control and user-defined tokens written in the text as special
//! tokens. Decoding maps every token to its bytes here, so that a stream of tokens can be
//! turned into text a valid UTF-8 prefix at a time ([`TextDecoder`]).

mod spm;

use std::collections::HashMap;

use tokenizers::models::bpe::BPE;
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::tokenizer::SplitDelimiterBehavior;
use tokenizers::{AddedToken, Tokenizer};

use crate::error::{LlmError, Result};
use crate::gguf::GgufFile;

/// GPT-2's pattern (Hugging Face's `ByteLevel` regex).
const REGEX_GPT2: &str = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";
/// Llama 3's pattern (llama.cpp `LLAMA_VOCAB_PRE_TYPE_LLAMA3`).
const REGEX_LLAMA3: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Qwen2's pattern (llama.cpp `LLAMA_VOCAB_PRE_TYPE_QWEN2`).
const REGEX_QWEN2: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// llama.cpp's token types (`tokenizer.ggml.token_type`).
const TOKEN_TYPE_UNKNOWN: i64 = 2;
const TOKEN_TYPE_CONTROL: i64 = 3;
const TOKEN_TYPE_USER_DEFINED: i64 = 4;
const TOKEN_TYPE_BYTE: i64 = 6;

/// How text becomes tokens.
enum Encoder {
    /// Byte-level BPE through Hugging Face `tokenizers` (special tokens added to it).
    Bpe(Box<Tokenizer>),
    /// SentencePiece BPE, with the special tokens to split the text at (longest first).
    Spm { encoder: Box<spm::SpmEncoder>, specials: Vec<(String, u32)> },
}

/// A tokenizer for one model. Invariant: every id it returns is below [`Self::vocab_size`], and
/// `decode(encode(s)) == s` for every string `s` (both kinds fall back to bytes, so they are
/// lossless).
pub struct GgufTokenizer {
    inner: Encoder,
    /// The bytes of each token (pieces mapped back to bytes; control tokens as their text).
    bytes: Vec<Vec<u8>>,
    /// Whether a token is a control token (not shown in generated text).
    control: Vec<bool>,
    /// Beginning-of-sequence token, when the model has one.
    pub bos: Option<u32>,
    /// Token ids that end a generation (`eos`, `eot`, and the chat template's end marker).
    pub eos: Vec<u32>,
    /// Whether prompts start with `bos` (`tokenizer.ggml.add_bos_token`).
    pub add_bos: bool,
    /// The pre-tokenizer name (`tokenizer.ggml.pre`; `spm` for SentencePiece vocabularies).
    pub pre: String,
}

impl std::fmt::Debug for GgufTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufTokenizer")
            .field("vocab_size", &self.bytes.len())
            .field("pre", &self.pre)
            .field("bos", &self.bos)
            .field("eos", &self.eos)
            .finish()
    }
}

fn tok_err(e: impl std::fmt::Display) -> LlmError {
    LlmError::Tokenizer(e.to_string())
}

fn split(regex: &str) -> Result<PreTokenizerWrapper> {
    Ok(Split::new(SplitPattern::Regex(regex.to_string()), SplitDelimiterBehavior::Isolated, false)
        .map_err(tok_err)?
        .into())
}

/// The `tokenizer.ggml.pre` names llama.cpp runs as its Llama 3 pre-type.
const LLAMA3_PRE: &[&str] = &["llama3", "llama-bpe", "llama-v3", "falcon3", "pixtral"];

/// The pre-tokenizer stages llama.cpp applies for `pre` (its `llama_vocab::impl::load`).
fn pre_tokenizer(pre: &str) -> Result<PreTokenizerWrapper> {
    let byte_level: PreTokenizerWrapper = ByteLevel::new(false, false, false).into();
    let stages = match pre {
        // Digits one at a time, then GPT-2's pattern (STARCODER, SMOLLM, REFACT, COMMAND_R, ...).
        "smollm" | "starcoder" | "refact" | "command-r" | "codeshell" | "exaone" | "minerva-7b" => {
            vec![split(r"\p{N}")?, split(REGEX_GPT2)?, byte_level]
        }
        p if LLAMA3_PRE.contains(&p) => vec![split(REGEX_LLAMA3)?, byte_level],
        "qwen2" | "deepseek-r1-qwen" | "megrez" => vec![split(REGEX_QWEN2)?, byte_level],
        "gpt2" | "default" | "" | "gpt-2" | "olmo" | "jais" => vec![split(REGEX_GPT2)?, byte_level],
        other => return Err(LlmError::Tokenizer(format!("unsupported pre-tokenizer `{other}` (tokenizer.ggml.pre)"))),
    };
    Ok(Sequence::new(stages).into())
}

/// GPT-2's map from bytes to printable characters, inverted: character -> byte.
fn unicode_to_byte() -> HashMap<char, u8> {
    let mut bs: Vec<u32> = (b'!' as u32..=b'~' as u32).chain(0xA1..=0xAC).chain(0xAE..=0xFF).collect();
    let mut cs = bs.clone();
    let mut n = 0;
    for b in 0..256u32 {
        if !bs.contains(&b) {
            bs.push(b);
            cs.push(256 + n);
            n += 1;
        }
    }
    bs.iter().zip(cs.iter()).filter_map(|(&b, &c)| Some((char::from_u32(c)?, u8::try_from(b).ok()?))).collect()
}

impl GgufTokenizer {
    /// Builds the tokenizer from the metadata of `file`.
    pub fn from_gguf(file: &GgufFile) -> Result<Self> {
        match file.string("tokenizer.ggml.model")? {
            "gpt2" => Self::byte_level_bpe(file),
            "llama" => Self::sentencepiece(file),
            model => Err(LlmError::Tokenizer(format!(
                "tokenizer.ggml.model `{model}` is not supported (byte-level BPE, `gpt2`, and SentencePiece, `llama`)"
            ))),
        }
    }

    /// A byte-level BPE tokenizer (`gpt2`).
    fn byte_level_bpe(file: &GgufFile) -> Result<Self> {
        let tokens = file.strings("tokenizer.ggml.tokens")?;
        let types = file.ints("tokenizer.ggml.token_type").unwrap_or_default();
        let merges = file.strings("tokenizer.ggml.merges")?;
        let pre = file.string("tokenizer.ggml.pre").unwrap_or("default").to_string();

        let vocab: tokenizers::models::bpe::Vocab =
            tokens.iter().enumerate().map(|(i, t)| (t.to_string(), i as u32)).collect();
        let merges: Vec<(String, String)> = merges
            .iter()
            .map(|m| {
                m.split_once(' ')
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .ok_or_else(|| LlmError::Tokenizer(format!("merge `{m}` has no space")))
            })
            .collect::<Result<_>>()?;
        // llama.cpp's Llama 3 pre-type takes a whole word that is a token as it is, before any
        // merge (Hugging Face's `ignore_merges`).
        let ignore_merges = LLAMA3_PRE.contains(&pre.as_str());
        let bpe =
            BPE::builder().vocab_and_merges(vocab, merges).ignore_merges(ignore_merges).build().map_err(tok_err)?;
        let mut inner = Tokenizer::new(bpe);
        inner.with_pre_tokenizer(Some(pre_tokenizer(&pre)?));

        let u2b = unicode_to_byte();
        let mut bytes = Vec::with_capacity(tokens.len());
        let mut control = Vec::with_capacity(tokens.len());
        let mut specials = Vec::new();
        for (i, t) in tokens.iter().enumerate() {
            let ty = types.get(i).copied().unwrap_or(1);
            let is_special = ty == TOKEN_TYPE_CONTROL || ty == TOKEN_TYPE_USER_DEFINED;
            control.push(ty == TOKEN_TYPE_CONTROL);
            if is_special {
                bytes.push(t.as_bytes().to_vec());
                specials.push(AddedToken::from(t.to_string(), true).normalized(false));
            } else {
                // A token that is not valid byte-level text (rare) decodes as its UTF-8 bytes.
                let mapped: Option<Vec<u8>> = t.chars().map(|c| u2b.get(&c).copied()).collect();
                bytes.push(mapped.unwrap_or_else(|| t.as_bytes().to_vec()));
            }
        }
        inner.add_special_tokens(&specials);
        let add_bos = file.boolean("tokenizer.ggml.add_bos_token").unwrap_or(LLAMA3_PRE.contains(&pre.as_str()));
        Self::finish(file, &tokens, Encoder::Bpe(Box::new(inner)), bytes, control, add_bos, pre)
    }

    /// A SentencePiece BPE tokenizer (`llama`).
    fn sentencepiece(file: &GgufFile) -> Result<Self> {
        let tokens = file.strings("tokenizer.ggml.tokens")?;
        let types = file.ints("tokenizer.ggml.token_type").unwrap_or_default();
        let scores = file.floats("tokenizer.ggml.scores")?;
        let mut bytes = Vec::with_capacity(tokens.len());
        let mut control = Vec::with_capacity(tokens.len());
        let mut specials = Vec::new();
        let mut unk = None;
        for (i, t) in tokens.iter().enumerate() {
            let ty = types.get(i).copied().unwrap_or(1);
            control.push(ty == TOKEN_TYPE_CONTROL);
            if ty == TOKEN_TYPE_UNKNOWN && unk.is_none() {
                unk = Some(i as u32);
            }
            // llama.cpp matches control, user-defined and unknown tokens in the text.
            if matches!(ty, TOKEN_TYPE_CONTROL | TOKEN_TYPE_USER_DEFINED | TOKEN_TYPE_UNKNOWN) {
                specials.push((t.to_string(), i as u32));
            }
            let byte = (ty == TOKEN_TYPE_BYTE)
                .then(|| t.strip_prefix("<0x")?.strip_suffix('>').and_then(|h| u8::from_str_radix(h, 16).ok()))
                .flatten();
            bytes.push(match byte {
                Some(b) => vec![b],
                None if ty == TOKEN_TYPE_CONTROL => t.as_bytes().to_vec(),
                None => t.replace(spm::SPACE, " ").into_bytes(),
            });
        }
        // Longest first; equal lengths by id, so the order never depends on a sort's stability.
        specials.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.1.cmp(&b.1)));
        let unk = file.uint("tokenizer.ggml.unknown_token_id").ok().map(|v| v as u32).or(unk);
        let unk = unk.filter(|&u| (u as usize) < tokens.len());
        let add_space_prefix = file.boolean("tokenizer.ggml.add_space_prefix").unwrap_or(true);
        let encoder = spm::SpmEncoder::new(&tokens, scores, unk, add_space_prefix)?;
        // SentencePiece vocabularies start prompts with BOS unless the file says otherwise.
        let add_bos = file.boolean("tokenizer.ggml.add_bos_token").unwrap_or(true);
        Self::finish(
            file,
            &tokens,
            Encoder::Spm { encoder: Box::new(encoder), specials },
            bytes,
            control,
            add_bos,
            "spm".into(),
        )
    }

    /// The parts both kinds share: BOS, the end tokens, and whether prompts start with BOS.
    fn finish(
        file: &GgufFile,
        tokens: &[&str],
        inner: Encoder,
        bytes: Vec<Vec<u8>>,
        control: Vec<bool>,
        add_bos: bool,
        pre: String,
    ) -> Result<Self> {
        let id = |key: &str| file.uint(key).ok().map(|v| v as u32).filter(|&v| (v as usize) < tokens.len());
        let bos = id("tokenizer.ggml.bos_token_id");
        let mut eos = Vec::new();
        for key in ["tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"] {
            if let Some(t) = id(key)
                && !eos.contains(&t)
            {
                eos.push(t);
            }
        }
        // Chat end markers of common templates, when they are control tokens of this vocabulary.
        for marker in ["<|im_end|>", "<|eot_id|>", "<|end|>", "<|endoftext|>", "</s>"] {
            if let Some(i) = tokens.iter().position(|t| *t == marker)
                && control.get(i).copied().unwrap_or(false)
                && !eos.contains(&(i as u32))
            {
                eos.push(i as u32);
            }
        }
        let add_bos = add_bos && bos.is_some();
        Ok(GgufTokenizer { inner, bytes, control, bos, eos, add_bos, pre })
    }

    /// Number of tokens in the vocabulary.
    pub fn vocab_size(&self) -> usize {
        self.bytes.len()
    }

    /// Token ids of `text`, with control tokens written in the text recognised as such (as
    /// llama.cpp's `tokenize(text, parse_special = true)`), and `bos` first when the model
    /// asks for it and `add_bos` is true.
    pub fn encode(&self, text: &str, add_bos: bool) -> Result<Vec<u32>> {
        let mut ids = Vec::with_capacity(text.len() / 3 + 2);
        if add_bos
            && self.add_bos
            && let Some(b) = self.bos
        {
            ids.push(b);
        }
        match &self.inner {
            Encoder::Bpe(inner) => ids.extend_from_slice(inner.encode_fast(text, false).map_err(tok_err)?.get_ids()),
            Encoder::Spm { encoder, specials } => {
                // As llama.cpp: a space goes in front of the first text and of text after a
                // special token.
                let mut after_special = true;
                for part in spm::split_specials(text, specials) {
                    match part {
                        spm::Fragment::Text(t) => {
                            encoder.encode_text(t, after_special, &mut ids)?;
                            after_special = false;
                        }
                        spm::Fragment::Token(id) => {
                            ids.push(id);
                            after_special = true;
                        }
                    }
                }
            }
        }
        Ok(ids)
    }

    /// The bytes of one token (empty for an id outside the vocabulary).
    pub fn token_bytes(&self, id: u32) -> &[u8] {
        self.bytes.get(id as usize).map(|b| b.as_slice()).unwrap_or(&[])
    }

    /// Whether `id` is a control token (`<|im_end|>` and the like).
    pub fn is_control(&self, id: u32) -> bool {
        self.control.get(id as usize).copied().unwrap_or(false)
    }

    /// The id of a token given as its exact text, if the vocabulary has it.
    pub fn token_id(&self, text: &str) -> Option<u32> {
        match &self.inner {
            Encoder::Bpe(inner) => inner.token_to_id(text),
            Encoder::Spm { encoder, .. } => encoder.token_id(text),
        }
    }

    /// The text of `ids`, control tokens included, invalid UTF-8 replaced by U+FFFD. For a
    /// SentencePiece vocabulary that puts a space in front of the text, the first token's
    /// leading space is that prefix and is left out (as llama.cpp's `detokenize`).
    pub fn decode(&self, ids: &[u32]) -> String {
        let mut out = Vec::new();
        for &id in ids {
            out.extend_from_slice(self.token_bytes(id));
        }
        if let Encoder::Spm { encoder, .. } = &self.inner
            && encoder.add_space_prefix
            && let Some(&first) = ids.first()
            && !self.is_control(first)
            && out.first() == Some(&b' ')
        {
            out.remove(0);
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

/// Turns a stream of generated tokens into text, a complete UTF-8 character at a time; control
/// tokens are left out of the text.
#[derive(Debug, Default, Clone)]
pub struct TextDecoder {
    pending: Vec<u8>,
}

impl TextDecoder {
    /// The text that `id` completes (possibly empty while a multi-byte character is split).
    pub fn push(&mut self, tokenizer: &GgufTokenizer, id: u32) -> String {
        if tokenizer.is_control(id) {
            return String::new();
        }
        self.pending.extend_from_slice(tokenizer.token_bytes(id));
        let valid = match std::str::from_utf8(&self.pending) {
            Ok(_) => self.pending.len(),
            Err(e) => {
                // An incomplete character at the end waits; an invalid sequence is replaced.
                if e.error_len().is_none() { e.valid_up_to() } else { self.pending.len() }
            }
        };
        let text = String::from_utf8_lossy(&self.pending[..valid]).into_owned();
        self.pending.drain(..valid);
        text
    }

    /// Whatever bytes are left (an incomplete character at the end of a generation).
    pub fn finish(&mut self) -> String {
        let text = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        text
    }
}

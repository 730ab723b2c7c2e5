//! Text generation with GGUF language models, pure (no I/O: models load from any reader).
//!
//! A model moves through typed stages: GGUF bytes → [`GgufFile`] (header and metadata checked)
//! → [`LanguageModel`] (weights, the file's own tokenizer and chat template) → a
//! [`Scheduler`] that runs many generations in one continuously batched loop.
//!
//! ```no_run
//! use isl_llm::prelude::*;
//!
//! let mut file = std::fs::File::open("SmolLM2-135M-Instruct.Q4_1.gguf")?;
//! let model = LanguageModel::load("smollm2-135m", &mut file)?;
//! let prompt = model.chat_prompt(&[ChatMessage { role: "user".into(), content: "Hi!".into() }])?;
//! let spec = GenerationSpec {
//!     prompt,
//!     max_tokens: 32,
//!     sampling: SamplingParams::greedy(),
//!     stop: vec![],
//!     logprobs: false,
//!     top_logprobs: 0,
//!     stop_at_eos: true,
//! };
//! let out = model.generate(spec)?;
//! println!("{}", out.text);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The tensor engine is candle's quantised CPU kernels (`candle-core`, pure Rust, SIMD on
//! x86_64, aarch64 and wasm32); [`model`] holds the llama forward pass written on them.

pub mod error;
pub mod gguf;
pub mod kernels;
pub mod model;
pub mod sample;
pub mod scheduler;
pub mod sequence;
pub mod template;
pub mod tokenizer;

use std::io::{Read, Seek};

pub use error::{LlmError, Result};
pub use gguf::{GgufFile, LlamaConfig};
pub use model::{BatchItem, LlamaModel, SeqCache};
pub use sample::SamplingParams;
pub use scheduler::{Event, QueueFull, Scheduler, SchedulerConfig, SeqId};
pub use sequence::{FinishReason, Generation, GenerationSpec, TokenEvent, TokenLogprob};
pub use template::{ChatMessage, ChatTemplate};
pub use tokenizer::{GgufTokenizer, TextDecoder};

/// What users of the crate need.
pub mod prelude {
    pub use crate::{
        ChatMessage, Event, FinishReason, GenerationSpec, LanguageModel, LlmError, SamplingParams, Scheduler,
        SchedulerConfig,
    };
}

/// A loaded model with its tokenizer and chat template.
pub struct LanguageModel {
    /// The id requests name it by.
    pub id: String,
    /// The weights and forward pass.
    pub model: LlamaModel,
    /// The tokenizer from the file's metadata.
    pub tokenizer: GgufTokenizer,
    /// The chat template from the file (ChatML when it has none).
    pub template: ChatTemplate,
    /// Whether the template came from the file.
    pub template_from_file: bool,
}

impl std::fmt::Debug for LanguageModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LanguageModel").field("id", &self.id).field("config", &self.model.config).finish()
    }
}

/// The result of [`LanguageModel::generate`].
#[derive(Debug, Clone, PartialEq)]
pub struct GenerationOutput {
    /// Generated token ids.
    pub tokens: Vec<u32>,
    /// The text (stop strings cut, control tokens left out).
    pub text: String,
    /// Why it ended.
    pub finish: FinishReason,
    /// Per-token log-probabilities, when asked.
    pub logprobs: Vec<TokenLogprob>,
}

impl LanguageModel {
    /// Reads a GGUF model (header, tokenizer, template, weights) from `reader`.
    pub fn load<R: Read + Seek>(id: &str, reader: &mut R) -> Result<Self> {
        let file = GgufFile::read(reader)?;
        let tokenizer = GgufTokenizer::from_gguf(&file)?;
        let model = LlamaModel::load(&file, reader)?;
        if tokenizer.vocab_size() != model.vocab_size() {
            return Err(LlmError::Tokenizer(format!(
                "the tokenizer has {} tokens, the model {}",
                tokenizer.vocab_size(),
                model.vocab_size()
            )));
        }
        let text = |id: Option<u32>| id.map(|i| tokenizer.decode(&[i])).unwrap_or_default();
        let bos = text(tokenizer.bos);
        let eos = text(tokenizer.eos.first().copied());
        let (template, template_from_file) = match file.string("tokenizer.chat_template") {
            Ok(src) => (ChatTemplate::new(src, &bos, &eos)?, true),
            Err(_) => (ChatTemplate::new(template::CHATML_TEMPLATE, &bos, &eos)?, false),
        };
        Ok(LanguageModel { id: id.to_string(), model, tokenizer, template, template_from_file })
    }

    /// The prompt tokens of a chat, with the assistant's turn opened.
    pub fn chat_prompt(&self, messages: &[ChatMessage]) -> Result<Vec<u32>> {
        let text = self.template.render(messages, true)?;
        self.tokenizer.encode(&text, true)
    }

    /// Runs one generation to its end on its own (no batching): the reference the scheduler is
    /// tested against, and the simplest way to use the crate.
    pub fn generate(&self, spec: GenerationSpec) -> Result<GenerationOutput> {
        let mut cache = self.model.new_cache();
        if spec.prompt.is_empty() {
            return Err(LlmError::InvalidParameter { name: "prompt", problem: "is empty".into() });
        }
        if spec.prompt.len() + spec.max_tokens > self.model.context_length {
            return Err(LlmError::ContextOverflow {
                prompt: spec.prompt.len(),
                max_tokens: spec.max_tokens,
                context: self.model.context_length,
            });
        }
        let mut g = Generation::new(spec);
        let mut logprobs = Vec::new();
        let mut next: Vec<u32> = g.spec.prompt.clone();
        while g.finish.is_none() {
            if g.spec.max_tokens == 0 {
                g.end(FinishReason::Length);
                break;
            }
            let mut items = [BatchItem { cache: &mut cache, tokens: &next, want_logits: true }];
            let logits = self.model.forward(&mut items)?;
            let l = logits.into_iter().next().flatten().ok_or_else(|| LlmError::Tensor("no logits".into()))?;
            let ev = g.accept_logits(&self.tokenizer, l);
            if let Some(lp) = ev.logprob {
                logprobs.push(lp);
            }
            next = vec![ev.id];
        }
        Ok(GenerationOutput {
            tokens: g.generated.clone(),
            text: g.text.clone(),
            finish: g.finish.unwrap_or(FinishReason::Stop),
            logprobs,
        })
    }

    /// The next-token logits after `prompt` (for tests against llama.cpp).
    pub fn logits(&self, prompt: &[u32]) -> Result<Vec<f32>> {
        let mut cache = self.model.new_cache();
        let mut items = [BatchItem { cache: &mut cache, tokens: prompt, want_logits: true }];
        self.model.forward(&mut items)?.into_iter().next().flatten().ok_or_else(|| LlmError::Tensor("no logits".into()))
    }
}

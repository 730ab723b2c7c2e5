//! Errors of isl-llm.

use thiserror::Error;

/// What can go wrong loading a model or generating with it.
#[derive(Debug, Error)]
pub enum LlmError {
    /// The bytes are not a GGUF file (wrong magic), or not one this crate reads.
    #[error("not a GGUF file: {0}")]
    NotGguf(String),
    /// The GGUF file is truncated or malformed.
    #[error("malformed GGUF file: {0}")]
    Malformed(String),
    /// A metadata key the model needs is missing or has the wrong type.
    #[error("GGUF metadata `{key}`: {problem}")]
    Metadata {
        /// The key, e.g. `llama.block_count`.
        key: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The model's architecture is not one this crate runs.
    #[error(
        "unsupported architecture `{0}` (llama-architecture GGUF models only: Llama, SmolLM, Qwen2, TinyLlama, Mistral)"
    )]
    UnsupportedArchitecture(String),
    /// The tokenizer described by the metadata is not one this crate builds.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// The chat template does not parse or does not render.
    #[error("chat template: {0}")]
    Template(String),
    /// A tensor operation failed (shapes, missing tensor, unsupported quantisation).
    #[error("tensor: {0}")]
    Tensor(String),
    /// The prompt and the requested tokens do not fit the context.
    #[error("the prompt has {prompt} tokens and max_tokens is {max_tokens}; the model's context is {context} tokens")]
    ContextOverflow {
        /// Prompt tokens.
        prompt: usize,
        /// Requested new tokens.
        max_tokens: usize,
        /// The context length.
        context: usize,
    },
    /// A sampling parameter is out of range.
    #[error("{name}: {problem}")]
    InvalidParameter {
        /// The parameter, as the API names it.
        name: &'static str,
        /// What is wrong with it.
        problem: String,
    },
}

impl From<candle_core::Error> for LlmError {
    fn from(e: candle_core::Error) -> Self {
        LlmError::Tensor(e.to_string())
    }
}

/// Result with [`LlmError`].
pub type Result<T> = std::result::Result<T, LlmError>;

//! One generation's state: its prompt, what it has generated, the text so far, stop strings and
//! why it ended. Pure bookkeeping; the [`crate::scheduler`] runs the model for it.

use serde::{Deserialize, Serialize};

use crate::sample::{SamplingParams, apply_penalties, choose, log_softmax};
use crate::tokenizer::{GgufTokenizer, TextDecoder};

/// Why a generation ended (the OpenAI `finish_reason`, plus the server's own).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// An end-of-sequence token or a stop string.
    Stop,
    /// `max_tokens` reached, or the context is full.
    Length,
    /// The request's deadline passed.
    Timeout,
    /// The client went away or the request was cancelled.
    Cancelled,
}

impl FinishReason {
    /// The text the OpenAI API uses.
    pub fn as_str(self) -> &'static str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
            FinishReason::Timeout => "timeout",
            FinishReason::Cancelled => "cancelled",
        }
    }
}

/// What a caller asks of one generation.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerationSpec {
    /// The prompt's token ids (at least one).
    pub prompt: Vec<u32>,
    /// Most new tokens.
    pub max_tokens: usize,
    /// Sampling.
    pub sampling: SamplingParams,
    /// Stop strings: the text ends before the first occurrence of any of them.
    pub stop: Vec<String>,
    /// Log-probabilities of the most likely alternatives to return per token (0: the chosen
    /// token's only when `logprobs` is true).
    pub top_logprobs: usize,
    /// Whether to return log-probabilities.
    pub logprobs: bool,
    /// Whether an end-of-sequence token ends the generation (false: only max_tokens and stops).
    pub stop_at_eos: bool,
}

/// The log-probability of one generated token and its alternatives.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TokenLogprob {
    /// The token id.
    pub id: u32,
    /// Its log-probability.
    pub logprob: f32,
    /// The most likely tokens at this step, `(id, logprob)`, most likely first.
    pub top: Vec<(u32, f32)>,
}

/// One generated token as the caller sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenEvent {
    /// The token id.
    pub id: u32,
    /// The text it adds (may be empty: part of a character, a control token, held back as the
    /// possible start of a stop string).
    pub text: String,
    /// Its log-probability, when asked for.
    pub logprob: Option<TokenLogprob>,
}

/// The state of one generation. Invariant: `text` is the decoded text of `generated` up to the
/// first stop string, minus what is held back.
#[derive(Debug)]
pub struct Generation {
    /// What was asked.
    pub spec: GenerationSpec,
    /// Tokens generated.
    pub generated: Vec<u32>,
    /// Text released so far.
    pub text: String,
    /// Set once the generation has ended.
    pub finish: Option<FinishReason>,
    decoder: TextDecoder,
    /// Decoded text not yet released (it may begin a stop string).
    held: String,
}

impl Generation {
    /// A generation that has produced nothing yet.
    pub fn new(spec: GenerationSpec) -> Self {
        Generation {
            spec,
            generated: Vec::new(),
            text: String::new(),
            finish: None,
            decoder: TextDecoder::default(),
            held: String::new(),
        }
    }

    /// Chooses the next token from `logits` (penalised first), records it, and returns what
    /// the caller sees. Ends the generation on an end-of-sequence token, a stop string or
    /// `max_tokens`.
    pub fn accept_logits(&mut self, tokenizer: &GgufTokenizer, mut logits: Vec<f32>) -> TokenEvent {
        let p = &self.spec.sampling;
        let recent_from = self.spec.prompt.len().saturating_sub(crate::sample::REPETITION_WINDOW);
        let mut recent: Vec<u32> = self.spec.prompt[recent_from..].to_vec();
        recent.extend_from_slice(&self.generated);
        apply_penalties(&mut logits, p, &recent, &self.generated);
        let step = self.generated.len() as u64;
        let id = choose(&logits, p, step);
        let logprob = if self.spec.logprobs {
            let lp = log_softmax(&logits);
            let mut top: Vec<(u32, f32)> = Vec::new();
            if self.spec.top_logprobs > 0 {
                let mut idx: Vec<u32> = (0..lp.len() as u32).collect();
                let n = self.spec.top_logprobs.min(idx.len());
                idx.select_nth_unstable_by(n.saturating_sub(1), |a, b| {
                    lp[*b as usize].total_cmp(&lp[*a as usize]).then(a.cmp(b))
                });
                idx.truncate(n);
                idx.sort_by(|a, b| lp[*b as usize].total_cmp(&lp[*a as usize]).then(a.cmp(b)));
                top = idx.into_iter().map(|i| (i, lp[i as usize])).collect();
            }
            Some(TokenLogprob { id, logprob: lp.get(id as usize).copied().unwrap_or(f32::NEG_INFINITY), top })
        } else {
            None
        };
        self.push_token(tokenizer, id, logprob)
    }

    /// Records a chosen token (public so that tests and fixtures can force one).
    pub fn push_token(&mut self, tokenizer: &GgufTokenizer, id: u32, logprob: Option<TokenLogprob>) -> TokenEvent {
        self.generated.push(id);
        let mut released = String::new();
        if self.spec.stop_at_eos && tokenizer.eos.contains(&id) {
            released.push_str(&std::mem::take(&mut self.held));
            released.push_str(&self.decoder.finish());
            self.finish = Some(FinishReason::Stop);
        } else {
            self.held.push_str(&self.decoder.push(tokenizer, id));
            if let Some(cut) = self.first_stop() {
                released.push_str(&self.held[..cut]);
                self.held.clear();
                self.finish = Some(FinishReason::Stop);
            } else {
                let keep = self.stop_prefix_len();
                let release = self.held.len() - keep;
                released.push_str(&self.held[..release]);
                self.held.drain(..release);
                if self.generated.len() >= self.spec.max_tokens {
                    released.push_str(&std::mem::take(&mut self.held));
                    released.push_str(&self.decoder.finish());
                    self.finish = Some(FinishReason::Length);
                }
            }
        }
        self.text.push_str(&released);
        TokenEvent { id, text: released, logprob }
    }

    /// Ends the generation for `reason`, releasing held text (a stop string can no longer
    /// complete).
    pub fn end(&mut self, reason: FinishReason) -> String {
        let mut rest = std::mem::take(&mut self.held);
        rest.push_str(&self.decoder.finish());
        self.text.push_str(&rest);
        self.finish = Some(reason);
        rest
    }

    /// The byte offset in `held` where the earliest stop string starts, if one is complete.
    fn first_stop(&self) -> Option<usize> {
        let full = format!("{}{}", self.text, self.held);
        let base = self.text.len();
        self.spec
            .stop
            .iter()
            .filter(|s| !s.is_empty())
            .filter_map(|s| full.find(s.as_str()))
            .min()
            .map(|at| at.saturating_sub(base))
    }

    /// Bytes at the end of `held` that could be the start of a stop string.
    fn stop_prefix_len(&self) -> usize {
        let mut keep = 0;
        for s in self.spec.stop.iter().filter(|s| !s.is_empty()) {
            for (end, _) in s.char_indices().skip(1).chain(std::iter::once((s.len(), ' '))) {
                let prefix = &s[..end];
                if end <= self.held.len() && self.held.ends_with(prefix) && end < s.len() {
                    keep = keep.max(end);
                }
            }
        }
        keep
    }
}

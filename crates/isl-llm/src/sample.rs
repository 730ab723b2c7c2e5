//! Choosing the next token: penalties, greedy or temperature sampling with top-k, top-p and
//! min-p, from a counter-based random stream so that a seed gives the same tokens on every run
//! and platform (Philox4x32-10 of isl-mc, keyed by the seed, counted by the step).

use serde::{Deserialize, Serialize};

use crate::error::{LlmError, Result};

/// The Philox stream of token sampling (distinct from isl-mc's estimation streams).
pub const STREAM_SAMPLING: u32 = 0x4c4c_4d00;

/// Tokens back that the repetition penalty looks at (llama.cpp's `penalty_last_n` default).
pub const REPETITION_WINDOW: usize = 64;

/// How to pick tokens. The defaults are the OpenAI API's (temperature 1, no truncation, no
/// penalties).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SamplingParams {
    /// 0 picks the most likely token (greedy); otherwise logits are divided by it. 0..=2.
    pub temperature: f32,
    /// Keep only the `top_k` most likely tokens (0: all).
    pub top_k: usize,
    /// Keep the smallest set of tokens whose probability reaches `top_p` (1: all). (0, 1].
    pub top_p: f32,
    /// Drop tokens less likely than `min_p` times the most likely one (0: none). [0, 1).
    pub min_p: f32,
    /// Divide positive (multiply negative) logits of tokens seen in the last
    /// [`REPETITION_WINDOW`] tokens, prompt included (1: off). (0, 2].
    pub repetition_penalty: f32,
    /// Subtract from the logit of every token generated so far (OpenAI's). -2..=2.
    pub presence_penalty: f32,
    /// Subtract, times its count, from the logit of every token generated so far. -2..=2.
    pub frequency_penalty: f32,
    /// Seed of the random stream.
    pub seed: u64,
    /// Added to the logits of these tokens before anything else (OpenAI's `logit_bias`;
    /// -100 bans a token, +100 forces it).
    pub logit_bias: Vec<(u32, f32)>,
}

impl Default for SamplingParams {
    fn default() -> Self {
        SamplingParams {
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
            min_p: 0.0,
            repetition_penalty: 1.0,
            presence_penalty: 0.0,
            frequency_penalty: 0.0,
            seed: 0,
            logit_bias: Vec::new(),
        }
    }
}

fn bad(name: &'static str, problem: &str) -> LlmError {
    LlmError::InvalidParameter { name, problem: problem.to_string() }
}

impl SamplingParams {
    /// Greedy decoding.
    pub fn greedy() -> Self {
        SamplingParams { temperature: 0.0, ..Default::default() }
    }

    /// Checks every range (the errors name the parameter as the API does).
    pub fn validate(&self) -> Result<()> {
        if !(0.0..=2.0).contains(&self.temperature) {
            return Err(bad("temperature", "must be between 0 and 2"));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(bad("top_p", "must be greater than 0 and at most 1"));
        }
        if !(0.0..1.0).contains(&self.min_p) {
            return Err(bad("min_p", "must be at least 0 and below 1"));
        }
        if !(self.repetition_penalty > 0.0 && self.repetition_penalty <= 2.0) {
            return Err(bad("repetition_penalty", "must be greater than 0 and at most 2"));
        }
        if !(-2.0..=2.0).contains(&self.presence_penalty) {
            return Err(bad("presence_penalty", "must be between -2 and 2"));
        }
        if !(-2.0..=2.0).contains(&self.frequency_penalty) {
            return Err(bad("frequency_penalty", "must be between -2 and 2"));
        }
        if self.logit_bias.iter().any(|(_, b)| !(-100.0..=100.0).contains(b)) {
            return Err(bad("logit_bias", "biases must be between -100 and 100"));
        }
        Ok(())
    }

    /// Whether the output depends only on the request (greedy, or sampled with a seed the
    /// caller chose): such answers may be cached.
    pub fn is_greedy(&self) -> bool {
        self.temperature == 0.0
    }
}

/// The uniform number in (0, 1) for sampling step `step` of `seed`.
pub fn step_uniform(seed: u64, step: u64) -> f64 {
    let words =
        isl_mc::rng::philox4x32_10([step as u32, (step >> 32) as u32, 0, STREAM_SAMPLING], isl_mc::rng::key(seed));
    isl_mc::rng::uniform(words[0])
}

/// Applies the penalties to `logits` in place. `recent` is the sequence's last tokens (prompt
/// included), `generated` the tokens generated so far.
pub fn apply_penalties(logits: &mut [f32], params: &SamplingParams, recent: &[u32], generated: &[u32]) {
    for &(t, b) in &params.logit_bias {
        if let Some(l) = logits.get_mut(t as usize) {
            *l += b;
        }
    }
    if params.repetition_penalty != 1.0 {
        let from = recent.len().saturating_sub(REPETITION_WINDOW);
        let mut seen: Vec<u32> = recent[from..].to_vec();
        seen.sort_unstable();
        seen.dedup();
        for t in seen {
            if let Some(l) = logits.get_mut(t as usize) {
                *l = if *l > 0.0 { *l / params.repetition_penalty } else { *l * params.repetition_penalty };
            }
        }
    }
    if params.presence_penalty != 0.0 || params.frequency_penalty != 0.0 {
        let mut counts: Vec<(u32, u32)> = Vec::new();
        let mut sorted = generated.to_vec();
        sorted.sort_unstable();
        for t in sorted {
            match counts.last_mut() {
                Some((last, c)) if *last == t => *c += 1,
                _ => counts.push((t, 1)),
            }
        }
        for (t, c) in counts {
            if let Some(l) = logits.get_mut(t as usize) {
                *l -= params.presence_penalty + params.frequency_penalty * c as f32;
            }
        }
    }
}

/// The log-probabilities of `logits` (log-softmax, in f64 for the sum).
pub fn log_softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f64 = logits.iter().map(|&l| f64::from(l - max).exp()).sum();
    let lse = max as f64 + sum.ln();
    logits.iter().map(|&l| (f64::from(l) - lse) as f32).collect()
}

/// Picks the next token from penalised `logits` for step `step` of the sequence.
/// Greedy picks the first maximum; otherwise top-k, temperature, top-p and min-p cut the
/// candidates (in that order, as llama.cpp's default chain) and the step's uniform picks one by
/// inverse CDF over the candidates sorted by probability (ties by id).
pub fn choose(logits: &[f32], params: &SamplingParams, step: u64) -> u32 {
    if params.temperature == 0.0 || logits.is_empty() {
        return crate::model::argmax(logits);
    }
    let mut cand: Vec<(u32, f32)> =
        logits.iter().enumerate().filter(|(_, l)| l.is_finite()).map(|(i, &l)| (i as u32, l)).collect();
    if cand.is_empty() {
        return crate::model::argmax(logits);
    }
    cand.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    if params.top_k > 0 && params.top_k < cand.len() {
        cand.truncate(params.top_k);
    }
    let max = cand[0].1;
    let t = f64::from(params.temperature);
    let mut probs: Vec<f64> = cand.iter().map(|&(_, l)| (f64::from(l - max) / t).exp()).collect();
    let total: f64 = probs.iter().sum();
    for p in probs.iter_mut() {
        *p /= total;
    }
    let mut keep = probs.len();
    if params.top_p < 1.0 {
        let mut acc = 0.0;
        for (i, p) in probs.iter().enumerate() {
            acc += p;
            if acc >= f64::from(params.top_p) {
                keep = i + 1;
                break;
            }
        }
    }
    if params.min_p > 0.0 {
        let floor = probs[0] * f64::from(params.min_p);
        keep = keep.min(probs.iter().take_while(|&&p| p >= floor).count().max(1));
    }
    let probs = &probs[..keep];
    let total: f64 = probs.iter().sum();
    let target = step_uniform(params.seed, step) * total;
    let mut acc = 0.0;
    for (i, p) in probs.iter().enumerate() {
        acc += p;
        if target < acc {
            return cand[i].0;
        }
    }
    cand[keep - 1].0
}

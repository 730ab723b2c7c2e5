//! The OpenAI API's request and response shapes for `/v1/chat/completions`,
//! `/v1/completions` and `/v1/models`, and the OpenAI error body. Pure: parsing, checking and
//! rendering; no I/O.

use isl_llm::{ChatMessage, FinishReason, SamplingParams, TokenLogprob};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// An API error: status and the OpenAI error body.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status.
    pub status: u16,
    /// `error.type`.
    pub kind: &'static str,
    /// `error.code`.
    pub code: &'static str,
    /// `error.param`.
    pub param: Option<&'static str>,
    /// `error.message`.
    pub message: String,
    /// Seconds for `Retry-After` (429, 503).
    pub retry_after: Option<u32>,
}

impl ApiError {
    /// A 400 about `param`.
    pub fn invalid(param: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status: 400,
            kind: "invalid_request_error",
            code: "invalid_value",
            param: Some(param),
            message: message.into(),
            retry_after: None,
        }
    }

    /// The JSON body.
    pub fn body(&self) -> Vec<u8> {
        serde_json::to_vec(&json!({"error": {
            "message": self.message, "type": self.kind, "param": self.param, "code": self.code,
        }}))
        .unwrap_or_default()
    }
}

/// A message's content: a string, or the array-of-parts form (text parts only).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Content {
    /// Plain text.
    Text(String),
    /// `[{"type": "text", "text": ...}, ...]`.
    Parts(Vec<Part>),
}

/// One part of a message's content.
#[derive(Debug, Clone, Deserialize)]
pub struct Part {
    /// `text` (other types are refused).
    #[serde(rename = "type")]
    pub kind: String,
    /// The text of a text part.
    #[serde(default)]
    pub text: Option<String>,
}

/// One incoming chat message.
#[derive(Debug, Clone, Deserialize)]
pub struct InMessage {
    /// `system`, `user`, `assistant`, `tool` (or `developer`, read as system).
    pub role: String,
    /// Its content (absent or null for an empty assistant turn).
    #[serde(default)]
    pub content: Option<Content>,
}

/// `stop`: one string or up to four.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Stop {
    /// One stop string.
    One(String),
    /// Several.
    Many(Vec<String>),
}

/// `prompt` of `/v1/completions`: one string or several.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Prompt {
    /// One prompt.
    One(String),
    /// One completion per prompt.
    Many(Vec<String>),
}

/// `stream_options`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct StreamOptions {
    /// Send a last chunk with `usage`.
    #[serde(default)]
    pub include_usage: bool,
}

/// The parameters shared by both generation routes (unknown fields are ignored, as OpenAI
/// clients send their own extras).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CommonParams {
    /// Model id (default: the first model).
    #[serde(default)]
    pub model: Option<String>,
    /// Most new tokens.
    #[serde(default)]
    pub max_tokens: Option<u64>,
    /// Newer name of `max_tokens`.
    #[serde(default)]
    pub max_completion_tokens: Option<u64>,
    /// 0..=2, default 1.
    #[serde(default)]
    pub temperature: Option<f64>,
    /// (0, 1], default 1.
    #[serde(default)]
    pub top_p: Option<f64>,
    /// Keep the k most likely (0: off).
    #[serde(default)]
    pub top_k: Option<i64>,
    /// [0, 1).
    #[serde(default)]
    pub min_p: Option<f64>,
    /// (0, 2], default 1.
    #[serde(default)]
    pub repetition_penalty: Option<f64>,
    /// -2..=2.
    #[serde(default)]
    pub presence_penalty: Option<f64>,
    /// -2..=2.
    #[serde(default)]
    pub frequency_penalty: Option<f64>,
    /// Seed of the sampler (a seeded request is deterministic and cached).
    #[serde(default)]
    pub seed: Option<i64>,
    /// Stop strings.
    #[serde(default)]
    pub stop: Option<Stop>,
    /// Server-Sent Events.
    #[serde(default)]
    pub stream: bool,
    /// Stream options.
    #[serde(default)]
    pub stream_options: Option<StreamOptions>,
    /// Choices per prompt (only 1).
    #[serde(default)]
    pub n: Option<u64>,
    /// Whether to ignore end-of-sequence tokens (llama.cpp's `ignore_eos`).
    #[serde(default)]
    pub ignore_eos: bool,
    /// Token id (as a string) -> bias in -100..=100.
    #[serde(default)]
    pub logit_bias: Option<std::collections::BTreeMap<String, f64>>,
}

/// `POST /v1/chat/completions`.
#[derive(Debug, Clone, Deserialize)]
pub struct ChatRequest {
    /// The conversation.
    pub messages: Vec<InMessage>,
    /// Shared parameters.
    #[serde(flatten)]
    pub common: CommonParams,
    /// Return log-probabilities of the chosen tokens.
    #[serde(default)]
    pub logprobs: bool,
    /// And of this many alternatives (0..=20).
    #[serde(default)]
    pub top_logprobs: Option<u64>,
}

/// `POST /v1/completions`.
#[derive(Debug, Clone, Deserialize)]
pub struct CompletionRequest {
    /// The prompt(s).
    pub prompt: Prompt,
    /// Shared parameters.
    #[serde(flatten)]
    pub common: CommonParams,
    /// Log-probabilities of this many alternatives per token (0..=5; 0 the chosen only).
    #[serde(default)]
    pub logprobs: Option<u64>,
}

/// Limits on generation requests.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// `max_tokens` when the request gives none.
    pub default_max_tokens: usize,
    /// Largest `max_tokens` accepted.
    pub max_tokens: usize,
    /// Most messages in a chat.
    pub max_messages: usize,
    /// Most prompts in one completions request.
    pub max_prompts: usize,
}

/// Checked generation parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    /// The sampler.
    pub sampling: SamplingParams,
    /// `max_tokens` asked (None: until the default or the context).
    pub max_tokens: Option<usize>,
    /// Stop strings.
    pub stop: Vec<String>,
    /// Whether the answer depends on the request only (greedy, or a seed given).
    pub deterministic: bool,
}

fn range(param: &'static str, v: Option<f64>, ok: impl Fn(f64) -> bool, what: &str) -> Result<Option<f32>, ApiError> {
    match v {
        None => Ok(None),
        Some(x) if x.is_finite() && ok(x) => Ok(Some(x as f32)),
        Some(x) => Err(ApiError::invalid(param, format!("{param} must be {what}; got {x}"))),
    }
}

impl CommonParams {
    /// Checks every parameter's range.
    pub fn check(&self, limits: &Limits) -> Result<Checked, ApiError> {
        if let Some(n) = self.n
            && n != 1
        {
            return Err(ApiError::invalid("n", format!("only n = 1 is supported; got {n}")));
        }
        let mut p = SamplingParams::default();
        if let Some(t) = range("temperature", self.temperature, |x| (0.0..=2.0).contains(&x), "between 0 and 2")? {
            p.temperature = t;
        }
        if let Some(t) = range("top_p", self.top_p, |x| x > 0.0 && x <= 1.0, "greater than 0 and at most 1")? {
            p.top_p = t;
        }
        if let Some(t) = range("min_p", self.min_p, |x| (0.0..1.0).contains(&x), "at least 0 and below 1")? {
            p.min_p = t;
        }
        if let Some(t) = range(
            "repetition_penalty",
            self.repetition_penalty,
            |x| x > 0.0 && x <= 2.0,
            "greater than 0 and at most 2",
        )? {
            p.repetition_penalty = t;
        }
        if let Some(t) =
            range("presence_penalty", self.presence_penalty, |x| (-2.0..=2.0).contains(&x), "between -2 and 2")?
        {
            p.presence_penalty = t;
        }
        if let Some(t) =
            range("frequency_penalty", self.frequency_penalty, |x| (-2.0..=2.0).contains(&x), "between -2 and 2")?
        {
            p.frequency_penalty = t;
        }
        match self.top_k {
            None => {}
            Some(k) if (0..=100_000).contains(&k) => p.top_k = k as usize,
            Some(k) => return Err(ApiError::invalid("top_k", format!("top_k must be between 0 and 100000; got {k}"))),
        }
        if let Some(s) = self.seed {
            p.seed = s as u64;
        }
        if let Some(bias) = &self.logit_bias {
            if bias.len() > 300 {
                return Err(ApiError::invalid("logit_bias", format!("at most 300 biased tokens; got {}", bias.len())));
            }
            for (k, v) in bias {
                let id: u32 =
                    k.parse().map_err(|_| ApiError::invalid("logit_bias", format!("'{k}' is not a token id")))?;
                if !v.is_finite() || !(-100.0..=100.0).contains(v) {
                    return Err(ApiError::invalid(
                        "logit_bias",
                        format!("the bias of {k} must be between -100 and 100"),
                    ));
                }
                p.logit_bias.push((id, *v as f32));
            }
        }
        let max = self.max_completion_tokens.or(self.max_tokens);
        let max_tokens = match max {
            None => None,
            Some(0) => return Err(ApiError::invalid("max_tokens", "max_tokens must be at least 1")),
            Some(m) if m as usize > limits.max_tokens => {
                return Err(ApiError::invalid(
                    "max_tokens",
                    format!("max_tokens is {m}; this server allows at most {} (--llm-max-tokens)", limits.max_tokens),
                ));
            }
            Some(m) => Some(m as usize),
        };
        let stop = match &self.stop {
            None => Vec::new(),
            Some(Stop::One(s)) => vec![s.clone()],
            Some(Stop::Many(v)) => v.clone(),
        };
        if stop.len() > 4 {
            return Err(ApiError::invalid("stop", format!("at most 4 stop strings; got {}", stop.len())));
        }
        if stop.iter().any(|s| s.is_empty() || s.len() > 256) {
            return Err(ApiError::invalid("stop", "stop strings must be 1 to 256 bytes"));
        }
        let deterministic = p.temperature == 0.0 || self.seed.is_some();
        Ok(Checked { sampling: p, max_tokens, stop, deterministic })
    }
}

impl ChatRequest {
    /// The messages as the template takes them.
    pub fn messages(&self, limits: &Limits) -> Result<Vec<ChatMessage>, ApiError> {
        if self.messages.is_empty() {
            return Err(ApiError::invalid("messages", "messages must not be empty"));
        }
        if self.messages.len() > limits.max_messages {
            return Err(ApiError::invalid(
                "messages",
                format!("at most {} messages; got {}", limits.max_messages, self.messages.len()),
            ));
        }
        self.messages
            .iter()
            .map(|m| {
                let role = match m.role.as_str() {
                    "system" | "user" | "assistant" | "tool" => m.role.clone(),
                    "developer" => "system".to_string(),
                    other => {
                        return Err(ApiError::invalid(
                            "messages",
                            format!("unknown role '{other}' (system, user, assistant, tool)"),
                        ));
                    }
                };
                let content = match &m.content {
                    None => String::new(),
                    Some(Content::Text(t)) => t.clone(),
                    Some(Content::Parts(parts)) => {
                        let mut text = String::new();
                        for p in parts {
                            if p.kind != "text" {
                                return Err(ApiError::invalid(
                                    "messages",
                                    format!("content parts of type '{}' are not supported (text only)", p.kind),
                                ));
                            }
                            text.push_str(p.text.as_deref().unwrap_or(""));
                        }
                        text
                    }
                };
                Ok(ChatMessage { role, content })
            })
            .collect()
    }
}

/// One token's log-probability record: id, log-probability, the top alternatives `(id, lp)`.
pub type LoggedToken = (u32, f32, Vec<(u32, f32)>);

/// The outcome of one generation, as cached and rendered.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// The text of each token as it was released (streamed answers replay these chunks).
    pub pieces: Vec<String>,
    /// Token ids.
    pub tokens: Vec<u32>,
    /// Text released at the end.
    pub tail: String,
    /// `finish_reason`.
    pub finish: String,
    /// Prompt tokens.
    pub prompt_tokens: usize,
    /// Prompt tokens from the prefix cache.
    pub cached_tokens: usize,
    /// Per-token log-probabilities (id, logprob, top alternatives).
    pub logprobs: Vec<LoggedToken>,
}

impl Outcome {
    /// The whole text.
    pub fn text(&self) -> String {
        let mut t: String = self.pieces.concat();
        t.push_str(&self.tail);
        t
    }

    /// Records one token.
    pub fn push(&mut self, id: u32, text: String, lp: Option<TokenLogprob>) {
        self.tokens.push(id);
        self.pieces.push(text);
        if let Some(lp) = lp {
            self.logprobs.push((lp.id, lp.logprob, lp.top));
        }
    }

    /// Records the end.
    pub fn finish(&mut self, reason: FinishReason, tail: String, prompt_tokens: usize, cached_tokens: usize) {
        self.finish = reason.as_str().to_string();
        self.tail = tail;
        self.prompt_tokens = prompt_tokens;
        self.cached_tokens = cached_tokens;
    }

    /// `usage`.
    pub fn usage(&self) -> Value {
        json!({
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.tokens.len(),
            "total_tokens": self.prompt_tokens + self.tokens.len(),
            "prompt_tokens_details": {"cached_tokens": self.cached_tokens},
        })
    }
}

/// Token text for log-probabilities.
pub type TokenText<'a> = &'a dyn Fn(u32) -> (String, Vec<u8>);

/// Chat `logprobs` (`{"content": [...]}`).
pub fn chat_logprobs(o: &Outcome, text: TokenText<'_>, range: std::ops::Range<usize>) -> Value {
    let content: Vec<Value> = o.logprobs[range]
        .iter()
        .map(|(id, lp, top)| {
            let (t, b) = text(*id);
            json!({
                "token": t, "logprob": lp, "bytes": b,
                "top_logprobs": top.iter().map(|(i, l)| { let (t, b) = text(*i); json!({"token": t, "logprob": l, "bytes": b}) }).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({ "content": content })
}

/// Completions `logprobs` (`tokens`, `token_logprobs`, `top_logprobs`, `text_offset`).
pub fn completion_logprobs(o: &Outcome, text: TokenText<'_>, range: std::ops::Range<usize>, offset0: usize) -> Value {
    let mut tokens = Vec::new();
    let mut lps = Vec::new();
    let mut tops = Vec::new();
    let mut offsets = Vec::new();
    let mut off = offset0;
    for (id, lp, top) in &o.logprobs[range] {
        let (t, _) = text(*id);
        offsets.push(off);
        off += t.len();
        tokens.push(t);
        lps.push(*lp);
        let mut m = serde_json::Map::new();
        for (i, l) in top {
            m.insert(text(*i).0, json!(l));
        }
        tops.push(Value::Object(m));
    }
    json!({"tokens": tokens, "token_logprobs": lps, "top_logprobs": tops, "text_offset": offsets})
}

/// The `/v1/models` list entry of one model.
pub fn model_entry(id: &str, status: &str, context: Option<usize>) -> Value {
    json!({"id": id, "object": "model", "created": 0, "owned_by": "isl", "status": status, "context_length": context})
}

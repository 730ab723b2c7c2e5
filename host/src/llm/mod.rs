//! Text generation in `isl serve`: GGUF models run by isl-llm, one continuously batched loop per
//! model ([`engine`]), behind the OpenAI API (`/v1/chat/completions`, `/v1/completions`,
//! `/v1/models`, [`openai`]), with Server-Sent Events, the service's response cache for
//! deterministic requests (ETag, `X-Cache`, a cached stream replayed as SSE), `/health` and
//! `/metrics` through [`isl_service::HostExtension`].

pub mod engine;
pub mod openai;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use bytes::Bytes;
use isl_llm::{Event, GenerationSpec, LanguageModel, SchedulerConfig};
use isl_service::Service;
use serde_json::{Value, json};
use tracing::{info, warn};
use xxhash_rust::xxh3::Xxh3;

use self::engine::Engine;
use self::openai::{ApiError, ChatRequest, Checked, CompletionRequest, Limits, Outcome};
use crate::cli::LlmArgs;

/// Paths answered here.
pub const PATHS: [&str; 3] = ["/v1/chat/completions", "/v1/completions", "/v1/models"];

/// The id of the manifest's default model.
pub const DEFAULT_MODEL: &str = "smollm2-135m-instruct";

enum Slot {
    Loading(&'static str),
    Ready { engine: Engine, warm: bool, fingerprint: String },
    Failed(String),
}

/// The language models of one server.
pub struct LlmHost {
    slots: RwLock<BTreeMap<String, Slot>>,
    order: Vec<String>,
    limits: Limits,
    timeout: Duration,
    retry_after: u32,
    warmup: bool,
}

impl std::fmt::Debug for LlmHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmHost").field("models", &self.order).finish()
    }
}

/// `ID=PATH` or `PATH` (the id is then the file stem).
fn parse_spec(s: &str) -> (String, PathBuf) {
    match s.split_once('=') {
        Some((id, path)) if !id.is_empty() && !id.contains('/') => (id.to_string(), PathBuf::from(path)),
        _ => {
            let p = PathBuf::from(s);
            let id = p.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| s.to_string());
            (id, p)
        }
    }
}

impl LlmHost {
    /// Starts loading every model in the background: `--llm` files, and the manifest's default
    /// (waiting for `scripts/fetch-models.sh` when it is missing) unless `--llm-default false`.
    pub fn start(args: &LlmArgs, models_dir: PathBuf, warmup: bool) -> Arc<Self> {
        let mut specs: Vec<(String, PathBuf, Option<String>)> = Vec::new();
        if args.llm_default
            && let Some(m) = isl_models::manifest::language_models().into_iter().next()
        {
            let sha = m.files.get("model.gguf").map(|f| f.sha256.clone());
            specs.push((m.name.clone(), models_dir.join(&m.dir).join("model.gguf"), sha));
        }
        for s in &args.llm {
            let (id, path) = parse_spec(s);
            specs.retain(|(i, ..)| *i != id);
            specs.push((id, path, None));
        }
        let host = Arc::new(LlmHost {
            slots: RwLock::new(specs.iter().map(|(id, ..)| (id.clone(), Slot::Loading("loading"))).collect()),
            order: specs.iter().map(|(id, ..)| id.clone()).collect(),
            limits: Limits {
                default_max_tokens: args.llm_default_max_tokens,
                max_tokens: args.llm_max_tokens,
                max_messages: args.llm_max_messages,
                max_prompts: args.llm_max_prompts,
            },
            timeout: Duration::from_secs(args.llm_timeout_secs.max(1)),
            retry_after: 2,
            warmup,
        });
        let config = SchedulerConfig {
            max_batch: args.llm_max_batch.max(1),
            step_tokens: args.llm_step_tokens.max(1),
            max_queue: args.llm_queue,
            prefix_cache_bytes: args.llm_prefix_cache_mib << 20,
            min_prefix_tokens: 16,
        };
        for (id, path, sha) in specs {
            let host = host.clone();
            let config = config.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("llm-load-{id}"))
                .spawn(move || host.load(&id, &path, sha.as_deref(), config));
            if let Err(e) = spawned {
                warn!(error = %e, "cannot start a model loader");
            }
        }
        host
    }

    fn set(&self, id: &str, slot: Slot) {
        self.slots.write().unwrap_or_else(|p| p.into_inner()).insert(id.to_string(), slot);
    }

    fn load(&self, id: &str, path: &std::path::Path, sha: Option<&str>, config: SchedulerConfig) {
        // The default model comes with the other models' fetch (HostModels); wait for its file.
        let started = Instant::now();
        while sha.is_some() && !path.is_file() {
            self.set(id, Slot::Loading("waiting for scripts/fetch-models.sh"));
            if started.elapsed() > Duration::from_secs(3600) {
                self.set(id, Slot::Failed(format!("{} is missing; run scripts/fetch-models.sh", path.display())));
                return;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        self.set(id, Slot::Loading("loading"));
        // Hashed as a stream, then parsed from the file: the weights are never held twice.
        let opened = std::fs::File::open(path).and_then(|f| {
            let digest = sha256_of(&mut std::io::BufReader::new(&f))?;
            Ok((f, digest))
        });
        let (file, digest) = match opened {
            Ok(x) => x,
            Err(e) => {
                warn!(model = id, path = %path.display(), error = %e, "cannot read the GGUF");
                self.set(id, Slot::Failed(format!("cannot read {}: {e}", path.display())));
                return;
            }
        };
        if let Some(want) = sha
            && digest != want
        {
            self.set(id, Slot::Failed(format!("{}: sha256 {digest}, the manifest pins {want}", path.display())));
            return;
        }
        let model = match LanguageModel::load(id, &mut std::io::BufReader::new(file)) {
            Ok(m) => Arc::new(m),
            Err(e) => {
                warn!(model = id, error = %e, "cannot load the GGUF");
                self.set(id, Slot::Failed(format!("{}: {e}", path.display())));
                return;
            }
        };
        info!(
            model = id,
            load_ms = started.elapsed().as_millis() as u64,
            weights_mib = model.model.weight_bytes >> 20,
            "language model loaded"
        );
        let fingerprint = format!("isl-llm/{}/{}", env!("CARGO_PKG_VERSION"), &digest[..16]);
        let engine = Engine::start(model.clone(), config);
        if self.warmup {
            self.set(id, Slot::Ready { engine: engine.clone(), warm: false, fingerprint: fingerprint.clone() });
            let t = Instant::now();
            if let Ok(prompt) = model.tokenizer.encode("Hello", true) {
                let spec = GenerationSpec {
                    prompt,
                    max_tokens: 4,
                    sampling: isl_llm::SamplingParams::greedy(),
                    stop: vec![],
                    logprobs: false,
                    top_logprobs: 0,
                    stop_at_eos: false,
                };
                let _ = model.generate(spec);
            }
            info!(model = id, warmup_ms = t.elapsed().as_millis() as u64, "language model warm");
        }
        self.set(id, Slot::Ready { engine, warm: true, fingerprint });
    }

    fn engine(&self, model: Option<&str>) -> Result<(String, Engine, String), ApiError> {
        let slots = self.slots.read().unwrap_or_else(|p| p.into_inner());
        let id = match model {
            Some(m) => m.to_string(),
            None => self.order.first().cloned().ok_or_else(|| ApiError {
                status: 404,
                kind: "invalid_request_error",
                code: "model_not_found",
                param: Some("model"),
                message: "no language model is configured (--llm PATH.gguf)".into(),
                retry_after: None,
            })?,
        };
        match slots.get(&id) {
            None => Err(ApiError {
                status: 404,
                kind: "invalid_request_error",
                code: "model_not_found",
                param: Some("model"),
                message: format!("the model '{id}' does not exist; known: {}", self.order.join(", ")),
                retry_after: None,
            }),
            Some(Slot::Loading(what)) => Err(ApiError {
                status: 503,
                kind: "server_error",
                code: "model_loading",
                param: None,
                message: format!("the model '{id}' is not ready yet ({what})"),
                retry_after: Some(self.retry_after),
            }),
            Some(Slot::Failed(msg)) => Err(ApiError {
                status: 503,
                kind: "server_error",
                code: "model_unavailable",
                param: None,
                message: format!("the model '{id}' could not be loaded: {msg}"),
                retry_after: None,
            }),
            Some(Slot::Ready { engine, fingerprint, .. }) => Ok((id, engine.clone(), fingerprint.clone())),
        }
    }
}

impl isl_service::HostExtension for LlmHost {
    fn name(&self) -> &'static str {
        "language_models"
    }

    fn ready(&self) -> bool {
        if !self.warmup {
            return true;
        }
        let slots = self.slots.read().unwrap_or_else(|p| p.into_inner());
        slots.values().all(|s| matches!(s, Slot::Ready { warm: true, .. } | Slot::Failed(_)))
    }

    fn health(&self) -> Value {
        let slots = self.slots.read().unwrap_or_else(|p| p.into_inner());
        let models: Vec<Value> = self
            .order
            .iter()
            .filter_map(|id| slots.get(id).map(|s| (id, s)))
            .map(|(id, s)| match s {
                Slot::Loading(what) => {
                    json!({"id": id, "state": "loading", "detail": what, "loaded": false, "warm": false})
                }
                Slot::Failed(msg) => {
                    json!({"id": id, "state": "failed", "detail": msg, "loaded": false, "warm": false})
                }
                Slot::Ready { engine, warm, fingerprint } => json!({
                    "id": id, "state": "ready", "loaded": true, "warm": warm, "fingerprint": fingerprint,
                    "architecture": engine.model.model.config.architecture,
                    "context_length": engine.model.model.context_length,
                    "weight_bytes": engine.model.model.weight_bytes,
                }),
            })
            .collect();
        json!({"models": models})
    }

    fn metrics_text(&self) -> String {
        use std::sync::atomic::Ordering::Relaxed;
        let slots = self.slots.read().unwrap_or_else(|p| p.into_inner());
        let mut out = String::new();
        let mut gauges = String::new();
        for (id, slot) in slots.iter() {
            let Slot::Ready { engine, .. } = slot else { continue };
            let s = &engine.stats;
            let l = format!("model=\"{id}\"");
            for (name, kind, help, v) in [
                ("isl_llm_queue_depth", "gauge", "Sequences waiting to join the batch", s.queued.load(Relaxed) as u64),
                ("isl_llm_batch_size", "gauge", "Sequences in the running batch", s.running.load(Relaxed) as u64),
                (
                    "isl_llm_kv_cache_bytes",
                    "gauge",
                    "Bytes of keys and values held (running sequences and prefix cache)",
                    s.kv_bytes.load(Relaxed) as u64,
                ),
                ("isl_llm_generated_tokens_total", "counter", "Tokens generated", s.generated.load(Relaxed)),
                ("isl_llm_prompt_tokens_total", "counter", "Prompt tokens computed", s.prefilled.load(Relaxed)),
                (
                    "isl_llm_prefix_cache_hit_tokens_total",
                    "counter",
                    "Prompt tokens taken from the prefix cache",
                    s.prefix_hits.load(Relaxed),
                ),
                (
                    "isl_llm_cancelled_total",
                    "counter",
                    "Sequences cancelled because the client went away",
                    s.cancelled.load(Relaxed),
                ),
                (
                    "isl_llm_rejected_total",
                    "counter",
                    "Requests refused with 429 (queue full)",
                    s.rejected.load(Relaxed),
                ),
                ("isl_llm_steps_total", "counter", "Scheduler steps", s.steps.load(Relaxed)),
            ] {
                gauges.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n{name}{{{l}}} {v}\n"));
            }
            let secs = s.step_nanos.load(Relaxed) as f64 / 1e9;
            gauges.push_str(&format!(
                "# HELP isl_llm_step_seconds_total Seconds spent in scheduler steps (tokens/s = generated / this)\n# TYPE isl_llm_step_seconds_total counter\nisl_llm_step_seconds_total{{{l}}} {secs}\n"
            ));
            let tps = if secs > 0.0 { s.generated.load(Relaxed) as f64 / secs } else { 0.0 };
            gauges.push_str(&format!(
                "# HELP isl_llm_tokens_per_second Tokens generated per second of stepping, since start\n# TYPE isl_llm_tokens_per_second gauge\nisl_llm_tokens_per_second{{{l}}} {tps}\n"
            ));
            out.push_str("# HELP isl_llm_time_to_first_token_seconds Time from queueing to the first token\n# TYPE isl_llm_time_to_first_token_seconds histogram\n");
            s.ttft.render("isl_llm_time_to_first_token_seconds", &l, &mut out);
            out.push_str("# HELP isl_llm_inter_token_seconds Time between a sequence's tokens\n# TYPE isl_llm_inter_token_seconds histogram\n");
            s.inter_token.render("isl_llm_inter_token_seconds", &l, &mut out);
            out.push_str(
                "# HELP isl_llm_step_batch_size Sequences per step\n# TYPE isl_llm_step_batch_size histogram\n",
            );
            s.batch.render("isl_llm_step_batch_size", &l, &mut out);
        }
        gauges + &out
    }
}

/// sha256 of everything `r` yields, lowercase hex.
fn sha256_of(r: &mut impl std::io::Read) -> std::io::Result<String> {
    use sha2::Digest as _;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn error_response(e: &ApiError) -> axum::response::Response {
    let mut r = axum::response::Response::new(Body::from(e.body()));
    *r.status_mut() = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(s) = e.retry_after {
        r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(s));
    }
    r
}

fn json_response(status: u16, body: Vec<u8>) -> axum::response::Response {
    let mut r = axum::response::Response::new(Body::from(body));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// Which route, for rendering.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Chat,
    Completion,
}

/// Everything needed to render one answer.
struct Render {
    kind: Kind,
    model: String,
    id: String,
    created: u64,
    fingerprint: String,
    logprobs: bool,
    include_usage: bool,
}

impl Render {
    fn token_text(model: &LanguageModel) -> impl Fn(u32) -> (String, Vec<u8>) + '_ {
        move |id| {
            let b = model.tokenizer.token_bytes(id).to_vec();
            (String::from_utf8_lossy(&b).into_owned(), b)
        }
    }

    fn choice(&self, index: usize, o: &Outcome, model: &LanguageModel) -> Value {
        let text = Self::token_text(model);
        let lp = if self.logprobs {
            match self.kind {
                Kind::Chat => openai::chat_logprobs(o, &text, 0..o.logprobs.len()),
                Kind::Completion => openai::completion_logprobs(o, &text, 0..o.logprobs.len(), 0),
            }
        } else {
            Value::Null
        };
        match self.kind {
            Kind::Chat => {
                json!({"index": index, "message": {"role": "assistant", "content": o.text()}, "logprobs": lp, "finish_reason": o.finish})
            }
            Kind::Completion => json!({"index": index, "text": o.text(), "logprobs": lp, "finish_reason": o.finish}),
        }
    }

    fn object(&self, stream: bool) -> &'static str {
        match (self.kind, stream) {
            (Kind::Chat, false) => "chat.completion",
            (Kind::Chat, true) => "chat.completion.chunk",
            (Kind::Completion, _) => "text_completion",
        }
    }

    fn whole(&self, outcomes: &[Outcome], model: &LanguageModel) -> Vec<u8> {
        let prompt: usize = outcomes.iter().map(|o| o.prompt_tokens).sum();
        let completion: usize = outcomes.iter().map(|o| o.tokens.len()).sum();
        let cached: usize = outcomes.iter().map(|o| o.cached_tokens).sum();
        let body = json!({
            "id": self.id, "object": self.object(false), "created": self.created, "model": self.model,
            "system_fingerprint": self.fingerprint,
            "choices": outcomes.iter().enumerate().map(|(i, o)| self.choice(i, o, model)).collect::<Vec<_>>(),
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
                      "prompt_tokens_details": {"cached_tokens": cached}},
        });
        serde_json::to_vec(&body).unwrap_or_default()
    }

    fn chunk(&self, index: usize, delta_text: Option<&str>, first: bool, finish: Option<&str>, lp: Value) -> Bytes {
        let choice = match self.kind {
            Kind::Chat => {
                let mut delta = serde_json::Map::new();
                if first {
                    delta.insert("role".into(), json!("assistant"));
                }
                if let Some(t) = delta_text {
                    delta.insert("content".into(), json!(t));
                }
                json!({"index": index, "delta": delta, "logprobs": lp, "finish_reason": finish})
            }
            Kind::Completion => {
                json!({"index": index, "text": delta_text.unwrap_or(""), "logprobs": lp, "finish_reason": finish})
            }
        };
        let body = json!({
            "id": self.id, "object": self.object(true), "created": self.created, "model": self.model,
            "system_fingerprint": self.fingerprint, "choices": [choice],
        });
        sse(&body)
    }

    fn usage_chunk(&self, o: &Outcome) -> Bytes {
        let body = json!({
            "id": self.id, "object": self.object(true), "created": self.created, "model": self.model,
            "system_fingerprint": self.fingerprint, "choices": [], "usage": o.usage(),
        });
        sse(&body)
    }

    fn token_logprob(&self, o: &Outcome, i: usize, model: &LanguageModel, offset: usize) -> Value {
        if !self.logprobs || i >= o.logprobs.len() {
            return Value::Null;
        }
        let text = Self::token_text(model);
        match self.kind {
            Kind::Chat => openai::chat_logprobs(o, &text, i..i + 1),
            Kind::Completion => openai::completion_logprobs(o, &text, i..i + 1, offset),
        }
    }

    /// The SSE frames of a finished outcome (a cached answer replayed as a stream).
    fn replay(&self, o: &Outcome, model: &LanguageModel) -> Vec<Bytes> {
        let mut frames = Vec::new();
        let mut offset = 0;
        if self.kind == Kind::Chat {
            frames.push(self.chunk(0, Some(""), true, None, Value::Null));
        }
        for (i, piece) in o.pieces.iter().enumerate() {
            frames.push(self.chunk(0, Some(piece), false, None, self.token_logprob(o, i, model, offset)));
            offset += piece.len();
        }
        let tail = if o.tail.is_empty() { None } else { Some(o.tail.as_str()) };
        frames.push(self.chunk(0, tail, false, Some(&o.finish), Value::Null));
        if self.include_usage {
            frames.push(self.usage_chunk(o));
        }
        frames.push(Bytes::from_static(b"data: [DONE]\n\n"));
        frames
    }
}

fn sse(v: &Value) -> Bytes {
    let mut b = b"data: ".to_vec();
    b.extend_from_slice(&serde_json::to_vec(v).unwrap_or_default());
    b.extend_from_slice(b"\n\n");
    Bytes::from(b)
}

/// The cache key of a deterministic request: the route, the model's fingerprint, every
/// parameter that changes the output (`max_tokens` as asked, with the server's default for an
/// unset one), and the prompt texts. The texts stand for their tokens: the model's tokenizer
/// maps a text to the same ids every time, so the cache is probed before tokenising.
fn cache_key(
    kind: &str,
    fingerprint: &str,
    prompts: &[&str],
    checked: &Checked,
    default_max_tokens: usize,
    extra: &Value,
) -> u128 {
    let mut h = Xxh3::new();
    let head = json!({
        "route": kind, "model": fingerprint, "sampling": checked.sampling, "stop": checked.stop,
        "max_tokens": checked.max_tokens, "default_max_tokens": default_max_tokens, "extra": extra,
    });
    h.update(&serde_json::to_vec(&head).unwrap_or_default());
    for p in prompts {
        h.update(&(p.len() as u64).to_le_bytes());
        h.update(p.as_bytes());
    }
    h.digest128()
}

/// The decoded cached answer under `key`, if any (bytes that do not decode count as none).
fn cached_answer(service: &Service, key: Option<u128>) -> Option<(Vec<Outcome>, u64)> {
    key.and_then(|k| service.cache_get(k)).and_then(|b| serde_json::from_slice(&b).ok())
}

struct Prepared {
    engine: Engine,
    render: Render,
    /// The generations to run (empty when `cached` holds the answer).
    specs: Vec<GenerationSpec>,
    stream: bool,
    key: Option<u128>,
    /// The cached answer of a deterministic request seen before (found before tokenising):
    /// its outcomes and creation time.
    cached: Option<(Vec<Outcome>, u64)>,
}

fn prepare_chat(host: &LlmHost, service: &Service, body: &[u8]) -> Result<Prepared, ApiError> {
    let req: ChatRequest = serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid("body", format!("not a chat completion request: {e}")))?;
    let checked = req.common.check(&host.limits)?;
    let (id, engine, fingerprint) = host.engine(req.common.model.as_deref())?;
    let messages = req.messages(&host.limits)?;
    let model = &engine.model;
    let text = model.template.render(&messages, true).map_err(|e| ApiError::invalid("messages", e.to_string()))?;
    let top = req.top_logprobs.unwrap_or(0);
    if top > 20 {
        return Err(ApiError::invalid("top_logprobs", format!("top_logprobs must be at most 20; got {top}")));
    }
    let key = checked.deterministic.then(|| {
        cache_key(
            "chat",
            &fingerprint,
            &[&text],
            &checked,
            host.limits.default_max_tokens,
            &json!([req.logprobs, top, req.common.ignore_eos]),
        )
    });
    let cached = cached_answer(service, key);
    let specs = if cached.is_some() {
        Vec::new()
    } else {
        let prompt = model.tokenizer.encode(&text, true).map_err(|e| ApiError::invalid("messages", e.to_string()))?;
        vec![make_spec(host, model, prompt, &checked, &req.common, req.logprobs, top as usize)?]
    };
    let created = unix_now();
    let rid = response_id("chatcmpl", key);
    let render = Render {
        kind: Kind::Chat,
        model: id,
        id: rid,
        created,
        fingerprint,
        logprobs: req.logprobs,
        include_usage: req.common.stream_options.as_ref().is_some_and(|o| o.include_usage),
    };
    Ok(Prepared { engine, render, specs, stream: req.common.stream, key, cached })
}

fn prepare_completion(host: &LlmHost, service: &Service, body: &[u8]) -> Result<Prepared, ApiError> {
    let req: CompletionRequest = serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid("body", format!("not a completion request: {e}")))?;
    let checked = req.common.check(&host.limits)?;
    let (id, engine, fingerprint) = host.engine(req.common.model.as_deref())?;
    let prompts = match &req.prompt {
        openai::Prompt::One(p) => vec![p.clone()],
        openai::Prompt::Many(v) => v.clone(),
    };
    if prompts.is_empty() || prompts.len() > host.limits.max_prompts {
        return Err(ApiError::invalid(
            "prompt",
            format!("1 to {} prompts; got {}", host.limits.max_prompts, prompts.len()),
        ));
    }
    if req.common.stream && prompts.len() > 1 {
        return Err(ApiError::invalid("prompt", "streaming takes one prompt"));
    }
    let lp = req.logprobs.unwrap_or(0);
    if lp > 5 {
        return Err(ApiError::invalid("logprobs", format!("logprobs must be at most 5; got {lp}")));
    }
    let model = &engine.model;
    if prompts.iter().any(|p| p.is_empty()) {
        return Err(ApiError::invalid("prompt", "the prompt must not be empty"));
    }
    let key = checked.deterministic.then(|| {
        let texts: Vec<&str> = prompts.iter().map(String::as_str).collect();
        let extra = json!([req.logprobs, req.common.ignore_eos]);
        cache_key("completion", &fingerprint, &texts, &checked, host.limits.default_max_tokens, &extra)
    });
    let cached = cached_answer(service, key);
    let mut specs = Vec::new();
    if cached.is_none() {
        for p in &prompts {
            let ids = model.tokenizer.encode(p, true).map_err(|e| ApiError::invalid("prompt", e.to_string()))?;
            specs.push(make_spec(host, model, ids, &checked, &req.common, req.logprobs.is_some(), lp as usize)?);
        }
    }
    let rid = response_id("cmpl", key);
    let render = Render {
        kind: Kind::Completion,
        model: id,
        id: rid,
        created: unix_now(),
        fingerprint,
        logprobs: req.logprobs.is_some(),
        include_usage: req.common.stream_options.as_ref().is_some_and(|o| o.include_usage),
    };
    Ok(Prepared { engine, render, specs, stream: req.common.stream, key, cached })
}

/// `PREFIX-<hex>`: the cache key of a deterministic request (so a cached answer keeps its id),
/// otherwise a fresh unique value.
fn response_id(prefix: &str, key: Option<u128>) -> String {
    format!("{prefix}-{:032x}", key.unwrap_or_else(rand_id))
}

fn rand_id() -> u128 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let t = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    xxhash_rust::xxh3::xxh3_128(&[t.to_le_bytes().as_slice(), n.to_le_bytes().as_slice()].concat())
}

fn make_spec(
    host: &LlmHost,
    model: &LanguageModel,
    prompt: Vec<u32>,
    checked: &Checked,
    common: &openai::CommonParams,
    logprobs: bool,
    top: usize,
) -> Result<GenerationSpec, ApiError> {
    if let Some((t, _)) = checked.sampling.logit_bias.iter().find(|(t, _)| *t as usize >= model.model.vocab_size()) {
        return Err(ApiError::invalid(
            "logit_bias",
            format!("token {t} is outside the vocabulary of {} tokens", model.model.vocab_size()),
        ));
    }
    let ctx = model.model.context_length;
    if prompt.len() >= ctx {
        return Err(ApiError {
            status: 400,
            kind: "invalid_request_error",
            code: "context_length_exceeded",
            param: Some("messages"),
            message: format!("the prompt has {} tokens; the model's context is {ctx} tokens", prompt.len()),
            retry_after: None,
        });
    }
    let room = ctx - prompt.len();
    let max_tokens = match checked.max_tokens {
        Some(m) if m > room => {
            return Err(ApiError {
                status: 400,
                kind: "invalid_request_error",
                code: "context_length_exceeded",
                param: Some("max_tokens"),
                message: format!(
                    "the prompt has {} tokens and max_tokens is {m}; the model's context is {ctx} tokens",
                    prompt.len()
                ),
                retry_after: None,
            });
        }
        Some(m) => m,
        None => host.limits.default_max_tokens.min(room),
    };
    Ok(GenerationSpec {
        prompt,
        max_tokens,
        sampling: checked.sampling.clone(),
        stop: checked.stop.clone(),
        logprobs,
        top_logprobs: top,
        stop_at_eos: !common.ignore_eos,
    })
}

/// Answers `GET /v1/models`, `POST /v1/chat/completions`, `POST /v1/completions`.
pub async fn handle(
    host: Arc<LlmHost>,
    service: Arc<Service>,
    method: &axum::http::Method,
    path: &str,
    headers: &axum::http::HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    if path == "/v1/models" {
        if method != axum::http::Method::GET && method != axum::http::Method::HEAD {
            return error_response(&ApiError {
                status: 405,
                kind: "invalid_request_error",
                code: "method_not_allowed",
                param: None,
                message: "use GET".into(),
                retry_after: None,
            });
        }
        let slots = host.slots.read().unwrap_or_else(|p| p.into_inner());
        let data: Vec<Value> = host
            .order
            .iter()
            .map(|id| match slots.get(id) {
                Some(Slot::Ready { engine, .. }) => {
                    openai::model_entry(id, "ready", Some(engine.model.model.context_length))
                }
                Some(Slot::Failed(_)) => openai::model_entry(id, "failed", None),
                _ => openai::model_entry(id, "loading", None),
            })
            .collect();
        return json_response(200, serde_json::to_vec(&json!({"object": "list", "data": data})).unwrap_or_default());
    }
    if method != axum::http::Method::POST {
        return error_response(&ApiError {
            status: 405,
            kind: "invalid_request_error",
            code: "method_not_allowed",
            param: None,
            message: "use POST".into(),
            retry_after: None,
        });
    }
    let prepared = if path == "/v1/chat/completions" {
        prepare_chat(&host, &service, &body)
    } else {
        prepare_completion(&host, &service, &body)
    };
    let p = match prepared {
        Ok(p) => p,
        Err(e) => return error_response(&e),
    };
    let etag = p.key.map(|k| format!("\"{k:032x}\""));
    // A deterministic request answered before: from the response cache.
    if let (Some((outcomes, created)), Some(etag)) = (p.cached.as_ref(), etag.as_deref()) {
        let render = Render { created: *created, ..p.render };
        if p.stream {
            let frames = outcomes.first().map(|o| render.replay(o, &p.engine.model)).unwrap_or_default();
            return sse_response(Body::from(frames.concat()), Some(etag), "hit");
        }
        if headers
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|t| t.trim() == etag))
        {
            let mut r = axum::response::Response::new(Body::empty());
            *r.status_mut() = StatusCode::NOT_MODIFIED;
            r.headers_mut().insert(header::ETAG, HeaderValue::from_str(etag).unwrap_or(HeaderValue::from_static("")));
            return r;
        }
        let mut r = json_response(200, render.whole(outcomes, &p.engine.model));
        set_cache_headers(&mut r, Some(etag), "hit");
        return r;
    }
    let deadline = Instant::now() + host.timeout;
    let mut receivers = Vec::new();
    for spec in p.specs.clone() {
        match p.engine.submit(spec, deadline).await {
            Ok((_, rx)) => receivers.push(rx),
            Err(_) => {
                return error_response(&ApiError {
                    status: 429,
                    kind: "rate_limit_error",
                    code: "queue_full",
                    param: None,
                    message: "the generation queue is full; retry later".into(),
                    retry_after: Some(host.retry_after),
                });
            }
        }
    }
    if p.stream {
        return stream(p, receivers.remove(0), service, etag);
    }
    let mut outcomes = Vec::new();
    for mut rx in receivers {
        let mut o = Outcome::default();
        loop {
            match rx.recv().await {
                Some(Event::Token { token, .. }) => o.push(token.id, token.text, token.logprob),
                Some(Event::Finished { reason, tail, prompt_tokens, cached_tokens, .. }) => {
                    o.finish(reason, tail, prompt_tokens, cached_tokens);
                    break;
                }
                Some(Event::Failed { error, .. }) => {
                    return error_response(&ApiError {
                        status: 500,
                        kind: "server_error",
                        code: "generation_failed",
                        param: None,
                        message: error,
                        retry_after: None,
                    });
                }
                None => {
                    return error_response(&ApiError {
                        status: 503,
                        kind: "server_error",
                        code: "engine_stopped",
                        param: None,
                        message: "the generation loop stopped".into(),
                        retry_after: Some(host.retry_after),
                    });
                }
            }
        }
        if o.finish == "timeout" && o.tokens.is_empty() {
            return error_response(&ApiError {
                status: 504,
                kind: "server_error",
                code: "timeout",
                param: None,
                message: format!("no token within {} s (--llm-timeout-secs)", host.timeout.as_secs()),
                retry_after: None,
            });
        }
        outcomes.push(o);
    }
    if let Some(key) = p.key
        && outcomes.iter().all(|o| o.finish == "stop" || o.finish == "length")
        && let Ok(v) = serde_json::to_vec(&(&outcomes, p.render.created))
    {
        service.cache_put(key, Bytes::from(v));
    }
    let mut r = json_response(200, p.render.whole(&outcomes, &p.engine.model));
    set_cache_headers(&mut r, etag.as_deref(), if p.key.is_some() { "miss" } else { "bypass" });
    r
}

fn set_cache_headers(r: &mut axum::response::Response, etag: Option<&str>, x_cache: &'static str) {
    let h = r.headers_mut();
    h.insert("x-cache", HeaderValue::from_static(x_cache));
    match etag.and_then(|e| HeaderValue::from_str(e).ok()) {
        Some(e) => {
            h.insert(header::ETAG, e);
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, max-age=0, must-revalidate"));
        }
        None => {
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        }
    }
}

fn sse_response(body: Body, etag: Option<&str>, x_cache: &'static str) -> axum::response::Response {
    let mut r = axum::response::Response::new(body);
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    set_cache_headers(&mut r, etag, x_cache);
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

/// A streamed answer: a task turns the sequence's events into SSE frames; when the client goes
/// away the frame channel closes, the task drops the event receiver and the loop cancels the
/// sequence at its next step.
fn stream(
    p: Prepared,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<Event>,
    service: Arc<Service>,
    etag: Option<String>,
) -> axum::response::Response {
    let (tx, frames) = tokio::sync::mpsc::channel::<Bytes>(64);
    let Prepared { engine, render, key, .. } = p;
    tokio::spawn(async move {
        let model = engine.model.clone();
        let mut o = Outcome::default();
        let mut offset = 0;
        if render.kind == Kind::Chat && tx.send(render.chunk(0, Some(""), true, None, Value::Null)).await.is_err() {
            return;
        }
        loop {
            let ev = tokio::select! {
                ev = rx.recv() => ev,
                () = tx.closed() => return,
            };
            match ev {
                Some(Event::Token { token, .. }) => {
                    o.push(token.id, token.text.clone(), token.logprob);
                    let i = o.tokens.len() - 1;
                    let lp = render.token_logprob(&o, i, &model, offset);
                    offset += token.text.len();
                    if tx.send(render.chunk(0, Some(&token.text), false, None, lp)).await.is_err() {
                        return;
                    }
                }
                Some(Event::Finished { reason, tail, prompt_tokens, cached_tokens, .. }) => {
                    o.finish(reason, tail, prompt_tokens, cached_tokens);
                    let tail = if o.tail.is_empty() { None } else { Some(o.tail.as_str()) };
                    let _ = tx.send(render.chunk(0, tail, false, Some(&o.finish), Value::Null)).await;
                    if render.include_usage {
                        let _ = tx.send(render.usage_chunk(&o)).await;
                    }
                    let _ = tx.send(Bytes::from_static(b"data: [DONE]\n\n")).await;
                    if let Some(key) = key
                        && (o.finish == "stop" || o.finish == "length")
                        && let Ok(v) = serde_json::to_vec(&(vec![&o], render.created))
                    {
                        service.cache_put(key, Bytes::from(v));
                    }
                    return;
                }
                Some(Event::Failed { error, .. }) => {
                    let _ = tx
                        .send(sse(
                            &json!({"error": {"message": error, "type": "server_error", "code": "generation_failed"}}),
                        ))
                        .await;
                    let _ = tx.send(Bytes::from_static(b"data: [DONE]\n\n")).await;
                    return;
                }
                None => return,
            }
        }
    });
    sse_response(
        Body::new(crate::body::ChannelBody::Bounded(frames)),
        etag.as_deref(),
        if key.is_some() { "miss" } else { "bypass" },
    )
}

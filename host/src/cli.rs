//! Command-line interface (clap derive). Every flag can also be set from an `ISL_*` environment
//! variable.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use isl_service::{CacheConfig, CacheControl, Config};

use crate::bench::MixKind;

/// isl: an inference service layer for decision support.
#[derive(Debug, Parser)]
#[command(name = "isl", version, about)]
pub struct Cli {
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// The `isl` commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API.
    Serve(Box<ServeArgs>),
    /// Answer one /v1/causal/validate request from a file (or `-` for stdin) and print the JSON.
    Validate(ValidateArgs),
    /// Answer one /v1/counterfactual request from a file (or `-` for stdin) and print the JSON.
    Counterfactual(ValidateArgs),
    /// Answer one /v1/sensitivity request from a file (or `-` for stdin) and print the JSON.
    Sensitivity(ValidateArgs),
    /// Load-test a running server.
    Bench(BenchArgs),
    /// Serve the edge component (wasm32-wasip2) with the embedded wasmtime.
    Edge(crate::edge::EdgeArgs),
    /// Sweep batch sizes of a model (embedding or NLI): throughput, latency and memory per size,
    /// and the recommended size for `--batch-max`.
    TuneBatch(TuneArgs),
}

/// The model routes' settings (`isl serve`).
#[derive(Debug, Clone, Args)]
pub struct ModelArgs {
    /// Where the models are (default: $HOME/.cache/isl/models).
    #[arg(long, env = "ISL_MODELS_DIR")]
    pub models_dir: Option<PathBuf>,
    /// Fetch missing models at start, in the background (scripts/fetch-models.sh).
    #[arg(long, env = "ISL_FETCH_MODELS", default_value_t = true, action = clap::ArgAction::Set)]
    pub fetch_models: bool,
    /// Load and warm up every model at start; /health says `ready: false` (503) until done.
    #[arg(long, env = "ISL_WARMUP")]
    pub warmup: bool,
    /// A named evidence corpus for /v1/verify, embedded at start: NAME=FILE (a JSON array of
    /// strings, or one passage per line). Repeatable.
    #[arg(long = "corpus", value_name = "NAME=FILE")]
    pub corpus: Vec<String>,
    /// Most texts in one /v1/embed request.
    #[arg(long, env = "ISL_MAX_TEXTS", default_value_t = isl_models::ModelLimits::default().max_texts)]
    pub max_texts: usize,
    /// Most bytes in one text (longer ones are refused before tokenising).
    #[arg(long, env = "ISL_MAX_TEXT_BYTES", default_value_t = isl_models::ModelLimits::default().max_text_bytes)]
    pub max_text_bytes: usize,
    /// Most pairs in one /v1/nli request.
    #[arg(long, env = "ISL_MAX_PAIRS", default_value_t = isl_models::ModelLimits::default().max_pairs)]
    pub max_pairs: usize,
    /// Most claims in one /v1/verify request.
    #[arg(long, env = "ISL_MAX_CLAIMS", default_value_t = isl_models::ModelLimits::default().max_claims)]
    pub max_claims: usize,
    /// Most evidence passages in one /v1/verify request.
    #[arg(long, env = "ISL_MAX_EVIDENCE", default_value_t = isl_models::ModelLimits::default().max_evidence)]
    pub max_evidence: usize,
    /// Most points in one /v1/forecast series.
    #[arg(long, env = "ISL_MAX_SERIES_POINTS", default_value_t = isl_models::ModelLimits::default().max_series_points)]
    pub max_series_points: usize,
    /// Most items in one model call of the dynamic batcher. 8 by measurement: with
    /// single-threaded calls MiniLM's throughput per item is flat up to 8 and falls beyond
    /// (`isl tune-batch`), and over HTTP with 8 connections 8 gave 245 texts/s against 127 at 32
    /// (BENCHMARKS.md).
    #[arg(long, env = "ISL_BATCH_MAX", default_value_t = 8)]
    pub batch_max: usize,
    /// Longest an item waits for others before its batch runs, in milliseconds.
    #[arg(long, env = "ISL_BATCH_DELAY_MS", default_value_t = 2)]
    pub batch_delay_ms: u64,
    /// Most padded tokens in one batch.
    #[arg(long, env = "ISL_BATCH_TOKEN_BUDGET", default_value_t = isl_models::BatcherConfig::default().token_budget)]
    pub batch_token_budget: usize,
    /// Batch worker threads per model, each running one single-threaded model call at a time
    /// (0: one per core). Measured: two single-threaded calls side by side beat one call on two
    /// threads at the batch sizes a server sees (BENCHMARKS.md).
    #[arg(long, env = "ISL_BATCH_WORKERS", default_value_t = 0)]
    pub batch_workers: usize,
    /// Most items waiting per model; more are refused with 429.
    #[arg(long, env = "ISL_BATCH_QUEUE", default_value_t = isl_models::BatcherConfig::default().queue_capacity)]
    pub batch_queue: usize,
}

impl ModelArgs {
    /// The models directory.
    pub fn models_dir(&self) -> PathBuf {
        self.models_dir.clone().unwrap_or_else(isl_models::default_models_dir)
    }

    /// The request limits.
    pub fn limits(&self) -> isl_models::ModelLimits {
        isl_models::ModelLimits {
            max_texts: self.max_texts,
            max_text_bytes: self.max_text_bytes,
            max_pairs: self.max_pairs,
            max_claims: self.max_claims,
            max_evidence: self.max_evidence,
            max_series_points: self.max_series_points,
            ..isl_models::ModelLimits::default()
        }
    }

    /// The batcher template.
    pub fn batching(&self) -> isl_models::BatcherConfig {
        isl_models::BatcherConfig {
            max_batch: self.batch_max,
            max_delay: std::time::Duration::from_millis(self.batch_delay_ms),
            token_budget: self.batch_token_budget,
            queue_capacity: self.batch_queue,
            workers: match self.batch_workers {
                0 => std::thread::available_parallelism().map_or(1, usize::from),
                n => n,
            },
            ..isl_models::BatcherConfig::default()
        }
    }
}

/// `isl tune-batch MODEL`.
#[derive(Debug, Clone, Args)]
pub struct TuneArgs {
    /// The model (e.g. all-MiniLM-L6-v2, contract-nli).
    pub model: String,
    /// Batch sizes to try.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4,8,16,32,64")]
    pub sizes: Vec<usize>,
    /// Timed passes over the texts per size (after one warm-up pass).
    #[arg(long, default_value_t = 2)]
    pub reps: usize,
    /// Texts to run, one per line (default: a built-in set of 256 texts of mixed length).
    #[arg(long)]
    pub texts: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Where the models are.
    #[command(flatten)]
    pub models: ModelArgs,
}

/// What the HTTP transports (`serve`, `edge`) do with a body over `--max-body-bytes`: read and
/// drop up to this much more so that the client reads its 413 (see `crate::body`).
#[derive(Debug, Clone, Args)]
pub struct DrainArgs {
    /// Bytes of an oversized body read and dropped past the limit before answering 413, so that
    /// a client still sending reads the answer instead of a reset (0: answer at once).
    #[arg(long, env = "ISL_DRAIN_BODY_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub drain_body_bytes: u64,
    /// Longest time spent dropping an oversized body, milliseconds.
    #[arg(long, env = "ISL_DRAIN_BODY_MS", default_value_t = 5_000)]
    pub drain_body_ms: u64,
}

impl DrainArgs {
    /// The drain bounds these flags describe.
    pub fn to_drain(&self) -> crate::body::Drain {
        crate::body::Drain {
            max_bytes: self.drain_body_bytes,
            max_time: std::time::Duration::from_millis(self.drain_body_ms),
        }
    }
}

/// Service configuration shared by `serve` and `validate`.
#[derive(Debug, Clone, Args)]
pub struct ServiceArgs {
    /// Response cache capacity in bytes (0 disables the cache).
    #[arg(long, env = "ISL_CACHE_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub cache_bytes: u64,
    /// Response cache TTL in seconds (0: no expiry).
    #[arg(long, env = "ISL_CACHE_TTL_SECS", default_value_t = 3600)]
    pub cache_ttl_secs: u64,
    /// Response cache shards.
    #[arg(long, env = "ISL_CACHE_SHARDS", default_value_t = 8)]
    pub cache_shards: usize,
    /// Entries of the raw-request memo (exact request bytes → cache key; repeats skip decoding).
    #[arg(long, env = "ISL_MEMO_ENTRIES", default_value_t = 65_536)]
    pub memo_entries: usize,
    /// Bytes of checked DAGs kept by canonical hash for the causal routes (requests about a DAG
    /// already seen skip decoding and building it; 0 disables).
    #[arg(long, env = "ISL_DAG_CACHE_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub dag_cache_bytes: u64,
    /// Largest request body (or decoded `q`) in bytes.
    #[arg(long, env = "ISL_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Most nodes in a graph.
    #[arg(long, env = "ISL_MAX_NODES", default_value_t = 10_000)]
    pub max_nodes: usize,
    /// Most edges in a graph.
    #[arg(long, env = "ISL_MAX_EDGES", default_value_t = 100_000)]
    pub max_edges: usize,
    /// Most d-separation queries in one request.
    #[arg(long, env = "ISL_MAX_QUERIES", default_value_t = 10_000)]
    pub max_queries: usize,
    /// Ceiling on a request's `max_sets`.
    #[arg(long, env = "ISL_MAX_SETS", default_value_t = 10_000)]
    pub max_sets: usize,
    /// `max_sets` when a request gives none.
    #[arg(long, env = "ISL_DEFAULT_MAX_SETS", default_value_t = 100)]
    pub default_max_sets: usize,
    /// Criterion checks spent searching minimal front-door sets (answers say `truncated` past it).
    #[arg(long, env = "ISL_FRONTDOOR_BUDGET", default_value_t = isl_causal::CausalOptions::default().frontdoor_budget)]
    pub frontdoor_budget: usize,
    /// Most nodes in a structural causal model (Monte Carlo routes).
    #[arg(long, env = "ISL_MAX_MODEL_NODES", default_value_t = isl_mc::McOptions::default().max_nodes)]
    pub max_model_nodes: usize,
    /// Most Monte Carlo samples one request may ask for (`samples`, `max_samples`; for
    /// sensitivity, model evaluations in all).
    #[arg(long, env = "ISL_MAX_SAMPLES", default_value_t = isl_mc::McOptions::default().max_samples)]
    pub max_samples: u64,
    /// `samples` of a counterfactual request that gives neither `samples` nor `target_error`.
    #[arg(long, env = "ISL_DEFAULT_SAMPLES", default_value_t = isl_mc::McOptions::default().default_samples)]
    pub default_samples: u64,
    /// Monte Carlo backend for requests that name none: `auto` (the GPU for runs at or above the
    /// threshold measured at start, where a GPU is attached and faster), `cpu`, `gpu`.
    #[arg(long, env = "ISL_BACKEND", value_enum, default_value_t = Backend::Auto)]
    pub backend: Backend,
    /// Most attributes in one /v1/preferences/next request.
    #[arg(long, env = "ISL_MAX_ATTRIBUTES", default_value_t = isl_service::Config::default().elicit.max_attributes)]
    pub max_attributes: usize,
    /// Most options in one /v1/preferences/next request (explicit, or interventions of a model).
    #[arg(long, env = "ISL_MAX_OPTIONS", default_value_t = isl_service::Config::default().elicit.max_options)]
    pub max_options: usize,
    /// Most answers in one /v1/preferences/next request.
    #[arg(long, env = "ISL_MAX_ANSWERS", default_value_t = isl_service::Config::default().elicit.max_answers)]
    pub max_answers: usize,
    /// Most posterior particles a /v1/preferences/next request may ask for.
    #[arg(long, env = "ISL_MAX_PARTICLES", default_value_t = isl_service::Config::default().elicit.max_particles)]
    pub max_particles: usize,
    /// Particles of a /v1/preferences/next request that gives none.
    #[arg(long, env = "ISL_DEFAULT_PARTICLES", default_value_t = isl_service::Config::default().elicit.default_particles)]
    pub default_particles: usize,
    /// Most candidate questions a /v1/preferences/next request may have searched.
    #[arg(long, env = "ISL_MAX_CANDIDATES", default_value_t = isl_service::Config::default().elicit.max_candidates)]
    pub max_candidates: usize,
    /// Candidate questions searched when a request gives no `candidates`.
    #[arg(long, env = "ISL_DEFAULT_CANDIDATES", default_value_t = isl_service::Config::default().elicit.default_candidates)]
    pub default_candidates: usize,
    /// Most questions one /v1/preferences/next answer returns (`count`).
    #[arg(long, env = "ISL_MAX_QUESTION_COUNT", default_value_t = isl_service::Config::default().elicit.max_count)]
    pub max_question_count: usize,
    /// Monte Carlo samples per option and attribute for options from a causal model, when the
    /// request gives none.
    #[arg(long, env = "ISL_DEFAULT_SCM_SAMPLES", default_value_t = isl_service::Config::default().elicit.default_scm_samples)]
    pub default_scm_samples: u64,
    /// Most Monte Carlo samples in all (samples × interventions × attributes) for options from a
    /// causal model.
    #[arg(long, env = "ISL_MAX_SCM_SAMPLES", default_value_t = isl_service::Config::default().elicit.max_scm_samples)]
    pub max_scm_samples: u64,
    /// Most items in one /v1/batch request.
    #[arg(long, env = "ISL_MAX_BATCH_ITEMS", default_value_t = isl_service::Config::default().batch_max_items)]
    pub max_batch_items: usize,
    /// Per-request compute deadline in milliseconds (504 past it).
    #[arg(long, env = "ISL_DEADLINE_MS", default_value_t = 10_000)]
    pub deadline_ms: u64,
    /// Bearer token for /admin routes (unset: admin disabled).
    #[arg(long, env = "ISL_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// `Cache-Control: max-age` of compute responses, seconds.
    #[arg(long, env = "ISL_MAX_AGE", default_value_t = CacheControl::default().max_age)]
    pub max_age: u32,
    /// `Cache-Control: s-maxage` of compute responses, seconds.
    #[arg(long, env = "ISL_S_MAXAGE", default_value_t = CacheControl::default().s_maxage)]
    pub s_maxage: u32,
    /// `Cache-Control: stale-while-revalidate` of compute responses, seconds.
    #[arg(long, env = "ISL_STALE_WHILE_REVALIDATE", default_value_t = CacheControl::default().stale_while_revalidate)]
    pub stale_while_revalidate: u32,
}

impl ServiceArgs {
    /// The service configuration these flags describe.
    pub fn to_config(&self) -> Config {
        let mut config = Config {
            max_body_bytes: self.max_body_bytes,
            deadline_ms: self.deadline_ms,
            cache: CacheConfig {
                capacity_bytes: self.cache_bytes,
                ttl_secs: self.cache_ttl_secs,
                shards: self.cache_shards,
                memo_entries: self.memo_entries,
                dag_bytes: self.dag_cache_bytes,
                dag_memo_entries: CacheConfig::default().dag_memo_entries,
            },
            cache_control: CacheControl {
                max_age: self.max_age,
                s_maxage: self.s_maxage,
                stale_while_revalidate: self.stale_while_revalidate,
            },
            admin_token: self.admin_token.clone().filter(|t| !t.is_empty()),
            ..Config::default()
        };
        config.causal.graph.max_nodes = self.max_nodes;
        config.causal.graph.max_edges = self.max_edges;
        config.causal.max_queries = self.max_queries;
        config.causal.max_sets_ceiling = self.max_sets;
        config.causal.default_max_sets = self.default_max_sets;
        config.causal.frontdoor_budget = self.frontdoor_budget;
        config.mc.max_nodes = self.max_model_nodes;
        config.mc.max_samples = self.max_samples;
        config.mc.default_samples = self.default_samples;
        config.elicit.max_attributes = self.max_attributes;
        config.elicit.max_options = self.max_options;
        config.elicit.max_answers = self.max_answers;
        config.elicit.max_particles = self.max_particles;
        config.elicit.default_particles = self.default_particles;
        config.elicit.max_candidates = self.max_candidates;
        config.elicit.default_candidates = self.default_candidates;
        config.elicit.max_count = self.max_question_count;
        config.elicit.default_scm_samples = self.default_scm_samples;
        config.elicit.max_scm_samples = self.max_scm_samples;
        config.batch_max_items = self.max_batch_items;
        config.mc_backend = match self.backend {
            Backend::Auto => isl_mc::BackendChoice::Auto,
            Backend::Cpu => isl_mc::BackendChoice::Cpu,
            Backend::Gpu => isl_mc::BackendChoice::Gpu,
        };
        config
    }
}

/// Monte Carlo backends (`--backend`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    /// The GPU for large runs where one is attached and faster; else the CPU.
    Auto,
    /// The CPU only (the GPU is not opened).
    Cpu,
    /// The GPU for every request it can run.
    Gpu,
}

/// `isl serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port; the bound address is printed).
    #[arg(long, env = "ISL_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: String,
    /// Most requests in flight; past it the answer is 429 with Retry-After.
    #[arg(long, env = "ISL_MAX_CONCURRENCY", default_value_t = 256)]
    pub max_concurrency: usize,
    /// `Retry-After` seconds on 429.
    #[arg(long, env = "ISL_RETRY_AFTER_SECS", default_value_t = 1)]
    pub retry_after_secs: u32,
    /// Runtime worker threads (0: one per core).
    #[arg(long, env = "ISL_WORKERS", default_value_t = 0)]
    pub workers: usize,
    /// With `--backend auto`: runs of at least this many samples go to the GPU (default: measured
    /// at start against the CPU).
    #[arg(long, env = "ISL_GPU_MIN_SAMPLES")]
    pub gpu_min_samples: Option<u64>,
    /// Seconds to let in-flight requests finish after SIGINT/SIGTERM.
    #[arg(long, env = "ISL_SHUTDOWN_GRACE_SECS", default_value_t = 30)]
    pub shutdown_grace_secs: u64,
    /// Oversized bodies.
    #[command(flatten)]
    pub drain: DrainArgs,
    /// Service configuration.
    #[command(flatten)]
    pub service: ServiceArgs,
    /// Model routes.
    #[command(flatten)]
    pub models: ModelArgs,
    /// Text generation.
    #[command(flatten)]
    pub llm: LlmArgs,
}

/// Text generation's settings (`isl serve`): the language models and their scheduler.
#[derive(Debug, Clone, Args)]
pub struct LlmArgs {
    /// A GGUF language model to serve: PATH.gguf (its id is the file name without .gguf) or
    /// ID=PATH.gguf. Repeatable; llama-architecture models (Llama, SmolLM, Qwen2, Mistral).
    #[arg(long = "llm", value_name = "[ID=]PATH")]
    pub llm: Vec<String>,
    /// Also serve the manifest's default model (SmolLM2-135M-Instruct, fetched with the others).
    #[arg(long, env = "ISL_LLM_DEFAULT", default_value_t = true, action = clap::ArgAction::Set)]
    pub llm_default: bool,
    /// Most sequences decoding together per model.
    #[arg(long, env = "ISL_LLM_MAX_BATCH", default_value_t = 16)]
    pub llm_max_batch: usize,
    /// Tokens per scheduler step (decode tokens first, then prompt chunks from what is left).
    #[arg(long, env = "ISL_LLM_STEP_TOKENS", default_value_t = 256)]
    pub llm_step_tokens: usize,
    /// Most sequences waiting per model; past it the answer is 429 with Retry-After.
    #[arg(long, env = "ISL_LLM_QUEUE", default_value_t = 64)]
    pub llm_queue: usize,
    /// Seconds a generation may take before it ends (finish_reason "timeout", or 504 with no token).
    #[arg(long, env = "ISL_LLM_TIMEOUT_SECS", default_value_t = 120)]
    pub llm_timeout_secs: u64,
    /// Largest max_tokens a request may ask for.
    #[arg(long, env = "ISL_LLM_MAX_TOKENS", default_value_t = 4096)]
    pub llm_max_tokens: usize,
    /// max_tokens when a request gives none (capped by the context left).
    #[arg(long, env = "ISL_LLM_DEFAULT_MAX_TOKENS", default_value_t = 512)]
    pub llm_default_max_tokens: usize,
    /// Most messages in one chat request.
    #[arg(long, env = "ISL_LLM_MAX_MESSAGES", default_value_t = 256)]
    pub llm_max_messages: usize,
    /// Most prompts in one /v1/completions request.
    #[arg(long, env = "ISL_LLM_MAX_PROMPTS", default_value_t = 16)]
    pub llm_max_prompts: usize,
    /// MiB of keys and values the prefix cache keeps per model (0: off).
    #[arg(long, env = "ISL_LLM_PREFIX_CACHE_MIB", default_value_t = 64)]
    pub llm_prefix_cache_mib: usize,
}

/// `isl validate`, `isl counterfactual`, `isl sensitivity`: one request from a file.
#[derive(Debug, Clone, Args)]
pub struct ValidateArgs {
    /// The request JSON file, or `-` for stdin.
    pub file: PathBuf,
    /// Service configuration.
    #[command(flatten)]
    pub service: ServiceArgs,
}

/// Load-test scenarios.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// One connection; every request distinct (all misses).
    SequentialUncached,
    /// One connection; one request repeated after warm-up (all hits).
    SequentialCached,
    /// `--concurrency` connections; every request distinct.
    Concurrent,
    /// `--concurrency` connections; one request repeated after warm-up.
    ConcurrentCached,
}

impl Scenario {
    /// Whether the scenario repeats one request.
    pub fn cached(self) -> bool {
        matches!(self, Scenario::SequentialCached | Scenario::ConcurrentCached)
    }

    /// Whether the scenario uses one connection.
    pub fn sequential(self) -> bool {
        matches!(self, Scenario::SequentialUncached | Scenario::SequentialCached)
    }
}

/// How bench requests are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BenchMethod {
    /// POST with a JSON body.
    Post,
    /// GET with `?q=` base64url.
    Get,
}

/// `isl bench`.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Base URL of the server.
    #[arg(long, env = "ISL_BENCH_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// Scenario.
    #[arg(long, env = "ISL_BENCH_SCENARIO", value_enum, default_value_t = Scenario::SequentialUncached)]
    pub scenario: Scenario,
    /// Concurrent connections (sequential scenarios use 1).
    #[arg(long, env = "ISL_BENCH_CONCURRENCY", default_value_t = 8)]
    pub concurrency: usize,
    /// Measured requests.
    #[arg(long, env = "ISL_BENCH_REQUESTS", default_value_t = 1000)]
    pub requests: usize,
    /// Requests sent before measuring (distinct from the measured ones when uncached).
    #[arg(long, env = "ISL_BENCH_WARMUP", default_value_t = 50)]
    pub warmup: usize,
    /// Request mix.
    #[arg(long, env = "ISL_BENCH_MIX", value_enum, default_value_t = MixKind::Validate200)]
    pub mix: MixKind,
    /// HTTP method.
    #[arg(long, env = "ISL_BENCH_METHOD", value_enum, default_value_t = BenchMethod::Post)]
    pub method: BenchMethod,
    /// First seed of the generated requests (default: from the clock, so that reruns against a
    /// warm server still miss).
    #[arg(long, env = "ISL_BENCH_SEED")]
    pub seed: Option<u64>,
    /// Per-request timeout in seconds.
    #[arg(long, env = "ISL_BENCH_TIMEOUT_SECS", default_value_t = 30)]
    pub timeout_secs: u64,
    /// Print the report as JSON (no progress bar).
    #[arg(long, env = "ISL_BENCH_JSON")]
    pub json: bool,
    /// Print the measured requests' JSON bodies (one per line, the seeds an uncached run would
    /// send) instead of sending anything: for timing a peer on the same requests.
    #[arg(long)]
    pub print_requests: bool,
    /// Exit non-zero when P95 latency exceeds this many milliseconds (with --llm: default 2000).
    #[arg(long, env = "ISL_BENCH_SLA_P95_MS")]
    pub sla_p95_ms: Option<f64>,
    /// Text generation instead: streamed /v1/completions against any OpenAI-compatible server,
    /// reporting latency, time to first token and tokens/s.
    #[arg(long)]
    pub llm: bool,
    /// With --llm: the model id to ask for (default: the server's first).
    #[arg(long)]
    pub llm_model: Option<String>,
    /// With --llm: approximate prompt length in tokens.
    #[arg(long, default_value_t = 256)]
    pub llm_prompt_tokens: usize,
    /// With --llm: new tokens per request (the end-of-sequence token is banned so each answer
    /// is this long).
    #[arg(long, default_value_t = 64)]
    pub llm_max_tokens: usize,
    /// With --llm: the end-of-sequence token id banned by logit_bias (2: SmolLM2's <|im_end|>).
    #[arg(long, default_value_t = 2)]
    pub llm_eos_token: u32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn flags_map_to_config() {
        let cli = Cli::parse_from([
            "isl",
            "serve",
            "--max-nodes",
            "7",
            "--cache-bytes",
            "0",
            "--admin-token",
            "t",
            "--max-particles",
            "500",
            "--max-batch-items",
            "3",
        ]);
        let Command::Serve(args) = cli.command else { panic!("not serve") };
        let c = args.service.to_config();
        assert_eq!((c.elicit.max_particles, c.batch_max_items), (500, 3));
        assert_eq!(c.elicit, {
            let mut e = isl_service::Config::default().elicit;
            e.max_particles = 500;
            e
        });
        assert_eq!(c.elicit.max_answers, isl_service::Config::default().elicit.max_answers);
        assert_eq!(c.causal.graph.max_nodes, 7);
        assert_eq!(c.cache.capacity_bytes, 0);
        assert_eq!(c.admin_token.as_deref(), Some("t"));
        assert_eq!(args.addr, "127.0.0.1:8080");
    }

    #[test]
    fn model_flags_map_to_limits_and_batching() {
        let cli = Cli::parse_from([
            "isl",
            "serve",
            "--max-texts",
            "5",
            "--batch-workers",
            "3",
            "--batch-delay-ms",
            "7",
            "--fetch-models",
            "false",
            "--corpus",
            "a=x.txt",
            "--corpus",
            "b=y.json",
        ]);
        let Command::Serve(args) = cli.command else { panic!("not serve") };
        let m = &args.models;
        assert_eq!(m.limits().max_texts, 5);
        assert_eq!(m.limits().max_pairs, isl_models::ModelLimits::default().max_pairs);
        let b = m.batching();
        assert_eq!((b.workers, b.max_delay), (3, std::time::Duration::from_millis(7)));
        assert!(!m.fetch_models && !m.warmup);
        assert_eq!(m.corpus, ["a=x.txt", "b=y.json"]);
        // 0 workers: one per core.
        let cli = Cli::parse_from(["isl", "serve"]);
        let Command::Serve(args) = cli.command else { panic!("not serve") };
        assert!(args.models.batching().workers >= 1);
        assert!(args.models.fetch_models);
    }
}

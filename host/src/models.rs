//! The native server's model runtime: isl-models (tract + tokenizers) behind the service's
//! [`ModelRuntime`] trait, with what a server adds around it — fetching the models on first use
//! (`scripts/fetch-models.sh`, in the background), an optional warm-up, named evidence corpora
//! embedded at start, and the mapping of model errors to HTTP statuses.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use isl_models::api::{EmbedRequest, ForecastRequest, NliRequest, VerifyRequest};
use isl_models::fetch::FetchOutcome;
use isl_models::service::{body, decode};
use isl_models::{ErrorClass, ModelError, ModelKind, ModelServer, Registry, RegistryConfig};
use isl_service::{ModelAnswer, ModelFailure, ModelRoute, ModelRuntime};
use serde::Serialize;
use serde_json::{Value, json};
use tracing::{info, warn};

use crate::cli::ModelArgs;

/// Seconds a client is told to wait while models are fetched or warmed up.
const RETRY_WHILE_PREPARING_SECS: u32 = 15;

/// The state of the first-use fetch.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum FetchState {
    /// Every model file is present (or fetching was not needed).
    NotNeeded,
    /// Fetching is switched off (`--fetch-models false`); missing models answer 503.
    Disabled,
    /// `scripts/fetch-models.sh` runs now.
    Running,
    /// The fetch finished.
    Done {
        /// Seconds it took.
        seconds: f64,
    },
    /// The fetch failed (offline: exit status 3) or the script is not there.
    Failed {
        /// The script's last words.
        message: String,
    },
}

const WARMUP_NONE: u8 = 0;
const WARMUP_RUNNING: u8 = 1;
const WARMUP_DONE: u8 = 2;

/// isl-models as the service's model runtime.
pub struct HostModels {
    server: ModelServer,
    fingerprint: String,
    fetch: Mutex<FetchState>,
    warmup: AtomicU8,
    corpora_pending: Mutex<Vec<String>>,
}

impl std::fmt::Debug for HostModels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostModels").field("server", &self.server).field("fingerprint", &self.fingerprint).finish()
    }
}

impl HostModels {
    /// The runtime for `args` (nothing loaded yet; see [`HostModels::start`]).
    pub fn new(args: &ModelArgs) -> Self {
        // Parallelism comes from the batch workers (one model call each), not inside a call.
        isl_models::runtime::set_matmul_threads(1);
        let registry = Arc::new(Registry::new(RegistryConfig::new(args.models_dir())));
        let server = ModelServer::new(registry, args.limits(), args.batching());
        // Engine version, architecture and every model file's pinned sha256.
        let fingerprint = isl_models::service::fingerprint(server.registry());
        HostModels {
            server,
            fingerprint,
            fetch: Mutex::new(FetchState::NotNeeded),
            warmup: AtomicU8::new(WARMUP_NONE),
            corpora_pending: Mutex::new(Vec::new()),
        }
    }

    /// Starts the runtime: fetches missing models in the background (when allowed), then loads
    /// the named corpora and, with `--warmup`, loads and warms every model; the server serves
    /// meanwhile (model routes answer 503 with `Retry-After` until their model is there).
    pub fn start(args: &ModelArgs) -> Arc<Self> {
        let models = Arc::new(HostModels::new(args));
        let missing = isl_models::fetch::missing_models(models.server.registry());
        let fetch_needed = !missing.is_empty();
        if fetch_needed {
            let state = if !args.fetch_models {
                warn!(?missing, dir = %args.models_dir().display(), "models missing and fetching is off: their routes answer 503");
                FetchState::Disabled
            } else if !isl_models::fetch::fetch_script().is_file() {
                let message = format!(
                    "models {missing:?} are missing and this binary was not built from a checkout with \
                     scripts/fetch-models.sh; run it from the repository with ISL_MODELS_DIR={}",
                    args.models_dir().display()
                );
                warn!("{message}");
                FetchState::Failed { message }
            } else {
                FetchState::Running
            };
            *models.fetch.lock().unwrap_or_else(|p| p.into_inner()) = state;
        }
        if args.warmup {
            models.warmup.store(WARMUP_RUNNING, Ordering::SeqCst);
        }
        *models.corpora_pending.lock().unwrap_or_else(|p| p.into_inner()) =
            args.corpus.iter().map(|c| c.split_once('=').map_or(c.as_str(), |(n, _)| n).to_string()).collect();
        let background = models.clone();
        let args = args.clone();
        let spawned = std::thread::Builder::new().name("isl-models-start".into()).spawn(move || {
            if background.fetch_state() == FetchState::Running {
                background.run_fetch(&args.models_dir());
            }
            for spec in &args.corpus {
                background.load_corpus(spec);
            }
            if args.warmup {
                for (name, result) in background.server.registry().warmup() {
                    match result {
                        Ok(info) => {
                            info!(model = %name, load_ms = info.load_ms, warmup_ms = ?info.warmup_ms, "model warm")
                        }
                        Err(e) => warn!(model = %name, error = %e, "model not warmed up"),
                    }
                }
                background.warmup.store(WARMUP_DONE, Ordering::SeqCst);
            }
        });
        if let Err(e) = spawned {
            warn!(error = %e, "cannot start the model thread: models load on first use");
            models.warmup.store(WARMUP_DONE, Ordering::SeqCst);
        }
        models
    }

    /// The model server.
    pub fn server(&self) -> &ModelServer {
        &self.server
    }

    /// The first-use fetch's state.
    pub fn fetch_state(&self) -> FetchState {
        self.fetch.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn run_fetch(&self, dir: &Path) {
        info!(dir = %dir.display(), "models missing: fetching them (scripts/fetch-models.sh, first use only)");
        let state = match isl_models::fetch::fetch_missing(self.server.registry()) {
            FetchOutcome::Present => FetchState::NotNeeded,
            FetchOutcome::Fetched { seconds } => {
                info!(seconds, "models fetched");
                FetchState::Done { seconds }
            }
            FetchOutcome::Offline { message } => {
                warn!("the models cannot be fetched (offline): {message}");
                FetchState::Failed { message: format!("offline: {message}") }
            }
            FetchOutcome::Failed { message } => {
                warn!("fetching the models failed: {message}");
                FetchState::Failed { message }
            }
        };
        *self.fetch.lock().unwrap_or_else(|p| p.into_inner()) = state;
    }

    /// Loads `NAME=FILE` (a JSON array of strings, or one passage per non-empty line).
    fn load_corpus(&self, spec: &str) {
        let Some((name, file)) = spec.split_once('=') else {
            warn!(spec, "--corpus takes NAME=FILE");
            return;
        };
        let passages = std::fs::read_to_string(file).map_err(|e| e.to_string()).and_then(|text| {
            if text.trim_start().starts_with('[') {
                serde_json::from_str::<Vec<String>>(&text).map_err(|e| e.to_string())
            } else {
                Ok(text.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_string).collect())
            }
        });
        match passages.map(|p| self.server.add_corpus(name, p).map_err(|e| e.to_string())) {
            Ok(Ok(n)) => info!(corpus = name, passages = n, "corpus embedded"),
            Ok(Err(e)) | Err(e) => warn!(corpus = name, file, error = %e, "corpus not loaded"),
        }
        self.corpora_pending.lock().unwrap_or_else(|p| p.into_inner()).retain(|c| c != name);
    }

    /// A model error as the service answers it; a missing model while the fetch runs is a 503
    /// that says so and asks the client to come back.
    fn failure(&self, e: ModelError) -> ModelFailure {
        let mut failure = isl_models::service::failure(&e);
        if self.fetch_state() == FetchState::Running && e.class() == ErrorClass::Unavailable {
            failure.retry_after_secs = Some(RETRY_WHILE_PREPARING_SECS);
            if e.code() == "model_missing" {
                failure.code = "model_fetching";
                failure.message = format!("{e}; the server is fetching the models now (first use): retry shortly");
            }
        }
        failure
    }
}

impl ModelRuntime for HostModels {
    fn fingerprint(&self) -> String {
        self.fingerprint.clone()
    }

    fn canonical(&self, route: ModelRoute, request: Value) -> Result<Value, ModelFailure> {
        isl_models::service::canonical(route, request, self.server.registry(), self.server.limits())
    }

    fn answer(&self, route: ModelRoute, canonical: &Value, budget: Duration) -> Result<ModelAnswer, ModelFailure> {
        let deadline = Instant::now().checked_add(budget);
        let fail = |e| self.failure(e);
        match route {
            ModelRoute::Embed => {
                let r: EmbedRequest = decode(canonical)?;
                let out = self.server.embed(&r, deadline).map_err(fail)?;
                Ok(ModelAnswer { body: body(&out)?, stages: Vec::new() })
            }
            ModelRoute::Nli => {
                let r: NliRequest = decode(canonical)?;
                let out = self.server.nli(&r, deadline).map_err(fail)?;
                Ok(ModelAnswer { body: body(&out)?, stages: Vec::new() })
            }
            ModelRoute::Verify => {
                let r: VerifyRequest = decode(canonical)?;
                if r.corpus
                    .as_deref()
                    .is_some_and(|c| self.corpora_pending.lock().is_ok_and(|p| p.iter().any(|n| n == c)))
                {
                    return Err(ModelFailure {
                        status: 503,
                        code: "corpus_loading",
                        message: format!("corpus '{}' is still being embedded", r.corpus.as_deref().unwrap_or("")),
                        details: json!({}),
                        retry_after_secs: Some(RETRY_WHILE_PREPARING_SECS),
                    });
                }
                let out = self.server.verify(&r, deadline).map_err(fail)?;
                Ok(ModelAnswer { body: body(&out)?, stages: isl_models::service::verify_stages(&out) })
            }
            ModelRoute::Forecast => {
                let r: ForecastRequest = decode(canonical)?;
                let out = self.server.forecast(&r).map_err(fail)?;
                Ok(ModelAnswer { body: body(&out)?, stages: isl_models::service::forecast_stages(&out) })
            }
        }
    }

    fn health(&self) -> Value {
        let warmup = match self.warmup.load(Ordering::SeqCst) {
            WARMUP_RUNNING => "running",
            WARMUP_DONE => "done",
            _ => "not_requested",
        };
        let corpora: Vec<Value> =
            self.server.corpora().into_iter().map(|(name, n)| json!({"name": name, "passages": n})).collect();
        json!({
            "dir": self.server.registry().config().dir.display().to_string(),
            "fetch": self.fetch_state(),
            "warmup": warmup,
            "models": self.server.registry().status(),
            "batchers": self.server.batchers(),
            "corpora": corpora,
            "resident_bytes": isl_models::registry::resident_bytes(),
        })
    }

    fn ready(&self) -> bool {
        self.warmup.load(Ordering::SeqCst) != WARMUP_RUNNING
    }
}

/// `isl tune-batch MODEL`: sweeps batch sizes on a built-in set of texts (or `--texts FILE`,
/// one per line) and prints throughput, latency and memory per size with a recommendation.
pub fn tune_batch(args: &crate::cli::TuneArgs) -> Result<isl_models::tune::TuneReport, String> {
    let registry = Registry::new(RegistryConfig::new(args.models.models_dir()));
    let texts: Vec<String> = match &args.texts {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| format!("{}: {e}", path.display()))?
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect(),
        None => TUNE_TEXTS.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_string).collect(),
    };
    let spec = registry
        .specs()
        .into_iter()
        .find(|s| s.name == args.model)
        .map(|s| s.kind)
        .ok_or_else(|| format!("unknown model '{}'; known: {}", args.model, registry.names().join(", ")))?;
    let sizes = &args.sizes;
    match spec {
        ModelKind::Embedding => {
            let m = registry.embedding(Some(&args.model)).map_err(|e| e.to_string())?;
            isl_models::tune::tune_embedding(&m, &texts, sizes, args.reps).map_err(|e| e.to_string())
        }
        ModelKind::Nli => {
            let m = registry.nli(Some(&args.model)).map_err(|e| e.to_string())?;
            let pairs: Vec<(String, String)> =
                texts.iter().zip(texts.iter().skip(1)).map(|(a, b)| (a.clone(), b.clone())).collect();
            isl_models::tune::tune_nli(&m, &pairs, sizes, args.reps).map_err(|e| e.to_string())
        }
        ModelKind::Llm => {
            Err("language models are scheduled by isl-llm's continuous batcher; there is no batch size to tune".into())
        }
        ModelKind::Forecast => {
            Err("the forecaster answers a whole horizon in one call per request; it has no batch size to tune".into())
        }
    }
}

/// Texts for `isl tune-batch` (the timing set of isl-models: mixed lengths).
const TUNE_TEXTS: &str = include_str!("../../crates/isl-models/examples/timing_texts.txt");

/// The default models directory as a path (for `--models-dir`).
pub fn default_dir() -> PathBuf {
    isl_models::default_models_dir()
}

//! The model registry: every model loaded once (on first use, or all at start with
//! [`Registry::warmup`]), shared across threads, with its load time, memory and state.
//!
//! Files are read from the models directory (see [`default_models_dir`]) and checked against
//! the sha256 pinned in the manifest before tract sees them: a missing file is
//! [`ModelError::ModelMissing`] (with the fetch command), a changed one
//! [`ModelError::ModelCorrupt`]. A failed load is retried on the next use, so fetching the
//! models while the server runs makes them available. A loaded model is never replaced.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::embed::EmbeddingModel;
use crate::error::ModelError;
use crate::forecast::{FORECAST_MODEL, ForecastModel, Timestamp};
use crate::manifest::{FETCH_COMMAND, ModelKind, ModelSpec, manifest_models};
use crate::nli::NliModel;
use crate::runtime::PlanMode;
use crate::timing::{Stopwatch, round_ms};
use crate::tokenize::Overflow;

/// The models directory: `$ISL_MODELS_DIR`, else `$HOME/.cache/isl/models` (what
/// `scripts/fetch-models.sh` uses). For hosts and tests; the registry itself takes a path.
pub fn default_models_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("ISL_MODELS_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
    home.join(".cache").join("isl").join("models")
}

/// Registry settings.
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// Where the fetched models are.
    pub dir: PathBuf,
    /// How embedding models plan shapes.
    pub embedding_plan: PlanMode,
    /// Check sha256 at load (on by default; off only for measurements of load time).
    pub verify_sha256: bool,
}

impl RegistryConfig {
    /// Defaults for `dir`: adaptive plans for embeddings (the symbolic plan and up to four
    /// concrete plans for recurring shapes, about 90 MB each), sha256 checked.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        RegistryConfig {
            dir: dir.into(),
            embedding_plan: PlanMode::Adaptive { after: 4, max_plans: 4 },
            verify_sha256: true,
        }
    }
}

/// A loaded model.
#[derive(Debug, Clone)]
pub enum LoadedModel {
    /// An embedding model.
    Embedding(Arc<EmbeddingModel>),
    /// An NLI model.
    Nli(Arc<NliModel>),
    /// A forecasting model.
    Forecast(Arc<ForecastModel>),
}

/// What loading a model cost.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LoadInfo {
    /// Reading, checking, parsing and optimising, in milliseconds.
    pub load_ms: f64,
    /// Size of the model files.
    pub file_bytes: u64,
    /// Bytes of weights in the model.
    pub weight_bytes: u64,
    /// Growth of the process's resident memory during the load (Linux; approximate when
    /// other threads allocate at the same time).
    pub rss_delta_bytes: Option<i64>,
    /// The warm-up inference, in milliseconds, once run.
    pub warmup_ms: Option<f64>,
}

/// The state of one model, for `/health`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelStatus {
    /// Name.
    pub name: String,
    /// Kind.
    pub kind: ModelKind,
    /// `not_loaded`, `loading`, `ready`, `warm` (ready and warmed up) or `failed`.
    pub state: String,
    /// Load figures once loaded.
    pub load: Option<LoadInfo>,
    /// The last load error's code and message.
    pub error: Option<ModelStatusError>,
    /// Licence.
    pub licence: String,
}

/// A load error in [`ModelStatus`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelStatusError {
    /// [`ModelError::code`].
    pub code: String,
    /// The message.
    pub message: String,
}

enum SlotState {
    NotLoaded,
    Loading,
    Ready(LoadedModel, LoadInfo),
    Failed(ModelError),
}

struct Slot {
    spec: ModelSpec,
    state: Mutex<SlotState>,
    loaded: Condvar,
}

/// Every model isl knows: the manifest's fetched models and the built-in forecaster.
pub struct Registry {
    config: RegistryConfig,
    slots: Vec<Slot>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").field("dir", &self.config.dir).field("models", &self.names()).finish()
    }
}

impl Registry {
    /// A registry over the manifest's models in `config.dir` and the built-in forecaster.
    /// Nothing is loaded yet.
    pub fn new(config: RegistryConfig) -> Self {
        let mut specs: Vec<ModelSpec> =
            manifest_models().iter().filter(|m| m.kind != ModelKind::Llm).cloned().collect();
        specs.push(ModelSpec {
            name: FORECAST_MODEL.into(),
            kind: ModelKind::Forecast,
            dir: String::new(),
            licence: "MIT OR Apache-2.0 (trained by models/forecast/train.py on generated series)".into(),
            domain: "regularly sampled numeric series (trained on generated series: trends, daily and weekly cycles, \
                     noise)"
                .into(),
            max_tokens: 0,
            fixed_length: None,
            dimensions: None,
            labels: Vec::new(),
            files: Default::default(),
        });
        let slots = specs
            .into_iter()
            .map(|spec| Slot { spec, state: Mutex::new(SlotState::NotLoaded), loaded: Condvar::new() })
            .collect();
        Registry { config, slots }
    }

    /// The settings.
    pub fn config(&self) -> &RegistryConfig {
        &self.config
    }

    /// Names of all models.
    pub fn names(&self) -> Vec<String> {
        self.slots.iter().map(|s| s.spec.name.clone()).collect()
    }

    /// The manifest entries of all models.
    pub fn specs(&self) -> Vec<&ModelSpec> {
        self.slots.iter().map(|s| &s.spec).collect()
    }

    /// The name of model `name` of `kind` (the default one of that kind for `None`), without
    /// loading it; [`ModelError::UnknownModel`] naming the known ones otherwise.
    pub fn resolve_name(&self, name: Option<&str>, kind: ModelKind) -> Result<String, ModelError> {
        self.slot(name, kind).map(|s| s.spec.name.clone())
    }

    fn slot(&self, name: Option<&str>, kind: ModelKind) -> Result<&Slot, ModelError> {
        let mut of_kind = self.slots.iter().filter(|s| s.spec.kind == kind);
        match name {
            None => of_kind.next(),
            Some(n) => of_kind.find(|s| s.spec.name == n),
        }
        .ok_or_else(|| ModelError::UnknownModel {
            name: name.unwrap_or("").to_string(),
            kind: kind.as_str().into(),
            known: self.slots.iter().filter(|s| s.spec.kind == kind).map(|s| s.spec.name.clone()).collect(),
        })
    }

    /// The embedding model `name` (the default one for `None`), loading it if needed.
    pub fn embedding(&self, name: Option<&str>) -> Result<Arc<EmbeddingModel>, ModelError> {
        match self.get(self.slot(name, ModelKind::Embedding)?)? {
            LoadedModel::Embedding(m) => Ok(m),
            _ => Err(ModelError::load(name.unwrap_or(""), "not an embedding model")),
        }
    }

    /// The NLI model `name` (the default one for `None`), loading it if needed.
    pub fn nli(&self, name: Option<&str>) -> Result<Arc<NliModel>, ModelError> {
        match self.get(self.slot(name, ModelKind::Nli)?)? {
            LoadedModel::Nli(m) => Ok(m),
            _ => Err(ModelError::load(name.unwrap_or(""), "not an NLI model")),
        }
    }

    /// The forecasting model `name` (the default one for `None`), loading it if needed.
    pub fn forecast(&self, name: Option<&str>) -> Result<Arc<ForecastModel>, ModelError> {
        match self.get(self.slot(name, ModelKind::Forecast)?)? {
            LoadedModel::Forecast(m) => Ok(m),
            _ => Err(ModelError::load(name.unwrap_or(""), "not a forecasting model")),
        }
    }

    /// Loads (if needed) and returns a model; waits while another thread loads it.
    fn get(&self, slot: &Slot) -> Result<LoadedModel, ModelError> {
        let mut state = slot.state.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            match &*state {
                SlotState::Ready(m, _) => return Ok(m.clone()),
                SlotState::Loading => state = slot.loaded.wait(state).unwrap_or_else(|p| p.into_inner()),
                SlotState::NotLoaded | SlotState::Failed(_) => break,
            }
        }
        *state = SlotState::Loading;
        drop(state);
        let result = self.load(&slot.spec);
        let mut state = slot.state.lock().unwrap_or_else(|p| p.into_inner());
        let out = match result {
            Ok((model, info)) => {
                *state = SlotState::Ready(model.clone(), info);
                Ok(model)
            }
            Err(e) => {
                *state = SlotState::Failed(e.clone());
                Err(e)
            }
        };
        drop(state);
        slot.loaded.notify_all();
        out
    }

    /// Checks that the files of model `name` are present with their pinned sha256, without
    /// loading it.
    pub fn check_files(&self, name: &str) -> Result<(), ModelError> {
        let slot = self.slots.iter().find(|s| s.spec.name == name).ok_or_else(|| ModelError::UnknownModel {
            name: name.into(),
            kind: "any".into(),
            known: self.names(),
        })?;
        self.read_files(&slot.spec, true).map(|_| ())
    }

    /// Reads every file of `spec`, in name order, checking presence first (all missing files
    /// named at once) and sha256 when asked.
    fn read_files(&self, spec: &ModelSpec, verify: bool) -> Result<Vec<(String, Vec<u8>)>, ModelError> {
        let dir = self.config.dir.join(&spec.dir);
        let missing: Vec<String> = spec.files.keys().filter(|f| !dir.join(f).is_file()).cloned().collect();
        if !missing.is_empty() {
            return Err(ModelError::ModelMissing {
                model: spec.name.clone(),
                dir: dir.display().to_string(),
                files: missing,
                fetch_command: fetch_command(&self.config.dir),
            });
        }
        let mut out = Vec::new();
        for (file, fspec) in &spec.files {
            let path = dir.join(file);
            let bytes =
                std::fs::read(&path).map_err(|e| ModelError::load(&spec.name, format!("{}: {e}", path.display())))?;
            if verify {
                let actual = sha256_hex(&bytes);
                if actual != fspec.sha256 {
                    return Err(ModelError::ModelCorrupt {
                        model: spec.name.clone(),
                        path: path.display().to_string(),
                        expected: fspec.sha256.clone(),
                        actual,
                        fetch_command: fetch_command(&self.config.dir),
                    });
                }
            }
            out.push((file.clone(), bytes));
        }
        Ok(out)
    }

    fn load(&self, spec: &ModelSpec) -> Result<(LoadedModel, LoadInfo), ModelError> {
        let sw = Stopwatch::start();
        let rss0 = resident_bytes();
        let (model, file_bytes, weight_bytes) = if spec.kind == ModelKind::Forecast {
            let m = ForecastModel::builtin()?;
            let w = m.onnx().weight_bytes() as u64;
            (LoadedModel::Forecast(Arc::new(m)), crate::forecast::FORECAST_ONNX.len() as u64, w)
        } else {
            let files = self.read_files(spec, self.config.verify_sha256)?;
            let file_bytes = files.iter().map(|(_, b)| b.len() as u64).sum();
            let get = |name: &str| {
                files
                    .iter()
                    .find(|(f, _)| f == name)
                    .map(|(_, b)| b.as_slice())
                    .ok_or_else(|| ModelError::load(&spec.name, format!("the manifest lists no {name}")))
            };
            let (onnx, tok) = (get("model.onnx")?, get("tokenizer.json")?);
            match spec.kind {
                ModelKind::Embedding => {
                    let m = EmbeddingModel::from_bytes(spec, onnx, tok, self.config.embedding_plan)?;
                    let w = m.onnx().weight_bytes() as u64;
                    (LoadedModel::Embedding(Arc::new(m)), file_bytes, w)
                }
                ModelKind::Nli => {
                    let m = NliModel::from_bytes(spec, onnx, tok, PlanMode::Symbolic)?;
                    let w = m.onnx().weight_bytes() as u64;
                    (LoadedModel::Nli(Arc::new(m)), file_bytes, w)
                }
                ModelKind::Forecast => unreachable!("handled above"),
                ModelKind::Llm => unreachable!("the registry holds no language models (Registry::new)"),
            }
        };
        let rss_delta_bytes = match (rss0, resident_bytes()) {
            (Some(a), Some(b)) => Some(b as i64 - a as i64),
            _ => None,
        };
        Ok((model, LoadInfo { load_ms: round_ms(sw.ms()), file_bytes, weight_bytes, rss_delta_bytes, warmup_ms: None }))
    }

    /// Loads every model and runs one small inference on each (so the first request does not
    /// pay for plan building). Returns each model's outcome; failures are also kept in
    /// [`Registry::status`] and retried on the next use.
    pub fn warmup(&self) -> Vec<(String, Result<LoadInfo, ModelError>)> {
        self.slots
            .iter()
            .map(|slot| {
                let result = self.get(slot).and_then(|m| {
                    let sw = Stopwatch::start();
                    warm(&m)?;
                    let ms = round_ms(sw.ms());
                    let mut state = slot.state.lock().unwrap_or_else(|p| p.into_inner());
                    match &mut *state {
                        SlotState::Ready(_, info) => {
                            info.warmup_ms = Some(ms);
                            Ok(*info)
                        }
                        _ => Err(ModelError::NotReady { model: slot.spec.name.clone() }),
                    }
                });
                (slot.spec.name.clone(), result)
            })
            .collect()
    }

    /// The state of every model.
    pub fn status(&self) -> Vec<ModelStatus> {
        self.slots
            .iter()
            .map(|slot| {
                let state = slot.state.lock().unwrap_or_else(|p| p.into_inner());
                let (name, load, error) = match &*state {
                    SlotState::NotLoaded => ("not_loaded", None, None),
                    SlotState::Loading => ("loading", None, None),
                    SlotState::Ready(_, info) => {
                        (if info.warmup_ms.is_some() { "warm" } else { "ready" }, Some(*info), None)
                    }
                    SlotState::Failed(e) => {
                        ("failed", None, Some(ModelStatusError { code: e.code().into(), message: e.to_string() }))
                    }
                };
                ModelStatus {
                    name: slot.spec.name.clone(),
                    kind: slot.spec.kind,
                    state: name.into(),
                    load,
                    error,
                    licence: slot.spec.licence.clone(),
                }
            })
            .collect()
    }

    /// Whether every model is loaded.
    pub fn all_ready(&self) -> bool {
        self.slots.iter().all(|s| matches!(*s.state.lock().unwrap_or_else(|p| p.into_inner()), SlotState::Ready(..)))
    }
}

fn warm(model: &LoadedModel) -> Result<(), ModelError> {
    match model {
        LoadedModel::Embedding(m) => m.embed(&["warm up"], Overflow::Truncate).map(|_| ()),
        LoadedModel::Nli(m) => {
            m.predict(&[("A warm-up premise.", "A warm-up hypothesis.")], Overflow::Truncate).map(|_| ())
        }
        LoadedModel::Forecast(m) => {
            let n = m.window();
            let ts: Vec<Timestamp> = (0..n).map(|i| Timestamp::Seconds(i as f64 * 3600.0)).collect();
            let values: Vec<f64> = (0..n).map(|i| (i as f64 / 4.0).sin()).collect();
            m.forecast(&ts, &values, m.max_horizon(), n).map(|_| ())
        }
    }
}

/// The command that fetches the models into `dir`.
fn fetch_command(dir: &Path) -> String {
    if std::env::var_os("ISL_MODELS_DIR").is_some_and(|d| Path::new(&d) == dir) || dir == default_models_dir() {
        FETCH_COMMAND.to_string()
    } else {
        format!("ISL_MODELS_DIR={} {FETCH_COMMAND}", dir.display())
    }
}

/// Lowercase hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Resident set size of this process (Linux), in bytes.
pub fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

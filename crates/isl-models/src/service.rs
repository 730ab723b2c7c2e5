//! isl-models as isl-service's model runtime (feature `service`): the canonical form of each
//! model route's request, the HTTP answer to each [`ModelError`], the fingerprint that goes into
//! every model answer's cache key and ETag, and [`RegistryRuntime`], which answers the routes
//! from a [`Registry`] on the calling thread — no batcher, no threads, no fetching: what the
//! edge component runs, over model files the host hands it. The native server wraps the same
//! pieces around its batching [`ModelServer`](crate::ModelServer) (`host/src/models.rs`).
//!
//! ```
//! use std::sync::Arc;
//! use isl_models::service::RegistryRuntime;
//! use isl_models::{ModelLimits, Registry, RegistryConfig};
//! use isl_service::{Config, Request, Service, SystemClock};
//!
//! let registry = Registry::new(RegistryConfig::new("/nonexistent/models"));
//! let runtime = Arc::new(RegistryRuntime::new(registry, ModelLimits::default()));
//! let service = Service::builder(Config::default(), Arc::new(SystemClock::new())).models(Some(runtime)).build();
//! // The forecaster is built in; the embedding model is not in that directory: 503 naming the fetch.
//! let body = serde_json::json!({"timestamps": (0..48).map(|h| 3600 * h).collect::<Vec<_>>(),
//!                               "values": (0..48).map(|h| (h % 24) as f64).collect::<Vec<_>>(), "horizon": 6});
//! let ok = service.handle(Request::post_json("/v1/forecast", serde_json::to_vec(&body).unwrap()));
//! assert_eq!(ok.status, 200);
//! let missing = service.handle(Request::post_json("/v1/embed", br#"{"texts":["hello"]}"#.to_vec()));
//! assert_eq!(missing.status, 503);
//! assert!(String::from_utf8_lossy(&missing.body).contains("model_missing"));
//! ```

use std::time::Duration;

use isl_service::{ModelAnswer, ModelFailure, ModelRoute, ModelRuntime};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::api::{
    EmbedRequest, ForecastRequest, ForecastResponse, ModelLimits, NliPair, NliRequest, VerifyRequest, VerifyResponse,
};
use crate::error::{ErrorClass, ModelError};
use crate::manifest::ModelKind;
use crate::registry::Registry;

/// Everything besides a request that shapes a model answer: the engine version, the
/// architecture the models run on (tract's kernels differ between x86_64, aarch64 and wasm32,
/// so answers can differ in the last bits between them), and every model file's pinned sha256.
/// A new model or a new build target changes every model ETag.
pub fn fingerprint(registry: &Registry) -> String {
    let mut fingerprint = format!("{}/{}", crate::ENGINE_VERSION, std::env::consts::ARCH);
    for spec in registry.specs() {
        fingerprint.push_str(&format!("\0{}", spec.name));
        for (file, f) in &spec.files {
            fingerprint.push_str(&format!(":{file}={}", f.sha256));
        }
    }
    fingerprint
}

/// The HTTP answer to a model error: 422 bad input, 503 model missing / corrupt / not loadable,
/// 429 batch queue full (with `Retry-After: 1`), 504 deadline, 500 engine fault; the error's
/// stable code, message and details.
pub fn failure(e: &ModelError) -> ModelFailure {
    let status = match e.class() {
        ErrorClass::BadInput => 422,
        ErrorClass::Unavailable => 503,
        ErrorClass::Overloaded => 429,
        ErrorClass::Deadline => 504,
        ErrorClass::Internal => 500,
    };
    let retry_after_secs = (e.class() == ErrorClass::Overloaded).then_some(1);
    ModelFailure { status, code: e.code(), message: e.to_string(), details: e.details(), retry_after_secs }
}

/// Decodes a route's request (or canonical request) from JSON; 422 when it does not fit.
pub fn decode<T: DeserializeOwned>(value: &Value) -> Result<T, ModelFailure> {
    T::deserialize(value).map_err(|e| ModelFailure::invalid_request(e.to_string()))
}

fn encode<T: Serialize>(value: &T) -> Result<Value, ModelFailure> {
    serde_json::to_value(value).map_err(|e| ModelFailure::invalid_request(e.to_string()))
}

/// A response body as JSON bytes (a 500 in the impossible case that it does not encode).
pub fn body<T: Serialize>(value: &T) -> Result<Vec<u8>, ModelFailure> {
    serde_json::to_vec(value).map_err(|e| ModelFailure {
        status: 500,
        code: "internal",
        message: format!("encoding: {e}"),
        details: json!({}),
        retry_after_secs: None,
    })
}

/// The canonical form of a model route's request: model names resolved (the default model of
/// each kind filled in), `top_k` filled in, NLI's `premises` + `hypotheses` turned into `pairs`;
/// so equal questions share one cache entry. Resolving a name loads nothing.
pub fn canonical(
    route: ModelRoute,
    request: Value,
    registry: &Registry,
    limits: &ModelLimits,
) -> Result<Value, ModelFailure> {
    let resolve = |name: Option<&str>, kind| registry.resolve_name(name, kind).map(Some).map_err(|e| failure(&e));
    match route {
        ModelRoute::Embed => {
            let mut r: EmbedRequest = decode(&request)?;
            r.model = resolve(r.model.as_deref(), ModelKind::Embedding)?;
            encode(&r)
        }
        ModelRoute::Nli => {
            let mut r: NliRequest = decode(&request)?;
            let pairs: Vec<NliPair> = crate::api::nli_pairs(&r)
                .map_err(|e| failure(&e))?
                .into_iter()
                .map(|(p, h)| NliPair { premise: p.to_string(), hypothesis: h.to_string() })
                .collect();
            r.pairs = pairs;
            r.premises = None;
            r.hypotheses = None;
            r.model = resolve(r.model.as_deref(), ModelKind::Nli)?;
            encode(&r)
        }
        ModelRoute::Verify => {
            let mut r: VerifyRequest = decode(&request)?;
            r.top_k = Some(r.top_k.unwrap_or(limits.default_top_k));
            r.embedding_model = resolve(r.embedding_model.as_deref(), ModelKind::Embedding)?;
            r.nli_model = resolve(r.nli_model.as_deref(), ModelKind::Nli)?;
            encode(&r)
        }
        ModelRoute::Forecast => {
            let mut r: ForecastRequest = decode(&request)?;
            r.model = resolve(r.model.as_deref(), ModelKind::Forecast)?;
            encode(&r)
        }
    }
}

/// `/v1/verify`'s stages for `Server-Timing`.
pub fn verify_stages(out: &VerifyResponse) -> Vec<(&'static str, f64)> {
    let t = &out.timings_ms;
    vec![("embed", t.embed), ("retrieve", t.retrieve), ("nli", t.nli), ("aggregate", t.aggregate)]
}

/// `/v1/forecast`'s stages for `Server-Timing`.
pub fn forecast_stages(out: &ForecastResponse) -> Vec<(&'static str, f64)> {
    let t = &out.timings_ms;
    vec![("parse", t.parse), ("features", t.features), ("model", t.model), ("inverse", t.inverse)]
}

/// The model routes answered from a [`Registry`] on the calling thread: each model is loaded
/// on first use and kept for the registry's life (in the edge component, one instance's life,
/// which is one request). No batching, no deadline inside a model call (the host's deadline
/// interrupts the instance), no named corpora.
pub struct RegistryRuntime {
    registry: Registry,
    limits: ModelLimits,
    fingerprint: String,
}

impl std::fmt::Debug for RegistryRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryRuntime").field("fingerprint", &self.fingerprint).finish_non_exhaustive()
    }
}

impl RegistryRuntime {
    /// The runtime over `registry`, checking requests against `limits`.
    pub fn new(registry: Registry, limits: ModelLimits) -> Self {
        let fingerprint = fingerprint(&registry);
        RegistryRuntime { registry, limits, fingerprint }
    }

    /// The registry.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }
}

impl ModelRuntime for RegistryRuntime {
    fn fingerprint(&self) -> String {
        self.fingerprint.clone()
    }

    fn canonical(&self, route: ModelRoute, request: Value) -> Result<Value, ModelFailure> {
        canonical(route, request, &self.registry, &self.limits)
    }

    fn answer(&self, route: ModelRoute, canonical: &Value, _budget: Duration) -> Result<ModelAnswer, ModelFailure> {
        let fail = |e: ModelError| failure(&e);
        let (registry, limits) = (&self.registry, &self.limits);
        match route {
            ModelRoute::Embed => {
                let out = crate::api::embed(registry, &decode(canonical)?, limits).map_err(fail)?;
                Ok(ModelAnswer { body: body(&out)?, stages: Vec::new() })
            }
            ModelRoute::Nli => {
                let out = crate::api::nli(registry, &decode(canonical)?, limits).map_err(fail)?;
                Ok(ModelAnswer { body: body(&out)?, stages: Vec::new() })
            }
            ModelRoute::Verify => {
                let out = crate::api::verify(registry, &decode(canonical)?, limits, None).map_err(fail)?;
                Ok(ModelAnswer { body: body(&out)?, stages: verify_stages(&out) })
            }
            ModelRoute::Forecast => {
                let out = crate::api::forecast(registry, &decode(canonical)?, limits).map_err(fail)?;
                Ok(ModelAnswer { body: body(&out)?, stages: forecast_stages(&out) })
            }
        }
    }

    fn health(&self) -> Value {
        json!({
            "dir": self.registry.config().dir.display().to_string(),
            "models": self.registry.status(),
        })
    }

    fn ready(&self) -> bool {
        true
    }
}

//! Model routes — `/v1/embed`, `/v1/nli`, `/v1/verify`, `/v1/forecast`. The service decodes,
//! limits, caches and tags them like every other route; the models themselves run in a
//! [`ModelRuntime`] the host attaches (the native server's isl-models over tract), so the
//! service, and everything built from it for wasm32, stays free of the inference engine.
//! Without a runtime the routes exist and answer 503 `models_unavailable`.
//!
//! The runtime checks and canonicalises a request (defaults filled in, so equal questions share
//! a cache entry), then answers it within the request's remaining time budget. Its
//! [fingerprint](ModelRuntime::fingerprint) (model files and engine version) is part of every
//! model answer's cache key and ETag.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::clock::Clock;
use crate::config::Config;
use crate::endpoint::{ComputeContext, Computed, Prepared, Route};
use crate::error::ServiceError;

/// One of the model routes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ModelRoute {
    /// `/v1/embed`: texts → unit embeddings.
    Embed,
    /// `/v1/nli`: (premise, hypothesis) pairs → label probabilities.
    Nli,
    /// `/v1/verify`: claims + evidence → verdicts.
    Verify,
    /// `/v1/forecast`: a series → the next values.
    Forecast,
}

impl ModelRoute {
    /// Every model route, in route-table order.
    pub const ALL: [ModelRoute; 4] = [ModelRoute::Embed, ModelRoute::Nli, ModelRoute::Verify, ModelRoute::Forecast];

    /// The route path.
    pub fn path(self) -> &'static str {
        match self {
            ModelRoute::Embed => "/v1/embed",
            ModelRoute::Nli => "/v1/nli",
            ModelRoute::Verify => "/v1/verify",
            ModelRoute::Forecast => "/v1/forecast",
        }
    }
}

/// Why a model request failed, as the runtime classifies it: the HTTP status (422 bad input,
/// 429 batch queue full, 503 model missing / loading / corrupt, 504 deadline, 500 engine fault),
/// a stable code, a message and details for the JSON error body.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelFailure {
    /// HTTP status.
    pub status: u16,
    /// Stable machine-readable code (`error.code`).
    pub code: &'static str,
    /// Human-readable message (`error.message`).
    pub message: String,
    /// Structured details (`error.details`).
    pub details: Value,
    /// `Retry-After` in seconds (429 and 503 while a model is fetched or loaded).
    pub retry_after_secs: Option<u32>,
}

impl ModelFailure {
    /// A 422 `invalid_request` (the request does not fit the route's schema).
    pub fn invalid_request(message: impl Into<String>) -> Self {
        ModelFailure {
            status: 422,
            code: "invalid_request",
            message: message.into(),
            details: json!({}),
            retry_after_secs: None,
        }
    }

    /// The answer of a service without a model runtime.
    pub fn unavailable() -> Self {
        ModelFailure {
            status: 503,
            code: "models_unavailable",
            message: "this build runs no models (the edge component and the browser build carry no inference \
                      engine): the native server `isl serve` answers the model routes"
                .into(),
            details: json!({}),
            retry_after_secs: None,
        }
    }
}

/// An answer from the runtime.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelAnswer {
    /// The JSON response body.
    pub body: Vec<u8>,
    /// Stage timings in milliseconds (e.g. `embed`, `retrieve`, `nli`, `aggregate`), added to
    /// `Server-Timing`.
    pub stages: Vec<(&'static str, f64)>,
}

/// The models a host attaches to the service. Implementations must be safe to share across
/// threads; `answer` may block (it runs on the thread that handles the request).
pub trait ModelRuntime: Send + Sync {
    /// Identifies everything besides the request that shapes an answer (engine version, model
    /// files' sha256); part of the cache key and ETag of every model answer.
    fn fingerprint(&self) -> String;
    /// Checks a request against the route's schema and returns its canonical form (defaults
    /// filled in); 422 failures for requests that do not fit.
    fn canonical(&self, route: ModelRoute, request: Value) -> Result<Value, ModelFailure>;
    /// Answers a canonical request, taking at most about `budget`.
    fn answer(&self, route: ModelRoute, canonical: &Value, budget: Duration) -> Result<ModelAnswer, ModelFailure>;
    /// The models' state for `/health` (loaded, warming up, fetching, batcher counters).
    fn health(&self) -> Value;
    /// Whether the runtime is ready (false while a requested warm-up runs).
    fn ready(&self) -> bool;
}

/// A model route in the route table.
pub(crate) struct ModelEndpoint {
    pub route: ModelRoute,
    pub runtime: Option<Arc<dyn ModelRuntime>>,
}

struct PreparedModel<'r> {
    runtime: &'r dyn ModelRuntime,
    route: ModelRoute,
    canonical: Value,
    bytes: Vec<u8>,
}

impl Route for ModelEndpoint {
    fn path(&self) -> &'static str {
        self.route.path()
    }

    fn prepare<'s>(&'s self, json: &str, _config: &Config) -> Result<Box<dyn Prepared + 's>, ServiceError> {
        let value: Value = serde_json::from_str(json).map_err(|e| ServiceError::from_json_error(&e, json))?;
        let runtime = self.runtime.as_deref().ok_or_else(|| ServiceError::Model(ModelFailure::unavailable()))?;
        let canonical = runtime.canonical(self.route, value).map_err(ServiceError::Model)?;
        let mut bytes = runtime.fingerprint().into_bytes();
        bytes.push(0);
        let encoded = serde_json::to_vec(&canonical).map_err(|e| ServiceError::Internal(format!("canonical: {e}")))?;
        bytes.extend_from_slice(&encoded);
        Ok(Box::new(PreparedModel { runtime, route: self.route, canonical, bytes }))
    }
}

impl Prepared for PreparedModel<'_> {
    fn canonical_bytes(&self) -> &[u8] {
        &self.bytes
    }

    fn run(&self, ctx: &ComputeContext<'_>, clock: &dyn Clock) -> Result<Computed, ServiceError> {
        let t0 = clock.now_nanos();
        let budget = Duration::from_nanos(ctx.deadline_nanos.saturating_sub(t0));
        let answer = self.runtime.answer(self.route, &self.canonical, budget).map_err(ServiceError::Model)?;
        let t1 = clock.now_nanos();
        Ok(Computed { body: answer.body, compute_ns: t1.saturating_sub(t0), encode_ns: 0, stages: answer.stages })
    }
}

/// A part of the service that the host runs itself (the native server's language models):
/// the service shows it in `/health` under `name` and appends its metrics to `/metrics`.
pub trait HostExtension: Send + Sync {
    /// The key of its part of the `/health` body.
    fn name(&self) -> &'static str;
    /// Whether it is ready to answer (false while a requested warm-up runs: `/health` is 503).
    fn ready(&self) -> bool;
    /// Its part of the `/health` body.
    fn health(&self) -> serde_json::Value;
    /// Prometheus text appended to `/metrics` (each line ending in a newline).
    fn metrics_text(&self) -> String;
}

//! ONNX models for isl, run with tract: sentence embeddings, natural-language inference, claim
//! verification and forecasting, behind a registry that loads each model once and a dynamic
//! batcher that merges concurrent requests.
//!
//! ```
//! use isl_models::prelude::*;
//!
//! // The forecaster is built in (models/forecast/forecast.onnx); the embedding and NLI models
//! // are fetched by scripts/fetch-models.sh into the models directory.
//! let registry = Registry::new(RegistryConfig::new(default_models_dir()));
//! let req: ForecastRequest = serde_json::from_value(serde_json::json!({
//!     "timestamps": (0..72).map(|h| 1_717_200_000 + 3600 * h).collect::<Vec<_>>(),
//!     "values": (0..72).map(|h| 10.0 + (h as f64 * std::f64::consts::PI / 12.0).sin()).collect::<Vec<_>>(),
//!     "horizon": 30,
//! })).unwrap();
//! let answer = isl_models::api::forecast(&registry, &req, &ModelLimits::default()).unwrap();
//! assert_eq!(answer.forecast.len(), 30);
//! assert_eq!(answer.timestamps[0], Timestamp::Seconds(1_717_200_000.0 + 3600.0 * 72.0));
//! // A daily cycle between 9 and 11 stays roughly there.
//! assert!(answer.forecast.iter().all(|v| (8.0..12.0).contains(v)));
//!
//! // Bad input is an error with a stable code, never a panic.
//! let short = ForecastRequest { timestamps: req.timestamps[..10].to_vec(), values: req.values[..10].to_vec(), ..req };
//! let err = isl_models::api::forecast(&registry, &short, &ModelLimits::default()).unwrap_err();
//! assert_eq!(err.code(), "series_too_short");
//!
//! // Without fetched models the embedding route answers 503-class errors naming the command.
//! let empty = Registry::new(RegistryConfig::new("/nonexistent/models"));
//! let err = empty.embedding(None).unwrap_err();
//! assert_eq!((err.code(), err.class()), ("model_missing", ErrorClass::Unavailable));
//! assert!(err.to_string().contains("scripts/fetch-models.sh"));
//! ```
//!
//! Layout: [`registry`] (files, sha256, loading, state), [`tokenize`] (Hugging Face
//! tokenizers, truncation, padding to the longest), [`runtime`] (tract plans), the models
//! ([`embed`], [`nli`], [`forecast`]), [`verify`] (retrieval + NLI + verdict), [`api`]
//! (request/response types and the route functions), [`batcher`] (dynamic batching, native
//! only), [`serving`] (the routes as a server runs them: batchers per model, corpora; native only),
//! `service` (feature `service`: isl-service's model runtime — canonical requests, error
//! statuses, fingerprint, and a runtime over a bare registry for the edge component), [`tune`]
//! (batch-size sweeps, native only). The models, their packages, sha256s and licences are in `models/manifest.json`.

#![warn(missing_docs)]

pub mod api;
#[cfg(not(target_family = "wasm"))]
pub mod batcher;
pub mod embed;
pub mod error;
#[cfg(not(target_family = "wasm"))]
pub mod fetch;
pub mod forecast;
pub mod manifest;
pub mod nli;
pub mod registry;
pub mod runtime;
#[cfg(feature = "service")]
pub mod service;
#[cfg(not(target_family = "wasm"))]
pub mod serving;
pub mod timing;
pub mod tokenize;
#[cfg(not(target_family = "wasm"))]
pub mod tune;
pub mod verify;

pub use api::{
    EmbedRequest, EmbedResponse, ForecastRequest, ForecastResponse, ModelLimits, NliPair, NliRequest, NliResponse,
    NliResult, VerifyRequest, VerifyResponse,
};
#[cfg(not(target_family = "wasm"))]
pub use batcher::{Batcher, BatcherConfig, BatcherStats, embedding_batcher, nli_batcher};
pub use embed::{EmbeddingModel, Embeddings};
pub use error::{ErrorClass, ModelError};
pub use forecast::{Forecast, ForecastModel, ForecastTimings, Timestamp};
pub use manifest::{FETCH_COMMAND, ModelKind, ModelSpec};
pub use nli::{NliLabel, NliModel, NliOutput, NliScores};
pub use registry::{LoadInfo, LoadedModel, ModelStatus, Registry, RegistryConfig, default_models_dir};
pub use runtime::{OnnxModel, PlanMode};
#[cfg(not(target_family = "wasm"))]
pub use serving::{BatcherReport, ModelServer};
pub use tokenize::{EncodedBatch, Overflow, TextTokenizer};
/// A tokenised text (what [`embedding_batcher`] takes).
pub use tokenizers::Encoding;
pub use verify::{ClaimResult, Corpus, EvidenceResult, Verdict, VerifyOptions, VerifyOutput, VerifyTimings};

/// Version of the model engine; part of every cache key and ETag, so bump it whenever an
/// answer could change (a model file's sha256 changing changes answers too).
pub const ENGINE_VERSION: &str = concat!("isl-models/", env!("CARGO_PKG_VERSION"));

/// What users of the crate need, in one import.
pub mod prelude {
    pub use crate::api::{EmbedRequest, ForecastRequest, ModelLimits, NliRequest, VerifyRequest};
    pub use crate::{
        ErrorClass, ModelError, Overflow, Registry, RegistryConfig, Timestamp, Verdict, default_models_dir,
    };
}

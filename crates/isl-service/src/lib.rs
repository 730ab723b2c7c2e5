//! isl's HTTP contract without a transport: [`Service::handle`] turns a [`Request`] into a
//! [`Response`]. Routing, JSON decoding, canonicalisation, limits, errors, the response cache,
//! ETags and metrics all live here; transports (the native host, the edge component, the
//! browser) are thin adapters. No threads, no I/O, no clock of its own (see [`Clock`]): it
//! builds for native, wasm32-wasip2 and wasm32-unknown-unknown alike.
//!
//! ```
//! use std::sync::Arc;
//! use isl_service::{Config, ManualClock, Request, Service};
//!
//! let service = Service::new(Config::default(), Arc::new(ManualClock::new(0)));
//! let body = r#"{"dag": {"edges": [["Z","X"], ["Z","Y"], ["X","Y"]]}, "treatment": "X", "outcome": "Y"}"#;
//! let resp = service.handle(Request::post_json("/v1/causal/validate", body));
//! assert_eq!(resp.status, 200);
//! assert_eq!(resp.header("x-cache"), Some("miss"));
//! let answer: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
//! assert_eq!(answer["identification"]["backdoor_sets"], serde_json::json!([["Z"]]));
//! ```

#![warn(missing_docs)]

pub mod accel;
pub mod batch;
pub mod cache;
pub mod clock;
pub mod config;
pub mod dag_cache;
pub mod endpoint;
pub mod error;
pub mod http;
pub mod metrics;
pub mod models;
pub mod openapi;
pub mod query;
pub mod router;
pub mod service;

pub use accel::{AccelOutcome, McAccelerator};
pub use cache::CacheSnapshot;
#[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
pub use clock::SystemClock;
pub use clock::{Clock, ManualClock};
pub use config::{CacheConfig, CacheControl, Config};
pub use endpoint::{ComputeContext, Endpoint};
pub use error::ServiceError;
pub use http::{Method, Request, Response};
pub use models::{HostExtension, ModelAnswer, ModelFailure, ModelRoute, ModelRuntime};
pub use openapi::OPENAPI_JSON;
pub use query::encode_query;
pub use service::{SERVICE_VERSION, Service, ServiceBuilder};

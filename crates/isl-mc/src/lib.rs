//! Structural causal models and Monte Carlo for isl. Pure computation, no I/O, no clocks, no
//! global state; builds for native and wasm32 targets alike and gives the same bits on each.
//!
//! A model moves through typed stages: [`ModelSpec`] (the JSON as sent) → [`CheckedModel`]
//! (validated, acyclic, topologically sorted, random slots numbered) → [`Program`] (one question
//! compiled to flat column instructions) → [`Backend::run`] (samples) → statistics.
//!
//! ```
//! use isl_mc::prelude::*;
//!
//! // Price is uncertain; demand falls with price by an uncertain slope; revenue is their product.
//! let spec: ModelSpec = serde_json::from_str(r#"{"nodes": [
//!     {"name": "Price",   "noise": {"dist": "normal", "mean": 10, "std": 1}},
//!     {"name": "Demand",  "intercept": 100,
//!                         "parents": {"Price": {"dist": "normal", "mean": -2.0, "std": 0.3}},
//!                         "noise": {"dist": "normal", "mean": 0, "std": 5}},
//!     {"name": "Revenue", "expr": "Price * Demand"}
//! ]}"#).unwrap();
//! let opts = McOptions::default();
//!
//! // Check: names, parameters, expressions, cycles; nodes sorted, random slots numbered.
//! let model = CheckedModel::new(&spec, &opts).unwrap();
//! let labels: Vec<&str> = model.slots().iter().map(|s| s.label.as_str()).collect();
//! assert_eq!(labels, ["Demand<-Price", "Demand.noise", "Price.noise"]);
//!
//! // Compile one question: Revenue under do(Price = 12).
//! let query = Query {
//!     outcome: model.id("Revenue").unwrap(),
//!     intervention: vec![(model.id("Price").unwrap(), 12.0)],
//!     evidence: vec![],
//! };
//! let program = Program::compile(&model, &query).unwrap();
//! assert!(!program.slots[2].used); // Price's noise is cut off by the intervention
//!
//! // Run 10 000 samples on the CPU: sample i depends only on (seed, i, slot).
//! let run = RunSpec { seed: 7, stream: 0, start: 0, count: 10_000, slots: &[], block_size: 4096 };
//! let samples = CpuBackend::default().run(&program, &run, &|| false).unwrap();
//! let mean = samples.outcome.iter().sum::<f64>() / 10_000.0;
//! assert!((mean - 12.0 * (100.0 - 2.0 * 12.0)).abs() < 5.0); // E = 12·(100 − 24) = 912
//!
//! // Or the whole route in one call: summary statistics, reproducible from the seed.
//! let req: CounterfactualRequest = serde_json::from_value(serde_json::json!({
//!     "model": spec, "intervention": {"Price": 12}, "outcome": "Revenue",
//!     "samples": 20000, "seed": 7, "threshold": 1000
//! })).unwrap();
//! let answer = counterfactual(&req, &opts, &CpuBackend::default(), &|| false).unwrap();
//! assert!((answer.mean - 912.0).abs() < 4.0 * answer.std_error);
//! assert_eq!(answer.quantiles.len(), 5);
//! assert!(answer.probability_above.unwrap() < 0.2);
//! ```
//!
//! Randomness is Philox4x32-10 keyed by the seed and indexed by (sample, slot group, stream)
//! ([`rng`]); standard normals are Φ⁻¹ of uniforms (AS 241), and every belief and noise term is a
//! transform of its slot's standard variate ([`dist`]). Statistics are summed over fixed blocks
//! combined in order ([`stats`]), so thread count and block scheduling never change an answer.
//! Estimators: plain and adaptive Monte Carlo, counterfactuals by likelihood weighting,
//! importance sampling for tail probabilities ([`counterfactual`]), tornado swings and Sobol
//! indices ([`sensitivity`]).

#![warn(missing_docs)]

pub mod api;
pub mod backend;
pub mod dist;
pub mod error;
mod estimate;
pub mod estimator;
pub mod expr;
pub mod generate;
pub mod model;
pub mod program;
pub mod rng;
mod sensitivity;
pub mod stats;

pub use api::{
    BackendChoice, CounterfactualRequest, CounterfactualResponse, Driver, McOptions, PreparedCounterfactual,
    SensitivityRequest, SensitivityResponse, counterfactual, counterfactual_with, sensitivity,
};
pub use backend::{Backend, CpuBackend, RunSpec, Samples, SlotSetting};
pub use dist::{Dist, VariateKind};
pub use error::McError;
pub use estimator::{Estimator, Exceedance, MainRun, SampleEstimator, TailSums};
pub use model::{CheckedModel, ModelSpec, NodeId, NodeSpec, Param, SlotRole};
pub use program::{Instr, Operand, Program, Query};

/// Version of the Monte Carlo engine; part of every cache key and ETag, so bump it whenever an
/// answer could change.
pub const ENGINE_VERSION: &str = concat!("isl-mc/", env!("CARGO_PKG_VERSION"));

/// What users of the crate need, in one import.
pub mod prelude {
    pub use crate::api::{CounterfactualRequest, McOptions, SensitivityRequest, counterfactual, sensitivity};
    pub use crate::{Backend, CheckedModel, CpuBackend, McError, ModelSpec, Program, Query, RunSpec};
}

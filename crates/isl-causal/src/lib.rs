//! Causal DAGs for isl: parse, check, and answer identification questions. Pure computation, no
//! I/O, no clocks, no global state; builds for native and wasm32 targets alike.
//!
//! A graph moves through typed stages: [`DagSpec`] (the JSON as sent) → [`Graph`] (names
//! resolved, adjacency built, maybe cyclic) → [`Dag`] (proved acyclic) → queries.
//!
//! ```
//! use isl_causal::prelude::*;
//!
//! // The front-door graph: X -> M -> Y, with a latent confounder U of X and Y.
//! let spec: DagSpec = serde_json::from_str(
//!     r#"{"edges": [["U","X"], ["U","Y"], ["X","M"], ["M","Y"]], "latent": ["U"]}"#,
//! ).unwrap();
//! let dag = Dag::from_spec(&spec.canonical(), &GraphLimits::default()).unwrap();
//! let (x, y, m) = (dag.id("X").unwrap(), dag.id("Y").unwrap(), dag.id("M").unwrap());
//!
//! // d-separation by reachability: X and Y are connected through U and through M.
//! assert!(!dag.d_separated(&[x], &[y], &[]));
//!
//! // No back-door set exists (U is latent), but {M} is a front-door set.
//! let backdoor = dag.minimal_backdoor_sets(&[x], &[y], 100, &|| false).unwrap();
//! assert!(backdoor.sets.is_empty());
//! assert_eq!(dag.frontdoor_check(&[x], &[y], &[m]), None);
//!
//! // The whole validate route in one call.
//! let req: ValidateRequest = serde_json::from_value(serde_json::json!({
//!     "dag": spec, "treatment": "X", "outcome": "Y"
//! })).unwrap();
//! let opts = CausalOptions::default();
//! let answer = validate(&req.canonical(&opts), &opts, &|| false).unwrap();
//! let id = answer.identification.unwrap();
//! assert_eq!(id.strategy.as_deref(), Some("frontdoor"));
//! assert_eq!(id.frontdoor_sets, vec![vec!["M".to_string()]]);
//! ```
//!
//! Algorithms: d-separation is the linear-time reachability ("Bayes-ball") of [`dsep`]; minimal
//! back-door sets are listed with polynomial delay by the separator search of [`backdoor`]
//! (van der Zander, Liśkiewicz & Textor, AIJ 2019); the front-door criterion and instruments are
//! in [`frontdoor`].

#![warn(missing_docs)]

pub mod api;
pub mod backdoor;
pub mod dsep;
pub mod error;
pub mod frontdoor;
pub mod generate;
pub mod graph;

pub use api::{
    BackdoorRequest, CausalOptions, CriterionResponse, DSeparationQuery, DSeparationRequest, DSeparationResponse,
    FrontdoorRequest, Identification, NodeNames, ValidateRequest, ValidateResponse,
};
pub use backdoor::{BackdoorVerdict, SetList};
pub use dsep::DSeparation;
pub use error::CausalError;
pub use frontdoor::FrontdoorFailure;
pub use graph::{CheckedGraph, Dag, DagSpec, Graph, GraphLimits, NodeId};

/// Version of the causal engine; part of every cache key and ETag, so bump it whenever an
/// answer could change.
pub const ENGINE_VERSION: &str = concat!("isl-causal/", env!("CARGO_PKG_VERSION"));

/// What users of the crate need, in one import.
pub mod prelude {
    pub use crate::api::{CausalOptions, ValidateRequest, backdoor, d_separation, frontdoor, validate};
    pub use crate::{CausalError, DSeparation, Dag, DagSpec, Graph, GraphLimits, NodeId};
}

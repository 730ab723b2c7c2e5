//! Preference elicitation for isl: learn how a decision-maker weighs attributes from a few
//! pairwise questions, and recommend an option. Pure computation, no I/O, no clocks, no global
//! state; builds for native and wasm32 targets alike and gives the same bits on each.
//!
//! The decision-maker's utility is `u(x) = Σ_k w_k z_k(x)`: attributes normalised to [0, 1]
//! over their ranges (1 = best), unknown weights `w` on the simplex with a uniform prior.
//! Answers follow Bradley–Terry with ties ([`choice`]); the rationality λ (how noisy the answers
//! are) is fixed, or learned from the answers with `rationality_spread` > 0, so a consistent
//! decision-maker's answers sharpen the posterior as they should. The posterior is rebuilt from the prior
//! and every answer on each call — particles with importance weights, resampled and moved by
//! Metropolis–Hastings when their effective size drops ([`posterior`]) — so no state lives
//! anywhere and equal requests give equal answers. Questions are ranked by expected information
//! gain ([`eig`]) and kept diverse ([`questions`]); options are ranked by expected utility with
//! the probability of being best ([`recommend`]); contradictory answers are detected exactly
//! ([`consistency`]).
//!
//! ```
//! use isl_elicit::choice::{Choice, ChoiceModel};
//! use isl_elicit::posterior::{Evidence, SmcSettings, infer};
//!
//! // Two attributes; the decision-maker twice prefers the alternative better on the first.
//! let model = ChoiceModel::new(10.0, 0.5);
//! let mut answers = Evidence::new(2);
//! answers.push(&[0.6, -0.4], Choice::A);
//! answers.push(&[0.3, -0.5], Choice::A);
//! let settings = SmcSettings { particles: 4000, ess_threshold: 0.5, moves: 2, seed: 7 };
//! let posterior = infer(&model, &answers, &settings, &|| false).unwrap();
//! let mean = posterior.mean();
//! assert!(mean[0] > 0.5 && (mean[0] + mean[1] - 1.0).abs() < 1e-9);
//! ```

#![warn(missing_docs)]

pub mod api;
pub mod choice;
pub mod consistency;
pub mod eig;
pub mod error;
mod fastmath;
mod kernel;
mod par;
pub mod posterior;
pub mod questions;
pub mod recommend;
mod rng;
pub mod scm;
pub mod simulate;

pub use api::{
    Alternative, AnswerSpec, AttributeSpec, Better, ElicitOptions, NextRequest, NextResponse, OptionSpec,
    QuestionSource, next,
};
pub use choice::{Choice, ChoiceModel};
pub use error::ElicitError;
pub use posterior::{Evidence, Posterior, SmcSettings, infer};
pub use scm::{InterventionSpec, ScmOptions};

/// Version of the elicitation engine; part of every cache key and ETag, so bump it whenever an
/// answer could change.
pub const ENGINE_VERSION: &str = concat!("isl-elicit/", env!("CARGO_PKG_VERSION"));

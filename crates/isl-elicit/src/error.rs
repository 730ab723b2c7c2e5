//! The one error type of this crate.

use isl_mc::McError;
use serde_json::{Value, json};

/// Everything that can go wrong answering an elicitation request.
///
/// Every variant except [`ElicitError::Interrupted`] (the caller's stop signal) and a wrapped
/// non-input [`McError`] describes bad input; the service maps bad input to 422.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ElicitError {
    /// Fewer than two attributes: there is nothing to trade off.
    #[error("at least two attributes are needed; got {count}")]
    TooFewAttributes {
        /// Attributes in the request.
        count: usize,
    },
    /// A count over its configured limit (attributes, options, answers, particles, ...).
    #[error("{what} is {count}; the limit is {limit}")]
    OverLimit {
        /// What was counted.
        what: String,
        /// The count in the request.
        count: u64,
        /// The configured limit.
        limit: u64,
    },
    /// Two attributes, options or interventions with the same name.
    #[error("{what} '{name}' is given more than once")]
    DuplicateName {
        /// `attribute`, `option` or `intervention`.
        what: String,
        /// The repeated name.
        name: String,
    },
    /// An attribute range that is not `[lo, hi]` with finite `lo < hi`.
    #[error("attribute '{attribute}': {message}")]
    InvalidRange {
        /// The attribute.
        attribute: String,
        /// What is wrong, in words.
        message: String,
    },
    /// Names that are not attributes of the request.
    #[error("{field}: unknown attribute{} {}", if .names.len() == 1 { "" } else { "s" }, quote(.names))]
    UnknownAttributes {
        /// Where (`answers[3].a`, `options.Alpha`).
        field: String,
        /// The unknown names, sorted.
        names: Vec<String>,
    },
    /// Attributes an alternative leaves out.
    #[error("{field}: missing value{} for {}", if .names.len() == 1 { "" } else { "s" }, quote(.names))]
    MissingAttributes {
        /// Where.
        field: String,
        /// The missing attribute names, sorted.
        names: Vec<String>,
    },
    /// An answer naming an option the request does not have.
    #[error("{field}: no option named '{name}'")]
    UnknownOption {
        /// Where.
        field: String,
        /// The name.
        name: String,
    },
    /// A number that is NaN or infinite (or becomes so once normalised).
    #[error("{field}: the value must be finite")]
    NonFinite {
        /// Where.
        field: String,
    },
    /// A field with a value outside its domain.
    #[error("{field}: {message}")]
    InvalidRequest {
        /// The field.
        field: String,
        /// What is wrong, in words.
        message: String,
    },
    /// Options from a causal model failed in the Monte Carlo engine.
    #[error("scm: {0}")]
    Mc(#[from] McError),
    /// The caller's stop signal fired (deadline) before the answer was complete.
    #[error("the computation was interrupted before it finished")]
    Interrupted,
}

fn quote(names: &[String]) -> String {
    names.iter().map(|n| format!("'{n}'")).collect::<Vec<_>>().join(", ")
}

impl ElicitError {
    /// A stable machine-readable code, used as `error.code` in JSON.
    pub fn code(&self) -> &'static str {
        match self {
            ElicitError::TooFewAttributes { .. } => "too_few_attributes",
            ElicitError::OverLimit { .. } => "over_limit",
            ElicitError::DuplicateName { .. } => "duplicate_name",
            ElicitError::InvalidRange { .. } => "invalid_range",
            ElicitError::UnknownAttributes { .. } => "unknown_attribute",
            ElicitError::MissingAttributes { .. } => "missing_attribute",
            ElicitError::UnknownOption { .. } => "unknown_option",
            ElicitError::NonFinite { .. } => "non_finite",
            ElicitError::InvalidRequest { .. } => "invalid_request",
            ElicitError::Mc(e) => e.code(),
            ElicitError::Interrupted => "deadline_exceeded",
        }
    }

    /// Structured details for `error.details` in JSON.
    pub fn details(&self) -> Value {
        match self {
            ElicitError::TooFewAttributes { count } => json!({"count": count, "minimum": 2}),
            ElicitError::OverLimit { what, count, limit } => json!({"what": what, "count": count, "limit": limit}),
            ElicitError::DuplicateName { what, name } => json!({"what": what, "name": name}),
            ElicitError::InvalidRange { attribute, .. } => json!({"attribute": attribute}),
            ElicitError::UnknownAttributes { field, names } | ElicitError::MissingAttributes { field, names } => {
                json!({"field": field, "attributes": names})
            }
            ElicitError::UnknownOption { field, name } => json!({"field": field, "option": name}),
            ElicitError::NonFinite { field } | ElicitError::InvalidRequest { field, .. } => json!({"field": field}),
            ElicitError::Mc(e) => e.details(),
            ElicitError::Interrupted => json!({}),
        }
    }

    /// False for [`ElicitError::Interrupted`] and Monte Carlo failures that are not the
    /// request's fault; true otherwise.
    pub fn is_bad_input(&self) -> bool {
        match self {
            ElicitError::Interrupted => false,
            ElicitError::Mc(e) => e.is_bad_input(),
            _ => true,
        }
    }

    /// Whether the deadline stopped the computation (here or inside the Monte Carlo engine).
    pub fn is_interrupted(&self) -> bool {
        matches!(self, ElicitError::Interrupted | ElicitError::Mc(McError::Interrupted))
    }
}

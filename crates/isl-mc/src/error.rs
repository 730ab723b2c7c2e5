//! The one error type of this crate.

use serde_json::{Value, json};

/// Everything that can go wrong when checking a model or estimating with it.
///
/// Every variant except [`McError::Interrupted`] and [`McError::Backend`] describes bad input (the
/// service maps them to 422); `Interrupted` means the caller's stop signal fired (the service maps
/// it to 504); `Backend` means the machinery failed (a GPU lost or a dispatch refused), never the
/// request: the CPU backend never returns it, and a caller answers such a request on the CPU.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum McError {
    /// More nodes than the configured limit.
    #[error("the model has {count} nodes; the limit is {limit}")]
    TooManyNodes {
        /// Nodes in the request.
        count: usize,
        /// Configured limit.
        limit: usize,
    },
    /// A node name that is empty or only whitespace. (The name itself is reported, not a
    /// position: answers are computed on the canonical, name-sorted model.)
    #[error("node names must be non-empty and not only whitespace (got {name:?})")]
    EmptyName {
        /// The offending name, as given.
        name: String,
    },
    /// Two nodes with the same name.
    #[error("node '{name}' is defined more than once")]
    DuplicateName {
        /// The repeated name.
        name: String,
    },
    /// A node whose fields do not fit together (an expression node with `parents`, ...).
    #[error("node '{node}': {message}")]
    InvalidNode {
        /// The node.
        node: String,
        /// What is wrong, in words.
        message: String,
    },
    /// A distribution or number that is out of its domain (`std <= 0`, `low >= high`, NaN, ...).
    #[error("{at}: {message}")]
    InvalidParameter {
        /// Where: `Demand.noise`, `Demand.intercept`, `Demand<-Price`.
        at: String,
        /// What is wrong, in words.
        message: String,
    },
    /// An expression longer than the configured limit.
    #[error("the expression of node '{node}' is {length} bytes long; the limit is {limit}")]
    ExpressionTooLong {
        /// The node.
        node: String,
        /// Its length in bytes.
        length: usize,
        /// Configured limit.
        limit: usize,
    },
    /// An expression that does not parse.
    #[error("syntax error in the expression of node '{node}' at byte {position}: expected {expected}, found {found}")]
    ExpressionSyntax {
        /// The node.
        node: String,
        /// Byte offset of the offending token in the expression text.
        position: usize,
        /// What the parser expected there.
        expected: String,
        /// What it found (a quoted token, or `end of input`).
        found: String,
    },
    /// An expression nested deeper than the configured limit.
    #[error("the expression of node '{node}' is nested more than {limit} levels deep (at byte {position})")]
    ExpressionTooDeep {
        /// The node.
        node: String,
        /// Byte offset where the limit was crossed.
        position: usize,
        /// Configured limit.
        limit: usize,
    },
    /// Names that are not nodes of the model.
    #[error("{} not in the model ({field})", describe_names(.names))]
    UnknownNodes {
        /// Which request field named them (`parents`, `outcome`, `intervention`, `evidence`).
        field: String,
        /// The unknown names, sorted, without duplicates.
        names: Vec<String>,
    },
    /// The model has a directed cycle.
    #[error("the model has a directed cycle: {}", .cycle.join(" -> "))]
    Cyclic {
        /// One cycle as a closed walk starting (and ending) at its smallest name.
        cycle: Vec<String>,
    },
    /// A count over its configured limit (samples, quantiles, sensitivity evaluations).
    #[error("{what} is {count}; the limit is {limit}")]
    OverLimit {
        /// What was counted.
        what: String,
        /// The count in the request.
        count: u64,
        /// Configured limit.
        limit: u64,
    },
    /// A request field with a value outside its domain (`target_error <= 0`, a quantile outside
    /// (0, 1), a non-finite intervention value, ...).
    #[error("{field}: {message}")]
    InvalidRequest {
        /// The field.
        field: String,
        /// What is wrong, in words.
        message: String,
    },
    /// Evidence that the engine cannot condition on exactly.
    #[error("abduction is not exact because {reason}")]
    Abduction {
        /// The evidenced node concerned (empty when it concerns the evidence as a whole).
        node: String,
        /// Why, in words (completes "abduction is not exact because ...").
        reason: String,
    },
    /// Every sample of the outcome was NaN or infinite (division by zero, log of a negative, ...).
    #[error(
        "all {samples} samples of '{outcome}' are non-finite (NaN or infinite); check divisions, logarithms and powers in the model"
    )]
    AllNonFinite {
        /// The outcome node.
        outcome: String,
        /// Samples drawn.
        samples: u64,
    },
    /// The caller's stop signal fired (deadline) before the answer was complete.
    #[error("the computation was interrupted before it finished")]
    Interrupted,
    /// The backend failed for reasons of its own (a GPU device lost, a shader or dispatch the
    /// driver refused): not the request's fault, and worth retrying on another backend.
    #[error("the {backend} backend failed: {message}")]
    Backend {
        /// The backend's name (`gpu`).
        backend: String,
        /// What failed, in words.
        message: String,
    },
}

fn describe_names(names: &[String]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("'{n}'")).collect();
    match quoted.len() {
        1 => format!("node {} is", quoted[0]),
        _ => format!("nodes {} are", quoted.join(", ")),
    }
}

impl McError {
    /// A stable machine-readable code, used as `error.code` in JSON.
    pub fn code(&self) -> &'static str {
        match self {
            McError::TooManyNodes { .. } => "too_many_nodes",
            McError::EmptyName { .. } => "empty_node_name",
            McError::DuplicateName { .. } => "duplicate_node",
            McError::InvalidNode { .. } => "invalid_node",
            McError::InvalidParameter { .. } => "invalid_parameter",
            McError::ExpressionTooLong { .. } => "expression_too_long",
            McError::ExpressionSyntax { .. } => "expression_syntax",
            McError::ExpressionTooDeep { .. } => "expression_too_deep",
            McError::UnknownNodes { .. } => "unknown_node",
            McError::Cyclic { .. } => "cyclic_graph",
            McError::OverLimit { .. } => "over_limit",
            McError::InvalidRequest { .. } => "invalid_request",
            McError::Abduction { .. } => "abduction_not_exact",
            McError::AllNonFinite { .. } => "all_non_finite",
            McError::Interrupted => "deadline_exceeded",
            McError::Backend { .. } => "backend_failed",
        }
    }

    /// Structured details for `error.details` in JSON.
    pub fn details(&self) -> Value {
        match self {
            McError::TooManyNodes { count, limit } => json!({"count": count, "limit": limit}),
            McError::EmptyName { name } => json!({"name": name}),
            McError::DuplicateName { name } => json!({"node": name}),
            McError::InvalidNode { node, .. } => json!({"node": node}),
            McError::InvalidParameter { at, .. } => json!({"at": at}),
            McError::ExpressionTooLong { node, length, limit } => {
                json!({"node": node, "length": length, "limit": limit})
            }
            McError::ExpressionSyntax { node, position, expected, found } => {
                json!({"node": node, "position": position, "expected": expected, "found": found})
            }
            McError::ExpressionTooDeep { node, position, limit } => {
                json!({"node": node, "position": position, "limit": limit})
            }
            McError::UnknownNodes { field, names } => json!({"field": field, "nodes": names}),
            McError::Cyclic { cycle } => json!({"cycle": cycle}),
            McError::OverLimit { what, count, limit } => json!({"what": what, "count": count, "limit": limit}),
            McError::InvalidRequest { field, .. } => json!({"field": field}),
            McError::Abduction { node, .. } => json!({"node": node}),
            McError::AllNonFinite { outcome, samples } => json!({"outcome": outcome, "samples": samples}),
            McError::Interrupted => json!({}),
            McError::Backend { backend, .. } => json!({"backend": backend}),
        }
    }

    /// True for every variant except [`McError::Interrupted`] and [`McError::Backend`]: the
    /// request itself is at fault.
    pub fn is_bad_input(&self) -> bool {
        !matches!(self, McError::Interrupted | McError::Backend { .. })
    }
}

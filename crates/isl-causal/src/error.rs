//! The one error type of this crate.

use serde_json::{Value, json};

/// Everything that can go wrong when checking or querying a causal graph.
///
/// Every variant except [`CausalError::Interrupted`] describes bad input (the service maps them to
/// 422); `Interrupted` means the caller's stop signal fired (the service maps it to 504).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CausalError {
    /// Names that are not nodes of the graph.
    #[error("{} not in the graph", describe_names(.names))]
    UnknownNodes {
        /// Which request field named them (`treatment`, `latent`, `queries[3].x`, ...).
        field: String,
        /// The unknown names, sorted, without duplicates.
        names: Vec<String>,
    },
    /// A node name that is empty or contains only whitespace.
    #[error("node names must be non-empty (in {field})")]
    EmptyName {
        /// Which request field held it.
        field: String,
    },
    /// The graph has a directed cycle where a DAG is required.
    #[error("the graph has a directed cycle: {}", .cycle.join(" -> "))]
    Cyclic {
        /// One cycle as a closed walk: the first name is repeated at the end.
        cycle: Vec<String>,
    },
    /// More nodes than the configured limit.
    #[error("the graph has {count} nodes; the limit is {limit}")]
    TooManyNodes {
        /// Nodes in the request.
        count: usize,
        /// Configured limit.
        limit: usize,
    },
    /// More edges than the configured limit.
    #[error("the graph has {count} edges; the limit is {limit}")]
    TooManyEdges {
        /// Edges in the request.
        count: usize,
        /// Configured limit.
        limit: usize,
    },
    /// A set that must not be empty is empty.
    #[error("{field} must name at least one node")]
    EmptySet {
        /// The field.
        field: String,
    },
    /// Two sets that must be disjoint share nodes (e.g. treatment equal to outcome).
    #[error("{first} and {second} must be disjoint; both contain {}", .nodes.join(", "))]
    OverlappingSets {
        /// First field.
        first: String,
        /// Second field.
        second: String,
        /// The shared nodes, sorted.
        nodes: Vec<String>,
    },
    /// A count (queries, sets) over its configured limit.
    #[error("{what} is {count}; the limit is {limit}")]
    OverLimit {
        /// What was counted.
        what: String,
        /// The count in the request.
        count: usize,
        /// Configured limit.
        limit: usize,
    },
    /// A well-formed request that asks something inconsistent.
    #[error("{message}")]
    InvalidRequest {
        /// What is wrong, in words.
        message: String,
    },
    /// The caller's stop signal fired (deadline) before the answer was complete.
    #[error("the computation was interrupted before it finished")]
    Interrupted,
}

fn describe_names(names: &[String]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("'{n}'")).collect();
    match quoted.len() {
        1 => format!("node {} is", quoted[0]),
        _ => format!("nodes {} are", quoted.join(", ")),
    }
}

impl CausalError {
    /// A stable machine-readable code, used as `error.code` in JSON.
    pub fn code(&self) -> &'static str {
        match self {
            CausalError::UnknownNodes { .. } => "unknown_node",
            CausalError::EmptyName { .. } => "empty_node_name",
            CausalError::Cyclic { .. } => "cyclic_graph",
            CausalError::TooManyNodes { .. } => "too_many_nodes",
            CausalError::TooManyEdges { .. } => "too_many_edges",
            CausalError::EmptySet { .. } => "empty_set",
            CausalError::OverlappingSets { .. } => "overlapping_sets",
            CausalError::OverLimit { .. } => "over_limit",
            CausalError::InvalidRequest { .. } => "invalid_request",
            CausalError::Interrupted => "deadline_exceeded",
        }
    }

    /// Structured details for `error.details` in JSON.
    pub fn details(&self) -> Value {
        match self {
            CausalError::UnknownNodes { field, names } => json!({"field": field, "nodes": names}),
            CausalError::EmptyName { field } => json!({"field": field}),
            CausalError::Cyclic { cycle } => json!({"cycle": cycle}),
            CausalError::TooManyNodes { count, limit } | CausalError::TooManyEdges { count, limit } => {
                json!({"count": count, "limit": limit})
            }
            CausalError::EmptySet { field } => json!({"field": field}),
            CausalError::OverlappingSets { first, second, nodes } => {
                json!({"fields": [first, second], "nodes": nodes})
            }
            CausalError::OverLimit { what, count, limit } => json!({"what": what, "count": count, "limit": limit}),
            CausalError::InvalidRequest { .. } | CausalError::Interrupted => json!({}),
        }
    }
}

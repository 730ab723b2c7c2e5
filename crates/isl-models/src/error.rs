//! The one error type of this crate.

use serde_json::{Value, json};

/// What kind of failure an error is, for the service's mapping to HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Well-formed but invalid input (422).
    BadInput,
    /// A model is missing, corrupt, failed to load or is still loading (503).
    Unavailable,
    /// A batcher queue is full (429).
    Overloaded,
    /// The request's deadline passed before it was answered (504).
    Deadline,
    /// The inference engine failed on valid input: a bug, never the request's fault (500).
    Internal,
}

/// Everything that can go wrong when loading a model or answering a request with it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModelError {
    /// A list that must not be empty is empty (`texts`, `pairs`, `claims`, `evidence`, `values`).
    #[error("{field} must not be empty")]
    EmptyInput {
        /// The request field.
        field: String,
    },
    /// A text that is empty or only whitespace.
    #[error("{field}[{index}] is empty")]
    EmptyText {
        /// The request field.
        field: String,
        /// Position in the list.
        index: usize,
    },
    /// More items than the configured limit.
    #[error("{field} has {count} items; the limit is {limit}")]
    TooMany {
        /// The request field.
        field: String,
        /// Items in the request.
        count: usize,
        /// Configured limit.
        limit: usize,
    },
    /// A text longer than the model's token limit, when the request asked not to truncate
    /// (`"truncate": false`); by default long texts are cut and listed in `truncated`.
    #[error("{field}[{index}] has {tokens} tokens; {model} takes at most {limit}")]
    TextTooLong {
        /// The request field.
        field: String,
        /// Position in the list.
        index: usize,
        /// Tokens the text needs.
        tokens: usize,
        /// The model's limit.
        limit: usize,
        /// The model.
        model: String,
    },
    /// A text longer (in bytes) than the configured limit: refused before tokenising.
    #[error("{field}[{index}] is {bytes} bytes long; the limit is {limit}")]
    TextTooLarge {
        /// The request field.
        field: String,
        /// Position in the list.
        index: usize,
        /// Its length in bytes.
        bytes: usize,
        /// Configured limit.
        limit: usize,
    },
    /// Two lists that must have the same length do not.
    #[error("{first} has {first_len} items but {second} has {second_len}")]
    MismatchedLengths {
        /// First field.
        first: String,
        /// Its length.
        first_len: usize,
        /// Second field.
        second: String,
        /// Its length.
        second_len: usize,
    },
    /// A series shorter than the model's input window.
    #[error("the series has {len} points; the model needs at least {needed}")]
    SeriesTooShort {
        /// Points in the request.
        len: usize,
        /// The model's window.
        needed: usize,
    },
    /// Timestamps not in increasing order.
    #[error("timestamps[{index}] is earlier than timestamps[{}]", .index - 1)]
    UnsortedTimestamps {
        /// The first position out of order.
        index: usize,
    },
    /// Two equal timestamps.
    #[error("timestamps[{index}] repeats timestamps[{}]", .index - 1)]
    DuplicateTimestamps {
        /// The position of the repeat.
        index: usize,
    },
    /// A timestamp that is neither epoch seconds nor RFC 3339.
    #[error("timestamps[{index}] is not epoch seconds or an RFC 3339 date-time: {value}")]
    InvalidTimestamp {
        /// Position in the list.
        index: usize,
        /// The value as sent.
        value: String,
    },
    /// A NaN or infinite number.
    #[error("{field}[{index}] is not a finite number")]
    NonFinite {
        /// The request field.
        field: String,
        /// Position in the list.
        index: usize,
    },
    /// A horizon of zero or beyond what the model predicts in one call.
    #[error("horizon {horizon} is out of range; the model forecasts 1 to {max} steps")]
    InvalidHorizon {
        /// Requested horizon.
        horizon: usize,
        /// The model's maximum.
        max: usize,
    },
    /// A model name the registry does not know (or of the wrong kind for the route).
    #[error("unknown {kind} model '{name}'; known: {}", .known.join(", "))]
    UnknownModel {
        /// The name as sent.
        name: String,
        /// The kind the route needs (`embedding`, `nli`, `forecast`).
        kind: String,
        /// Names of the models of that kind.
        known: Vec<String>,
    },
    /// Another invalid parameter (e.g. `top_k` of 0).
    #[error("{message}")]
    InvalidRequest {
        /// What is wrong, in words.
        message: String,
    },
    /// Model files are not on disk: they have not been fetched.
    #[error("model '{model}' is not installed: {} missing in {dir}; run `{fetch_command}`", .files.join(", "))]
    ModelMissing {
        /// The model.
        model: String,
        /// The directory searched.
        dir: String,
        /// The files missing.
        files: Vec<String>,
        /// The command that fetches them.
        fetch_command: String,
    },
    /// A model file whose sha256 is not the pinned one.
    #[error(
        "model file {path} is corrupt or changed: sha256 {actual}, expected {expected}; delete it and run `{fetch_command}`"
    )]
    ModelCorrupt {
        /// The model.
        model: String,
        /// The file.
        path: String,
        /// The pinned sha256.
        expected: String,
        /// What the file hashes to.
        actual: String,
        /// The command that fetches it again.
        fetch_command: String,
    },
    /// tract or the tokenizer could not load a model file.
    #[error("model '{model}' failed to load: {message}")]
    ModelLoad {
        /// The model.
        model: String,
        /// The loader's message.
        message: String,
    },
    /// A model is being loaded by another caller (only with non-blocking access).
    #[error("model '{model}' is still loading")]
    NotReady {
        /// The model.
        model: String,
    },
    /// The batcher's queue is full.
    #[error("the queue of '{model}' is full ({capacity} requests waiting); retry later")]
    Overloaded {
        /// The model.
        model: String,
        /// Queue capacity.
        capacity: usize,
    },
    /// The request's deadline passed before it was answered.
    #[error("the deadline passed before the request was answered ({stage})")]
    DeadlineExceeded {
        /// Where the request was when the deadline passed.
        stage: String,
    },
    /// The inference engine failed on input that passed every check. Never expected.
    #[error("inference with '{model}' failed: {message}")]
    Inference {
        /// The model.
        model: String,
        /// The engine's message.
        message: String,
    },
}

impl ModelError {
    /// A stable machine-readable code, used as `error.code` in JSON.
    pub fn code(&self) -> &'static str {
        match self {
            ModelError::EmptyInput { .. } => "empty_input",
            ModelError::EmptyText { .. } => "empty_text",
            ModelError::TooMany { .. } => "too_many_items",
            ModelError::TextTooLong { .. } => "text_too_long",
            ModelError::TextTooLarge { .. } => "text_too_large",
            ModelError::MismatchedLengths { .. } => "mismatched_lengths",
            ModelError::SeriesTooShort { .. } => "series_too_short",
            ModelError::UnsortedTimestamps { .. } => "unsorted_timestamps",
            ModelError::DuplicateTimestamps { .. } => "duplicate_timestamps",
            ModelError::InvalidTimestamp { .. } => "invalid_timestamp",
            ModelError::NonFinite { .. } => "non_finite_value",
            ModelError::InvalidHorizon { .. } => "invalid_horizon",
            ModelError::UnknownModel { .. } => "unknown_model",
            ModelError::InvalidRequest { .. } => "invalid_request",
            ModelError::ModelMissing { .. } => "model_missing",
            ModelError::ModelCorrupt { .. } => "model_corrupt",
            ModelError::ModelLoad { .. } => "model_load_failed",
            ModelError::NotReady { .. } => "model_not_ready",
            ModelError::Overloaded { .. } => "overloaded",
            ModelError::DeadlineExceeded { .. } => "deadline_exceeded",
            ModelError::Inference { .. } => "inference_failed",
        }
    }

    /// Structured details for `error.details` in JSON.
    pub fn details(&self) -> Value {
        match self {
            ModelError::EmptyInput { field } => json!({"field": field}),
            ModelError::EmptyText { field, index } => json!({"field": field, "index": index}),
            ModelError::TooMany { field, count, limit } => json!({"field": field, "count": count, "limit": limit}),
            ModelError::TextTooLong { field, index, tokens, limit, model } => {
                json!({"field": field, "index": index, "tokens": tokens, "limit": limit, "model": model})
            }
            ModelError::TextTooLarge { field, index, bytes, limit } => {
                json!({"field": field, "index": index, "bytes": bytes, "limit": limit})
            }
            ModelError::MismatchedLengths { first, first_len, second, second_len } => {
                json!({"fields": [first, second], "lengths": [first_len, second_len]})
            }
            ModelError::SeriesTooShort { len, needed } => json!({"length": len, "needed": needed}),
            ModelError::UnsortedTimestamps { index } | ModelError::DuplicateTimestamps { index } => {
                json!({"index": index})
            }
            ModelError::InvalidTimestamp { index, value } => json!({"index": index, "value": value}),
            ModelError::NonFinite { field, index } => json!({"field": field, "index": index}),
            ModelError::InvalidHorizon { horizon, max } => json!({"horizon": horizon, "max": max}),
            ModelError::UnknownModel { name, kind, known } => json!({"model": name, "kind": kind, "known": known}),
            ModelError::InvalidRequest { .. } => json!({}),
            ModelError::ModelMissing { model, dir, files, fetch_command } => {
                json!({"model": model, "dir": dir, "files": files, "fetch_command": fetch_command})
            }
            ModelError::ModelCorrupt { model, path, expected, actual, fetch_command } => json!({
                "model": model, "path": path, "expected_sha256": expected, "actual_sha256": actual,
                "fetch_command": fetch_command
            }),
            ModelError::ModelLoad { model, .. } | ModelError::NotReady { model } => json!({"model": model}),
            ModelError::Overloaded { model, capacity } => json!({"model": model, "capacity": capacity}),
            ModelError::DeadlineExceeded { stage } => json!({"stage": stage}),
            ModelError::Inference { model, .. } => json!({"model": model}),
        }
    }

    /// The kind of failure: how the service should answer it.
    pub fn class(&self) -> ErrorClass {
        match self {
            ModelError::ModelMissing { .. }
            | ModelError::ModelCorrupt { .. }
            | ModelError::ModelLoad { .. }
            | ModelError::NotReady { .. } => ErrorClass::Unavailable,
            ModelError::Overloaded { .. } => ErrorClass::Overloaded,
            ModelError::DeadlineExceeded { .. } => ErrorClass::Deadline,
            ModelError::Inference { .. } => ErrorClass::Internal,
            _ => ErrorClass::BadInput,
        }
    }

    /// Whether the request itself is at fault (the service answers 422).
    pub fn is_bad_input(&self) -> bool {
        self.class() == ErrorClass::BadInput
    }

    pub(crate) fn inference(model: &str, err: impl std::fmt::Display) -> Self {
        ModelError::Inference { model: model.to_string(), message: format!("{err:#}") }
    }

    pub(crate) fn load(model: &str, err: impl std::fmt::Display) -> Self {
        ModelError::ModelLoad { model: model.to_string(), message: format!("{err:#}") }
    }
}

//! The service's error type and the one place errors become HTTP status codes and JSON.

use isl_causal::CausalError;
use isl_elicit::ElicitError;
use isl_mc::McError;
use serde_json::{Value, json};

use crate::http::Response;
use crate::models::ModelFailure;

/// Everything a request can fail with. [`ServiceError::to_response`] maps each to a status and
/// the JSON body `{"error": {"code", "message", "details"}}`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ServiceError {
    /// The body (or decoded `q`) is not valid JSON.
    #[error("malformed JSON: {message}")]
    MalformedJson {
        /// The parser's message.
        message: String,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
    },
    /// `q` is not base64url.
    #[error("the q parameter is not valid base64url: {message}")]
    InvalidBase64 {
        /// The decoder's message.
        message: String,
    },
    /// A GET on a compute route without `q`.
    #[error("GET needs the request as unpadded base64url JSON in the q parameter")]
    MissingQuery,
    /// The body is not UTF-8.
    #[error("the request body is not valid UTF-8 (at byte {offset})")]
    InvalidUtf8 {
        /// Offset of the first invalid byte.
        offset: usize,
    },
    /// No route has this path.
    #[error("no route {path}")]
    NotFound {
        /// The path requested.
        path: String,
    },
    /// The route exists but not for this method.
    #[error("method {method} is not allowed on {path}; allowed: {allowed}")]
    MethodNotAllowed {
        /// The method used.
        method: String,
        /// The path.
        path: String,
        /// The `Allow` header value.
        allowed: &'static str,
    },
    /// The body is over the configured limit.
    #[error("the request body is {size} bytes; the limit is {limit}")]
    PayloadTooLarge {
        /// Body size in bytes (as declared or as read so far).
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The content type is not JSON.
    #[error("the content type must be application/json, not {}", .content_type.as_deref().unwrap_or("(none)"))]
    UnsupportedMediaType {
        /// The content type sent, if any.
        content_type: Option<String>,
    },
    /// Well-formed JSON that does not fit the request schema (types, unknown fields).
    #[error("invalid request: {message}")]
    InvalidRequest {
        /// What does not fit.
        message: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
    },
    /// The causal engine rejected the request (or was interrupted by the deadline).
    #[error(transparent)]
    Causal(#[from] CausalError),
    /// A Monte Carlo error: bad model or request (422), or the deadline (504).
    #[error(transparent)]
    Mc(#[from] McError),
    /// A preference elicitation error: bad request (422), or the deadline (504).
    #[error(transparent)]
    Elicit(#[from] ElicitError),
    /// A `/v1/batch` request that cannot run as a whole (422).
    #[error(transparent)]
    Batch(#[from] crate::batch::BatchError),
    /// Missing or wrong bearer token on an admin route.
    #[error("{message}")]
    Unauthorized {
        /// Why.
        message: &'static str,
    },
    /// Too many requests in flight.
    #[error("the server is overloaded; retry after {retry_after_secs} s")]
    Overloaded {
        /// Seconds the client should wait.
        retry_after_secs: u32,
    },
    /// The service is not ready to answer yet.
    #[error("the service is not ready")]
    NotReady,
    /// The wasm component serving the request trapped (answered by the edge host, which keeps
    /// serving).
    #[error("the component trapped: {trap}")]
    ComponentTrap {
        /// The trap, in words.
        trap: String,
    },
    /// A model route failed, as the model runtime classified it (or no runtime is attached).
    #[error("{}", .0.message)]
    Model(ModelFailure),
    /// A bug: something that cannot fail did.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ServiceError {
    /// The HTTP status code.
    pub fn status(&self) -> u16 {
        match self {
            ServiceError::MalformedJson { .. }
            | ServiceError::InvalidBase64 { .. }
            | ServiceError::MissingQuery
            | ServiceError::InvalidUtf8 { .. } => 400,
            ServiceError::Unauthorized { .. } => 401,
            ServiceError::NotFound { .. } => 404,
            ServiceError::MethodNotAllowed { .. } => 405,
            ServiceError::PayloadTooLarge { .. } => 413,
            ServiceError::UnsupportedMediaType { .. } => 415,
            ServiceError::InvalidRequest { .. } => 422,
            ServiceError::Causal(CausalError::Interrupted) => 504,
            ServiceError::Causal(_) => 422,
            ServiceError::Mc(McError::Interrupted) => 504,
            ServiceError::Mc(McError::Backend { .. }) => 500,
            ServiceError::Mc(_) => 422,
            ServiceError::Elicit(e) if e.is_interrupted() => 504,
            ServiceError::Elicit(e) if !e.is_bad_input() => 500,
            ServiceError::Elicit(_) => 422,
            ServiceError::Batch(_) => 422,
            ServiceError::Overloaded { .. } => 429,
            ServiceError::NotReady => 503,
            ServiceError::Model(f) => f.status,
            ServiceError::ComponentTrap { .. } | ServiceError::Internal(_) => 500,
        }
    }

    /// The stable machine-readable code (`error.code`).
    pub fn code(&self) -> &'static str {
        match self {
            ServiceError::MalformedJson { .. } => "malformed_json",
            ServiceError::InvalidBase64 { .. } => "invalid_base64",
            ServiceError::MissingQuery => "missing_query",
            ServiceError::InvalidUtf8 { .. } => "invalid_utf8",
            ServiceError::NotFound { .. } => "not_found",
            ServiceError::MethodNotAllowed { .. } => "method_not_allowed",
            ServiceError::PayloadTooLarge { .. } => "payload_too_large",
            ServiceError::UnsupportedMediaType { .. } => "unsupported_media_type",
            ServiceError::InvalidRequest { .. } => "invalid_request",
            ServiceError::Causal(e) => e.code(),
            ServiceError::Mc(e) => e.code(),
            ServiceError::Elicit(e) => e.code(),
            ServiceError::Batch(e) => e.code(),
            ServiceError::Unauthorized { .. } => "unauthorized",
            ServiceError::Overloaded { .. } => "overloaded",
            ServiceError::NotReady => "not_ready",
            ServiceError::Model(f) => f.code,
            ServiceError::ComponentTrap { .. } => "component_trap",
            ServiceError::Internal(_) => "internal",
        }
    }

    /// Structured details (`error.details`).
    pub fn details(&self) -> Value {
        match self {
            ServiceError::MalformedJson { line, column, .. } | ServiceError::InvalidRequest { line, column, .. } => {
                json!({"line": line, "column": column})
            }
            ServiceError::InvalidUtf8 { offset } => json!({"offset": offset}),
            ServiceError::NotFound { path } => json!({"path": path}),
            ServiceError::MethodNotAllowed { method, allowed, .. } => json!({"method": method, "allowed": allowed}),
            ServiceError::PayloadTooLarge { size, limit } => json!({"size": size, "limit": limit}),
            ServiceError::UnsupportedMediaType { content_type } => json!({"content_type": content_type}),
            ServiceError::Causal(e) => e.details(),
            ServiceError::Mc(e) => e.details(),
            ServiceError::Elicit(e) => e.details(),
            ServiceError::Batch(e) => e.details(),
            ServiceError::Overloaded { retry_after_secs } => json!({"retry_after_seconds": retry_after_secs}),
            ServiceError::ComponentTrap { trap } => json!({"trap": trap}),
            ServiceError::Model(f) => f.details.clone(),
            ServiceError::InvalidBase64 { .. }
            | ServiceError::MissingQuery
            | ServiceError::Unauthorized { .. }
            | ServiceError::NotReady
            | ServiceError::Internal(_) => json!({}),
        }
    }

    /// The JSON body `{"error": {"code", "message", "details"}}`.
    pub fn body(&self) -> Value {
        json!({"error": {"code": self.code(), "message": self.to_string(), "details": self.details()}})
    }

    /// The full HTTP response: status, JSON body and the headers the status calls for (`Allow`
    /// on 405, `Retry-After` on 429, `WWW-Authenticate` on 401). Errors are never cached.
    pub fn to_response(&self) -> Response {
        // Serialising a `Value` cannot fail.
        let body = serde_json::to_vec(&self.body()).unwrap_or_default();
        let mut resp = Response::json(self.status(), body).with_header("cache-control", "no-store");
        match self {
            ServiceError::MethodNotAllowed { allowed, .. } => resp = resp.with_header("allow", *allowed),
            ServiceError::Overloaded { retry_after_secs } => {
                resp = resp.with_header("retry-after", retry_after_secs.to_string())
            }
            ServiceError::Unauthorized { .. } => resp = resp.with_header("www-authenticate", "Bearer"),
            ServiceError::Model(ModelFailure { retry_after_secs: Some(s), .. }) => {
                resp = resp.with_header("retry-after", s.to_string())
            }
            _ => {}
        }
        resp
    }

    /// Classifies a serde_json error on a request body: syntax errors are 400, schema errors 422.
    /// `input` is re-scanned on schema errors so that a document that is malformed further on
    /// still counts as malformed.
    pub fn from_json_error(err: &serde_json::Error, input: &str) -> ServiceError {
        use serde_json::error::Category;
        match err.classify() {
            Category::Data => {
                if let Err(syntax) = serde_json::from_str::<serde::de::IgnoredAny>(input) {
                    return ServiceError::MalformedJson {
                        message: syntax.to_string(),
                        line: syntax.line(),
                        column: syntax.column(),
                    };
                }
                ServiceError::InvalidRequest { message: err.to_string(), line: err.line(), column: err.column() }
            }
            Category::Syntax | Category::Eof | Category::Io => {
                ServiceError::MalformedJson { message: err.to_string(), line: err.line(), column: err.column() }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causal_errors_map_to_422_and_interrupted_to_504() {
        let e = ServiceError::from(CausalError::UnknownNodes { field: "treatment".into(), names: vec!["Z".into()] });
        assert_eq!(e.status(), 422);
        assert_eq!(e.code(), "unknown_node");
        assert_eq!(e.body()["error"]["details"]["nodes"][0], "Z");
        assert_eq!(ServiceError::from(CausalError::Interrupted).status(), 504);
    }

    #[test]
    fn elicit_errors_map_to_422_and_interrupted_to_504() {
        let e = ServiceError::from(ElicitError::TooFewAttributes { count: 1 });
        assert_eq!((e.status(), e.code()), (422, "too_few_attributes"));
        assert_eq!(e.body()["error"]["details"]["count"], 1);
        assert_eq!(ServiceError::from(ElicitError::Interrupted).status(), 504);
        assert_eq!(ServiceError::from(ElicitError::Mc(McError::Interrupted)).status(), 504);
        let e = ServiceError::from(ElicitError::Mc(McError::Cyclic { cycle: vec!["A".into(), "A".into()] }));
        assert_eq!((e.status(), e.code()), (422, "cyclic_graph"));
    }

    #[test]
    fn json_errors_are_classified() {
        let input = r#"{"a": 1"#;
        let err = serde_json::from_str::<Value>(input).unwrap_err();
        assert_eq!(ServiceError::from_json_error(&err, input).status(), 400);
        let input = r#"{"dag": 5}"#;
        let err = serde_json::from_str::<isl_causal::ValidateRequest>(input).unwrap_err();
        assert_eq!(ServiceError::from_json_error(&err, input).status(), 422);
        // A type error early in a document that is malformed later is still malformed.
        let input = r#"{"dag": 5, "#;
        let err = serde_json::from_str::<isl_causal::ValidateRequest>(input).unwrap_err();
        assert_eq!(ServiceError::from_json_error(&err, input).status(), 400);
    }

    #[test]
    fn response_headers_follow_status() {
        let r =
            ServiceError::MethodNotAllowed { method: "PUT".into(), path: "/x".into(), allowed: "GET" }.to_response();
        assert_eq!(r.status, 405);
        assert_eq!(r.header("allow"), Some("GET"));
        let r = ServiceError::Overloaded { retry_after_secs: 1 }.to_response();
        assert_eq!(r.header("retry-after"), Some("1"));
        assert_eq!(r.header("content-type"), Some("application/json"));
    }
}

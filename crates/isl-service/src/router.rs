//! Paths to targets, and per-target method rules.

use crate::error::ServiceError;
use crate::http::{Method, Request};

/// `Allow` for compute routes.
pub const COMPUTE_ALLOW: &str = "GET, HEAD, POST";
/// `Allow` for read-only operational routes.
pub const READ_ALLOW: &str = "GET, HEAD";
/// `Allow` for admin actions.
pub const ADMIN_ALLOW: &str = "POST";

/// `GET /health`.
pub const HEALTH: &str = "/health";
/// `GET /metrics`.
pub const METRICS: &str = "/metrics";
/// `POST /admin/cache/clear`.
pub const CACHE_CLEAR: &str = "/admin/cache/clear";
/// `GET /openapi.json`.
pub const OPENAPI: &str = "/openapi.json";

/// What a path leads to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    /// A compute route, by index in the route table.
    Compute(usize),
    /// Liveness and readiness.
    Health,
    /// Prometheus metrics.
    Metrics,
    /// Clear the response cache.
    CacheClear,
    /// The OpenAPI document.
    OpenApi,
    /// `/v1/batch`: many compute requests in dependency order (see [`crate::batch`]).
    Batch,
}

/// The operational routes with their targets.
pub(crate) const OPERATIONAL: [(&str, Target); 4] = [
    (HEALTH, Target::Health),
    (METRICS, Target::Metrics),
    (CACHE_CLEAR, Target::CacheClear),
    (OPENAPI, Target::OpenApi),
];

impl Target {
    /// The methods the target answers, as an `Allow` value.
    pub(crate) fn allow(self) -> &'static str {
        match self {
            Target::Compute(_) | Target::Batch => COMPUTE_ALLOW,
            Target::Health | Target::Metrics | Target::OpenApi => READ_ALLOW,
            Target::CacheClear => ADMIN_ALLOW,
        }
    }

    /// Checks the request method against [`Target::allow`].
    pub(crate) fn check_method(self, req: &Request) -> Result<(), ServiceError> {
        let ok = match self {
            Target::Compute(_) | Target::Batch => matches!(req.method, Method::Get | Method::Head | Method::Post),
            Target::Health | Target::Metrics | Target::OpenApi => matches!(req.method, Method::Get | Method::Head),
            Target::CacheClear => req.method == Method::Post,
        };
        if ok {
            Ok(())
        } else {
            Err(ServiceError::MethodNotAllowed {
                method: req.method.to_string(),
                path: req.path.clone(),
                allowed: self.allow(),
            })
        }
    }
}

//! isl in the browser. [`Engine`] is `isl-service` behind one function — (method, path, query,
//! body) in, the server's (status, headers, body) out — plus [`Engine::run_mc`], the Monte Carlo
//! routes with progress reports and, for counterfactuals, a histogram of the samples behind the
//! answer (what the demo page's worker runs).
//!
//! The crate is plain Rust on every target (its tests run natively); on wasm32 the `bindings`
//! module exports it to JavaScript with wasm-bindgen (`scripts/build-web.sh` builds the page).
//!
//! ```
//! use std::sync::Arc;
//! use isl_service::ManualClock;
//! use isl_web::Engine;
//!
//! let engine = Engine::new(Arc::new(ManualClock::new(0)));
//! let body = br#"{"dag": {"edges": [["Z","X"], ["Z","Y"], ["X","Y"]]}, "treatment": "X", "outcome": "Y"}"#;
//! let resp = engine.handle("POST", "/v1/causal/validate", None, Some("application/json"), body.to_vec());
//! assert_eq!(resp.status, 200);
//! ```

#![warn(missing_docs)]

mod histogram;
mod mc;

#[cfg(target_arch = "wasm32")]
mod bindings;

use std::sync::Arc;

use isl_service::{Clock, Config, Method, Request, Response, Service};

pub use histogram::Histogram;
pub use mc::{McRun, Progress};

/// Samples of a counterfactual's main run kept for its histogram (the first ones, in index
/// order); a run with more samples draws its histogram from these.
pub const HISTOGRAM_SAMPLE_CAP: usize = 2_000_000;

/// Bins of a counterfactual's histogram.
pub const HISTOGRAM_BINS: usize = 40;

/// The service the page runs: everything that shapes an answer is `Config::default()`, as on the
/// native server (`isl serve` without flags) and in the edge component; only the in-page response
/// cache is smaller.
pub fn page_config() -> Config {
    let mut config = Config::default();
    config.cache.capacity_bytes = 8 * 1024 * 1024;
    config.cache.shards = 1;
    config.cache.memo_entries = 4096;
    config
}

/// isl-service in a page (or anywhere): see the crate documentation.
pub struct Engine {
    service: Service,
    config: Config,
    clock: Arc<dyn Clock>,
}

impl Engine {
    /// An engine with [`page_config`] reading time from `clock` (`performance.now()` in a page).
    pub fn new(clock: Arc<dyn Clock>) -> Engine {
        let config = page_config();
        Engine { service: Service::new(config.clone(), clock.clone()), config, clock }
    }

    /// The service's configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Answers one request exactly as the server's `isl_service::Service::handle` does: the same
    /// status and body bytes (headers too, except the measured `Server-Timing`). `query` is the
    /// raw query string without `?` (`q=...` for GET); `content_type` the request's
    /// `Content-Type`, if any.
    pub fn handle(
        &self,
        method: &str,
        path: &str,
        query: Option<&str>,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Response {
        let mut request = Request::new(Method::parse(method), path).with_body(body);
        if let Some(query) = query.filter(|q| !q.is_empty()) {
            request = request.with_query(query);
        }
        if let Some(content_type) = content_type {
            request = request.with_header("content-type", content_type);
        }
        self.service.handle(request)
    }

    /// Answers a POST of `body` to a Monte Carlo route (`/v1/counterfactual`,
    /// `/v1/sensitivity`), calling `progress` as samples are drawn. The status and body are the
    /// server's for the same request (any other path is answered by [`Engine::handle`]); a
    /// counterfactual answered with status 200 also carries the histogram of its samples.
    pub fn run_mc(&self, path: &str, body: &[u8], progress: &mut dyn FnMut(Progress)) -> McRun {
        mc::run(self, path, body, progress)
    }

    fn post(&self, path: &str, body: &[u8]) -> Response {
        self.handle("POST", path, None, Some("application/json"), body.to_vec())
    }
}

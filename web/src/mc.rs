//! The Monte Carlo routes with progress: the same decoding, canonical request and computation as
//! `isl-service`'s endpoints (so the same status and body bytes), with a backend wrapper that
//! reports samples drawn and keeps the main run's samples for a histogram.
//!
//! Anything the fast path does not handle itself — a body that is not a well-formed request, a
//! request for the GPU — goes to the service, which answers it as the server would.

use std::cell::{Cell, RefCell};

use isl_mc::rng::STREAM_MAIN;
use isl_mc::{
    Backend, BackendChoice, CounterfactualRequest, CpuBackend, McError, PreparedCounterfactual, Program, RunSpec,
    SampleEstimator, Samples, SensitivityRequest,
};
use isl_service::endpoint::mc::{Counterfactual, Sensitivity};
use isl_service::metrics::Metrics;
use isl_service::{ComputeContext, Endpoint, Response, ServiceError};
use serde::Serialize;

use crate::histogram::Histogram;
use crate::{Engine, HISTOGRAM_BINS, HISTOGRAM_SAMPLE_CAP};

/// How far a Monte Carlo run has come.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Progress {
    /// Samples (model evaluations) drawn so far.
    pub done: u64,
    /// Samples the run will draw at most, when known in advance (counterfactuals: `samples`, or
    /// `max_samples` with `target_error`; importance sampling may add more); 0 when unknown.
    pub total: u64,
}

/// The answer of [`Engine::run_mc`].
#[derive(Clone, Debug)]
pub struct McRun {
    /// The response: the server's status and body for the same request.
    pub response: Response,
    /// For a counterfactual answered 200: the histogram of the main run's samples.
    pub histogram: Option<Histogram>,
}

pub(crate) fn run(engine: &Engine, path: &str, body: &[u8], progress: &mut dyn FnMut(Progress)) -> McRun {
    let response = match path {
        Counterfactual::PATH => return counterfactual(engine, body, progress),
        Sensitivity::PATH => sensitivity(engine, body, progress),
        _ => None,
    };
    McRun { response: response.unwrap_or_else(|| engine.post(path, body)), histogram: None }
}

/// The request, when the body is one the service would decode (size, UTF-8, JSON, schema);
/// `None` leaves the answer, an error, to the service.
fn decode<T: serde::de::DeserializeOwned>(engine: &Engine, body: &[u8]) -> Option<T> {
    if body.len() > engine.config.max_body_bytes {
        return None;
    }
    serde_json::from_str(std::str::from_utf8(body).ok()?).ok()
}

/// The service's 200 answer for a computed response body.
fn ok<T: Serialize>(answer: &T) -> Response {
    match serde_json::to_vec(answer) {
        Ok(body) => Response::json(200, body),
        Err(e) => ServiceError::Internal(format!("encoding: {e}")).to_response(),
    }
}

/// The service's deadline for a request started now.
fn deadline(engine: &Engine) -> u64 {
    engine.clock.now_nanos().saturating_add(engine.config.deadline_ms.saturating_mul(1_000_000))
}

fn counterfactual(engine: &Engine, body: &[u8], progress: &mut dyn FnMut(Progress)) -> McRun {
    let fallback = || McRun { response: engine.post(Counterfactual::PATH, body), histogram: None };
    let Some(request) = decode::<CounterfactualRequest>(engine, body) else { return fallback() };
    let endpoint = Counterfactual::default();
    let request = endpoint.canonical(request, &engine.config);
    // The service answers a request for the GPU (with its warning); the page has none.
    if request.backend == Some(BackendChoice::Gpu) {
        return fallback();
    }
    let deadline = deadline(engine);
    let prepared = match PreparedCounterfactual::new(&request, &engine.config.mc) {
        Ok(p) => p,
        Err(e) => return McRun { response: ServiceError::from(e).to_response(), histogram: None },
    };
    let backend = Recording::new(prepared.max_main_samples(), HISTOGRAM_SAMPLE_CAP, progress);
    let clock = engine.clock.as_ref();
    let stop = || clock.now_nanos() >= deadline;
    // What `isl-service` runs on the CPU: the reference estimator over the CPU backend.
    match prepared.run(&SampleEstimator::new(&backend), &stop) {
        Ok(answer) => {
            let (y, logw) = backend.into_samples();
            let histogram = Histogram::new(&y, logw.as_deref(), HISTOGRAM_BINS, answer.samples_used);
            McRun { response: ok(&answer), histogram: Some(histogram) }
        }
        Err(e) => McRun { response: ServiceError::from(e).to_response(), histogram: None },
    }
}

fn sensitivity(engine: &Engine, body: &[u8], progress: &mut dyn FnMut(Progress)) -> Option<Response> {
    let request = decode::<SensitivityRequest>(engine, body)?;
    let endpoint = Sensitivity;
    let request = endpoint.canonical(request, &engine.config);
    let deadline = deadline(engine);
    let clock = engine.clock.as_ref();
    let block = engine.config.mc.block_size.max(1) as u64;
    // The CPU backend polls `stop` before each block it runs (one block at a time on wasm32).
    let polls = Cell::new(0u64);
    let progress = RefCell::new(progress);
    let stop = || {
        let n = polls.get() + 1;
        polls.set(n);
        if let Ok(mut report) = progress.try_borrow_mut() {
            report(Progress { done: n.saturating_sub(1).saturating_mul(block), total: 0 });
        }
        clock.now_nanos() >= deadline
    };
    let metrics = Metrics::new(&[]);
    let ctx = ComputeContext { config: &engine.config, metrics: &metrics, stop: &stop, deadline_nanos: deadline };
    Some(match endpoint.compute(&request, &ctx) {
        Ok(answer) => ok(&answer),
        Err(e) => e.to_response(),
    })
}

/// The CPU backend, counting the samples it draws and keeping the main run's (the samples
/// behind a counterfactual's mean and quantiles: stream [`STREAM_MAIN`], default slots).
struct Recording<'p> {
    inner: CpuBackend,
    total: u64,
    done: Cell<u64>,
    cap: usize,
    y: RefCell<Vec<f64>>,
    logw: RefCell<Option<Vec<f64>>>,
    progress: RefCell<&'p mut dyn FnMut(Progress)>,
}

impl<'p> Recording<'p> {
    fn new(total: u64, cap: usize, progress: &'p mut dyn FnMut(Progress)) -> Self {
        Recording {
            inner: CpuBackend::default(),
            total,
            done: Cell::new(0),
            cap,
            y: RefCell::new(Vec::new()),
            logw: RefCell::new(None),
            progress: RefCell::new(progress),
        }
    }

    fn report(&self, done: u64) {
        if let Ok(mut report) = self.progress.try_borrow_mut() {
            report(Progress { done, total: self.total });
        }
    }

    fn into_samples(self) -> (Vec<f64>, Option<Vec<f64>>) {
        (self.y.into_inner(), self.logw.into_inner())
    }
}

impl Backend for Recording<'_> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn run(&self, program: &Program, spec: &RunSpec<'_>, stop: &dyn Fn() -> bool) -> Result<Samples, McError> {
        let base = self.done.get();
        let block = spec.block_size.max(1) as u64;
        let count = spec.count as u64;
        let polls = Cell::new(0u64);
        // Polled before each block (one at a time on wasm32; waves of several on native).
        let counting = || {
            let k = polls.get();
            polls.set(k + 1);
            self.report(base + k.saturating_mul(block).min(count));
            stop()
        };
        let samples = self.inner.run(program, spec, &counting)?;
        self.done.set(base.saturating_add(count));
        self.report(self.done.get());
        if spec.stream == STREAM_MAIN && spec.slots.is_empty() {
            let mut y = self.y.borrow_mut();
            let room = self.cap.saturating_sub(y.len());
            let take = room.min(samples.outcome.len());
            y.extend_from_slice(&samples.outcome[..take]);
            if let Some(lw) = &samples.log_weight {
                self.logw.borrow_mut().get_or_insert_with(Vec::new).extend_from_slice(&lw[..take.min(lw.len())]);
            }
        }
        Ok(samples)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use isl_service::ManualClock;

    use super::*;

    fn engine() -> Engine {
        Engine::new(Arc::new(ManualClock::new(0)))
    }

    const MODEL: &str = r#"{"nodes": [
        {"name": "Price", "noise": {"dist": "normal", "mean": 10, "std": 1}},
        {"name": "Demand", "intercept": 100,
         "parents": {"Price": {"dist": "normal", "mean": -2.0, "std": 0.3}},
         "noise": {"dist": "normal", "mean": 0, "std": 5}},
        {"name": "Revenue", "expr": "Price * Demand"}]}"#;

    /// Requests whose answers through `run_mc` must equal the service's, byte for byte.
    fn corpus() -> Vec<(&'static str, String)> {
        let cf = "/v1/counterfactual";
        let se = "/v1/sensitivity";
        vec![
            (cf, format!(r#"{{"model": {MODEL}, "intervention": {{"Price": 12}}, "outcome": "Revenue"}}"#)),
            (cf, format!(r#"{{"model": {MODEL}, "outcome": "Revenue", "samples": 20000, "seed": 7}}"#)),
            (
                cf,
                format!(
                    r#"{{"model": {MODEL}, "outcome": "Revenue", "evidence": {{"Demand": 85}}, "samples": 5000, "quantiles": [0.1, 0.9]}}"#
                ),
            ),
            (cf, format!(r#"{{"model": {MODEL}, "outcome": "Revenue", "target_error": 2.0, "max_samples": 100000}}"#)),
            (cf, format!(r#"{{"model": {MODEL}, "outcome": "Demand", "threshold": 95, "samples": 4000}}"#)),
            (cf, format!(r#"{{"model": {MODEL}, "outcome": "Revenue", "backend": "gpu", "samples": 1000}}"#)),
            (cf, format!(r#"{{"model": {MODEL}, "outcome": "Revenue", "backend": "cpu", "samples": 1000}}"#)),
            // Errors: limits, unknown names, schema, JSON, UTF-8.
            (cf, format!(r#"{{"model": {MODEL}, "outcome": "Revenue", "samples": 1000000000000}}"#)),
            (cf, format!(r#"{{"model": {MODEL}, "outcome": "Nope"}}"#)),
            (cf, format!(r#"{{"model": {MODEL}, "outcome": "Revenue", "intervention": {{"Zed": 1}}}}"#)),
            (cf, r#"{"model": {"nodes": []}, "outcome": "X", "extra": 1}"#.into()),
            (cf, r#"{"model": "#.into()),
            (cf, String::from_utf8_lossy(b"{\"a\": \"\xff\"}").into_owned()),
            (se, format!(r#"{{"model": {MODEL}, "intervention": {{"Price": 12}}, "outcome": "Revenue"}}"#)),
            (se, format!(r#"{{"model": {MODEL}, "outcome": "Revenue", "samples": 512, "seed": 3}}"#)),
            (se, format!(r#"{{"model": {MODEL}, "outcome": "Revenue", "samples": 1}}"#)),
            (se, format!(r#"{{"model": {MODEL}, "outcome": "Nope"}}"#)),
            (se, r#"[1, 2"#.into()),
            ("/v1/causal/validate", r#"{"dag": {"edges": [["A","B"]]}}"#.into()),
        ]
    }

    #[test]
    fn run_mc_answers_like_the_service() {
        for (path, body) in corpus() {
            let reference = engine().post(path, body.as_bytes());
            let mut reports = 0;
            let run = engine().run_mc(path, body.as_bytes(), &mut |_| reports += 1);
            assert_eq!(run.response.status, reference.status, "{path} {body}");
            assert_eq!(
                String::from_utf8_lossy(&run.response.body),
                String::from_utf8_lossy(&reference.body),
                "{path} {body}"
            );
            if path == "/v1/counterfactual" && run.response.status == 200 && !body.contains("\"gpu\"") {
                assert!(run.histogram.is_some(), "{body}");
                assert!(reports > 0, "{body}");
            }
        }
    }

    #[test]
    fn invalid_utf8_goes_to_the_service() {
        let body = b"{\"model\": \"\xff\"}";
        let run = engine().run_mc("/v1/counterfactual", body, &mut |_| {});
        assert_eq!(run.response, engine().post("/v1/counterfactual", body));
        assert_eq!(run.response.status, 400);
    }

    #[test]
    fn progress_counts_up_to_the_samples() {
        let body = format!(r#"{{"model": {MODEL}, "outcome": "Revenue", "samples": 50000}}"#);
        let mut seen = Vec::new();
        let run = engine().run_mc("/v1/counterfactual", body.as_bytes(), &mut |p| seen.push(p));
        assert_eq!(run.response.status, 200);
        assert!(seen.windows(2).all(|w| w[0].done <= w[1].done), "{seen:?}");
        assert_eq!(seen.last().map(|p| (p.done, p.total)), Some((50_000, 50_000)));
        let h = run.histogram.expect("histogram");
        assert_eq!(h.recorded, 50_000);
        let counted: f64 = h.counts.iter().sum::<f64>() + h.below + h.above;
        assert!((counted - 1.0).abs() < 1e-9, "{counted}");
    }

    #[test]
    fn the_deadline_interrupts_like_the_service() {
        // A clock that moves a second per reading passes the 10 s deadline within a few blocks.
        struct Racing(std::sync::atomic::AtomicU64);
        impl isl_service::Clock for Racing {
            fn now_nanos(&self) -> u64 {
                self.0.fetch_add(1_000_000_000, std::sync::atomic::Ordering::Relaxed)
            }
        }
        let engine = Engine::new(Arc::new(Racing(0.into())));
        let body = format!(r#"{{"model": {MODEL}, "outcome": "Revenue", "samples": 10000000}}"#);
        let run = engine.run_mc("/v1/counterfactual", body.as_bytes(), &mut |_| {});
        assert_eq!(run.response.status, 504, "{}", String::from_utf8_lossy(&run.response.body));
        assert!(run.histogram.is_none());
    }
}

//! Monte Carlo accelerators: hardware the host plugs into the service (the native host's GPU,
//! `isl-gpu`), behind one small trait so that the service — and everything built for wasm32 —
//! stays free of device code. Which backend answers a request is decided when the request is
//! canonicalised ([`resolve`]), so the resolved backend is part of the cache key and the ETag.

use isl_mc::{BackendChoice, CounterfactualRequest, CounterfactualResponse, McError, PreparedCounterfactual};

/// What an accelerator made of a request.
#[derive(Debug)]
pub enum AccelOutcome {
    /// The answer (its `backend` names the accelerator).
    Answered(Box<CounterfactualResponse>),
    /// The accelerator cannot run this request (too large a model for one shader, evidence
    /// weights, ...): the CPU answers, with this reason in the answer's warnings.
    Unsupported(String),
    /// The request's own error, exactly as the CPU would report it (422, or 504 at the deadline).
    Failed(McError),
    /// The device failed (lost, dispatch error): the CPU answers this request, the failure is
    /// counted in the metrics.
    DeviceError(String),
}

/// A Monte Carlo accelerator. Implementations must be cheap to query and safe to share.
pub trait McAccelerator: Send + Sync {
    /// Short name reported in answers and metrics (`gpu`).
    fn name(&self) -> &str;
    /// The hardware, for `/health` (e.g. the adapter's name).
    fn describe(&self) -> String;
    /// Whether it takes requests now (false once the device is lost).
    fn available(&self) -> bool;
    /// For `auto`: the smallest run (in samples) it should take; `None` when the CPU is faster
    /// at every size on this machine (or this is not known yet).
    fn auto_min_samples(&self) -> Option<u64>;
    /// Answers a checked, compiled counterfactual.
    fn counterfactual(&self, prepared: &PreparedCounterfactual, stop: &dyn Fn() -> bool) -> AccelOutcome;
}

/// The backend that will answer `req` (canonical, so `samples` or `max_samples` is filled in):
/// the request's own choice, else the server's `default`; `auto` becomes `gpu` only when an
/// accelerator is available and the run reaches its measured threshold. Never `auto`.
pub fn resolve(
    req: &CounterfactualRequest,
    default: BackendChoice,
    accel: Option<&dyn McAccelerator>,
) -> BackendChoice {
    match req.backend.unwrap_or(default) {
        BackendChoice::Cpu => BackendChoice::Cpu,
        BackendChoice::Gpu => BackendChoice::Gpu,
        BackendChoice::Auto => {
            let samples = req.samples.or(req.max_samples).unwrap_or(0);
            let worth =
                accel.filter(|a| a.available()).and_then(|a| a.auto_min_samples()).is_some_and(|min| samples >= min);
            if worth { BackendChoice::Gpu } else { BackendChoice::Cpu }
        }
    }
}

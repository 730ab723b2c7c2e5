//! Where the statistics of a counterfactual come from: the [`Estimator`] trait, and
//! [`SampleEstimator`], its implementation over any [`Backend`] that returns samples.
//!
//! [`crate::counterfactual`] needs only a few numbers from the main run (moments, quantiles, the
//! exceedance of a threshold) and, for importance sampling, five sums over a shifted run. A CPU
//! computes them from stored samples ([`SampleEstimator`], the reference: its answers are the
//! engine's golden bytes); a GPU computes them with reductions on the device and never moves the
//! samples (the `isl-gpu` crate). The estimator algorithm itself — adaptive rounds, when to switch
//! to importance sampling, the cross-entropy pilot rounds — is the same code for both, in
//! [`crate::api::PreparedCounterfactual::run`].

use crate::backend::{Backend, RunSpec};
use crate::error::McError;
use crate::program::Program;
use crate::stats::{self, Moments};

/// Statistics of the samples of a counterfactual, computed wherever the samples are.
pub trait Estimator {
    /// The name reported in answers (`cpu`, `gpu`).
    fn name(&self) -> &str;

    /// Starts the main run of `program`: samples of [`crate::rng::STREAM_MAIN`] under `seed`, with
    /// default slot settings, indices from 0. `threshold` is the one the answer will ask
    /// [`MainRun::exceedance`] about (an estimator may count it while drawing). `block_size` is
    /// [`crate::McOptions::block_size`]; `stop` is polled between blocks of samples.
    fn main_run<'a>(
        &'a self,
        program: &'a Program,
        seed: u64,
        block_size: usize,
        threshold: Option<f64>,
        stop: &'a dyn Fn() -> bool,
    ) -> Result<Box<dyn MainRun + 'a>, McError>;

    /// Runs small sample sets that the algorithm inspects one by one (the cross-entropy pilot
    /// rounds of importance sampling, `McOptions::importance_pilot_samples` each).
    fn sampler(&self) -> &dyn Backend;

    /// The sums of the final importance-sampling run `spec` (shifted slots, so weighted): see
    /// [`TailSums`]. `max_log_weight` and `norm` put the likelihood weights of evidence on the
    /// plain run's scale (`0` and `1` without evidence).
    fn tail_sums(
        &self,
        program: &Program,
        spec: &RunSpec<'_>,
        threshold: f64,
        max_log_weight: f64,
        norm: f64,
        stop: &dyn Fn() -> bool,
    ) -> Result<TailSums, McError>;
}

/// The main run of a counterfactual, growing in adaptive rounds.
pub trait MainRun {
    /// Draws samples up to index `n` (exclusive; `n` never shrinks between calls) and returns the
    /// moments of samples `0..n`.
    fn extend_to(&mut self, n: u64) -> Result<Moments, McError>;

    /// The largest log-weight of a usable sample (`0` for unweighted runs, `-inf` when every
    /// weight is zero).
    fn max_log_weight(&self) -> f64;

    /// Quantiles of the samples drawn so far at probabilities `qs` (sorted ascending), with the
    /// definitions of [`crate::stats`] (linear interpolation between order statistics unweighted,
    /// the weighted inverse CDF weighted).
    fn quantiles(&mut self, qs: &[f64]) -> Result<Vec<f64>, McError>;

    /// P(outcome > `t`) over the samples drawn so far, given their moments `m`.
    fn exceedance(&mut self, t: f64, m: &Moments) -> Result<Exceedance, McError>;
}

/// An estimate of P(outcome > t) from the main run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Exceedance {
    /// The probability (weighted by the evidence's likelihood when there is evidence).
    pub probability: f64,
    /// Its standard error.
    pub std_error: f64,
    /// Samples above the threshold, unweighted.
    pub hits: u64,
}

/// Sums over the final importance-sampling run: over samples with a finite outcome and a usable
/// log-weight, `finite` counts them, and over those above the threshold, with
/// `w = exp(log_weight − max_log_weight)` and `a = w / norm`, the others sum `a`, `a²`, `w`, `w²`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct TailSums {
    /// Samples with a finite outcome and a non-NaN log-weight.
    pub finite: f64,
    /// Σ a over samples above the threshold.
    pub sum_a: f64,
    /// Σ a².
    pub sum_aa: f64,
    /// Σ w.
    pub sum_w: f64,
    /// Σ w².
    pub sum_ww: f64,
}

/// The reference estimator: stores every sample a [`Backend`] returns and computes statistics
/// from them ([`crate::stats`]: fixed summation blocks, exact quantiles by selection). Its answers
/// are the engine's definition; [`crate::counterfactual`] uses it.
#[derive(Clone, Copy)]
pub struct SampleEstimator<'b> {
    backend: &'b dyn Backend,
}

impl<'b> SampleEstimator<'b> {
    /// Statistics of the samples `backend` returns.
    pub fn new(backend: &'b dyn Backend) -> Self {
        SampleEstimator { backend }
    }
}

impl std::fmt::Debug for SampleEstimator<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SampleEstimator").field("backend", &self.backend.name()).finish()
    }
}

/// The main run of a [`SampleEstimator`]: every sample in memory.
struct StoredRun<'a> {
    backend: &'a dyn Backend,
    program: &'a Program,
    seed: u64,
    block_size: usize,
    stop: &'a dyn Fn() -> bool,
    y: Vec<f64>,
    logw: Option<Vec<f64>>,
    /// Normalised weights of the samples drawn so far (weighted runs).
    w: Option<Vec<f64>>,
    max_logw: f64,
}

impl MainRun for StoredRun<'_> {
    fn extend_to(&mut self, n: u64) -> Result<Moments, McError> {
        let have = self.y.len() as u64;
        let spec = RunSpec {
            seed: self.seed,
            stream: crate::rng::STREAM_MAIN,
            start: have,
            count: n.saturating_sub(have) as usize,
            slots: &[],
            block_size: self.block_size,
        };
        let s = self.backend.run(self.program, &spec, self.stop)?;
        self.y.extend_from_slice(&s.outcome);
        if let Some(l) = s.log_weight {
            self.logw.get_or_insert_with(Vec::new).extend_from_slice(&l);
        }
        let (w, max) = match self.logw.as_deref() {
            Some(l) => {
                let (w, max) = stats::weights(&self.y, l);
                (Some(w), max)
            }
            None => (None, 0.0),
        };
        let m = stats::moments(&self.y, w.as_deref());
        self.w = w;
        self.max_logw = max;
        Ok(m)
    }

    fn max_log_weight(&self) -> f64 {
        self.max_logw
    }

    fn quantiles(&mut self, qs: &[f64]) -> Result<Vec<f64>, McError> {
        Ok(stats::quantiles(&self.y, self.w.as_deref(), qs))
    }

    fn exceedance(&mut self, t: f64, m: &Moments) -> Result<Exceedance, McError> {
        let (probability, std_error, hits) = stats::exceedance(&self.y, self.w.as_deref(), t, m);
        Ok(Exceedance { probability, std_error, hits })
    }
}

impl Estimator for SampleEstimator<'_> {
    fn name(&self) -> &str {
        self.backend.name()
    }

    fn main_run<'a>(
        &'a self,
        program: &'a Program,
        seed: u64,
        block_size: usize,
        _threshold: Option<f64>,
        stop: &'a dyn Fn() -> bool,
    ) -> Result<Box<dyn MainRun + 'a>, McError> {
        Ok(Box::new(StoredRun {
            backend: self.backend,
            program,
            seed,
            block_size,
            stop,
            y: Vec::new(),
            logw: None,
            w: None,
            max_logw: 0.0,
        }))
    }

    fn sampler(&self) -> &dyn Backend {
        self.backend
    }

    fn tail_sums(
        &self,
        program: &Program,
        spec: &RunSpec<'_>,
        t: f64,
        max_logw: f64,
        norm: f64,
        stop: &dyn Fn() -> bool,
    ) -> Result<TailSums, McError> {
        let s = self.backend.run(program, spec, stop)?;
        let lw = s.log_weight.unwrap_or_else(|| vec![0.0; s.outcome.len()]);
        let y = &s.outcome;
        let parts = stats::per_block(y.len(), |r| {
            let mut acc = [0.0; 5];
            for j in r {
                if y[j].is_finite() && !lw[j].is_nan() {
                    acc[0] += 1.0;
                    if y[j] > t {
                        let w = libm::exp(lw[j] - max_logw);
                        let a = w / norm;
                        acc[1] += a;
                        acc[2] += a * a;
                        acc[3] += w;
                        acc[4] += w * w;
                    }
                }
            }
            acc
        });
        let mut acc = [0.0; 5];
        for p in parts {
            for k in 0..5 {
                acc[k] += p[k];
            }
        }
        let [finite, sum_a, sum_aa, sum_w, sum_ww] = acc;
        Ok(TailSums { finite, sum_a, sum_aa, sum_w, sum_ww })
    }
}

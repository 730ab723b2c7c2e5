//! Estimators behind [`crate::counterfactual`]: plain and adaptive Monte Carlo, likelihood
//! weighting, and importance sampling of tail probabilities by the cross-entropy method.

use std::collections::BTreeMap;

use crate::api::{CounterfactualRequest, CounterfactualResponse, McOptions, check_values};
use crate::backend::{RunSpec, Samples, SlotSetting};
use crate::dist::inv_norm_cdf;
use crate::error::McError;
use crate::estimator::{Estimator, TailSums};
use crate::program::Program;
use crate::rng;
use crate::stats::Moments;

/// A checked counterfactual request: how many samples, which statistics.
#[derive(Clone, Debug)]
pub(crate) struct Plan {
    /// Fixed sample count, or the first round of an adaptive run.
    samples: u64,
    /// Adaptive: target standard error and cap.
    target: Option<(f64, u64)>,
    quantiles: Vec<f64>,
    threshold: Option<f64>,
}

impl Plan {
    pub(crate) fn new(req: &CounterfactualRequest, opts: &McOptions) -> Result<Plan, McError> {
        let invalid =
            |field: &str, message: &str| Err(McError::InvalidRequest { field: field.into(), message: message.into() });
        let cap = req.max_samples.unwrap_or(opts.max_samples);
        if cap > opts.max_samples {
            return Err(McError::OverLimit { what: "max_samples".into(), count: cap, limit: opts.max_samples });
        }
        if cap == 0 {
            return invalid("max_samples", "must be at least 1");
        }
        let (samples, target) = match (req.samples, req.target_error) {
            (Some(_), Some(_)) => return invalid("samples", "give samples or target_error, not both"),
            (_, Some(t)) if !(t.is_finite() && t > 0.0) => {
                return invalid("target_error", "must be a positive finite number");
            }
            (_, Some(t)) => (opts.adaptive_initial_samples.clamp(1, cap), Some((t, cap))),
            (n, None) => {
                let n = n.unwrap_or(opts.default_samples);
                if n == 0 {
                    return invalid("samples", "must be at least 1");
                }
                if n > cap {
                    let what = if req.max_samples.is_some() { "samples (over max_samples)" } else { "samples" };
                    return Err(McError::OverLimit { what: what.into(), count: n, limit: cap });
                }
                (n, None)
            }
        };
        let mut quantiles = req.quantiles.clone().unwrap_or_else(|| opts.default_quantiles.clone());
        if quantiles.len() > opts.max_quantiles {
            return Err(McError::OverLimit {
                what: "quantiles".into(),
                count: quantiles.len() as u64,
                limit: opts.max_quantiles as u64,
            });
        }
        if let Some(q) = quantiles.iter().find(|q| !(**q > 0.0 && **q < 1.0)) {
            return Err(McError::InvalidRequest {
                field: "quantiles".into(),
                message: format!("each quantile must lie strictly between 0 and 1 (got {q})"),
            });
        }
        quantiles.sort_by(f64::total_cmp);
        quantiles.dedup();
        if let Some(t) = req.threshold
            && !t.is_finite()
        {
            return invalid("threshold", "must be a finite number");
        }
        check_values(&req.intervention, "intervention")?;
        if let Some(e) = &req.evidence {
            check_values(e, "evidence")?;
        }
        Ok(Plan { samples, target, quantiles, threshold: req.threshold })
    }

    /// The most samples the main run may draw.
    pub(crate) fn max_main_samples(&self) -> u64 {
        match self.target {
            Some((_, cap)) => cap.max(self.samples),
            None => self.samples,
        }
    }
}

/// Everything a run needs besides its stream, range and slot settings.
struct Runner<'a> {
    estimator: &'a dyn Estimator,
    program: &'a Program,
    seed: u64,
    opts: &'a McOptions,
    stop: &'a dyn Fn() -> bool,
}

impl Runner<'_> {
    fn spec<'s>(&self, stream: u32, start: u64, count: u64, slots: &'s [SlotSetting]) -> RunSpec<'s> {
        RunSpec { seed: self.seed, stream, start, count: count as usize, slots, block_size: self.opts.block_size }
    }

    /// Samples of a small run (pilot rounds), from the estimator's sampler.
    fn run(&self, stream: u32, start: u64, count: u64, slots: &[SlotSetting]) -> Result<Samples, McError> {
        self.estimator.sampler().run(self.program, &self.spec(stream, start, count, slots), self.stop)
    }
}

/// The errors of a main run's moments: nothing finite, or (weighted) no likelihood anywhere.
fn check_moments(m: &Moments, samples: u64, outcome: &str) -> Result<(), McError> {
    if m.finite == 0 {
        return Err(McError::AllNonFinite { outcome: outcome.into(), samples });
    }
    if m.ess.is_some() && m.total_weight.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
        return Err(McError::Abduction {
            node: String::new(),
            reason: "the evidence has zero likelihood in every sample: each evidenced node's recovered noise falls \
                     outside its noise distribution's support (or every weight underflows)"
                .into(),
        });
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn counterfactual(
    program: &Program,
    outcome: &str,
    plan: &Plan,
    seed: u64,
    opts: &McOptions,
    estimator: &dyn Estimator,
    stop: &dyn Fn() -> bool,
) -> Result<CounterfactualResponse, McError> {
    let runner = Runner { estimator, program, seed, opts, stop };
    // Main run: fixed, or doubling rounds over consecutive index ranges.
    let mut main = estimator.main_run(program, seed, opts.block_size, plan.threshold, stop)?;
    let mut n = plan.samples;
    let (m, target_met) = loop {
        if stop() {
            return Err(McError::Interrupted);
        }
        let m = main.extend_to(n)?;
        check_moments(&m, n, outcome)?;
        match plan.target {
            None => break (m, None),
            Some((t, _)) if m.std_error <= t => break (m, Some(true)),
            Some((_, cap)) if n >= cap => break (m, Some(false)),
            Some((_, cap)) => n = n.saturating_mul(2).min(cap),
        }
    };
    let max_logw = main.max_log_weight();
    let qs = main.quantiles(&plan.quantiles)?;
    let quantiles: BTreeMap<String, f64> = plan.quantiles.iter().map(|q| format!("{q}")).zip(qs).collect();

    let mut answer = CounterfactualResponse {
        outcome: outcome.to_string(),
        mean: m.mean,
        std: m.std,
        std_error: m.std_error,
        quantiles,
        probability_above: None,
        probability_std_error: None,
        samples_used: n,
        non_finite: m.non_finite,
        seed,
        backend: estimator.name().to_string(),
        method: "plain".into(),
        effective_sample_size: m.ess,
        importance_samples: None,
        target_met,
        warnings: Vec::new(),
    };
    if let Some(t) = plan.threshold {
        let e = main.exceedance(t, &m)?;
        answer.probability_above = Some(e.probability);
        answer.probability_std_error = Some(e.std_error);
        let random = program.slots.iter().any(|s| s.used);
        if e.hits < opts.min_tail_hits && random {
            // Normaliser of the likelihood weights on the plain run's scale: E[L]·exp(-max).
            let norm = m.total_weight / m.finite as f64;
            let tail = importance(&runner, t, n, norm, max_logw)?;
            answer.probability_above = Some(tail.p);
            answer.probability_std_error = Some(tail.std_error);
            answer.method = "importance".into();
            answer.effective_sample_size = Some(tail.ess);
            answer.importance_samples = Some(tail.samples);
        }
    }
    Ok(answer)
}

/// An importance-sampling estimate of a tail probability.
#[derive(Clone, Debug)]
pub(crate) struct Tail {
    pub p: f64,
    pub std_error: f64,
    pub ess: f64,
    pub samples: u64,
}

/// P(outcome > t) by importance sampling: cross-entropy pilot rounds fit a mean shift μ of the
/// standard normal behind every used slot (each round: elite = the top fraction of samples, or
/// those above `t` once the level reaches it; μ = weighted mean of the elite's shifted normals),
/// then a final run of `n` samples in [`rng::STREAM_IMPORTANCE`] with weights
/// `exp(Σ (μ²/2 − μ·z))` gives `p = mean(w·1[y > t]) / norm` (`norm` = the mean likelihood
/// weight of the plain run when there is evidence, on the scale `exp(logw − max_logw)`).
fn importance(runner: &Runner<'_>, t: f64, n: u64, norm: f64, max_logw: f64) -> Result<Tail, McError> {
    let (program, seed, opts) = (runner.program, runner.seed, runner.opts);
    let used = program.used_slots();
    let mut settings = vec![SlotSetting::default(); program.slots.len()];
    let pilot = opts.importance_pilot_samples.max(1);
    let rho = opts.importance_elite_fraction.clamp(1e-6, 1.0);
    let mut pilots = 0u64;
    let mut last_level = f64::NEG_INFINITY;
    for round in 0..opts.importance_max_rounds {
        let stream = rng::STREAM_PILOT + round;
        let s = runner.run(stream, 0, pilot, &settings)?;
        pilots += pilot;
        let lw = s.log_weight.unwrap_or_else(|| vec![0.0; s.outcome.len()]);
        let mut idx: Vec<usize> =
            (0..s.outcome.len()).filter(|&j| s.outcome[j].is_finite() && !lw[j].is_nan()).collect();
        if idx.is_empty() {
            break;
        }
        // Descending outcome, ties by index.
        idx.sort_by(|&a, &b| s.outcome[b].total_cmp(&s.outcome[a]).then(a.cmp(&b)));
        let k = ((rho * idx.len() as f64).ceil() as usize).clamp(1, idx.len());
        let gamma = s.outcome[idx[k - 1]];
        let level = gamma.min(t);
        let elite: Vec<usize> = idx.iter().copied().filter(|&j| s.outcome[j] >= level).collect();
        let top = elite.iter().map(|&j| lw[j]).fold(f64::NEG_INFINITY, f64::max);
        if top == f64::NEG_INFINITY {
            break;
        }
        let ew: Vec<f64> = elite.iter().map(|&j| libm::exp(lw[j] - top)).collect();
        let total: f64 = ew.iter().sum();
        for &slot in &used {
            let mu = settings[slot as usize].shift;
            let mut acc = 0.0;
            for (&j, &w) in elite.iter().zip(&ew) {
                let z = inv_norm_cdf(rng::slot_uniform(seed, j as u64, slot, stream)) + mu;
                acc += w * z;
            }
            settings[slot as usize].shift = acc / total;
        }
        if level >= t || gamma <= last_level {
            break;
        }
        last_level = gamma;
    }
    for (set, info) in settings.iter_mut().zip(&program.slots) {
        if !info.used || !set.shift.is_finite() {
            set.shift = 0.0;
        }
    }
    let spec = runner.spec(rng::STREAM_IMPORTANCE, 0, n, &settings);
    let TailSums { finite, sum_a, sum_aa, sum_w, sum_ww } =
        runner.estimator.tail_sums(program, &spec, t, max_logw, norm, runner.stop)?;
    let p = if finite > 0.0 { sum_a / finite } else { f64::NAN };
    let var = if finite > 1.0 { (sum_aa / finite - p * p).max(0.0) * finite / (finite - 1.0) } else { f64::NAN };
    Ok(Tail {
        p,
        std_error: (var / finite).sqrt(),
        ess: if sum_ww > 0.0 { sum_w * sum_w / sum_ww } else { 0.0 },
        samples: pilots + n,
    })
}

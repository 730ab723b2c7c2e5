//! Sensitivity analysis behind [`crate::sensitivity`]: one-at-a-time swings (tornado) and
//! variance-based Sobol indices.
//!
//! Inputs are the random slots the outcome depends on: every belief and every noise term.
//!
//! - **Swings**: the outcome mean with one input at its 5th and at its 95th percentile, every
//!   other belief at its mean and noise random; the two runs share their random numbers (same
//!   samples of [`rng::STREAM_MAIN`]), so the difference is free of sampling noise in the others.
//! - **Sobol indices** (Saltelli et al. 2010): matrices A and B of independent draws
//!   ([`rng::STREAM_SOBOL_A`], [`rng::STREAM_SOBOL_B`]) and, per input `i`, A_B^(i) = A with input
//!   `i` taken from B — built from the same draws by reading slot `i` from B's stream. First-order
//!   `V_i = mean((f(B) − f₀)·(f(A_B^(i)) − f(A)))` (Saltelli 2010, centred), total
//!   `V_Ti = mean((f(A) − f(A_B^(i)))²)/2` (Jansen 1999), shares over `V = Var(f(A) ∪ f(B))`,
//!   clamped to [0, 1] (the estimators can stray slightly outside for inputs that barely matter).

use crate::api::{Driver, McOptions, SensitivityResponse};
use crate::backend::{Backend, RunSpec, SlotSetting};
use crate::error::McError;
use crate::model::{CheckedModel, SlotRole};
use crate::program::Program;
use crate::rng;
use crate::stats;

#[allow(clippy::too_many_arguments)]
pub(crate) fn analyse(
    model: &CheckedModel,
    program: &Program,
    outcome: &str,
    n: u64,
    seed: u64,
    opts: &McOptions,
    backend: &dyn Backend,
    stop: &dyn Fn() -> bool,
) -> Result<SensitivityResponse, McError> {
    let inputs = program.used_slots();
    let k = inputs.len() as u64;
    let runs = 3 * k + 3;
    let evaluations = n.saturating_mul(runs);
    if evaluations > opts.max_samples {
        return Err(McError::OverLimit {
            what: format!("sensitivity evaluations (samples × {runs} runs)"),
            count: evaluations,
            limit: opts.max_samples,
        });
    }
    let mut non_finite = 0u64;
    let mut run = |stream: u32, slots: &[SlotSetting]| -> Result<Vec<f64>, McError> {
        let spec = RunSpec { seed, stream, start: 0, count: n as usize, slots, block_size: opts.block_size };
        let s = backend.run(program, &spec, stop)?;
        non_finite += s.outcome.iter().filter(|v| !v.is_finite()).count() as u64;
        Ok(s.outcome)
    };
    let mean = |y: &[f64]| stats::moments(y, None).mean;

    // Swings: beliefs at their means, noise random.
    let mut base = vec![SlotSetting::default(); program.slots.len()];
    for &s in &inputs {
        let info = &program.slots[s as usize];
        if info.role != SlotRole::Noise {
            base[s as usize].fixed = Some(info.dist.standard_at_mean());
        }
    }
    let base_mean = mean(&run(rng::STREAM_MAIN, &base)?);
    let mut swings = Vec::with_capacity(inputs.len());
    for &s in &inputs {
        let info = &program.slots[s as usize];
        let mut at = |p: f64| -> Result<f64, McError> {
            let mut set = base.clone();
            set[s as usize].fixed = Some(info.dist.standard_at_quantile(p));
            Ok(mean(&run(rng::STREAM_MAIN, &set)?))
        };
        let low = at(0.05)?;
        let high = at(0.95)?;
        swings.push((low, high));
    }

    // Sobol: A, B, and A_B^(i) for each input.
    let fa = run(rng::STREAM_SOBOL_A, &[])?;
    let fb = run(rng::STREAM_SOBOL_B, &[])?;
    let both: Vec<f64> = fa.iter().chain(&fb).copied().collect();
    let m = stats::moments(&both, None);
    if m.finite == 0 {
        return Err(McError::AllNonFinite { outcome: outcome.into(), samples: both.len() as u64 });
    }
    let (f0, variance) = (m.mean, m.std * m.std);
    let mut drivers = Vec::with_capacity(inputs.len());
    for (&s, &(low, high)) in inputs.iter().zip(&swings) {
        let mut set = vec![SlotSetting::default(); program.slots.len()];
        set[s as usize].stream = Some(rng::STREAM_SOBOL_B);
        let fab = run(rng::STREAM_SOBOL_A, &set)?;
        let parts = stats::per_block(fa.len(), |r| {
            let mut acc = [0.0; 3];
            for j in r {
                let (a, b, ab) = (fa[j], fb[j], fab[j]);
                if a.is_finite() && b.is_finite() && ab.is_finite() {
                    acc[0] += 1.0;
                    acc[1] += (b - f0) * (ab - a);
                    acc[2] += (a - ab) * (a - ab);
                }
            }
            acc
        });
        let mut acc = [0.0; 3];
        for p in parts {
            for i in 0..3 {
                acc[i] += p[i];
            }
        }
        let (vi, vti) = if acc[0] > 0.0 { (acc[1] / acc[0], acc[2] / (2.0 * acc[0])) } else { (f64::NAN, f64::NAN) };
        let share = |v: f64| if variance > 0.0 { (v / variance).clamp(0.0, 1.0) } else { 0.0 };
        let info = &program.slots[s as usize];
        let node = model.slots()[s as usize].node;
        drivers.push(Driver {
            input: info.label.clone(),
            node: model.name(node).to_string(),
            role: info.role.clone(),
            low,
            high,
            swing: (high - low).abs(),
            variance_share: share(vi),
            total_share: share(vti),
        });
    }
    drivers.sort_by(|a, b| b.swing.total_cmp(&a.swing).then_with(|| a.input.cmp(&b.input)));
    Ok(SensitivityResponse {
        outcome: outcome.to_string(),
        base: base_mean,
        mean: f0,
        variance,
        drivers,
        samples_used: n,
        evaluations,
        non_finite,
        seed,
        backend: backend.name().to_string(),
    })
}

//! The posterior over attribute weights, rebuilt from the prior and every answer: sequential
//! Monte Carlo (resample–move particle filter, Chopin 2002; Del Moral, Doucet & Jasra 2006).
//!
//! Particles start as draws from the uniform (Dirichlet(1)) prior on the simplex with equal
//! weights. Answers are taken one at a time: each multiplies every particle's importance weight
//! by the answer's likelihood under that particle. When the effective sample size
//! `(Σw)² / Σw²` falls below a fraction of the particle count, the particles are resampled
//! (systematic resampling) and *rejuvenated*: a few random-walk Metropolis–Hastings sweeps that
//! leave the posterior given the answers so far invariant. The walk runs in additive log-ratio
//! coordinates `θ_k = ln(w_k / w_n)` with a Gaussian step shaped by the particles' own covariance
//! (Cholesky factor, scaled by 2.38/√dim and adapted to the acceptance rate); the target in
//! those coordinates is `Π w_k · L(w)` (the Dirichlet(1) density times the Jacobian).
//!
//! The filter also estimates the log marginal likelihood (the product of the mean incremental
//! weights), which gives the information the answers carry — `KL(posterior ‖ prior) =
//! E_post[ln L] − ln Z` — and the posterior's differential entropy `H(prior) − KL`.

use crate::choice::{Choice, ChoiceModel};
use crate::par;
use crate::rng::{self, STREAM_MOVE, STREAM_PRIOR, STREAM_RESAMPLE};

/// Particles per parallel chunk (fixed: results never depend on the thread count).
const CHUNK: usize = 512;

/// The answers, compiled: one normalised difference `a − b` per answer and the choice.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Evidence {
    n: usize,
    delta: Vec<f64>,
    choice: Vec<Choice>,
}

impl Evidence {
    /// No answers yet, over `n` attributes.
    pub fn new(n: usize) -> Evidence {
        Evidence { n, delta: Vec::new(), choice: Vec::new() }
    }

    /// Adds an answer: `delta` = normalised `a − b` (length `n`).
    pub fn push(&mut self, delta: &[f64], choice: Choice) {
        debug_assert_eq!(delta.len(), self.n);
        self.delta.extend_from_slice(delta);
        self.choice.push(choice);
    }

    /// The number of attributes.
    pub fn attributes(&self) -> usize {
        self.n
    }

    /// The number of answers.
    pub fn len(&self) -> usize {
        self.choice.len()
    }

    /// Whether there are no answers.
    pub fn is_empty(&self) -> bool {
        self.choice.is_empty()
    }

    /// Answer `j`: its difference vector and choice.
    pub fn answer(&self, j: usize) -> (&[f64], Choice) {
        (&self.delta[j * self.n..(j + 1) * self.n], self.choice[j])
    }

    /// ln P(all answers | w), directly (the reference for tests and the simulation).
    pub fn log_likelihood(&self, model: &ChoiceModel, w: &[f64]) -> f64 {
        (0..self.len())
            .map(|j| {
                let (delta, choice) = self.answer(j);
                model.log_prob(choice, model.d(dot(w, delta)))
            })
            .sum()
    }
}

/// Settings of the particle filter.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SmcSettings {
    /// Number of particles.
    pub particles: usize,
    /// Resample and rejuvenate when the effective sample size falls below this fraction of
    /// the particle count.
    pub ess_threshold: f64,
    /// Metropolis–Hastings sweeps per rejuvenation.
    pub moves: usize,
    /// The seed of every random draw.
    pub seed: u64,
}

/// The filter was stopped (deadline) before it finished.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interrupted;

/// Per-weight summary of the posterior.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WeightStats {
    /// Posterior mean.
    pub mean: f64,
    /// Posterior standard deviation.
    pub std: f64,
    /// 5th percentile.
    pub p05: f64,
    /// 95th percentile.
    pub p95: f64,
}

/// A weighted particle approximation of the posterior over weights.
#[derive(Clone, Debug, PartialEq)]
pub struct Posterior {
    n: usize,
    /// Particle-major weights vectors: particle `i` is `w[i·n .. (i+1)·n]`.
    w: Vec<f64>,
    /// Normalised importance weights (sum 1).
    weights: Vec<f64>,
    /// ln L(w_i) over every answer.
    loglik: Vec<f64>,
    /// Estimated ln P(answers) (marginal likelihood).
    log_evidence: f64,
    /// Resample–move steps taken.
    rejuvenations: usize,
    /// Accepted / proposed Metropolis–Hastings moves (0 when none were made).
    acceptance_rate: f64,
}

#[inline(always)]
pub(crate) fn dot(a: &[f64], b: &[f64]) -> f64 {
    let mut s = 0.0;
    for (x, y) in a.iter().zip(b) {
        s += x * y;
    }
    s
}

/// ln(Σ e^{x_i}) in index order.
fn log_sum_exp(xs: &[f64]) -> f64 {
    let m = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !m.is_finite() {
        return m;
    }
    m + libm::log(xs.iter().map(|&x| libm::exp(x - m)).sum::<f64>())
}

/// ln Γ(n) = ln((n−1)!) for the Dirichlet(1) density on the (n−1)-simplex.
fn ln_factorial(k: usize) -> f64 {
    (2..=k).map(|i| libm::log(i as f64)).sum()
}

impl Posterior {
    /// A posterior given directly by particles (particle-major, `n` values each, on the simplex)
    /// and unnormalised non-negative importance weights: for tests and external samplers. Its
    /// log-likelihoods and evidence are zero.
    pub fn from_weighted(n: usize, particles: Vec<f64>, weights: &[f64]) -> Posterior {
        let total: f64 = weights.iter().sum();
        Posterior {
            n,
            w: particles,
            weights: weights.iter().map(|x| x / total).collect(),
            loglik: vec![0.0; weights.len()],
            log_evidence: 0.0,
            rejuvenations: 0,
            acceptance_rate: 0.0,
        }
    }

    /// The number of attributes.
    pub fn attributes(&self) -> usize {
        self.n
    }

    /// The number of particles.
    pub fn len(&self) -> usize {
        self.weights.len()
    }

    /// Whether there are no particles.
    pub fn is_empty(&self) -> bool {
        self.weights.is_empty()
    }

    /// Particle `i`'s weight vector.
    pub fn particle(&self, i: usize) -> &[f64] {
        &self.w[i * self.n..(i + 1) * self.n]
    }

    /// All particles, particle-major.
    pub fn particles(&self) -> &[f64] {
        &self.w
    }

    /// Normalised importance weights.
    pub fn weights(&self) -> &[f64] {
        &self.weights
    }

    /// Effective sample size `1 / Σ w_i²` of the normalised weights.
    pub fn effective_sample_size(&self) -> f64 {
        1.0 / self.weights.iter().map(|w| w * w).sum::<f64>()
    }

    /// Estimated ln P(answers).
    pub fn log_evidence(&self) -> f64 {
        self.log_evidence
    }

    /// Resample–move steps the filter took.
    pub fn rejuvenations(&self) -> usize {
        self.rejuvenations
    }

    /// Fraction of Metropolis–Hastings proposals accepted (0 without moves).
    pub fn acceptance_rate(&self) -> f64 {
        self.acceptance_rate
    }

    /// The posterior mean weight vector.
    pub fn mean(&self) -> Vec<f64> {
        let mut m = vec![0.0; self.n];
        for (i, &wi) in self.weights.iter().enumerate() {
            for (mk, x) in m.iter_mut().zip(self.particle(i)) {
                *mk += wi * x;
            }
        }
        m
    }

    /// Mean, standard deviation and 5th/95th percentiles of each weight.
    pub fn weight_stats(&self) -> Vec<WeightStats> {
        let mean = self.mean();
        let mut order: Vec<usize> = (0..self.len()).collect();
        (0..self.n)
            .map(|k| {
                let var: f64 = self
                    .weights
                    .iter()
                    .enumerate()
                    .map(|(i, wi)| wi * (self.w[i * self.n + k] - mean[k]).powi(2))
                    .sum();
                order.sort_by(|&i, &j| self.w[i * self.n + k].total_cmp(&self.w[j * self.n + k]).then(i.cmp(&j)));
                WeightStats {
                    mean: mean[k],
                    std: var.max(0.0).sqrt(),
                    p05: self.weighted_quantile(&order, k, 0.05),
                    p95: self.weighted_quantile(&order, k, 0.95),
                }
            })
            .collect()
    }

    /// The smallest value of weight `k` whose cumulative posterior probability reaches `p`.
    fn weighted_quantile(&self, sorted: &[usize], k: usize, p: f64) -> f64 {
        let mut cum = 0.0;
        for &i in sorted {
            cum += self.weights[i];
            if cum >= p {
                return self.w[i * self.n + k];
            }
        }
        sorted.last().map_or(0.0, |&i| self.w[i * self.n + k])
    }

    /// `KL(posterior ‖ prior)` in nats: `E_post[ln L] − ln Z` (never below 0).
    pub fn information_nats(&self) -> f64 {
        let e_ll: f64 = self.weights.iter().zip(&self.loglik).map(|(w, l)| w * l).sum();
        (e_ll - self.log_evidence).max(0.0)
    }

    /// Differential entropy of the posterior in nats, with respect to Lebesgue measure on the
    /// first `n − 1` weights: `H(prior) − KL`, `H(prior) = −ln((n−1)!)`.
    pub fn entropy_nats(&self) -> f64 {
        -ln_factorial(self.n - 1) - self.information_nats()
    }
}

/// Builds the posterior from the prior and every answer in `evidence` (in order). `stop` is
/// polled between answers and sweeps.
pub fn infer(
    model: &ChoiceModel,
    evidence: &Evidence,
    settings: &SmcSettings,
    stop: &dyn Fn() -> bool,
) -> Result<Posterior, Interrupted> {
    let n = evidence.attributes();
    let count = settings.particles.max(1);
    let seed = settings.seed;
    let mut w = vec![0.0; count * n];
    let mut loglik = vec![0.0; count];
    let mut logw = vec![0.0; count];

    // Prior: Dirichlet(1) = normalised standard exponentials.
    par::chunks3(&mut w, n, &mut loglik, &mut logw, CHUNK, |c, wc, _, _| {
        for (r, row) in wc.chunks_mut(n).enumerate() {
            let i = (c * CHUNK + r) as u32;
            rng::fill(seed, i, 0, STREAM_PRIOR, row);
            let mut total = 0.0;
            for x in row.iter_mut() {
                *x = -libm::log(*x);
                total += *x;
            }
            for x in row.iter_mut() {
                *x /= total;
            }
        }
    });

    let mut log_evidence = 0.0;
    let mut rejuvenations = 0;
    let mut accepted = 0u64;
    let mut proposed = 0u64;
    let mut sweep = 0u32;
    let mut scale = 2.38 / ((n - 1) as f64).sqrt();
    for j in 0..evidence.len() {
        if stop() {
            return Err(Interrupted);
        }
        let before = log_sum_exp(&logw);
        let (delta, choice) = evidence.answer(j);
        par::chunks3(&mut w, n, &mut loglik, &mut logw, CHUNK, |_, wc, lc, gc| {
            for ((row, l), g) in wc.chunks(n).zip(lc.iter_mut()).zip(gc.iter_mut()) {
                let inc = model.log_prob(choice, model.d(dot(row, delta)));
                *l += inc;
                *g += inc;
            }
        });
        let after = log_sum_exp(&logw);
        log_evidence += after - before;
        let ess = effective_size(&logw, after);
        if ess >= settings.ess_threshold * count as f64 {
            continue;
        }
        // Resample (systematic) ...
        resample(&mut w, &mut loglik, &mut logw, n, after, rng::one(seed, j as u32, 0, STREAM_RESAMPLE));
        rejuvenations += 1;
        // ... and move.
        for _ in 0..settings.moves {
            if stop() {
                return Err(Interrupted);
            }
            let chol = step_factor(&w, n);
            let acc = mh_sweep(model, evidence, j + 1, &mut w, &mut loglik, &mut logw, n, &chol, scale, seed, sweep);
            sweep += 1;
            accepted += acc;
            proposed += count as u64;
            // Keep the acceptance rate in a useful band (deterministic: counts are exact).
            let rate = acc as f64 / count as f64;
            if rate < 0.15 {
                scale *= 0.6;
            } else if rate > 0.45 {
                scale *= 1.5;
            }
        }
    }
    let total = log_sum_exp(&logw);
    let weights: Vec<f64> = logw.iter().map(|&g| libm::exp(g - total)).collect();
    let norm: f64 = weights.iter().sum();
    let weights = weights.into_iter().map(|x| x / norm).collect();
    Ok(Posterior {
        n,
        w,
        weights,
        loglik,
        log_evidence,
        rejuvenations,
        acceptance_rate: if proposed == 0 { 0.0 } else { accepted as f64 / proposed as f64 },
    })
}

/// `(Σw)² / Σw²` of unnormalised log weights with ln Σw = `total`.
fn effective_size(logw: &[f64], total: f64) -> f64 {
    let sq: f64 = logw.iter().map(|&g| libm::exp(2.0 * (g - total))).sum();
    1.0 / sq
}

/// Systematic resampling with offset `u` in (0, 1): particle `i` is copied about
/// `count · W_i` times; afterwards every weight is equal.
fn resample(w: &mut Vec<f64>, loglik: &mut Vec<f64>, logw: &mut [f64], n: usize, total: f64, u: f64) {
    let count = logw.len();
    let mut new_w = Vec::with_capacity(w.len());
    let mut new_ll = Vec::with_capacity(count);
    let mut cum = 0.0;
    let mut i = 0;
    for k in 0..count {
        let target = (k as f64 + u) / count as f64;
        while i + 1 < count && cum + libm::exp(logw[i] - total) < target {
            cum += libm::exp(logw[i] - total);
            i += 1;
        }
        new_w.extend_from_slice(&w[i * n..(i + 1) * n]);
        new_ll.push(loglik[i]);
    }
    *w = new_w;
    *loglik = new_ll;
    logw.fill(0.0);
}

/// Lower Cholesky factor (row-major, dim × dim) of the particles' covariance in log-ratio
/// coordinates (equal weights: called right after resampling), with a small ridge.
fn step_factor(w: &[f64], n: usize) -> Vec<f64> {
    let q = n - 1;
    let count = w.len() / n;
    let mut mean = vec![0.0; q];
    let mut theta = vec![0.0; q];
    let mut cov = vec![0.0; q * q];
    for row in w.chunks(n) {
        log_ratio(row, &mut theta);
        for (m, t) in mean.iter_mut().zip(&theta) {
            *m += t;
        }
    }
    for m in &mut mean {
        *m /= count as f64;
    }
    for row in w.chunks(n) {
        log_ratio(row, &mut theta);
        for a in 0..q {
            for b in 0..=a {
                cov[a * q + b] += (theta[a] - mean[a]) * (theta[b] - mean[b]);
            }
        }
    }
    for a in 0..q {
        for b in 0..=a {
            cov[a * q + b] /= count as f64;
            cov[b * q + a] = cov[a * q + b];
        }
        cov[a * q + a] += 1e-8;
    }
    cholesky(&cov, q).unwrap_or_else(|| {
        // Not positive definite (degenerate particle cloud): the diagonal alone.
        let mut l = vec![0.0; q * q];
        for a in 0..q {
            l[a * q + a] = cov[a * q + a].max(1e-8).sqrt();
        }
        l
    })
}

/// `θ_k = ln(w_k / w_n)`, k < n − 1.
#[inline]
fn log_ratio(row: &[f64], theta: &mut [f64]) {
    let n = row.len();
    let last = libm::log(row[n - 1]);
    for (t, &x) in theta.iter_mut().zip(row) {
        *t = libm::log(x) - last;
    }
}

/// Lower Cholesky factor of a symmetric positive definite `q × q` matrix, or `None`.
pub(crate) fn cholesky(a: &[f64], q: usize) -> Option<Vec<f64>> {
    let mut l = vec![0.0; q * q];
    for i in 0..q {
        for j in 0..=i {
            let mut s = a[i * q + j];
            for k in 0..j {
                s -= l[i * q + k] * l[j * q + k];
            }
            if i == j {
                if s <= 0.0 || !s.is_finite() {
                    return None;
                }
                l[i * q + i] = s.sqrt();
            } else {
                l[i * q + j] = s / l[j * q + j];
            }
        }
    }
    Some(l)
}

/// One Metropolis–Hastings sweep over every particle, targeting prior × the likelihood of the
/// first `upto` answers. Returns the number of accepted moves.
#[allow(clippy::too_many_arguments)]
fn mh_sweep(
    model: &ChoiceModel,
    evidence: &Evidence,
    upto: usize,
    w: &mut [f64],
    loglik: &mut [f64],
    logw: &mut [f64],
    n: usize,
    chol: &[f64],
    scale: f64,
    seed: u64,
    sweep: u32,
) -> u64 {
    let q = n - 1;
    let accepted = par::chunks3(w, n, loglik, logw, CHUNK, |c, wc, lc, _| {
        let len = lc.len();
        let mut proposal = vec![0.0; len * n];
        let mut log_u = vec![0.0; len];
        let mut u = vec![0.0; n];
        let mut z = vec![0.0; q];
        let mut theta = vec![0.0; q];
        for r in 0..len {
            let i = (c * CHUNK + r) as u32;
            rng::fill(seed, i, sweep, STREAM_MOVE, &mut u);
            for (zk, &uk) in z.iter_mut().zip(&u) {
                *zk = isl_mc::dist::inv_norm_cdf(uk);
            }
            log_u[r] = libm::log(u[q]);
            log_ratio(&wc[r * n..(r + 1) * n], &mut theta);
            for a in 0..q {
                let mut step = 0.0;
                for b in 0..=a {
                    step += chol[a * q + b] * z[b];
                }
                theta[a] += scale * step;
            }
            softmax_with_zero(&theta, &mut proposal[r * n..(r + 1) * n]);
        }
        let mut new_ll = vec![0.0; len];
        for j in 0..upto {
            let (delta, choice) = evidence.answer(j);
            for (r, l) in new_ll.iter_mut().enumerate() {
                *l += model.log_prob(choice, model.d(dot(&proposal[r * n..(r + 1) * n], delta)));
            }
        }
        let mut accepted = 0u64;
        for r in 0..len {
            let new = &proposal[r * n..(r + 1) * n];
            if new.iter().any(|&x| x <= 0.0 || !x.is_finite()) || !new_ll[r].is_finite() {
                continue;
            }
            let old = &wc[r * n..(r + 1) * n];
            let log_jac = |x: &[f64]| x.iter().map(|&v| libm::log(v)).sum::<f64>();
            let log_alpha = new_ll[r] - lc[r] + log_jac(new) - log_jac(old);
            if log_u[r] < log_alpha {
                wc[r * n..(r + 1) * n].copy_from_slice(new);
                lc[r] = new_ll[r];
                accepted += 1;
            }
        }
        accepted
    });
    accepted.iter().sum()
}

/// `w = softmax([θ, 0])`.
#[inline]
fn softmax_with_zero(theta: &[f64], out: &mut [f64]) {
    let m = theta.iter().copied().fold(0.0f64, f64::max);
    let n = out.len();
    let mut total = 0.0;
    for (o, &t) in out.iter_mut().zip(theta) {
        *o = libm::exp(t - m);
        total += *o;
    }
    out[n - 1] = libm::exp(-m);
    total += out[n - 1];
    for o in out.iter_mut() {
        *o /= total;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cholesky_reconstructs() {
        let a = [4.0, 2.0, 0.6, 2.0, 2.0, 0.5, 0.6, 0.5, 3.0];
        let l = cholesky(&a, 3).unwrap();
        for i in 0..3 {
            for j in 0..3 {
                let s: f64 = (0..3).map(|k| l[i * 3 + k] * l[j * 3 + k]).sum();
                assert!((s - a[i * 3 + j]).abs() < 1e-12);
            }
        }
        assert!(cholesky(&[1.0, 2.0, 2.0, 1.0], 2).is_none());
    }

    #[test]
    fn prior_only_is_uniform_on_the_simplex() {
        let model = ChoiceModel::new(10.0, 0.5);
        let ev = Evidence::new(3);
        let s = SmcSettings { particles: 20_000, ess_threshold: 0.5, moves: 2, seed: 1 };
        let p = infer(&model, &ev, &s, &|| false).unwrap();
        // Dirichlet(1,1,1): mean 1/3, variance (1/3)(2/3)/4 = 1/18.
        for st in p.weight_stats() {
            assert!((st.mean - 1.0 / 3.0).abs() < 0.01, "{st:?}");
            assert!((st.std - (1.0f64 / 18.0).sqrt()).abs() < 0.01, "{st:?}");
            // Marginal Beta(1, 2): P(w <= x) = 1 − (1 − x)²; 5% at 1 − √0.95.
            assert!((st.p05 - (1.0 - 0.95f64.sqrt())).abs() < 0.005, "{st:?}");
            assert!((st.p95 - (1.0 - 0.05f64.sqrt())).abs() < 0.01, "{st:?}");
        }
        assert_eq!(p.information_nats(), 0.0);
        assert!((p.entropy_nats() + 2f64.ln()).abs() < 1e-12);
        for i in 0..p.len() {
            assert!((p.particle(i).iter().sum::<f64>() - 1.0).abs() < 1e-12);
        }
    }
}

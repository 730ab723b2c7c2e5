//! The posterior over attribute weights, rebuilt from the prior and every answer: sequential
//! Monte Carlo (resample–move particle filter, Chopin 2002; Del Moral, Doucet & Jasra 2006).
//!
//! Particles start as draws from the uniform (Dirichlet(1)) prior on the simplex with equal
//! weights. Answers are taken one at a time: each multiplies every particle's importance weight
//! by the answer's likelihood under that particle. When the effective sample size
//! `(Σw)² / Σw²` falls below a fraction of the particle count, the particles are resampled
//! (systematic resampling) and *rejuvenated*: a few random-walk Metropolis–Hastings sweeps that
//! leave the posterior given the answers so far invariant. The walk runs in additive log-ratio
//! coordinates `θ_k = ln(w_k / w_n)` with a symmetric step `L z` shaped by the particles' own
//! covariance (`L` its Cholesky factor, scaled by 2.38/√dim and adapted to the acceptance rate;
//! `z` uniform on [−√3, √3] per coordinate); the target in those coordinates is `Π w_k · L(w)`
//! (the Dirichlet(1) density times the Jacobian).
//!
//! With the rationality learned ([`ChoiceModel::learning_rationality`]) every particle also
//! carries `s = ln(λ / λ₀)`, drawn from its logistic prior, weighted by the answers with its own
//! λ, resampled with its weights and moved jointly with them: the walk then runs in `(θ, s)`,
//! its step shaped by the particles' covariance in those coordinates, and the target gains the
//! prior density of `s`. With λ fixed the filter is the plain one above.
//!
//! The filter also estimates the log marginal likelihood (the product of the mean incremental
//! weights), which gives the information the answers carry — `KL(posterior ‖ prior) =
//! E_post[ln L] − ln Z` — and the posterior's differential entropy `H(prior) − KL`.

use crate::choice::{Choice, ChoiceModel};
use crate::kernel::{self, BLOCK};
use crate::rng::{self, STREAM_MOVE, STREAM_PRIOR, STREAM_RESAMPLE, STREAM_SCALE};
use crate::{fastmath, par};

/// √3: uniform steps on [−√3, √3] have variance 1.
const SQRT_3: f64 = 1.732_050_807_568_877_2;

/// Answers whose likelihoods one parallel pass computes ahead (those after a rejuvenation are
/// computed again: more ahead means fewer passes but more waste).
const ANSWERS_PER_PASS: usize = 4;

/// Particles per parallel chunk, a multiple of [`BLOCK`] (fixed: results never depend on the
/// thread count).
const CHUNK: usize = 2 * BLOCK;

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

/// Particles stored in blocks of [`BLOCK`], each block attribute-major: particle `i = b·BLOCK + r`
/// of block `b` (holding `len_b` particles) has weight `k` at `data[b·BLOCK·n + k·len_b + r]`.
/// Kernels then run over contiguous columns, and chunks of whole blocks are contiguous.
#[derive(Clone, Debug, PartialEq)]
struct Cloud {
    n: usize,
    count: usize,
    data: Vec<f64>,
}

impl Cloud {
    fn zeros(n: usize, count: usize) -> Cloud {
        Cloud { n, count, data: vec![0.0; n * count] }
    }

    fn from_rows(n: usize, rows: &[f64]) -> Cloud {
        let mut c = Cloud::zeros(n, rows.len() / n);
        for (i, row) in rows.chunks_exact(n).enumerate() {
            c.set_row(i, row);
        }
        c
    }

    /// Where weight `k` of particle `i` lives.
    #[inline(always)]
    fn index(&self, i: usize, k: usize) -> usize {
        let (b, r) = (i / BLOCK, i % BLOCK);
        let len = BLOCK.min(self.count - b * BLOCK);
        b * BLOCK * self.n + k * len + r
    }

    #[inline]
    fn get(&self, i: usize, k: usize) -> f64 {
        self.data[self.index(i, k)]
    }

    #[inline]
    fn row(&self, i: usize, out: &mut [f64]) {
        for (k, o) in out.iter_mut().enumerate() {
            *o = self.get(i, k);
        }
    }

    #[inline]
    fn set_row(&mut self, i: usize, row: &[f64]) {
        for (k, &x) in row.iter().enumerate() {
            let at = self.index(i, k);
            self.data[at] = x;
        }
    }
}

/// A weighted particle approximation of the posterior over weights.
#[derive(Clone, Debug, PartialEq)]
pub struct Posterior {
    n: usize,
    /// The particles' weight vectors.
    cloud: Cloud,
    /// Normalised importance weights (sum 1).
    weights: Vec<f64>,
    /// ln L(w_i) over every answer.
    loglik: Vec<f64>,
    /// `s_i = ln(λ_i / λ₀)` of each particle (all 0 when λ is fixed).
    log_scale: Vec<f64>,
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

/// ln Γ(n) = ln((n−1)!) for the Dirichlet(1) density on the (n−1)-simplex.
fn ln_factorial(k: usize) -> f64 {
    (2..=k).map(|i| libm::log(i as f64)).sum()
}

impl Posterior {
    /// A posterior given directly by particles (particle-major, `n` values each, on the simplex)
    /// and unnormalised non-negative importance weights: for tests and external samplers. Its
    /// log-likelihoods and evidence are zero.
    pub fn from_weighted(n: usize, particles: &[f64], weights: &[f64]) -> Posterior {
        let total: f64 = weights.iter().sum();
        Posterior {
            n,
            cloud: Cloud::from_rows(n, particles),
            weights: weights.iter().map(|x| x / total).collect(),
            loglik: vec![0.0; weights.len()],
            log_scale: vec![0.0; weights.len()],
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
    pub fn particle(&self, i: usize) -> Vec<f64> {
        let mut row = vec![0.0; self.n];
        self.cloud.row(i, &mut row);
        row
    }

    /// Copies particle `i`'s weight vector into `out` (length `n`).
    pub fn particle_into(&self, i: usize, out: &mut [f64]) {
        self.cloud.row(i, out);
    }

    /// `ln(λ_i / λ₀)` of each particle: its rationality relative to the model's (all 0 unless
    /// the rationality is learned).
    pub fn log_rationality(&self) -> &[f64] {
        &self.log_scale
    }

    /// The posterior mean of the rationality multiplier `λ / λ₀` (1 when λ is fixed).
    pub fn rationality_multiplier(&self) -> f64 {
        self.weights.iter().zip(&self.log_scale).map(|(w, s)| w * libm::exp(*s)).sum()
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
        (0..self.n).map(|k| self.weights.iter().enumerate().map(|(i, wi)| wi * self.cloud.get(i, k)).sum()).collect()
    }

    /// Mean, standard deviation and 5th/95th percentiles of each weight.
    pub fn weight_stats(&self) -> Vec<WeightStats> {
        let mean = self.mean();
        let mut pairs: Vec<(f64, f64)> = Vec::with_capacity(self.len());
        (0..self.n)
            .map(|k| {
                pairs.clear();
                pairs.extend(self.weights.iter().enumerate().map(|(i, &wi)| (self.cloud.get(i, k), wi)));
                let var: f64 = pairs.iter().map(|(x, wi)| wi * (x - mean[k]).powi(2)).sum();
                let [p05, p95] = weighted_quantiles(&pairs, [0.05, 0.95]);
                WeightStats { mean: mean[k], std: var.max(0.0).sqrt(), p05, p95 }
            })
            .collect()
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

/// The smallest values whose cumulative weight (in value order) reaches each of `ps`, of
/// (value, weight) pairs. One pass bins the values (512 equal bins between the smallest and the
/// largest) and sums the weights per bin; each quantile's bin is then sorted alone. Sums run in
/// input order, so the answer is deterministic.
fn weighted_quantiles<const K: usize>(pairs: &[(f64, f64)], ps: [f64; K]) -> [f64; K] {
    const BINS: usize = 512;
    let (lo, hi) = pairs.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &(x, _)| (a.min(x), b.max(x)));
    if pairs.is_empty() || lo >= hi {
        return [if pairs.is_empty() { 0.0 } else { lo }; K];
    }
    let scale = BINS as f64 / (hi - lo);
    let bin = |x: f64| (((x - lo) * scale) as usize).min(BINS - 1);
    let mut mass = [0.0f64; BINS];
    for &(x, w) in pairs {
        mass[bin(x)] += w;
    }
    ps.map(|p| {
        let mut cum = 0.0;
        let mut b = 0;
        while b + 1 < BINS && cum + mass[b] < p {
            cum += mass[b];
            b += 1;
        }
        let mut inside: Vec<(f64, f64)> = pairs.iter().copied().filter(|&(x, _)| bin(x) == b).collect();
        inside.sort_by(|a, b| a.0.total_cmp(&b.0));
        for &(x, w) in &inside {
            cum += w;
            if cum >= p {
                return x;
            }
        }
        inside.last().map_or(hi, |&(x, _)| x)
    })
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
    let mut cloud = Cloud::zeros(n, count);
    let mut loglik = vec![0.0; count];
    let mut logw = vec![0.0; count];
    let learn = model.learns_rationality();
    // s = ln(λ / λ₀) ≥ 0 per particle, half-logistic(b) by the logistic's inverse CDF; e^s in
    // `mult`.
    let mut log_scale = vec![0.0; count];
    let mut mult = vec![1.0; count];
    if learn {
        let b = model.rationality_spread();
        for (i, (s, m)) in log_scale.iter_mut().zip(&mut mult).enumerate() {
            let u = rng::one(seed, i as u32, 0, STREAM_SCALE);
            *s = (b * (fastmath::ln(u) - fastmath::ln(1.0 - u))).abs();
            *m = fastmath::exp(*s);
        }
    }

    // Prior: Dirichlet(1) = normalised standard exponentials.
    par::chunks3(&mut cloud.data, n, &mut loglik, &mut logw, CHUNK, |c, wc, _, _| {
        let mut row = vec![0.0; n];
        for (b, blk) in wc.chunks_mut(BLOCK * n).enumerate() {
            let len = blk.len() / n;
            for r in 0..len {
                let i = (c * CHUNK + b * BLOCK + r) as u32;
                rng::fill(seed, i, 0, STREAM_PRIOR, &mut row);
                let mut total = 0.0;
                for x in row.iter_mut() {
                    *x = -fastmath::ln(*x);
                    total += *x;
                }
                for (k, x) in row.iter().enumerate() {
                    blk[k * len + r] = x / total;
                }
            }
        }
    });

    let mut log_evidence = 0.0;
    let mut rejuvenations = 0;
    let mut accepted = 0u64;
    let mut proposed = 0u64;
    let mut sweep = 0u32;
    let dim = n - 1 + usize::from(learn);
    let mut scale = 2.38 / (dim as f64).sqrt();
    let mut scratch = vec![0.0; count];
    // ln Σ e^{logw}: equal weights to start with.
    let mut before = libm::log(count as f64);
    let m = evidence.len();
    let mut inc: Vec<f64> = Vec::new();
    let mut j = 0;
    while j < m {
        if stop() {
            return Err(Interrupted);
        }
        // The next few answers' log-likelihoods for every particle in one parallel pass
        // (particle-major: `inc[i·width + a]`); then the weights take them one answer at a time.
        let width = ANSWERS_PER_PASS.min(m - j);
        inc.resize(count * width, 0.0);
        let mult_ref = &mult;
        par::zip_chunks(&cloud.data, n, &mut inc, width, CHUNK, |c, wc, ic| {
            let mut d = [0.0; BLOCK];
            let mut col = [0.0; BLOCK];
            for (b, (blk, ib)) in wc.chunks(BLOCK * n).zip(ic.chunks_mut(BLOCK * width)).enumerate() {
                let len = blk.len() / n;
                let m = &mult_ref[c * CHUNK + b * BLOCK..c * CHUNK + b * BLOCK + len];
                for a in 0..width {
                    let (delta, choice) = evidence.answer(j + a);
                    kernel::differences(model.rationality, delta, blk, &mut d[..len]);
                    if learn {
                        for (x, &k) in d[..len].iter_mut().zip(m) {
                            *x *= k;
                        }
                    }
                    col[..len].fill(0.0);
                    kernel::add_log_prob(model, choice, &d[..len], &mut col[..len]);
                    for (r, &x) in col[..len].iter().enumerate() {
                        ib[r * width + a] = x;
                    }
                }
            }
        });
        let mut next = j + width;
        for a in 0..width {
            for ((l, g), &x) in loglik.iter_mut().zip(logw.iter_mut()).zip(inc.iter().skip(a).step_by(width)) {
                *l += x;
                *g += x;
            }
            let (after, ess) = normalise(&logw, &mut scratch);
            log_evidence += after - before;
            before = after;
            if ess >= settings.ess_threshold * count as f64 {
                continue;
            }
            // Resample (systematic; `scratch` holds the normalised weights) ...
            let at = j + a;
            resample(
                &mut cloud,
                &mut loglik,
                &mut log_scale,
                &mut logw,
                &scratch,
                rng::one(seed, at as u32, 0, STREAM_RESAMPLE),
            );
            before = libm::log(count as f64);
            rejuvenations += 1;
            // ... and move; the later answers of this pass are computed again for the moved
            // particles.
            for _ in 0..settings.moves {
                if stop() {
                    return Err(Interrupted);
                }
                let chol = step_factor(&cloud, learn.then_some(&log_scale[..]));
                let acc = mh_sweep(
                    model,
                    evidence,
                    at + 1,
                    &mut cloud,
                    &mut loglik,
                    &mut log_scale,
                    &chol,
                    scale,
                    seed,
                    sweep,
                );
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
            if learn {
                for (m, &s) in mult.iter_mut().zip(&log_scale) {
                    *m = fastmath::exp(s);
                }
            }
            next = at + 1;
            break;
        }
        j = next;
    }
    normalise(&logw, &mut scratch);
    Ok(Posterior {
        n,
        cloud,
        weights: scratch,
        loglik,
        log_scale,
        log_evidence,
        rejuvenations,
        acceptance_rate: if proposed == 0 { 0.0 } else { accepted as f64 / proposed as f64 },
    })
}

/// Normalised weights of the log weights into `out`; returns (ln Σ e^{logw}, effective sample
/// size `(Σw)² / Σw²`).
fn normalise(logw: &[f64], out: &mut [f64]) -> (f64, f64) {
    let m = logw.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    kernel::exp_shifted(logw, m, out);
    let total = kernel::sum(out);
    let inv = 1.0 / total;
    for o in out.iter_mut() {
        *o *= inv;
    }
    let mut lanes = [0.0; 4];
    for c in out.chunks(BLOCK) {
        let mut sq = [0.0; BLOCK];
        for (s, x) in sq.iter_mut().zip(c) {
            *s = x * x;
        }
        kernel::lane_sum(&sq[..c.len()], &mut lanes);
    }
    (m + libm::log(total), 1.0 / kernel::lanes_total(&lanes))
}

/// Systematic resampling with offset `u` in (0, 1) and normalised weights `weights`: particle
/// `i` is copied about `count · W_i` times; afterwards every weight is equal.
fn resample(
    cloud: &mut Cloud,
    loglik: &mut Vec<f64>,
    log_scale: &mut Vec<f64>,
    logw: &mut [f64],
    weights: &[f64],
    u: f64,
) {
    let count = logw.len();
    let n = cloud.n;
    let mut new = Cloud::zeros(n, count);
    let mut new_ll = Vec::with_capacity(count);
    let mut new_s = Vec::with_capacity(count);
    let mut row = vec![0.0; n];
    let mut cum = weights[0];
    let mut i = 0;
    for k in 0..count {
        let target = (k as f64 + u) / count as f64;
        while i + 1 < count && cum < target {
            i += 1;
            cum += weights[i];
        }
        cloud.row(i, &mut row);
        new.set_row(k, &row);
        new_ll.push(loglik[i]);
        new_s.push(log_scale[i]);
    }
    *cloud = new;
    *loglik = new_ll;
    *log_scale = new_s;
    logw.fill(0.0);
}

/// Lower Cholesky factor (row-major, dim × dim) of the particles' covariance in log-ratio
/// coordinates, and `s` as the last coordinate when given (equal weights: called right after
/// resampling), with a small ridge.
fn step_factor(cloud: &Cloud, log_scale: Option<&[f64]>) -> Vec<f64> {
    let n = cloud.n;
    let theta_dim = n - 1;
    let q = theta_dim + usize::from(log_scale.is_some());
    let count = cloud.count;
    let mut mean = vec![0.0; q];
    let mut cov = vec![0.0; q * q];
    // θ of every particle, particle-major, from ln w a block at a time.
    let mut thetas = vec![0.0; count * q];
    let mut lw = vec![0.0; BLOCK * n];
    for (b, blk) in cloud.data.chunks(BLOCK * n).enumerate() {
        let bl = blk.len() / n;
        kernel::ln_column(blk, &mut lw[..bl * n]);
        for r in 0..bl {
            let theta = &mut thetas[(b * BLOCK + r) * q..(b * BLOCK + r + 1) * q];
            for (k, t) in theta.iter_mut().enumerate().take(theta_dim) {
                *t = lw[k * bl + r] - lw[theta_dim * bl + r];
            }
            if let Some(s) = log_scale {
                theta[theta_dim] = s[b * BLOCK + r];
            }
        }
    }
    for theta in thetas.chunks_exact(q) {
        for (m, t) in mean.iter_mut().zip(theta) {
            *m += t;
        }
    }
    for m in &mut mean {
        *m /= count as f64;
    }
    for theta in thetas.chunks_exact(q) {
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
/// first `upto` answers; with the rationality learned, `(θ, s)` move together (`chol` is then
/// `n × n`, `s` its last coordinate). Returns the number of accepted moves.
#[allow(clippy::too_many_arguments)]
fn mh_sweep(
    model: &ChoiceModel,
    evidence: &Evidence,
    upto: usize,
    cloud: &mut Cloud,
    loglik: &mut [f64],
    log_scale: &mut [f64],
    chol: &[f64],
    scale: f64,
    seed: u64,
    sweep: u32,
) -> u64 {
    let n = cloud.n;
    let learn = model.learns_rationality();
    let theta_dim = n - 1;
    let q = theta_dim + usize::from(learn);
    let accepted = par::chunks3(&mut cloud.data, n, loglik, log_scale, CHUNK, |c, wc, lc, sc| {
        let mut u = vec![0.0; BLOCK * (q + 1)];
        let mut z = vec![0.0; BLOCK * q];
        let mut step = vec![0.0; BLOCK * q];
        let mut lw = vec![0.0; BLOCK * n];
        let mut pt = vec![0.0; BLOCK * n];
        let mut e = vec![0.0; BLOCK * n];
        let mut log_u = [0.0; BLOCK];
        let mut log_jac = [0.0; BLOCK];
        let mut new_ll = [0.0; BLOCK];
        let mut new_s = [0.0; BLOCK];
        let mut new_m = [0.0; BLOCK];
        let mut d = [0.0; BLOCK];
        let mut urow = vec![0.0; q + 1];
        let mut accepted = 0u64;
        for (b, ((blk, lb), sb)) in
            wc.chunks_mut(BLOCK * n).zip(lc.chunks_mut(BLOCK)).zip(sc.chunks_mut(BLOCK)).enumerate()
        {
            let bl = lb.len();
            let (u, z, step) = (&mut u[..bl * (q + 1)], &mut z[..bl * q], &mut step[..bl * q]);
            let (lw, pt, e) = (&mut lw[..bl * n], &mut pt[..bl * n], &mut e[..bl * n]);
            // Uniforms, attribute-major: q for the step, one for the acceptance.
            for r in 0..bl {
                let i = (c * CHUNK + b * BLOCK + r) as u32;
                rng::fill(seed, i, sweep, STREAM_MOVE, &mut urow);
                for (k, &x) in urow.iter().enumerate() {
                    u[k * bl + r] = x;
                }
            }
            // Steps uniform on [−√3, √3] (mean 0, variance 1): any symmetric step keeps
            // Metropolis–Hastings exact, and this one costs no transcendental function.
            for (zk, &uk) in z.iter_mut().zip(&u[..q * bl]) {
                *zk = (2.0 * uk - 1.0) * SQRT_3;
            }
            kernel::ln_column(&u[q * bl..], &mut log_u[..bl]);
            // The step scale · L z, column by column.
            for a in 0..q {
                let st = &mut step[a * bl..(a + 1) * bl];
                st.fill(0.0);
                for bb in 0..=a {
                    let l = chol[a * q + bb];
                    for (x, &zr) in st.iter_mut().zip(&z[bb * bl..(bb + 1) * bl]) {
                        *x += l * zr;
                    }
                }
                for x in st.iter_mut() {
                    *x *= scale;
                }
            }
            kernel::ln_column(blk, lw);
            kernel::propose(n, lw, &step[..theta_dim * bl], pt, e, &mut log_jac[..bl]);
            if learn {
                let st = &step[theta_dim * bl..q * bl];
                for r in 0..bl {
                    new_s[r] = sb[r] + st[r];
                    new_m[r] = fastmath::exp(new_s[r]);
                    log_jac[r] += model.ln_scale_prior(new_s[r]) - model.ln_scale_prior(sb[r]);
                }
            }
            new_ll[..bl].fill(0.0);
            for j in 0..upto {
                let (delta, choice) = evidence.answer(j);
                kernel::differences(model.rationality, delta, pt, &mut d[..bl]);
                if learn {
                    for (x, &m) in d[..bl].iter_mut().zip(&new_m[..bl]) {
                        *x *= m;
                    }
                }
                kernel::add_log_prob(model, choice, &d[..bl], &mut new_ll[..bl]);
            }
            for r in 0..bl {
                let valid =
                    (0..n).all(|k| pt[k * bl + r] > 0.0) && new_ll[r].is_finite() && (!learn || new_s[r] >= 0.0);
                let log_alpha = new_ll[r] - lb[r] + log_jac[r];
                if valid && log_u[r] < log_alpha {
                    for k in 0..n {
                        blk[k * bl + r] = pt[k * bl + r];
                    }
                    lb[r] = new_ll[r];
                    if learn {
                        sb[r] = new_s[r];
                    }
                    accepted += 1;
                }
            }
        }
        accepted
    });
    accepted.iter().sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weighted_quantiles_match_sorting() {
        let mut state = 3u64;
        let mut next = || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        for len in [1, 2, 5, 31, 33, 100, 1000, 5000] {
            // Values with many ties, weights summing to 1.
            let mut pairs: Vec<(f64, f64)> = (0..len).map(|_| ((next() * 50.0).floor(), next())).collect();
            let total: f64 = pairs.iter().map(|x| x.1).sum();
            for x in &mut pairs {
                x.1 /= total;
            }
            let mut sorted = pairs.clone();
            sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
            for p in [0.0, 0.05, 0.3, 0.5, 0.95, 0.999] {
                let mut cum = 0.0;
                let want = sorted.iter().find(|x| {
                    cum += x.1;
                    cum >= p
                });
                let want = want.map_or(sorted[len - 1].0, |x| x.0);
                assert_eq!(weighted_quantiles(&pairs, [p])[0], want, "len {len} p {p}");
            }
        }
    }

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
        let q = Posterior::from_weighted(3, &[0.1, 0.2, 0.7, 0.3, 0.3, 0.4], &[1.0, 3.0]);
        assert_eq!(q.particle(1), vec![0.3, 0.3, 0.4]);
        assert_eq!(q.weights(), &[0.25, 0.75]);
    }
}

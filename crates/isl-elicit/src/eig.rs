//! Expected information gain of a question: the mutual information between the weights and the
//! answer, `I(W; Y) = H(E_W[P(Y|W)]) − E_W[H(P(Y|W))]`, under the particle posterior, in bits.
//!
//! Scoring works on a compact copy of the posterior: runs of identical particles (copies made
//! by resampling that no move has changed yet) merged into one with their summed weight, stored
//! attribute-major in blocks. Each candidate is then one vectorised pass (a difference, one
//! `exp` and one `ln` per particle); candidates are scored in parallel.
//!
//! With the rationality learned, each particle answers with its own λ: the information is then
//! about the weights and the rationality together, `I(W, Λ; Y)`.

use crate::choice::ChoiceModel;
use crate::kernel::{self, BLOCK};
use crate::posterior::Posterior;
use crate::{fastmath, par};

/// A question's expected information and its predicted answer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Score {
    /// Expected information gain in bits (at most log2 3).
    pub bits: f64,
    /// Predicted P(a).
    pub a: f64,
    /// Predicted P(b).
    pub b: f64,
    /// Predicted P(indifferent).
    pub indifferent: f64,
}

/// The posterior prepared for scoring: distinct particles, attribute-major per block.
struct Compact {
    n: usize,
    /// Blocks of up to [`BLOCK`] particles: (attribute-major values, weights, rationality
    /// multipliers `λ_i / λ₀`).
    blocks: Vec<(Vec<f64>, Vec<f64>, Vec<f64>)>,
    /// Whether the multipliers are used (λ learned).
    learn: bool,
}

impl Compact {
    fn new(model: &ChoiceModel, posterior: &Posterior) -> Compact {
        let n = posterior.attributes();
        let mut rows: Vec<f64> = Vec::with_capacity(posterior.len() * n);
        let mut weights: Vec<f64> = Vec::with_capacity(posterior.len());
        let mut scales: Vec<f64> = Vec::with_capacity(posterior.len());
        let log_scale = posterior.log_rationality();
        let mut p = vec![0.0; n];
        for (i, &wi) in posterior.weights().iter().enumerate() {
            posterior.particle_into(i, &mut p);
            let p = &p[..];
            let len = weights.len();
            if len > 0 && rows[(len - 1) * n..] == *p && scales[len - 1] == log_scale[i] {
                weights[len - 1] += wi;
            } else {
                rows.extend_from_slice(p);
                weights.push(wi);
                scales.push(log_scale[i]);
            }
        }
        let learn = model.learns_rationality();
        let blocks = rows
            .chunks(BLOCK * n)
            .zip(weights.chunks(BLOCK))
            .zip(scales.chunks(BLOCK))
            .map(|((r, w), s)| {
                let mut t = vec![0.0; r.len()];
                kernel::transpose(r, n, &mut t);
                let m = if learn { s.iter().map(|&x| fastmath::exp(x)).collect() } else { Vec::new() };
                (t, w.to_vec(), m)
            })
            .collect();
        Compact { n, blocks, learn }
    }

    fn score(&self, model: &ChoiceModel, delta: &[f64]) -> Score {
        debug_assert_eq!(delta.len(), self.n);
        let mut d = [0.0; BLOCK];
        let (mut ta, mut tb, mut th) = ([0.0; BLOCK], [0.0; BLOCK], [0.0; BLOCK]);
        let (mut la, mut lb, mut lh) = ([0.0; 4], [0.0; 4], [0.0; 4]);
        for (wt, weights, mult) in &self.blocks {
            let len = weights.len();
            kernel::differences(model.rationality, delta, wt, &mut d[..len]);
            if self.learn {
                for (x, &m) in d[..len].iter_mut().zip(mult) {
                    *x *= m;
                }
            }
            kernel::answer_terms(model, &d[..len], weights, &mut ta, &mut tb, &mut th);
            kernel::lane_sum(&ta[..len], &mut la);
            kernel::lane_sum(&tb[..len], &mut lb);
            kernel::lane_sum(&th[..len], &mut lh);
        }
        let (a, b, h) = (kernel::lanes_total(&la), kernel::lanes_total(&lb), kernel::lanes_total(&lh));
        let t = (1.0 - a - b).max(0.0);
        let marginal: f64 = [a, b, t].iter().filter(|&&p| p > 0.0).map(|&p| -p * libm::log(p)).sum();
        Score { bits: ((marginal - h) / std::f64::consts::LN_2).max(0.0), a, b, indifferent: t }
    }
}

/// Scores the question whose normalised difference `a − b` is `delta`.
pub fn score(model: &ChoiceModel, posterior: &Posterior, delta: &[f64]) -> Score {
    Compact::new(model, posterior).score(model, delta)
}

/// Scores every candidate (each a normalised difference vector), in parallel; results in
/// candidate order and independent of the thread count.
pub fn score_all(model: &ChoiceModel, posterior: &Posterior, deltas: &[Vec<f64>]) -> Vec<Score> {
    let compact = Compact::new(model, posterior);
    par::map(deltas, |_, delta| compact.score(model, delta))
}

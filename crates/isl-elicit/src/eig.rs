//! Expected information gain of a question: the mutual information between the weights and the
//! answer, `I(W; Y) = H(E_W[P(Y|W)]) − E_W[H(P(Y|W))]`, under the particle posterior, in bits.
//! Each candidate is scored by one pass over the particles (a dot product, one `exp` and one
//! `ln` per particle); candidates are scored in parallel.

use crate::choice::ChoiceModel;
use crate::par;
use crate::posterior::{Posterior, dot};

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

/// Particles per block of the scoring loop (the differences are computed a block at a time).
const BLOCK: usize = 256;

/// Scores the question whose normalised difference `a − b` is `delta`.
pub fn score(model: &ChoiceModel, posterior: &Posterior, delta: &[f64]) -> Score {
    let n = posterior.attributes();
    let w = posterior.particles();
    let weights = posterior.weights();
    let mut d = [0.0; BLOCK];
    // Four partial sums per quantity, combined in a fixed order at the end.
    let (mut pa, mut pb, mut h) = ([0.0; 4], [0.0; 4], [0.0; 4]);
    for (block, wb) in weights.chunks(BLOCK).enumerate() {
        let first = block * BLOCK;
        for (r, dr) in d.iter_mut().take(wb.len()).enumerate() {
            let i = first + r;
            *dr = model.d(dot(&w[i * n..(i + 1) * n], delta));
        }
        for (r, (&wi, &dr)) in wb.iter().zip(&d).enumerate() {
            let o = model.outcome(dr);
            let lane = r & 3;
            pa[lane] += wi * o.a;
            pb[lane] += wi * o.b;
            h[lane] += wi * model.entropy(&o, dr);
        }
    }
    let sum = |x: [f64; 4]| (x[0] + x[1]) + (x[2] + x[3]);
    let (a, b, h) = (sum(pa), sum(pb), sum(h));
    let t = (1.0 - a - b).max(0.0);
    let marginal: f64 = [a, b, t].iter().filter(|&&p| p > 0.0).map(|&p| -p * libm::log(p)).sum();
    Score { bits: ((marginal - h) / std::f64::consts::LN_2).max(0.0), a, b, indifferent: t }
}

/// Scores every candidate (each a normalised difference vector), in parallel; results in
/// candidate order and independent of the thread count.
pub fn score_all(model: &ChoiceModel, posterior: &Posterior, deltas: &[Vec<f64>]) -> Vec<Score> {
    par::map(deltas, |_, delta| score(model, posterior, delta))
}

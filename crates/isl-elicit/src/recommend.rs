//! Options under the posterior: expected utility (linear in the weights, so the utility at the
//! posterior mean), its spread, and the probability that each option is the best.

use crate::posterior::{Posterior, dot};

/// An option's value under the posterior.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OptionValue {
    /// E[u(option)].
    pub expected_utility: f64,
    /// Standard deviation of u(option) over the posterior.
    pub utility_std: f64,
    /// P(this option has the highest utility); ties go to the lower index.
    pub probability_best: f64,
}

/// Values of `options` (normalised attribute vectors) under `posterior`.
pub fn evaluate(posterior: &Posterior, options: &[Vec<f64>]) -> Vec<OptionValue> {
    let m = options.len();
    let mut mean = vec![0.0; m];
    let mut second = vec![0.0; m];
    let mut best = vec![0.0; m];
    let mut u = vec![0.0; m];
    let mut w = vec![0.0; posterior.attributes()];
    for (i, &wi) in posterior.weights().iter().enumerate() {
        posterior.particle_into(i, &mut w);
        let mut arg = 0;
        for (o, opt) in options.iter().enumerate() {
            u[o] = dot(&w, opt);
            if u[o] > u[arg] {
                arg = o;
            }
            mean[o] += wi * u[o];
            second[o] += wi * u[o] * u[o];
        }
        if m > 0 {
            best[arg] += wi;
        }
    }
    (0..m)
        .map(|o| OptionValue {
            expected_utility: mean[o],
            utility_std: (second[o] - mean[o] * mean[o]).max(0.0).sqrt(),
            probability_best: best[o],
        })
        .collect()
}

/// The option to recommend: the highest expected utility (ties: higher P(best), then lower
/// index). `None` without options.
pub fn recommend(values: &[OptionValue]) -> Option<usize> {
    (0..values.len()).reduce(|b, o| {
        let (x, y) = (&values[o], &values[b]);
        let better = x.expected_utility > y.expected_utility
            || (x.expected_utility == y.expected_utility && x.probability_best > y.probability_best);
        if better { o } else { b }
    })
}

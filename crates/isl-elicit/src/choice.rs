//! The choice model: Bradley–Terry (logit) with ties after Davidson (1970).
//!
//! A decision-maker with weights `w` on the simplex values an alternative `x` (normalised
//! attributes, see [`crate::Attributes`]) at `u(x) = w · x`. Asked "a or b?", with
//! `d = λ (u(a) − u(b))` (λ the *rationality*) and ν ≥ 0 the *indifference* parameter:
//!
//! ```text
//! P(a) = e^{d/2} / Z,   P(b) = e^{−d/2} / Z,   P(indifferent) = ν / Z,   Z = e^{d/2} + e^{−d/2} + ν
//! ```
//!
//! This is Bradley–Terry with strengths `π = e^{λu}` and Davidson's tie term `ν √(π_a π_b)`:
//! with ν = 0 it is the plain logit `P(a) = σ(d)`; ties are most likely when `u(a) = u(b)`
//! (probability `ν / (2 + ν)`) and vanish as the difference grows. `log P` is concave in `d`,
//! so the posterior over `w` is log-concave.
//!
//! The rationality can be learned from the answers instead of fixed
//! ([`ChoiceModel::learning_rationality`]): then λ = λ₀ e^s with λ₀ the given rationality, now
//! the least rationality considered, and `s ≥ 0` a further unknown with a half-logistic prior of
//! scale `b` (a consistent decision-maker's answers push λ up and the posterior over `w`
//! sharpens; noisy ones keep it near λ₀).

use serde::{Deserialize, Serialize};

use crate::fastmath;

/// An answer to "a or b?".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Choice {
    /// `a` is preferred.
    A,
    /// `b` is preferred.
    B,
    /// Neither is preferred.
    Indifferent,
}

/// Stable evaluation of the Davidson terms at `d`, scaled by `e^{−|d|/2}`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Outcome {
    /// P(a).
    pub a: f64,
    /// P(b).
    pub b: f64,
    /// P(indifferent).
    pub indifferent: f64,
    /// ln Z.
    pub ln_z: f64,
}

/// The parameters of the choice model.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ChoiceModel {
    /// λ > 0: how sharply utility differences decide answers.
    pub rationality: f64,
    /// ν ≥ 0: the weight of indifference.
    pub indifference: f64,
    /// ln ν (0 when ν = 0: the term is never used then).
    ln_nu: f64,
    /// b ≥ 0: the scale of the logistic prior of `s = ln(λ / rationality)`; 0: λ is fixed.
    rationality_spread: f64,
}

/// |d|/2 is clamped here: past it every probability is exact to f64 anyway (e^{-600} ≈ 0).
pub(crate) const MAX_HALF_D: f64 = 600.0;

impl ChoiceModel {
    /// The model with rationality λ and indifference ν (callers check λ > 0, ν ≥ 0, finite).
    pub fn new(rationality: f64, indifference: f64) -> ChoiceModel {
        let ln_nu = if indifference > 0.0 { libm::log(indifference) } else { 0.0 };
        ChoiceModel { rationality, indifference, ln_nu, rationality_spread: 0.0 }
    }

    /// The same model with λ learned from the answers: λ = `rationality` · e^s, `s ≥ 0`
    /// half-logistic with scale `spread` (≥ 0, finite; 0 keeps λ fixed).
    pub fn learning_rationality(mut self, spread: f64) -> ChoiceModel {
        self.rationality_spread = spread.max(0.0);
        self
    }

    /// The scale of the logistic prior of `ln(λ / rationality)` (0: λ fixed).
    pub fn rationality_spread(&self) -> f64 {
        self.rationality_spread
    }

    /// Whether λ is learned.
    pub fn learns_rationality(&self) -> bool {
        self.rationality_spread > 0.0
    }

    /// ln of the prior density of `s = ln(λ / rationality)` for `s ≥ 0`, up to a constant:
    /// `−|x| − 2 ln(1 + e^{−|x|})` at `x = s / b` (call only when λ is learned).
    #[inline(always)]
    pub(crate) fn ln_scale_prior(&self, s: f64) -> f64 {
        let x = (s / self.rationality_spread).abs();
        -x - 2.0 * fastmath::ln(1.0 + fastmath::exp(-x))
    }

    /// ln ν (0 when ν = 0).
    pub(crate) fn ln_nu(&self) -> f64 {
        self.ln_nu
    }

    /// `d` for a utility difference `u(a) − u(b)`.
    #[inline(always)]
    pub fn d(&self, utility_difference: f64) -> f64 {
        self.rationality * utility_difference
    }

    /// The three probabilities and ln Z at `d` (overflow-free for any finite `d`).
    #[inline(always)]
    pub fn outcome(&self, d: f64) -> Outcome {
        let h = (0.5 * d.abs()).min(MAX_HALF_D);
        let e = fastmath::exp(-h); // e^{-|d|/2}: Z = e^{h} (1 + e^2 + ν e)
        let zs = 1.0 + e * e + self.indifference * e;
        let inv = 1.0 / zs;
        let (big, small) = (inv, e * e * inv);
        let (a, b) = if d >= 0.0 { (big, small) } else { (small, big) };
        Outcome { a, b, indifferent: self.indifference * e * inv, ln_z: h + fastmath::ln(zs) }
    }

    /// ln P(choice | d).
    #[inline(always)]
    pub fn log_prob(&self, choice: Choice, d: f64) -> f64 {
        let h = (0.5 * d.abs()).min(MAX_HALF_D);
        let e = fastmath::exp(-h);
        let ln_zs = fastmath::ln(1.0 + e * e + self.indifference * e);
        // ln P(a) = d/2 − ln Z = d/2 − h − ln zs; with the clamp, d/2 is taken as ±h.
        let half = if d >= 0.0 { h } else { -h };
        let numerator = match choice {
            Choice::A => half,
            Choice::B => -half,
            Choice::Indifferent => self.ln_nu,
        };
        numerator - h - ln_zs
    }

    /// Entropy (nats) of the answer at `d`: `ln Z − (d/2)(P(a) − P(b)) − P(ind) ln ν`.
    #[inline(always)]
    pub fn entropy(&self, o: &Outcome, d: f64) -> f64 {
        let half = (0.5 * d).clamp(-MAX_HALF_D, MAX_HALF_D);
        let tie = if self.indifference > 0.0 { o.indifferent * self.ln_nu } else { 0.0 };
        o.ln_z - half * (o.a - o.b) - tie
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn direct(m: &ChoiceModel, d: f64) -> [f64; 3] {
        let (pa, pb) = (libm::exp(d / 2.0), libm::exp(-d / 2.0));
        let z = pa + pb + m.indifference;
        [pa / z, pb / z, m.indifference / z]
    }

    #[test]
    fn probabilities_match_the_direct_formula() {
        for nu in [0.0, 0.3, 1.0, 4.0] {
            let m = ChoiceModel::new(10.0, nu);
            for i in -400..=400 {
                let d = i as f64 * 0.1;
                let o = m.outcome(d);
                let p = direct(&m, d);
                assert!((o.a - p[0]).abs() < 1e-14 && (o.b - p[1]).abs() < 1e-14, "{d} {nu}");
                assert!((o.indifferent - p[2]).abs() < 1e-14);
                assert!((o.a + o.b + o.indifferent - 1.0).abs() < 1e-14);
                for (c, pc) in [(Choice::A, p[0]), (Choice::B, p[1]), (Choice::Indifferent, p[2])] {
                    if pc > 1e-300 {
                        assert!((m.log_prob(c, d) - libm::log(pc)).abs() < 1e-12, "{c:?} {d} {nu}");
                    }
                }
                let h: f64 = p.iter().filter(|&&q| q > 0.0).map(|&q| -q * libm::log(q)).sum();
                assert!((m.entropy(&o, d) - h).abs() < 1e-12, "entropy at {d}, nu {nu}");
            }
        }
    }

    #[test]
    fn extreme_differences_stay_finite() {
        let m = ChoiceModel::new(1000.0, 0.5);
        for d in [-1e9, -2000.0, 2000.0, 1e9] {
            let o = m.outcome(d);
            assert!(o.a.is_finite() && o.b.is_finite() && o.ln_z.is_finite());
            assert!(m.log_prob(Choice::A, d).is_finite());
            assert!(m.entropy(&o, d).abs() < 1e-12);
        }
        // At d = 0 ties have probability ν / (2 + ν).
        let o = m.outcome(0.0);
        assert!((o.indifferent - 0.5 / 2.5).abs() < 1e-15);
    }
}

//! Statistics over stored samples, reproducible bit for bit: sums are taken over fixed blocks of
//! [`STATS_BLOCK`] samples (in parallel on native targets) and the block sums are combined in
//! block order, so the thread count never changes a result.

use std::ops::Range;

/// Samples per summation block. Part of the engine's definition: changing it changes answers in
/// the last bits.
pub const STATS_BLOCK: usize = 4096;

/// `f` over consecutive blocks of `0..len`, results in block order.
pub(crate) fn per_block<T: Send>(len: usize, f: impl Fn(Range<usize>) -> T + Sync + Send) -> Vec<T> {
    let blocks = len.div_ceil(STATS_BLOCK);
    let range = move |b: usize| b * STATS_BLOCK..((b + 1) * STATS_BLOCK).min(len);
    #[cfg(not(target_arch = "wasm32"))]
    {
        use rayon::prelude::*;
        (0..blocks).into_par_iter().map(|b| f(range(b))).collect()
    }
    #[cfg(target_arch = "wasm32")]
    {
        (0..blocks).map(|b| f(range(b))).collect()
    }
}

/// Sums of tuples of partial sums, in block order.
fn sum_blocks<const K: usize>(parts: Vec<[f64; K]>) -> [f64; K] {
    let mut acc = [0.0; K];
    for p in parts {
        for k in 0..K {
            acc[k] += p[k];
        }
    }
    acc
}

/// Location and spread of (weighted) finite samples.
#[derive(Clone, Debug, PartialEq)]
pub struct Moments {
    /// Samples with a finite outcome (and a usable weight).
    pub finite: u64,
    /// Samples left out: non-finite outcome or NaN log-weight.
    pub non_finite: u64,
    /// Mean (self-normalised when weighted).
    pub mean: f64,
    /// Standard deviation (n − 1 denominator unweighted; Σw denominator weighted).
    pub std: f64,
    /// Standard error of the mean (delta method when weighted).
    pub std_error: f64,
    /// Effective sample size (Σw)²/Σw² when weighted.
    pub ess: Option<f64>,
    /// Σw (weights relative to the largest), or the finite count.
    pub total_weight: f64,
}

/// Normalised weights `exp(logw − max)` (0 for left-out samples), and the max; `None` weights
/// when `logw` is `None`. The max is over usable samples (`-inf` when every weight is zero).
pub(crate) fn weights(y: &[f64], logw: &[f64]) -> (Vec<f64>, f64) {
    let usable = |j: usize| y[j].is_finite() && !logw[j].is_nan();
    let maxes = per_block(y.len(), |r| r.filter(|&j| usable(j)).map(|j| logw[j]).fold(f64::NEG_INFINITY, f64::max));
    let max = maxes.into_iter().fold(f64::NEG_INFINITY, f64::max);
    let w = y
        .iter()
        .zip(logw)
        .map(|(&v, &l)| if v.is_finite() && !l.is_nan() && max > f64::NEG_INFINITY { libm::exp(l - max) } else { 0.0 })
        .collect();
    (w, max)
}

/// Moments of the finite samples of `y`, weighted by `w` when given (from [`weights`]).
pub(crate) fn moments(y: &[f64], w: Option<&[f64]>) -> Moments {
    match w {
        None => {
            let parts = per_block(y.len(), |r| {
                let mut s = [0.0; 2];
                for &v in &y[r] {
                    if v.is_finite() {
                        s[0] += 1.0;
                        s[1] += v;
                    }
                }
                s
            });
            let [n, sum] = sum_blocks(parts);
            let mean = if n > 0.0 { sum / n } else { f64::NAN };
            let [ss] = sum_blocks(per_block(y.len(), |r| {
                let mut s = [0.0];
                for &v in &y[r] {
                    if v.is_finite() {
                        s[0] += (v - mean) * (v - mean);
                    }
                }
                s
            }));
            // One sample says nothing about the spread: NaN (null in JSON), never a false 0 that
            // would meet any `target_error`.
            let std = if n > 1.0 { (ss / (n - 1.0)).sqrt() } else { f64::NAN };
            Moments {
                finite: n as u64,
                non_finite: y.len() as u64 - n as u64,
                mean,
                std,
                std_error: if n > 0.0 { std / n.sqrt() } else { f64::NAN },
                ess: None,
                total_weight: n,
            }
        }
        Some(w) => {
            let usable = |j: usize| y[j].is_finite() && !w[j].is_nan();
            let [n, sw, sww, swy] = sum_blocks(per_block(y.len(), |r| {
                let mut s = [0.0; 4];
                for j in r {
                    if y[j].is_finite() {
                        s[0] += 1.0;
                        s[1] += w[j];
                        s[2] += w[j] * w[j];
                        s[3] += w[j] * y[j];
                    }
                }
                s
            }));
            let mean = swy / sw;
            let [swd, swwd] = sum_blocks(per_block(y.len(), |r| {
                let mut s = [0.0; 2];
                for j in r.filter(|&j| usable(j)) {
                    let d = (y[j] - mean) * (y[j] - mean);
                    s[0] += w[j] * d;
                    s[1] += w[j] * w[j] * d;
                }
                s
            }));
            Moments {
                finite: n as u64,
                non_finite: y.len() as u64 - n as u64,
                mean,
                std: (swd / sw).sqrt(),
                std_error: swwd.sqrt() / sw,
                ess: Some(sw * sw / sww),
                total_weight: sw,
            }
        }
    }
}

/// Probability that a finite sample exceeds `t` (weighted when `w` is given), its standard
/// error, and the number of (unweighted) samples above `t`.
pub(crate) fn exceedance(y: &[f64], w: Option<&[f64]>, t: f64, m: &Moments) -> (f64, f64, u64) {
    let weight = |j: usize| w.map_or(1.0, |w| w[j]);
    let [hits, sw_hit] = sum_blocks(per_block(y.len(), |r| {
        let mut s = [0.0; 2];
        for j in r {
            if y[j].is_finite() && y[j] > t {
                s[0] += 1.0;
                s[1] += weight(j);
            }
        }
        s
    }));
    let p = sw_hit / m.total_weight;
    let se = match w {
        None => (p * (1.0 - p) / m.total_weight).sqrt(),
        Some(w) => {
            let [s] = sum_blocks(per_block(y.len(), |r| {
                let mut s = [0.0];
                for j in r {
                    if y[j].is_finite() {
                        let d = if y[j] > t { 1.0 - p } else { -p };
                        s[0] += w[j] * w[j] * d * d;
                    }
                }
                s
            }));
            s.sqrt() / m.total_weight
        }
    };
    (p, se, hits as u64)
}

/// Quantiles of the finite samples. Unweighted: linear interpolation between order statistics
/// at `h = (n − 1)·q` (numpy's default), found by selection. Weighted: the smallest sample whose
/// cumulative weight (samples in ascending order, ties in index order) reaches `q·Σw`.
pub(crate) fn quantiles(y: &[f64], w: Option<&[f64]>, qs: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..qs.len()).collect();
    order.sort_by(|&a, &b| qs[a].total_cmp(&qs[b]));
    let mut out = vec![f64::NAN; qs.len()];
    match w {
        None => {
            let mut v: Vec<f64> = y.iter().copied().filter(|v| v.is_finite()).collect();
            let n = v.len();
            if n == 0 {
                return out;
            }
            let mut start = 0;
            for k in order {
                let h = (n - 1) as f64 * qs[k];
                let lo = (h.floor() as usize).min(n - 1);
                let frac = h - lo as f64;
                if lo >= start {
                    v[start..].select_nth_unstable_by(lo - start, f64::total_cmp);
                    start = lo;
                }
                let x_lo = v[lo];
                let x_hi = if frac > 0.0 && lo + 1 < n {
                    v[lo + 1..].iter().copied().fold(f64::INFINITY, f64::min)
                } else {
                    x_lo
                };
                out[k] = x_lo + frac * (x_hi - x_lo);
            }
        }
        Some(w) => {
            let mut v: Vec<(f64, f64)> =
                y.iter().zip(w).filter(|(v, w)| v.is_finite() && **w > 0.0).map(|(&v, &w)| (v, w)).collect();
            v.sort_by(|a, b| a.0.total_cmp(&b.0));
            let total: f64 = v.iter().map(|p| p.1).sum();
            let mut cum = 0.0;
            let mut j = 0;
            for k in order {
                let target = qs[k] * total;
                while j < v.len() && cum + v[j].1 < target {
                    cum += v[j].1;
                    j += 1;
                }
                out[k] = v.get(j.min(v.len().saturating_sub(1))).map_or(f64::NAN, |p| p.0);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_match_sorting() {
        let y: Vec<f64> = (0..1001).map(|i| ((i * 7919) % 1001) as f64).chain([f64::NAN, f64::INFINITY]).collect();
        let q = quantiles(&y, None, &[0.5, 0.05, 0.999, 0.0001]);
        assert_eq!(q, vec![500.0, 50.0, 999.0, 0.1]);
        let w = vec![1.0; y.len()];
        let qw = quantiles(&y, Some(&w), &[0.5, 0.05]);
        assert_eq!(qw, vec![500.0, 50.0]);
    }

    #[test]
    fn moments_of_a_small_sample() {
        let m = moments(&[1.0, 2.0, 3.0, 4.0, f64::NAN], None);
        assert_eq!((m.finite, m.non_finite, m.mean), (4, 1, 2.5));
        assert!((m.std - (5.0f64 / 3.0).sqrt()).abs() < 1e-15);
        let w = [1.0, 1.0, 1.0, 1.0, 0.0];
        let mw = moments(&[1.0, 2.0, 3.0, 4.0, f64::NAN], Some(&w));
        assert_eq!(mw.mean, 2.5);
        assert_eq!(mw.ess, Some(4.0));
    }
}

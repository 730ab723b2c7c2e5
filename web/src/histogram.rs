//! The histogram of a counterfactual's samples, for the page's chart.

use serde::Serialize;

/// Share of the samples' weight in equal-width bins over the central 99% of the finite samples
/// (unweighted 0.5% and 99.5% order statistics); the tails go to `below` and `above`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Histogram {
    /// Lower edge of the first bin.
    pub lo: f64,
    /// Upper edge of the last bin.
    pub hi: f64,
    /// Each bin's share of the total weight (unweighted: of the finite samples).
    pub counts: Vec<f64>,
    /// Share below `lo`.
    pub below: f64,
    /// Share above `hi`.
    pub above: f64,
    /// Samples the histogram was made from (the first ones of the main run, at most
    /// [`crate::HISTOGRAM_SAMPLE_CAP`]).
    pub recorded: u64,
    /// Samples behind the answer (`samples_used`).
    pub samples_used: u64,
}

impl Histogram {
    /// The histogram of `y` (non-finite values and NaN log-weights left out, as in the answer's
    /// statistics) weighted by `exp(logw − max)` when `logw` is given, in `bins` bins.
    pub fn new(y: &[f64], logw: Option<&[f64]>, bins: usize, samples_used: u64) -> Histogram {
        let bins = bins.max(1);
        let usable = |j: usize| y[j].is_finite() && logw.is_none_or(|l| l.get(j).is_some_and(|w| !w.is_nan()));
        let mut values: Vec<f64> = (0..y.len()).filter(|&j| usable(j)).map(|j| y[j]).collect();
        let mut out = Histogram {
            lo: 0.0,
            hi: 1.0,
            counts: vec![0.0; bins],
            below: 0.0,
            above: 0.0,
            recorded: y.len() as u64,
            samples_used,
        };
        if values.is_empty() {
            return out;
        }
        let n = values.len();
        let lo = select(&mut values, n / 200);
        let hi = select(&mut values, (n - 1) - n / 200);
        let (lo, hi) = if hi > lo { (lo, hi) } else { (lo - 0.5, lo + 0.5) };
        out.lo = lo;
        out.hi = hi;
        let max_logw =
            logw.map_or(0.0, |l| (0..y.len()).filter(|&j| usable(j)).map(|j| l[j]).fold(f64::NEG_INFINITY, f64::max));
        let width = (hi - lo) / bins as f64;
        let mut total = 0.0;
        for j in (0..y.len()).filter(|&j| usable(j)) {
            let w = match logw {
                Some(l) if max_logw.is_finite() => (l[j] - max_logw).exp(),
                Some(_) => 0.0,
                None => 1.0,
            };
            total += w;
            let v = y[j];
            if v < lo {
                out.below += w;
            } else if v > hi {
                out.above += w;
            } else {
                let b = (((v - lo) / width) as usize).min(bins - 1);
                out.counts[b] += w;
            }
        }
        if total > 0.0 {
            out.counts.iter_mut().for_each(|c| *c /= total);
            out.below /= total;
            out.above /= total;
        }
        out
    }
}

/// The `k`-th smallest of `values` (reorders them).
fn select(values: &mut [f64], k: usize) -> f64 {
    let k = k.min(values.len().saturating_sub(1));
    *values.select_nth_unstable_by(k, f64::total_cmp).1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_values_fill_the_bins_evenly() {
        let y: Vec<f64> = (0..10_000).map(|i| i as f64).collect();
        let h = Histogram::new(&y, None, 10, 10_000);
        assert_eq!((h.lo, h.hi), (50.0, 9949.0));
        assert!((h.below - 0.005).abs() < 1e-12 && (h.above - 0.005).abs() < 1e-12);
        for c in &h.counts {
            assert!((c - 0.099).abs() < 2e-4, "{:?}", h.counts);
        }
    }

    #[test]
    fn weights_and_non_finite_values() {
        let y = [1.0, 2.0, f64::NAN, 2.0];
        let logw = [0.0, f64::NEG_INFINITY, 0.0, 0.0_f64.ln_1p()];
        let h = Histogram::new(&y, Some(&logw), 2, 4);
        let sum: f64 = h.counts.iter().sum::<f64>() + h.below + h.above;
        assert!((sum - 1.0).abs() < 1e-12);
        assert!((h.counts[0] - 0.5).abs() < 1e-12, "{h:?}");
        assert!((h.counts[1] - 0.5).abs() < 1e-12, "{h:?}");
    }

    #[test]
    fn constant_and_empty_samples() {
        let h = Histogram::new(&[3.0; 5], None, 4, 5);
        assert_eq!((h.lo, h.hi), (2.5, 3.5));
        assert_eq!(h.counts.iter().sum::<f64>(), 1.0);
        let e = Histogram::new(&[f64::NAN], None, 4, 1);
        assert_eq!(e.counts, vec![0.0; 4]);
    }
}

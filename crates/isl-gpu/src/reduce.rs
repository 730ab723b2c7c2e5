//! Host-side combination of the device's reductions: workgroup records into moments (Chan et
//! al.'s parallel formula, in f64, in sample order), and the three-level histogram of order keys
//! into quantiles.
//!
//! **Quantiles.** Every finite f32 sample has an order-preserving 32-bit key. Level A (during the
//! moments pass) counts the top 11 bits; the refine pass counts, for each level-A bin that holds
//! a wanted order statistic, the next 13 bits (a bin of 256 consecutive f32 values, relative
//! width at most 2⁻¹⁵ ≈ 3.1e-5); where such a bin is still wider than the tolerance, a second
//! refine pass counts the last 8 bits, which gives the order statistic exactly (the f32 sample
//! value). An order statistic inside a bin that is not refined to single values is placed by
//! linear interpolation of its rank inside the bin. The answer then interpolates between order
//! statistics at `h = (n − 1)·q` exactly as the CPU does ([`isl_mc::stats`]).

use isl_mc::stats::Moments;

use crate::device::Partial;

/// Running moments of finite samples: count, mean, sum of squared deviations, hits.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Accum {
    pub n: u64,
    pub mean: f64,
    pub m2: f64,
    pub hits: u64,
    pub sum_w: f64,
    pub sum_ww: f64,
}

impl Accum {
    /// Adds workgroup records of the moments mode.
    pub fn add_moments(&mut self, parts: &[Partial]) {
        for p in parts {
            self.hits += u64::from(p.hits);
            if p.n == 0 {
                continue;
            }
            let (nb, mb, m2b) = (f64::from(p.n), f64::from(p.a), f64::from(p.b));
            if self.n == 0 {
                self.n = u64::from(p.n);
                self.mean = mb;
                self.m2 = m2b;
                continue;
            }
            let na = self.n as f64;
            let nt = na + nb;
            let d = mb - self.mean;
            self.mean += d * (nb / nt);
            self.m2 += m2b + d * d * (na * (nb / nt));
            self.n += u64::from(p.n);
        }
    }

    /// Adds workgroup records of the tail mode.
    pub fn add_tail(&mut self, parts: &[Partial]) {
        for p in parts {
            self.n += u64::from(p.n);
            self.hits += u64::from(p.hits);
            self.sum_w += f64::from(p.a);
            self.sum_ww += f64::from(p.b);
        }
    }

    /// The moments of `total` samples drawn, the CPU's definitions (unweighted).
    pub fn moments(&self, total: u64) -> Moments {
        let n = self.n as f64;
        let std = if self.n > 1 { (self.m2.max(0.0) / (n - 1.0)).sqrt() } else { f64::NAN };
        Moments {
            finite: self.n,
            non_finite: total.saturating_sub(self.n),
            mean: if self.n > 0 { self.mean } else { f64::NAN },
            std,
            std_error: if self.n > 0 { std / n.sqrt() } else { f64::NAN },
            ess: None,
            total_weight: n,
        }
    }
}

/// The f32 of an order key.
pub fn from_key(k: u32) -> f32 {
    f32::from_bits(if k >= 0x8000_0000 { k ^ 0x8000_0000 } else { !k })
}

/// The order key of an f32 (as the shader computes it).
pub fn order_key(x: f32) -> u32 {
    let b = x.to_bits();
    if b >> 31 == 1 { !b } else { b ^ 0x8000_0000 }
}

/// Where an order statistic lies: a bin of keys `[lo_key, lo_key + width)` holding `count`
/// samples, of which it is the `rank`-th (0-based).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Located {
    pub lo_key: u32,
    pub width: u32,
    pub rank: u64,
    pub count: u64,
}

impl Located {
    /// The value: exact for a single-key bin, else linear in rank across the bin's values.
    pub fn value(&self) -> f64 {
        let lo = f64::from(from_key(self.lo_key));
        if self.width <= 1 || self.count == 0 {
            return lo;
        }
        let hi = f64::from(from_key(self.lo_key.saturating_add(self.width - 1)));
        if !(lo.is_finite() && hi.is_finite()) {
            return if lo.is_finite() { lo } else { hi };
        }
        lo + (hi - lo) * ((self.rank as f64 + 0.5) / self.count as f64)
    }

    /// The absolute width of the bin's value range.
    pub fn value_width(&self) -> f64 {
        if self.width <= 1 {
            return 0.0;
        }
        let lo = f64::from(from_key(self.lo_key));
        let hi = f64::from(from_key(self.lo_key.saturating_add(self.width - 1)));
        (hi - lo).abs()
    }
}

/// Finds the bin of `counts` holding rank `k` (0-based): its index and the rank inside it. A rank
/// past the total (the histograms disagree, which they should not) gives the last non-empty bin.
pub(crate) fn locate(counts: &[u64], k: u64) -> Option<(usize, u64)> {
    let mut before = 0u64;
    let mut last = None;
    for (i, &c) in counts.iter().enumerate() {
        if c == 0 {
            continue;
        }
        if k < before + c {
            return Some((i, k - before));
        }
        before += c;
        last = Some((i, c - 1));
    }
    last
}

/// The order statistics (0-based ranks) each quantile needs, and how to combine them.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct QuantilePlan {
    /// `(rank_lo, frac, rank_hi)`: value = x(lo) + frac·(x(hi) − x(lo)).
    pub parts: Vec<(u64, f64, u64)>,
}

impl QuantilePlan {
    /// The CPU's rule: `h = (n − 1)·q`, `lo = ⌊h⌋`, interpolate towards `lo + 1` when `h` is not
    /// an integer.
    pub fn new(n: u64, qs: &[f64]) -> QuantilePlan {
        let parts = qs
            .iter()
            .map(|&q| {
                let h = (n - 1) as f64 * q;
                let lo = (h.floor() as u64).min(n - 1);
                let frac = h - lo as f64;
                let hi = if frac > 0.0 && lo + 1 < n { lo + 1 } else { lo };
                (lo, frac, hi)
            })
            .collect();
        QuantilePlan { parts }
    }

    /// Every rank needed, sorted, without duplicates.
    pub fn ranks(&self) -> Vec<u64> {
        let mut r: Vec<u64> = self.parts.iter().flat_map(|&(lo, _, hi)| [lo, hi]).collect();
        r.sort_unstable();
        r.dedup();
        r
    }

    /// The quantiles from each rank's value.
    pub fn combine(&self, value: impl Fn(u64) -> f64) -> Vec<f64> {
        self.parts
            .iter()
            .map(|&(lo, frac, hi)| {
                let x_lo = value(lo);
                let x_hi = if hi != lo { value(hi) } else { x_lo };
                x_lo + frac * (x_hi - x_lo)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_order_floats() {
        let xs = [f32::NEG_INFINITY, -3.5, -1e-30, -0.0, 0.0, 1e-30, 2.0, 7.5e30, f32::INFINITY];
        for w in xs.windows(2) {
            assert!(order_key(w[0]) < order_key(w[1]), "{w:?}");
        }
        for x in xs {
            assert_eq!(from_key(order_key(x)).to_bits(), x.to_bits());
        }
    }

    #[test]
    fn chan_matches_two_pass() {
        let ys: Vec<f32> = (0..10_000).map(|i| 1000.0 + ((i * 7919) % 1013) as f32 * 0.01).collect();
        let parts: Vec<Partial> = ys
            .chunks(333)
            .map(|c| {
                let n = c.len() as f64;
                let mean = c.iter().map(|&y| f64::from(y)).sum::<f64>() / n;
                let m2 = c.iter().map(|&y| (f64::from(y) - mean).powi(2)).sum::<f64>();
                Partial { n: c.len() as u32, hits: 0, a: mean as f32, b: m2 as f32, lo: 0.0, hi: 0.0 }
            })
            .collect();
        let mut acc = Accum::default();
        acc.add_moments(&parts);
        let m = acc.moments(ys.len() as u64);
        let n = ys.len() as f64;
        let mean = ys.iter().map(|&y| f64::from(y)).sum::<f64>() / n;
        let var = ys.iter().map(|&y| (f64::from(y) - mean).powi(2)).sum::<f64>() / (n - 1.0);
        assert!((m.mean - mean).abs() < 1e-4, "{} {mean}", m.mean);
        assert!((m.std - var.sqrt()).abs() < 1e-5 * var.sqrt(), "{} {}", m.std, var.sqrt());
    }

    #[test]
    fn quantile_plan_is_numpy_linear() {
        let p = QuantilePlan::new(1001, &[0.5, 0.0001]);
        assert_eq!(p.parts, vec![(500, 0.0, 500), (0, 0.1, 1)]);
        assert_eq!(p.ranks(), vec![0, 1, 500]);
        assert_eq!(p.combine(|r| r as f64), vec![500.0, 0.1]);
        assert_eq!(locate(&[0, 3, 0, 2], 4), Some((3, 1)));
        assert_eq!(locate(&[0, 3, 0, 2], 9), Some((3, 1)));
    }
}

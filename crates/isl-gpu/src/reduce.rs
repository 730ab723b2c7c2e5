//! Host-side combination of the device's reductions: workgroup records into moments (Chan et
//! al.'s parallel formula, in f64, in sample order), and the three-level histogram of order keys
//! into quantiles.
//!
//! **Quantiles.** Every finite f32 sample has an order-preserving 32-bit key. Level A (during the
//! moments pass) counts the top 11 bits; the refine pass counts, for each level-A bin that holds
//! a wanted order statistic, the next 16 bits (a bin of 32 consecutive f32 values, relative
//! width at most 2⁻¹⁸ ≈ 3.8e-6); where such a bin is still wider than the tolerance, a second
//! refine pass counts the last 5 bits, which gives the order statistic exactly (the f32 sample
//! value). An order statistic inside a bin that is not refined to single values is placed by
//! linear interpolation of its rank inside the bin. The answer then interpolates between order
//! statistics at `h = (n − 1)·q` exactly as the CPU does ([`isl_mc::stats`]).
//!
//! **Weighted quantiles** (evidence) use the same three levels with weights instead of counts:
//! each sample adds `round(exp(lw − max)·2²⁴)` to its bin, summed exactly in 64 bits (a low word
//! and a carry word per bin), so the levels' totals agree bit for bit. The quantile at `q` is the
//! sample holding unit `⌈q·total⌉` of the cumulative weight in ascending order: isl-mc's smallest
//! sample whose cumulative weight reaches `q·Σw`.

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
            let (nb, mb, m2b) = (f64::from(p.n), f64::from(p.v[0]), f64::from(p.v[1]));
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
            self.sum_w += f64::from(p.v[0]);
            self.sum_ww += f64::from(p.v[1]);
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

/// Weighted statistics of finite samples (evidence), the host side of the kernel's `WRec`: with
/// `m` the largest usable log-weight so far and `w_i = exp(lw_i − m)`, `w = Σw_i`, `q = Σw_i²`,
/// `mu` the weighted mean, `s = Σw_i(y_i − mu)²`, `t = Σw_i²(y_i − mu)²`, `r = Σw_i²(y_i − mu)`,
/// `h`, `hq` = Σw_i, Σw_i² over samples above the threshold. `n` counts finite outcomes and
/// `hits` those above the threshold, whatever their weight (as isl-mc does).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct WAccum {
    pub n: u64,
    pub hits: u64,
    pub m: f64,
    pub w: f64,
    pub q: f64,
    pub mu: f64,
    pub s: f64,
    pub t: f64,
    pub r: f64,
    pub h: f64,
    pub hq: f64,
}

impl Default for WAccum {
    fn default() -> Self {
        WAccum { n: 0, hits: 0, m: f64::NEG_INFINITY, w: 0.0, q: 0.0, mu: 0.0, s: 0.0, t: 0.0, r: 0.0, h: 0.0, hq: 0.0 }
    }
}

/// `exp(from − to)` for `to ≥ from`, exactly 1 when they are equal (both −∞ included).
fn rescale(from: f64, to: f64) -> f64 {
    if from == to { 1.0 } else { (from - to).exp() }
}

impl WAccum {
    /// A record of the weighted-moments entry point.
    pub fn from_partial(p: &Partial) -> WAccum {
        let f = |k: usize| f64::from(p.v[k]);
        WAccum {
            n: u64::from(p.n),
            hits: u64::from(p.hits),
            m: f(0),
            w: f(1),
            q: f(2),
            mu: f(3),
            s: f(4),
            t: f(5),
            r: f(6),
            h: f(7),
            hq: f(8),
        }
    }

    /// One sample (for tests): outcome `y`, log-weight `lw`, above the threshold or not.
    #[cfg(test)]
    pub fn sample(y: f64, lw: f64, hit: bool) -> WAccum {
        let mut a = WAccum { n: 1, hits: u64::from(hit), ..WAccum::default() };
        if !lw.is_nan() && lw != f64::NEG_INFINITY {
            let hv = if hit { 1.0 } else { 0.0 };
            a = WAccum { m: lw, w: 1.0, q: 1.0, mu: y, h: hv, hq: hv, ..a };
        }
        a
    }

    /// Both sets of samples together (the kernel's `wrec_combine`, in f64).
    pub fn combine(&self, y: &WAccum) -> WAccum {
        let x = self;
        let m = x.m.max(y.m);
        let (a, b) = (rescale(x.m, m), rescale(y.m, m));
        let (wa, wb) = (x.w * a, y.w * b);
        let (qa, qb) = (x.q * a * a, y.q * b * b);
        let (ra, rb) = (x.r * a * a, y.r * b * b);
        let mut o = WAccum {
            n: x.n + y.n,
            hits: x.hits + y.hits,
            m,
            w: wa + wb,
            q: qa + qb,
            h: x.h * a + y.h * b,
            hq: x.hq * a * a + y.hq * b * b,
            ..WAccum::default()
        };
        if wa.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
            return WAccum { mu: y.mu, s: y.s * b, t: y.t * b * b, r: rb, ..o };
        }
        if wb.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
            return WAccum { mu: x.mu, s: x.s * a, t: x.t * a * a, r: ra, ..o };
        }
        let delta = y.mu - x.mu;
        let fb = wb / o.w;
        o.mu = x.mu + delta * fb;
        let (da, db) = (x.mu - o.mu, y.mu - o.mu);
        o.s = x.s * a + y.s * b + delta * delta * (wa * fb);
        o.t = (x.t * a * a + 2.0 * da * ra + da * da * qa) + (y.t * b * b + 2.0 * db * rb + db * db * qb);
        o.r = (ra + da * qa) + (rb + db * qb);
        o
    }

    /// Adds workgroup records of the weighted moments, in sample order.
    pub fn add(&mut self, parts: &[Partial]) {
        for p in parts {
            *self = self.combine(&WAccum::from_partial(p));
        }
    }

    /// The moments of `total` samples drawn, isl-mc's weighted definitions: self-normalised mean,
    /// `std = √(s/w)`, `std_error = √t / w` (delta method), `ess = w²/q`, `total_weight = w`.
    pub fn moments(&self, total: u64) -> Moments {
        Moments {
            finite: self.n,
            non_finite: total.saturating_sub(self.n),
            mean: if self.w > 0.0 { self.mu } else { f64::NAN },
            std: (self.s.max(0.0) / self.w).sqrt(),
            std_error: self.t.max(0.0).sqrt() / self.w,
            ess: Some(self.w * self.w / self.q),
            total_weight: self.w,
        }
    }

    /// The weighted P(y > threshold), its standard error (isl-mc's: √(Σw²(1[y > t] − p)²) / Σw),
    /// and the unweighted hits.
    pub fn exceedance(&self) -> (f64, f64, u64) {
        let p = self.h / self.w;
        let rest = (self.q - self.hq).max(0.0);
        let v = (1.0 - p) * (1.0 - p) * self.hq + p * p * rest;
        (p, v.max(0.0).sqrt() / self.w, self.hits)
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
                let mut v = [0f32; 14];
                v[0] = mean as f32;
                v[1] = m2 as f32;
                Partial { n: c.len() as u32, hits: 0, v }
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
    fn weighted_records_combine_like_the_two_pass_definition() {
        // Outcomes near 1000 with spread 1, log-weights over a wide range (the largest late, so
        // records are rescaled), some zero (−∞) and some unusable (NaN), threshold 1000.2.
        let t = 1000.2;
        let data: Vec<(f64, f64)> = (0..5000)
            .map(|i| {
                let y = 1000.0 + ((i * 7919) % 1013) as f64 / 506.0 - 1.0;
                let lw = match i % 97 {
                    0 => f64::NEG_INFINITY,
                    1 => f64::NAN,
                    _ => -30.0 + 25.0 * ((i * 31) % 1000) as f64 / 1000.0 + i as f64 * 1e-3,
                };
                (y, lw)
            })
            .collect();
        // The definition (isl-mc's stats): weights relative to the largest, two passes.
        let max = data.iter().filter(|d| !d.1.is_nan()).map(|d| d.1).fold(f64::NEG_INFINITY, f64::max);
        let w: Vec<f64> = data.iter().map(|d| if d.1.is_nan() { 0.0 } else { (d.1 - max).exp() }).collect();
        let sw: f64 = w.iter().sum();
        let sww: f64 = w.iter().map(|w| w * w).sum();
        let mean = data.iter().zip(&w).map(|(d, w)| w * d.0).sum::<f64>() / sw;
        let swd: f64 = data.iter().zip(&w).map(|(d, w)| w * (d.0 - mean).powi(2)).sum();
        let swwd: f64 = data.iter().zip(&w).map(|(d, w)| w * w * (d.0 - mean).powi(2)).sum();
        let hit: f64 = data.iter().zip(&w).filter(|(d, _)| d.0 > t).map(|(_, w)| w).sum();
        let p = hit / sw;
        let sp: f64 = data.iter().zip(&w).map(|(d, w)| w * w * (if d.0 > t { 1.0 - p } else { -p }).powi(2)).sum();
        // Records of uneven sizes, combined in order, as the host does with workgroup records.
        let mut acc = WAccum::default();
        for chunk in data.chunks(333) {
            let rec = chunk.iter().fold(WAccum::default(), |a, &(y, lw)| a.combine(&WAccum::sample(y, lw, y > t)));
            acc = acc.combine(&rec);
        }
        let m = acc.moments(data.len() as u64);
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs();
        assert_eq!((m.finite, m.non_finite, acc.m), (5000, 0, max));
        assert!(close(m.total_weight, sw), "{} {sw}", m.total_weight);
        assert!((m.mean - mean).abs() < 1e-12 * mean, "{} {mean}", m.mean);
        assert!(close(m.std, (swd / sw).sqrt()), "{} {}", m.std, (swd / sw).sqrt());
        assert!(close(m.std_error, swwd.sqrt() / sw), "{} {}", m.std_error, swwd.sqrt() / sw);
        assert!(close(m.ess.unwrap_or(0.0), sw * sw / sww));
        let (pe, se, hits) = acc.exceedance();
        assert!(close(pe, p) && close(se, sp.sqrt() / sw), "{pe} {p} {se} {}", sp.sqrt() / sw);
        assert_eq!(hits, data.iter().filter(|d| d.0 > t).count() as u64);
        // Nothing but zero weights: no weight at all (the estimator's zero-likelihood error).
        let none = [(1.0, f64::NEG_INFINITY), (2.0, f64::NEG_INFINITY)]
            .iter()
            .fold(WAccum::default(), |a, &(y, lw)| a.combine(&WAccum::sample(y, lw, false)));
        assert_eq!((none.n, none.w, none.m), (2, 0.0, f64::NEG_INFINITY));
        assert_eq!(none.moments(2).total_weight, 0.0);
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

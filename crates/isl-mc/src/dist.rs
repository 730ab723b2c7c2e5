//! Distributions of beliefs and noise, and the standard normal functions they are built on.
//!
//! Every random input is drawn as a uniform `u` in (0, 1) (see [`crate::rng`]) and, for the
//! normal family, turned into a standard normal `z = Φ⁻¹(u)` by Wichura's algorithm AS 241
//! (accurate to about 1e-16). Each distribution is then a fixed transform of its *standard
//! variate* — `z` for normal and lognormal, `u` for uniform and triangular:
//!
//! | dist | standard variate | value |
//! |------|------------------|-------|
//! | `normal` | z | `mean + std·z` |
//! | `lognormal` | z | `exp(mu + sigma·z)` |
//! | `uniform` | u | `low + (high − low)·u` |
//! | `triangular` | u | inverse CDF: `low + √(u·w·(mode−low))` if `u·w < mode−low`, else `high − √((1−u)·w·(high−mode))`, with `w = high − low` |
//!
//! Transcendentals come from the pure-Rust `libm` crate, so every target computes the same bits.

use serde::{Deserialize, Serialize};

use crate::error::McError;

/// A probability distribution of a belief (uncertain coefficient or intercept) or a noise term.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "dist", rename_all = "lowercase", deny_unknown_fields)]
pub enum Dist {
    /// Normal with mean and standard deviation (`std >= 0`; `std == 0` is the point mass at
    /// `mean`).
    Normal {
        /// Mean.
        mean: f64,
        /// Standard deviation, zero or positive.
        std: f64,
    },
    /// Uniform on `[low, high]` (`low <= high`; `low == high` is the point mass at `low`).
    Uniform {
        /// Lower bound.
        low: f64,
        /// Upper bound.
        high: f64,
    },
    /// Lognormal: `exp(N(mu, sigma²))` (`sigma >= 0`; `sigma == 0` is the point mass at
    /// `exp(mu)`).
    Lognormal {
        /// Mean of the logarithm.
        mu: f64,
        /// Standard deviation of the logarithm, zero or positive.
        sigma: f64,
    },
    /// Triangular on `[low, high]` with its peak at `mode` (`low <= mode <= high`;
    /// `low == mode == high` is the point mass at `low`).
    Triangular {
        /// Lower bound.
        low: f64,
        /// Peak.
        mode: f64,
        /// Upper bound.
        high: f64,
    },
}

/// Which standard variate a distribution transforms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VariateKind {
    /// A standard normal `z = Φ⁻¹(u)` (normal, lognormal).
    Normal,
    /// The uniform `u` itself (uniform, triangular).
    Uniform,
}

impl Dist {
    /// Checks the parameters: finite numbers, scales not negative, bounds in order. A zero
    /// scale or equal bounds are accepted: that is the point mass of [`Dist::point_value`], as
    /// numpy's samplers take it. `at` names the parameter in the error (`Demand.noise`).
    pub fn validate(&self, at: &str) -> Result<(), McError> {
        let bad = |message: String| Err(McError::InvalidParameter { at: at.to_string(), message });
        let fields: &[(&str, f64)] = match self {
            Dist::Normal { mean, std } => &[("mean", *mean), ("std", *std)],
            Dist::Uniform { low, high } => &[("low", *low), ("high", *high)],
            Dist::Lognormal { mu, sigma } => &[("mu", *mu), ("sigma", *sigma)],
            Dist::Triangular { low, mode, high } => &[("low", *low), ("mode", *mode), ("high", *high)],
        };
        for (name, v) in fields {
            if !v.is_finite() {
                return bad(format!("{name} must be a finite number"));
            }
        }
        match *self {
            Dist::Normal { std, .. } if std < 0.0 => {
                bad(format!("std must be zero (a known value) or positive (got {std})"))
            }
            Dist::Lognormal { sigma, .. } if sigma < 0.0 => {
                bad(format!("sigma must be zero (a known value) or positive (got {sigma})"))
            }
            Dist::Lognormal { mu, sigma } if sigma == 0.0 && !libm::exp(mu).is_finite() => {
                bad(format!("the point mass exp(mu) overflows (mu {mu})"))
            }
            Dist::Uniform { low, high } | Dist::Triangular { low, high, .. } if low > high => {
                bad(format!("low must not be greater than high (got low {low}, high {high})"))
            }
            Dist::Triangular { low, mode, high } if !(low..=high).contains(&mode) => {
                bad(format!("mode must lie in [low, high] (got mode {mode} outside [{low}, {high}])"))
            }
            Dist::Uniform { low, high } | Dist::Triangular { low, high, .. } if !(high - low).is_finite() => {
                bad("high - low overflows".to_string())
            }
            _ => Ok(()),
        }
    }

    /// The constant a degenerate distribution always takes — `mean` for `std == 0`, `exp(mu)`
    /// for `sigma == 0`, `low` for `low == high` (and `low == mode == high`) — or `None` for a
    /// distribution with spread. A point mass is a known number, not a belief: the checked model
    /// gives it no random slot ([`crate::CheckedModel`]), so sensitivity and importance sampling
    /// see no uncertainty in it, and the canonical model writes it as that number.
    pub fn point_value(&self) -> Option<f64> {
        match *self {
            Dist::Normal { mean, std } if std == 0.0 && mean.is_finite() => Some(mean),
            Dist::Lognormal { mu, sigma } if sigma == 0.0 && mu.is_finite() => {
                Some(libm::exp(mu)).filter(|v| v.is_finite())
            }
            Dist::Uniform { low, high } if low == high && low.is_finite() => Some(low),
            Dist::Triangular { low, mode, high } if low == high && mode == low && low.is_finite() => Some(low),
            _ => None,
        }
    }

    /// The standard variate this distribution transforms.
    pub fn kind(&self) -> VariateKind {
        match self {
            Dist::Normal { .. } | Dist::Lognormal { .. } => VariateKind::Normal,
            Dist::Uniform { .. } | Dist::Triangular { .. } => VariateKind::Uniform,
        }
    }

    /// The value for a standard variate `v` (z or u, see [`Dist::kind`]): the transforms of the
    /// module table. The compiled [`crate::Program`] computes exactly this.
    pub fn transform(&self, v: f64) -> f64 {
        match *self {
            Dist::Normal { mean, std } => std * v + mean,
            Dist::Lognormal { mu, sigma } => libm::exp(sigma * v + mu),
            Dist::Uniform { low, high } => (high - low) * v + low,
            Dist::Triangular { low, mode, high } => triangular(v, low, mode, high),
        }
    }

    /// The standard variate at which the distribution takes its `p`-quantile.
    pub fn standard_at_quantile(&self, p: f64) -> f64 {
        match self.kind() {
            VariateKind::Normal => inv_norm_cdf(p),
            VariateKind::Uniform => p,
        }
    }

    /// The `p`-quantile.
    pub fn quantile(&self, p: f64) -> f64 {
        self.transform(self.standard_at_quantile(p))
    }

    /// The standard variate at which the distribution takes its mean (`z = σ/2` for the
    /// lognormal, `u = F(mean)` for the triangular).
    pub fn standard_at_mean(&self) -> f64 {
        match *self {
            Dist::Normal { .. } => 0.0,
            Dist::Lognormal { sigma, .. } => 0.5 * sigma,
            Dist::Uniform { .. } => 0.5,
            Dist::Triangular { low, mode, high } => triangular_cdf(self.mean(), low, mode, high),
        }
    }

    /// The mean.
    pub fn mean(&self) -> f64 {
        match *self {
            Dist::Normal { mean, .. } => mean,
            Dist::Lognormal { mu, sigma } => libm::exp(mu + 0.5 * sigma * sigma),
            Dist::Uniform { low, high } => 0.5 * (low + high),
            Dist::Triangular { low, mode, high } => (low + mode + high) / 3.0,
        }
    }

    /// The variance.
    pub fn variance(&self) -> f64 {
        match *self {
            Dist::Normal { std, .. } => std * std,
            Dist::Lognormal { mu, sigma } => libm::expm1(sigma * sigma) * libm::exp(2.0 * mu + sigma * sigma),
            Dist::Uniform { low, high } => (high - low) * (high - low) / 12.0,
            Dist::Triangular { low, mode, high } => {
                (low * low + mode * mode + high * high - low * mode - low * high - mode * high) / 18.0
            }
        }
    }

    /// The natural logarithm of the density at `x` (`-inf` outside the support).
    pub fn log_pdf(&self, x: f64) -> f64 {
        match *self {
            Dist::Normal { mean, std } => {
                let d = (x - mean) / std;
                -0.5 * d * d - libm::log(std) - HALF_LN_2PI
            }
            Dist::Lognormal { mu, sigma } => {
                if x > 0.0 {
                    let lx = libm::log(x);
                    let d = (lx - mu) / sigma;
                    -0.5 * d * d - lx - libm::log(sigma) - HALF_LN_2PI
                } else {
                    f64::NEG_INFINITY
                }
            }
            Dist::Uniform { low, high } => {
                if (low..=high).contains(&x) {
                    -libm::log(high - low)
                } else {
                    f64::NEG_INFINITY
                }
            }
            Dist::Triangular { low, mode, high } => {
                let pdf = if x < low || x > high {
                    0.0
                } else if x < mode {
                    2.0 * (x - low) / ((high - low) * (mode - low))
                } else if x > mode {
                    2.0 * (high - x) / ((high - low) * (high - mode))
                } else {
                    2.0 / (high - low)
                };
                if pdf > 0.0 { libm::log(pdf) } else { f64::NEG_INFINITY }
            }
        }
    }
}

/// ln(2π)/2.
pub const HALF_LN_2PI: f64 = 0.918_938_533_204_672_8;

/// The triangular inverse CDF at `u` (see the module table).
#[inline]
pub fn triangular(u: f64, low: f64, mode: f64, high: f64) -> f64 {
    let width = high - low;
    if u * width < mode - low {
        low + (u * width * (mode - low)).sqrt()
    } else {
        high - ((1.0 - u) * width * (high - mode)).sqrt()
    }
}

/// The triangular CDF at `x`.
pub fn triangular_cdf(x: f64, low: f64, mode: f64, high: f64) -> f64 {
    if x <= low {
        0.0
    } else if x >= high {
        1.0
    } else if x <= mode {
        (x - low) * (x - low) / ((high - low) * (mode - low))
    } else {
        1.0 - (high - x) * (high - x) / ((high - low) * (high - mode))
    }
}

/// The standard normal CDF Φ(z) = erfc(−z/√2)/2 (libm's erfc).
#[inline]
pub fn norm_cdf(z: f64) -> f64 {
    0.5 * libm::erfc(-z * std::f64::consts::FRAC_1_SQRT_2)
}

/// The upper tail 1 − Φ(z) = erfc(z/√2)/2, accurate far into the tail.
#[inline]
pub fn norm_sf(z: f64) -> f64 {
    0.5 * libm::erfc(z * std::f64::consts::FRAC_1_SQRT_2)
}

// The published coefficients, digit for digit (the compiler rounds each correctly).
#[allow(clippy::excessive_precision)]
mod as241 {
    // Wichura, "Algorithm AS 241: The percentage points of the normal distribution", Applied
    // Statistics 37 (1988) 477-484 (PPND16). Coefficients lowest degree first.
    pub(super) const A: [f64; 8] = [
        3.387_132_872_796_366_608,
        1.331_416_678_917_843_774_5e2,
        1.971_590_950_306_551_442_7e3,
        1.373_169_376_550_946_112_5e4,
        4.592_195_393_154_987_145_7e4,
        6.726_577_092_700_870_085_3e4,
        3.343_057_558_358_812_810_5e4,
        2.509_080_928_730_122_672_7e3,
    ];
    pub(super) const B: [f64; 8] = [
        1.0,
        4.231_333_070_160_091_125_2e1,
        6.871_870_074_920_579_083_0e2,
        5.394_196_021_424_751_107_7e3,
        2.121_379_430_158_659_586_7e4,
        3.930_789_580_009_271_061_0e4,
        2.872_908_573_572_194_267_4e4,
        5.226_495_278_852_854_561_0e3,
    ];
    pub(super) const C: [f64; 8] = [
        1.423_437_110_749_683_577_34,
        4.630_337_846_156_545_295_90,
        5.769_497_221_460_691_405_50,
        3.647_848_324_763_204_605_04,
        1.270_458_252_452_368_382_58,
        2.417_807_251_774_506_117_70e-1,
        2.272_384_498_926_918_458_33e-2,
        7.745_450_142_783_414_076_40e-4,
    ];
    pub(super) const D: [f64; 8] = [
        1.0,
        2.053_191_626_637_758_821_87,
        1.676_384_830_183_803_849_40,
        6.897_673_349_851_000_045_50e-1,
        1.481_039_764_274_800_745_90e-1,
        1.519_866_656_361_645_719_66e-2,
        5.475_938_084_995_344_946_00e-4,
        1.050_750_071_644_416_843_24e-9,
    ];
    pub(super) const E: [f64; 8] = [
        6.657_904_643_501_103_777_20,
        5.463_784_911_164_114_369_90,
        1.784_826_539_917_291_335_80,
        2.965_605_718_285_048_912_30e-1,
        2.653_218_952_657_612_309_30e-2,
        1.242_660_947_388_078_438_60e-3,
        2.711_555_568_743_487_578_15e-5,
        2.010_334_399_292_288_132_65e-7,
    ];
    pub(super) const F: [f64; 8] = [
        1.0,
        5.998_322_065_558_879_376_90e-1,
        1.369_298_809_227_358_053_10e-1,
        1.487_536_129_085_061_485_25e-2,
        7.868_691_311_456_132_591_00e-4,
        1.846_318_317_510_054_681_80e-5,
        1.421_511_758_316_445_888_70e-7,
        2.044_263_103_389_939_785_64e-15,
    ];
}
use as241::{A, B, C, D, E, F};

#[inline(always)]
fn horner(c: &[f64; 8], x: f64) -> f64 {
    ((((((c[7] * x + c[6]) * x + c[5]) * x + c[4]) * x + c[3]) * x + c[2]) * x + c[1]) * x + c[0]
}

/// AS 241's central region (|u − 0.5| ≤ 0.425); only valid there.
#[inline(always)]
fn inv_norm_central(q: f64) -> f64 {
    let r = 0.180_625 - q * q;
    q * horner(&A, r) / horner(&B, r)
}

/// AS 241's tail rational at `r = √(−ln p)`, for the smaller tail probability `p`.
#[inline(always)]
fn inv_norm_tail_rational(r: f64) -> f64 {
    if r <= 5.0 {
        let r = r - 1.6;
        horner(&C, r) / horner(&D, r)
    } else {
        let r = r - 5.0;
        horner(&E, r) / horner(&F, r)
    }
}

/// AS 241's tails (|u − 0.5| > 0.425).
#[inline(never)]
fn inv_norm_tail(u: f64, q: f64) -> f64 {
    let p = if q < 0.0 { u } else { 1.0 - u };
    if p <= 0.0 {
        return if q < 0.0 { f64::NEG_INFINITY } else { f64::INFINITY };
    }
    let v = inv_norm_tail_rational((-libm::log(p)).sqrt());
    if q < 0.0 { -v } else { v }
}

/// The standard normal quantile Φ⁻¹(u) by AS 241 (±inf at 0 and 1, NaN outside [0, 1]).
#[inline]
pub fn inv_norm_cdf(u: f64) -> f64 {
    if u.is_nan() || !(0.0..=1.0).contains(&u) {
        return f64::NAN;
    }
    let q = u - 0.5;
    if q.abs() <= 0.425 { inv_norm_central(q) } else { inv_norm_tail(u, q) }
}

/// Column form of [`inv_norm_cdf`] for `u` in [0, 1], bit for bit, with reusable scratch: the
/// central formula runs over the whole column (vectorised), the ~15% tail entries are gathered,
/// and their logarithm ([`log_positive_normal`], the same bits as `libm::log`), square root and
/// rational function run as columns again.
#[derive(Clone, Debug, Default)]
pub struct NormalColumn {
    idx: Vec<u32>,
    p: Vec<f64>,
    r: Vec<f64>,
}

impl NormalColumn {
    /// `z[j] = Φ⁻¹(u[j])` for `j < u.len()` (`z` at least as long as `u`).
    pub fn fill(&mut self, u: &[f64], z: &mut [f64]) {
        self.fill_with(u, z, false);
    }

    /// [`NormalColumn::fill`], gathering the tail entries with AVX-512F when `avx512` (the
    /// caller has checked the CPU).
    #[inline(always)]
    pub(crate) fn fill_with(&mut self, u: &[f64], z: &mut [f64], avx512: bool) {
        let n = u.len();
        let z = &mut z[..n];
        for (zi, &ui) in z.iter_mut().zip(u) {
            *zi = inv_norm_central(ui - 0.5);
        }
        if self.idx.len() < n + 16 {
            self.idx.resize(n + 16, 0);
            self.p.resize(n + 16, 0.0);
            self.r.resize(n + 16, 0.0);
        }
        let k = gather(u, &mut self.idx, &mut self.p, avx512);
        let (idx, p, r) = (&self.idx[..k], &self.p[..k], &mut self.r[..k]);
        // `p` carries the sign of q: the lower tail is stored negated.
        for (r, &sp) in r.iter_mut().zip(p) {
            let v = inv_norm_tail_rational((-log_positive_normal(sp.abs())).sqrt());
            *r = if sp < 0.0 { -v } else { v };
        }
        for ((&j, &sp), &v) in idx.iter().zip(p).zip(r.iter()) {
            let j = j as usize;
            z[j] = v;
            if !sp.abs().is_normal() {
                z[j] = inv_norm_tail(u[j], u[j] - 0.5);
            }
        }
    }
}

/// Gathers the tail entries (|u − 0.5| > 0.425): their indices, and their tail probability as
/// AS 241 computes it, `u` when q < 0 (stored negated) else `1 − u`. `idx` and `p` need
/// `u.len() + 16` entries.
#[inline(always)]
fn gather(u: &[f64], idx: &mut [u32], p: &mut [f64], avx512: bool) -> usize {
    #[cfg(target_arch = "x86_64")]
    if avx512 {
        // SAFETY: `avx512` is only set on CPUs with AVX-512F.
        return unsafe { gather_avx512(u, idx, p) };
    }
    let _ = avx512;
    gather_portable(u, idx, p, 0, 0)
}

/// Branch-free gathering from `u[from..]`, appending after `k` entries.
#[inline(always)]
fn gather_portable(u: &[f64], idx: &mut [u32], p: &mut [f64], from: usize, mut k: usize) -> usize {
    for (j, &ui) in u.iter().enumerate().skip(from) {
        let q = ui - 0.5;
        idx[k] = j as u32;
        p[k] = if q < 0.0 { -ui } else { 1.0 - ui };
        k += usize::from(q.abs() > 0.425);
    }
    k
}

/// [`gather_portable`] eight entries at a time with AVX-512F compress.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn gather_avx512(u: &[f64], idx: &mut [u32], p: &mut [f64]) -> usize {
    use std::arch::x86_64::*;
    let n = u.len();
    assert!(idx.len() >= n + 16 && p.len() >= n + 16);
    let (half, one, zero, bound) =
        (_mm512_set1_pd(0.5), _mm512_set1_pd(1.0), _mm512_setzero_pd(), _mm512_set1_pd(0.425));
    let iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 0, 0, 0, 0, 0, 0, 0, 0);
    let mut k = 0;
    let mut j = 0;
    while j + 8 <= n {
        // SAFETY: j + 8 <= n = u.len().
        let uv = unsafe { _mm512_loadu_pd(u.as_ptr().add(j)) };
        let q = _mm512_sub_pd(uv, half);
        let tail = _mm512_cmp_pd_mask::<_CMP_GT_OQ>(_mm512_abs_pd(q), bound);
        // No branch on `tail`: with ~15% tail entries, an empty group of eight is unpredictable.
        let neg = _mm512_cmp_pd_mask::<_CMP_LT_OQ>(q, zero);
        let pv = _mm512_mask_blend_pd(neg, _mm512_sub_pd(one, uv), _mm512_sub_pd(zero, uv));
        let ids = _mm512_add_epi32(iota, _mm512_set1_epi32(j as i32));
        // SAFETY: k <= j, so k + 16 <= n + 16 <= the buffers' lengths.
        unsafe {
            _mm512_storeu_pd(p.as_mut_ptr().add(k), _mm512_maskz_compress_pd(tail, pv));
            _mm512_storeu_si512(idx.as_mut_ptr().add(k).cast(), _mm512_maskz_compress_epi32(u16::from(tail), ids));
        }
        k += tail.count_ones() as usize;
        j += 8;
    }
    gather_portable(u, idx, p, j, k)
}

/// `libm::log(x)` for positive normal finite `x`, bit for bit, without branches (so that it
/// vectorises): the same argument reduction, polynomial and operation order as libm's (FreeBSD
/// e_log.c). Other inputs give meaningless values; callers route them to `libm::log`.
#[inline(always)]
#[allow(clippy::excessive_precision)] // libm's constants, digit for digit
pub fn log_positive_normal(x: f64) -> f64 {
    const LN2_HI: f64 = 6.93147180369123816490e-01; /* 3fe62e42 fee00000 */
    const LN2_LO: f64 = 1.90821492927058770002e-10; /* 3dea39ef 35793c76 */
    const LG1: f64 = 6.666666666666735130e-01; /* 3FE55555 55555593 */
    const LG2: f64 = 3.999999999940941908e-01; /* 3FD99999 9997FA04 */
    const LG3: f64 = 2.857142874366239149e-01; /* 3FD24924 94229359 */
    const LG4: f64 = 2.222219843214978396e-01; /* 3FCC71C5 1D8E78AF */
    const LG5: f64 = 1.818357216161805012e-01; /* 3FC74664 96CB03DE */
    const LG6: f64 = 1.531383769920937332e-01; /* 3FC39A09 D078C69F */
    const LG7: f64 = 1.479819860511658591e-01; /* 3FC2F112 DF3E5244 */
    let ui = x.to_bits();
    let hx = ((ui >> 32) as u32).wrapping_add(0x3ff0_0000 - 0x3fe6_a09e);
    let k = ((hx >> 20) as i32) - 0x3ff;
    let hx = (hx & 0x000f_ffff) + 0x3fe6_a09e;
    let x = f64::from_bits((u64::from(hx) << 32) | (ui & 0xffff_ffff));
    let f = x - 1.0;
    let hfsq = 0.5 * f * f;
    let s = f / (2.0 + f);
    let z = s * s;
    let w = z * z;
    let t1 = w * (LG2 + w * (LG4 + w * LG6));
    let t2 = z * (LG1 + w * (LG3 + w * (LG5 + w * LG7)));
    let r = t2 + t1;
    let dk = f64::from(k);
    s * (hfsq + r) + dk * LN2_LO - hfsq + f + dk * LN2_HI
}

/// [`NormalColumn::fill`] with fresh scratch.
pub fn inv_norm_cdf_column(u: &[f64], z: &mut [f64]) {
    NormalColumn::default().fill(u, z);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_quantiles() {
        assert_eq!(inv_norm_cdf(0.5), 0.0);
        let cases = [(0.975, 1.959_963_984_540_054), (0.05, -1.644_853_626_951_472_2), (1e-10, -6.361_340_902_404_056)];
        for (p, z) in cases {
            assert!((inv_norm_cdf(p) - z).abs() < 1e-14 * z.abs().max(1.0), "{p}: {}", inv_norm_cdf(p));
        }
        assert_eq!(inv_norm_cdf(0.0), f64::NEG_INFINITY);
        assert_eq!(inv_norm_cdf(1.0), f64::INFINITY);
        assert!(inv_norm_cdf(1.5).is_nan());
    }

    #[test]
    fn log_replica_matches_libm() {
        let mut x = 4.0e-308_f64;
        while x < 1e300 {
            for m in [1.0, 1.1, std::f64::consts::SQRT_2, 1.5, 1.999_999_999, std::f64::consts::FRAC_1_SQRT_2] {
                let v = x * m;
                assert_eq!(log_positive_normal(v).to_bits(), libm::log(v).to_bits(), "{v:e}");
            }
            x *= 1.7;
        }
        for i in 0..200_000u32 {
            let u = crate::rng::uniform(i.wrapping_mul(2_654_435_761));
            assert_eq!(log_positive_normal(u).to_bits(), libm::log(u).to_bits(), "{u:e}");
        }
        assert_eq!(log_positive_normal(1.0).to_bits(), libm::log(1.0).to_bits());
    }

    #[test]
    fn column_matches_scalar() {
        let u: Vec<f64> = (0..10_000).map(|i| crate::rng::uniform((i as u32).wrapping_mul(2_654_435_761))).collect();
        let mut z = vec![0.0; u.len()];
        inv_norm_cdf_column(&u, &mut z);
        for (a, b) in u.iter().zip(&z) {
            assert_eq!(inv_norm_cdf(*a).to_bits(), b.to_bits());
        }
        let edges = [0.0, 1.0, 0.5, 0.075, 0.925, 1e-300, 1.0 - 1e-16, 4e-320, 0.0749, 0.9251, 0.3];
        let mut z = [0.0; 11];
        inv_norm_cdf_column(&edges, &mut z);
        for (a, b) in edges.iter().zip(&z) {
            assert_eq!(inv_norm_cdf(*a).to_bits(), b.to_bits(), "{a}");
        }
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f") {
            let mut col = NormalColumn::default();
            for len in [0, 3, 8, 9, 100, 256, 257] {
                let mut got = vec![0.0; len];
                let mut want = vec![0.0; len];
                col.fill_with(&u[..len], &mut got, true);
                NormalColumn::default().fill(&u[..len], &mut want);
                assert_eq!(got, want);
            }
        }
    }
}

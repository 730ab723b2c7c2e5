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
    /// Normal with mean and standard deviation (`std > 0`).
    Normal {
        /// Mean.
        mean: f64,
        /// Standard deviation, positive.
        std: f64,
    },
    /// Uniform on `[low, high]` (`low < high`).
    Uniform {
        /// Lower bound.
        low: f64,
        /// Upper bound.
        high: f64,
    },
    /// Lognormal: `exp(N(mu, sigma²))` (`sigma > 0`).
    Lognormal {
        /// Mean of the logarithm.
        mu: f64,
        /// Standard deviation of the logarithm, positive.
        sigma: f64,
    },
    /// Triangular on `[low, high]` with its peak at `mode` (`low < high`, `low <= mode <= high`).
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
    /// Checks the parameters: finite numbers, positive scales, ordered bounds. `at` names the
    /// parameter in the error (`Demand.noise`).
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
            Dist::Normal { std, .. } if std <= 0.0 => bad(format!("std must be positive (got {std})")),
            Dist::Lognormal { sigma, .. } if sigma <= 0.0 => bad(format!("sigma must be positive (got {sigma})")),
            Dist::Uniform { low, high } | Dist::Triangular { low, high, .. } if low >= high => {
                bad(format!("low must be less than high (got low {low}, high {high})"))
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

/// AS 241's tails (|u − 0.5| > 0.425).
#[inline(never)]
fn inv_norm_tail(u: f64, q: f64) -> f64 {
    let p = if q < 0.0 { u } else { 1.0 - u };
    if p <= 0.0 {
        return if q < 0.0 { f64::NEG_INFINITY } else { f64::INFINITY };
    }
    let r = (-libm::log(p)).sqrt();
    let v = if r <= 5.0 {
        let r = r - 1.6;
        horner(&C, r) / horner(&D, r)
    } else {
        let r = r - 5.0;
        horner(&E, r) / horner(&F, r)
    };
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

/// Column form of [`inv_norm_cdf`] for `u` in (0, 1): `z[j] = Φ⁻¹(u[j])`, bit for bit. The
/// central formula runs over the whole column (vectorised), then the ~15% tail entries are redone.
pub fn inv_norm_cdf_column(u: &[f64], z: &mut [f64]) {
    let z = &mut z[..u.len()];
    for (zi, &ui) in z.iter_mut().zip(u) {
        *zi = inv_norm_central(ui - 0.5);
    }
    for (zi, &ui) in z.iter_mut().zip(u) {
        let q = ui - 0.5;
        if q.abs() > 0.425 {
            *zi = inv_norm_tail(ui, q);
        }
    }
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
    fn column_matches_scalar() {
        let u: Vec<f64> = (0..10_000).map(|i| crate::rng::uniform((i as u32).wrapping_mul(2_654_435_761))).collect();
        let mut z = vec![0.0; u.len()];
        inv_norm_cdf_column(&u, &mut z);
        for (a, b) in u.iter().zip(&z) {
            assert_eq!(inv_norm_cdf(*a).to_bits(), b.to_bits());
        }
    }
}

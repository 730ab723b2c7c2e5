//! The standard normal quantile against libm's erfc, and the moments and quantiles of every
//! distribution as sampled through compiled programs.

mod common;

use common::*;
use isl_mc::Dist;
use isl_mc::dist::{inv_norm_cdf, norm_cdf, norm_sf};
use serde_json::json;

/// The error in z implied by Φ(z) − p: δz = (Φ(z) − p)/φ(z).
fn implied_z_error(z: f64, p: f64, phi_of_z: f64) -> f64 {
    let density = (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt();
    (phi_of_z - p) / density
}

#[test]
fn inverse_normal_round_trips_through_erfc() {
    // p from 1e-300 to 0.5 and the mirrored upper tail: Φ(Φ⁻¹(p)) = p, with the error measured
    // in z (δz = (Φ(z) − p)/φ(z)), which removes Φ's conditioning far in the tail.
    let mut worst: f64 = 0.0;
    let mut p = 1e-300_f64;
    while p < 0.5 {
        let z = inv_norm_cdf(p);
        let dz = implied_z_error(z, p, norm_cdf(z));
        assert!(dz.abs() <= 2e-15 * z.abs().max(1.0), "p {p:e}: z {z}, δz {dz:e}");
        worst = worst.max(dz.abs() / z.abs().max(1.0));
        // Upper tail: 1 − u is exact for these u, and 1 − Φ(z) comes from erfc directly.
        let u = 1.0 - p;
        if p > 1e-16 {
            let zu = inv_norm_cdf(u);
            let dz = -implied_z_error(zu, 1.0 - u, norm_sf(zu));
            assert!(dz.abs() <= 2e-15 * zu.abs().max(1.0), "u {u}: z {zu}, δz {dz:e}");
        }
        p *= 1.37;
    }
    assert!(worst < 1e-15, "worst relative z error {worst:e}");
    // And the other way round on a grid of z: Φ⁻¹(Φ(z)) = z.
    for i in -3700..=0 {
        let z = f64::from(i) / 100.0;
        let back = inv_norm_cdf(norm_cdf(z));
        assert!((back - z).abs() <= 2e-15 * z.abs().max(1.0), "z {z}: Φ⁻¹(Φ(z)) = {back}");
    }
}

#[test]
fn inverse_normal_is_symmetric_and_monotone() {
    let mut last = f64::NEG_INFINITY;
    let steps = 1u32 << 17;
    for i in 1..steps {
        // Dyadic u: 1 − u and u − 0.5 are exact, so AS 241 is exactly antisymmetric.
        let u = f64::from(i) / f64::from(steps);
        let z = inv_norm_cdf(u);
        assert!(z > last, "not increasing at {u}");
        last = z;
        assert_eq!(z, -inv_norm_cdf(1.0 - u), "{u}");
    }
}

/// Samples of a noise-only node with distribution `d`.
fn draws(d: serde_json::Value, n: usize, seed: u64) -> Vec<f64> {
    let spec = model(json!({"nodes": [{"name": "V", "noise": d}]}));
    raw(&spec, "V", &[], n, seed).outcome
}

#[test]
fn moments_of_every_distribution() {
    let n = 200_000;
    let cases = [
        json!({"dist": "normal", "mean": -3.0, "std": 2.5}),
        json!({"dist": "uniform", "low": -1.0, "high": 4.0}),
        json!({"dist": "lognormal", "mu": 0.5, "sigma": 0.4}),
        json!({"dist": "triangular", "low": 1.0, "mode": 2.0, "high": 6.0}),
        json!({"dist": "triangular", "low": 0.0, "mode": 0.0, "high": 1.0}),
        json!({"dist": "triangular", "low": 0.0, "mode": 1.0, "high": 1.0}),
    ];
    for (k, d) in cases.iter().enumerate() {
        let dist: Dist = serde_json::from_value(d.clone()).expect("dist");
        let y = draws(d.clone(), n, 10 + k as u64);
        assert_mean_var(&y, dist.mean(), dist.variance(), &format!("{d}"));
        // Quantiles: the empirical CDF at the closed-form quantile is within 4 binomial SE.
        for p in [0.05, 0.25, 0.5, 0.75, 0.95] {
            let x = dist.quantile(p);
            let below = y.iter().filter(|&&v| v <= x).count() as f64 / n as f64;
            let se = (p * (1.0 - p) / n as f64).sqrt();
            assert!((below - p).abs() <= 4.0 * se, "{d}: F(q({p})) = {below}");
        }
    }
}

#[test]
fn closed_form_moments_and_pdf() {
    let ln: Dist = serde_json::from_value(json!({"dist": "lognormal", "mu": 0.0, "sigma": 1.0})).expect("dist");
    assert!((ln.mean() - 1.0f64.exp().sqrt()).abs() < 1e-15);
    assert!((ln.variance() - (1.0f64.exp() - 1.0) * 1.0f64.exp()).abs() < 1e-14);
    // The standard variate at the mean maps back to the mean.
    for d in [
        json!({"dist": "lognormal", "mu": 0.3, "sigma": 0.8}),
        json!({"dist": "triangular", "low": -2.0, "mode": 3.0, "high": 4.0}),
        json!({"dist": "uniform", "low": -2.0, "high": 4.0}),
        json!({"dist": "normal", "mean": 7.0, "std": 2.0}),
    ] {
        let dist: Dist = serde_json::from_value(d.clone()).expect("dist");
        let at_mean = dist.transform(dist.standard_at_mean());
        assert!((at_mean - dist.mean()).abs() < 1e-12 * dist.mean().abs().max(1.0), "{d}");
        // Densities integrate to one (trapezoid over a wide grid).
        let (lo, hi) = (dist.quantile(1e-9), dist.quantile(1.0 - 1e-9));
        let steps = 200_000;
        let h = (hi - lo) / steps as f64;
        let mass: f64 = (0..=steps)
            .map(|i| {
                let w = if i == 0 || i == steps { 0.5 } else { 1.0 };
                w * dist.log_pdf(lo + h * i as f64).exp()
            })
            .sum::<f64>()
            * h;
        assert!((mass - 1.0).abs() < 1e-4, "{d}: mass {mass}");
    }
}

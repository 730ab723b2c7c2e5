//! Column kernels over blocks of particles stored attribute-major (`wt[k·len + r]`): plain
//! loops of `+ − × ÷`, min/max and bit operations that the compiler vectorises, and that give
//! the same bits on every target. Sums run in four interleaved lanes combined in a fixed order.

use crate::choice::{Choice, ChoiceModel, MAX_HALF_D};
use crate::fastmath;

/// Particles per block of the kernels.
pub(crate) const BLOCK: usize = 256;

/// Copies `rows` (particle-major, `n` values each) into `out` attribute-major: `out[k·len + r]`.
pub(crate) fn transpose(rows: &[f64], n: usize, out: &mut [f64]) {
    let len = rows.len() / n;
    for (r, row) in rows.chunks_exact(n).enumerate() {
        for (k, &x) in row.iter().enumerate() {
            out[k * len + r] = x;
        }
    }
}

/// Defines a kernel `$name` that runs `$portable` compiled for AVX-512F or AVX2 when the CPU
/// has them (x86-64), else as is. The wide versions are the same code: IEEE operations lane by
/// lane without contraction, so every version gives the same bits.
macro_rules! versioned {
    ($(#[$doc:meta])* fn $name:ident = $portable:ident($($arg:ident: $ty:ty),*) $body:block) => {
        $(#[$doc])*
        #[inline]
        pub(crate) fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                fn avx512($($arg: $ty),*) {
                    $portable($($arg),*)
                }
                #[target_feature(enable = "avx2")]
                fn avx2($($arg: $ty),*) {
                    $portable($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU has AVX-512F (checked).
                    return unsafe { avx512($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: the CPU has AVX2 (checked).
                    return unsafe { avx2($($arg),*) };
                }
            }
            $portable($($arg),*)
        }

        #[inline(always)]
        fn $portable($($arg: $ty),*) $body
    };
}

versioned! {
    /// `d[r] = Σ_k (λ δ_k) · wt[k·len + r]` for the `len = d.len()` particles of an
    /// attribute-major block.
    fn differences = differences_portable(lambda: f64, delta: &[f64], wt: &[f64], d: &mut [f64]) {
        let len = d.len();
        d.fill(0.0);
        for (k, &dk) in delta.iter().enumerate() {
            let c = lambda * dk;
            for (x, &w) in d.iter_mut().zip(&wt[k * len..(k + 1) * len]) {
                *x += c * w;
            }
        }
    }
}

versioned! {
    /// `acc[r] += ln P(choice | d[r])` (the same formula as [`ChoiceModel::log_prob`],
    /// rearranged: `ln P(a) = min(d, 0) − ln(1 + e² + νe)` with `e = e^{−|d|/2}`).
    fn add_log_prob = add_log_prob_portable(model: &ChoiceModel, choice: Choice, d: &[f64], acc: &mut [f64]) {
        let nu = model.indifference;
        let ln_nu = model.ln_nu();
        let tail = |x: f64| {
            let h = (0.5 * x.abs()).min(MAX_HALF_D);
            let e = fastmath::exp(-h);
            (h, fastmath::ln(1.0 + e * e + nu * e))
        };
        match choice {
            Choice::A => {
                for (a, &x) in acc.iter_mut().zip(d) {
                    let (h, l) = tail(x);
                    *a += (-2.0 * h).max(x.min(0.0)) - l;
                }
            }
            Choice::B => {
                for (a, &x) in acc.iter_mut().zip(d) {
                    let (h, l) = tail(x);
                    *a += (-2.0 * h).max((-x).min(0.0)) - l;
                }
            }
            Choice::Indifferent => {
                for (a, &x) in acc.iter_mut().zip(d) {
                    let (h, l) = tail(x);
                    *a += ln_nu - h - l;
                }
            }
        }
    }
}

versioned! {
    /// Weighted answer terms for information gain: `pa[r] = w_r P(a | d_r)`,
    /// `pb[r] = w_r P(b | d_r)`, `ph[r] = w_r H(answer | d_r)` (nats).
    fn answer_terms = answer_terms_portable(
        model: &ChoiceModel, d: &[f64], w: &[f64], pa: &mut [f64], pb: &mut [f64], ph: &mut [f64]
    ) {
        let nu = model.indifference;
        let ln_nu = model.ln_nu();
        let len = d.len();
        let (w, pa, pb, ph) = (&w[..len], &mut pa[..len], &mut pb[..len], &mut ph[..len]);
        for r in 0..len {
            let x = d[r];
            let h = (0.5 * x.abs()).min(MAX_HALF_D);
            let e = fastmath::exp(-h);
            let zs = 1.0 + e * e + nu * e;
            let inv = 1.0 / zs;
            let (big, small, tie) = (inv, e * e * inv, nu * e * inv);
            let (a, b) = if x >= 0.0 { (big, small) } else { (small, big) };
            // H = ln Z − (d/2)(P(a) − P(b)) − P(tie) ln ν, with ln Z = h + ln zs and the clamped
            // d/2 = ±h: (d/2)(P(a) − P(b)) = h (big − small).
            let entropy = h + fastmath::ln(zs) - h * (big - small) - tie * ln_nu;
            pa[r] = w[r] * a;
            pb[r] = w[r] * b;
            ph[r] = w[r] * entropy;
        }
    }
}

versioned! {
    /// `out[i] = e^{x[i] − m}`.
    fn exp_shifted = exp_shifted_portable(x: &[f64], m: f64, out: &mut [f64]) {
        for (o, &g) in out.iter_mut().zip(x) {
            *o = fastmath::exp(g - m);
        }
    }
}

versioned! {
    /// `out[i] = ln x[i]` (positive normal `x`).
    fn ln_column = ln_column_portable(x: &[f64], out: &mut [f64]) {
        for (o, &v) in out.iter_mut().zip(x) {
            *o = fastmath::ln(v);
        }
    }
}

versioned! {
    /// One Metropolis–Hastings proposal per particle of a block, in log-ratio coordinates.
    /// Inputs, attribute-major with `len` entries per column: `lw` = ln w (n columns), `step` =
    /// the scaled Gaussian step (n − 1 columns). Outputs: `pt` = the proposed weights (n
    /// columns) and `log_jac[r] += Σ ln w' − Σ ln w` (the Dirichlet(1) density in log-ratio
    /// coordinates). `e` is scratch (n columns).
    fn propose = propose_portable(
        n: usize, lw: &[f64], step: &[f64], pt: &mut [f64], e: &mut [f64], log_jac: &mut [f64]
    ) {
        let len = log_jac.len();
        let q = n - 1;
        let last = &lw[q * len..n * len];
        // θ'_k = ln w_k − ln w_n + step_k (into pt as scratch); m = max(0, max θ').
        let mut m = vec![0.0f64; len];
        let mut theta_sum = vec![0.0f64; len];
        let mut old_jac = vec![0.0f64; len];
        for k in 0..n {
            for (o, &x) in old_jac.iter_mut().zip(&lw[k * len..(k + 1) * len]) {
                *o += x;
            }
        }
        for k in 0..q {
            let (col, st, out) = (&lw[k * len..(k + 1) * len], &step[k * len..(k + 1) * len], &mut pt[k * len..(k + 1) * len]);
            for r in 0..len {
                let t = col[r] - last[r] + st[r];
                out[r] = t;
                m[r] = m[r].max(t);
                theta_sum[r] += t;
            }
        }
        // e_k = e^{θ'_k − m}, e_n = e^{−m}; w' = e / Σ e.
        let mut total = vec![0.0f64; len];
        for k in 0..n {
            let ek = &mut e[k * len..(k + 1) * len];
            if k < q {
                let tk = &pt[k * len..(k + 1) * len];
                for r in 0..len {
                    ek[r] = fastmath::exp(tk[r] - m[r]);
                }
            } else {
                for r in 0..len {
                    ek[r] = fastmath::exp(-m[r]);
                }
            }
            for (t, &x) in total.iter_mut().zip(ek.iter()) {
                *t += x;
            }
        }
        for k in 0..n {
            let (ek, out) = (&e[k * len..(k + 1) * len], &mut pt[k * len..(k + 1) * len]);
            for r in 0..len {
                out[r] = ek[r] / total[r];
            }
        }
        // Σ ln w' = Σ θ' − n (m + ln Σ e).
        for r in 0..len {
            let new_jac = theta_sum[r] - n as f64 * (m[r] + fastmath::ln(total[r]));
            log_jac[r] = new_jac - old_jac[r];
        }
    }
}

/// Four-lane sums of `x[r]`: lane `r mod 4`, added into `lanes`.
#[inline]
pub(crate) fn lane_sum(x: &[f64], lanes: &mut [f64; 4]) {
    let mut it = x.chunks_exact(4);
    for c in &mut it {
        lanes[0] += c[0];
        lanes[1] += c[1];
        lanes[2] += c[2];
        lanes[3] += c[3];
    }
    for (l, &v) in lanes.iter_mut().zip(it.remainder()) {
        *l += v;
    }
}

/// The lanes combined in a fixed order.
#[inline]
pub(crate) fn lanes_total(lanes: &[f64; 4]) -> f64 {
    (lanes[0] + lanes[1]) + (lanes[2] + lanes[3])
}

/// Σ x in four lanes.
pub(crate) fn sum(x: &[f64]) -> f64 {
    let mut lanes = [0.0; 4];
    lane_sum(x, &mut lanes);
    lanes_total(&lanes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_prob_kernel_matches_the_model() {
        for nu in [0.0, 0.5, 2.0] {
            let m = ChoiceModel::new(7.0, nu);
            let d: Vec<f64> = (-3000..=3000).map(|i| i as f64 * 0.01).chain([-1e5, 1e5, 2400.0]).collect();
            for c in [Choice::A, Choice::B, Choice::Indifferent] {
                if nu == 0.0 && c == Choice::Indifferent {
                    continue;
                }
                let mut acc = vec![0.0; d.len()];
                add_log_prob(&m, c, &d, &mut acc);
                for (x, a) in d.iter().zip(&acc) {
                    let want = m.log_prob(c, *x);
                    assert!((a - want).abs() <= 1e-12 * want.abs().max(1.0), "{c:?} {x}: {a} vs {want}");
                }
            }
        }
    }

    #[test]
    fn wide_and_portable_kernels_agree_bit_for_bit() {
        let m = ChoiceModel::new(9.0, 0.7);
        let d: Vec<f64> = (0..1003).map(|i| (i as f64 - 500.0) * 0.037).collect();
        let w: Vec<f64> = (0..1003).map(|i| 1.0 + (i % 7) as f64).collect();
        for c in [Choice::A, Choice::B, Choice::Indifferent] {
            let (mut x, mut y) = (vec![0.5; d.len()], vec![0.5; d.len()]);
            add_log_prob(&m, c, &d, &mut x);
            add_log_prob_portable(&m, c, &d, &mut y);
            assert_eq!(x, y);
        }
        let mut t1 = vec![vec![0.0; d.len()]; 3];
        let mut t2 = vec![vec![0.0; d.len()]; 3];
        let [a1, b1, h1] = &mut t1[..] else { unreachable!() };
        answer_terms(&m, &d, &w, a1, b1, h1);
        let [a2, b2, h2] = &mut t2[..] else { unreachable!() };
        answer_terms_portable(&m, &d, &w, a2, b2, h2);
        assert_eq!(t1, t2);
        let (mut e1, mut e2) = (vec![0.0; d.len()], vec![0.0; d.len()]);
        exp_shifted(&d, 3.0, &mut e1);
        exp_shifted_portable(&d, 3.0, &mut e2);
        assert_eq!(e1, e2);
        let (mut l1, mut l2) = (vec![0.0; w.len()], vec![0.0; w.len()]);
        ln_column(&w, &mut l1);
        ln_column_portable(&w, &mut l2);
        assert_eq!(l1, l2);
        let delta = [0.3, -0.7, 0.2];
        let wt: Vec<f64> = (0..3 * 333).map(|i| (i % 11) as f64 / 11.0).collect();
        let (mut d1, mut d2) = (vec![0.0; 333], vec![0.0; 333]);
        differences(4.0, &delta, &wt, &mut d1);
        differences_portable(4.0, &delta, &wt, &mut d2);
        assert_eq!(d1, d2);
        // Proposals: ln w of points on the simplex plus steps.
        let len = 333;
        let mut lw = vec![0.0; 3 * len];
        for r in 0..len {
            let raw = [1.0 + (r % 5) as f64, 1.0 + (r % 3) as f64, 0.5 + (r % 7) as f64];
            let t: f64 = raw.iter().sum();
            for k in 0..3 {
                lw[k * len + r] = (raw[k] / t).ln();
            }
        }
        let step: Vec<f64> = (0..2 * len).map(|i| ((i % 13) as f64 - 6.0) * 0.2).collect();
        let run = |wide: bool| {
            let (mut pt, mut e, mut jac) = (vec![0.0; 3 * len], vec![0.0; 3 * len], vec![0.0; len]);
            if wide {
                propose(3, &lw, &step, &mut pt, &mut e, &mut jac);
            } else {
                propose_portable(3, &lw, &step, &mut pt, &mut e, &mut jac);
            }
            (pt, jac)
        };
        let (pt, jac) = run(true);
        assert_eq!((pt.clone(), jac.clone()), run(false));
        for r in 0..len {
            let sum: f64 = (0..3).map(|k| pt[k * len + r]).sum();
            assert!((sum - 1.0).abs() < 1e-12);
            // Σ ln w' − Σ ln w, directly.
            let direct: f64 = (0..3).map(|k| pt[k * len + r].ln() - lw[k * len + r]).sum();
            assert!((jac[r] - direct).abs() < 1e-9, "{} vs {direct}", jac[r]);
        }
    }

    #[test]
    fn transposed_differences_are_dot_products() {
        let rows = [0.2, 0.3, 0.5, 0.6, 0.1, 0.3];
        let mut t = [0.0; 6];
        transpose(&rows, 3, &mut t);
        assert_eq!(t, [0.2, 0.6, 0.3, 0.1, 0.5, 0.3]);
        let mut d = [0.0; 2];
        differences(2.0, &[1.0, -1.0, 0.5], &t, &mut d);
        assert!((d[0] - 2.0 * (0.2 - 0.3 + 0.25)).abs() < 1e-15);
        assert!((d[1] - 2.0 * (0.6 - 0.1 + 0.15)).abs() < 1e-15);
        assert_eq!(sum(&[1.0, 2.0, 3.0, 4.0, 5.0]), 15.0);
    }
}

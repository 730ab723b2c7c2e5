//! Candidate questions and the choice of a diverse top-k.
//!
//! Candidates are pairs of alternatives in normalised attribute space: pairs of the request's
//! options, or pairs synthesised within the attribute ranges on a grid of 21 levels per
//! attribute (so values read well in natural units). A third of the synthesised pairs are
//! *trade-offs* — `a` better on one attribute and worse on another, the rest equal — which ask
//! directly about the ratio of two weights; a third differ on every attribute at random levels;
//! a third are *extreme*: a random direction of difference stretched to the full range, so the
//! answer is as decisive as the noise allows.
//!
//! The top-k questions are picked greedily by expected information gain, skipping a candidate
//! whose difference vector is too parallel (|cosine| above a threshold) to one already picked:
//! near-parallel questions ask nearly the same thing.

use crate::posterior::Posterior;
use crate::rng::{self, STREAM_CANDIDATE, STREAM_PAIRS};

/// Grid levels per attribute for synthesised alternatives (0, 1/20, ..., 1).
pub const LEVELS: u32 = 20;

/// A candidate question: two alternatives in normalised attribute space.
#[derive(Clone, Debug, PartialEq)]
pub struct Candidate {
    /// Alternative `a` (normalised: 0 worst, 1 best of each attribute's range).
    pub a: Vec<f64>,
    /// Alternative `b`.
    pub b: Vec<f64>,
    /// The option `a` is, when it is one of the request's options (index).
    pub a_option: Option<usize>,
    /// The option `b` is.
    pub b_option: Option<usize>,
}

impl Candidate {
    /// `a − b`.
    pub fn delta(&self) -> Vec<f64> {
        self.a.iter().zip(&self.b).map(|(x, y)| x - y).collect()
    }
}

fn level(u: f64) -> f64 {
    ((u * f64::from(LEVELS + 1)) as u32).min(LEVELS) as f64 / f64::from(LEVELS)
}

/// An index in `0..k` from a uniform.
fn pick(u: f64, k: usize) -> usize {
    ((u * k as f64) as usize).min(k - 1)
}

/// `count` synthesised questions over `n` attributes, from `seed`.
pub fn synthesize(n: usize, count: usize, seed: u64) -> Vec<Candidate> {
    let mut out = Vec::with_capacity(count);
    let mut u = vec![0.0; 2 * n + 8];
    let mut attempt = 0u32;
    while out.len() < count {
        rng::fill(seed, attempt, 0, STREAM_CANDIDATE, &mut u);
        let c = match attempt % 3 {
            0 => trade_off(n, &u),
            1 => full_pair(n, &u),
            _ => extreme_pair(n, &u),
        };
        attempt = attempt.wrapping_add(1);
        if c.a != c.b {
            out.push(c);
        }
        if attempt as usize > 4 * count + 64 {
            break; // unreachable in practice: trade-offs always differ
        }
    }
    out
}

fn trade_off(n: usize, u: &[f64]) -> Candidate {
    let i = pick(u[0], n);
    let j = (i + 1 + pick(u[1], n - 1)) % n;
    let common = level(u[2]);
    let mut a = vec![common; n];
    let mut b = vec![common; n];
    // Two distinct levels for each of the two attributes: a is better on i, b on j.
    let (x1, x2) = distinct_levels(u[3], u[4]);
    let (y1, y2) = distinct_levels(u[5], u[6]);
    a[i] = x2;
    b[i] = x1;
    a[j] = y1;
    b[j] = y2;
    Candidate { a, b, a_option: None, b_option: None }
}

/// Two grid levels `lo < hi`.
fn distinct_levels(u: f64, v: f64) -> (f64, f64) {
    let lo = pick(u, LEVELS as usize) as u32; // 0..LEVELS-1
    let hi = lo + 1 + pick(v, (LEVELS - lo) as usize) as u32; // lo+1..=LEVELS
    (f64::from(lo) / f64::from(LEVELS), f64::from(hi) / f64::from(LEVELS))
}

fn full_pair(n: usize, u: &[f64]) -> Candidate {
    let a = (0..n).map(|k| level(u[k])).collect();
    let b = (0..n).map(|k| level(u[n + k])).collect();
    Candidate { a, b, a_option: None, b_option: None }
}

/// A pair whose difference points in a random direction and reaches the full range on its
/// largest attribute: `a = max(v, 0)`, `b = max(−v, 0)` for `v` on the grid, scaled so
/// `max |v_k| = 1`. The largest differences make the most decisive answers.
fn extreme_pair(n: usize, u: &[f64]) -> Candidate {
    let v: Vec<f64> = (0..n).map(|k| 2.0 * u[k] - 1.0).collect();
    let top = v.iter().fold(0.0f64, |m, x| m.max(x.abs())).max(1e-9);
    let grid = |x: f64| (x / top * f64::from(LEVELS)).round() / f64::from(LEVELS);
    let a = v.iter().map(|&x| grid(x).max(0.0)).collect();
    let b = v.iter().map(|&x| (-grid(x)).max(0.0)).collect();
    Candidate { a, b, a_option: None, b_option: None }
}

/// Questions designed from the posterior: each cuts it through its mean across one of its widest
/// axes. For a principal axis `e` of the weights' covariance (largest variances first; the
/// axis along (1, …, 1) has none, as weights sum to 1), the difference is `Δ = e − (w̄·e)·1`,
/// so that `w̄·Δ = 0` while `w·Δ` varies as much as possible over the posterior, stretched to
/// the full range and snapped to the grid. Also the sums and differences of the first axes.
pub fn principal(posterior: &Posterior, count: usize) -> Vec<Candidate> {
    let n = posterior.attributes();
    let mean = posterior.mean();
    let mut cov = vec![0.0; n * n];
    let mut w = vec![0.0; n];
    for (i, &p) in posterior.weights().iter().enumerate() {
        posterior.particle_into(i, &mut w);
        for a in 0..n {
            for b in 0..=a {
                cov[a * n + b] += p * (w[a] - mean[a]) * (w[b] - mean[b]);
            }
        }
    }
    for a in 0..n {
        for b in 0..a {
            cov[b * n + a] = cov[a * n + b];
        }
    }
    let (values, vectors) = jacobi_eigen(cov, n);
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| values[j].total_cmp(&values[i]).then(i.cmp(&j)));
    let axis = |i: usize| -> Vec<f64> { (0..n).map(|k| vectors[k * n + i]).collect() };
    let mut directions: Vec<Vec<f64>> = order.iter().take(n - 1).map(|&i| axis(i)).collect();
    if directions.len() >= 2 {
        let (e1, e2) = (directions[0].clone(), directions[1].clone());
        directions.push(e1.iter().zip(&e2).map(|(x, y)| x + y).collect());
        directions.push(e1.iter().zip(&e2).map(|(x, y)| x - y).collect());
    }
    directions
        .into_iter()
        .take(count)
        .filter_map(|e| {
            let shift: f64 = mean.iter().zip(&e).map(|(m, x)| m * x).sum();
            let delta: Vec<f64> = e.iter().map(|x| x - shift).collect();
            let top = delta.iter().fold(0.0f64, |m, x| m.max(x.abs()));
            if top <= 1e-12 || !top.is_finite() {
                return None;
            }
            let grid = |x: f64| (x / top * f64::from(LEVELS)).round() / f64::from(LEVELS);
            let a: Vec<f64> = delta.iter().map(|&x| grid(x).max(0.0)).collect();
            let b: Vec<f64> = delta.iter().map(|&x| (-grid(x)).max(0.0)).collect();
            (a != b).then_some(Candidate { a, b, a_option: None, b_option: None })
        })
        .collect()
}

/// Eigenvalues and eigenvectors (columns of the row-major `n × n` result) of a symmetric matrix
/// by cyclic Jacobi rotations.
fn jacobi_eigen(mut a: Vec<f64>, n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut v = vec![0.0; n * n];
    for i in 0..n {
        v[i * n + i] = 1.0;
    }
    for _sweep in 0..64 {
        let off: f64 = (0..n).flat_map(|p| (p + 1..n).map(move |q| (p, q))).map(|(p, q)| a[p * n + q].powi(2)).sum();
        let diag: f64 = (0..n).map(|p| a[p * n + p].powi(2)).sum();
        if off <= 1e-30 * diag.max(1e-300) {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = a[p * n + q];
                if apq == 0.0 {
                    continue;
                }
                let theta = (a[q * n + q] - a[p * n + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let (akp, akq) = (a[k * n + p], a[k * n + q]);
                    a[k * n + p] = c * akp - s * akq;
                    a[k * n + q] = s * akp + c * akq;
                }
                for k in 0..n {
                    let (apk, aqk) = (a[p * n + k], a[q * n + k]);
                    a[p * n + k] = c * apk - s * aqk;
                    a[q * n + k] = s * apk + c * aqk;
                }
                for k in 0..n {
                    let (vkp, vkq) = (v[k * n + p], v[k * n + q]);
                    v[k * n + p] = c * vkp - s * vkq;
                    v[k * n + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    ((0..n).map(|i| a[i * n + i]).collect(), v)
}

/// Pairs of options (normalised values): every pair `i < j` when there are at most `cap`, else
/// `cap` distinct pairs drawn from `seed` (then sorted).
pub fn option_pairs(options: &[Vec<f64>], cap: usize, seed: u64) -> Vec<Candidate> {
    let m = options.len();
    let total = m * m.saturating_sub(1) / 2;
    let make = |i: usize, j: usize| Candidate {
        a: options[i].clone(),
        b: options[j].clone(),
        a_option: Some(i),
        b_option: Some(j),
    };
    if total <= cap {
        let mut out = Vec::with_capacity(total);
        for i in 0..m {
            for j in i + 1..m {
                out.push(make(i, j));
            }
        }
        return out;
    }
    // Floyd's sampling of `cap` distinct pair indices from 0..total.
    let mut chosen = std::collections::BTreeSet::new();
    for (draw, t) in (total - cap..total).enumerate() {
        let r = pick(rng::one(seed, draw as u32, 0, STREAM_PAIRS), t + 1);
        if !chosen.insert(r) {
            chosen.insert(t);
        }
    }
    chosen
        .into_iter()
        .map(|mut r| {
            // Pair index r -> (i, j) in row-major order of i < j.
            let mut i = 0;
            while r >= m - 1 - i {
                r -= m - 1 - i;
                i += 1;
            }
            make(i, i + 1 + r)
        })
        .collect()
}

/// |cos| of the angle between two vectors (0 if either is zero).
pub fn abs_cosine(x: &[f64], y: &[f64]) -> f64 {
    let (mut xy, mut xx, mut yy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        xy += a * b;
        xx += a * a;
        yy += b * b;
    }
    if xx == 0.0 || yy == 0.0 { 0.0 } else { (xy / (xx * yy).sqrt()).abs() }
}

/// Indices of up to `k` candidates: by decreasing score (ties: lower index), skipping any
/// whose difference is more parallel than `max_similarity` to one already picked. If fewer
/// than `k` pass, the best skipped ones fill up the list.
pub fn select_diverse(deltas: &[Vec<f64>], scores: &[f64], k: usize, max_similarity: f64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&i, &j| scores[j].total_cmp(&scores[i]).then(i.cmp(&j)));
    let mut picked: Vec<usize> = Vec::with_capacity(k);
    let mut skipped = Vec::new();
    for &c in &order {
        if picked.len() == k {
            break;
        }
        if picked.iter().all(|&p| abs_cosine(&deltas[c], &deltas[p]) <= max_similarity) {
            picked.push(c);
        } else {
            skipped.push(c);
        }
    }
    for c in skipped {
        if picked.len() == k {
            break;
        }
        picked.push(c);
    }
    picked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthesised_pairs_are_on_the_grid_and_trade_offs_trade() {
        let c = synthesize(4, 200, 9);
        assert_eq!(c.len(), 200);
        for (k, q) in c.iter().enumerate() {
            assert_ne!(q.a, q.b);
            for x in q.a.iter().chain(&q.b) {
                assert!((0.0..=1.0).contains(x));
                assert!((x * 20.0 - (x * 20.0).round()).abs() < 1e-12);
            }
            if k % 3 == 0 {
                let d = q.delta();
                assert_eq!(d.iter().filter(|x| **x > 0.0).count(), 1, "{q:?}");
                assert_eq!(d.iter().filter(|x| **x < 0.0).count(), 1, "{q:?}");
            }
        }
        assert_eq!(synthesize(4, 200, 9), c, "deterministic");
        assert_ne!(synthesize(4, 200, 10), c);
    }

    #[test]
    fn jacobi_finds_eigenpairs() {
        let m = vec![4.0, 1.0, 0.5, 1.0, 3.0, 0.2, 0.5, 0.2, 1.0];
        let (values, vectors) = jacobi_eigen(m.clone(), 3);
        for i in 0..3 {
            for r in 0..3 {
                let mv: f64 = (0..3).map(|k| m[r * 3 + k] * vectors[k * 3 + i]).sum();
                assert!((mv - values[i] * vectors[r * 3 + i]).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn principal_questions_cut_through_the_mean() {
        // Particles spread along w0 − w1 around (0.5, 0.3, 0.2).
        let rows: Vec<f64> = (0..21)
            .flat_map(|i| {
                let t = (i as f64 - 10.0) / 50.0;
                [0.5 + t, 0.3 - t, 0.2]
            })
            .collect();
        let post = Posterior::from_weighted(3, &rows, &[1.0; 21]);
        let qs = principal(&post, 4);
        assert!(!qs.is_empty());
        let d = qs[0].delta();
        // The widest axis is w0 − w1: the first question trades attribute 0 against 1 ...
        assert!(d[0] * d[1] < 0.0, "{d:?}");
        // ... at the full range, through the mean (up to the grid).
        assert!(d.iter().any(|x| (x.abs() - 1.0).abs() < 1e-12));
        let at_mean: f64 = [0.5, 0.3, 0.2].iter().zip(&d).map(|(w, x)| w * x).sum();
        assert!(at_mean.abs() < 0.05, "{at_mean}");
    }

    #[test]
    fn option_pairs_all_or_a_distinct_sample() {
        let opts: Vec<Vec<f64>> = (0..10).map(|i| vec![i as f64 / 10.0, 1.0 - i as f64 / 10.0]).collect();
        assert_eq!(option_pairs(&opts, 45, 1).len(), 45);
        let some = option_pairs(&opts, 20, 1);
        assert_eq!(some.len(), 20);
        let mut seen = std::collections::BTreeSet::new();
        for c in &some {
            let (i, j) = (c.a_option.unwrap(), c.b_option.unwrap());
            assert!(i < j && j < 10);
            assert!(seen.insert((i, j)));
            assert_eq!(c.a, opts[i]);
        }
    }

    #[test]
    fn diverse_selection_skips_parallel_questions() {
        let deltas = vec![vec![1.0, -1.0], vec![2.0, -2.0], vec![1.0, 0.0], vec![-1.0, 1.0]];
        let scores = [0.9, 0.8, 0.5, 0.95];
        assert_eq!(select_diverse(&deltas, &scores, 2, 0.9), vec![3, 2]);
        // Not enough diverse ones: fill with the best skipped.
        assert_eq!(select_diverse(&deltas, &scores, 3, 0.9), vec![3, 2, 0]);
        assert_eq!(select_diverse(&deltas, &scores, 4, 1.0), vec![3, 0, 1, 2]);
    }
}

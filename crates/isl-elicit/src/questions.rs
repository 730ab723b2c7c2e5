//! Candidate questions and the choice of a diverse top-k.
//!
//! Candidates are pairs of alternatives in normalised attribute space: pairs of the request's
//! options, or pairs synthesised within the attribute ranges on a grid of 21 levels per
//! attribute (so values read well in natural units). Half the synthesised pairs are
//! *trade-offs* — `a` better on one attribute and worse on another, the rest equal — which ask
//! directly about the ratio of two weights; the other half differ on every attribute.
//!
//! The top-k questions are picked greedily by expected information gain, skipping a candidate
//! whose difference vector is too parallel (|cosine| above a threshold) to one already picked:
//! near-parallel questions ask nearly the same thing.

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
        let c = if attempt.is_multiple_of(2) { trade_off(n, &u) } else { full_pair(n, &u) };
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
            if k % 2 == 0 {
                let d = q.delta();
                assert_eq!(d.iter().filter(|x| **x > 0.0).count(), 1, "{q:?}");
                assert_eq!(d.iter().filter(|x| **x < 0.0).count(), 1, "{q:?}");
            }
        }
        assert_eq!(synthesize(4, 200, 9), c, "deterministic");
        assert_ne!(synthesize(4, 200, 10), c);
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

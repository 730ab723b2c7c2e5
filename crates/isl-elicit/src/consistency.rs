//! Do the strict answers agree with *some* weight vector? The best margin
//! `v = max_{w ∈ simplex} min_j s_j (w · Δ_j)` (`s_j = +1` for "a", −1 for "b") is the value of
//! a zero-sum matrix game, found exactly by one small linear program (dense simplex method,
//! Bland's rule). `v > 0`: some weights rank every strictly answered pair as answered; `v ≤ 0`:
//! the answers contradict each other for every weight vector (the choice model still explains
//! them as noise, so the posterior stays proper).

/// Margins at most this count as "no agreeing weight vector".
pub const TOLERANCE: f64 = 1e-9;

/// The game value `max_w min_j g_j · w` over the simplex, for rows `g_j` (each of length `n`).
/// `None` for no rows.
pub fn best_margin(rows: &[Vec<f64>], n: usize) -> Option<f64> {
    if rows.is_empty() || n == 0 {
        return None;
    }
    // Shift every entry positive: the value shifts by the same constant.
    let c = rows.iter().flatten().fold(0.0f64, |m, x| m.max(x.abs())) + 1.0;
    // max Σ x_j  s.t.  Σ_j (g_ji + c) x_j ≤ 1 for each attribute i, x ≥ 0; value + c = 1 / opt.
    let m = rows.len();
    let cols = m + n; // x_1..x_m, then slacks
    let width = cols + 1; // + right-hand side
    let mut t = vec![0.0; (n + 1) * width];
    for i in 0..n {
        for (j, g) in rows.iter().enumerate() {
            t[i * width + j] = g[i] + c;
        }
        t[i * width + m + i] = 1.0;
        t[i * width + cols] = 1.0;
    }
    // Objective row: reduced costs −1 for each x_j (maximising Σ x_j).
    for j in 0..m {
        t[n * width + j] = -1.0;
    }
    let mut basis: Vec<usize> = (m..m + n).collect();
    for _ in 0..10_000 {
        // Bland: the lowest-index column with a negative reduced cost enters.
        let Some(enter) = (0..cols).find(|&j| t[n * width + j] < -1e-12) else { break };
        // Ratio test, ties to the lowest basis index.
        let mut leave: Option<usize> = None;
        for i in 0..n {
            let a = t[i * width + enter];
            if a > 1e-12 {
                let ratio = t[i * width + cols] / a;
                let better = match leave {
                    None => true,
                    Some(l) => {
                        let best = t[l * width + cols] / t[l * width + enter];
                        ratio < best - 1e-15 || (ratio <= best + 1e-15 && basis[i] < basis[l])
                    }
                };
                if better {
                    leave = Some(i);
                }
            }
        }
        let Some(r) = leave else { break }; // unbounded: impossible (entries are positive)
        let p = t[r * width + enter];
        for k in 0..width {
            t[r * width + k] /= p;
        }
        for i in 0..=n {
            if i != r {
                let f = t[i * width + enter];
                if f != 0.0 {
                    for k in 0..width {
                        t[i * width + k] -= f * t[r * width + k];
                    }
                }
            }
        }
        basis[r] = enter;
    }
    let opt = t[n * width + cols];
    (opt > 0.0).then(|| 1.0 / opt - c)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Exact value for n = 2: the minimum of lines in t is concave, so its maximum over [0, 1]
    /// is at an end or at a crossing of two lines.
    fn brute_two(rows: &[Vec<f64>]) -> f64 {
        let f = |t: f64| rows.iter().map(|g| g[0] * t + g[1] * (1.0 - t)).fold(f64::INFINITY, f64::min);
        let mut best = f(0.0).max(f(1.0));
        for a in rows {
            for b in rows {
                let (sa, sb) = (a[0] - a[1], b[0] - b[1]);
                if (sa - sb).abs() > 1e-12 {
                    let t = (b[1] - a[1]) / (sa - sb);
                    if (0.0..=1.0).contains(&t) {
                        best = best.max(f(t));
                    }
                }
            }
        }
        best
    }

    #[test]
    fn two_attributes_match_the_exact_value() {
        let mut state = 12345u64;
        let mut next = || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((state >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
        };
        for trial in 0..500 {
            let m = 1 + trial % 7;
            let rows: Vec<Vec<f64>> = (0..m).map(|_| vec![next(), next()]).collect();
            let v = best_margin(&rows, 2).unwrap();
            assert!((v - brute_two(&rows)).abs() < 1e-9, "{rows:?}: {v} vs {}", brute_two(&rows));
        }
    }

    #[test]
    fn three_attributes_match_a_grid() {
        let mut state = 99u64;
        let mut next = || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((state >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
        };
        let steps = 300;
        for trial in 0..60 {
            let m = 1 + trial % 6;
            let rows: Vec<Vec<f64>> = (0..m).map(|_| vec![next(), next(), next()]).collect();
            let mut grid = f64::NEG_INFINITY;
            for i in 0..=steps {
                for j in 0..=steps - i {
                    let w = [i as f64 / steps as f64, j as f64 / steps as f64, (steps - i - j) as f64 / steps as f64];
                    let v = rows.iter().map(|g| g[0] * w[0] + g[1] * w[1] + g[2] * w[2]).fold(f64::INFINITY, f64::min);
                    grid = grid.max(v);
                }
            }
            let v = best_margin(&rows, 3).unwrap();
            // The LP is exact; the grid is at most one cell (2/steps in weight) short.
            assert!(v >= grid - 1e-9 && v <= grid + 4.0 / steps as f64, "{rows:?}: {v} vs grid {grid}");
        }
    }

    #[test]
    fn opposite_answers_have_no_margin() {
        let g = vec![0.3, -0.2, 0.1];
        let neg: Vec<f64> = g.iter().map(|x| -x).collect();
        assert!(best_margin(&[g.clone(), neg], 3).unwrap() <= TOLERANCE);
        assert!(best_margin(&[g], 3).unwrap() > 0.0);
        // A cycle a > b > c > a over options.
        let (a, b, c) = ([1.0, 0.0], [0.0, 1.0], [0.5, 0.5]);
        let d = |x: [f64; 2], y: [f64; 2]| vec![x[0] - y[0], x[1] - y[1]];
        let rows = [d(a, b), d(b, c), d(c, a)];
        assert!(best_margin(&rows, 2).unwrap() <= TOLERANCE);
        assert_eq!(best_margin(&[], 2), None);
    }
}

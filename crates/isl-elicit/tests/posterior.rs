//! The particle posterior against quadrature on a fine grid (2 and 3 attributes), and its
//! determinism under any thread count.

#![allow(clippy::needless_range_loop)]

use isl_elicit::choice::{Choice, ChoiceModel};
use isl_elicit::posterior::{Evidence, SmcSettings, infer};

/// A small deterministic generator for test data.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Answers of a simulated decision-maker with weights `truth` to random questions.
fn answers(model: &ChoiceModel, truth: &[f64], count: usize, seed: u64) -> Evidence {
    let n = truth.len();
    let mut g = Lcg(seed);
    let mut ev = Evidence::new(n);
    for _ in 0..count {
        let delta: Vec<f64> = (0..n).map(|_| g.next() - g.next()).collect();
        let d = model.d(truth.iter().zip(&delta).map(|(w, x)| w * x).sum());
        let o = model.outcome(d);
        let u = g.next();
        let choice = if u < o.a {
            Choice::A
        } else if u < o.a + o.b {
            Choice::B
        } else {
            Choice::Indifferent
        };
        ev.push(&delta, choice);
    }
    ev
}

struct Reference {
    mean: Vec<f64>,
    std: Vec<f64>,
    p05: Vec<f64>,
    p95: Vec<f64>,
    log_evidence: f64,
    entropy: f64,
}

/// Grid quadrature over the simplex for n = 2 (cells on w1) or n = 3 (cells on (w1, w2)).
fn quadrature(model: &ChoiceModel, ev: &Evidence, n: usize, cells: usize) -> Reference {
    // (w, ln L(w), cell area as a fraction of a full cell)
    let mut points: Vec<(Vec<f64>, f64, f64)> = Vec::new();
    let h = 1.0 / cells as f64;
    match n {
        2 => {
            for i in 0..cells {
                let t = (i as f64 + 0.5) * h;
                let w = vec![t, 1.0 - t];
                let ll = ev.log_likelihood(model, &w);
                points.push((w, ll, 1.0));
            }
        }
        3 => {
            // Full squares below the diagonal at their midpoints; the squares the diagonal cuts
            // contribute their lower-left half triangle at its centroid.
            for i in 0..cells {
                for j in 0..cells - i {
                    let (a, b, area) = if i + j + 1 < cells {
                        ((i as f64 + 0.5) * h, (j as f64 + 0.5) * h, 1.0)
                    } else {
                        ((i as f64 + 1.0 / 3.0) * h, (j as f64 + 1.0 / 3.0) * h, 0.5)
                    };
                    let w = vec![a, b, 1.0 - a - b];
                    let ll = ev.log_likelihood(model, &w);
                    points.push((w, ll, area));
                }
            }
        }
        _ => unreachable!(),
    }
    let cell = if n == 2 { h } else { h * h };
    let prior_density = if n == 2 { 1.0 } else { 2.0 };
    let m = points.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
    let mass: Vec<f64> = points.iter().map(|p| (p.1 - m).exp() * p.2).collect();
    let total: f64 = mass.iter().sum();
    let log_evidence = m + (total * cell * prior_density).ln();
    let prob: Vec<f64> = mass.iter().map(|x| x / total).collect();
    // Entropy of the density: −Σ P ln(P / cell area).
    let entropy: f64 =
        points.iter().zip(&prob).filter(|(_, p)| **p > 0.0).map(|(pt, p)| -p * (p / (cell * pt.2)).ln()).sum();
    let mut mean = vec![0.0; n];
    let mut std = vec![0.0; n];
    let mut p05 = vec![0.0; n];
    let mut p95 = vec![0.0; n];
    for k in 0..n {
        mean[k] = points.iter().zip(&prob).map(|(pt, p)| p * pt.0[k]).sum();
        std[k] = points.iter().zip(&prob).map(|(pt, p)| p * (pt.0[k] - mean[k]).powi(2)).sum::<f64>().sqrt();
        let mut sorted: Vec<(f64, f64)> = points.iter().zip(&prob).map(|(pt, p)| (pt.0[k], *p)).collect();
        sorted.sort_by(|x, y| x.0.total_cmp(&y.0));
        let q = |target: f64| {
            let mut c = 0.0;
            for (v, p) in &sorted {
                c += p;
                if c >= target {
                    return *v;
                }
            }
            sorted.last().unwrap().0
        };
        p05[k] = q(0.05);
        p95[k] = q(0.95);
    }
    Reference { mean, std, p05, p95, log_evidence, entropy }
}

fn check(n: usize, truth: &[f64], count: usize, lambda: f64, seed: u64) {
    let model = ChoiceModel::new(lambda, 0.5);
    let ev = answers(&model, truth, count, seed);
    let cells = if n == 2 { 200_000 } else { 700 };
    let r = quadrature(&model, &ev, n, cells);
    let s = SmcSettings { particles: 40_000, ess_threshold: 0.5, moves: 3, seed: 11 };
    let p = infer(&model, &ev, &s, &|| false).unwrap();
    let stats = p.weight_stats();
    let label = format!("n={n} answers={count} lambda={lambda} rejuvenations={}", p.rejuvenations());
    eprintln!(
        "{label}: mean {:?} vs {:?}; std {:?} vs {:?}; logZ {} vs {}; H {} vs {}; acc {}",
        stats.iter().map(|s| s.mean).collect::<Vec<_>>(),
        r.mean,
        stats.iter().map(|s| s.std).collect::<Vec<_>>(),
        r.std,
        p.log_evidence(),
        r.log_evidence,
        p.entropy_nats(),
        r.entropy,
        p.acceptance_rate()
    );
    for k in 0..n {
        let st = stats[k];
        assert!((st.mean - r.mean[k]).abs() < 0.006, "{label}: mean {k}: {} vs {}", st.mean, r.mean[k]);
        assert!((st.std - r.std[k]).abs() < 0.006, "{label}: std {k}: {} vs {}", st.std, r.std[k]);
        assert!((st.p05 - r.p05[k]).abs() < 0.015, "{label}: p05 {k}: {} vs {}", st.p05, r.p05[k]);
        assert!((st.p95 - r.p95[k]).abs() < 0.015, "{label}: p95 {k}: {} vs {}", st.p95, r.p95[k]);
    }
    assert!(
        (p.log_evidence() - r.log_evidence).abs() < 0.05,
        "{label}: log evidence {} vs {}",
        p.log_evidence(),
        r.log_evidence
    );
    assert!((p.entropy_nats() - r.entropy).abs() < 0.05, "{label}: entropy {} vs {}", p.entropy_nats(), r.entropy);
}

#[test]
fn two_attributes_match_quadrature() {
    check(2, &[0.7, 0.3], 5, 10.0, 1);
    check(2, &[0.35, 0.65], 25, 10.0, 2);
    check(2, &[0.9, 0.1], 40, 30.0, 3);
}

#[test]
fn three_attributes_match_quadrature() {
    check(3, &[0.5, 0.3, 0.2], 8, 10.0, 4);
    check(3, &[0.1, 0.6, 0.3], 30, 15.0, 5);
}

#[cfg(not(target_family = "wasm"))]
#[test]
fn any_thread_count_gives_the_same_bits() {
    let model = ChoiceModel::new(12.0, 0.5);
    let ev = answers(&model, &[0.4, 0.3, 0.2, 0.1], 20, 8);
    let s = SmcSettings { particles: 3000, ess_threshold: 0.5, moves: 2, seed: 5 };
    let run = |threads| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| infer(&model, &ev, &s, &|| false).unwrap())
    };
    let one = run(1);
    assert!(one.rejuvenations() > 0);
    for threads in [2, 3, 5] {
        assert_eq!(run(threads), one, "{threads} threads");
    }
}

#[test]
fn a_stop_signal_interrupts() {
    let model = ChoiceModel::new(10.0, 0.5);
    let ev = answers(&model, &[0.5, 0.5], 5, 1);
    let s = SmcSettings { particles: 100, ess_threshold: 0.5, moves: 1, seed: 1 };
    assert!(infer(&model, &ev, &s, &|| true).is_err());
}

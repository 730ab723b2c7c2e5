//! Expected information gain against exact enumeration of I(W; Y) on small particle sets, and
//! option values against brute force.

#![allow(clippy::needless_range_loop)]

use isl_elicit::choice::ChoiceModel;
use isl_elicit::eig::{score, score_all};
use isl_elicit::posterior::Posterior;
use isl_elicit::recommend::{evaluate, recommend};
use proptest::prelude::*;

/// Mutual information by its definition: Σ_i Σ_y π_i p(y|w_i) log2(p(y|w_i) / p(y)), with the
/// Davidson probabilities computed directly.
fn brute_force_bits(lambda: f64, nu: f64, particles: &[Vec<f64>], weights: &[f64], delta: &[f64]) -> f64 {
    let total: f64 = weights.iter().sum();
    let probs: Vec<[f64; 3]> = particles
        .iter()
        .map(|w| {
            let d = lambda * w.iter().zip(delta).map(|(a, b)| a * b).sum::<f64>();
            let (a, b) = ((d / 2.0).exp(), (-d / 2.0).exp());
            let z = a + b + nu;
            [a / z, b / z, nu / z]
        })
        .collect();
    let mut marginal = [0.0; 3];
    for (p, w) in probs.iter().zip(weights) {
        for y in 0..3 {
            marginal[y] += w / total * p[y];
        }
    }
    let mut bits = 0.0;
    for (p, w) in probs.iter().zip(weights) {
        for y in 0..3 {
            if p[y] > 0.0 {
                bits += w / total * p[y] * (p[y] / marginal[y]).log2();
            }
        }
    }
    bits
}

fn simplex_point(raw: &[f64]) -> Vec<f64> {
    let total: f64 = raw.iter().sum();
    raw.iter().map(|x| x / total).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn information_gain_equals_enumeration(
        n in 2usize..6,
        count in 1usize..40,
        raw in prop::collection::vec(0.01f64..1.0, 6 * 40),
        weights in prop::collection::vec(0.0f64..1.0, 40),
        delta in prop::collection::vec(-1.0f64..1.0, 6),
        lambda in 0.5f64..40.0,
        nu in prop_oneof![Just(0.0), 0.01f64..3.0],
    ) {
        let particles: Vec<Vec<f64>> = (0..count).map(|i| simplex_point(&raw[i * 6..i * 6 + n])).collect();
        let mut weights = weights[..count].to_vec();
        weights[0] += 0.1; // some mass
        let delta = &delta[..n];
        let post = Posterior::from_weighted(n, &particles.concat(), &weights);
        let model = ChoiceModel::new(lambda, nu);
        let s = score(&model, &post, delta);
        let exact = brute_force_bits(lambda, nu, &particles, &weights, delta);
        prop_assert!((s.bits - exact).abs() < 1e-9, "{} vs {}", s.bits, exact);
        prop_assert!(s.bits <= 3f64.log2() + 1e-12);
        prop_assert!((s.a + s.b + s.indifferent - 1.0).abs() < 1e-12);
        if nu == 0.0 {
            prop_assert!(s.indifferent.abs() < 1e-12 && s.bits <= 1.0 + 1e-12);
        }
    }

    #[test]
    fn option_values_equal_brute_force(
        n in 2usize..5,
        count in 1usize..30,
        m in 1usize..7,
        raw in prop::collection::vec(0.01f64..1.0, 5 * 30),
        weights in prop::collection::vec(0.01f64..1.0, 30),
        opts in prop::collection::vec(0.0f64..1.0, 5 * 7),
    ) {
        let particles: Vec<Vec<f64>> = (0..count).map(|i| simplex_point(&raw[i * 5..i * 5 + n])).collect();
        let weights = &weights[..count];
        let total: f64 = weights.iter().sum();
        let options: Vec<Vec<f64>> = (0..m).map(|o| opts[o * 5..o * 5 + n].to_vec()).collect();
        let post = Posterior::from_weighted(n, &particles.concat(), weights);
        let values = evaluate(&post, &options);
        for o in 0..m {
            let u = |w: &Vec<f64>, o: usize| w.iter().zip(&options[o]).map(|(a, b)| a * b).sum::<f64>();
            let eu: f64 = particles.iter().zip(weights).map(|(w, p)| p / total * u(w, o)).sum();
            let best: f64 = particles
                .iter()
                .zip(weights)
                .filter(|(w, _)| (0..m).all(|q| u(w, q) < u(w, o) || (u(w, q) == u(w, o) && q >= o)))
                .map(|(_, p)| p / total)
                .sum();
            prop_assert!((values[o].expected_utility - eu).abs() < 1e-12);
            prop_assert!((values[o].probability_best - best).abs() < 1e-12);
        }
        let sum: f64 = values.iter().map(|v| v.probability_best).sum();
        prop_assert!((sum - 1.0).abs() < 1e-12);
        let r = recommend(&values).unwrap();
        prop_assert!(values.iter().all(|v| v.expected_utility <= values[r].expected_utility));
    }
}

#[test]
fn a_question_everyone_answers_alike_carries_no_information() {
    // Every particle puts more weight on attribute 0, and the question is decided by the
    // weights' ordering only through a huge λ: no information.
    let particles = vec![0.9, 0.1, 0.8, 0.2, 0.7, 0.3];
    let post = Posterior::from_weighted(2, &particles, &[1.0, 1.0, 1.0]);
    let model = ChoiceModel::new(1000.0, 0.0);
    assert!(score(&model, &post, &[1.0, -1.0]).bits < 1e-9);
    // A question that splits the particles evenly (two on each side) at high λ: one bit.
    let post = Posterior::from_weighted(2, &[0.9, 0.1, 0.2, 0.8], &[1.0, 1.0]);
    let s = score(&model, &post, &[1.0, -1.0]);
    assert!((s.bits - 1.0).abs() < 1e-9, "{s:?}");
    // Scoring in parallel equals scoring one by one.
    let deltas = vec![vec![1.0, -1.0], vec![0.3, 0.1], vec![-0.5, 0.5]];
    let all = score_all(&model, &post, &deltas);
    for (d, s) in deltas.iter().zip(all) {
        assert_eq!(s, score(&model, &post, d));
    }
}

//! Quality, measured: simulated decision-makers with hidden weights answer (noisily, per the
//! choice model) either the top question by expected information gain or a random question
//! from the same pool. Information gain must reach a posterior-mean weight error below 0.1 in
//! at most half the questions random ones need (median over seeds). The full table (3–6
//! attributes, 25 seeds) is `cargo run --release -p isl-elicit --example elicit_quality`.

use isl_elicit::ElicitOptions;
use isl_elicit::simulate::{Settings, Strategy, median, run};

#[test]
fn information_gain_needs_at_most_half_the_questions_of_random_ones() {
    let opts = ElicitOptions::default();
    let rounds = 60;
    for attributes in [3, 4] {
        let settings = Settings {
            attributes,
            rounds,
            particles: 600,
            candidates: 64,
            stop_below: Some(0.1),
            ..Settings::default()
        };
        let sessions = |strategy| -> Vec<Option<usize>> {
            (0..7u64)
                .map(|seed| {
                    let t = run(&settings, strategy, 77 + 100 * attributes as u64 + seed, &opts).expect("session");
                    t.questions_to_error(0.1)
                })
                .collect()
        };
        let ig = sessions(Strategy::InformationGain);
        let random = sessions(Strategy::Random);
        let (m_ig, m_random) = (median(&ig, rounds), median(&random, rounds));
        eprintln!(
            "{attributes} attributes: information gain {ig:?} (median {m_ig}), random {random:?} (median {m_random})"
        );
        assert!(2 * m_ig <= m_random, "{attributes} attributes: {m_ig} vs {m_random}");
        assert!(ig.iter().all(Option::is_some), "every information-gain session gets there: {ig:?}");
    }
}

#[test]
fn a_session_learns_the_weights_and_the_best_option() {
    let opts = ElicitOptions::default();
    let settings = Settings { attributes: 3, rounds: 25, particles: 800, candidates: 64, ..Settings::default() };
    let t = run(&settings, Strategy::InformationGain, 5, &opts).expect("session");
    assert_eq!(t.errors.len(), 26);
    assert!(t.errors[25] < 0.1, "{:?}", t.errors);
    assert!(t.errors[25] < t.errors[0] / 2.0);
    assert!(t.questions_to_best().is_some_and(|k| k <= 20), "{:?}", t.best);
}

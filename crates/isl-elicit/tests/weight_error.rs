//! A consistent decision-maker (answers by a fixed linear utility, no noise) is learned to within
//! 0.15 on every weight after 15 answers, in at least 4 of 5 sessions for 3, 4 and 5 attributes,
//! with the route's defaults (10 options; questions from their pairs and synthesised pairs),
//! each round a full `next` request with every answer so far — and also with the rationality
//! learned from the answers (`rationality_spread` 1) on the options' pairs alone. Asking only
//! about the options' pairs with the rationality fixed (the default before) misses it on the
//! same sessions. The full table (50 decision-makers, noisy answers too) is
//! `cargo run --release -p isl-elicit --example weight_error -- 50 10000 128 route` (and
//! `options`, with `SPREAD=1`).

use isl_elicit::simulate::{Settings, Strategy, run};
use isl_elicit::{ElicitOptions, QuestionSource};

/// Max-over-attributes errors after 15 answers of the 5 sessions (seeds of the example).
fn errors_after_15(
    attributes: usize,
    questions_from: Option<QuestionSource>,
    rationality_spread: Option<f64>,
) -> Vec<f64> {
    let opts = ElicitOptions::default();
    let settings = Settings {
        attributes,
        rounds: 15,
        particles: 2000,
        candidates: 128,
        noise_free: true,
        questions_from,
        rationality_spread,
        ..Settings::default()
    };
    (0..5u64)
        .map(|s| {
            let t =
                run(&settings, Strategy::InformationGain, 5000 + 100 * attributes as u64 + s, &opts).expect("session");
            t.max_errors[15]
        })
        .collect()
}

#[test]
fn a_consistent_decision_maker_is_learned_within_015_after_15_answers() {
    for attributes in 3..=5 {
        for (what, source, spread) in [
            ("route defaults", None, None),
            ("options' pairs, learned rationality", Some(QuestionSource::Options), Some(1.0)),
        ] {
            let e = errors_after_15(attributes, source, spread);
            eprintln!("{attributes} attributes, {what}: {e:?}");
            let met = e.iter().filter(|&&x| x <= 0.15).count();
            assert!(met >= 4, "{attributes} attributes, {what}: {met}/5 within 0.15: {e:?}");
        }
    }
}

#[test]
fn on_the_options_pairs_alone_with_the_rationality_fixed_the_same_sessions_miss_the_target() {
    // The check above can fail: the earlier default (options' pairs, λ fixed at 10) misses it.
    let e = errors_after_15(4, Some(QuestionSource::Options), None);
    eprintln!("4 attributes, options' pairs, fixed rationality: {e:?}");
    assert!(e.iter().filter(|&&x| x <= 0.15).count() < 4, "{e:?}");
}

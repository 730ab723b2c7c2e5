//! How close the posterior-mean weights get: simulated decision-makers with hidden weights
//! (drawn from the uniform prior; 3, 4 and 5 attributes) answer the top question of each round,
//! every round a full stateless `next` request with all answers so far, either without noise
//! (by the sign of the true utility difference: a consistent decision-maker) or noisily per the
//! default choice model (rationality 10, indifference 0.5). The model is the default one either
//! way. Reported: the largest error over attributes, `max_k |mean_k − truth_k|`, after 10, 15 and
//! 20 answers; per session for the first 5 decision-makers, and mean / median / P90 over all.
//!
//! `cargo run --release -p isl-elicit --example weight_error [-- SEEDS [PARTICLES [CANDIDATES [both|options|synthetic|route]]]]`

use std::time::Instant;

use isl_elicit::simulate::{Settings, Strategy, run};
use isl_elicit::{ElicitOptions, QuestionSource};

/// The answer counts reported.
const AT: [usize; 3] = [10, 15, 20];

fn main() {
    let mut args = std::env::args().skip(1);
    let seeds: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(50);
    let particles: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let candidates: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(128);
    // Where questions come from: both (default), options, synthetic (no options), or route (the
    // route's default with 10 options: both, since options' pairs alone left weights unlearned).
    let source = args.next().unwrap_or_else(|| "both".into());
    let rationality: f64 = std::env::var("RATIONALITY").ok().and_then(|a| a.parse().ok()).unwrap_or(10.0);
    let rationality_spread: Option<f64> = std::env::var("SPREAD").ok().and_then(|a| a.parse().ok());
    let (questions_from, options) = match source.as_str() {
        "options" => (Some(QuestionSource::Options), 10),
        "synthetic" => (Some(QuestionSource::Synthetic), 0),
        "route" => (None, 10),
        _ => (Some(QuestionSource::Both), 10),
    };
    let opts = ElicitOptions::default();
    let t0 = Instant::now();
    println!(
        "{seeds} decision-makers per row, {particles} particles, {candidates} candidates, questions from {source}, \
         model: rationality 10, indifference 0.5"
    );
    println!("max over attributes of |posterior mean - true weight| after 10 / 15 / 20 answers");
    let mut targets = Vec::new();
    for noise_free in [true, false] {
        println!("\n{} answers", if noise_free { "noise-free" } else { "noisy (rationality 10, indifference 0.5)" });
        println!(
            "{:>3} | {:<44} | {:>20} | {:>20} | {:>20} | {:>5}",
            "n",
            "first 5 sessions after 15 (10 / 20 below)",
            "mean 10/15/20",
            "median 10/15/20",
            "P90 10/15/20",
            "<=.15"
        );
        for attributes in 3..=5 {
            let settings = Settings {
                attributes,
                rounds: 20,
                particles,
                candidates,
                noise_free,
                questions_from,
                options,
                rationality,
                rationality_spread,
                ..Settings::default()
            };
            let mut errs: Vec<[f64; 3]> = Vec::new();
            for s in 0..seeds {
                let trace = run(&settings, Strategy::InformationGain, 5000 + 100 * attributes as u64 + s, &opts)
                    .expect("session");
                errs.push(AT.map(|k| trace.max_errors[k]));
            }
            let stat = |f: &dyn Fn(&mut Vec<f64>) -> f64| -> String {
                let v: Vec<String> = (0..3)
                    .map(|i| {
                        let mut xs: Vec<f64> = errs.iter().map(|e| e[i]).collect();
                        format!("{:.3}", f(&mut xs))
                    })
                    .collect();
                v.join("/")
            };
            let mean = stat(&|xs| xs.iter().sum::<f64>() / xs.len() as f64);
            let median = stat(&|xs| quantile(xs, 0.5));
            let p90 = stat(&|xs| quantile(xs, 0.9));
            let first: Vec<String> = errs.iter().take(5).map(|e| format!("{:.3}", e[1])).collect();
            let met = errs.iter().take(5).filter(|e| e[1] <= 0.15).count();
            if noise_free {
                targets.push((attributes, met));
            }
            println!("{attributes:>3} | {:<44} | {mean:>20} | {median:>20} | {p90:>20} | {met:>3}/5", first.join(" "));
            let other: Vec<String> = errs.iter().take(5).map(|e| format!("{:.3}/{:.3}", e[0], e[2])).collect();
            println!("    | {}", other.join(" "));
        }
    }
    println!(
        "\ntarget: after 15 noise-free answers, max error <= 0.15 in at least 4 of the first 5 sessions: {}; {:.1} s",
        targets.iter().map(|(n, m)| format!("{n} attributes {m}/5")).collect::<Vec<_>>().join(", "),
        t0.elapsed().as_secs_f64()
    );
}

/// The `p` quantile (nearest rank) of `xs`.
fn quantile(xs: &mut [f64], p: f64) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[((p * xs.len() as f64).ceil() as usize).clamp(1, xs.len()) - 1]
}

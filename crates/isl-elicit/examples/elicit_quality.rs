//! How fast questions teach: simulated decision-makers with hidden weights (3–6 attributes,
//! many seeds) answer, noisily per the choice model, either the top question by expected
//! information gain or a random question from the same pool. Reported per attribute count: the
//! median number of questions until the posterior-mean weight error ‖mean − truth‖₂ is below
//! 0.1, and until the recommendation is the truly best of 10 options (and stays so).
//!
//! `cargo run --release -p isl-elicit --example elicit_quality [-- SEEDS [ROUNDS [PARTICLES [CANDIDATES [ATTRIBUTES]]]]]`

use std::time::Instant;

use isl_elicit::ElicitOptions;
use isl_elicit::simulate::{Settings, Strategy, median, run};

fn main() {
    let mut args = std::env::args().skip(1);
    let seeds: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(25);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(60);
    let particles: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(2000);
    let candidates: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(128);
    let only: Option<usize> = args.next().and_then(|a| a.parse().ok());
    let opts = ElicitOptions::default();
    let t0 = Instant::now();
    println!(
        "{seeds} simulated decision-makers per row, {rounds} questions at most (not reached counts as {rounds}), \
         {particles} particles, {candidates} synthesised + 45 option-pair candidates, rationality 10, indifference 0.5"
    );
    println!("questions until the weight error is below 0.1 (median; 'not': sessions that never got there), and until");
    println!(
        "the recommendation is the truly best of 10 options for good; IG = top question by expected information gain,"
    );
    println!("pool = a random question from the same candidate pool, uniform = two uniformly random alternatives");
    println!(
        "{:>10} | {:>13} | {:>13} | {:>13} | {:>14} | {:>16}",
        "attributes", "IG", "pool", "uniform", "IG / pool", "best: IG/pool/unif"
    );
    let mut all_ratios = Vec::new();
    for attributes in 3..=6 {
        if only.is_some_and(|o| o != attributes) {
            continue;
        }
        let settings = Settings { attributes, rounds, particles, candidates, ..Settings::default() };
        let mut to_error = [Vec::new(), Vec::new(), Vec::new()];
        let mut to_best = [Vec::new(), Vec::new(), Vec::new()];
        for (s, strategy) in
            [Strategy::InformationGain, Strategy::Random, Strategy::UniformPairs].into_iter().enumerate()
        {
            for seed in 0..seeds {
                let trace = run(&settings, strategy, 1000 * attributes as u64 + seed, &opts).expect("session");
                to_error[s].push(trace.questions_to_error(0.1));
                to_best[s].push(trace.questions_to_best());
            }
        }
        let m = |s: usize| median(&to_error[s], rounds);
        let censored = |s: usize| to_error[s].iter().filter(|x| x.is_none()).count();
        let ratio = m(0) as f64 / m(1).max(1) as f64;
        all_ratios.push(ratio);
        let cell = |s: usize| format!("{:>3} ({:>2} not)", m(s), censored(s));
        println!(
            "{attributes:>10} | {} | {} | {} | {:>14.2} | {:>5}/{:>3}/{:>3}",
            cell(0),
            cell(1),
            cell(2),
            ratio,
            median(&to_best[0], rounds),
            median(&to_best[1], rounds),
            median(&to_best[2], rounds),
        );
    }
    println!(
        "target: IG needs at most half the questions of random ones (IG / pool <= 0.5); worst ratio {:.2}; {:.1} s",
        all_ratios.iter().copied().fold(0.0, f64::max),
        t0.elapsed().as_secs_f64()
    );
}

//! Latency of `/v1/preferences/next` as the route computes it (JSON request text → canonical
//! request → answer → JSON response text), for the benchmark case: 5 attributes, 20 answers,
//! 10 options, 10,000 particles. The 20 answers come from a simulated decision-maker answering
//! the top question of each round.
//!
//! `cargo run --release -p isl-elicit --example elicit_timing [-- ITERATIONS [PARTICLES]]`

use std::time::Instant;

use isl_elicit::api::{NextRequest, NextResponse};
use isl_elicit::{ElicitOptions, next};
use serde_json::Value;

fn main() {
    let mut args = std::env::args().skip(1);
    let iterations: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(200);
    let particles: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let opts = ElicitOptions::default();
    let request = isl_elicit::simulate::benchmark_request(particles).expect("the benchmark case");
    let text = serde_json::to_string(&request).expect("json");
    let mut times = Vec::with_capacity(iterations);
    let mut last = String::new();
    for _ in 0..iterations {
        let t0 = Instant::now();
        let req: NextRequest = serde_json::from_str(&text).expect("request");
        let req = req.canonical(&opts);
        let resp: NextResponse = next(&req, &opts, &isl_mc::McOptions::default(), &|| false).expect("answer");
        last = serde_json::to_string(&resp).expect("json");
        times.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    let q = |p: f64| times[((p * times.len() as f64).ceil() as usize).clamp(1, times.len()) - 1];
    let resp: Value = serde_json::from_str(&last).expect("json");
    println!(
        "preferences/next: 5 attributes, 20 answers, 10 options, {particles} particles, {} threads, {iterations} runs",
        rayon_threads()
    );
    println!("  p50 {:.2} ms  p95 {:.2} ms  p99 {:.2} ms  max {:.2} ms", q(0.5), q(0.95), q(0.99), q(1.0));
    println!(
        "  rejuvenations {}  acceptance {:.2}  recommendation {}  P(best) {:.3}",
        resp["diagnostics"]["rejuvenations"],
        resp["diagnostics"]["acceptance_rate"].as_f64().unwrap_or(0.0),
        resp["recommendation"]["option"],
        resp["recommendation"]["probability_best"].as_f64().unwrap_or(0.0)
    );
}

fn rayon_threads() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

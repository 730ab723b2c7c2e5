//! Latency of `/v1/preferences/next` as the route computes it (JSON request text → canonical
//! request → answer → JSON response text), for the benchmark case: 5 attributes, 20 answers,
//! 10 options, 10,000 particles. The 20 answers come from a simulated decision-maker answering
//! the top question of each round.
//!
//! `cargo run --release -p isl-elicit --example elicit_timing [-- ITERATIONS [PARTICLES]]`

use std::time::Instant;

use isl_elicit::api::{NextRequest, NextResponse};
use isl_elicit::{ChoiceModel, ElicitOptions, next};
use serde_json::{Value, json};

fn main() {
    let mut args = std::env::args().skip(1);
    let iterations: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(200);
    let particles: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let opts = ElicitOptions::default();
    let names = ["cost", "quality", "speed", "risk", "comfort"];
    let truth = [0.35, 0.25, 0.2, 0.12, 0.08];
    let attributes: Vec<Value> = names
        .iter()
        .enumerate()
        .map(|(k, n)| json!({"name": n, "better": if k % 2 == 0 { "lower" } else { "higher" }, "range": [0, 100]}))
        .collect();
    let mut state = 42u64;
    let mut uniform = move || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let options: Vec<Value> = (0..10)
        .map(|o| {
            let values: serde_json::Map<String, Value> =
                names.iter().map(|n| (n.to_string(), json!((uniform() * 100.0).round()))).collect();
            json!({"name": format!("option-{o}"), "values": values})
        })
        .collect();
    let model = ChoiceModel::new(opts.default_rationality, opts.default_indifference);
    let utility = |values: &serde_json::Map<String, Value>| -> f64 {
        names
            .iter()
            .enumerate()
            .map(|(k, n)| {
                let x = values[*n].as_f64().unwrap_or(0.0) / 100.0;
                truth[k] * if k % 2 == 0 { 1.0 - x } else { x }
            })
            .sum()
    };
    let mut answers: Vec<Value> = Vec::new();
    let request = |answers: &[Value]| {
        json!({"attributes": attributes, "options": options, "answers": answers, "count": 3,
                                   "particles": particles, "seed": 7})
    };
    while answers.len() < 20 {
        let req: NextRequest = serde_json::from_value(request(&answers)).expect("request");
        let resp = next(&req, &opts, &isl_mc::McOptions::default(), &|| false).expect("answer");
        let q = &resp.questions[0];
        let a: serde_json::Map<String, Value> = q.a.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
        let b: serde_json::Map<String, Value> = q.b.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
        let o = model.outcome(model.d(utility(&a) - utility(&b)));
        let u = uniform();
        let choice = if u < o.a {
            "a"
        } else if u < o.a + o.b {
            "b"
        } else {
            "indifferent"
        };
        answers.push(json!({"a": a, "b": b, "choice": choice}));
    }
    let text = serde_json::to_string(&request(&answers)).expect("json");
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

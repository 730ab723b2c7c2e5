//! Latency of `/v1/preferences/next` through `Service::handle` (decode, canonical form, hash,
//! compute, encode; the response cache off so every request computes) for the benchmark case:
//! 5 attributes, 20 answers, 10 options, 10,000 particles. Ignored by default; run with
//!
//! `cargo test --release -p isl-service --test elicit_timing -- --ignored --nocapture`

use std::sync::Arc;
use std::time::Instant;

use isl_service::{CacheConfig, Config, Request, Service, SystemClock};
use serde_json::{Value, json};

#[test]
#[ignore = "a measurement: run in release with --ignored --nocapture"]
fn preferences_next_latency() {
    let config = Config {
        cache: CacheConfig { capacity_bytes: 0, memo_entries: 0, ..CacheConfig::default() },
        ..Config::default()
    };
    let s = Service::new(config, Arc::new(SystemClock::new()));
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
    let utility = |v: &Value| -> f64 {
        names
            .iter()
            .enumerate()
            .map(|(k, n)| {
                let x = v[*n].as_f64().unwrap() / 100.0;
                truth[k] * if k % 2 == 0 { 1.0 - x } else { x }
            })
            .sum()
    };
    let request = |answers: &[Value]| json!({"attributes": attributes, "options": options, "answers": answers, "particles": 10000, "seed": 7});
    // 20 answers from a simulated decision-maker answering the top question each round.
    let mut answers: Vec<Value> = Vec::new();
    while answers.len() < 20 {
        let r = s.handle(Request::post_json("/v1/preferences/next", serde_json::to_vec(&request(&answers)).unwrap()));
        assert_eq!(r.status, 200);
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        let q = &v["questions"][0];
        let d = 10.0 * (utility(&q["a"]) - utility(&q["b"]));
        let (pa, pb) = ((d / 2.0).exp(), (-d / 2.0).exp());
        let u = uniform() * (pa + pb + 0.5);
        let choice = if u < pa {
            "a"
        } else if u < pa + pb {
            "b"
        } else {
            "indifferent"
        };
        answers.push(json!({"a": q["a"], "b": q["b"], "choice": choice}));
    }
    let body = serde_json::to_vec(&request(&answers)).unwrap();
    let mut ms = Vec::new();
    for _ in 0..200 {
        let t0 = Instant::now();
        let r = s.handle(Request::post_json("/v1/preferences/next", body.clone()));
        ms.push(t0.elapsed().as_secs_f64() * 1e3);
        assert_eq!((r.status, r.header("x-cache")), (200, Some("miss")));
    }
    ms.sort_by(f64::total_cmp);
    let q = |p: f64| ms[((p * ms.len() as f64).ceil() as usize).clamp(1, ms.len()) - 1];
    println!(
        "/v1/preferences/next through Service::handle, cache off, 5 attributes, 20 answers, 10 options, 10000 particles, \
         200 requests: p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms",
        q(0.5),
        q(0.95),
        q(0.99)
    );
}

//! Latency of `/v1/preferences/next` through `Service::handle` (decode, canonical form, hash,
//! compute, encode; the response cache off so every request computes) for the benchmark case:
//! 5 attributes, 20 answers, 10 options, 10,000 particles. Ignored by default; run with
//!
//! `cargo test --release -p isl-service --test elicit_timing -- --ignored --nocapture`

use std::sync::Arc;
use std::time::Instant;

use isl_service::{CacheConfig, Config, Request, Service, SystemClock};

#[test]
#[ignore = "a measurement: run in release with --ignored --nocapture"]
fn preferences_next_latency() {
    let config = Config {
        cache: CacheConfig { capacity_bytes: 0, memo_entries: 0, ..CacheConfig::default() },
        ..Config::default()
    };
    let s = Service::new(config, Arc::new(SystemClock::new()));
    // The 20 answers come from a simulated decision-maker answering the top question each round.
    let request = isl_elicit::simulate::benchmark_request(10_000).unwrap();
    let body = serde_json::to_vec(&request).unwrap();
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

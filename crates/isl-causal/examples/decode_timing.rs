//! Times decoding and canonicalising one validate request: `cargo run --release -p isl-causal
//! --example decode_timing -- request.json`.
use std::time::Instant;

use isl_causal::prelude::*;

fn main() {
    let path = std::env::args().nth(1).expect("usage: decode_timing request.json");
    let text = std::fs::read_to_string(path).expect("read");
    let opts = CausalOptions::default();
    for _ in 0..3 {
        let t0 = Instant::now();
        let req: ValidateRequest = serde_json::from_str(&text).expect("parse");
        let t1 = Instant::now();
        let canonical = req.canonical(&opts);
        let t2 = Instant::now();
        let value = serde_json::to_value(&canonical).expect("value");
        let t3 = Instant::now();
        let bytes = serde_json::to_vec(&value).expect("bytes");
        let t4 = Instant::now();
        println!(
            "parse {:?} canonical {:?} to_value {:?} to_vec {:?} ({} bytes)",
            t1 - t0,
            t2 - t1,
            t3 - t2,
            t4 - t3,
            bytes.len()
        );
    }
}

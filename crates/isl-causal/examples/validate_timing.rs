//! Times the whole validate answer on the benchmark graphs: `cargo run --release -p isl-causal
//! --example validate_timing -- DIR/graphs.json`.
use std::time::Instant;

use isl_causal::prelude::*;
use serde_json::{Value, json};

fn main() {
    let path = std::env::args().nth(1).expect("usage: validate_timing graphs.json");
    let data: Value = serde_json::from_slice(&std::fs::read(path).expect("read")).expect("parse");
    let opts = CausalOptions::default();
    for case in data["cases"].as_array().expect("cases") {
        let mut times = Vec::new();
        for pair in case["backdoor_pairs"].as_array().expect("pairs") {
            let req: ValidateRequest = serde_json::from_value(
                json!({"dag": case["dag"], "treatment": pair["treatment"], "outcome": pair["outcome"]}),
            )
            .expect("request");
            let t = Instant::now();
            let canonical = req.canonical(&opts);
            let out = validate(&canonical, &opts, &|| false).expect("validate");
            times.push((
                t.elapsed().as_secs_f64() * 1e3,
                out.identification.map(|i| (i.frontdoor_sets.len(), i.truncated)),
            ));
        }
        times.sort_by(|a, b| a.0.partial_cmp(&b.0).expect("finite"));
        println!(
            "{}: median {:.3} ms, max {:.3} ms {:?}",
            case["name"],
            times[times.len() / 2].0,
            times[times.len() - 1].0,
            times.last()
        );
    }
}

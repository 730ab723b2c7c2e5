//! Side-by-side benchmark workload and the Rust half of it.
//!
//! `cargo bench -p isl-causal --bench causal_vs_peers -- generate DIR` writes `DIR/graphs.json`
//! (seeded random DAGs with d-separation queries and treatment/outcome pairs);
//! `cargo bench -p isl-causal --bench causal_vs_peers -- run DIR` times isl on them and writes
//! `DIR/rust.json`. `bench/causal_peers.py` times networkx and pgmpy on the same file and
//! `bench/report_causal.py` compares answers and prints the ratios (see `bench/run.sh`).

use std::time::Instant;

use isl_causal::generate::{SplitMix64, benchmark_dsep_queries, benchmark_params, random_dag};
use isl_causal::prelude::*;
use serde_json::{Value, json};

const QUERIES: usize = 200;
const PAIRS: usize = 20;
const MAX_SETS: usize = 100;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    match args.as_slice() {
        [cmd, dir] if cmd == "generate" => generate(dir),
        [cmd, dir] if cmd == "run" => run(dir),
        _ => {
            eprintln!("usage: causal_vs_peers generate DIR | run DIR");
            std::process::exit(2);
        }
    }
}

fn generate(dir: &str) {
    let mut cases = Vec::new();
    for (family, nodes, seed) in [("er", 200usize, 1u64), ("er", 1000, 2), ("local", 200, 3), ("local", 1000, 4)] {
        let spec = random_dag(&benchmark_params(family, nodes, seed)).canonical();
        let dag = Dag::from_spec(&spec, &GraphLimits::default()).expect("generated graphs are DAGs");
        let mut rng = SplitMix64::new(seed ^ 0xD5EB);
        let name = |v: u64| format!("V{v}");
        let queries: Vec<Value> = benchmark_dsep_queries(nodes, QUERIES, &mut rng)
            .into_iter()
            .map(|(x, y, given)| json!({"x": [x], "y": [y], "given": given}))
            .collect();
        let mut pairs = Vec::new();
        while pairs.len() < PAIRS {
            // Treatment in the middle half, outcome an observed descendant later on.
            let x = nodes as u64 / 4 + rng.below(nodes as u64 / 2);
            let y = x + 10 + rng.below(if family == "local" { 50 } else { nodes as u64 / 2 });
            if y >= nodes as u64 {
                continue;
            }
            let (xi, yi) = (dag.id(&name(x)).unwrap(), dag.id(&name(y)).unwrap());
            if dag.is_latent(xi) || dag.is_latent(yi) || !dag.descendants(&[xi])[yi as usize] {
                continue;
            }
            pairs.push(json!({"treatment": name(x), "outcome": name(y)}));
        }
        cases.push(json!({
            "name": format!("{family}-n{nodes}-s{seed}"), "nodes": nodes, "family": family,
            "params": format!("{:?}", benchmark_params(family, nodes, seed)),
            "dag": spec, "dsep_queries": queries, "backdoor_pairs": pairs,
        }));
    }
    std::fs::create_dir_all(dir).expect("create output dir");
    let path = format!("{dir}/graphs.json");
    std::fs::write(&path, serde_json::to_vec(&json!({"cases": cases})).unwrap()).expect("write graphs.json");
    eprintln!("wrote {path}");
}

fn names(v: &Value) -> Vec<String> {
    v.as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn run(dir: &str) {
    let data: Value = serde_json::from_slice(&std::fs::read(format!("{dir}/graphs.json")).expect("read graphs.json"))
        .expect("parse graphs.json");
    let mut out_cases = Vec::new();
    for case in data["cases"].as_array().unwrap() {
        let spec: DagSpec = serde_json::from_value(case["dag"].clone()).unwrap();
        let dag = Dag::from_spec(&spec, &GraphLimits::default()).unwrap();
        let resolve = |v: &Value| dag.resolve(&names(v), "bench").unwrap();
        let queries: Vec<(Vec<NodeId>, Vec<NodeId>, Vec<NodeId>)> = case["dsep_queries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|q| (resolve(&q["x"]), resolve(&q["y"]), resolve(&q["given"])))
            .collect();
        // d-separation: one engine per graph, all queries per round, rounds until 0.5 s.
        let mut ds = DSeparation::new(&dag);
        let answers: Vec<bool> = queries.iter().map(|(x, y, z)| ds.separated(x, y, z)).collect();
        let mut rounds = Vec::new();
        let start = Instant::now();
        while start.elapsed().as_secs_f64() < 0.5 || rounds.len() < 5 {
            let t = Instant::now();
            let mut acc = 0usize;
            for (x, y, z) in &queries {
                acc += ds.separated(x, y, z) as usize;
            }
            std::hint::black_box(acc);
            rounds.push(t.elapsed().as_nanos() as f64 / queries.len() as f64);
        }
        let dsep_ns = median(rounds);
        // Minimal back-door sets, max_sets 100: each pair repeated, median per pair.
        let mut backdoor = Vec::new();
        for pair in case["backdoor_pairs"].as_array().unwrap() {
            let x = vec![dag.id(pair["treatment"].as_str().unwrap()).unwrap()];
            let y = vec![dag.id(pair["outcome"].as_str().unwrap()).unwrap()];
            let list = dag.minimal_backdoor_sets(&x, &y, MAX_SETS, &|| false).unwrap();
            let mut times = Vec::new();
            let start = Instant::now();
            while start.elapsed().as_secs_f64() < 0.2 || times.len() < 5 {
                let t = Instant::now();
                std::hint::black_box(dag.minimal_backdoor_sets(&x, &y, MAX_SETS, &|| false).unwrap());
                times.push(t.elapsed().as_nanos() as f64);
            }
            // How many minimal sets exist in all (bounded, for the record).
            let total = dag.minimal_backdoor_sets(&x, &y, 100_000, &|| false).unwrap();
            let mut sets: Vec<Vec<String>> = list.sets.iter().map(|s| dag.sorted_names(s.iter().copied())).collect();
            sets.sort();
            backdoor.push(json!({
                "treatment": pair["treatment"], "outcome": pair["outcome"], "sets": sets,
                "truncated": list.truncated, "per_query_ns": median(times),
                "total_minimal_sets": total.sets.len(), "total_truncated": total.truncated,
            }));
        }
        out_cases.push(json!({
            "name": case["name"], "nodes": dag.node_count(), "edges": dag.edge_count(),
            "dsep": {"per_query_ns": dsep_ns, "answers": answers},
            "backdoor": backdoor,
        }));
        eprintln!("{}: d-sep {:.0} ns/query", case["name"], dsep_ns);
    }
    let env = json!({"isl_causal": env!("CARGO_PKG_VERSION"), "threads": 1, "max_sets": MAX_SETS});
    let path = format!("{dir}/rust.json");
    let body = serde_json::to_vec_pretty(&json!({"env": env, "cases": out_cases})).unwrap();
    std::fs::write(&path, body).expect("write rust.json");
    eprintln!("wrote {path}");
}

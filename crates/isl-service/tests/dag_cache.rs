//! The DAG cache: causal answers from cached graphs are the answers without the cache (same
//! status, bytes and ETag), requests about a DAG already seen reuse its checked graph (by the
//! exact text, or by the canonical hash when spelled in another order), errors are never kept,
//! and the cache stays within its bytes.

use isl_causal::generate::{RandomDagParams, SplitMix64, random_dag};
use isl_service::{Request, Response, Service};
use proptest::prelude::*;
use serde_json::{Value, json};

mod common;
use common::service_with;

const ROUTES: [&str; 4] =
    ["/v1/causal/validate", "/v1/causal/d-separation", "/v1/causal/backdoor", "/v1/causal/frontdoor"];

fn uncached() -> Service {
    service_with(|c| c.cache.dag_bytes = 0)
}

/// No response cache, so every request reaches the DAG cache.
fn dag_cached_only() -> Service {
    service_with(|c| c.cache.capacity_bytes = 0)
}

fn send(s: &Service, path: &str, body: &str) -> Response {
    s.handle(Request::post_json(path, body.as_bytes().to_vec()))
}

fn assert_same(a: &Response, b: &Response, what: &str) {
    assert_eq!(a.status, b.status, "{what}: {}", String::from_utf8_lossy(&a.body));
    assert_eq!(a.body, b.body, "{what}");
    assert_eq!(a.header("etag"), b.header("etag"), "{what}");
}

fn metric(s: &Service, name: &str) -> u64 {
    let text = s.metrics_text();
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name} not in {text}"))
}

/// A request body for `route` about `dag` with node names from it.
fn body_for(route: &str, dag: &Value, names: &[String], rng: &mut SplitMix64) -> Value {
    let mut pick = || names[rng.below(names.len() as u64) as usize].clone();
    let (a, b, c) = (pick(), pick(), pick());
    match route {
        "/v1/causal/validate" => json!({"dag": dag, "treatment": a, "outcome": b, "max_sets": 20}),
        "/v1/causal/d-separation" => {
            json!({"dag": dag, "queries": [{"x": a, "y": b, "given": [c]}, {"x": b, "y": a}]})
        }
        "/v1/causal/backdoor" => json!({"dag": dag, "treatment": a, "outcome": b, "adjustment": [c]}),
        _ => json!({"dag": dag, "treatment": a, "outcome": b, "mediators": [c]}),
    }
}

#[test]
fn answers_and_errors_equal_those_without_the_dag_cache() {
    let butterfly = json!({"edges": [["A","X"],["A","M"],["B","M"],["B","Y"],["M","X"],["M","Y"],["X","Y"]]});
    let cyclic = json!({"edges": [["A","B"],["B","C"],["C","A"]]});
    let bodies = [
        json!({"dag": butterfly, "treatment": "X", "outcome": "Y"}).to_string(),
        json!({"dag": cyclic, "treatment": "A", "outcome": "C"}).to_string(),
        json!({"dag": cyclic, "x": "A", "y": "B"}).to_string(),
        json!({"dag": butterfly, "x": "A", "y": "Nope"}).to_string(),
        json!({"dag": butterfly, "treatment": "X", "outcome": "Y", "adjustment": ["M"]}).to_string(),
        json!({"dag": butterfly, "treatment": "X", "outcome": "Y", "mediators": ["M"]}).to_string(),
        json!({"dag": {"edges": [["", "A"]]}, "treatment": "A", "outcome": "A"}).to_string(),
        json!({"dag": {"edges": [["A", "B"]], "latent": ["Q"]}, "x": "A", "y": "B"}).to_string(),
        json!({"dag": butterfly, "treatment": "X", "outcome": "Y", "max_sets": 1_000_000}).to_string(),
        json!({"dag": butterfly, "x": "A", "y": "B", "queries": []}).to_string(),
        // Forms the fast path leaves to the full decode: an escaped key, a repeated `dag`, none,
        // a `dag` that is no object, a field of the wrong type, malformed JSON.
        r#"{"d\u0061g": {"edges": [["A","B"]]}, "x": "A", "y": "B"}"#.to_string(),
        r#"{"dag": {"edges": [["A","B"]]}, "dag": {"edges": [["B","A"]]}, "x": "A", "y": "B"}"#.to_string(),
        r#"{"x": "A", "y": "B"}"#.to_string(),
        r#"{"dag": [1, 2], "x": "A", "y": "B"}"#.to_string(),
        r#"{"dag": {"edges": [["A","B"]]}, "x": 5, "y": "B"}"#.to_string(),
        r#"{"dag": {"edges": [["A","B"]]}, "unknown": 1}"#.to_string(),
        r#"{"dag": {"edges": [["A","B"]}, "x": "A"}"#.to_string(),
    ];
    let (plain, cached) = (uncached(), dag_cached_only());
    for route in ROUTES {
        for body in &bodies {
            // Twice: the second answer comes from the DAG cache where the first kept a graph.
            for round in 0..2 {
                let what = format!("{route} {body} (round {round})");
                assert_same(&send(&cached, route, body), &send(&plain, route, body), &what);
            }
        }
    }
    let mut statuses: Vec<u16> = bodies.iter().map(|b| send(&plain, ROUTES[1], b).status).collect();
    statuses.sort_unstable();
    statuses.dedup();
    assert!(statuses.len() >= 3, "the bodies cover answers and several errors: {statuses:?}");
}

#[test]
fn requests_about_one_dag_reuse_its_checked_graph() {
    let s = dag_cached_only();
    let spec = random_dag(&RandomDagParams { nodes: 300, avg_parents: 2.0, window: 30, latent_share: 0.1, seed: 4 });
    let dag = serde_json::to_value(&spec).unwrap();
    let names = spec.canonical().nodes.unwrap();
    let mut rng = SplitMix64::new(9);
    for (i, route) in ROUTES.iter().cycle().take(12).enumerate() {
        let r = send(&s, route, &body_for(route, &dag, &names, &mut rng).to_string());
        assert!(r.status == 200 || r.status == 422, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(metric(&s, "isl_dag_cache_misses_total"), 1, "request {i}: built once");
        assert_eq!(metric(&s, "isl_dag_cache_hits_total"), i as u64);
    }
    // The same DAG with edges and nodes in another order: found by its canonical hash.
    let mut reordered = spec.clone();
    reordered.edges.reverse();
    if let Some(nodes) = reordered.nodes.as_mut() {
        nodes.reverse();
    }
    let body = json!({"dag": reordered, "x": names[0], "y": names[1]}).to_string();
    let a = send(&s, ROUTES[1], &body);
    assert_eq!(metric(&s, "isl_dag_cache_misses_total"), 1);
    assert_eq!(metric(&s, "isl_dag_cache_hits_total"), 12);
    let b = send(&uncached(), ROUTES[1], &json!({"dag": dag, "x": names[0], "y": names[1]}).to_string());
    assert_same(&a, &b, "reordered DAG");
    assert!(metric(&s, "isl_dag_cache_bytes") > 0);
    assert_eq!(metric(&s, "isl_dag_cache_entries"), 1);
    // A graph that cannot be built is never kept.
    let bad = json!({"dag": {"edges": [["A", ""]]}, "x": "A", "y": "B"}).to_string();
    for _ in 0..2 {
        assert_eq!(send(&s, ROUTES[1], &bad).status, 422);
    }
    assert_eq!(metric(&s, "isl_dag_cache_entries"), 1);
}

#[test]
fn the_dag_cache_stays_within_its_bytes() {
    let s = service_with(|c| {
        c.cache.capacity_bytes = 0;
        c.cache.dag_bytes = 200_000;
    });
    for seed in 0..30 {
        let spec = random_dag(&RandomDagParams { nodes: 200, avg_parents: 2.0, window: 20, latent_share: 0.1, seed });
        let body = json!({"dag": spec, "x": "V1", "y": "V2"}).to_string();
        let plain = send(&uncached(), ROUTES[1], &body);
        assert_same(&send(&s, ROUTES[1], &body), &plain, &format!("seed {seed}"));
        assert!(metric(&s, "isl_dag_cache_bytes") <= 200_000, "{}", metric(&s, "isl_dag_cache_bytes"));
    }
    assert!(metric(&s, "isl_dag_cache_entries") < 30, "older graphs were evicted");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Brute-force definition: any causal request answers as it does with no DAG cache, in any
    /// order of requests and whatever the cache held before.
    #[test]
    fn cached_graphs_answer_like_fresh_ones(seed in 0u64..10_000, nodes in 2usize..40, order in 0u64..4) {
        let spec = random_dag(&RandomDagParams { nodes, avg_parents: 1.5, window: 10, latent_share: 0.2, seed });
        let mut shuffled = spec.clone();
        if order % 2 == 1 {
            shuffled.edges.reverse();
        }
        let names = spec.canonical().nodes.unwrap_or_default();
        prop_assume!(!names.is_empty());
        let (plain, cached) = (uncached(), dag_cached_only());
        let mut rng = SplitMix64::new(seed ^ order);
        for i in 0..8 {
            let dag = serde_json::to_value(if i % 2 == 0 { &spec } else { &shuffled }).unwrap();
            let route = ROUTES[(i + order as usize) % 4];
            let body = body_for(route, &dag, &names, &mut rng).to_string();
            let (a, b) = (send(&cached, route, &body), send(&plain, route, &body));
            prop_assert_eq!(a.status, b.status);
            prop_assert_eq!(&a.body, &b.body);
            prop_assert_eq!(a.header("etag"), b.header("etag"));
        }
    }
}

//! Property tests as a fuzzer: arbitrary requests never panic, never answer 5xx (but for a
//! deadline), always answer JSON in the contract's shape; and the routes agree with each other.

use std::sync::Arc;

use isl_service::{Config, Method, Request, Service, SystemClock, encode_query};
use proptest::prelude::*;
use serde_json::{Value, json};

const ROUTES: [&str; 4] =
    ["/v1/causal/validate", "/v1/causal/d-separation", "/v1/causal/backdoor", "/v1/causal/frontdoor"];

fn service() -> Service {
    Service::new(Config::default(), Arc::new(SystemClock::new()))
}

fn name() -> impl Strategy<Value = Value> {
    prop_oneof![
        16 => (0u8..6).prop_map(|i| json!(format!("N{i}"))),
        1 => Just(json!("")),
        1 => Just(json!("Q")),
        1 => Just(json!(3)),
        1 => Just(json!(null)),
    ]
}

fn names() -> impl Strategy<Value = Value> {
    prop_oneof![name(), proptest::collection::vec(name(), 0..4).prop_map(Value::Array)]
}

/// Mostly well-formed DAG JSON, with cycles, self-loops, duplicates and the odd wrong type.
fn dag() -> impl Strategy<Value = Value> {
    (
        proptest::collection::vec((0u8..6, 0u8..6), 0..12),
        proptest::collection::vec(0u8..7, 0..2),
        any::<bool>(),
        0u8..20,
        proptest::bool::weighted(0.8),
    )
        .prop_map(|(edges, latent, with_nodes, oddity, acyclic)| {
            // Mostly acyclic (edges from lower to higher index), sometimes anything goes.
            let edges: Vec<Value> = edges
                .iter()
                .filter(|(a, b)| !acyclic || a != b)
                .map(|&(a, b)| if acyclic { (a.min(b), a.max(b)) } else { (a, b) })
                .map(|(a, b)| json!([format!("N{a}"), format!("N{b}")]))
                .collect();
            let latent: Vec<String> = latent.iter().map(|i| format!("N{i}")).collect();
            let mut dag = json!({"edges": edges, "latent": latent});
            if with_nodes {
                dag["nodes"] = json!(["N0", "N1", "N2", "N3", "N4", "N5"]);
            }
            match oddity {
                0 => dag["edges"] = json!("N0 -> N1"),
                1 => dag["extra"] = json!(true),
                2 => dag["edges"] = json!([["N0"]]),
                _ => {}
            }
            dag
        })
}

fn body() -> impl Strategy<Value = Value> {
    (
        dag(),
        names(),
        names(),
        names(),
        names(),
        0u8..8,
        prop_oneof![Just(json!(null)), (0i64..300).prop_map(|n| json!(n)), Just(json!(-1))],
    )
        .prop_map(|(dag, a, b, c, d, shape, max_sets)| {
            let mut v = match shape {
                0 => json!({"dag": dag, "treatment": a, "outcome": b}),
                1 => json!({"dag": dag, "treatment": a, "outcome": b, "adjustment": c}),
                2 => json!({"dag": dag, "treatment": a, "outcome": b, "mediators": c}),
                3 => json!({"dag": dag, "x": a, "y": b, "given": c}),
                4 => json!({"dag": dag, "queries": [{"x": a, "y": b, "given": c}, {"x": d, "y": a}]}),
                5 => json!({"dag": dag}),
                6 => json!({"dag": dag, "x": a, "queries": []}),
                _ => json!([dag, a]),
            };
            if !max_sets.is_null() && v.is_object() {
                v["max_sets"] = max_sets;
            }
            v
        })
}

fn check_contract(status: u16, body: &[u8]) -> Result<Value, TestCaseError> {
    prop_assert!(
        matches!(status, 200 | 400 | 404 | 405 | 413 | 415 | 422),
        "status {status}: {}",
        String::from_utf8_lossy(body)
    );
    let v: Value = serde_json::from_slice(body).map_err(|e| TestCaseError::fail(format!("not JSON: {e}")))?;
    if status != 200 {
        let e = &v["error"];
        prop_assert!(e["code"].is_string() && e["message"].is_string() && e["details"].is_object(), "{v}");
    }
    Ok(v)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1500, .. ProptestConfig::default() })]

    #[test]
    fn structured_requests_keep_the_contract(route in 0usize..4, body in body(), as_get in any::<bool>()) {
        let s = service();
        let bytes = serde_json::to_vec(&body).unwrap();
        let req = if as_get {
            Request::new(Method::Get, ROUTES[route]).with_query(format!("q={}", encode_query(&bytes)))
        } else {
            Request::post_json(ROUTES[route], bytes)
        };
        let resp = s.handle(req);
        let v = check_contract(resp.status, &resp.body)?;
        // Every back-door set validate lists passes the back-door route, and front-door sets
        // pass the front-door route: the routes agree with each other.
        if route == 0 && resp.status == 200 && !v["identification"].is_null() {
            let id = &v["identification"];
            for (sets, field, path) in [("backdoor_sets", "adjustment", ROUTES[2]), ("frontdoor_sets", "mediators", ROUTES[3])] {
                for set in id[sets].as_array().unwrap() {
                    let mut q = json!({"dag": body["dag"], "treatment": body["treatment"], "outcome": body["outcome"]});
                    q[field] = set.clone();
                    let r = s.handle(Request::post_json(path, serde_json::to_vec(&q).unwrap()));
                    prop_assert_eq!(r.status, 200);
                    let answer: Value = serde_json::from_slice(&r.body).unwrap();
                    prop_assert_eq!(&answer["valid"], &json!(true), "{} {} -> {}", sets, set, answer);
                }
            }
        }
    }

    #[test]
    fn arbitrary_bytes_keep_the_contract(route in 0usize..4, bytes in proptest::collection::vec(any::<u8>(), 0..200), query in ".{0,40}") {
        let s = service();
        let resp = s.handle(Request::post_json(ROUTES[route], bytes));
        check_contract(resp.status, &resp.body)?;
        let resp = s.handle(Request::new(Method::Get, ROUTES[route]).with_query(query));
        check_contract(resp.status, &resp.body)?;
    }
}

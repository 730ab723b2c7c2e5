//! The edge component under `isl edge` (embedded wasmtime) answers exactly like the native
//! server: same status, same body bytes, same ETag, over a corpus of valid, conditional and
//! invalid requests on every route.
//!
//! The component must be built first (`scripts/test.sh` does it):
//! `cargo build -p isl-edge --target wasm32-wasip2 --profile edge`.

use std::path::PathBuf;

use bytes::Bytes;
use serde_json::{Value, json};

mod common;
use common::Server;

fn component() -> PathBuf {
    if let Ok(path) = std::env::var("ISL_EDGE_COMPONENT") {
        return PathBuf::from(path);
    }
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = std::env::var("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|_| workspace.join("target"));
    let target = if target.is_absolute() { target } else { workspace.join(target) };
    target.join("wasm32-wasip2/edge/isl_edge.wasm")
}

struct Case {
    name: &'static str,
    method: &'static str,
    target: String,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

fn post(name: &'static str, path: &str, body: &Value) -> Case {
    Case {
        name,
        method: "POST",
        target: path.to_string(),
        headers: vec![("content-type", "application/json".into())],
        body: serde_json::to_vec(body).unwrap(),
    }
}

fn get(name: &'static str, path: &str, body: &Value) -> Case {
    let q = isl_service::encode_query(&serde_json::to_vec(body).unwrap());
    Case { name, method: "GET", target: format!("{path}?q={q}"), headers: vec![], body: vec![] }
}

fn corpus() -> Vec<Case> {
    let frontdoor = json!({"edges": [["U","X"],["U","Y"],["X","M"],["M","Y"],["Z","X"]], "latent": ["U"]});
    let butterfly = json!({"edges": [["A","X"],["A","M"],["B","M"],["B","Y"],["M","X"],["M","Y"],["X","Y"]]});
    let validate = json!({"dag": frontdoor, "treatment": "X", "outcome": "Y"});
    let pricing = json!({"nodes": [
        {"name": "Price", "noise": {"dist": "normal", "mean": 10, "std": 1}},
        {"name": "Demand", "intercept": {"dist": "uniform", "low": 90, "high": 110},
         "parents": {"Price": {"dist": "normal", "mean": -2.0, "std": 0.3}},
         "noise": {"dist": "normal", "mean": 0, "std": 5}},
        {"name": "Cost", "expr": "max(0, 40 + 0.5 * Demand)", "noise": {"dist": "triangular", "low": -1, "mode": 0, "high": 2}},
        {"name": "Revenue", "expr": "Price * Demand - Cost + sqrt(abs(Demand)) * exp(-1) - log(2) ^ 2"}
    ]});
    let sum3 = json!({"nodes": [
        {"name": "A", "noise": {"dist": "normal", "mean": 0, "std": 1}},
        {"name": "B", "noise": {"dist": "lognormal", "mu": 0, "sigma": 0.25}},
        {"name": "C", "noise": {"dist": "normal", "mean": 0, "std": 1}},
        {"name": "Y", "parents": {"A": 1, "B": 1, "C": 1}}
    ]});
    let mut cases = vec![
        post("validate", "/v1/causal/validate", &validate),
        get("validate GET", "/v1/causal/validate", &validate),
        post(
            "validate butterfly",
            "/v1/causal/validate",
            &json!({"dag": butterfly, "treatment": "X", "outcome": "Y", "max_sets": 1}),
        ),
        post("validate cyclic", "/v1/causal/validate", &json!({"dag": {"edges": [["A","B"],["B","C"],["C","A"]]}})),
        post("validate duplicate edges", "/v1/causal/validate", &json!({"dag": {"edges": [["A","B"],["A","B"]]}})),
        post(
            "d-separation",
            "/v1/causal/d-separation",
            &json!({"dag": butterfly, "queries": [{"x": "A", "y": "B"}, {"x": "A", "y": "B", "given": ["M"]}]}),
        ),
        post(
            "backdoor",
            "/v1/causal/backdoor",
            &json!({"dag": butterfly, "treatment": "X", "outcome": "Y", "adjustment": ["M"]}),
        ),
        post(
            "frontdoor",
            "/v1/causal/frontdoor",
            &json!({"dag": frontdoor, "treatment": "X", "outcome": "Y", "mediators": ["M"]}),
        ),
        // Monte Carlo: the same bits natively (rayon, SIMD where the CPU has it) and in wasm32.
        post(
            "counterfactual",
            "/v1/counterfactual",
            &json!({"model": pricing, "intervention": {"Price": 12}, "outcome": "Revenue", "samples": 20000, "threshold": 1000}),
        ),
        get(
            "counterfactual GET",
            "/v1/counterfactual",
            &json!({"model": pricing, "outcome": "Revenue", "samples": 5000}),
        ),
        post(
            "counterfactual adaptive",
            "/v1/counterfactual",
            &json!({"model": pricing, "outcome": "Demand", "target_error": 0.1, "max_samples": 200000, "seed": 7}),
        ),
        post(
            "counterfactual with evidence",
            "/v1/counterfactual",
            &json!({"model": pricing, "evidence": {"Price": 10, "Demand": 75}, "intervention": {"Price": 12}, "outcome": "Revenue", "samples": 5000}),
        ),
        post(
            "counterfactual rare event",
            "/v1/counterfactual",
            &json!({"model": sum3, "outcome": "Y", "samples": 20000, "threshold": 6.5, "seed": 3}),
        ),
        post("sensitivity", "/v1/sensitivity", &json!({"model": pricing, "outcome": "Revenue", "samples": 2000})),
        // Point masses (zero spread) are their constants on every target.
        post(
            "counterfactual point masses",
            "/v1/counterfactual",
            &json!({"model": {"nodes": [
                {"name": "Price", "noise": {"dist": "normal", "mean": 10, "std": 1}},
                {"name": "Demand", "intercept": {"dist": "uniform", "low": 100, "high": 100},
                 "parents": {"Price": {"dist": "normal", "mean": -2.0, "std": 0}},
                 "noise": {"dist": "triangular", "low": 2, "mode": 2, "high": 2}},
                {"name": "Revenue", "expr": "Price * Demand", "noise": {"dist": "lognormal", "mu": 0.5, "sigma": 0}}
            ]}, "outcome": "Revenue", "samples": 5000, "threshold": 900}),
        ),
        post(
            "counterfactual cycle",
            "/v1/counterfactual",
            &json!({"model": {"nodes": [{"name": "A", "expr": "B"}, {"name": "B", "expr": "A + 1"}]}, "outcome": "A"}),
        ),
        post(
            "counterfactual syntax",
            "/v1/counterfactual",
            &json!({"model": {"nodes": [{"name": "A", "expr": "2 * (3 +"}]}, "outcome": "A"}),
        ),
        post(
            "counterfactual too many samples",
            "/v1/counterfactual",
            &json!({"model": pricing, "outcome": "Revenue", "samples": 1_000_000_000u64}),
        ),
        post("unknown node", "/v1/causal/validate", &json!({"dag": frontdoor, "treatment": "Q", "outcome": "Y"})),
        post(
            "treatment = outcome",
            "/v1/causal/validate",
            &json!({"dag": frontdoor, "treatment": "X", "outcome": "X"}),
        ),
        post(
            "cycle where a DAG is needed",
            "/v1/causal/backdoor",
            &json!({"dag": {"edges": [["X","Y"],["Y","X"]]}, "treatment": "X", "outcome": "Y"}),
        ),
        post("unknown field", "/v1/causal/validate", &json!({"dag": frontdoor, "colour": "red"})),
        post("unknown route", "/v1/causal/nothing", &json!({})),
        get("wrong method", "/v1/causal/nothing", &json!({})),
        Case {
            name: "malformed JSON",
            method: "POST",
            target: "/v1/causal/validate".into(),
            headers: vec![("content-type", "application/json".into())],
            body: b"{\"dag\": ".to_vec(),
        },
        Case {
            name: "not JSON",
            method: "POST",
            target: "/v1/causal/validate".into(),
            headers: vec![("content-type", "text/plain".into())],
            body: b"hello".to_vec(),
        },
        Case {
            name: "non-UTF-8",
            method: "POST",
            target: "/v1/causal/validate".into(),
            headers: vec![("content-type", "application/json".into())],
            body: vec![0x7b, 0xff, 0xfe, 0x7d],
        },
        Case {
            name: "bad base64",
            method: "GET",
            target: "/v1/causal/validate?q=%%%".into(),
            headers: vec![],
            body: vec![],
        },
        Case { name: "PUT", method: "PUT", target: "/v1/causal/validate".into(), headers: vec![], body: vec![] },
        Case {
            name: "cache clear without token",
            method: "POST",
            target: "/admin/cache/clear".into(),
            headers: vec![],
            body: vec![],
        },
        Case { name: "openapi", method: "GET", target: "/openapi.json".into(), headers: vec![], body: vec![] },
        // Debug routes exist only where the host turns them on (`isl edge --debug-routes`).
        Case { name: "debug route off", method: "GET", target: "/__debug/trap".into(), headers: vec![], body: vec![] },
    ];
    cases.iter_mut().for_each(|c| c.headers.push(("accept", "application/json".into())));
    cases
}

fn edge(extra: &[&str]) -> Server {
    let path = component();
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build -p isl-edge --target wasm32-wasip2 --profile edge` (scripts/test.sh does)",
        path.display()
    );
    let mut args = vec!["edge", "--addr", "127.0.0.1:0", "--component", path.to_str().unwrap()];
    args.extend_from_slice(extra);
    Server::spawn(&args, &[])
}

#[tokio::test]
async fn the_component_answers_like_the_native_server() {
    let native = Server::spawn(&["serve", "--addr", "127.0.0.1:0"], &[]);
    // With the host's cache tier (repeats never reach the component) and without it (every
    // request, conditional ones included, is answered by a fresh instance).
    let edges = [("edge", edge(&[])), ("edge without tier", edge(&["--cache-bytes", "0"]))];
    let mut compared = 0;
    for case in corpus() {
        let headers: Vec<(&str, &str)> = case.headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let a = native.send(case.method, &case.target, &headers, case.body.clone()).await;
        for (side, edge) in &edges {
            let b = edge.send(case.method, &case.target, &headers, case.body.clone()).await;
            let what = format!("{} ({side})", case.name);
            assert_eq!(a.status, b.status, "{what}: status");
            assert_eq!(a.body, b.body, "{what}: body");
            for header in ["etag", "cache-control", "content-type", "allow", "retry-after"] {
                assert_eq!(a.header(header), b.header(header), "{what}: {header}");
            }
            // Without the tier every answer is computed by a fresh instance: always a miss.
            let x_cache = if *side == "edge" { a.header("x-cache") } else { a.header("x-cache").map(|_| "miss") };
            assert_eq!(x_cache, b.header("x-cache"), "{what}: x-cache");
        }
        // The same request again: the native server and the tiered edge host both answer from
        // their cache (`x-cache: hit`) with the same bytes.
        let a2 = native.send(case.method, &case.target, &headers, case.body.clone()).await;
        let b2 = edges[0].1.send(case.method, &case.target, &headers, case.body.clone()).await;
        assert_eq!((a2.status, &a2.body), (b2.status, &b2.body), "{}: repeated", case.name);
        assert_eq!(a2.header("x-cache"), b2.header("x-cache"), "{}: repeated x-cache", case.name);
        // Conditional request with the tag just received: 304 from all, no body.
        if let Some(etag) = a.header("etag") {
            let mut conditional = headers.clone();
            conditional.push(("if-none-match", etag));
            let a = native.send(case.method, &case.target, &conditional, case.body.clone()).await;
            assert_eq!(a.status, 304, "{}: conditional", case.name);
            assert!(a.body.is_empty());
            for (side, edge) in &edges {
                let b = edge.send(case.method, &case.target, &conditional, case.body.clone()).await;
                assert_eq!(b.status, 304, "{} ({side}): conditional", case.name);
                assert!(b.body.is_empty());
                assert_eq!(a.header("etag"), b.header("etag"));
                assert_eq!(a.header("cache-control"), b.header("cache-control"));
            }
        }
        compared += 1;
    }
    assert_eq!(compared, corpus().len());
    // The edge hosts keep serving after all of that.
    for (side, edge) in &edges {
        let health = edge.send("GET", "/health", &[], Bytes::new()).await;
        assert_eq!(health.status, 200, "{side}");
    }
}

/// The edge host's `/metrics` text.
async fn metrics(server: &Server) -> String {
    let r = server.send("GET", "/metrics", &[], Bytes::new()).await;
    assert_eq!(r.status, 200);
    String::from_utf8(r.body.to_vec()).unwrap()
}

#[tokio::test]
async fn a_trap_is_a_json_500_counted_in_metrics_and_the_next_request_works() {
    let host = edge(&["--debug-routes"]);
    let json = [("content-type", "application/json")];
    for round in 1..=2 {
        let r = host.send("GET", "/__debug/trap", &[], Bytes::new()).await;
        assert_eq!(r.status, 500, "{}", String::from_utf8_lossy(&r.body));
        let error = r.json().unwrap();
        assert_eq!(error["error"]["code"], "component_trap", "{error}");
        assert!(error["error"]["details"]["trap"].as_str().unwrap().contains("unreachable"), "{error}");
        assert_eq!(r.header("cache-control"), Some("no-store"));
        let text = metrics(&host).await;
        assert!(text.contains(&format!("isl_edge_traps_total {round}\n")), "{text}");
        let ok = host.send("POST", "/v1/causal/validate", &json, &br#"{"dag": {"edges": [["A","B"]]}}"#[..]).await;
        assert_eq!(ok.status, 200, "{}", String::from_utf8_lossy(&ok.body));
    }
    let text = metrics(&host).await;
    assert!(text.contains("isl_requests_total{route=\"unmatched\",status=\"500\"} 2"), "{text}");
    assert!(text.contains("isl_edge_instantiate_seconds{quantile=\"0.5\"}"), "{text}");
}

#[tokio::test]
async fn over_the_instance_limit_answers_429_and_recovers() {
    let host = edge(&["--max-instances", "1"]);
    let (stream, rest, r) = common::hold_the_only_permit(&host).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), Some("1"));
    assert_eq!(r.json().unwrap()["error"]["code"], "overloaded");
    let (status, v) = common::finish_slow_request(stream, &rest).await;
    assert_eq!(status, 200);
    assert_eq!(v["identification"]["backdoor_sets"], json!([["Z"]]));
    let health = host.send("GET", "/health", &[], Bytes::new()).await;
    assert_eq!(health.status, 200);
    assert!(metrics(&host).await.contains("isl_requests_total{route=\"/health\",status=\"429\"}"));
}

#[tokio::test]
async fn the_compiled_component_is_kept_and_reused_and_a_damaged_one_is_replaced() {
    let dir = std::env::temp_dir().join(format!("isl-edge-precompiled-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let dir_arg = dir.to_str().unwrap();
    let body = br#"{"dag": {"edges": [["Z","X"], ["Z","Y"], ["X","Y"]]}, "treatment": "X", "outcome": "Y"}"#;
    let json = [("content-type", "application/json")];
    let mut answers = Vec::new();
    let compiled_files = || -> Vec<PathBuf> {
        std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "cwasm"))
            .collect()
    };
    for (round, expected) in ["compiled", "precompiled", "compiled"].into_iter().enumerate() {
        if round == 2 {
            // Damage the kept file: the host must notice, compile afresh and replace it.
            for file in compiled_files() {
                std::fs::write(file, b"not a compiled component").unwrap();
            }
        }
        let server = edge(&["--precompiled-dir", dir_arg]);
        let text = metrics(&server).await;
        assert!(
            text.contains(&format!("isl_edge_component_load_seconds{{how=\"{expected}\"}}")),
            "round {round}: {text}"
        );
        assert_eq!(compiled_files().len(), 1, "one compiled form is kept");
        let r = server.send("POST", "/v1/causal/validate", &json, &body[..]).await;
        assert_eq!(r.status, 200);
        answers.push(r.body);
    }
    assert!(answers.windows(2).all(|w| w[0] == w[1]));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A validate request on a large graph asking for many adjustment sets: seconds of work.
fn heavy_validate(nodes: usize, avg_parents: f64) -> Value {
    let dag = isl_causal::generate::random_dag(&isl_causal::generate::RandomDagParams {
        nodes,
        avg_parents,
        window: 25,
        latent_share: 0.1,
        seed: 4,
    });
    json!({"dag": dag, "treatment": format!("V{}", nodes / 2), "outcome": format!("V{}", nodes / 2 + 40), "max_sets": 10000})
}

#[tokio::test]
async fn runaway_and_oversized_requests_end_cleanly_and_the_host_keeps_serving() {
    let json = [("content-type", "application/json")];

    // Past the deadline: the instance is interrupted, 504 with the JSON error.
    let host = edge(&["--deadline-ms", "20"]);
    let body = serde_json::to_vec(&heavy_validate(1000, 2.0)).unwrap();
    let r = host.send("POST", "/v1/causal/validate", &json, body.clone()).await;
    assert_eq!(r.status, 504, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json().unwrap()["error"]["code"], "deadline_exceeded");
    assert!(metrics(&host).await.contains("isl_edge_deadline_exceeded_total 1\n"));
    let ok = host.send("POST", "/v1/causal/validate", &json, &br#"{"dag": {"edges": [["A","B"]]}}"#[..]).await;
    assert_eq!(ok.status, 200);

    // Over the memory cap: the instance traps, 500 naming the trap, and the next request works.
    let host = edge(&["--memory-mib", "3"]);
    let body = serde_json::to_vec(&heavy_validate(9000, 4.0)).unwrap();
    assert!(body.len() < 1024 * 1024, "stay under the body limit: {}", body.len());
    let r = host.send("POST", "/v1/causal/validate", &json, body.clone()).await;
    assert_eq!(r.status, 500, "{}", String::from_utf8_lossy(&r.body));
    let error = r.json().unwrap();
    assert_eq!(error["error"]["code"], "component_trap", "{error}");
    let ok = host.send("POST", "/v1/causal/validate", &json, &br#"{"dag": {"edges": [["A","B"]]}}"#[..]).await;
    assert_eq!(ok.status, 200, "{}", String::from_utf8_lossy(&ok.body));
}

#[test]
fn a_client_that_writes_a_large_body_first_reads_the_413_json_from_the_edge_host() {
    let host = edge(&[]);
    let body = br#"{"dag": {"edges": [["A","B"]]}}"#;
    let mut next = format!(
        "POST /v1/causal/validate HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        host.addr,
        body.len()
    )
    .into_bytes();
    next.extend_from_slice(body);
    common::check_oversized_bodies_get_their_413(&host.addr, "/v1/causal/validate", &next);
}

/// The component imports only standard WASI 0.2 interfaces — no filesystem, no sockets, no
/// outgoing HTTP, nothing Spin-specific — so Spin, SpinKube and `wasmtime serve` all run it; it
/// exports the `wasi:http` incoming handler.
#[test]
fn the_component_imports_only_standard_wasi_and_no_outbound_network() {
    let (imports, exports) = common::component_interfaces(&component());
    let allowed = ["wasi:cli/", "wasi:clocks/", "wasi:io/", "wasi:random/", "wasi:http/types@0.2."];
    for import in &imports {
        assert!(allowed.iter().any(|p| import.starts_with(p)), "unexpected import {import} (all: {imports:?})");
        assert!(import.contains("@0.2."), "not WASI 0.2: {import}");
    }
    for forbidden in ["wasi:filesystem", "wasi:sockets", "wasi:http/outgoing-handler", "fermyon:"] {
        assert!(!imports.iter().any(|i| i.starts_with(forbidden)), "imports {forbidden}: {imports:?}");
    }
    assert!(exports.iter().any(|e| e.starts_with("wasi:http/incoming-handler@0.2.")), "{exports:?}");
}

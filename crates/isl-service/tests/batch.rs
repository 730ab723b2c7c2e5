//! `/v1/batch`: items through their normal routes (same bytes, ETags and cache entries as single
//! requests), dependency order, per-item failures, NDJSON, and the 422s of bad batches.

use std::sync::Arc;

use isl_service::{Config, Method, Request, Response, Service, SystemClock, encode_query};
use serde_json::{Value, json};

mod common;
use common::{json_of, post, service};

const BATCH: &str = "/v1/batch";

fn error(r: &Response, status: u16, code: &str) -> Value {
    assert_eq!(r.status, status, "{}", String::from_utf8_lossy(&r.body));
    let v = json_of(r);
    assert_eq!(v["error"]["code"], code, "{v}");
    v["error"].clone()
}

fn validate() -> Value {
    json!({"dag": {"edges": [["Z","X"], ["Z","Y"], ["X","Y"]]}, "treatment": "X", "outcome": "Y"})
}

fn counterfactual() -> Value {
    json!({"model": {"nodes": [
        {"name": "Price", "noise": {"dist": "normal", "mean": 10, "std": 1}},
        {"name": "Demand", "intercept": 100, "parents": {"Price": -2}, "noise": {"dist": "normal", "mean": 0, "std": 5}},
        {"name": "Revenue", "expr": "Price * Demand"}
    ]}, "intervention": {"Price": 12}, "outcome": "Revenue", "samples": 5000, "seed": 1})
}

fn preferences() -> Value {
    json!({"attributes": [
        {"name": "cost", "better": "lower", "range": [0, 100]},
        {"name": "quality", "better": "higher", "range": [0, 10]}
    ], "particles": 500, "seed": 2})
}

fn mixed() -> Value {
    json!({"items": [
        {"id": "prefs", "route": "/v1/preferences/next", "body": preferences(), "after": ["cf"]},
        {"id": "valid", "route": "/v1/causal/validate", "body": validate()},
        {"id": "cf", "route": "/v1/counterfactual", "body": counterfactual(), "after": ["valid"]},
        {"id": "nowhere", "route": "/v1/nowhere", "body": {}},
        {"id": "bad", "route": "/v1/causal/validate", "body": {"dag": 5}, "after": ["nowhere"]},
        {"id": "nested", "route": "/v1/batch", "body": {"items": []}}
    ]})
}

#[test]
fn items_answer_as_their_routes_do() {
    let s = service();
    let r = post(&s, BATCH, &mixed());
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let v = json_of(&r);
    let items = v["items"].as_array().unwrap();
    let ids: Vec<&str> = items.iter().map(|i| i["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["prefs", "valid", "cf", "nowhere", "bad", "nested"], "request order");
    let status: Vec<u64> = items.iter().map(|i| i["status"].as_u64().unwrap()).collect();
    assert_eq!(status, [200, 200, 200, 404, 422, 404]);
    assert_eq!(items[3]["body"]["error"]["code"], "not_found");
    assert_eq!(items[4]["body"]["error"]["code"], "invalid_request");
    // Each successful item is byte for byte what its route answers alone, with the same ETag,
    // now from the cache the batch filled.
    let fresh = service();
    for (i, (path, body)) in [
        ("/v1/preferences/next", preferences()),
        ("/v1/causal/validate", validate()),
        ("/v1/counterfactual", counterfactual()),
    ]
    .iter()
    .enumerate()
    {
        let alone = post(&fresh, path, body);
        assert_eq!(items[i]["body"], json_of(&alone), "{path}");
        assert_eq!(items[i]["etag"].as_str(), alone.header("etag"), "{path}");
        assert_eq!(items[i]["cache"], "miss");
        let again = post(&s, path, body);
        assert_eq!(again.header("x-cache"), Some("hit"), "{path}: the batch cached it");
    }
    // The embedded bodies are the routes' bytes, not re-encoded JSON.
    let text = String::from_utf8(r.body.to_vec()).unwrap();
    let alone = post(&fresh, "/v1/counterfactual", &counterfactual());
    assert!(text.contains(std::str::from_utf8(&alone.body).unwrap()));
    // Dependency order.
    let completed: Vec<&str> = v["completed"].as_array().unwrap().iter().map(|x| x.as_str().unwrap()).collect();
    assert_eq!(completed.len(), 6);
    let pos = |id: &str| completed.iter().position(|x| *x == id).unwrap();
    assert!(pos("valid") < pos("cf") && pos("cf") < pos("prefs") && pos("nowhere") < pos("bad"), "{completed:?}");
    // Metrics: every item under its own route, the batch under /v1/batch; the batch itself is
    // not cached (three answers are).
    assert_eq!(s.request_count("/v1/counterfactual", 200), 2);
    assert_eq!(s.request_count("/v1/causal/validate", 422), 1);
    assert_eq!(s.request_count(BATCH, 200), 1);
    assert_eq!(s.cache_snapshot().entries, 3);
    // A repeated batch is served from the items' cache entries.
    let v = json_of(&post(&s, BATCH, &mixed()));
    assert_eq!(v["items"][2]["cache"], "hit");
}

#[test]
fn ndjson_streams_items_in_completion_order() {
    let s = service();
    let req = Request::post_json(BATCH, serde_json::to_vec(&mixed()).unwrap())
        .with_header("accept", "application/json;q=0.5, application/x-ndjson");
    let r = s.handle(req);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/x-ndjson"));
    let text = String::from_utf8(r.body.to_vec()).unwrap();
    assert!(text.ends_with('\n'));
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 6);
    let order: Vec<&str> = lines.iter().map(|l| l["id"].as_str().unwrap()).collect();
    let pos = |id: &str| order.iter().position(|x| *x == id).unwrap();
    assert!(pos("valid") < pos("cf") && pos("cf") < pos("prefs") && pos("nowhere") < pos("bad"), "{order:?}");
    let prefs = &lines[pos("prefs")];
    assert_eq!(prefs["status"], 200);
    assert!(prefs["body"]["weights"]["cost"]["mean"].is_number());
}

#[test]
fn get_head_and_methods() {
    let s = service();
    let body = json!({"items": [{"id": "a", "route": "/v1/causal/validate", "body": validate()}]});
    let q = encode_query(&serde_json::to_vec(&body).unwrap());
    let g = s.handle(Request::new(Method::Get, BATCH).with_query(format!("q={q}")));
    assert_eq!(g.status, 200);
    assert_eq!(json_of(&g)["items"][0]["status"], 200);
    let h = s.handle(Request::new(Method::Head, BATCH).with_query(format!("q={q}")));
    assert_eq!(h.status, 200);
    assert!(h.body.is_empty());
    let p = s.handle(Request::new(Method::Put, BATCH));
    error(&p, 405, "method_not_allowed");
    assert_eq!(p.header("allow"), Some("GET, HEAD, POST"));
    let t = s.handle(Request::new(Method::Post, BATCH).with_header("content-type", "text/plain").with_body("{}"));
    error(&t, 415, "unsupported_media_type");
    error(&s.handle(Request::post_json(BATCH, "{\"items\": [")), 400, "malformed_json");
    // An empty batch is fine.
    assert_eq!(json_of(&post(&s, BATCH, &json!({"items": []}))), json!({"items": [], "completed": []}));
}

#[test]
fn bad_batches_are_422() {
    let s = service();
    let item = |id: &str, after: &[&str]| json!({"id": id, "route": "/v1/causal/validate", "body": validate(), "after": after});
    let e = error(
        &post(&s, BATCH, &json!({"items": [item("a", &["c"]), item("b", &["a"]), item("c", &["b"]), item("d", &[])]})),
        422,
        "dependency_cycle",
    );
    let cycle: Vec<&str> = e["details"]["cycle"].as_array().unwrap().iter().map(|x| x.as_str().unwrap()).collect();
    assert_eq!(cycle.len(), 4, "{cycle:?}");
    assert_eq!(cycle.first(), cycle.last());
    error(&post(&s, BATCH, &json!({"items": [item("a", &["a"])]})), 422, "dependency_cycle");
    let e = error(&post(&s, BATCH, &json!({"items": [item("a", &["zz"])]})), 422, "unknown_dependency");
    assert_eq!(e["details"], json!({"id": "a", "after": "zz"}));
    error(&post(&s, BATCH, &json!({"items": [item("a", &[]), item("a", &[])]})), 422, "duplicate_id");
    error(&post(&s, BATCH, &json!({"items": [item("", &[])]})), 422, "invalid_id");
    error(&post(&s, BATCH, &json!({"items": [{"id": "a", "route": "/x"}]})), 422, "invalid_request");
    error(&post(&s, BATCH, &json!({"items": [], "parallel": true})), 422, "invalid_request");
    let small = Service::new(Config { batch_max_items: 2, ..Config::default() }, Arc::new(SystemClock::new()));
    let e = error(
        &post(&small, BATCH, &json!({"items": [item("a", &[]), item("b", &[]), item("c", &[])]})),
        422,
        "over_limit",
    );
    assert_eq!(e["details"]["limit"], 2);
    assert_eq!(s.cache_snapshot().entries, 0, "nothing ran");
}

#[test]
fn long_chains_and_wide_fans_complete_in_order() {
    let s = service();
    // 40 items: a chain of 20 (each after the previous) and 20 independent ones, all different
    // questions.
    let mut items = Vec::new();
    for k in 0..20 {
        let mut body = validate();
        body["dag"]["nodes"] = json!([format!("N{k}")]);
        let after: Vec<String> = if k > 0 { vec![format!("c{}", k - 1)] } else { vec![] };
        items.push(json!({"id": format!("c{k}"), "route": "/v1/causal/validate", "body": body, "after": after}));
        let mut body = validate();
        body["dag"]["nodes"] = json!([format!("M{k}")]);
        items.push(json!({"id": format!("f{k}"), "route": "/v1/causal/validate", "body": body}));
    }
    let v = json_of(&post(&s, BATCH, &json!({"items": items})));
    let completed: Vec<&str> = v["completed"].as_array().unwrap().iter().map(|x| x.as_str().unwrap()).collect();
    assert_eq!(completed.len(), 40);
    let chain: Vec<&&str> = completed.iter().filter(|x| x.starts_with('c')).collect();
    let want: Vec<String> = (0..20).map(|k| format!("c{k}")).collect();
    assert_eq!(chain.iter().map(|x| x.to_string()).collect::<Vec<_>>(), want);
    assert!(v["items"].as_array().unwrap().iter().all(|i| i["status"] == 200));
}

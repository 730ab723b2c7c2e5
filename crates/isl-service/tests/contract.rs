//! The HTTP contract, exercised through `Service::handle`: every bad-input case, GET/POST
//! equivalence, ETags and 304, the cache (hit, miss, coalesced, TTL, eviction), metrics,
//! canonicalisation, deadlines and the operational routes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};

use isl_causal::generate::{RandomDagParams, random_dag};
use isl_service::{
    CacheConfig, Clock, Config, ManualClock, Method, OPENAPI_JSON, Request, Response, Service, SystemClock,
    encode_query,
};
use serde_json::{Value, json};

mod common;
use common::{get, json_of, post, service, service_with};

const VALIDATE: &str = "/v1/causal/validate";
const DSEP: &str = "/v1/causal/d-separation";
const BACKDOOR: &str = "/v1/causal/backdoor";
const FRONTDOOR: &str = "/v1/causal/frontdoor";

/// Asserts an error response: status, JSON error shape, code; returns the error object.
fn assert_error(r: &Response, status: u16, code: &str) -> Value {
    assert_eq!(r.status, status, "body: {}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("content-type"), Some("application/json"));
    let v = json_of(r);
    let e = v["error"].clone();
    assert_eq!(e["code"], code, "{v}");
    assert!(e["message"].is_string(), "{v}");
    assert!(e["details"].is_object(), "{v}");
    assert_eq!(v.as_object().map(|o| o.len()), Some(1), "{v}");
    assert_eq!(e.as_object().map(|o| o.len()), Some(3), "{v}");
    e
}

fn confounded() -> Value {
    json!({"edges": [["Z","X"], ["Z","Y"], ["X","Y"]]})
}

fn frontdoor_dag() -> Value {
    json!({"edges": [["U","X"], ["U","Y"], ["X","M"], ["M","Y"]], "latent": ["U"]})
}

// ---------------------------------------------------------------- bad input

#[test]
fn malformed_json_is_400() {
    let s = service();
    for body in [&b"{\"dag\": "[..], b"not json", b"", b"{\"dag\": 5, "] {
        let r = s.handle(Request::post_json(VALIDATE, body.to_vec()));
        assert_error(&r, 400, "malformed_json");
    }
    // The same through GET.
    let r = s.handle(Request::new(Method::Get, VALIDATE).with_query(format!("q={}", encode_query(b"[1,"))));
    assert_error(&r, 400, "malformed_json");
}

#[test]
fn bad_base64_is_400_and_missing_q_is_400() {
    let s = service();
    for q in ["q=***", "q=%G1", "q=a"] {
        let r = s.handle(Request::new(Method::Get, VALIDATE).with_query(q));
        assert_error(&r, 400, "invalid_base64");
    }
    assert_error(&s.handle(Request::new(Method::Get, VALIDATE)), 400, "missing_query");
    assert_error(&s.handle(Request::new(Method::Get, VALIDATE).with_query("x=1")), 400, "missing_query");
}

#[test]
fn non_json_content_type_is_415() {
    let s = service();
    let body = serde_json::to_vec(&json!({"dag": confounded()})).unwrap();
    for ct in [Some("text/plain"), Some("application/x-www-form-urlencoded"), Some("application/jsonp"), None] {
        let mut req = Request::new(Method::Post, VALIDATE).with_body(body.clone());
        if let Some(ct) = ct {
            req = req.with_header("Content-Type", ct);
        }
        assert_error(&s.handle(req), 415, "unsupported_media_type");
    }
    // Parameters and case are fine.
    let req = Request::new(Method::Post, VALIDATE).with_header("Content-Type", "Application/JSON; charset=utf-8");
    assert_eq!(s.handle(req.with_body(body)).status, 200);
}

#[test]
fn body_over_limit_is_413() {
    let s = service_with(|c| c.max_body_bytes = 64);
    let big = json!({"dag": {"nodes": (0..50).map(|i| format!("N{i}")).collect::<Vec<_>>()}});
    let e = assert_error(&post(&s, VALIDATE, &big), 413, "payload_too_large");
    assert_eq!(e["details"]["limit"], 64);
    assert_error(&get(&s, VALIDATE, &big), 413, "payload_too_large");
    // Under the limit still works.
    assert_eq!(post(&s, VALIDATE, &json!({"dag": {}})).status, 200);
}

#[test]
fn non_utf8_is_400() {
    let s = service();
    let mut body = br#"{"dag": {"nodes": [""#.to_vec();
    body.extend([0xff, 0xfe]);
    body.extend(br#""]}}"#);
    let e = assert_error(&s.handle(Request::post_json(VALIDATE, body.clone())), 400, "invalid_utf8");
    assert_eq!(e["details"]["offset"], 20);
    let r = s.handle(Request::new(Method::Get, VALIDATE).with_query(format!("q={}", encode_query(&body))));
    assert_error(&r, 400, "invalid_utf8");
}

#[test]
fn schema_errors_and_unknown_fields_are_422() {
    let s = service();
    for body in [
        json!({"dag": 5}),
        json!({"dag": {"edges": [["A"]]}}),
        json!({"dag": {}, "max_sets": -1}),
        json!({"dag": {}, "extra": true}),
        json!({"dag": {"edges": [], "colour": "red"}}),
        json!([1, 2]),
    ] {
        assert_error(&post(&s, VALIDATE, &body), 422, "invalid_request");
    }
    assert_error(&post(&s, DSEP, &json!({"dag": {}, "queries": [{"x": "A", "z": "B"}]})), 422, "invalid_request");
}

#[test]
fn unknown_node_names_in_any_field_are_422_naming_them() {
    let s = service();
    let dag = confounded();
    let cases = [
        (VALIDATE, json!({"dag": dag, "treatment": "Q", "outcome": "Y"}), "treatment", vec!["Q"]),
        (VALIDATE, json!({"dag": dag, "treatment": "X", "outcome": ["Y", "W", "V"]}), "outcome", vec!["V", "W"]),
        (VALIDATE, json!({"dag": {"edges": [["A","B"]], "latent": ["U"]}}), "latent", vec!["U"]),
        (DSEP, json!({"dag": dag, "x": "Q", "y": "Y"}), "x", vec!["Q"]),
        (DSEP, json!({"dag": dag, "x": "X", "y": "Q"}), "y", vec!["Q"]),
        (DSEP, json!({"dag": dag, "x": "X", "y": "Y", "given": ["Q"]}), "given", vec!["Q"]),
        (DSEP, json!({"dag": dag, "queries": [{"x": "X", "y": "Y"}, {"x": "X", "y": "R"}]}), "queries[1].y", vec!["R"]),
        (BACKDOOR, json!({"dag": dag, "treatment": "Q", "outcome": "Y"}), "treatment", vec!["Q"]),
        (BACKDOOR, json!({"dag": dag, "treatment": "X", "outcome": "Q"}), "outcome", vec!["Q"]),
        (BACKDOOR, json!({"dag": dag, "treatment": "X", "outcome": "Y", "adjustment": ["Q"]}), "adjustment", vec!["Q"]),
        (
            FRONTDOOR,
            json!({"dag": frontdoor_dag(), "treatment": "X", "outcome": "Y", "mediators": ["Q"]}),
            "mediators",
            vec!["Q"],
        ),
        (
            FRONTDOOR,
            json!({"dag": frontdoor_dag(), "treatment": "Q", "outcome": "Y", "mediators": ["M"]}),
            "treatment",
            vec!["Q"],
        ),
    ];
    for (path, body, field, names) in cases {
        let e = assert_error(&post(&s, path, &body), 422, "unknown_node");
        assert!(e["details"]["field"].as_str().unwrap().ends_with(field), "{path} {e}");
        assert_eq!(e["details"]["nodes"], json!(names), "{path} {e}");
        for n in names {
            assert!(e["message"].as_str().unwrap().contains(&format!("'{n}'")), "{e}");
        }
    }
}

#[test]
fn cyclic_graph_validates_with_cycle_but_other_routes_422() {
    let s = service();
    let dag = json!({"edges": [["A","B"], ["B","C"], ["C","A"], ["C","D"]]});
    let r = post(&s, VALIDATE, &json!({"dag": dag, "treatment": "A", "outcome": "D"}));
    assert_eq!(r.status, 200);
    let v = json_of(&r);
    assert_eq!(v["acyclic"], false);
    let cycle: Vec<String> = serde_json::from_value(v["cycle"].clone()).unwrap();
    assert_eq!(cycle.first(), cycle.last());
    assert_eq!(cycle.len(), 4);
    assert_eq!(v["identification"], Value::Null);
    for (path, body) in [
        (DSEP, json!({"dag": dag, "x": "A", "y": "D"})),
        (BACKDOOR, json!({"dag": dag, "treatment": "A", "outcome": "D"})),
        (FRONTDOOR, json!({"dag": dag, "treatment": "A", "outcome": "D", "mediators": ["C"]})),
    ] {
        let e = assert_error(&post(&s, path, &body), 422, "cyclic_graph");
        assert_eq!(e["details"]["cycle"].as_array().map(Vec::len), Some(4), "{e}");
    }
}

#[test]
fn self_loops_are_cycles() {
    let s = service();
    let dag = json!({"edges": [["A","A"], ["A","B"]]});
    let v = json_of(&post(&s, VALIDATE, &json!({"dag": dag})));
    assert_eq!(v["acyclic"], false);
    assert_eq!(v["cycle"], json!(["A", "A"]));
    let e =
        assert_error(&post(&s, BACKDOOR, &json!({"dag": dag, "treatment": "A", "outcome": "B"})), 422, "cyclic_graph");
    assert_eq!(e["details"]["cycle"], json!(["A", "A"]));
}

#[test]
fn duplicate_edges_are_accepted_with_one_warning() {
    let s = service();
    let v = json_of(&post(&s, VALIDATE, &json!({"dag": {"edges": [["A","B"], ["A","B"], ["B","C"]]}})));
    assert_eq!(v["acyclic"], true);
    assert_eq!(v["edge_count"], 2);
    let warnings = v["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{v}");
    assert!(warnings[0].as_str().unwrap().contains("duplicate edge A -> B"));
}

#[test]
fn empty_graph() {
    let s = service();
    for dag in [json!({}), json!({"nodes": [], "edges": [], "latent": []})] {
        let r = post(&s, VALIDATE, &json!({"dag": dag}));
        assert_eq!(r.status, 200);
        let v = json_of(&r);
        assert_eq!(
            (v["acyclic"].clone(), v["node_count"].clone(), v["edge_count"].clone()),
            (json!(true), json!(0), json!(0))
        );
        assert_eq!(v["identification"], Value::Null);
    }
    assert_error(&post(&s, BACKDOOR, &json!({"dag": {}, "treatment": "X", "outcome": "Y"})), 422, "unknown_node");
    assert_eq!(json_of(&post(&s, DSEP, &json!({"dag": {}, "queries": []}))), json!({"results": []}));
    assert_error(&post(&s, DSEP, &json!({"dag": {}, "x": "A", "y": "B"})), 422, "unknown_node");
}

#[test]
fn node_and_edge_counts_over_limit_are_422() {
    let s = service_with(|c| {
        c.causal.graph.max_nodes = 10;
        c.causal.graph.max_edges = 5;
    });
    let nodes: Vec<String> = (0..11).map(|i| format!("N{i}")).collect();
    let e = assert_error(&post(&s, VALIDATE, &json!({"dag": {"nodes": nodes}})), 422, "too_many_nodes");
    assert_eq!(e["details"]["limit"], 10);
    let edges: Vec<[String; 2]> = (0..6).map(|i| [format!("A{i}"), format!("B{i}")]).collect();
    let e =
        assert_error(&post(&s, DSEP, &json!({"dag": {"edges": edges}, "x": "A0", "y": "B0"})), 422, "too_many_edges");
    assert_eq!(e["details"]["limit"], 5);
}

#[test]
fn treatment_equal_to_outcome_is_422() {
    let s = service();
    let dag = confounded();
    for (path, body) in [
        (VALIDATE, json!({"dag": dag, "treatment": "X", "outcome": "X"})),
        (BACKDOOR, json!({"dag": dag, "treatment": "X", "outcome": ["X", "Y"]})),
        (FRONTDOOR, json!({"dag": frontdoor_dag(), "treatment": "X", "outcome": "X", "mediators": ["M"]})),
        (DSEP, json!({"dag": dag, "x": "X", "y": "X"})),
    ] {
        let e = assert_error(&post(&s, path, &body), 422, "overlapping_sets");
        assert_eq!(e["details"]["nodes"], json!(["X"]), "{path}");
    }
}

#[test]
fn huge_numbers_of_queries_and_sets_are_422() {
    let s = service_with(|c| {
        c.causal.max_queries = 100;
        c.causal.max_sets_ceiling = 50;
    });
    let queries: Vec<Value> = (0..101).map(|_| json!({"x": "X", "y": "Y"})).collect();
    let e = assert_error(&post(&s, DSEP, &json!({"dag": confounded(), "queries": queries})), 422, "over_limit");
    assert_eq!(e["details"]["what"], "queries");
    let e = assert_error(&post(&s, VALIDATE, &json!({"dag": confounded(), "max_sets": 51})), 422, "over_limit");
    assert_eq!(e["details"]["what"], "max_sets");
    let queries: Vec<Value> = (0..100).map(|_| json!({"x": "X", "y": "Y", "given": ["Z"]})).collect();
    let v = json_of(&post(&s, DSEP, &json!({"dag": confounded(), "queries": queries})));
    assert_eq!(v["results"].as_array().map(Vec::len), Some(100));
}

#[test]
fn unknown_route_404_and_wrong_method_405() {
    let s = service();
    for path in ["/", "/v1/causal", "/v1/causal/validate/", "/v2/causal/validate", "/HEALTH"] {
        let e = assert_error(&s.handle(Request::new(Method::Get, path)), 404, "not_found");
        assert_eq!(e["details"]["path"], path);
    }
    let cases = [
        (Method::Put, VALIDATE, "GET, HEAD, POST"),
        (Method::Delete, BACKDOOR, "GET, HEAD, POST"),
        (Method::Other("BREW".into()), DSEP, "GET, HEAD, POST"),
        (Method::Post, "/health", "GET, HEAD"),
        (Method::Post, "/metrics", "GET, HEAD"),
        (Method::Get, "/admin/cache/clear", "POST"),
    ];
    for (method, path, allow) in cases {
        let r = s.handle(Request::new(method, path));
        assert_error(&r, 405, "method_not_allowed");
        assert_eq!(r.header("allow"), Some(allow));
    }
}

#[test]
fn cache_clear_needs_the_token() {
    let s = service_with(|c| c.admin_token = Some("s3cret".into()));
    let clear = || Request::new(Method::Post, "/admin/cache/clear");
    let e = assert_error(&s.handle(clear()), 401, "unauthorized");
    assert!(e["message"].as_str().unwrap().contains("missing"));
    assert_error(&s.handle(clear().with_header("Authorization", "Bearer nope")), 401, "unauthorized");
    assert_error(&s.handle(clear().with_header("Authorization", "Basic s3cret")), 401, "unauthorized");
    assert_eq!(post(&s, VALIDATE, &json!({"dag": confounded()})).status, 200);
    let r = s.handle(clear().with_header("Authorization", "Bearer s3cret"));
    assert_eq!(r.status, 200);
    assert_eq!(json_of(&r), json!({"cleared": 1}));
    assert_eq!(post(&s, VALIDATE, &json!({"dag": confounded()})).header("x-cache"), Some("miss"));

    let disabled = service();
    let e = assert_error(&disabled.handle(clear().with_header("Authorization", "Bearer x")), 401, "unauthorized");
    assert!(e["message"].as_str().unwrap().contains("disabled"), "{e}");
}

#[test]
fn deadline_exceeded_is_504() {
    /// Every reading moves time on by a millisecond, so any deadline passes during compute.
    struct Ticking(AtomicU64);
    impl Clock for Ticking {
        fn now_nanos(&self) -> u64 {
            self.0.fetch_add(1_000_000, Ordering::Relaxed)
        }
    }
    let config = Config { deadline_ms: 3, ..Config::default() };
    let s = Service::new(config, Arc::new(Ticking(AtomicU64::new(0))));
    let r = post(&s, VALIDATE, &big_validate_request(300, 20));
    assert_error(&r, 504, "deadline_exceeded");
    assert_eq!(s.cache_snapshot().entries, 0, "errors are never cached");
}

// ---------------------------------------------------------------- contract

#[test]
fn answers_follow_the_design() {
    let s = service();
    let v = json_of(&post(&s, VALIDATE, &json!({"dag": frontdoor_dag(), "treatment": "X", "outcome": "Y"})));
    assert_eq!(v["identification"]["strategy"], "frontdoor");
    assert_eq!(v["identification"]["frontdoor_sets"], json!([["M"]]));
    let v = json_of(&post(&s, DSEP, &json!({"dag": confounded(), "x": "Z", "y": "Y", "given": ["X"]})));
    assert_eq!(v, json!({"separated": false}));
    let v = json_of(&post(
        &s,
        BACKDOOR,
        &json!({"dag": confounded(), "treatment": "X", "outcome": "Y", "adjustment": ["Z"]}),
    ));
    assert_eq!(v["valid"], true);
    let v = json_of(&post(&s, BACKDOOR, &json!({"dag": confounded(), "treatment": "X", "outcome": "Y"})));
    assert_eq!(v["valid"], false);
    assert!(v["reason"].as_str().unwrap().contains("back-door path"));
    let v = json_of(&post(
        &s,
        FRONTDOOR,
        &json!({"dag": frontdoor_dag(), "treatment": "X", "outcome": "Y", "mediators": "M"}),
    ));
    assert_eq!(v["valid"], true);
}

#[test]
fn successful_responses_carry_the_caching_headers() {
    let s = service();
    let r = post(&s, VALIDATE, &json!({"dag": confounded(), "treatment": "X", "outcome": "Y"}));
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let etag = r.header("etag").unwrap();
    assert_eq!(etag.len(), 34);
    assert!(etag.starts_with('"') && etag.ends_with('"'));
    assert!(etag[1..33].chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(r.header("cache-control"), Some("public, max-age=300, s-maxage=86400, stale-while-revalidate=60"));
    let timing = r.header("server-timing").unwrap();
    for stage in ["decode;dur=", "compute;dur=", "encode;dur=", "cache;dur="] {
        assert!(timing.contains(stage), "{timing}");
    }
    assert_eq!(r.header("x-cache"), Some("miss"));
}

#[test]
fn per_route_cache_control_is_configurable() {
    let s = service_with(|c| {
        c.route_cache_control
            .insert(DSEP.into(), isl_service::CacheControl { max_age: 1, s_maxage: 2, stale_while_revalidate: 3 });
    });
    let r = post(&s, DSEP, &json!({"dag": confounded(), "x": "Z", "y": "Y"}));
    assert_eq!(r.header("cache-control"), Some("public, max-age=1, s-maxage=2, stale-while-revalidate=3"));
}

#[test]
fn get_and_post_are_equivalent() {
    let s = service();
    let body = json!({"dag": confounded(), "treatment": "X", "outcome": "Y"});
    let p = post(&s, VALIDATE, &body);
    let g = get(&s, VALIDATE, &body);
    assert_eq!((p.status, g.status), (200, 200));
    assert_eq!(p.header("etag"), g.header("etag"));
    assert_eq!(p.body, g.body);
    assert_eq!(g.header("x-cache"), Some("hit"));
    // Padded base64url too.
    use base64::Engine as _;
    let padded = base64::engine::general_purpose::URL_SAFE.encode(serde_json::to_vec(&body).unwrap());
    let r = s.handle(Request::new(Method::Get, VALIDATE).with_query(format!("q={padded}")));
    assert_eq!(r.header("etag"), p.header("etag"));
    // HEAD: same headers, no body.
    let q = encode_query(&serde_json::to_vec(&body).unwrap());
    let h = s.handle(Request::new(Method::Head, VALIDATE).with_query(format!("q={q}")));
    assert_eq!(h.status, 200);
    assert_eq!(h.header("etag"), p.header("etag"));
    assert!(h.body.is_empty());
}

#[test]
fn if_none_match_answers_304_without_computing() {
    let s = service();
    let body = json!({"dag": confounded(), "treatment": "X", "outcome": "Y"});
    let etag = post(&s, VALIDATE, &body).header("etag").unwrap().to_string();
    let fresh = service(); // an empty cache: the tag comes from the request alone
    for inm in [etag.clone(), format!("W/{etag}"), format!("\"nope\", {etag}"), "*".to_string()] {
        let req = Request::post_json(VALIDATE, serde_json::to_vec(&body).unwrap()).with_header("If-None-Match", inm);
        let r = fresh.handle(req);
        assert_eq!(r.status, 304);
        assert!(r.body.is_empty());
        assert_eq!(r.header("etag"), Some(etag.as_str()));
    }
    assert_eq!(fresh.cache_snapshot().misses, 0);
    let req =
        Request::post_json(VALIDATE, serde_json::to_vec(&body).unwrap()).with_header("If-None-Match", "\"other\"");
    assert_eq!(fresh.handle(req).status, 200);
}

#[test]
fn canonicalisation_makes_order_irrelevant() {
    let s = service();
    let a = json!({"dag": {"nodes": ["A","B","C","D"], "edges": [["A","B"],["B","D"],["A","C"],["C","D"]], "latent": []},
                   "treatment": "A", "outcome": "D"});
    let b = json!({"outcome": ["D"], "treatment": ["A", "A"],
                   "dag": {"latent": [], "edges": [["C","D"],["A","C"],["B","D"],["A","B"]], "nodes": ["D","C","B","A"]}});
    let c = json!({"treatment": "A", "outcome": "D", "max_sets": 100,
                   "dag": {"edges": [["C","D"],["A","B"],["B","D"],["A","C"]]}});
    let ra = post(&s, VALIDATE, &a);
    let rb = post(&s, VALIDATE, &b);
    let rc = get(&s, VALIDATE, &c);
    assert_eq!(ra.status, 200);
    assert_eq!(ra.header("etag"), rb.header("etag"));
    assert_eq!(ra.header("etag"), rc.header("etag"));
    assert_eq!(ra.body, rb.body);
    assert_eq!(ra.body, rc.body);
    assert_eq!((rb.header("x-cache"), rc.header("x-cache")), (Some("hit"), Some("hit")));
    // A different question has a different tag; so does the same body on another route.
    let other = post(&s, VALIDATE, &json!({"dag": a["dag"], "treatment": "B", "outcome": "D"}));
    assert_ne!(other.header("etag"), ra.header("etag"));
    let d1 = post(&s, BACKDOOR, &json!({"dag": a["dag"], "treatment": "A", "outcome": "D"}));
    let d2 = post(&s, FRONTDOOR, &json!({"dag": a["dag"], "treatment": "A", "outcome": "D", "mediators": []}));
    assert_ne!(d1.header("etag"), d2.header("etag"));
}

#[test]
fn cache_hit_miss_and_errors_never_cached() {
    let s = service();
    let body = json!({"dag": confounded(), "x": "Z", "y": "Y"});
    assert_eq!(post(&s, DSEP, &body).header("x-cache"), Some("miss"));
    assert_eq!(post(&s, DSEP, &body).header("x-cache"), Some("hit"));
    let bad = json!({"dag": confounded(), "x": "Q", "y": "Y"});
    for _ in 0..2 {
        let r = post(&s, DSEP, &bad);
        assert_eq!(r.status, 422);
        assert_eq!(r.header("x-cache"), None);
        assert_eq!(r.header("etag"), None);
        assert_eq!(r.header("cache-control"), Some("no-store"));
    }
    let snap = s.cache_snapshot();
    assert_eq!((snap.hits, snap.entries), (1, 1));
}

#[test]
fn repeated_bytes_skip_decoding_but_answer_the_same() {
    let s = service();
    let body = json!({"dag": confounded(), "treatment": "X", "outcome": "Y"});
    let first = post(&s, VALIDATE, &body);
    let again = post(&s, VALIDATE, &body);
    let via_get = get(&s, VALIDATE, &body);
    assert_eq!((again.header("x-cache"), via_get.header("x-cache")), (Some("hit"), Some("hit")));
    for r in [&again, &via_get] {
        assert_eq!(r.body, first.body);
        assert_eq!(r.header("etag"), first.header("etag"));
        assert_eq!(r.header("cache-control"), first.header("cache-control"));
        assert!(r.header("server-timing").unwrap().contains("compute;dur=0.000"));
    }
    // A known request that is no longer cached is decoded and computed again.
    let s = service_with(|c| c.admin_token = Some("t".into()));
    assert_eq!(post(&s, VALIDATE, &body).header("x-cache"), Some("miss"));
    let clear = Request::new(Method::Post, "/admin/cache/clear").with_header("authorization", "Bearer t");
    assert_eq!(s.handle(clear).status, 200);
    assert_eq!(post(&s, VALIDATE, &body).header("x-cache"), Some("miss"));
    // 304 from the memo as well.
    let etag = first.header("etag").unwrap().to_string();
    let req = Request::post_json(VALIDATE, serde_json::to_vec(&body).unwrap()).with_header("if-none-match", etag);
    assert_eq!(s.handle(req).status, 304);
}

#[test]
fn ttl_expiry_with_a_fake_clock() {
    let clock = Arc::new(ManualClock::new(1_000));
    let config = Config { cache: CacheConfig { ttl_secs: 60, ..CacheConfig::default() }, ..Config::default() };
    let s = Service::new(config, clock.clone());
    let body = json!({"dag": confounded(), "treatment": "X", "outcome": "Y"});
    assert_eq!(post(&s, VALIDATE, &body).header("x-cache"), Some("miss"));
    clock.advance_secs(59);
    assert_eq!(post(&s, VALIDATE, &body).header("x-cache"), Some("hit"));
    clock.advance_secs(1);
    assert_eq!(post(&s, VALIDATE, &body).header("x-cache"), Some("miss"));
    assert_eq!(post(&s, VALIDATE, &body).header("x-cache"), Some("hit"));
    let h = json_of(&s.handle(Request::new(Method::Get, "/health")));
    assert_eq!(h["uptime_seconds"], 60.0);
}

#[test]
fn eviction_when_over_capacity_in_bytes() {
    let s = service_with(|c| {
        c.cache =
            CacheConfig { capacity_bytes: 4096, ttl_secs: 0, shards: 1, memo_entries: 64, ..CacheConfig::default() }
    });
    for i in 0..40 {
        let r = post(
            &s,
            DSEP,
            &json!({"dag": {"edges": [[format!("A{i}"), "B"], ["B", "C"]]}, "x": format!("A{i}"), "y": "C"}),
        );
        assert_eq!(r.status, 200);
    }
    let snap = s.cache_snapshot();
    assert!(snap.evictions > 0, "{snap:?}");
    assert!(snap.bytes <= 4096, "{snap:?}");
    assert!(snap.entries < 40, "{snap:?}");
    let text = s.metrics_text();
    assert!(text.contains(&format!("isl_cache_evictions_total {}", snap.evictions)), "{text}");
}

fn big_validate_request(nodes: usize, max_sets: usize) -> Value {
    let dag = random_dag(&RandomDagParams { nodes, avg_parents: 3.0, window: 40, latent_share: 0.1, seed: 1 });
    json!({"dag": dag, "treatment": format!("V{}", nodes / 2), "outcome": format!("V{}", nodes - 1), "max_sets": max_sets})
}

/// A real clock where every reading costs a little time: the deadline poll inside the engine
/// makes a big computation slow whatever the engine's speed, so that concurrent requests surely
/// arrive while it runs.
struct SlowClock(SystemClock);

impl Clock for SlowClock {
    fn now_nanos(&self) -> u64 {
        std::thread::sleep(std::time::Duration::from_micros(300));
        self.0.now_nanos()
    }
}

#[test]
fn concurrent_identical_misses_coalesce() {
    // One thread computes a slow request; the others, started together, find the placeholder
    // and wait for its answer (or, if late, hit).
    let config = Config { deadline_ms: 600_000, ..Config::default() };
    let s = Arc::new(Service::new(config, Arc::new(SlowClock(SystemClock::new()))));
    let body = Arc::new(serde_json::to_vec(&big_validate_request(3000, 150)).unwrap());
    let threads = 4;
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (s, body, barrier) = (s.clone(), body.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                let r = s.handle(Request::post_json(VALIDATE, body.as_ref().clone()));
                (
                    r.status,
                    r.header("x-cache").map(str::to_string),
                    r.body.clone(),
                    r.header("etag").map(str::to_string),
                )
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let count = |what: &str| results.iter().filter(|r| r.1.as_deref() == Some(what)).count();
    assert!(results.iter().all(|r| r.0 == 200));
    assert_eq!(count("miss"), 1, "{:?}", results.iter().map(|r| &r.1).collect::<Vec<_>>());
    assert_eq!(count("coalesced") + count("hit"), threads - 1);
    assert!(count("coalesced") >= 1, "{:?}", results.iter().map(|r| &r.1).collect::<Vec<_>>());
    assert!(results.windows(2).all(|w| w[0].2 == w[1].2 && w[0].3 == w[1].3));
    let snap = s.cache_snapshot();
    assert_eq!(snap.misses, 1);
    assert_eq!(snap.coalesced as usize, count("coalesced"));
}

// ---------------------------------------------------------------- operational routes

#[test]
fn metrics_text_contains_the_counters() {
    let s = service();
    post(&s, VALIDATE, &json!({"dag": confounded()}));
    post(&s, VALIDATE, &json!({"dag": confounded()}));
    post(&s, VALIDATE, &json!({"dag": 1}));
    s.handle(Request::new(Method::Get, "/nope"));
    s.reject(VALIDATE, &isl_service::ServiceError::Overloaded { retry_after_secs: 1 });
    let r = s.handle(Request::new(Method::Get, "/metrics"));
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/plain"));
    let text = String::from_utf8(r.body.to_vec()).unwrap();
    for needle in [
        "isl_requests_total{route=\"/v1/causal/validate\",status=\"200\"} 2",
        "isl_requests_total{route=\"/v1/causal/validate\",status=\"422\"} 1",
        "isl_requests_total{route=\"/v1/causal/validate\",status=\"429\"} 1",
        "isl_requests_total{route=\"unmatched\",status=\"404\"} 1",
        "# TYPE isl_request_duration_seconds histogram",
        "isl_request_duration_seconds_bucket{route=\"/v1/causal/validate\",le=\"+Inf\"} 4",
        "isl_request_duration_seconds_count{route=\"/v1/causal/validate\"} 4",
        "# TYPE isl_request_latency_seconds summary",
        "isl_request_latency_seconds{route=\"/v1/causal/validate\",quantile=\"0.5\"}",
        "isl_request_latency_seconds{route=\"/v1/causal/validate\",quantile=\"0.95\"}",
        "isl_request_latency_seconds{route=\"/v1/causal/validate\",quantile=\"0.99\"}",
        "isl_cache_hits_total 1",
        "isl_cache_misses_total 1",
        "isl_cache_coalesced_total 0",
        "isl_cache_evictions_total 0",
        "isl_cache_entries 1",
        "isl_cache_bytes ",
        "isl_cache_capacity_bytes ",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
    assert_eq!(s.request_count(VALIDATE, 429), 1);
}

#[test]
fn health_reports_ok() {
    let s = service();
    let r = s.handle(Request::new(Method::Get, "/health"));
    assert_eq!(r.status, 200);
    let v = json_of(&r);
    assert_eq!(v["status"], "ok");
    assert_eq!(v["ready"], true);
    assert_eq!(v["engine_version"], isl_causal::ENGINE_VERSION);
    assert!(v["uptime_seconds"].is_number());
}

#[test]
fn openapi_document_lists_every_route() {
    let s = service();
    let r = s.handle(Request::new(Method::Get, "/openapi.json"));
    assert_eq!(r.status, 200);
    let doc = json_of(&r);
    assert_eq!(doc, serde_json::from_str::<Value>(OPENAPI_JSON).unwrap());
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    for p in s.compute_paths() {
        assert!(paths[p]["get"].is_object() && paths[p]["post"].is_object(), "{p}");
        assert!(paths[p]["post"]["responses"]["422"].is_object(), "{p}");
    }
    assert!(paths["/health"]["get"].is_object());
    assert!(paths["/metrics"]["get"].is_object());
    assert!(paths["/openapi.json"]["get"].is_object());
    assert!(paths["/admin/cache/clear"]["post"]["responses"]["401"].is_object());
    // The text-generation routes the native host answers itself (host/src/llm).
    for p in ["/v1/chat/completions", "/v1/completions"] {
        assert!(paths[p]["post"]["responses"]["429"].is_object(), "{p}");
    }
    assert!(paths["/v1/models"]["get"].is_object());
    assert_eq!(paths.len(), s.compute_paths().len() + 4 + 3);
    assert!(doc["components"]["schemas"]["Error"].is_object());
}

/// The cache tier a host keeps for answers computed elsewhere (the edge host): what it serves
/// is what the computing service itself serves on a repeat, 304 included; only exact repeats of
/// remembered compute answers are served, and nothing else is kept.
#[test]
fn a_cache_tier_serves_remembered_answers_like_the_service_itself() {
    let clock = Arc::new(ManualClock::new(0));
    let computing = service();
    let tier = Service::new(Config::default(), clock.clone());
    let body = json!({"dag": {"edges": [["Z","X"],["Z","Y"],["X","Y"]]}, "treatment": "X", "outcome": "Y"});
    let req = Request::post_json(VALIDATE, serde_json::to_vec(&body).unwrap());
    assert!(tier.answer_from_cache(&req).is_none(), "nothing remembered yet");

    let first = computing.handle(req.clone());
    tier.remember(&req, &first);
    let repeat = computing.handle(req.clone());
    let served = tier.answer_from_cache(&req).expect("remembered");
    assert_eq!((served.status, &served.body), (repeat.status, &repeat.body));
    for header in ["etag", "cache-control", "content-type", "x-cache"] {
        assert_eq!(served.header(header), repeat.header(header), "{header}");
    }
    assert_eq!(served.header("x-cache"), Some("hit"));
    assert_eq!(tier.request_count(VALIDATE, 200), 1, "a served answer is counted");

    // Conditional: 304 with the same tag and Cache-Control as the computing service.
    let etag = first.header("etag").unwrap().to_string();
    let conditional = req.clone().with_header("if-none-match", etag.clone());
    let (a, b) = (computing.handle(conditional.clone()), tier.answer_from_cache(&conditional).unwrap());
    assert_eq!((a.status, b.status), (304, 304));
    assert_eq!((a.header("etag"), a.header("cache-control")), (b.header("etag"), b.header("cache-control")));

    // HEAD gets the headers without the body; other bytes for the same question are not served
    // (the tier keys on exact bytes and leaves canonicalising to whoever computes).
    let q = format!("q={}", encode_query(&serde_json::to_vec(&body).unwrap()));
    let head = Request::new(Method::Head, VALIDATE).with_query(q);
    let head_resp = tier.answer_from_cache(&head).unwrap();
    assert!(head_resp.body.is_empty() && head_resp.header("etag").is_some());
    let spaced = Request::post_json(VALIDATE, format!(" {}", serde_json::to_string(&body).unwrap()));
    assert!(tier.answer_from_cache(&spaced).is_none());

    // Past the TTL the remembered answer is gone.
    clock.advance_secs(Config::default().cache.ttl_secs + 1);
    assert!(tier.answer_from_cache(&req).is_none());

    // Errors, non-compute routes and answers without the service's ETag are never kept.
    let bad = Request::post_json(VALIDATE, r#"{"dag": 1}"#);
    tier.remember(&bad, &computing.handle(bad.clone()));
    assert!(tier.answer_from_cache(&bad).is_none());
    let health = Request::new(Method::Get, "/health");
    tier.remember(&health, &computing.handle(health.clone()));
    assert!(tier.answer_from_cache(&health).is_none());
    let forged = Response::json(200, "{}").with_header("etag", "\"not-ours\"");
    let other = Request::post_json(VALIDATE, r#"{"dag": {"edges": [["A","B"]]}}"#);
    tier.remember(&other, &forged);
    assert!(tier.answer_from_cache(&other).is_none());
}

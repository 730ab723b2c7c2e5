//! The HTTP contract of the Monte Carlo routes (`/v1/counterfactual`, `/v1/sensitivity`),
//! exercised through `Service::handle`: GET/POST equivalence, determinism and derived seeds,
//! canonicalisation, ETags and 304, the cache, every bad-input code (422, never 500), the
//! deadline (504, and the service keeps serving), and closed-form answers of a linear-Gaussian
//! model.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use isl_service::{Clock, Config, Method, Request, Response, Service, SystemClock, encode_query};
use serde_json::{Value, json};

mod common;
use common::{get, json_of, ok, post, service, service_with};

const CF: &str = "/v1/counterfactual";
const SENS: &str = "/v1/sensitivity";

/// Asserts an error response: status, JSON error shape, code; returns the error object.
fn assert_error(r: &Response, status: u16, code: &str) -> Value {
    assert_eq!(r.status, status, "body: {}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.header("etag"), None);
    let v = json_of(r);
    let e = v["error"].clone();
    assert_eq!(e["code"], code, "{v}");
    assert!(e["message"].is_string(), "{v}");
    assert!(e["details"].is_object(), "{v}");
    assert_eq!(v.as_object().map(|o| o.len()), Some(1), "{v}");
    assert_eq!(e.as_object().map(|o| o.len()), Some(3), "{v}");
    e
}

/// The model of DESIGN.md: uncertain price, demand falling with price by an uncertain slope,
/// revenue their product.
fn pricing() -> Value {
    json!({"nodes": [
        {"name": "Price",   "noise": {"dist": "normal", "mean": 10, "std": 1}},
        {"name": "Demand",  "intercept": 100,
                            "parents": {"Price": {"dist": "normal", "mean": -2.0, "std": 0.3}},
                            "noise": {"dist": "normal", "mean": 0, "std": 5}},
        {"name": "Revenue", "expr": "Price * Demand"}
    ]})
}

/// Y = 3 + 2·X + N(0, 1), X ~ N(1, 2²).
fn linear_gaussian() -> Value {
    json!({"nodes": [
        {"name": "X", "noise": {"dist": "normal", "mean": 1, "std": 2}},
        {"name": "Y", "intercept": 3, "parents": {"X": 2}, "noise": {"dist": "normal", "mean": 0, "std": 1}}
    ]})
}

fn cf_request() -> Value {
    json!({"model": pricing(), "intervention": {"Price": 12}, "outcome": "Revenue", "samples": 4000})
}

fn sens_request() -> Value {
    json!({"model": pricing(), "outcome": "Revenue", "samples": 256})
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

// ---------------------------------------------------------------- GET, POST, ETag, cache

#[test]
fn get_and_post_give_the_same_body_and_etag() {
    for (path, body) in [(CF, cf_request()), (SENS, sens_request())] {
        let s = service();
        let p = post(&s, path, &body);
        let g = get(&s, path, &body);
        assert_eq!((p.status, g.status), (200, 200), "{path}: {}", String::from_utf8_lossy(&p.body));
        assert_eq!(p.header("etag"), g.header("etag"), "{path}");
        assert_eq!(p.body, g.body, "{path}");
        assert_eq!((p.header("x-cache"), g.header("x-cache")), (Some("miss"), Some("hit")), "{path}");
        assert_eq!(p.header("cache-control"), Some("public, max-age=300, s-maxage=86400, stale-while-revalidate=60"));
        let timing = p.header("server-timing").unwrap();
        for stage in ["decode;dur=", "compute;dur=", "encode;dur=", "cache;dur="] {
            assert!(timing.contains(stage), "{timing}");
        }
        // A fresh service computes the same bytes through GET first.
        let g2 = get(&service(), path, &body);
        assert_eq!(g2.header("x-cache"), Some("miss"));
        assert_eq!((g2.body.clone(), g2.header("etag")), (p.body.clone(), p.header("etag")), "{path}");
        // HEAD: the headers without the body.
        let q = encode_query(&serde_json::to_vec(&body).unwrap());
        let h = s.handle(Request::new(Method::Head, path).with_query(format!("q={q}")));
        assert_eq!(h.status, 200);
        assert_eq!(h.header("etag"), p.header("etag"));
        assert!(h.body.is_empty());
    }
}

#[test]
fn identical_requests_give_identical_bytes_with_the_derived_seed() {
    for (path, body) in [(CF, cf_request()), (SENS, sens_request())] {
        // Two services that share nothing: the answer comes from the request alone.
        let a = post(&service(), path, &body);
        let b = post(&service(), path, &body);
        let va = ok(&a);
        assert_eq!(a.body, b.body, "{path}");
        assert_eq!(a.header("etag"), b.header("etag"), "{path}");
        // Without `seed` the answer reports the seed derived from the canonical request; asking
        // with that seed explicitly reproduces every number (but is another request: another tag).
        assert!(body.get("seed").is_none());
        let seed = va["seed"].as_u64().unwrap_or_else(|| panic!("{path}: seed {}", va["seed"]));
        let mut explicit = body.clone();
        explicit["seed"] = json!(seed);
        let c = post(&service(), path, &explicit);
        assert_eq!(ok(&c), va, "{path}");
        assert_ne!(c.header("etag"), a.header("etag"), "{path}");
    }
}

#[test]
fn an_explicit_seed_changes_the_answer_and_is_reported() {
    for (path, body) in [(CF, cf_request()), (SENS, sens_request())] {
        let s = service();
        let derived = ok(&post(&s, path, &body));
        let mut answers = Vec::new();
        for seed in [1u64, 2, u64::MAX] {
            let mut req = body.clone();
            req["seed"] = json!(seed);
            let r = post(&s, path, &req);
            let v = ok(&r);
            assert_eq!(v["seed"].as_u64(), Some(seed), "{path}");
            assert_ne!(v["mean"], derived["mean"], "{path} seed {seed}");
            answers.push((v["mean"].clone(), r.header("etag").map(str::to_string)));
        }
        for (i, x) in answers.iter().enumerate() {
            for y in &answers[i + 1..] {
                assert_ne!(x.0, y.0, "{path}: two seeds gave the same mean");
                assert_ne!(x.1, y.1, "{path}: two seeds gave the same tag");
            }
        }
        // The answers stay close to each other: another seed is another sample, not another model.
        let (m1, m2) = (f(&answers[0].0), f(&answers[1].0));
        assert!((m1 - m2).abs() < 0.05 * m1.abs(), "{path}: {m1} vs {m2}");
    }
}

#[test]
fn key_order_node_order_and_defaults_do_not_change_the_etag() {
    let s = service();
    let a = json!({"model": pricing(), "intervention": {"Price": 12}, "outcome": "Revenue"});
    // Keys in another order at every level, nodes in another order, integers as floats,
    // defaults spelt out, quantiles unsorted with a duplicate, empty evidence.
    let b: Value = serde_json::from_str(
        r#"{"quantiles": [0.95, 0.5, 0.05, 0.75, 0.25, 0.5], "outcome": "Revenue", "evidence": {},
            "samples": 10000, "intervention": {"Price": 12.0},
            "model": {"nodes": [
              {"expr": "Price * Demand", "name": "Revenue"},
              {"noise": {"std": 5, "mean": 0, "dist": "normal"},
               "parents": {"Price": {"std": 0.3, "dist": "normal", "mean": -2}}, "name": "Demand", "intercept": 100.0},
              {"noise": {"std": 1.0, "dist": "normal", "mean": 10}, "name": "Price"}
            ]}}"#,
    )
    .unwrap();
    let ra = post(&s, CF, &a);
    let rb = post(&s, CF, &b);
    let rc = get(&s, CF, &b);
    ok(&ra);
    assert_eq!(ra.header("etag"), rb.header("etag"));
    assert_eq!(ra.header("etag"), rc.header("etag"));
    assert_eq!((ra.body.clone(), ra.body.clone()), (rb.body.clone(), rc.body.clone()));
    assert_eq!((rb.header("x-cache"), rc.header("x-cache")), (Some("hit"), Some("hit")));
    assert_eq!(s.cache_snapshot().misses, 1);

    // The same for sensitivity.
    let mut reversed = pricing();
    reversed["nodes"].as_array_mut().unwrap().reverse();
    let x = post(&s, SENS, &json!({"model": pricing(), "outcome": "Revenue"}));
    let y = post(&s, SENS, &json!({"samples": 4096, "outcome": "Revenue", "intervention": {}, "model": reversed}));
    ok(&x);
    assert_eq!((x.header("etag"), &x.body), (y.header("etag"), &y.body));
    assert_eq!(y.header("x-cache"), Some("hit"));

    // A different question, or the same body on the other route, has another tag.
    let other = post(&s, CF, &json!({"model": pricing(), "intervention": {"Price": 13}, "outcome": "Revenue"}));
    assert_ne!(other.header("etag"), ra.header("etag"));
    let common = json!({"model": pricing(), "outcome": "Revenue", "samples": 64, "seed": 1});
    assert_ne!(post(&s, CF, &common).header("etag"), post(&s, SENS, &common).header("etag"));
}

#[test]
fn if_none_match_answers_304_without_computing() {
    for (path, body) in [(CF, cf_request()), (SENS, sens_request())] {
        let etag = post(&service(), path, &body).header("etag").unwrap().to_string();
        let fresh = service();
        for inm in [etag.clone(), format!("W/{etag}"), format!("\"nope\", {etag}"), "*".to_string()] {
            let req = Request::post_json(path, serde_json::to_vec(&body).unwrap()).with_header("If-None-Match", inm);
            let r = fresh.handle(req);
            assert_eq!(r.status, 304, "{path}");
            assert!(r.body.is_empty());
            assert_eq!(r.header("etag"), Some(etag.as_str()));
        }
        // The GET form too.
        let q = encode_query(&serde_json::to_vec(&body).unwrap());
        let r = fresh
            .handle(Request::new(Method::Get, path).with_query(format!("q={q}")).with_header("If-None-Match", &etag));
        assert_eq!(r.status, 304, "{path}");
        assert_eq!(fresh.cache_snapshot().misses, 0, "{path}: nothing was computed");
        let req =
            Request::post_json(path, serde_json::to_vec(&body).unwrap()).with_header("If-None-Match", "\"other\"");
        assert_eq!(fresh.handle(req).status, 200);
    }
}

#[test]
fn repeats_are_cache_hits_and_errors_are_never_cached() {
    let s = service();
    for (path, body) in [(CF, cf_request()), (SENS, sens_request())] {
        let first = post(&s, path, &body);
        assert_eq!(first.header("x-cache"), Some("miss"));
        let again = post(&s, path, &body);
        assert_eq!(again.header("x-cache"), Some("hit"));
        assert_eq!((&again.body, again.header("etag")), (&first.body, first.header("etag")));
        assert!(again.header("server-timing").unwrap().contains("compute;dur=0.000"));
    }
    let bad = json!({"model": pricing(), "outcome": "Profit"});
    for _ in 0..2 {
        let r = post(&s, CF, &bad);
        assert_error(&r, 422, "unknown_node");
        assert_eq!(r.header("x-cache"), None);
    }
    let snap = s.cache_snapshot();
    assert_eq!((snap.hits, snap.entries), (2, 2));
    assert_eq!(s.request_count(CF, 422), 2);
    assert_eq!(s.request_count(SENS, 200), 2);
    let text = s.metrics_text();
    assert!(text.contains("isl_requests_total{route=\"/v1/counterfactual\",status=\"200\"} 2"), "{text}");
    assert!(text.contains("isl_requests_total{route=\"/v1/sensitivity\",status=\"200\"} 2"), "{text}");
}

#[test]
fn wrong_method_content_type_and_size_follow_the_causal_routes() {
    let s = service_with(|c| c.max_body_bytes = 256);
    for path in [CF, SENS] {
        let r = s.handle(Request::new(Method::Put, path));
        assert_error(&r, 405, "method_not_allowed");
        assert_eq!(r.header("allow"), Some("GET, HEAD, POST"));
        let body = serde_json::to_vec(&json!({"model": {"nodes": []}, "outcome": "A"})).unwrap();
        let r = s.handle(Request::new(Method::Post, path).with_header("content-type", "text/plain").with_body(body));
        assert_error(&r, 415, "unsupported_media_type");
        assert_error(&post(&s, path, &json!({"model": pricing(), "outcome": "Revenue"})), 413, "payload_too_large");
        assert_error(&get(&s, path, &json!({"model": pricing(), "outcome": "Revenue"})), 413, "payload_too_large");
        assert_error(&s.handle(Request::post_json(path, "{\"model\": ")), 400, "malformed_json");
        assert_error(&s.handle(Request::new(Method::Get, path).with_query("q=***")), 400, "invalid_base64");
        assert_error(&s.handle(Request::new(Method::Get, path)), 400, "missing_query");
    }
    assert_error(&s.handle(Request::new(Method::Get, "/v1/counterfactual/")), 404, "not_found");
}

// ---------------------------------------------------------------- bad input: 422, never 500

/// Posts `body` to `path` and asserts a 422 with `code`; returns the error object.
fn rejects(s: &Service, path: &str, body: Value, code: &str) -> Value {
    let e = assert_error(&post(s, path, &body), 422, code);
    // The GET form gives the same error.
    assert_eq!(assert_error(&get(s, path, &body), 422, code), e, "{path}");
    e
}

/// Both routes, with `model`, `outcome` and extra fields.
fn both(model: Value, outcome: &str) -> [(&'static str, Value); 2] {
    [
        (CF, json!({"model": model, "outcome": outcome, "samples": 100})),
        (SENS, json!({"model": model, "outcome": outcome, "samples": 16})),
    ]
}

#[test]
fn unknown_fields_and_schema_errors_are_422_invalid_request() {
    let s = service();
    let node = |extra: Value| {
        let mut n = json!({"name": "A", "noise": {"dist": "normal", "mean": 0, "std": 1}});
        for (k, v) in extra.as_object().unwrap() {
            n[k] = v.clone();
        }
        json!({"nodes": [n]})
    };
    let models = [
        json!({"nodes": [], "edges": []}),
        node(json!({"colour": "red"})),
        node(json!({"noise": {"dist": "normal", "mean": 0, "std": 1, "skew": 2}})),
        node(json!({"noise": {"dist": "cauchy", "loc": 0, "scale": 1}})),
        node(json!({"noise": {"mean": 0, "std": 1}})),
        node(json!({"noise": {"dist": "normal", "mean": 0}})),
        node(json!({"noise": 1})),
        node(json!({"intercept": "one"})),
        node(json!({"intercept": {"dist": "uniform", "low": 0, "high": 1, "mode": 0.5}})),
        node(json!({"parents": ["B"]})),
        node(json!({"expr": 5})),
        json!({"nodes": {"name": "A"}}),
        json!([]),
    ];
    for model in models {
        for (path, body) in both(model.clone(), "A") {
            rejects(&s, path, body, "invalid_request");
        }
    }
    let model = node(json!({}));
    for (path, body) in [
        (CF, json!({"model": model, "outcome": "A", "extra": true})),
        (CF, json!({"model": model, "outcome": "A", "threshold": 1, "treshold": 1})),
        (CF, json!({"model": model, "outcome": "A", "samples": -1})),
        (CF, json!({"model": model, "outcome": "A", "samples": 1.5})),
        (CF, json!({"model": model, "outcome": "A", "seed": "7"})),
        (CF, json!({"model": model, "outcome": "A", "intervention": {"A": "1"}})),
        (CF, json!({"model": model, "outcome": ["A"]})),
        (CF, json!({"model": model})),
        (CF, json!({"outcome": "A"})),
        (SENS, json!({"model": model, "outcome": "A", "evidence": {"A": 1}})),
        (SENS, json!({"model": model, "outcome": "A", "quantiles": [0.5]})),
        (SENS, json!({"model": model, "outcome": "A", "samples": -3})),
        (SENS, json!([1, 2])),
    ] {
        let e = rejects(&s, path, body, "invalid_request");
        assert!(e["details"]["line"].is_number() && e["details"]["column"].is_number(), "{e}");
    }
}

#[test]
fn a_cycle_is_422_with_the_cycle_in_details() {
    let s = service();
    let cyclic = json!({"nodes": [
        {"name": "C", "parents": {"B": 1}, "noise": {"dist": "normal", "mean": 0, "std": 1}},
        {"name": "B", "expr": "A + 1"},
        {"name": "A", "parents": {"C": 0.5}},
        {"name": "D", "parents": {"C": 1}}
    ]});
    for (path, body) in both(cyclic, "D") {
        let e = rejects(&s, path, body, "cyclic_graph");
        assert_eq!(e["details"]["cycle"], json!(["A", "B", "C", "A"]), "{path} {e}");
        assert!(e["message"].as_str().unwrap().contains("A -> B -> C -> A"), "{e}");
    }
    let self_loop = json!({"nodes": [{"name": "A", "expr": "A * 0.5 + 1"}]});
    for (path, body) in both(self_loop, "A") {
        assert_eq!(rejects(&s, path, body, "cyclic_graph")["details"]["cycle"], json!(["A", "A"]));
    }
}

#[test]
fn unknown_names_are_422_naming_them_and_the_field() {
    let s = service();
    let unknown_parent = json!({"nodes": [{"name": "Y", "parents": {"Q": 1, "P": 2}}]});
    let unknown_in_expr = json!({"nodes": [{"name": "Y", "expr": "2 * Q + exp(R)"}]});
    let mut cases = Vec::new();
    for (model, names) in [(unknown_parent, json!(["P", "Q"])), (unknown_in_expr, json!(["Q", "R"]))] {
        for (path, body) in both(model, "Y") {
            cases.push((path, body, "parents", names.clone()));
        }
    }
    for (path, body) in both(pricing(), "Profit") {
        cases.push((path, body, "outcome", json!(["Profit"])));
    }
    let with = |extra: Value| {
        let mut b = json!({"model": pricing(), "outcome": "Revenue", "samples": 100});
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    cases.push((CF, with(json!({"intervention": {"Prize": 12, "Price": 12}})), "intervention", json!(["Prize"])));
    cases.push((SENS, with(json!({"intervention": {"Cost": 1, "Tax": 2}})), "intervention", json!(["Cost", "Tax"])));
    cases.push((CF, with(json!({"evidence": {"Sales": 80}})), "evidence", json!(["Sales"])));
    for (path, body, field, names) in cases {
        let e = rejects(&s, path, body, "unknown_node");
        assert_eq!(e["details"]["field"], field, "{path} {e}");
        assert_eq!(e["details"]["nodes"], names, "{path} {e}");
        for n in names.as_array().unwrap() {
            assert!(e["message"].as_str().unwrap().contains(&format!("'{}'", n.as_str().unwrap())), "{e}");
        }
    }
}

#[test]
fn out_of_domain_parameters_are_422_invalid_parameter() {
    let s = service();
    let normal = |mean: f64, std: f64| json!({"dist": "normal", "mean": mean, "std": std});
    let cases = [
        (json!({"name": "A", "noise": normal(0.0, -1.0)}), "A.noise", "std"),
        (json!({"name": "A", "intercept": normal(1.0, -0.5)}), "A.intercept", "std"),
        (json!({"name": "A", "parents": {"B": normal(1.0, -1e-12)}}), "A<-B", "std"),
        (json!({"name": "A", "noise": {"dist": "uniform", "low": 2, "high": 1}}), "A.noise", "low"),
        (json!({"name": "A", "parents": {"B": {"dist": "triangular", "low": 1, "mode": 1, "high": 0}}}), "A<-B", "low"),
        (json!({"name": "A", "noise": {"dist": "triangular", "low": 0, "mode": 2, "high": 1}}), "A.noise", "mode"),
        (json!({"name": "A", "noise": {"dist": "triangular", "low": 1, "mode": 2, "high": 1}}), "A.noise", "mode"),
        (json!({"name": "A", "noise": {"dist": "lognormal", "mu": 0, "sigma": -0.1}}), "A.noise", "sigma"),
        (json!({"name": "A", "noise": {"dist": "lognormal", "mu": 710, "sigma": 0}}), "A.noise", "overflows"),
        (json!({"name": "A", "noise": {"dist": "uniform", "low": -1e308, "high": 1e308}}), "A.noise", "overflows"),
    ];
    for (node, at, word) in cases {
        let model = json!({"nodes": [node, {"name": "B", "noise": normal(0.0, 1.0)}]});
        for (path, body) in both(model, "A") {
            let e = rejects(&s, path, body, "invalid_parameter");
            assert_eq!(e["details"]["at"], at, "{path} {e}");
            assert!(e["message"].as_str().unwrap().contains(word), "{path} {e}");
        }
    }
}

#[test]
fn point_mass_beliefs_are_their_numbers_with_the_same_bytes_and_etag() {
    // std 0, sigma 0, low == high, low == mode == high: the constant (numpy's zero scale), on
    // both routes, sharing the number's cache entry.
    let s = service();
    let with = |coef: Value, noise: Value| {
        json!({"nodes": [
            {"name": "Price", "noise": {"dist": "normal", "mean": 10, "std": 1}},
            {"name": "Demand", "intercept": {"dist": "uniform", "low": 100, "high": 100},
             "parents": {"Price": coef}, "noise": noise},
            {"name": "Revenue", "expr": "Price * Demand"}]})
    };
    let number = with(json!(-2.0), json!({"dist": "normal", "mean": 0, "std": 5}));
    for coef in [
        json!({"dist": "normal", "mean": -2.0, "std": 0}),
        json!({"dist": "uniform", "low": -2.0, "high": -2.0}),
        json!({"dist": "triangular", "low": -2, "mode": -2, "high": -2}),
    ] {
        let mass = with(coef.clone(), json!({"dist": "normal", "mean": 0, "std": 5}));
        for (path, extra) in [(CF, json!({"intervention": {"Price": 12}, "threshold": 1000})), (SENS, json!({}))] {
            let mut a = json!({"model": mass, "outcome": "Revenue", "samples": 512});
            let mut b = json!({"model": number, "outcome": "Revenue", "samples": 512});
            for (k, v) in extra.as_object().unwrap() {
                a[k] = v.clone();
                b[k] = v.clone();
            }
            let (ra, rb) = (post(&s, path, &a), post(&s, path, &b));
            ok(&ra);
            assert_eq!(ra.body, rb.body, "{coef} on {path}");
            assert_eq!(ra.header("etag"), rb.header("etag"), "{coef} on {path}");
            assert_eq!(rb.header("x-cache"), Some("hit"), "{coef} on {path}: the number's entry is the point mass's");
            if path == SENS {
                let drivers = json_of(&ra)["drivers"].as_array().unwrap().clone();
                assert!(drivers.iter().all(|d| d["input"] != "Demand<-Price" && d["input"] != "Demand.intercept"));
            }
        }
    }
    // A noise that is a point mass takes no evidence.
    let fixed = with(json!(-2.0), json!({"dist": "normal", "mean": 1, "std": 0}));
    let r = post(&s, CF, &json!({"model": fixed, "outcome": "Revenue", "evidence": {"Demand": 70}}));
    let e = assert_error(&r, 422, "abduction_not_exact");
    assert!(e["message"].as_str().unwrap().contains("point mass"), "{e}");
}

#[test]
fn expression_errors_are_422_with_the_position() {
    let s = service();
    let model = |expr: &str| json!({"nodes": [{"name": "A", "noise": {"dist": "normal", "mean": 0, "std": 1}}, {"name": "B", "expr": expr}]});
    for (expr, position, found) in [
        ("A + * 2", 4, "'*'"),
        ("(A + 1", 6, "end of input"),
        ("A 2", 2, "'2'"),
        ("2 * A $ 1", 6, "'$'"),
        ("", 0, "end of input"),
    ] {
        for (path, body) in both(model(expr), "B") {
            let e = rejects(&s, path, body, "expression_syntax");
            assert_eq!(e["details"]["node"], "B", "{expr:?} {e}");
            assert_eq!(e["details"]["position"], position, "{expr:?} {e}");
            assert!(e["details"]["found"].as_str().unwrap().contains(found), "{expr:?} {e}");
            assert!(e["details"]["expected"].is_string(), "{e}");
            assert!(e["message"].as_str().unwrap().contains(&format!("at byte {position}")), "{e}");
        }
    }
    // Unknown functions and wrong arities are syntax errors too, not 500s.
    for expr in ["foo(A)", "pow(A)", "min(A)", "exp(A, A)"] {
        for (path, body) in both(model(expr), "B") {
            rejects(&s, path, body, "expression_syntax");
        }
    }

    let s = service_with(|c| {
        c.mc.max_expr_len = 64;
        c.mc.max_expr_depth = 8;
    });
    let long = vec!["A"; 40].join(" + ");
    for (path, body) in both(model(&long), "B") {
        let e = rejects(&s, path, body, "expression_too_long");
        assert_eq!((e["details"]["length"].clone(), e["details"]["limit"].clone()), (json!(long.len()), json!(64)));
    }
    let deep = format!("{}A{}", "(".repeat(20), ")".repeat(20));
    for (path, body) in both(model(&deep), "B") {
        let e = rejects(&s, path, body, "expression_too_deep");
        assert_eq!(e["details"]["limit"], 8, "{e}");
    }
}

#[test]
fn malformed_models_are_422() {
    let s = service();
    let noise = json!({"dist": "normal", "mean": 0, "std": 1});
    let dup = json!({"nodes": [{"name": "A", "noise": noise}, {"name": "B", "expr": "A"}, {"name": "A"}]});
    for (path, body) in both(dup, "B") {
        assert_eq!(rejects(&s, path, body, "duplicate_node")["details"]["node"], "A");
    }
    let mixed = json!({"nodes": [{"name": "A", "noise": noise}, {"name": "B", "expr": "A", "parents": {"A": 1}}]});
    for (path, body) in both(mixed, "B") {
        assert_eq!(rejects(&s, path, body, "invalid_node")["details"]["node"], "B");
    }
    for name in ["", "  "] {
        let empty = json!({"nodes": [{"name": "A", "noise": noise}, {"name": "B", "expr": "A"}, {"name": name}]});
        for (path, body) in both(empty, "B") {
            let e = rejects(&s, path, body, "empty_node_name");
            assert_eq!(e["details"]["name"], name, "{e}");
        }
    }
}

#[test]
fn too_many_nodes_is_422() {
    let s = service_with(|c| c.mc.max_nodes = 3);
    let nodes: Vec<Value> = (0..4).map(|i| json!({"name": format!("N{i}"), "intercept": i})).collect();
    for (path, body) in both(json!({"nodes": nodes}), "N0") {
        let e = rejects(&s, path, body, "too_many_nodes");
        assert_eq!(e["details"], json!({"count": 4, "limit": 3}));
    }
    // At the limit it answers.
    let nodes: Vec<Value> = (0..3).map(|i| json!({"name": format!("N{i}"), "intercept": i})).collect();
    for (path, body) in both(json!({"nodes": nodes}), "N2") {
        ok(&post(&s, path, &body));
    }
}

#[test]
fn sample_limits_are_422_over_limit() {
    let s = service_with(|c| {
        c.mc.max_samples = 1000;
        c.mc.max_quantiles = 3;
    });
    let base = |extra: Value| {
        let mut b = json!({"model": linear_gaussian(), "outcome": "Y"});
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    for (path, extra, what, count, limit) in [
        (CF, json!({"samples": 1001}), "samples", 1001, 1000),
        (CF, json!({"samples": 1_000_000_000_000_u64}), "samples", 1_000_000_000_000_u64, 1000),
        (CF, json!({}), "samples", 10_000, 1000), // the default is over this service's limit
        (CF, json!({"samples": 500, "max_samples": 400}), "samples (over max_samples)", 500, 400),
        (CF, json!({"max_samples": 1001, "target_error": 0.1}), "max_samples", 1001, 1000),
        (CF, json!({"samples": 10, "quantiles": [0.1, 0.2, 0.3, 0.4]}), "quantiles", 4, 3),
        // Sensitivity: 2 inputs make 9 runs.
        (SENS, json!({"samples": 112}), "sensitivity evaluations (samples × 9 runs)", 1008, 1000),
        (SENS, json!({"samples": u64::MAX}), "sensitivity evaluations (samples × 9 runs)", u64::MAX, 1000),
    ] {
        let e = rejects(&s, path, base(extra.clone()), "over_limit");
        assert_eq!(e["details"], json!({"what": what, "count": count, "limit": limit}), "{path} {extra}");
    }
    // Just under: answers.
    ok(&post(&s, CF, &base(json!({"samples": 1000, "quantiles": [0.1, 0.2, 0.3]}))));
    ok(&post(&s, SENS, &base(json!({"samples": 111}))));
    // target_error stops at the cap and says so.
    let v = ok(&post(&s, CF, &base(json!({"target_error": 1e-9, "quantiles": [0.5]}))));
    assert_eq!((v["samples_used"].clone(), v["target_met"].clone()), (json!(1000), json!(false)));
}

#[test]
fn out_of_domain_request_fields_are_422_invalid_request() {
    let s = service();
    let base = |extra: Value| {
        let mut b = json!({"model": linear_gaussian(), "outcome": "Y"});
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    for (path, extra, field) in [
        (CF, json!({"target_error": 0}), "target_error"),
        (CF, json!({"target_error": -0.5}), "target_error"),
        (CF, json!({"target_error": 0.1, "samples": 100}), "samples"),
        (CF, json!({"samples": 0}), "samples"),
        (CF, json!({"max_samples": 0}), "max_samples"),
        (CF, json!({"samples": 10, "quantiles": [0.5, 0]}), "quantiles"),
        (CF, json!({"samples": 10, "quantiles": [1]}), "quantiles"),
        (CF, json!({"samples": 10, "quantiles": [0.5, 1.5]}), "quantiles"),
        (CF, json!({"samples": 10, "quantiles": [-0.1]}), "quantiles"),
        (SENS, json!({"samples": 0}), "samples"),
        (SENS, json!({"samples": 1}), "samples"),
    ] {
        let e = rejects(&s, path, base(extra.clone()), "invalid_request");
        assert_eq!(e["details"]["field"], field, "{path} {extra} {e}");
    }
}

#[test]
fn evidence_that_cannot_be_conditioned_on_is_422() {
    let s = service();
    // Revenue is deterministic given price and demand: no noise to explain an observation.
    let body = json!({"model": pricing(), "intervention": {"Price": 12}, "outcome": "Revenue",
                      "evidence": {"Revenue": 900}, "samples": 100});
    let e = rejects(&s, CF, body, "abduction_not_exact");
    assert_eq!(e["details"]["node"], "Revenue");
    // Evidence outside the support of the noise in every sample.
    let model = json!({"nodes": [
        {"name": "X", "noise": {"dist": "uniform", "low": 0, "high": 1}},
        {"name": "Y", "parents": {"X": 1}, "noise": {"dist": "normal", "mean": 0, "std": 1}}
    ]});
    let body = json!({"model": model, "outcome": "Y", "evidence": {"X": 5}, "samples": 100});
    assert_eq!(rejects(&s, CF, body, "abduction_not_exact")["details"]["node"], "");
}

#[test]
fn an_outcome_that_is_never_finite_is_422() {
    let s = service();
    let model = json!({"nodes": [
        {"name": "A", "noise": {"dist": "normal", "mean": 0, "std": 1}},
        {"name": "B", "expr": "log(0 - 1 - A * A)"},
        {"name": "C", "expr": "1 / (A - A)", "noise": {"dist": "uniform", "low": 0, "high": 1}}
    ]});
    for outcome in ["B", "C"] {
        for (path, body) in both(model.clone(), outcome) {
            let e = rejects(&s, path, body, "all_non_finite");
            assert_eq!(e["details"]["outcome"], outcome, "{e}");
            assert!(e["details"]["samples"].as_u64().unwrap() > 0, "{e}");
        }
    }
    // Partly non-finite is an answer that counts the bad samples.
    let partly = json!({"nodes": [
        {"name": "A", "noise": {"dist": "normal", "mean": 0, "std": 1}},
        {"name": "B", "expr": "sqrt(A)"}
    ]});
    let v = ok(&post(&s, CF, &json!({"model": partly, "outcome": "B", "samples": 2000, "seed": 3})));
    let bad = v["non_finite"].as_u64().unwrap();
    assert!((800..1200).contains(&bad), "{v}");
    assert_eq!(v["samples_used"], 2000);
}

// ---------------------------------------------------------------- deadline

/// The system clock, which can be told to stand still (so that a later request surely meets
/// even a tiny deadline).
struct PausableClock {
    inner: SystemClock,
    paused: AtomicBool,
    frozen_at: AtomicU64,
}

impl Clock for PausableClock {
    fn now_nanos(&self) -> u64 {
        if self.paused.load(Ordering::SeqCst) { self.frozen_at.load(Ordering::SeqCst) } else { self.inner.now_nanos() }
    }
}

#[test]
fn work_past_the_deadline_is_504_and_the_service_keeps_serving() {
    let clock = Arc::new(PausableClock {
        inner: SystemClock::new(),
        paused: AtomicBool::new(false),
        frozen_at: AtomicU64::new(0),
    });
    let config = Config { deadline_ms: 1, ..Config::default() };
    let max = config.mc.max_samples;
    let s = Service::new(config, clock.clone());
    // Ten million samples (the default limit) cannot be drawn in a millisecond.
    let heavy_cf = json!({"model": pricing(), "intervention": {"Price": 12}, "outcome": "Revenue", "samples": max});
    // 3 inputs: 12 runs of max/12 samples.
    let heavy_sens = json!({"model": pricing(), "outcome": "Revenue", "samples": max / 12});
    for (path, body) in [(CF, &heavy_cf), (SENS, &heavy_sens)] {
        for _ in 0..2 {
            let r = post(&s, path, body);
            let e = assert_error(&r, 504, "deadline_exceeded");
            assert_eq!(e["details"], json!({}));
        }
        assert_eq!(s.request_count(path, 504), 2);
    }
    assert_eq!(s.cache_snapshot().entries, 0, "errors are never cached");

    // With time standing still, the next requests are answered normally (nothing is left
    // half-done: no stuck placeholder, no cached error).
    clock.frozen_at.store(clock.inner.now_nanos(), Ordering::SeqCst);
    clock.paused.store(true, Ordering::SeqCst);
    for (path, body) in [(CF, cf_request()), (SENS, sens_request())] {
        let r = post(&s, path, &body);
        ok(&r);
        assert_eq!(r.header("x-cache"), Some("miss"));
        assert_eq!(post(&s, path, &body).header("x-cache"), Some("hit"));
    }
    let h = s.handle(Request::new(Method::Get, "/health"));
    assert_eq!(h.status, 200);
}

// ---------------------------------------------------------------- closed form

#[test]
fn linear_gaussian_counterfactual_matches_the_closed_form() {
    let s = service();
    // do(X = 5): Y = 13 + N(0, 1).
    let n = 200_000;
    let v = ok(&post(
        &s,
        CF,
        &json!({"model": linear_gaussian(), "intervention": {"X": 5}, "outcome": "Y", "samples": n,
                "quantiles": [0.05, 0.5, 0.95], "threshold": 13}),
    ));
    let (mean, std, se) = (f(&v["mean"]), f(&v["std"]), f(&v["std_error"]));
    assert_eq!(v["samples_used"], n);
    assert_eq!(v["non_finite"], 0);
    assert_eq!(v["backend"], "cpu");
    assert_eq!(v["method"], "plain");
    assert_eq!(v["outcome"], "Y");
    assert!((se - 1.0 / (n as f64).sqrt()).abs() < 0.02 / (n as f64).sqrt(), "{v}");
    assert!((mean - 13.0).abs() < 4.0 * se, "{v}");
    assert!((std - 1.0).abs() < 0.01, "{v}");
    let q = &v["quantiles"];
    assert!((f(&q["0.05"]) - (13.0 - 1.644_853_6)).abs() < 0.03, "{v}");
    assert!((f(&q["0.5"]) - 13.0).abs() < 0.02, "{v}");
    assert!((f(&q["0.95"]) - (13.0 + 1.644_853_6)).abs() < 0.03, "{v}");
    let p = f(&v["probability_above"]);
    assert!((p - 0.5).abs() < 4.0 * f(&v["probability_std_error"]), "{v}");

    // No intervention: Y = 3 + 2·X + N(0, 1) with X ~ N(1, 4): mean 5, variance 4·4 + 1 = 17.
    let v = ok(&post(&s, CF, &json!({"model": linear_gaussian(), "outcome": "Y", "samples": n})));
    let (mean, std, se) = (f(&v["mean"]), f(&v["std"]), f(&v["std_error"]));
    let sd = 17f64.sqrt();
    assert!((se - sd / (n as f64).sqrt()).abs() < 0.02 * sd / (n as f64).sqrt(), "{v}");
    assert!((mean - 5.0).abs() < 4.0 * se, "{v}");
    assert!((std - sd).abs() < 0.01 * sd, "{v}");

    // Observing X = 3 and Y = 10 pins Y's noise at 10 − (3 + 2·3) = 1, so in that world
    // do(X = 5) gives exactly 3 + 2·5 + 1 = 14.
    let v = ok(&post(
        &s,
        CF,
        &json!({"model": linear_gaussian(), "intervention": {"X": 5}, "outcome": "Y",
                "evidence": {"X": 3, "Y": 10}, "samples": 1000}),
    ));
    assert!((f(&v["mean"]) - 14.0).abs() < 1e-9, "{v}");
    assert!(f(&v["std"]) < 1e-9, "{v}");
}

#[test]
fn a_rare_tail_switches_to_importance_sampling() {
    let s = service();
    // P(13 + N(0,1) > 17) = 1 − Φ(4) = 3.167e-5: about 3 hits in 100 000 plain samples.
    let v = ok(&post(
        &s,
        CF,
        &json!({"model": linear_gaussian(), "intervention": {"X": 5}, "outcome": "Y", "samples": 100_000,
                "threshold": 17, "seed": 11}),
    ));
    assert_eq!(v["method"], "importance", "{v}");
    let (p, se) = (f(&v["probability_above"]), f(&v["probability_std_error"]));
    let exact = 3.167_124_183_311_998e-5;
    assert!(se > 0.0 && se < 0.1 * exact, "{v}");
    assert!((p - exact).abs() < 4.0 * se, "{v}");
    assert!(v["importance_samples"].as_u64().unwrap() >= 100_000, "{v}");
    assert!(f(&v["effective_sample_size"]) > 0.0, "{v}");
}

#[test]
fn adaptive_sampling_meets_the_target_error() {
    let s = service();
    let v = ok(&post(&s, CF, &json!({"model": linear_gaussian(), "outcome": "Y", "target_error": 0.02})));
    assert_eq!(v["target_met"], true, "{v}");
    assert!(f(&v["std_error"]) <= 0.02, "{v}");
    // sqrt(17)/0.02 = 206² ≈ 42 500 samples: rounds of 4096 doubling stop at 65 536.
    assert_eq!(v["samples_used"], 65_536, "{v}");
}

#[test]
fn the_design_example_answers() {
    let s = service();
    let body = json!({"model": pricing(), "intervention": {"Price": 12}, "outcome": "Revenue", "threshold": 1000});
    let v = ok(&post(&s, CF, &body));
    // E[Revenue | do(Price = 12)] = 12·(100 − 2·12) = 912; sd = 12·sqrt(0.3²·144 + 25) ≈ 72.6.
    assert!((f(&v["mean"]) - 912.0).abs() < 4.0 * f(&v["std_error"]), "{v}");
    assert!((f(&v["std"]) - 12.0 * (0.09f64 * 144.0 + 25.0).sqrt()).abs() < 3.0, "{v}");
    assert_eq!(v["samples_used"], 10_000);
    let keys: Vec<&String> = v["quantiles"].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["0.05", "0.25", "0.5", "0.75", "0.95"]);
    let p = f(&v["probability_above"]);
    assert!(p > 0.05 && p < 0.2, "{v}");
    for field in ["effective_sample_size", "importance_samples", "target_met"] {
        assert!(v[field].is_null(), "{field}: {v}");
    }
}

#[test]
fn linear_gaussian_sensitivity_matches_the_closed_form() {
    let s = service();
    let n = 20_000u64;
    let v = ok(&post(&s, SENS, &json!({"model": linear_gaussian(), "outcome": "Y", "samples": n})));
    assert_eq!(v["samples_used"], n);
    assert_eq!(v["evaluations"], n * 9, "2 inputs: 3·2 + 3 runs");
    assert_eq!(v["non_finite"], 0);
    assert_eq!(v["backend"], "cpu");
    assert!((f(&v["mean"]) - 5.0).abs() < 0.1, "{v}");
    assert!((f(&v["variance"]) - 17.0).abs() < 0.5, "{v}");
    assert!((f(&v["base"]) - 5.0).abs() < 0.1, "{v}");
    let drivers = v["drivers"].as_array().unwrap();
    let inputs: Vec<&str> = drivers.iter().map(|d| d["input"].as_str().unwrap()).collect();
    assert_eq!(inputs, ["X.noise", "Y.noise"], "sorted by swing");
    let z95 = 1.644_853_626_951_472_2;
    // The two runs of a swing share every other random number, so the swing is exact:
    // 2·(2·2·z95) for X's noise, 2·z95 for Y's.
    for (d, node, swing, share) in
        [(&drivers[0], "X", 8.0 * z95, 16.0 / 17.0), (&drivers[1], "Y", 2.0 * z95, 1.0 / 17.0)]
    {
        assert_eq!(d["node"], node);
        assert_eq!(d["role"], "noise");
        assert!((f(&d["swing"]) - swing).abs() < 1e-9, "{d}");
        assert!((f(&d["high"]) - f(&d["low"]) - swing).abs() < 1e-9, "{d}");
        assert!((f(&d["variance_share"]) - share).abs() < 0.05, "{d}");
        assert!((f(&d["total_share"]) - share).abs() < 0.05, "{d}");
    }

    // The design's model: the beliefs and noise terms that reach revenue, with roles.
    let v = ok(&post(&s, SENS, &json!({"model": pricing(), "intervention": {"Price": 12}, "outcome": "Revenue"})));
    let drivers = v["drivers"].as_array().unwrap();
    let mut inputs: Vec<(&str, &str, &str)> = drivers
        .iter()
        .map(|d| (d["input"].as_str().unwrap(), d["node"].as_str().unwrap(), d["role"].as_str().unwrap()))
        .collect();
    assert!(drivers.windows(2).all(|w| f(&w[0]["swing"]) >= f(&w[1]["swing"])), "{v}");
    inputs.sort();
    // Price is set by the intervention, so its noise no longer matters.
    assert_eq!(inputs, [("Demand.noise", "Demand", "noise"), ("Demand<-Price", "Demand", "coefficient")]);
    // do(Price = 12): the slope's swing is 12·12·(2·1.645·0.3) ≈ 142, the noise's 12·2·1.645·5 ≈ 197.
    assert_eq!(drivers[0]["input"], "Demand.noise");
    assert!((f(&drivers[0]["swing"]) - 12.0 * 2.0 * z95 * 5.0).abs() < 1e-6, "{v}");
    assert!((f(&drivers[1]["swing"]) - 144.0 * 2.0 * z95 * 0.3).abs() < 1e-6, "{v}");
}

// ---------------------------------------------------------------- OpenAPI

/// The keys of a JSON object, sorted.
fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap_or_else(|| panic!("not an object: {v}")).keys().cloned().collect();
    k.sort();
    k
}

#[test]
fn openapi_schemas_match_the_mc_types() {
    let doc: Value = serde_json::from_str(isl_service::OPENAPI_JSON).unwrap();
    let schemas = &doc["components"]["schemas"];
    let props = |name: &str| keys(&schemas[name]["properties"]);
    let required = |name: &str| {
        let mut r: Vec<String> =
            schemas[name]["required"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect();
        r.sort();
        r
    };
    for name in ["CounterfactualRequest", "SensitivityRequest", "ModelSpec", "NodeSpec"] {
        assert_eq!(schemas[name]["additionalProperties"], false, "{name}: the type denies unknown fields");
    }

    // Requests: every field the types know, set, serialises to exactly the documented properties.
    let cf: isl_mc::CounterfactualRequest = serde_json::from_value(json!({
        "model": pricing(), "intervention": {"Price": 12}, "outcome": "Revenue", "evidence": {"Price": 10},
        "samples": 10, "target_error": 0.1, "max_samples": 100, "seed": 1, "quantiles": [0.5], "threshold": 1,
        "backend": "gpu"
    }))
    .unwrap();
    assert_eq!(keys(&serde_json::to_value(&cf).unwrap()), props("CounterfactualRequest"));
    assert_eq!(required("CounterfactualRequest"), ["model", "outcome"]);
    let sens: isl_mc::SensitivityRequest = serde_json::from_value(
        json!({"model": pricing(), "intervention": {"Price": 12}, "outcome": "Revenue", "samples": 10, "seed": 1}),
    )
    .unwrap();
    assert_eq!(keys(&serde_json::to_value(&sens).unwrap()), props("SensitivityRequest"));
    assert_eq!(required("SensitivityRequest"), ["model", "outcome"]);
    // The minimal requests the schemas allow are accepted.
    serde_json::from_value::<isl_mc::CounterfactualRequest>(json!({"model": {"nodes": []}, "outcome": "A"})).unwrap();
    serde_json::from_value::<isl_mc::SensitivityRequest>(json!({"model": {"nodes": []}, "outcome": "A"})).unwrap();

    let node: isl_mc::NodeSpec = serde_json::from_value(json!({
        "name": "A", "intercept": 1, "parents": {"B": 2}, "noise": {"dist": "normal", "mean": 0, "std": 1}, "expr": "B"
    }))
    .unwrap();
    assert_eq!(keys(&serde_json::to_value(&node).unwrap()), props("NodeSpec"));
    assert_eq!(required("NodeSpec"), ["name"]);
    assert_eq!(props("ModelSpec"), ["nodes"]);
    for (schema, dist) in [
        ("NormalDist", json!({"dist": "normal", "mean": 0, "std": 1})),
        ("UniformDist", json!({"dist": "uniform", "low": 0, "high": 1})),
        ("LognormalDist", json!({"dist": "lognormal", "mu": 0, "sigma": 1})),
        ("TriangularDist", json!({"dist": "triangular", "low": 0, "mode": 0.5, "high": 1})),
    ] {
        let d: isl_mc::Dist = serde_json::from_value(dist.clone()).unwrap();
        let v = serde_json::to_value(&d).unwrap();
        assert_eq!(keys(&v), props(schema), "{schema}");
        assert_eq!(keys(&v), required(schema), "{schema}");
        assert_eq!(schemas[schema]["properties"]["dist"]["const"], dist["dist"], "{schema}");
        assert_eq!(
            schemas["Dist"]["discriminator"]["mapping"][dist["dist"].as_str().unwrap()],
            format!("#/components/schemas/{schema}")
        );
        assert_eq!(schemas[schema]["additionalProperties"], false, "{schema}");
    }

    // Responses: every field is documented and required (options are present as null), except
    // `warnings`, present only when there is one (here: the GPU asked for on a CPU-only service).
    let s = service();
    let body = json!({"model": pricing(), "outcome": "Revenue", "samples": 100, "threshold": 1e9, "backend": "gpu"});
    let v = ok(&post(&s, CF, &body));
    assert_eq!(keys(&v), props("CounterfactualResponse"));
    let without_warnings: Vec<String> = keys(&v).into_iter().filter(|k| k != "warnings").collect();
    assert_eq!(without_warnings, required("CounterfactualResponse"));
    let v = ok(&post(&s, SENS, &sens_request()));
    assert_eq!(keys(&v), props("SensitivityResponse"));
    assert_eq!(keys(&v), required("SensitivityResponse"));
    assert_eq!(keys(&v["drivers"][0]), props("Driver"));
    assert_eq!(keys(&v["drivers"][0]), required("Driver"));

    // Both routes, both methods, with the causal routes' responses and the request schemas.
    for (path, req, resp) in
        [(CF, "CounterfactualRequest", "CounterfactualResponse"), (SENS, "SensitivityRequest", "SensitivityResponse")]
    {
        let route = &doc["paths"][path];
        let causal = &doc["paths"]["/v1/causal/validate"];
        for method in ["get", "post"] {
            assert_eq!(keys(&route[method]["responses"]), keys(&causal[method]["responses"]), "{path} {method}");
            let ok_schema = &route[method]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"];
            assert_eq!(ok_schema, &format!("#/components/schemas/{resp}"));
            assert_eq!(route[method]["responses"]["304"], causal[method]["responses"]["304"]);
            assert_eq!(route[method]["responses"]["200"]["headers"], causal[method]["responses"]["200"]["headers"]);
        }
        assert_eq!(
            route["get"]["parameters"][0]["schema"]["contentSchema"]["$ref"],
            format!("#/components/schemas/{req}")
        );
        assert_eq!(
            route["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"],
            format!("#/components/schemas/{req}")
        );
    }
    // Every error code the Monte Carlo engine can give is listed.
    let codes = &schemas["Error"]["properties"]["error"]["properties"]["code"]["examples"];
    for code in [
        "too_many_nodes",
        "empty_node_name",
        "duplicate_node",
        "invalid_node",
        "invalid_parameter",
        "expression_too_long",
        "expression_syntax",
        "expression_too_deep",
        "unknown_node",
        "cyclic_graph",
        "over_limit",
        "invalid_request",
        "abduction_not_exact",
        "all_non_finite",
        "deadline_exceeded",
    ] {
        assert!(codes.as_array().unwrap().contains(&json!(code)), "{code}");
    }
}

// ---------------------------------------------------------------- regressions

/// With one finite sample the standard deviation is reported as 0, so the standard error is 0
/// and any `target_error` counts as met.
#[test]
fn one_sample_never_meets_a_target_error() {
    let s = service();
    let v = ok(&post(
        &s,
        CF,
        &json!({"model": linear_gaussian(), "outcome": "Y", "target_error": 0.001, "max_samples": 1}),
    ));
    assert_eq!(v["samples_used"], 1, "{v}");
    assert_ne!(v["target_met"], true, "{v}");
    assert!(v["std_error"].is_null(), "one sample has no standard error: {v}");
}

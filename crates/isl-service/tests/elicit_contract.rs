//! `/v1/preferences/next` through `Service::handle`: the answer's shape and meaning, determinism
//! and caching (ETag, canonical order, GET = POST), every bad input of the issue, contradictory
//! answers, deadlines.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use isl_service::{Clock, Config, Method, Request, Response, Service, encode_query};
use serde_json::{Value, json};

mod common;
use common::{json_of, ok, service, service_with};

const NEXT: &str = "/v1/preferences/next";

fn post(s: &Service, body: &Value) -> Response {
    common::post(s, NEXT, body)
}

/// Asserts an error response with `status` and `code`; returns the error object.
fn assert_error(r: &Response, status: u16, code: &str) -> Value {
    assert_eq!(r.status, status, "body: {}", String::from_utf8_lossy(&r.body));
    let v = json_of(r);
    assert_eq!(v["error"]["code"], code, "{v}");
    assert!(v["error"]["message"].is_string() && v["error"]["details"].is_object(), "{v}");
    v["error"].clone()
}

fn attributes() -> Value {
    json!([
        {"name": "cost", "better": "lower", "range": [0, 100]},
        {"name": "quality", "better": "higher", "range": [0, 10]},
        {"name": "speed", "better": "higher", "range": [0, 1]}
    ])
}

fn options() -> Value {
    json!([
        {"name": "cheap", "values": {"cost": 10, "quality": 3, "speed": 0.5}},
        {"name": "premium", "values": {"cost": 90, "quality": 9.5, "speed": 0.7}},
        {"name": "fast", "values": {"cost": 50, "quality": 5, "speed": 1.0}},
        {"name": "balanced", "values": {"cost": 45, "quality": 6.5, "speed": 0.6}}
    ])
}

/// Small and quick: 2000 particles.
fn request(answers: Value) -> Value {
    json!({"attributes": attributes(), "options": options(), "answers": answers, "particles": 2000, "seed": 3})
}

#[test]
fn an_answer_has_the_documented_shape() {
    let s = service();
    let v = ok(&post(&s, &request(json!([]))));
    for key in ["attributes", "weights", "entropy_bits", "information_bits", "consistent", "questions", "diagnostics"] {
        assert!(!v[key].is_null(), "{key}: {v}");
    }
    assert_eq!(v["seed"], 3);
    let names: Vec<&str> = v["attributes"].as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["cost", "quality", "speed"]);
    // The prior: every weight has mean 1/3; no information yet; entropy −log2(2!) = −1 bit.
    for (_, w) in v["weights"].as_object().unwrap() {
        assert!((w["mean"].as_f64().unwrap() - 1.0 / 3.0).abs() < 0.02, "{w}");
        assert!(w["p05"].as_f64().unwrap() < w["mean"].as_f64().unwrap());
        assert!(w["p95"].as_f64().unwrap() > w["mean"].as_f64().unwrap());
    }
    assert_eq!(v["information_bits"], 0.0);
    assert!((v["entropy_bits"].as_f64().unwrap() + 1.0).abs() < 1e-9);
    assert_eq!(v["consistent"], true);
    assert!(v.get("warnings").is_none(), "{v}");
    // Three questions (from the options' pairs and synthesised pairs, the default with options),
    // the best first.
    let qs = v["questions"].as_array().unwrap();
    assert_eq!(qs.len(), 3);
    let bits: Vec<f64> = qs.iter().map(|q| q["expected_information_bits"].as_f64().unwrap()).collect();
    assert!(bits[0] > 0.0 && bits.iter().all(|b| *b <= bits[0]), "{bits:?}");
    for q in qs {
        // An option pair names both options; a synthesised pair names neither.
        assert_eq!(q["a_option"].is_string(), q["b_option"].is_string(), "{q}");
        let p = &q["predicted"];
        let total = p["a"].as_f64().unwrap() + p["b"].as_f64().unwrap() + p["indifferent"].as_f64().unwrap();
        assert!((total - 1.0).abs() < 1e-9);
    }
    let candidates = v["diagnostics"]["candidates"].as_u64().unwrap();
    assert!(candidates > 6, "4 options: their 6 pairs and synthesised ones, {candidates} in all");
    // Options and a recommendation.
    let opts = v["options"].as_array().unwrap();
    assert_eq!(opts.len(), 4);
    let p_best: f64 = opts.iter().map(|o| o["probability_best"].as_f64().unwrap()).sum();
    assert!((p_best - 1.0).abs() < 1e-9);
    let rec = &v["recommendation"];
    let best_eu = opts.iter().map(|o| o["expected_utility"].as_f64().unwrap()).fold(f64::MIN, f64::max);
    assert_eq!(rec["expected_utility"].as_f64().unwrap(), best_eu);
    let named = opts.iter().find(|o| o["name"] == rec["option"]).unwrap();
    assert_eq!(named["probability_best"], rec["probability_best"]);
    // Without options: synthesised questions in natural units within the ranges, no
    // recommendation.
    let v = ok(&post(&s, &json!({"attributes": attributes(), "particles": 1000, "count": 5})));
    assert!(v.get("recommendation").is_none() && v.get("options").is_none());
    // 128 synthesised, plus up to n + 1 designed from the posterior's principal axes.
    let searched = v["diagnostics"]["candidates"].as_u64().unwrap();
    assert!((129..=132).contains(&searched), "{searched}");
    let qs = v["questions"].as_array().unwrap();
    assert_eq!(qs.len(), 5);
    for q in qs {
        assert!(q.get("a_option").is_none());
        for side in ["a", "b"] {
            let x = &q[side];
            assert!((0.0..=100.0).contains(&x["cost"].as_f64().unwrap()), "{q}");
            assert!((0.0..=10.0).contains(&x["quality"].as_f64().unwrap()), "{q}");
            assert!((0.0..=1.0).contains(&x["speed"].as_f64().unwrap()), "{q}");
        }
    }
}

#[test]
fn answers_move_the_posterior_and_name_options_or_values() {
    let s = service();
    // Someone who cares about quality: prefers the better-quality alternative each time.
    let answers = json!([
        {"a": "premium", "b": "cheap", "choice": "a"},
        {"a": {"cost": 50, "quality": 8, "speed": 0.5}, "b": {"cost": 20, "quality": 4, "speed": 0.5}, "choice": "a"},
        {"a": {"cost": 40, "quality": 5, "speed": 0.9}, "b": {"cost": 40, "quality": 7, "speed": 0.3}, "choice": "b"},
        {"a": "fast", "b": "balanced", "choice": "b"},
        {"a": {"cost": 70, "quality": 9, "speed": 0.5}, "b": {"cost": 30, "quality": 6, "speed": 0.5}, "choice": "a"}
    ]);
    let v = ok(&post(&s, &request(answers.clone())));
    let mean = |k: &str| v["weights"][k]["mean"].as_f64().unwrap();
    assert!(mean("quality") > 0.45, "{}", v["weights"]);
    assert!(mean("quality") > mean("cost") && mean("quality") > mean("speed"));
    assert!((mean("cost") + mean("quality") + mean("speed") - 1.0).abs() < 1e-9);
    assert!(v["information_bits"].as_f64().unwrap() > 0.5);
    assert!(v["entropy_bits"].as_f64().unwrap() < -1.5);
    assert_eq!(v["diagnostics"]["answers"], 5);
    assert_eq!(v["recommendation"]["option"], "premium");
    // An option named in an answer is the same as its values written out.
    let mut spelled = answers.clone();
    spelled[0]["a"] = json!({"cost": 90, "quality": 9.5, "speed": 0.7});
    spelled[0]["b"] = json!({"cost": 10, "quality": 3, "speed": 0.5});
    let w = ok(&post(&s, &request(spelled)));
    assert_eq!(v["weights"], w["weights"]);
}

#[test]
fn equal_requests_give_equal_bytes_and_are_cached() {
    let s = service();
    let body = request(json!([{"a": "premium", "b": "cheap", "choice": "b"}]));
    let first = post(&s, &body);
    assert_eq!(first.status, 200);
    assert_eq!(first.header("x-cache"), Some("miss"));
    // A fresh service computes the same bytes.
    let again = post(&service(), &body);
    assert_eq!(first.body, again.body);
    assert_eq!(first.header("etag"), again.header("etag"));
    // GET with ?q= is the same answer, from the cache.
    let q = encode_query(&serde_json::to_vec(&body).unwrap());
    let g = s.handle(Request::new(Method::Get, NEXT).with_query(format!("q={q}")));
    assert_eq!((g.status, g.header("x-cache")), (200, Some("hit")));
    assert_eq!(g.body, first.body);
    // 304 on a matching tag.
    let etag = first.header("etag").unwrap();
    let c = s.handle(Request::post_json(NEXT, serde_json::to_vec(&body).unwrap()).with_header("if-none-match", etag));
    assert_eq!(c.status, 304);
    // Attribute and option order do not matter; defaults written out do not either.
    let mut shuffled = body.clone();
    shuffled["attributes"].as_array_mut().unwrap().reverse();
    shuffled["options"].as_array_mut().unwrap().rotate_left(1);
    shuffled["count"] = json!(3);
    shuffled["rationality"] = json!(10.0);
    shuffled["indifference"] = json!(0.5);
    shuffled["candidates"] = json!(128);
    shuffled["questions_from"] = json!("both");
    let r = post(&s, &shuffled);
    assert_eq!(r.header("etag"), first.header("etag"));
    assert_eq!(r.header("x-cache"), Some("hit"));
    // Another seed is another answer; no seed derives one from the request, deterministically.
    let mut other = body.clone();
    other["seed"] = json!(4);
    assert_ne!(post(&s, &other).body, first.body);
    let mut unseeded = body.clone();
    unseeded.as_object_mut().unwrap().remove("seed");
    let (u1, u2) = (post(&s, &unseeded), post(&service(), &unseeded));
    assert_eq!(u1.body, u2.body);
    assert_ne!(json_of(&u1)["seed"], json!(3));
}

#[test]
fn contradictory_answers_warn_but_answer() {
    let s = service();
    let answers = json!([
        {"a": "premium", "b": "cheap", "choice": "a"},
        {"a": "premium", "b": "cheap", "choice": "b"},
        {"a": "cheap", "b": "premium", "choice": "a"}
    ]);
    let v = ok(&post(&s, &request(answers)));
    assert_eq!(v["consistent"], false);
    let warning = v["warnings"][0].as_str().unwrap();
    assert!(warning.contains("contradict") && warning.contains("proper"), "{warning}");
    assert!(v["diagnostics"]["best_margin"].as_f64().unwrap() <= 1e-9);
    let total: f64 = v["weights"].as_object().unwrap().values().map(|w| w["mean"].as_f64().unwrap()).sum();
    assert!((total - 1.0).abs() < 1e-9);
    // A cycle over three options is contradictory too; the same answers without the last are
    // not.
    // a = best cost only, b = best quality only, c = best speed only: a > b > c > a.
    let (a, b, c) = (
        json!({"cost": 0, "quality": 0, "speed": 0}),
        json!({"cost": 100, "quality": 10, "speed": 0}),
        json!({"cost": 100, "quality": 0, "speed": 1}),
    );
    let cycle = json!([
        {"a": a, "b": b, "choice": "a"},
        {"a": b, "b": c, "choice": "a"},
        {"a": c, "b": a, "choice": "a"}
    ]);
    assert_eq!(ok(&post(&s, &request(cycle.clone())))["consistent"], false);
    let two = json!([cycle[0], cycle[1]]);
    let v = ok(&post(&s, &request(two)));
    assert_eq!(v["consistent"], true);
    assert!(v.get("warnings").is_none());
}

#[test]
fn values_outside_a_range_extrapolate_with_a_warning() {
    let s = service();
    let answers = json!([{"a": {"cost": 120, "quality": 5, "speed": 0.5}, "b": "cheap", "choice": "b"}]);
    let v = ok(&post(&s, &request(answers)));
    let w = v["warnings"][0].as_str().unwrap();
    assert!(w.contains("answers[0].a") && w.contains("outside"), "{w}");
}

#[test]
fn bad_input_is_422_with_stable_codes() {
    let s = service();
    let with = |f: &dyn Fn(&mut Value)| {
        let mut b = request(json!([]));
        f(&mut b);
        post(&s, &b)
    };
    // Fewer than two attributes.
    let e = assert_error(
        &post(&s, &json!({"attributes": [{"name": "x", "better": "higher", "range": [0, 1]}]})),
        422,
        "too_few_attributes",
    );
    assert_eq!(e["details"]["count"], 1);
    assert_error(&post(&s, &json!({"attributes": []})), 422, "too_few_attributes");
    // Duplicate names.
    let e = assert_error(&with(&|b| b["attributes"][1]["name"] = json!("cost")), 422, "duplicate_name");
    assert_eq!(e["details"]["name"], "cost");
    assert_error(&with(&|b| b["options"][1]["name"] = json!("cheap")), 422, "duplicate_name");
    // Ranges: lo >= hi, lo == hi, non-finite width, missing without options.
    for range in [json!([5, 1]), json!([2, 2]), json!([-1e308, 1e308])] {
        let e = assert_error(&with(&|b| b["attributes"][0]["range"] = range.clone()), 422, "invalid_range");
        assert_eq!(e["details"]["attribute"], "cost");
    }
    let e = assert_error(
        &post(
            &s,
            &json!({"attributes": [{"name": "x", "better": "higher"}, {"name": "y", "better": "lower", "range": [0, 1]}]}),
        ),
        422,
        "invalid_range",
    );
    assert!(e["message"].as_str().unwrap().contains("required"), "{e}");
    // Without a range, options give it; if they all agree there is none.
    let v = ok(&with(&|b| {
        b["attributes"][2].as_object_mut().unwrap().remove("range");
    }));
    assert_eq!(v["attributes"][2]["range"], json!([0.5, 1.0]));
    // Unknown and missing attribute names, in options and answers.
    let e = assert_error(&with(&|b| b["options"][0]["values"]["colour"] = json!(1)), 422, "unknown_attribute");
    assert_eq!(e["details"], json!({"field": "options.cheap", "attributes": ["colour"]}));
    let e = assert_error(
        &with(&|b| {
            b["options"][0]["values"].as_object_mut().unwrap().remove("speed");
        }),
        422,
        "missing_attribute",
    );
    assert_eq!(e["details"]["attributes"], json!(["speed"]));
    let e = assert_error(
        &with(&|b| {
            b["answers"] = json!([{"a": {"cost": 1, "quality": 1, "speed": 0, "size": 3}, "b": "cheap", "choice": "a"}])
        }),
        422,
        "unknown_attribute",
    );
    assert_eq!(e["details"], json!({"field": "answers[0].a", "attributes": ["size"]}));
    let e = assert_error(
        &with(&|b| b["answers"] = json!([{"a": "cheap", "b": {"cost": 1}, "choice": "a"}])),
        422,
        "missing_attribute",
    );
    assert_eq!(e["details"], json!({"field": "answers[0].b", "attributes": ["quality", "speed"]}));
    let e = assert_error(
        &with(&|b| b["answers"] = json!([{"a": "cheap", "b": "luxury", "choice": "a"}])),
        422,
        "unknown_option",
    );
    assert_eq!(e["details"], json!({"field": "answers[0].b", "option": "luxury"}));
    // Values so far outside a range that they would swamp the model.
    assert_error(
        &with(&|b| {
            b["answers"] = json!([{"a": {"cost": 1e300, "quality": 1, "speed": 0}, "b": "cheap", "choice": "a"}])
        }),
        422,
        "invalid_request",
    );
    // Choice model and search parameters.
    for (field, value) in [
        ("rationality", json!(0)),
        ("rationality", json!(-1)),
        ("rationality", json!(1e6)),
        ("indifference", json!(-0.1)),
        ("count", json!(0)),
        ("particles", json!(1)),
        ("candidates", json!(0)),
    ] {
        let e = assert_error(&with(&|b| b[field] = value.clone()), 422, "invalid_request");
        assert_eq!(e["details"]["field"], field);
    }
    // An indifferent answer is impossible when indifference is 0.
    let e = assert_error(
        &with(&|b| {
            b["indifference"] = json!(0);
            b["answers"] = json!([{"a": "cheap", "b": "fast", "choice": "indifferent"}]);
        }),
        422,
        "invalid_request",
    );
    assert_eq!(e["details"]["field"], "answers[0].choice");
    // Questions from options need options.
    assert_error(
        &post(&s, &json!({"attributes": attributes(), "questions_from": "options", "particles": 100})),
        422,
        "invalid_request",
    );
    // Schema errors: unknown fields, a bad choice, a string for a number.
    assert_error(&with(&|b| b["colour"] = json!(1)), 422, "invalid_request");
    assert_error(
        &with(&|b| b["answers"] = json!([{"a": "cheap", "b": "fast", "choice": "c"}])),
        422,
        "invalid_request",
    );
    assert_error(&with(&|b| b["attributes"][0]["better"] = json!("more")), 422, "invalid_request");
    assert_error(&with(&|b| b["attributes"][0]["range"] = json!([0, "1"])), 422, "invalid_request");
    // Malformed JSON is still 400.
    let r = s.handle(Request::post_json(NEXT, &b"{\"attributes\": ["[..]));
    assert_error(&r, 400, "malformed_json");
    assert_eq!(s.cache_snapshot().entries, 1, "errors are never cached (one answer was a 200)");
}

#[test]
fn limits_are_configurable_and_422() {
    let s = service_with(|c| {
        c.elicit.max_answers = 2;
        c.elicit.max_options = 3;
        c.elicit.max_attributes = 2;
        c.elicit.max_particles = 500;
        c.elicit.max_candidates = 10;
        c.elicit.max_count = 2;
        c.elicit.max_particle_answers = 999;
    });
    let two =
        json!([{"name": "a", "better": "higher", "range": [0, 1]}, {"name": "b", "better": "higher", "range": [0, 1]}]);
    let base = json!({"attributes": two, "particles": 100, "count": 1, "candidates": 10});
    let with = |f: &dyn Fn(&mut Value)| {
        let mut b = base.clone();
        f(&mut b);
        post(&s, &b)
    };
    assert_eq!(with(&|_| {}).status, 200);
    type Edit = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(&str, Edit)> = vec![
        (
            "attributes",
            Box::new(|b| {
                b["attributes"].as_array_mut().unwrap().push(json!({"name": "c", "better": "lower", "range": [0, 1]}))
            }),
        ),
        ("particles", Box::new(|b| b["particles"] = json!(501))),
        ("candidates", Box::new(|b| b["candidates"] = json!(11))),
        ("count", Box::new(|b| b["count"] = json!(3))),
        (
            "options",
            Box::new(|b| {
                b["options"] = json!(
                    (0..4).map(|i| json!({"name": format!("o{i}"), "values": {"a": i, "b": 1}})).collect::<Vec<_>>()
                )
            }),
        ),
        (
            "answers",
            Box::new(|b| {
                b["answers"] = json!(vec![json!({"a": {"a": 1, "b": 0}, "b": {"a": 0, "b": 1}, "choice": "a"}); 3])
            }),
        ),
        (
            "particles × answers",
            Box::new(|b| {
                b["particles"] = json!(500);
                b["answers"] = json!(vec![json!({"a": {"a": 1, "b": 0}, "b": {"a": 0, "b": 1}, "choice": "a"}); 2]);
            }),
        ),
    ];
    for (what, f) in cases {
        let e = assert_error(&with(&*f), 422, "over_limit");
        assert_eq!(e["details"]["what"], what, "{e}");
        assert!(e["details"]["limit"].is_number() && e["details"]["count"].is_number());
    }
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
    let answers: Vec<Value> = (0..10)
        .map(|i| json!({"a": {"cost": i * 10, "quality": 5, "speed": 0.5}, "b": "cheap", "choice": "a"}))
        .collect();
    let r = post(&s, &request(json!(answers)));
    assert_error(&r, 504, "deadline_exceeded");
    assert_eq!(s.cache_snapshot().entries, 0);
}

#[test]
fn the_route_is_in_the_openapi_document_and_metrics() {
    let s = service();
    assert!(s.compute_paths().contains(&NEXT));
    let doc: Value = serde_json::from_str(isl_service::OPENAPI_JSON).unwrap();
    let path = &doc["paths"][NEXT];
    assert!(path["get"].is_object() && path["post"]["responses"]["422"].is_object());
    for schema in ["PreferencesNextRequest", "PreferencesNextResponse", "PreferenceAnswer"] {
        assert!(doc["components"]["schemas"][schema].is_object(), "{schema}");
    }
    post(&s, &request(json!([])));
    assert_eq!(s.request_count(NEXT, 200), 1);
}

mod fuzz {
    use proptest::prelude::*;

    use super::*;

    fn name() -> impl Strategy<Value = Value> {
        prop_oneof![Just(json!("cost")), Just(json!("quality")), Just(json!("x")), Just(json!("")), Just(json!(3))]
    }

    fn number() -> impl Strategy<Value = Value> {
        prop_oneof![
            (-5.0f64..15.0).prop_map(|x| json!(x)),
            Just(json!(1e308)),
            Just(json!(-1e308)),
            Just(json!(0)),
            Just(json!("1")),
            Just(json!(null)),
        ]
    }

    fn values() -> impl Strategy<Value = Value> {
        prop::collection::btree_map(
            prop_oneof![Just("cost".to_string()), Just("quality".to_string()), Just("x".to_string())],
            number(),
            0..4,
        )
        .prop_map(|m| json!(m))
    }

    fn body() -> impl Strategy<Value = Value> {
        let attribute = (
            name(),
            prop_oneof![Just("higher"), Just("lower"), Just("up")],
            proptest::option::of((number(), number())),
        )
            .prop_map(|(n, b, r)| match r {
                Some((lo, hi)) => json!({"name": n, "better": b, "range": [lo, hi]}),
                None => json!({"name": n, "better": b}),
            });
        let option = (prop_oneof![Just("o1"), Just("o2"), Just("o3")], values())
            .prop_map(|(n, v)| json!({"name": n, "values": v}));
        let side = prop_oneof![values(), Just(json!("o1")), Just(json!("o9"))];
        let answer = (side.clone(), side, prop_oneof![Just("a"), Just("b"), Just("indifferent"), Just("maybe")])
            .prop_map(|(a, b, c)| json!({"a": a, "b": b, "choice": c}));
        (
            prop::collection::vec(attribute, 0..4),
            proptest::option::of(prop::collection::vec(option, 0..4)),
            prop::collection::vec(answer, 0..5),
            proptest::option::of(prop_oneof![number(), Just(json!(-1)), Just(json!(2))]),
            proptest::option::of(0u64..4),
        )
            .prop_map(|(attributes, options, answers, rationality, count)| {
                let mut b = json!({"attributes": attributes, "answers": answers, "particles": 64, "candidates": 8});
                if let Some(o) = options {
                    b["options"] = json!(o);
                }
                if let Some(r) = rationality {
                    b["rationality"] = r;
                }
                if let Some(c) = count {
                    b["count"] = json!(c);
                }
                b
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// Whatever the request, the answer is a 200 with a proper posterior or a 4xx JSON error;
        /// never a 500, never a panic.
        #[test]
        fn any_request_keeps_the_contract(body in body()) {
            let s = service();
            let r = post(&s, &body);
            let v: Value = serde_json::from_slice(&r.body).expect("JSON");
            match r.status {
                200 => {
                    let total: f64 = v["weights"].as_object().unwrap().values().map(|w| w["mean"].as_f64().unwrap()).sum();
                    prop_assert!((total - 1.0).abs() < 1e-9, "{v}");
                    prop_assert!(v["entropy_bits"].as_f64().is_some() && v["information_bits"].as_f64().unwrap() >= 0.0);
                }
                400 | 422 => prop_assert!(v["error"]["code"].is_string(), "{v}"),
                other => prop_assert!(false, "status {other}: {v} for {body}"),
            }
        }
    }
}

//! `/v1/preferences/next` with options from a causal model: each intervention is an option, each
//! attribute a Monte Carlo statistic of a node — the same numbers `/v1/counterfactual` gives for
//! the same question and seed — stable from round to round, and every bad input a 422.

use std::sync::Arc;

use isl_service::{Config, Response, Service, SystemClock};
use serde_json::{Value, json};

mod common;
use common::{ok, post, service};

const NEXT: &str = "/v1/preferences/next";

fn error(r: &Response, status: u16, code: &str) -> Value {
    assert_eq!(r.status, status, "{}", String::from_utf8_lossy(&r.body));
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["error"]["code"], code, "{v}");
    v["error"].clone()
}

fn model() -> Value {
    json!({"nodes": [
        {"name": "Price", "noise": {"dist": "normal", "mean": 10, "std": 1}},
        {"name": "Demand", "intercept": 100,
         "parents": {"Price": {"dist": "normal", "mean": -2.0, "std": 0.3}},
         "noise": {"dist": "normal", "mean": 0, "std": 5}},
        {"name": "Revenue", "expr": "Price * Demand"}
    ]})
}

fn request() -> Value {
    json!({
        "attributes": [
            {"name": "Revenue", "better": "higher"},
            {"name": "revenue_p05", "node": "Revenue", "quantile": 0.05, "better": "higher"},
            {"name": "Demand", "better": "higher"}
        ],
        "scm": {
            "model": model(),
            "interventions": [
                {"name": "price 8", "set": {"Price": 8}},
                {"name": "price 10", "set": {"Price": 10}},
                {"name": "price 12", "set": {"Price": 12}},
                {"name": "price 14", "set": {"Price": 14}}
            ],
            "samples": 4000
        },
        "particles": 1000,
        "seed": 11
    })
}

#[test]
fn option_values_are_the_counterfactual_route_answers() {
    let s = service();
    let v = ok(&post(&s, NEXT, &request()));
    let options = v["options"].as_array().unwrap();
    assert_eq!(options.len(), 4);
    for o in options {
        let price: f64 = o["name"].as_str().unwrap()["price ".len()..].parse().unwrap();
        let cf = |outcome: &str| {
            ok(&post(
                &s,
                "/v1/counterfactual",
                &json!({"model": model(), "intervention": {"Price": price}, "outcome": outcome,
                        "samples": 4000, "seed": 11, "quantiles": [0.05]}),
            ))
        };
        let revenue = cf("Revenue");
        assert_eq!(o["values"]["Revenue"], revenue["mean"], "{o}");
        assert_eq!(o["values"]["revenue_p05"], revenue["quantiles"]["0.05"], "{o}");
        assert_eq!(o["values"]["Demand"], cf("Demand")["mean"], "{o}");
        // Closed form: E[Demand | do(Price = p)] = 100 − 2p.
        assert!((o["values"]["Demand"].as_f64().unwrap() - (100.0 - 2.0 * price)).abs() < 1.0, "{o}");
    }
    // Ranges come from the options; questions are about options or synthesised (the default
    // with options), only about options when asked so.
    assert_eq!(v["attributes"].as_array().unwrap().len(), 3);
    let q = &v["questions"][0];
    assert_eq!(q["a_option"].is_string(), q["b_option"].is_string(), "{q}");
    assert!(v["recommendation"]["option"].is_string());
    let mut only_options = request();
    only_options["questions_from"] = json!("options");
    let v = ok(&post(&s, NEXT, &only_options));
    for q in v["questions"].as_array().unwrap() {
        assert!(q["a_option"].is_string() && q["b_option"].is_string(), "{q}");
    }
}

#[test]
fn option_values_stay_fixed_as_answers_come_in() {
    let s = service();
    let mut body = request();
    body.as_object_mut().unwrap().remove("seed");
    let first = ok(&post(&s, NEXT, &body));
    body["answers"] = json!([{"a": "price 14", "b": "price 8", "choice": "a"}]);
    let second = ok(&post(&s, NEXT, &body));
    assert_eq!(first["options"].as_array().unwrap().len(), 4);
    for (x, y) in first["options"].as_array().unwrap().iter().zip(second["options"].as_array().unwrap()) {
        assert_eq!(x["values"], y["values"]);
    }
    assert_ne!(first["seed"], second["seed"], "the particles' seed still follows the answers");
    // Someone who wants revenue: the expensive options win.
    let answers: Vec<Value> = [("price 14", "price 8"), ("price 12", "price 8"), ("price 14", "price 10")]
        .iter()
        .flat_map(|(a, b)| std::iter::repeat_n(json!({"a": a, "b": b, "choice": "a"}), 3))
        .collect();
    body["answers"] = json!(answers);
    let v = ok(&post(&s, NEXT, &body));
    assert_eq!(v["recommendation"]["option"], "price 14", "{}", v["weights"]);
}

#[test]
fn bad_causal_options_are_422() {
    let s = service();
    let with = |f: &dyn Fn(&mut Value)| {
        let mut b = request();
        f(&mut b);
        post(&s, NEXT, &b)
    };
    let e = error(&with(&|b| b["attributes"][2]["node"] = json!("Profit")), 422, "unknown_node");
    assert!(e["message"].as_str().unwrap().contains("Profit"), "{e}");
    error(&with(&|b| b["scm"]["model"]["nodes"][0]["parents"] = json!({"Revenue": 1.0})), 422, "cyclic_graph");
    error(&with(&|b| b["scm"]["interventions"][0]["set"] = json!({"Cost": 1})), 422, "unknown_node");
    error(&with(&|b| b["options"] = json!([])), 422, "invalid_request");
    let e = error(&with(&|b| b["attributes"][1]["quantile"] = json!(1.5)), 422, "invalid_request");
    assert_eq!(e["details"]["field"], "attributes.revenue_p05.quantile");
    error(&with(&|b| b["scm"]["interventions"][1]["name"] = json!("price 8")), 422, "duplicate_name");
    let e = error(&with(&|b| b["scm"]["samples"] = json!(10_000_000)), 422, "over_limit");
    assert!(e["details"]["what"].as_str().unwrap().starts_with("scm samples"), "{e}");
    error(&with(&|b| b["scm"]["colour"] = json!(1)), 422, "invalid_request");
    // node and quantile mean nothing without a model.
    let e = error(
        &post(
            &s,
            NEXT,
            &json!({"attributes": [
                {"name": "x", "better": "higher", "range": [0, 1], "node": "X"},
                {"name": "y", "better": "higher", "range": [0, 1]}
            ]}),
        ),
        422,
        "invalid_request",
    );
    assert_eq!(e["details"]["field"], "attributes.x");
    // Limits.
    let few = Service::new(
        Config { elicit: isl_elicit::ElicitOptions { max_options: 3, ..Default::default() }, ..Config::default() },
        Arc::new(SystemClock::new()),
    );
    let e = error(&post(&few, NEXT, &request()), 422, "over_limit");
    assert_eq!(e["details"]["what"], "interventions");
}

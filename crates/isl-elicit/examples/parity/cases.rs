// The parity cases: answers of `next` whose bytes must be identical on every target (native
// with AVX-512, AVX2 or plain SSE2 kernels, any thread count, wasm32). Included by
// `examples/elicit_wasm_parity.rs` and `tests/golden.rs`.

/// The answers to the parity requests, as one JSON text.
pub fn parity_json() -> String {
    use serde_json::json;
    let opts = isl_elicit::ElicitOptions::default();
    let mc = isl_mc::McOptions::default();
    let attrs = |n: usize| -> Vec<serde_json::Value> {
        (0..n)
            .map(|k| json!({"name": format!("a{k}"), "better": if k % 2 == 0 { "higher" } else { "lower" }, "range": [0, 10 * (k + 1)]}))
            .collect()
    };
    let values = |n: usize, seed: usize| -> serde_json::Value {
        let mut m = serde_json::Map::new();
        for k in 0..n {
            m.insert(format!("a{k}"), json!(((seed * 7 + k * 3) % 11) as f64 * (k + 1) as f64));
        }
        serde_json::Value::Object(m)
    };
    let options: Vec<serde_json::Value> =
        (0..10).map(|o| json!({"name": format!("opt{o}"), "values": values(5, o)})).collect();
    let choices = ["a", "b", "indifferent", "a", "a", "b"];
    let answers = |n: usize, count: usize| -> Vec<serde_json::Value> {
        (0..count)
            .map(|j| json!({"a": values(n, j + 1), "b": values(n, 2 * j + 5), "choice": choices[j % choices.len()]}))
            .collect()
    };
    let requests = vec![
        json!({"attributes": attrs(4), "answers": answers(4, 6), "particles": 3000, "count": 4, "seed": 1}),
        json!({"attributes": attrs(5), "options": options, "answers": answers(5, 12), "particles": 3000,
               "questions_from": "both", "seed": 2}),
        json!({"attributes": attrs(3), "answers": [
            {"a": values(3, 1), "b": values(3, 2), "choice": "a"},
            {"a": values(3, 1), "b": values(3, 2), "choice": "b"}
        ], "particles": 2000, "rationality": 25, "indifference": 0.2}),
        json!({"attributes": [
            {"name": "Revenue", "better": "higher"},
            {"name": "risk", "node": "Revenue", "quantile": 0.1, "better": "higher"},
            {"name": "Demand", "better": "higher"}
        ], "scm": {"model": {"nodes": [
            {"name": "Price", "noise": {"dist": "normal", "mean": 10, "std": 1}},
            {"name": "Demand", "intercept": 100, "parents": {"Price": {"dist": "normal", "mean": -2.0, "std": 0.3}},
             "noise": {"dist": "normal", "mean": 0, "std": 5}},
            {"name": "Revenue", "expr": "Price * Demand"}
        ]}, "interventions": [{"name": "p9", "set": {"Price": 9}}, {"name": "p12", "set": {"Price": 12}},
                              {"name": "p15", "set": {"Price": 15}}], "samples": 2000},
           "answers": [{"a": "p15", "b": "p9", "choice": "a"}], "particles": 2000, "seed": 4}),
        // The rationality learned from the answers (particles carry their own λ).
        json!({"attributes": attrs(4), "answers": answers(4, 8), "particles": 2000, "rationality_spread": 1,
               "seed": 5}),
    ];
    let answers: Vec<serde_json::Value> = requests
        .into_iter()
        .map(|r| {
            let req: isl_elicit::NextRequest = serde_json::from_value(r).expect("request");
            let answer = isl_elicit::next(&req.canonical(&opts), &opts, &mc, &|| false).expect("answer");
            serde_json::to_value(answer).expect("json")
        })
        .collect();
    serde_json::to_string(&answers).expect("json")
}

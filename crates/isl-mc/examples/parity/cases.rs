// Requests whose answers must be the same bytes on every target (shared by
// `examples/wasm_parity.rs` and `tests/golden.rs` through `include!`).

/// The answers to the parity requests, as one JSON text.
pub fn parity_json() -> String {
    use isl_mc::prelude::*;
    use serde_json::json;
    let model = json!({"nodes": [
        {"name": "Price", "noise": {"dist": "triangular", "low": 8, "mode": 10, "high": 13}},
        {"name": "Demand", "intercept": {"dist": "uniform", "low": 90, "high": 110},
         "parents": {"Price": {"dist": "normal", "mean": -2.0, "std": 0.3}},
         "noise": {"dist": "normal", "mean": 0, "std": 5}},
        {"name": "Cost", "intercept": {"dist": "lognormal", "mu": 5, "sigma": 0.2},
         "parents": {"Demand": 1.5}, "noise": {"dist": "uniform", "low": -10, "high": 10}},
        {"name": "Profit", "expr": "Price * Demand - Cost - max(0, Demand - 80) ^ 1.5 / 10 + log(Price) * exp(-Price / 10)"}
    ]});
    let tail = json!({"nodes": [
        {"name": "X1", "noise": {"dist": "normal", "mean": 0, "std": 1}},
        {"name": "X2", "noise": {"dist": "normal", "mean": 0, "std": 1}},
        {"name": "Y", "parents": {"X1": 1, "X2": {"dist": "normal", "mean": 1, "std": 0.1}}}
    ]});
    let requests = [
        json!({"model": model, "intervention": {"Price": 12}, "outcome": "Profit", "samples": 20000, "seed": 5, "threshold": 700}),
        json!({"model": model, "intervention": {"Price": 11}, "evidence": {"Demand": 75, "Price": 10},
               "outcome": "Profit", "samples": 10000, "seed": 9, "quantiles": [0.01, 0.5, 0.99]}),
        json!({"model": model, "outcome": "Cost", "target_error": 0.5}),
        json!({"model": tail, "outcome": "Y", "samples": 5000, "seed": 2, "threshold": 5.5}),
    ];
    let opts = McOptions::default();
    let backend = CpuBackend::default();
    let mut out = Vec::new();
    for r in requests {
        let req: CounterfactualRequest = serde_json::from_value(r).expect("request");
        out.push(match counterfactual(&req, &opts, &backend, &|| false) {
            Ok(a) => serde_json::to_value(a).expect("json"),
            Err(e) => json!({"error": e.code()}),
        });
    }
    let sreq: SensitivityRequest =
        serde_json::from_value(json!({"model": model, "outcome": "Profit", "samples": 1000, "seed": 3})).expect("request");
    out.push(serde_json::to_value(sensitivity(&sreq, &opts, &backend, &|| false).expect("sensitivity")).expect("json"));
    serde_json::to_string(&out).expect("json")
}

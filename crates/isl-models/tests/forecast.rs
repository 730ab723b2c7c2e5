//! Forecasting: tract equals the model's own Python (onnxruntime) output on stored inputs, and
//! the whole pipeline (time features, scaling, inverse scaling, timestamps) equals train.py's.

use isl_models::api::{ForecastRequest, ModelLimits};
use isl_models::forecast::{ForecastModel, TIME_FEATURES, Timestamp};
use isl_models::{Registry, RegistryConfig};
use tract_onnx::prelude::*;

fn reference() -> serde_json::Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../models/forecast/reference.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn floats(v: &serde_json::Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

#[test]
fn tract_equals_onnxruntime_on_the_stored_model_inputs() {
    let r = reference();
    let model = ForecastModel::builtin().unwrap();
    assert_eq!((model.window(), model.max_horizon()), (48, 48));
    for case in r["cases"].as_array().unwrap() {
        let x: Vec<f32> = floats(&case["model_values"]).iter().map(|&v| v as f32).collect();
        let tf: Vec<f32> =
            case["model_time_features"].as_array().unwrap().iter().flat_map(floats).map(|v| v as f32).collect();
        let inputs = tvec![
            Tensor::from_shape(&[1, 48], &x).unwrap().into(),
            Tensor::from_shape(&[1, 96, TIME_FEATURES], &tf).unwrap().into()
        ];
        let out = model.onnx().run(inputs).unwrap();
        let got: Vec<f32> = out[0].to_plain_array_view::<f32>().unwrap().iter().copied().collect();
        for (g, w) in got.iter().zip(floats(&case["model_output"])) {
            assert!((*g as f64 - w).abs() <= 1e-4 * (1.0 + w.abs()), "{g} vs {w}");
        }
    }
}

#[test]
fn the_pipeline_equals_train_py_on_stored_requests() {
    let r = reference();
    let reg = Registry::new(RegistryConfig::new("/nonexistent"));
    for (k, case) in r["cases"].as_array().unwrap().iter().enumerate() {
        let req: ForecastRequest = serde_json::from_value(serde_json::json!({
            "timestamps": case["timestamps"], "values": case["values"], "horizon": case["horizon"],
        }))
        .unwrap();
        let resp = isl_models::api::forecast(&reg, &req, &ModelLimits::default()).unwrap();
        let want = floats(&case["expected_forecast"]);
        assert_eq!(resp.forecast.len(), want.len());
        for (g, w) in resp.forecast.iter().zip(&want) {
            assert!((g - w).abs() <= 1e-4 * (1.0 + w.abs()), "case {k}: {g} vs {w}");
        }
        let want_ts: Vec<Timestamp> = serde_json::from_value(case["expected_timestamps"].clone()).unwrap();
        assert_eq!(resp.timestamps, want_ts, "case {k}");
        assert!(resp.timings_ms.total >= resp.timings_ms.model);
        // The response serialises timestamps in the request's format.
        let json = serde_json::to_value(&resp).unwrap();
        assert_eq!(json["timestamps"], case["expected_timestamps"]);
    }
}

#[test]
fn one_model_call_serves_every_horizon_and_is_fast() {
    let model = ForecastModel::builtin().unwrap();
    let ts: Vec<Timestamp> = (0..500).map(|i| Timestamp::Seconds(1.7e9 + 3600.0 * i as f64)).collect();
    let values: Vec<f64> = (0..500).map(|i| 100.0 + 10.0 * (i as f64 / 24.0 * std::f64::consts::TAU).sin()).collect();
    let full = model.forecast(&ts, &values, 48, 100_000).unwrap();
    for h in [1, 7, 30] {
        let f = model.forecast(&ts, &values, h, 100_000).unwrap();
        assert_eq!(f.values[..], full.values[..h], "a horizon is a prefix of the full forecast");
    }
    // A clean daily sine of amplitude 10 is continued: recorded error, loose bound (the model is
    // small and trained on noisy generated series).
    let errs: Vec<f64> = full
        .values
        .iter()
        .enumerate()
        .map(|(k, v)| (v - (100.0 + 10.0 * ((500 + k) as f64 / 24.0 * std::f64::consts::TAU).sin())).abs())
        .collect();
    let mae = errs.iter().sum::<f64>() / errs.len() as f64;
    let max = errs.iter().copied().fold(0.0, f64::max);
    eprintln!("clean daily sine (amplitude 10), 48 steps: mean abs error {mae:.3}, max {max:.3}");
    assert!(mae < 2.5 && max < 6.0, "mae {mae}, max {max}");
    eprintln!("forecast timings (ms): {:?}", full.timings);
}

mod wasm_case {
    include!("../examples/wasm_forecast/case.rs");
}

/// What node printed for the wasm32-unknown-unknown build of examples/wasm_forecast.rs.
const WASM_ANSWER: &str = "55.186258 56.104133 58.740250 59.796209 60.750031 60.836137 62.082000 62.101267 \
    61.471712 59.662821 58.444725 56.118874 54.258804 53.426694 51.685617 49.455704 48.096096 47.658325 47.651627 \
    48.498886 48.690800 49.343495 50.268678 53.335368 55.391608 56.276753 58.781661 59.812322 60.670441 60.671028";

/// The native side of the wasm check: the same forecast as the wasm module's, to 1e-4 (the
/// float kernels differ: AVX-512 here, wasm's there).
#[test]
fn the_wasm_case_natively() {
    let v = wasm_case::case_forecast();
    eprintln!("{}", v.iter().map(|x| format!("{x:.6}")).collect::<Vec<_>>().join(" "));
    let wasm: Vec<f64> = WASM_ANSWER.split_whitespace().map(|x| x.parse().unwrap()).collect();
    assert_eq!(v.len(), wasm.len());
    for (a, b) in v.iter().zip(&wasm) {
        assert!((a - b).abs() < 1e-4, "{a} vs {b}");
    }
}

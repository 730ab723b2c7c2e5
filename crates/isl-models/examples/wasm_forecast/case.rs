// The forecast computed by the wasm_forecast example (wasm32-unknown-unknown under node) and by
// tests/forecast.rs natively: a fixed hourly series, horizon 30, with the built-in model.

/// The 30 forecast values of the fixed case.
pub fn case_forecast() -> Vec<f64> {
    use isl_models::forecast::{ForecastModel, Timestamp};
    let ts: Vec<Timestamp> = (0..96).map(|h| Timestamp::Seconds(1_717_200_000.0 + 3600.0 * h as f64)).collect();
    let values: Vec<f64> =
        (0..96).map(|h| 50.0 + 8.0 * (h as f64 * std::f64::consts::TAU / 24.0).sin() + 0.05 * h as f64).collect();
    match ForecastModel::builtin().and_then(|m| m.forecast(&ts, &values, 30, 1000)) {
        Ok(f) => f.values,
        Err(_) => Vec::new(),
    }
}

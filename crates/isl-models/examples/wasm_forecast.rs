//! The built-in forecaster as a wasm module (wasm32-unknown-unknown, no JavaScript glue: the
//! forecast path needs no randomness), to compare with the native answer of
//! `tests/forecast.rs::the_wasm_case_natively`:
//!
//! ```text
//! cargo build -p isl-models --release --target wasm32-unknown-unknown --example wasm_forecast
//! node --input-type=module -e "
//!   import { readFileSync } from 'node:fs';
//!   const { instance } = await WebAssembly.instantiate(
//!     readFileSync('target/wasm32-unknown-unknown/release/examples/wasm_forecast.wasm'), {});
//!   const e = instance.exports; const n = e.forecast_len();
//!   console.log(Array.from({length: n}, (_, i) => e.forecast_value(i).toFixed(6)).join(' '));"
//! ```

include!("wasm_forecast/case.rs");

/// Number of forecast values (30, or 0 if the forecast failed).
#[unsafe(no_mangle)]
pub extern "C" fn forecast_len() -> u32 {
    case_forecast().len() as u32
}

/// The `i`-th forecast value (NaN past the end).
#[unsafe(no_mangle)]
pub extern "C" fn forecast_value(i: u32) -> f64 {
    case_forecast().get(i as usize).copied().unwrap_or(f64::NAN)
}

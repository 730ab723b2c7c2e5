//! A lost device (here destroyed with `wgpu::Device::destroy`, as a driver reset would leave it)
//! fails every later run with `GpuError::Device` — never a panic, never a wrong answer — whether
//! the program's pipeline was already compiled or not, and the CPU answers the same request.

mod common;

use isl_gpu::{GpuAnswer, GpuEngine, GpuError, GpuOptions};
use isl_mc::backend::RunSpec;
use isl_mc::{CounterfactualRequest, CpuBackend, McOptions, counterfactual};
use serde_json::json;

fn request(outcome: &str, samples: u64) -> CounterfactualRequest {
    serde_json::from_value(json!({"model": {"nodes": [
        {"name": "X", "noise": {"dist": "normal", "mean": 1, "std": 2}},
        {"name": "Y", "intercept": 3, "parents": {"X": {"dist": "normal", "mean": 2, "std": 0.1}},
         "noise": {"dist": "normal", "mean": 0, "std": 1}}
    ]}, "outcome": outcome, "samples": samples, "seed": 3, "threshold": 5.0}))
    .expect("request")
}

#[test]
fn a_destroyed_device_fails_every_run_with_a_device_error() {
    // The shared test engine tells whether there is an adapter; this test destroys its own.
    if common::engine().is_none() {
        return;
    }
    let gpu = match GpuEngine::with_options(GpuOptions { chunk_samples: 1 << 16, ..GpuOptions::default() }) {
        Ok(Some(gpu)) => gpu,
        other => panic!("a second engine on the same adapter: {other:?}"),
    };
    let opts = McOptions::default();
    // Before: answered, and its pipeline is cached.
    let warm = request("Y", 100_000);
    assert!(matches!(gpu.counterfactual(&warm, &opts, &|| false), Ok(GpuAnswer::Answered(_))));

    gpu.simulate_device_loss();

    // A cached pipeline (Y) and a program never compiled (X): both fail as device errors.
    for req in [warm.clone(), request("X", 100_000)] {
        match gpu.counterfactual(&req, &opts, &|| false) {
            Err(GpuError::Device(message)) => eprintln!("device error, as expected: {message}"),
            other => panic!("after destroy: {other:?}"),
        }
    }
    let program = isl_mc::PreparedCounterfactual::new(&warm, &opts).expect("prepared").program().clone();
    let spec = RunSpec { seed: 1, stream: 0, start: 0, count: 1000, slots: &[], block_size: 4096 };
    assert!(matches!(gpu.debug_samples(&program, &spec), Err(GpuError::Device(_))));
    // The device stays lost.
    assert!(matches!(gpu.counterfactual(&warm, &opts, &|| false), Err(GpuError::Device(_))));
    // The CPU answers what the GPU could not.
    let cpu = counterfactual(&warm, &opts, &CpuBackend::default(), &|| false).expect("cpu");
    assert_eq!(cpu.backend, "cpu");
}

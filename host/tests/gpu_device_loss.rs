//! Forced device loss through the whole native stack: the host's `GpuAccelerator` over a real
//! Vulkan device (lavapipe in CI) inside `isl_service::Service`. The device is destroyed
//! (`wgpu::Device::destroy`, as a driver reset leaves it); the next GPU request is answered by the
//! CPU with a warning, counted as `isl_mc_backend_runs_total{backend="gpu",outcome="device_error"}`,
//! and the GPU is not offered again. Skips, saying why, without an adapter (`ISL_REQUIRE_GPU=1`
//! makes that a failure).

use std::sync::Arc;

use isl::gpu::GpuAccelerator;
use isl_gpu::GpuEngine;
use isl_service::{Config, McAccelerator, Method, Request, Service, SystemClock};
use serde_json::{Value, json};

fn ask(s: &Service, samples: u64) -> Value {
    let body = json!({"model": {"nodes": [
        {"name": "X", "noise": {"dist": "normal", "mean": 1, "std": 2}},
        {"name": "Y", "intercept": 3, "parents": {"X": {"dist": "normal", "mean": 2, "std": 0.1}},
         "noise": {"dist": "normal", "mean": 0, "std": 1}}
    ]}, "outcome": "Y", "evidence": {"X": 1.5}, "samples": samples, "seed": 9, "backend": "gpu"});
    let r = s.handle(Request::post_json("/v1/counterfactual", serde_json::to_vec(&body).expect("json")));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    serde_json::from_slice(&r.body).expect("answer")
}

#[test]
fn a_lost_gpu_falls_back_to_the_cpu_with_a_warning_and_is_counted() {
    let engine = match GpuEngine::new() {
        Ok(Some(engine)) => engine,
        other => {
            assert!(std::env::var_os("ISL_REQUIRE_GPU").is_none(), "no GPU adapter: {other:?}");
            eprintln!("SKIP a_lost_gpu_falls_back_to_the_cpu: no Vulkan adapter ({other:?})");
            return;
        }
    };
    let accel = GpuAccelerator::with_engine(engine, None);
    let service =
        Service::with_accelerator(Config::default(), Arc::new(SystemClock::new()), Some(accel.clone() as Arc<_>));

    // Before: the GPU answers (evidence included).
    let before = ask(&service, 20_000);
    assert_eq!(before["backend"], "gpu", "{before}");
    assert!(before.get("warnings").is_none(), "{before}");

    accel.engine().expect("engine").simulate_device_loss();

    // The request that meets the lost device: the CPU answers it, saying why.
    let during = ask(&service, 20_001);
    assert_eq!(during["backend"], "cpu", "{during}");
    let warning = during["warnings"][0].as_str().unwrap_or_default();
    assert!(warning.contains("the GPU failed") && warning.contains("device lost"), "{during}");
    assert!(during["mean"].as_f64().is_some_and(f64::is_finite), "{during}");
    assert_eq!(service.mc_backend_runs("gpu", "device_error"), 1);
    assert_eq!(service.mc_backend_runs("cpu", "fallback"), 1);
    assert!(!accel.available(), "a lost device is not offered again");

    // After: asking for the GPU gets the CPU with the "none is available" warning, no new error.
    let after = ask(&service, 20_002);
    assert_eq!(after["backend"], "cpu", "{after}");
    assert!(after["warnings"][0].as_str().unwrap_or_default().contains("none is available"), "{after}");
    assert_eq!(service.mc_backend_runs("gpu", "device_error"), 1);

    let metrics = service.handle(Request::new(Method::Get, "/metrics"));
    let text = String::from_utf8_lossy(&metrics.body);
    assert!(text.contains(r#"isl_mc_backend_runs_total{backend="gpu",outcome="device_error"} 1"#), "{text}");
    assert!(text.contains(r#"isl_mc_backend_runs_total{backend="gpu",outcome="answered"} 1"#), "{text}");
    assert!(text.contains(r#"isl_mc_backend_runs_total{backend="cpu",outcome="fallback"} 2"#), "{text}");
}

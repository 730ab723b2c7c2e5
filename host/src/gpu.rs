//! The GPU as the service's Monte Carlo accelerator (`isl-gpu` behind `isl_service::McAccelerator`).
//!
//! The device is opened on a background thread so the server answers at once (Monte Carlo runs
//! on the CPU until it is ready). Then the threshold for `--backend auto` is measured: the same
//! 30-node model on the CPU and on the GPU at growing sample counts; the GPU takes runs from the
//! first size at which it was faster, and none if it never was (a software adapter such as
//! lavapipe shares the CPU's cores and loses). `--gpu-min-samples` skips the measurement. A
//! device error marks the GPU lost: every later request runs on the CPU.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use isl_gpu::{GpuAnswer, GpuEngine, GpuError};
use isl_mc::{CounterfactualRequest, CpuBackend, McError, McOptions, PreparedCounterfactual};
use isl_service::{AccelOutcome, McAccelerator};
use serde_json::json;
use tracing::{info, warn};

/// `auto_min_samples` before (or without) a measurement: never.
const NEVER: u64 = u64::MAX;

/// The GPU accelerator: opened in the background, its `auto` threshold measured once.
pub struct GpuAccelerator {
    engine: OnceLock<GpuEngine>,
    min_samples: AtomicU64,
    lost: AtomicBool,
}

impl GpuAccelerator {
    /// Starts opening the first Vulkan adapter on a background thread; with `min_samples` the
    /// `auto` threshold is that, else it is measured once the device is open.
    pub fn start(min_samples: Option<u64>) -> Arc<GpuAccelerator> {
        let accel = Arc::new(GpuAccelerator {
            engine: OnceLock::new(),
            min_samples: AtomicU64::new(NEVER),
            lost: AtomicBool::new(false),
        });
        let background = accel.clone();
        let spawned = std::thread::Builder::new().name("isl-gpu-open".into()).spawn(move || {
            let started = Instant::now();
            match GpuEngine::new() {
                Ok(Some(engine)) => {
                    let adapter = engine.adapter().clone();
                    info!(adapter = %adapter.name, driver = %adapter.driver, software = adapter.software,
                          open_ms = started.elapsed().as_millis() as u64, "GPU ready for Monte Carlo");
                    let _ = background.engine.set(engine);
                    let threshold = match min_samples {
                        Some(n) => Some(n),
                        None => background.engine.get().and_then(measure_threshold),
                    };
                    background.min_samples.store(threshold.unwrap_or(NEVER), Ordering::Relaxed);
                    match threshold {
                        Some(n) => info!(min_samples = n, "backend auto: runs of at least this many samples go to the GPU"),
                        None => info!("backend auto: the CPU was faster at every size measured; the GPU runs only requests that ask for it"),
                    }
                }
                Ok(None) => info!("no GPU adapter (Vulkan): Monte Carlo runs on the CPU"),
                Err(e) => warn!(error = %e, "the GPU could not be opened: Monte Carlo runs on the CPU"),
            }
        });
        if let Err(e) = spawned {
            warn!(error = %e, "could not start the GPU thread: Monte Carlo runs on the CPU");
        }
        accel
    }
}

impl GpuAccelerator {
    /// An accelerator over an engine already open (no background thread, no measurement): `auto`
    /// sends runs of at least `min_samples` to it, none without. For embedding and tests.
    pub fn with_engine(engine: GpuEngine, min_samples: Option<u64>) -> Arc<GpuAccelerator> {
        let accel = GpuAccelerator {
            engine: OnceLock::new(),
            min_samples: AtomicU64::new(min_samples.unwrap_or(NEVER)),
            lost: AtomicBool::new(false),
        };
        let _ = accel.engine.set(engine);
        Arc::new(accel)
    }

    /// The engine, once the device is open.
    pub fn engine(&self) -> Option<&GpuEngine> {
        self.engine.get()
    }
}

/// The smallest sample count (among 2¹⁶, 2¹⁸, 2²⁰, 2²²) from which the GPU answered faster than
/// the CPU at every measured size; `None` if it never did. Stops early once the GPU is clearly
/// behind (lavapipe is measured in about half a second).
fn measure_threshold(engine: &GpuEngine) -> Option<u64> {
    let opts = McOptions::default();
    let mut first_win = None;
    for log2 in [16u32, 18, 20, 22] {
        let n = 1u64 << log2;
        let req: CounterfactualRequest = serde_json::from_value(json!({
            "model": crate::bench::linear_model(30, 1), "outcome": "X29", "samples": n, "seed": 1,
            "threshold": 0.0, "backend": "gpu",
        }))
        .ok()?;
        let t = Instant::now();
        isl_mc::counterfactual(&req, &opts, &CpuBackend::default(), &|| false).ok()?;
        let cpu = t.elapsed();
        let t = Instant::now();
        let answered = matches!(engine.counterfactual(&req, &opts, &|| false), Ok(GpuAnswer::Answered(_)));
        let gpu = t.elapsed();
        info!(samples = n, cpu_ms = cpu.as_secs_f64() * 1e3, gpu_ms = gpu.as_secs_f64() * 1e3, "GPU vs CPU");
        if !answered {
            return None;
        }
        if gpu < cpu {
            first_win.get_or_insert(n);
        } else {
            first_win = None;
            if gpu.as_secs_f64() > 1.5 * cpu.as_secs_f64() && log2 >= 18 {
                break;
            }
        }
    }
    first_win
}

impl McAccelerator for GpuAccelerator {
    fn name(&self) -> &str {
        "gpu"
    }

    fn describe(&self) -> String {
        match self.engine.get() {
            Some(engine) => {
                let a = engine.adapter();
                format!("{} ({}, {})", a.name, a.device_type, a.driver)
            }
            None => "none (no Vulkan adapter, or still opening)".into(),
        }
    }

    fn available(&self) -> bool {
        self.engine.get().is_some() && !self.lost.load(Ordering::Relaxed)
    }

    fn auto_min_samples(&self) -> Option<u64> {
        Some(self.min_samples.load(Ordering::Relaxed)).filter(|&n| n != NEVER)
    }

    fn counterfactual(&self, prepared: &PreparedCounterfactual, stop: &dyn Fn() -> bool) -> AccelOutcome {
        let Some(engine) = self.engine.get() else {
            return AccelOutcome::DeviceError("no GPU is open".into());
        };
        match engine.counterfactual_prepared(prepared, stop) {
            Ok(GpuAnswer::Answered(answer)) => AccelOutcome::Answered(answer),
            Ok(GpuAnswer::Unsupported(why)) => AccelOutcome::Unsupported(why.to_string()),
            Err(GpuError::Request(e)) => AccelOutcome::Failed(e),
            Err(GpuError::Interrupted) => AccelOutcome::Failed(McError::Interrupted),
            Err(e @ GpuError::Device(_)) => {
                // A lost device stays lost: stop offering it.
                self.lost.store(true, Ordering::Relaxed);
                warn!(error = %e, "GPU device error: Monte Carlo moves to the CPU");
                AccelOutcome::DeviceError(e.to_string())
            }
            Err(e) => {
                warn!(error = %e, "GPU run failed: this request runs on the CPU");
                AccelOutcome::DeviceError(e.to_string())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prepared(samples: u64) -> PreparedCounterfactual {
        let req: CounterfactualRequest = serde_json::from_value(json!({
            "model": crate::bench::linear_model(5, 1), "outcome": "X4", "samples": samples, "seed": 2,
            "backend": "gpu",
        }))
        .expect("request");
        PreparedCounterfactual::new(&req, &McOptions::default()).expect("prepared")
    }

    /// A real device destroyed under the accelerator (`wgpu::Device::destroy`): the request gets
    /// a device error (the service answers it on the CPU), and the GPU is no longer offered.
    #[test]
    fn a_lost_device_is_a_device_error_and_marks_the_gpu_unavailable() {
        let engine = match GpuEngine::new() {
            Ok(Some(engine)) => engine,
            other => {
                assert!(std::env::var_os("ISL_REQUIRE_GPU").is_none(), "no GPU adapter: {other:?}");
                eprintln!("SKIP: no Vulkan adapter ({other:?})");
                return;
            }
        };
        let accel = GpuAccelerator::with_engine(engine, Some(1000));
        assert!(accel.available());
        assert_eq!(accel.auto_min_samples(), Some(1000));
        assert!(matches!(accel.counterfactual(&prepared(10_000), &|| false), AccelOutcome::Answered(_)));
        accel.engine().expect("engine").simulate_device_loss();
        match accel.counterfactual(&prepared(10_000), &|| false) {
            AccelOutcome::DeviceError(message) => assert!(message.contains("device"), "{message}"),
            other => panic!("after the device was destroyed: {other:?}"),
        }
        assert!(!accel.available(), "a lost device is not offered again");
    }
}

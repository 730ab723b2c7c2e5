//! Backend choice for the Monte Carlo routes: `auto | cpu | gpu` per request and per server, the
//! resolved backend in the cache key, and the CPU standing in (with a warning, counted) whenever
//! the accelerator cannot answer. The accelerator here is a test double that runs the CPU
//! estimator under another name or reports the failures a device can have; the real GPU is
//! tested against it in `crates/isl-gpu` and end to end in `tests/native_http.rs`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use isl_mc::{CpuBackend, McError, PreparedCounterfactual, SampleEstimator};
use isl_service::{AccelOutcome, Config, McAccelerator, Request, Response, Service, SystemClock};
use serde_json::{Value, json};

const CF: &str = "/v1/counterfactual";

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Answer,
    Unsupported,
    DeviceError,
    Fail,
}

struct TestAccel {
    mode: Mode,
    min_samples: Option<u64>,
    available: AtomicBool,
}

impl McAccelerator for TestAccel {
    fn name(&self) -> &str {
        "gpu"
    }
    fn describe(&self) -> String {
        "test accelerator".into()
    }
    fn available(&self) -> bool {
        self.available.load(Ordering::Relaxed)
    }
    fn auto_min_samples(&self) -> Option<u64> {
        self.min_samples
    }
    fn counterfactual(&self, prepared: &PreparedCounterfactual, stop: &dyn Fn() -> bool) -> AccelOutcome {
        match self.mode {
            Mode::Answer => match prepared.run(&SampleEstimator::new(&CpuBackend::default()), stop) {
                Ok(mut answer) => {
                    answer.backend = "gpu".into();
                    AccelOutcome::Answered(Box::new(answer))
                }
                Err(e) => AccelOutcome::Failed(e),
            },
            Mode::Unsupported => AccelOutcome::Unsupported("600 registers; the limit is 512".into()),
            Mode::DeviceError => AccelOutcome::DeviceError("device lost".into()),
            Mode::Fail => AccelOutcome::Failed(McError::Interrupted),
        }
    }
}

fn service(mode: Mode, min_samples: Option<u64>) -> (Service, Arc<TestAccel>) {
    let accel = Arc::new(TestAccel { mode, min_samples, available: AtomicBool::new(true) });
    let service = Service::with_accelerator(Config::default(), Arc::new(SystemClock::new()), Some(accel.clone()));
    (service, accel)
}

fn model() -> Value {
    json!({"nodes": [
        {"name": "X", "noise": {"dist": "normal", "mean": 1, "std": 2}},
        {"name": "Y", "intercept": 3, "parents": {"X": {"dist": "normal", "mean": 2, "std": 0.1}},
         "noise": {"dist": "normal", "mean": 0, "std": 1}}
    ]})
}

fn ask(s: &Service, extra: Value) -> (Response, Value) {
    let mut body = json!({"model": model(), "outcome": "Y", "samples": 2000});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let r = s.handle(Request::post_json(CF, serde_json::to_vec(&body).unwrap()));
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    (r, v)
}

#[test]
fn without_an_accelerator_everything_runs_on_the_cpu_and_asking_for_the_gpu_says_so() {
    let s = Service::new(Config::default(), Arc::new(SystemClock::new()));
    let (_, auto) = ask(&s, json!({}));
    assert_eq!(auto["backend"], "cpu");
    assert!(auto.get("warnings").is_none(), "{auto}");
    let (r, gpu) = ask(&s, json!({"backend": "gpu"}));
    assert_eq!(r.status, 200);
    assert_eq!(gpu["backend"], "cpu");
    assert!(gpu["warnings"][0].as_str().unwrap().contains("none is available"), "{gpu}");
    // Same random stream whatever the backend asked for: only the warning differs.
    assert_eq!((auto["mean"].clone(), auto["seed"].clone()), (gpu["mean"].clone(), gpu["seed"].clone()));
    assert_eq!(s.mc_backend_runs("cpu", "fallback"), 1);
    let (r, _) = ask(&s, json!({"backend": "tpu"}));
    assert_eq!(r.status, 422, "unknown backend names are bad input");
}

#[test]
fn auto_sends_large_runs_to_an_accelerator_and_the_choice_is_in_the_etag() {
    let (s, accel) = service(Mode::Answer, Some(10_000));
    let (small_r, small) = ask(&s, json!({}));
    assert_eq!(small["backend"], "cpu", "2,000 samples are under the threshold");
    let (large_r, large) = ask(&s, json!({"samples": 20_000}));
    assert_eq!(large["backend"], "gpu");
    assert_ne!(small_r.header("etag"), large_r.header("etag"));
    // Forcing a backend: the same question under two backends has two tags and one seed.
    let (cpu_r, cpu) = ask(&s, json!({"samples": 20_000, "backend": "cpu"}));
    assert_eq!(cpu["backend"], "cpu");
    assert_ne!(cpu_r.header("etag"), large_r.header("etag"));
    assert_eq!(cpu["seed"], large["seed"]);
    // `auto` resolving to the GPU and asking for the GPU are the same canonical request.
    let (gpu_r, _) = ask(&s, json!({"samples": 20_000, "backend": "gpu"}));
    assert_eq!(gpu_r.header("etag"), large_r.header("etag"));
    assert_eq!(gpu_r.header("x-cache"), Some("hit"));
    // An accelerator that is gone (device lost) is not chosen by `auto`.
    accel.available.store(false, Ordering::Relaxed);
    let (_, after) = ask(&s, json!({"samples": 30_000}));
    assert_eq!(after["backend"], "cpu");
    assert!(after.get("warnings").is_none());
    assert_eq!(s.mc_backend_runs("gpu", "answered"), 1);
}

#[test]
fn an_accelerator_slower_than_the_cpu_is_never_chosen_by_auto() {
    let (s, _) = service(Mode::Answer, None);
    let (_, v) = ask(&s, json!({"samples": 1_000_000}));
    assert_eq!(v["backend"], "cpu");
    let (_, v) = ask(&s, json!({"backend": "gpu"}));
    assert_eq!(v["backend"], "gpu", "asking for it still uses it");
}

#[test]
fn unsupported_requests_and_device_errors_fall_back_to_the_cpu_with_a_warning_and_are_counted() {
    for (mode, outcome, words) in [
        (Mode::Unsupported, "unsupported", "cannot run this request (600 registers"),
        (Mode::DeviceError, "device_error", "failed (device lost)"),
    ] {
        let (s, _) = service(mode, Some(1));
        let (r, v) = ask(&s, json!({}));
        assert_eq!(r.status, 200);
        assert_eq!(v["backend"], "cpu");
        assert!(v["warnings"][0].as_str().unwrap().contains(words), "{v}");
        assert_eq!(s.mc_backend_runs("gpu", outcome), 1);
        assert_eq!(s.mc_backend_runs("cpu", "fallback"), 1);
        let metrics =
            String::from_utf8(s.handle(Request::new(isl_service::Method::Get, "/metrics")).body.to_vec()).unwrap();
        assert!(
            metrics.contains(&format!("isl_mc_backend_runs_total{{backend=\"gpu\",outcome=\"{outcome}\"}} 1")),
            "{metrics}"
        );
        // The answer is the CPU's, byte for byte apart from the warning.
        let (_, cpu) = ask(&s, json!({"backend": "cpu"}));
        assert_eq!((v["mean"].clone(), v["quantiles"].clone()), (cpu["mean"].clone(), cpu["quantiles"].clone()));
    }
}

#[test]
fn the_request_s_own_errors_on_the_accelerator_are_the_cpu_s_errors() {
    let (s, _) = service(Mode::Fail, Some(1));
    let (r, v) = ask(&s, json!({}));
    assert_eq!(r.status, 504, "{v}");
    assert_eq!(v["error"]["code"], "deadline_exceeded");
    // Bad input never reaches the accelerator: it is checked first, as on the CPU.
    let (r, v) = ask(&s, json!({"outcome": "Nope"}));
    assert_eq!(r.status, 422);
    assert_eq!(v["error"]["code"], "unknown_node");
}

#[test]
fn health_names_the_accelerator() {
    let (s, _) = service(Mode::Answer, Some(1));
    let h: Value = serde_json::from_slice(&s.handle(Request::new(isl_service::Method::Get, "/health")).body).unwrap();
    assert_eq!(h["mc_backends"]["default"], "auto");
    assert_eq!(h["mc_backends"]["accelerator"]["name"], "gpu");
    assert_eq!(h["mc_backends"]["accelerator"]["hardware"], "test accelerator");
}

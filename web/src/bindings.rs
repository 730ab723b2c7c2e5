//! The JavaScript interface (wasm32 only): `new Isl()`, `isl.handle(...)`, `isl.runMc(...)`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use isl_service::{Clock, Response};
use js_sys::{Array, Function, Object, Reflect};
use wasm_bindgen::prelude::*;

use crate::{Engine, Histogram, Progress};

#[wasm_bindgen]
extern "C" {
    /// `performance.now()`: milliseconds, monotonic (windows and workers alike).
    #[wasm_bindgen(js_namespace = performance, js_name = now)]
    fn performance_now() -> f64;
}

/// The page's clock: `performance.now()` in nanoseconds, never decreasing.
struct PerformanceClock {
    last: AtomicU64,
}

impl Clock for PerformanceClock {
    fn now_nanos(&self) -> u64 {
        let ms = performance_now();
        let now = if ms.is_finite() && ms > 0.0 { (ms * 1e6) as u64 } else { 0 };
        self.last.fetch_max(now, Ordering::Relaxed).max(now)
    }
}

/// isl in the page: the service the server runs, answering in-process.
#[wasm_bindgen]
pub struct Isl {
    engine: Engine,
}

impl Default for Isl {
    fn default() -> Self {
        Self::new()
    }
}

fn set(target: &Object, key: &str, value: &JsValue) {
    // Setting a plain data property on a fresh object cannot fail.
    let _ = Reflect::set(target, &JsValue::from_str(key), value);
}

/// `{status, headers: [[name, value], ...], body}` with the body as text (every isl body is
/// UTF-8: JSON, Prometheus text).
fn response_object(resp: &Response) -> Object {
    let out = Object::new();
    set(&out, "status", &JsValue::from(resp.status));
    let headers = Array::new();
    for (name, value) in &resp.headers {
        headers.push(&Array::of2(&JsValue::from_str(name), &JsValue::from_str(value)));
    }
    set(&out, "headers", &headers);
    set(&out, "body", &JsValue::from_str(&String::from_utf8_lossy(&resp.body)));
    out
}

fn histogram_object(h: &Histogram) -> Object {
    let out = Object::new();
    set(&out, "lo", &JsValue::from(h.lo));
    set(&out, "hi", &JsValue::from(h.hi));
    let counts = Array::new();
    for c in &h.counts {
        counts.push(&JsValue::from(*c));
    }
    set(&out, "counts", &counts);
    set(&out, "below", &JsValue::from(h.below));
    set(&out, "above", &JsValue::from(h.above));
    set(&out, "recorded", &JsValue::from(h.recorded as f64));
    set(&out, "samplesUsed", &JsValue::from(h.samples_used as f64));
    out
}

#[wasm_bindgen]
impl Isl {
    /// A service with the server's defaults, timed by `performance.now()`.
    #[wasm_bindgen(constructor)]
    pub fn new() -> Isl {
        Isl { engine: Engine::new(Arc::new(PerformanceClock { last: AtomicU64::new(0) })) }
    }

    /// The service version (`isl-service/x.y.z`).
    pub fn version() -> String {
        isl_service::SERVICE_VERSION.to_string()
    }

    /// Answers one request as the server would: `{status, headers, body}`. `query` is the query
    /// string without `?` (`q=...` for GET), `contentType` the request's `Content-Type`.
    pub fn handle(
        &self,
        method: &str,
        path: &str,
        query: Option<String>,
        content_type: Option<String>,
        body: &[u8],
    ) -> JsValue {
        response_object(&self.engine.handle(method, path, query.as_deref(), content_type.as_deref(), body.to_vec()))
            .into()
    }

    /// POSTs `body` to a Monte Carlo route, calling `progress(done, total)` as samples are drawn
    /// (`total` 0 when unknown): `{status, headers, body, histogram}` (`histogram` for a
    /// counterfactual answered 200, else null).
    #[wasm_bindgen(js_name = runMc)]
    pub fn run_mc(&self, path: &str, body: &[u8], progress: &Function) -> JsValue {
        let mut report = |p: Progress| {
            // A throwing callback must not stop the run; its exception is dropped.
            let _ = progress.call2(&JsValue::NULL, &JsValue::from(p.done as f64), &JsValue::from(p.total as f64));
        };
        let run = self.engine.run_mc(path, body, &mut report);
        let out = response_object(&run.response);
        let histogram = run.histogram.as_ref().map_or(JsValue::NULL, |h| histogram_object(h).into());
        set(&out, "histogram", &histogram);
        out.into()
    }
}

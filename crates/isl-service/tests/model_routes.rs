//! The model routes through `Service::handle`: without a runtime (the edge component, the
//! browser) they answer 503 `models_unavailable`; with one, the service decodes, canonicalises
//! (through the runtime), caches, tags and times them like every route, and maps the runtime's
//! failures to their status and headers. The runtime here is a small deterministic stand-in;
//! the real one (isl-models) is exercised end to end in tests/models_http.rs.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use isl_service::{
    Config, ManualClock, ModelAnswer, ModelFailure, ModelRoute, ModelRuntime, Request, Response, Service,
};
use serde_json::{Value, json};

/// Echoes the text count; canonicalises by filling `model`; fails on demand.
struct Echo {
    answered: AtomicUsize,
    fingerprint: String,
}

impl ModelRuntime for Echo {
    fn fingerprint(&self) -> String {
        self.fingerprint.clone()
    }
    fn canonical(&self, route: ModelRoute, mut request: Value) -> Result<Value, ModelFailure> {
        let Some(obj) = request.as_object_mut() else { return Err(ModelFailure::invalid_request("not an object")) };
        if route == ModelRoute::Embed && !obj.get("texts").is_some_and(Value::is_array) {
            return Err(ModelFailure::invalid_request("texts: missing"));
        }
        obj.entry("model").or_insert(json!("default-model"));
        Ok(request)
    }
    fn answer(&self, route: ModelRoute, canonical: &Value, budget: Duration) -> Result<ModelAnswer, ModelFailure> {
        assert!(budget > Duration::ZERO && budget <= Duration::from_secs(10), "{budget:?}");
        if canonical["texts"][0] == "busy" {
            return Err(ModelFailure {
                status: 429,
                code: "overloaded",
                message: "queue full".into(),
                details: json!({"capacity": 1}),
                retry_after_secs: Some(1),
            });
        }
        self.answered.fetch_add(1, Ordering::SeqCst);
        let body = serde_json::to_vec(&json!({"route": route.path(), "model": canonical["model"], "n": canonical["texts"].as_array().map(Vec::len)})).unwrap();
        Ok(ModelAnswer { body, stages: vec![("embed", 1.5), ("nli", 2.25)] })
    }
    fn health(&self) -> Value {
        json!({"models": ["default-model"]})
    }
    fn ready(&self) -> bool {
        true
    }
}

fn with_runtime(fingerprint: &str) -> (Service, Arc<Echo>) {
    let echo = Arc::new(Echo { answered: AtomicUsize::new(0), fingerprint: fingerprint.into() });
    let runtime: Arc<dyn ModelRuntime> = echo.clone();
    let s = Service::builder(Config::default(), Arc::new(ManualClock::new(0))).models(Some(runtime)).build();
    (s, echo)
}

fn post(s: &Service, path: &str, body: &Value) -> Response {
    s.handle(Request::post_json(path, serde_json::to_vec(body).unwrap()))
}

fn code(r: &Response) -> String {
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    v["error"]["code"].as_str().unwrap_or("").to_string()
}

#[test]
fn without_a_runtime_model_routes_exist_and_answer_503() {
    let s = Service::new(Config::default(), Arc::new(ManualClock::new(0)));
    for route in ModelRoute::ALL {
        assert!(s.compute_paths().contains(&route.path()));
        let r = post(&s, route.path(), &json!({"texts": ["a"]}));
        assert_eq!((r.status, code(&r).as_str()), (503, "models_unavailable"), "{}", route.path());
        assert_eq!(r.header("cache-control"), Some("no-store"));
        // Malformed JSON is still the client's 400 first.
        let r = s.handle(Request::post_json(route.path(), "{"));
        assert_eq!(r.status, 400);
    }
    let h: Value = serde_json::from_slice(&s.handle(Request::new(isl_service::Method::Get, "/health")).body).unwrap();
    assert_eq!(h["models"], Value::Null);
}

#[test]
fn model_answers_are_canonicalised_cached_tagged_and_timed() {
    let (s, echo) = with_runtime("engine-1");
    let a = post(&s, "/v1/embed", &json!({"texts": ["x", "y"]}));
    assert_eq!((a.status, a.header("x-cache")), (200, Some("miss")));
    let timing = a.header("server-timing").unwrap();
    assert!(timing.contains("embed;dur=1.500") && timing.contains("nli;dur=2.250"), "{timing}");
    // The default filled in by the runtime makes this the same question: a hit, same ETag.
    let b = post(&s, "/v1/embed", &json!({"texts": ["x", "y"], "model": "default-model"}));
    assert_eq!((b.status, b.header("x-cache"), b.header("etag")), (200, Some("hit"), a.header("etag")));
    assert_eq!(a.body, b.body);
    assert_eq!(echo.answered.load(Ordering::SeqCst), 1);
    // Another route, same body: another answer.
    let c = post(&s, "/v1/nli", &json!({"texts": ["x", "y"]}));
    assert_ne!(c.header("etag"), a.header("etag"));
    // Another runtime fingerprint (other model files): another ETag for the same request.
    let (s2, _) = with_runtime("engine-2");
    let d = post(&s2, "/v1/embed", &json!({"texts": ["x", "y"]}));
    assert_eq!(d.body, a.body);
    assert_ne!(d.header("etag"), a.header("etag"));
}

#[test]
fn runtime_failures_keep_their_status_code_and_retry_after() {
    let (s, _) = with_runtime("engine-1");
    let r = post(&s, "/v1/embed", &json!({"model": "m"}));
    assert_eq!((r.status, code(&r).as_str()), (422, "invalid_request"));
    let r = post(&s, "/v1/embed", &json!({"texts": ["busy"]}));
    assert_eq!((r.status, code(&r).as_str(), r.header("retry-after")), (429, "overloaded", Some("1")));
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["error"]["details"]["capacity"], 1);
    // Failures are not cached: the next identical request reaches the runtime again.
    let r = post(&s, "/v1/embed", &json!({"texts": ["busy"]}));
    assert_eq!(r.status, 429);
    assert_eq!(s.request_count("/v1/embed", 429), 2);
    let h: Value = serde_json::from_slice(&s.handle(Request::new(isl_service::Method::Get, "/health")).body).unwrap();
    assert_eq!(h["models"]["models"][0], "default-model");
}

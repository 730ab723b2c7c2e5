//! isl at the edge: a Spin HTTP component that adapts `wasi:http` requests to
//! [`isl_service::Request`] and back. Everything else — routing, limits, canonical requests,
//! ETags, `Cache-Control`, errors — is `isl-service`, so the component answers byte for byte
//! like the native server.
//!
//! Build: `cargo build -p isl-edge --target wasm32-wasip2 --profile edge` (what `spin build`
//! runs, see `spin.toml`). The component imports only standard WASI 0.2 interfaces.
//!
//! With the `models` feature (`cargo build -p isl-edge --features models --target wasm32-wasip2
//! --profile edge-models`) the component also answers the model routes, with isl-models (tract
//! and the tokenizer compiled to wasm) over the model files the host provides as a read-only
//! preopened directory — `/models`, or `ISL_MODELS_DIR` — through `wasi:filesystem`, still a
//! standard WASI import. A fresh instance loads the models a request needs, so each such
//! request pays the load (see models/README.md); `ISL_MODELS_VERIFIED=1` tells the component
//! the host already checked the files' sha256 (`isl edge --models-dir` does at start), which
//! skips the check per instance. Without the feature the model routes answer 503
//! `models_unavailable`.

use std::sync::{Arc, OnceLock};

use isl_service::{Config, Method, Request, Service, SystemClock};
use spin_sdk::http::{self as spin_http, IntoResponse};
use spin_sdk::http_component;

/// One service per instance. Hosts instantiate per request, so an in-instance response cache
/// would be built (its tables allocated and zeroed) for every request and never hit: the
/// component runs without one. Caching at the edge is the host's tier (`isl edge` keeps
/// answers by request bytes) and the CDN in front (ETag, `Cache-Control`). Everything that
/// shapes an answer is `Config::default()`, as on the native server.
fn service() -> &'static Service {
    static SERVICE: OnceLock<Service> = OnceLock::new();
    SERVICE.get_or_init(|| {
        let mut config = Config::default();
        config.cache.capacity_bytes = 0;
        config.cache.memo_entries = 0;
        Service::builder(config, Arc::new(SystemClock::new())).models(models()).build()
    })
}

/// The model runtime: isl-models over the host's model directory.
#[cfg(feature = "models")]
fn models() -> Option<Arc<dyn isl_service::ModelRuntime>> {
    use isl_models::{ModelLimits, Registry, RegistryConfig, service::RegistryRuntime};
    let dir = std::env::var_os("ISL_MODELS_DIR").filter(|d| !d.is_empty()).unwrap_or_else(|| "/models".into());
    let mut config = RegistryConfig::new(dir);
    // One instance answers one request: a plan per shape would never be reused.
    config.embedding_plan = isl_models::PlanMode::Symbolic;
    config.verify_sha256 = std::env::var_os("ISL_MODELS_VERIFIED").is_none_or(|v| v != "1");
    Some(Arc::new(RegistryRuntime::new(Registry::new(config), ModelLimits::default())))
}

/// Without the `models` feature the component carries no inference engine.
#[cfg(not(feature = "models"))]
fn models() -> Option<Arc<dyn isl_service::ModelRuntime>> {
    None
}

fn method(m: &spin_http::Method) -> Method {
    match m {
        spin_http::Method::Get => Method::Get,
        spin_http::Method::Head => Method::Head,
        spin_http::Method::Post => Method::Post,
        spin_http::Method::Put => Method::Put,
        spin_http::Method::Delete => Method::Delete,
        spin_http::Method::Patch => Method::Patch,
        spin_http::Method::Options => Method::Options,
        spin_http::Method::Connect => Method::Other("CONNECT".into()),
        spin_http::Method::Trace => Method::Other("TRACE".into()),
        spin_http::Method::Other(other) => Method::Other(other.clone()),
    }
}

/// Whether the host turned the debug routes on (`ISL_EDGE_DEBUG_ROUTES=1` in the component's
/// environment; `isl edge --debug-routes` does). Off everywhere else.
fn debug_routes() -> bool {
    std::env::var_os("ISL_EDGE_DEBUG_ROUTES").is_some_and(|v| v == "1")
}

/// `/__debug/trap`: executes `unreachable`, a real trap, so tests can check that the host turns
/// a trapping instance into a JSON 500, counts it, and keeps serving.
fn trap() -> ! {
    #[cfg(target_arch = "wasm32")]
    core::arch::wasm32::unreachable();
    #[cfg(not(target_arch = "wasm32"))]
    panic!("/__debug/trap");
}

/// The component's entry point: one request in, one response out.
#[http_component]
fn handle(req: spin_http::Request) -> anyhow::Result<impl IntoResponse> {
    if req.path() == "/__debug/trap" && debug_routes() {
        trap();
    }
    let mut request = Request::new(method(req.method()), req.path());
    if !req.query().is_empty() {
        request = request.with_query(req.query());
    }
    for (name, value) in req.headers() {
        request = request.with_header(name, String::from_utf8_lossy(value.as_bytes()).into_owned());
    }
    let request = request.with_body(req.into_body());
    let response = service().handle(request);
    let mut builder = spin_http::Response::builder();
    builder.status(response.status);
    for (name, value) in &response.headers {
        builder.header(name.as_str(), value.as_str());
    }
    Ok(builder.body(response.body.to_vec()).build())
}

//! The [`Service`]: one `Request -> Response` function over routing, decoding, limits, caching,
//! ETags and metrics.

use std::borrow::Cow;
use std::sync::Arc;

use bytes::Bytes;
use serde_json::json;
use xxhash_rust::xxh3::Xxh3;

use crate::accel::McAccelerator;
use crate::batch::{BATCH, BatchRequest};
use crate::cache::{Entry, Lookup, ResponseCache};
use crate::clock::Clock;
use crate::config::Config;
use crate::endpoint::{ComputeContext, Computed, Prepared, Route, compute_routes};
use crate::error::ServiceError;
use crate::http::{Method, Request, Response};
use crate::metrics::{Metrics, UNMATCHED};
use crate::models::ModelRuntime;
use crate::openapi::OPENAPI_JSON;
use crate::query::decode_query;
use crate::router::{OPERATIONAL, Target};

/// Version of the service layer; part of every cache key and ETag (bump when response encoding
/// or canonicalisation changes).
pub const SERVICE_VERSION: &str = concat!("isl-service/", env!("CARGO_PKG_VERSION"));

/// The service: configuration, injected clock, route table, response cache and metrics.
/// `Send + Sync`: one instance serves every thread of a transport.
pub struct Service {
    config: Config,
    clock: Arc<dyn Clock>,
    routes: Vec<Box<dyn Route>>,
    cache: ResponseCache,
    dags: Arc<crate::dag_cache::DagCache>,
    metrics: Metrics,
    started_nanos: u64,
    key_prefix: Vec<u8>,
    /// The attached accelerator, for `/health`.
    accelerator: Option<Arc<dyn McAccelerator>>,
    /// The attached model runtime, for `/health`.
    models: Option<Arc<dyn ModelRuntime>>,
    /// Parts the host runs itself, for `/health` and `/metrics`.
    extensions: Vec<Arc<dyn crate::models::HostExtension>>,
}

/// Builds a [`Service`] with the optional parts a host attaches.
pub struct ServiceBuilder {
    config: Config,
    clock: Arc<dyn Clock>,
    accelerator: Option<Arc<dyn McAccelerator>>,
    models: Option<Arc<dyn ModelRuntime>>,
    extensions: Vec<Arc<dyn crate::models::HostExtension>>,
}

impl ServiceBuilder {
    /// Adds a part the host answers itself, shown in `/health` and `/metrics`.
    pub fn extension(mut self, ext: Arc<dyn crate::models::HostExtension>) -> Self {
        self.extensions.push(ext);
        self
    }

    /// Monte Carlo may also use `accel` (the native host's GPU), as `config.mc_backend` and each
    /// request's `backend` say.
    pub fn accelerator(mut self, accel: Option<Arc<dyn McAccelerator>>) -> Self {
        self.accelerator = accel;
        self
    }

    /// The model routes run on `models` (without one they answer 503 `models_unavailable`).
    pub fn models(mut self, models: Option<Arc<dyn ModelRuntime>>) -> Self {
        self.models = models;
        self
    }

    /// The service.
    pub fn build(self) -> Service {
        Service::build(self)
    }
}

#[derive(Default)]
struct Timings {
    decode: u64,
    compute: u64,
    encode: u64,
    cache: u64,
    stages: Vec<(&'static str, f64)>,
}

impl Timings {
    fn header_value(&self) -> String {
        let ms = |ns: u64| ns as f64 / 1e6;
        let mut value = format!(
            "decode;dur={:.3}, compute;dur={:.3}, encode;dur={:.3}, cache;dur={:.3}",
            ms(self.decode),
            ms(self.compute),
            ms(self.encode),
            ms(self.cache)
        );
        for (name, dur) in &self.stages {
            value.push_str(&format!(", {name};dur={dur:.3}"));
        }
        value
    }
}

impl Service {
    /// A service with `config`, reading time from `clock`; Monte Carlo on the CPU.
    pub fn new(config: Config, clock: Arc<dyn Clock>) -> Service {
        Service::with_accelerator(config, clock, None)
    }

    /// A service whose Monte Carlo routes may also use `accel` (the native host's GPU), as
    /// `config.mc_backend` and each request's `backend` say.
    pub fn with_accelerator(config: Config, clock: Arc<dyn Clock>, accel: Option<Arc<dyn McAccelerator>>) -> Service {
        Service::builder(config, clock).accelerator(accel).build()
    }

    /// A builder for a service with an accelerator and/or a model runtime.
    pub fn builder(config: Config, clock: Arc<dyn Clock>) -> ServiceBuilder {
        ServiceBuilder { config, clock, accelerator: None, models: None, extensions: Vec::new() }
    }

    fn build(parts: ServiceBuilder) -> Service {
        let ServiceBuilder { config, clock, accelerator, models, extensions } = parts;
        let dags = Arc::new(crate::dag_cache::DagCache::new(config.cache.dag_bytes, config.cache.dag_memo_entries));
        let routes = compute_routes(accelerator.clone(), models.clone(), dags.clone());
        let mut labels: Vec<&'static str> = routes.iter().map(|r| r.path()).collect();
        labels.push(BATCH);
        labels.extend(OPERATIONAL.iter().map(|(p, _)| *p));
        // Everything besides the request that can change an answer goes into the key.
        // (Monte Carlo options all shape answers — defaults are filled into the canonical request,
        // but importance-sampling and adaptive settings are not — so all of them go in.)
        let key_prefix = format!(
            "{SERVICE_VERSION}\0{}\0frontdoor_budget={}\0{}\0{:?}\0{}\0{:?}\0",
            isl_causal::ENGINE_VERSION,
            config.causal.frontdoor_budget,
            isl_mc::ENGINE_VERSION,
            config.mc,
            isl_elicit::ENGINE_VERSION,
            config.elicit
        )
        .into_bytes();
        Service {
            cache: ResponseCache::new(&config.cache),
            dags,
            metrics: Metrics::new(&labels),
            started_nanos: clock.now_nanos(),
            config,
            clock,
            routes,
            key_prefix,
            accelerator,
            models,
            extensions,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The paths of the compute routes, and `/v1/batch` (which takes compute requests the same
    /// ways: POST, or GET with `?q=`).
    pub fn compute_paths(&self) -> Vec<&'static str> {
        let mut paths: Vec<&'static str> = self.routes.iter().map(|r| r.path()).collect();
        paths.push(BATCH);
        paths
    }

    /// Answers one request. Never panics on request input; every failure is a JSON error.
    pub fn handle(&self, req: Request) -> Response {
        let t0 = self.clock.now_nanos();
        let (label, resp) = self.dispatch(&req, t0);
        self.metrics.record(label, resp.status, self.clock.now_nanos().saturating_sub(t0));
        resp
    }

    /// For transports that refuse a request themselves (429 overloaded, 413 while reading the
    /// body): counts it in the metrics under the route of `path` and renders the error response.
    pub fn reject(&self, path: &str, error: &ServiceError) -> Response {
        let resp = error.to_response();
        self.metrics.record(self.route_label(path), resp.status, 0);
        resp
    }

    /// The metrics label of a path: the route path, or `unmatched`.
    pub fn route_label(&self, path: &str) -> &'static str {
        self.target(path).map(|(label, _)| label).unwrap_or(UNMATCHED)
    }

    /// Requests answered so far with `status` on the route of `path`.
    pub fn request_count(&self, path: &str, status: u16) -> u64 {
        self.metrics.count(self.route_label(path), status)
    }

    /// Monte Carlo runs counted for (`backend`, `outcome`); see [`Metrics::backend_run`].
    pub fn mc_backend_runs(&self, backend: &str, outcome: &str) -> u64 {
        self.metrics.backend_runs(backend, outcome)
    }

    /// Cache counters and size.
    pub fn cache_snapshot(&self) -> crate::cache::CacheSnapshot {
        self.cache.snapshot()
    }

    /// DAG cache counters and size.
    pub fn dag_cache_snapshot(&self) -> crate::dag_cache::DagCacheSnapshot {
        self.dags.snapshot()
    }

    /// The Prometheus text exposition.
    pub fn metrics_text(&self) -> String {
        let uptime = self.uptime_secs();
        let mut text = self.metrics.render(
            &self.cache.snapshot(),
            &self.dags.snapshot(),
            uptime,
            &[("engine_version", isl_causal::ENGINE_VERSION), ("service_version", SERVICE_VERSION)],
        );
        for ext in &self.extensions {
            text.push_str(&ext.metrics_text());
        }
        text
    }

    /// A fresh cached body stored under `key` by [`Self::cache_put`] (for answers a host
    /// computes itself, such as generated text), counted as a cache hit.
    pub fn cache_get(&self, key: u128) -> Option<Bytes> {
        self.cache.get_fresh(key, self.clock.now_nanos()).map(|e| e.body)
    }

    /// Stores `body` under `key` in the response cache (bounded by the cache's bytes and TTL).
    pub fn cache_put(&self, key: u128, body: Bytes) {
        self.cache.insert(key, Entry { body, inserted_nanos: self.clock.now_nanos() });
    }

    fn uptime_secs(&self) -> f64 {
        self.clock.now_nanos().saturating_sub(self.started_nanos) as f64 / 1e9
    }

    fn target(&self, path: &str) -> Option<(&'static str, Target)> {
        if let Some(i) = self.routes.iter().position(|r| r.path() == path) {
            return Some((self.routes[i].path(), Target::Compute(i)));
        }
        if path == BATCH {
            return Some((BATCH, Target::Batch));
        }
        OPERATIONAL.iter().find(|(p, _)| *p == path).copied()
    }

    fn dispatch(&self, req: &Request, t0: u64) -> (&'static str, Response) {
        let Some((label, target)) = self.target(&req.path) else {
            return (UNMATCHED, ServiceError::NotFound { path: req.path.clone() }.to_response());
        };
        let result = target.check_method(req).and_then(|()| match target {
            Target::Compute(i) => self.compute(self.routes[i].as_ref(), req, t0),
            Target::Health => Ok(self.health()),
            Target::Metrics => Ok(Response::new(200)
                .with_header("content-type", "text/plain; version=0.0.4; charset=utf-8")
                .with_header("cache-control", "no-store")
                .with_body(self.metrics_text())),
            Target::OpenApi => Ok(Response::json(200, Bytes::from_static(OPENAPI_JSON.as_bytes()))
                .with_header("cache-control", "public, max-age=3600")),
            Target::CacheClear => self.cache_clear(req),
            Target::Batch => self.batch(req),
        });
        let mut resp = result.unwrap_or_else(|e| e.to_response());
        if req.method == Method::Head {
            resp.body = Bytes::new();
        }
        (label, resp)
    }

    /// Whether `req` is a `POST /v1/batch` asking for NDJSON, whose item lines a streaming
    /// transport can send as each item finishes ([`Service::handle_batch_stream`]).
    pub fn is_streamed_batch(&self, req: &Request) -> bool {
        req.path == BATCH && req.method == Method::Post && accepts_ndjson(req)
    }

    /// Answers an NDJSON `/v1/batch` for a transport that streams: `head` gets the 200 head
    /// (status and headers, empty body) before the first item runs, then `line` gets each
    /// item's JSON line (newline included) as the item finishes, in completion order. A batch
    /// refused before any item runs (bad JSON, a cycle, too many items) is `Err` with the error
    /// response, and neither callback is called. Counted in the metrics like [`Service::handle`].
    pub fn handle_batch_stream(
        &self,
        req: &Request,
        head: &mut dyn FnMut(Response),
        line: &(dyn Fn(Vec<u8>) + Sync),
    ) -> Result<(), Response> {
        let t0 = self.clock.now_nanos();
        let prepared = Target::Batch.check_method(req).and_then(|()| self.batch_plan(req));
        let (batch, plan) = match prepared {
            Ok(p) => p,
            Err(e) => {
                let resp = e.to_response();
                self.metrics.record(BATCH, resp.status, self.clock.now_nanos().saturating_sub(t0));
                return Err(resp);
            }
        };
        head(
            Response::new(200)
                .with_header("content-type", "application/x-ndjson")
                .with_header("cache-control", "no-store"),
        );
        crate::batch::run(&plan, &|i| {
            let mut bytes = self.batch_item(&batch, i);
            bytes.push(b'\n');
            line(bytes);
        });
        self.metrics.record(BATCH, 200, self.clock.now_nanos().saturating_sub(t0));
        Ok(())
    }

    /// A batch request decoded and planned (ids, dependencies, cycles, limits checked).
    fn batch_plan(&self, req: &Request) -> Result<(BatchRequest, crate::batch::Plan), ServiceError> {
        let raw = self.request_json(req)?;
        let text = std::str::from_utf8(&raw).map_err(|e| ServiceError::InvalidUtf8 { offset: e.valid_up_to() })?;
        let batch: BatchRequest = serde_json::from_str(text).map_err(|e| ServiceError::from_json_error(&e, text))?;
        let plan = crate::batch::plan(&batch, self.config.batch_max_items)?;
        Ok((batch, plan))
    }

    /// Runs item `i` of a batch through its route; its JSON line (without newline).
    fn batch_item(&self, batch: &BatchRequest, i: usize) -> Vec<u8> {
        let item = &batch.items[i];
        let resp = match self.target(&item.route) {
            Some((_, Target::Compute(_))) => {
                let body = serde_json::to_vec(&item.body).unwrap_or_default();
                self.handle(Request::post_json(item.route.clone(), body))
            }
            _ => {
                self.metrics.record(UNMATCHED, 404, 0);
                ServiceError::NotFound { path: item.route.clone() }.to_response()
            }
        };
        crate::batch::item_json(&item.id, &item.route, &resp)
    }

    /// `/v1/batch`: every item through [`Service::handle`] in dependency order (see
    /// [`crate::batch`]); never cached as a whole. With NDJSON the lines come in completion
    /// order in one body (a streaming transport uses [`Service::handle_batch_stream`]).
    fn batch(&self, req: &Request) -> Result<Response, ServiceError> {
        let (batch, plan) = self.batch_plan(req)?;
        let run_item = |i: usize| self.batch_item(&batch, i);
        let done = crate::batch::run(&plan, &run_item);
        let (content_type, body) = if accepts_ndjson(req) {
            let mut body = Vec::new();
            for (_, line) in &done {
                body.extend_from_slice(line);
                body.push(b'\n');
            }
            ("application/x-ndjson", body)
        } else {
            let mut by_index: Vec<Option<&[u8]>> = vec![None; batch.items.len()];
            for (i, line) in &done {
                by_index[*i] = Some(line);
            }
            let mut body = b"{\"items\":[".to_vec();
            for (k, line) in by_index.iter().enumerate() {
                if k > 0 {
                    body.push(b',');
                }
                body.extend_from_slice(line.unwrap_or(b"null"));
            }
            let completed: Vec<&str> = done.iter().map(|(i, _)| batch.items[*i].id.as_str()).collect();
            body.extend_from_slice(b"],\"completed\":");
            body.extend_from_slice(&serde_json::to_vec(&completed).unwrap_or_default());
            body.push(b'}');
            ("application/json", body)
        };
        Ok(Response::new(200)
            .with_header("content-type", content_type)
            .with_header("cache-control", "no-store")
            .with_body(body))
    }

    fn health(&self) -> Response {
        let ready = self.models.as_ref().is_none_or(|m| m.ready()) && self.extensions.iter().all(|e| e.ready());
        let mut body = json!({
            "status": "ok",
            "ready": ready,
            "engine_version": isl_causal::ENGINE_VERSION,
            "service_version": SERVICE_VERSION,
            "uptime_seconds": self.uptime_secs(),
            "mc_backends": {
                "default": self.config.mc_backend.as_str(),
                "accelerator": self.accelerator.as_ref().map(|a| json!({
                    "name": a.name(),
                    "hardware": a.describe(),
                    "available": a.available(),
                    "auto_min_samples": a.auto_min_samples(),
                })),
            },
            "models": self.models.as_ref().map(|m| m.health()),
        });
        for ext in &self.extensions {
            body[ext.name()] = ext.health();
        }
        // Not ready (a requested model warm-up still runs): 503, so load balancers wait.
        let status = if ready { 200 } else { 503 };
        Response::json(status, serde_json::to_vec(&body).unwrap_or_default()).with_header("cache-control", "no-store")
    }

    fn cache_clear(&self, req: &Request) -> Result<Response, ServiceError> {
        let Some(token) = self.config.admin_token.as_deref().filter(|t| !t.is_empty()) else {
            return Err(ServiceError::Unauthorized {
                message: "admin routes are disabled: no admin token is configured",
            });
        };
        let given = req.header("authorization").and_then(|v| {
            let (scheme, credentials) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| credentials.trim())
        });
        match given {
            Some(given) if constant_time_eq(given.as_bytes(), token.as_bytes()) => {
                let cleared = self.cache.clear();
                self.dags.clear();
                let body = serde_json::to_vec(&json!({ "cleared": cleared })).unwrap_or_default();
                Ok(Response::json(200, body).with_header("cache-control", "no-store"))
            }
            Some(_) => Err(ServiceError::Unauthorized { message: "wrong bearer token" }),
            None => Err(ServiceError::Unauthorized { message: "missing bearer token (Authorization: Bearer <token>)" }),
        }
    }

    /// The cache key and ETag value of a canonical request on a route.
    fn cache_key(&self, path: &str, canonical: &[u8]) -> u128 {
        let mut h = Xxh3::new();
        h.update(&self.key_prefix);
        h.update(path.as_bytes());
        h.update(&[0]);
        h.update(canonical);
        h.digest128()
    }

    fn request_json<'r>(&self, req: &'r Request) -> Result<Cow<'r, [u8]>, ServiceError> {
        let limit = self.config.max_body_bytes;
        match req.method {
            Method::Post => {
                let content_type = req.header("content-type");
                if !content_type.is_some_and(is_json) {
                    return Err(ServiceError::UnsupportedMediaType { content_type: content_type.map(str::to_string) });
                }
                if req.body.len() > limit {
                    return Err(ServiceError::PayloadTooLarge { size: req.body.len() as u64, limit: limit as u64 });
                }
                Ok(Cow::Borrowed(&req.body))
            }
            _ => Ok(Cow::Owned(decode_query(req.query.as_deref(), limit)?)),
        }
    }

    fn compute(&self, route: &dyn Route, req: &Request, t0: u64) -> Result<Response, ServiceError> {
        let raw = self.request_json(req)?;
        let cache_control = self.config.cache_control_for(route.path()).header_value();
        // Fast path: these exact bytes were seen before, so their cache key is known and a fresh
        // entry can be served without decoding.
        let raw_key = self.raw_key(route.path(), &raw);
        if let Some(resp) = self.fast_path(raw_key, req, &cache_control, t0) {
            return Ok(resp);
        }
        let text = std::str::from_utf8(&raw).map_err(|e| ServiceError::InvalidUtf8 { offset: e.valid_up_to() })?;
        let prepared = route.prepare(text, &self.config)?;
        let key = self.cache_key(route.path(), prepared.canonical_bytes());
        self.cache.memo_insert(raw_key, key);
        let etag = format!("\"{key:032x}\"");
        if etag_matches(req, &etag) {
            return Ok(not_modified(etag, cache_control));
        }
        let t_decoded = self.clock.now_nanos();
        let mut timings = Timings { decode: t_decoded.saturating_sub(t0), ..Timings::default() };
        let lookup = self.cache.lookup(key, || self.clock.now_nanos());
        let t_looked = self.clock.now_nanos();
        timings.cache = t_looked.saturating_sub(t_decoded);
        let (body, x_cache) = match lookup {
            Lookup::Hit(entry) => (entry.body, "hit"),
            Lookup::Coalesced(entry) => (entry.body, "coalesced"),
            Lookup::Miss(guard) => {
                let body = Bytes::from(self.run(prepared.as_ref(), t0, &mut timings)?);
                let t_insert = self.clock.now_nanos();
                guard.insert(Entry { body: body.clone(), inserted_nanos: t_insert });
                timings.cache += self.clock.now_nanos().saturating_sub(t_insert);
                (body, "miss")
            }
            Lookup::Bypass => (Bytes::from(self.run(prepared.as_ref(), t0, &mut timings)?), "miss"),
        };
        Ok(ok_response(body, etag, cache_control, &timings, x_cache))
    }

    /// The answer for request bytes seen before, without decoding them: 304 when the client's
    /// tag matches, the cached body when it is still fresh, `None` otherwise.
    fn fast_path(&self, raw_key: u128, req: &Request, cache_control: &str, t0: u64) -> Option<Response> {
        let key = self.cache.memo_get(raw_key)?;
        let etag = format!("\"{key:032x}\"");
        if etag_matches(req, &etag) {
            return Some(not_modified(etag, cache_control.to_string()));
        }
        let t_decoded = self.clock.now_nanos();
        let entry = self.cache.get_fresh(key, t_decoded)?;
        let t_looked = self.clock.now_nanos();
        let timings = Timings {
            decode: t_decoded.saturating_sub(t0),
            cache: t_looked.saturating_sub(t_decoded),
            ..Timings::default()
        };
        Some(ok_response(entry.body, etag, cache_control.to_string(), &timings, "hit"))
    }

    /// The compute route, raw-request key and `Cache-Control` value of a request a cache tier
    /// may serve; `None` for anything else (other routes, wrong method, unreadable input).
    fn tier_key(&self, req: &Request) -> Option<(&'static str, u128, String)> {
        let (label, target) = self.target(&req.path)?;
        let Target::Compute(i) = target else { return None };
        target.check_method(req).ok()?;
        let raw = self.request_json(req).ok()?;
        let route = self.routes[i].as_ref();
        Some((label, self.raw_key(route.path(), &raw), self.config.cache_control_for(route.path()).header_value()))
    }

    /// Cache tier for a host that computes elsewhere (the edge host runs every request in a
    /// fresh component instance, whose own cache dies with it): if these exact request bytes
    /// were [remembered](Self::remember) and are still fresh, the response this service's own
    /// fast path would give — the cached body with `x-cache: hit`, or 304 when the client's
    /// `If-None-Match` matches — counted in the metrics. `None` (nothing counted) otherwise.
    pub fn answer_from_cache(&self, req: &Request) -> Option<Response> {
        let t0 = self.clock.now_nanos();
        let (label, raw_key, cache_control) = self.tier_key(req)?;
        let mut resp = self.fast_path(raw_key, req, &cache_control, t0)?;
        if req.method == Method::Head {
            resp.body = Bytes::new();
        }
        self.metrics.record(label, resp.status, self.clock.now_nanos().saturating_sub(t0));
        Some(resp)
    }

    /// Keeps a 200 answer to `req` that was computed elsewhere (by the edge component, which runs
    /// this same service) so [`answer_from_cache`](Self::answer_from_cache) can serve it. Only
    /// compute-route answers carrying the service's ETag are kept; the ETag is the cache key.
    pub fn remember(&self, req: &Request, resp: &Response) {
        if resp.status != 200 || req.method == Method::Head {
            return;
        }
        let Some(key) = resp.header("etag").and_then(parse_etag) else { return };
        let Some((_, raw_key, _)) = self.tier_key(req) else { return };
        self.cache.memo_insert(raw_key, key);
        self.cache.insert(key, Entry { body: resp.body.clone(), inserted_nanos: self.clock.now_nanos() });
    }

    /// Counts a request answered elsewhere (by a component, or refused by the transport).
    pub fn record(&self, path: &str, status: u16, latency_nanos: u64) {
        self.metrics.record(self.route_label(path), status, latency_nanos);
    }

    /// Hash of a route and the exact request bytes, for the raw-request memo.
    fn raw_key(&self, path: &str, raw: &[u8]) -> u128 {
        let mut h = Xxh3::new();
        h.update(b"raw\0");
        h.update(path.as_bytes());
        h.update(&[0]);
        h.update(raw);
        h.digest128()
    }

    fn run(&self, prepared: &dyn Prepared, t0: u64, timings: &mut Timings) -> Result<Vec<u8>, ServiceError> {
        let deadline = t0.saturating_add(self.config.deadline_ms.saturating_mul(1_000_000));
        let clock = self.clock.as_ref();
        let stop = move || clock.now_nanos() >= deadline;
        let ctx =
            ComputeContext { config: &self.config, metrics: &self.metrics, stop: &stop, deadline_nanos: deadline };
        let Computed { body, compute_ns, encode_ns, stages } = prepared.run(&ctx, clock)?;
        timings.compute = compute_ns;
        timings.encode = encode_ns;
        timings.stages = stages;
        Ok(body)
    }
}

fn not_modified(etag: String, cache_control: String) -> Response {
    Response::new(304).with_header("etag", etag).with_header("cache-control", cache_control)
}

fn ok_response(body: Bytes, etag: String, cache_control: String, timings: &Timings, x_cache: &str) -> Response {
    Response::json(200, body)
        .with_header("etag", etag)
        .with_header("cache-control", cache_control)
        .with_header("server-timing", timings.header_value())
        .with_header("x-cache", x_cache)
}

/// Whether the request accepts `application/x-ndjson` (any `Accept` entry).
fn accepts_ndjson(req: &Request) -> bool {
    req.header_values("accept").any(|v| {
        v.split(',').any(|t| t.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case("application/x-ndjson")))
    })
}

/// The cache key inside one of this service's ETags (`"` + 32 hex digits + `"`).
fn parse_etag(etag: &str) -> Option<u128> {
    let hex = etag.strip_prefix('"')?.strip_suffix('"')?;
    if hex.len() != 32 {
        return None;
    }
    u128::from_str_radix(hex, 16).ok()
}

/// Whether a `Content-Type` value is JSON (`application/json`, parameters allowed).
fn is_json(content_type: &str) -> bool {
    content_type.split(';').next().is_some_and(|mt| mt.trim().eq_ignore_ascii_case("application/json"))
}

/// Whether any `If-None-Match` header matches `etag` (`*`, lists, weak comparison).
fn etag_matches(req: &Request, etag: &str) -> bool {
    req.header_values("if-none-match")
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Service>();
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        assert!(is_json("application/json"));
        assert!(is_json("Application/JSON; charset=utf-8"));
        assert!(!is_json("text/plain"));
        assert!(!is_json("application/jsonx"));
    }

    #[test]
    fn etag_lists_and_weak() {
        let e = "\"abc\"";
        let r = |v: &str| Request::new(Method::Get, "/").with_header("If-None-Match", v);
        assert!(etag_matches(&r("\"x\", W/\"abc\""), e));
        assert!(etag_matches(&r("*"), e));
        assert!(!etag_matches(&r("\"abcd\""), e));
        assert!(!etag_matches(&Request::new(Method::Get, "/"), e));
    }

    #[test]
    fn constant_time_compare() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}

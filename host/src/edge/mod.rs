//! `isl edge`: serves the edge component (`edge/`, a `wasi:http` component) with an embedded
//! wasmtime, the way Spin or `wasmtime serve -Scli` would: the component is compiled and
//! pre-instantiated once, every request gets a fresh instance from the pooling allocator, a
//! deadline (epoch interruption) and a memory cap. A request that traps or runs past its
//! deadline gets a JSON error (500 naming the trap, or 504) and the host keeps serving.
//!
//! What a fresh instance cannot keep, the host keeps: the compiled component between starts
//! ([`precompiled`]), a response cache tier and the metrics (the same `isl-service` code the
//! native server runs, fed with the component's answers), and edge counters ([`stats`]).

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use isl_service::{Service, ServiceError, SystemClock};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::{debug, info, warn};
use wasmtime::component::{Linker, ResourceTable};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, StoreLimits, Trap};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

pub mod precompiled;
pub mod stats;

use self::stats::EdgeStats;
use crate::error::HostError;

/// Epoch ticks per second: the deadline's resolution.
const TICKS_PER_SECOND: u64 = 100;

/// Options of `isl edge`.
#[derive(Debug, Clone, clap::Args)]
pub struct EdgeArgs {
    /// The component to serve (built by `cargo build -p isl-edge --target wasm32-wasip2
    /// --profile edge`).
    #[arg(long, env = "ISL_EDGE_COMPONENT", default_value = "target/wasm32-wasip2/edge/isl_edge.wasm")]
    pub component: PathBuf,
    /// Address to listen on (port 0 picks a free port; the bound address is printed).
    #[arg(long, env = "ISL_EDGE_ADDR", default_value = "127.0.0.1:8081")]
    pub addr: String,
    /// Per-request deadline in milliseconds; past it the instance is interrupted (504).
    #[arg(long, env = "ISL_EDGE_DEADLINE_MS", default_value_t = 10_000)]
    pub deadline_ms: u64,
    /// Linear memory cap per instance, in MiB (default 256; 512 with `--models-dir`, since an
    /// instance that loads MiniLM and the NLI model peaks between 256 and 384 MiB).
    #[arg(long, env = "ISL_EDGE_MEMORY_MIB")]
    pub memory_mib: Option<usize>,
    /// Most instances alive at once (pooling allocator slots); requests beyond get 429.
    #[arg(long, env = "ISL_EDGE_MAX_INSTANCES", default_value_t = 64)]
    pub max_instances: u32,
    /// `Retry-After` seconds on a 429.
    #[arg(long, env = "ISL_EDGE_RETRY_AFTER_SECS", default_value_t = 1)]
    pub retry_after_secs: u32,
    /// Host-side response cache in bytes (0 disables it): repeated identical requests are
    /// answered without instantiating the component, as the native server's cache would.
    #[arg(long, env = "ISL_EDGE_CACHE_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub cache_bytes: u64,
    /// Where the compiled component is kept between starts (default: beside the component).
    #[arg(long, env = "ISL_EDGE_PRECOMPILED_DIR")]
    pub precompiled_dir: Option<PathBuf>,
    /// Compile the component at every start; keep no compiled form.
    #[arg(long, env = "ISL_EDGE_NO_PRECOMPILED")]
    pub no_precompiled: bool,
    /// KiB of each pooled memory slot reset by zeroing instead of unmapping between instances
    /// (fewer page faults for the next instance, a memset per request).
    #[arg(long, env = "ISL_EDGE_KEEP_RESIDENT_KIB", default_value_t = 0)]
    pub keep_resident_kib: usize,
    /// A models directory (as `isl serve` and `scripts/fetch-models.sh` use) to hand the
    /// component read-only at `/models`, for a component built with the `models` feature
    /// (`--profile edge-models`). The files' sha256 are checked once here at start; the
    /// instances then skip that check. A component without the feature ignores it.
    #[arg(long, env = "ISL_EDGE_MODELS_DIR")]
    pub models_dir: Option<PathBuf>,
    /// Oversized bodies.
    #[command(flatten)]
    pub drain: crate::cli::DrainArgs,
    /// Enable the component's debug routes (`/__debug/trap` traps on purpose). For tests only.
    #[arg(long, env = "ISL_EDGE_DEBUG_ROUTES", hide = true)]
    pub debug_routes: bool,
}

/// Per-request store data: WASI, WASI HTTP and the memory limiter.
struct RequestState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    limits: StoreLimits,
    hooks: NoOutbound,
}

impl WasiView for RequestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for RequestState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.hooks }
    }
}

/// The component may not make outgoing requests (`allowed_outbound_hosts = []`).
struct NoOutbound;

impl WasiHttpHooks for NoOutbound {
    fn send_request(
        &mut self,
        _request: hyper::http::Request<wasmtime_wasi_http::WasiBody>,
        _options: Option<wasmtime_wasi_http::RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> Box<
        dyn Future<
                Output = Result<
                    (
                        hyper::http::Response<wasmtime_wasi_http::WasiBody>,
                        Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
                    ),
                    wasmtime_wasi_http::Error,
                >,
            > + Send,
    > {
        Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) })
    }
}

/// The compiled, pre-instantiated component, the limits every request runs under, and the
/// host's cache tier and counters.
struct EdgeHost {
    pre: ProxyPre<RequestState>,
    deadline_ticks: u64,
    memory_bytes: usize,
    debug_routes: bool,
    /// The models directory handed to each instance, and whether its files checked out.
    models: Option<ModelsDir>,
    /// The service, run natively beside the component for what a fresh instance cannot keep:
    /// the cache tier (`answer_from_cache`/`remember`) and the metrics.
    tier: Service,
    permits: Semaphore,
    retry_after_secs: u32,
    drain: crate::body::Drain,
    stats: EdgeStats,
}

/// The models directory an instance gets at `/models`.
struct ModelsDir {
    path: PathBuf,
    /// Every file present had its pinned sha256 at start (missing files are reported by the
    /// component as 503 `model_missing`).
    verified: bool,
}

impl ModelsDir {
    /// Checks the files of every model of `registry` once; a changed file is logged and leaves
    /// the check to the instances (which then answer 503 `model_corrupt` for that model).
    fn check(registry: &isl_models::Registry) -> ModelsDir {
        let mut verified = true;
        for name in registry.names() {
            match registry.check_files(&name) {
                Ok(()) => info!(model = %name, "model files checked"),
                Err(e) if e.code() == "model_missing" => warn!(model = %name, "model files missing: {e}"),
                Err(e) => {
                    warn!(model = %name, error = %e, "model files do not check out");
                    verified = false;
                }
            }
        }
        ModelsDir { path: registry.config().dir.clone(), verified }
    }
}

/// How a request run in the component ended, when it gave no response.
enum Failure {
    /// The host could not pass the request in or read the answer out.
    Host(String),
    /// The instance was interrupted at its deadline.
    Deadline,
    /// The instance trapped.
    Trap(String),
}

impl EdgeHost {
    fn load(args: &EdgeArgs) -> Result<(EdgeHost, Engine), HostError> {
        let fail = |what: &str, e: wasmtime::Error| HostError::Edge(format!("{what}: {e:#}"));
        // Every instance opens the models directory: one that is not there would fail every
        // request, so it fails the start instead (before compiling anything).
        if let Some(dir) = args.models_dir.as_ref().filter(|d| !d.is_dir()) {
            return Err(HostError::Edge(format!("--models-dir {}: not a directory", dir.display())));
        }
        let started = Instant::now();
        let default_mib = if args.models_dir.is_some() { 512 } else { 256 };
        let memory_bytes = args.memory_mib.unwrap_or(default_mib).max(1) * 1024 * 1024;
        let slots = args.max_instances.max(1);
        let mut pooling = PoolingAllocationConfig::default();
        pooling
            .total_component_instances(slots)
            .total_core_instances(slots * 4)
            .total_memories(slots * 4)
            .total_tables(slots * 4)
            .max_memory_size(memory_bytes)
            // Reset the first pages of a slot by zeroing rather than unmapping, so the next
            // instance in it does not take a page fault for every page it touches again.
            .linear_memory_keep_resident(args.keep_resident_kib * 1024)
            .table_keep_resident(args.keep_resident_kib * 64);
        let mut config = Config::new();
        config.epoch_interruption(true).allocation_strategy(InstanceAllocationStrategy::Pooling(pooling));
        let engine = Engine::new(&config).map_err(|e| fail("configuring wasmtime", e))?;
        let dir = match (&args.precompiled_dir, args.no_precompiled) {
            (_, true) => None,
            (Some(dir), false) => Some(dir.clone()),
            (None, false) => Some(args.component.parent().map(Path::to_path_buf).unwrap_or_default()),
        };
        let (component, loaded) = precompiled::load(&engine, &args.component, dir.as_deref())?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(|e| fail("linking WASI", e))?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).map_err(|e| fail("linking WASI HTTP", e))?;
        let pre = ProxyPre::new(linker.instantiate_pre(&component).map_err(|e| fail("pre-instantiating", e))?)
            .map_err(|e| fail("the component is not a wasi:http proxy", e))?;
        let load_seconds = started.elapsed().as_secs_f64();
        info!(component = %args.component.display(), how = loaded.as_str(), ready_ms = load_seconds * 1e3, "component ready");
        let deadline_ticks = (args.deadline_ms * TICKS_PER_SECOND).div_ceil(1000).max(1);
        // The component runs `Config::default()`; the tier must agree with it on everything
        // that shapes an answer (Cache-Control, limits), so only its capacity differs.
        let mut tier_config = isl_service::Config::default();
        tier_config.cache.capacity_bytes = args.cache_bytes;
        // With models, the tier canonicalises model requests the way the component does (so it
        // can cache their answers) over the registry whose files were just checked; it never
        // runs a model itself.
        let (models, tier_models) = match &args.models_dir {
            Some(dir) => {
                let registry = isl_models::Registry::new(isl_models::RegistryConfig::new(dir));
                let checked = ModelsDir::check(&registry);
                let runtime = isl_models::service::RegistryRuntime::new(registry, isl_models::ModelLimits::default());
                (Some(checked), Some(Arc::new(runtime) as Arc<dyn isl_service::ModelRuntime>))
            }
            None => (None, None),
        };
        let host = EdgeHost {
            pre,
            deadline_ticks,
            memory_bytes,
            debug_routes: args.debug_routes,
            models,
            tier: Service::builder(tier_config, Arc::new(SystemClock::new())).models(tier_models).build(),
            permits: Semaphore::new(slots as usize),
            retry_after_secs: args.retry_after_secs,
            drain: args.drain.to_drain(),
            stats: EdgeStats::new(loaded.as_str(), load_seconds),
        };
        Ok((host, engine))
    }

    /// Answers one request: from the cache tier when it can, otherwise in a fresh instance.
    async fn handle(&self, req: hyper::Request<Incoming>) -> Result<hyper::Response<HyperOutgoingBody>, Infallible> {
        let started = Instant::now();
        let (parts, body) = req.into_parts();
        let path = parts.uri.path().to_string();
        let Ok(_permit) = self.permits.try_acquire() else {
            let error = ServiceError::Overloaded { retry_after_secs: self.retry_after_secs };
            return Ok(to_hyper(self.tier.reject(&path, &error)));
        };
        if path == "/metrics" && parts.method == hyper::Method::GET {
            let mut resp = self.tier.handle(isl_service::Request::new(isl_service::Method::Get, "/metrics"));
            let mut text = resp.body.to_vec();
            text.extend_from_slice(self.stats.render().as_bytes());
            resp.body = text.into();
            return Ok(to_hyper(resp));
        }
        let limit = self.tier.config().max_body_bytes;
        let body = match crate::body::read(&parts.headers, body, limit, self.drain).await {
            Ok(bytes) => bytes,
            Err(crate::body::BodyError::TooLarge(too_large)) => {
                let mut out = to_hyper(self.tier.reject(&path, &too_large.error));
                if too_large.close {
                    out.headers_mut()
                        .insert(hyper::header::CONNECTION, hyper::header::HeaderValue::from_static("close"));
                }
                return Ok(out);
            }
            Err(crate::body::BodyError::Broken(error)) => return Ok(to_hyper(self.tier.reject(&path, &error))),
        };
        let request = isl_service::Request {
            method: isl_service::Method::parse(parts.method.as_str()),
            path: path.clone(),
            query: parts.uri.query().map(str::to_string),
            headers: parts
                .headers
                .iter()
                .map(|(n, v)| (n.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
                .collect(),
            body: body.clone(),
        };
        if let Some(resp) = self.tier.answer_from_cache(&request) {
            return Ok(to_hyper(resp));
        }
        let hyper_req = hyper::Request::from_parts(parts, Full::new(body).map_err(|never: Infallible| match never {}));
        let resp = match self.run_component(hyper_req).await {
            Ok(resp) => {
                self.tier.remember(&request, &resp);
                resp
            }
            Err(Failure::Host(message)) => ServiceError::Internal(message).to_response(),
            Err(Failure::Deadline) => {
                self.stats.deadline();
                // The same answer the service gives when its own deadline fires.
                ServiceError::Causal(isl_causal::CausalError::Interrupted).to_response()
            }
            Err(Failure::Trap(trap)) => {
                self.stats.trap();
                warn!(%path, %trap, "component trapped");
                ServiceError::ComponentTrap { trap }.to_response()
            }
        };
        self.tier.record(&path, resp.status, started.elapsed().as_nanos() as u64);
        Ok(to_hyper(resp))
    }

    /// Runs one request in a fresh instance and reads its whole answer.
    async fn run_component(
        &self,
        req: hyper::Request<impl hyper::body::Body<Data = Bytes, Error = wasmtime_wasi_http::Error> + Send + 'static>,
    ) -> Result<isl_service::Response, Failure> {
        let limits =
            wasmtime::StoreLimitsBuilder::new().memory_size(self.memory_bytes).trap_on_grow_failure(true).build();
        let mut wasi = WasiCtx::builder();
        wasi.inherit_stderr();
        if self.debug_routes {
            wasi.env("ISL_EDGE_DEBUG_ROUTES", "1");
        }
        if let Some(models) = &self.models {
            wasi.preopened_dir(&models.path, "/models", wasmtime_wasi::FsPerms::ReadOnly)
                .map_err(|e| Failure::Host(format!("opening the models directory: {e:#}")))?;
            wasi.env("ISL_MODELS_DIR", "/models");
            if models.verified {
                wasi.env("ISL_MODELS_VERIFIED", "1");
            }
        }
        let state = RequestState {
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            limits,
            hooks: NoOutbound,
        };
        let mut store = Store::new(self.pre.engine(), state);
        store.limiter(|s| &mut s.limits);
        store.set_epoch_deadline(self.deadline_ticks);
        store.epoch_deadline_trap();
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let prepared = (|| {
            let req = store.data_mut().http().new_incoming_request(Scheme::Http, req)?;
            let out = store.data_mut().http().new_response_outparam(sender)?;
            Ok::<_, wasmtime::Error>((req, out))
        })();
        let (req, out) = prepared.map_err(|e| Failure::Host(format!("passing the request in: {e:#}")))?;
        let pre = self.pre.clone();
        // The instance runs inside this connection's task, like the native handler: driving it
        // and reading its answer together (`join!`) avoids handing the request to another
        // worker thread and waking it, which costs tens of microseconds on small machines.
        let run = async move {
            let started = Instant::now();
            let proxy = pre.instantiate_async(&mut store).await?;
            let instantiated = started.elapsed();
            proxy.wasi_http_incoming_handler().call_handle(&mut store, req, out).await?;
            Ok::<_, wasmtime::Error>(instantiated)
            // `store` is dropped here, and with it the response sender if none was set.
        };
        let answer = async move {
            match receiver.await {
                Ok(Ok(resp)) => {
                    let (parts, body) = resp.into_parts();
                    match body.collect().await {
                        Ok(collected) => Ok((parts, collected.to_bytes())),
                        Err(code) => Err(format!("reading the component's answer: {code:?}")),
                    }
                }
                Ok(Err(code)) => Err(format!("the component answered an error: {code:?}")),
                Err(_) => Err("the component set no response".to_string()),
            }
        };
        let (ran, answer) = tokio::join!(run, answer);
        if let Ok(instantiated) = &ran {
            self.stats.instantiated(instantiated.as_nanos() as u64);
        }
        match (answer, ran) {
            (Ok((parts, body)), Ok(_)) => Ok(from_hyper(parts, body)),
            (Err(message), Ok(_)) => Err(Failure::Host(message)),
            (_, Err(error)) => {
                if error.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
                    return Err(Failure::Deadline);
                }
                Err(Failure::Trap(match error.downcast_ref::<Trap>() {
                    Some(t) => t.to_string(),
                    None => format!("{error:#}"),
                }))
            }
        }
    }
}

/// The component's answer as the service's response type.
fn from_hyper(parts: hyper::http::response::Parts, body: Bytes) -> isl_service::Response {
    let mut resp = isl_service::Response::new(parts.status.as_u16()).with_body(body);
    for (name, value) in &parts.headers {
        resp = resp.with_header(name.as_str(), String::from_utf8_lossy(value.as_bytes()).into_owned());
    }
    resp
}

/// A service response as hyper's.
fn to_hyper(rendered: isl_service::Response) -> hyper::Response<HyperOutgoingBody> {
    let mut resp =
        hyper::Response::new(Full::new(rendered.body).map_err(|never: Infallible| match never {}).boxed_unsync());
    *resp.status_mut() =
        hyper::StatusCode::from_u16(rendered.status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    for (name, value) in &rendered.headers {
        if let (Ok(name), Ok(value)) =
            (hyper::header::HeaderName::try_from(name.as_str()), hyper::header::HeaderValue::try_from(value.as_str()))
        {
            resp.headers_mut().append(name, value);
        }
    }
    resp
}

/// Runs `isl edge` until SIGINT/SIGTERM.
pub fn run(args: EdgeArgs) -> Result<(), HostError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| HostError::io("starting the runtime", e))?;
    runtime.block_on(async move {
        let (host, engine) = EdgeHost::load(&args)?;
        let host = Arc::new(host);
        // The epoch clock: deadlines are counted in its ticks.
        std::thread::spawn(move || {
            loop {
                std::thread::sleep(Duration::from_millis(1000 / TICKS_PER_SECOND));
                engine.increment_epoch();
            }
        });
        let listener = TcpListener::bind(&args.addr)
            .await
            .map_err(|source| HostError::Bind { addr: args.addr.clone(), source })?;
        let local = listener.local_addr().map_err(|e| HostError::io("reading the bound address", e))?;
        {
            use std::io::Write as _;
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "listening on http://{local}").and_then(|()| out.flush());
        }
        info!(addr = %local, "edge host listening");
        let shutdown = crate::serve::shutdown_signal();
        tokio::pin!(shutdown);
        loop {
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(pair) => pair,
                    Err(e) => { warn!(error = %e, "accept failed"); continue; }
                },
                () = &mut shutdown => break,
            };
            let _ = stream.set_nodelay(true);
            let host = host.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let host = host.clone();
                    async move { host.handle(req).await }
                });
                if let Err(e) =
                    http1::Builder::new().keep_alive(true).serve_connection(TokioIo::new(stream), service).await
                {
                    debug!(%peer, error = %e, "connection ended with an error");
                }
            });
        }
        info!("stopped");
        Ok(())
    })
}

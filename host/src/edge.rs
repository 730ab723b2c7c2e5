//! `isl edge`: serves the edge component (`edge/`, a `wasi:http` component) with an embedded
//! wasmtime, the way Spin or `wasmtime serve -Scli` would: the component is compiled and
//! pre-instantiated once, every request gets a fresh instance from the pooling allocator, a
//! deadline (epoch interruption) and a memory cap. A request that traps or runs past its
//! deadline gets a JSON error (500 naming the trap, or 504) and the host keeps serving.

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tracing::{debug, info, warn};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, StoreLimits, Trap};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

use isl_service::ServiceError;

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
    /// Linear memory cap per instance, in MiB.
    #[arg(long, env = "ISL_EDGE_MEMORY_MIB", default_value_t = 256)]
    pub memory_mib: usize,
    /// Most instances alive at once (pooling allocator slots).
    #[arg(long, env = "ISL_EDGE_MAX_INSTANCES", default_value_t = 64)]
    pub max_instances: u32,
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

/// The compiled, pre-instantiated component and the limits every request runs under.
struct EdgeHost {
    pre: ProxyPre<RequestState>,
    deadline_ticks: u64,
    memory_bytes: usize,
}

impl EdgeHost {
    fn load(args: &EdgeArgs) -> Result<(EdgeHost, Engine), HostError> {
        let fail = |what: &str, e: wasmtime::Error| HostError::Edge(format!("{what}: {e:#}"));
        let memory_bytes = args.memory_mib.max(1) * 1024 * 1024;
        let mut pooling = PoolingAllocationConfig::default();
        pooling
            .total_component_instances(args.max_instances.max(1))
            .total_core_instances(args.max_instances.max(1) * 4)
            .total_memories(args.max_instances.max(1) * 4)
            .total_tables(args.max_instances.max(1) * 4)
            .max_memory_size(memory_bytes);
        let mut config = Config::new();
        config.epoch_interruption(true).allocation_strategy(InstanceAllocationStrategy::Pooling(pooling));
        let engine = Engine::new(&config).map_err(|e| fail("configuring wasmtime", e))?;
        let started = std::time::Instant::now();
        let component = Component::from_file(&engine, &args.component)
            .map_err(|e| fail(&format!("loading the component {}", args.component.display()), e))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(|e| fail("linking WASI", e))?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).map_err(|e| fail("linking WASI HTTP", e))?;
        let pre = ProxyPre::new(linker.instantiate_pre(&component).map_err(|e| fail("pre-instantiating", e))?)
            .map_err(|e| fail("the component is not a wasi:http proxy", e))?;
        info!(component = %args.component.display(), compile_ms = started.elapsed().as_millis() as u64, "component ready");
        let deadline_ticks = (args.deadline_ms * TICKS_PER_SECOND).div_ceil(1000).max(1);
        Ok((EdgeHost { pre, deadline_ticks, memory_bytes }, engine))
    }

    /// Runs one request in a fresh instance.
    async fn handle(
        &self,
        req: hyper::Request<hyper::body::Incoming>,
    ) -> Result<hyper::Response<HyperOutgoingBody>, Infallible> {
        let limits =
            wasmtime::StoreLimitsBuilder::new().memory_size(self.memory_bytes).trap_on_grow_failure(true).build();
        let state = RequestState {
            wasi: WasiCtx::builder().inherit_stderr().build(),
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
        let (req, out) = match prepared {
            Ok(parts) => parts,
            Err(e) => return Ok(error_response(ServiceError::Internal(format!("passing the request in: {e:#}")))),
        };
        let pre = self.pre.clone();
        let task = tokio::task::spawn(async move {
            let proxy = pre.instantiate_async(&mut store).await?;
            proxy.wasi_http_incoming_handler().call_handle(&mut store, req, out).await
        });
        match receiver.await {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(code)) => {
                Ok(error_response(ServiceError::Internal(format!("the component answered an error: {code:?}"))))
            }
            Err(_) => {
                let error = match task.await {
                    Ok(Ok(())) => {
                        return Ok(error_response(ServiceError::Internal("the component set no response".into())));
                    }
                    Ok(Err(e)) => e,
                    Err(e) => {
                        return Ok(error_response(ServiceError::Internal(format!("the request task failed: {e}"))));
                    }
                };
                if error.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
                    // The same answer the service gives when its own deadline fires.
                    return Ok(error_response(ServiceError::Causal(isl_causal::CausalError::Interrupted)));
                }
                warn!(error = %format!("{error:#}"), "component trapped");
                let trap = match error.downcast_ref::<Trap>() {
                    Some(t) => t.to_string(),
                    None => format!("{error:#}"),
                };
                Ok(error_response(ServiceError::ComponentTrap { trap }))
            }
        }
    }
}

/// The host's own answer for a request the component could not answer: the service's error
/// rendering, so the JSON is exactly what the service gives for the same error.
fn error_response(error: ServiceError) -> hyper::Response<HyperOutgoingBody> {
    let rendered = error.to_response();
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

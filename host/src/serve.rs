//! `isl serve`: axum over tokio, every request handed to `Service::handle`.
//!
//! The transport does only what the service cannot: a concurrency limit (429 with
//! `Retry-After`, never an unbounded queue), a body-size limit enforced before and while
//! buffering (413), graceful shutdown on SIGINT/SIGTERM, and logs. It also serves the browser
//! demo's static files (embedded at build time) at `/`.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::serve::ListenerExt as _;
use bytes::Bytes;
use isl_service::{Method, Service, ServiceError, SystemClock};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::{debug, info, warn};

use crate::cli::ServeArgs;
use crate::error::HostError;

/// Shared state of the handler.
#[derive(Clone)]
struct AppState {
    service: Arc<Service>,
    llm: Arc<crate::llm::LlmHost>,
    permits: Arc<Semaphore>,
    max_body_bytes: usize,
    drain: crate::body::Drain,
    retry_after_secs: u32,
}

/// Runs `isl serve` on its own multi-thread runtime until SIGINT/SIGTERM.
pub fn run(args: ServeArgs) -> Result<(), HostError> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if args.workers > 0 {
        builder.worker_threads(args.workers);
    }
    let runtime = builder.build().map_err(HostError::Runtime)?;
    runtime.block_on(async move {
        let listener = bind(&args.addr).await?;
        serve(listener, args, shutdown_signal()).await
    })
}

/// Binds the listening socket.
pub async fn bind(addr: &str) -> Result<TcpListener, HostError> {
    TcpListener::bind(addr).await.map_err(|source| HostError::Bind { addr: addr.to_string(), source })
}

/// Serves on `listener` until `shutdown` completes, then lets in-flight requests finish (for at
/// most `shutdown_grace_secs`). Prints `listening on http://ADDR` to stdout once bound.
pub async fn serve(
    listener: TcpListener,
    args: ServeArgs,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), HostError> {
    let config = args.service.to_config();
    // The GPU opens in the background; `--backend cpu` does not open it at all.
    let accel: Option<Arc<dyn isl_service::McAccelerator>> = match args.service.backend {
        crate::cli::Backend::Cpu => None,
        _ => Some(crate::gpu::GpuAccelerator::start(args.gpu_min_samples)),
    };
    let models: Arc<dyn isl_service::ModelRuntime> = crate::models::HostModels::start(&args.models);
    let models_dir = args.models.models_dir.clone().unwrap_or_else(isl_models::default_models_dir);
    let llm = crate::llm::LlmHost::start(&args.llm, models_dir, args.models.warmup);
    let service = Service::builder(config.clone(), Arc::new(SystemClock::new()))
        .accelerator(accel)
        .models(Some(models))
        .extension(llm.clone());
    let state = AppState {
        max_body_bytes: config.max_body_bytes,
        drain: args.drain.to_drain(),
        service: Arc::new(service.build()),
        llm,
        permits: Arc::new(Semaphore::new(args.max_concurrency.max(1))),
        retry_after_secs: args.retry_after_secs,
    };
    let app = Router::new().fallback(handle).with_state(state);
    let local: SocketAddr = listener.local_addr().map_err(|e| HostError::io("reading the bound address", e))?;
    info!(addr = %local, max_concurrency = args.max_concurrency, "listening");
    {
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "listening on http://{local}").and_then(|()| out.flush());
    }

    let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
    let signal = async move {
        shutdown.await;
        info!("shutting down: finishing in-flight requests");
        let _ = stopping_tx.send(());
    };
    // Responses go out as soon as they are written: without TCP_NODELAY, Nagle's algorithm may
    // hold a short trailing segment until the client acknowledges the previous one.
    let listener = listener.tap_io(|tcp| {
        if let Err(error) = tcp.set_nodelay(true) {
            debug!(%error, "could not set TCP_NODELAY");
        }
    });
    let server = axum::serve(listener, app).with_graceful_shutdown(signal).into_future();
    let grace = Duration::from_secs(args.shutdown_grace_secs);
    let deadline = async move {
        // Only starts counting once shutdown began; a dropped sender means the server ended.
        if stopping_rx.await.is_ok() {
            tokio::time::sleep(grace).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        result = server => result.map_err(HostError::Server)?,
        () = deadline => warn!(grace_secs = args.shutdown_grace_secs, "grace period over; dropping open connections"),
    }
    info!("stopped");
    Ok(())
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

async fn handle(State(state): State<AppState>, req: axum::extract::Request) -> axum::response::Response {
    let started = std::time::Instant::now();
    let (parts, body) = req.into_parts();
    if let Some(response) = page::respond(&parts.method, parts.uri.path(), &parts.headers) {
        return response;
    }
    let path = parts.uri.path().to_string();
    let Ok(_permit) = state.permits.try_acquire() else {
        debug!(method = %parts.method, %path, "429 overloaded");
        let error = ServiceError::Overloaded { retry_after_secs: state.retry_after_secs };
        return into_axum(state.service.reject(&path, &error));
    };
    let body = match crate::body::read(&parts.headers, body, state.max_body_bytes, state.drain).await {
        Ok(bytes) => bytes,
        Err(crate::body::BodyError::TooLarge(too_large)) => {
            let mut out = into_axum(state.service.reject(&path, &too_large.error));
            if too_large.close {
                out.headers_mut().insert(axum::http::header::CONNECTION, HeaderValue::from_static("close"));
            }
            return out;
        }
        Err(crate::body::BodyError::Broken(error)) => return into_axum(state.service.reject(&path, &error)),
    };
    if crate::llm::PATHS.contains(&path.as_str()) {
        let out =
            crate::llm::handle(state.llm.clone(), state.service.clone(), &parts.method, &path, &parts.headers, body)
                .await;
        debug!(method = %parts.method, %path, status = out.status().as_u16(), elapsed_us = started.elapsed().as_micros() as u64, "request");
        return out;
    }
    let headers = parts
        .headers
        .iter()
        .map(|(n, v)| (n.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    let request = isl_service::Request {
        method: Method::parse(parts.method.as_str()),
        path,
        query: parts.uri.query().map(str::to_string),
        headers,
        body,
    };
    if state.service.is_streamed_batch(&request) {
        return stream_batch(state.service.clone(), request).await;
    }
    // A panic would be a bug; answer 500 and keep serving rather than drop the connection.
    let service = state.service.clone();
    let answer = move || {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| service.handle(request)))
            .unwrap_or_else(|_| ServiceError::Internal("the handler panicked".into()).to_response())
    };
    // Model routes wait for their batch (other requests' rows run with theirs): off the async
    // workers, so the waiting requests do not hold up the rest.
    let response = if is_model_route(parts.uri.path()) {
        tokio::task::spawn_blocking(answer)
            .await
            .unwrap_or_else(|_| ServiceError::Internal("the handler stopped".into()).to_response())
    } else {
        answer()
    };
    if response.status == 500 {
        tracing::error!(method = %parts.method, path = %parts.uri.path(), "500 answer");
    }
    debug!(method = %parts.method, path = %parts.uri.path(), status = response.status, elapsed_us = started.elapsed().as_micros() as u64, "request");
    into_axum(response)
}

/// An NDJSON `/v1/batch`: the head once the batch is accepted, then each item's line as it
/// finishes (chunked), computed on the blocking pool. A refused batch is its error response.
async fn stream_batch(service: Arc<Service>, request: isl_service::Request) -> axum::response::Response {
    type Head = Result<isl_service::Response, isl_service::Response>;
    let (head_tx, head_rx) = tokio::sync::oneshot::channel::<Head>();
    let (line_tx, line_rx) = tokio::sync::mpsc::unbounded_channel::<Bytes>();
    tokio::task::spawn_blocking(move || {
        let mut head_tx = Some(head_tx);
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            service.handle_batch_stream(
                &request,
                &mut |head| {
                    if let Some(tx) = head_tx.take() {
                        let _ = tx.send(Ok(head));
                    }
                },
                // A client gone away closes the receiver; the items still finish (and are cached).
                &|line| {
                    let _ = line_tx.send(Bytes::from(line));
                },
            )
        }));
        let refused = match result {
            Ok(Ok(())) => None,
            Ok(Err(resp)) => Some(resp),
            Err(_) => Some(ServiceError::Internal("the batch panicked".into()).to_response()),
        };
        if let (Some(resp), Some(tx)) = (refused, head_tx.take()) {
            let _ = tx.send(Err(resp));
        }
    });
    match head_rx.await {
        Ok(Ok(head)) => {
            let mut out = into_axum(head);
            *out.body_mut() = Body::new(crate::body::ChannelBody::Unbounded(line_rx));
            out
        }
        Ok(Err(resp)) => into_axum(resp),
        Err(_) => into_axum(ServiceError::Internal("the batch stopped".into()).to_response()),
    }
}

/// Whether `path` is one of the model routes (answered on the blocking pool).
fn is_model_route(path: &str) -> bool {
    isl_service::ModelRoute::ALL.iter().any(|r| r.path() == path)
}

fn into_axum(resp: isl_service::Response) -> axum::response::Response {
    let mut out = axum::response::Response::new(Body::from(resp.body));
    *out.status_mut() = StatusCode::from_u16(resp.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = out.headers_mut();
    for (name, value) in resp.headers {
        if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(&value)) {
            headers.append(name, value);
        }
    }
    out
}

/// The browser demo (`web/`): its files, embedded by `host/build.rs` from `web/dist`, answer GET
/// and HEAD of their paths (`/` is `/index.html`); every other request goes to the service.
mod page {
    use axum::body::Body;
    use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};

    include!(concat!(env!("OUT_DIR"), "/web_assets.rs"));

    /// The response for a GET or HEAD of an embedded file; `None` for anything else.
    pub(super) fn respond(method: &Method, path: &str, headers: &HeaderMap) -> Option<axum::response::Response> {
        if method != Method::GET && method != Method::HEAD {
            return None;
        }
        let path = if path == "/" { "/index.html" } else { path };
        let &(_, content_type, etag, bytes) = ASSETS.iter().find(|(p, ..)| *p == path)?;
        let matches = headers
            .get_all(header::IF_NONE_MATCH)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|tag| tag.trim() == etag || tag.trim() == "*");
        let (status, body) = match (matches, method == Method::HEAD) {
            (true, _) => (StatusCode::NOT_MODIFIED, Body::empty()),
            (false, true) => (StatusCode::OK, Body::empty()),
            (false, false) => (StatusCode::OK, Body::from(bytes)),
        };
        let mut response = axum::response::Response::new(body);
        *response.status_mut() = status;
        let out = response.headers_mut();
        out.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        out.insert(header::ETAG, HeaderValue::from_static(etag));
        // Revalidated on every load (a 304 when unchanged), so a new build shows at once.
        out.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        out.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        if status == StatusCode::OK && method == Method::HEAD {
            out.insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
        }
        Some(response)
    }
}

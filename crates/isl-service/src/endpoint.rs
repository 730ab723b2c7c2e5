//! Compute routes as a table: each route is one [`Endpoint`] implementation plus one line in
//! `compute_routes`. The service does decoding, canonicalisation, hashing, caching and
//! encoding the same way for all of them.

use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::accel::McAccelerator;
use crate::models::{ModelEndpoint, ModelRoute, ModelRuntime};

use crate::clock::Clock;
use crate::config::Config;
use crate::error::ServiceError;

/// What a computation may use besides its request: the configuration, the deadline signal and
/// the metrics.
pub struct ComputeContext<'a> {
    /// The service configuration (limits, engine options).
    pub config: &'a Config,
    /// The service's metrics (for counters a computation owns, e.g. backend fallbacks).
    pub metrics: &'a crate::metrics::Metrics,
    /// Returns true once the request's deadline has passed; long computations poll it and stop
    /// with an `Interrupted` error (504).
    pub stop: &'a dyn Fn() -> bool,
    /// The request's deadline on the service's clock (nanoseconds), for computations that wait
    /// (the model runtime's batch queue).
    pub deadline_nanos: u64,
}

/// One compute route: a typed request, its canonical form, and the computation.
pub trait Endpoint: Send + Sync + 'static {
    /// The request body type (deserialised from JSON; `deny_unknown_fields` recommended).
    type Req: DeserializeOwned + Serialize;
    /// The response body type.
    type Resp: Serialize;
    /// The route path, e.g. `/v1/causal/validate`.
    const PATH: &'static str;

    /// The canonical form of a request: equal questions must give equal canonical requests
    /// (sorted sets, defaults filled in). The cache key and ETag hash its JSON.
    fn canonical(&self, req: Self::Req, config: &Config) -> Self::Req;

    /// Answers a canonical request.
    fn compute(&self, req: &Self::Req, ctx: &ComputeContext<'_>) -> Result<Self::Resp, ServiceError>;
}

/// A computed answer with its stage timings.
pub(crate) struct Computed {
    /// JSON body.
    pub body: Vec<u8>,
    /// Nanoseconds spent computing.
    pub compute_ns: u64,
    /// Nanoseconds spent encoding the response.
    pub encode_ns: u64,
    /// Stages inside the computation (name, milliseconds), for `Server-Timing`.
    pub stages: Vec<(&'static str, f64)>,
}

/// A decoded, canonicalised request, ready to hash and compute.
pub(crate) trait Prepared {
    /// Canonical JSON bytes (object keys sorted).
    fn canonical_bytes(&self) -> &[u8];
    /// Computes and encodes the answer.
    fn run(&self, ctx: &ComputeContext<'_>, clock: &dyn Clock) -> Result<Computed, ServiceError>;
}

/// Object-safe view of an [`Endpoint`], so routes of different types sit in one table.
pub(crate) trait Route: Send + Sync {
    /// The route path.
    fn path(&self) -> &'static str;
    /// Decodes JSON text and canonicalises it.
    fn prepare<'s>(&'s self, json: &str, config: &Config) -> Result<Box<dyn Prepared + 's>, ServiceError>;
}

struct PreparedRequest<'e, E: Endpoint> {
    endpoint: &'e E,
    request: E::Req,
    bytes: Vec<u8>,
}

impl<E: Endpoint> Prepared for PreparedRequest<'_, E> {
    fn canonical_bytes(&self) -> &[u8] {
        &self.bytes
    }

    fn run(&self, ctx: &ComputeContext<'_>, clock: &dyn Clock) -> Result<Computed, ServiceError> {
        timed(clock, || self.endpoint.compute(&self.request, ctx))
    }
}

/// Runs `compute` and encodes its answer, timing both on `clock`.
fn timed<R: Serialize>(
    clock: &dyn Clock,
    compute: impl FnOnce() -> Result<R, ServiceError>,
) -> Result<Computed, ServiceError> {
    let t0 = clock.now_nanos();
    let response = compute()?;
    let t1 = clock.now_nanos();
    let body = serde_json::to_vec(&response).map_err(|e| ServiceError::Internal(format!("encoding: {e}")))?;
    let t2 = clock.now_nanos();
    Ok(Computed { body, compute_ns: t1.saturating_sub(t0), encode_ns: t2.saturating_sub(t1), stages: Vec::new() })
}

/// A request's canonical JSON: through `Value`, so that every object's keys come out sorted,
/// whatever the struct order.
fn canonical_json<R: Serialize>(request: &R) -> Result<Vec<u8>, ServiceError> {
    let value = serde_json::to_value(request).map_err(|e| ServiceError::Internal(format!("canonical: {e}")))?;
    serde_json::to_vec(&value).map_err(|e| ServiceError::Internal(format!("canonical: {e}")))
}

impl<E: Endpoint> Route for E {
    fn path(&self) -> &'static str {
        E::PATH
    }

    fn prepare<'s>(&'s self, json: &str, config: &Config) -> Result<Box<dyn Prepared + 's>, ServiceError> {
        let request: E::Req = serde_json::from_str(json).map_err(|e| ServiceError::from_json_error(&e, json))?;
        let request = self.canonical(request, config);
        let bytes = canonical_json(&request)?;
        Ok(Box::new(PreparedRequest { endpoint: self, request, bytes }))
    }
}

/// The compute routes, in the order they are listed in metrics. Add a route here. `accel` is the
/// Monte Carlo accelerator the host attached, if any; `models` the model runtime.
pub(crate) fn compute_routes(
    accel: Option<Arc<dyn McAccelerator>>,
    models: Option<Arc<dyn ModelRuntime>>,
    dags: Arc<crate::dag_cache::DagCache>,
) -> Vec<Box<dyn Route>> {
    use causal::CausalRoute;
    let mut routes: Vec<Box<dyn Route>> = vec![
        Box::new(CausalRoute::<causal::Validate>::new(dags.clone())),
        Box::new(CausalRoute::<causal::DSeparation>::new(dags.clone())),
        Box::new(CausalRoute::<causal::Backdoor>::new(dags.clone())),
        Box::new(CausalRoute::<causal::Frontdoor>::new(dags)),
        Box::new(mc::Counterfactual { accel }),
        Box::new(mc::Sensitivity),
        Box::new(elicit::PreferencesNext),
    ];
    for route in ModelRoute::ALL {
        routes.push(Box::new(ModelEndpoint { route, runtime: models.clone() }));
    }
    routes
}

/// The Monte Carlo routes over `isl_mc::api`: the CPU backend (rayon across cores on native, one
/// thread on wasm32; the same answer either way), or an accelerator the host attached.
pub mod mc {
    use std::sync::Arc;

    use isl_mc::{
        BackendChoice, CounterfactualRequest, CounterfactualResponse, CpuBackend, PreparedCounterfactual,
        SampleEstimator, SensitivityRequest, SensitivityResponse, api,
    };

    use super::{ComputeContext, Endpoint};
    use crate::accel::{AccelOutcome, McAccelerator, resolve};
    use crate::config::Config;
    use crate::error::ServiceError;

    /// `/v1/counterfactual`: the outcome's distribution under an intervention, given evidence.
    #[derive(Clone, Default)]
    pub struct Counterfactual {
        /// The accelerator requests may be sent to.
        pub accel: Option<Arc<dyn McAccelerator>>,
    }

    impl Counterfactual {
        fn on_cpu(
            prepared: &PreparedCounterfactual,
            ctx: &ComputeContext<'_>,
            warning: Option<String>,
        ) -> Result<CounterfactualResponse, ServiceError> {
            let mut answer = prepared.run(&SampleEstimator::new(&CpuBackend::default()), ctx.stop)?;
            answer.warnings.extend(warning);
            ctx.metrics.backend_run("cpu", if answer.warnings.is_empty() { "answered" } else { "fallback" });
            Ok(answer)
        }
    }

    impl Endpoint for Counterfactual {
        type Req = CounterfactualRequest;
        type Resp = CounterfactualResponse;
        const PATH: &'static str = "/v1/counterfactual";

        /// Also resolves the backend (`auto` → `cpu` or `gpu`), so it is part of the cache key.
        fn canonical(&self, req: CounterfactualRequest, config: &Config) -> CounterfactualRequest {
            let mut req = req.canonical(&config.mc);
            req.backend = Some(resolve(&req, config.mc_backend, self.accel.as_deref()));
            req
        }

        fn compute(
            &self,
            req: &CounterfactualRequest,
            ctx: &ComputeContext<'_>,
        ) -> Result<CounterfactualResponse, ServiceError> {
            let prepared = PreparedCounterfactual::new(req, &ctx.config.mc)?;
            if req.backend != Some(BackendChoice::Gpu) {
                return Self::on_cpu(&prepared, ctx, None);
            }
            let Some(accel) = self.accel.as_deref().filter(|a| a.available()) else {
                let why = "the GPU was asked for but none is available on this server; the CPU answered";
                return Self::on_cpu(&prepared, ctx, Some(why.into()));
            };
            match accel.counterfactual(&prepared, ctx.stop) {
                AccelOutcome::Answered(answer) => {
                    ctx.metrics.backend_run(accel.name(), "answered");
                    Ok(*answer)
                }
                AccelOutcome::Failed(error) => Err(error.into()),
                AccelOutcome::Unsupported(why) => {
                    ctx.metrics.backend_run(accel.name(), "unsupported");
                    Self::on_cpu(
                        &prepared,
                        ctx,
                        Some(format!("the GPU cannot run this request ({why}); the CPU answered")),
                    )
                }
                AccelOutcome::DeviceError(error) => {
                    ctx.metrics.backend_run(accel.name(), "device_error");
                    Self::on_cpu(&prepared, ctx, Some(format!("the GPU failed ({error}); the CPU answered")))
                }
            }
        }
    }

    /// `/v1/sensitivity`: which beliefs move the outcome most (tornado swings, Sobol shares).
    #[derive(Debug, Clone, Copy, Default)]
    pub struct Sensitivity;

    impl Endpoint for Sensitivity {
        type Req = SensitivityRequest;
        type Resp = SensitivityResponse;
        const PATH: &'static str = "/v1/sensitivity";

        fn canonical(&self, req: SensitivityRequest, config: &Config) -> SensitivityRequest {
            req.canonical(&config.mc)
        }

        fn compute(
            &self,
            req: &SensitivityRequest,
            ctx: &ComputeContext<'_>,
        ) -> Result<SensitivityResponse, ServiceError> {
            Ok(api::sensitivity(req, &ctx.config.mc, &CpuBackend::default(), ctx.stop)?)
        }
    }
}

/// Preference elicitation over `isl_elicit::api`.
pub mod elicit {
    use isl_elicit::{NextRequest, NextResponse};

    use super::{ComputeContext, Endpoint};
    use crate::config::Config;
    use crate::error::ServiceError;

    /// `/v1/preferences/next`: the posterior over attribute weights from every answer so far,
    /// the next questions by expected information gain, and a recommendation (options given,
    /// or valued by Monte Carlo on a causal model with the service's Monte Carlo limits).
    #[derive(Debug, Clone, Copy, Default)]
    pub struct PreferencesNext;

    impl Endpoint for PreferencesNext {
        type Req = NextRequest;
        type Resp = NextResponse;
        const PATH: &'static str = "/v1/preferences/next";

        fn canonical(&self, req: NextRequest, config: &Config) -> NextRequest {
            req.canonical(&config.elicit)
        }

        fn compute(&self, req: &NextRequest, ctx: &ComputeContext<'_>) -> Result<NextResponse, ServiceError> {
            Ok(isl_elicit::next(req, &ctx.config.elicit, &ctx.config.mc, ctx.stop)?)
        }
    }
}

/// The causal routes over `isl_causal::api`, answered from graphs of the shared
/// [`DagCache`](crate::dag_cache::DagCache): a request's `dag` is looked up by its exact JSON
/// text, then by its canonical hash, and built only when neither is known. The cache key of a
/// causal request is its canonical JSON with an empty `dag`, followed by the DAG's canonical
/// hash, so equal questions about one DAG share an entry whatever the DAG's spelling.
pub mod causal {
    use std::marker::PhantomData;
    use std::sync::Arc;

    use isl_causal::api;
    use isl_causal::{
        BackdoorRequest, CausalError, CausalOptions, CheckedGraph, CriterionResponse, DSeparationRequest,
        DSeparationResponse, DagSpec, FrontdoorRequest, ValidateRequest, ValidateResponse,
    };
    use serde::de::{DeserializeOwned, MapAccess, Visitor};
    use serde::{Deserialize, Deserializer, Serialize};
    use serde_json::value::RawValue;

    use super::{ComputeContext, Computed, Prepared, Route};
    use crate::clock::Clock;
    use crate::config::Config;
    use crate::dag_cache::{CachedGraph, DagCache};
    use crate::error::ServiceError;

    /// What a causal route is: its request, answer and computation over a checked graph.
    pub trait CausalKind: Send + Sync + 'static {
        /// The request body type (its `dag` is supplied by the cache).
        type Req: DeserializeOwned + Serialize + Send + Sync;
        /// The response body type.
        type Resp: Serialize;
        /// The route path.
        const PATH: &'static str;
        /// The request's graph field.
        fn dag_mut(req: &mut Self::Req) -> &mut DagSpec;
        /// The canonical form of a request (its `dag` is empty by then).
        fn canonical(req: Self::Req, config: &Config) -> Self::Req;
        /// Answers `req` over `graph`, the graph of the `dag` it was sent with.
        fn answer(
            req: &Self::Req,
            opts: &CausalOptions,
            stop: &dyn Fn() -> bool,
            graph: Result<Arc<CheckedGraph>, CausalError>,
        ) -> Result<Self::Resp, CausalError>;
    }

    /// A causal route over the shared DAG cache.
    pub struct CausalRoute<K> {
        dags: Arc<DagCache>,
        kind: PhantomData<fn() -> K>,
    }

    impl<K> CausalRoute<K> {
        /// The route over `dags`.
        pub fn new(dags: Arc<DagCache>) -> Self {
            CausalRoute { dags, kind: PhantomData }
        }
    }

    /// A request's top-level members as raw JSON text, in order (keys without escapes).
    struct Members<'a>(Vec<(&'a str, &'a RawValue)>);

    impl<'de: 'a, 'a> Deserialize<'de> for Members<'a> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V<'a>(PhantomData<&'a ()>);
            impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
                type Value = Members<'a>;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("a JSON object")
                }
                fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members<'a>, A::Error> {
                    let mut members = Vec::new();
                    while let Some(entry) = map.next_entry::<&'a str, &'a RawValue>()? {
                        members.push(entry);
                    }
                    Ok(Members(members))
                }
            }
            d.deserialize_map(V(PhantomData))
        }
    }

    impl<K: CausalKind> CausalRoute<K> {
        /// The request without its `dag`, and the graph by the `dag`'s raw text; `None` when
        /// anything is off (the full decode then reports it, with positions in the request).
        fn decode_fast(&self, json: &str, config: &Config) -> Option<(K::Req, CachedGraph)> {
            let Members(members) = serde_json::from_str(json).ok()?;
            let mut dag = None;
            let mut rest = String::with_capacity(64 + json.len() / 8);
            rest.push_str("{\"dag\":{}");
            for (key, value) in members {
                if key == "dag" {
                    if dag.replace(value).is_some() {
                        return None;
                    }
                    continue;
                }
                rest.push(',');
                rest.push_str(&serde_json::to_string(key).ok()?);
                rest.push(':');
                rest.push_str(value.get());
            }
            rest.push('}');
            let dag = dag?;
            let req: K::Req = serde_json::from_str(&rest).ok()?;
            let graph = self.dags.get_raw(dag.get(), &config.causal.graph).ok()?;
            Some((req, graph))
        }

        /// The whole request decoded, its `dag` taken out and looked up by canonical hash.
        fn decode_full(&self, json: &str, config: &Config) -> Result<(K::Req, CachedGraph), ServiceError> {
            let mut req: K::Req = serde_json::from_str(json).map_err(|e| ServiceError::from_json_error(&e, json))?;
            let spec = std::mem::take(K::dag_mut(&mut req));
            Ok((req, self.dags.get_spec(&spec, &config.causal.graph)))
        }
    }

    struct PreparedCausal<K: CausalKind> {
        request: K::Req,
        graph: Result<Arc<CheckedGraph>, CausalError>,
        bytes: Vec<u8>,
    }

    impl<K: CausalKind> Prepared for PreparedCausal<K> {
        fn canonical_bytes(&self) -> &[u8] {
            &self.bytes
        }

        fn run(&self, ctx: &ComputeContext<'_>, clock: &dyn Clock) -> Result<Computed, ServiceError> {
            super::timed(clock, || Ok(K::answer(&self.request, &ctx.config.causal, ctx.stop, self.graph.clone())?))
        }
    }

    impl<K: CausalKind> Route for CausalRoute<K> {
        fn path(&self) -> &'static str {
            K::PATH
        }

        fn prepare<'s>(&'s self, json: &str, config: &Config) -> Result<Box<dyn Prepared + 's>, ServiceError> {
            let (request, graph) = match self.decode_fast(json, config) {
                Some(decoded) => decoded,
                None => self.decode_full(json, config)?,
            };
            let request = K::canonical(request, config);
            // Straight to bytes: the request types' field order is fixed and their maps are
            // sorted, so this is as deterministic as the `Value` detour the other routes take,
            // at a fraction of the cost for hundreds of queries.
            let mut bytes =
                serde_json::to_vec(&request).map_err(|e| ServiceError::Internal(format!("canonical: {e}")))?;
            bytes.extend_from_slice(b"\0dag=");
            bytes.extend_from_slice(&graph.canonical_hash.to_le_bytes());
            Ok(Box::new(PreparedCausal::<K> { request, graph: graph.graph, bytes }))
        }
    }

    /// `/v1/causal/validate`.
    pub struct Validate;

    impl CausalKind for Validate {
        type Req = ValidateRequest;
        type Resp = ValidateResponse;
        const PATH: &'static str = "/v1/causal/validate";

        fn dag_mut(req: &mut ValidateRequest) -> &mut DagSpec {
            &mut req.dag
        }

        fn canonical(req: ValidateRequest, config: &Config) -> ValidateRequest {
            req.canonical(&config.causal)
        }

        fn answer(
            req: &ValidateRequest,
            opts: &CausalOptions,
            stop: &dyn Fn() -> bool,
            graph: Result<Arc<CheckedGraph>, CausalError>,
        ) -> Result<ValidateResponse, CausalError> {
            api::validate_with(req, opts, stop, || graph)
        }
    }

    /// `/v1/causal/d-separation`.
    pub struct DSeparation;

    impl CausalKind for DSeparation {
        type Req = DSeparationRequest;
        type Resp = DSeparationResponse;
        const PATH: &'static str = "/v1/causal/d-separation";

        fn dag_mut(req: &mut DSeparationRequest) -> &mut DagSpec {
            &mut req.dag
        }

        fn canonical(req: DSeparationRequest, _config: &Config) -> DSeparationRequest {
            req.canonical()
        }

        fn answer(
            req: &DSeparationRequest,
            opts: &CausalOptions,
            stop: &dyn Fn() -> bool,
            graph: Result<Arc<CheckedGraph>, CausalError>,
        ) -> Result<DSeparationResponse, CausalError> {
            api::d_separation_with(req, opts, stop, || graph)
        }
    }

    /// `/v1/causal/backdoor`.
    pub struct Backdoor;

    impl CausalKind for Backdoor {
        type Req = BackdoorRequest;
        type Resp = CriterionResponse;
        const PATH: &'static str = "/v1/causal/backdoor";

        fn dag_mut(req: &mut BackdoorRequest) -> &mut DagSpec {
            &mut req.dag
        }

        fn canonical(req: BackdoorRequest, _config: &Config) -> BackdoorRequest {
            req.canonical()
        }

        fn answer(
            req: &BackdoorRequest,
            _opts: &CausalOptions,
            stop: &dyn Fn() -> bool,
            graph: Result<Arc<CheckedGraph>, CausalError>,
        ) -> Result<CriterionResponse, CausalError> {
            api::backdoor_with(req, stop, || graph)
        }
    }

    /// `/v1/causal/frontdoor`.
    pub struct Frontdoor;

    impl CausalKind for Frontdoor {
        type Req = FrontdoorRequest;
        type Resp = CriterionResponse;
        const PATH: &'static str = "/v1/causal/frontdoor";

        fn dag_mut(req: &mut FrontdoorRequest) -> &mut DagSpec {
            &mut req.dag
        }

        fn canonical(req: FrontdoorRequest, _config: &Config) -> FrontdoorRequest {
            req.canonical()
        }

        fn answer(
            req: &FrontdoorRequest,
            _opts: &CausalOptions,
            stop: &dyn Fn() -> bool,
            graph: Result<Arc<CheckedGraph>, CausalError>,
        ) -> Result<CriterionResponse, CausalError> {
            api::frontdoor_with(req, stop, || graph)
        }
    }
}

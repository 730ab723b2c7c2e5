//! The request and response shapes of the causal routes, and the functions that answer them.
//!
//! Each request type has a `canonical` method (sorted sets, sorted graph, defaults filled) so that
//! equal questions serialise to equal bytes; the answering functions expect canonical requests
//! (they work on any, but only canonical ones make answers independent of input order).

use serde::{Deserialize, Serialize};

use crate::backdoor::SetList;
use crate::error::CausalError;
use crate::frontdoor::{DEFAULT_FRONTDOOR_BUDGET, FrontdoorFailure};
use crate::graph::{CheckedGraph, Dag, DagSpec, Graph, GraphLimits, NodeId};

/// One node name or a list of names (`"X"` or `["X1", "X2"]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum NodeNames {
    /// A single name.
    One(String),
    /// Several names.
    Many(Vec<String>),
}

/// Read straight from the JSON (a string or a list of strings), not through serde's untagged
/// buffering: requests carry hundreds of these (d-separation queries).
impl<'de> Deserialize<'de> for NodeNames {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<NodeNames, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = NodeNames;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a node name or a list of node names")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<NodeNames, E> {
                Ok(NodeNames::One(v.to_owned()))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<NodeNames, E> {
                Ok(NodeNames::One(v))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<NodeNames, A::Error> {
                let mut names = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
                while let Some(name) = seq.next_element::<String>()? {
                    names.push(name);
                }
                Ok(NodeNames::Many(names))
            }
        }
        d.deserialize_any(V)
    }
}

impl NodeNames {
    /// The names as a sorted list without duplicates (the canonical form).
    pub fn canonical(&self) -> NodeNames {
        let mut v = match self {
            NodeNames::One(s) => vec![s.clone()],
            NodeNames::Many(v) => v.clone(),
        };
        v.sort_unstable();
        v.dedup();
        NodeNames::Many(v)
    }

    /// The names as a slice view (a single name becomes a one-element list).
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            NodeNames::One(s) => vec![s.clone()],
            NodeNames::Many(v) => v.clone(),
        }
    }
}

/// Limits and defaults for answering causal requests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CausalOptions {
    /// Graph size limits.
    pub graph: GraphLimits,
    /// `max_sets` when a request gives none.
    pub default_max_sets: usize,
    /// The largest `max_sets` a request may ask for.
    pub max_sets_ceiling: usize,
    /// The most d-separation queries in one request.
    pub max_queries: usize,
    /// Criterion checks spent searching minimal front-door sets.
    pub frontdoor_budget: usize,
}

impl Default for CausalOptions {
    fn default() -> Self {
        CausalOptions {
            graph: GraphLimits::default(),
            default_max_sets: 100,
            max_sets_ceiling: 10_000,
            max_queries: 10_000,
            frontdoor_budget: DEFAULT_FRONTDOOR_BUDGET,
        }
    }
}

/// `/v1/causal/validate` request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidateRequest {
    /// The graph.
    pub dag: DagSpec,
    /// Treatment node(s); identification needs both treatment and outcome.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub treatment: Option<NodeNames>,
    /// Outcome node(s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<NodeNames>,
    /// The most adjustment sets to list (default from [`CausalOptions`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_sets: Option<usize>,
}

impl ValidateRequest {
    /// Canonical form: sorted graph, sorted name lists, `max_sets` filled in.
    pub fn canonical(&self, opts: &CausalOptions) -> ValidateRequest {
        ValidateRequest {
            dag: self.dag.canonical(),
            treatment: self.treatment.as_ref().map(NodeNames::canonical),
            outcome: self.outcome.as_ref().map(NodeNames::canonical),
            max_sets: Some(self.max_sets.unwrap_or(opts.default_max_sets)),
        }
    }
}

/// `/v1/causal/validate` response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidateResponse {
    /// Whether the graph is acyclic.
    pub acyclic: bool,
    /// One directed cycle as a closed walk, when there is one.
    pub cycle: Option<Vec<String>>,
    /// Distinct nodes.
    pub node_count: usize,
    /// Distinct edges.
    pub edge_count: usize,
    /// Non-fatal remarks (duplicate edges, ...).
    pub warnings: Vec<String>,
    /// Identification of the effect of treatment on outcome; null without both, or when cyclic.
    pub identification: Option<Identification>,
}

/// How (and whether) the effect of treatment on outcome can be identified.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identification {
    /// Whether a back-door or front-door set exists.
    pub identifiable: bool,
    /// `"backdoor"`, `"frontdoor"`, or null when neither criterion applies.
    pub strategy: Option<String>,
    /// Every inclusion-minimal back-door set (each sorted, the list sorted); `[[]]` when the
    /// empty set suffices.
    pub backdoor_sets: Vec<Vec<String>>,
    /// Inclusion-minimal front-door sets (each sorted, the list sorted).
    pub frontdoor_sets: Vec<Vec<String>>,
    /// Observed instrumental variables, sorted.
    pub instruments: Vec<String>,
    /// True when a list was cut at `max_sets` (or the front-door search budget).
    pub truncated: bool,
}

/// `/v1/causal/d-separation` request: one query (`x`, `y`, `given`) or many (`queries`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DSeparationRequest {
    /// The graph.
    pub dag: DagSpec,
    /// First set (single-query form).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<NodeNames>,
    /// Second set (single-query form).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<NodeNames>,
    /// Conditioning set (single-query form).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given: Option<NodeNames>,
    /// Many queries on the same graph.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queries: Option<Vec<DSeparationQuery>>,
}

/// One d-separation query.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DSeparationQuery {
    /// First set.
    pub x: NodeNames,
    /// Second set.
    pub y: NodeNames,
    /// Conditioning set.
    #[serde(default = "empty_names")]
    pub given: NodeNames,
}

fn empty_names() -> NodeNames {
    NodeNames::Many(Vec::new())
}

impl DSeparationRequest {
    /// Canonical form: sorted graph and sets; query order is kept (answers follow it).
    pub fn canonical(&self) -> DSeparationRequest {
        let canon = |n: &Option<NodeNames>| n.as_ref().map(NodeNames::canonical);
        DSeparationRequest {
            dag: self.dag.canonical(),
            x: canon(&self.x),
            y: canon(&self.y),
            given: canon(&self.given).or_else(|| self.x.as_ref().map(|_| empty_names())),
            queries: self.queries.as_ref().map(|qs| {
                qs.iter()
                    .map(|q| DSeparationQuery { x: q.x.canonical(), y: q.y.canonical(), given: q.given.canonical() })
                    .collect()
            }),
        }
    }
}

/// `/v1/causal/d-separation` response: `{"separated": bool}` or `{"results": [bool, ...]}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum DSeparationResponse {
    /// Single-query answer.
    Single {
        /// Whether x and y are d-separated given `given`.
        separated: bool,
    },
    /// Many-query answers, in query order.
    Many {
        /// One answer per query.
        results: Vec<bool>,
    },
}

/// `/v1/causal/backdoor` request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackdoorRequest {
    /// The graph.
    pub dag: DagSpec,
    /// Treatment node(s).
    pub treatment: NodeNames,
    /// Outcome node(s).
    pub outcome: NodeNames,
    /// The proposed adjustment set.
    #[serde(default = "empty_names")]
    pub adjustment: NodeNames,
}

impl BackdoorRequest {
    /// Canonical form: sorted graph and sets.
    pub fn canonical(&self) -> BackdoorRequest {
        BackdoorRequest {
            dag: self.dag.canonical(),
            treatment: self.treatment.canonical(),
            outcome: self.outcome.canonical(),
            adjustment: self.adjustment.canonical(),
        }
    }
}

/// `/v1/causal/frontdoor` request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FrontdoorRequest {
    /// The graph.
    pub dag: DagSpec,
    /// Treatment node(s).
    pub treatment: NodeNames,
    /// Outcome node(s).
    pub outcome: NodeNames,
    /// The proposed mediator set.
    pub mediators: NodeNames,
}

impl FrontdoorRequest {
    /// Canonical form: sorted graph and sets.
    pub fn canonical(&self) -> FrontdoorRequest {
        FrontdoorRequest {
            dag: self.dag.canonical(),
            treatment: self.treatment.canonical(),
            outcome: self.outcome.canonical(),
            mediators: self.mediators.canonical(),
        }
    }
}

/// Answer of the back-door and front-door checks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CriterionResponse {
    /// Whether the set satisfies the criterion.
    pub valid: bool,
    /// Why, in words; when invalid it names the open path or the offending nodes.
    pub reason: String,
    /// The open path that makes the set invalid, when that is the reason (first node first).
    pub path: Option<Vec<String>>,
    /// The offending members (latent nodes, descendants of the treatment), when that is the reason.
    pub offending: Vec<String>,
}

impl CriterionResponse {
    /// A set that satisfies the criterion.
    fn valid(reason: &str) -> CriterionResponse {
        CriterionResponse { valid: true, reason: reason.into(), path: None, offending: Vec::new() }
    }

    /// A set that fails because of `offending` members.
    fn offending(reason: String, offending: Vec<String>) -> CriterionResponse {
        CriterionResponse { valid: false, reason, path: None, offending }
    }

    /// A set that fails because of a path (or, with an empty path, for a reason of its own).
    fn path(dag: &Dag, what: &str, path: &[NodeId]) -> CriterionResponse {
        CriterionResponse {
            valid: false,
            reason: if path.is_empty() { what.into() } else { format!("{what}: {}", dag.render_path(path)) },
            path: (!path.is_empty()).then(|| path.iter().map(|&v| dag.name(v).to_string()).collect()),
            offending: Vec::new(),
        }
    }
}

/// Answers `/v1/causal/validate`. Cyclic graphs are an answer (`acyclic: false`), not an error.
pub fn validate(
    req: &ValidateRequest,
    opts: &CausalOptions,
    stop: &dyn Fn() -> bool,
) -> Result<ValidateResponse, CausalError> {
    validate_with(req, opts, stop, || CheckedGraph::from_spec(&req.dag, &opts.graph).map(Box::new))
}

/// [`validate`] over the request's graph as `graph` gives it (built, or from a cache), in place
/// of `req.dag`; `graph` is called once the request's own fields are checked, so errors come in
/// the same order. `graph` must give the graph of `req.dag` under `opts.graph` for the answer
/// to be `validate`'s.
pub fn validate_with<G: std::ops::Deref<Target = CheckedGraph>>(
    req: &ValidateRequest,
    opts: &CausalOptions,
    stop: &dyn Fn() -> bool,
    graph: impl FnOnce() -> Result<G, CausalError>,
) -> Result<ValidateResponse, CausalError> {
    let max_sets = req.max_sets.unwrap_or(opts.default_max_sets);
    if max_sets > opts.max_sets_ceiling {
        return Err(CausalError::OverLimit { what: "max_sets".into(), count: max_sets, limit: opts.max_sets_ceiling });
    }
    let checked = graph()?;
    let graph = checked.graph();
    let mut warnings: Vec<String> = graph
        .duplicate_edges()
        .iter()
        .map(|&(a, b)| format!("duplicate edge {} -> {} (counted once)", graph.name(a), graph.name(b)))
        .collect();
    // Resolve names before the cycle check so that unknown names are reported either way.
    let pair = match (&req.treatment, &req.outcome) {
        (Some(t), Some(o)) => {
            let x = resolve_nonempty(graph, t, "treatment")?;
            let y = resolve_nonempty(graph, o, "outcome")?;
            disjoint(graph, &x, &y, "treatment", "outcome")?;
            Some((x, y))
        }
        (Some(t), None) => {
            resolve_nonempty(graph, t, "treatment")?;
            warnings.push("treatment given without outcome: no identification".into());
            None
        }
        (None, Some(o)) => {
            resolve_nonempty(graph, o, "outcome")?;
            warnings.push("outcome given without treatment: no identification".into());
            None
        }
        (None, None) => None,
    };
    if graph.node_count() == 0 {
        warnings.push("the graph is empty".into());
    }
    let node_count = graph.node_count();
    let edge_count = graph.edge_count();
    let dag = match &*checked {
        CheckedGraph::Cyclic { cycle, .. } => {
            return Ok(ValidateResponse {
                acyclic: false,
                cycle: Some(cycle.clone()),
                node_count,
                edge_count,
                warnings,
                identification: None,
            });
        }
        CheckedGraph::Acyclic(dag) => dag,
    };
    let identification = match pair {
        None => None,
        Some((x, y)) => Some(identify(dag, &x, &y, max_sets, opts, stop, &mut warnings)?),
    };
    Ok(ValidateResponse { acyclic: true, cycle: None, node_count, edge_count, warnings, identification })
}

fn identify(
    dag: &Dag,
    x: &[NodeId],
    y: &[NodeId],
    max_sets: usize,
    opts: &CausalOptions,
    stop: &dyn Fn() -> bool,
    warnings: &mut Vec<String>,
) -> Result<Identification, CausalError> {
    let backdoor = dag.minimal_backdoor_sets(x, y, max_sets, stop)?;
    let frontdoor = dag.minimal_frontdoor_sets(x, y, max_sets, opts.frontdoor_budget, stop)?;
    let instruments = dag.sorted_names(dag.instruments(x, y));
    let strategy = if !backdoor.sets.is_empty() {
        Some("backdoor".to_string())
    } else if !frontdoor.sets.is_empty() {
        Some("frontdoor".to_string())
    } else {
        warnings.push(
            "no back-door or front-door set exists; the effect may still be identifiable by other means \
             (do-calculus), which this check does not attempt"
                .into(),
        );
        None
    };
    if dag.directed_path(x, y, &[]).is_none() {
        warnings.push("no directed path from treatment to outcome: the causal effect is zero".into());
    }
    Ok(Identification {
        identifiable: strategy.is_some(),
        strategy,
        truncated: backdoor.truncated || frontdoor.truncated,
        backdoor_sets: named_sets(dag, backdoor),
        frontdoor_sets: named_sets(dag, frontdoor),
        instruments,
    })
}

fn named_sets(dag: &Dag, list: SetList) -> Vec<Vec<String>> {
    let mut sets: Vec<Vec<String>> = list.sets.into_iter().map(|s| dag.sorted_names(s)).collect();
    sets.sort_unstable();
    sets
}

fn resolve_nonempty(graph: &Graph, names: &NodeNames, field: &str) -> Result<Vec<NodeId>, CausalError> {
    let ids = graph.resolve(&names.to_vec(), field)?;
    if ids.is_empty() {
        return Err(CausalError::EmptySet { field: field.into() });
    }
    Ok(ids)
}

fn disjoint(graph: &Graph, a: &[NodeId], b: &[NodeId], fa: &str, fb: &str) -> Result<(), CausalError> {
    let shared: Vec<NodeId> = a.iter().copied().filter(|v| b.binary_search(v).is_ok()).collect();
    if shared.is_empty() {
        Ok(())
    } else {
        Err(CausalError::OverlappingSets { first: fa.into(), second: fb.into(), nodes: graph.sorted_names(shared) })
    }
}

/// Answers `/v1/causal/d-separation`: one query or many on one graph (the graph is built once).
/// `stop` is polled between queries.
pub fn d_separation(
    req: &DSeparationRequest,
    opts: &CausalOptions,
    stop: &dyn Fn() -> bool,
) -> Result<DSeparationResponse, CausalError> {
    d_separation_with(req, opts, stop, || CheckedGraph::from_spec(&req.dag, &opts.graph).map(Box::new))
}

/// [`d_separation`] over the graph `graph` gives (see [`validate_with`]).
pub fn d_separation_with<G: std::ops::Deref<Target = CheckedGraph>>(
    req: &DSeparationRequest,
    opts: &CausalOptions,
    stop: &dyn Fn() -> bool,
    graph: impl FnOnce() -> Result<G, CausalError>,
) -> Result<DSeparationResponse, CausalError> {
    let single = match (&req.x, &req.y, &req.queries) {
        (Some(x), Some(y), None) => Some((x, y)),
        (None, None, Some(_)) if req.given.is_none() => None,
        _ => {
            return Err(CausalError::InvalidRequest {
                message: "give either x and y (with optional given) or queries, not both".into(),
            });
        }
    };
    if let Some(qs) = &req.queries
        && qs.len() > opts.max_queries
    {
        return Err(CausalError::OverLimit { what: "queries".into(), count: qs.len(), limit: opts.max_queries });
    }
    let checked = graph()?;
    let dag = checked.dag()?;
    let mut ds = crate::dsep::DSeparation::new(dag);
    let mut answer = |x: &NodeNames, y: &NodeNames, z: &NodeNames, at: &str| -> Result<bool, CausalError> {
        if stop() {
            return Err(CausalError::Interrupted);
        }
        let xs = resolve_nonempty(dag, x, &format!("{at}x"))?;
        let ys = resolve_nonempty(dag, y, &format!("{at}y"))?;
        let zs = dag.resolve(&z.to_vec(), &format!("{at}given"))?;
        disjoint(dag, &xs, &ys, &format!("{at}x"), &format!("{at}y"))?;
        disjoint(dag, &xs, &zs, &format!("{at}x"), &format!("{at}given"))?;
        disjoint(dag, &ys, &zs, &format!("{at}y"), &format!("{at}given"))?;
        Ok(ds.separated(&xs, &ys, &zs))
    };
    match single {
        Some((x, y)) => {
            let given = req.given.clone().unwrap_or_else(empty_names);
            Ok(DSeparationResponse::Single { separated: answer(x, y, &given, "")? })
        }
        None => {
            let qs = req.queries.as_deref().unwrap_or_default();
            let results = qs
                .iter()
                .enumerate()
                .map(|(i, q)| answer(&q.x, &q.y, &q.given, &format!("queries[{i}].")))
                .collect::<Result<Vec<bool>, CausalError>>()?;
            Ok(DSeparationResponse::Many { results })
        }
    }
}

/// The resolved, pairwise disjoint treatment, outcome and proposed set of a criterion check
/// (`set_field` names the set in errors).
fn criterion_inputs(
    dag: &Dag,
    treatment: &NodeNames,
    outcome: &NodeNames,
    set: &NodeNames,
    set_field: &str,
    stop: &dyn Fn() -> bool,
) -> Result<[Vec<NodeId>; 3], CausalError> {
    if stop() {
        return Err(CausalError::Interrupted);
    }
    let x = resolve_nonempty(dag, treatment, "treatment")?;
    let y = resolve_nonempty(dag, outcome, "outcome")?;
    let z = dag.resolve(&set.to_vec(), set_field)?;
    disjoint(dag, &x, &y, "treatment", "outcome")?;
    disjoint(dag, &x, &z, "treatment", set_field)?;
    disjoint(dag, &y, &z, "outcome", set_field)?;
    Ok([x, y, z])
}

/// Answers `/v1/causal/backdoor`. The check is linear in the graph; `stop` is polled once the
/// graph is built.
pub fn backdoor(
    req: &BackdoorRequest,
    opts: &CausalOptions,
    stop: &dyn Fn() -> bool,
) -> Result<CriterionResponse, CausalError> {
    backdoor_with(req, stop, || CheckedGraph::from_spec(&req.dag, &opts.graph).map(Box::new))
}

/// [`backdoor`] over the graph `graph` gives (see [`validate_with`]).
pub fn backdoor_with<G: std::ops::Deref<Target = CheckedGraph>>(
    req: &BackdoorRequest,
    stop: &dyn Fn() -> bool,
    graph: impl FnOnce() -> Result<G, CausalError>,
) -> Result<CriterionResponse, CausalError> {
    let checked = graph()?;
    let dag = checked.dag()?;
    let [x, y, z] = criterion_inputs(dag, &req.treatment, &req.outcome, &req.adjustment, "adjustment", stop)?;
    let verdict = dag.backdoor_check(&x, &y, &z);
    let names = |ids: &[NodeId]| dag.sorted_names(ids.iter().copied());
    Ok(if !verdict.latent.is_empty() {
        let offending = names(&verdict.latent);
        CriterionResponse::offending(
            format!("latent nodes cannot be adjusted for: {}", offending.join(", ")),
            offending,
        )
    } else if !verdict.descendants.is_empty() {
        let offending = names(&verdict.descendants);
        CriterionResponse::offending(format!("{} descend(s) from the treatment", offending.join(", ")), offending)
    } else if let Some(path) = verdict.open_path {
        CriterionResponse::path(dag, "open back-door path", &path)
    } else {
        CriterionResponse::valid("the set blocks every back-door path and contains no descendant of the treatment")
    })
}

/// Answers `/v1/causal/frontdoor` (422 on a cycle, unknown names or overlapping sets). The check
/// is linear in the graph; `stop` is polled once the graph is built.
pub fn frontdoor(
    req: &FrontdoorRequest,
    opts: &CausalOptions,
    stop: &dyn Fn() -> bool,
) -> Result<CriterionResponse, CausalError> {
    frontdoor_with(req, stop, || CheckedGraph::from_spec(&req.dag, &opts.graph).map(Box::new))
}

/// [`frontdoor`] over the graph `graph` gives (see [`validate_with`]).
pub fn frontdoor_with<G: std::ops::Deref<Target = CheckedGraph>>(
    req: &FrontdoorRequest,
    stop: &dyn Fn() -> bool,
    graph: impl FnOnce() -> Result<G, CausalError>,
) -> Result<CriterionResponse, CausalError> {
    let checked = graph()?;
    let dag = checked.dag()?;
    let [x, y, m] = criterion_inputs(dag, &req.treatment, &req.outcome, &req.mediators, "mediators", stop)?;
    Ok(match dag.frontdoor_check(&x, &y, &m) {
        None => CriterionResponse::valid(
            "the set intercepts every directed path from treatment to outcome, no back-door path from the \
             treatment reaches it, and the treatment blocks every back-door path from it to the outcome",
        ),
        Some(FrontdoorFailure::Latent(ids)) => {
            let names = dag.sorted_names(ids);
            CriterionResponse::offending(format!("latent nodes cannot be measured: {}", names.join(", ")), names)
        }
        Some(FrontdoorFailure::NoDirectedPath) => {
            CriterionResponse::path(dag, "no directed path leads from treatment to outcome", &[])
        }
        Some(FrontdoorFailure::Unintercepted(p)) => {
            CriterionResponse::path(dag, "directed path not intercepted by the set", &p)
        }
        Some(FrontdoorFailure::BackdoorToMediator(p)) => {
            CriterionResponse::path(dag, "open back-door path from the treatment to the set", &p)
        }
        Some(FrontdoorFailure::BackdoorToOutcome(p)) => {
            CriterionResponse::path(dag, "back-door path from the set to the outcome not blocked by the treatment", &p)
        }
    })
}

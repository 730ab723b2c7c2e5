//! From the DAG JSON to a checked graph: [`DagSpec`] (as sent) → [`Graph`] (names resolved,
//! adjacency built, maybe cyclic) → [`Dag`] (proved acyclic, with a topological order).

use std::collections::HashMap;

use petgraph::graph::{DiGraph, NodeIndex};
use serde::{Deserialize, Serialize};

use crate::error::CausalError;

/// Index of a node in a [`Graph`]: nodes are numbered `0..node_count()` in the order they first
/// appear in the spec (`nodes`, then edge endpoints). A canonical spec numbers them by name.
pub type NodeId = u32;

/// The causal-graph JSON of the HTTP contract, exactly as sent:
/// `{"nodes": [...], "edges": [["A","B"], ...], "latent": [...]}`.
///
/// `nodes` is optional (nodes named in edges are added); `latent` names unobserved nodes, which
/// are never part of an adjustment set.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DagSpec {
    /// Node names; may be omitted when every node appears in an edge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodes: Option<Vec<String>>,
    /// Directed edges `[from, to]`.
    #[serde(default)]
    pub edges: Vec<[String; 2]>,
    /// Names of unobserved nodes.
    #[serde(default)]
    pub latent: Vec<String>,
}

impl DagSpec {
    /// The canonical form: `nodes` always present, holding every node (listed or named by an
    /// edge) sorted and without duplicates; edges sorted (duplicates kept, so the duplicate-edge
    /// warning survives); latent sorted without duplicates. Two specs describing the same graph
    /// with nodes and edges in any order have the same canonical form.
    pub fn canonical(&self) -> DagSpec {
        // Intern names, sort the distinct ones once, then sort edges as pairs of ranks: string
        // comparisons happen only among distinct names.
        let mut ids: HashMap<&str, u32> = HashMap::with_capacity(self.nodes.as_ref().map_or(0, Vec::len) + 16);
        let mut names: Vec<&str> = Vec::new();
        for name in self.nodes.iter().flatten() {
            intern(&mut ids, &mut names, name);
        }
        let edges: Vec<(u32, u32)> = self
            .edges
            .iter()
            .map(|[a, b]| (intern(&mut ids, &mut names, a), intern(&mut ids, &mut names, b)))
            .collect();
        let mut order: Vec<u32> = (0..names.len() as u32).collect();
        order.sort_unstable_by(|&a, &b| names[a as usize].cmp(names[b as usize]));
        let mut rank = vec![0u32; names.len()];
        for (r, &id) in order.iter().enumerate() {
            rank[id as usize] = r as u32;
        }
        let mut ranked: Vec<(u32, u32)> = edges.iter().map(|&(a, b)| (rank[a as usize], rank[b as usize])).collect();
        ranked.sort_unstable();
        let sorted_names: Vec<String> = order.iter().map(|&id| names[id as usize].to_owned()).collect();
        let mut latent: Vec<&str> = self.latent.iter().map(String::as_str).collect();
        latent.sort_unstable();
        latent.dedup();
        DagSpec {
            edges: ranked
                .into_iter()
                .map(|(a, b)| [sorted_names[a as usize].clone(), sorted_names[b as usize].clone()])
                .collect(),
            nodes: Some(sorted_names),
            latent: latent.into_iter().map(str::to_owned).collect(),
        }
    }

    /// A 128-bit hash of the canonical form (xxh3), independent of node and edge order.
    pub fn canonical_hash(&self) -> u128 {
        let canonical = self.canonical();
        // Serialising plain strings and vectors cannot fail.
        let bytes = serde_json::to_vec(&canonical).unwrap_or_default();
        xxhash_rust::xxh3::xxh3_128(&bytes)
    }
}

/// The id of `name` in `names`, adding it when new.
fn intern<'a>(ids: &mut HashMap<&'a str, u32>, names: &mut Vec<&'a str>, name: &'a str) -> u32 {
    let next = names.len() as u32;
    let id = *ids.entry(name).or_insert(next);
    if id == next {
        names.push(name);
    }
    id
}

/// Size limits applied while building a [`Graph`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GraphLimits {
    /// Maximum number of distinct nodes.
    pub max_nodes: usize,
    /// Maximum number of edges as listed (duplicates count).
    pub max_edges: usize,
}

impl Default for GraphLimits {
    fn default() -> Self {
        GraphLimits { max_nodes: 10_000, max_edges: 100_000 }
    }
}

/// A directed graph with named nodes, built from a [`DagSpec`]; it may still contain cycles.
///
/// Invariants: every edge endpoint and latent name is a node; adjacency lists are sorted and
/// free of duplicates; self-loops are kept (they are cycles).
#[derive(Clone, Debug)]
pub struct Graph {
    names: Vec<String>,
    index: HashMap<String, NodeId>,
    parents: Adjacency,
    children: Adjacency,
    latent: Vec<bool>,
    edge_count: usize,
    duplicate_edges: Vec<(NodeId, NodeId)>,
    structure: DiGraph<(), ()>,
}

impl Graph {
    /// Builds the graph, checking names and limits. Fails on empty names, latent names that are
    /// not nodes, and counts over `limits`.
    pub fn from_spec(spec: &DagSpec, limits: &GraphLimits) -> Result<Graph, CausalError> {
        if spec.edges.len() > limits.max_edges {
            return Err(CausalError::TooManyEdges { count: spec.edges.len(), limit: limits.max_edges });
        }
        let mut names: Vec<String> = Vec::new();
        let mut index: HashMap<String, NodeId> = HashMap::new();
        let mut add = |name: &str, field: &str| -> Result<NodeId, CausalError> {
            if name.trim().is_empty() {
                return Err(CausalError::EmptyName { field: field.to_string() });
            }
            if let Some(&id) = index.get(name) {
                return Ok(id);
            }
            if names.len() >= limits.max_nodes {
                return Err(CausalError::TooManyNodes { count: names.len() + 1, limit: limits.max_nodes });
            }
            let id = names.len() as NodeId;
            names.push(name.to_string());
            index.insert(name.to_string(), id);
            Ok(id)
        };
        for name in spec.nodes.iter().flatten() {
            add(name, "dag.nodes")?;
        }
        let mut edge_ids = Vec::with_capacity(spec.edges.len());
        for [a, b] in &spec.edges {
            let a = add(a, "dag.edges")?;
            let b = add(b, "dag.edges")?;
            edge_ids.push((a, b));
        }
        let n = names.len();
        let mut unknown: Vec<String> = spec.latent.iter().filter(|l| !index.contains_key(*l)).cloned().collect();
        if !unknown.is_empty() {
            unknown.sort_unstable();
            unknown.dedup();
            return Err(CausalError::UnknownNodes { field: "dag.latent".into(), names: unknown });
        }
        let mut latent = vec![false; n];
        for l in &spec.latent {
            latent[index[l] as usize] = true;
        }
        let mut sorted = edge_ids.clone();
        sorted.sort_unstable();
        let mut duplicate_edges = Vec::new();
        let mut unique: Vec<(NodeId, NodeId)> = Vec::with_capacity(sorted.len());
        for e in sorted {
            if unique.last() == Some(&e) {
                if duplicate_edges.last() != Some(&e) {
                    duplicate_edges.push(e);
                }
            } else {
                unique.push(e);
            }
        }
        let mut structure = DiGraph::<(), ()>::with_capacity(n, unique.len());
        for _ in 0..n {
            structure.add_node(());
        }
        for &(a, b) in &unique {
            structure.add_edge(NodeIndex::new(a as usize), NodeIndex::new(b as usize), ());
        }
        let children = Adjacency::new(n, unique.iter().copied());
        let parents = Adjacency::new(n, unique.iter().map(|&(a, b)| (b, a)));
        Ok(Graph { names, index, parents, children, latent, edge_count: unique.len(), duplicate_edges, structure })
    }

    /// Number of nodes.
    pub fn node_count(&self) -> usize {
        self.names.len()
    }

    /// Number of distinct edges.
    pub fn edge_count(&self) -> usize {
        self.edge_count
    }

    /// Name of a node.
    pub fn name(&self, id: NodeId) -> &str {
        &self.names[id as usize]
    }

    /// All node names, indexed by [`NodeId`].
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The id of a name, if it is a node.
    pub fn id(&self, name: &str) -> Option<NodeId> {
        self.index.get(name).copied()
    }

    /// Resolves names to ids, sorted and deduplicated; `field` names the request field in the
    /// error listing every unknown name.
    pub fn resolve(&self, names: &[String], field: &str) -> Result<Vec<NodeId>, CausalError> {
        let mut ids = Vec::with_capacity(names.len());
        let mut unknown = Vec::new();
        for name in names {
            match self.id(name) {
                Some(id) => ids.push(id),
                None if name.trim().is_empty() => return Err(CausalError::EmptyName { field: field.into() }),
                None => unknown.push(name.clone()),
            }
        }
        if !unknown.is_empty() {
            unknown.sort_unstable();
            unknown.dedup();
            return Err(CausalError::UnknownNodes { field: field.into(), names: unknown });
        }
        ids.sort_unstable();
        ids.dedup();
        Ok(ids)
    }

    /// Names of the given ids, sorted by name.
    pub fn sorted_names(&self, ids: impl IntoIterator<Item = NodeId>) -> Vec<String> {
        let mut out: Vec<String> = ids.into_iter().map(|id| self.names[id as usize].clone()).collect();
        out.sort_unstable();
        out
    }

    /// Parents of a node, sorted.
    #[inline]
    pub fn parents(&self, id: NodeId) -> &[NodeId] {
        self.parents.of(id)
    }

    /// Children of a node, sorted.
    #[inline]
    pub fn children(&self, id: NodeId) -> &[NodeId] {
        self.children.of(id)
    }

    /// Whether the node is latent (unobserved).
    pub fn is_latent(&self, id: NodeId) -> bool {
        self.latent[id as usize]
    }

    /// Whether the edge `a -> b` exists.
    pub fn has_edge(&self, a: NodeId, b: NodeId) -> bool {
        self.children(a).binary_search(&b).is_ok()
    }

    /// Edges listed more than once in the spec, each once.
    pub fn duplicate_edges(&self) -> &[(NodeId, NodeId)] {
        &self.duplicate_edges
    }

    /// One directed cycle as a closed walk `[a, b, ..., a]` starting at its smallest node id, or
    /// `None` when the graph is acyclic.
    /// The cycle is a shortest one through the node petgraph's topological sort stopped at, so
    /// the answer depends only on the graph (and node numbering), never on hashing.
    pub fn find_cycle(&self) -> Option<Vec<NodeId>> {
        let start = match petgraph::algo::toposort(&self.structure, None) {
            Ok(_) => return None,
            Err(cycle) => cycle.node_id().index() as NodeId,
        };
        // Breadth-first search from the start's children back to the start.
        let n = self.node_count();
        let mut pred = vec![NodeId::MAX; n];
        let mut queue = std::collections::VecDeque::new();
        for &c in self.children(start) {
            if c == start {
                return Some(vec![start, start]);
            }
            if pred[c as usize] == NodeId::MAX {
                pred[c as usize] = start;
                queue.push_back(c);
            }
        }
        while let Some(v) = queue.pop_front() {
            for &c in self.children(v) {
                if c == start {
                    let mut back = vec![v];
                    let mut cur = v;
                    while pred[cur as usize] != start {
                        cur = pred[cur as usize];
                        back.push(cur);
                    }
                    let mut walk = Vec::with_capacity(back.len() + 2);
                    walk.push(start);
                    walk.extend(back.iter().rev());
                    walk.push(start);
                    return Some(rotate_to_smallest(walk));
                }
                if pred[c as usize] == NodeId::MAX {
                    pred[c as usize] = v;
                    queue.push_back(c);
                }
            }
        }
        // toposort reported a cycle through `start`, so the search above always closes it.
        None
    }
}

/// Compressed adjacency lists (CSR): the neighbours of `v` are `targets[offsets[v]..offsets[v+1]]`,
/// sorted. One allocation per direction keeps the hot loops of the queries cache-friendly.
#[derive(Clone, Debug)]
struct Adjacency {
    offsets: Vec<u32>,
    targets: Vec<NodeId>,
}

impl Adjacency {
    /// Builds from `(from, to)` pairs that are unique.
    fn new(n: usize, pairs: impl Iterator<Item = (NodeId, NodeId)> + Clone) -> Self {
        let mut offsets = vec![0u32; n + 1];
        for (a, _) in pairs.clone() {
            offsets[a as usize + 1] += 1;
        }
        for i in 0..n {
            offsets[i + 1] += offsets[i];
        }
        let mut fill = offsets.clone();
        let mut targets = vec![0; offsets[n] as usize];
        for (a, b) in pairs {
            targets[fill[a as usize] as usize] = b;
            fill[a as usize] += 1;
        }
        for v in 0..n {
            targets[offsets[v] as usize..offsets[v + 1] as usize].sort_unstable();
        }
        Adjacency { offsets, targets }
    }

    #[inline]
    fn of(&self, v: NodeId) -> &[NodeId] {
        &self.targets[self.offsets[v as usize] as usize..self.offsets[v as usize + 1] as usize]
    }
}

/// Rotates a closed walk `[a, ..., a]` so that it starts (and ends) at its smallest node id.
fn rotate_to_smallest(mut walk: Vec<NodeId>) -> Vec<NodeId> {
    walk.pop();
    let pos = walk.iter().enumerate().min_by_key(|(_, v)| **v).map_or(0, |(i, _)| i);
    walk.rotate_left(pos);
    walk.push(walk[0]);
    walk
}

/// A graph proved acyclic, with a topological order. All causal queries live on `Dag`.
#[derive(Clone, Debug)]
pub struct Dag {
    graph: Graph,
    topo: Vec<NodeId>,
}

impl Dag {
    /// Checks acyclicity; fails with [`CausalError::Cyclic`] naming one cycle.
    pub fn new(graph: Graph) -> Result<Dag, CausalError> {
        if let Some(cycle) = graph.find_cycle() {
            return Err(CausalError::Cyclic { cycle: cycle.iter().map(|&v| graph.name(v).to_string()).collect() });
        }
        Ok(Dag::ordered(graph))
    }

    /// The DAG of a graph already known to be acyclic.
    fn ordered(graph: Graph) -> Dag {
        // Kahn's algorithm with the smallest id first keeps the order deterministic.
        let n = graph.node_count();
        let mut indegree: Vec<usize> = (0..n).map(|v| graph.parents(v as NodeId).len()).collect();
        let mut ready: std::collections::BinaryHeap<std::cmp::Reverse<NodeId>> =
            (0..n as NodeId).filter(|&v| indegree[v as usize] == 0).map(std::cmp::Reverse).collect();
        let mut topo = Vec::with_capacity(n);
        while let Some(std::cmp::Reverse(v)) = ready.pop() {
            topo.push(v);
            for &c in graph.children(v) {
                indegree[c as usize] -= 1;
                if indegree[c as usize] == 0 {
                    ready.push(std::cmp::Reverse(c));
                }
            }
        }
        Dag { graph, topo }
    }

    /// Parses and checks a spec in one step.
    pub fn from_spec(spec: &DagSpec, limits: &GraphLimits) -> Result<Dag, CausalError> {
        Dag::new(Graph::from_spec(spec, limits)?)
    }

    /// The underlying graph.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// Nodes in a topological order (parents before children).
    pub fn topological_order(&self) -> &[NodeId] {
        &self.topo
    }

    /// Ancestors of `set` (the set included) as a membership vector.
    pub fn ancestors(&self, set: &[NodeId]) -> Vec<bool> {
        self.closure(set, |v| self.graph.parents(v))
    }

    /// Descendants of `set` (the set included) as a membership vector.
    pub fn descendants(&self, set: &[NodeId]) -> Vec<bool> {
        self.closure(set, |v| self.graph.children(v))
    }

    fn closure<'a>(&'a self, set: &[NodeId], next: impl Fn(NodeId) -> &'a [NodeId]) -> Vec<bool> {
        let mut seen = vec![false; self.graph.node_count()];
        let mut stack: Vec<NodeId> = Vec::with_capacity(set.len());
        for &v in set {
            if !seen[v as usize] {
                seen[v as usize] = true;
                stack.push(v);
            }
        }
        while let Some(v) = stack.pop() {
            for &w in next(v) {
                if !seen[w as usize] {
                    seen[w as usize] = true;
                    stack.push(w);
                }
            }
        }
        seen
    }
}

impl std::ops::Deref for Dag {
    type Target = Graph;
    fn deref(&self) -> &Graph {
        &self.graph
    }
}

/// A graph built and checked once, acyclic or not: what every causal route answers from. The
/// service caches it by the spec's canonical hash ([`DagSpec::canonical_hash`]), so the many
/// requests users send about one DAG skip building it.
///
/// Invariant: built from a spec by [`CheckedGraph::from_spec`] under some limits; a cyclic
/// graph keeps the cycle [`Graph::find_cycle`] names.
#[derive(Clone, Debug)]
pub enum CheckedGraph {
    /// Proved acyclic.
    Acyclic(Dag),
    /// Has a directed cycle.
    Cyclic {
        /// The graph.
        graph: Graph,
        /// One cycle as a closed walk of names (`["A", "B", "A"]`).
        cycle: Vec<String>,
    },
}

impl CheckedGraph {
    /// Builds the graph (the errors of [`Graph::from_spec`]) and checks acyclicity.
    pub fn from_spec(spec: &DagSpec, limits: &GraphLimits) -> Result<CheckedGraph, CausalError> {
        let graph = Graph::from_spec(spec, limits)?;
        Ok(match graph.find_cycle() {
            Some(cycle) => {
                let cycle = cycle.iter().map(|&v| graph.name(v).to_string()).collect();
                CheckedGraph::Cyclic { graph, cycle }
            }
            None => CheckedGraph::Acyclic(Dag::ordered(graph)),
        })
    }

    /// The graph, acyclic or not.
    pub fn graph(&self) -> &Graph {
        match self {
            CheckedGraph::Acyclic(dag) => dag.graph(),
            CheckedGraph::Cyclic { graph, .. } => graph,
        }
    }

    /// The DAG, or [`CausalError::Cyclic`] with the cycle (what [`Dag::from_spec`] answers).
    pub fn dag(&self) -> Result<&Dag, CausalError> {
        match self {
            CheckedGraph::Acyclic(dag) => Ok(dag),
            CheckedGraph::Cyclic { cycle, .. } => Err(CausalError::Cyclic { cycle: cycle.clone() }),
        }
    }

    /// An estimate of the heap bytes it holds (names, index, adjacency, petgraph's copy,
    /// topological order), for caches bounded by bytes.
    pub fn heap_bytes(&self) -> usize {
        let g = self.graph();
        let names: usize = g.names.iter().map(|n| n.len() + std::mem::size_of::<String>()).sum();
        let index = g.names.iter().map(|n| n.len() + std::mem::size_of::<String>() + 16).sum::<usize>();
        let edges = g.edge_count * (2 * std::mem::size_of::<NodeId>() + 32);
        let nodes = g.node_count() * (4 * std::mem::size_of::<NodeId>() + 32);
        std::mem::size_of::<CheckedGraph>() + names + index + edges + nodes
    }
}

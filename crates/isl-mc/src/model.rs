//! Structural causal models: the JSON form ([`ModelSpec`]) and the checked form
//! ([`CheckedModel`]: names resolved, parameters validated, expressions parsed, acyclic, nodes in
//! topological order, random slots numbered).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::api::McOptions;
use crate::dist::{Dist, VariateKind};
use crate::error::McError;
use crate::expr::{self, Expr, ParseError};

/// A coefficient or intercept: a number, or an uncertain belief drawn afresh in every sample.
/// In JSON: `2.5` or `{"dist": "normal", "mean": 2.5, "std": 0.3}`.
#[derive(Clone, Debug, PartialEq)]
pub enum Param {
    /// A known number.
    Value(f64),
    /// An uncertain belief.
    Belief(Dist),
}

impl Serialize for Param {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Param::Value(x) => s.serialize_f64(*x),
            Param::Belief(d) => d.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Param {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Param, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Param;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(r#"a number or a belief such as {"dist": "normal", "mean": 0, "std": 1}"#)
            }
            fn visit_f64<E: de::Error>(self, x: f64) -> Result<Param, E> {
                Ok(Param::Value(x))
            }
            fn visit_i64<E: de::Error>(self, x: i64) -> Result<Param, E> {
                Ok(Param::Value(x as f64))
            }
            fn visit_u64<E: de::Error>(self, x: u64) -> Result<Param, E> {
                Ok(Param::Value(x as f64))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Param, A::Error> {
                Dist::deserialize(de::value::MapAccessDeserializer::new(map)).map(Param::Belief)
            }
        }
        d.deserialize_any(V)
    }
}

/// One node of a model as sent. A *linear* node is `intercept + Σ coef·parent + noise`; an
/// *expression* node is `expr + noise` (and has no `intercept` or `parents`: its parents are the
/// names its expression uses). A node without `noise` is deterministic given its parents.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSpec {
    /// The node's name (unique; expressions can refer to names of the form `[A-Za-z_][A-Za-z0-9_]*`).
    pub name: String,
    /// Constant term of a linear node (0 when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intercept: Option<Param>,
    /// Coefficient of each parent of a linear node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parents: Option<BTreeMap<String, Param>>,
    /// Additive noise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noise: Option<Dist>,
    /// Expression over other nodes' names (see [`crate::expr`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expr: Option<String>,
}

/// A structural causal model as sent: nodes in any order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// The nodes.
    pub nodes: Vec<NodeSpec>,
}

impl ModelSpec {
    /// Canonical form: nodes sorted by name (parents are already sorted maps), point masses
    /// written as what they are ([`Dist::point_value`]: a coefficient or intercept belief with
    /// zero spread is its number; a noise point mass is `{"dist": "normal", "mean": c, "std": 0}`,
    /// dropped when `c` is 0), and the spelled-out defaults dropped — `"intercept": 0` and
    /// `"parents": {}` mean what their absence means — so equal models give equal cache keys and
    /// derived seeds.
    pub fn canonical(&self) -> ModelSpec {
        let mut nodes = self.nodes.clone();
        nodes.sort_by(|a, b| a.name.cmp(&b.name));
        let known = |p: &mut Param| {
            if let Param::Belief(d) = p
                && let Some(c) = d.point_value()
            {
                *p = Param::Value(c);
            }
        };
        for node in &mut nodes {
            if let Some(p) = node.intercept.as_mut() {
                known(p);
            }
            node.parents.iter_mut().flat_map(|m| m.values_mut()).for_each(known);
            if let Some(c) = node.noise.as_ref().and_then(Dist::point_value) {
                node.noise = (c != 0.0).then_some(Dist::Normal { mean: c, std: 0.0 });
            }
            if matches!(node.intercept, Some(Param::Value(v)) if v == 0.0) {
                node.intercept = None;
            }
            if node.parents.as_ref().is_some_and(BTreeMap::is_empty) {
                node.parents = None;
            }
        }
        ModelSpec { nodes }
    }
}

/// Index of a node in a [`CheckedModel`] (nodes are numbered in name order).
pub type NodeId = u32;

/// A coefficient or intercept after checking.
#[derive(Clone, Debug, PartialEq)]
pub enum Term {
    /// A known number.
    Fixed(f64),
    /// A belief drawn from random slot `slot`.
    Belief {
        /// Its distribution.
        dist: Dist,
        /// Its random slot.
        slot: u32,
    },
}

/// How a checked node computes its structural part (everything but the noise).
#[derive(Clone, Debug, PartialEq)]
pub enum Structure {
    /// `intercept + Σ coef·parent`, parents in name order.
    Linear {
        /// The intercept.
        intercept: Term,
        /// `(parent, coefficient)` pairs.
        terms: Vec<(NodeId, Term)>,
    },
    /// An expression over node ids.
    Expr(Expr<NodeId>),
}

/// A node after checking.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// Its name.
    pub name: String,
    /// Its structural part.
    pub structure: Structure,
    /// Its additive noise and the noise's random slot (`None` without noise, and for a point
    /// mass: see `noise_constant`).
    pub noise: Option<(Dist, u32)>,
    /// The value of a noise that is a point mass ([`Dist::point_value`], not 0): added like a
    /// constant, with no random slot and no density (evidence on the node is refused).
    pub noise_constant: Option<f64>,
    /// Its parents, sorted, without duplicates.
    pub parents: Vec<NodeId>,
}

/// What a random slot feeds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SlotRole {
    /// The intercept belief of a linear node.
    Intercept,
    /// The coefficient belief on a parent.
    Coefficient,
    /// The noise term.
    Noise,
}

/// One random input of a model: one belief or one noise term.
#[derive(Clone, Debug, PartialEq)]
pub struct Slot {
    /// `Demand.intercept`, `Demand<-Price` or `Demand.noise`.
    pub label: String,
    /// The node it belongs to.
    pub node: NodeId,
    /// What it feeds.
    pub role: SlotRole,
    /// Its distribution.
    pub dist: Dist,
}

impl Slot {
    /// The standard variate the slot draws (z or u).
    pub fn kind(&self) -> VariateKind {
        self.dist.kind()
    }
}

/// A validated model: acyclic, names resolved, nodes numbered in name order, a topological order,
/// and the random slots. Slots are numbered node by node in name order; within a node: the
/// intercept belief, the coefficient beliefs in parent-name order, then the noise. Numbering
/// depends only on the model, so two questions about one model share their random numbers.
#[derive(Clone, Debug)]
pub struct CheckedModel {
    nodes: Vec<Node>,
    order: Vec<NodeId>,
    slots: Vec<Slot>,
    index: HashMap<String, NodeId>,
}

impl CheckedModel {
    /// Checks a model: limits, names, parameters, expressions, parents, acyclicity.
    pub fn new(spec: &ModelSpec, opts: &McOptions) -> Result<CheckedModel, McError> {
        if spec.nodes.len() > opts.max_nodes {
            return Err(McError::TooManyNodes { count: spec.nodes.len(), limit: opts.max_nodes });
        }
        // Names: non-empty, unique; ids in name order.
        let mut sorted: Vec<(usize, &NodeSpec)> = spec.nodes.iter().enumerate().collect();
        for (_, n) in &sorted {
            if n.name.trim().is_empty() {
                return Err(McError::EmptyName { name: n.name.clone() });
            }
        }
        sorted.sort_by(|a, b| a.1.name.cmp(&b.1.name));
        for w in sorted.windows(2) {
            if w[0].1.name == w[1].1.name {
                return Err(McError::DuplicateName { name: w[0].1.name.clone() });
            }
        }
        let index: HashMap<String, NodeId> =
            sorted.iter().enumerate().map(|(id, (_, n))| (n.name.clone(), id as NodeId)).collect();

        // Shapes, parameters and expressions; unknown names are collected across all nodes.
        let mut unknown = BTreeSet::new();
        let mut parsed: Vec<Option<Expr>> = Vec::with_capacity(sorted.len());
        for (_, n) in &sorted {
            let name = &n.name;
            if let Some(noise) = &n.noise {
                noise.validate(&format!("{name}.noise"))?;
            }
            match &n.expr {
                Some(text) => {
                    if n.parents.is_some() || n.intercept.is_some() {
                        return Err(McError::InvalidNode {
                            node: name.clone(),
                            message: "an expression node takes no 'parents' or 'intercept' (its parents are the \
                                      names in its expression)"
                                .into(),
                        });
                    }
                    if text.len() > opts.max_expr_len {
                        return Err(McError::ExpressionTooLong {
                            node: name.clone(),
                            length: text.len(),
                            limit: opts.max_expr_len,
                        });
                    }
                    let e = expr::parse(text, opts.max_expr_depth).map_err(|err| match err {
                        ParseError::Syntax { position, expected, found } => {
                            McError::ExpressionSyntax { node: name.clone(), position, expected, found }
                        }
                        ParseError::TooDeep { position } => {
                            McError::ExpressionTooDeep { node: name.clone(), position, limit: opts.max_expr_depth }
                        }
                    })?;
                    e.for_each_var(&mut |v: &String| {
                        if !index.contains_key(v) {
                            unknown.insert(v.clone());
                        }
                    });
                    parsed.push(Some(e));
                }
                None => {
                    if let Some(p) = &n.intercept {
                        check_param(p, &format!("{name}.intercept"))?;
                    }
                    for (parent, p) in n.parents.iter().flatten() {
                        check_param(p, &format!("{name}<-{parent}"))?;
                        if !index.contains_key(parent) {
                            unknown.insert(parent.clone());
                        }
                    }
                    parsed.push(None);
                }
            }
        }
        if !unknown.is_empty() {
            return Err(McError::UnknownNodes { field: "parents".into(), names: unknown.into_iter().collect() });
        }

        // Resolve, number the slots.
        let mut nodes = Vec::with_capacity(sorted.len());
        let mut slots = Vec::new();
        let id_of = |v: &String| -> Result<NodeId, McError> {
            index
                .get(v)
                .copied()
                .ok_or_else(|| McError::UnknownNodes { field: "parents".into(), names: vec![v.clone()] })
        };
        for (id, ((_, n), e)) in sorted.iter().zip(parsed).enumerate() {
            let id = id as NodeId;
            let mut new_slot = |label: String, role: SlotRole, dist: &Dist| -> u32 {
                slots.push(Slot { label, node: id, role, dist: dist.clone() });
                (slots.len() - 1) as u32
            };
            let (structure, mut parents) = match e {
                Some(e) => {
                    let e = e.try_map_vars(&mut |v| id_of(v))?;
                    let mut parents = Vec::new();
                    e.for_each_var(&mut |&v| parents.push(v));
                    (Structure::Expr(e), parents)
                }
                None => {
                    let intercept = match &n.intercept {
                        None => Term::Fixed(0.0),
                        Some(Param::Value(x)) => Term::Fixed(*x),
                        Some(Param::Belief(d)) if let Some(x) = d.point_value() => Term::Fixed(x),
                        Some(Param::Belief(d)) => Term::Belief {
                            dist: d.clone(),
                            slot: new_slot(format!("{}.intercept", n.name), SlotRole::Intercept, d),
                        },
                    };
                    let mut terms = Vec::new();
                    for (parent, p) in n.parents.iter().flatten() {
                        let term = match p {
                            Param::Value(x) => Term::Fixed(*x),
                            Param::Belief(d) if let Some(x) = d.point_value() => Term::Fixed(x),
                            Param::Belief(d) => Term::Belief {
                                dist: d.clone(),
                                slot: new_slot(format!("{}<-{parent}", n.name), SlotRole::Coefficient, d),
                            },
                        };
                        terms.push((id_of(parent)?, term));
                    }
                    let parents = terms.iter().map(|t| t.0).collect();
                    (Structure::Linear { intercept, terms }, parents)
                }
            };
            parents.sort_unstable();
            parents.dedup();
            let (noise, noise_constant) = match &n.noise {
                None => (None, None),
                Some(d) => match d.point_value() {
                    Some(c) => (None, (c != 0.0).then_some(c)),
                    None => (Some((d.clone(), new_slot(format!("{}.noise", n.name), SlotRole::Noise, d))), None),
                },
            };
            nodes.push(Node { name: n.name.clone(), structure, noise, noise_constant, parents });
        }

        let order = topological_order(&nodes)?;
        Ok(CheckedModel { nodes, order, slots, index })
    }

    /// The nodes, indexed by [`NodeId`] (name order).
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// Node ids in topological order (parents first; among ready nodes, the smallest name first).
    pub fn order(&self) -> &[NodeId] {
        &self.order
    }

    /// The random slots, indexed by slot number.
    pub fn slots(&self) -> &[Slot] {
        &self.slots
    }

    /// The id of a node name.
    pub fn id(&self, name: &str) -> Option<NodeId> {
        self.index.get(name).copied()
    }

    /// A node's name.
    pub fn name(&self, id: NodeId) -> &str {
        &self.nodes[id as usize].name
    }

    /// Resolves names, or lists the unknown ones (sorted) in an error naming `field`.
    pub fn resolve<'a>(
        &self,
        names: impl IntoIterator<Item = &'a String>,
        field: &str,
    ) -> Result<Vec<NodeId>, McError> {
        let mut ids = Vec::new();
        let mut unknown = BTreeSet::new();
        for n in names {
            match self.id(n) {
                Some(id) => ids.push(id),
                None => {
                    unknown.insert(n.clone());
                }
            }
        }
        if unknown.is_empty() {
            Ok(ids)
        } else {
            Err(McError::UnknownNodes { field: field.into(), names: unknown.into_iter().collect() })
        }
    }
}

fn check_param(p: &Param, at: &str) -> Result<(), McError> {
    match p {
        Param::Value(x) if !x.is_finite() => {
            Err(McError::InvalidParameter { at: at.into(), message: "must be a finite number".into() })
        }
        Param::Value(_) => Ok(()),
        Param::Belief(d) => d.validate(at),
    }
}

/// Kahn's algorithm with a min-heap (smallest id = smallest name first); on a cycle, one cycle.
fn topological_order(nodes: &[Node]) -> Result<Vec<NodeId>, McError> {
    let n = nodes.len();
    let mut children: Vec<Vec<NodeId>> = vec![Vec::new(); n];
    let mut indegree = vec![0usize; n];
    for (v, node) in nodes.iter().enumerate() {
        for &p in &node.parents {
            children[p as usize].push(v as NodeId);
            indegree[v] += 1;
        }
    }
    let mut ready: std::collections::BinaryHeap<std::cmp::Reverse<NodeId>> =
        (0..n).filter(|&v| indegree[v] == 0).map(|v| std::cmp::Reverse(v as NodeId)).collect();
    let mut order = Vec::with_capacity(n);
    while let Some(std::cmp::Reverse(v)) = ready.pop() {
        order.push(v);
        for &c in &children[v as usize] {
            indegree[c as usize] -= 1;
            if indegree[c as usize] == 0 {
                ready.push(std::cmp::Reverse(c));
            }
        }
    }
    if order.len() == n {
        return Ok(order);
    }
    let cycle = find_cycle(nodes, &children);
    Err(McError::Cyclic { cycle: cycle.iter().map(|&v| nodes[v as usize].name.clone()).collect() })
}

/// One cycle as a closed walk from the smallest node on any cycle: Tarjan's strongly connected
/// components (iterative), then a breadth-first search inside that node's component.
fn find_cycle(nodes: &[Node], children: &[Vec<NodeId>]) -> Vec<NodeId> {
    let n = nodes.len();
    let comp = strongly_connected(children);
    let mut size = vec![0usize; n];
    for &c in &comp {
        size[c] += 1;
    }
    let on_cycle = |v: usize| size[comp[v]] > 1 || children[v].contains(&(v as NodeId));
    let Some(start) = (0..n).find(|&v| on_cycle(v)) else {
        return Vec::new();
    };
    if children[start].contains(&(start as NodeId)) {
        return vec![start as NodeId, start as NodeId];
    }
    // Shortest path start -> ... -> start inside the component; children are visited in id order.
    let mut pred = vec![usize::MAX; n];
    let mut queue = std::collections::VecDeque::from([start]);
    while let Some(v) = queue.pop_front() {
        let mut next: Vec<NodeId> = children[v].iter().copied().filter(|&c| comp[c as usize] == comp[start]).collect();
        next.sort_unstable();
        for c in next {
            let c = c as usize;
            if c == start {
                let mut back = Vec::new();
                let mut cur = v;
                while cur != start {
                    back.push(cur as NodeId);
                    cur = pred[cur];
                }
                let mut walk = vec![start as NodeId];
                walk.extend(back.iter().rev());
                walk.push(start as NodeId);
                return walk;
            }
            if pred[c] == usize::MAX {
                pred[c] = v;
                queue.push_back(c);
            }
        }
    }
    Vec::new()
}

/// Component index of every node (iterative Tarjan).
fn strongly_connected(children: &[Vec<NodeId>]) -> Vec<usize> {
    let n = children.len();
    const UNSEEN: usize = usize::MAX;
    let mut index = vec![UNSEEN; n];
    let mut low = vec![0usize; n];
    let mut on_stack = vec![false; n];
    let mut comp = vec![UNSEEN; n];
    let mut stack = Vec::new();
    let mut next_index = 0;
    let mut next_comp = 0;
    let mut call: Vec<(usize, usize)> = Vec::new();
    for root in 0..n {
        if index[root] != UNSEEN {
            continue;
        }
        call.push((root, 0));
        while let Some(top) = call.len().checked_sub(1) {
            let (v, edge) = call[top];
            if edge == 0 && index[v] == UNSEEN {
                index[v] = next_index;
                low[v] = next_index;
                next_index += 1;
                stack.push(v);
                on_stack[v] = true;
            }
            if let Some(&c) = children[v].get(edge) {
                call[top].1 += 1;
                let c = c as usize;
                if index[c] == UNSEEN {
                    call.push((c, 0));
                } else if on_stack[c] {
                    low[v] = low[v].min(index[c]);
                }
                continue;
            }
            call.pop();
            if let Some(&(parent, _)) = call.last() {
                low[parent] = low[parent].min(low[v]);
            }
            if low[v] == index[v] {
                while let Some(w) = stack.pop() {
                    on_stack[w] = false;
                    comp[w] = next_comp;
                    if w == v {
                        break;
                    }
                }
                next_comp += 1;
            }
        }
    }
    comp
}

//! d-separation by reachability (the "Bayes-ball" algorithm of Shachter 1998, in the form of
//! Koller & Friedman, Algorithm 3.1): one query costs O(nodes + edges), never a path
//! enumeration. A [`DSeparation`] keeps its scratch buffers between queries, so many queries on
//! one graph pay the per-graph work once.

use crate::graph::{Dag, NodeId};

const UP: u32 = 0; // arrived from a child (or started here): may go to parents and children
const DOWN: u32 = 1; // arrived from a parent: may go to children; to parents only at open colliders
const NONE: u32 = u32::MAX;

/// A reusable d-separation engine over one [`Dag`].
///
/// Every query may also remove the outgoing edges of a set of nodes (`cut`), which gives the
/// graphs `G_{\underline{X}}` used by the back-door, front-door and instrument criteria without
/// copying the graph.
pub struct DSeparation<'d> {
    dag: &'d Dag,
    stamp: u32,
    in_z: Vec<u32>,
    an_z: Vec<u32>,
    cut: Vec<u32>,
    target: Vec<u32>,
    seen: Vec<u32>,
    relevant: Vec<u32>,
    reached: Vec<u32>,
    pred: Vec<u32>,
    queue: Vec<u32>,
}

/// Result of a reachability sweep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sweep {
    /// No target is d-connected to the sources.
    Separated,
    /// A target is d-connected; the path is present when it was asked for (sources first).
    Connected(Option<Vec<NodeId>>),
}

impl<'d> DSeparation<'d> {
    /// Allocates the scratch space for queries on `dag`.
    pub fn new(dag: &'d Dag) -> Self {
        let n = dag.node_count();
        DSeparation {
            dag,
            stamp: 0,
            in_z: vec![0; n],
            an_z: vec![0; n],
            cut: vec![0; n],
            target: vec![0; n],
            seen: vec![0; 2 * n],
            relevant: vec![0; n],
            reached: vec![0; n],
            pred: vec![NONE; 2 * n],
            queue: Vec::with_capacity(2 * n),
        }
    }

    fn next_stamp(&mut self) {
        if self.stamp == u32::MAX - 1 {
            for buf in [
                &mut self.in_z,
                &mut self.an_z,
                &mut self.cut,
                &mut self.target,
                &mut self.reached,
                &mut self.seen,
                &mut self.relevant,
            ] {
                buf.fill(0);
            }
            self.stamp = 0;
        }
        self.stamp += 1;
    }

    /// Whether `x` and `y` are d-separated given `z`. The sets should be disjoint; a node in both
    /// `x` and `y` makes them connected.
    pub fn separated(&mut self, x: &[NodeId], y: &[NodeId], z: &[NodeId]) -> bool {
        matches!(self.sweep(x, Some(y), z, &[], false), Sweep::Separated)
    }

    /// Whether `x` and `y` are d-separated given `z` in the graph without the outgoing edges of
    /// `cut`.
    pub fn separated_cut(&mut self, x: &[NodeId], y: &[NodeId], z: &[NodeId], cut: &[NodeId]) -> bool {
        matches!(self.sweep(x, Some(y), z, cut, false), Sweep::Separated)
    }

    /// One d-connecting path from `x` to `y` given `z` in the graph without the outgoing edges of
    /// `cut`, or `None` when they are d-separated. The path is a shortest one in the search's
    /// state space; it starts in `x` and ends in `y`.
    pub fn open_path(&mut self, x: &[NodeId], y: &[NodeId], z: &[NodeId], cut: &[NodeId]) -> Option<Vec<NodeId>> {
        match self.sweep(x, Some(y), z, cut, true) {
            Sweep::Separated => None,
            Sweep::Connected(path) => path,
        }
    }

    /// Every node d-connected to `x` given `z` in the graph without the outgoing edges of `cut`
    /// (the members of `x` themselves included), as a membership vector.
    pub fn reachable(&mut self, x: &[NodeId], z: &[NodeId], cut: &[NodeId]) -> Vec<bool> {
        self.sweep(x, None, z, cut, false);
        let stamp = self.stamp;
        self.reached.iter().map(|&s| s == stamp).collect()
    }

    /// The core sweep: breadth-first over (node, direction) states.
    pub fn sweep(
        &mut self,
        x: &[NodeId],
        y: Option<&[NodeId]>,
        z: &[NodeId],
        cut: &[NodeId],
        want_path: bool,
    ) -> Sweep {
        self.next_stamp();
        let s = self.stamp;
        let g = self.dag.graph();
        for &v in cut {
            self.cut[v as usize] = s;
        }
        for &v in y.unwrap_or(&[]) {
            self.target[v as usize] = s;
        }
        // Ancestors of z (z included) in the cut graph: the colliders that are open.
        for &v in z {
            self.in_z[v as usize] = s;
        }
        mark_ancestors(self.dag, z.iter().copied(), &mut self.an_z, &self.cut, s, &mut self.queue);
        // With targets, only ancestors of targets ∪ z matter: a walk that steps down into any
        // other node can neither reach a target nor bounce at an open collider.
        let prune = y.is_some();
        if let Some(y) = y {
            mark_ancestors(self.dag, y.iter().chain(z).copied(), &mut self.relevant, &self.cut, s, &mut self.queue);
        }
        self.queue.clear();
        for &v in x {
            let state = 2 * v + UP;
            if self.seen[state as usize] != s {
                self.seen[state as usize] = s;
                self.pred[state as usize] = NONE;
                self.queue.push(state);
            }
        }
        let mut head = 0;
        while head < self.queue.len() {
            let state = self.queue[head];
            head += 1;
            let v = state / 2;
            let dir = state % 2;
            let vi = v as usize;
            let blocked = self.in_z[vi] == s;
            if !blocked {
                self.reached[vi] = s;
                if self.target[vi] == s {
                    let path = want_path.then(|| self.trace(state));
                    return Sweep::Connected(path);
                }
            }
            let go_children = !blocked && self.cut[vi] != s;
            let go_parents = if dir == UP { !blocked } else { self.an_z[vi] == s };
            if go_children {
                for &c in g.children(v) {
                    if !prune || self.relevant[c as usize] == s {
                        self.visit(2 * c + DOWN, state);
                    }
                }
            }
            if go_parents {
                for &p in g.parents(v) {
                    if self.cut[p as usize] != s {
                        self.visit(2 * p + UP, state);
                    }
                }
            }
        }
        Sweep::Separated
    }

    #[inline]
    fn visit(&mut self, state: u32, from: u32) {
        let seen = &mut self.seen[state as usize];
        if *seen != self.stamp {
            *seen = self.stamp;
            self.pred[state as usize] = from;
            self.queue.push(state);
        }
    }

    fn trace(&self, mut state: u32) -> Vec<NodeId> {
        let mut path = Vec::new();
        loop {
            let v = state / 2;
            if path.last() != Some(&v) {
                path.push(v);
            }
            let p = self.pred[state as usize];
            if p == NONE {
                break;
            }
            state = p;
        }
        path.reverse();
        path
    }
}

/// Marks `seeds` and their ancestors with `stamp` in `marks`, not following edges out of nodes
/// whose `cut` mark is `stamp`.
fn mark_ancestors(
    dag: &Dag,
    seeds: impl Iterator<Item = NodeId>,
    marks: &mut [u32],
    cut: &[u32],
    stamp: u32,
    stack: &mut Vec<u32>,
) {
    stack.clear();
    for v in seeds {
        if marks[v as usize] != stamp {
            marks[v as usize] = stamp;
            stack.push(v);
        }
    }
    while let Some(v) = stack.pop() {
        for &p in dag.parents(v) {
            if cut[p as usize] != stamp && marks[p as usize] != stamp {
                marks[p as usize] = stamp;
                stack.push(p);
            }
        }
    }
}

impl Dag {
    /// Whether `x` and `y` are d-separated given `z` (one-off; use [`DSeparation`] for many).
    pub fn d_separated(&self, x: &[NodeId], y: &[NodeId], z: &[NodeId]) -> bool {
        DSeparation::new(self).separated(x, y, z)
    }

    /// Renders a path with its edge directions, e.g. `X <- U -> Y`.
    pub fn render_path(&self, path: &[NodeId]) -> String {
        let mut out = String::new();
        for (i, &v) in path.iter().enumerate() {
            if i > 0 {
                let u = path[i - 1];
                out.push_str(if self.has_edge(u, v) { " -> " } else { " <- " });
            }
            out.push_str(self.name(v));
        }
        out
    }
}

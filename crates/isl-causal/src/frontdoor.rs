//! Pearl's front-door criterion and instrumental variables.
//!
//! A set `M` of observed nodes satisfies the front-door criterion for `(X, Y)` when
//! 1. at least one directed path leads from `X` to `Y`, and `M` intercepts all of them;
//! 2. there is no unblocked back-door path from `X` to `M`: `X ⊥ M` in `G_{\underline{X}}`;
//! 3. every back-door path from `M` to `Y` is blocked by `X`: `M ⊥ Y | X` in `G_{\underline{M}}`.
//!
//! Condition 2 holds for a set exactly when it holds for each member, and a set that fails
//! condition 3 in `G_{\underline{M}}` keeps failing it for every subset of `M` that contains the
//! failing member (removing edges can only close paths). Hence every front-door set lies inside
//! the largest one, found by a fixpoint: start from the nodes passing condition 2, drop those
//! still d-connected to `Y` given `X`, repeat. Minimal sets are then searched inside it by
//! increasing size, within a budget of criterion checks.

use crate::backdoor::SetList;
use crate::dsep::DSeparation;
use crate::error::CausalError;
use crate::graph::{Dag, NodeId};

/// Why a proposed mediator set fails the front-door criterion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrontdoorFailure {
    /// Members that are latent.
    Latent(Vec<NodeId>),
    /// No directed path leads from the treatment to the outcome.
    NoDirectedPath,
    /// A directed path from treatment to outcome that avoids the set.
    Unintercepted(Vec<NodeId>),
    /// An open back-door path from the treatment to a member (treatment first).
    BackdoorToMediator(Vec<NodeId>),
    /// A back-door path from a member to the outcome not blocked by the treatment (member first).
    BackdoorToOutcome(Vec<NodeId>),
}

/// Reusable scratch for "does a directed path from x reach y while avoiding a set?".
struct DirectedReach {
    mark: Vec<u32>,
    stamp: u32,
    stack: Vec<NodeId>,
}

impl DirectedReach {
    fn new(n: usize) -> Self {
        DirectedReach { mark: vec![0; n], stamp: 0, stack: Vec::new() }
    }

    /// Whether some directed path from `x` reaches `y` without entering `avoid`.
    fn reaches(&mut self, dag: &Dag, x: &[NodeId], y: &[NodeId], avoid: &[NodeId]) -> bool {
        if self.stamp >= u32::MAX - 3 {
            self.mark.fill(0);
            self.stamp = 0;
        }
        let (seen, target) = (self.stamp + 1, self.stamp + 2);
        self.stamp += 2;
        for &v in y {
            self.mark[v as usize] = target;
        }
        for &v in avoid {
            self.mark[v as usize] = seen;
        }
        self.stack.clear();
        for &v in x {
            self.mark[v as usize] = seen;
            self.stack.push(v);
        }
        while let Some(v) = self.stack.pop() {
            for &c in dag.children(v) {
                let m = self.mark[c as usize];
                if m == target {
                    return true;
                }
                if m != seen {
                    self.mark[c as usize] = seen;
                    self.stack.push(c);
                }
            }
        }
        false
    }
}

/// Default number of criterion checks spent searching minimal front-door sets.
pub const DEFAULT_FRONTDOOR_BUDGET: usize = 2_000;

impl Dag {
    /// Checks the front-door criterion for `m` relative to `(x, y)`; `None` means valid. The sets
    /// must be disjoint (the caller checks).
    pub fn frontdoor_check(&self, x: &[NodeId], y: &[NodeId], m: &[NodeId]) -> Option<FrontdoorFailure> {
        let latent: Vec<NodeId> = m.iter().copied().filter(|&v| self.is_latent(v)).collect();
        if !latent.is_empty() {
            return Some(FrontdoorFailure::Latent(latent));
        }
        let mut ds = DSeparation::new(self);
        self.frontdoor_failure(&mut ds, x, y, m)
    }

    fn frontdoor_failure(
        &self,
        ds: &mut DSeparation<'_>,
        x: &[NodeId],
        y: &[NodeId],
        m: &[NodeId],
    ) -> Option<FrontdoorFailure> {
        if self.directed_path(x, y, &[]).is_none() {
            return Some(FrontdoorFailure::NoDirectedPath);
        }
        if let Some(path) = self.directed_path(x, y, m) {
            return Some(FrontdoorFailure::Unintercepted(path));
        }
        if let Some(path) = ds.open_path(x, m, &[], x) {
            return Some(FrontdoorFailure::BackdoorToMediator(path));
        }
        if let Some(path) = ds.open_path(m, y, x, m) {
            return Some(FrontdoorFailure::BackdoorToOutcome(path));
        }
        None
    }

    /// A shortest directed path from `x` to `y` that avoids `avoid`, if any.
    pub fn directed_path(&self, x: &[NodeId], y: &[NodeId], avoid: &[NodeId]) -> Option<Vec<NodeId>> {
        let n = self.node_count();
        const UNSEEN: u32 = u32::MAX - 1;
        const ROOT: u32 = u32::MAX;
        let mut pred = vec![UNSEEN; n];
        let mut is_target = vec![false; n];
        for &v in y {
            is_target[v as usize] = true;
        }
        for &v in avoid {
            pred[v as usize] = ROOT; // never entered
        }
        let mut queue = std::collections::VecDeque::new();
        for &v in x {
            pred[v as usize] = ROOT;
            queue.push_back(v);
        }
        while let Some(v) = queue.pop_front() {
            for &c in self.children(v) {
                if pred[c as usize] != UNSEEN {
                    continue;
                }
                pred[c as usize] = v;
                if is_target[c as usize] {
                    let mut path = vec![c];
                    let mut cur = c;
                    while pred[cur as usize] != ROOT {
                        cur = pred[cur as usize];
                        path.push(cur);
                    }
                    path.reverse();
                    return Some(path);
                }
                queue.push_back(c);
            }
        }
        None
    }

    /// The largest front-door set for `(x, y)`, or `None` when no front-door set exists.
    pub fn maximal_frontdoor_set(&self, x: &[NodeId], y: &[NodeId]) -> Option<Vec<NodeId>> {
        self.directed_path(x, y, &[])?;
        let n = self.node_count();
        let mut excluded = vec![false; n];
        for &v in x.iter().chain(y) {
            excluded[v as usize] = true;
        }
        let mut ds = DSeparation::new(self);
        let confounded = ds.reachable(x, &[], x);
        let mut m: Vec<NodeId> = (0..n as NodeId)
            .filter(|&v| !excluded[v as usize] && !self.is_latent(v) && !confounded[v as usize])
            .collect();
        loop {
            let open = ds.reachable(y, x, &m);
            let before = m.len();
            m.retain(|&v| !open[v as usize]);
            if m.len() == before {
                break;
            }
        }
        if self.directed_path(x, y, &m).is_some() {
            return None;
        }
        Some(m)
    }

    /// Lists inclusion-minimal front-door sets for `(x, y)` by increasing size, at most
    /// `max_sets`, spending at most `budget` criterion checks; `truncated` is set when either
    /// bound cut the search short.
    pub fn minimal_frontdoor_sets(
        &self,
        x: &[NodeId],
        y: &[NodeId],
        max_sets: usize,
        budget: usize,
        stop: &dyn Fn() -> bool,
    ) -> Result<SetList, CausalError> {
        let Some(maximal) = self.maximal_frontdoor_set(x, y) else {
            return Ok(SetList::default());
        };
        // Members of a minimal set either lie on a directed path from x to y (condition 1) or
        // remove an edge of an open path from another member to y given x (condition 3); every
        // node of such a path is an ancestor of its end points or of x. Others never matter.
        let on_path = {
            let de_x = self.descendants(x);
            let an_y = self.ancestors(y);
            move |v: NodeId| de_x[v as usize] && an_y[v as usize]
        };
        let mediators: Vec<NodeId> = maximal.iter().copied().filter(|&v| on_path(v)).collect();
        let anchors: Vec<NodeId> = mediators.iter().chain(x).chain(y).copied().collect();
        let relevant = self.ancestors(&anchors);
        let universe: Vec<NodeId> = maximal.into_iter().filter(|&v| relevant[v as usize]).collect();
        let mut ds = DSeparation::new(self);
        let mut reach = DirectedReach::new(self.node_count());
        let mut out = SetList::default();
        let mut checks = 0usize;
        let mut visited = 0usize;
        let u = universe.len();
        for k in 1..=u {
            // Lexicographic k-combinations of positions into `universe`.
            let mut idx: Vec<usize> = (0..k).collect();
            loop {
                visited += 1;
                if visited.is_multiple_of(64) && stop() {
                    return Err(CausalError::Interrupted);
                }
                let set: Vec<NodeId> = idx.iter().map(|&i| universe[i]).collect();
                let dominated = out.sets.iter().any(|found| found.iter().all(|v| set.binary_search(v).is_ok()));
                if !dominated {
                    if checks == budget {
                        out.truncated = true;
                        return Ok(out);
                    }
                    checks += 1;
                    // Condition 2 holds for every subset of the universe; a causal path exists.
                    let valid = !reach.reaches(self, x, y, &set) && ds.separated_cut(&set, y, x, &set);
                    if valid {
                        if out.sets.len() == max_sets {
                            out.truncated = true;
                            return Ok(out);
                        }
                        out.sets.push(set);
                    }
                }
                // Advance to the next combination.
                let mut j = k;
                while j > 0 && idx[j - 1] == u - k + j - 1 {
                    j -= 1;
                }
                if j == 0 {
                    break;
                }
                idx[j - 1] += 1;
                for t in j..k {
                    idx[t] = idx[t - 1] + 1;
                }
            }
        }
        Ok(out)
    }

    /// Observed nodes that are instruments for `(x, y)`: not `x`, `y` or a descendant of `x`,
    /// d-connected to `x`, and d-separated from `y` once the edges out of `x` are removed.
    pub fn instruments(&self, x: &[NodeId], y: &[NodeId]) -> Vec<NodeId> {
        let mut ds = DSeparation::new(self);
        let relevant = ds.reachable(x, &[], &[]);
        let leaks = ds.reachable(y, &[], x);
        let de_x = self.descendants(x);
        let mut is_y = vec![false; self.node_count()];
        for &v in y {
            is_y[v as usize] = true;
        }
        (0..self.node_count() as NodeId)
            .filter(|&v| {
                let i = v as usize;
                !self.is_latent(v) && !de_x[i] && !is_y[i] && relevant[i] && !leaks[i]
            })
            .collect()
    }
}

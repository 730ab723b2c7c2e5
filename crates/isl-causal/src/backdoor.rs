//! The back-door criterion: checking a given adjustment set, and listing every inclusion-minimal
//! one with polynomial delay.
//!
//! A set `Z` of observed nodes satisfies the back-door criterion for `(X, Y)` when no member of
//! `Z` is a descendant of `X` and `Z` d-separates `X` from `Y` in `G_{\underline{X}}` (the graph
//! without the edges out of `X`), i.e. it blocks every path that enters `X` through an arrow.
//!
//! Listing follows van der Zander, Liśkiewicz & Textor, "Separators and adjustment sets in causal
//! graphs" (AIJ 2019): every minimal back-door set lies inside `A = An(X ∪ Y)` of
//! `G_{\underline{X}}`, and there d-separation is vertex separation in the moral graph of
//! `G_{\underline{X}}[A]`. Minimal `X`–`Y` vertex separators avoiding the forbidden vertices
//! (latent nodes, descendants of `X`, `X` and `Y`) are then listed by the branching of
//! [`list_minimal_separators`]: each search state fixes a connected set `S ⊇ X` that must lie
//! on `X`'s side and a set `I` that must be in the separator, and the separator closest to `S`
//! decides in linear time whether the state holds any answer. Every state visited yields an
//! answer or is a failed child of one that did, so the delay between answers is
//! `O(|Z|·(n + m))`.

use std::rc::Rc;

use crate::dsep::DSeparation;
use crate::error::CausalError;
use crate::graph::{Dag, NodeId};

/// The verdict on one proposed adjustment set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackdoorVerdict {
    /// Whether the set satisfies the back-door criterion.
    pub valid: bool,
    /// Latent members of the set (which cannot be adjusted for).
    pub latent: Vec<NodeId>,
    /// Members of the set that are descendants of the treatment.
    pub descendants: Vec<NodeId>,
    /// A back-door path the set leaves open, treatment first.
    pub open_path: Option<Vec<NodeId>>,
}

/// Minimal sets found by an enumeration, and whether the list was cut at `max_sets`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SetList {
    /// Each set sorted by node id; the list in the order found.
    pub sets: Vec<Vec<NodeId>>,
    /// True when more sets exist than were returned.
    pub truncated: bool,
}

impl Dag {
    /// Checks the back-door criterion for `z` relative to `(x, y)`. The three sets must be
    /// disjoint (the caller checks).
    pub fn backdoor_check(&self, x: &[NodeId], y: &[NodeId], z: &[NodeId]) -> BackdoorVerdict {
        let latent: Vec<NodeId> = z.iter().copied().filter(|&v| self.is_latent(v)).collect();
        let de_x = self.descendants(x);
        let descendants: Vec<NodeId> = z.iter().copied().filter(|&v| de_x[v as usize]).collect();
        let open_path = DSeparation::new(self).open_path(x, y, z, x);
        let valid = latent.is_empty() && descendants.is_empty() && open_path.is_none();
        BackdoorVerdict { valid, latent, descendants, open_path }
    }

    /// Lists the inclusion-minimal back-door sets of observed nodes for `(x, y)`, at most
    /// `max_sets` of them. `stop` is polled between search states; when it returns true the
    /// listing ends with [`CausalError::Interrupted`].
    pub fn minimal_backdoor_sets(
        &self,
        x: &[NodeId],
        y: &[NodeId],
        max_sets: usize,
        stop: &dyn Fn() -> bool,
    ) -> Result<SetList, CausalError> {
        let n = self.node_count();
        // A = An(X ∪ Y) in G without the edges out of X.
        let mut is_x = vec![false; n];
        for &v in x {
            is_x[v as usize] = true;
        }
        let mut in_a = vec![false; n];
        let mut stack: Vec<NodeId> = Vec::new();
        for &v in x.iter().chain(y) {
            if !in_a[v as usize] {
                in_a[v as usize] = true;
                stack.push(v);
            }
        }
        while let Some(v) = stack.pop() {
            for &p in self.parents(v) {
                if !is_x[p as usize] && !in_a[p as usize] {
                    in_a[p as usize] = true;
                    stack.push(p);
                }
            }
        }
        let members: Vec<NodeId> = (0..n as NodeId).filter(|&v| in_a[v as usize]).collect();
        let mut local = vec![u32::MAX; n];
        for (i, &v) in members.iter().enumerate() {
            local[v as usize] = i as u32;
        }
        // Moral graph of G_{\underline X}[A], in linear size: instead of marrying the parents of
        // a node pairwise (quadratic in its in-degree), a hub vertex that can never be in a
        // separator joins the node and all its parents. Removing allowed vertices then
        // disconnects exactly what it disconnects in the moral graph.
        let de_x = self.descendants(x);
        let mut adj: Vec<Vec<u32>> = vec![Vec::new(); members.len()];
        let mut role = vec![Role::Allowed; members.len()];
        for (i, &v) in members.iter().enumerate() {
            if self.is_latent(v) || de_x[v as usize] {
                role[i] = Role::Forbidden;
            }
        }
        for (i, &v) in members.iter().enumerate() {
            let pa: Vec<u32> =
                self.parents(v).iter().filter(|&&p| !is_x[p as usize]).map(|&p| local[p as usize]).collect();
            match pa.len() {
                0 => {}
                1 => {
                    adj[i].push(pa[0]);
                    adj[pa[0] as usize].push(i as u32);
                }
                _ => {
                    let hub = adj.len() as u32;
                    adj.push(Vec::with_capacity(pa.len() + 1));
                    role.push(Role::Forbidden);
                    for &p in pa.iter().chain(std::iter::once(&(i as u32))) {
                        adj[hub as usize].push(p);
                        adj[p as usize].push(hub);
                    }
                }
            }
        }
        for &v in y {
            role[local[v as usize] as usize] = Role::Target;
        }
        for &v in x {
            role[local[v as usize] as usize] = Role::Source;
        }
        let sources: Vec<u32> = x.iter().map(|&v| local[v as usize]).collect();
        let found = list_minimal_separators(&adj, &role, &sources, max_sets, stop)?;
        let sets = found
            .sets
            .into_iter()
            .map(|set| {
                let mut ids: Vec<NodeId> = set.into_iter().map(|i| members[i as usize]).collect();
                ids.sort_unstable();
                ids
            })
            .collect();
        Ok(SetList { sets, truncated: found.truncated })
    }
}

/// What a vertex may be in [`list_minimal_separators`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// May belong to a separator.
    Allowed,
    /// Never in a separator (it lies on some side).
    Forbidden,
    /// One of the vertices to separate from (the `X` side).
    Source,
    /// One of the vertices to separate (the `Y` side).
    Target,
}

/// Lists inclusion-minimal vertex separators between the `Source` and `Target` vertices of an
/// undirected graph (`adj`, symmetric lists) that use only `Allowed` vertices, at most
/// `max_sets`, with polynomial delay. `sources` lists the `Source` vertices. Sets are returned
/// as sorted vertex lists; `truncated` is exact (another separator exists).
///
/// Each search state is X's side of its parent's answer plus one vertex, so the state is
/// computed incrementally: only the newly absorbed region and the target's component are
/// traversed, never the whole side again.
pub fn list_minimal_separators(
    adj: &[Vec<u32>],
    role: &[Role],
    sources: &[u32],
    max_sets: usize,
    stop: &dyn Fn() -> bool,
) -> Result<SetList, CausalError> {
    let mut search = SeparatorSearch::new(adj, role);
    let mut out = SetList::default();
    let mut pending: Vec<State> = vec![State {
        side: Rc::new(Bits::new(adj.len())),
        boundary: Rc::new(Vec::new()),
        add: Add::Sources(sources),
        forced: Rc::new(Vec::new()),
        forced_len: 0,
    }];
    while let Some(state) = pending.pop() {
        if stop() {
            return Err(CausalError::Interrupted);
        }
        let Some((side, z0)) = search.closest(&state) else {
            continue;
        };
        if out.sets.len() == max_sets {
            out.truncated = true;
            break;
        }
        // Children: for the j-th vertex v of Z0 \ I, v joins X's side and the vertices before it
        // join I. All children share one list: I followed by Z0 \ I; child j forces a prefix.
        // Pushed in reverse so the first child is explored first.
        let forced_now = &state.forced[..state.forced_len];
        let mut shared: Vec<u32> = forced_now.to_vec();
        shared.extend(z0.iter().copied().filter(|v| !forced_now.contains(v)));
        let shared = Rc::new(shared);
        let side = Rc::new(side);
        let z0 = Rc::new(z0);
        for j in (state.forced_len..shared.len()).rev() {
            pending.push(State {
                side: Rc::clone(&side),
                boundary: Rc::clone(&z0),
                add: Add::One(shared[j]),
                forced: Rc::clone(&shared),
                forced_len: j,
            });
        }
        out.sets.push(z0.to_vec());
    }
    Ok(out)
}

/// What a search state adds to X's side.
#[derive(Clone, Copy)]
enum Add<'a> {
    /// The root: the source vertices.
    Sources(&'a [u32]),
    /// One vertex of the parent's separator.
    One(u32),
}

impl Add<'_> {
    fn as_slice(&self) -> &[u32] {
        match self {
            Add::Sources(s) => s,
            Add::One(v) => std::slice::from_ref(v),
        }
    }
}

/// A search state: vertices `side ∪ add` must lie on X's side and `forced[..forced_len]` in the
/// separator. `side` is closed (X's full side of the parent's separator) and `boundary` is its
/// neighbourhood, the parent's separator; the root has an empty side and adds the sources.
struct State<'a> {
    side: Rc<Bits>,
    boundary: Rc<Vec<u32>>,
    add: Add<'a>,
    forced: Rc<Vec<u32>>,
    forced_len: usize,
}

/// A fixed-size bitset.
#[derive(Clone, Debug)]
struct Bits(Vec<u64>);

impl Bits {
    fn new(n: usize) -> Self {
        Bits(vec![0; n.div_ceil(64)])
    }
    #[inline]
    fn get(&self, i: u32) -> bool {
        self.0[(i / 64) as usize] >> (i % 64) & 1 == 1
    }
    #[inline]
    fn set(&mut self, i: u32) {
        self.0[(i / 64) as usize] |= 1 << (i % 64);
    }
}

/// Scratch space for the closest-separator oracle.
struct SeparatorSearch<'a> {
    adj: &'a [Vec<u32>],
    role: &'a [Role],
    mark: Vec<u32>,
    stamp: u32,
    queue: Vec<u32>,
}

// Marks, relative to the current stamp base.
const BOUNDARY: u32 = 1;
const IN_CY: u32 = 2;
const IN_Z0: u32 = 3;
const MARKS: u32 = 4;

impl<'a> SeparatorSearch<'a> {
    fn new(adj: &'a [Vec<u32>], role: &'a [Role]) -> Self {
        SeparatorSearch { adj, role, mark: vec![0; adj.len()], stamp: 0, queue: Vec::new() }
    }

    /// For a state: if some minimal separator Z ⊆ Allowed has `side ∪ add` on X's side and
    /// `forced ⊆ Z`, returns X's full side of the separator closest to that set, and the
    /// separator (sorted).
    fn closest(&mut self, state: &State<'_>) -> Option<(Bits, Vec<u32>)> {
        if self.stamp > u32::MAX - 2 * MARKS {
            self.mark.fill(0);
            self.stamp = 0;
        }
        let base = self.stamp;
        self.stamp += MARKS;
        // 1. S' = side ∪ add, closed under forbidden neighbours; its boundary B' starts as the
        //    parent's separator. Meeting a target means no separator exists.
        let add = state.add.as_slice();
        let mut s = (*state.side).clone();
        let mut boundary: Vec<u32> = Vec::with_capacity(state.boundary.len() + 8);
        for &b in state.boundary.iter() {
            if !add.contains(&b) {
                self.mark[b as usize] = base + BOUNDARY;
                boundary.push(b);
            }
        }
        self.queue.clear();
        for &v in add {
            s.set(v);
            self.queue.push(v);
        }
        let mut head = 0;
        while head < self.queue.len() {
            let u = self.queue[head];
            head += 1;
            for &w in &self.adj[u as usize] {
                if s.get(w) || self.mark[w as usize] == base + BOUNDARY {
                    continue;
                }
                match self.role[w as usize] {
                    Role::Target => return None,
                    Role::Forbidden | Role::Source => {
                        s.set(w);
                        self.queue.push(w);
                    }
                    Role::Allowed => {
                        self.mark[w as usize] = base + BOUNDARY;
                        boundary.push(w);
                    }
                }
            }
        }
        // 2. The target's component outside S' ∪ B'; Z0 = boundary vertices touching it.
        self.queue.clear();
        for (v, role) in self.role.iter().enumerate() {
            if *role == Role::Target {
                self.mark[v] = base + IN_CY;
                self.queue.push(v as u32);
            }
        }
        let mut z0: Vec<u32> = Vec::new();
        let mut head = 0;
        while head < self.queue.len() {
            let u = self.queue[head];
            head += 1;
            for &w in &self.adj[u as usize] {
                let m = self.mark[w as usize];
                if m == base + BOUNDARY {
                    self.mark[w as usize] = base + IN_Z0;
                    z0.push(w);
                } else if m != base + IN_CY && m != base + IN_Z0 && !s.get(w) {
                    self.mark[w as usize] = base + IN_CY;
                    self.queue.push(w);
                }
            }
        }
        // 3. Every forced vertex must be in Z0.
        if state.forced[..state.forced_len].iter().any(|&v| self.mark[v as usize] != base + IN_Z0) {
            return None;
        }
        // 4. X's full side of Z0: S' plus everything reachable from B' \ Z0 without crossing Z0.
        self.queue.clear();
        for &b in &boundary {
            if self.mark[b as usize] == base + BOUNDARY {
                s.set(b);
                self.queue.push(b);
            }
        }
        let mut head = 0;
        while head < self.queue.len() {
            let u = self.queue[head];
            head += 1;
            for &w in &self.adj[u as usize] {
                if !s.get(w) && self.mark[w as usize] != base + IN_Z0 {
                    s.set(w);
                    self.queue.push(w);
                }
            }
        }
        z0.sort_unstable();
        Some((s, z0))
    }
}

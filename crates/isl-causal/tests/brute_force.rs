//! The causal algorithms against their definitions, computed the slow way: d-separation by
//! enumerating every simple path, adjustment and front-door sets by trying every subset.

use isl_causal::prelude::*;
use isl_causal::{FrontdoorFailure, NodeNames};
use proptest::prelude::*;

/// A small graph in plain form: `n` nodes, edges, latent flags.
#[derive(Clone, Debug)]
struct Small {
    n: usize,
    edges: Vec<(usize, usize)>,
    latent: Vec<bool>,
}

impl Small {
    fn spec(&self) -> DagSpec {
        DagSpec {
            nodes: Some((0..self.n).map(name).collect()),
            edges: self.edges.iter().map(|&(a, b)| [name(a), name(b)]).collect(),
            latent: (0..self.n).filter(|&v| self.latent[v]).map(name).collect(),
        }
    }

    fn dag(&self) -> Dag {
        Dag::from_spec(&self.spec(), &GraphLimits::default()).expect("generated graphs are acyclic")
    }

    /// The same graph without the edges out of `cut`.
    fn without_out_edges(&self, cut: &[usize]) -> Small {
        Small {
            n: self.n,
            edges: self.edges.iter().copied().filter(|(a, _)| !cut.contains(a)).collect(),
            latent: self.latent.clone(),
        }
    }

    fn descendants(&self, set: &[usize]) -> Vec<bool> {
        let mut seen = vec![false; self.n];
        let mut stack: Vec<usize> = set.to_vec();
        for &v in set {
            seen[v] = true;
        }
        while let Some(v) = stack.pop() {
            for &(a, b) in &self.edges {
                if a == v && !seen[b] {
                    seen[b] = true;
                    stack.push(b);
                }
            }
        }
        seen
    }

    /// d-separation by the path definition: every simple path between X and Y is blocked.
    fn d_separated(&self, x: &[usize], y: &[usize], z: &[usize]) -> bool {
        let an_z: Vec<bool> = {
            // v is an ancestor of Z (or in Z) when some member of Z descends from v.
            (0..self.n).map(|v| self.descendants(&[v]).iter().enumerate().any(|(w, &d)| d && z.contains(&w))).collect()
        };
        let adjacent = |a: usize, b: usize| self.edges.contains(&(a, b)) || self.edges.contains(&(b, a));
        let mut open_found = false;
        for &s in x {
            let mut path = vec![s];
            self.walk(
                &mut path,
                y,
                &mut |p: &[usize]| {
                    let blocked = (1..p.len() - 1).any(|i| {
                        let (a, v, b) = (p[i - 1], p[i], p[i + 1]);
                        let collider = self.edges.contains(&(a, v)) && self.edges.contains(&(b, v));
                        if collider { !an_z[v] } else { z.contains(&v) }
                    });
                    if !blocked {
                        open_found = true;
                    }
                },
                &adjacent,
            );
        }
        !open_found
    }

    fn walk(
        &self,
        path: &mut Vec<usize>,
        y: &[usize],
        found: &mut dyn FnMut(&[usize]),
        adjacent: &dyn Fn(usize, usize) -> bool,
    ) {
        let last = *path.last().unwrap();
        if path.len() > 1 && y.contains(&last) {
            found(path);
            return;
        }
        for next in 0..self.n {
            if !path.contains(&next) && adjacent(last, next) {
                path.push(next);
                self.walk(path, y, found, adjacent);
                path.pop();
            }
        }
    }

    fn backdoor_valid(&self, x: &[usize], y: &[usize], z: &[usize]) -> bool {
        let de = self.descendants(x);
        z.iter().all(|&v| !self.latent[v] && !de[v]) && self.without_out_edges(x).d_separated(x, y, z)
    }

    fn directed_path_exists(&self, x: &[usize], y: &[usize], avoid: &[usize]) -> bool {
        let mut seen = vec![false; self.n];
        let mut stack: Vec<usize> = x.to_vec();
        while let Some(v) = stack.pop() {
            for &(a, b) in &self.edges {
                if a == v && !seen[b] && !avoid.contains(&b) {
                    if y.contains(&b) {
                        return true;
                    }
                    seen[b] = true;
                    stack.push(b);
                }
            }
        }
        false
    }

    fn frontdoor_valid(&self, x: &[usize], y: &[usize], m: &[usize]) -> bool {
        m.iter().all(|&v| !self.latent[v])
            && self.directed_path_exists(x, y, &[])
            && !self.directed_path_exists(x, y, m)
            && self.without_out_edges(x).d_separated(x, m, &[])
            && self.without_out_edges(m).d_separated(m, y, x)
    }

    /// All subsets of the observed nodes outside `x ∪ y`.
    fn candidate_subsets(&self, x: &[usize], y: &[usize]) -> Vec<Vec<usize>> {
        let pool: Vec<usize> = (0..self.n).filter(|v| !x.contains(v) && !y.contains(v) && !self.latent[*v]).collect();
        (0u32..1 << pool.len())
            .map(|mask| pool.iter().enumerate().filter(|(i, _)| mask >> i & 1 == 1).map(|(_, &v)| v).collect())
            .collect()
    }
}

fn name(i: usize) -> String {
    format!("N{i}")
}

fn minimal_of(valid: Vec<Vec<usize>>) -> Vec<Vec<String>> {
    let mut minimal: Vec<Vec<String>> = valid
        .iter()
        .filter(|s| !valid.iter().any(|t| t.len() < s.len() && t.iter().all(|v| s.contains(v))))
        .map(|s| {
            let mut names: Vec<String> = s.iter().map(|&v| name(v)).collect();
            names.sort();
            names
        })
        .collect();
    minimal.sort();
    minimal
}

fn names_of(dag: &Dag, sets: &[Vec<NodeId>]) -> Vec<Vec<String>> {
    let mut out: Vec<Vec<String>> = sets.iter().map(|s| dag.sorted_names(s.iter().copied())).collect();
    out.sort();
    out
}

fn ids(dag: &Dag, set: &[usize]) -> Vec<NodeId> {
    let mut v: Vec<NodeId> = set.iter().map(|&i| dag.id(&name(i)).unwrap()).collect();
    v.sort();
    v
}

/// Random DAGs on up to `max_n` nodes whose numbering is not a topological order.
fn small_dag(max_n: usize) -> impl Strategy<Value = Small> {
    (2..=max_n).prop_flat_map(|n| {
        (
            Just(n),
            proptest::collection::vec(any::<bool>(), n * (n - 1) / 2),
            proptest::collection::vec(any::<u64>(), n).prop_map(|keys| {
                let mut order: Vec<usize> = (0..keys.len()).collect();
                order.sort_by_key(|&i| keys[i]);
                order
            }),
            proptest::collection::vec(proptest::bool::weighted(0.2), n),
        )
            .prop_map(|(n, bits, order, latent)| {
                let mut edges = Vec::new();
                let mut k = 0;
                for i in 0..n {
                    for j in i + 1..n {
                        if bits[k] {
                            edges.push((order[i], order[j]));
                        }
                        k += 1;
                    }
                }
                Small { n, edges, latent }
            })
    })
}

/// Three disjoint node sets (x, y non-empty) drawn from a label per node.
fn split(n: usize, labels: &[u8]) -> Option<(Vec<usize>, Vec<usize>, Vec<usize>)> {
    let pick = |l: u8| (0..n).filter(|&v| labels[v] % 5 == l).collect::<Vec<_>>();
    let (x, y, z) = (pick(0), pick(1), pick(2));
    (!x.is_empty() && !y.is_empty()).then_some((x, y, z))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, .. ProptestConfig::default() })]

    #[test]
    fn d_separation_matches_path_definition(g in small_dag(7), labels in proptest::collection::vec(any::<u8>(), 7)) {
        let Some((x, y, z)) = split(g.n, &labels) else { return Ok(()); };
        let dag = g.dag();
        let expected = g.d_separated(&x, &y, &z);
        prop_assert_eq!(dag.d_separated(&ids(&dag, &x), &ids(&dag, &y), &ids(&dag, &z)), expected);
        // The reusable engine answers the same after unrelated queries.
        let mut ds = DSeparation::new(&dag);
        ds.separated(&ids(&dag, &y), &ids(&dag, &z), &[]);
        prop_assert_eq!(ds.separated(&ids(&dag, &x), &ids(&dag, &y), &ids(&dag, &z)), expected);
    }

    #[test]
    fn open_paths_are_open(g in small_dag(7), labels in proptest::collection::vec(any::<u8>(), 7)) {
        let Some((x, y, z)) = split(g.n, &labels) else { return Ok(()); };
        let dag = g.dag();
        let path = DSeparation::new(&dag).open_path(&ids(&dag, &x), &ids(&dag, &y), &ids(&dag, &z), &[]);
        prop_assert_eq!(path.is_none(), g.d_separated(&x, &y, &z));
        if let Some(path) = path {
            let p: Vec<usize> = path.iter().map(|&v| dag.name(v)[1..].parse().unwrap()).collect();
            prop_assert!(x.contains(&p[0]) && y.contains(p.last().unwrap()));
            // Consecutive nodes are adjacent.
            for w in p.windows(2) {
                prop_assert!(g.edges.contains(&(w[0], w[1])) || g.edges.contains(&(w[1], w[0])));
            }
            // When the path is simple, the path definition agrees that it is open.
            let mut sorted = p.clone();
            sorted.sort();
            sorted.dedup();
            if sorted.len() == p.len() {
                let sub = Small { n: g.n, edges: g.edges.clone(), latent: g.latent.clone() };
                let an_z = |v: usize| sub.descendants(&[v]).iter().enumerate().any(|(w, &d)| d && z.contains(&w));
                for i in 1..p.len() - 1 {
                    let collider = g.edges.contains(&(p[i - 1], p[i])) && g.edges.contains(&(p[i + 1], p[i]));
                    let open = if collider { an_z(p[i]) } else { !z.contains(&p[i]) };
                    prop_assert!(open);
                }
            }
        }
    }

    #[test]
    fn minimal_backdoor_sets_match_subset_search(g in small_dag(7), labels in proptest::collection::vec(any::<u8>(), 7)) {
        let Some((x, y, _)) = split(g.n, &labels) else { return Ok(()); };
        let dag = g.dag();
        let valid: Vec<Vec<usize>> = g.candidate_subsets(&x, &y).into_iter().filter(|z| g.backdoor_valid(&x, &y, z)).collect();
        let expected = minimal_of(valid);
        let got = dag.minimal_backdoor_sets(&ids(&dag, &x), &ids(&dag, &y), 10_000, &|| false).unwrap();
        prop_assert!(!got.truncated);
        prop_assert_eq!(names_of(&dag, &got.sets), expected.clone());
        // Truncation: exactly `k` of the sets, flagged, whenever more exist.
        if expected.len() > 1 {
            let k = expected.len() - 1;
            let cut = dag.minimal_backdoor_sets(&ids(&dag, &x), &ids(&dag, &y), k, &|| false).unwrap();
            prop_assert!(cut.truncated);
            prop_assert_eq!(cut.sets.len(), k);
            for s in names_of(&dag, &cut.sets) {
                prop_assert!(expected.contains(&s));
            }
        }
    }

    #[test]
    fn backdoor_check_matches_definition(g in small_dag(7), labels in proptest::collection::vec(any::<u8>(), 7)) {
        let Some((x, y, z)) = split(g.n, &labels) else { return Ok(()); };
        let dag = g.dag();
        let verdict = dag.backdoor_check(&ids(&dag, &x), &ids(&dag, &y), &ids(&dag, &z));
        prop_assert_eq!(verdict.valid, g.backdoor_valid(&x, &y, &z));
    }

    #[test]
    fn minimal_frontdoor_sets_match_subset_search(g in small_dag(7), labels in proptest::collection::vec(any::<u8>(), 7)) {
        let Some((x, y, z)) = split(g.n, &labels) else { return Ok(()); };
        let dag = g.dag();
        let valid: Vec<Vec<usize>> = g.candidate_subsets(&x, &y).into_iter().filter(|m| g.frontdoor_valid(&x, &y, m)).collect();
        let expected = minimal_of(valid);
        let got = dag.minimal_frontdoor_sets(&ids(&dag, &x), &ids(&dag, &y), 10_000, 1 << 20, &|| false).unwrap();
        prop_assert!(!got.truncated);
        prop_assert_eq!(names_of(&dag, &got.sets), expected);
        // The single-set check agrees with the definition too.
        let check = dag.frontdoor_check(&ids(&dag, &x), &ids(&dag, &y), &ids(&dag, &z));
        prop_assert_eq!(check.is_none(), g.frontdoor_valid(&x, &y, &z));
    }

    #[test]
    fn instruments_match_definition(g in small_dag(7), labels in proptest::collection::vec(any::<u8>(), 7)) {
        let Some((x, y, _)) = split(g.n, &labels) else { return Ok(()); };
        let dag = g.dag();
        let de = g.descendants(&x);
        let cut = g.without_out_edges(&x);
        let mut expected: Vec<String> = (0..g.n)
            .filter(|&v| !g.latent[v] && !de[v] && !y.contains(&v))
            .filter(|&v| !g.d_separated(&[v], &x, &[]) && cut.d_separated(&[v], &y, &[]))
            .map(name)
            .collect();
        expected.sort();
        prop_assert_eq!(dag.sorted_names(dag.instruments(&ids(&dag, &x), &ids(&dag, &y))), expected);
    }

    #[test]
    fn validate_is_independent_of_input_order(g in small_dag(7), seed in any::<u64>()) {
        let spec = g.spec();
        let mut shuffled = spec.clone();
        let mut rng = isl_causal::generate::SplitMix64::new(seed);
        for i in (1..shuffled.edges.len()).rev() {
            shuffled.edges.swap(i, rng.below(i as u64 + 1) as usize);
        }
        let nodes = shuffled.nodes.as_mut().unwrap();
        for i in (1..nodes.len()).rev() {
            nodes.swap(i, rng.below(i as u64 + 1) as usize);
        }
        prop_assert_eq!(spec.canonical(), shuffled.canonical());
        prop_assert_eq!(spec.canonical_hash(), shuffled.canonical_hash());
        let opts = CausalOptions::default();
        let ask = |dag: DagSpec| {
            let req = ValidateRequest { dag, treatment: Some(NodeNames::One("N0".into())), outcome: Some(NodeNames::One("N1".into())), max_sets: None };
            validate(&req.canonical(&opts), &opts, &|| false).unwrap()
        };
        prop_assert_eq!(ask(spec), ask(shuffled));
    }

    #[test]
    fn cycles_are_real_closed_walks(n in 2usize..8, raw in proptest::collection::vec((0usize..8, 0usize..8), 1..20)) {
        let edges: Vec<(usize, usize)> = raw.into_iter().map(|(a, b)| (a % n, b % n)).collect();
        let spec = DagSpec {
            nodes: Some((0..n).map(name).collect()),
            edges: edges.iter().map(|&(a, b)| [name(a), name(b)]).collect(),
            latent: vec![],
        };
        let graph = Graph::from_spec(&spec, &GraphLimits::default()).unwrap();
        // Acyclic exactly when a topological order exists (checked by repeated source removal).
        let mut remaining: Vec<usize> = (0..n).collect();
        let mut live = edges.clone();
        while let Some(pos) = remaining.iter().position(|&v| !live.iter().any(|&(_, b)| b == v)) {
            let v = remaining.remove(pos);
            live.retain(|&(a, _)| a != v);
        }
        let acyclic = remaining.is_empty();
        match graph.find_cycle() {
            None => prop_assert!(acyclic),
            Some(walk) => {
                prop_assert!(!acyclic);
                prop_assert!(walk.len() >= 2);
                prop_assert_eq!(walk.first(), walk.last());
                for w in walk.windows(2) {
                    prop_assert!(graph.has_edge(w[0], w[1]));
                }
            }
        }
    }
}

#[test]
fn frontdoor_failure_reasons_name_the_problem() {
    let spec: DagSpec =
        serde_json::from_str(r#"{"edges": [["U","X"],["U","Y"],["X","M"],["M","Y"],["X","Y"]], "latent": ["U"]}"#)
            .unwrap();
    let dag = Dag::from_spec(&spec, &GraphLimits::default()).unwrap();
    let id = |s: &str| dag.id(s).unwrap();
    match dag.frontdoor_check(&[id("X")], &[id("Y")], &[id("M")]) {
        Some(FrontdoorFailure::Unintercepted(p)) => assert_eq!(dag.render_path(&p), "X -> Y"),
        other => panic!("expected an unintercepted path, got {other:?}"),
    }
}

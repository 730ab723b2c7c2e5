//! Seeded random DAGs for tests and benchmarks. The same `(n, degree, latent share, seed)` gives
//! the same graph on every target, so Rust, Python peers and the HTTP bench see one workload.

use crate::graph::DagSpec;

/// SplitMix64: a tiny, well-mixed 64-bit generator (Steele, Lea & Flood 2014). Enough for
/// generating test graphs; not for statistics.
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform float in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// A uniform integer in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }
}

/// Parameters of [`random_dag`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RandomDagParams {
    /// Number of nodes, named `V0 .. V{n-1}` in a topological order.
    pub nodes: usize,
    /// Expected number of parents per node (capped by the nodes before it).
    pub avg_parents: f64,
    /// Parents are drawn among the `window` nodes just before a node (locality, as in real
    /// diagrams); `0` means all earlier nodes.
    pub window: usize,
    /// Probability that a node is latent.
    pub latent_share: f64,
    /// Seed.
    pub seed: u64,
}

/// A random DAG: node `i` draws each of the (up to `window`) nodes before it as a parent with
/// the probability that gives `avg_parents` parents on average.
pub fn random_dag(p: &RandomDagParams) -> DagSpec {
    let mut rng = SplitMix64::new(p.seed);
    let names: Vec<String> = (0..p.nodes).map(|i| format!("V{i}")).collect();
    let mut edges = Vec::new();
    let mut latent = Vec::new();
    for i in 0..p.nodes {
        let lo = if p.window == 0 { 0 } else { i.saturating_sub(p.window) };
        let candidates = i - lo;
        if candidates > 0 {
            let prob = (p.avg_parents / candidates as f64).min(1.0);
            for j in lo..i {
                if rng.next_f64() < prob {
                    edges.push([names[j].clone(), names[i].clone()]);
                }
            }
        }
        if rng.next_f64() < p.latent_share {
            latent.push(names[i].clone());
        }
    }
    DagSpec { nodes: Some(names), edges, latent }
}

/// The graph families of the causal benchmarks (`causal_vs_peers`, `isl bench --mix dsep-1000-*`):
/// `local` draws about 2 parents among the 25 nodes before (long ancestral chains, as in process
/// diagrams); `er` (any other name) is an Erdős–Rényi DAG over all earlier nodes with 1.5
/// parents on average (shallower ancestry). 10 % of nodes are latent in both.
pub fn benchmark_params(family: &str, nodes: usize, seed: u64) -> RandomDagParams {
    match family {
        "local" => RandomDagParams { nodes, avg_parents: 2.0, window: 25, latent_share: 0.1, seed },
        _ => RandomDagParams { nodes, avg_parents: 1.5, window: 0, latent_share: 0.1, seed },
    }
}

/// `count` d-separation queries on nodes `V0..V{nodes-1}` as the causal benchmarks draw them:
/// one node each side and up to 5 conditioning nodes, pairwise disjoint, as
/// `(x, y, given)` names.
pub fn benchmark_dsep_queries(nodes: usize, count: usize, rng: &mut SplitMix64) -> Vec<(String, String, Vec<String>)> {
    let name = |v: u64| format!("V{v}");
    let mut queries = Vec::with_capacity(count);
    while queries.len() < count && nodes >= 2 {
        let x = rng.below(nodes as u64);
        let y = rng.below(nodes as u64);
        let mut given: Vec<u64> = (0..5).map(|_| rng.below(nodes as u64)).collect();
        given.sort_unstable();
        given.dedup();
        if x == y || given.contains(&x) || given.contains(&y) {
            continue;
        }
        queries.push((name(x), name(y), given.iter().map(|&g| name(g)).collect()));
    }
    queries
}

//! The DAG cache: checked, indexed graphs kept by their canonical hash, shared by every causal
//! route, so that the many requests users send about one DAG skip decoding, canonicalising and
//! building it.
//!
//! Two maps, both bounded:
//! - *raw → canonical*: the xxh3-128 of the `dag` value's exact JSON text to its canonical hash
//!   ([`DagSpec::canonical_hash`]'s meaning), so a DAG sent again byte for byte is found without
//!   being parsed (bounded by entry count);
//! - *canonical → graph*: the [`CheckedGraph`] built from the canonical spec, bounded by the
//!   graphs' estimated heap bytes ([`CheckedGraph::heap_bytes`]), so a DAG spelled in another
//!   node or edge order shares the entry.
//!
//! Graphs are built under the service's one [`isl_causal::GraphLimits`], so an entry is valid for
//! every request that reaches it. Specs whose graph cannot be built (empty names, limits) are
//! not kept: their error is computed again.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use isl_causal::{CausalError, CheckedGraph, DagSpec, GraphLimits};
use quick_cache::Weighter;
use quick_cache::sync::Cache;

use crate::cache::KeyHasherBuilder;

/// A built graph and the canonical hash it is kept under.
#[derive(Clone, Debug)]
pub struct CachedGraph {
    /// xxh3-128 of the canonical spec's JSON: the graph's identity in cache keys and ETags.
    pub canonical_hash: u128,
    /// The graph, or why it could not be built (never kept in the cache).
    pub graph: Result<Arc<CheckedGraph>, CausalError>,
}

/// Shards of the graph map.
const GRAPH_SHARDS: usize = 4;

/// Bytes charged per graph on top of [`CheckedGraph::heap_bytes`].
const GRAPH_OVERHEAD_BYTES: u64 = 128;

#[derive(Clone, Copy, Debug, Default)]
struct GraphWeighter;

impl Weighter<u128, Arc<CheckedGraph>> for GraphWeighter {
    fn weight(&self, _key: &u128, graph: &Arc<CheckedGraph>) -> u64 {
        graph.heap_bytes() as u64 + GRAPH_OVERHEAD_BYTES
    }
}

/// Counters of the DAG cache, for `/metrics`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DagCacheSnapshot {
    /// Graphs found in the cache (by raw text or canonical hash).
    pub hits: u64,
    /// Graphs built.
    pub misses: u64,
    /// Estimated bytes the kept graphs hold.
    pub bytes: u64,
    /// Graphs kept.
    pub entries: u64,
    /// The byte bound.
    pub capacity_bytes: u64,
}

/// The DAG cache (see the module docs). `Send + Sync`; 0 bytes disables it.
pub struct DagCache {
    raw: Option<Cache<u128, u128, quick_cache::UnitWeighter, KeyHasherBuilder>>,
    graphs: Option<Cache<u128, Arc<CheckedGraph>, GraphWeighter, KeyHasherBuilder>>,
    capacity_bytes: u64,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl DagCache {
    /// A cache holding graphs of at most `capacity_bytes` in all (0: none) and the raw-text
    /// keys of at most `raw_entries` DAGs.
    pub fn new(capacity_bytes: u64, raw_entries: usize) -> DagCache {
        let graphs = (capacity_bytes > 0).then(|| {
            // Few shards: each holds `capacity / shards` and refuses a graph heavier than that
            // (a 10,000-node, 100,000-edge graph is about 5 MB), whatever the core count.
            let options = quick_cache::OptionsBuilder::new()
                .shards(GRAPH_SHARDS)
                .estimated_items_capacity(1024)
                .weight_capacity(capacity_bytes)
                .build();
            match options {
                Ok(options) => Cache::with_options(options, GraphWeighter, KeyHasherBuilder, Default::default()),
                // Unreachable: both required options are set.
                Err(_) => Cache::with(1024, capacity_bytes, GraphWeighter, KeyHasherBuilder, Default::default()),
            }
        });
        let raw = (capacity_bytes > 0 && raw_entries > 0).then(|| {
            Cache::with(
                raw_entries,
                raw_entries as u64,
                quick_cache::UnitWeighter,
                KeyHasherBuilder,
                Default::default(),
            )
        });
        DagCache { raw, graphs, capacity_bytes, hits: AtomicU64::new(0), misses: AtomicU64::new(0) }
    }

    /// The graph of the DAG whose JSON text is `raw` (the `dag` value as sent), from the cache
    /// or built under `limits` (and kept). `Err` when `raw` is not a DAG spec (the caller reports
    /// the parse error from the whole request, with its position).
    pub fn get_raw(&self, raw: &str, limits: &GraphLimits) -> Result<CachedGraph, serde_json::Error> {
        let raw_hash = xxhash_rust::xxh3::xxh3_128(raw.as_bytes());
        if let (Some(memo), Some(graphs)) = (&self.raw, &self.graphs)
            && let Some(canonical_hash) = memo.get(&raw_hash)
            && let Some(graph) = graphs.get(&canonical_hash)
        {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(CachedGraph { canonical_hash, graph: Ok(graph) });
        }
        let spec: DagSpec = serde_json::from_str(raw)?;
        let cached = self.get_spec(&spec, limits);
        if let Some(memo) = &self.raw
            && cached.graph.is_ok()
        {
            memo.insert(raw_hash, cached.canonical_hash);
        }
        Ok(cached)
    }

    /// The graph of `spec` (in any order), from the cache or built under `limits` (and kept).
    pub fn get_spec(&self, spec: &DagSpec, limits: &GraphLimits) -> CachedGraph {
        let canonical = spec.canonical();
        let canonical_hash = canonical_hash_of(&canonical);
        if let Some(graph) = self.graphs.as_ref().and_then(|g| g.get(&canonical_hash)) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return CachedGraph { canonical_hash, graph: Ok(graph) };
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let graph = CheckedGraph::from_spec(&canonical, limits).map(Arc::new);
        if let (Some(graphs), Ok(graph)) = (&self.graphs, &graph) {
            graphs.insert(canonical_hash, graph.clone());
        }
        CachedGraph { canonical_hash, graph }
    }

    /// Drops every graph (with the response cache's `/admin/cache/clear`).
    pub fn clear(&self) {
        if let Some(raw) = &self.raw {
            raw.clear();
        }
        if let Some(graphs) = &self.graphs {
            graphs.clear();
        }
    }

    /// Counters and size.
    pub fn snapshot(&self) -> DagCacheSnapshot {
        DagCacheSnapshot {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            bytes: self.graphs.as_ref().map_or(0, Cache::weight),
            entries: self.graphs.as_ref().map_or(0, |g| g.len() as u64),
            capacity_bytes: self.capacity_bytes,
        }
    }
}

/// xxh3-128 of a canonical spec's JSON ([`DagSpec::canonical_hash`] without canonicalising again).
fn canonical_hash_of(canonical: &DagSpec) -> u128 {
    // Serialising plain strings and vectors cannot fail.
    xxhash_rust::xxh3::xxh3_128(&serde_json::to_vec(canonical).unwrap_or_default())
}

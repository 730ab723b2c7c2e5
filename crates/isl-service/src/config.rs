//! Service configuration: limits, deadline, cache sizing, HTTP caching headers, admin token.

use std::collections::BTreeMap;

use isl_causal::CausalOptions;
use isl_elicit::ElicitOptions;
use isl_mc::{BackendChoice, McOptions};

/// `Cache-Control` values for successful compute responses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheControl {
    /// `max-age` in seconds (browsers and other private caches).
    pub max_age: u32,
    /// `s-maxage` in seconds (shared caches: CDNs).
    pub s_maxage: u32,
    /// `stale-while-revalidate` in seconds.
    pub stale_while_revalidate: u32,
}

impl Default for CacheControl {
    /// Answers are deterministic for an engine version (which is part of the ETag), so they may
    /// be cached for long: 5 minutes in browsers, a day at the CDN, one minute stale.
    fn default() -> Self {
        CacheControl { max_age: 300, s_maxage: 86_400, stale_while_revalidate: 60 }
    }
}

impl CacheControl {
    /// The header value: `public, max-age=N, s-maxage=M, stale-while-revalidate=S`.
    pub fn header_value(&self) -> String {
        format!(
            "public, max-age={}, s-maxage={}, stale-while-revalidate={}",
            self.max_age, self.s_maxage, self.stale_while_revalidate
        )
    }
}

/// In-process response cache sizing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheConfig {
    /// Capacity in bytes (bodies plus a fixed per-entry overhead); 0 disables the cache.
    pub capacity_bytes: u64,
    /// Entries older than this many seconds are treated as absent; 0 means no expiry.
    pub ttl_secs: u64,
    /// Independent shards (rounded to a power of two); more shards, less lock contention, but
    /// each shard holds `capacity_bytes / shards` and evicts on its own.
    pub shards: usize,
    /// Entries of the raw-request memo, which maps the exact bytes of a request already seen to
    /// its cache key so that repeats skip decoding and canonicalisation; 0 disables it.
    pub memo_entries: usize,
    /// Bytes of checked DAGs kept by their canonical hash for the causal routes (see
    /// [`crate::dag_cache`]); 0 disables the DAG cache.
    pub dag_bytes: u64,
    /// DAGs whose exact JSON text is remembered (so that a DAG sent again is not parsed).
    pub dag_memo_entries: usize,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            capacity_bytes: 64 * 1024 * 1024,
            ttl_secs: 3_600,
            shards: 8,
            memo_entries: 65_536,
            dag_bytes: 64 * 1024 * 1024,
            dag_memo_entries: 16_384,
        }
    }
}

/// Everything the service is configured with. Every field has a sensible default.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Largest request body (POST) or decoded `q` (GET) accepted, in bytes (default 1 MiB).
    pub max_body_bytes: usize,
    /// Causal engine limits and defaults (nodes, edges, queries, `max_sets` ceiling).
    pub causal: CausalOptions,
    /// Monte Carlo limits and defaults (model nodes, samples, quantiles, importance sampling).
    pub mc: McOptions,
    /// Preference elicitation limits and defaults (attributes, options, answers, particles,
    /// candidate questions, work bounds) and the particle filter's settings.
    pub elicit: ElicitOptions,
    /// The Monte Carlo backend for requests that name none (`auto`: the GPU for large runs
    /// where an accelerator is attached and faster than the CPU).
    pub mc_backend: BackendChoice,
    /// Time budget for one request's computation in milliseconds (default 10 s); past it the
    /// answer is 504.
    pub deadline_ms: u64,
    /// Response cache sizing.
    pub cache: CacheConfig,
    /// `Cache-Control` for compute routes without an entry in `route_cache_control`.
    pub cache_control: CacheControl,
    /// Per-route `Cache-Control`, keyed by path (e.g. `/v1/causal/validate`).
    pub route_cache_control: BTreeMap<String, CacheControl>,
    /// Bearer token for `/admin/*`; `None` disables the admin routes (401).
    pub admin_token: Option<String>,
    /// The most items in one `/v1/batch` request (422 `over_limit` beyond).
    pub batch_max_items: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_body_bytes: 1024 * 1024,
            causal: CausalOptions::default(),
            mc: McOptions::default(),
            elicit: ElicitOptions::default(),
            mc_backend: BackendChoice::Auto,
            deadline_ms: 10_000,
            cache: CacheConfig::default(),
            cache_control: CacheControl::default(),
            route_cache_control: BTreeMap::new(),
            admin_token: None,
            batch_max_items: 64,
        }
    }
}

impl Config {
    /// The `Cache-Control` policy of a route.
    pub fn cache_control_for(&self, path: &str) -> CacheControl {
        self.route_cache_control.get(path).copied().unwrap_or(self.cache_control)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_control_header_and_override() {
        let mut c = Config::default();
        assert_eq!(
            c.cache_control_for("/x").header_value(),
            "public, max-age=300, s-maxage=86400, stale-while-revalidate=60"
        );
        c.route_cache_control.insert("/x".into(), CacheControl { max_age: 1, s_maxage: 2, stale_while_revalidate: 3 });
        assert_eq!(c.cache_control_for("/x").header_value(), "public, max-age=1, s-maxage=2, stale-while-revalidate=3");
    }
}

//! Request metrics and their Prometheus text exposition (hand-written encoder).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use hdrhistogram::Histogram;

use crate::cache::CacheSnapshot;

/// Upper bounds (seconds) of the latency histogram buckets.
pub const LATENCY_BUCKETS: [f64; 15] =
    [0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Quantiles reported in the latency summary.
pub const QUANTILES: [f64; 3] = [0.5, 0.95, 0.99];

/// Route label for requests that matched no route.
pub const UNMATCHED: &str = "unmatched";

struct RouteMetrics {
    label: &'static str,
    statuses: Mutex<BTreeMap<u16, u64>>,
    buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    count: AtomicU64,
    sum_nanos: AtomicU64,
    /// Latency in microseconds, for quantiles; allocated on the route's first request (about
    /// 20 KB each), so a service that lives for one request — an edge instance — pays for one.
    hdr: Mutex<Option<Histogram<u64>>>,
}

impl RouteMetrics {
    fn new(label: &'static str) -> Self {
        RouteMetrics {
            label,
            statuses: Mutex::new(BTreeMap::new()),
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            count: AtomicU64::new(0),
            sum_nanos: AtomicU64::new(0),
            hdr: Mutex::new(None),
        }
    }
}

/// Per-route request counts and latencies, and Monte Carlo backend runs.
pub struct Metrics {
    routes: Vec<RouteMetrics>,
    /// Monte Carlo runs by (backend, outcome).
    backend_runs: Mutex<BTreeMap<(String, &'static str), u64>>,
}

impl Metrics {
    /// Metrics for the given route labels (plus [`UNMATCHED`]).
    pub fn new(labels: &[&'static str]) -> Metrics {
        let mut routes: Vec<RouteMetrics> = labels.iter().map(|&l| RouteMetrics::new(l)).collect();
        routes.push(RouteMetrics::new(UNMATCHED));
        Metrics { routes, backend_runs: Mutex::new(BTreeMap::new()) }
    }

    fn route(&self, label: &str) -> &RouteMetrics {
        let i = self.routes.iter().position(|r| r.label == label).unwrap_or(self.routes.len() - 1);
        &self.routes[i]
    }

    /// Records one answered request.
    pub fn record(&self, label: &str, status: u16, latency_nanos: u64) {
        let r = self.route(label);
        *lock(&r.statuses).entry(status).or_insert(0) += 1;
        let secs = latency_nanos as f64 / 1e9;
        for (bound, bucket) in LATENCY_BUCKETS.iter().zip(&r.buckets) {
            if secs <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        r.count.fetch_add(1, Ordering::Relaxed);
        r.sum_nanos.fetch_add(latency_nanos, Ordering::Relaxed);
        let mut hdr = lock(&r.hdr);
        if hdr.is_none() {
            // 1 µs to 100 s at two significant digits: small, and 1% is plenty for P50/P95/P99.
            *hdr = Histogram::new_with_bounds(1, 100_000_000, 2).ok();
        }
        if let Some(h) = hdr.as_mut() {
            h.saturating_record((latency_nanos / 1_000).max(1));
        }
    }

    /// Counts one Monte Carlo run: `backend` (`cpu`, `gpu`) and how it went (`answered`,
    /// `fallback` for a CPU run standing in for the GPU, `unsupported`, `device_error`).
    pub fn backend_run(&self, backend: &str, outcome: &'static str) {
        *lock(&self.backend_runs).entry((backend.to_string(), outcome)).or_insert(0) += 1;
    }

    /// Monte Carlo runs counted for (`backend`, `outcome`).
    pub fn backend_runs(&self, backend: &str, outcome: &str) -> u64 {
        lock(&self.backend_runs).iter().filter(|((b, o), _)| b == backend && *o == outcome).map(|(_, n)| n).sum()
    }

    /// Requests recorded with a status, for a route label.
    pub fn count(&self, label: &str, status: u16) -> u64 {
        lock(&self.route(label).statuses).get(&status).copied().unwrap_or(0)
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(
        &self,
        cache: &CacheSnapshot,
        dags: &crate::dag_cache::DagCacheSnapshot,
        uptime_secs: f64,
        info: &[(&str, &str)],
    ) -> String {
        let mut out = String::with_capacity(8192);
        let o = &mut out;
        header(o, "isl_build_info", "gauge", "Build information.");
        let labels: Vec<String> = info.iter().map(|(k, v)| format!("{k}=\"{}\"", escape(v))).collect();
        let _ = writeln!(o, "isl_build_info{{{}}} 1", labels.join(","));
        header(o, "isl_uptime_seconds", "gauge", "Seconds since the service started.");
        let _ = writeln!(o, "isl_uptime_seconds {uptime_secs:.3}");

        header(o, "isl_requests_total", "counter", "Requests answered, by route and status.");
        for r in &self.routes {
            for (status, n) in lock(&r.statuses).iter() {
                let _ = writeln!(o, "isl_requests_total{{route=\"{}\",status=\"{status}\"}} {n}", r.label);
            }
        }

        header(o, "isl_request_duration_seconds", "histogram", "Request latency, by route.");
        for r in self.routes.iter().filter(|r| r.count.load(Ordering::Relaxed) > 0) {
            for (bound, bucket) in LATENCY_BUCKETS.iter().zip(&r.buckets) {
                let _ = writeln!(
                    o,
                    "isl_request_duration_seconds_bucket{{route=\"{}\",le=\"{bound}\"}} {}",
                    r.label,
                    bucket.load(Ordering::Relaxed)
                );
            }
            let count = r.count.load(Ordering::Relaxed);
            let sum = r.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
            let _ = writeln!(o, "isl_request_duration_seconds_bucket{{route=\"{}\",le=\"+Inf\"}} {count}", r.label);
            let _ = writeln!(o, "isl_request_duration_seconds_sum{{route=\"{}\"}} {sum:.6}", r.label);
            let _ = writeln!(o, "isl_request_duration_seconds_count{{route=\"{}\"}} {count}", r.label);
        }

        header(o, "isl_request_latency_seconds", "summary", "Request latency quantiles (P50/P95/P99), by route.");
        for r in self.routes.iter().filter(|r| r.count.load(Ordering::Relaxed) > 0) {
            if let Some(h) = lock(&r.hdr).as_ref() {
                for q in QUANTILES {
                    let v = h.value_at_quantile(q) as f64 / 1e6;
                    let _ = writeln!(o, "isl_request_latency_seconds{{route=\"{}\",quantile=\"{q}\"}} {v:.6}", r.label);
                }
            }
            let count = r.count.load(Ordering::Relaxed);
            let sum = r.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
            let _ = writeln!(o, "isl_request_latency_seconds_sum{{route=\"{}\"}} {sum:.6}", r.label);
            let _ = writeln!(o, "isl_request_latency_seconds_count{{route=\"{}\"}} {count}", r.label);
        }

        header(o, "isl_mc_backend_runs_total", "counter", "Monte Carlo runs by backend and outcome.");
        for ((backend, outcome), n) in lock(&self.backend_runs).iter() {
            let _ =
                writeln!(o, "isl_mc_backend_runs_total{{backend=\"{}\",outcome=\"{outcome}\"}} {n}", escape(backend));
        }

        let counters = [
            ("isl_cache_hits_total", "Responses served from the cache.", cache.hits),
            ("isl_cache_misses_total", "Responses computed (cache misses).", cache.misses),
            ("isl_cache_coalesced_total", "Responses shared from a concurrent identical request.", cache.coalesced),
            ("isl_cache_evictions_total", "Cache entries evicted or refused as too large.", cache.evictions),
            ("isl_dag_cache_hits_total", "Causal requests whose checked DAG came from the DAG cache.", dags.hits),
            ("isl_dag_cache_misses_total", "Checked DAGs built (DAG cache misses).", dags.misses),
        ];
        for (name, help, v) in counters {
            header(o, name, "counter", help);
            let _ = writeln!(o, "{name} {v}");
        }
        let gauges = [
            ("isl_cache_bytes", "Bytes held by the cache (bodies plus overhead).", cache.bytes),
            ("isl_cache_entries", "Entries held by the cache.", cache.entries),
            ("isl_cache_capacity_bytes", "Cache capacity in bytes.", cache.capacity_bytes),
            ("isl_dag_cache_bytes", "Estimated bytes held by the DAG cache's checked graphs.", dags.bytes),
            ("isl_dag_cache_entries", "Checked graphs held by the DAG cache.", dags.entries),
            ("isl_dag_cache_capacity_bytes", "DAG cache capacity in bytes.", dags.capacity_bytes),
        ];
        for (name, help, v) in gauges {
            header(o, name, "gauge", help);
            let _ = writeln!(o, "{name} {v}");
        }
        out
    }
}

/// Locks, recovering from poisoning: counters stay usable after a panic elsewhere.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn header(o: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(o, "# HELP {name} {help}");
    let _ = writeln!(o, "# TYPE {name} {kind}");
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_histogram_and_quantiles() {
        let m = Metrics::new(&["/a"]);
        m.record("/a", 200, 2_000_000);
        m.record("/a", 200, 4_000_000);
        m.record("/a", 422, 100_000);
        m.record("/nope", 404, 1_000);
        assert_eq!(m.count("/a", 200), 2);
        assert_eq!(m.count(UNMATCHED, 404), 1);
        let snap =
            CacheSnapshot { hits: 1, misses: 2, coalesced: 3, evictions: 4, bytes: 5, entries: 6, capacity_bytes: 7 };
        let text = m.render(&snap, &Default::default(), 1.5, &[("engine_version", "x")]);
        assert!(text.contains("isl_requests_total{route=\"/a\",status=\"200\"} 2"), "{text}");
        assert!(text.contains("isl_requests_total{route=\"unmatched\",status=\"404\"} 1"));
        assert!(text.contains("isl_request_duration_seconds_bucket{route=\"/a\",le=\"0.0025\"} 2"));
        assert!(text.contains("isl_request_duration_seconds_bucket{route=\"/a\",le=\"+Inf\"} 3"));
        assert!(text.contains("isl_request_duration_seconds_count{route=\"/a\"} 3"));
        assert!(text.contains("isl_request_latency_seconds{route=\"/a\",quantile=\"0.99\"}"));
        assert!(text.contains("isl_cache_coalesced_total 3"));
        assert!(text.contains("isl_cache_evictions_total 4"));
        assert!(text.contains("isl_build_info{engine_version=\"x\"} 1"));
    }
}

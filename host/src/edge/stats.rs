//! What only the edge host can count: how the component was loaded, what a fresh instance
//! costs, and how many requests ended in a trap or at the deadline. Rendered after the service's
//! own metrics on the edge host's `/metrics`.

use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use hdrhistogram::Histogram;

/// Edge-host counters and the instantiation-time histogram.
pub struct EdgeStats {
    load: &'static str,
    load_seconds: f64,
    traps: AtomicU64,
    deadlines: AtomicU64,
    /// Microseconds from "start instantiating" to a running instance.
    instantiate_us: Mutex<Option<Histogram<u64>>>,
}

impl EdgeStats {
    /// Stats of a host whose component was made ready by `load` (`compiled`/`precompiled`) in
    /// `load_seconds`.
    pub fn new(load: &'static str, load_seconds: f64) -> EdgeStats {
        EdgeStats {
            load,
            load_seconds,
            traps: AtomicU64::new(0),
            deadlines: AtomicU64::new(0),
            // 1 µs to 60 s at two significant digits (the bounds are valid, so this is `Some`).
            instantiate_us: Mutex::new(Histogram::new_with_bounds(1, 60_000_000, 2).ok()),
        }
    }

    /// Counts a request whose instance trapped.
    pub fn trap(&self) {
        self.traps.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a request interrupted at its deadline.
    pub fn deadline(&self) {
        self.deadlines.fetch_add(1, Ordering::Relaxed);
    }

    /// Records the time one instantiation took.
    pub fn instantiated(&self, nanos: u64) {
        let mut h = self.instantiate_us.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(h) = h.as_mut() {
            h.saturating_record((nanos / 1_000).max(1));
        }
    }

    /// The Prometheus text of these metrics.
    pub fn render(&self) -> String {
        let mut o = String::with_capacity(1024);
        let _ = writeln!(o, "# HELP isl_edge_component_load_seconds Time to make the component ready at start.");
        let _ = writeln!(o, "# TYPE isl_edge_component_load_seconds gauge");
        let _ = writeln!(o, "isl_edge_component_load_seconds{{how=\"{}\"}} {:.6}", self.load, self.load_seconds);
        let _ = writeln!(o, "# HELP isl_edge_traps_total Requests whose component instance trapped.");
        let _ = writeln!(o, "# TYPE isl_edge_traps_total counter");
        let _ = writeln!(o, "isl_edge_traps_total {}", self.traps.load(Ordering::Relaxed));
        let _ = writeln!(o, "# HELP isl_edge_deadline_exceeded_total Requests interrupted at their deadline.");
        let _ = writeln!(o, "# TYPE isl_edge_deadline_exceeded_total counter");
        let _ = writeln!(o, "isl_edge_deadline_exceeded_total {}", self.deadlines.load(Ordering::Relaxed));
        let guard = self.instantiate_us.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(h) = guard.as_ref() else { return o };
        let _ = writeln!(o, "# HELP isl_edge_instantiate_seconds Time to create a fresh component instance.");
        let _ = writeln!(o, "# TYPE isl_edge_instantiate_seconds summary");
        if !h.is_empty() {
            for q in [0.5, 0.95, 0.99] {
                let v = h.value_at_quantile(q) as f64 / 1e6;
                let _ = writeln!(o, "isl_edge_instantiate_seconds{{quantile=\"{q}\"}} {v:.6}");
            }
        }
        let _ = writeln!(o, "isl_edge_instantiate_seconds_sum {:.6}", h.mean() * h.len() as f64 / 1e6);
        let _ = writeln!(o, "isl_edge_instantiate_seconds_count {}", h.len());
        o
    }
}

//! Batch-size sweep for `isl tune-batch MODEL`: throughput, per-batch latency and memory for
//! each size, and a recommendation. Native only (wall-clock timing).

use serde::{Deserialize, Serialize};

use crate::embed::EmbeddingModel;
use crate::error::ModelError;
use crate::nli::NliModel;
use crate::registry::resident_bytes;
use crate::timing::{Stopwatch, round_ms};
use crate::tokenize::Overflow;

/// One batch size of a sweep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TuneRow {
    /// Items per model call.
    pub batch_size: usize,
    /// Items per second over the whole sweep at this size.
    pub items_per_s: f64,
    /// Median milliseconds per model call.
    pub latency_ms_p50: f64,
    /// 95th percentile milliseconds per model call.
    pub latency_ms_p95: f64,
    /// Resident memory after this size ran (Linux).
    pub rss_bytes: Option<u64>,
}

/// A sweep and its recommendation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TuneReport {
    /// The model.
    pub model: String,
    /// One row per batch size, in the order given.
    pub rows: Vec<TuneRow>,
    /// The smallest batch size within 5% of the best throughput (more only adds latency).
    pub recommended: usize,
}

/// Sweeps `sizes` for an embedding model on `texts` (sorted by length, cut into consecutive
/// batches; `reps` passes after one warm-up pass).
pub fn tune_embedding(
    model: &EmbeddingModel,
    texts: &[String],
    sizes: &[usize],
    reps: usize,
) -> Result<TuneReport, ModelError> {
    let mut sorted: Vec<&String> = texts.iter().collect();
    sorted.sort_by_key(|t| model.tokenizer().count(t));
    sweep(model.name(), sorted.len(), sizes, reps, |range| {
        model.embed_chunked(&sorted[range], Overflow::Truncate, usize::MAX).map(|_| ())
    })
}

/// Sweeps `sizes` for an NLI model on `pairs`.
pub fn tune_nli(
    model: &NliModel,
    pairs: &[(String, String)],
    sizes: &[usize],
    reps: usize,
) -> Result<TuneReport, ModelError> {
    sweep(model.name(), pairs.len(), sizes, reps, |range| model.predict(&pairs[range], Overflow::Truncate).map(|_| ()))
}

fn sweep(
    name: &str,
    n: usize,
    sizes: &[usize],
    reps: usize,
    mut call: impl FnMut(std::ops::Range<usize>) -> Result<(), ModelError>,
) -> Result<TuneReport, ModelError> {
    if n == 0 || sizes.is_empty() || sizes.contains(&0) {
        return Err(ModelError::InvalidRequest { message: "a sweep needs items and batch sizes of at least 1".into() });
    }
    let mut rows = Vec::with_capacity(sizes.len());
    for &size in sizes {
        let ranges: Vec<_> = (0..n).step_by(size).map(|s| s..(s + size).min(n)).collect();
        for r in &ranges {
            call(r.clone())?;
        }
        let mut lat = Vec::with_capacity(ranges.len() * reps.max(1));
        let total = Stopwatch::start();
        for _ in 0..reps.max(1) {
            for r in &ranges {
                let sw = Stopwatch::start();
                call(r.clone())?;
                lat.push(sw.ms());
            }
        }
        let secs = total.ms() / 1e3;
        lat.sort_by(f64::total_cmp);
        let pct = |p: f64| lat[((lat.len() - 1) as f64 * p).round() as usize];
        rows.push(TuneRow {
            batch_size: size,
            items_per_s: (n * reps.max(1)) as f64 / secs.max(1e-9),
            latency_ms_p50: round_ms(pct(0.5)),
            latency_ms_p95: round_ms(pct(0.95)),
            rss_bytes: resident_bytes(),
        });
    }
    let best = rows.iter().map(|r| r.items_per_s).fold(0.0, f64::max);
    let recommended =
        rows.iter().filter(|r| r.items_per_s >= 0.95 * best).map(|r| r.batch_size).min().unwrap_or(sizes[0]);
    Ok(TuneReport { model: name.to_string(), rows, recommended })
}

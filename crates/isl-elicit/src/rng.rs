//! Counter-based uniforms from isl-mc's Philox4x32-10: the draw for (seed, index, sub, stream)
//! depends on nothing else, so any split of the work over threads draws the same numbers.
//!
//! ```text
//! counter = [index, sub, k / 4, stream]     key = seed     u = (word[k % 4] + 0.5) · 2^-32
//! ```

use isl_mc::rng::{key, philox4x32_10, uniform};

/// Dirichlet prior draws: index = particle, sub = 0.
pub(crate) const STREAM_PRIOR: u32 = 0x454c_0001;
/// Systematic resampling: index = stage, sub = 0.
pub(crate) const STREAM_RESAMPLE: u32 = 0x454c_0002;
/// Metropolis–Hastings moves: index = particle, sub = sweep number.
pub(crate) const STREAM_MOVE: u32 = 0x454c_0003;
/// Prior draws of the rationality multiplier (learned rationality): index = particle, sub = 0.
pub(crate) const STREAM_SCALE: u32 = 0x454c_0006;
/// Synthesised candidate questions: index = candidate, sub = 0.
pub(crate) const STREAM_CANDIDATE: u32 = 0x454c_0004;
/// Sampling a subset of option pairs: index = draw, sub = 0.
pub(crate) const STREAM_PAIRS: u32 = 0x454c_0005;

/// Fills `out` with uniforms in (0, 1): `out[k]` is word `k % 4` of group `k / 4`.
pub(crate) fn fill(seed: u64, index: u32, sub: u32, stream: u32, out: &mut [f64]) {
    let k = key(seed);
    for (g, chunk) in out.chunks_mut(4).enumerate() {
        let words = philox4x32_10([index, sub, g as u32, stream], k);
        for (o, w) in chunk.iter_mut().zip(words) {
            *o = uniform(w);
        }
    }
}

/// One uniform in (0, 1): word 0 of group 0.
pub(crate) fn one(seed: u64, index: u32, sub: u32, stream: u32) -> f64 {
    uniform(philox4x32_10([index, sub, 0, stream], key(seed))[0])
}

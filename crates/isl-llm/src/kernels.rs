//! Quantised matrix-vector kernels for the two formats of the default model: Q4_1 weights
//! against Q8_1 activations, and Q8_0 weights against Q8_0 activations.
//!
//! candle runs Q4_1 with a scalar loop (about a fifth of llama.cpp's speed on the same cores,
//! see BENCHMARKS.md), so these are written here. They follow ggml's arithmetic exactly: the
//! activations are quantised as ggml's x86 `quantize_row_q8_1` / `quantize_row_q8_0` do
//! (scale `127 / max|x|`, round half to even), and a dot product keeps eight f32 lanes, each
//! adding `d_x·d_y·(four byte products)` per block with a fused multiply-add, summed at the end
//! in ggml's `hsum_float_8` order. The AVX2 path and the portable path compute the same lanes
//! in the same order, so every target gives the same bits, and those bits are llama.cpp's.

use half::f16;

/// Values per quantisation block.
pub const QK: usize = 32;

/// A Q4_1 block: `x = d·q + m`, `q` in 0..=15 (low nibbles hold elements 0..16, high nibbles
/// 16..32). Scales kept as f32 (converted once from the file's f16, exactly).
#[derive(Debug, Clone, Copy)]
#[repr(C)]
pub struct BlockQ4_1 {
    /// Scale.
    pub d: f32,
    /// Minimum.
    pub m: f32,
    /// Packed nibbles.
    pub qs: [u8; 16],
}

/// A Q8_0 block: `x = d·q`, `q` in -127..=127.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
pub struct BlockQ8_0 {
    /// Scale (f16 in the file and in ggml's activations, kept as its exact f32 value).
    pub d: f32,
    /// Quants.
    pub qs: [i8; 32],
}

/// A Q8_1 block of activations: a Q8_0 block and `s = d·Σq` (rounded to f16, as ggml does).
#[derive(Debug, Clone, Copy)]
#[repr(C)]
pub struct BlockQ8_1 {
    /// Scale.
    pub d: f32,
    /// `d · Σ qs`, through f16.
    pub s: f32,
    /// Quants.
    pub qs: [i8; 32],
}

fn h(b: &[u8], at: usize) -> f32 {
    f16::from_bits(u16::from_le_bytes([b[at], b[at + 1]])).to_f32()
}

/// Q4_1 blocks from ggml's bytes (20 bytes a block). `None` when the length is not whole blocks.
pub fn q4_1_from_bytes(bytes: &[u8]) -> Option<Vec<BlockQ4_1>> {
    if !bytes.len().is_multiple_of(20) {
        return None;
    }
    Some(
        bytes
            .chunks_exact(20)
            .map(|b| {
                let mut qs = [0u8; 16];
                qs.copy_from_slice(&b[4..20]);
                BlockQ4_1 { d: h(b, 0), m: h(b, 2), qs }
            })
            .collect(),
    )
}

/// Q8_0 blocks from ggml's bytes (34 bytes a block).
pub fn q8_0_from_bytes(bytes: &[u8]) -> Option<Vec<BlockQ8_0>> {
    if !bytes.len().is_multiple_of(34) {
        return None;
    }
    Some(
        bytes
            .chunks_exact(34)
            .map(|b| {
                let mut qs = [0i8; 32];
                for (q, &v) in qs.iter_mut().zip(&b[2..34]) {
                    *q = v as i8;
                }
                BlockQ8_0 { d: h(b, 0), qs }
            })
            .collect(),
    )
}

/// Scale, inverse scale and quants of one block as ggml's x86 quantiser makes them.
fn quantize_block(x: &[f32]) -> (f32, [i8; 32]) {
    let amax = x.iter().fold(0f32, |m, v| m.max(v.abs()));
    let d = amax / 127.0;
    let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
    let mut qs = [0i8; 32];
    for (q, &v) in qs.iter_mut().zip(x) {
        *q = (v * id).round_ties_even() as i8;
    }
    (d, qs)
}

/// Activations `x` (a multiple of 32 long) as Q8_0 blocks.
pub fn quantize_q8_0(x: &[f32], out: &mut Vec<BlockQ8_0>) {
    out.clear();
    for c in x.chunks_exact(QK) {
        let (d, qs) = quantize_block(c);
        out.push(BlockQ8_0 { d: f16::from_f32(d).to_f32(), qs });
    }
}

/// Activations `x` (a multiple of 32 long) as Q8_1 blocks.
pub fn quantize_q8_1(x: &[f32], out: &mut Vec<BlockQ8_1>) {
    out.clear();
    for c in x.chunks_exact(QK) {
        let (d, qs) = quantize_block(c);
        let sum: i32 = qs.iter().map(|&q| i32::from(q)).sum();
        out.push(BlockQ8_1 { d: f16::from_f32(d).to_f32(), s: f16::from_f32(d * sum as f32).to_f32(), qs });
    }
}

/// ggml's `hsum_float_8`: (a0+a4 + a2+a6) + (a1+a5 + a3+a7), in that order.
#[inline]
fn hsum8(a: [f32; 8]) -> f32 {
    let r = [a[0] + a[4], a[1] + a[5], a[2] + a[6], a[3] + a[7]];
    let r = [r[0] + r[2], r[1] + r[3]];
    r[0] + r[1]
}

/// Portable Q4_1·Q8_1 dot product (same lanes and order as the AVX2 one).
pub fn dot_q4_1_q8_1_portable(x: &[BlockQ4_1], y: &[BlockQ8_1]) -> f32 {
    let mut acc = [0f32; 8];
    let mut summs = 0f32;
    for (bx, by) in x.iter().zip(y) {
        summs += bx.m * by.s;
        let d = bx.d * by.d;
        let mut q = [0u8; 32];
        for j in 0..16 {
            q[j] = bx.qs[j] & 0x0F;
            q[j + 16] = bx.qs[j] >> 4;
        }
        for ((a, qx), qy) in acc.iter_mut().zip(q.chunks_exact(4)).zip(by.qs.chunks_exact(4)) {
            let s: i32 = qx.iter().zip(qy).map(|(&x, &y)| i32::from(x) * i32::from(y)).sum();
            *a = d.mul_add(s as f32, *a);
        }
    }
    hsum8(acc) + summs
}

/// Portable Q8_0·Q8_0 dot product.
pub fn dot_q8_0_q8_0_portable(x: &[BlockQ8_0], y: &[BlockQ8_0]) -> f32 {
    let mut acc = [0f32; 8];
    for (bx, by) in x.iter().zip(y) {
        let d = bx.d * by.d;
        for ((a, qx), qy) in acc.iter_mut().zip(bx.qs.chunks_exact(4)).zip(by.qs.chunks_exact(4)) {
            let s: i32 = qx.iter().zip(qy).map(|(&x, &y)| i32::from(x) * i32::from(y)).sum();
            *a = d.mul_add(s as f32, *a);
        }
    }
    hsum8(acc)
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{BlockQ4_1, BlockQ8_0, BlockQ8_1};

    #[inline(always)]
    unsafe fn hsum(v: __m256) -> f32 {
        // SAFETY: AVX2 is enabled by the callers' target_feature.
        unsafe {
            let r = _mm_add_ps(_mm256_extractf128_ps(v, 1), _mm256_castps256_ps128(v));
            let r = _mm_add_ps(r, _mm_movehl_ps(r, r));
            let r = _mm_add_ss(r, _mm_movehdup_ps(r));
            _mm_cvtss_f32(r)
        }
    }

    /// # Safety
    /// The CPU must have AVX2 and FMA (checked by the caller).
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn dot_q4_1_q8_1(x: &[BlockQ4_1], y: &[BlockQ8_1]) -> f32 {
        // SAFETY: loads read exactly 16 / 32 bytes of the blocks' arrays (unaligned loads);
        // the intrinsics need AVX2/FMA, which the caller checked.
        unsafe {
            let mut acc = _mm256_setzero_ps();
            let mut summs = 0f32;
            let low = _mm256_set1_epi8(0x0F);
            let ones = _mm256_set1_epi16(1);
            for (bx, by) in x.iter().zip(y) {
                summs += bx.m * by.s;
                let d = _mm256_set1_ps(bx.d * by.d);
                let packed = _mm_loadu_si128(bx.qs.as_ptr() as *const __m128i);
                let both = _mm256_insertf128_si256(_mm256_castsi128_si256(packed), _mm_srli_epi16(packed, 4), 1);
                let qx = _mm256_and_si256(both, low);
                let qy = _mm256_loadu_si256(by.qs.as_ptr() as *const __m256i);
                let dot = _mm256_madd_epi16(_mm256_maddubs_epi16(qx, qy), ones);
                acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(dot), acc);
            }
            hsum(acc) + summs
        }
    }

    /// # Safety
    /// The CPU must have AVX2 and FMA (checked by the caller).
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn dot_q8_0_q8_0(x: &[BlockQ8_0], y: &[BlockQ8_0]) -> f32 {
        // SAFETY: as above; each load reads one block's 32 quants.
        unsafe {
            let mut acc = _mm256_setzero_ps();
            let ones = _mm256_set1_epi16(1);
            for (bx, by) in x.iter().zip(y) {
                let d = _mm256_set1_ps(bx.d * by.d);
                let qx = _mm256_loadu_si256(bx.qs.as_ptr() as *const __m256i);
                let qy = _mm256_loadu_si256(by.qs.as_ptr() as *const __m256i);
                // |x| · (y with x's sign): unsigned × signed bytes, as ggml does.
                let ax = _mm256_sign_epi8(qx, qx);
                let sy = _mm256_sign_epi8(qy, qx);
                let dot = _mm256_madd_epi16(_mm256_maddubs_epi16(ax, sy), ones);
                acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(dot), acc);
            }
            hsum(acc)
        }
    }
}

/// Whether the AVX2 kernels can run here.
fn has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        use std::sync::OnceLock;
        static HAS: OnceLock<bool> = OnceLock::new();
        *HAS.get_or_init(|| is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Q4_1·Q8_1 dot product of one weight row and one activation row (equal block counts).
#[inline]
pub fn dot_q4_1_q8_1(x: &[BlockQ4_1], y: &[BlockQ8_1]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        // SAFETY: AVX2 and FMA were detected at run time.
        return unsafe { avx2::dot_q4_1_q8_1(x, y) };
    }
    dot_q4_1_q8_1_portable(x, y)
}

/// Q8_0·Q8_0 dot product.
#[inline]
pub fn dot_q8_0_q8_0(x: &[BlockQ8_0], y: &[BlockQ8_0]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        // SAFETY: AVX2 and FMA were detected at run time.
        return unsafe { avx2::dot_q8_0_q8_0(x, y) };
    }
    dot_q8_0_q8_0_portable(x, y)
}

/// A quantised weight matrix of `rows` output rows by `cols` inputs (cols a multiple of 32).
#[derive(Debug, Clone)]
pub enum QWeight {
    /// Q4_1 blocks, row after row.
    Q4_1(Vec<BlockQ4_1>),
    /// Q8_0 blocks, row after row.
    Q8_0(Vec<BlockQ8_0>),
}

/// Activations quantised for one weight format, row after row.
#[derive(Debug, Default)]
pub struct QActs {
    q8_1: Vec<BlockQ8_1>,
    q8_0: Vec<BlockQ8_0>,
    scratch1: Vec<BlockQ8_1>,
    scratch0: Vec<BlockQ8_0>,
    /// Rows quantised.
    pub rows: usize,
}

impl QActs {
    /// Quantises `n` rows of `x` (each `cols` long) for `kind`'s format.
    pub fn quantize(&mut self, x: &[f32], cols: usize, for_q4_1: bool) {
        self.rows = x.len() / cols;
        if for_q4_1 {
            self.q8_1.clear();
            for r in x.chunks_exact(cols) {
                quantize_q8_1(r, &mut self.scratch1);
                self.q8_1.extend_from_slice(&self.scratch1);
            }
        } else {
            self.q8_0.clear();
            for r in x.chunks_exact(cols) {
                quantize_q8_0(r, &mut self.scratch0);
                self.q8_0.extend_from_slice(&self.scratch0);
            }
        }
    }
}

/// Output rows handled per parallel task.
const ROWS_PER_TASK: usize = 64;

impl QWeight {
    /// Whether the activations must be Q8_1 (for Q4_1 weights).
    pub fn wants_q8_1(&self) -> bool {
        matches!(self, QWeight::Q4_1(_))
    }

    /// `out[t][r] = W[r] · x[t]` for every activation row `t` (out is `acts.rows × rows`).
    pub fn matmul(&self, rows: usize, cols: usize, acts: &QActs, out: &mut [f32]) {
        let nb = cols / QK;
        let n = acts.rows;
        // Parallel over chunks of weight rows: each chunk's weights are read once for all
        // activation rows.
        let task = |chunk: usize, dst: &mut Vec<(usize, f32)>| {
            let r0 = chunk * ROWS_PER_TASK;
            let r1 = (r0 + ROWS_PER_TASK).min(rows);
            for t in 0..n {
                for r in r0..r1 {
                    let v = match self {
                        QWeight::Q4_1(w) => dot_q4_1_q8_1(&w[r * nb..(r + 1) * nb], &acts.q8_1[t * nb..(t + 1) * nb]),
                        QWeight::Q8_0(w) => dot_q8_0_q8_0(&w[r * nb..(r + 1) * nb], &acts.q8_0[t * nb..(t + 1) * nb]),
                    };
                    dst.push((t * rows + r, v));
                }
            }
        };
        let chunks = rows.div_ceil(ROWS_PER_TASK);
        #[cfg(not(target_family = "wasm"))]
        {
            use rayon::prelude::*;
            let parts: Vec<Vec<(usize, f32)>> = (0..chunks)
                .into_par_iter()
                .map(|c| {
                    let mut v = Vec::with_capacity(ROWS_PER_TASK * n);
                    task(c, &mut v);
                    v
                })
                .collect();
            for p in parts {
                for (i, v) in p {
                    out[i] = v;
                }
            }
        }
        #[cfg(target_family = "wasm")]
        {
            let mut v = Vec::new();
            for c in 0..chunks {
                v.clear();
                task(c, &mut v);
                for &(i, x) in &v {
                    out[i] = x;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcg(seed: &mut u64) -> f32 {
        *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((*seed >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    #[test]
    fn avx2_and_portable_kernels_give_the_same_bits() {
        let mut s = 7u64;
        for _ in 0..50 {
            let nb = 18;
            let w: Vec<BlockQ4_1> = (0..nb)
                .map(|_| {
                    let mut qs = [0u8; 16];
                    for q in qs.iter_mut() {
                        *q = ((lcg(&mut s) + 1.0) * 127.0) as u8;
                    }
                    BlockQ4_1 {
                        d: f16::from_f32(lcg(&mut s) * 0.05).to_f32(),
                        m: f16::from_f32(lcg(&mut s) * 0.2).to_f32(),
                        qs,
                    }
                })
                .collect();
            let x: Vec<f32> = (0..nb * QK).map(|_| lcg(&mut s) * 3.0).collect();
            let mut a = Vec::new();
            quantize_q8_1(&x, &mut a);
            assert_eq!(dot_q4_1_q8_1(&w, &a).to_bits(), dot_q4_1_q8_1_portable(&w, &a).to_bits());
            let mut b = Vec::new();
            quantize_q8_0(&x, &mut b);
            let w8: Vec<BlockQ8_0> = b.iter().rev().copied().collect();
            assert_eq!(dot_q8_0_q8_0(&w8, &b).to_bits(), dot_q8_0_q8_0_portable(&w8, &b).to_bits());
        }
    }

    #[test]
    fn dot_products_approximate_the_float_dot_product() {
        let mut s = 11u64;
        let nb = 4;
        let x: Vec<f32> = (0..nb * QK).map(|_| lcg(&mut s)).collect();
        let y: Vec<f32> = (0..nb * QK).map(|_| lcg(&mut s)).collect();
        let exact: f32 = x.iter().zip(&y).map(|(a, b)| a * b).sum();
        let (mut qx, mut qy) = (Vec::new(), Vec::new());
        quantize_q8_0(&x, &mut qx);
        quantize_q8_0(&y, &mut qy);
        assert!((dot_q8_0_q8_0(&qx, &qy) - exact).abs() < 0.05, "{exact}");
    }
}

//! Quantised matrix kernels for the two formats of the default model: Q4_1 weights against
//! Q8_1 activations, and Q8_0 weights against Q8_0 activations.
//!
//! candle runs Q4_1 with a scalar loop (about a fifth of llama.cpp's speed on the same cores,
//! see BENCHMARKS.md), so these are written here. They follow ggml's arithmetic exactly: the
//! activations are quantised as ggml's x86 `quantize_row_q8_1` / `quantize_row_q8_0` do
//! (scale `127 / max|x|`, round half to even), and a dot product keeps eight f32 lanes, each
//! adding `d_x·d_y·(four byte products)` per block with a fused multiply-add, summed at the end
//! in ggml's `hsum_float_8` order.
//!
//! Weights are stored as groups of four rows, block by block ([`GroupQ4_1`], [`GroupQ8_0`]:
//! ggml's 20 and 34 bytes a block), so that one pass loads an activation block once for four
//! rows and converts four scales at once; up to four activation rows share each weight load.
//! Every (row, activation row) pair still has its own accumulator, updated block after block
//! as ggml's one-row kernel does, so grouping changes no bit. The portable path, the AVX2 path
//! and the AVX-512 VNNI path (`vpdpbusd` gives the same integer sums as `maddubs` + `madd`,
//! which never saturate here) compute the same lanes in the same order: every target gives the
//! same bits, and those bits are llama.cpp's.

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

impl BlockQ8_0 {
    /// An all-zero block.
    pub const ZERO: BlockQ8_0 = BlockQ8_0 { d: 0.0, qs: [0; 32] };
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

impl BlockQ8_1 {
    /// An all-zero block.
    pub const ZERO: BlockQ8_1 = BlockQ8_1 { d: 0.0, s: 0.0, qs: [0; 32] };
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

/// Scale and quants of one block as ggml's x86 quantiser makes them.
#[inline(always)]
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

#[inline(always)]
fn quantize_row_q8_0_portable(x: &[f32], out: &mut [BlockQ8_0]) {
    for (c, o) in x.chunks_exact(QK).zip(out.iter_mut()) {
        let (d, qs) = quantize_block(c);
        *o = BlockQ8_0 { d: f16::from_f32(d).to_f32(), qs };
    }
}

#[inline(always)]
fn quantize_row_q8_1_portable(x: &[f32], out: &mut [BlockQ8_1]) {
    for (c, o) in x.chunks_exact(QK).zip(out.iter_mut()) {
        let (d, qs) = quantize_block(c);
        let sum: i32 = qs.iter().map(|&q| i32::from(q)).sum();
        *o = BlockQ8_1 { d: f16::from_f32(d).to_f32(), s: f16::from_f32(d * sum as f32).to_f32(), qs };
    }
}

/// The same code compiled with AVX2 (rounding becomes one instruction instead of a call).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn quantize_row_q8_0_avx2(x: &[f32], out: &mut [BlockQ8_0]) {
    quantize_row_q8_0_portable(x, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn quantize_row_q8_1_avx2(x: &[f32], out: &mut [BlockQ8_1]) {
    quantize_row_q8_1_portable(x, out)
}

/// One row of activations `x` (a multiple of 32 long) as Q8_0 blocks, into `out`
/// (`x.len() / 32` blocks).
pub fn quantize_row_q8_0(x: &[f32], out: &mut [BlockQ8_0]) {
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        // SAFETY: AVX2 and FMA were detected at run time.
        return unsafe { quantize_row_q8_0_avx2(x, out) };
    }
    quantize_row_q8_0_portable(x, out)
}

/// One row of activations as Q8_1 blocks, into `out`.
pub fn quantize_row_q8_1(x: &[f32], out: &mut [BlockQ8_1]) {
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        // SAFETY: AVX2 and FMA were detected at run time.
        return unsafe { quantize_row_q8_1_avx2(x, out) };
    }
    quantize_row_q8_1_portable(x, out)
}

/// Activations `x` (a multiple of 32 long) as Q8_0 blocks.
pub fn quantize_q8_0(x: &[f32], out: &mut Vec<BlockQ8_0>) {
    out.clear();
    out.resize(x.len() / QK, BlockQ8_0::ZERO);
    quantize_row_q8_0(x, out);
}

/// Activations `x` (a multiple of 32 long) as Q8_1 blocks.
pub fn quantize_q8_1(x: &[f32], out: &mut Vec<BlockQ8_1>) {
    out.clear();
    out.resize(x.len() / QK, BlockQ8_1::ZERO);
    quantize_row_q8_1(x, out);
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

/// Four weight rows' blocks at one block index, interleaved: the unit the kernels stream.
/// Q4_1: scales `d0..d3` then minima `m0..m3` (f16 bits, as in the file), then each row's 16
/// bytes of nibbles — 20 bytes a block, as in ggml.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
pub struct GroupQ4_1 {
    /// `d0, d1, d2, d3, m0, m1, m2, m3` as f16 bits.
    pub dm: [u16; 8],
    /// Each row's packed nibbles.
    pub qs: [[u8; 16]; 4],
}

/// Four Q8_0 rows' blocks at one block index: scales (f16 bits), then each row's 32 quants —
/// 34 bytes a block, as in ggml.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
pub struct GroupQ8_0 {
    /// `d0..d3` as f16 bits.
    pub d: [u16; 4],
    /// Each row's quants.
    pub qs: [[i8; 32]; 4],
}

fn f16_bits(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn from_bits(h: u16) -> f32 {
    f16::from_bits(h).to_f32()
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{BlockQ8_0, BlockQ8_1, GroupQ4_1, GroupQ8_0};

    /// ggml's `hsum_float_8`.
    #[inline(always)]
    pub(crate) unsafe fn hsum(v: __m256) -> f32 {
        // SAFETY: AVX2 is enabled by the callers' target_feature.
        unsafe {
            let r = _mm_add_ps(_mm256_extractf128_ps(v, 1), _mm256_castps256_ps128(v));
            let r = _mm_add_ps(r, _mm_movehl_ps(r, r));
            let r = _mm_add_ss(r, _mm_movehdup_ps(r));
            _mm_cvtss_f32(r)
        }
    }

    /// The four byte-pair sums of unsigned `x` times signed `y` per 32-bit lane, as ggml's
    /// `_mm256_maddubs_epi16` + `_mm256_madd_epi16` compute them (or `vpdpbusd` with VNNI:
    /// the same integers, since no 16-bit pair sum here can saturate).
    #[inline(always)]
    unsafe fn dot_u8_i8<const VNNI: bool>(x: __m256i, y: __m256i) -> __m256i {
        // SAFETY: the caller's target features include AVX2, and AVX-512 VNNI/VL with VNNI.
        unsafe {
            if VNNI {
                _mm256_dpbusd_epi32(_mm256_setzero_si256(), x, y)
            } else {
                _mm256_madd_epi16(_mm256_maddubs_epi16(x, y), _mm256_set1_epi16(1))
            }
        }
    }

    /// One group of four Q4_1 rows (`g`: its `nb` interleaved blocks) against `T` Q8_1
    /// activation rows. Each (token, row) pair keeps ggml's one accumulator and its `summs`,
    /// updated block after block exactly as `ggml_vec_dot_q4_1_q8_1` does.
    ///
    /// # Safety
    /// The CPU must have AVX2, FMA and F16C (and AVX-512 VNNI and VL when `VNNI`); `g` holds
    /// `nb` groups and every `ys[t]` at least `nb` blocks.
    #[inline(always)]
    pub unsafe fn q4_1<const T: usize, const VNNI: bool>(g: &[GroupQ4_1], ys: [&[BlockQ8_1]; T]) -> [[f32; 4]; T] {
        // SAFETY: loads read 16 or 32 bytes inside one group or one block (unaligned loads);
        // indices stay below g.len() and ys[t].len(), which the caller guarantees equal or exceed nb.
        unsafe {
            let nb = g.len();
            let mut acc = [[_mm256_setzero_ps(); 4]; T];
            let mut summs = [_mm_setzero_ps(); T];
            let low = _mm256_set1_epi8(0x0F);
            let lane = [_mm256_set1_epi32(0), _mm256_set1_epi32(1), _mm256_set1_epi32(2), _mm256_set1_epi32(3)];
            for b in 0..nb {
                let gb = g.get_unchecked(b);
                let dm = _mm256_cvtph_ps(_mm_loadu_si128(gb.dm.as_ptr() as *const __m128i));
                let q01 = _mm256_loadu_si256(gb.qs.as_ptr() as *const __m256i);
                let q23 = _mm256_loadu_si256(gb.qs.as_ptr().add(2) as *const __m256i);
                let (lo01, hi01) = (_mm256_and_si256(q01, low), _mm256_and_si256(_mm256_srli_epi16(q01, 4), low));
                let (lo23, hi23) = (_mm256_and_si256(q23, low), _mm256_and_si256(_mm256_srli_epi16(q23, 4), low));
                // Row r: its low nibbles (elements 0..16), then its high nibbles (16..32).
                let qx = [
                    _mm256_permute2x128_si256(lo01, hi01, 0x20),
                    _mm256_permute2x128_si256(lo01, hi01, 0x31),
                    _mm256_permute2x128_si256(lo23, hi23, 0x20),
                    _mm256_permute2x128_si256(lo23, hi23, 0x31),
                ];
                for t in 0..T {
                    let by = ys[t].get_unchecked(b);
                    // [d_r · d_y for r < 4, m_r · s_y for r < 4]: products of f16 values, exact.
                    let prod = _mm256_mul_ps(dm, _mm256_set_m128(_mm_set1_ps(by.s), _mm_set1_ps(by.d)));
                    summs[t] = _mm_add_ps(summs[t], _mm256_extractf128_ps(prod, 1));
                    let qy = _mm256_loadu_si256(by.qs.as_ptr() as *const __m256i);
                    for r in 0..4 {
                        let d = _mm256_permutevar8x32_ps(prod, lane[r]);
                        let dot = dot_u8_i8::<VNNI>(qx[r], qy);
                        acc[t][r] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(dot), acc[t][r]);
                    }
                }
            }
            let mut out = [[0f32; 4]; T];
            for t in 0..T {
                let mut s = [0f32; 4];
                _mm_storeu_ps(s.as_mut_ptr(), summs[t]);
                for r in 0..4 {
                    out[t][r] = hsum(acc[t][r]) + s[r];
                }
            }
            out
        }
    }

    /// As [`q4_1`], for Q8_0 weights against Q8_0 activations (`ggml_vec_dot_q8_0_q8_0`).
    ///
    /// # Safety
    /// As [`q4_1`].
    #[inline(always)]
    pub unsafe fn q8_0<const T: usize, const VNNI: bool>(g: &[GroupQ8_0], ys: [&[BlockQ8_0]; T]) -> [[f32; 4]; T] {
        // SAFETY: as above; each load reads 8 bytes of scales or one row's 32 quants.
        unsafe {
            let nb = g.len();
            let mut acc = [[_mm256_setzero_ps(); 4]; T];
            let lane = [_mm256_set1_epi32(0), _mm256_set1_epi32(1), _mm256_set1_epi32(2), _mm256_set1_epi32(3)];
            for b in 0..nb {
                let gb = g.get_unchecked(b);
                let d = _mm_cvtph_ps(_mm_loadl_epi64(gb.d.as_ptr() as *const __m128i));
                let qx = [
                    _mm256_loadu_si256(gb.qs.as_ptr() as *const __m256i),
                    _mm256_loadu_si256(gb.qs.as_ptr().add(1) as *const __m256i),
                    _mm256_loadu_si256(gb.qs.as_ptr().add(2) as *const __m256i),
                    _mm256_loadu_si256(gb.qs.as_ptr().add(3) as *const __m256i),
                ];
                let ax = [
                    _mm256_sign_epi8(qx[0], qx[0]),
                    _mm256_sign_epi8(qx[1], qx[1]),
                    _mm256_sign_epi8(qx[2], qx[2]),
                    _mm256_sign_epi8(qx[3], qx[3]),
                ];
                for t in 0..T {
                    let by = ys[t].get_unchecked(b);
                    let dd = _mm256_castps128_ps256(_mm_mul_ps(d, _mm_set1_ps(by.d)));
                    let qy = _mm256_loadu_si256(by.qs.as_ptr() as *const __m256i);
                    for r in 0..4 {
                        // |x| · (y with x's sign): unsigned × signed bytes, as ggml does.
                        let dot = dot_u8_i8::<VNNI>(ax[r], _mm256_sign_epi8(qy, qx[r]));
                        let dr = _mm256_permutevar8x32_ps(dd, lane[r]);
                        acc[t][r] = _mm256_fmadd_ps(dr, _mm256_cvtepi32_ps(dot), acc[t][r]);
                    }
                }
            }
            let mut out = [[0f32; 4]; T];
            for t in 0..T {
                for r in 0..4 {
                    out[t][r] = hsum(acc[t][r]);
                }
            }
            out
        }
    }

    /// The kernels compiled for AVX2 + FMA + F16C.
    ///
    /// # Safety
    /// The CPU must have those features; the slices as [`q4_1`] requires.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn q4_1_avx2<const T: usize>(g: &[GroupQ4_1], ys: [&[BlockQ8_1]; T]) -> [[f32; 4]; T] {
        // SAFETY: forwarded from the caller.
        unsafe { q4_1::<T, false>(g, ys) }
    }

    /// The kernels compiled for AVX-512 VNNI (on 256-bit registers).
    ///
    /// # Safety
    /// The CPU must have AVX2, FMA, F16C, AVX-512 VNNI and VL; the slices as [`q4_1`] requires.
    #[target_feature(enable = "avx2,fma,f16c,avx512vnni,avx512vl")]
    pub unsafe fn q4_1_vnni<const T: usize>(g: &[GroupQ4_1], ys: [&[BlockQ8_1]; T]) -> [[f32; 4]; T] {
        // SAFETY: forwarded from the caller.
        unsafe { q4_1::<T, true>(g, ys) }
    }

    /// # Safety
    /// As [`q4_1_avx2`].
    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn q8_0_avx2<const T: usize>(g: &[GroupQ8_0], ys: [&[BlockQ8_0]; T]) -> [[f32; 4]; T] {
        // SAFETY: forwarded from the caller.
        unsafe { q8_0::<T, false>(g, ys) }
    }

    /// # Safety
    /// As [`q4_1_vnni`].
    #[target_feature(enable = "avx2,fma,f16c,avx512vnni,avx512vl")]
    pub unsafe fn q8_0_vnni<const T: usize>(g: &[GroupQ8_0], ys: [&[BlockQ8_0]; T]) -> [[f32; 4]; T] {
        // SAFETY: forwarded from the caller.
        unsafe { q8_0::<T, true>(g, ys) }
    }
}

/// ggml's `hsum_float_8` of an AVX register.
///
/// # Safety
/// The CPU must have AVX2.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) unsafe fn avx2_hsum(v: std::arch::x86_64::__m256) -> f32 {
    // SAFETY: the caller runs with AVX2 enabled.
    unsafe { avx2::hsum(v) }
}

/// The SIMD level the kernels run at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Simd {
    /// Plain Rust.
    Portable,
    /// AVX2, FMA and F16C.
    Avx2,
    /// AVX2 and AVX-512 VNNI (256-bit).
    Vnni,
}

/// The best level this CPU runs (`ISL_SIMD=portable|avx2` caps it, for tests and timing).
pub fn simd() -> Simd {
    use std::sync::OnceLock;
    static LEVEL: OnceLock<Simd> = OnceLock::new();
    *LEVEL.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            let cap = std::env::var("ISL_SIMD").unwrap_or_default();
            let avx2 =
                is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") && is_x86_feature_detected!("f16c");
            let vnni = avx2 && is_x86_feature_detected!("avx512vnni") && is_x86_feature_detected!("avx512vl");
            match cap.as_str() {
                "portable" => Simd::Portable,
                _ if !avx2 => Simd::Portable,
                "avx2" => Simd::Avx2,
                _ if vnni => Simd::Vnni,
                _ => Simd::Avx2,
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            Simd::Portable
        }
    })
}

/// Whether the AVX2 kernels can run here.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(crate) fn has_avx2() -> bool {
    simd() != Simd::Portable
}

/// One group of four Q4_1 rows against `T` activation rows, plain Rust (the reference: the
/// same accumulators, updated in the same order, as the SIMD kernels).
fn q4_1_group_portable<const T: usize>(g: &[GroupQ4_1], ys: [&[BlockQ8_1]; T]) -> [[f32; 4]; T] {
    let mut out = [[0f32; 4]; T];
    for (o, y) in out.iter_mut().zip(ys.iter()) {
        for (r, o) in o.iter_mut().enumerate() {
            let mut acc = [0f32; 8];
            let mut summs = 0f32;
            for (gb, by) in g.iter().zip(y.iter()) {
                let (d, m) = (from_bits(gb.dm[r]), from_bits(gb.dm[4 + r]));
                summs += m * by.s;
                let d = d * by.d;
                let mut q = [0u8; 32];
                for j in 0..16 {
                    q[j] = gb.qs[r][j] & 0x0F;
                    q[j + 16] = gb.qs[r][j] >> 4;
                }
                for ((a, qx), qy) in acc.iter_mut().zip(q.chunks_exact(4)).zip(by.qs.chunks_exact(4)) {
                    let s: i32 = qx.iter().zip(qy).map(|(&x, &y)| i32::from(x) * i32::from(y)).sum();
                    *a = d.mul_add(s as f32, *a);
                }
            }
            *o = hsum8(acc) + summs;
        }
    }
    out
}

/// As [`q4_1_group_portable`], for Q8_0.
fn q8_0_group_portable<const T: usize>(g: &[GroupQ8_0], ys: [&[BlockQ8_0]; T]) -> [[f32; 4]; T] {
    let mut out = [[0f32; 4]; T];
    for (o, y) in out.iter_mut().zip(ys.iter()) {
        for (r, o) in o.iter_mut().enumerate() {
            let mut acc = [0f32; 8];
            for (gb, by) in g.iter().zip(y.iter()) {
                let d = from_bits(gb.d[r]) * by.d;
                for ((a, qx), qy) in acc.iter_mut().zip(gb.qs[r].chunks_exact(4)).zip(by.qs.chunks_exact(4)) {
                    let s: i32 = qx.iter().zip(qy).map(|(&x, &y)| i32::from(x) * i32::from(y)).sum();
                    *a = d.mul_add(s as f32, *a);
                }
            }
            *o = hsum8(acc);
        }
    }
    out
}

/// A quantised weight matrix of `rows` output rows by `cols` inputs (cols a multiple of 32),
/// stored as groups of four rows (the last padded with zero rows), block by block.
#[derive(Debug, Clone)]
pub enum QWeight {
    /// Q4_1 groups, `rows.div_ceil(4) × cols / 32`.
    Q4_1(Vec<GroupQ4_1>),
    /// Q8_0 groups.
    Q8_0(Vec<GroupQ8_0>),
}

/// Activations quantised for one weight format, row after row.
#[derive(Debug, Default, Clone)]
pub struct QActs {
    /// Q8_1 rows (for Q4_1 weights).
    pub q8_1: Vec<BlockQ8_1>,
    /// Q8_0 rows (for Q8_0 weights).
    pub q8_0: Vec<BlockQ8_0>,
    /// Rows quantised.
    pub rows: usize,
}

impl QActs {
    /// Quantises `n` rows of `x` (each `cols` long) for `kind`'s format.
    pub fn quantize(&mut self, x: &[f32], cols: usize, for_q4_1: bool) {
        self.rows = x.len() / cols;
        let nb = cols / QK;
        if for_q4_1 {
            self.q8_1.clear();
            self.q8_1.resize(self.rows * nb, BlockQ8_1::ZERO);
            for (r, o) in x.chunks_exact(cols).zip(self.q8_1.chunks_exact_mut(nb)) {
                quantize_row_q8_1(r, o);
            }
        } else {
            self.q8_0.clear();
            self.q8_0.resize(self.rows * nb, BlockQ8_0::ZERO);
            for (r, o) in x.chunks_exact(cols).zip(self.q8_0.chunks_exact_mut(nb)) {
                quantize_row_q8_0(r, o);
            }
        }
    }
}

/// Row groups kept hot in L1 while every activation row passes over them.
const GROUP_TILE: usize = 4;

/// Runs one kernel over `T` tokens starting at `t0`.
#[cfg(target_arch = "x86_64")]
macro_rules! tokens {
    ($kernel:ident, $g:expr, $acts:expr, $nb:expr, $t0:expr, $t:literal) => {{
        let ys: [&[_]; $t] = std::array::from_fn(|i| &$acts[($t0 + i) * $nb..($t0 + i + 1) * $nb]);
        $kernel::<$t>($g, ys)
    }};
}

impl QWeight {
    /// Q4_1 rows from ggml's bytes (20 bytes a block). `None` when the sizes disagree.
    pub fn q4_1_from_ggml(bytes: &[u8], rows: usize, cols: usize) -> Option<QWeight> {
        let nb = cols / QK;
        if !cols.is_multiple_of(QK) || bytes.len() != rows * nb * 20 {
            return None;
        }
        let zero = GroupQ4_1 { dm: [0; 8], qs: [[0; 16]; 4] };
        let mut groups = vec![zero; rows.div_ceil(4) * nb];
        for r in 0..rows {
            for b in 0..nb {
                let at = (r * nb + b) * 20;
                let g = &mut groups[(r / 4) * nb + b];
                g.dm[r % 4] = f16_bits(bytes, at);
                g.dm[4 + r % 4] = f16_bits(bytes, at + 2);
                g.qs[r % 4].copy_from_slice(&bytes[at + 4..at + 20]);
            }
        }
        Some(QWeight::Q4_1(groups))
    }

    /// Q8_0 rows from ggml's bytes (34 bytes a block).
    pub fn q8_0_from_ggml(bytes: &[u8], rows: usize, cols: usize) -> Option<QWeight> {
        let nb = cols / QK;
        if !cols.is_multiple_of(QK) || bytes.len() != rows * nb * 34 {
            return None;
        }
        let zero = GroupQ8_0 { d: [0; 4], qs: [[0; 32]; 4] };
        let mut groups = vec![zero; rows.div_ceil(4) * nb];
        for r in 0..rows {
            for b in 0..nb {
                let at = (r * nb + b) * 34;
                let g = &mut groups[(r / 4) * nb + b];
                g.d[r % 4] = f16_bits(bytes, at);
                for (q, &v) in g.qs[r % 4].iter_mut().zip(&bytes[at + 2..at + 34]) {
                    *q = v as i8;
                }
            }
        }
        Some(QWeight::Q8_0(groups))
    }

    /// Whether the activations must be Q8_1 (for Q4_1 weights).
    pub fn wants_q8_1(&self) -> bool {
        matches!(self, QWeight::Q4_1(_))
    }

    /// Row `r` of a Q8_0 matrix, dequantised as ggml's `dequantize_row_q8_0` does (`d · q`).
    pub fn dequantize_q8_0_row(&self, r: usize, cols: usize, out: &mut Vec<f32>) {
        if let QWeight::Q8_0(groups) = self {
            let nb = cols / QK;
            for g in &groups[(r / 4) * nb..(r / 4 + 1) * nb] {
                let d = from_bits(g.d[r % 4]);
                out.extend(g.qs[r % 4].iter().map(|&q| f32::from(q) * d));
            }
        }
    }

    /// `put(t, r, W[r] · x[t])` for every weight row `r` in `r0..r1` (`r0` a multiple of 4)
    /// and every activation row `t < n` (`cols / 32` blocks per row, in the format
    /// [`Self::wants_q8_1`] names).
    #[allow(clippy::too_many_arguments)]
    pub fn matmul_rows(
        &self,
        r0: usize,
        r1: usize,
        cols: usize,
        acts_q8_1: &[BlockQ8_1],
        acts_q8_0: &[BlockQ8_0],
        n: usize,
        mut put: impl FnMut(usize, usize, f32),
    ) {
        assert!(r0.is_multiple_of(4), "row ranges start on a group of four");
        let nb = cols / QK;
        let level = simd();
        let (g0, g1) = (r0 / 4, r1.div_ceil(4));
        let mut tile = g0;
        while tile < g1 {
            let end = (tile + GROUP_TILE).min(g1);
            let mut t = 0;
            while t < n {
                let take = match n - t {
                    k if k >= 4 => 4,
                    k if k >= 2 => 2,
                    _ => 1,
                };
                for g in tile..end {
                    let out = match self {
                        QWeight::Q4_1(w) => q4_1_tokens(level, &w[g * nb..(g + 1) * nb], acts_q8_1, nb, t, take),
                        QWeight::Q8_0(w) => q8_0_tokens(level, &w[g * nb..(g + 1) * nb], acts_q8_0, nb, t, take),
                    };
                    for (i, row) in out.iter().take(take).enumerate() {
                        for (j, &v) in row.iter().enumerate() {
                            let r = g * 4 + j;
                            if r >= r0 && r < r1 {
                                put(t + i, r, v);
                            }
                        }
                    }
                }
                t += take;
            }
            tile = end;
        }
    }

    /// `out[t][r] = W[r] · x[t]` for every activation row `t` (out is `acts.rows × rows`), on
    /// the calling thread.
    pub fn matmul(&self, rows: usize, cols: usize, acts: &QActs, out: &mut [f32]) {
        self.matmul_rows(0, rows, cols, &acts.q8_1, &acts.q8_0, acts.rows, |t, r, v| out[t * rows + r] = v);
    }
}

/// One row group against activation rows `t..t + take` (`take` 1, 2 or 4) at `level`.
fn q4_1_tokens(level: Simd, gs: &[GroupQ4_1], a: &[BlockQ8_1], nb: usize, t: usize, take: usize) -> [[f32; 4]; 4] {
    let mut out = [[0f32; 4]; 4];
    assert!(gs.len() == nb && a.len() >= (t + take) * nb);
    #[cfg(not(target_arch = "x86_64"))]
    let _ = level;
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `level` names features detected at run time; `gs` holds nb groups and each
    // activation row t..t + take holds nb blocks (asserted above).
    unsafe {
        use avx2::{q4_1_avx2, q4_1_vnni};
        match (level, take) {
            (Simd::Vnni, 4) => return tokens!(q4_1_vnni, gs, a, nb, t, 4),
            (Simd::Vnni, 2) => out[..2].copy_from_slice(&tokens!(q4_1_vnni, gs, a, nb, t, 2)),
            (Simd::Vnni, _) => out[..1].copy_from_slice(&tokens!(q4_1_vnni, gs, a, nb, t, 1)),
            (Simd::Avx2, 4) => return tokens!(q4_1_avx2, gs, a, nb, t, 4),
            (Simd::Avx2, 2) => out[..2].copy_from_slice(&tokens!(q4_1_avx2, gs, a, nb, t, 2)),
            (Simd::Avx2, _) => out[..1].copy_from_slice(&tokens!(q4_1_avx2, gs, a, nb, t, 1)),
            (Simd::Portable, _) => {}
        }
        if level != Simd::Portable {
            return out;
        }
    }
    for (i, o) in out.iter_mut().take(take).enumerate() {
        *o = q4_1_group_portable::<1>(gs, [&a[(t + i) * nb..(t + i + 1) * nb]])[0];
    }
    out
}

/// As [`q4_1_tokens`], for Q8_0.
fn q8_0_tokens(level: Simd, gs: &[GroupQ8_0], a: &[BlockQ8_0], nb: usize, t: usize, take: usize) -> [[f32; 4]; 4] {
    let mut out = [[0f32; 4]; 4];
    assert!(gs.len() == nb && a.len() >= (t + take) * nb);
    #[cfg(not(target_arch = "x86_64"))]
    let _ = level;
    #[cfg(target_arch = "x86_64")]
    // SAFETY: as in `q4_1_tokens`.
    unsafe {
        use avx2::{q8_0_avx2, q8_0_vnni};
        match (level, take) {
            (Simd::Vnni, 4) => return tokens!(q8_0_vnni, gs, a, nb, t, 4),
            (Simd::Vnni, 2) => out[..2].copy_from_slice(&tokens!(q8_0_vnni, gs, a, nb, t, 2)),
            (Simd::Vnni, _) => out[..1].copy_from_slice(&tokens!(q8_0_vnni, gs, a, nb, t, 1)),
            (Simd::Avx2, 4) => return tokens!(q8_0_avx2, gs, a, nb, t, 4),
            (Simd::Avx2, 2) => out[..2].copy_from_slice(&tokens!(q8_0_avx2, gs, a, nb, t, 2)),
            (Simd::Avx2, _) => out[..1].copy_from_slice(&tokens!(q8_0_avx2, gs, a, nb, t, 1)),
            (Simd::Portable, _) => {}
        }
        if level != Simd::Portable {
            return out;
        }
    }
    for (i, o) in out.iter_mut().take(take).enumerate() {
        *o = q8_0_group_portable::<1>(gs, [&a[(t + i) * nb..(t + i + 1) * nb]])[0];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcg(seed: &mut u64) -> f32 {
        *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((*seed >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    /// ggml bytes for a random Q4_1 matrix, and its reference blocks.
    fn q4_1_matrix(rows: usize, nb: usize, s: &mut u64) -> (Vec<u8>, Vec<BlockQ4_1>) {
        let mut bytes = Vec::new();
        for _ in 0..rows * nb {
            bytes.extend(f16::from_f32(lcg(s) * 0.05).to_bits().to_le_bytes());
            bytes.extend(f16::from_f32(lcg(s) * 0.2).to_bits().to_le_bytes());
            for _ in 0..16 {
                bytes.push(((lcg(s) + 1.0) * 127.0) as u8);
            }
        }
        let blocks = q4_1_from_bytes(&bytes).expect("blocks");
        (bytes, blocks)
    }

    fn q8_0_matrix(rows: usize, nb: usize, s: &mut u64) -> (Vec<u8>, Vec<BlockQ8_0>) {
        let mut bytes = Vec::new();
        for _ in 0..rows * nb {
            bytes.extend(f16::from_f32(lcg(s) * 0.05).to_bits().to_le_bytes());
            for _ in 0..32 {
                bytes.push((lcg(s) * 127.0) as i8 as u8);
            }
        }
        let blocks = q8_0_from_bytes(&bytes).expect("blocks");
        (bytes, blocks)
    }

    #[test]
    fn every_kernel_level_gives_the_reference_bits() {
        let mut s = 7u64;
        let levels: Vec<Simd> = match simd() {
            Simd::Vnni => vec![Simd::Portable, Simd::Avx2, Simd::Vnni],
            Simd::Avx2 => vec![Simd::Portable, Simd::Avx2],
            Simd::Portable => vec![Simd::Portable],
        };
        for (rows, nb, n) in [(8usize, 18usize, 1usize), (6, 18, 3), (13, 5, 7), (4, 48, 2)] {
            let cols = nb * QK;
            let (b41, ref41) = q4_1_matrix(rows, nb, &mut s);
            let (b80, ref80) = q8_0_matrix(rows, nb, &mut s);
            let x: Vec<f32> = (0..n * cols).map(|_| lcg(&mut s) * 3.0).collect();
            let mut acts = QActs::default();
            acts.quantize(&x, cols, true);
            let a1 = acts.q8_1.clone();
            acts.quantize(&x, cols, false);
            let a0 = acts.q8_0.clone();
            let w41 = QWeight::q4_1_from_ggml(&b41, rows, cols).expect("q4_1");
            let w80 = QWeight::q8_0_from_ggml(&b80, rows, cols).expect("q8_0");
            for &level in &levels {
                for (w, reference) in [(&w41, true), (&w80, false)] {
                    let mut out = vec![0f32; n * rows];
                    let mut t = 0;
                    while t < n {
                        let take = if n - t >= 4 {
                            4
                        } else if n - t >= 2 {
                            2
                        } else {
                            1
                        };
                        for g in 0..rows.div_ceil(4) {
                            let o = match w {
                                QWeight::Q4_1(gs) => q4_1_tokens(level, &gs[g * nb..(g + 1) * nb], &a1, nb, t, take),
                                QWeight::Q8_0(gs) => q8_0_tokens(level, &gs[g * nb..(g + 1) * nb], &a0, nb, t, take),
                            };
                            for i in 0..take {
                                for j in 0..4 {
                                    if g * 4 + j < rows {
                                        out[(t + i) * rows + g * 4 + j] = o[i][j];
                                    }
                                }
                            }
                        }
                        t += take;
                    }
                    for t in 0..n {
                        for r in 0..rows {
                            let want = if reference {
                                dot_q4_1_q8_1_portable(&ref41[r * nb..(r + 1) * nb], &a1[t * nb..(t + 1) * nb])
                            } else {
                                dot_q8_0_q8_0_portable(&ref80[r * nb..(r + 1) * nb], &a0[t * nb..(t + 1) * nb])
                            };
                            assert_eq!(
                                out[t * rows + r].to_bits(),
                                want.to_bits(),
                                "{level:?} q4_1={reference} t{t} r{r}"
                            );
                        }
                    }
                }
            }
            // The threaded entry point agrees too.
            let mut full = vec![0f32; n * rows];
            w41.matmul(rows, cols, &QActs { q8_1: a1.clone(), q8_0: vec![], rows: n }, &mut full);
            for t in 0..n {
                for r in 0..rows {
                    let want = dot_q4_1_q8_1_portable(&ref41[r * nb..(r + 1) * nb], &a1[t * nb..(t + 1) * nb]);
                    assert_eq!(full[t * rows + r].to_bits(), want.to_bits());
                }
            }
        }
    }

    #[test]
    fn quantising_with_avx2_gives_the_portable_bits() {
        let mut s = 9u64;
        let x: Vec<f32> = (0..40 * QK).map(|i| lcg(&mut s) * (1 + i % 7) as f32).collect();
        let mut a = vec![BlockQ8_1::ZERO; 40];
        let mut b = vec![BlockQ8_1::ZERO; 40];
        quantize_row_q8_1(&x, &mut a);
        quantize_row_q8_1_portable(&x, &mut b);
        for (p, q) in a.iter().zip(&b) {
            assert_eq!((p.d.to_bits(), p.s.to_bits(), p.qs), (q.d.to_bits(), q.s.to_bits(), q.qs));
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
        assert!((dot_q8_0_q8_0_portable(&qx, &qy) - exact).abs() < 0.05, "{exact}");
    }
}

//! The counter-based random stream: Philox4x32-10 (Salmon, Moraes, Dror & Shaw, "Parallel random
//! numbers: as easy as 1, 2, 3", SC 2011; the Random123 library) and the exact layout that maps
//! (seed, sample, slot, stream) to a number.
//!
//! Every random input of a model is a *slot* (one per uncertain belief and one per noise term,
//! numbered when the model is checked, see [`crate::CheckedModel::slots`]). The draw of slot `s`
//! for sample `i` depends on nothing else than `(seed, i, s, stream)`:
//!
//! ```text
//! key     = [seed as u32, (seed >> 32) as u32]
//! counter = [i as u32, (i >> 32) as u32, s / 4, stream]
//! words   = philox4x32_10(counter, key)              // four u32 words
//! bits    = words[s % 4]
//! u       = (bits as f64 + 0.5) * 2^-32              // in (0, 1), exact in f64
//! ```
//!
//! So one Philox call serves four consecutive slots (a *group*). `u` never is 0 or 1: its
//! smallest value is 2^-33 and its largest 1 - 2^-33, so `z = Φ⁻¹(u)` lies within ±6.338.
//! Streams separate the uses of one seed: [`STREAM_MAIN`] for the estimates, others for the
//! sensitivity matrices and the pilot and final runs of importance sampling.
//!
//! Because nothing depends on the order of evaluation, any split of the samples into blocks and
//! threads (or GPU invocations) draws the same numbers.

/// Philox multiplier for word 0.
pub const PHILOX_M0: u32 = 0xD251_1F53;
/// Philox multiplier for word 2.
pub const PHILOX_M1: u32 = 0xCD9E_8D57;
/// Key schedule increment for key word 0 (golden ratio).
pub const PHILOX_W0: u32 = 0x9E37_79B9;
/// Key schedule increment for key word 1 (sqrt(3) - 1).
pub const PHILOX_W1: u32 = 0xBB67_AE85;

/// Stream of the main estimation samples (counterfactual estimates, sensitivity swings).
pub const STREAM_MAIN: u32 = 0;
/// Stream of the Sobol matrix A.
pub const STREAM_SOBOL_A: u32 = 1;
/// Stream of the Sobol matrix B.
pub const STREAM_SOBOL_B: u32 = 2;
/// Stream of the final importance-sampling run.
pub const STREAM_IMPORTANCE: u32 = 3;
/// Stream of the first importance-sampling pilot round; round `r` uses `STREAM_PILOT + r`.
pub const STREAM_PILOT: u32 = 16;

/// 2^-32.
const TWO_POW_M32: f64 = 1.0 / 4_294_967_296.0;

/// One Philox round: two 32×32→64 multiplications and the word permutation of Random123.
#[inline(always)]
fn round(c: [u32; 4], k: [u32; 2]) -> [u32; 4] {
    let p0 = u64::from(PHILOX_M0) * u64::from(c[0]);
    let p1 = u64::from(PHILOX_M1) * u64::from(c[2]);
    [((p1 >> 32) as u32) ^ c[1] ^ k[0], p1 as u32, ((p0 >> 32) as u32) ^ c[3] ^ k[1], p0 as u32]
}

/// Philox4x32 with 10 rounds: the key is bumped by ([`PHILOX_W0`], [`PHILOX_W1`]) between rounds.
#[inline(always)]
pub fn philox4x32_10(ctr: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let mut c = ctr;
    let mut k = key;
    c = round(c, k);
    for _ in 0..9 {
        k = [k[0].wrapping_add(PHILOX_W0), k[1].wrapping_add(PHILOX_W1)];
        c = round(c, k);
    }
    c
}

/// The Philox key of a seed: low word first.
#[inline]
pub fn key(seed: u64) -> [u32; 2] {
    [seed as u32, (seed >> 32) as u32]
}

/// The Philox counter of sample `i`, slot group `group` (= slot / 4) and `stream`.
#[inline]
pub fn counter(i: u64, group: u32, stream: u32) -> [u32; 4] {
    [i as u32, (i >> 32) as u32, group, stream]
}

/// The uniform in (0, 1) of 32 random bits: `(bits + 0.5) · 2^-32`, exact.
#[inline(always)]
pub fn uniform(bits: u32) -> f64 {
    (f64::from(bits) + 0.5) * TWO_POW_M32
}

/// The uniform of slot `slot` for sample `i` in `stream` under `seed` (the layout above).
pub fn slot_uniform(seed: u64, i: u64, slot: u32, stream: u32) -> f64 {
    let words = philox4x32_10(counter(i, slot / 4, stream), key(seed));
    uniform(words[(slot % 4) as usize])
}

/// Fills four columns with the uniforms of slot group `group` for samples `first..first+n`
/// (`n` = the first column's length; the others must be at least as long). Portable code.
pub fn fill_group(seed: u64, first: u64, group: u32, stream: u32, out: [&mut [f64]; 4]) {
    let [o0, o1, o2, o3] = out;
    let n = o0.len();
    let (o1, o2, o3) = (&mut o1[..n], &mut o2[..n], &mut o3[..n]);
    let k = key(seed);
    for j in 0..n {
        let i = first.wrapping_add(j as u64);
        let w = philox4x32_10(counter(i, group, stream), k);
        o0[j] = uniform(w[0]);
        o1[j] = uniform(w[1]);
        o2[j] = uniform(w[2]);
        o3[j] = uniform(w[3]);
    }
}

/// Explicit SIMD versions of [`fill_group`] (same bits): 8 counters at a time with AVX2, 16 with
/// AVX-512F. Callers check the CPU features first (`is_x86_feature_detected!`).
#[cfg(target_arch = "x86_64")]
pub mod x86 {
    use std::arch::x86_64::*;

    const M0: i32 = super::PHILOX_M0 as i32;
    const M1: i32 = super::PHILOX_M1 as i32;
    const HALF_PLUS_2_31: f64 = 2_147_483_648.5;

    /// High and low words of the 32×32-bit products of the eight lanes of `a` by `m`.
    #[target_feature(enable = "avx2")]
    fn mulhilo8(a: __m256i, m: __m256i) -> (__m256i, __m256i) {
        let even = _mm256_mul_epu32(a, m);
        let odd = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), m);
        let lo = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
        let hi = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
        (hi, lo)
    }

    /// `(w + 0.5)·2^-32` of four u32 lanes, exactly: `w ^ 2^31` read as i32 converts exactly,
    /// and adding back 2^31 + 0.5 is exact in f64.
    #[target_feature(enable = "avx2")]
    fn unit4(w: __m128i) -> __m256d {
        let d = _mm256_cvtepi32_pd(_mm_xor_si128(w, _mm_set1_epi32(i32::MIN)));
        _mm256_mul_pd(_mm256_add_pd(d, _mm256_set1_pd(HALF_PLUS_2_31)), _mm256_set1_pd(super::TWO_POW_M32))
    }

    /// [`super::fill_group`] with AVX2.
    ///
    /// # Safety
    ///
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    pub fn fill_group_avx2(seed: u64, first: u64, group: u32, stream: u32, out: [&mut [f64]; 4]) {
        let [o0, o1, o2, o3] = out;
        let n = o0.len();
        let (o1, o2, o3) = (&mut o1[..n], &mut o2[..n], &mut o3[..n]);
        let (m0, m1) = (_mm256_set1_epi32(M0), _mm256_set1_epi32(M1));
        let mut b = 0;
        while b + 8 <= n {
            let i = |l: usize| first.wrapping_add((b + l) as u64);
            let lo = |l: usize| i(l) as u32 as i32;
            let hi = |l: usize| (i(l) >> 32) as u32 as i32;
            let mut c0 = _mm256_setr_epi32(lo(0), lo(1), lo(2), lo(3), lo(4), lo(5), lo(6), lo(7));
            let mut c1 = _mm256_setr_epi32(hi(0), hi(1), hi(2), hi(3), hi(4), hi(5), hi(6), hi(7));
            let mut c2 = _mm256_set1_epi32(group as i32);
            let mut c3 = _mm256_set1_epi32(stream as i32);
            let [mut k0, mut k1] = super::key(seed);
            for r in 0..10 {
                if r > 0 {
                    k0 = k0.wrapping_add(super::PHILOX_W0);
                    k1 = k1.wrapping_add(super::PHILOX_W1);
                }
                let (hi0, lo0) = mulhilo8(c0, m0);
                let (hi1, lo1) = mulhilo8(c2, m1);
                c0 = _mm256_xor_si256(_mm256_xor_si256(hi1, c1), _mm256_set1_epi32(k0 as i32));
                c1 = lo1;
                c2 = _mm256_xor_si256(_mm256_xor_si256(hi0, c3), _mm256_set1_epi32(k1 as i32));
                c3 = lo0;
            }
            for (c, o) in [(c0, &mut *o0), (c1, &mut *o1), (c2, &mut *o2), (c3, &mut *o3)] {
                let o = &mut o[b..b + 8];
                // SAFETY: `o` has exactly 8 elements; unaligned stores of 4 f64 at 0 and 4.
                unsafe {
                    _mm256_storeu_pd(o.as_mut_ptr(), unit4(_mm256_castsi256_si128(c)));
                    _mm256_storeu_pd(o.as_mut_ptr().add(4), unit4(_mm256_extracti128_si256(c, 1)));
                }
            }
            b += 8;
        }
        super::fill_group(
            seed,
            first.wrapping_add(b as u64),
            group,
            stream,
            [&mut o0[b..], &mut o1[b..], &mut o2[b..], &mut o3[b..]],
        );
    }

    /// High and low words of the 32×32-bit products of the sixteen lanes of `a` by `m`.
    #[target_feature(enable = "avx512f")]
    fn mulhilo16(a: __m512i, m: __m512i) -> (__m512i, __m512i) {
        let even = _mm512_mul_epu32(a, m);
        let odd = _mm512_mul_epu32(_mm512_srli_epi64(a, 32), m);
        let lo = _mm512_mask_blend_epi32(0xAAAA, even, _mm512_slli_epi64(odd, 32));
        let hi = _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(even, 32), odd);
        (hi, lo)
    }

    /// `(w + 0.5)·2^-32` of eight u32 lanes (exact).
    #[target_feature(enable = "avx512f")]
    fn unit8(w: __m256i) -> __m512d {
        let d = _mm512_cvtepu32_pd(w);
        _mm512_mul_pd(_mm512_add_pd(d, _mm512_set1_pd(0.5)), _mm512_set1_pd(super::TWO_POW_M32))
    }

    /// [`super::fill_group`] with AVX-512F.
    ///
    /// # Safety
    ///
    /// The CPU must support AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub fn fill_group_avx512(seed: u64, first: u64, group: u32, stream: u32, out: [&mut [f64]; 4]) {
        let [o0, o1, o2, o3] = out;
        let n = o0.len();
        let (o1, o2, o3) = (&mut o1[..n], &mut o2[..n], &mut o3[..n]);
        let (m0, m1) = (_mm512_set1_epi32(M0), _mm512_set1_epi32(M1));
        let iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        let mut b = 0;
        while b + 16 <= n {
            let base = first.wrapping_add(b as u64);
            let last = base.wrapping_add(15);
            if (last >> 32) != (base >> 32) {
                // The low word wraps inside this batch: leave it to the portable loop.
                break;
            }
            let mut c0 = _mm512_add_epi32(_mm512_set1_epi32(base as u32 as i32), iota);
            let mut c1 = _mm512_set1_epi32((base >> 32) as u32 as i32);
            let mut c2 = _mm512_set1_epi32(group as i32);
            let mut c3 = _mm512_set1_epi32(stream as i32);
            let [mut k0, mut k1] = super::key(seed);
            for r in 0..10 {
                if r > 0 {
                    k0 = k0.wrapping_add(super::PHILOX_W0);
                    k1 = k1.wrapping_add(super::PHILOX_W1);
                }
                let (hi0, lo0) = mulhilo16(c0, m0);
                let (hi1, lo1) = mulhilo16(c2, m1);
                c0 = _mm512_xor_si512(_mm512_xor_si512(hi1, c1), _mm512_set1_epi32(k0 as i32));
                c1 = lo1;
                c2 = _mm512_xor_si512(_mm512_xor_si512(hi0, c3), _mm512_set1_epi32(k1 as i32));
                c3 = lo0;
            }
            for (c, o) in [(c0, &mut *o0), (c1, &mut *o1), (c2, &mut *o2), (c3, &mut *o3)] {
                let o = &mut o[b..b + 16];
                // SAFETY: `o` has exactly 16 elements; unaligned stores of 8 f64 at 0 and 8.
                unsafe {
                    _mm512_storeu_pd(o.as_mut_ptr(), unit8(_mm512_castsi512_si256(c)));
                    _mm512_storeu_pd(o.as_mut_ptr().add(8), unit8(_mm512_extracti64x4_epi64(c, 1)));
                }
            }
            b += 16;
        }
        super::fill_group(
            seed,
            first.wrapping_add(b as u64),
            group,
            stream,
            [&mut o0[b..], &mut o1[b..], &mut o2[b..], &mut o3[b..]],
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Random123 kat_vectors, "philox4x32 10" lines: counter (4 words), key (2 words) -> output.
    #[test]
    fn known_answers() {
        let cases: [([u32; 4], [u32; 2], [u32; 4]); 3] = [
            ([0; 4], [0; 2], [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]),
            ([u32::MAX; 4], [u32::MAX; 2], [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]),
            (
                [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
                [0xa4093822, 0x299f31d0],
                [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1],
            ),
        ];
        for (ctr, key, want) in cases {
            assert_eq!(philox4x32_10(ctr, key), want);
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn simd_matches_portable() {
        for (first, n) in [(0u64, 256usize), (u64::from(u32::MAX) - 20, 77), (u64::MAX - 40, 41), (5, 3)] {
            let mut want: [Vec<f64>; 4] = std::array::from_fn(|_| vec![0.0; n]);
            let [a, b, c, d] = &mut want;
            fill_group(99, first, 5, 2, [a, b, c, d]);
            if is_x86_feature_detected!("avx2") {
                let mut got: [Vec<f64>; 4] = std::array::from_fn(|_| vec![0.0; n]);
                let [a, b, c, d] = &mut got;
                // SAFETY: the CPU has AVX2.
                unsafe { x86::fill_group_avx2(99, first, 5, 2, [a, b, c, d]) };
                assert_eq!(got, want);
            }
            if is_x86_feature_detected!("avx512f") {
                let mut got: [Vec<f64>; 4] = std::array::from_fn(|_| vec![0.0; n]);
                let [a, b, c, d] = &mut got;
                // SAFETY: the CPU has AVX-512F.
                unsafe { x86::fill_group_avx512(99, first, 5, 2, [a, b, c, d]) };
                assert_eq!(got, want);
            }
        }
    }

    #[test]
    fn uniform_bounds_are_open() {
        assert_eq!(uniform(0), 2f64.powi(-33));
        assert_eq!(uniform(u32::MAX), 1.0 - 2f64.powi(-33));
        assert!(uniform(0) > 0.0 && uniform(u32::MAX) < 1.0);
    }

    #[test]
    fn fill_group_matches_slot_uniform() {
        let (mut a, mut b, mut c, mut d) = (vec![0.0; 37], vec![0.0; 37], vec![0.0; 37], vec![0.0; 37]);
        let first = u64::from(u32::MAX) - 10; // crosses the low word's wrap
        fill_group(42, first, 3, 7, [&mut a, &mut b, &mut c, &mut d]);
        for j in 0..37 {
            let i = first + j as u64;
            assert_eq!(a[j], slot_uniform(42, i, 12, 7));
            assert_eq!(b[j], slot_uniform(42, i, 13, 7));
            assert_eq!(c[j], slot_uniform(42, i, 14, 7));
            assert_eq!(d[j], slot_uniform(42, i, 15, 7));
        }
    }
}

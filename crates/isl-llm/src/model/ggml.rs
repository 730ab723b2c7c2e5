//! The float arithmetic of llama.cpp's CPU backend (the x86-64 build with AVX-512 that the
//! fixtures come from), re-derived operation by operation so that every target gives its bits:
//!
//! - [`sincosf`]: glibc's `sincosf` (the ARM Optimized Routines algorithm, all in f64), which
//!   ggml's RoPE cache calls; `libm`'s `sinf`/`cosf` differ from it in about 2.4 % of the RoPE
//!   angles by one ulp, and that alone moves the rotated queries and keys;
//! - [`expf`]: ggml's AVX-512 `ggml_v_expf`, which the softmax and SiLU use (not `expf`);
//! - [`reduce16`]: `_mm512_reduce_add_ps` as GCC expands it;
//! - [`Attention`]: the two orders in which ggml sums `q·k` and `Σ w·v` over f16 operands:
//!   llamafile's `tinyBLAS` (sixteen lanes, each summing every sixteenth term in turn) when a
//!   step has two or more tokens, and `ggml_vec_dot_f16` (four sixteen-lane accumulators, each
//!   summing every sixty-fourth term, folded pairwise) for a one-token step.
//!
//! Every product of two f16 values is exact in f32, so a fused multiply-add of such a product
//! rounds exactly as a separate multiply and add do: those loops are written either way.

use half::f16;

/// `_mm512_reduce_add_ps` (GCC): halves added, then quarters, then `(a0+a2) + (a1+a3)`.
#[inline(always)]
pub fn reduce16(a: &[f32; 16]) -> f32 {
    let mut b = [0f32; 8];
    for i in 0..8 {
        b[i] = a[i + 8] + a[i];
    }
    let c = [b[4] + b[0], b[5] + b[1], b[6] + b[2], b[7] + b[3]];
    (c[0] + c[2]) + (c[1] + c[3])
}

/// ggml's AVX-512 `ggml_v_expf`, one lane: `2^n · p(b)` with `n = round(x / ln 2)`.
#[inline(always)]
pub fn expf(x: f32) -> f32 {
    const SHIFT: f32 = 12_582_912.0; // 0x1.8p23
    let z = x.mul_add(f32::from_bits(0x3fb8_aa3b), SHIFT); // 0x1.715476p+0
    let n = z - SHIFT;
    let b = (-n).mul_add(f32::from_bits(0x35bf_be8e), (-n).mul_add(f32::from_bits(0x3f31_7200), x)); // 0x1.7f7d1cp-20, 0x1.62e4p-1
    let u = b * b;
    let p4 = f32::from_bits(0x3c07_2010); // 0x1.0e4020p-7
    let p3 = f32::from_bits(0x3d2b_9f17); // 0x1.573e2ep-5
    let p2 = f32::from_bits(0x3e2a_af33); // 0x1.555e66p-3
    let p1 = f32::from_bits(0x3eff_fedb); // 0x1.fffdb6p-2
    let p0 = f32::from_bits(0x3f7f_fff6); // 0x1.ffffecp-1
    let j = p4.mul_add(b, p3).mul_add(u, p2.mul_add(b, p1)).mul_add(u, p0.mul_add(b, 1.0));
    // _mm512_scalef_ps(j, n) for |n| ≤ 192: two exact power-of-two factors, one rounding.
    let ni = n as i32;
    let lo = ni >> 1;
    let hi = ni.wrapping_sub(lo);
    let pow2 = |k: i32| f32::from_bits((k.wrapping_add(127) as u32) << 23);
    let res = (j * pow2(lo)) * pow2(hi);
    if n.abs() > 192.0 { if n <= 0.0 { 0.0 } else { f32::INFINITY } } else { res }
}

/// ggml's `ggml_vec_swiglu_f32`: `silu(g) · u` with `silu(x) = x / (1 + e^-x)` through
/// [`expf`] for the first `whole` values (ggml's groups of sixteen), through `expf` (here
/// `libm`'s) for the rest.
pub fn swiglu(g: &[f32], u: &[f32], out: &mut [f32], whole: usize) {
    #[cfg(target_arch = "x86_64")]
    if crate::kernels::has_avx2() {
        // SAFETY: AVX2 and FMA were detected at run time.
        return unsafe { swiglu_avx2(g, u, out, whole) };
    }
    swiglu_portable(g, u, out, whole)
}

#[inline(always)]
fn swiglu_portable(g: &[f32], u: &[f32], out: &mut [f32], whole: usize) {
    let whole = whole.min(g.len());
    for ((o, &x), &y) in out[..whole].iter_mut().zip(&g[..whole]).zip(&u[..whole]) {
        *o = x / (1.0 + expf(0.0 - x)) * y;
    }
    for ((o, &x), &y) in out[whole..].iter_mut().zip(&g[whole..]).zip(&u[whole..]) {
        *o = x / (1.0 + libm::expf(-x)) * y;
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn swiglu_avx2(g: &[f32], u: &[f32], out: &mut [f32], whole: usize) {
    swiglu_portable(g, u, out, whole)
}

/// glibc's `sincosf` (sysdeps/ieee754/flt-32, from ARM Optimized Routines; checked equal to the
/// x86-64 glibc 2.36 function on every RoPE angle of positions below 32768 with base 1e5 and on
/// a million random floats): a polynomial in f64 after a range reduction by π/2.
pub fn sincosf(y: f32) -> (f32, f32) {
    sincosf_impl(y)
}

struct Poly {
    c: [f64; 5],
    s: [f64; 3],
}

const HPI_INV: f64 = f64::from_bits(0x4164_5F30_6DC9_C883); // 0x1.45F306DC9C883p+23
const HPI: f64 = f64::from_bits(0x3FF9_21FB_5444_2D18); // 0x1.921FB54442D18p0
const PIO2_62: f64 = f64::from_bits(0x3C19_21FB_5444_2D18); // 0x1.921FB54442D18p-62

const POLY: [Poly; 2] = [
    Poly {
        c: [
            1.0,
            f64::from_bits(0xBFDF_FFFF_FD0C_621C),
            f64::from_bits(0x3FA5_5553_E106_8F19),
            f64::from_bits(0xBF56_C087_E89A_359D),
            f64::from_bits(0x3EF9_9343_027B_F8C3),
        ],
        s: [
            f64::from_bits(0xBFC5_5554_5995_A603),
            f64::from_bits(0x3F81_1076_0523_0BC4),
            f64::from_bits(0xBF29_94EB_3774_CF24),
        ],
    },
    // The second entry negates the cosine polynomial (the quadrant's sign for free).
    Poly {
        c: [
            -1.0,
            f64::from_bits(0x3FDF_FFFF_FD0C_621C),
            f64::from_bits(0xBFA5_5553_E106_8F19),
            f64::from_bits(0x3F56_C087_E89A_359D),
            f64::from_bits(0xBEF9_9343_027B_F8C3),
        ],
        s: [
            f64::from_bits(0xBFC5_5554_5995_A603),
            f64::from_bits(0x3F81_1076_0523_0BC4),
            f64::from_bits(0xBF29_94EB_3774_CF24),
        ],
    },
];

const INV_PIO4: [u32; 24] = [
    0xa2, 0xa2f9, 0xa2f983, 0xa2f9836e, 0xf9836e4e, 0x836e4e44, 0x6e4e4415, 0x4e441529, 0x441529fc, 0x1529fc27,
    0x29fc2757, 0xfc2757d1, 0x2757d1f5, 0x57d1f534, 0xd1f534dd, 0xf534ddc0, 0x34ddc0db, 0xddc0db62, 0xc0db6295,
    0xdb629599, 0x6295993c, 0x95993c43, 0x993c4390, 0x3c439041,
];

fn abstop12(x: f32) -> u32 {
    (x.to_bits() >> 20) & 0x7ff
}

/// `sincosf_poly`: returns (sin, cos) of the reduced argument, swapped in odd quadrants.
fn sincos_poly(x: f64, x2: f64, p: &Poly, n: i32) -> (f32, f32) {
    let x4 = x2 * x2;
    let x3 = x2 * x;
    let c2 = x2.mul_add(p.c[4], p.c[3]);
    let s1 = x2.mul_add(p.s[2], p.s[1]);
    let c1 = x2.mul_add(p.c[1], p.c[0]);
    let x5 = x3 * x2;
    let x6 = x4 * x2;
    let s = x3.mul_add(p.s[0], x);
    let c = x4.mul_add(p.c[2], c1);
    let sv = x5.mul_add(s1, s) as f32;
    let cv = x6.mul_add(c2, c) as f32;
    if n & 1 != 0 { (cv, sv) } else { (sv, cv) }
}

const SIGN: [f64; 4] = [1.0, -1.0, -1.0, 1.0];

fn sincosf_impl(y: f32) -> (f32, f32) {
    let x = f64::from(y);
    if abstop12(y) < abstop12(f32::from_bits(0x3f49_0fdb)) {
        // |y| < π/4.
        if abstop12(y) < abstop12(f32::from_bits(0x3980_0000)) {
            return (y, 1.0);
        }
        return sincos_poly(x, x * x, &POLY[0], 0);
    }
    if abstop12(y) < abstop12(120.0) {
        let n = ((x * HPI_INV) as i32).wrapping_add(0x80_0000) >> 24;
        let r = (-f64::from(n)).mul_add(HPI, x);
        let s = SIGN[(n & 3) as usize];
        let p = &POLY[usize::from(n & 2 != 0)];
        return sincos_poly(r * s, r * r, p, n);
    }
    if !y.is_finite() {
        return (f32::NAN, f32::NAN);
    }
    // Large arguments: the reduction in fixed point with 4/π's bits.
    let xi0 = y.to_bits();
    let sign = (xi0 >> 31) as i32;
    let arr = &INV_PIO4[((xi0 >> 26) & 15) as usize..];
    let shift = (xi0 >> 23) & 7;
    let xi = ((xi0 & 0xff_ffff) | 0x80_0000) << shift;
    let res0 = u64::from(xi.wrapping_mul(arr[0]));
    let res1 = u64::from(xi) * u64::from(arr[4]);
    let res2 = u64::from(xi) * u64::from(arr[8]);
    let mut r0 = ((res2 >> 32) | (res0 << 32)).wrapping_add(res1);
    let n = r0.wrapping_add(1 << 61) >> 62;
    r0 = r0.wrapping_sub(n << 62);
    let r = (r0 as i64) as f64 * PIO2_62;
    let n = n as i32;
    let s = SIGN[((n + sign) & 3) as usize];
    let p = &POLY[usize::from((n + sign) & 2 != 0)];
    sincos_poly(r * s, r * r, p, n)
}

/// Which of ggml's two f16 summation orders a step uses (see the module notes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// llamafile's `tinyBLAS` (a step of two or more tokens).
    Tiny,
    /// `ggml_vec_dot_f16` (a one-token step).
    VecDot,
}

/// Scratch for one attention head of one token, reused between heads.
#[derive(Default)]
pub struct Attention {
    scores: Vec<f32>,
    acc: Vec<f32>,
    kf: Vec<f32>,
}

/// One head's attention for one token: `q` (its head_dim values, already rotated), the cache
/// rows `k`/`v` of its kv head (`t` positions, each `stride` values apart, this head's `hd`
/// values first), the softmax scale, into `out`.
pub struct HeadJob<'a> {
    pub q: &'a [f32],
    pub k: &'a [f16],
    pub v: &'a [f16],
    pub stride: usize,
    pub t: usize,
    pub scale: f32,
    pub order: Order,
}

impl Attention {
    /// Runs `job` into `out` (`hd` values).
    pub fn run(&mut self, job: &HeadJob<'_>, out: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if crate::kernels::has_avx2() {
            // SAFETY: AVX2, FMA and F16C were detected at run time.
            return unsafe { self.run_avx2(job, out) };
        }
        self.run_portable(job, out)
    }

    /// The reference path: plain loops in ggml's lane order.
    pub fn run_portable(&mut self, job: &HeadJob<'_>, out: &mut [f32]) {
        let hd = job.q.len();
        let q: Vec<f32> = job.q.iter().map(|&x| f16::from_f32(x).to_f32()).collect();
        self.kf.resize(hd, 0.0);
        self.scores.clear();
        for p in 0..job.t {
            let row = &job.k[p * job.stride..p * job.stride + hd];
            for (d, s) in self.kf.iter_mut().zip(row) {
                *d = s.to_f32();
            }
            let s = match qk_order(job.order, hd) {
                Order::Tiny => dot_tiny(&q, &self.kf),
                Order::VecDot => dot_vec(&q, &self.kf),
            };
            self.scores.push(s * job.scale);
        }
        softmax(&mut self.scores);
        let lanes = lanes(job.order, hd);
        self.acc.clear();
        self.acc.resize(lanes * hd, 0.0);
        for p in 0..job.t {
            let w = self.scores[p];
            let row = &job.v[p * job.stride..p * job.stride + hd];
            let acc = &mut self.acc[(p % lanes) * hd..(p % lanes + 1) * hd];
            for (a, v) in acc.iter_mut().zip(row) {
                *a += w * v.to_f32();
            }
        }
        fold(&self.acc, lanes, hd, out);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn run_avx2(&mut self, job: &HeadJob<'_>, out: &mut [f32]) {
        use std::arch::x86_64::*;
        let hd = job.q.len();
        if !hd.is_multiple_of(16) {
            return self.run_portable(job, out);
        }
        self.kf.clear();
        self.kf.extend(job.q.iter().map(|&x| f16::from_f32(x).to_f32()));
        let q = &self.kf[..];
        let order = qk_order(job.order, hd);
        self.scores.clear();
        self.scores.resize(job.t, 0.0);
        // SAFETY: every load reads 8 values inside `q` (hd long) or inside row p of `k`/`v`
        // (hd values from p·stride, and the caller's slices hold t rows); stores stay inside
        // `acc` (lanes × hd).
        unsafe {
            for p in 0..job.t {
                let kp = job.k.as_ptr().add(p * job.stride) as *const __m128i;
                let ld = |i: usize| _mm256_cvtph_ps(_mm_loadu_si128(kp.add(i / 8)));
                let lq = |i: usize| _mm256_loadu_ps(q.as_ptr().add(i));
                let s = match order {
                    Order::Tiny => {
                        let (mut lo, mut hi) = (_mm256_setzero_ps(), _mm256_setzero_ps());
                        for l in (0..hd).step_by(16) {
                            lo = _mm256_fmadd_ps(lq(l), ld(l), lo);
                            hi = _mm256_fmadd_ps(lq(l + 8), ld(l + 8), hi);
                        }
                        crate::kernels::avx2_hsum(_mm256_add_ps(hi, lo))
                    }
                    Order::VecDot => {
                        let np = hd & !63;
                        let mut s = [_mm256_setzero_ps(); 8];
                        for i in (0..np).step_by(64) {
                            for (j, acc) in s.iter_mut().enumerate() {
                                *acc = _mm256_fmadd_ps(lq(i + 8 * j), ld(i + 8 * j), *acc);
                            }
                        }
                        // Lanes (j, e): 16j+e; accumulator j is s[2j] (lanes 0..8), s[2j+1].
                        let lo = _mm256_add_ps(_mm256_add_ps(s[0], s[4]), _mm256_add_ps(s[2], s[6]));
                        let hi = _mm256_add_ps(_mm256_add_ps(s[1], s[5]), _mm256_add_ps(s[3], s[7]));
                        let mut sum = f64::from(crate::kernels::avx2_hsum(_mm256_add_ps(hi, lo)));
                        let krow = job.k.get_unchecked(p * job.stride..p * job.stride + hd);
                        for (a, b) in q[np..].iter().zip(&krow[np..]) {
                            sum += f64::from(a * b.to_f32());
                        }
                        sum as f32
                    }
                };
                *self.scores.get_unchecked_mut(p) = s * job.scale;
            }
            softmax(&mut self.scores);
            let lanes = lanes(job.order, hd);
            self.acc.clear();
            self.acc.resize(lanes * hd, 0.0);
            for p in 0..job.t {
                let w = _mm256_set1_ps(*self.scores.get_unchecked(p));
                let vp = job.v.as_ptr().add(p * job.stride) as *const __m128i;
                let acc = self.acc.as_mut_ptr().add((p % lanes) * hd);
                for i in (0..hd).step_by(8) {
                    let v = _mm256_cvtph_ps(_mm_loadu_si128(vp.add(i / 8)));
                    let a = acc.add(i);
                    _mm256_storeu_ps(a, _mm256_fmadd_ps(w, v, _mm256_loadu_ps(a)));
                }
            }
        }
        fold(&self.acc, lanes(job.order, hd), hd, out);
    }
}

/// The order of `q·k`: tinyBLAS needs head_dim a multiple of 16, else ggml falls back to
/// `ggml_vec_dot_f16`.
fn qk_order(order: Order, hd: usize) -> Order {
    if order == Order::Tiny && hd.is_multiple_of(16) { Order::Tiny } else { Order::VecDot }
}

/// Position classes of `Σ w·v`: tinyBLAS (needs head_dim a multiple of 4) sums positions
/// `p ≡ e (mod 16)` in lane e; `ggml_vec_dot_f16` positions `p ≡ l (mod 64)` in lane l.
fn lanes(order: Order, hd: usize) -> usize {
    if order == Order::Tiny && hd.is_multiple_of(4) { 16 } else { 64 }
}

/// tinyBLAS's `q·k`: lane e sums terms e, e+16, … in turn, then [`reduce16`].
#[inline(always)]
fn dot_tiny(q: &[f32], k: &[f32]) -> f32 {
    let mut acc = [0f32; 16];
    for (qc, kc) in q.chunks_exact(16).zip(k.chunks_exact(16)) {
        for e in 0..16 {
            acc[e] += qc[e] * kc[e];
        }
    }
    reduce16(&acc)
}

/// `ggml_vec_dot_f16`: lanes l < 64 sum terms l, l+64, …; then `(a0+a2) + (a1+a3)` over the
/// four sixteen-lane accumulators, [`reduce16`], and the tail past a multiple of 64 in f64.
#[inline(always)]
fn dot_vec(q: &[f32], k: &[f32]) -> f32 {
    let n = q.len();
    let np = n & !63;
    let mut acc = [0f32; 64];
    for i in (0..np).step_by(64) {
        for l in 0..64 {
            acc[l] += q[i + l] * k[i + l];
        }
    }
    let mut x = [0f32; 16];
    for e in 0..16 {
        x[e] = (acc[e] + acc[32 + e]) + (acc[16 + e] + acc[48 + e]);
    }
    let mut sum = f64::from(reduce16(&x));
    for i in np..n {
        sum += f64::from(q[i] * k[i]);
    }
    sum as f32
}

/// ggml's `soft_max` over one row of scaled scores (ggml's row is padded with masked
/// positions to a multiple of 256, which add nothing): `e = expf(s − max)` in groups of 16,
/// each group summed by [`reduce16`] and the group sums in f64; the weights `e · (1/sum)`,
/// then rounded to f16 (the product with the f16 values casts them).
#[inline(always)]
fn softmax(scores: &mut [f32]) {
    let max = scores.iter().fold(f32::NEG_INFINITY, |m, &s| m.max(s));
    let mut sum = 0f64;
    for chunk in scores.chunks_mut(16) {
        let mut e = [0f32; 16];
        for (d, s) in e.iter_mut().zip(chunk.iter_mut()) {
            *s = expf(*s - max);
            *d = *s;
        }
        sum += f64::from(reduce16(&e));
    }
    let inv = (1.0 / sum) as f32;
    for s in scores.iter_mut() {
        *s = f16::from_f32(*s * inv).to_f32();
    }
}

/// Folds the position-class accumulators into the output, as the kernels reduce their lanes.
#[inline(always)]
fn fold(acc: &[f32], lanes: usize, hd: usize, out: &mut [f32]) {
    let row = |l: usize, e: usize| acc[l * hd + e];
    for (e, o) in out.iter_mut().enumerate().take(hd) {
        let mut x = [0f32; 16];
        if lanes == 16 {
            for (l, xl) in x.iter_mut().enumerate() {
                *xl = row(l, e);
            }
        } else {
            for (l, xl) in x.iter_mut().enumerate() {
                *xl = (row(l, e) + row(32 + l, e)) + (row(16 + l, e) + row(48 + l, e));
            }
        }
        *o = reduce16(&x);
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
    fn expf_is_close_to_exp() {
        for i in -800..800 {
            let x = i as f32 * 0.11;
            let (a, b) = (expf(x), libm::expf(x));
            assert!((a - b).abs() <= b * 4e-7, "{x}: {a} vs {b}");
        }
        assert_eq!(expf(-200.0), 0.0);
        assert_eq!(expf(0.0), 1.0);
    }

    #[test]
    fn sincosf_is_close_to_sin_and_cos() {
        let mut s = 3u64;
        for _ in 0..20_000 {
            let x = lcg(&mut s) * 2000.0;
            let (a, b) = sincosf(x);
            assert!((f64::from(a) - f64::from(x).sin()).abs() < 1.2e-7, "{x}");
            assert!((f64::from(b) - f64::from(x).cos()).abs() < 1.2e-7, "{x}");
        }
        assert_eq!(sincosf(0.0), (0.0, 1.0));
    }

    #[test]
    fn attention_avx2_and_portable_paths_give_the_same_bits() {
        let mut s = 5u64;
        for (hd, stride) in [(64usize, 192usize), (128, 128), (48, 96), (80, 80)] {
            for t in [1usize, 2, 3, 17, 70, 300] {
                let k: Vec<f16> = (0..t * stride).map(|_| f16::from_f32(lcg(&mut s) * 3.0)).collect();
                let v: Vec<f16> = (0..t * stride).map(|_| f16::from_f32(lcg(&mut s))).collect();
                let q: Vec<f32> = (0..hd).map(|_| lcg(&mut s) * 2.0).collect();
                for order in [Order::Tiny, Order::VecDot] {
                    let job = HeadJob { q: &q, k: &k, v: &v, stride, t, scale: 0.125, order };
                    let mut a = vec![0f32; hd];
                    let mut b = vec![0f32; hd];
                    Attention::default().run(&job, &mut a);
                    Attention::default().run_portable(&job, &mut b);
                    let bits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(&a), bits(&b), "hd {hd} t {t} {order:?}");
                }
            }
        }
    }
}

// isl-gpu shader prelude: the parts of every generated shader that do not depend on the model.
// The generated `sample` function (one model evaluation) is appended after this text, and the
// `main` kernel after it. See codegen.rs for the contract.

const WG: u32 = 256u;          // invocations per workgroup
const SPT: u32 = 16u;          // samples per invocation
const COARSE_BINS: u32 = 2048u; // level-A histogram: the top 11 bits of a sample's order key
const TWO_POW_M32: f32 = 2.3283064365386963e-10;

struct Params {
    key: vec2<u32>,      // Philox key: the seed's low and high words
    base: vec2<u32>,     // index of the dispatch's first sample: low and high words
    count: u32,          // samples in this dispatch
    stream: u32,         // Philox counter word 3
    mode: u32,           // 0 moments + coarse histogram, 1 refined histogram, 2 tail sums, 3 values,
                         // 4 weighted coarse histogram, 5 weighted refined histogram
    ntargets: u32,       // mode 1: entries of `targets`
    threshold: f32,      // modes 0 and 2: count samples above it
    wref: f32,           // modes 2, 4, 5: weights are exp(log_weight - wref)
    nan: f32,            // a quiet NaN (WGSL has no NaN literal)
    inf: f32,            // +infinity (likewise)
    pfx_shift: u32,      // mode 1: a sample's target prefix is key >> pfx_shift
    bin_shift: u32,      // mode 1: its bin is (key >> bin_shift) & bin_mask
    bin_mask: u32,
    bins: u32,           // mode 1: bins per target
    shifted: u32,        // 1: importance-sampling mean shifts from `shifts` (per slot)
    pad0: u32,
    pad1: u32,
    pad2: u32,
}

// One record per workgroup (64 bytes). Mode 0: v[0] = mean, v[1] = M2 (sum of squared
// deviations), v[2] = min, v[3] = max of the workgroup's finite samples; mode 2: v[0] = sum of
// weights above the threshold, v[1] = their sum of squares; `main_w`: the weighted record `WRec`
// (v[0..9] = m, w, q, mu, s, t, r, h, hq; see kernel.wgsl).
struct Partial {
    n: u32,
    hits: u32,
    v: array<f32, 14>,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read_write> partials: array<Partial>;
// Mode 0: level-A counts in [0, COARSE_BINS); mode 4: level-A weights, 64-bit fixed point (low
// words in [0, COARSE_BINS), carries in [COARSE_BINS, 2 COARSE_BINS)).
@group(0) @binding(2) var<storage, read_write> coarse: array<atomic<u32>>;
@group(0) @binding(3) var<storage, read> targets: array<u32>;
// Mode 1: refined counts, `bins` per target; mode 5: refined weights, 64-bit fixed point (low
// words first, then the carries at offset ntargets * bins).
@group(0) @binding(4) var<storage, read_write> fine: array<atomic<u32>>;
@group(0) @binding(5) var<storage, read> shifts: array<f32>;
@group(0) @binding(6) var<storage, read_write> values: array<f32>;

var<workgroup> wg_hist: array<atomic<u32>, 2048>;
var<workgroup> red_f: array<vec4<f32>, 256>;
var<workgroup> red_u: array<vec2<u32>, 256>;

// ---- IEEE helpers (WGSL has no isnan; compare bits) ----

fn is_nan(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u;
}

fn is_finite(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7f800000u) != 0x7f800000u;
}

// Order-preserving u32 key of a float (larger float, larger key).
fn order_key(x: f32) -> u32 {
    let b = bitcast<u32>(x);
    return select(b ^ 0x80000000u, ~b, (b >> 31u) == 1u);
}

// ---- Uniforms and normals from 32 random bits ----

// u = (bits + 0.5) * 2^-32, rounded to f32.
fn unit(bits: u32) -> f32 {
    return (f32(bits) + 0.5) * TWO_POW_M32;
}

// AS 241 (Wichura 1988) in f32: z = inverse normal CDF of u = (bits + 0.5) * 2^-32. q = u - 0.5
// and the tail probability (u, or 1 - u) are formed from the bits directly, so neither loses
// precision to the rounding of u near 0 or 1.
fn inv_norm_bits(bits: u32) -> f32 {
    let q = (f32(bitcast<i32>(bits ^ 0x80000000u)) + 0.5) * TWO_POW_M32;
    if (abs(q) <= 0.425) {
        let r = 0.180625 - q * q;
        let num = (((((((2509.0809287301226727 * r + 33430.575583588128105) * r + 67265.770927008700853) * r
            + 45921.953931549871457) * r + 13731.693765509461125) * r + 1971.5909503065514427) * r
            + 133.14166789178437745) * r + 3.387132872796366608);
        let den = (((((((5226.495278852854561 * r + 28729.085735721942674) * r + 39307.89580009271061) * r
            + 21213.794301586595867) * r + 5394.1960214247511077) * r + 687.1870074920579083) * r
            + 42.313330701600911252) * r + 1.0);
        return q * num / den;
    }
    var p: f32;
    if (q < 0.0) {
        p = (f32(bits) + 0.5) * TWO_POW_M32;
    } else {
        p = (f32(~bits) + 0.5) * TWO_POW_M32;
    }
    var r = sqrt(-log(p));
    var v: f32;
    if (r <= 5.0) {
        r = r - 1.6;
        v = (((((((7.7454501427834140764e-4 * r + 0.0227238449892691845833) * r + 0.24178072517745061177) * r
            + 1.27045825245236838258) * r + 3.64784832476320460504) * r + 5.7694972214606914055) * r
            + 4.6303378461565452959) * r + 1.42343711074968357734)
            / (((((((1.05075007164441684324e-9 * r + 5.475938084995344946e-4) * r + 0.0151986665636164571966) * r
            + 0.14810397642748007459) * r + 0.68976733498510000455) * r + 1.6763848301838038494) * r
            + 2.05319162663775882187) * r + 1.0);
    } else {
        r = r - 5.0;
        v = (((((((2.01033439929228813265e-7 * r + 2.71155556874348757815e-5) * r + 0.0012426609473880784386) * r
            + 0.026532189526576123093) * r + 0.29656057182850489123) * r + 1.7848265399172913358) * r
            + 5.4637849111641143699) * r + 6.6579046435011037772)
            / (((((((2.04426310338993978564e-15 * r + 1.4215117583164458887e-7) * r + 1.8463183175100546818e-5) * r
            + 7.868691311456132591e-4) * r + 0.0148753612908506148525) * r + 0.13692988092273580531) * r
            + 0.59983220655588793769) * r + 1.0);
    }
    return select(v, -v, q < 0.0);
}

// erfc in f32 (Numerical Recipes' erfcc, Chebyshev fit, relative error below 1.2e-7).
fn erfc_f(x: f32) -> f32 {
    let z = abs(x);
    let t = 1.0 / (1.0 + 0.5 * z);
    let ans = t * exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418
        + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587
        + t * (-0.82215223 + t * 0.17087277)))))))));
    return select(2.0 - ans, ans, x >= 0.0);
}

// Standard normal CDF.
fn norm_cdf(z: f32) -> f32 {
    return 0.5 * erfc_f(-z * 0.70710678118654752);
}

// The standard variate of a normal-kind slot, shifted by its importance-sampling mean when the
// run is shifted (the log-weight gains the likelihood ratio, as on the CPU).
fn normal_variate(bits: u32, slot: u32, lw: ptr<function, f32>) -> f32 {
    var z = inv_norm_bits(bits);
    if (P.shifted != 0u) {
        let mu = shifts[slot];
        if (mu != 0.0) {
            z = z + mu;
            *lw = *lw + (0.5 * mu) * mu - mu * z;
        }
    }
    return z;
}

// The standard variate of a uniform-kind slot: u, or Phi(Phi^-1(u) + mu) when shifted.
fn uniform_variate(bits: u32, slot: u32, lw: ptr<function, f32>) -> f32 {
    if (P.shifted != 0u) {
        let mu = shifts[slot];
        if (mu != 0.0) {
            let z = inv_norm_bits(bits) + mu;
            *lw = *lw + (0.5 * mu) * mu - mu * z;
            return norm_cdf(z);
        }
    }
    return unit(bits);
}

// ---- The operations of isl-mc's programs, with libm's special cases ----

fn log_f(x: f32) -> f32 {
    if (x < 0.0) {
        return P.nan;
    }
    if (x == 0.0) {
        return -P.inf;
    }
    return log(x);
}

fn sqrt_f(x: f32) -> f32 {
    if (x < 0.0) {
        return P.nan;
    }
    return sqrt(x);
}

fn min_f(a: f32, b: f32) -> f32 {
    if (is_nan(a) || is_nan(b)) {
        return P.nan;
    }
    return select(a, b, b < a);
}

fn max_f(a: f32, b: f32) -> f32 {
    if (is_nan(a) || is_nan(b)) {
        return P.nan;
    }
    return select(a, b, b > a);
}

// pow with C99/libm special cases: pow(x, 0) = 1 and pow(1, y) = 1 even for NaN; a negative base
// needs an integer exponent (odd exponents keep the sign); zeros and infinities by the sign of y.
fn pow_f(x: f32, y: f32) -> f32 {
    if (y == 0.0 || x == 1.0) {
        return 1.0;
    }
    if (is_nan(x) || is_nan(y)) {
        return P.nan;
    }
    let ax = abs(x);
    var r: f32;
    if (ax == 0.0) {
        r = select(0.0, P.inf, y < 0.0);
    } else if (ax == P.inf) {
        r = select(P.inf, 0.0, y < 0.0);
    } else if (ax == 1.0) {
        r = 1.0;
    } else {
        r = exp2(y * log2(ax));
    }
    if ((bitcast<u32>(x) >> 31u) == 1u) {
        if (floor(y) != y) {
            if (ax == 0.0 || ax == P.inf) {
                return r;
            }
            return P.nan;
        }
        if (abs(y) < 16777216.0 && fract(y * 0.5) != 0.0) {
            return -r;
        }
    }
    return r;
}

// Triangular inverse CDF; width = high - low, ml = mode - low, hm = high - mode come from the host
// in f64 (so that close bounds keep their difference).
fn triangular(u: f32, low: f32, high: f32, width: f32, ml: f32, hm: f32) -> f32 {
    if (u * width < ml) {
        return low + sqrt(u * width * ml);
    }
    return high - sqrt((1.0 - u) * width * hm);
}

// Index of `p` in the sorted `targets[0..ntargets]`, or -1.
fn find_target(p: u32) -> i32 {
    var lo = 0u;
    var hi = P.ntargets;
    while (lo < hi) {
        let mid = (lo + hi) / 2u;
        if (targets[mid] < p) {
            lo = mid + 1u;
        } else {
            hi = mid;
        }
    }
    if (lo < P.ntargets && targets[lo] == p) {
        return i32(lo);
    }
    return -1;
}

// ---- Log-densities of evidence (isl-mc's Dist::log_pdf, in f32) ----
// Constants that do not depend on the sample come from the host, computed in f64.

// Normal(mean, sd): lc = ln(sd) + ln(2 pi)/2.
fn lpdf_normal(x: f32, mean: f32, sd: f32, lc: f32) -> f32 {
    let d = (x - mean) / sd;
    return -0.5 * d * d - lc;
}

// Lognormal(mu, sigma): lc = ln(sigma) + ln(2 pi)/2; zero density (-inf) unless x > 0 (NaN too).
fn lpdf_lognormal(x: f32, mu: f32, sigma: f32, lc: f32) -> f32 {
    if (is_nan(x) || !(x > 0.0)) {
        return -P.inf;
    }
    let lx = log(x);
    let d = (lx - mu) / sigma;
    return -0.5 * d * d - lx - lc;
}

// Uniform(low, high): lc = -ln(high - low) on [low, high], else -inf (NaN too).
fn lpdf_uniform(x: f32, low: f32, high: f32, lc: f32) -> f32 {
    if (is_nan(x) || x < low || x > high) {
        return -P.inf;
    }
    return lc;
}

// Triangular(low, mode, high): k_lo = 2/((high - low)(mode - low)), k_hi = 2/((high - low)(high -
// mode)), peak = ln(2/(high - low)). A NaN fails every comparison of the CPU's chain and gets the
// peak's density there; so it does here.
fn lpdf_triangular(x: f32, low: f32, mode: f32, high: f32, k_lo: f32, k_hi: f32, peak: f32) -> f32 {
    if (is_nan(x)) {
        return peak;
    }
    var pdf: f32;
    if (x < low || x > high) {
        pdf = 0.0;
    } else if (x < mode) {
        pdf = (x - low) * k_lo;
    } else if (x > mode) {
        pdf = (high - x) * k_hi;
    } else {
        return peak;
    }
    if (pdf > 0.0) {
        return log(pdf);
    }
    return -P.inf;
}

// A weight exp(lw - P.wref) <= 1 as an unsigned fixed-point number with 24 fractional bits
// (rounded to nearest): the unit of the weighted histograms, summed exactly in 64 bits.
fn weight_units(lw: f32) -> u32 {
    let w = min(exp(lw - P.wref), 1.0);
    if (!(w > 0.0)) {
        return 0u;
    }
    return u32(w * 16777216.0 + 0.5);
}

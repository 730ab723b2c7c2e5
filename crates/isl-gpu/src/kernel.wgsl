// The kernel: SPT samples per invocation (indices strided by WG inside a workgroup's block of
// WG * SPT), then per-workgroup reductions. Modes (P.mode, uniform across the dispatch):
//   0: count, mean and M2 (Welford per invocation, Chan's combination across the workgroup),
//      min, max, hits above the threshold, and the level-A histogram of order keys;
//   1: the refined histogram of the samples whose key prefix is a target;
//   2: tail sums of an importance run: weights exp(lw - wref) of samples above the threshold;
//   3: per-sample values (debug and parity tests only): values[2i] = y, values[2i+1] = lw;
//   4: the level-A histogram of weights exp(lw - wref) (evidence), in 64-bit fixed point;
//   5: the refined histogram of such weights.
// The weighted moments are another entry point, `main_w` (below), with its own workgroup memory.
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_id) lid3: vec3<u32>, @builtin(workgroup_id) wid3: vec3<u32>) {
    let lid = lid3.x;
    let wid = wid3.x;
    let mode = P.mode;
    var n = 0u;
    var hits = 0u;
    var a = 0.0;
    var b = 0.0;
    var lo = P.inf;
    var hi = -P.inf;
    for (var j = 0u; j < SPT; j = j + 1u) {
        let off = wid * (WG * SPT) + j * WG + lid;
        if (off >= P.count) {
            break;
        }
        let ilo = P.base.x + off;
        let ihi = P.base.y + select(0u, 1u, ilo < off);
        let s = sample(ilo, ihi);
        let y = s.x;
        let lw = s.y;
        if (mode == 3u) {
            values[2u * off] = y;
            values[2u * off + 1u] = lw;
            continue;
        }
        if (!is_finite(y) || is_nan(lw)) {
            continue;
        }
        n = n + 1u;
        if (mode == 0u) {
            let d = y - a;
            a = a + d / f32(n);
            b = b + d * (y - a);
            lo = min(lo, y);
            hi = max(hi, y);
            if (y > P.threshold) {
                hits = hits + 1u;
            }
            atomicAdd(&wg_hist[order_key(y) >> 21u], 1u);
        } else if (mode == 1u) {
            let k = order_key(y);
            let t = find_target(k >> P.pfx_shift);
            if (t >= 0) {
                atomicAdd(&fine[u32(t) * P.bins + ((k >> P.bin_shift) & P.bin_mask)], 1u);
            }
        } else if (mode == 2u) {
            if (y > P.threshold) {
                let w = exp(lw - P.wref);
                a = a + w;
                b = b + w * w;
                hits = hits + 1u;
            }
        } else if (mode == 4u) {
            let q = weight_units(lw);
            if (q > 0u) {
                let k = order_key(y) >> 21u;
                let old = atomicAdd(&wg_hist[k], q);
                if (old + q < old) {
                    atomicAdd(&coarse[COARSE_BINS + k], 1u);
                }
            }
        } else if (mode == 5u) {
            let k = order_key(y);
            let t = find_target(k >> P.pfx_shift);
            if (t >= 0) {
                let q = weight_units(lw);
                if (q > 0u) {
                    let i = u32(t) * P.bins + ((k >> P.bin_shift) & P.bin_mask);
                    let old = atomicAdd(&fine[i], q);
                    if (old + q < old) {
                        atomicAdd(&fine[P.ntargets * P.bins + i], 1u);
                    }
                }
            }
        }
    }
    if (mode == 4u) {
        // The workgroup's weights, added to the 64-bit totals (low word, then the carry).
        workgroupBarrier();
        for (var k = lid; k < COARSE_BINS; k = k + WG) {
            let c = atomicLoad(&wg_hist[k]);
            if (c > 0u) {
                let old = atomicAdd(&coarse[k], c);
                if (old + c < old) {
                    atomicAdd(&coarse[COARSE_BINS + k], 1u);
                }
            }
        }
        return;
    }
    if (mode == 0u || mode == 2u) {
        red_f[lid] = vec4<f32>(a, b, lo, hi);
        red_u[lid] = vec2<u32>(n, hits);
        workgroupBarrier();
        for (var s = WG / 2u; s > 0u; s = s >> 1u) {
            if (lid < s) {
                let x = red_f[lid];
                let y = red_f[lid + s];
                let cx = red_u[lid];
                let cy = red_u[lid + s];
                let nt = cx.x + cy.x;
                var r = vec4<f32>(x.x + y.x, x.y + y.y, min(x.z, y.z), max(x.w, y.w));
                if (mode == 0u && cx.x > 0u && cy.x > 0u) {
                    let fx = f32(cx.x);
                    let fy = f32(cy.x);
                    let d = y.x - x.x;
                    r.x = x.x + d * (fy / f32(nt));
                    r.y = x.y + y.y + d * d * (fx * (fy / f32(nt)));
                } else if (mode == 0u && cx.x == 0u) {
                    r.x = y.x;
                    r.y = y.y;
                } else if (mode == 0u) {
                    r.x = x.x;
                    r.y = x.y;
                }
                red_f[lid] = r;
                red_u[lid] = vec2<u32>(nt, cx.y + cy.y);
            }
            workgroupBarrier();
        }
        if (lid == 0u) {
            let r = red_f[0];
            let c = red_u[0];
            var rec: Partial;
            rec.n = c.x;
            rec.hits = c.y;
            rec.v[0] = r.x;
            rec.v[1] = r.y;
            rec.v[2] = r.z;
            rec.v[3] = r.w;
            partials[wid] = rec;
        }
        if (mode == 0u) {
            for (var k = lid; k < COARSE_BINS; k = k + WG) {
                let c = atomicLoad(&wg_hist[k]);
                if (c > 0u) {
                    atomicAdd(&coarse[k], c);
                }
            }
        }
    }
}

// ---- Weighted moments (evidence): entry point `main_w` ----
//
// A record of samples with usable log-weights, relative to its largest log-weight m: with
// w_i = exp(lw_i - m), w = sum w_i, q = sum w_i^2, mu = sum w_i y_i / w, s = sum w_i (y_i - mu)^2,
// t = sum w_i^2 (y_i - mu)^2, r = sum w_i^2 (y_i - mu), h = sum of w_i over y_i > threshold,
// hq = sum of w_i^2 over them; n counts finite outcomes (usable weight or not) and hits those above
// the threshold, as isl-mc's weighted statistics do. Records combine exactly (up to rounding):
// rescale both to the larger m, then shift the centred sums to the combined mean.
struct WRec {
    m: f32,
    w: f32,
    q: f32,
    mu: f32,
    s: f32,
    t: f32,
    r: f32,
    h: f32,
    hq: f32,
    n: u32,
    hits: u32,
}

var<workgroup> wred: array<WRec, 256>;

// exp(m_from - m_to) for m_to >= m_from, exactly 1 when they are equal (both -inf included).
fn rescale(m_from: f32, m_to: f32) -> f32 {
    if (m_from == m_to) {
        return 1.0;
    }
    return exp(m_from - m_to);
}

fn wrec_combine(x: WRec, y: WRec) -> WRec {
    let m = max(x.m, y.m);
    let a = rescale(x.m, m);
    let b = rescale(y.m, m);
    let wa = x.w * a;
    let wb = y.w * b;
    let qa = x.q * a * a;
    let qb = y.q * b * b;
    let ra = x.r * a * a;
    let rb = y.r * b * b;
    var o: WRec;
    o.m = m;
    o.n = x.n + y.n;
    o.hits = x.hits + y.hits;
    o.w = wa + wb;
    o.q = qa + qb;
    o.h = x.h * a + y.h * b;
    o.hq = x.hq * a * a + y.hq * b * b;
    // A side without weight (empty, or rescaled to zero) leaves the other as it is.
    if (!(wa > 0.0)) {
        o.mu = y.mu;
        o.s = y.s * b;
        o.t = y.t * b * b;
        o.r = rb;
        return o;
    }
    if (!(wb > 0.0)) {
        o.mu = x.mu;
        o.s = x.s * a;
        o.t = x.t * a * a;
        o.r = ra;
        return o;
    }
    let delta = y.mu - x.mu;
    let fb = wb / o.w;
    o.mu = x.mu + delta * fb;
    let da = x.mu - o.mu;
    let db = y.mu - o.mu;
    o.s = x.s * a + y.s * b + delta * delta * (wa * fb);
    o.t = (x.t * a * a + (2.0 * da) * ra + (da * da) * qa) + (y.t * b * b + (2.0 * db) * rb + (db * db) * qb);
    o.r = (ra + da * qa) + (rb + db * qb);
    return o;
}

@compute @workgroup_size(256)
fn main_w(@builtin(local_invocation_id) lid3: vec3<u32>, @builtin(workgroup_id) wid3: vec3<u32>) {
    let lid = lid3.x;
    let wid = wid3.x;
    var acc = WRec(-P.inf, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0u, 0u);
    for (var j = 0u; j < SPT; j = j + 1u) {
        let off = wid * (WG * SPT) + j * WG + lid;
        if (off >= P.count) {
            break;
        }
        let ilo = P.base.x + off;
        let ihi = P.base.y + select(0u, 1u, ilo < off);
        let s = sample(ilo, ihi);
        let y = s.x;
        let lw = s.y;
        if (!is_finite(y)) {
            continue;
        }
        acc.n = acc.n + 1u;
        let hit = y > P.threshold;
        if (hit) {
            acc.hits = acc.hits + 1u;
        }
        // NaN: no usable weight; -inf: weight zero. Neither adds to the weighted sums.
        if (is_nan(lw) || lw == -P.inf) {
            continue;
        }
        let hv = select(0.0, 1.0, hit);
        acc = wrec_combine(acc, WRec(lw, 1.0, 1.0, y, 0.0, 0.0, 0.0, hv, hv, 0u, 0u));
    }
    wred[lid] = acc;
    workgroupBarrier();
    for (var k = WG / 2u; k > 0u; k = k >> 1u) {
        if (lid < k) {
            wred[lid] = wrec_combine(wred[lid], wred[lid + k]);
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        let r = wred[0];
        var rec: Partial;
        rec.n = r.n;
        rec.hits = r.hits;
        rec.v[0] = r.m;
        rec.v[1] = r.w;
        rec.v[2] = r.q;
        rec.v[3] = r.mu;
        rec.v[4] = r.s;
        rec.v[5] = r.t;
        rec.v[6] = r.r;
        rec.v[7] = r.h;
        rec.v[8] = r.hq;
        partials[wid] = rec;
    }
}

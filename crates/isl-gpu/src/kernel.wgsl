// The kernel: SPT samples per invocation (indices strided by WG inside a workgroup's block of
// WG * SPT), then per-workgroup reductions. Modes (P.mode, uniform across the dispatch):
//   0: count, mean and M2 (Welford per invocation, Chan's combination across the workgroup),
//      min, max, hits above the threshold, and the level-A histogram of order keys;
//   1: the refined histogram of the samples whose key prefix is a target;
//   2: tail sums of an importance run: weights exp(lw - wref) of samples above the threshold;
//   3: per-sample values (debug and parity tests only): values[2i] = y, values[2i+1] = lw.
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
        }
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
            partials[wid] = Partial(c.x, c.y, r.x, r.y, r.z, r.w, 0u, 0u);
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

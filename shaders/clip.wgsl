// Gradient preparation and global-norm clipping, in two deterministic passes (no float
// atomics):
//   g := clamp(dJ/dw + a·w + b·sign(w), min, max)       (norm penalty, value clipping)
//   penalty = Σ (a/2)·w² + b·|w|
//   ||g|| = sqrt(Σ_i g_i²) over all parameters' gradients (one flat buffer),
//   s = min(1, max_norm / (||g|| + 1e-6)),  g := s · g  (direction preserved).
// The scale is applied inside the optimizer kernel; the pre-clip norm and the penalty are
// kept for metrics.

// Mixed precision (G.flags bit 1, MIXED): the gradients arrive multiplied by the loss
// scale S; pass 1 first unscales them, g := dJ/dw · (1/S) with 1/S = amp[1] (S is kept a
// power of two, so this is exact), and pass 2 then updates S from whether the gradient
// was finite (dynamic loss scaling, PyTorch's GradScaler):
//   non-finite: skip the update (clipinfo[3] = 1), S := max(S · backoff, 1), good := 0;
//               counted as an overflow (amp[3]) only when S was above 1
//   finite:     good := good + 1; when good reaches the growth interval, S := S · growth,
//               good := 0.
// amp = (S, 1/S, good steps in a row, skipped steps in total).

// Pass 1: invocation t handles the elements i ≡ t (mod P), in increasing i: adds the
// penalty gradient, clips by value, and sums g² and the penalty. Without a penalty
// (G.flags bit 0 clear) w, a and b are not read, and without value clipping g is only
// read: the common case costs one load per element instead of five memory operations.
// in0 = w, in1 = a (L2 coefficients), in2 = b (L1 coefficients), in3 = amp; out0 = g (in
// place), out1 = partials [2P] = (Σ g², Σ penalty).
// p0 = n, p1 = P, p2 = min, p3 = max, p4 = clip by value (0/1)
@compute @workgroup_size(64)
fn grad_prep(@builtin(global_invocation_id) gid: vec3<u32>) {
    let t = gid.x;
    let n = pu(0u);
    let P = pu(1u);
    if (t >= P) { return; }
    let lo = pf(2u);
    let hi = pf(3u);
    let clip = pu(4u) == 1u;
    let mixed = (G.flags & 2u) != 0u;
    let inv = select(1.0, in3[1], mixed);
    var s = 0.0;
    var pen = 0.0;
    if ((G.flags & 1u) != 0u) {
        for (var i0 = t; i0 < n; i0 += UNROLL * P) {
            for (var u = 0u; u < UNROLL; u++) {
                let i = i0 + u * P;
                if (i < n) {
                    let w = in0[i];
                    let a = in1[i];
                    let b = in2[i];
                    var g = out0[i] * inv + a * w + b * sign(w);
                    if (clip) { g = clamp(g, lo, hi); }
                    out0[i] = g;
                    s += g * g;
                    pen += 0.5 * a * w * w + b * abs(w);
                }
            }
        }
    } else if (clip) {
        for (var i0 = t; i0 < n; i0 += UNROLL * P) {
            for (var u = 0u; u < UNROLL; u++) {
                let i = i0 + u * P;
                if (i < n) {
                    let g = clamp(out0[i] * inv, lo, hi);
                    out0[i] = g;
                    s += g * g;
                }
            }
        }
    } else {
        for (var i0 = t; i0 < n; i0 += UNROLL * P) {
            for (var u = 0u; u < UNROLL; u++) {
                let i = i0 + u * P;
                if (i < n) {
                    let g = out0[i] * inv;
                    if (mixed) { out0[i] = g; }
                    s += g * g;
                }
            }
        }
    }
    out1[t] = s;
    out1[P + t] = pen;
}

// Pass 2: the P partials summed in index order, then the clip scale, and what the update
// of this step needs. A step whose gradient is not finite (a NaN or infinity anywhere:
// Σ g² is then not finite) is skipped in both precisions: clipinfo[3] = 1 makes the
// optimizer leave the weights and moments as they are, and on a training step the count
// of skipped steps grows. Updates applied so far: t0 = G.step - skipped (G.step counts
// every training step of the session), so a skipped step advances neither Adam's t nor a
// per-step learning-rate schedule (PyTorch: GradScaler skips optimizer.step()).
//   lr    = schedule(G.lr, t0)      sched_kind 1: lr·gamma^floor(t0/n), 2: lr·gamma^t0,
//                                   3: eta_min + (lr - eta_min)(1 + cos(pi·min(t0,n)/n))/2
//           · warm-up factor          warmup_steps W > 0: s + (1 - s)·min(t0, W)/W, s = warmup_start
//   bc_k  = 1 - beta_k^(t0 + 1)     (Adam's bias corrections)
// Powers are taken by binary exponentiation in f32 multiplies, exactly as the CPU twin.
// With MIXED, the loss scale update above (a skipped step keeps the norm and penalty of the
// last finite one). Without MIXED, a skipped step records its non-finite norm.
// in0 = partials [2P]; out0 = clipinfo (norm, scale, penalty, skip, lr, bc1, bc2, skipped
// steps in total) at 0, and with MIXED amp [4] at p7 (one binding: the two live in the
// same buffer).
// p0 = P, p1 = max_norm (<= 0: off), p2 = growth interval, p3 = growth, p4 = 1/growth,
// p5 = backoff, p6 = 1/backoff, p7 = offset of amp in out0, p8 = training step (1: counts
// and updates the loss scale; a gradient computed for inspection leaves both alone),
// p9 = beta1, p10 = beta2
fn powi(x: f32, n: u32) -> f32 {
    var r = 1.0;
    var b = x;
    var e = n;
    for (var k = 0u; k < 32u; k++) {
        if ((e & 1u) != 0u) { r = r * b; }
        e = e >> 1u;
        if (e == 0u) { break; }
        b = b * b;
    }
    return r;
}

@compute @workgroup_size(1)
fn clip_finalize() {
    let P = pu(0u);
    let max_norm = pf(1u);
    let update = pu(8u) == 1u;
    var s = 0.0;
    var pen = 0.0;
    for (var i = 0u; i < P; i++) { s += in0[i]; pen += in0[P + i]; }
    // A bit test: WGSL lets compilers assume floats are finite, so no comparison is used.
    let finite = (bitcast<u32>(s) & 0x7F800000u) != 0x7F800000u;
    let mixed = (G.flags & 2u) != 0u;
    let a = pu(7u);
    if (!finite) {
        if (!mixed) { out0[0] = sqrt(s); out0[2] = pen; }
        out0[1] = 0.0;
        out0[3] = 1.0;
        if (!update) { return; }
        out0[7] = out0[7] + 1.0;
        if (mixed) {
            out0[a + 2u] = 0.0;
            // The scale never backs off below 1: a gradient that is not finite even
            // unscaled is no f16 overflow the scale can absorb (a NaN, or values past
            // f16's range), and is counted as the f32 skips are (out0[7] only).
            if (out0[a] > 1.0) {
                out0[a] = max(out0[a] * pf(5u), 1.0);
                out0[a + 1u] = min(out0[a + 1u] * pf(6u), 1.0);
                out0[a + 3u] = out0[a + 3u] + 1.0;
            }
        }
        return;
    }
    if (mixed && update) {
        out0[a + 2u] = out0[a + 2u] + 1.0;
        if (out0[a + 2u] >= f32(pu(2u))) {
            out0[a + 2u] = 0.0;
            // Capped where growing would pass 1e30 (S · growth <= 1e30, tested as
            // S <= 1e30 · (1/growth), a product by a power of two, so that no
            // intermediate can overflow whatever growth is).
            if (out0[a] <= 1e30 * pf(4u)) {
                out0[a] = out0[a] * pf(3u);
                out0[a + 1u] = out0[a + 1u] * pf(4u);
            }
        }
    }
    let norm = sqrt(s);
    out0[0] = norm;
    if (max_norm > 0.0) { out0[1] = min(1.0, max_norm / (norm + 1e-6)); } else { out0[1] = 1.0; }
    out0[2] = pen;
    out0[3] = 0.0;
    let skipped = u32(out0[7]);
    let t0 = select(0u, G.step - skipped, G.step > skipped);
    var lr = G.lr;
    if (G.sched_kind == 1u) {
        lr = G.lr * powi(G.sched_x, t0 / max(G.sched_n, 1u));
    } else if (G.sched_kind == 2u) {
        lr = G.lr * powi(G.sched_x, t0);
    } else if (G.sched_kind == 3u) {
        let n = max(G.sched_n, 1u);
        let x = f32(min(t0, n)) / f32(n);
        lr = G.sched_x + (G.lr - G.sched_x) * (1.0 + cos(3.14159265358979 * x)) * 0.5;
    }
    if (G.warmup_steps > 0u) {
        let w = G.warmup_start;
        lr = lr * (w + (1.0 - w) * (f32(min(t0, G.warmup_steps)) / f32(G.warmup_steps)));
    }
    out0[4] = lr;
    out0[5] = 1.0 - powi(pf(9u), t0 + 1u);
    out0[6] = 1.0 - powi(pf(10u), t0 + 1u);
}

// Per-tensor clipping (an option instead of the global norm): for one parameter's
// gradient, g := min(1, max_norm / (||g|| + 1e-6)) · g with ||g||² = stats[1] from
// tensor_stats.   in0 = stats [4]; out0 = g.   p0 = n, p1 = max_norm
@compute @workgroup_size(256)
fn clip_tensor(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= pu(0u)) { return; }
    let s = min(1.0, pf(1u) / (sqrt(in0[1]) + 1e-6));
    out0[i] = s * out0[i];
}

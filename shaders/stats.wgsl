// Statistics of one tensor, for diagnostics (vanishing / exploding activations and
// gradients): out = (Σ x, Σ x², count of exact zeros, n). One workgroup of 256
// invocations: strided partial sums, then a fixed-order tree in workgroup memory, so the
// result is deterministic.
// in0 = x; out0 = stats [4].   p0 = n

var<workgroup> s1: array<f32, 256>;
var<workgroup> s2: array<f32, 256>;
var<workgroup> s0: array<f32, 256>;

@compute @workgroup_size(256)
fn tensor_stats(@builtin(local_invocation_index) t: u32) {
    let n = pu(0u);
    var a = 0.0;
    var b = 0.0;
    var z = 0.0;
    for (var i0 = t; i0 < n; i0 += UNROLL * 256u) {
        for (var u = 0u; u < UNROLL; u++) {
            let i = i0 + u * 256u;
            if (i < n) {
                let x = in0[i];
                a += x;
                b += x * x;
                z += select(0.0, 1.0, x == 0.0);
            }
        }
    }
    s1[t] = a;
    s2[t] = b;
    s0[t] = z;
    workgroupBarrier();
    for (var w = 128u; w > 0u; w = w / 2u) {
        if (t < w) {
            s1[t] += s1[t + w];
            s2[t] += s2[t + w];
            s0[t] += s0[t + w];
        }
        workgroupBarrier();
    }
    if (t == 0u) {
        out0[0] = s1[0];
        out0[1] = s2[0];
        out0[2] = s0[0];
        out0[3] = f32(n);
    }
}

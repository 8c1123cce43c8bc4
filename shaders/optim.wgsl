// SGD with momentum (PyTorch semantics) and coupled L2 weight decay, over the flat
// parameter buffer in one dispatch.
//   g = s · dJ/dw + wd_i · w          (s: clip scale; wd_i = lambda/m for weights, 0 for
//                                      biases and batch-norm parameters unless opted in)
//   v = mu · v + g
//   w := w - lr · v                   (Nesterov: w := w - lr · (g + mu · v))
// With mu = 0 this is exactly  w := (1 - lr·lambda/m) · w - lr · dJ/dw.
// in0 = grad, in1 = wd (per element), in2 = clipinfo (norm, s, penalty, skip, lr, bc1, bc2,
// skipped; shaders/clip.wgsl); out0 = w, out1 = v. skip = 1 (a non-finite gradient) leaves
// w and v unchanged. lr is this update's rate (the schedule at the count of applied
// updates).   p0 = n, p1 = mu, p2 = nesterov (0/1)
@compute @workgroup_size(256)
fn sgd_update(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= pu(0u) || in2[3] != 0.0) { return; }
    let mu = pf(1u);
    let w = out0[i];
    let g = in2[1] * in0[i] + in1[i] * w;
    let v = mu * out1[i] + g;
    out1[i] = v;
    var step = v;
    if (pu(2u) == 1u) { step = g + mu * v; }
    out0[i] = w - in2[4] * step;
}

// Adam (coupled L2) and AdamW (decoupled weight decay), PyTorch semantics:
//   g = s · dJ/dw (+ wd_i · w for Adam)
//   m1 = b1 · m1 + (1 - b1) · g,   m2 = b2 · m2 + (1 - b2) · g²
//   w := w - lr · (m1 / bc1) / (sqrt(m2 / bc2) + eps)   (AdamW also: - lr · wd_i · w)
// with bc_k = 1 - b_k^t, t the count of applied updates including this one (clipinfo[5],
// clipinfo[6]), and lr = clipinfo[4].
// in0 = grad, in1 = wd, in2 = clipinfo (skip as for SGD); out0 = w, out1 = m1, out2 = m2.
// p0 = n, p1 = b1, p2 = b2, p3 = eps, p4 = decoupled (0/1)
@compute @workgroup_size(256)
fn adam_update(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= pu(0u) || in2[3] != 0.0) { return; }
    let b1 = pf(1u);
    let b2 = pf(2u);
    let eps = pf(3u);
    let decoupled = pu(4u) == 1u;
    let w = out0[i];
    var g = in2[1] * in0[i];
    if (!decoupled) { g = g + in1[i] * w; }
    let m1 = b1 * out1[i] + (1.0 - b1) * g;
    let m2 = b2 * out2[i] + (1.0 - b2) * g * g;
    out1[i] = m1;
    out2[i] = m2;
    var step = (m1 / in2[5]) / (sqrt(m2 / in2[6]) + eps);
    if (decoupled) { step = step + in1[i] * w; }
    out0[i] = w - in2[4] * step;
}

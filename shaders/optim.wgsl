// SGD with momentum (PyTorch semantics) and coupled L2 weight decay, over the flat
// parameter buffer in one dispatch.
//   g = s · dJ/dw + wd_i · w          (s: clip scale; wd_i = lambda/m for weights, 0 for
//                                      biases and batch-norm parameters unless opted in)
//   v = mu · v + g
//   w := w - lr · v                   (Nesterov: w := w - lr · (g + mu · v))
// With mu = 0 this is exactly  w := (1 - lr·lambda/m) · w - lr · dJ/dw.
// in0 = grad, in1 = wd (per element), in2 = clipinfo; out0 = w, out1 = v.
// p0 = n, p1 = mu, p2 = nesterov (0/1); lr comes from the per-step globals.
@compute @workgroup_size(256)
fn sgd_update(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= pu(0u)) { return; }
    let mu = pf(1u);
    let w = out0[i];
    let g = in2[1] * in0[i] + in1[i] * w;
    let v = mu * out1[i] + g;
    out1[i] = v;
    var step = v;
    if (pu(2u) == 1u) { step = g + mu * v; }
    out0[i] = w - G.lr * step;
}

//! Softmax cross-entropy (plain, label smoothing, class weights, sample weights) and the
//! metrics accumulation (shaders/softmax_xent.wgsl), in f32 and with the mixed-precision
//! loss scale.

use super::*;
use shadeprop::kernels::elementwise::Len;
use shadeprop::kernels::softmax_xent::SoftmaxXentParams;
use shadeprop::rng::Rng;

/// Label rows `[m, t + 2]`: the targets, a sample weight and the gradient factor s/Σs.
pub fn label_rows(y: &[f32], t: usize, w: Option<&[f32]>) -> Vec<f32> {
    let m = y.len() / t;
    let s = |i: usize| w.map_or(1.0, |w| w[i]);
    let total: f32 = (0..m).map(s).sum();
    let mut v = vec![];
    for i in 0..m {
        v.extend_from_slice(&y[i * t..(i + 1) * t]);
        v.push(s(i));
        v.push(s(i) / total);
    }
    v
}

#[test]
fn softmax_xent_and_metrics() {
    let mut gs = gpus();
    for (m, c) in [(1usize, 2usize), (128, 10), (33, 17)] {
        let z: Vec<f32> = rand_vec(21, m * c).iter().map(|v| v * 5.0).collect();
        let y: Vec<f32> = (0..m)
            .map(|i| (Rng::new(3).below(9, 0, i as u32, c as u32)) as f32)
            .collect();
        let sw: Vec<f32> = rand_vec(23, m).iter().map(|v| v.abs() * 2.0).collect();
        let cw: Vec<f32> = rand_vec(24, c).iter().map(|v| v.abs() + 0.1).collect();
        // (smoothing, class weights, sample weights): plain, each alone, all together.
        let variants = [
            (0.0, false, false),
            (0.1, false, false),
            (0.0, true, false),
            (0.0, false, true),
            (0.2, true, true),
        ];
        for (eps, weighted, sampled) in variants {
            let p = SoftmaxXentParams {
                rows: m,
                classes: c,
                width: 3,
                smoothing: eps,
                weighted,
            };
            let labels = label_rows(&y, 1, sampled.then_some(&sw[..]));
            // f32, then mixed precision (the gradient times the loss scale amp[0]).
            let amp = vec![1024.0, 1.0 / 1024.0, 0.0, 0.0];
            for flags in [0, Globals::MIXED] {
                let gl = Globals { flags, ..g0() };
                let w = if weighted { cw.clone() } else { vec![0.0; 4] };
                let case = Case::new(Kernel::SoftmaxXent, p)
                    .ins([z.clone(), labels.clone(), amp.clone(), w])
                    .outs([zeros(m * c), zeros(3 * m)])
                    .globals(gl)
                    .tol(1e-6, 1e-5);
                let scaled = case.check(&mut gs);
                if flags != 0 {
                    let plain = case.globals(g0()).reference();
                    let times: Vec<f32> = plain[0].iter().map(|v| v * 1024.0).collect();
                    assert_close("scaled loss gradient", &scaled[0], &times, 1e-6, 1e-6);
                    assert_eq!(plain[1], scaled[1], "the loss itself is not scaled");
                }
            }
        }
        Case::new(Kernel::MetricsAccum, Len { n: m })
            .ins([rand_vec(22, 3 * m)])
            .outs([vec![1.0, 2.0, 3.0, 4.0, 5.0]])
            .tol(1e-5, 1e-5)
            .check(&mut gs);
    }
}

//! Softmax cross-entropy and the metrics accumulation (shaders/softmax_xent.wgsl), in f32
//! and with the mixed-precision loss scale.

use super::*;
use shadeprop::kernels::elementwise::Len;
use shadeprop::kernels::softmax_xent::SoftmaxXentParams;
use shadeprop::rng::Rng;

#[test]
fn softmax_xent_and_metrics() {
    let mut gs = gpus();
    for (m, c) in [(1usize, 2usize), (128, 10), (33, 17)] {
        let z: Vec<f32> = rand_vec(21, m * c).iter().map(|v| v * 5.0).collect();
        let y: Vec<f32> = (0..m)
            .map(|i| (Rng::new(3).below(9, 0, i as u32, c as u32)) as f32)
            .collect();
        let p = SoftmaxXentParams {
            rows: m,
            classes: c,
            scale: 1.0 / m as f32,
        };
        // f32, then mixed precision (the gradient times the loss scale amp[0]).
        let amp = vec![1024.0, 1.0 / 1024.0, 0.0, 0.0];
        for flags in [0, Globals::MIXED] {
            let gl = Globals { flags, ..g0() };
            let case = Case::new(Kernel::SoftmaxXent, p)
                .ins([z.clone(), y.clone(), amp.clone()])
                .outs([zeros(m * c), zeros(2 * m)])
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
        Case::new(Kernel::MetricsAccum, Len { n: m })
            .ins([rand_vec(22, 2 * m)])
            .outs([vec![1.0, 2.0, 3.0, 4.0]])
            .tol(1e-5, 1e-5)
            .check(&mut gs);
    }
}

//! The optimizer updates (shaders/optim.wgsl): SGD with and without Nesterov momentum,
//! Adam and AdamW, and a skipped step that changes nothing.

use super::*;
use shadeprop::kernels::optim::{AdamParams, SgdParams};

#[test]
fn sgd_and_adam_updates() {
    let mut gs = gpus();
    for n in [1usize, 1000, 669_706] {
        let g = rand_vec(31, n);
        let wd: Vec<f32> = (0..n)
            .map(|i| if i % 3 == 0 { 0.0 } else { 5e-4 })
            .collect();
        for nesterov in [false, true] {
            let p = SgdParams {
                n,
                momentum: 0.9,
                nesterov,
            };
            Case::new(Kernel::SgdUpdate, p)
                .ins([
                    g.clone(),
                    wd.clone(),
                    vec![2.5, 0.4, 0.0, 0.0, 0.1, 1.0, 1.0, 0.0],
                ])
                .outs([rand_vec(32, n), rand_vec(33, n)])
                .tol(1e-6, 1e-5)
                .check(&mut gs);
        }
        for decoupled in [false, true] {
            let p = AdamParams {
                n,
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
                decoupled,
            };
            let (bc1, bc2) = (1.0 - 0.9f32.powi(3), 1.0 - 0.999f32.powi(3));
            let m2: Vec<f32> = rand_vec(36, n).iter().map(|v| v * v).collect();
            Case::new(Kernel::AdamUpdate, p)
                .ins([
                    g.clone(),
                    wd.clone(),
                    vec![2.5, 0.4, 0.0, 0.0, 0.1, bc1, bc2, 0.0],
                ])
                .outs([rand_vec(32, n), rand_vec(35, n), m2])
                .tol(1e-5, 1e-4)
                .check(&mut gs);
        }
    }
}

// A skipped step (the clip info's skip flag set, as ClipFinalize sets it for a
// non-finite gradient) changes neither the weights nor the optimizer's moments.
backend_test!(a_skipped_step_changes_no_weights_or_moments, |b| {
    let n = 1000;
    let grad: Vec<f32> = (0..n)
        .map(|i| if i == 7 { f32::NAN } else { 0.1 })
        .collect();
    let skip = vec![f32::NAN, 0.0, 0.0, 1.0, 0.1, 0.1, 0.001, 1.0];
    let init = [
        rand_vec(40, n),
        rand_vec(41, n),
        rand_vec(42, n).iter().map(|v| v * v).collect(),
    ];
    let ins = [grad, vec![5e-4; n], skip];
    let sgd = SgdParams {
        n,
        momentum: 0.9,
        nesterov: false,
    };
    let got = Case::new(Kernel::SgdUpdate, sgd)
        .ins(ins.clone())
        .outs(&init[..2])
        .run(b.as_mut());
    assert_eq!(
        got,
        init[..2].to_vec(),
        "SGD on a skipped step ({})",
        b.describe()
    );
    let adam = AdamParams {
        n,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        decoupled: false,
    };
    let got = Case::new(Kernel::AdamUpdate, adam)
        .ins(ins)
        .outs(init.clone())
        .run(b.as_mut());
    assert_eq!(
        got,
        init.to_vec(),
        "Adam on a skipped step ({})",
        b.describe()
    );
});

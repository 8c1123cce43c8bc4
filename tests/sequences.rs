//! Recurrent layers through the whole graph: gradients against finite differences, training
//! steps of every backend against the CPU reference, padded sequences against the same
//! sequences unpadded, dropout in training and evaluation, and the errors.

mod common;
use common::*;
use shadeprop::backend::Backend;
use shadeprop::backend::cpu::Cpu;
use shadeprop::graph::{RnnCell, RnnOpts};
use shadeprop::nn::Sequential;
use shadeprop::optim::Sgd;
use shadeprop::session::Session;

const CELLS: [RnnCell; 2] = [RnnCell::Lstm, RnnCell::Gru];

fn session(b: Box<dyn Backend>, m: &Sequential, seed: u64, max_batch: usize) -> Session {
    Session::new(b, m.build().unwrap(), Sgd::w_mlp(), seed, max_batch).unwrap()
}

/// A sequence classifier: `steps` × `features` → recurrent layer(s) → last step → 3 logits.
fn classifier(steps: usize, features: usize, o: RnnOpts) -> Sequential {
    Sequential::sequence(steps, features)
        .rnn(o)
        .last_step()
        .linear(3)
}

#[test]
fn recurrent_gradients_match_finite_differences() {
    for cell in CELLS {
        finite_difference_check(
            None,
            classifier(5, 3, RnnOpts::new(cell, 4)).build().unwrap(),
            4,
            1,
        );
        // Two stacked layers with all three dropouts (the masks repeat: a gradient pass does
        // not advance the step) and every step's output feeding the classifier.
        let o = RnnOpts {
            layers: 2,
            input_dropout: 0.2,
            recurrent_dropout: 0.3,
            dropout: 0.25,
            ..RnnOpts::new(cell, 4)
        };
        let all_steps = Sequential::sequence(4, 3).rnn(o).linear(3).build();
        // A linear layer straight after a sequence is refused (see below); the stacked
        // check goes through the last step.
        assert!(all_steps.is_err());
        finite_difference_check(None, classifier(4, 3, o).build().unwrap(), 5, 2);
    }
}

/// A batch of `n` sequences of `t` steps × `f` features where row r keeps `lens[r]` steps
/// (at the start, or at the end where `pre[r]`) and the rest are zero (padding).
fn padded(x: &[f32], t: usize, f: usize, lens: &[usize], pre: &[bool]) -> Vec<f32> {
    let mut out = vec![0.0; x.len()];
    for (r, (&len, &pre)) in lens.iter().zip(pre).enumerate() {
        let row = &x[r * t * f..(r + 1) * t * f];
        let at = if pre { t - len } else { 0 };
        out[r * t * f + at * f..r * t * f + (at + len) * f].copy_from_slice(&row[..len * f]);
    }
    out
}

#[test]
fn recurrent_training_steps_match_on_every_backend() {
    let (t, f) = (7, 5);
    for cell in CELLS {
        let o = RnnOpts {
            layers: 2,
            input_dropout: 0.1,
            recurrent_dropout: 0.25,
            dropout: 0.2,
            mask_value: Some(0.0),
            ..RnnOpts::new(cell, 12)
        };
        let m = classifier(t, f, o);
        let mut reference = session(Box::new(Cpu::new()), &m, 9, 8);
        let mut others: Vec<Session> = backends()
            .into_iter()
            .skip(1)
            .map(|b| session(b, &m, 9, 8))
            .collect();
        assert!(!others.is_empty());
        for step in 0..3 {
            let (x, y) = batch(300 + step, 8, t * f, 3);
            let x = padded(
                &x,
                t,
                f,
                &[7, 3, 5, 1, 7, 2, 6, 4],
                &[false, true, false, true, false, false, true, false],
            );
            reference.train_batch(&x, &y).unwrap();
            for s in &mut others {
                s.train_batch(&x, &y).unwrap();
            }
        }
        let want = reference.params().unwrap();
        let vel = reference.velocity().unwrap();
        for s in &mut others {
            let what = format!("{cell:?} on {}", s.backend().describe());
            for ((name, a), (_, b)) in want.iter().zip(&s.params().unwrap()) {
                assert_close(&format!("{what}: {name} after 3 steps"), b, a, 2e-5, 2e-3);
            }
            for ((name, a), (_, b)) in vel.iter().zip(&s.velocity().unwrap()) {
                assert_close(&format!("{what}: velocity {name}"), b, a, 2e-5, 2e-3);
            }
            let x = rand_vec(77, 8 * t * f);
            let (pr, ps) = (reference.predict(&x).unwrap(), s.predict(&x).unwrap());
            assert_close(&format!("{what}: evaluation logits"), &ps, &pr, 2e-5, 2e-3);
        }
    }
}

/// Padded steps (all features equal to the mask value, before or after the real steps)
/// leave the output and the gradients as if the sequence were the shorter one alone: each
/// row of a padded batch against a model of its own length (same weights) on that row.
#[test]
fn padded_sequences_match_the_unpadded_ones() {
    let (t, f, n) = (6, 3, 4);
    let lens = [6, 3, 1, 4];
    let pre = [false, false, true, true];
    for cell in CELLS {
        let o = RnnOpts {
            mask_value: Some(0.0),
            ..RnnOpts::new(cell, 5)
        };
        let mut full = session(Box::new(Cpu::new()), &classifier(t, f, o), 4, n);
        let params = full.params().unwrap();
        let (x0, y) = batch(5, n, t * f, 3);
        let x = padded(&x0, t, f, &lens, &pre);
        let logits = full.predict(&x).unwrap();
        let (_, grads) = full.gradients(&x, &y).unwrap();
        let mut want: Vec<Vec<f32>> = grads.iter().map(|(_, g)| vec![0.0; g.len()]).collect();
        for r in 0..n {
            let short_model = classifier(lens[r], f, RnnOpts::new(cell, 5));
            let mut short = session(Box::new(Cpu::new()), &short_model, 4, 1);
            for (name, w) in &params {
                short.set_param(name, w).unwrap();
            }
            let xr = &x0[r * t * f..r * t * f + lens[r] * f];
            let got = &logits[r * 3..r * 3 + 3];
            let what = format!("{cell:?} row {r} ({} of {t} steps)", lens[r]);
            assert_close(
                &format!("{what}: logits"),
                got,
                &short.predict(xr).unwrap(),
                1e-6,
                1e-5,
            );
            let (_, g) = short.gradients(xr, &y[r..r + 1]).unwrap();
            for (acc, (_, g)) in want.iter_mut().zip(&g) {
                for (a, v) in acc.iter_mut().zip(g) {
                    *a += v / n as f32;
                }
            }
        }
        for ((name, g), w) in grads.iter().zip(&want) {
            assert_close(&format!("{cell:?}: gradient of {name}"), g, w, 1e-6, 1e-4);
        }
    }
}

/// Dropout of every kind is training only: evaluation gives the outputs of the same weights
/// without dropout, while the training gradients differ.
#[test]
fn recurrent_dropout_is_off_in_evaluation() {
    let (t, f) = (5, 4);
    for cell in CELLS {
        let plain = RnnOpts {
            layers: 2,
            ..RnnOpts::new(cell, 6)
        };
        let dropped = RnnOpts {
            input_dropout: 0.3,
            recurrent_dropout: 0.4,
            dropout: 0.5,
            ..plain
        };
        let mut a = session(Box::new(Cpu::new()), &classifier(t, f, dropped), 2, 6);
        let mut b = session(Box::new(Cpu::new()), &classifier(t, f, plain), 2, 6);
        for (name, w) in a.params().unwrap() {
            b.set_param(&name, &w).unwrap();
        }
        let (x, y) = batch(8, 6, t * f, 3);
        let what = format!("{cell:?} evaluation");
        assert_close(
            &what,
            &a.predict(&x).unwrap(),
            &b.predict(&x).unwrap(),
            0.0,
            0.0,
        );
        let (ga, gb) = (
            a.gradients(&x, &y).unwrap().1,
            b.gradients(&x, &y).unwrap().1,
        );
        assert!(
            ga.iter().zip(&gb).any(|((_, p), (_, q))| p != q),
            "{cell:?}: dropout changed no training gradient"
        );
    }
}

/// The recurrent-dropout mask of a training step is one per sequence, reused at every
/// step: with only the recurrent dropout on and every input step equal, the masked state
/// of a unit dropped at one step stays dropped at all of them. Checked from the outside:
/// two training passes at the same step give the same loss (the mask repeats), passes at
/// different steps differ.
#[test]
fn recurrent_masks_repeat_within_a_step_and_change_between_steps() {
    let (t, f) = (6, 2);
    for cell in CELLS {
        let o = RnnOpts {
            recurrent_dropout: 0.5,
            ..RnnOpts::new(cell, 8)
        };
        let m = classifier(t, f, o);
        let (x, y) = batch(11, 4, t * f, 3);
        let mut s = session(Box::new(Cpu::new()), &m, 3, 4);
        let l0 = s.gradients(&x, &y).unwrap().0.loss;
        assert_eq!(
            l0,
            s.gradients(&x, &y).unwrap().0.loss,
            "{cell:?}: same step, same mask"
        );
        // A step at learning rate 1e-30 moves nothing but the step counter (the weights by
        // less than 1e-20, which the loss cannot see in f32).
        let mut s0 = Session::new(
            Box::new(Cpu::new()),
            m.build().unwrap(),
            Sgd {
                lr: 1e-30,
                ..Sgd::default()
            },
            3,
            4,
        )
        .unwrap();
        let before = s0.gradients(&x, &y).unwrap().0.loss;
        assert_eq!(before, l0, "{cell:?}: the seed decides the masks");
        let w0 = s0.params().unwrap();
        s0.train_batch(&x, &y).unwrap();
        for ((name, a), (_, b)) in w0.iter().zip(&s0.params().unwrap()) {
            assert_close(&format!("{cell:?}: {name} did not move"), b, a, 1e-20, 0.0);
        }
        let after = s0.gradients(&x, &y).unwrap().0.loss;
        assert_ne!(before, after, "{cell:?}: the next step draws new masks");
    }
}

#[test]
fn sequence_models_refuse_what_does_not_fit() {
    let msg = |m: Sequential| m.build().unwrap_err().to_string();
    // A recurrent layer needs a sequence input.
    assert!(msg(Sequential::new(12).lstm(4)).contains("needs a sequence input"));
    // A model cannot end in a sequence (no loss at every step).
    assert!(msg(Sequential::sequence(3, 4).lstm(4)).contains("ends in a sequence"));
    // A later recurrent layer inherits the first one's mask and cannot set its own.
    let masked = RnnOpts {
        mask_value: Some(0.0),
        ..RnnOpts::new(RnnCell::Gru, 4)
    };
    assert!(
        msg(Sequential::sequence(3, 4)
            .rnn(masked)
            .rnn(masked)
            .last_step()
            .linear(2))
        .contains("first recurrent layer only")
    );
    // A dense layer after a sequence needs the last step first.
    assert!(msg(Sequential::sequence(3, 4).gru(4).linear(2)).contains("last_step"));
    assert!(
        msg(Sequential::sequence(3, 4)
            .lstm(4)
            .batch_norm()
            .last_step()
            .linear(2))
        .contains("last_step")
    );
    // Bad hyperparameters name the value.
    let bad = |o: RnnOpts| msg(classifier(3, 4, o));
    let o = RnnOpts::new(RnnCell::Lstm, 4);
    assert!(bad(RnnOpts { hidden: 0, ..o }).contains("rnn.hidden"));
    assert!(bad(RnnOpts { layers: 0, ..o }).contains("rnn.layers"));
    assert!(
        bad(RnnOpts {
            recurrent_dropout: 1.0,
            ..o
        })
        .contains("rnn.recurrent_dropout")
    );
    assert!(
        bad(RnnOpts {
            input_dropout: -0.1,
            ..o
        })
        .contains("rnn.input_dropout")
    );
    assert!(
        bad(RnnOpts {
            dropout: f32::NAN,
            ..o
        })
        .contains("rnn.dropout")
    );
    assert!(
        bad(RnnOpts {
            mask_value: Some(f32::INFINITY),
            ..o
        })
        .contains("rnn.mask_value")
    );
    assert!(msg(Sequential::sequence(0, 4).lstm(4).last_step().linear(2)).contains("0 steps"));
    assert!(msg(Sequential::sequence(3, 0).lstm(4).last_step().linear(2)).contains("0 features"));
    assert!(
        msg(Sequential::sequence(usize::MAX, 2)
            .lstm(4)
            .last_step()
            .linear(2))
        .contains("within usize")
    );
    // PyTorch's between-layer dropout with one layer (PyTorch warns and ignores it).
    assert!(bad(RnnOpts { dropout: 0.5, ..o }).contains("between stacked layers"));
}

#[test]
fn the_summary_names_the_torch_modules() {
    let m = Sequential::sequence(28, 28)
        .rnn(RnnOpts {
            layers: 2,
            dropout: 0.1,
            ..RnnOpts::new(RnnCell::Lstm, 16)
        })
        .last_step()
        .linear(10);
    let modules = m.torch_modules();
    assert!(
        modules[0].starts_with("LSTM(28, 16, num_layers=2, batch_first=True, dropout=0.1)"),
        "{}",
        modules[0]
    );
    // PyTorch's count: layer k has 4H·(F_k + H) weights and 2·4H biases; then 16·10 + 10.
    let want = 64 * (28 + 16) + 2 * 64 + 64 * (16 + 16) + 2 * 64 + 170;
    assert_eq!(m.build().unwrap().param_count(), want);
    let summary = m.summary();
    assert!(summary.contains("[28, 28]"), "{summary}");
    assert!(summary.contains("[28, 16]"), "{summary}");
    assert_eq!(want, 5_290);
    assert!(summary.contains("trainable parameters: 5,290"), "{summary}");
}

/// The probe reports the recurrent layer's output and its weights' gradient norms, which
/// agree with the gradients themselves (the tool for exploding or vanishing gradients
/// through time).
#[test]
fn the_probe_shows_the_recurrent_gradients() {
    let m = classifier(12, 3, RnnOpts::new(RnnCell::Lstm, 6));
    let mut s = session(Box::new(Cpu::new()), &m, 1, 8);
    let (x, y) = batch(21, 8, 36, 3);
    let report = s.probe(&x, &y).unwrap();
    assert!(
        report.activations.iter().any(|a| a.name.contains("lstm")),
        "{:?}",
        report.activations
    );
    let (_, grads) = s.gradients(&x, &y).unwrap();
    for (name, g) in &grads {
        let want = g.iter().map(|v| (*v as f64).powi(2)).sum::<f64>().sqrt() as f32;
        let got = report
            .gradients
            .iter()
            .find(|t| &t.name == name)
            .unwrap()
            .norm;
        assert!(
            (got - want).abs() <= 1e-6 + 1e-4 * want,
            "{name}: probe {got} vs {want}"
        );
    }
}

/// On lavapipe, a recurrent layer whose bias-gradient sums would pass llvmpipe's
/// per-invocation loop limit (N·T rows) is refused with a named error, not run wrong.
#[test]
fn lavapipe_refuses_recurrent_sums_past_its_loop_limit() {
    let Some(gpu) = gpu() else { return };
    if !gpu.report().name.contains("llvmpipe") {
        eprintln!(
            "not lavapipe ({}): no loop limit to check",
            gpu.report().name
        );
        return;
    }
    let (n, t) = (4096, 600);
    let m = Sequential::sequence(t, 1).gru(1).last_step().linear(2);
    let (x, y) = batch(2, n, t, 2);
    let e = Session::new(Box::new(gpu), m.build().unwrap(), Sgd::default(), 0, n)
        .and_then(|mut s| s.train_batch(&x, &y))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("loop iterations") && e.contains("RnnBiasGrad"),
        "{e}"
    );
}

/// A mask carries through recurrent layers added one by one (as Keras carries a Masking
/// layer's mask down the stack): for LSTM(mask) → ReLU → GRU, a row padded after or before
/// its real steps gives the output of the unpadded row in a model of its own length.
#[test]
fn the_mask_carries_through_layers_added_one_by_one() {
    let (t, f) = (6, 2);
    let first = RnnOpts {
        mask_value: Some(0.0),
        ..RnnOpts::new(RnnCell::Lstm, 5)
    };
    let stack = |steps: usize, o: RnnOpts| {
        Sequential::sequence(steps, f)
            .rnn(o)
            .relu()
            .gru(4)
            .last_step()
            .linear(3)
    };
    let mut padded = session(Box::new(Cpu::new()), &stack(t, first), 5, 2);
    let x0 = rand_vec(31, 3 * f);
    // Row 0: three real steps, then padding; row 1: padding, then the same three steps.
    let mut x = vec![0.0; 2 * t * f];
    x[..3 * f].copy_from_slice(&x0);
    x[t * f + 3 * f..].copy_from_slice(&x0);
    let got = padded.predict(&x).unwrap();
    let mut short = session(
        Box::new(Cpu::new()),
        &stack(3, RnnOpts::new(RnnCell::Lstm, 5)),
        5,
        1,
    );
    for (name, w) in padded.params().unwrap() {
        short.set_param(&name, &w).unwrap();
    }
    let want = short.predict(&x0).unwrap();
    assert_close("post-padded row", &got[..3], &want, 1e-6, 1e-5);
    assert_close("pre-padded row", &got[3..], &want, 1e-6, 1e-5);
}

// ---- Embedding ------------------------------------------------------------------------

/// A trainer of `epochs` epochs of batches of 32 that prints nothing.
fn quiet_trainer(epochs: u64) -> shadeprop::train::fit::Trainer {
    use shadeprop::train::fit::{FitConfig, Trainer};
    let mut cfg = FitConfig {
        epochs,
        verbose: false,
        ..Default::default()
    };
    cfg.epoch.batch_size = 32;
    cfg.epoch.progress = false;
    Trainer::new(cfg)
}

/// `n` rows of `t` token ids in [1, vocab) (0 is left for padding) and labels below 3.
fn token_batch(seed: u64, n: usize, t: usize, vocab: usize) -> (Vec<f32>, Vec<f32>) {
    let r = shadeprop::rng::Rng::new(seed);
    let x = (0..n * t)
        .map(|i| (1 + r.below(1, 0, i as u32, vocab as u32 - 1)) as f32)
        .collect();
    let y = (0..n).map(|i| r.below(2, 0, i as u32, 3) as f32).collect();
    (x, y)
}

/// Token ids → embedding → recurrent layer → last step → 3 logits.
fn token_classifier(t: usize, vocab: usize, cell: RnnCell, mask_zero: bool) -> Sequential {
    let m = Sequential::sequence(t, 1);
    let m = if mask_zero {
        m.embedding_mask_zero(vocab, 3)
    } else {
        m.embedding(vocab, 3)
    };
    m.rnn(RnnOpts::new(cell, 4)).last_step().linear(3)
}

/// The table's gradient by central differences of the loss on the CPU reference: the rows
/// of ids in the batch, and a row of an id that is not (gradient 0).
#[test]
fn embedding_gradients_match_finite_differences() {
    let (t, vocab, n) = (5, 9, 4);
    for cell in CELLS {
        let g = token_classifier(t, vocab, cell, false).build().unwrap();
        let mut s = Session::new(Box::new(Cpu::new()), g, Sgd::default(), 3, n).unwrap();
        let (mut x, y) = token_batch(11, n, t, vocab);
        // Id 8 nowhere, id 2 several times.
        for v in x.iter_mut() {
            if *v == 8.0 {
                *v = 2.0;
            }
        }
        x[0] = 2.0;
        x[7] = 2.0;
        let (_, grads) = s.gradients(&x, &y).unwrap();
        let (name, w) = s.params().unwrap().remove(0);
        assert_eq!(name, "0.weight");
        let gw = &grads[0].1;
        let h = 1e-2f32;
        for (row, used) in [(2usize, true), (8, false), (x[3] as usize, true)] {
            for d in 0..3 {
                let i = row * 3 + d;
                let mut wp = w.clone();
                wp[i] = w[i] + h;
                s.set_param(&name, &wp).unwrap();
                let lp = total(&mut s, &x, &y);
                wp[i] = w[i] - h;
                s.set_param(&name, &wp).unwrap();
                let lm = total(&mut s, &x, &y);
                s.set_param(&name, &w).unwrap();
                let fd = ((lp - lm) / (2.0 * h as f64)) as f32;
                let an = gw[i];
                assert!(
                    (fd - an).abs() <= 2e-3 + 3e-2 * an.abs(),
                    "{cell:?} row {row}[{d}]: finite difference {fd} vs analytic {an}"
                );
                if !used {
                    assert_eq!(an, 0.0, "{cell:?}: id {row} is not in the batch");
                }
            }
        }
    }
}

/// Training with an embedding (ids padded with 0, mask_zero) on every backend follows the
/// CPU reference: parameters, velocity and evaluation logits.
#[test]
fn embedding_training_steps_match_on_every_backend() {
    let (t, vocab) = (6, 17);
    for cell in CELLS {
        let m = token_classifier(t, vocab, cell, true);
        let mut reference = session(Box::new(Cpu::new()), &m, 5, 8);
        let mut others: Vec<Session> = backends()
            .into_iter()
            .skip(1)
            .map(|b| session(b, &m, 5, 8))
            .collect();
        for step in 0..3 {
            let (x, y) = token_batch(40 + step, 8, t, vocab);
            let x = padded(
                &x,
                t,
                1,
                &[6, 2, 4, 1, 6, 3, 5, 6],
                &[false, true, false, true, false, false, true, false],
            );
            reference.train_batch(&x, &y).unwrap();
            for s in &mut others {
                s.train_batch(&x, &y).unwrap();
            }
        }
        let want = reference.params().unwrap();
        for s in &mut others {
            let what = format!("{cell:?} on {}", s.backend().describe());
            for ((name, a), (_, b)) in want.iter().zip(&s.params().unwrap()) {
                assert_close(&format!("{what}: {name} after 3 steps"), b, a, 2e-5, 2e-3);
            }
            let (x, _) = token_batch(99, 8, t, vocab);
            let (pr, ps) = (reference.predict(&x).unwrap(), s.predict(&x).unwrap());
            assert_close(&format!("{what}: evaluation logits"), &ps, &pr, 2e-5, 2e-3);
        }
    }
}

/// With `mask_zero`, id 0 is padding: a padded row gives the logits and gradients of the
/// same ids alone in a model of their length (same weights), and the padding id's row of
/// the table gets no gradient.
#[test]
fn zero_padded_token_sequences_match_the_unpadded_ones() {
    let (t, vocab, n) = (6, 10, 4);
    let lens = [6, 3, 1, 4];
    let pre = [false, false, true, true];
    for cell in CELLS {
        let mut full = session(
            Box::new(Cpu::new()),
            &token_classifier(t, vocab, cell, true),
            4,
            n,
        );
        let params = full.params().unwrap();
        let (x0, y) = token_batch(6, n, t, vocab);
        let x = padded(&x0, t, 1, &lens, &pre);
        let logits = full.predict(&x).unwrap();
        let (_, grads) = full.gradients(&x, &y).unwrap();
        assert!(grads[0].1[..3].iter().all(|&g| g == 0.0), "the padding row");
        let mut want: Vec<Vec<f32>> = grads.iter().map(|(_, g)| vec![0.0; g.len()]).collect();
        for r in 0..n {
            let short_model = token_classifier(lens[r], vocab, cell, false);
            let mut short = session(Box::new(Cpu::new()), &short_model, 4, 1);
            for (name, w) in &params {
                short.set_param(name, w).unwrap();
            }
            let xr = &x0[r * t..r * t + lens[r]];
            let what = format!("{cell:?} row {r} ({} of {t} ids)", lens[r]);
            assert_close(
                &format!("{what}: logits"),
                &logits[r * 3..r * 3 + 3],
                &short.predict(xr).unwrap(),
                1e-6,
                1e-5,
            );
            let (_, g) = short.gradients(xr, &y[r..r + 1]).unwrap();
            for (acc, (_, g)) in want.iter_mut().zip(&g) {
                for (a, v) in acc.iter_mut().zip(g) {
                    *a += v / n as f32;
                }
            }
        }
        for ((name, g), w) in grads.iter().zip(&want) {
            assert_close(&format!("{cell:?}: gradient of {name}"), g, w, 1e-6, 1e-4);
        }
    }
}

/// Ids outside the table are refused before they reach a device, naming the value, the
/// row and the column: in a batch, in prediction, and in a dataset given to `fit` (its
/// own row there, not a shuffled batch's). Misplaced embeddings are refused when built.
#[test]
fn token_ids_out_of_range_are_named() {
    use shadeprop::error::Error;
    let (t, vocab) = (4, 6);
    let m = token_classifier(t, vocab, RnnCell::Gru, false);
    for b in backends() {
        let mut s = session(b, &m, 1, 4);
        let (x, y) = token_batch(3, 4, t, vocab);
        let before = s.params().unwrap();
        // NaN is named as a non-finite input, as for any model.
        let mut xb = x.clone();
        xb[2] = f32::NAN;
        let e = s.train_batch(&xb, &y).unwrap_err();
        assert!(
            matches!(
                e,
                Error::NonFiniteInput {
                    row: 0,
                    feature: 2,
                    ..
                }
            ),
            "{e}"
        );
        for (at, bad) in [(5usize, 6.0f32), (9, -1.0), (14, 2.5), (3, 1e9)] {
            let mut xb = x.clone();
            xb[at] = bad;
            match s.train_batch(&xb, &y) {
                Err(Error::TokenId {
                    value,
                    row,
                    column,
                    vocab: v,
                    ..
                }) => {
                    assert!(value.to_bits() == bad.to_bits(), "{value} vs {bad}");
                    assert_eq!((row, column, v), (at / t, at % t, vocab));
                }
                other => panic!("{bad} at {at}: {other:?}"),
            }
            let e = s.predict(&xb).unwrap_err();
            assert!(matches!(e, Error::TokenId { .. }), "{e}");
            assert!(e.to_string().contains("[0, 6)"), "{e}");
        }
        assert_eq!(
            s.params().unwrap(),
            before,
            "nothing trained on a refused batch"
        );
    }
    // In a dataset: its own row.
    let (mut x, y) = token_batch(4, 20, t, vocab);
    x[13 * t + 2] = 7.0;
    let ds = shadeprop::data::Dataset::new(x, y, t, 3).unwrap();
    let mut s = session(Box::new(Cpu::fast()), &m, 1, 8);
    let trainer = quiet_trainer(1);
    let e = trainer.fit(&mut s, &ds, None, &mut []).unwrap_err();
    assert!(
        matches!(
            e,
            Error::TokenId {
                row: 13,
                column: 2,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("training set"), "{e}");
    // Where an embedding cannot go.
    for (bad, needle) in [
        (
            Sequential::new(t).linear(3).embedding(6, 3),
            "must be the first layer",
        ),
        (
            Sequential::new(t).embedding_mask_zero(6, 3).linear(3),
            "needs a sequence input",
        ),
        (Sequential::image(1, 2, 2).embedding(6, 3), "not an image"),
        // Nothing would apply the padding mask: the last step would be padding.
        (
            Sequential::sequence(t, 1)
                .embedding_mask_zero(6, 3)
                .last_step()
                .linear(3),
            "none comes before this layer",
        ),
    ] {
        let e = bad.build().unwrap_err().to_string();
        assert!(e.contains(needle), "{needle:?} not in {e}");
    }
    for (v, d) in [(0usize, 3usize), (6, 0)] {
        let e = Sequential::new(t)
            .embedding(v, d)
            .linear(3)
            .build()
            .unwrap_err();
        assert!(matches!(e, Error::Hyperparameter { .. }), "{e}");
    }
}

/// An embedding learns what only the ids carry: the class of a sequence is the group of
/// its first token (ids 1–5, 6–10, 11–15), the rest is noise, and sequences of 2–8
/// tokens are padded with 0 at the end (`mask_zero`). Held-out accuracy after a few
/// epochs on the fast CPU backend.
#[test]
fn an_embedding_learns_a_token_task() {
    use shadeprop::data::Dataset;
    let (t, n) = (8usize, 1200usize);
    let r = shadeprop::rng::Rng::new(21);
    let mut x = vec![0.0f32; n * t];
    let mut y = vec![0.0f32; n];
    for i in 0..n {
        let len = 2 + r.below(3, 0, i as u32, 7) as usize;
        for s in 0..len {
            x[i * t + s] = (1 + r.below(4, s as u32, i as u32, 15)) as f32;
        }
        y[i] = ((x[i * t] - 1.0) / 5.0).floor();
    }
    let (tr, te) = (900 * t, 900);
    let train = Dataset::new(x[..tr].to_vec(), y[..te].to_vec(), t, 3).unwrap();
    let test = Dataset::new(x[tr..].to_vec(), y[te..].to_vec(), t, 3).unwrap();
    let m = Sequential::sequence(t, 1)
        .embedding_mask_zero(16, 8)
        .gru(16)
        .last_step()
        .linear(3);
    let mut s = Session::new(
        Box::new(Cpu::fast()),
        m.build().unwrap(),
        shadeprop::optim::Adam {
            lr: 0.01,
            ..Default::default()
        },
        7,
        32,
    )
    .unwrap();
    quiet_trainer(8).fit(&mut s, &train, None, &mut []).unwrap();
    let logits = s.predict(&test.x).unwrap();
    let correct = logits
        .chunks(3)
        .zip(&test.y)
        .filter(|&(l, &c)| {
            let best = (0..3).max_by(|&a, &b| l[a].total_cmp(&l[b])).unwrap();
            best as f32 == c
        })
        .count();
    let acc = correct as f64 / 300.0;
    assert!(acc >= 0.95, "held-out accuracy {acc}");
}

// ---- A given initial state --------------------------------------------------------------

/// `input [N, T·F + 4]`: the sequence, then 4 features that a linear layer (with tanh)
/// turns into the recurrent layers' initial state; the last step → 3 logits. The state's
/// gradient reaches that linear layer's weights.
fn from_state(cell: RnnCell, o: RnnOpts, (t, f): (usize, usize)) -> shadeprop::graph::Graph {
    use shadeprop::backend::Act;
    use shadeprop::graph::init::Init;
    let s = o.layers * if cell == RnnCell::Lstm { 2 } else { 1 } * o.hidden;
    let mut b = shadeprop::graph::GraphBuilder::new(t * f + 4);
    let input = b.input();
    let x = b.columns(input, 0, t * f).unwrap();
    let z = b.columns(input, t * f, 4).unwrap();
    let st = b.linear(z, s, Init::XAVIER_UNIFORM, true, "enc").unwrap();
    let st = b.act(st, Act::Tanh);
    let y = b.rnn_with_state(x, t, &o, "rnn", st).unwrap();
    let y = b.last_step(y, o.hidden).unwrap();
    let y = b.linear(y, 3, Init::XAVIER_UNIFORM, true, "head").unwrap();
    let mut g = b.loss(y, Default::default()).unwrap();
    shadeprop::graph::autodiff::differentiate(&mut g).unwrap();
    g
}

#[test]
fn initial_state_gradients_match_finite_differences() {
    for cell in CELLS {
        finite_difference_check(None, from_state(cell, RnnOpts::new(cell, 4), (5, 3)), 4, 3);
        // Stacked, with the recurrent mask on the initial state too.
        let o = RnnOpts {
            layers: 2,
            recurrent_dropout: 0.3,
            ..RnnOpts::new(cell, 4)
        };
        finite_difference_check(None, from_state(cell, o, (4, 3)), 5, 4);
    }
}

/// Training from a given state on every backend follows the CPU reference (padded steps
/// before and after, recurrent dropout, two layers).
#[test]
fn initial_state_training_matches_on_every_backend() {
    let (t, f) = (6, 3);
    for cell in CELLS {
        let o = RnnOpts {
            layers: 2,
            recurrent_dropout: 0.25,
            mask_value: Some(0.0),
            ..RnnOpts::new(cell, 10)
        };
        let g = from_state(cell, o, (t, f));
        let mk = |b: Box<dyn Backend>| Session::new(b, g.clone(), Sgd::w_mlp(), 8, 8).unwrap();
        let mut reference = mk(Box::new(Cpu::new()));
        let mut others: Vec<Session> = backends().into_iter().skip(1).map(mk).collect();
        for step in 0..3 {
            let (x, y) = batch(500 + step, 8, t * f + 4, 3);
            // Pad the sequence part only (the 4 state features stay).
            let mut xp = vec![];
            let lens = [6, 2, 4, 1, 6, 3, 5, 6];
            let pre = [false, true, false, true, false, false, true, false];
            for r in 0..8 {
                let row = &x[r * (t * f + 4)..(r + 1) * (t * f + 4)];
                xp.extend(padded(&row[..t * f], t, f, &lens[r..r + 1], &pre[r..r + 1]));
                xp.extend_from_slice(&row[t * f..]);
            }
            reference.train_batch(&xp, &y).unwrap();
            for s in &mut others {
                s.train_batch(&xp, &y).unwrap();
            }
        }
        let want = reference.params().unwrap();
        for s in &mut others {
            let what = format!("{cell:?} from a state on {}", s.backend().describe());
            for ((name, a), (_, b)) in want.iter().zip(&s.params().unwrap()) {
                assert_close(&format!("{what}: {name} after 3 steps"), b, a, 2e-5, 2e-3);
            }
        }
    }
}

#[test]
fn an_initial_state_of_the_wrong_width_is_named() {
    for (cell, wrong) in [(RnnCell::Lstm, 8usize), (RnnCell::Gru, 12)] {
        let mut b = shadeprop::graph::GraphBuilder::new(12 + wrong);
        let input = b.input();
        let x = b.columns(input, 0, 12).unwrap();
        let st = b.columns(input, 12, wrong).unwrap();
        let e = b
            .rnn_with_state(x, 4, &RnnOpts::new(cell, 8), "r", st)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("initial state") && e.contains(&format!("{wrong}")),
            "{e}"
        );
    }
    let mut b = shadeprop::graph::GraphBuilder::new(10);
    let input = b.input();
    for (start, len) in [(0usize, 0usize), (4, 7), (usize::MAX, 2)] {
        let e = b.columns(input, start, len).unwrap_err().to_string();
        assert!(e.contains("columns"), "{e}");
    }
    // Zero units or layers are named as such, not as a state of the wrong width; widths
    // whose sizes would overflow are too large, not wrapped into other numbers.
    use shadeprop::error::Error;
    let mut b = shadeprop::graph::GraphBuilder::new(6);
    let input = b.input();
    for (o, name) in [
        (RnnOpts::new(RnnCell::Lstm, 0), "rnn.hidden"),
        (
            RnnOpts {
                layers: 0,
                ..RnnOpts::new(RnnCell::Gru, 6)
            },
            "rnn.layers",
        ),
    ] {
        match b.rnn_with_state(input, 3, &o, "r", input) {
            Err(Error::Hyperparameter { name: n, .. }) => assert_eq!(n, name),
            other => panic!("{name}: {other:?}"),
        }
    }
    for h in [usize::MAX, 1 << 62, 1 << 24] {
        for cell in CELLS {
            let e = b.rnn(input, 3, &RnnOpts::new(cell, h), "r").unwrap_err();
            assert!(
                matches!(&e, Error::TooLarge { name, .. } if name == "rnn.hidden"),
                "{h}: {e}"
            );
            let e = Sequential::sequence(3, 2)
                .rnn(RnnOpts::new(cell, h))
                .last_step()
                .linear(2)
                .build()
                .unwrap_err();
            assert!(matches!(e, Error::TooLarge { .. }), "{h}: {e}");
        }
    }
    // A tensor id from elsewhere is an error, not an index out of bounds.
    let e = b.columns(999, 0, 1).unwrap_err().to_string();
    assert!(e.contains("not in this graph"), "{e}");
    let e = b
        .embedding(999, 5, 2, shadeprop::graph::init::Init::Zeros, "e")
        .unwrap_err()
        .to_string();
    assert!(e.contains("not in this graph"), "{e}");
    // 2^24 parameters exactly: refused when built, not accepted and then refused by the
    // session's layout; one fewer builds.
    let e = Sequential::new(1)
        .embedding((1 << 24) - 4, 1)
        .linear(2)
        .build()
        .unwrap_err();
    assert!(matches!(e, Error::TooLarge { .. }), "{e}");
    assert!(
        Sequential::new(1)
            .embedding((1 << 24) - 5, 1)
            .linear(2)
            .build()
            .is_ok()
    );
}

/// Token ids and features in one input row: an embedding over the ids' columns (id 0 is
/// padding for the GRU, the mask taken from those columns) and an initial state from the
/// other columns. Only the ids' columns are checked as ids; every backend trains alike.
#[test]
fn ids_and_features_share_an_input_row() {
    use shadeprop::backend::Act;
    use shadeprop::error::Error;
    use shadeprop::graph::init::Init;
    let (t, vocab) = (5usize, 9usize);
    let graph = || {
        let mut b = shadeprop::graph::GraphBuilder::new(t + 4);
        let input = b.input();
        let ids = b.columns(input, 0, t).unwrap();
        let z = b.columns(input, t, 4).unwrap();
        let e = b
            .embedding(
                ids,
                vocab,
                3,
                Init::Normal {
                    mean: 0.0,
                    std: 1.0,
                },
                "emb",
            )
            .unwrap();
        let st = b.linear(z, 6, Init::XAVIER_UNIFORM, true, "enc").unwrap();
        let st = b.act(st, Act::Tanh);
        let o = RnnOpts {
            mask_value: Some(0.0),
            ..RnnOpts::new(RnnCell::Gru, 6)
        };
        let y = b.rnn_full(e, t, &o, "rnn", ids, Some(st)).unwrap();
        let y = b.last_step(y, 6).unwrap();
        let y = b.linear(y, 3, Init::XAVIER_UNIFORM, true, "head").unwrap();
        let mut g = b.loss(y, Default::default()).unwrap();
        shadeprop::graph::autodiff::differentiate(&mut g).unwrap();
        g
    };
    let rows = |seed: u64| -> (Vec<f32>, Vec<f32>) {
        let (ids, y) = token_batch(seed, 8, t, vocab);
        let ids = padded(&ids, t, 1, &[5, 2, 4, 1, 5, 3, 5, 5], &[false; 8]);
        let feats = rand_vec(seed + 1, 8 * 4);
        let x = (0..8)
            .flat_map(|r| {
                ids[r * t..(r + 1) * t]
                    .iter()
                    .chain(&feats[r * 4..(r + 1) * 4])
                    .copied()
                    .collect::<Vec<_>>()
            })
            .collect();
        (x, y)
    };
    let mk = |b: Box<dyn Backend>| Session::new(b, graph(), Sgd::w_mlp(), 2, 8).unwrap();
    let mut reference = mk(Box::new(Cpu::new()));
    let mut others: Vec<Session> = backends().into_iter().skip(1).map(mk).collect();
    for step in 0..3 {
        let (x, y) = rows(70 + step);
        reference.train_batch(&x, &y).unwrap();
        for s in &mut others {
            s.train_batch(&x, &y).unwrap();
        }
    }
    let want = reference.params().unwrap();
    for s in &mut others {
        for ((name, a), (_, b)) in want.iter().zip(&s.params().unwrap()) {
            let what = format!("{name} on {}", s.backend().describe());
            assert_close(&what, b, a, 2e-5, 2e-3);
        }
    }
    // A fractional feature is fine; a fractional id (column 3) is not.
    let (mut x, y) = rows(90);
    x[t + 1] = 0.25;
    reference.train_batch(&x, &y).unwrap();
    x[t + 4 + 3] = 0.25;
    let e = reference.train_batch(&x, &y).unwrap_err();
    assert!(
        matches!(
            e,
            Error::TokenId {
                row: 1,
                column: 3,
                ..
            }
        ),
        "{e}"
    );
    // A computed tensor cannot be read as ids.
    let mut b = shadeprop::graph::GraphBuilder::new(4);
    let input = b.input();
    let h = b.act(input, Act::Relu);
    let e = b
        .embedding(
            h,
            5,
            2,
            Init::Normal {
                mean: 0.0,
                std: 1.0,
            },
            "e",
        )
        .unwrap_err()
        .to_string();
    assert!(e.contains("columns of it"), "{e}");
}

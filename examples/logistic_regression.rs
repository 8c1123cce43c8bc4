//! The lectures' first model, logistic regression, on scikit-learn's breast cancer table
//! (569 tumours, 30 features, malignant = 0 / benign = 1):
//!
//!   a = σ(w·x + b),  J(w, b) = (1/m)·Σ −[y·log a + (1−y)·log(1−a)] + (λ/(2m))·‖w‖²
//!
//! trained by full-batch gradient descent, so m is the training set's size, with the
//! weight-decay form of the update, w := (1 − lr·λ/m)·w − lr·∂J₀/∂w (J₀ the data term; b
//! is not penalized), checked against the session's own step. A sweep over λ shows
//! training against validation error (bias and variance); the λ with the lowest
//! validation error is evaluated once on the held-out test rows.
//!
//!   bash scripts/fetch-data.sh --tabular
//!   cargo run --release --example logistic_regression [-- --backend cpu|gpu|cpu-ref]

use shadeprop::data::tabular::{CsvSpec, Preprocessor, read_table};
use shadeprop::data::{Scaler, Task, split3_indices};
use shadeprop::graph::init::Init;
use shadeprop::nn::{Loss, Sequential};
use shadeprop::optim::{Regularizer, Sgd};
use shadeprop::session::Session;
use shadeprop::train::{EpochConfig, evaluate, train_epoch};

/// The lectures' logistic regression on breast cancer: the weight-decay update checked
/// against the session's step, a λ sweep (bias and variance), and the test accuracy.
#[derive(clap::Parser)]
struct Args {
    /// auto | gpu | cpu | cpu-ref | gpu:<matmul variant>
    #[arg(long, default_value = "auto")]
    backend: String,
    /// Full-batch gradient-descent steps per λ.
    #[arg(long, default_value_t = 500)]
    epochs: u64,
}

#[path = "common/exit.rs"]
mod exit;

fn main() -> std::process::ExitCode {
    exit::report(run())
}

fn run() -> shadeprop::Result<()> {
    use clap::Parser;
    let args = Args::parse();
    let (backend, epochs) = (args.backend.as_str(), args.epochs);

    // The first line, "569,30,malignant,benign", is not a header: skip it; columns are
    // then named by index and "30" is the target.
    let spec = CsvSpec {
        path: concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/data/sklearn/breast_cancer.csv"
        )
        .into(),
        header: false,
        skip_rows: 1,
        target: vec!["30".into()],
        ..Default::default()
    };
    let table = read_table(&spec)?;
    // 60 / 20 / 20, seeded; the preprocessing and the standardization are fitted on the
    // training rows only.
    let (tr, va, te) = split3_indices(table.len(), (0.6, 0.2, 0.2), 0)?;
    let pre = Preprocessor::fit(&spec, &table, Task::Binary, &tr)?;
    let (mut train, mut val, mut test) = (
        pre.dataset(&table, &tr)?,
        pre.dataset(&table, &va)?,
        pre.dataset(&table, &te)?,
    );
    // Per-feature standardization (the columns range from 0.001 to 4,000).
    let st = Scaler::fit_per_feature(&train)?;
    for d in [&mut train, &mut val, &mut test] {
        st.apply(d)?;
    }
    let m = train.len();
    println!(
        "breast cancer: {} train / {} validation / {} test rows, {} features, classes {}",
        m,
        val.len(),
        test.len(),
        train.features,
        pre.class_names.as_deref().unwrap_or_default().join(", ")
    );

    let lr = 0.5f32;
    let session = |lambda: f32| -> shadeprop::Result<Session> {
        let (b, _) = shadeprop::backend::open(backend)?;
        // One unit, zero-initialized weights: logistic regression.
        let model = Sequential::new(train.features)
            .linear_init(1, Init::Zeros)
            .loss(Loss::BceWithLogits { pos_weight: None });
        let opt = Sgd {
            lr,
            momentum: 0.0,
            weight_decay: 0.0,
            clip_norm: None,
            ..Sgd::default()
        };
        let mut s = Session::new(b, model.build()?, opt, 0, m)?;
        // (λ/(2m))·‖w‖² on the weight only (biases are never penalized by default).
        s.set_regularizer(Some(Regularizer::l2(lambda)))?;
        Ok(s)
    };

    // The update, visibly: one full-batch step equals w := (1 − lr·λ/m)·w − lr·∂J₀/∂w.
    {
        let lambda = 10.0;
        let mut s = session(lambda)?;
        let w0 = random_weights(train.features);
        s.set_param("0.weight", &w0)?;
        // ∂J/∂w from the session includes the penalty's λ/m·w; J₀'s gradient is the rest.
        let (_, grads) = s.gradients(&train.x, &train.y)?;
        let g: Vec<f32> = grads[0]
            .1
            .iter()
            .zip(&w0)
            .map(|(g, w)| g - lambda / m as f32 * w)
            .collect();
        let decay = 1.0 - lr * lambda / m as f32;
        let by_hand: Vec<f32> = w0.iter().zip(&g).map(|(w, g)| decay * w - lr * g).collect();
        s.train_batch(&train.x, &train.y)?;
        let stepped = s.params()?[0].1.clone();
        let diff = by_hand
            .iter()
            .zip(&stepped)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        println!(
            "one step at λ = {lambda}: w := (1 − lr·λ/m)·w − lr·∂J₀/∂w with 1 − lr·λ/m = {decay:.6}; \
             largest difference from the session's step {diff:.2e}"
        );
        if diff > 1e-6 {
            return Err(shadeprop::Error::Graph(format!(
                "the session's step differs from the weight-decay update by {diff}"
            )));
        }
    }

    // Bias and variance: training and validation error over λ.
    println!(
        "\n{:>8}  {:>12}  {:>10}  {:>10}  {:>10}",
        "λ", "1 − lr·λ/m", "train err", "val err", "‖w‖"
    );
    let mut best: Option<(f32, f32)> = None;
    let cfg = EpochConfig {
        batch_size: m,
        shuffle: false,
        ..Default::default()
    };
    for lambda in [0.0f32, 0.1, 1.0, 10.0, 100.0, 1000.0] {
        let mut s = session(lambda)?;
        for epoch in 0..epochs {
            train_epoch(&mut s, &train, &cfg, 0, epoch)?;
        }
        let tr_err = 1.0 - evaluate(&mut s, &train, m)?.accuracy;
        let va_err = 1.0 - evaluate(&mut s, &val, m)?.accuracy;
        let norm = s.params()?[0].1.iter().map(|w| w * w).sum::<f32>().sqrt();
        // Above lr·λ/m = 1 the decay factor turns negative: w flips sign every step and
        // gradient descent no longer converges (the last row of the sweep).
        let decay = 1.0 - lr * lambda / m as f32;
        println!("{lambda:>8}  {decay:>12.4}  {tr_err:>10.4}  {va_err:>10.4}  {norm:>10.3}");
        if best.is_none_or(|(_, e)| va_err < e) {
            best = Some((lambda, va_err));
        }
    }
    let (lambda, _) = best.unwrap_or((0.0, 0.0));
    let mut s = session(lambda)?;
    for epoch in 0..epochs {
        train_epoch(&mut s, &train, &cfg, 0, epoch)?;
    }
    let acc = evaluate(&mut s, &test, m)?.accuracy;
    let p = s.predict_proba(&test.x)?;
    let scores = shadeprop::metrics::task_metrics(Task::Binary, &p, &test.y, test.len(), 1)?;
    println!("\nλ = {lambda} (lowest validation error): test accuracy {acc:.4}");
    for (k, v) in scores {
        println!("  test {k} {v:.4}");
    }
    Ok(())
}

/// A fixed, non-zero starting point for the one-step check.
fn random_weights(n: usize) -> Vec<f32> {
    let r = shadeprop::rng::Rng::new(3);
    (0..n).map(|i| r.normal(1, 0, i as u32) * 0.1).collect()
}

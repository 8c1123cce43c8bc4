//! Faults: Ctrl-C mid-epoch saves the exact state and a resume finishes bit-identical to an
//! uninterrupted run; SIGKILL at random moments (mid-epoch, mid-checkpoint-write) never
//! leaves a half-written checkpoint and resuming from the last one is bit-identical too.
//! The training runs in child processes: this test binary re-invoked on `fault_child`.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use shadeprop::backend::cpu::Cpu;
use shadeprop::data::Dataset;
use shadeprop::nn::Sequential;
use shadeprop::optim::Sgd;
use shadeprop::session::Session;
use shadeprop::train::callbacks::{Callback, EarlyStopping, ModelCheckpoint};
use shadeprop::train::fit::{FitConfig, Trainer};
use shadeprop::train::{EpochConfig, checkpoint, interrupt};

const EPOCHS: u64 = 4;

/// Slows each step down so that signals land mid-epoch.
struct Slow;
impl Callback for Slow {
    fn name(&self) -> &'static str {
        "slow"
    }
    fn on_batch_end(&mut self, _step: u64) -> shadeprop::Result<()> {
        std::thread::sleep(Duration::from_millis(4));
        Ok(())
    }
}

fn session() -> Session {
    let m = Sequential::new(16)
        .linear(32)
        .batch_norm()
        .relu()
        .dropout(0.3)
        .linear(4);
    Session::new(
        Box::new(Cpu::new()),
        m.build().unwrap(),
        Sgd::w_mlp(),
        11,
        32,
    )
    .unwrap()
}

fn data() -> Dataset {
    let (x, y) = batch(99, 2048, 16, 4);
    Dataset {
        x,
        y,
        features: 16,
        classes: 4,
        ..Default::default()
    }
}

#[test]
#[ignore = "helper: the training child process of the other tests in this file"]
fn fault_child() {
    let dir = PathBuf::from(std::env::var("SHADEPROP_FAULT_DIR").expect("run by the fault tests"));
    interrupt::install_sigint_handler().unwrap();
    let train = data();
    let mut s = session();
    let cfg = FitConfig {
        epochs: EPOCHS,
        epoch: EpochConfig {
            batch_size: 32,
            ..Default::default()
        },
        seed: Some(3),
        interrupt_checkpoint: Some(dir.join("interrupt.safetensors")),
        ..Default::default()
    };
    let mut es = EarlyStopping::new("loss")
        .patience(10)
        .restore_best_weights(true);
    let mut ck = ModelCheckpoint::every(&dir, 1);
    let mut slow = Slow;
    let mut cbs: [&mut dyn Callback; 3] = [&mut es, &mut ck, &mut slow];
    let t = Trainer::new(cfg);
    let r = match std::env::var("SHADEPROP_FAULT_RESUME") {
        Ok(p) => t.resume(Path::new(&p), &mut s, &train, None, &mut cbs),
        Err(_) => t.fit(&mut s, &train, None, &mut cbs),
    };
    match r {
        Ok(h) => {
            // Every logged value but the timings: a resumed epoch logs what an
            // uninterrupted one does.
            let logged: Vec<String> = h
                .epochs
                .iter()
                .flat_map(|e| {
                    e.values
                        .iter()
                        .filter(|(k, _)| !matches!(k.as_str(), "seconds" | "samples_per_sec"))
                        .map(|(k, v)| format!("{}:{k}={v}", e.epoch))
                })
                .collect();
            let logged = logged.join(" ");
            let bits: Vec<u32> = s
                .params()
                .unwrap()
                .iter()
                .flat_map(|(_, v)| v.iter().map(|f| f.to_bits()))
                .collect();
            std::fs::write(
                dir.join("final.txt"),
                format!("{bits:?} step {}\n{logged}", s.step()),
            )
            .unwrap();
        }
        Err(shadeprop::Error::Interrupted { .. }) => std::process::exit(130),
        Err(e) => panic!("{e}"),
    }
}

fn child(dir: &Path, resume: Option<&Path>) -> Child {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args([
        "fault_child",
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env("SHADEPROP_FAULT_DIR", dir);
    if let Some(r) = resume {
        c.env("SHADEPROP_FAULT_RESUME", r);
    }
    c.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

fn signal(c: &Child, sig: &str) {
    Command::new("kill")
        .args([sig, &c.id().to_string()])
        .status()
        .unwrap();
}

fn fresh(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("shadeprop-fault-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The uninterrupted run's final state; `who` keeps the folders of tests running in
/// parallel in this process apart.
fn uninterrupted(who: &str) -> String {
    let d = fresh(&format!("reference-{who}"));
    assert!(child(&d, None).wait().unwrap().success());
    let r = std::fs::read_to_string(d.join("final.txt")).unwrap();
    std::fs::remove_dir_all(d).unwrap();
    r
}

/// A resumed run's `final.txt` against the uninterrupted one's: the parameters and step
/// bit for bit; every logged value (accuracies and the learning rate exactly, as the same
/// f32) within 1e-6 relative — an epoch interrupted mid-way has its device sums split at
/// the interrupt, so its mean loss can differ in the last bits.
fn same_run(got: &str, want: &str) {
    let (gp, gl) = got.split_once('\n').unwrap();
    let (wp, wl) = want.split_once('\n').unwrap();
    assert_eq!(gp, wp, "parameters and step");
    let (g, w): (Vec<&str>, Vec<&str>) = (gl.split(' ').collect(), wl.split(' ').collect());
    assert_eq!(g.len(), w.len(), "logged values: {gl} against {wl}");
    for (a, b) in g.iter().zip(&w) {
        let (ka, va) = a.split_once('=').unwrap();
        let (kb, vb) = b.split_once('=').unwrap();
        assert_eq!(ka, kb);
        let (x, y): (f64, f64) = (va.parse().unwrap(), vb.parse().unwrap());
        if ka.contains("loss") || ka.contains("grad_norm") {
            assert!(
                (x - y).abs() <= 1e-6 * y.abs(),
                "{ka}: resumed {x}, uninterrupted {y}"
            );
        } else {
            assert_eq!(x, y, "{ka}");
        }
    }
}

fn wait_for(p: &Path, limit: Duration) {
    let t0 = Instant::now();
    while !p.exists() {
        assert!(t0.elapsed() < limit, "{} never appeared", p.display());
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn ctrl_c_mid_epoch_saves_and_resumes_exactly() {
    let reference = uninterrupted("sigint");
    let d = fresh("sigint");
    let c = child(&d, None);
    // After the first epoch's checkpoint, in the middle of the second epoch.
    wait_for(&d.join("last.safetensors"), Duration::from_secs(60));
    std::thread::sleep(Duration::from_millis(120));
    signal(&c, "-INT");
    let mut c = c;
    let status = c.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(130),
        "exits cleanly with 130 after saving"
    );
    let saved = d.join("interrupt.safetensors");
    let mut probe = session();
    let (meta, _) = checkpoint::load(&saved, &mut probe).unwrap();
    assert!(
        meta.batch > 0,
        "interrupted mid-epoch (epoch {}, batch {})",
        meta.epoch,
        meta.batch
    );
    assert!(child(&d, Some(&saved)).wait().unwrap().success());
    same_run(
        &std::fs::read_to_string(d.join("final.txt")).unwrap(),
        &reference,
    );
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn sigkill_at_random_moments_never_corrupts_and_resumes_exactly() {
    let reference = uninterrupted("sigkill");
    let d = fresh("sigkill");
    let last = d.join("last.safetensors");
    let r = shadeprop::rng::Rng::new(5);
    for k in 0..6u32 {
        let resume = last.exists().then_some(last.as_path());
        let mut c = child(&d, resume);
        std::thread::sleep(Duration::from_millis(150 + r.below(7, k, 0, 600) as u64));
        signal(&c, "-KILL");
        let _ = c.wait();
        if last.exists() {
            // Whatever moment the kill hit, the checkpoint is whole.
            checkpoint::load(&last, &mut session()).unwrap();
        }
    }
    let resume = last.exists().then_some(last.as_path());
    assert!(child(&d, resume).wait().unwrap().success());
    same_run(
        &std::fs::read_to_string(d.join("final.txt")).unwrap(),
        &reference,
    );
    std::fs::remove_dir_all(d).unwrap();
}

/// A device lost in the middle of training (a driver reset; injected with wgpu's
/// `Device::destroy`) gives an error within seconds, not a hang, and the checkpoint
/// written before it is intact.
#[test]
fn a_lost_device_is_an_error_not_a_hang_and_the_checkpoint_survives() {
    use shadeprop::plan::Mode;
    use shadeprop::train::checkpoint::Meta;
    let Some(gpu) = common::gpu() else {
        assert!(
            std::env::var("SHADEPROP_REQUIRE_GPU").is_err(),
            "no GPU adapter in CI"
        );
        return;
    };
    drop(gpu);
    let d = fresh("lost-device");
    let ck = d.join("before.safetensors");
    let ck2 = ck.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    // Everything GPU-side on its own thread, so that a hang fails the test instead of
    // stalling it.
    std::thread::spawn(move || {
        let gpu = common::gpu().unwrap();
        let g = shadeprop::nn::Sequential::w_mlp(0.5).build().unwrap();
        let mut s = Session::new(Box::new(gpu), g, Sgd::w_mlp(), 3, 16).unwrap();
        let (x, y) = common::batch(5, 16, 784, 10);
        for _ in 0..3 {
            s.train_batch(&x, &y).unwrap();
        }
        s.take_metrics(Mode::Train).unwrap();
        checkpoint::save(&ck2, &mut s, &Meta::default(), &[]).unwrap();
        let saved = s.params().unwrap();
        s.backend_mut().lose_device();
        let r = (|| {
            for _ in 0..3 {
                s.train_batch(&x, &y)?;
            }
            s.take_metrics(Mode::Train)
        })();
        let _ = tx.send((r.map(|_| ()).map_err(|e| e.to_string()), saved));
    });
    let (r, saved) = rx
        .recv_timeout(Duration::from_secs(120))
        .expect("training on a lost device hung for 2 minutes");
    let msg = r.expect_err("training went on after the device was lost");
    eprintln!("after the device loss: {msg}");
    assert!(msg.contains("device lost"), "{msg}");
    // The checkpoint written before the loss loads into a fresh (CPU) session unchanged.
    let g = shadeprop::nn::Sequential::w_mlp(0.5).build().unwrap();
    let mut cpu = Session::new(Box::new(Cpu::new()), g, Sgd::w_mlp(), 3, 16).unwrap();
    checkpoint::load(&ck, &mut cpu).unwrap();
    assert_eq!(cpu.params().unwrap(), saved);
    let _ = std::fs::remove_dir_all(d);
}

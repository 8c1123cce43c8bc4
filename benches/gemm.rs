//! W-GEMM: GFLOP/s of C = op(A)·op(B) for the shapes of docs/benchmarks.md, for each
//! matmul variant the adapter runs, and for the CPU reference. Each GPU figure is checked
//! against the CPU twin first, then timed as the median of 3 runs of `reps` dispatches in
//! one submission each (dispatch overhead included).
//!
//! Rows marked "f16 operands" run the mixed-precision matmul (A and B stored as packed f16,
//! f32 products and sums), checked against its own CPU twin. Where the adapter reads matmul
//! operands from textures (llvmpipe) and a product qualifies, its row "operands from
//! textures" (the copies into them included) is followed by the same kernel on buffers.
//!
//! `--sizes 512,1024,4096` adds square products of those sizes (those already listed are
//! not repeated); `--no-reference-above N` skips the naive CPU reference for products of
//! more than N³ multiply-adds, checking them against the fast CPU (gemm crate) instead,
//! whose own check against the reference then only runs at the smaller shapes (the
//! reference takes minutes at 4096); `--json FILE` also writes every row to FILE as JSON
//! (shape, m, n, k, backend, adapter, GFLOP/s, ms, what it was checked against), rewritten
//! after every shape so that a run stopped early keeps what it measured. A result
//! that differs from its reference is reported, the run goes on, and the bench exits with
//! status 1 at the end.
//!
//! On hardware GPUs, or everywhere with `--variants all`, each tile shape of the tiled
//! matmul is timed pinned, and so is the autotuner's pick (named in its row).
//!
//!   cargo bench --bench gemm [-- --quick] [--only TEXT,...] [--no-half] [--sizes N,N,...]
//!       [--no-reference-above N] [--json FILE] [--variants all]

use std::time::Instant;

use shadeprop::backend::check::compare;
use shadeprop::backend::cpu::Cpu;
use shadeprop::backend::gpu::{Gpu, GpuOptions, MatmulSelect, MatmulVariant, TILES, shape_class};
use shadeprop::backend::{Backend, BufferSpec, Globals, Instr, Program, Slice};
use shadeprop::kernels::KernelParams;
use shadeprop::kernels::matmul::MatMulParams;

fn data(n: usize, salt: u32) -> Vec<f32> {
    let r = shadeprop::rng::Rng::new(salt as u64);
    (0..n).map(|i| r.uniform(9, 0, i as u32) - 0.5).collect()
}

/// Median seconds of one matmul, and the result.
fn time(b: &mut dyn Backend, prm: &MatMulParams, reps: usize) -> (f64, Vec<f32>) {
    let MatMulParams { m, n, k, .. } = *prm;
    let (mut a, mut bb) = (data(m * k, 1), data(k * n, 2));
    if prm.half {
        for v in [&mut a, &mut bb] {
            let mut w = vec![0.0; v.len().div_ceil(2)];
            shadeprop::backend::cpu::half::pack_into(v, &mut w);
            *v = w;
        }
    }
    b.create_buffers(&[
        BufferSpec {
            name: "a".into(),
            len: a.len(),
        },
        BufferSpec {
            name: "b".into(),
            len: bb.len(),
        },
        BufferSpec {
            name: "bias".into(),
            len: n,
        },
        BufferSpec {
            name: "c".into(),
            len: m * n,
        },
    ])
    .unwrap();
    b.write(0, 0, &a).unwrap();
    b.write(1, 0, &bb).unwrap();
    let instr = Instr {
        kernel: prm.kernel(),
        p: prm.to_words(),
        ins: vec![
            Slice {
                buf: 0,
                off: 0,
                len: a.len(),
            },
            Slice {
                buf: 1,
                off: 0,
                len: bb.len(),
            },
            Slice {
                buf: 2,
                off: 0,
                len: n,
            },
        ],
        outs: vec![Slice {
            buf: 3,
            off: 0,
            len: m * n,
        }],
    };
    let one = b
        .load(&Program {
            instrs: vec![instr.clone()],
            logits: None,
        })
        .unwrap();
    let many = b
        .load(&Program {
            instrs: vec![instr; reps],
            logits: None,
        })
        .unwrap();
    let g = Globals::default();
    b.run(one, &g).unwrap();
    let c = b.read(3, 0, m * n).unwrap();
    let mut ts = vec![];
    for _ in 0..3 {
        let t0 = Instant::now();
        b.run(many, &g).unwrap();
        b.sync().unwrap();
        ts.push(t0.elapsed().as_secs_f64() / reps as f64);
    }
    ts.sort_by(|x, y| x.partial_cmp(y).unwrap());
    (ts[1], c)
}

/// The value after option `name`, if given.
fn opt(name: &str) -> Option<String> {
    std::env::args().skip_while(|a| a != name).nth(1)
}

/// One measured row of the table.
struct Row {
    shape: String,
    m: usize,
    n: usize,
    k: usize,
    ta: bool,
    tb: bool,
    half: bool,
    backend: String,
    adapter: String,
    gflops: f64,
    ms: f64,
    /// What the result was checked against ("-" for the reference itself).
    checked_against: &'static str,
    /// None when the check passed (or there was none), else what differed.
    mismatch: Option<String>,
}

impl Row {
    fn print(&self) {
        let ms = if self.backend == "CPU reference" {
            format!("{:.2}", self.ms)
        } else {
            format!("{:.3}", self.ms)
        };
        let flag = if self.mismatch.is_some() {
            " (MISMATCH)"
        } else {
            ""
        };
        println!(
            "| {} | {}{flag} | {:.2} | {ms} |",
            self.shape, self.backend, self.gflops
        );
    }
    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "shape": self.shape, "m": self.m, "n": self.n, "k": self.k,
            "ta": self.ta, "tb": self.tb, "half": self.half,
            "backend": self.backend, "adapter": self.adapter,
            "gflops": self.gflops, "ms": self.ms,
            "checked_against": self.checked_against, "mismatch": self.mismatch,
        })
    }
}

/// Write every row so far to `--json FILE`, if given.
fn write_json(path: Option<&std::path::Path>, rows: &[Row]) {
    let Some(p) = path else { return };
    let j = serde_json::json!({
        "threads": rayon::current_num_threads(),
        "rows": rows.iter().map(Row::json).collect::<Vec<_>>(),
    });
    std::fs::write(p, serde_json::to_string_pretty(&j).expect("json"))
        .unwrap_or_else(|e| panic!("--json {}: {e}", p.display()));
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    // `--only TEXT[,TEXT...]`: the shapes whose name contains one of the TEXTs.
    let only: Option<Vec<String>> = opt("--only").map(|v| v.split(',').map(Into::into).collect());
    let sizes: Vec<usize> = opt("--sizes").map_or(vec![], |v| {
        v.split(',')
            .map(|x| {
                x.trim()
                    .parse()
                    .unwrap_or_else(|_| panic!("--sizes: integers, e.g. 512,1024: got {x}"))
            })
            .collect()
    });
    let no_ref_above: Option<usize> =
        opt("--no-reference-above").map(|v| v.parse().expect("--no-reference-above: an integer"));
    let json_path: Option<std::path::PathBuf> = opt("--json").map(Into::into);
    let square_names: Vec<&'static str> = sizes
        .iter()
        .map(|n| &*Box::leak(format!("square {n}").into_boxed_str()))
        .collect();
    let shapes: Vec<(&str, usize, usize, usize, bool, bool)> = {
        let mut v = vec![
            ("W-MLP fwd 128x784 . 784x512", 128, 512, 784, false, false),
            ("W-MLP fwd 128x512 . 512x512", 128, 512, 512, false, false),
            ("W-MLP dX 128x512 . (784x512)^T", 128, 784, 512, false, true),
            ("W-MLP dW (128x784)^T . 128x512", 784, 512, 128, true, false),
            ("W-MLP dW (128x512)^T . 128x512", 512, 512, 128, true, false),
            (
                "W-CNN conv1 fwd 73728x25 . 25x32",
                73728,
                32,
                25,
                false,
                false,
            ),
            (
                "W-CNN conv1 dW (73728x25)^T . 73728x32",
                25,
                32,
                73728,
                true,
                false,
            ),
            (
                "W-CNN conv2 fwd 8192x800 . 800x64",
                8192,
                64,
                800,
                false,
                false,
            ),
            (
                "W-CNN conv2 dW (8192x800)^T . 8192x64",
                800,
                64,
                8192,
                true,
                false,
            ),
            (
                "W-CNN conv2 dX 8192x64 . (800x64)^T",
                8192,
                800,
                64,
                false,
                true,
            ),
            ("square 512", 512, 512, 512, false, false),
            ("square 1024", 1024, 1024, 1024, false, false),
        ];
        if !quick {
            v.push(("square 2048", 2048, 2048, 2048, false, false));
        }
        for (&n, &name) in sizes.iter().zip(&square_names) {
            if !v.iter().any(|s| s.0 == name) {
                v.push((name, n, n, n, false, false));
            }
        }
        v.retain(|s| {
            only.as_ref()
                .is_none_or(|o| o.iter().any(|t| s.0.contains(t.as_str())))
        });
        v
    };
    // Every matmul variant the adapter runs: the subgroup kernel with operands read from
    // textures (where the adapter turns that on) and from buffers, the portable kernel,
    // and on hardware GPUs (or with `--variants all`) each tile shape of the tiled kernel
    // pinned, and the autotuner's pick per product (timed when the product is loaded,
    // before the timed runs).
    let all_variants = opt("--variants").is_some_and(|v| v == "all");
    let mut gpus: Vec<(Gpu, Option<String>)> = vec![];
    match Gpu::with_options(GpuOptions::with_matmul(MatmulSelect::Default)) {
        Ok(g) => {
            let (sg, tex) = (
                g.report().subgroup_size.is_some(),
                g.report().texture_operands,
            );
            let hardware = g.report().device_type != "Cpu";
            gpus.push((g, None));
            for (subgroups, textures) in [(tex, Some(false)), (sg, None)] {
                if subgroups {
                    let g = Gpu::with_options(GpuOptions {
                        subgroups: textures.is_some(),
                        textures,
                        ..GpuOptions::with_matmul(MatmulSelect::Default)
                    })
                    .unwrap();
                    gpus.push((g, None));
                }
            }
            if hardware || all_variants {
                for t in TILES {
                    let v = MatmulVariant::Tiled(t);
                    match Gpu::with_options(GpuOptions::with_matmul(MatmulSelect::Pin(v))) {
                        Ok(g) => gpus.push((g, Some(format!("GPU {v}")))),
                        Err(e) => eprintln!("{v}: {e}"),
                    }
                }
                let g = Gpu::with_options(GpuOptions::with_matmul(MatmulSelect::Tune)).unwrap();
                gpus.push((g, Some("GPU autotuned".into())));
            }
        }
        Err(e) => eprintln!("no GPU: {e}"),
    }
    println!("| shape | backend | GFLOP/s | ms |");
    println!("|---|---|---|---|");
    let halves: &[bool] = if std::env::args().any(|a| a == "--no-half") {
        &[false]
    } else {
        &[false, true]
    };
    let mut rows: Vec<Row> = vec![];
    for (&(name, m, n, k, ta, tb), &half) in shapes
        .iter()
        .flat_map(|s| halves.iter().map(move |h| (s, h)))
    {
        let prm = MatMulParams {
            m,
            n,
            k,
            ta,
            tb,
            half,
            ..Default::default()
        };
        let name = &if half {
            format!("{name} f16 operands")
        } else {
            name.to_string()
        };
        let flop = 2.0 * (m * n * k) as f64;
        let row = |backend: String, adapter: String, t: f64| Row {
            shape: name.clone(),
            m,
            n,
            k,
            ta,
            tb,
            half,
            backend,
            adapter,
            gflops: flop / t / 1e9,
            ms: t * 1e3,
            checked_against: "-",
            mismatch: None,
        };
        let reference = no_ref_above.is_none_or(|lim| m * n * k <= lim.pow(3));
        let want = if reference {
            let mut cpu = Cpu::new();
            let (tc, want) = time(&mut cpu, &prm, 1);
            let r = row("CPU reference".into(), "host".into(), tc);
            r.print();
            rows.push(r);
            Some(want)
        } else {
            None
        };
        let mut fast = Cpu::fast();
        let reps = ((0.2 / (flop / 100e9)) as usize).clamp(3, 200);
        let (tf, fast_c) = time(&mut fast, &prm, reps);
        let mut r = row(
            format!(
                "CPU fast (gemm crate, {} threads)",
                rayon::current_num_threads()
            ),
            "host".into(),
            tf,
        );
        if let Some(w) = &want {
            r.checked_against = "CPU reference";
            r.mismatch = compare(name, &fast_c, w, 1e-4, 1e-3).err();
        }
        r.print();
        rows.push(r);
        // The GPU's reference: the naive CPU one, or above the limit the fast CPU.
        let (want, against) = match want {
            Some(w) => (w, "CPU reference"),
            None => (fast_c, "CPU fast"),
        };
        // Whether the default GPU reads this product's operands from textures; where it
        // does not, the buffers-only variant would run the same kernel and is left out.
        let tex = gpus
            .first()
            .is_some_and(|(g, _)| g.texture_operands_for(prm.kernel(), &prm.to_words()));
        for (g, label) in gpus.iter_mut() {
            let r = g.report();
            if label.is_none() && !tex && r.subgroup_size.is_some() && !r.texture_operands {
                continue;
            }
            let reps = ((0.2 / (flop / 20e9)) as usize).clamp(3, 200);
            let (t, got) = time(g, &prm, reps);
            let variant = match (
                label.as_deref(),
                g.report().subgroup_size,
                g.report().texture_operands,
            ) {
                (Some("GPU autotuned"), _, _) => {
                    // This product's class (its K part aside: a split product is classed by
                    // its slice length).
                    let class = shape_class(&prm);
                    let mn = class.rsplit_once(" k").map_or(class.as_str(), |c| c.0);
                    let picks: Vec<String> = g
                        .matmul_choices()
                        .iter()
                        .filter(|c| c.class.rsplit_once(" k").is_some_and(|c| c.0 == mn))
                        .map(|c| c.variant.to_string())
                        .collect();
                    format!("GPU autotuned: {}", picks.join(", "))
                }
                (Some(l), _, _) => l.to_string(),
                (None, Some(_), true) if tex => "GPU subgroup, operands from textures".into(),
                (None, Some(_), _) => "GPU subgroup".into(),
                (None, None, _) => "GPU portable".into(),
            };
            let adapter = g.report().name.clone();
            let mut r = row(format!("{variant} ({adapter})"), adapter, t);
            r.checked_against = against;
            r.mismatch = compare(name, &got, &want, 1e-4, 1e-3).err();
            r.print();
            rows.push(r);
        }
        write_json(json_path.as_deref(), &rows);
    }
    write_json(json_path.as_deref(), &rows);
    let bad: Vec<&Row> = rows.iter().filter(|r| r.mismatch.is_some()).collect();
    if !bad.is_empty() {
        for r in &bad {
            eprintln!(
                "{} on {} differs from the {}: {}",
                r.shape,
                r.backend,
                r.checked_against,
                r.mismatch.as_deref().unwrap_or("")
            );
        }
        std::process::exit(1);
    }
}

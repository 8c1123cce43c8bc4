//! Learning curves (plotters): training vs validation loss and accuracy (regression: mean
//! absolute error) per epoch, the validation metrics computed from predictions when the
//! run recorded them, with
//! the best epoch and the early-stopping epoch marked, as PNG and SVG; and the preview
//! grid of augmented images.

use std::path::Path;
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::prelude::*;

use super::history::History;
use crate::error::{Error, Result};

/// DejaVu Sans (Bitstream Vera licence, `assets/fonts/LICENSE-DejaVu`), embedded so that a
/// plot never depends on the fonts a system has.
const EMBEDDED_FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// Register the labels' font once: `SHADEPROP_FONT` (a TrueType file) when set and
/// readable, else the embedded DejaVu Sans.
pub(crate) fn ensure_font() -> std::result::Result<(), String> {
    static FONT: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    FONT.get_or_init(|| {
        let custom = std::env::var("SHADEPROP_FONT").ok().and_then(|p| {
            std::fs::read(&p)
                .ok()
                .map(|b| -> &'static [u8] { Box::leak(b.into_boxed_slice()) })
        });
        let bytes = custom.unwrap_or(EMBEDDED_FONT);
        plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
            .map_err(|_| "the font is not a usable TrueType font (SHADEPROP_FONT?)".to_string())
    })
    .clone()
}

/// (legend label, points, colour)
type Series = (String, Vec<(f64, f64)>, RGBColor);

/// The validation scores from predictions that the third panel shows when recorded (all
/// at most 1, so they share an axis; MSE and RMSE are in the target's units and stay in
/// the metrics files).
const TASK_METRICS: [&str; 6] = [
    "val_precision",
    "val_recall",
    "val_f1_score",
    "val_auc",
    "val_sparse_top_k_categorical_accuracy",
    "val_r2_score",
];

const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// How a panel's y axis is scaled.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Scale {
    Linear,
    /// log₁₀ when the panel's positive values span more than this factor (and linear
    /// otherwise).
    LogAbove(f64),
}

/// One panel: a title, its series (metric key, legend label, colour) and its y scale.
struct Panel<'a> {
    title: &'a str,
    keys: Vec<(&'a str, &'a str, RGBColor)>,
    scale: Scale,
}

/// A linear axis over `range` with its tick marks (and labels) at `ticks` only, no light
/// mesh lines: integer epochs, powers of ten. (plotters' `with_key_points` on an `f64`
/// range loses its label formatter.)
pub(crate) struct Ticked {
    pub(crate) range: std::ops::Range<f64>,
    pub(crate) ticks: Vec<f64>,
}

impl Ranged for Ticked {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;
    fn map(&self, v: &f64, limit: (i32, i32)) -> i32 {
        let (lo, hi) = (self.range.start, self.range.end);
        let t = if hi > lo { (v - lo) / (hi - lo) } else { 0.5 };
        limit.0 + ((limit.1 - limit.0) as f64 * t + 1e-3).floor() as i32
    }
    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            vec![]
        } else {
            self.ticks.clone()
        }
    }
    fn range(&self) -> std::ops::Range<f64> {
        self.range.clone()
    }
}

/// The x-axis ticks of `n` epochs (0-based, 0 … n − 1): integers only, every `step`
/// epochs with `step` the first of 1, 2, 5, 10, 20, 50, … that leaves at most 10 ticks.
pub(crate) fn epoch_ticks(n: u64) -> Vec<f64> {
    let last = n.max(1) - 1;
    let step = (0u32..)
        .map(|k| [1u64, 2, 5][k as usize % 3] * 10u64.pow(k / 3))
        .find(|s| last / s < 10)
        .unwrap_or(1);
    (0..=last / step).map(|i| (i * step) as f64).collect()
}

/// About `target` ticks on [lo, hi] at multiples of a 1-2-5 step (linear axes).
pub(crate) fn nice_ticks(lo: f64, hi: f64, target: usize) -> Vec<f64> {
    let span = (hi - lo).max(f64::MIN_POSITIVE);
    let raw = span / target.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| span / s <= target as f64)
        .unwrap_or(10.0 * mag);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    (first..=last).map(|i| i as f64 * step).collect()
}

/// The ticks of a log₁₀ axis over exponents [lo, hi] (the axis holds log₁₀ of the values):
/// the powers of ten inside it (every second or third one when there are many); when
/// fewer than two fall inside (a range within a decade or two), 1, 2 and 5 times them,
/// then every integer mantissa.
pub(crate) fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let (a, b) = (lo.floor() as i64, hi.ceil() as i64);
    let inside = |mantissas: &[f64]| -> Vec<f64> {
        (a..=b)
            .flat_map(|k| {
                mantissas
                    .iter()
                    .map(move |m| (m * 10f64.powi(k as i32)).log10())
            })
            .filter(|t| *t >= lo - 1e-9 && *t <= hi + 1e-9)
            .collect()
    };
    let decades = inside(&[1.0]);
    if decades.len() >= 2 {
        let step = (decades.len() - 1) / 8 + 1;
        return decades.into_iter().step_by(step).collect();
    }
    let t = inside(&[1.0, 2.0, 5.0]);
    if t.len() >= 2 {
        return t;
    }
    inside(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0])
}

/// The label of the log-axis tick at exponent `x`: its value 10^x, shortest (`0.001`,
/// `20`), in scientific notation below 1e-4 and from 1e5 (`1e-6`, `2e5`).
pub(crate) fn log_label(x: f64) -> String {
    let v = 10f64.powf(x) as f32;
    if v != 0.0 && !(1e-4..1e5).contains(&v.abs()) {
        format!("{v:e}")
    } else {
        v.to_string()
    }
}

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    h: &History,
    panels_spec: &[Panel],
) -> std::result::Result<(), String>
where
    DB::ErrorType: 'static,
{
    let e = |x: DrawingAreaErrorKind<DB::ErrorType>| x.to_string();
    root.fill(&WHITE).map_err(e)?;
    let n = (h.epochs.iter().map(|e| e.epoch + 1).max().unwrap_or(1)).max(1);
    let ticks = epoch_ticks(n);
    let cols = panels_spec.len().min(2);
    let rows = panels_spec.len().div_ceil(2);
    let panels = root.split_evenly((rows, cols));
    for (panel, spec) in panels.iter().zip(panels_spec) {
        let series: Vec<Series> = spec
            .keys
            .iter()
            .map(|&(k, label, c)| {
                (
                    label.to_string(),
                    h.epochs
                        .iter()
                        .filter_map(|ep| {
                            ep.get(k)
                                .filter(|v| v.is_finite())
                                .map(|v| (ep.epoch as f64, v))
                        })
                        .collect(),
                    c,
                )
            })
            .collect();
        // A log axis when the panel asks for one and its positive values span more than
        // its factor; values ≤ 0 cannot be drawn on it and are left out (said in the
        // legend).
        let positive: Vec<f64> = series
            .iter()
            .flat_map(|(_, v, _)| v.iter().map(|p| p.1))
            .filter(|v| *v > 0.0)
            .collect();
        let (pmin, pmax) = positive
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
                (a.min(v), b.max(v))
            });
        let log = match spec.scale {
            Scale::LogAbove(f) => !positive.is_empty() && pmax / pmin > f,
            Scale::Linear => false,
        };
        let series: Vec<Series> = series
            .into_iter()
            .map(|(label, pts, c)| {
                if !log {
                    return (label, pts, c);
                }
                let kept: Vec<(f64, f64)> = pts
                    .iter()
                    .filter(|p| p.1 > 0.0)
                    .map(|&(x, y)| (x, y.log10()))
                    .collect();
                let dropped = pts.len() - kept.len();
                let label = if dropped > 0 {
                    let s = if dropped == 1 { "value" } else { "values" };
                    format!("{label} ({dropped} {s} ≤ 0 not shown)")
                } else {
                    label
                };
                (label, kept, c)
            })
            .collect();
        let all: Vec<f64> = series
            .iter()
            .flat_map(|(_, v, _)| v.iter().map(|p| p.1))
            .collect();
        let (lo, hi) = all
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
                (a.min(v), b.max(v))
            });
        // A flat series gets a range around its value (a tenth of it, at least 1e-3;
        // a tenth of a decade on a log axis).
        let (lo, hi) = if !lo.is_finite() {
            (0.0, 1.0)
        } else if hi - lo > 1e-12 * lo.abs().max(1e-12) {
            (lo, hi)
        } else if log {
            (lo - 0.1, hi + 0.1)
        } else {
            let h = (lo.abs() * 0.05).max(5e-4);
            (lo - h, hi + h)
        };
        let pad = (hi - lo) * 0.05;
        let (y0, y1) = (lo - pad, hi + pad);
        let yticks = if log {
            log_ticks(y0, y1)
        } else {
            nice_ticks(y0, y1, 6)
        };
        // As many decimals as the tick step needs.
        let decimals = match yticks.as_slice() {
            [a, b, ..] => (-(b - a).log10().floor()).max(0.0) as usize,
            _ => 3,
        };
        let title = if log {
            format!("{} (log scale)", spec.title)
        } else {
            spec.title.to_string()
        };
        let mut chart = ChartBuilder::on(panel)
            .caption(title, ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(56)
            .build_cartesian_2d(
                Ticked {
                    range: -0.5..n as f64 - 0.5,
                    ticks: ticks.clone(),
                },
                Ticked {
                    range: y0..y1,
                    ticks: yticks,
                },
            )
            .map_err(e)?;
        let ylabel = |y: &f64| {
            if log {
                log_label(*y)
            } else {
                format!("{y:.decimals$}")
            }
        };
        chart
            .configure_mesh()
            .x_desc("epoch (0-based, as in metrics.csv)")
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&ylabel)
            .draw()
            .map_err(e)?;
        for (k, pts, c) in series {
            if pts.is_empty() {
                continue;
            }
            chart
                .draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))
                .map_err(e)?
                .label(k)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2))
                });
            chart
                .draw_series(pts.iter().map(|&p| Circle::new(p, 3, c.filled())))
                .map_err(e)?;
        }
        for (ep, label, color) in [
            (h.best_epoch, "best", GREEN),
            (h.stopped_epoch, "stopped", BLACK),
        ] {
            if let Some(ep) = ep {
                let x = ep as f64;
                chart
                    .draw_series(LineSeries::new(
                        vec![(x, y0), (x, y1)],
                        color.stroke_width(1),
                    ))
                    .map_err(e)?
                    .label(format!("{label} (epoch {ep})"))
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(1))
                    });
            }
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(e)?;
    }
    root.present().map_err(e)
}

/// The panels `h` gets: loss; accuracy (regression: mean absolute error); when recorded,
/// the validation scores from predictions; and when recorded, the learning rate with the
/// pre-clip gradient norm (log scale when they span more than a decade).
fn panels(h: &History) -> Vec<Panel<'static>> {
    let recorded = |k: &str| h.epochs.iter().any(|e| e.get(k).is_some());
    // Regression records the mean absolute error where classification has accuracy.
    let second = if recorded("mae") {
        ("mean absolute error", "mae", "val_mae")
    } else {
        ("accuracy", "accuracy", "val_accuracy")
    };
    let mut p = vec![
        Panel {
            title: "loss",
            keys: vec![("loss", "loss", BLUE), ("val_loss", "val_loss", RED)],
            // A loss falling over orders of magnitude reads better on a log axis.
            scale: Scale::LogAbove(100.0),
        },
        Panel {
            title: second.0,
            keys: vec![(second.1, second.1, BLUE), (second.2, second.2, RED)],
            scale: Scale::Linear,
        },
    ];
    // The validation metrics computed from predictions (precision, recall, F1, AUC, R², …),
    // when the run recorded any.
    let extra: Vec<(&str, &str, RGBColor)> = TASK_METRICS
        .iter()
        .filter(|k| recorded(k))
        .zip(PALETTE)
        .map(|(k, c)| (*k, *k, c))
        .collect();
    if !extra.is_empty() {
        p.push(Panel {
            title: "validation metrics",
            keys: extra,
            scale: Scale::Linear,
        });
    }
    if recorded("lr") || recorded("grad_norm") {
        p.push(Panel {
            title: "learning rate and gradient norm",
            keys: vec![
                ("lr", "lr", PALETTE[2]),
                ("grad_norm", "grad_norm (pre-clip, last step)", PALETTE[4]),
            ],
            scale: Scale::LogAbove(10.0),
        });
    }
    p
}

/// Write the learning curves of `h` to `png` and `svg`: loss, accuracy (or MAE), when
/// recorded the validation metrics from predictions, and the learning rate with the
/// pre-clip gradient norm, one panel each (two columns); the x axis is the 0-based epoch
/// of the history and the metrics files, with integer ticks. Each file is written
/// atomically (a temporary file in its folder, renamed over it), so a reader — or a run
/// killed while drawing — never leaves a half-drawn plot.
pub fn learning_curves(h: &History, png: &Path, svg: &Path) -> Result<()> {
    ensure_font().map_err(|what| Error::Plot {
        path: png.to_path_buf(),
        what,
    })?;
    let spec = panels(h);
    let size = (1100, 420 * spec.len().div_ceil(2) as u32);
    crate::fs::write_atomic_with(png, |tmp| {
        draw(BitMapBackend::new(tmp, size).into_drawing_area(), h, &spec).map_err(|what| {
            Error::Plot {
                path: png.to_path_buf(),
                what,
            }
        })
    })?;
    let mut text = String::new();
    draw(
        SVGBackend::with_string(&mut text, size).into_drawing_area(),
        h,
        &spec,
    )
    .map_err(|what| Error::Plot {
        path: svg.to_path_buf(),
        what,
    })?;
    crate::fs::write_atomic(svg, text.as_bytes())
}

/// Write a PNG grid: the first row `before`, the second `after` (each `n` single-channel
/// `hw` = (h, w) images in [0, 1] after undoing `standardize`), 2-pixel gaps, scaled ×`zoom`.
pub fn preview_png(
    path: &Path,
    before: &[f32],
    after: &[f32],
    n: usize,
    hw: (usize, usize),
    zoom: u32,
    standardize: Option<(f32, f32)>,
) -> Result<()> {
    let (h, w) = hw;
    let (gw, gh) = ((n * (w + 2)) as u32 * zoom, (2 * (h + 2)) as u32 * zoom);
    let mut img = image::GrayImage::from_pixel(gw, gh, image::Luma([64]));
    for (row, data, std) in [(0, before, None), (1, after, standardize)] {
        for k in 0..n {
            for y in 0..h {
                for x in 0..w {
                    let mut v = data[k * h * w + y * w + x];
                    if let Some((m, s)) = std {
                        v = v * s + m;
                    }
                    let px = image::Luma([(v.clamp(0.0, 1.0) * 255.0).round() as u8]);
                    for dy in 0..zoom {
                        for dx in 0..zoom {
                            let gx = (k * (w + 2) + 1 + x) as u32 * zoom + dx;
                            let gy = (row * (h + 2) + 1 + y) as u32 * zoom + dy;
                            img.put_pixel(gx, gy, px);
                        }
                    }
                }
            }
        }
    }
    img.save(path).map_err(|e| Error::Plot {
        path: path.to_path_buf(),
        what: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_ticks_are_integers_at_a_1_2_5_step() {
        assert_eq!(epoch_ticks(1), [0.0]);
        assert_eq!(epoch_ticks(3), [0.0, 1.0, 2.0]);
        // 10 epochs (0 … 9): every epoch; 11 (0 … 10): every second.
        assert_eq!(epoch_ticks(10).len(), 10);
        assert_eq!(epoch_ticks(11), [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        // 40 epochs (0 … 39): every 5th; 200: every 20th; 1000: every 100th.
        assert_eq!(
            epoch_ticks(40),
            [0.0, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0, 35.0]
        );
        assert_eq!(epoch_ticks(200)[1], 20.0);
        assert_eq!(epoch_ticks(1000)[1], 100.0);
        for n in 1..500 {
            let t = epoch_ticks(n);
            assert!(t.len() <= 10 && t.iter().all(|x| x.fract() == 0.0 && *x < n as f64));
        }
    }

    #[test]
    fn log_axis_ticks_are_powers_of_ten() {
        assert_eq!(log_ticks(-3.2, 0.4), [-3.0, -2.0, -1.0, 0.0]);
        // Within a decade: 1-2-5 mantissas (0.01 … 0.05: 0.01, 0.02, 0.05).
        let labels = |lo: f64, hi: f64| -> Vec<String> {
            log_ticks(lo.log10(), hi.log10())
                .into_iter()
                .map(log_label)
                .collect()
        };
        assert_eq!(labels(0.01, 0.05), ["0.01", "0.02", "0.05"]);
        assert_eq!(labels(0.011, 0.049), ["0.02", "0.03", "0.04"]);
        assert_eq!(labels(1e-7, 1e-5), ["1e-7", "1e-6", "1e-5"]);
        assert_eq!(labels(1.0, 1000.0), ["1", "10", "100", "1000"]);
        let t = nice_ticks(0.0, 1.0, 6);
        assert_eq!(t.len(), 6);
        assert!((t[1] - 0.2).abs() < 1e-12 && (t[5] - 1.0).abs() < 1e-12);
    }

    /// Curves of awkward histories are drawn (no error): a rate of 0 and a NaN gradient
    /// norm on the log panel, a missing validation loss, a flat metric, one epoch, none;
    /// each file is replaced whole, no temporary file left beside it.
    #[test]
    fn awkward_histories_are_drawn_whole() {
        use super::super::history::EpochLog;
        let d = std::env::temp_dir().join(format!("shadeprop-curves-{}", std::process::id()));
        let epoch = |e: u64, kv: &[(&str, f64)]| EpochLog {
            epoch: e,
            values: kv.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        };
        let mut long = History::default();
        for e in 0..40u64 {
            let x = e as f64;
            long.epochs.push(epoch(
                e,
                &[
                    ("loss", 1.0 / (x + 1.0)),
                    ("accuracy", 0.9),
                    ("lr", if e == 0 { 0.0 } else { 0.1 * 0.9f64.powf(x) }),
                    ("grad_norm", if e == 3 { f64::NAN } else { 2.0 }),
                    ("val_auc", 0.9),
                ],
            ));
            if e != 5 {
                long.epochs[e as usize]
                    .values
                    .insert("val_loss".into(), 1.2 / (x + 1.0));
            }
        }
        long.best_epoch = Some(30);
        long.stopped_epoch = Some(39);
        let one = History {
            epochs: vec![epoch(0, &[("loss", 0.5), ("lr", 0.0), ("grad_norm", 0.0)])],
            ..Default::default()
        };
        for h in [long, one, History::default()] {
            let _ = std::fs::remove_dir_all(&d);
            std::fs::create_dir_all(&d).unwrap();
            learning_curves(&h, &d.join("curves.png"), &d.join("curves.svg")).unwrap();
            assert_eq!(
                &std::fs::read(d.join("curves.png")).unwrap()[..8],
                b"\x89PNG\r\n\x1a\n"
            );
            let svg = std::fs::read_to_string(d.join("curves.svg")).unwrap();
            assert!(svg.contains("<svg"));
            let mut names: Vec<String> = std::fs::read_dir(&d)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            assert_eq!(names, ["curves.png", "curves.svg"]);
        }
        std::fs::remove_dir_all(&d).unwrap();
    }
}

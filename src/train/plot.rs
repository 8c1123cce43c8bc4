//! Learning curves (plotters): training vs validation loss and accuracy (regression: mean
//! absolute error) per epoch, the validation metrics computed from predictions when the
//! run recorded them, with
//! the best epoch and the early-stopping epoch marked, as PNG and SVG; and the preview
//! grid of augmented images.

use std::path::Path;
use std::sync::OnceLock;

use plotters::coord::Shift;
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

/// (metric, points, colour)
type Series<'a> = (&'a str, Vec<(f64, f64)>, RGBColor);

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

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    h: &History,
) -> std::result::Result<(), String>
where
    DB::ErrorType: 'static,
{
    let e = |x: DrawingAreaErrorKind<DB::ErrorType>| x.to_string();
    root.fill(&WHITE).map_err(e)?;
    let n = h.epochs.len().max(1) as f64;
    // Regression records the mean absolute error where classification has accuracy.
    let second = if h.epochs.iter().any(|e| e.get("mae").is_some()) {
        ("mean absolute error", "mae", "val_mae")
    } else {
        ("accuracy", "accuracy", "val_accuracy")
    };
    let mut panels_spec: Vec<(&str, Vec<(&str, RGBColor)>)> = vec![
        ("loss", vec![("loss", BLUE), ("val_loss", RED)]),
        (second.0, vec![(second.1, BLUE), (second.2, RED)]),
    ];
    // The validation metrics computed from predictions (precision, recall, F1, AUC, R², …),
    // when the run recorded any: a third panel.
    let extra: Vec<(&str, RGBColor)> = TASK_METRICS
        .iter()
        .filter(|k| h.epochs.iter().any(|e| e.get(k).is_some()))
        .zip(PALETTE)
        .map(|(k, c)| (*k, c))
        .collect();
    if !extra.is_empty() {
        panels_spec.push(("validation metrics", extra));
    }
    let panels = root.split_evenly((1, panels_spec.len()));
    for (panel, (title, keys)) in panels.iter().zip(panels_spec) {
        let series: Vec<Series> = keys
            .into_iter()
            .map(|(k, c)| {
                (
                    k,
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
        let all: Vec<f64> = series
            .iter()
            .flat_map(|(_, v, _)| v.iter().map(|p| p.1))
            .collect();
        let (lo, hi) = all
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
                (a.min(v), b.max(v))
            });
        let (lo, hi) = if lo.is_finite() {
            (lo, hi.max(lo + 1e-6))
        } else {
            (0.0, 1.0)
        };
        let pad = (hi - lo) * 0.05;
        let mut chart = ChartBuilder::on(panel)
            .caption(title, ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(56)
            .build_cartesian_2d(-0.5..n - 0.5, (lo - pad)..(hi + pad))
            .map_err(e)?;
        chart
            .configure_mesh()
            .x_desc("epoch (0-based, as in metrics.csv)")
            .x_label_formatter(&|x| format!("{x:.0}"))
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
                        vec![(x, lo - pad), (x, hi + pad)],
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

/// Whether `h` recorded any validation metric from predictions.
fn has_task_metrics(h: &History) -> bool {
    TASK_METRICS
        .iter()
        .any(|k| h.epochs.iter().any(|e| e.get(k).is_some()))
}

/// Write the learning curves of `h` to `png` and `svg`: loss, accuracy (or MAE) and, when
/// recorded, the validation metrics from predictions, one panel each.
pub fn learning_curves(h: &History, png: &Path, svg: &Path) -> Result<()> {
    ensure_font().map_err(|what| Error::Plot {
        path: png.to_path_buf(),
        what,
    })?;
    let size = (if has_task_metrics(h) { 1500 } else { 1100 }, 420);
    draw(BitMapBackend::new(png, size).into_drawing_area(), h).map_err(|what| Error::Plot {
        path: png.to_path_buf(),
        what,
    })?;
    draw(SVGBackend::new(svg, size).into_drawing_area(), h).map_err(|what| Error::Plot {
        path: svg.to_path_buf(),
        what,
    })
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

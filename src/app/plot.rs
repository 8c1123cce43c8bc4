//! The plots of a sweep report: validation accuracy against a swept parameter, and the
//! validation curves of the best trials.

use std::path::Path;

use plotters::prelude::*;

use crate::error::{Error, Result};

fn plot_err(path: &Path) -> impl Fn(String) -> Error + '_ {
    move |what| Error::Plot {
        path: path.to_path_buf(),
        what,
    }
}

/// The sweep's objective (`ylabel`: validation accuracy or MAE) against one swept
/// parameter (log₁₀ axis when the values are positive and span more than a decade).
pub(super) fn scatter(path: &Path, key: &str, ylabel: &str, pts: &[(f64, f64)]) -> Result<()> {
    crate::train::plot::ensure_font().map_err(plot_err(path))?;
    let lo = pts.iter().map(|p| p.0).fold(f64::INFINITY, f64::min);
    let hi = pts.iter().map(|p| p.0).fold(f64::NEG_INFINITY, f64::max);
    let log = lo > 0.0 && hi / lo > 10.0;
    let xs: Vec<(f64, f64)> = pts
        .iter()
        .map(|&(x, y)| (if log { x.log10() } else { x }, y))
        .collect();
    let (x0, x1) = xs
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
            (a.min(p.0), b.max(p.0))
        });
    let (y0, y1) = xs
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
            (a.min(p.1), b.max(p.1))
        });
    let pad = ((x1 - x0) * 0.05).max(1e-3);
    let ypad = ((y1 - y0) * 0.1).max(1e-3);
    let e = |x: String| plot_err(path)(x);
    let root = BitMapBackend::new(path, (640, 420)).into_drawing_area();
    root.fill(&WHITE).map_err(|x| e(x.to_string()))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("{ylabel} vs {key}"), ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(x0 - pad..x1 + pad, (y0 - ypad)..(y1 + ypad))
        .map_err(|x| e(x.to_string()))?;
    chart
        .configure_mesh()
        .x_desc(if log {
            format!("log10({key})")
        } else {
            key.to_string()
        })
        .y_desc(ylabel)
        .draw()
        .map_err(|x| e(x.to_string()))?;
    chart
        .draw_series(xs.iter().map(|&p| Circle::new(p, 5, BLUE.filled())))
        .map_err(|x| e(x.to_string()))?;
    root.present().map_err(|x| e(x.to_string()))
}

/// The sweep's objective (`ylabel`) per epoch (0-based) of a few trials.
pub(super) fn line_chart(
    path: &Path,
    ylabel: &str,
    curves: &[(String, Vec<(f64, f64)>)],
) -> Result<()> {
    crate::train::plot::ensure_font().map_err(plot_err(path))?;
    let e = |x: String| plot_err(path)(x);
    let all = curves.iter().flat_map(|c| c.1.iter());
    let (mut x1, mut y0, mut y1) = (1f64, f64::INFINITY, f64::NEG_INFINITY);
    for &(x, y) in all {
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    if !y0.is_finite() {
        return Ok(());
    }
    let root = BitMapBackend::new(path, (720, 440)).into_drawing_area();
    root.fill(&WHITE).map_err(|x| e(x.to_string()))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("{ylabel} of the best trials"), ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(0f64..x1 + 1.0, (y0 - 0.005)..(y1 + 0.005))
        .map_err(|x| e(x.to_string()))?;
    chart
        .configure_mesh()
        .x_desc("epoch (0-based, as in metrics.csv)")
        .y_desc(ylabel)
        .draw()
        .map_err(|x| e(x.to_string()))?;
    let colors = [BLUE, RED, GREEN];
    for (i, (label, pts)) in curves.iter().enumerate() {
        let c = colors[i % 3];
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), c.stroke_width(2)))
            .map_err(|x| e(x.to_string()))?
            .label(label.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], c));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerRight)
        .draw()
        .map_err(|x| e(x.to_string()))?;
    root.present().map_err(|x| e(x.to_string()))
}

//! The plots of a sweep report: the validation score against a swept parameter (coloured
//! by a second one), and the validation curves of the best trials.

use std::path::Path;

use plotters::prelude::*;

use crate::error::{Error, Result};

fn plot_err(path: &Path) -> impl Fn(String) -> Error + '_ {
    move |what| Error::Plot {
        path: path.to_path_buf(),
        what,
    }
}

/// The points of a scatter plot coloured by a second swept field: its name, each point's
/// value of it (as the trial records it), and whether that field was drawn log-uniformly
/// (a gradient over many numeric values is then spread over its logarithm).
pub(super) struct Colour<'a> {
    pub key: &'a str,
    pub values: Vec<String>,
    pub log: bool,
}

/// Viridis at 5 stops: a colour scale that stays ordered in grey and for colour-blind
/// readers.
const VIRIDIS: [(f64, f64, f64); 5] = [
    (68.0, 1.0, 84.0),
    (59.0, 82.0, 139.0),
    (33.0, 145.0, 140.0),
    (94.0, 201.0, 98.0),
    (253.0, 231.0, 37.0),
];

/// Viridis at `t` in [0, 1].
fn viridis(t: f64) -> RGBColor {
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    } * 4.0;
    let i = (t.floor() as usize).min(3);
    let f = t - i as f64;
    let (a, b) = (VIRIDIS[i], VIRIDIS[i + 1]);
    let mix = |x: f64, y: f64| (x + (y - x) * f).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// Distinct values up to which a colouring is one colour per value (beyond: a gradient,
/// when the values are numbers).
const MAX_GROUPS: usize = 8;

/// Each point's colour, and the legend: one entry per value (at most [`MAX_GROUPS`]
/// values, or values that are not all numbers), else a viridis gradient over the numeric
/// values (their logarithm when `log` and all positive) with its lowest, middle and
/// highest values in the legend. Values in the legend are ordered as numbers when they
/// all are, else as text.
pub(super) fn colouring(c: &Colour) -> (Vec<RGBColor>, Vec<(String, RGBColor)>) {
    let nums: Option<Vec<f64>> = c.values.iter().map(|v| v.parse::<f64>().ok()).collect();
    let mut distinct: Vec<&String> = c.values.iter().collect();
    distinct.sort_by(|a, b| match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => x.total_cmp(&y),
        _ => a.cmp(b),
    });
    distinct.dedup();
    match nums {
        Some(nums) if distinct.len() > MAX_GROUPS => {
            let log = c.log && nums.iter().all(|v| *v > 0.0);
            let f = |v: f64| if log { v.log10() } else { v };
            let (lo, hi) = nums
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
                    (a.min(f(v)), b.max(f(v)))
                });
            let t = |v: f64| {
                if hi > lo {
                    (f(v) - lo) / (hi - lo)
                } else {
                    0.5
                }
            };
            let colours = nums.iter().map(|&v| viridis(t(v))).collect();
            let mid = if log {
                10f64.powf((lo + hi) / 2.0)
            } else {
                (lo + hi) / 2.0
            };
            let inv = |x: f64| if log { 10f64.powf(x) } else { x };
            // 3 significant digits: a legend to read, not the trials' values.
            let sig3 = |v: f64| {
                if v == 0.0 || !v.is_finite() {
                    return v;
                }
                let p = 10f64.powi(2 - v.abs().log10().floor() as i32);
                if p.is_finite() {
                    (v * p).round() / p
                } else {
                    v
                }
            };
            let show = |v: f64| crate::train::history::shortest(sig3(v));
            let legend = vec![
                (format!("{} = {}", c.key, show(inv(lo))), viridis(0.0)),
                (format!("{} = {}", c.key, show(mid)), viridis(0.5)),
                (format!("{} = {}", c.key, show(inv(hi))), viridis(1.0)),
            ];
            (colours, legend)
        }
        _ => {
            // One colour per value, spread over the scale (ordered values, ordered colours).
            let at = |i: usize| viridis(i as f64 / (distinct.len().max(2) - 1) as f64 * 0.9);
            let colours = c
                .values
                .iter()
                .map(|v| at(distinct.iter().position(|d| *d == v).unwrap_or(0)))
                .collect();
            let legend = distinct
                .iter()
                .enumerate()
                .map(|(i, v)| (format!("{} = {v}", c.key), at(i)))
                .collect();
            (colours, legend)
        }
    }
}

/// The sweep's objective (`ylabel`: validation accuracy or MAE) against one swept field
/// `key`, on a log₁₀ x axis when `log_x` (and every value is positive); with `colour`,
/// the points are coloured by a second swept field, named in the legend.
pub(super) fn scatter(
    path: &Path,
    key: &str,
    ylabel: &str,
    log_x: bool,
    pts: &[(f64, f64)],
    colour: Option<&Colour>,
) -> Result<()> {
    use crate::train::plot::{Ticked, log_label, log_ticks, nice_ticks};
    crate::train::plot::ensure_font().map_err(plot_err(path))?;
    let log = log_x && pts.iter().all(|p| p.0 > 0.0);
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
    let pad = ((x1 - x0) * 0.05).max(if log { 0.05 } else { 1e-3 });
    let ypad = ((y1 - y0) * 0.1).max(1e-3);
    let (x0, x1, y0, y1) = (x0 - pad, x1 + pad, y0 - ypad, y1 + ypad);
    let xticks = if log {
        log_ticks(x0, x1)
    } else {
        nice_ticks(x0, x1, 6)
    };
    let yticks = nice_ticks(y0, y1, 6);
    let decimals = |t: &[f64]| match t {
        [a, b, ..] => (-(b - a).log10().floor()).max(0.0) as usize,
        _ => 3,
    };
    let (xd, yd) = (decimals(&xticks), decimals(&yticks));
    let (colours, legend) = match colour {
        Some(c) => colouring(c),
        None => (vec![BLUE; pts.len()], vec![]),
    };
    let e = |x: String| plot_err(path)(x);
    let root = BitMapBackend::new(path, (720, 460)).into_drawing_area();
    root.fill(&WHITE).map_err(|x| e(x.to_string()))?;
    let caption = match colour {
        Some(c) => format!("{ylabel} vs {key} (colour: {})", c.key),
        None => format!("{ylabel} vs {key}"),
    };
    let mut chart = ChartBuilder::on(&root)
        .caption(caption, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(
            Ticked {
                range: x0..x1,
                ticks: xticks,
            },
            Ticked {
                range: y0..y1,
                ticks: yticks,
            },
        )
        .map_err(|x| e(x.to_string()))?;
    let xlabel = |x: &f64| {
        if log {
            log_label(*x)
        } else {
            format!("{x:.xd$}")
        }
    };
    chart
        .configure_mesh()
        .x_desc(if log {
            format!("{key} (log scale)")
        } else {
            key.to_string()
        })
        .y_desc(ylabel)
        .x_label_formatter(&xlabel)
        .y_label_formatter(&|y| format!("{y:.yd$}"))
        .draw()
        .map_err(|x| e(x.to_string()))?;
    chart
        .draw_series(
            xs.iter()
                .zip(&colours)
                .map(|(&p, c)| Circle::new(p, 5, c.filled())),
        )
        .map_err(|x| e(x.to_string()))?;
    if !legend.is_empty() {
        for (label, c) in legend {
            chart
                .draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())
                .map_err(|x| e(x.to_string()))?
                .label(label)
                .legend(move |(x, y)| Circle::new((x + 6, y), 5, c.filled()));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|x| e(x.to_string()))?;
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn few_values_get_one_colour_each_many_numbers_a_gradient() {
        let c = Colour {
            key: "model.dropout",
            values: ["0.5", "0.0", "0.5", "0.25"].map(String::from).to_vec(),
            log: false,
        };
        let (colours, legend) = colouring(&c);
        // Ordered as numbers: 0.0, 0.25, 0.5; equal values, equal colours.
        let labels: Vec<&str> = legend.iter().map(|l| l.0.as_str()).collect();
        assert_eq!(
            labels,
            [
                "model.dropout = 0.0",
                "model.dropout = 0.25",
                "model.dropout = 0.5"
            ]
        );
        assert_eq!(colours[0], colours[2]);
        assert_eq!(colours[1], legend[0].1);
        // Twelve log-uniform rates: a gradient, its ends and middle (geometric) named, to 3
        // significant digits (√(0.0001 · 0.2048) = 0.0045254…).
        let values: Vec<String> = (0..12).map(|i| (1e-4 * 2f64.powi(i)).to_string()).collect();
        let c = Colour {
            key: "optimizer.lr",
            values,
            log: true,
        };
        let (colours, legend) = colouring(&c);
        assert_eq!(colours.len(), 12);
        assert_eq!(colours[0], viridis(0.0));
        assert_eq!(colours[11], viridis(1.0));
        let labels: Vec<&str> = legend.iter().map(|l| l.0.as_str()).collect();
        assert_eq!(
            labels,
            [
                "optimizer.lr = 0.0001",
                "optimizer.lr = 0.00453",
                "optimizer.lr = 0.205"
            ]
        );
    }
}

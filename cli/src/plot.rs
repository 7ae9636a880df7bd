//! `hnswx plot` and `hnswx compare`: recall against single-thread QPS for several reports,
//! and the table at fixed recall targets.

use plotters::prelude::*;
use std::path::Path;

use crate::report::Report;

/// Recall targets of the comparison table.
pub const TARGETS: [f64; 3] = [0.90, 0.95, 0.99];

/// Draws recall@k (x) against single-thread QPS (y, log scale), one line per report.
pub fn draw(reports: &[Report], out: &Path) -> Result<(), String> {
    let points = |r: &Report| {
        let mut p: Vec<(f64, f64)> = r.runs.iter().map(|x| (x.recall, x.qps_single)).collect();
        p.sort_by(|a, b| a.0.total_cmp(&b.0));
        p
    };
    let all: Vec<(f64, f64)> = reports.iter().flat_map(points).filter(|p| p.1 > 0.0).collect();
    if all.is_empty() {
        return Err("nothing to plot: the reports hold no runs".into());
    }
    let xmin = all.iter().map(|p| p.0).fold(1.0, f64::min).min(0.9);
    let ymin = all.iter().map(|p| p.1).fold(f64::INFINITY, f64::min) * 0.8;
    let ymax = all.iter().map(|p| p.1).fold(0.0, f64::max) * 1.25;
    let title = {
        let mut sets: Vec<&str> = reports.iter().map(|r| r.dataset.as_str()).collect();
        sets.dedup();
        format!(
            "{} — recall@{} vs single-thread QPS",
            sets.join(", "),
            reports[0].k.max(1)
        )
    };
    let err = |e: &dyn std::fmt::Display| format!("{}: {e}", out.display());
    let root = SVGBackend::new(out, (900, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(xmin..1.0, (ymin..ymax).log_scale())
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc("recall")
        .y_desc("queries per second, 1 thread (log)")
        .draw()
        .map_err(|e| err(&e))?;
    for (i, r) in reports.iter().enumerate() {
        let colour = Palette99::pick(i).to_rgba();
        let label = format!(
            "{} ({}, M={}, efc={})",
            r.tool, r.dataset, r.params.m, r.params.ef_construction
        );
        let pts = points(r);
        chart
            .draw_series(LineSeries::new(pts.clone(), colour.stroke_width(2)))
            .map_err(|e| err(&e))?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2)));
        chart
            .draw_series(pts.into_iter().map(|p| Circle::new(p, 3, colour.filled())))
            .map_err(|e| err(&e))?;
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.9))
        .position(SeriesLabelPosition::LowerLeft)
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))
}

/// A markdown table: per data set and recall target, each tool's interpolated single-thread
/// QPS, build time and bytes per vector, and the ratio of hnswx's QPS to hnswlib's.
pub fn table(reports: &[Report]) -> String {
    let mut out = String::from(
        "| data set | recall@k | tool | QPS (1 thread) | build s (threads) | bytes/vector | hnswx ÷ hnswlib QPS |\n|---|---:|---|---:|---:|---:|---:|\n",
    );
    let mut sets: Vec<&str> = reports.iter().map(|r| r.dataset.as_str()).collect();
    sets.sort();
    sets.dedup();
    for set in sets {
        let of_set: Vec<&Report> = reports.iter().filter(|r| r.dataset == set).collect();
        let qps = |tool: &str, t: f64| of_set.iter().find(|r| r.tool == tool).and_then(|r| r.qps_at(t));
        for t in TARGETS {
            let ratio = match (qps("hnswx", t), qps("hnswlib", t)) {
                (Some(a), Some(b)) if b > 0.0 => format!("{:.2}×", a / b),
                _ => "—".into(),
            };
            for (i, r) in of_set.iter().enumerate() {
                let q = r.qps_at(t).map_or("not reached".into(), |q| format!("{q:.0}"));
                out += &format!(
                    "| {} | {t:.2} | {} | {q} | {:.1} ({}) | {:.0} | {} |\n",
                    set,
                    r.tool,
                    r.build.seconds,
                    r.build.threads,
                    r.build.bytes_per_vector,
                    if i == 0 { ratio.as_str() } else { "" }
                );
            }
        }
    }
    out
}

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

/// `serve-bench --svg`: over time, reader p99 and max latency per second (log scale, frozen
/// and live, saves marked) above reads and writes per second.
pub fn serve(r: &crate::serve::ServeReport, out: &Path) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| format!("{}: {e}", out.display());
    let root = SVGBackend::new(out, (1000, 760)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let (top, bottom) = root.split_vertically(440);
    let secs = r.frozen.per_second.len().max(r.live.per_second.len()).max(1) as f64;
    let lat: Vec<f64> = [&r.frozen, &r.live]
        .iter()
        .flat_map(|p| p.per_second.iter().flat_map(|s| [s.read_p99_us, s.read_max_us]))
        .filter(|&v| v > 0.0)
        .collect();
    let ymin = lat.iter().copied().fold(f64::INFINITY, f64::min).min(10.0) * 0.7;
    let ymax = lat.iter().copied().fold(0.0, f64::max).max(100.0) * 1.5;
    let title = format!(
        "{}: reader latency per second, frozen vs live ({} reader(s), {} writer(s) at {:.0}/s)",
        r.dataset, r.readers, r.writers, r.write_rate
    );
    let mut chart = ChartBuilder::on(&top)
        .caption(title, ("sans-serif", 18))
        .margin(15)
        .x_label_area_size(35)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..secs, (ymin..ymax).log_scale())
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc("seconds into the phase")
        .y_desc("µs (log)")
        .draw()
        .map_err(|e| err(&e))?;
    let series = [
        (&r.frozen, "frozen p99", 0, false),
        (&r.frozen, "frozen max", 0, true),
        (&r.live, "live p99", 1, false),
        (&r.live, "live max", 1, true),
    ];
    for (phase, label, colour, max) in series {
        let colour = Palette99::pick(colour).to_rgba();
        let pts: Vec<(f64, f64)> = phase
            .per_second
            .iter()
            .map(|s| (s.t as f64 + 0.5, if max { s.read_max_us } else { s.read_p99_us }))
            .filter(|p| p.1 > 0.0)
            .collect();
        let style = if max {
            colour.stroke_width(1)
        } else {
            colour.stroke_width(3)
        };
        chart
            .draw_series(LineSeries::new(pts, style))
            .map_err(|e| err(&e))?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
    }
    let limit = [(0.0, 10_000.0), (secs, 10_000.0)];
    chart
        .draw_series(LineSeries::new(limit, RED.stroke_width(1)))
        .map_err(|e| err(&e))?
        .label("10 ms")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED.stroke_width(1)));
    for s in &r.live.saves {
        chart
            .draw_series(LineSeries::new([(s.at_s, ymin), (s.at_s, ymax)], BLACK.mix(0.4)))
            .map_err(|e| err(&e))?;
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.9))
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(|e| err(&e))?;

    let tmax = [&r.frozen, &r.live]
        .iter()
        .flat_map(|p| p.per_second.iter().flat_map(|s| [s.reads, s.writes]))
        .max()
        .unwrap_or(1)
        .max(1) as f64
        * 1.15;
    let mut chart = ChartBuilder::on(&bottom)
        .caption("operations per second", ("sans-serif", 16))
        .margin(15)
        .x_label_area_size(35)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..secs, 0.0..tmax)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc("seconds into the phase (saves: grey lines above)")
        .draw()
        .map_err(|e| err(&e))?;
    let series = [
        (&r.frozen, "frozen reads/s", 0, false),
        (&r.live, "live reads/s", 1, false),
        (&r.live, "live writes/s", 2, true),
    ];
    for (phase, label, colour, writes) in series {
        let colour = Palette99::pick(colour).to_rgba();
        let pts: Vec<(f64, f64)> = phase
            .per_second
            .iter()
            .map(|s| (s.t as f64 + 0.5, if writes { s.writes } else { s.reads } as f64))
            .collect();
        chart
            .draw_series(LineSeries::new(pts, colour.stroke_width(2)))
            .map_err(|e| err(&e))?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.9))
        .position(SeriesLabelPosition::LowerRight)
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))
}

//! `hnswx`: benchmarks on real data with a hardware report, plots, and hnswlib side by side.
//!
//! ```text
//! hnswx bench --base B --query Q [--gt G] --metric l2 --k 10 --m 16 --ef-construction 200 \
//!             --ef 10,16,32,64 [--threads N] [--kernel auto] [--json R.json] [--csv R.csv] [--plot R.svg]
//! hnswx gt --base B --query Q --metric l2 --k 100 --out G.ivecs
//! hnswx plot A.json B.json … -o OUT.svg
//! hnswx compare A.json B.json … [-o OUT.svg]
//! hnswx gen --n 100000 --queries 1000 --dim 128 --out-base B.fvecs --out-query Q.fvecs
//! ```

mod bench;
mod load;
mod plot;
mod report;

use clap::{Parser, Subcommand, ValueEnum};
use hnswx::data::{gaussian_mixture, write_fvecs, write_ivecs, Table};
use hnswx::{Choice, Metric};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "hnswx",
    version,
    about = "HNSW benchmarks with hardware reports, and hnswlib side by side"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum MetricArg {
    L2,
    Ip,
    Cos,
}

impl From<MetricArg> for Metric {
    fn from(m: MetricArg) -> Metric {
        match m {
            MetricArg::L2 => Metric::L2,
            MetricArg::Ip => Metric::InnerProduct,
            MetricArg::Cos => Metric::Cosine,
        }
    }
}

fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[derive(Subcommand)]
enum Command {
    /// Build an index, sweep ef, print recall, QPS and latency with the hardware report.
    Bench {
        /// Base vectors (.fvecs, .bvecs, .npy).
        #[arg(long)]
        base: PathBuf,
        /// Query vectors (.fvecs, .bvecs, .npy).
        #[arg(long)]
        query: PathBuf,
        /// Ground truth ids (.ivecs, .npy); computed by brute force when absent.
        #[arg(long)]
        gt: Option<PathBuf>,
        /// Data set name for reports (default: the base file's name without `_base`).
        #[arg(long)]
        name: Option<String>,
        #[arg(long, value_enum, default_value = "l2")]
        metric: MetricArg,
        #[arg(long, default_value_t = 10)]
        k: usize,
        #[arg(long, default_value_t = 16)]
        m: usize,
        #[arg(long, default_value_t = 200)]
        ef_construction: usize,
        /// Comma-separated ef values to sweep.
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "10,16,24,32,48,64,96,128,192,256,384,512"
        )]
        ef: Vec<usize>,
        /// Threads for the build and the batch search (default: every core).
        #[arg(long, default_value_t = default_threads())]
        threads: usize,
        /// Distance kernels: auto, scalar, portable, avx2, avx512, neon.
        #[arg(long, default_value = "auto")]
        kernel: String,
        /// Write the report as JSON.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Write the runs as CSV.
        #[arg(long)]
        csv: Option<PathBuf>,
        /// Draw recall vs QPS as SVG.
        #[arg(long)]
        plot: Option<PathBuf>,
    },
    /// Compute exact ground truth by brute force and write it as .ivecs.
    Gt {
        #[arg(long)]
        base: PathBuf,
        #[arg(long)]
        query: PathBuf,
        #[arg(long, value_enum, default_value = "l2")]
        metric: MetricArg,
        #[arg(long, default_value_t = 100)]
        k: usize,
        #[arg(long, default_value_t = default_threads())]
        threads: usize,
        #[arg(long)]
        out: PathBuf,
    },
    /// Overlay several JSON reports: recall vs single-thread QPS.
    Plot {
        #[arg(required = true)]
        reports: Vec<PathBuf>,
        #[arg(short, long)]
        out: PathBuf,
    },
    /// QPS at recall 0.90 / 0.95 / 0.99 for several reports, hnswx ÷ hnswlib; optional plot.
    Compare {
        #[arg(required = true)]
        reports: Vec<PathBuf>,
        #[arg(short, long)]
        out: Option<PathBuf>,
    },
    /// Write a generated clustered data set (Gaussian mixture) as .fvecs.
    Gen {
        #[arg(long, default_value_t = 100_000)]
        n: usize,
        #[arg(long, default_value_t = 1_000)]
        queries: usize,
        #[arg(long, default_value_t = 128)]
        dim: usize,
        #[arg(long, default_value_t = 100)]
        clusters: usize,
        #[arg(long, default_value_t = 1.0)]
        spread: f32,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long)]
        out_base: PathBuf,
        #[arg(long)]
        out_query: PathBuf,
    },
}

fn main() {
    if let Err(e) = run(Cli::parse()) {
        eprintln!("hnswx: error: {e}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Bench {
            base,
            query,
            gt,
            name,
            metric,
            k,
            m,
            ef_construction,
            ef,
            threads,
            kernel,
            json,
            csv,
            plot,
        } => {
            let kernel = Choice::parse(&kernel).map_err(|e| e.to_string())?;
            let spec = bench::Spec {
                base,
                query,
                gt,
                name,
                metric: metric.into(),
                k,
                m,
                ef_construction,
                ef,
                threads,
                kernel,
            };
            let report = bench::run(&spec)?;
            if let Some(p) = json {
                report.write(&p)?;
            }
            if let Some(p) = csv {
                report.write_csv(&p)?;
            }
            if let Some(p) = plot {
                plot::draw(std::slice::from_ref(&report), &p)?;
            }
            Ok(())
        }
        Command::Gt {
            base,
            query,
            metric,
            k,
            threads,
            out,
        } => {
            let b = load::vectors(&base)?;
            let q = load::vectors(&query)?;
            if b.dim() != q.dim() {
                return Err(format!("dimension mismatch: base {} vs queries {}", b.dim(), q.dim()));
            }
            if k == 0 {
                return Err("--k must be at least 1".into());
            }
            let gt = bench::ground_truth(&b, &q, metric.into(), k, threads.max(1))?;
            write_ivecs(&out, &gt).map_err(|e| e.to_string())?;
            println!("wrote {} × {} ids to {}", gt.len(), gt.dim(), out.display());
            Ok(())
        }
        Command::Plot { reports, out } => {
            let reports = reports
                .iter()
                .map(|p| report::Report::read(p))
                .collect::<Result<Vec<_>, _>>()?;
            plot::draw(&reports, &out)
        }
        Command::Compare { reports, out } => {
            let reports = reports
                .iter()
                .map(|p| report::Report::read(p))
                .collect::<Result<Vec<_>, _>>()?;
            print!("{}", plot::table(&reports));
            match out {
                Some(p) => plot::draw(&reports, &p),
                None => Ok(()),
            }
        }
        Command::Gen {
            n,
            queries,
            dim,
            clusters,
            spread,
            seed,
            out_base,
            out_query,
        } => {
            if n == 0 || queries == 0 || dim == 0 || clusters == 0 {
                return Err("--n, --queries, --dim and --clusters must be at least 1".into());
            }
            let all = gaussian_mixture(n + queries, dim, clusters, spread, seed);
            let q = Table::new(dim, all.as_slice()[n * dim..].to_vec()).expect("whole rows");
            write_fvecs(&out_base, &all.truncated(n)).map_err(|e| e.to_string())?;
            write_fvecs(&out_query, &q).map_err(|e| e.to_string())?;
            println!(
                "wrote {n} × {dim} to {} and {queries} queries to {}",
                out_base.display(),
                out_query.display()
            );
            Ok(())
        }
    }
}

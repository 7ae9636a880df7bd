//! `hnswx`: benchmarks on real data with a hardware report, plots, and hnswlib side by side.
//!
//! ```text
//! hnswx bench --base B --query Q [--gt G] --metric l2 --k 10 --m 16 --ef-construction 200 \
//!             --ef 10,16,32,64 [--threads N] [--kernel auto] [--json R.json] [--csv R.csv] [--plot R.svg]
//! hnswx gt --base B --query Q --metric l2 --k 100 --out G.ivecs
//! hnswx plot A.json B.json … -o OUT.svg
//! hnswx compare A.json B.json … [-o OUT.svg]
//! hnswx gen --n 100000 --queries 1000 --dim 128 --out-base B.fvecs --out-query Q.fvecs
//! hnswx serve-bench --base B --query Q --readers 1 --writers 1 --duration 10 [--read-rate Q] \
//!             [--write-rate W] [--write-mix A:R:U[:S]] [--consolidate-every S] [--save-every S] \
//!             [--json R.json] [--svg R.svg]
//! ```

mod bench;
mod load;
mod plot;
mod report;
mod serve;

use clap::{Parser, Subcommand, ValueEnum};
use hnswx::data::{gaussian_mixture, write_fvecs, write_ivecs};
use hnswx::{Choice, Index, Metric, Params, Verify};
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
        /// Base vectors (.fvecs, .bvecs, .npy); not needed with --index.
        #[arg(long, required_unless_present = "index")]
        base: Option<PathBuf>,
        /// A saved index to benchmark instead of building one (needs --gt).
        #[arg(long, conflicts_with = "base")]
        index: Option<PathBuf>,
        /// With --index: skip the section checksums (the structure is still checked).
        #[arg(long)]
        no_verify: bool,
        /// With --index: map the file and search it in place instead of loading it (do not
        /// modify the file while the command runs).
        #[arg(long, requires = "index")]
        mmap: bool,
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
        /// Walk the graph on codes: none (the exact rows), sq8 (8-bit codes) or f16
        /// (half-precision rows); with codes, the best candidates are re-scored exactly.
        #[arg(long, default_value = "none")]
        quantization: hnswx::Quantization,
        /// With --quantization: candidates re-scored exactly per query (default: max(2k, 16)).
        #[arg(long)]
        rerank: Option<usize>,
        /// Renumber nodes in breadth-first order after the build (Index::optimize; the
        /// time counts as build time).
        #[arg(long)]
        optimize: bool,
        /// Repeat each ef's query loops (single-thread and batch) until this many seconds
        /// have passed, for a steadier QPS on small query sets (recall from the first pass;
        /// latency percentiles over every pass). 0: one pass.
        #[arg(long, default_value_t = 0.0)]
        min_seconds: f64,
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
    /// Build an index and save it.
    Build {
        #[arg(long)]
        base: PathBuf,
        #[arg(long, value_enum, default_value = "l2")]
        metric: MetricArg,
        #[arg(long, default_value_t = 16)]
        m: usize,
        #[arg(long, default_value_t = 200)]
        ef_construction: usize,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        #[arg(long, default_value_t = default_threads())]
        threads: usize,
        /// Walk the graph on codes: none, sq8 or f16 (stored in the file).
        #[arg(long, default_value = "none")]
        quantization: hnswx::Quantization,
        /// Renumber nodes in breadth-first order before saving (Index::optimize).
        #[arg(long)]
        optimize: bool,
        /// The index file to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// Search a saved index: one line per query, `label:distance` pairs, nearest first.
    Query {
        /// The index file.
        index: PathBuf,
        #[arg(long)]
        query: PathBuf,
        #[arg(long, default_value_t = 10)]
        k: usize,
        #[arg(long, default_value_t = 64)]
        ef: usize,
        /// Skip the section checksums (the structure is still checked).
        #[arg(long)]
        no_verify: bool,
        /// Map the file and search it in place instead of loading it (do not modify the file
        /// while the command runs).
        #[arg(long)]
        mmap: bool,
    },
    /// Describe a saved index: parameters, nodes per level, degrees, unreachable nodes.
    Info {
        /// The index file.
        index: PathBuf,
    },
    /// Convert an index file written by hnswlib's save_index into an hnswx index.
    ImportHnswlib {
        /// The hnswlib file.
        input: PathBuf,
        /// The space it was built in.
        #[arg(long, value_enum)]
        metric: MetricArg,
        #[arg(long)]
        out: PathBuf,
    },
    /// Write an hnswx index in hnswlib's format (for hnswlib's load_index).
    ExportHnswlib {
        /// The hnswx index file.
        index: PathBuf,
        #[arg(long)]
        out: PathBuf,
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
    /// Tail latency under live writes: readers issue single queries (back to back, or open
    /// loop at --read-rate) on a frozen index, then again while writers add (and, with
    /// --write-mix, remove, update and restore) at --write-rate, optionally with a background
    /// consolidate() or save; per-second throughput and p50/p99/p99.9/max of both, every
    /// result checked.
    ServeBench {
        /// Base vectors (.fvecs, .bvecs, .npy): the first --initial fraction is built before
        /// the run, the rest is added during it.
        #[arg(long)]
        base: PathBuf,
        /// Query vectors, cycled through.
        #[arg(long)]
        query: PathBuf,
        /// Data set name for reports (default: the base file's name without `_base`).
        #[arg(long)]
        name: Option<String>,
        #[arg(long, value_enum, default_value = "l2")]
        metric: MetricArg,
        #[arg(long, default_value_t = 10)]
        k: usize,
        #[arg(long, default_value_t = 64)]
        ef: usize,
        #[arg(long, default_value_t = 16)]
        m: usize,
        #[arg(long, default_value_t = 200)]
        ef_construction: usize,
        /// Reader threads.
        #[arg(long, default_value_t = 1)]
        readers: usize,
        /// Writer threads (0: the live phase only adds the saves, if any).
        #[arg(long, default_value_t = 1)]
        writers: usize,
        /// Queries per second over all readers, open loop (latency from the scheduled send
        /// time); without it readers run back to back.
        #[arg(long)]
        read_rate: Option<f64>,
        /// Writes per second over all writers (default: 10% of the frozen read rate).
        #[arg(long)]
        write_rate: Option<f64>,
        /// Relative weights of the writes: add:remove:update[:restore]. Add takes a fresh
        /// label; remove and update a random live one; restore a random removed one (added
        /// again if a consolidation took it). A kind with nothing to act on adds instead.
        /// Default 1:0:0 (adds only).
        #[arg(long, default_value = "1:0:0", value_name = "A:R:U[:S]")]
        write_mix: String,
        /// Run consolidate() every SECS seconds in the background during the live phase.
        #[arg(long, value_name = "SECS")]
        consolidate_every: Option<f64>,
        /// Pin reader i to core i and writer j to the last core but j (Linux; attribution
        /// runs: readers and writers then never share a core with each other).
        #[arg(long)]
        pin: bool,
        /// Seconds per phase (frozen, then live).
        #[arg(long, default_value_t = 10.0)]
        duration: f64,
        /// Fraction of the base built before the run.
        #[arg(long, default_value_t = 0.5)]
        initial: f64,
        /// Save the index every SECS seconds during the live phase.
        #[arg(long, value_name = "SECS")]
        save_every: Option<f64>,
        /// Where --save-every writes (default: a temporary file, removed afterwards).
        #[arg(long)]
        save_path: Option<PathBuf>,
        /// Threads for the initial build.
        #[arg(long, default_value_t = default_threads())]
        threads: usize,
        /// Write the report as JSON.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Draw latency and throughput over time as SVG.
        #[arg(long)]
        svg: Option<PathBuf>,
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
            index,
            no_verify,
            mmap,
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
            quantization,
            rerank,
            optimize,
            min_seconds,
            json,
            csv,
            plot,
        } => {
            let kernel = Choice::parse(&kernel).map_err(|e| e.to_string())?;
            let spec = bench::Spec {
                base: base.clone().unwrap_or_default(),
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
                quantization,
                rerank,
                optimize,
                min_seconds: if min_seconds.is_finite() {
                    min_seconds.max(0.0)
                } else {
                    0.0
                },
            };
            let report = match &index {
                Some(path) => bench::run_saved(&spec, path, verify(no_verify), mmap)?,
                None => bench::run(&spec)?,
            };
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
        Command::Build {
            base,
            metric,
            m,
            ef_construction,
            seed,
            threads,
            quantization,
            optimize,
            out,
        } => {
            let b = load::vectors(&base)?;
            let params = Params::new(b.dim(), metric.into())
                .m(m)
                .ef_construction(ef_construction)
                .seed(seed)
                .quantization(quantization);
            let (mut index, build) = bench::build(&b, params, threads.max(1), &base)?;
            if optimize {
                index.optimize().map_err(|e| format!("optimize: {e}"))?;
            }
            index.save(&out).map_err(|e| e.to_string())?;
            println!(
                "built {} × {} in {:.2} s on {} threads; saved to {} ({} bytes)",
                b.len(),
                b.dim(),
                build.seconds,
                build.threads,
                out.display(),
                std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0)
            );
            Ok(())
        }
        Command::Query {
            index,
            query,
            k,
            ef,
            no_verify,
            mmap,
        } => {
            let idx = open(&index, verify(no_verify), mmap)?;
            let q = load::vectors(&query)?;
            let mut out = String::new();
            for (i, row) in q.rows().enumerate() {
                let hits = idx.search(row, k, ef).map_err(|e| format!("query {i}: {e}"))?;
                let line: Vec<String> = hits.iter().map(|h| format!("{}:{}", h.label, h.distance)).collect();
                out += &line.join(" ");
                out.push('\n');
            }
            print!("{out}");
            Ok(())
        }
        Command::Info { index } => {
            let idx = Index::load(&index).map_err(|e| format!("{}: {e}", index.display()))?;
            print!("{}", info(&idx, &index));
            Ok(())
        }
        Command::ImportHnswlib { input, metric, out } => {
            let idx = Index::import_hnswlib(&input, metric.into()).map_err(|e| format!("{}: {e}", input.display()))?;
            idx.save(&out).map_err(|e| e.to_string())?;
            println!(
                "imported {} vectors of dimension {} into {}",
                idx.len(),
                idx.dim(),
                out.display()
            );
            Ok(())
        }
        Command::ExportHnswlib { index, out } => {
            let idx = Index::load(&index).map_err(|e| format!("{}: {e}", index.display()))?;
            idx.export_hnswlib(&out).map_err(|e| e.to_string())?;
            println!("wrote {} vectors in hnswlib's format to {}", idx.len(), out.display());
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
        Command::ServeBench {
            base,
            query,
            name,
            metric,
            k,
            ef,
            m,
            ef_construction,
            readers,
            writers,
            read_rate,
            write_rate,
            duration,
            initial,
            save_every,
            save_path,
            write_mix,
            consolidate_every,
            pin,
            threads,
            json,
            svg,
        } => {
            let spec = serve::Spec {
                base,
                query,
                name,
                metric: metric.into(),
                k,
                ef,
                m,
                ef_construction,
                readers,
                writers,
                read_rate,
                write_rate,
                duration,
                initial,
                save_every,
                save_path,
                write_mix: write_mix.parse()?,
                consolidate_every,
                pin,
                threads,
            };
            let r = serve::run(&spec)?;
            if let Some(p) = json {
                let text = serde_json::to_string_pretty(&r).map_err(|e| e.to_string())?;
                std::fs::write(&p, text + "\n").map_err(|e| format!("{}: {e}", p.display()))?;
            }
            if let Some(p) = svg {
                plot::serve(&r, &p)?;
            }
            Ok(())
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
            let (b, q) = all.split_at(n);
            write_fvecs(&out_base, &b).map_err(|e| e.to_string())?;
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

/// Loads a saved index into memory, or maps it (`mmap`).
fn open(path: &std::path::Path, verify: Verify, mmap: bool) -> Result<Index, String> {
    let r = if mmap {
        // SAFETY: the CLI maps files it does not write; the user is told (--mmap's help) not
        // to modify the file while the command runs.
        unsafe { Index::open_mmap(path, verify) }
    } else {
        Index::load_with(path, verify)
    };
    r.map_err(|e| format!("{}: {e}", path.display()))
}

fn verify(no_verify: bool) -> Verify {
    if no_verify {
        Verify::Structure
    } else {
        Verify::All
    }
}

/// `hnswx info`: the header's parameters and the graph's shape.
fn info(idx: &Index, path: &std::path::Path) -> String {
    let p = idx.params();
    let st = idx.graph_stats();
    // The version the file was written in: bytes 8..12 of its header.
    let version = (|| {
        use std::io::Read;
        let mut head = [0u8; 12];
        std::fs::File::open(path).ok()?.read_exact(&mut head).ok()?;
        Some(u32::from_le_bytes([head[8], head[9], head[10], head[11]]))
    })()
    .map_or_else(|| "?".to_string(), |v| v.to_string());
    let mut s = format!(
        "file:        {} ({} bytes, format version {version})\n",
        path.display(),
        std::fs::metadata(path).map(|m| m.len()).unwrap_or(0),
    );
    s += &format!(
        "walk:        {}{}\n",
        p.quantization_kind().name(),
        match (p.quantization_kind(), idx.is_trained()) {
            (hnswx::Quantization::F16, _) => " (half-precision rows, exact rerank)",
            (_, true) => " (trained codes, exact rerank)",
            _ => "",
        }
    );
    s += &format!(
        "vectors:     {} × {}, metric {}\n",
        idx.len(),
        idx.dim(),
        bench::metric_name(idx.metric())
    );
    s += &format!(
        "parameters:  M = {}, Mmax0 = {}, ef_construction = {}, seed = {}\n",
        p.max_links(),
        p.max_links0(),
        p.ef_construction_value(),
        p.seed_value()
    );
    s += &format!(
        "entry point: {:?}\n",
        st.entry.map(|(node, level)| format!("node {node} at level {level}"))
    );
    s += &format!(
        "links:       {} in all, {:.1} per node\n",
        st.links,
        st.links as f64 / st.nodes.max(1) as f64
    );
    s += "nodes per level (level: nodes, mean degree, max degree):\n";
    for (level, &nodes) in st.nodes_per_level.iter().enumerate() {
        let hist = &st.degree_histogram[level];
        let on_layer: usize = hist.iter().sum();
        let mean = hist.iter().enumerate().map(|(d, &c)| d * c).sum::<usize>() as f64 / on_layer.max(1) as f64;
        let max = hist.iter().rposition(|&c| c > 0).unwrap_or(0);
        s += &format!(
            "  {level:>2}: {nodes:>10} top here; {on_layer:>10} on this layer, degree mean {mean:.1}, max {max}\n"
        );
    }
    s += "layer-0 degree histogram (degree: nodes):\n ";
    for (d, &c) in st
        .degree_histogram
        .first()
        .map(|h| h.as_slice())
        .unwrap_or(&[])
        .iter()
        .enumerate()
    {
        if c > 0 {
            s += &format!(" {d}:{c}");
        }
    }
    s += "\n";
    s += &format!("unreachable from the entry point on layer 0: {}\n", st.unreachable);
    s
}

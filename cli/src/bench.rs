//! `hnswx bench`: build, sweep `ef`, measure, report.

use hnswx::data::{exact_knn, Table};
use hnswx::{Choice, Index, Metric, Params, Quantization, Verify};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::load;
use crate::report::{self, Build, Report, Run};

/// What to benchmark.
pub struct Spec {
    pub base: PathBuf,
    pub query: PathBuf,
    pub gt: Option<PathBuf>,
    pub name: Option<String>,
    pub metric: Metric,
    pub k: usize,
    pub m: usize,
    pub ef_construction: usize,
    pub ef: Vec<usize>,
    pub threads: usize,
    pub kernel: Choice,
    /// Codes to walk (`Quantization::None`: the exact rows).
    pub quantization: Quantization,
    /// Candidates re-scored exactly per query on a quantised index (default: `ef`).
    pub rerank: Option<usize>,
    /// Renumber the nodes in breadth-first order after the build (`Index::optimize`).
    pub optimize: bool,
    /// Each ef's query loops repeat until this many seconds have passed (0: one pass).
    pub min_seconds: f64,
}

pub fn metric_name(m: Metric) -> &'static str {
    match m {
        Metric::L2 => "l2",
        Metric::InnerProduct => "ip",
        Metric::Cosine => "cos",
    }
}

/// The data set's name: the base file's stem without a trailing `_base`.
pub fn dataset_name(base: &std::path::Path) -> String {
    let stem = base.file_stem().and_then(|s| s.to_str()).unwrap_or("data");
    stem.strip_suffix("_base").unwrap_or(stem).to_string()
}

pub fn pool(threads: usize) -> Result<rayon::ThreadPool, String> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| e.to_string())
}

/// Exact `k` nearest base ids of every query, on `threads` threads.
pub fn ground_truth(
    base: &Table<f32>,
    queries: &Table<f32>,
    metric: Metric,
    k: usize,
    threads: usize,
) -> Result<Table<u32>, String> {
    let k = k.min(base.len());
    let hits = pool(threads)?
        .install(|| exact_knn(base, queries, metric, k))
        .map_err(|e| e.to_string())?;
    let ids: Vec<u32> = hits.iter().flat_map(|h| h.iter().map(|&label| label as u32)).collect();
    Table::new(k, ids).ok_or_else(|| "no ground truth".to_string())
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    let i = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

/// Builds an index over `base` (labels `0..n`) on `threads` threads with a progress bar;
/// returns it with its build report.
pub fn build(base: &Table<f32>, params: Params, threads: usize, what: &Path) -> Result<(Index, Build), String> {
    let n = base.len();
    let pool = pool(threads)?;
    let rss_before = report::proc_status_bytes("VmRSS");
    let started = Instant::now();
    let index = Index::new(params, n).map_err(|e| e.to_string())?;
    let bar = ProgressBar::new(n as u64).with_style(
        ProgressStyle::with_template("building {bar:40} {pos}/{len} vectors, {elapsed} elapsed, ~{eta} left")
            .expect("a valid template"),
    );
    let labels: Vec<u64> = (0..n as u64).collect();
    pool.install(|| index.add_batch_with_progress(&labels, base.as_slice(), |d| bar.set_position(d as u64)))
        .map_err(|e| format!("base {}: {e}", what.display()))?;
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    let rss_after = report::proc_status_bytes("VmRSS");
    let build = Build {
        seconds,
        threads,
        bytes_per_vector: match (rss_before, rss_after) {
            (Some(a), Some(b)) => b.saturating_sub(a) as f64 / n as f64,
            _ => index.memory_bytes() as f64 / n as f64,
        },
        index_bytes_per_vector: Some(index.memory_bytes() as f64 / n as f64),
        peak_rss_bytes: report::proc_status_bytes("VmHWM"),
    };
    Ok((index, build))
}

/// Checks a ground-truth table against the queries, `k` and the number of base vectors.
fn check_truth(gt: &Table<u32>, path: &Path, queries: usize, k: usize, n: usize) -> Result<(), String> {
    if gt.len() != queries {
        return Err(format!(
            "{}: {} rows of ground truth for {queries} queries",
            path.display(),
            gt.len()
        ));
    }
    if gt.dim() < k {
        return Err(format!(
            "{}: {} ids per query, fewer than k = {k}",
            path.display(),
            gt.dim()
        ));
    }
    if let Some(bad) = gt.as_slice().iter().find(|&&id| id as usize >= n) {
        return Err(format!("{}: id {bad} is not a base row (base has {n})", path.display()));
    }
    Ok(())
}

fn check_spec(spec: &Spec) -> Result<(), String> {
    if spec.k == 0 {
        return Err("--k must be at least 1".into());
    }
    if spec.ef.is_empty() {
        return Err("--ef needs at least one value".into());
    }
    Ok(())
}

/// Loads, checks, builds, sweeps. Prints the reports and the table as it goes.
pub fn run(spec: &Spec) -> Result<Report, String> {
    check_spec(spec)?;
    let base = load::vectors(&spec.base)?;
    let queries = load::vectors(&spec.query)?;
    let (n, dim, k) = (base.len(), base.dim(), spec.k);
    if queries.dim() != dim {
        return Err(format!(
            "dimension mismatch: base {} is {dim}-dimensional, queries {} are {}-dimensional",
            spec.base.display(),
            spec.query.display(),
            queries.dim()
        ));
    }
    if n == 0 || queries.is_empty() {
        return Err("empty base or query set".into());
    }
    let threads = spec.threads.max(1);
    let truth = match &spec.gt {
        Some(p) => {
            let gt = load::ids(p)?;
            check_truth(&gt, p, queries.len(), k, n)?;
            gt
        }
        None => {
            eprintln!("no --gt: computing exact ground truth by brute force on {threads} threads…");
            ground_truth(&base, &queries, spec.metric, k, threads)?
        }
    };
    let params = Params::new(dim, spec.metric)
        .m(spec.m)
        .ef_construction(spec.ef_construction)
        .kernel(spec.kernel)
        .quantization(spec.quantization);
    let (mut index, mut build) = self::build(&base, params, threads, &spec.base)?;
    if spec.optimize {
        let t = Instant::now();
        index.optimize().map_err(|e| format!("optimize: {e}"))?;
        let secs = t.elapsed().as_secs_f64();
        eprintln!("optimized (breadth-first order) in {secs:.2} s");
        build.seconds += secs;
    }
    let name = spec.name.clone().unwrap_or_else(|| dataset_name(&spec.base));
    sweep(&index, build, name, &queries, &truth, spec)
}

/// `bench --index`: a saved index instead of a build; the "build" report is the load.
pub fn run_saved(spec: &Spec, path: &Path, verify: Verify, mmap: bool) -> Result<Report, String> {
    check_spec(spec)?;
    let queries = load::vectors(&spec.query)?;
    let started = Instant::now();
    let rss_before = report::proc_status_bytes("VmRSS");
    let mut index = if mmap {
        // SAFETY: the CLI maps files it does not write; the user is told (--mmap's help) not
        // to modify the file while the command runs.
        unsafe { Index::open_mmap(path, verify) }
    } else {
        Index::load_with(path, verify)
    }
    .map_err(|e| format!("{}: {e}", path.display()))?;
    // --kernel applies to a saved index too (it loads on the best kernels).
    index.set_kernel(spec.kernel).map_err(|e| e.to_string())?;
    let n = index.len();
    let build = Build {
        seconds: started.elapsed().as_secs_f64(),
        threads: 1,
        bytes_per_vector: match (rss_before, report::proc_status_bytes("VmRSS")) {
            (Some(a), Some(b)) => b.saturating_sub(a) as f64 / n.max(1) as f64,
            _ => index.memory_bytes() as f64 / n.max(1) as f64,
        },
        index_bytes_per_vector: Some(index.memory_bytes() as f64 / n.max(1) as f64),
        peak_rss_bytes: report::proc_status_bytes("VmHWM"),
    };
    let how = if mmap { "mapped" } else { "loaded" };
    eprintln!("{how} {} ({n} vectors) in {:.3} s", path.display(), build.seconds);
    if queries.dim() != index.dim() {
        return Err(format!(
            "dimension mismatch: the index holds {}-dimensional vectors, queries are {}",
            index.dim(),
            queries.dim()
        ));
    }
    let Some(gt_path) = &spec.gt else {
        return Err("bench --index needs --gt (write it once with `hnswx gt`)".into());
    };
    let truth = load::ids(gt_path)?;
    check_truth(&truth, gt_path, queries.len(), spec.k, n)?;
    let name = spec.name.clone().unwrap_or_else(|| dataset_name(path));
    sweep(&index, build, name, &queries, &truth, spec)
}

/// Prints the reports, then sweeps `ef`: recall, QPS on one and on all threads, latency.
fn sweep(
    index: &Index,
    build: Build,
    dataset: String,
    queries: &Table<f32>,
    truth: &Table<u32>,
    spec: &Spec,
) -> Result<Report, String> {
    let (k, threads) = (spec.k, spec.threads.max(1));
    let pool = pool(threads)?;
    let params = index.params();
    let quant = params.quantization_kind();
    let hardware = report::hardware(threads, &kernel_name(index.kernel().isa(), index.codes_isa(), quant));
    let mut report = Report {
        tool: {
            let base = match (quant, spec.rerank) {
                (Quantization::None, _) => "hnswx".to_string(),
                (q, None) => format!("hnswx-{}", q.name()),
                (q, Some(r)) => format!("hnswx-{}-rerank{r}", q.name()),
            };
            if spec.optimize {
                base + "-bfs"
            } else {
                base
            }
        },
        dataset,
        n: index.len(),
        dim: index.dim(),
        metric: metric_name(index.metric()).into(),
        k,
        queries: queries.len(),
        params: crate::report::Params {
            m: params.max_links(),
            ef_construction: params.ef_construction_value(),
        },
        build,
        hardware,
        runs: Vec::new(),
    };
    print_header(&report);

    // Warm up caches and the scratch pool with one pass at the first ef.
    let mut out = Vec::with_capacity(k);
    for q in queries.rows().take(1000) {
        index
            .search_into(q, k, spec.ef[0], &mut out)
            .map_err(|e| format!("query: {e}"))?;
    }
    println!(
        "{:>5} {:>9} {:>11} {:>11} {:>8} {:>8} {:>8} {:>9} {:>10}",
        "ef",
        format!("recall@{k}"),
        "QPS 1 thr",
        format!("QPS {threads} thr"),
        "p50 µs",
        "p95 µs",
        "p99 µs",
        "p99.9 µs",
        "dist/query"
    );
    let nq = queries.len();
    let rerank = spec.rerank.unwrap_or(hnswx::default_rerank(k));
    for &ef in &spec.ef {
        let mut lat = Vec::with_capacity(nq);
        let mut hit = 0usize;
        let mut distances = 0u64;
        // Whole passes over the queries until `min_seconds` (at least one); recall and
        // distances from the first.
        let mut passes = 0usize;
        let t0 = Instant::now();
        while passes == 0 || t0.elapsed().as_secs_f64() < spec.min_seconds {
            for (i, q) in queries.rows().enumerate() {
                let t = Instant::now();
                let d = index
                    .search_counted_with(q, k, ef, rerank, &mut out)
                    .map_err(|e| format!("query {i}: {e}"))?;
                lat.push(t.elapsed().as_secs_f64() * 1e6);
                if passes == 0 {
                    distances += d;
                    let want = &truth.row(i)[..k];
                    hit += out.iter().filter(|h| want.contains(&(h.label as u32))).count();
                }
            }
            passes += 1;
        }
        let qps_single = (nq * passes) as f64 / t0.elapsed().as_secs_f64();
        let (mut batches, t1) = (0usize, Instant::now());
        while batches == 0 || t1.elapsed().as_secs_f64() < spec.min_seconds {
            pool.install(|| index.search_batch(queries.as_slice(), k, ef))
                .map_err(|e| format!("query: {e}"))?;
            batches += 1;
        }
        let qps_batch = (nq * batches) as f64 / t1.elapsed().as_secs_f64();
        lat.sort_by(f64::total_cmp);
        let run = Run {
            ef,
            recall: hit as f64 / (nq * k) as f64,
            qps_single,
            qps_batch: Some(qps_batch),
            p50_us: Some(percentile(&lat, 0.50)),
            p95_us: Some(percentile(&lat, 0.95)),
            p99_us: Some(percentile(&lat, 0.99)),
            p999_us: Some(percentile(&lat, 0.999)),
            distances_per_query: Some(distances as f64 / nq as f64),
        };
        println!(
            "{:>5} {:>9.4} {:>11.0} {:>11.0} {:>8.1} {:>8.1} {:>8.1} {:>9.1} {:>10.0}",
            run.ef,
            run.recall,
            run.qps_single,
            qps_batch,
            run.p50_us.unwrap_or(0.0),
            run.p95_us.unwrap_or(0.0),
            run.p99_us.unwrap_or(0.0),
            run.p999_us.unwrap_or(0.0),
            run.distances_per_query.unwrap_or(0.0)
        );
        report.runs.push(run);
    }
    Ok(report)
}

/// A byte count as MiB from 1 MiB up, else in bytes.
fn size(bytes: u64) -> String {
    if bytes >= 1 << 20 {
        mib(bytes)
    } else {
        format!("{bytes} bytes")
    }
}

fn print_header(r: &Report) {
    let h = &r.hardware;
    let info = hnswx::build_info();
    println!("hardware");
    println!(
        "  cpu:             {} ({} cores; {} used)",
        h.cpu, h.cores, h.threads_used
    );
    println!("  kernel:          {}", h.kernel);
    // Where each threshold came from: the variable (when this process took it), else the
    // machine's caches. A report read back from a file says only the value.
    let from_env = |taken: bool, var: &str, rule: &str| match (taken, std::env::var_os(var)) {
        (true, Some(v)) => format!("{var}={v:?}"),
        (false, Some(v)) => format!("{rule}; {var}={v:?} is not a size, ignored"),
        (_, None) => rule.to_string(),
    };
    if let Some(bytes) = h.look_ahead_from {
        let source = from_env(
            hnswx::look_ahead_setting().from_env,
            "HNSWX_LOOK_AHEAD_FROM",
            "a quarter of the last level cache, at least 8 MiB",
        );
        println!("  look-ahead:      from {} of walked rows ({source})", size(bytes));
    }
    if let Some(bytes) = h.row_prefetch_from {
        let source = from_env(
            hnswx::row_prefetch_setting().from_env,
            "HNSWX_ROW_PREFETCH_FROM",
            "the level-2 cache size; 0 where unknown",
        );
        println!("  row prefetch:    from {} of walked rows ({source})", size(bytes));
    }
    println!("  target features: {} ({})", h.target_features, info.target);
    println!(
        "  compiler:        {} ({} profile, opt-level {})",
        h.compiler, info.profile, info.opt_level
    );
    println!("data");
    println!(
        "  set:             {} — {} × {}, metric {}, {} queries, k = {}",
        r.dataset, r.n, r.dim, r.metric, r.queries, r.k
    );
    println!("build");
    println!(
        "  params:          M = {}, ef_construction = {}",
        r.params.m, r.params.ef_construction
    );
    println!(
        "  wall time:       {:.2} s on {} threads",
        r.build.seconds, r.build.threads
    );
    println!(
        "  memory:          {:.0} bytes/vector resident ({:.0} by the index's own count); peak RSS {}",
        r.build.bytes_per_vector,
        r.build.index_bytes_per_vector.unwrap_or(f64::NAN),
        r.build.peak_rss_bytes.map_or("n/a".into(), mib)
    );
}

/// `bytes` as MiB with one decimal, for the report's header.
fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1u64 << 20) as f64)
}

/// The kernel line of a report: the instruction set, and on AVX-512 with codes, which integer
/// SQ8 kernel it picked (`vnni`, `bw` or `avx2`: see `hnswx::kernels::avx512_u8_variants`).
fn kernel_name(isa: hnswx::Isa, codes: Option<hnswx::Isa>, quant: Quantization) -> String {
    #[cfg(target_arch = "x86_64")]
    if codes == Some(hnswx::Isa::Avx512) && quant == Quantization::Sq8 {
        if let Some((name, _)) = hnswx::kernels::avx512_u8_variants().first() {
            return format!("avx512 (sq8 integer kernel: {name})");
        }
    }
    let _ = (codes, quant);
    isa.name().to_string()
}

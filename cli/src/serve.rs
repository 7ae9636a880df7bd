//! `hnswx serve-bench`: tail latency of single queries while writers add vectors, against the
//! same readers on a frozen index.
//!
//! Two phases of the same length on one index: **frozen** (readers only), then **live**
//! (readers, plus writers adding at `--write-rate`, plus an optional save every
//! `--save-every` seconds). Readers issue one query at a time, either back to back (closed
//! loop) or at `--read-rate` queries per second in all (open loop: each query has a scheduled
//! send time and its latency is measured from that time, so a stall delays every query
//! scheduled behind it and shows up in the tail instead of hiding in a lower throughput: no
//! coordinated omission). Writers are always open loop, latency from their scheduled time.
//!
//! Every result is checked while the run goes on: labels distinct, each one added (or being
//! added) before the query returned, and the count `min(k, len)`. Violations are counted and
//! reported; they must be 0.

use hdrhistogram::Histogram;
use hnswx::data::Table;
use hnswx::{Index, Metric, Neighbour, Params};
use serde::Serialize;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::bench::{dataset_name, metric_name, pool};
use crate::{load, report};

/// What to run.
pub struct Spec {
    pub base: PathBuf,
    pub query: PathBuf,
    pub name: Option<String>,
    pub metric: Metric,
    pub k: usize,
    pub ef: usize,
    pub m: usize,
    pub ef_construction: usize,
    pub readers: usize,
    pub writers: usize,
    /// Queries per second over all readers (open loop); `None`: back to back.
    pub read_rate: Option<f64>,
    /// Vectors per second over all writers; `None`: 10% of the frozen phase's read rate.
    pub write_rate: Option<f64>,
    /// Seconds per phase.
    pub duration: f64,
    /// Fraction of the base built before the run; the rest is added during it.
    pub initial: f64,
    pub save_every: Option<f64>,
    pub save_path: Option<PathBuf>,
    pub threads: usize,
}

/// Latency summary of one kind of operation in one phase.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub count: u64,
    /// Operations per second over the phase.
    pub per_second: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
    pub mean_us: f64,
    /// Operations slower than 10 ms.
    pub over_10ms: u64,
}

/// One second of a phase.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Second {
    pub t: usize,
    pub reads: u64,
    pub writes: u64,
    pub read_p50_us: f64,
    pub read_p99_us: f64,
    pub read_max_us: f64,
    pub write_p99_us: f64,
    pub write_max_us: f64,
}

/// A save during the live phase.
#[derive(Debug, Clone, Serialize)]
pub struct Save {
    /// Seconds into the phase when it started.
    pub at_s: f64,
    pub seconds: f64,
}

/// One phase's results.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Phase {
    pub name: String,
    pub seconds: f64,
    pub len_before: usize,
    pub len_after: usize,
    pub reads: Summary,
    pub writes: Summary,
    pub saves: Vec<Save>,
    /// Invalid results (duplicate or unknown labels, wrong count) and failed writes.
    pub violations: u64,
    /// The first few violations, described.
    pub violation_examples: Vec<String>,
    /// Writers had nothing left to add before the phase ended (the base ran out).
    pub writes_ran_out: bool,
    pub per_second: Vec<Second>,
}

/// The whole report (`--json`).
#[derive(Debug, Clone, Serialize)]
pub struct ServeReport {
    pub tool: String,
    pub command: String,
    pub dataset: String,
    pub n: usize,
    pub dim: usize,
    pub metric: String,
    pub k: usize,
    pub ef: usize,
    pub m: usize,
    pub ef_construction: usize,
    pub initial: usize,
    pub readers: usize,
    pub writers: usize,
    /// `null`: closed loop (back to back).
    pub read_rate: Option<f64>,
    pub write_rate: f64,
    pub duration_s: f64,
    pub save_every_s: Option<f64>,
    pub build_seconds: f64,
    pub hardware: report::Hardware,
    pub frozen: Phase,
    pub live: Phase,
    /// live ÷ frozen reader p99 and p99.9.
    pub p99_ratio: f64,
    pub p999_ratio: f64,
    /// The targets: p99 ≤ 1.5× frozen, p99.9 ≤ 3× frozen, no read over 10 ms.
    pub p99_target_met: bool,
    pub p999_target_met: bool,
    pub no_stall_target_met: bool,
}

const NS: u64 = 1_000_000_000;

fn histogram(sigfig: u8) -> Histogram<u64> {
    Histogram::new_with_bounds(100, 600 * NS, sigfig).expect("valid histogram bounds")
}

/// One thread's latencies: the whole phase (3 significant figures) and per second (2).
struct Recorder {
    all: Histogram<u64>,
    seconds: Vec<Histogram<u64>>,
    over_10ms: u64,
}

impl Recorder {
    fn new() -> Self {
        Recorder {
            all: histogram(3),
            seconds: Vec::new(),
            over_10ms: 0,
        }
    }

    /// Records `ns` for an operation scheduled (or started) `at` seconds into the phase.
    fn record(&mut self, at: f64, ns: u64) {
        self.all.saturating_record(ns);
        let s = at.max(0.0) as usize;
        while self.seconds.len() <= s {
            self.seconds.push(histogram(2));
        }
        self.seconds[s].saturating_record(ns);
        self.over_10ms += u64::from(ns > 10_000_000);
    }

    fn merge(&mut self, other: &Recorder) {
        self.all.add(&other.all).expect("same bounds");
        while self.seconds.len() < other.seconds.len() {
            self.seconds.push(histogram(2));
        }
        for (a, b) in self.seconds.iter_mut().zip(&other.seconds) {
            a.add(b).expect("same bounds");
        }
        self.over_10ms += other.over_10ms;
    }

    fn summary(&self, seconds: f64) -> Summary {
        let h = &self.all;
        let us = |ns: u64| ns as f64 / 1e3;
        Summary {
            count: h.len(),
            per_second: h.len() as f64 / seconds.max(1e-9),
            p50_us: us(h.value_at_quantile(0.5)),
            p99_us: us(h.value_at_quantile(0.99)),
            p999_us: us(h.value_at_quantile(0.999)),
            max_us: us(h.max()),
            mean_us: h.mean() / 1e3,
            over_10ms: self.over_10ms,
        }
    }
}

/// Shared state of a phase.
struct Shared<'a> {
    index: &'a Index,
    queries: &'a Table<f32>,
    base: &'a Table<f32>,
    k: usize,
    ef: usize,
    start: Instant,
    end: Instant,
    /// `added[label]`: set just before the label's `add` is called (a search can see a
    /// vector while its `add` runs, never before).
    added: &'a [AtomicBool],
    /// Next write: a sequence number, which is also its label.
    next_write: &'a AtomicUsize,
    writes_ran_out: AtomicBool,
    violations: AtomicU64,
    examples: Mutex<Vec<String>>,
}

impl Shared<'_> {
    fn violation(&self, what: impl FnOnce() -> String) {
        if self.violations.fetch_add(1, Ordering::Relaxed) < 5 {
            self.examples.lock().unwrap_or_else(|e| e.into_inner()).push(what());
        }
    }

    fn check(&self, hits: &[Neighbour], len_before: usize, len_after: usize) {
        let k = self.k;
        if hits.len() < k.min(len_before) || hits.len() > k.min(len_after) {
            self.violation(|| {
                format!(
                    "{} results for k = {k} with {len_before}..{len_after} vectors",
                    hits.len()
                )
            });
        }
        for (i, h) in hits.iter().enumerate() {
            let known = usize::try_from(h.label)
                .ok()
                .and_then(|l| self.added.get(l))
                .is_some_and(|a| a.load(Ordering::Acquire));
            if !known {
                self.violation(|| format!("label {} returned but never added", h.label));
            }
            if hits[..i].iter().any(|o| o.label == h.label) {
                self.violation(|| format!("label {} returned twice", h.label));
            }
        }
    }
}

/// Waits until `t` (sleeping most of the way, then spinning the last ~100 µs).
fn wait_until(t: Instant) {
    loop {
        let now = Instant::now();
        if now >= t {
            return;
        }
        let left = t - now;
        if left > Duration::from_micros(200) {
            std::thread::sleep(left - Duration::from_micros(100));
        } else {
            std::hint::spin_loop();
        }
    }
}

fn reader(sh: &Shared, id: usize, rate: Option<f64>) -> Recorder {
    let mut rec = Recorder::new();
    let mut out = Vec::with_capacity(sh.k);
    let nq = sh.queries.len();
    let interval = rate.map(|r| Duration::from_secs_f64(1.0 / r));
    let mut i = 0usize;
    // Start the readers at different offsets of the schedule and of the query list.
    let mut scheduled = sh.start + interval.map_or(Duration::ZERO, |d| d.mul_f64(id as f64 / 7.0 % 1.0));
    loop {
        let now = Instant::now();
        if now >= sh.end {
            break;
        }
        let t0 = match interval {
            Some(d) => {
                if scheduled >= sh.end {
                    break;
                }
                wait_until(scheduled);
                let t = scheduled;
                scheduled += d;
                t
            }
            None => now,
        };
        let q = sh.queries.row((id * 7919 + i) % nq);
        i += 1;
        let len_before = sh.index.len();
        let r = sh.index.search_into(q, sh.k, sh.ef, &mut out);
        let done = Instant::now();
        rec.record((t0 - sh.start).as_secs_f64(), (done - t0).as_nanos() as u64);
        match r {
            Ok(()) => sh.check(&out, len_before, sh.index.len()),
            Err(e) => sh.violation(|| format!("search failed: {e}")),
        }
    }
    rec
}

/// The vector of write number `seq`: the base rows not built initially, then the whole base
/// again, shifted a little on each pass so that no vector repeats exactly.
fn write_vector(base: &Table<f32>, initial: usize, seq: usize, buf: &mut Vec<f32>) {
    let fresh = base.len() - initial;
    let (row, pass) = if seq < fresh {
        (initial + seq, 0)
    } else {
        let s = seq - fresh;
        (s % base.len(), 1 + s / base.len())
    };
    buf.clear();
    buf.extend_from_slice(base.row(row));
    if pass > 0 {
        let shift = 1e-3 * pass as f32 * (1.0 + buf.iter().map(|x| x.abs()).sum::<f32>() / buf.len() as f32);
        let i = seq % buf.len();
        buf[i] += shift;
    }
}

fn writer(sh: &Shared, rate: f64, initial: usize) -> Recorder {
    let mut rec = Recorder::new();
    let interval = Duration::from_secs_f64(1.0 / rate);
    let mut scheduled = sh.start;
    let mut v = Vec::new();
    while scheduled < sh.end {
        wait_until(scheduled);
        let t0 = scheduled;
        scheduled += interval;
        let seq = sh.next_write.fetch_add(1, Ordering::Relaxed);
        let label = initial + seq;
        let Some(flag) = sh.added.get(label) else {
            sh.writes_ran_out.store(true, Ordering::Relaxed);
            break;
        };
        write_vector(sh.base, initial, seq, &mut v);
        flag.store(true, Ordering::Release);
        if let Err(e) = sh.index.add(label as u64, &v) {
            sh.violation(|| format!("add {label} failed: {e}"));
        }
        let done = Instant::now();
        rec.record((t0 - sh.start).as_secs_f64(), (done - t0).as_nanos() as u64);
    }
    rec
}

struct PhaseSetup<'a> {
    name: &'a str,
    readers: usize,
    read_rate: Option<f64>,
    writers: usize,
    write_rate: f64,
    save_every: Option<f64>,
    save_path: Option<&'a std::path::Path>,
}

#[allow(clippy::too_many_arguments)]
fn run_phase(
    index: &Index,
    base: &Table<f32>,
    queries: &Table<f32>,
    spec: &Spec,
    initial: usize,
    added: &[AtomicBool],
    next_write: &AtomicUsize,
    p: PhaseSetup,
) -> Phase {
    let len_before = index.len();
    let start = Instant::now() + Duration::from_millis(20);
    let sh = Shared {
        index,
        queries,
        base,
        k: spec.k,
        ef: spec.ef,
        start,
        end: start + Duration::from_secs_f64(spec.duration),
        added,
        next_write,
        writes_ran_out: AtomicBool::new(false),
        violations: AtomicU64::new(0),
        examples: Mutex::new(Vec::new()),
    };
    let saves = Mutex::new(Vec::new());
    let (reads, writes) = std::thread::scope(|s| {
        let rs: Vec<_> = (0..p.readers)
            .map(|id| {
                let sh = &sh;
                s.spawn(move || reader(sh, id, p.read_rate.map(|r| r / p.readers as f64)))
            })
            .collect();
        let ws: Vec<_> = (0..p.writers)
            .map(|_| {
                let sh = &sh;
                s.spawn(move || writer(sh, p.write_rate / p.writers as f64, initial))
            })
            .collect();
        if let (Some(every), Some(path)) = (p.save_every, p.save_path) {
            let (sh, saves) = (&sh, &saves);
            s.spawn(move || {
                let mut next = sh.start + Duration::from_secs_f64(every);
                while next < sh.end {
                    wait_until(next);
                    let t = Instant::now();
                    if let Err(e) = sh.index.save(path) {
                        sh.violation(|| format!("save failed: {e}"));
                    }
                    saves.lock().unwrap().push(Save {
                        at_s: (t - sh.start).as_secs_f64(),
                        seconds: t.elapsed().as_secs_f64(),
                    });
                    next += Duration::from_secs_f64(every);
                }
            });
        }
        let merge = |hs: Vec<std::thread::ScopedJoinHandle<'_, Recorder>>| {
            let mut all = Recorder::new();
            for h in hs {
                all.merge(&h.join().expect("a benchmark thread panicked"));
            }
            all
        };
        (merge(rs), merge(ws))
    });
    let seconds = spec.duration;
    let n_seconds = reads
        .seconds
        .len()
        .max(writes.seconds.len())
        .min(seconds.ceil() as usize);
    let q = |h: Option<&Histogram<u64>>, f: fn(&Histogram<u64>) -> u64| h.map_or(0.0, |h| f(h) as f64 / 1e3);
    let per_second = (0..n_seconds)
        .map(|t| {
            let r = reads.seconds.get(t);
            let w = writes.seconds.get(t);
            Second {
                t,
                reads: r.map_or(0, |h| h.len()),
                writes: w.map_or(0, |h| h.len()),
                read_p50_us: q(r, |h| h.value_at_quantile(0.5)),
                read_p99_us: q(r, |h| h.value_at_quantile(0.99)),
                read_max_us: q(r, |h| h.max()),
                write_p99_us: q(w, |h| h.value_at_quantile(0.99)),
                write_max_us: q(w, |h| h.max()),
            }
        })
        .collect();
    Phase {
        name: p.name.into(),
        seconds,
        len_before,
        len_after: index.len(),
        reads: reads.summary(seconds),
        writes: writes.summary(seconds),
        saves: saves.into_inner().unwrap(),
        violations: sh.violations.load(Ordering::Relaxed),
        violation_examples: sh.examples.into_inner().unwrap(),
        writes_ran_out: sh.writes_ran_out.load(Ordering::Relaxed),
        per_second,
    }
}

/// Runs both phases and prints the table.
pub fn run(spec: &Spec) -> Result<ServeReport, String> {
    if spec.k == 0 || spec.readers == 0 || spec.duration <= 0.0 || !spec.duration.is_finite() {
        return Err("--k, --readers and --duration must be positive".into());
    }
    if !(spec.initial > 0.0 && spec.initial <= 1.0) {
        return Err("--initial must be in (0, 1]".into());
    }
    for (name, r) in [("--read-rate", spec.read_rate), ("--write-rate", spec.write_rate)] {
        if r.is_some_and(|r| !(r > 0.0 && r.is_finite())) {
            return Err(format!("{name} must be a positive number"));
        }
    }
    if spec.save_every.is_some_and(|s| !(s > 0.0 && s.is_finite())) {
        return Err("--save-every must be a positive number of seconds".into());
    }
    let base = load::vectors(&spec.base)?;
    let queries = load::vectors(&spec.query)?;
    if base.dim() != queries.dim() {
        return Err(format!(
            "dimension mismatch: base {} vs queries {}",
            base.dim(),
            queries.dim()
        ));
    }
    let n = base.len();
    let initial = ((n as f64 * spec.initial).round() as usize).clamp(1, n);
    let params = Params::new(base.dim(), spec.metric)
        .m(spec.m)
        .ef_construction(spec.ef_construction);
    let mut index = Index::new(params, initial).map_err(|e| e.to_string())?;
    let started = Instant::now();
    let labels: Vec<u64> = (0..initial as u64).collect();
    pool(spec.threads.max(1))?
        .install(|| index.add_batch(&labels, &base.as_slice()[..initial * base.dim()]))
        .map_err(|e| format!("{}: {e}", spec.base.display()))?;
    let build_seconds = started.elapsed().as_secs_f64();
    eprintln!("built {initial} × {} in {build_seconds:.2} s", base.dim());

    let initial_flags: Vec<AtomicBool> = (0..initial).map(|_| AtomicBool::new(true)).collect();
    let next_write = AtomicUsize::new(0);
    let frozen = run_phase(
        &index,
        &base,
        &queries,
        spec,
        initial,
        &initial_flags,
        &next_write,
        PhaseSetup {
            name: "frozen",
            readers: spec.readers,
            read_rate: spec.read_rate,
            writers: 0,
            write_rate: 1.0,
            save_every: None,
            save_path: None,
        },
    );
    let write_rate = spec.write_rate.unwrap_or(0.1 * frozen.reads.per_second).max(1.0);
    let writers = spec.writers;
    // Room for every write the live phase can schedule (reserve needs no readers: none run
    // between the phases).
    let writes = if writers == 0 {
        0
    } else {
        (write_rate * spec.duration).ceil() as usize + writers
    };
    index.reserve(writes).map_err(|e| e.to_string())?;
    let added: Vec<AtomicBool> = (0..initial + writes).map(|i| AtomicBool::new(i < initial)).collect();
    let save_path = spec.save_every.map(|_| {
        spec.save_path
            .clone()
            .unwrap_or_else(|| std::env::temp_dir().join(format!("hnswx-serve-bench-{}.hnswx", std::process::id())))
    });
    let live = run_phase(
        &index,
        &base,
        &queries,
        spec,
        initial,
        &added,
        &next_write,
        PhaseSetup {
            name: "live",
            readers: spec.readers,
            read_rate: spec.read_rate,
            writers,
            write_rate,
            save_every: spec.save_every,
            save_path: save_path.as_deref(),
        },
    );
    if spec.save_path.is_none() {
        if let Some(p) = &save_path {
            let _ = std::fs::remove_file(p);
        }
    }
    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { f64::NAN };
    let p99_ratio = ratio(live.reads.p99_us, frozen.reads.p99_us);
    let p999_ratio = ratio(live.reads.p999_us, frozen.reads.p999_us);
    let r = ServeReport {
        tool: "hnswx".into(),
        command: "serve-bench".into(),
        dataset: spec.name.clone().unwrap_or_else(|| dataset_name(&spec.base)),
        n,
        dim: base.dim(),
        metric: metric_name(spec.metric).into(),
        k: spec.k,
        ef: spec.ef,
        m: spec.m,
        ef_construction: spec.ef_construction,
        initial,
        readers: spec.readers,
        writers,
        read_rate: spec.read_rate,
        write_rate,
        duration_s: spec.duration,
        save_every_s: spec.save_every,
        build_seconds,
        hardware: report::hardware(spec.readers + writers, index.kernel().isa().name()),
        p99_target_met: p99_ratio <= 1.5,
        p999_target_met: p999_ratio <= 3.0,
        no_stall_target_met: live.reads.max_us <= 10_000.0 && frozen.reads.max_us <= 10_000.0,
        p99_ratio,
        p999_ratio,
        frozen,
        live,
    };
    print!("{}", table(&r));
    Ok(r)
}

/// The report as text: the summary table, the targets, then the live phase per second.
pub fn table(r: &ServeReport) -> String {
    let mut s = format!(
        "serve-bench: {} ({} × {}, {}), k = {}, ef = {}, {} reader(s) {}, {} writer(s) at {:.0} vectors/s, {:.0} s per phase; {} cores ({})\n",
        r.dataset,
        r.n,
        r.dim,
        r.metric,
        r.k,
        r.ef,
        r.readers,
        r.read_rate.map_or("back to back".into(), |q| format!("open loop at {q:.0} queries/s")),
        r.writers,
        r.write_rate,
        r.duration_s,
        r.hardware.cores,
        r.hardware.cpu
    );
    s += "\n| phase | reads/s | read p50 µs | p99 | p99.9 | max | reads > 10 ms | writes/s | write p50 µs | p99 | p99.9 | max | saves | violations |\n";
    s += "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
    for p in [&r.frozen, &r.live] {
        let (rd, w) = (&p.reads, &p.writes);
        s += &format!(
            "| {} | {:.0} | {:.1} | {:.1} | {:.1} | {:.1} | {} | {:.0} | {:.1} | {:.1} | {:.1} | {:.1} | {} | {} |\n",
            p.name,
            rd.per_second,
            rd.p50_us,
            rd.p99_us,
            rd.p999_us,
            rd.max_us,
            rd.over_10ms,
            w.per_second,
            w.p50_us,
            w.p99_us,
            w.p999_us,
            w.max_us,
            p.saves.len(),
            p.violations
        );
    }
    let yes = |b: bool| if b { "met" } else { "NOT met" };
    s += &format!(
        "\nlive ÷ frozen reads: p99 {:.2}× (target ≤ 1.5×: {}), p99.9 {:.2}× (target ≤ 3×: {}); longest read {:.1} ms (target ≤ 10 ms: {})\n",
        r.p99_ratio,
        yes(r.p99_target_met),
        r.p999_ratio,
        yes(r.p999_target_met),
        r.frozen.reads.max_us.max(r.live.reads.max_us) / 1e3,
        yes(r.no_stall_target_met)
    );
    for p in [&r.frozen, &r.live] {
        for e in &p.violation_examples {
            s += &format!("violation ({}): {e}\n", p.name);
        }
        if p.writes_ran_out {
            s += &format!(
                "note ({}): the writers ran out of room before the phase ended\n",
                p.name
            );
        }
    }
    for sv in &r.live.saves {
        s += &format!("save at {:.2} s took {:.1} ms\n", sv.at_s, sv.seconds * 1e3);
    }
    s += "\nper second (frozen | live): reads, read p99 µs, read max µs | reads, writes, read p99, read max, write p99 µs\n";
    for t in 0..r.frozen.per_second.len().max(r.live.per_second.len()) {
        let f = r.frozen.per_second.get(t).cloned().unwrap_or_default();
        let l = r.live.per_second.get(t).cloned().unwrap_or_default();
        s += &format!(
            "{t:>4}: {:>7} {:>8.1} {:>9.1} | {:>7} {:>6} {:>8.1} {:>9.1} {:>9.1}\n",
            f.reads, f.read_p99_us, f.read_max_us, l.reads, l.writes, l.read_p99_us, l.read_max_us, l.write_p99_us
        );
    }
    s
}

//! `hnswx serve-bench`: tail latency of single queries while writers add vectors, against the
//! same readers on a frozen index.
//!
//! Two phases of the same length on one index: **frozen** (readers only), then **live**
//! (readers, plus writers at `--write-rate` that add, remove, update and restore in the
//! proportions of `--write-mix`, plus an optional save every `--save-every` seconds and an
//! optional `consolidate()` every `--consolidate-every` seconds). Readers issue one query at a time, either back to back (closed
//! loop) or at `--read-rate` queries per second in all (open loop: each query has a scheduled
//! send time and its latency is measured from that time, so a stall delays every query
//! scheduled behind it and shows up in the tail instead of hiding in a lower throughput: no
//! coordinated omission). Writers are always open loop, latency from their scheduled time.
//!
//! Every result is checked while the run goes on: labels distinct, each one added (or being
//! added) before the query returned, none removed before the query began and still removed
//! (a label removed *while* the query runs may legitimately appear), and the count
//! `min(k, len)` (less the removals and updates that ran during the query: a label being
//! updated is briefly in neither node). Violations are counted and reported; they must be 0.

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
    /// Relative weights of the write kinds (see [`WriteMix`]).
    pub write_mix: WriteMix,
    /// Seconds between background `consolidate()` calls in the live phase.
    pub consolidate_every: Option<f64>,
    /// Pin reader `i` to core `i`, writer `j` to core `cores - 1 - j` (modulo the cores).
    pub pin: bool,
    pub threads: usize,
}

/// The kinds of write a writer issues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteKind {
    /// A fresh label: the rest of the base, then shifted copies of it.
    Add,
    /// A random live label.
    Remove,
    /// A random live label gets a slightly shifted vector.
    Update,
    /// A random removed label comes back: `restore`, or `add` again with its vector when a
    /// consolidation took it.
    Restore,
}

impl WriteKind {
    const ALL: [WriteKind; 4] = [WriteKind::Add, WriteKind::Remove, WriteKind::Update, WriteKind::Restore];

    fn name(self) -> &'static str {
        match self {
            WriteKind::Add => "add",
            WriteKind::Remove => "remove",
            WriteKind::Update => "update",
            WriteKind::Restore => "restore",
        }
    }
}

/// Relative weights of add, remove, update and restore (`--write-mix add:remove:update[:restore]`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WriteMix(pub [f64; 4]);

impl Default for WriteMix {
    /// Adds only (what serve-bench did before the mix existed).
    fn default() -> Self {
        WriteMix([1.0, 0.0, 0.0, 0.0])
    }
}

impl std::str::FromStr for WriteMix {
    type Err = String;

    /// `A:R:U` or `A:R:U:S`: non-negative weights, at least one positive.
    fn from_str(text: &str) -> Result<Self, String> {
        let parts: Vec<&str> = text.split(':').collect();
        if !(3..=4).contains(&parts.len()) {
            return Err(format!(
                "--write-mix {text:?}: expected add:remove:update[:restore], e.g. 8:1:1"
            ));
        }
        let mut w = [0.0; 4];
        for (slot, part) in w.iter_mut().zip(&parts) {
            *slot = part
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite() && *x >= 0.0)
                .ok_or_else(|| format!("--write-mix {text:?}: {part:?} is not a non-negative number"))?;
        }
        if w.iter().sum::<f64>() <= 0.0 {
            return Err(format!("--write-mix {text:?}: at least one weight must be positive"));
        }
        Ok(WriteMix(w))
    }
}

impl WriteMix {
    /// The kind for a uniform draw `u` in [0, 1).
    fn pick(&self, u: f64) -> WriteKind {
        let total: f64 = self.0.iter().sum();
        let mut x = u * total;
        for (kind, &w) in WriteKind::ALL.iter().zip(&self.0) {
            if x < w {
                return *kind;
            }
            x -= w;
        }
        WriteKind::Add
    }

    /// As written on the command line (`8:1:1:0`).
    pub fn text(&self) -> String {
        self.0.iter().map(|w| format!("{w}")).collect::<Vec<_>>().join(":")
    }
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

/// A background consolidation during the live phase.
#[derive(Debug, Clone, Serialize)]
pub struct Consolidation {
    /// Seconds into the phase when it started.
    pub at_s: f64,
    pub seconds: f64,
    /// Slots it freed.
    pub freed: usize,
}

/// One phase's results.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Phase {
    pub name: String,
    pub seconds: f64,
    pub len_before: usize,
    pub len_after: usize,
    pub reads: Summary,
    /// On-CPU time of each read (the reader thread's CPU clock around the search, Linux
    /// only): latency less the time the thread waited for a core (or, open loop, for its
    /// send time). Zeros where the clock is not read.
    pub reads_on_cpu: Summary,
    /// Reads that spent over 1 ms off the CPU (preempted or waiting for a core) during the
    /// search itself.
    pub reads_off_cpu_over_1ms: u64,
    /// Row locks found held when taken during the phase ([`hnswx::row_lock_waits`]): only
    /// writers and consolidation take them, never a search.
    pub row_lock_waits: u64,
    /// Every write, whatever its kind.
    pub writes: Summary,
    /// Writes by kind (`add`, `remove`, `update`, `restore`; kinds that ran).
    pub writes_by_kind: std::collections::BTreeMap<String, Summary>,
    pub saves: Vec<Save>,
    pub consolidations: Vec<Consolidation>,
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
    /// Weights of add:remove:update:restore.
    pub write_mix: String,
    pub consolidate_every_s: Option<f64>,
    /// Readers and writers pinned to cores (`--pin`).
    pub pinned: bool,
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

/// The writers' book of labels, which the readers' checks consult.
///
/// `state[label]` is 0 for a label never added, else `event << 1 | live`, where `event` is
/// a number drawn from `events` when the state changed. A writer marks a label live *before*
/// calling `add` or `restore` (a search may see it while that call runs), and removed only
/// *after* `remove` returned. A reader notes `events` when its query starts; a result whose
/// label is marked removed by an event older than that was removed before the query began
/// (the event was drawn after `remove` returned) and was not brought back since (that would
/// have marked it live before the search could see it): a violation. A label removed while
/// the query ran carries a newer event and may appear.
struct Labels {
    state: Vec<AtomicU64>,
    events: AtomicU64,
    /// Removals and updates begun: a query during which some began may return fewer
    /// results (the label being hidden is briefly in no node).
    hides: AtomicU64,
    /// Live labels that writers may remove or update; a label is taken out while a writer
    /// works on it, so no two writers touch one label at once.
    live: Mutex<Vec<u64>>,
    /// Removed labels that writers may restore.
    removed: Mutex<Vec<u64>>,
}

impl Labels {
    /// `initial` labels live (0..initial), room for `total` labels.
    fn new(initial: usize, total: usize) -> Self {
        Labels {
            state: (0..total.max(initial))
                .map(|i| AtomicU64::new(if i < initial { 1 << 1 | 1 } else { 0 }))
                .collect(),
            events: AtomicU64::new(2),
            hides: AtomicU64::new(0),
            live: Mutex::new((0..initial as u64).collect()),
            removed: Mutex::new(Vec::new()),
        }
    }

    /// Marks `label` live (before the call that adds or restores it).
    fn mark_live(&self, label: usize) {
        let e = self.events.fetch_add(1, Ordering::SeqCst);
        self.state[label].store(e << 1 | 1, Ordering::SeqCst);
    }

    /// Marks `label` removed (after `remove` returned).
    fn mark_removed(&self, label: usize) {
        let e = self.events.fetch_add(1, Ordering::SeqCst);
        self.state[label].store(e << 1, Ordering::SeqCst);
    }

    /// Takes a random label out of `list` (`None` when it holds `keep` or fewer).
    fn take(list: &Mutex<Vec<u64>>, keep: usize, rng: &mut u64) -> Option<u64> {
        let mut l = list.lock().unwrap_or_else(|e| e.into_inner());
        if l.len() <= keep {
            return None;
        }
        let i = (next_random(rng) % l.len() as u64) as usize;
        Some(l.swap_remove(i))
    }

    fn put(list: &Mutex<Vec<u64>>, label: u64) {
        list.lock().unwrap_or_else(|e| e.into_inner()).push(label);
    }
}

/// xorshift64*: the writers' choices (kinds, labels), reproducible per writer.
fn next_random(x: &mut u64) -> u64 {
    *x ^= *x >> 12;
    *x ^= *x << 25;
    *x ^= *x >> 27;
    x.wrapping_mul(0x2545_F491_4F6C_DD1D)
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
    labels: &'a Labels,
    mix: WriteMix,
    /// Next fresh add: a sequence number, which is also its label less `initial`.
    next_write: &'a AtomicUsize,
    writes_ran_out: AtomicBool,
    violations: AtomicU64,
    examples: Mutex<Vec<String>>,
}

/// What a reader noted as its query started.
struct QueryStart {
    len: usize,
    event: u64,
    hides: u64,
}

impl Shared<'_> {
    fn violation(&self, what: impl FnOnce() -> String) {
        if self.violations.fetch_add(1, Ordering::Relaxed) < 5 {
            self.examples.lock().unwrap_or_else(|e| e.into_inner()).push(what());
        }
    }

    fn query_start(&self) -> QueryStart {
        // The event counter first: anything it counts finished before the search began.
        let event = self.labels.events.load(Ordering::SeqCst);
        let hides = self.labels.hides.load(Ordering::SeqCst);
        QueryStart {
            len: self.index.len(),
            event,
            hides,
        }
    }

    fn check(&self, hits: &[Neighbour], start: &QueryStart) {
        let k = self.k;
        let len_after = self.index.len();
        let hidden = self.labels.hides.load(Ordering::SeqCst) - start.hides;
        let low = k.min(start.len.min(len_after)).saturating_sub(hidden as usize);
        let high = k.min(start.len.max(len_after) + hidden as usize);
        if hits.len() < low || hits.len() > high {
            self.violation(|| {
                format!(
                    "{} results for k = {k} with {}..{len_after} vectors ({hidden} hidden meanwhile)",
                    hits.len(),
                    start.len
                )
            });
        }
        for (i, h) in hits.iter().enumerate() {
            let state = usize::try_from(h.label)
                .ok()
                .and_then(|l| self.labels.state.get(l))
                .map_or(0, |a| a.load(Ordering::SeqCst));
            if state == 0 {
                self.violation(|| format!("label {} returned but never added", h.label));
            } else if state & 1 == 0 && state >> 1 < start.event {
                self.violation(|| {
                    format!(
                        "label {} returned but removed before the query began (event {} < {})",
                        h.label,
                        state >> 1,
                        start.event
                    )
                });
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

/// This thread's CPU time in ns (`None` where the clock is not available).
fn thread_cpu_ns() -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant Linux knows.
        let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
        (rc == 0).then(|| ts.tv_sec as u64 * NS + ts.tv_nsec as u64)
    }
    #[cfg(not(target_os = "linux"))]
    None
}

/// Pins the calling thread to `core` (modulo the cores it may use); a note on failure.
fn pin_to(core: usize) {
    #[cfg(target_os = "linux")]
    {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        // SAFETY: `cpu_set_t` is a plain bit array: all zeros is a valid empty set.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: `core % cores` is below `CPU_SETSIZE` (1,024) on any machine this runs on:
        // `available_parallelism` counts the cores of this thread's affinity mask.
        unsafe { libc::CPU_SET(core % cores, &mut set) };
        // SAFETY: `set` is a valid cpu_set_t of the size passed; pid 0 is the calling thread.
        let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
        if rc != 0 {
            eprintln!("note: could not pin a thread to core {}", core % cores);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = core;
}

/// A reader's latencies: wall (from the send time) and on-CPU.
struct ReaderRecords {
    wall: Recorder,
    cpu: Recorder,
    off_cpu_over_1ms: u64,
}

fn reader(sh: &Shared, id: usize, rate: Option<f64>, pin: bool) -> ReaderRecords {
    if pin {
        pin_to(id);
    }
    let mut rec = ReaderRecords {
        wall: Recorder::new(),
        cpu: Recorder::new(),
        off_cpu_over_1ms: 0,
    };
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
        let start = sh.query_start();
        let (cpu0, w0) = (thread_cpu_ns(), Instant::now());
        let r = sh.index.search_into(q, sh.k, sh.ef, &mut out);
        let done = Instant::now();
        let at = (t0 - sh.start).as_secs_f64();
        rec.wall.record(at, (done - t0).as_nanos() as u64);
        if let (Some(a), Some(b)) = (cpu0, thread_cpu_ns()) {
            let cpu = b.saturating_sub(a);
            rec.cpu.record(at, cpu);
            let wall = (done - w0).as_nanos() as u64;
            rec.off_cpu_over_1ms += u64::from(wall.saturating_sub(cpu) > 1_000_000);
        }
        match r {
            Ok(()) => sh.check(&out, &start),
            Err(e) => sh.violation(|| format!("search failed: {e}")),
        }
    }
    rec
}

/// Base row `row`, with component `seq % dim` shifted by a small amount growing with `pass`
/// (0: unshifted), into `buf`.
fn shifted(base: &Table<f32>, row: usize, pass: usize, seq: usize, buf: &mut Vec<f32>) {
    buf.clear();
    buf.extend_from_slice(base.row(row));
    if pass > 0 {
        let shift = 1e-3 * pass as f32 * (1.0 + buf.iter().map(|x| x.abs()).sum::<f32>() / buf.len() as f32);
        let i = seq % buf.len();
        buf[i] += shift;
    }
}

/// The vector of fresh add number `seq`: the base rows not built initially, then the whole
/// base again, shifted a little on each pass so that no vector repeats exactly.
fn write_vector(base: &Table<f32>, initial: usize, seq: usize, buf: &mut Vec<f32>) {
    let fresh = base.len() - initial;
    let (row, pass) = if seq < fresh {
        (initial + seq, 0)
    } else {
        let s = seq - fresh;
        (s % base.len(), 1 + s / base.len())
    };
    shifted(base, row, pass, seq, buf);
}

/// The vector `label` was first added with.
fn label_vector(base: &Table<f32>, initial: usize, label: usize, buf: &mut Vec<f32>) {
    if label < initial {
        shifted(base, label, 0, label, buf);
    } else {
        write_vector(base, initial, label - initial, buf);
    }
}

/// One writer's latencies: all writes, and per kind (in [`WriteKind::ALL`]'s order).
struct WriterRecords {
    all: Recorder,
    kinds: [Recorder; 4],
}

fn writer(sh: &Shared, id: usize, rate: f64, initial: usize, pin: bool) -> WriterRecords {
    if pin {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        pin_to(cores - 1 - id % cores);
    }
    let mut rec = WriterRecords {
        all: Recorder::new(),
        kinds: std::array::from_fn(|_| Recorder::new()),
    };
    let interval = Duration::from_secs_f64(1.0 / rate);
    let mut scheduled = sh.start;
    let mut v = Vec::new();
    let mut rng = 0x9E37_79B9_7F4A_7C15u64 ^ (id as u64 + 1).wrapping_mul(0xD1B5_4A32_D192_ED03);
    let labels = sh.labels;
    // Removals stop once this few live labels are left.
    let keep = sh.k.max(1);
    let mut updates = 0usize;
    while scheduled < sh.end {
        wait_until(scheduled);
        let t0 = scheduled;
        scheduled += interval;
        let u = (next_random(&mut rng) >> 11) as f64 / (1u64 << 53) as f64;
        let mut kind = sh.mix.pick(u);
        let mut label = None;
        if matches!(kind, WriteKind::Remove | WriteKind::Update) {
            label = Labels::take(&labels.live, keep, &mut rng);
        } else if kind == WriteKind::Restore {
            label = Labels::take(&labels.removed, 0, &mut rng);
        }
        if label.is_none() {
            // Nothing to remove, update or restore: add instead.
            kind = WriteKind::Add;
        }
        match (kind, label) {
            (WriteKind::Remove, Some(l)) => {
                labels.hides.fetch_add(1, Ordering::SeqCst);
                match sh.index.remove(l) {
                    Ok(()) => {
                        labels.mark_removed(l as usize);
                        Labels::put(&labels.removed, l);
                    }
                    Err(e) => {
                        sh.violation(|| format!("remove {l} failed: {e}"));
                        Labels::put(&labels.live, l);
                    }
                }
            }
            (WriteKind::Update, Some(l)) => {
                labels.hides.fetch_add(1, Ordering::SeqCst);
                updates += 1;
                let mut buf = std::mem::take(&mut v);
                label_vector(sh.base, initial, l as usize, &mut buf);
                let i = (updates + id) % buf.len();
                buf[i] += 1e-3 * (1.0 + buf[i].abs());
                if let Err(e) = sh.index.update(l, &buf) {
                    sh.violation(|| format!("update {l} failed: {e}"));
                }
                v = buf;
                Labels::put(&labels.live, l);
            }
            (WriteKind::Restore, Some(l)) => {
                labels.mark_live(l as usize);
                let r = match sh.index.restore(l) {
                    // Consolidated away: add it again.
                    Err(hnswx::Error::UnknownLabel(_)) => {
                        label_vector(sh.base, initial, l as usize, &mut v);
                        sh.index.add(l, &v)
                    }
                    r => r,
                };
                if let Err(e) = r {
                    sh.violation(|| format!("restore {l} failed: {e}"));
                }
                Labels::put(&labels.live, l);
            }
            _ => {
                let seq = sh.next_write.fetch_add(1, Ordering::Relaxed);
                let l = initial + seq;
                if l >= labels.state.len() {
                    sh.writes_ran_out.store(true, Ordering::Relaxed);
                    break;
                }
                write_vector(sh.base, initial, seq, &mut v);
                labels.mark_live(l);
                if let Err(e) = sh.index.add(l as u64, &v) {
                    sh.violation(|| format!("add {l} failed: {e}"));
                }
                Labels::put(&labels.live, l as u64);
            }
        }
        let done = Instant::now();
        let (at, ns) = ((t0 - sh.start).as_secs_f64(), (done - t0).as_nanos() as u64);
        rec.all.record(at, ns);
        let k = WriteKind::ALL.iter().position(|&x| x == kind).unwrap_or(0);
        rec.kinds[k].record(at, ns);
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
    consolidate_every: Option<f64>,
}

/// Runs `op` every `every` seconds from the phase's start until its end, on this thread.
fn every(sh: &Shared, every: f64, mut op: impl FnMut(f64)) {
    let mut next = sh.start + Duration::from_secs_f64(every);
    while next < sh.end {
        wait_until(next);
        op((Instant::now() - sh.start).as_secs_f64());
        next += Duration::from_secs_f64(every);
    }
}

#[allow(clippy::too_many_arguments)]
fn run_phase(
    index: &Index,
    base: &Table<f32>,
    queries: &Table<f32>,
    spec: &Spec,
    initial: usize,
    labels: &Labels,
    next_write: &AtomicUsize,
    p: PhaseSetup,
) -> Phase {
    let len_before = index.len();
    let lock_waits = hnswx::row_lock_waits();
    let start = Instant::now() + Duration::from_millis(20);
    let sh = Shared {
        index,
        queries,
        base,
        k: spec.k,
        ef: spec.ef,
        start,
        end: start + Duration::from_secs_f64(spec.duration),
        labels,
        mix: spec.write_mix,
        next_write,
        writes_ran_out: AtomicBool::new(false),
        violations: AtomicU64::new(0),
        examples: Mutex::new(Vec::new()),
    };
    let saves = Mutex::new(Vec::new());
    let consolidations = Mutex::new(Vec::new());
    let (reads, writes) = std::thread::scope(|s| {
        let rs: Vec<_> = (0..p.readers)
            .map(|id| {
                let sh = &sh;
                s.spawn(move || reader(sh, id, p.read_rate.map(|r| r / p.readers as f64), spec.pin))
            })
            .collect();
        let ws: Vec<_> = (0..p.writers)
            .map(|id| {
                let sh = &sh;
                s.spawn(move || writer(sh, id, p.write_rate / p.writers as f64, initial, spec.pin))
            })
            .collect();
        if let (Some(secs), Some(path)) = (p.save_every, p.save_path) {
            let (sh, saves) = (&sh, &saves);
            s.spawn(move || {
                every(sh, secs, |at_s| {
                    let t = Instant::now();
                    if let Err(e) = sh.index.save(path) {
                        sh.violation(|| format!("save failed: {e}"));
                    }
                    let seconds = t.elapsed().as_secs_f64();
                    saves.lock().unwrap().push(Save { at_s, seconds });
                })
            });
        }
        if let Some(secs) = p.consolidate_every {
            let (sh, consolidations) = (&sh, &consolidations);
            s.spawn(move || {
                every(sh, secs, |at_s| {
                    let t = Instant::now();
                    let freed = sh.index.consolidate();
                    let seconds = t.elapsed().as_secs_f64();
                    consolidations
                        .lock()
                        .unwrap()
                        .push(Consolidation { at_s, seconds, freed });
                })
            });
        }
        let mut reads = ReaderRecords {
            wall: Recorder::new(),
            cpu: Recorder::new(),
            off_cpu_over_1ms: 0,
        };
        for h in rs {
            let r = h.join().expect("a reader panicked");
            reads.wall.merge(&r.wall);
            reads.cpu.merge(&r.cpu);
            reads.off_cpu_over_1ms += r.off_cpu_over_1ms;
        }
        let mut writes = WriterRecords {
            all: Recorder::new(),
            kinds: std::array::from_fn(|_| Recorder::new()),
        };
        for h in ws {
            let w = h.join().expect("a writer panicked");
            writes.all.merge(&w.all);
            for (a, b) in writes.kinds.iter_mut().zip(&w.kinds) {
                a.merge(b);
            }
        }
        (reads, writes)
    });
    let seconds = spec.duration;
    let n_seconds = reads
        .wall
        .seconds
        .len()
        .max(writes.all.seconds.len())
        .min(seconds.ceil() as usize);
    let q = |h: Option<&Histogram<u64>>, f: fn(&Histogram<u64>) -> u64| h.map_or(0.0, |h| f(h) as f64 / 1e3);
    let per_second = (0..n_seconds)
        .map(|t| {
            let r = reads.wall.seconds.get(t);
            let w = writes.all.seconds.get(t);
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
    let writes_by_kind = WriteKind::ALL
        .iter()
        .zip(&writes.kinds)
        .filter(|(_, r)| !r.all.is_empty())
        .map(|(k, r)| (k.name().to_string(), r.summary(seconds)))
        .collect();
    Phase {
        name: p.name.into(),
        seconds,
        len_before,
        len_after: index.len(),
        reads: reads.wall.summary(seconds),
        reads_on_cpu: reads.cpu.summary(seconds),
        reads_off_cpu_over_1ms: reads.off_cpu_over_1ms,
        row_lock_waits: hnswx::row_lock_waits() - lock_waits,
        writes: writes.all.summary(seconds),
        writes_by_kind,
        saves: saves.into_inner().unwrap(),
        consolidations: consolidations.into_inner().unwrap(),
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
    for (name, every) in [
        ("--save-every", spec.save_every),
        ("--consolidate-every", spec.consolidate_every),
    ] {
        if every.is_some_and(|s| !(s > 0.0 && s.is_finite())) {
            return Err(format!("{name} must be a positive number of seconds"));
        }
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

    let initial_labels = Labels::new(initial, initial);
    let next_write = AtomicUsize::new(0);
    let frozen = run_phase(
        &index,
        &base,
        &queries,
        spec,
        initial,
        &initial_labels,
        &next_write,
        PhaseSetup {
            name: "frozen",
            readers: spec.readers,
            read_rate: spec.read_rate,
            writers: 0,
            write_rate: 1.0,
            save_every: None,
            save_path: None,
            consolidate_every: None,
        },
    );
    let write_rate = spec.write_rate.unwrap_or(0.1 * frozen.reads.per_second).max(1.0);
    let writers = spec.writers;
    // Room for every write the live phase can schedule (adds, updates and re-adds each take a
    // slot; reserve needs no readers: none run between the phases).
    let writes = if writers == 0 {
        0
    } else {
        (write_rate * spec.duration).ceil() as usize + writers
    };
    index.reserve(writes).map_err(|e| e.to_string())?;
    let labels = Labels::new(initial, initial + writes);
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
        &labels,
        &next_write,
        PhaseSetup {
            name: "live",
            readers: spec.readers,
            read_rate: spec.read_rate,
            writers,
            write_rate,
            save_every: spec.save_every,
            save_path: save_path.as_deref(),
            consolidate_every: spec.consolidate_every,
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
        write_mix: spec.write_mix.text(),
        consolidate_every_s: spec.consolidate_every,
        pinned: spec.pin,
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
        "serve-bench: {} ({} × {}, {}), k = {}, ef = {}, {} reader(s) {}, {} writer(s) at {:.0} writes/s (add:remove:update:restore {}{}), {:.0} s per phase; {} cores ({})\n",
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
        r.write_mix,
        r.consolidate_every_s
            .map_or(String::new(), |c| format!(", consolidate every {c} s")),
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
    s +=
        "\n| phase | read on-CPU p50 µs | p99 | p99.9 | max | reads > 1 ms off-CPU | row lock waits (writers) |\n|---|---:|---:|---:|---:|---:|---:|\n";
    for p in [&r.frozen, &r.live] {
        let c = &p.reads_on_cpu;
        s += &format!(
            "| {} | {:.1} | {:.1} | {:.1} | {:.1} | {} | {} |\n",
            p.name, c.p50_us, c.p99_us, c.p999_us, c.max_us, p.reads_off_cpu_over_1ms, p.row_lock_waits
        );
    }
    if !r.live.writes_by_kind.is_empty() {
        s += "\n| live writes | count | p50 µs | p99 | p99.9 | max |\n|---|---:|---:|---:|---:|---:|\n";
        for (kind, w) in &r.live.writes_by_kind {
            s += &format!(
                "| {kind} | {} | {:.1} | {:.1} | {:.1} | {:.1} |\n",
                w.count, w.p50_us, w.p99_us, w.p999_us, w.max_us
            );
        }
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
    for c in &r.live.consolidations {
        s += &format!(
            "consolidate at {:.2} s took {:.1} ms, freed {}\n",
            c.at_s,
            c.seconds * 1e3,
            c.freed
        );
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

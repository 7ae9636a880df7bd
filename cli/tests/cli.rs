//! The `hnswx` command on small generated files: formats, errors, the JSON report, ground
//! truth written then read back, plots.

use hnswx::data::{read_ivecs, write_fvecs, Table};
use hnswx::{BruteForce, Metric};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn hnswx(args: &[&str]) -> Output {
    hnswx_with_env(args, &[])
}

/// [`hnswx`] with environment variables set for the child only.
fn hnswx_with_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hnswx"))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("the hnswx binary runs")
}

fn ok(args: &[&str]) -> String {
    ok_with_env(args, &[])
}

/// [`ok`] with environment variables set for the child only.
fn ok_with_env(args: &[&str], env: &[(&str, &str)]) -> String {
    let out = hnswx_with_env(args, env);
    assert!(
        out.status.success(),
        "hnswx {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs a failing command; returns its one-line error.
fn fails(args: &[&str]) -> String {
    let out = hnswx(args);
    assert!(!out.status.success(), "hnswx {args:?} should fail");
    let stderr = String::from_utf8(out.stderr).unwrap();
    // Progress notes may come first; the error is the last line, and one line.
    let err = stderr.trim_end().lines().last().unwrap_or("").to_string();
    assert!(
        err.starts_with("hnswx: error:") || err.starts_with("error:"),
        "unexpected stderr: {stderr}"
    );
    err
}

/// A JSON report written by `hnswx bench --json`.
fn report(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A fresh scratch folder per test, removed with its contents when the test ends.
struct Scratch(tempfile::TempDir);

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        self.0.path()
    }
}

fn dir(name: &str) -> Scratch {
    let prefix = format!("hnswx-cli-{name}-");
    Scratch(tempfile::Builder::new().prefix(&prefix).tempdir().unwrap())
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Generates 2,000 × 16 base vectors and 50 queries with `hnswx gen`.
fn generated(d: &Path) -> (PathBuf, PathBuf) {
    let (b, q) = (d.join("g_base.fvecs"), d.join("g_query.fvecs"));
    ok(&[
        "gen",
        "--n",
        "2000",
        "--queries",
        "50",
        "--dim",
        "16",
        "--clusters",
        "10",
        "--out-base",
        s(&b),
        "--out-query",
        s(&q),
    ]);
    (b, q)
}

#[test]
fn bench_writes_a_consistent_report_csv_and_plot() {
    let d = dir("report");
    let (b, q) = generated(&d);
    let (json, csv, svg) = (d.join("r.json"), d.join("r.csv"), d.join("r.svg"));
    let stdout = ok(&[
        "bench",
        "--base",
        s(&b),
        "--query",
        s(&q),
        "--metric",
        "l2",
        "--k",
        "10",
        "--ef",
        "10,40,100",
        "--threads",
        "2",
        "--json",
        s(&json),
        "--csv",
        s(&csv),
        "--plot",
        s(&svg),
    ]);
    assert!(stdout.contains("hardware") && stdout.contains("target features") && stdout.contains("wall time"));
    let r = report(&json);
    assert_eq!(r["tool"], "hnswx");
    assert_eq!(r["dataset"], "g");
    assert_eq!((r["n"].as_u64(), r["dim"].as_u64()), (Some(2000), Some(16)));
    assert_eq!(r["metric"], "l2");
    assert_eq!(r["params"]["m"], 16);
    assert_eq!(r["params"]["ef_construction"], 200);
    assert!(r["build"]["seconds"].as_f64().unwrap() > 0.0);
    assert_eq!(r["build"]["threads"], 2);
    assert!(r["build"]["bytes_per_vector"].as_f64().unwrap() > 0.0);
    assert!(r["hardware"]["cpu"].is_string() && r["hardware"]["kernel"].is_string());
    assert!(r["hardware"]["look_ahead_from"].is_u64(), "{}", r["hardware"]);
    assert!(r["hardware"]["row_prefetch_from"].is_u64(), "{}", r["hardware"]);
    let runs = r["runs"].as_array().unwrap();
    assert_eq!(
        runs.iter().map(|x| x["ef"].as_u64().unwrap()).collect::<Vec<_>>(),
        [10, 40, 100]
    );
    for run in runs {
        let recall = run["recall"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&recall));
        assert!(run["qps_single"].as_f64().unwrap() > 0.0 && run["qps_batch"].as_f64().unwrap() > 0.0);
        assert!(run["p50_us"].as_f64().unwrap() <= run["p99_us"].as_f64().unwrap());
    }
    // On 2,000 points, ef = 100 is all but exact.
    assert!(runs[2]["recall"].as_f64().unwrap() >= 0.95, "{}", runs[2]);
    let csv = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(csv.lines().count(), 4);
    assert!(csv.starts_with("tool,dataset,ef,recall,qps_single"));
    assert!(std::fs::read_to_string(&svg).unwrap().contains("<svg"));
}

#[test]
fn ground_truth_is_written_then_read_back() {
    let d = dir("gt");
    let (b, q) = generated(&d);
    let gt = d.join("gt.ivecs");
    ok(&["gt", "--base", s(&b), "--query", s(&q), "--k", "20", "--out", s(&gt)]);
    let table = read_ivecs(&gt).unwrap();
    assert_eq!((table.len(), table.dim()), (50, 20));
    // It agrees with the library's exact search.
    let base = hnswx::data::read_fvecs(&b).unwrap();
    let queries = hnswx::data::read_fvecs(&q).unwrap();
    let mut exact = BruteForce::new(16, Metric::L2).unwrap();
    exact
        .add_batch(&(0..2000).collect::<Vec<_>>(), base.as_slice())
        .unwrap();
    for (i, qv) in queries.rows().enumerate() {
        let want: Vec<u32> = exact.search(qv, 20).unwrap().iter().map(|h| h.label as u32).collect();
        assert_eq!(table.row(i), &want[..]);
    }
    // And the bench takes it: with exact truth and a large ef, recall is near 1.
    let json = d.join("r.json");
    ok(&[
        "bench",
        "--base",
        s(&b),
        "--query",
        s(&q),
        "--gt",
        s(&gt),
        "--ef",
        "200",
        "--json",
        s(&json),
    ]);
    let r = report(&json);
    assert!(r["runs"][0]["recall"].as_f64().unwrap() >= 0.98);
}

/// A 2-D float32 NumPy file, written by hand (format 1.0).
fn write_npy(path: &Path, rows: usize, cols: usize, data: &[f32]) {
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {cols}), }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    data.iter().for_each(|x| bytes.extend_from_slice(&x.to_le_bytes()));
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn npy_and_bvecs_inputs_are_read() {
    let d = dir("formats");
    let (b, q) = generated(&d);
    let base = hnswx::data::read_fvecs(&b).unwrap();
    let npy = d.join("base.npy");
    write_npy(&npy, base.len(), base.dim(), base.as_slice());
    let json = d.join("r.json");
    ok(&[
        "bench",
        "--base",
        s(&npy),
        "--query",
        s(&q),
        "--ef",
        "64",
        "--json",
        s(&json),
    ]);
    let r = report(&json);
    assert_eq!((r["n"].as_u64(), r["dim"].as_u64()), (Some(2000), Some(16)));
    // bvecs: bytes 0..255.
    let bv = d.join("small.bvecs");
    let mut bytes = Vec::new();
    for i in 0..300u32 {
        bytes.extend_from_slice(&4u32.to_le_bytes());
        bytes.extend_from_slice(&[(i % 251) as u8, (i * 7 % 256) as u8, 3, (i / 2) as u8]);
    }
    std::fs::write(&bv, bytes).unwrap();
    ok(&["bench", "--base", s(&bv), "--query", s(&bv), "--ef", "32"]);
}

#[test]
fn bad_inputs_are_one_line_errors() {
    let d = dir("errors");
    let (b, q) = generated(&d);
    // Truncated file: one float short.
    let bytes = std::fs::read(&b).unwrap();
    let cut = d.join("cut.fvecs");
    std::fs::write(&cut, &bytes[..bytes.len() - 4]).unwrap();
    assert!(fails(&["bench", "--base", s(&cut), "--query", s(&q)]).contains("truncated"));
    // Not a texmex file at all.
    let junk = d.join("junk.fvecs");
    std::fs::write(&junk, b"this is not a vector file").unwrap();
    assert!(fails(&["bench", "--base", s(&junk), "--query", s(&q)]).contains("junk.fvecs"));
    // Wrong magic for .npy.
    let npy = d.join("bad.npy");
    std::fs::write(&npy, b"\x93NUMPX\x01\x00garbage").unwrap();
    assert!(fails(&["bench", "--base", s(&npy), "--query", s(&q)]).contains("bad.npy"));
    // Missing file, unknown extension.
    assert!(fails(&["bench", "--base", s(&d.join("nope.fvecs")), "--query", s(&q)]).contains("nope.fvecs"));
    assert!(fails(&["bench", "--base", s(&d.join("x.csv")), "--query", s(&q)]).contains("unknown format"));
    // Dimension mismatch between base and queries.
    let q8 = d.join("q8.fvecs");
    write_fvecs(&q8, &Table::new(8, vec![0.5; 80]).unwrap()).unwrap();
    assert!(fails(&["bench", "--base", s(&b), "--query", s(&q8)]).contains("dimension mismatch"));
    assert!(fails(&["gt", "--base", s(&b), "--query", s(&q8), "--out", s(&d.join("g.ivecs"))]).contains("dimension"));
    // Ground truth with fewer than k ids, or for another number of queries.
    let gt5 = d.join("gt5.ivecs");
    ok(&["gt", "--base", s(&b), "--query", s(&q), "--k", "5", "--out", s(&gt5)]);
    assert!(
        fails(&["bench", "--base", s(&b), "--query", s(&q), "--gt", s(&gt5), "--k", "10"]).contains("fewer than k")
    );
    let gt_other = d.join("gt_other.ivecs");
    ok(&[
        "gt",
        "--base",
        s(&b),
        "--query",
        s(&q8.with_file_name("g_base.fvecs")),
        "--k",
        "10",
        "--out",
        s(&gt_other),
    ]);
    assert!(fails(&["bench", "--base", s(&b), "--query", s(&q), "--gt", s(&gt_other)]).contains("ground truth"));
    // NaN in the data: the index's own error, with the file named.
    let nan = d.join("nan.fvecs");
    let mut v = vec![0.25f32; 16 * 10];
    v[37] = f32::NAN;
    write_fvecs(&nan, &Table::new(16, v).unwrap()).unwrap();
    assert!(fails(&["bench", "--base", s(&nan), "--query", s(&q)]).contains("NaN"));
    // Bad parameters.
    assert!(fails(&["bench", "--base", s(&b), "--query", s(&q), "--k", "0"]).contains("k"));
    assert!(fails(&["bench", "--base", s(&b), "--query", s(&q), "--kernel", "sse9"]).contains("unknown kernel"));
    assert!(fails(&["bench", "--base", s(&b), "--query", s(&q), "--m", "1"]).contains("m"));
    // A report that is not one.
    assert!(fails(&["plot", s(&b), "-o", s(&d.join("p.svg"))]).contains("g_base.fvecs"));
}

#[test]
fn compare_and_plot_overlay_reports() {
    let d = dir("compare");
    let (b, q) = generated(&d);
    let ours = d.join("hnswx.json");
    ok(&[
        "bench",
        "--base",
        s(&b),
        "--query",
        s(&q),
        "--ef",
        "10,20,40,80,160",
        "--json",
        s(&ours),
    ]);
    // A stand-in for hnswlib's report: the same runs at half the speed.
    let mut other = report(&ours);
    other["tool"] = "hnswlib".into();
    for run in other["runs"].as_array_mut().unwrap() {
        run["qps_single"] = (run["qps_single"].as_f64().unwrap() / 2.0).into();
    }
    let theirs = d.join("hnswlib.json");
    std::fs::write(&theirs, other.to_string()).unwrap();
    let svg = d.join("both.svg");
    let table = ok(&["compare", s(&ours), s(&theirs), "-o", s(&svg)]);
    assert!(table.contains("| g | 0.90 | hnswx |"), "{table}");
    assert!(table.contains("2.00×"), "{table}");
    ok(&["plot", s(&ours), s(&theirs), "-o", s(&d.join("p.svg"))]);
    let plot = std::fs::read_to_string(d.join("p.svg")).unwrap();
    assert!(plot.contains("hnswx") && plot.contains("hnswlib"));
}

#[test]
fn build_query_info_and_bench_a_saved_index() {
    let d = dir("saved");
    let (b, q) = generated(&d);
    let index = d.join("g.hnswx");
    let gt = d.join("gt.ivecs");
    ok(&["gt", "--base", s(&b), "--query", s(&q), "--k", "10", "--out", s(&gt)]);
    assert!(ok(&[
        "build",
        "--base",
        s(&b),
        "--metric",
        "l2",
        "--m",
        "8",
        "--out",
        s(&index)
    ])
    .contains("saved to"));
    let info = ok(&["info", s(&index)]);
    assert!(
        info.contains("2000 × 16")
            && info.contains("M = 8")
            && info.contains("unreachable from the entry point on layer 0: 0"),
        "{info}"
    );
    let answers = ok(&["query", s(&index), "--query", s(&q), "--k", "3", "--ef", "50"]);
    assert_eq!(answers.lines().count(), 50);
    // Mapped in place, the same answers.
    assert_eq!(
        ok(&["query", s(&index), "--query", s(&q), "--k", "3", "--ef", "50", "--mmap"]),
        answers
    );
    assert!(answers.lines().all(|l| l.split(' ').count() == 3 && l.contains(':')));
    let json = d.join("r.json");
    ok(&[
        "bench",
        "--index",
        s(&index),
        "--query",
        s(&q),
        "--gt",
        s(&gt),
        "--ef",
        "100",
        "--json",
        s(&json),
    ]);
    let r = report(&json);
    assert!(r["runs"][0]["recall"].as_f64().unwrap() >= 0.95);
    assert_eq!(r["params"]["m"], 8);
    ok(&[
        "bench",
        "--index",
        s(&index),
        "--mmap",
        "--query",
        s(&q),
        "--gt",
        s(&gt),
        "--ef",
        "100",
    ]);
    assert!(fails(&["bench", "--index", s(&index), "--query", s(&q)]).contains("--gt"));
    // A flipped byte in the vectors: a one-line error, unless checksums are skipped.
    let mut bytes = std::fs::read(&index).unwrap();
    bytes[400] ^= 0x10;
    std::fs::write(&index, &bytes).unwrap();
    assert!(fails(&["query", s(&index), "--query", s(&q)]).contains("checksum"));
    assert!(fails(&["info", s(&index)]).contains("checksum"));
    ok(&["query", s(&index), "--query", s(&q), "--no-verify"]);
    // A truncated index.
    std::fs::write(&index, &bytes[..bytes.len() / 2]).unwrap();
    assert!(fails(&["query", s(&index), "--query", s(&q), "--no-verify"]).contains("truncated"));
}

#[test]
fn build_info_and_bench_with_f16_codes() {
    let d = dir("f16");
    let (b, q) = generated(&d);
    let index = d.join("f16.hnswx");
    let gt = d.join("gt.ivecs");
    ok(&["gt", "--base", s(&b), "--query", s(&q), "--k", "10", "--out", s(&gt)]);
    ok(&[
        "build",
        "--base",
        s(&b),
        "--metric",
        "l2",
        "--quantization",
        "f16",
        "--out",
        s(&index),
    ]);
    let info = ok(&["info", s(&index)]);
    assert!(
        info.contains("walk:        f16 (half-precision rows, exact rerank)"),
        "{info}"
    );
    let json = d.join("r.json");
    for index_or_base in [["--index", s(&index)], ["--base", s(&b)]] {
        ok(&[
            "bench",
            index_or_base[0],
            index_or_base[1],
            "--quantization",
            "f16",
            "--query",
            s(&q),
            "--gt",
            s(&gt),
            "--ef",
            "100",
            "--json",
            s(&json),
        ]);
        let r = report(&json);
        assert!(r["runs"][0]["recall"].as_f64().unwrap() >= 0.95);
        assert_eq!(r["tool"], "hnswx-f16");
    }
    let bad = hnswx(&["build", "--base", s(&b), "--quantization", "f8", "--out", s(&index)]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("(none, sq8, f16)"));
}

#[test]
fn serve_bench_reports_frozen_and_live_phases() {
    let d = dir("serve");
    let (b, q) = generated(&d);
    let (json, svg, saved) = (d.join("serve.json"), d.join("serve.svg"), d.join("during.hnswx"));
    let table = ok(&[
        "serve-bench",
        "--base",
        s(&b),
        "--query",
        s(&q),
        "--duration",
        "0.6",
        "--read-rate",
        "2000",
        "--write-rate",
        "300",
        "--ef-construction",
        "64",
        "--save-every",
        "0.25",
        "--save-path",
        s(&saved),
        "--json",
        s(&json),
        "--svg",
        s(&svg),
    ]);
    assert!(table.contains("| frozen |") && table.contains("| live |"), "{table}");
    let r = report(&json);
    assert_eq!(
        (r["command"].as_str(), r["k"].as_u64()),
        (Some("serve-bench"), Some(10))
    );
    assert_eq!((r["n"].as_u64(), r["initial"].as_u64()), (Some(2000), Some(1000)));
    assert_eq!(r["write_rate"].as_f64(), Some(300.0));
    for phase in ["frozen", "live"] {
        let p = &r[phase];
        let reads = &p["reads"];
        assert!(reads["count"].as_u64().unwrap() > 100, "{phase}: {reads}");
        let (p50, p99, p999, max) = (
            reads["p50_us"].as_f64().unwrap(),
            reads["p99_us"].as_f64().unwrap(),
            reads["p999_us"].as_f64().unwrap(),
            reads["max_us"].as_f64().unwrap(),
        );
        assert!(
            0.0 < p50 && p50 <= p99 && p99 <= p999 && p999 <= max,
            "{phase}: {reads}"
        );
        assert!(!p["per_second"].as_array().unwrap().is_empty());
        assert!(p["violations"].is_u64());
    }
    // Nothing writes in the frozen phase; the live one adds and saves.
    assert_eq!(r["frozen"]["writes"]["count"], 0);
    assert_eq!(r["frozen"]["violations"], 0, "{}", r["frozen"]);
    let live = &r["live"];
    assert!(live["writes"]["count"].as_u64().unwrap() > 50, "{live}");
    assert!(live["len_after"].as_u64().unwrap() > live["len_before"].as_u64().unwrap());
    assert!(!live["saves"].as_array().unwrap().is_empty());
    assert!(saved.is_file());
    // No duplicate or unknown label, and no short result (a node is linked on layer 0
    // before any upper layer, so a search never ends on an unlinked one).
    assert_eq!(live["violations"], 0, "{}", live["violation_examples"]);
    for key in ["p99_ratio", "p999_ratio", "p99_target_met", "no_stall_target_met"] {
        assert!(!r[key].is_null(), "{key} missing");
    }
    assert!(std::fs::read_to_string(&svg).unwrap().contains("<svg"));
    assert!(fails(&["serve-bench", "--base", s(&b), "--query", s(&q), "--duration", "0"]).contains("--duration"));
}

#[test]
fn serve_bench_mixed_writes_and_consolidation_keep_results_valid() {
    let d = dir("serve-mix");
    let (b, q) = generated(&d);
    let json = d.join("mix.json");
    let table = ok(&[
        "serve-bench",
        "--base",
        s(&b),
        "--query",
        s(&q),
        "--duration",
        "0.8",
        "--read-rate",
        "2000",
        "--write-rate",
        "400",
        "--ef-construction",
        "64",
        "--write-mix",
        "4:3:2:1",
        "--consolidate-every",
        "0.2",
        "--json",
        s(&json),
    ]);
    assert!(table.contains("| remove |") && table.contains("| update |"), "{table}");
    let r = report(&json);
    assert_eq!(r["write_mix"], "4:3:2:1");
    let live = &r["live"];
    // No result was removed before its query began (and not restored), none twice, none
    // short beyond the removals racing the query.
    assert_eq!(live["violations"], 0, "{}", live["violation_examples"]);
    let kinds = &live["writes_by_kind"];
    for kind in ["add", "remove", "update"] {
        assert!(kinds[kind]["count"].as_u64().unwrap_or(0) > 10, "{kind}: {kinds}");
    }
    let total: u64 = kinds
        .as_object()
        .unwrap()
        .values()
        .map(|k| k["count"].as_u64().unwrap())
        .sum();
    assert_eq!(total, live["writes"]["count"].as_u64().unwrap());
    let cons = live["consolidations"].as_array().unwrap();
    assert!(!cons.is_empty(), "{live}");
    assert!(cons.iter().any(|c| c["freed"].as_u64().unwrap() > 0), "{cons:?}");
    // The default mix adds only; a malformed one is a one-line error.
    for bad in ["1:2", "a:b:c", "0:0:0", "1:-1:0"] {
        assert!(fails(&["serve-bench", "--base", s(&b), "--query", s(&q), "--write-mix", bad]).contains("write-mix"));
    }
    assert!(fails(&[
        "serve-bench",
        "--base",
        s(&b),
        "--query",
        s(&q),
        "--consolidate-every",
        "0"
    ])
    .contains("--consolidate-every"));
}

/// The two prefetch thresholds come from their variables when those hold a size, and the
/// header says which variable was taken and which was ignored.
#[test]
fn bench_reports_the_prefetch_thresholds_and_where_they_came_from() {
    let d = dir("prefetch-vars");
    let (b, q) = generated(&d);
    let json = d.join("r.json");
    let stdout = ok_with_env(
        &[
            "bench",
            "--base",
            s(&b),
            "--query",
            s(&q),
            "--metric",
            "l2",
            "--ef",
            "20",
            "--threads",
            "1",
            "--json",
            s(&json),
        ],
        &[("HNSWX_ROW_PREFETCH_FROM", "3M"), ("HNSWX_LOOK_AHEAD_FROM", "plenty")],
    );
    let r = report(&json);
    assert_eq!(r["hardware"]["row_prefetch_from"].as_u64(), Some(3 << 20));
    assert!(
        r["hardware"]["look_ahead_from"].as_u64().unwrap() >= 8 << 20,
        "{}",
        r["hardware"]
    );
    assert!(
        stdout.contains("row prefetch:    from 3.0 MiB of walked rows (HNSWX_ROW_PREFETCH_FROM=\"3M\")"),
        "{stdout}"
    );
    assert!(
        stdout.contains("HNSWX_LOOK_AHEAD_FROM=\"plenty\" is not a size, ignored"),
        "{stdout}"
    );
}

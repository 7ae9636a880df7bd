//! The benchmark report: one JSON object per run, shared with `benches/hnswlib/run.py`
//! (`"tool": "hnswlib"`). Keep the field names: other tools read them.

use serde::{Deserialize, Serialize};
use std::path::Path;

/// One benchmark run of one tool on one data set.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub tool: String,
    pub dataset: String,
    pub n: usize,
    pub dim: usize,
    pub metric: String,
    #[serde(default)]
    pub k: usize,
    #[serde(default)]
    pub queries: usize,
    pub params: Params,
    pub build: Build,
    pub hardware: Hardware,
    pub runs: Vec<Run>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Params {
    pub m: usize,
    pub ef_construction: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Build {
    pub seconds: f64,
    pub threads: usize,
    /// Resident memory the index added while it was built, per vector (same method for every
    /// tool: VmRSS after the build minus VmRSS before the index was created).
    pub bytes_per_vector: f64,
    /// The index's own accounting of its allocations, per vector (hnswx only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index_bytes_per_vector: Option<f64>,
    /// Peak resident memory of the whole process (VmHWM), bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_rss_bytes: Option<u64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Hardware {
    pub cpu: String,
    pub cores: usize,
    pub threads_used: usize,
    #[serde(default)]
    pub kernel: String,
    #[serde(default)]
    pub target_features: String,
    #[serde(default)]
    pub compiler: String,
    #[serde(default)]
    pub os: String,
    /// Bytes of walked rows from which hnswx's search prefetches ahead on this machine
    /// (`hnswx::look_ahead_threshold`); absent in older reports and in those other
    /// programs write (the peers', and `benches/hnswlib/run.py`'s, hnswx-python included).
    #[serde(default)]
    pub look_ahead_from: Option<u64>,
    /// Bytes of walked rows from which hnswx's kernels prefetch the rows they score
    /// (`hnswx::row_prefetch_setting`); absent as for `look_ahead_from`.
    #[serde(default)]
    pub row_prefetch_from: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Run {
    pub ef: usize,
    pub recall: f64,
    pub qps_single: f64,
    #[serde(default)]
    pub qps_batch: Option<f64>,
    pub p50_us: Option<f64>,
    #[serde(default)]
    pub p95_us: Option<f64>,
    pub p99_us: Option<f64>,
    #[serde(default)]
    pub p999_us: Option<f64>,
    #[serde(default)]
    pub distances_per_query: Option<f64>,
}

impl Report {
    pub fn read(path: &Path) -> Result<Report, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("{}: not a benchmark report: {e}", path.display()))
    }

    pub fn write(&self, path: &Path) -> Result<(), String> {
        let text = serde_json::to_string_pretty(self).expect("a report serialises");
        std::fs::write(path, text + "\n").map_err(|e| format!("{}: {e}", path.display()))
    }

    /// One CSV line per run, with a header.
    pub fn write_csv(&self, path: &Path) -> Result<(), String> {
        let opt = |x: Option<f64>| x.map_or(String::new(), |v| format!("{v}"));
        let mut out = String::from(
            "tool,dataset,ef,recall,qps_single,qps_batch,p50_us,p95_us,p99_us,p999_us,distances_per_query\n",
        );
        for r in &self.runs {
            out += &format!(
                "{},{},{},{},{},{},{},{},{},{},{}\n",
                self.tool,
                self.dataset,
                r.ef,
                r.recall,
                r.qps_single,
                opt(r.qps_batch),
                opt(r.p50_us),
                opt(r.p95_us),
                opt(r.p99_us),
                opt(r.p999_us),
                opt(r.distances_per_query)
            );
        }
        std::fs::write(path, out).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Single-thread QPS at `recall`, interpolated linearly between the two runs of the sweep
    /// that bracket it (runs sorted by recall); `None` if the sweep never reaches it.
    pub fn qps_at(&self, recall: f64) -> Option<f64> {
        let mut runs: Vec<&Run> = self.runs.iter().collect();
        runs.sort_by(|a, b| {
            a.recall
                .total_cmp(&b.recall)
                .then(b.qps_single.total_cmp(&a.qps_single))
        });
        let hi = runs.iter().position(|r| r.recall >= recall)?;
        if hi == 0 {
            // The cheapest setting already reaches it: its QPS is a lower bound; report it.
            return Some(runs[0].qps_single);
        }
        let (a, b) = (runs[hi - 1], runs[hi]);
        let t = (recall - a.recall) / (b.recall - a.recall);
        Some(a.qps_single + t * (b.qps_single - a.qps_single))
    }
}

/// Hardware and build facts of this process.
pub fn hardware(threads: usize, kernel: &str) -> Hardware {
    let info = hnswx::build_info();
    Hardware {
        cpu: cpu_model(),
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        threads_used: threads,
        kernel: kernel.to_string(),
        target_features: info.target_features.to_string(),
        compiler: info.rustc.to_string(),
        os: format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
        look_ahead_from: Some(hnswx::look_ahead_threshold() as u64),
        row_prefetch_from: Some(hnswx::row_prefetch_setting().bytes as u64),
    }
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name") || l.starts_with("Model"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| format!("unknown {}", std::env::consts::ARCH))
}

/// A field of `/proc/self/status` in bytes (Linux), e.g. `VmRSS` or `VmHWM`.
pub fn proc_status_bytes(field: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with(field))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

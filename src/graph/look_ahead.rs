//! When the walk prefetches: the size thresholds of the look-ahead in
//! `Index::search_layer` (see `Index::prefetch_unvisited`), from the machine's last level
//! cache, and of the kernels' own prefetch of the rows they score ([`row_prefetch`]), from
//! its level-2 cache. Both are decided per walk from the bytes of rows it walks.
//!
//! Indexes whose walked rows (codes, or the vectors, of the slots in use) take at least
//! [`threshold`] bytes get the look-ahead. When the rows stay in the caches the extra pass
//! over the link row is only work; when they come from memory the head start pays. Where
//! that happens depends on the last level cache, so the threshold is a quarter of it, and
//! never under 8 MiB ([`MIN`]). Measured with paired rounds (QPS ratio with ÷ without, same
//! graphs):
//! - Zen 3 (512 KiB L2, 32 MiB L3, so 8 MiB): sift5k's vectors (2.6 MB) 0.87×, its codes
//!   (0.66 MB) 0.83×; the 128-d mixture's codes (12.8 MB) 1.21× and 1.13×, vectors (51 MB)
//!   1.06× and 1.08×; minilm's codes (38 MB) 1.07× and 1.12×.
//! - Xeon with AVX-512 (2 MiB L2, 300 MiB L3 reported, so 75 MiB; 5 rounds): the mixture's
//!   codes 0.80× (5 of 5 slower) and vectors 0.91×; fashion-mnist's codes (47 MB) 0.92×,
//!   its vectors (188 MB) 0.98×. With the rule, the mixture's walks there ran 1.07–1.30×
//!   faster than with the look-ahead forced on (4 rounds).
//! - Zen 4 (1 MiB L2, 32 MiB L3, so 8 MiB; prefetch into L2, whole rows; 5 rounds): minilm's
//!   vectors 1.13×, codes 1.02×; fashion's vectors 1.14×, codes 1.08×; the mixture's vectors
//!   1.10×, codes (12.8 MB) 0.98×; 30,000 × 1536-d vectors 1.12×; forced on for sift5k's
//!   codes 0.77× (measured before whole rows, with the first 128 bytes of each).
//!
//! Of a half and a quarter, only a quarter keeps every Zen 3 gain (the smallest, the
//! mixture's codes, is 0.38 of that L3); on the Xeon it turns off every loss but fashion's
//! vectors (0.98×, about neutral). On the Zen 4 the same codes lose 2% with it, which a half
//! would turn off, while every gain there is on sets above half the L3. The Zen 3 and Xeon
//! figures predate the prefetch into L2 and whole rows; the fraction is not pinned closely.

use std::path::Path;
use std::sync::OnceLock;

/// The threshold's floor, and its value where the cache size is unknown.
const MIN: usize = 8 << 20;

/// A size threshold of the walk's prefetching on this machine, and where it came from
/// ([`look_ahead_setting`](crate::look_ahead_setting),
/// [`row_prefetch_setting`](crate::row_prefetch_setting)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PrefetchThreshold {
    /// Bytes of walked rows (the codes, or the vectors, of an index's slots in use).
    pub bytes: usize,
    /// Whether its environment variable set it (else the machine's caches did).
    pub from_env: bool,
}

/// `var` if it holds a size, else `rule()`.
fn settle(var: &str, rule: impl FnOnce() -> usize) -> PrefetchThreshold {
    match std::env::var(var).ok().and_then(|v| parse_size(&v)) {
        Some(bytes) => PrefetchThreshold { bytes, from_env: true },
        None => PrefetchThreshold {
            bytes: rule(),
            from_env: false,
        },
    }
}

/// Where Linux lists CPU 0's caches.
const CACHES: &str = "/sys/devices/system/cpu/cpu0/cache";

/// Bytes of walked rows from which a search prefetches the rows of its next expansion
/// ahead (the look-ahead), on this machine: `HNSWX_LOOK_AHEAD_FROM` if it holds a size
/// (bytes, or with a `K`/`M`/`G`/`T` suffix; `0`: always, for comparisons), else a quarter of
/// the last level cache Linux reports, at least 8 MiB (8 MiB where the size is unknown);
/// anything else in the variable is ignored. Read once per process: the index constructors
/// call it, so no search or insert reads a file. Benchmark reports print it, since it
/// differs between machines.
pub fn look_ahead() -> PrefetchThreshold {
    static FROM: OnceLock<PrefetchThreshold> = OnceLock::new();
    *FROM.get_or_init(|| settle("HNSWX_LOOK_AHEAD_FROM", || rule(last_level_cache_in(Path::new(CACHES)))))
}

/// The look-ahead's threshold in bytes ([`look_ahead_setting`](crate::look_ahead_setting)
/// says also where it came from): `HNSWX_LOOK_AHEAD_FROM` if it holds a size, else a quarter
/// of the last level cache, at least 8 MiB.
pub fn threshold() -> usize {
    look_ahead().bytes
}

/// Bytes of walked rows from which the walk's kernels prefetch the rows they are about to
/// score (`hnswx_kernels::Prefetch`): `HNSWX_ROW_PREFETCH_FROM` if it holds a size (as for
/// `HNSWX_LOOK_AHEAD_FROM`; `0`: always), else the size of the level-2 cache Linux reports
/// (0, so always, where it is unknown). Below it the rows mostly sit in the core's own cache,
/// and asking for them only costs instructions: on a Zen 4 (1 MiB L2), sift5k's SQ8 walk
/// (0.66 MB of codes) ran 1.06x faster without (9 of 9 paired rounds; 0.99-1.02x with the
/// AVX2 kernels), while with the prefetch off everywhere fashion-mnist's SQ8 walk (47 MB)
/// ran 0.90x as fast, minilm's (38 MB) 0.97x, and the mixture's (12.8 MB, in L3) and
/// sift5k's vectors (2.6 MB) about even (`benches/results/zen4/prefetch-ab.txt`). The
/// level-2 cache is the cautious end of that range: the gain is small, a miss costs more,
/// and other machines were not measured. The rule looks at one index at a time: a process
/// searching many small indexes, together far larger than the cache, walks each without the
/// prefetch. Read once per process, as the look-ahead's.
pub fn row_prefetch() -> PrefetchThreshold {
    static FROM: OnceLock<PrefetchThreshold> = OnceLock::new();
    *FROM.get_or_init(|| {
        settle("HNSWX_ROW_PREFETCH_FROM", || {
            level_two_cache_in(Path::new(CACHES)).unwrap_or(0)
        })
    })
}

/// A quarter of the last level cache (`llc` bytes), at least [`MIN`]; [`MIN`] when the size is
/// unknown.
fn rule(llc: Option<usize>) -> usize {
    llc.map_or(MIN, |b| (b / 4).max(MIN))
}

/// The data and unified caches listed under `dir` (sysfs's `cpu0/cache`:
/// `index*/{level,type,size}`), as `(level, bytes)`; none if there is nothing to read (no
/// such folder, as on other systems). Entries without a readable level or size are skipped.
/// Only CPU 0's view is read, and it sets the thresholds for every thread, also on parts
/// whose cores see different caches (hybrid cores, stacked cache on some dies).
fn caches_in(dir: &Path) -> Vec<(u32, usize)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| {
            let p = e.ok()?.path();
            let read = |name: &str| std::fs::read_to_string(p.join(name)).ok();
            if read("type").is_some_and(|t| t.trim() == "Instruction") {
                return None;
            }
            let level: u32 = read("level")?.trim().parse().ok()?;
            Some((level, parse_size(&read("size")?)?))
        })
        .collect()
}

/// Size of the highest-level data or unified cache listed under `dir` (see [`caches_in`]).
fn last_level_cache_in(dir: &Path) -> Option<usize> {
    caches_in(dir).into_iter().max().map(|(_, bytes)| bytes)
}

/// Size of the level-2 data or unified cache listed under `dir` (see [`caches_in`]).
fn level_two_cache_in(dir: &Path) -> Option<usize> {
    caches_in(dir)
        .into_iter()
        .filter(|&(level, _)| level == 2)
        .map(|(_, bytes)| bytes)
        .max()
}

/// `"32768K"`, `"300M"`, `"1G"`, `"1T"` or plain bytes (sysfs writes cache sizes with `K`); `None`
/// for anything else or a size that overflows `usize`.
fn parse_size(s: &str) -> Option<usize> {
    let s = s.trim();
    let (digits, unit) = match s.as_bytes().last()? {
        b'K' => (&s[..s.len() - 1], 1u64 << 10),
        b'M' => (&s[..s.len() - 1], 1 << 20),
        b'G' => (&s[..s.len() - 1], 1 << 30),
        b'T' => (&s[..s.len() - 1], 1 << 40),
        _ => (s, 1),
    };
    usize::try_from(digits.parse::<u64>().ok()?.checked_mul(unit)?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_as_sysfs_writes_them() {
        assert_eq!(parse_size("32768K\n"), Some(32 << 20));
        assert_eq!(parse_size("300M"), Some(300 << 20));
        assert_eq!(parse_size("1G"), Some(1 << 30));
        assert_eq!(parse_size("2T"), usize::try_from(2u64 << 40).ok());
        assert_eq!(parse_size(" 512 "), Some(512));
        assert_eq!(parse_size("0"), Some(0));
        for bad in ["", "K", "12X", "-1K", "1.5M", "99999999999999999999"] {
            assert_eq!(parse_size(bad), None, "{bad:?}");
        }
        // Digits that fit but overflow once scaled: the multiplication is checked.
        let k = (usize::MAX / 1024 + 1).to_string() + "K";
        assert_eq!(parse_size(&k), None);
        assert_eq!(parse_size(&(usize::MAX / 1024).to_string()).map(|_| ()), Some(()));
    }

    #[test]
    fn threshold_is_a_quarter_of_the_cache_and_at_least_the_floor() {
        assert_eq!(rule(None), MIN);
        assert_eq!(rule(Some(32 << 20)), 8 << 20);
        assert_eq!(rule(Some(300 << 20)), 75 << 20);
        assert_eq!(rule(Some(1 << 20)), MIN);
    }

    /// Writes one sysfs-like `index<i>` folder.
    fn entry(dir: &Path, i: usize, level: Option<&str>, kind: &str, size: Option<&str>) {
        let p = dir.join(format!("index{i}"));
        std::fs::create_dir_all(&p).unwrap();
        std::fs::write(p.join("type"), format!("{kind}\n")).unwrap();
        if let Some(l) = level {
            std::fs::write(p.join("level"), format!("{l}\n")).unwrap();
        }
        if let Some(s) = size {
            std::fs::write(p.join("size"), format!("{s}\n")).unwrap();
        }
    }

    #[test]
    fn the_last_level_cache_is_the_highest_level_not_the_largest_or_the_instruction_cache() {
        let t = tempfile::TempDir::new().unwrap();
        let d = t.path();
        assert_eq!(last_level_cache_in(&d.join("missing")), None);
        assert_eq!(last_level_cache_in(d), None);
        entry(d, 0, Some("1"), "Data", Some("48K"));
        entry(d, 1, Some("1"), "Instruction", Some("32K"));
        assert_eq!(last_level_cache_in(d), Some(48 << 10));
        // A level-2 cache larger than the level-3 one: the level decides.
        entry(d, 2, Some("2"), "Unified", Some("4096K"));
        entry(d, 3, Some("3"), "Unified", Some("2048K"));
        assert_eq!(last_level_cache_in(d), Some(2 << 20));
        // An instruction cache at a higher level, and entries missing a file, are skipped.
        entry(d, 4, Some("4"), "Instruction", Some("64M"));
        entry(d, 5, Some("5"), "Unified", None);
        entry(d, 6, None, "Unified", Some("128M"));
        assert_eq!(last_level_cache_in(d), Some(2 << 20));
        entry(d, 7, Some("4"), "Unified", Some("300M"));
        assert_eq!(last_level_cache_in(d), Some(300 << 20));
        assert_eq!(level_two_cache_in(d), Some(4 << 20));
    }

    #[test]
    fn the_level_two_cache_is_the_data_or_unified_one_at_level_two() {
        let t = tempfile::TempDir::new().unwrap();
        let d = t.path();
        assert_eq!(level_two_cache_in(&d.join("missing")), None);
        entry(d, 0, Some("1"), "Data", Some("48K"));
        entry(d, 1, Some("2"), "Instruction", Some("64K"));
        assert_eq!(level_two_cache_in(d), None);
        entry(d, 2, Some("3"), "Unified", Some("32M"));
        assert_eq!(level_two_cache_in(d), None);
        entry(d, 3, Some("2"), "Unified", Some("1024K"));
        assert_eq!(level_two_cache_in(d), Some(1 << 20));
    }
}

//! Row strides: indexes of odd and small dimensions (rows rounded up to 8 floats, not to
//! 16), files of every stride a loader accepts (the layout
//! written before strides were chosen per dimension, rows rounded up to 16, included), and
//! forged strides.

mod common;

use common::*;
use hnswx::{BruteForce, FileError, Index, Metric, Params, Quantization, Verify};
use std::io::Cursor;
use std::path::Path;

fn dir(name: &str) -> Scratch {
    Scratch::new(&format!("strides-{name}"))
}

fn load_bytes(bytes: &[u8]) -> Result<Index, FileError> {
    Index::read_from(&mut Cursor::new(bytes), bytes.len() as u64)
}

fn open_mmap(path: &Path, verify: Verify) -> Result<Index, FileError> {
    // SAFETY: every file here sits in this test's own folder and is never modified while
    // mapped (only replaced by a new write after the mapping is dropped).
    unsafe { Index::open_mmap(path, verify) }
}

fn saved(index: &Index, path: &Path) -> Vec<u8> {
    index.save(path).unwrap();
    std::fs::read(path).unwrap()
}

/// What a new index's rows are rounded to, unless `HNSWX_ROW_ALIGN` overrides the rule.
fn rule(dim: usize) -> Option<usize> {
    if std::env::var_os("HNSWX_ROW_ALIGN").is_some() {
        return None;
    }
    Some(dim.div_ceil(8) * 8)
}

/// `|a − b|` within `1e-4` relative.
fn close(a: f32, b: f32) -> bool {
    (a - b).abs() <= 1e-4 * (1.0 + a.abs().max(b.abs()))
}

/// The two indexes give the same results up to rounding: the same labels (but for
/// near-ties) with distances that agree.
fn alike(a: &Index, b: &Index, queries: &[&[f32]]) {
    let (mut same, mut total) = (0, 0);
    for q in queries {
        let (x, y) = (a.search(q, 10, 64).unwrap(), b.search(q, 10, 64).unwrap());
        assert_eq!(x.len(), y.len());
        for h in &x {
            total += 1;
            if let Some(g) = y.iter().find(|g| g.label == h.label) {
                same += 1;
                assert!(close(h.distance, g.distance), "{h:?} vs {g:?}");
            }
        }
    }
    assert!(same * 100 >= total * 98, "{same} of {total} results shared");
}

#[test]
fn odd_dimensions_search_like_brute_force() {
    let dims = [1, 2, 3, 5, 7, 8, 9, 12, 17, 24, 25, 31, 33, 50, 63, 65, 100];
    for dim in dims {
        let (base, queries) = mixture(1_200, 15, dim, dim as u64);
        for metric in [Metric::L2, Metric::Cosine, Metric::InnerProduct] {
            if metric == Metric::Cosine && dim == 1 {
                continue; // every normalised 1-d vector is ±1: nothing but ties
            }
            let index = build(Params::new(dim, metric).seed(7), &base, 2);
            let mut exact = BruteForce::new(dim, metric).unwrap();
            let labels: Vec<u64> = (0..base.len() as u64).collect();
            exact.add_batch(&labels, base.as_slice()).unwrap();
            let (mut good, mut total) = (0, 0);
            for q in queries.rows() {
                let want = exact.search(q, 10).unwrap();
                let got = index.search(q, 10, 128).unwrap();
                assert_eq!(got.len(), 10);
                let kth = want[9].distance;
                for h in &got {
                    // The distance is the exact one for that vector (the kernel ran over the
                    // row's stride, padding and all).
                    let v = index.get(h.label).unwrap();
                    let d = hnswx::kernels::auto().distance(metric, &normalised(q, metric), &v);
                    assert!(close(h.distance, d), "dim {dim} {metric:?}: {} vs {d}", h.distance);
                    total += 1;
                    // Ties at the k-th distance count as found.
                    good += usize::from(h.distance <= kth + 1e-5 * (1.0 + kth.abs()));
                }
            }
            assert!(good * 100 >= total * 97, "dim {dim} {metric:?}: {good} of {total}");
            if metric == Metric::L2 {
                assert_eq!(index.get(3).unwrap(), base.row(3), "dim {dim}");
            }
        }
    }
}

fn normalised(q: &[f32], metric: Metric) -> Vec<f32> {
    match metric {
        Metric::Cosine => {
            let n = q.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>().sqrt();
            q.iter().map(|&x| (f64::from(x) / n) as f32).collect()
        }
        _ => q.to_vec(),
    }
}

/// A new index writes the stride of the rule; a file of any stride from `dim` to `dim`
/// rounded up to 16 loads, maps and searches alike, and keeps its stride through growth,
/// compaction and another save.
#[test]
fn every_stride_a_file_may_carry_loads_and_answers_alike() {
    let d = dir("every");
    let plain = Quantization::None;
    for (dim, metric, quant) in [
        (25, Metric::L2, plain),
        (50, Metric::Cosine, plain),
        (3, Metric::L2, plain),
        // Stored SQ8 codes (format version 5): the rewrite moves the codes section too.
        (20, Metric::L2, Quantization::Sq8),
    ] {
        let (base, queries) = mixture(2_000, 20, dim, 40 + dim as u64);
        let queries: Vec<&[f32]> = queries.rows().collect();
        let index = build(Params::new(dim, metric).seed(3).quantization(quant), &base, 2);
        assert_eq!(index.is_trained(), quant == Quantization::Sq8);
        let file = saved(&index, &d.join("new.hnswx"));
        if let Some(stride) = rule(dim) {
            assert_eq!(file_stride(&file), stride, "dim {dim}");
        }
        for stride in dim..=dim.div_ceil(16) * 16 {
            let bytes = restride(&file, stride);
            let loaded = load_bytes(&bytes).unwrap_or_else(|e| panic!("stride {stride}: {e}"));
            alike(&index, &loaded, &queries);
            let path = d.join(format!("s{stride}.hnswx"));
            std::fs::write(&path, &bytes).unwrap();
            for verify in [Verify::All, Verify::Structure] {
                let mapped = open_mmap(&path, verify).unwrap();
                for q in &queries {
                    assert_eq!(mapped.search(q, 10, 64).unwrap(), loaded.search(q, 10, 64).unwrap());
                }
                assert_eq!(mapped.get(5).unwrap(), index.get(5).unwrap());
            }
            // Grown, added to, compacted and saved again: the file's stride stays.
            let mut grown = loaded;
            grown.reserve(10).unwrap();
            grown.add(1_000_000, base.row(7)).unwrap();
            grown.remove(8).unwrap();
            grown.compact().unwrap();
            assert_eq!(grown.search(base.row(7), 2, 64).unwrap().len(), 2);
            let again = saved(&grown, &path);
            assert_eq!(file_stride(&again), stride);
            let back = Index::load(&path).unwrap();
            assert_eq!(back.get(1_000_000).unwrap(), grown.get(1_000_000).unwrap());
            alike(&grown, &back, &queries);
        }
    }
}

/// Files written before strides were chosen per dimension (rows rounded up to 16 floats)
/// load, map, optimise and export to hnswlib; an index built now at that dimension holds
/// fewer bytes.
#[test]
fn files_with_rows_rounded_to_16_still_load() {
    let d = dir("legacy");
    let dim = 50;
    let (base, queries) = mixture(3_000, 20, dim, 9);
    let queries: Vec<&[f32]> = queries.rows().collect();
    let index = build(Params::new(dim, Metric::L2).seed(1), &base, 2);
    let legacy = restride(&saved(&index, &d.join("new.hnswx")), 64);
    assert_eq!(file_stride(&legacy), 64);
    let path = d.join("legacy.hnswx");
    std::fs::write(&path, &legacy).unwrap();
    let mut old = Index::load(&path).unwrap();
    alike(&index, &old, &queries);
    let mapped = open_mmap(&path, Verify::All).unwrap();
    for q in &queries {
        assert_eq!(mapped.search(q, 10, 64).unwrap(), old.search(q, 10, 64).unwrap());
    }
    if rule(dim).is_some() {
        // 56 floats a row instead of 64.
        assert_eq!(old.memory_bytes() - index.memory_bytes(), 3_000 * 8 * 4);
    }
    // hnswlib's format has no stride: exported from the old layout, imported into the new.
    old.export_hnswlib(d.join("h.bin")).unwrap();
    let imported = Index::import_hnswlib(d.join("h.bin"), Metric::L2).unwrap();
    alike(&old, &imported, &queries);
    for label in (0..3_000).step_by(101) {
        assert_eq!(imported.get(label).unwrap(), old.get(label).unwrap());
        assert_eq!(
            imported.neighbours(label, 0).unwrap(),
            old.neighbours(label, 0).unwrap()
        );
    }
    old.optimize().unwrap();
    alike(&index, &old, &queries);
    assert_eq!(file_stride(&saved(&old, &path)), 64);
}

/// A header whose stride is outside `dim ..= dim rounded up to 16`, or that disagrees with
/// the slab section, is a typed error from the loader and from the mapper, never a panic or
/// a read outside the file.
#[test]
fn forged_strides_are_errors() {
    let d = dir("forged");
    let dim = 25;
    let (base, _) = mixture(300, 1, dim, 5);
    let index = build(Params::new(dim, Metric::L2).seed(2).m(4), &base, 1);
    let file = saved(&index, &d.join("i.hnswx"));
    let path = d.join("forged.hnswx");
    let actual = file_stride(&file) as u32;
    for stride in [0u32, 1, 24, 33, 48, 64, 1 << 20, u32::MAX, 25, 28, 32] {
        if stride == actual {
            continue;
        }
        let mut b = file.clone();
        b[28..32].copy_from_slice(&stride.to_le_bytes());
        reseal_header(&mut b);
        let r = load_bytes(&b);
        assert!(
            matches!(r, Err(FileError::Corrupt(_))),
            "stride {stride}: {:?}",
            r.map(|i| i.len())
        );
        std::fs::write(&path, &b).unwrap();
        for verify in [Verify::All, Verify::Structure] {
            let r = open_mmap(&path, verify);
            assert!(
                matches!(r, Err(FileError::Corrupt(_))),
                "stride {stride}: {:?}",
                r.map(|i| i.len())
            );
        }
    }
}

/// hnswlib files of odd dimensions round-trip (hnswlib stores rows unpadded; ours are
/// rounded up to 8 floats).
#[test]
fn hnswlib_round_trips_at_odd_dimensions() {
    let d = dir("hnswlib");
    for dim in [3, 5, 25, 50] {
        let (base, queries) = mixture(1_500, 10, dim, 60 + dim as u64);
        for metric in [Metric::L2, Metric::Cosine] {
            let index = build(Params::new(dim, metric).m(8), &base, 2);
            let path = d.join("h.bin");
            index.export_hnswlib(&path).unwrap();
            assert_eq!(
                std::fs::metadata(&path).unwrap().len() as usize,
                96 + 1_500 * (4 + 4 * 16 + 4 * dim + 8) + 1_500 * 4 + {
                    // upper-layer links: per node 4 bytes a level of (1 + M) words
                    (0..1_500u64).map(|l| index.level(l).unwrap() * 4 * 9).sum::<usize>()
                }
            );
            let back = Index::import_hnswlib(&path, metric).unwrap();
            for q in queries.rows() {
                assert_eq!(back.search(q, 10, 40).unwrap(), index.search(q, 10, 40).unwrap());
            }
            assert_eq!(back.get(11).unwrap(), index.get(11).unwrap());
        }
    }
}

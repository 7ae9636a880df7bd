//! Quantised traversal (SQ8 codes, exact rerank): recall beside the f32 index, exact
//! distances in the results, training (automatic and explicit), persistence, growth and
//! compaction, and training while other threads search and add.

mod common;

use common::{build, mixture, recall_at, truth, Scratch};
use hnswx::{BruteForce, Error, Index, Metric, Params, Quantization, Verify, AUTO_TRAIN_ROWS};
use std::sync::atomic::{AtomicBool, Ordering};

const DIM: usize = 48;

fn sq8(metric: Metric) -> Params {
    Params::new(DIM, metric).seed(7).quantization(Quantization::Sq8)
}

/// Every returned distance is the exact one (what brute force computes for that label).
fn assert_exact(index: &Index, exact: &BruteForce, queries: &hnswx::data::Table<f32>, k: usize, ef: usize) {
    for q in queries.rows().take(50) {
        let hits = index.search(q, k, ef).unwrap();
        assert_eq!(hits.len(), k);
        let all = exact.search(q, exact.len()).unwrap();
        for h in &hits {
            let want = all.iter().find(|n| n.label == h.label).unwrap().distance;
            assert!(
                (h.distance - want).abs() <= 1e-4 * want.abs().max(1.0),
                "label {}: {} vs exact {want}",
                h.label,
                h.distance
            );
        }
        assert!(hits.windows(2).all(|w| w[0].distance <= w[1].distance));
    }
}

#[test]
fn sq8_recall_matches_f32_and_distances_are_exact() {
    let (base, queries) = mixture(4000, 100, DIM, 1);
    for metric in [Metric::L2, Metric::InnerProduct, Metric::Cosine] {
        let plain = build(Params::new(DIM, metric).seed(7), &base, 2);
        let coded = build(sq8(metric), &base, 2);
        assert!(coded.is_trained() && !plain.is_trained());
        let gt = truth(&base, &queries, metric, 10);
        for ef in [32, 64, 128] {
            let (a, b) = (
                recall_at(&plain, &queries, &gt, 10, ef),
                recall_at(&coded, &queries, &gt, 10, ef),
            );
            assert!(b >= a - 0.02, "{metric:?} ef {ef}: sq8 recall {b} vs f32 {a}");
        }
        assert!(recall_at(&coded, &queries, &gt, 10, 128) > 0.9);
        let mut exact = BruteForce::new(DIM, metric).unwrap();
        exact
            .add_batch(&(0..base.len() as u64).collect::<Vec<_>>(), base.as_slice())
            .unwrap();
        assert_exact(&coded, &exact, &queries, 10, 64);
        // A rerank of only k still gives exact distances (of fewer candidates).
        let q = queries.row(0);
        let few = coded.search_with(q, 10, 64, 0).unwrap();
        assert_eq!(few.len(), 10);
        let all = exact.search(q, exact.len()).unwrap();
        for h in &few {
            let want = all.iter().find(|n| n.label == h.label).unwrap().distance;
            assert!((h.distance - want).abs() <= 1e-4 * want.abs().max(1.0));
        }
        assert!(coded.memory_bytes() > plain.memory_bytes());
    }
}

#[test]
fn single_adds_train_once_the_index_holds_enough_rows() {
    let (base, queries) = mixture(AUTO_TRAIN_ROWS + 200, 20, DIM, 2);
    let index = Index::new(sq8(Metric::L2), base.len()).unwrap();
    for (i, v) in base.rows().enumerate() {
        index.add(i as u64, v).unwrap();
        assert_eq!(index.is_trained(), i + 1 >= AUTO_TRAIN_ROWS, "after {} adds", i + 1);
    }
    let gt = truth(&base, &queries, Metric::L2, 10);
    assert!(recall_at(&index, &queries, &gt, 10, 64) > 0.9);
}

#[test]
fn a_small_first_batch_walks_exact_rows_until_enough_arrive() {
    let (base, _) = mixture(3000, 0, DIM, 3);
    let index = Index::new(sq8(Metric::L2), base.len()).unwrap();
    index
        .add_batch(&(0..100).collect::<Vec<_>>(), &base.as_slice()[..100 * DIM])
        .unwrap();
    assert!(!index.is_trained());
    assert_eq!(index.search(base.row(5), 1, 16).unwrap()[0].label, 5);
    let labels: Vec<u64> = (100..base.len() as u64).collect();
    index.add_batch(&labels, &base.as_slice()[100 * DIM..]).unwrap();
    assert!(index.is_trained());
    for i in [0usize, 5, 99, 100, 2999] {
        let hit = index.search(base.row(i), 1, 32).unwrap()[0];
        assert_eq!(hit.label, i as u64);
        assert_eq!(hit.distance, 0.0);
    }
}

#[test]
fn explicit_training_and_its_errors() {
    let (base, _) = mixture(500, 0, DIM, 4);
    let plain = Index::new(Params::new(DIM, Metric::L2), 10).unwrap();
    assert!(matches!(
        plain.train(base.as_slice()),
        Err(Error::InvalidParameter { .. })
    ));
    let index = Index::new(sq8(Metric::Cosine), 1000).unwrap();
    assert!(matches!(index.train(&[]), Err(Error::Dimension { .. })));
    assert!(matches!(
        index.train(&base.as_slice()[..DIM + 1]),
        Err(Error::Dimension { .. })
    ));
    let mut bad = base.row(0).to_vec();
    bad[3] = f32::NAN;
    assert!(matches!(index.train(&bad), Err(Error::NonFinite { .. })));
    assert!(matches!(index.train(&[0.0; DIM]), Err(Error::ZeroVector { .. })));
    assert!(!index.is_trained());
    // Trained before anything is added: every add is coded as it arrives.
    index.train(base.as_slice()).unwrap();
    assert!(index.is_trained());
    assert!(matches!(
        index.train(base.as_slice()),
        Err(Error::InvalidParameter { .. })
    ));
    index.add_batch(&(0..500).collect::<Vec<_>>(), base.as_slice()).unwrap();
    assert_eq!(index.search(base.row(17), 1, 32).unwrap()[0].label, 17);
    // Values far outside the trained range are clamped in the codes, not lost: the exact
    // rerank still finds them.
    let far: Vec<f32> = (0..DIM).map(|i| if i == 0 { 50.0 } else { 0.01 }).collect();
    index.add(9999, &far).unwrap();
    assert_eq!(index.search(&far, 1, 64).unwrap()[0].label, 9999);
}

/// Saves `index` (node 7 removed) to `dir`, checks the file is format version 5, and that
/// the loaded and the mapped copy walk the same kind of codes, give the same results for
/// every query and still miss node 7. Returns the file's bytes.
fn round_trip(index: &Index, queries: &hnswx::data::Table<f32>, kind: Quantization, path: &std::path::Path) -> Vec<u8> {
    index.save(path).unwrap();
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(bytes[8..12], 5u32.to_le_bytes(), "version 5 with codes");
    let loaded = Index::load(path).unwrap();
    // SAFETY: the test does not modify the file while it is mapped.
    let mapped = unsafe { Index::open_mmap(path, Verify::All) }.unwrap();
    for other in [&loaded, &mapped] {
        assert!(other.is_trained());
        assert_eq!(other.params().quantization_kind(), kind);
        for q in queries.rows() {
            assert_eq!(index.search(q, 10, 48).unwrap(), other.search(q, 10, 48).unwrap());
        }
        assert!(!other.contains(7));
    }
    bytes
}

#[test]
fn save_load_and_map_keep_codes_and_results() {
    let (base, queries) = mixture(3000, 30, DIM, 5);
    let index = build(sq8(Metric::L2), &base, 2);
    index.remove(7).unwrap();
    let dir = Scratch::new("quantized");
    let bytes = round_trip(&index, &queries, Quantization::Sq8, &dir.join("sq8.hnswx"));
    // An index without codes still writes version 2.
    let plain = build(Params::new(DIM, Metric::L2), &base, 1);
    let plain_path = dir.join("plain.hnswx");
    plain.save(&plain_path).unwrap();
    assert_eq!(std::fs::read(&plain_path).unwrap()[8..12], 2u32.to_le_bytes());
    // A flipped bit in the quantiser is caught (the section is always checksummed).
    // The header's fourth reserved word (bytes 272..280): where the quantiser starts.
    let at = u64::from_le_bytes(bytes[272..280].try_into().unwrap()) as usize;
    let mut bad = bytes.clone();
    bad[at + 8 + 4 * 3] ^= 0x40;
    std::fs::write(dir.join("bad.hnswx"), &bad).unwrap();
    let err = Index::load(dir.join("bad.hnswx")).err().unwrap();
    assert!(matches!(err, hnswx::FileError::Checksum { part: "quantiser" }), "{err}");
    // Truncated inside the quantiser section.
    std::fs::write(dir.join("short.hnswx"), &bytes[..at + 20]).unwrap();
    assert!(Index::load(dir.join("short.hnswx")).is_err());
    // SAFETY: as above.
    assert!(unsafe { Index::open_mmap(dir.join("short.hnswx"), Verify::Structure) }.is_err());
}

/// Growing (`reserve`) and compacting keep the codes: the same results before and after
/// each, and the vectors left still find themselves. SQ8 under cosine (codes only) and L2
/// (codes and row constants: both must move), F16 under L2 and inner product.
#[test]
fn reserve_and_compact_keep_the_codes() {
    let (base, queries) = mixture(2600, 20, DIM, 14);
    for params in [
        sq8(Metric::Cosine),
        sq8(Metric::L2),
        f16(Metric::L2),
        f16(Metric::InnerProduct),
    ] {
        let (metric, what) = (params.metric(), format!("{params:?}"));
        let mut index = Index::new(params, 2000).unwrap();
        index
            .add_batch(&(0..2000).collect::<Vec<_>>(), &base.as_slice()[..2000 * DIM])
            .unwrap();
        let before: Vec<_> = queries.rows().map(|q| index.search(q, 5, 40).unwrap()).collect();
        index.reserve(600).unwrap();
        assert!(index.is_trained());
        let after: Vec<_> = queries.rows().map(|q| index.search(q, 5, 40).unwrap()).collect();
        assert_eq!(before, after, "{what}: reserve changed results");
        index
            .add_batch(&(2000..2600).collect::<Vec<_>>(), &base.as_slice()[2000 * DIM..])
            .unwrap();
        for i in (0..2600).step_by(50) {
            index.remove(i as u64).unwrap();
        }
        let before: Vec<_> = queries.rows().map(|q| index.search(q, 5, 40).unwrap()).collect();
        index.compact().unwrap();
        assert!(index.is_trained());
        let after: Vec<_> = queries.rows().map(|q| index.search(q, 5, 40).unwrap()).collect();
        assert_eq!(before, after, "{what}: compact changed results");
        if metric != Metric::InnerProduct {
            for i in (1..2600).step_by(97) {
                if i % 50 != 0 {
                    assert_eq!(index.search(base.row(i), 1, 64).unwrap()[0].label, i as u64, "{what}");
                }
            }
        }
    }
}

#[test]
fn training_while_others_search_and_add() {
    let (base, _) = mixture(4000, 0, DIM, 8);
    let index = Index::new(sq8(Metric::L2), base.len()).unwrap();
    index
        .add_batch(&(0..500).collect::<Vec<_>>(), &base.as_slice()[..500 * DIM])
        .unwrap();
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                for i in (0..500).step_by(7) {
                    let hits = index.search(base.row(i), 3, 24).unwrap();
                    assert_eq!(hits[0].label, i as u64);
                }
            }
        });
        s.spawn(|| {
            for i in 500..4000 {
                index.add(i as u64, base.row(i)).unwrap();
            }
        });
        // Explicit training races the adds' own automatic one: exactly one of them wins.
        let _ = index.train(&base.as_slice()[..2000 * DIM]);
        std::thread::sleep(std::time::Duration::from_millis(50));
        stop.store(true, Ordering::Relaxed);
    });
    assert!(index.is_trained());
    assert_eq!(index.len(), 4000);
    for i in (0..4000).step_by(31) {
        assert_eq!(index.search(base.row(i), 1, 48).unwrap()[0].label, i as u64);
    }
}

/// Review findings 1 and 2: data of extreme magnitude (tiny, or huge with offsets whose norm
/// passes what `check_norm` bounds per vector) must not break the walk: such queries, or such
/// quantisers, fall back to the exact rows, and recall matches the f32 index.
#[test]
fn extreme_magnitudes_fall_back_to_exact_rows() {
    let (base, queries) = mixture(1500, 20, 16, 9);
    // (Much smaller and even exact f32 squared distances underflow to 0.)
    for factor in [1e-18f32, 3e-18] {
        let scaled: Vec<f32> = base.as_slice().iter().map(|x| x * factor).collect();
        let index = Index::new(Params::new(16, Metric::L2).quantization(Quantization::Sq8), 1500).unwrap();
        index.add_batch(&(0..1500).collect::<Vec<_>>(), &scaled).unwrap();
        for i in (0..1500).step_by(101) {
            let hits = index.search(&scaled[i * 16..][..16], 10, 64).unwrap();
            assert_eq!(hits.len(), 10, "factor {factor:e}");
            assert_eq!(hits[0].label, i as u64, "factor {factor:e}");
        }
    }
    let _ = queries;
    // One-hot vectors of magnitude ~4e18: each is accepted, but the offsets' norm is not
    // bounded; the quantiser is refused and the index walks exact rows.
    let n = 500;
    let dim = 16;
    let mut data = vec![0.0f32; n * dim];
    for i in 0..n {
        data[i * dim + i % dim] = 3e18 + (i as f32) * 6e15;
    }
    let index = Index::new(Params::new(dim, Metric::L2).quantization(Quantization::Sq8), n).unwrap();
    let labels: Vec<u64> = (0..n as u64).collect();
    // Below the automatic threshold: train explicitly, which must refuse rather than install.
    assert!(matches!(index.train(&data), Err(Error::InvalidParameter { .. })));
    assert!(!index.is_trained());
    index.add_batch(&labels, &data).unwrap();
    for i in (0..n).step_by(37) {
        let hits = index.search(&data[i * dim..][..dim], 10, 64).unwrap();
        assert_eq!(hits.len(), 10);
        assert_eq!(hits[0].label, i as u64);
    }
    // And a sample whose norm `add` would refuse is refused by `train` too.
    let huge = vec![1e25f32; dim];
    let fresh = Index::new(Params::new(dim, Metric::L2).quantization(Quantization::Sq8), 10).unwrap();
    assert!(matches!(fresh.train(&huge), Err(Error::NormTooLarge { .. })));
}

/// Review finding 3: a batch refused for a duplicate label (or capacity) must not train the
/// quantiser on its rows.
#[test]
fn a_refused_batch_does_not_train() {
    let (base, _) = mixture(2000, 0, DIM, 10);
    let index = Index::new(sq8(Metric::L2), 1500).unwrap();
    let mut labels: Vec<u64> = (0..2000).collect();
    assert!(matches!(
        index.add_batch(&labels, base.as_slice()),
        Err(Error::CapacityExhausted { .. })
    ));
    labels.truncate(1400);
    labels[5] = 0;
    assert!(matches!(
        index.add_batch(&labels, &base.as_slice()[..1400 * DIM]),
        Err(Error::DuplicateLabel(0))
    ));
    assert!(!index.is_trained());
    assert_eq!(index.len(), 0);
}

#[test]
fn a_loaded_index_can_switch_kernels() {
    let (base, queries) = mixture(2000, 50, DIM, 4);
    for (n, params) in [sq8(Metric::L2), f16(Metric::L2)].into_iter().enumerate() {
        let index = build(params, &base, 1);
        let dir = Scratch::new(&format!("kernel-switch-{n}"));
        let path = dir.join("index.hnswx");
        index.save(&path).unwrap();
        let mut loaded = Index::load(&path).unwrap();
        let mut exact = BruteForce::new(DIM, Metric::L2).unwrap();
        exact
            .add_batch(&(0..base.len() as u64).collect::<Vec<_>>(), base.as_slice())
            .unwrap();
        let (before, codes_before) = (loaded.kernel().isa(), loaded.codes_isa());
        assert!(codes_before.is_some());
        // Scalar runs everywhere: the walk (codes) and the rerank switch, results stay exact.
        loaded.set_kernel(hnswx::Choice::Force(hnswx::Isa::Scalar)).unwrap();
        assert_eq!(loaded.kernel().isa(), hnswx::Isa::Scalar);
        assert_eq!(loaded.codes_isa(), Some(hnswx::Isa::Scalar));
        assert_exact(&loaded, &exact, &queries, 10, 64);
        // An instruction set this build cannot run is refused and changes nothing.
        let foreign = if cfg!(target_arch = "x86_64") {
            hnswx::Isa::Neon
        } else {
            hnswx::Isa::Avx2
        };
        assert!(matches!(
            loaded.set_kernel(hnswx::Choice::Force(foreign)),
            Err(Error::Kernel(_))
        ));
        assert_eq!(loaded.kernel().isa(), hnswx::Isa::Scalar);
        assert_eq!(loaded.codes_isa(), Some(hnswx::Isa::Scalar));
        loaded.set_kernel(hnswx::Choice::Auto).unwrap();
        assert_eq!(loaded.kernel().isa(), before);
        assert_eq!(loaded.codes_isa(), codes_before);
    }
}

// ---- F16: half-precision rows, no training ----

fn f16(metric: Metric) -> Params {
    Params::new(DIM, metric).seed(7).quantization(Quantization::F16)
}

fn brute(base: &hnswx::data::Table<f32>, metric: Metric) -> BruteForce {
    let mut exact = BruteForce::new(base.dim(), metric).unwrap();
    exact
        .add_batch(&(0..base.len() as u64).collect::<Vec<_>>(), base.as_slice())
        .unwrap();
    exact
}

/// Recall at every ef within 0.005 of the f32 index's (both built on one thread, so each
/// graph is deterministic), and exact distances in the results.
#[test]
fn f16_recall_matches_f32_and_distances_are_exact() {
    // Overlapping clusters: hard enough that recall at low ef is well below 1.
    let (base, queries) = hnswx::data::gaussian_mixture(4300, DIM, 20, 3.0, 11).split_at(4000);
    for metric in [Metric::L2, Metric::InnerProduct, Metric::Cosine] {
        let plain = build(Params::new(DIM, metric).seed(7), &base, 1);
        let coded = build(f16(metric), &base, 1);
        assert!(coded.is_trained());
        let gt = truth(&base, &queries, metric, 10);
        for ef in [10, 16, 32, 64, 128] {
            let (a, b) = (
                recall_at(&plain, &queries, &gt, 10, ef),
                recall_at(&coded, &queries, &gt, 10, ef),
            );
            eprintln!("{metric:?} ef {ef}: f32 {a:.4} f16 {b:.4}");
            assert!(b >= a - 0.005, "{metric:?} ef {ef}: f16 recall {b} vs f32 {a}");
        }
        let exact = brute(&base, metric);
        assert_exact(&coded, &exact, &queries, 10, 64);
        let q = queries.row(0);
        let few = coded.search_with(q, 10, 64, 0).unwrap();
        assert_eq!(few.len(), 10);
        let all = exact.search(q, exact.len()).unwrap();
        for h in &few {
            let want = all.iter().find(|n| n.label == h.label).unwrap().distance;
            assert!((h.distance - want).abs() <= 1e-4 * want.abs().max(1.0));
        }
        // Filtered searches rerank every result: exact distances too.
        let odd = coded.search_filtered(q, 10, 64, |l| l % 2 == 1).unwrap();
        assert_eq!(odd.len(), 10);
        for h in &odd {
            assert_eq!(h.label % 2, 1);
            let want = all.iter().find(|n| n.label == h.label).unwrap().distance;
            assert!((h.distance - want).abs() <= 1e-4 * want.abs().max(1.0));
        }
        // Two bytes per component (rows padded to 16) beside the f32 rows.
        let extra = coded.memory_bytes() - plain.memory_bytes();
        assert_eq!(extra, base.len() * DIM.div_ceil(16) * 16 * 2);
    }
}

#[test]
fn f16_walks_codes_from_the_first_vector_and_train_is_a_no_op() {
    let (base, _) = mixture(300, 0, DIM, 12);
    let index = Index::new(f16(Metric::L2), 1000).unwrap();
    assert!(index.is_trained());
    // Nothing to learn: a valid sample is accepted and changes nothing; a bad one is refused
    // as for SQ8.
    index.train(base.as_slice()).unwrap();
    assert!(matches!(index.train(&[]), Err(Error::Dimension { .. })));
    let mut bad = base.row(0).to_vec();
    bad[1] = f32::INFINITY;
    assert!(matches!(index.train(&bad), Err(Error::NonFinite { .. })));
    for (i, v) in base.rows().enumerate().take(50) {
        index.add(i as u64, v).unwrap();
        let hit = index.search(v, 1, 16).unwrap()[0];
        assert_eq!((hit.label, hit.distance), (i as u64, 0.0));
    }
    index
        .add_batch(&(50..300).collect::<Vec<_>>(), &base.as_slice()[50 * DIM..])
        .unwrap();
    for i in (0..300).step_by(13) {
        assert_eq!(index.search(base.row(i), 1, 32).unwrap()[0].label, i as u64);
    }
}

#[test]
fn f16_save_load_map_and_export_keep_results() {
    let (base, queries) = mixture(3000, 30, DIM, 13);
    let index = build(f16(Metric::Cosine), &base, 2);
    index.remove(7).unwrap();
    let dir = Scratch::new("quantized-f16");
    let bytes = round_trip(&index, &queries, Quantization::F16, &dir.join("f16.hnswx"));
    let at = u64::from_le_bytes(bytes[272..280].try_into().unwrap()) as usize;
    assert_eq!(
        bytes[at..at + 8],
        [2, 0, 0, 0, 0, 0, 0, 0],
        "kind 2 (F16), no parameters"
    );
    // Then the codes: 3000 rows of DIM halves padded to 16 (32 bytes), from the first 64-byte
    // boundary after the 48-byte block.
    let codes = 3000 * DIM.div_ceil(16) * 32;
    assert_eq!(bytes.len(), (at + 48).div_ceil(64) * 64 + codes.div_ceil(64) * 64);
    // The hnswlib export holds the f32 rows and graph: it imports as an exact index.
    let hl = dir.join("f16.hnswlib");
    index.export_hnswlib(&hl).unwrap();
    let imported = Index::import_hnswlib(&hl, Metric::Cosine).unwrap();
    assert_eq!(imported.len(), index.len());
    assert_eq!(imported.search(base.row(11), 1, 32).unwrap()[0].label, 11);
}

/// Components far beyond f16's range (±1e6) are clamped to ±65504 in the codes: the walk
/// never sees an infinity or a NaN, and the rerank returns exact distances; reranking a pool
/// as large as the index gives exactly brute force's answer.
#[test]
fn f16_extreme_values_stay_finite_and_rerank_exactly() {
    let dim = 16;
    let (base, queries) = mixture(600, 20, dim, 15);
    let blow = |t: &hnswx::data::Table<f32>| -> Vec<f32> {
        t.as_slice()
            .iter()
            .enumerate()
            .map(|(i, &x)| if i % 3 == 0 { x.signum() * 1e6 + x } else { x })
            .collect()
    };
    let (data, qs) = (blow(&base), blow(&queries));
    let base = hnswx::data::Table::new(dim, data.clone()).unwrap();
    for metric in [Metric::L2, Metric::InnerProduct, Metric::Cosine] {
        let index = Index::new(Params::new(dim, metric).quantization(Quantization::F16), 600).unwrap();
        index.add_batch(&(0..600).collect::<Vec<_>>(), &data).unwrap();
        let exact = brute(&base, metric);
        for q in qs.chunks_exact(dim) {
            let hits = index.search(q, 10, 64).unwrap();
            assert_eq!(hits.len(), 10);
            let all = exact.search(q, exact.len()).unwrap();
            for h in &hits {
                assert!(h.distance.is_finite(), "{metric:?}");
                let want = all.iter().find(|n| n.label == h.label).unwrap().distance;
                assert!(
                    (h.distance - want).abs() <= 1e-4 * want.abs().max(1.0),
                    "{metric:?}: {} vs {want}",
                    h.distance
                );
            }
            let full = index.search_with(q, 10, 600, 600).unwrap();
            let want: Vec<u64> = all.iter().take(10).map(|n| n.label).collect();
            let got: Vec<u64> = full.iter().map(|n| n.label).collect();
            assert_eq!(got, want, "{metric:?}");
        }
    }
}

//! The index's contract at its edges: every bad input is a typed error that leaves the index
//! as it was; empty indexes, small indexes, filters, growth.

mod common;

use common::*;
use hnswx::{BruteForce, Error, Index, Metric, Params};

fn small(metric: Metric) -> Index {
    let index = Index::new(Params::new(3, metric), 8).unwrap();
    index
        .add_batch(&[10, 11, 12], &[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 2.0])
        .unwrap();
    index
}

#[test]
fn bad_vectors_are_refused_and_change_nothing() {
    let index = small(Metric::L2);
    assert_eq!(index.add(1, &[1.0, 2.0]), Err(Error::Dimension { expected: 3, got: 2 }));
    assert_eq!(
        index.add(1, &[1.0, 2.0, 3.0, 4.0]),
        Err(Error::Dimension { expected: 3, got: 4 })
    );
    assert!(matches!(
        index.add(1, &[1.0, f32::NAN, 0.0]),
        Err(Error::NonFinite { position: 1, .. })
    ));
    assert!(matches!(
        index.add(1, &[f32::INFINITY, 0.0, 0.0]),
        Err(Error::NonFinite { position: 0, .. })
    ));
    assert!(matches!(
        index.add(1, &[0.0, 0.0, f32::NEG_INFINITY]),
        Err(Error::NonFinite { position: 2, .. })
    ));
    assert_eq!(index.add(11, &[5.0, 5.0, 5.0]), Err(Error::DuplicateLabel(11)));
    assert_eq!(index.len(), 3);
    assert_eq!(
        index.get(11).unwrap(),
        vec![0.0, 1.0, 0.0],
        "a duplicate never overwrites"
    );
    assert!(!index.contains(1));
    assert!(index.graph_stats().is_healthy());
}

#[test]
fn bad_batches_add_nothing() {
    let index = small(Metric::L2);
    // A NaN in the last row, a duplicate within the batch, one against the index, a ragged
    // buffer: all refused before any row is stored.
    assert!(matches!(
        index.add_batch(&[1, 2], &[0.0, 0.0, 0.0, 1.0, 1.0, f32::NAN]),
        Err(Error::NonFinite { position: 5, .. })
    ));
    assert_eq!(index.add_batch(&[1, 1], &[0.0; 6]), Err(Error::DuplicateLabel(1)));
    assert_eq!(index.add_batch(&[1, 12], &[0.0; 6]), Err(Error::DuplicateLabel(12)));
    assert!(matches!(
        index.add_batch(&[1, 2], &[0.0; 5]),
        Err(Error::Dimension { .. })
    ));
    assert_eq!(
        index.add_batch(&[20, 21, 22, 23, 24, 25], &[0.5; 18]),
        Err(Error::CapacityExhausted { capacity: 8 })
    );
    assert_eq!(index.len(), 3);
    assert!(!index.contains(1) && !index.contains(20));
}

#[test]
fn bad_queries_are_refused() {
    let index = small(Metric::L2);
    assert_eq!(index.search(&[0.0, 0.0, 0.0], 0, 10), Err(Error::ZeroK));
    assert_eq!(
        index.search(&[0.0, 0.0], 1, 10),
        Err(Error::Dimension { expected: 3, got: 2 })
    );
    assert!(matches!(
        index.search(&[0.0, f32::NAN, 0.0], 1, 10),
        Err(Error::NonFinite { .. })
    ));
    assert!(matches!(
        index.search_filtered(&[0.0, 0.0], 1, 10, |_| true),
        Err(Error::Dimension { .. })
    ));
    assert_eq!(index.search_filtered(&[0.0; 3], 0, 10, |_| true), Err(Error::ZeroK));
    assert!(matches!(
        index.search_batch(&[0.0; 4], 1, 10),
        Err(Error::Dimension { .. })
    ));
    assert_eq!(index.get(99), Err(Error::UnknownLabel(99)));
    assert_eq!(index.neighbours(99, 0), Err(Error::UnknownLabel(99)));
}

#[test]
fn cosine_refuses_zero_vectors_and_normalises() {
    let index = small(Metric::Cosine);
    assert!(matches!(index.add(1, &[0.0, 0.0, 0.0]), Err(Error::ZeroVector { .. })));
    assert!(matches!(
        index.search(&[0.0, 0.0, 0.0], 1, 10),
        Err(Error::ZeroVector { .. })
    ));
    // Stored normalised: label 12 was (0, 0, 2).
    assert_eq!(index.get(12).unwrap(), vec![0.0, 0.0, 1.0]);
    let hit = index.search(&[0.0, 0.0, 7.0], 1, 10).unwrap()[0];
    assert_eq!(hit.label, 12);
    assert!(hit.distance.abs() < 1e-6);
    // Huge components overflow a naive f32 norm; they are normalised in f64.
    index.add(2, &[3e30, 4e30, 0.0]).unwrap();
    let v = index.get(2).unwrap();
    assert!((v[0] - 0.6).abs() < 1e-6 && (v[1] - 0.8).abs() < 1e-6);
}

#[test]
fn bad_parameters_are_refused() {
    let p = |m, ef, dim| Index::new(Params::new(dim, Metric::L2).m(m).ef_construction(ef), 10).err();
    assert!(matches!(p(1, 10, 4), Some(Error::InvalidParameter { name: "m", .. })));
    assert!(matches!(
        p(100_000, 10, 4),
        Some(Error::InvalidParameter { name: "m", .. })
    ));
    assert!(matches!(
        p(16, 0, 4),
        Some(Error::InvalidParameter {
            name: "ef_construction",
            ..
        })
    ));
    assert!(matches!(
        p(16, 10, 0),
        Some(Error::InvalidParameter { name: "dim", .. })
    ));
    assert!(matches!(
        Index::new(Params::new(4, Metric::L2), usize::MAX),
        Err(Error::InvalidParameter { name: "capacity", .. })
    ));
    assert!(BruteForce::new(0, Metric::L2).is_err());
}

#[test]
fn empty_and_tiny_indexes() {
    let index = Index::new(Params::new(2, Metric::L2), 4).unwrap();
    assert!(index.search(&[0.0, 0.0], 5, 10).unwrap().is_empty());
    assert!(index.search_filtered(&[0.0, 0.0], 5, 10, |_| true).unwrap().is_empty());
    assert_eq!(index.graph_stats().nodes, 0);
    index.add(7, &[1.0, 1.0]).unwrap();
    let hits = index.search(&[0.0, 0.0], 5, 1).unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!((hits[0].label, hits[0].distance), (7, 2.0));
    // k larger than the index: everything, sorted. ef below k is raised to k.
    index.add_batch(&[8, 9], &[2.0, 2.0, 0.5, 0.5]).unwrap();
    let hits = index.search(&[0.0, 0.0], 10, 1).unwrap();
    assert_eq!(hits.iter().map(|h| h.label).collect::<Vec<_>>(), [9, 7, 8]);
    assert_eq!(index.add(10, &[3.0, 3.0]), Ok(()));
    assert_eq!(
        index.add(11, &[4.0, 4.0]),
        Err(Error::CapacityExhausted { capacity: 4 })
    );
}

#[test]
fn reserve_grows_the_index_and_keeps_what_it_held() {
    let (base, queries) = mixture(3_000, 50, 16, 5);
    let mut index = Index::new(Params::new(16, Metric::L2), 1_000).unwrap();
    let labels: Vec<u64> = (0..3_000).collect();
    index.add_batch(&labels[..1000], &base.as_slice()[..1000 * 16]).unwrap();
    assert!(matches!(
        index.add(5_000, base.row(1000)),
        Err(Error::CapacityExhausted { .. })
    ));
    let before: Vec<_> = queries.rows().map(|q| index.search(q, 5, 50).unwrap()).collect();
    index.reserve(2_000).unwrap();
    assert!(index.capacity() >= 3_000);
    let after: Vec<_> = queries.rows().map(|q| index.search(q, 5, 50).unwrap()).collect();
    assert_eq!(before, after, "growing must not change the graph");
    index.add_batch(&labels[1000..], &base.as_slice()[1000 * 16..]).unwrap();
    let truth = truth(&base, &queries, Metric::L2, 10);
    let r = recall_at(&index, &queries, &truth, 10, 64);
    assert!(r >= 0.95, "recall after growth {r}");
    assert!(index.graph_stats().is_healthy());
}

#[test]
fn filtered_search_returns_only_accepted_labels_and_finds_them() {
    let (base, queries) = mixture(5_000, 50, 16, 6);
    let index = build(Params::new(16, Metric::L2), &base, 2);
    let mut exact = BruteForce::new(16, Metric::L2).unwrap();
    // Exact answer under the filter: brute force over the accepted labels only.
    let accepted: Vec<u64> = (0..5_000).filter(|l| l % 10 == 3).collect();
    let rows: Vec<f32> = accepted.iter().flat_map(|&l| base.row(l as usize).to_vec()).collect();
    exact.add_batch(&accepted, &rows).unwrap();
    let mut hit = 0;
    for q in queries.rows() {
        let got = index.search_filtered(q, 10, 64, |l| l % 10 == 3).unwrap();
        assert_eq!(got.len(), 10);
        assert!(got.iter().all(|n| n.label % 10 == 3));
        assert!(got.windows(2).all(|w| w[0].distance <= w[1].distance));
        let want = exact.search(q, 10).unwrap();
        hit += got.iter().filter(|g| want.iter().any(|w| w.label == g.label)).count();
    }
    let r = hit as f64 / 500.0;
    assert!(r >= 0.9, "filtered recall {r}");
    // A filter nothing passes: an empty result, not an error or a hang.
    assert!(index
        .search_filtered(queries.row(0), 10, 64, |_| false)
        .unwrap()
        .is_empty());
}

#[test]
fn results_are_sorted_and_match_exact_distances() {
    let (base, queries) = mixture(2_000, 20, 8, 7);
    for metric in [Metric::L2, Metric::InnerProduct, Metric::Cosine] {
        let index = build(Params::new(8, metric), &base, 1);
        let mut exact = BruteForce::new(8, metric).unwrap();
        exact
            .add_batch(&(0..2_000).collect::<Vec<_>>(), base.as_slice())
            .unwrap();
        for q in queries.rows() {
            let got = index.search(q, 10, 200).unwrap();
            let want = exact.search(q, 10).unwrap();
            assert!(got.windows(2).all(|w| w[0].distance <= w[1].distance));
            // At ef = 200 on 2,000 points the answer is exact; distances agree to rounding.
            for (g, w) in got.iter().zip(&want) {
                assert!(
                    (g.distance - w.distance).abs() <= 1e-4 * w.distance.abs().max(1.0),
                    "{metric:?}"
                );
            }
        }
    }
}

#[test]
fn labels_removed_labels_and_check_vectors() {
    let index = Index::new(Params::new(2, Metric::Cosine), 8).unwrap();
    index.add_batch(&[5, 6, 7], &[1.0, 0.0, 0.0, 1.0, 1.0, 1.0]).unwrap();
    index.remove(6).unwrap();
    let mut live = index.labels();
    live.sort_unstable();
    assert_eq!(live, [5, 7]);
    assert_eq!(index.removed_labels(), [6]);
    index.restore(6).unwrap();
    assert!(index.removed_labels().is_empty());
    // Removed then consolidated: gone from both lists.
    index.remove(7).unwrap();
    index.consolidate();
    assert!(index.removed_labels().is_empty());
    assert_eq!(index.labels().len(), 2);
    // check_vectors refuses what add_batch refuses and adds nothing.
    assert!(index.check_vectors(&[1.0, 2.0, 3.0, 4.0]).is_ok());
    assert!(matches!(
        index.check_vectors(&[1.0, 2.0, 3.0]),
        Err(Error::Dimension { .. })
    ));
    assert!(matches!(
        index.check_vectors(&[1.0, 2.0, f32::NAN, 4.0]),
        Err(Error::NonFinite { position: 2, .. })
    ));
    assert!(matches!(
        index.check_vectors(&[1.0, 2.0, 0.0, 0.0]),
        Err(Error::ZeroVector { .. })
    ));
    assert_eq!(index.len(), 2);
    let l2 = Index::new(Params::new(2, Metric::L2), 8).unwrap();
    assert!(l2.check_vectors(&[0.0, 0.0]).is_ok());
    assert!(matches!(
        l2.check_vectors(&[1e19, 1e19]),
        Err(Error::NormTooLarge { .. })
    ));
}

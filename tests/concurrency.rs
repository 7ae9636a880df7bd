//! Threads inserting while others search: no panic, nothing lost, a healthy graph after.

mod common;

use common::*;
use hnswx::{Error, Index, Metric, Params};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

#[test]
fn inserts_and_searches_at_once() {
    let (n, dim) = (8_000usize, 24);
    let (base, queries) = mixture(n, 100, dim, 11);
    let index = Arc::new(Index::new(Params::new(dim, Metric::L2).ef_construction(100), n).unwrap());
    let done = Arc::new(AtomicBool::new(false));
    let searches = Arc::new(AtomicUsize::new(0));
    std::thread::scope(|scope| {
        // Four writers: two call `add` one vector at a time, two call `add_batch` on chunks.
        let mut writers = Vec::new();
        for w in 0..4usize {
            let (index, base) = (&index, &base);
            writers.push(scope.spawn(move || {
                let share: Vec<usize> = (0..n).filter(|i| i % 4 == w).collect();
                if w < 2 {
                    for &i in &share {
                        index.add(i as u64, base.row(i)).unwrap();
                    }
                } else {
                    for chunk in share.chunks(250) {
                        let labels: Vec<u64> = chunk.iter().map(|&i| i as u64).collect();
                        let rows: Vec<f32> = chunk.iter().flat_map(|&i| base.row(i).to_vec()).collect();
                        index.add_batch(&labels, &rows).unwrap();
                    }
                }
            }));
        }
        // Two readers search (plain and filtered) until the writers are done.
        for r in 0..2 {
            let (index, queries, done, searches) = (&index, &queries, &done, &searches);
            scope.spawn(move || {
                let mut out = Vec::new();
                let mut i = r;
                while !done.load(Ordering::Relaxed) {
                    let q = queries.row(i % queries.len());
                    index.search_into(q, 10, 32, &mut out).unwrap();
                    assert!(out.windows(2).all(|w| w[0].distance <= w[1].distance));
                    assert!(out.iter().all(|h| (h.label as usize) < n));
                    let f = index.search_filtered(q, 5, 32, |l| l % 2 == 0).unwrap();
                    assert!(f.iter().all(|h| h.label % 2 == 0));
                    searches.fetch_add(1, Ordering::Relaxed);
                    i += 2;
                }
            });
        }
        for w in writers {
            w.join().unwrap();
        }
        done.store(true, Ordering::Relaxed);
    });
    eprintln!("{} searches ran during the build", searches.load(Ordering::Relaxed));
    assert_eq!(index.len(), n);
    let stats = index.graph_stats();
    assert_eq!(
        (
            stats.bad_degree,
            stats.bad_ids,
            stats.bad_self_links,
            stats.bad_duplicates
        ),
        (0, 0, 0, 0),
        "{stats:?}"
    );
    eprintln!("unreachable after the concurrent build: {}", stats.unreachable);
    index.repair_connectivity();
    assert!(index.graph_stats().is_healthy());
    let mut found_self = 0;
    for i in 0..n {
        assert!(index.contains(i as u64));
        let hit = index.search(base.row(i), 1, 32).unwrap();
        found_self += usize::from(hit[0].label == i as u64);
    }
    let rate = found_self as f64 / n as f64;
    eprintln!("self-recall@1 after the concurrent build: {rate:.4}");
    assert!(rate >= 0.99, "only {rate:.4} of the labels find themselves");
}

#[test]
fn racing_duplicates_are_added_once() {
    let index = Index::new(Params::new(4, Metric::L2), 2_000).unwrap();
    let ok = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for t in 0..4 {
            let (index, ok) = (&index, &ok);
            scope.spawn(move || {
                for label in 0..500u64 {
                    match index.add(label, &[label as f32, t as f32, 0.0, 1.0]) {
                        Ok(()) => {
                            ok.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(Error::DuplicateLabel(l)) => assert_eq!(l, label),
                        Err(e) => panic!("{e}"),
                    }
                }
            });
        }
    });
    assert_eq!(ok.load(Ordering::Relaxed), 500);
    assert_eq!(index.len(), 500);
}

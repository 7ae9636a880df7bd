//! A living index: remove, restore, update, consolidate with slot reuse, compact, and the
//! marks through save/load, mmap and hnswlib files.

mod common;

use common::{mixture, recall_at, truth, Scratch};
use hnswx::data::Table;
use hnswx::{Error, Index, Metric, Params, Verify};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

fn tmp(name: &str) -> Scratch {
    Scratch::new(&format!("mutate-{name}"))
}

/// `common::build` with room for `spare` more nodes (an update needs a free slot).
fn build_with_room(params: Params, base: &Table<f32>, spare: usize) -> Index {
    let index = Index::new(params, base.len() + spare).unwrap();
    index
        .add_batch(&(0..base.len() as u64).collect::<Vec<_>>(), base.as_slice())
        .unwrap();
    index
}

fn ids(hits: &[hnswx::Neighbour]) -> Vec<u64> {
    hits.iter().map(|h| h.label).collect()
}

#[test]
fn removed_labels_are_never_returned_and_can_be_restored() {
    let (base, _) = mixture(2_000, 0, 16, 1);
    let index = common::build(Params::new(16, Metric::L2), &base, 1);
    assert_eq!(index.remove(7), Ok(()));
    assert_eq!(index.remove(7), Err(Error::UnknownLabel(7)));
    assert_eq!(index.remove(99_999), Err(Error::UnknownLabel(99_999)));
    assert_eq!(index.len(), 1_999);
    assert!(!index.contains(7));
    assert_eq!(index.get(7), Err(Error::UnknownLabel(7)));
    // Its own vector as the query: every other label, never 7.
    let hits = index.search(base.row(7), 10, 64).unwrap();
    assert_eq!(hits.len(), 10);
    assert!(!ids(&hits).contains(&7));
    assert!(!ids(&index.search_filtered(base.row(7), 10, 64, |_| true).unwrap()).contains(&7));
    assert_eq!(index.graph_stats().removed, 1);
    index.restore(7).unwrap();
    assert_eq!(index.restore(7), Ok(()), "restoring a live label changes nothing");
    assert_eq!(index.len(), 2_000);
    assert_eq!(index.search(base.row(7), 1, 64).unwrap()[0].label, 7);
    assert_eq!(index.graph_stats().removed, 0);
    // Remove half: searches still return k live results.
    for l in (0..2_000).step_by(2) {
        index.remove(l).unwrap();
    }
    for q in (0..2_000).step_by(97) {
        let hits = index.search(base.row(q), 10, 64).unwrap();
        assert_eq!(hits.len(), 10);
        assert!(hits.iter().all(|h| h.label % 2 == 1), "{hits:?}");
    }
}

#[test]
fn update_replaces_the_vector_and_keeps_the_label() {
    let (base, _) = mixture(2_000, 0, 16, 2);
    let index = build_with_room(Params::new(16, Metric::L2), &base, 10);
    let far = vec![50.0f32; 16];
    index.update(3, &far).unwrap();
    assert_eq!(index.len(), 2_000);
    assert_eq!(index.get(3).unwrap(), far);
    assert_eq!(index.search(&far, 1, 32).unwrap()[0].label, 3);
    assert!(!ids(&index.search(base.row(3), 10, 64).unwrap()).contains(&3));
    assert_eq!(index.update(99_999, &far), Err(Error::UnknownLabel(99_999)));
    // An update needs a free slot: a full index says so, and is unchanged.
    let full = common::build(Params::new(16, Metric::L2), &base, 1);
    assert_eq!(full.update(5, &far), Err(Error::CapacityExhausted { capacity: 2_000 }));
    assert_eq!(full.get(5).unwrap(), base.row(5));
    assert!(matches!(index.update(3, &[1.0]), Err(Error::Dimension { .. })));
    // The old node waits for consolidation as a waypoint, not restorable.
    assert_eq!(index.graph_stats().removed, 1);
    assert_eq!(index.restore(3), Ok(()));
    assert_eq!(index.get(3).unwrap(), far);
}

/// Remove half, consolidate, add as many new vectors: the slots are reused (capacity
/// unchanged), the graph is healthy, and recall stays close to a fresh build of the same
/// live set.
#[test]
fn churn_reuses_slots_and_keeps_recall() {
    let (all, queries) = mixture(6_000, 200, 32, 3);
    let n = 3_000;
    let base = Table::new(32, all.as_slice()[..n * 32].to_vec()).unwrap();
    let index = common::build(Params::new(32, Metric::L2), &base, 2);
    for l in (0..n as u64).step_by(2) {
        index.remove(l).unwrap();
    }
    let before = index.graph_stats();
    assert_eq!(before.removed, n / 2);
    let freed = index.consolidate();
    assert_eq!(freed, n / 2);
    let after = index.graph_stats();
    assert_eq!((after.removed, after.free), (0, n / 2));
    assert!(after.is_healthy(), "{after:?}");
    // The held-out half goes in: it fits in the freed slots.
    let new: Vec<u64> = (n as u64..(n + n / 2) as u64).collect();
    index
        .add_batch(&new, &all.as_slice()[n * 32..(n + n / 2) * 32])
        .unwrap();
    assert_eq!(index.capacity(), n);
    assert_eq!((index.len(), index.graph_stats().free), (n, 0));
    assert!(index.graph_stats().is_healthy());
    // Recall against the live set, beside a fresh build of it.
    let live: Vec<u64> = (1..n as u64).step_by(2).chain(new.iter().copied()).collect();
    let rows: Vec<f32> = live.iter().flat_map(|&l| all.row(l as usize).to_vec()).collect();
    let live_table = Table::new(32, rows).unwrap();
    let exact = truth(&live_table, &queries, Metric::L2, 10);
    let exact: Vec<Vec<u64>> = exact
        .iter()
        .map(|t| t.iter().map(|&i| live[i as usize]).collect())
        .collect();
    let fresh = Index::new(Params::new(32, Metric::L2), n).unwrap();
    fresh.add_batch(&live, live_table.as_slice()).unwrap();
    for ef in [16, 64] {
        let (churned, rebuilt) = (
            recall_at(&index, &queries, &exact, 10, ef),
            recall_at(&fresh, &queries, &exact, 10, ef),
        );
        eprintln!("ef {ef}: churned {churned:.4}, fresh {rebuilt:.4}");
        assert!(
            churned >= rebuilt - 0.02,
            "ef {ef}: churned {churned} vs fresh {rebuilt}"
        );
    }
}

#[test]
fn compact_shrinks_to_the_live_nodes_and_answers_the_same() {
    let (base, queries) = mixture(3_000, 50, 16, 4);
    let mut index = build_with_room(Params::new(16, Metric::L2), &base, 10);
    for l in (0..3_000).filter(|l| l % 3 == 0) {
        index.remove(l).unwrap();
    }
    index.update(1, &[9.0; 16]).unwrap();
    index.consolidate();
    let before: Vec<Vec<u64>> = queries.rows().map(|q| ids(&index.search(q, 10, 64).unwrap())).collect();
    index.compact().unwrap();
    assert_eq!(index.capacity(), 2_000);
    assert_eq!(index.len(), 2_000);
    assert!(index.graph_stats().is_healthy());
    let after: Vec<Vec<u64>> = queries.rows().map(|q| ids(&index.search(q, 10, 64).unwrap())).collect();
    assert_eq!(before, after);
    assert_eq!(index.get(1).unwrap(), [9.0; 16]);
    index.reserve(10).unwrap();
    index.add(1_000_000, &[0.5; 16]).unwrap();
    assert!(index.contains(1_000_000));
}

#[test]
fn marks_survive_save_load_mmap_and_hnswlib_files() {
    let dir = tmp("files");
    let (base, _) = mixture(2_000, 0, 8, 5);
    let index = build_with_room(Params::new(8, Metric::L2), &base, 1);
    index.remove(10).unwrap();
    index.remove(11).unwrap();
    index.update(12, &[7.0; 8]).unwrap();
    index.consolidate();
    index.remove(20).unwrap(); // removed, restorable
    index.update(21, &[-7.0; 8]).unwrap(); // the old node hidden, the new one reuses a slot
    let path = dir.join("i.hnswx");
    index.save(&path).unwrap();
    // SAFETY: nothing modifies the file while it is mapped.
    let mapped = unsafe { Index::open_mmap(&path, Verify::All) }.unwrap();
    // SAFETY: as above.
    let mapped_fast = unsafe { Index::open_mmap(&path, Verify::Structure) }.unwrap();
    for back in [Index::load(&path).unwrap(), mapped, mapped_fast] {
        assert_eq!(back.len(), 1_997);
        assert_eq!(back.graph_stats().removed, 2);
        for gone in [10, 11, 20] {
            assert!(!back.contains(gone));
            assert!(!ids(&back.search(base.row(gone as usize), 10, 64).unwrap()).contains(&gone));
        }
        assert_eq!(back.get(12).unwrap(), [7.0; 8]);
        assert_eq!(back.get(21).unwrap(), [-7.0; 8]);
        assert_eq!(back.search(&[-7.0; 8], 1, 16).unwrap()[0].label, 21);
        assert!(back.restore(20).is_ok());
        assert_eq!(back.restore(10), Err(Error::UnknownLabel(10)));
        assert_eq!(back.search(base.row(20), 1, 64).unwrap()[0].label, 20);
    }
    // hnswlib's format carries deleted marks both ways.
    let hl = dir.join("i.hnswlib");
    index.export_hnswlib(&hl).unwrap();
    let back = Index::import_hnswlib(&hl, Metric::L2).unwrap();
    assert_eq!(back.len(), 1_997);
    for gone in [10, 11, 20] {
        assert!(!ids(&back.search(base.row(gone as usize), 10, 64).unwrap()).contains(&gone));
    }
    back.restore(20).unwrap();
    assert_eq!(back.search(base.row(20), 1, 64).unwrap()[0].label, 20);
    assert_eq!(back.get(21).unwrap(), [-7.0; 8]);
}

/// Writers remove, restore, update and add while readers search: every result is a label
/// live at the query's start or end, and no result repeats a label.
#[test]
fn concurrent_churn_never_returns_a_dead_label() {
    const N: usize = 3_000;
    let (all, _) = mixture(2 * N, 0, 16, 6);
    let index = Arc::new(Index::new(Params::new(16, Metric::L2).ef_construction(64), N + N / 2).unwrap());
    index
        .add_batch(&(0..N as u64).collect::<Vec<_>>(), &all.as_slice()[..N * 16])
        .unwrap();
    let live = Arc::new(Mutex::new((0..N as u64).collect::<HashSet<u64>>()));
    let stop = Arc::new(AtomicBool::new(false));
    let checked = Arc::new(AtomicUsize::new(0));
    let readers: Vec<_> = (0..2)
        .map(|r| {
            let (index, live, stop, checked, all) = (
                Arc::clone(&index),
                Arc::clone(&live),
                Arc::clone(&stop),
                Arc::clone(&checked),
                all.clone(),
            );
            std::thread::spawn(move || {
                let mut q = r;
                while !stop.load(Ordering::Acquire) {
                    let start = live.lock().unwrap().clone();
                    let hits = index.search(all.row(q % (2 * N)), 10, 48).unwrap();
                    let end = live.lock().unwrap().clone();
                    let mut seen = HashSet::new();
                    for h in &hits {
                        assert!(
                            start.contains(&h.label) || end.contains(&h.label),
                            "dead label {}",
                            h.label
                        );
                        assert!(seen.insert(h.label), "label {} twice", h.label);
                    }
                    checked.fetch_add(1, Ordering::Relaxed);
                    q += 7;
                }
            })
        })
        .collect();
    // One writer: its changes and the `live` set move together (each change is made under
    // the set's lock, so a reader's snapshots bracket it).
    let mut next = N as u64;
    for round in 0..1_500u64 {
        let l = (round * 13) % N as u64;
        let mut set = live.lock().unwrap();
        match round % 4 {
            0 if set.contains(&l) => {
                index.remove(l).unwrap();
                set.remove(&l);
            }
            1 if !set.contains(&l) && index.restore(l).is_ok() => {
                set.insert(l);
            }
            2 if set.contains(&l) => {
                index.update(l, all.row(N + (round as usize % N))).unwrap();
            }
            3 if next < (N + N / 2) as u64 && index.add(next, all.row(next as usize)).is_ok() => {
                set.insert(next);
                next += 1;
            }
            _ => {}
        }
        drop(set);
        if round % 500 == 499 {
            index.consolidate();
        }
    }
    stop.store(true, Ordering::Release);
    for r in readers {
        r.join().unwrap();
    }
    assert!(checked.load(Ordering::Relaxed) > 100);
    assert_eq!(index.len(), live.lock().unwrap().len());
    index.consolidate();
    index.repair_connectivity();
    assert!(index.graph_stats().is_healthy(), "{:?}", index.graph_stats());
}

/// Filters at 50%, 10%, 1% and 0.1%: `search_filtered` and `search_in` return only accepted
/// live labels and find the exact filtered neighbours (recall ≥ 0.95 at the ef where
/// unfiltered search is good); removed labels never pass.
#[test]
fn filters_keep_their_recall_at_every_selectivity() {
    let (base, queries) = mixture(8_000, 40, 16, 8);
    let index = common::build(Params::new(16, Metric::L2), &base, 2);
    for l in (0..8_000).step_by(10) {
        index.remove(l).unwrap();
    }
    let pass = |l: u64, per_mille: u64| (l.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) % 1000 < per_mille;
    for per_mille in [500u64, 100, 10, 1] {
        let accepted: Vec<u64> = (0..8_000u64).filter(|&l| pass(l, per_mille) && l % 10 != 0).collect();
        let set = index.label_set(accepted.iter().copied().chain([7_777_777]));
        assert_eq!(set.len(), accepted.len());
        let (mut hit, mut total) = (0, 0);
        for q in queries.rows() {
            let exact = index.search_filtered_scan(q, 10, |l| pass(l, per_mille)).unwrap();
            assert!(exact.iter().all(|h| pass(h.label, per_mille) && h.label % 10 != 0));
            assert_eq!(exact.len(), accepted.len().min(10));
            for hits in [
                index.search_filtered(q, 10, 64, |l| pass(l, per_mille)).unwrap(),
                index.search_in(q, 10, 64, &set).unwrap(),
            ] {
                assert!(
                    hits.iter().all(|h| pass(h.label, per_mille) && h.label % 10 != 0),
                    "{hits:?}"
                );
                assert!(hits.windows(2).all(|w| w[0].distance <= w[1].distance));
                let want: HashSet<u64> = exact.iter().map(|h| h.label).collect();
                hit += hits.iter().filter(|h| want.contains(&h.label)).count();
                total += want.len();
            }
        }
        let r = hit as f64 / total.max(1) as f64;
        assert!(r >= 0.95, "{per_mille}‰: recall {r}");
    }
    // A set built before a removal does not return the removed label.
    let set = index.label_set([1, 2, 3]);
    index.remove(2).unwrap();
    let hits = index.search_in(base.row(2), 10, 64, &set).unwrap();
    assert_eq!(ids(&hits).into_iter().collect::<HashSet<_>>(), HashSet::from([1, 3]));
}

/// Consolidating the entry point away (and then every node) leaves files that load: free
/// slots do not count for the entry point's level, and an index of free slots has none.
#[test]
fn files_load_after_the_entry_point_and_everything_are_consolidated_away() {
    let dir = tmp("entry-gone");
    let (base, _) = mixture(1_500, 0, 8, 9);
    let index = build_with_room(Params::new(8, Metric::L2).m(4), &base, 10);
    let top = index.graph_stats().entry.unwrap();
    index.remove(top.0 as u64).unwrap(); // slot = label here
    index.consolidate();
    assert_ne!(index.graph_stats().entry.unwrap().0, top.0);
    let path = dir.join("a.hnswx");
    index.save(&path).unwrap();
    let back = Index::load(&path).unwrap();
    assert_eq!(back.len(), 1_499);
    assert!(!ids(&back.search(base.row(top.0 as usize), 5, 32).unwrap()).contains(&(top.0 as u64)));
    // Everything removed and consolidated: no entry point, every slot free.
    for l in (0..1_500).filter(|&l| l != top.0 as u64) {
        index.remove(l).unwrap();
    }
    index.consolidate();
    assert!(index.is_empty());
    assert!(index.graph_stats().entry.is_none());
    index.save(&path).unwrap();
    let back = Index::load(&path).unwrap();
    assert!(back.is_empty() && back.search(base.row(0), 3, 16).unwrap().is_empty());
    back.add(5, base.row(5)).unwrap();
    assert_eq!(back.search(base.row(5), 1, 16).unwrap()[0].label, 5);
    index.export_hnswlib(dir.join("a.hnswlib")).unwrap();
    assert!(Index::import_hnswlib(dir.join("a.hnswlib"), Metric::L2)
        .unwrap()
        .is_empty());
}

/// A progress callback that panics mid-consolidation: the panic reaches the caller, nothing
/// is freed, the removed labels stay invisible, and the next consolidation finishes the job.
#[test]
fn a_panicking_consolidation_leaves_the_index_consistent() {
    let (base, _) = mixture(9_000, 0, 8, 10);
    let index = build_with_room(Params::new(8, Metric::L2), &base, 10);
    for l in (0..9_000).step_by(3) {
        index.remove(l).unwrap();
    }
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        index.consolidate_with_progress(|done, _| assert!(done < 4_096, "progress gives up"))
    }));
    assert!(r.is_err());
    let st = index.graph_stats();
    assert_eq!((st.removed, st.free), (3_000, 0), "{st:?}");
    assert!(!ids(&index.search(base.row(3), 10, 64).unwrap()).contains(&3));
    index.add(100_000, &[0.5; 8]).unwrap();
    assert_eq!(index.consolidate(), 3_000);
    let st = index.graph_stats();
    assert!(st.is_healthy() && st.removed == 0 && st.free == 3_000, "{st:?}");
}

/// Whatever the number of removed nodes (a few keep the sorted pool, `ef / 8` at most; more
/// take the two heaps), a removed node is never returned, even as the exact nearest, and
/// each search still returns `k` live labels with recall no lower than with no removal.
#[test]
fn a_few_or_many_removed_nodes_are_never_returned() {
    let (base, queries) = mixture(3_000, 100, 16, 4);
    let index = common::build(Params::new(16, Metric::L2), &base, 1);
    let (k, ef) = (10, 64);
    let before: Vec<Vec<u64>> = queries.rows().map(|q| ids(&index.search(q, k, ef).unwrap())).collect();
    let (mut removed, mut next) = (Vec::new(), 0);
    for n in [1usize, 8, 9, 40] {
        // Remove the nearest labels of the queries in turn (the most likely to be returned).
        while removed.len() < n {
            let l = before[next % before.len()][next / before.len()];
            next += 1;
            if !removed.contains(&l) {
                index.remove(l).unwrap();
                removed.push(l);
            }
        }
        let gone: HashSet<u64> = removed.iter().copied().collect();
        let (mut kept_all, mut again_all) = (0, 0);
        for (i, q) in queries.rows().enumerate() {
            let hits = ids(&index.search(q, k, ef).unwrap());
            assert_eq!(hits.len(), k, "{n} removed, query {i}");
            assert!(
                hits.iter().all(|l| !gone.contains(l)),
                "{n} removed: a removed label came back"
            );
            // The labels found before, less the removed ones, are found again.
            let kept: Vec<u64> = before[i].iter().copied().filter(|l| !gone.contains(l)).collect();
            again_all += kept.iter().filter(|l| hits.contains(l)).count();
            kept_all += kept.len();
        }
        assert!(
            again_all * 100 >= kept_all * 98,
            "{n} removed: {again_all} of {kept_all} found again"
        );
        // A stored vector whose label was removed: its own node is the exact nearest.
        let own = index.search(base.row(removed[0] as usize), k, ef).unwrap();
        assert!(own.iter().all(|h| h.label != removed[0]));
    }
}

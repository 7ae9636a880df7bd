//! A search in steady state allocates nothing: counted through a global allocator that
//! tallies, per thread, the allocations made while that thread measures (so tests running
//! side by side do not count each other's).

use hnswx::data::gaussian_mixture;
use hnswx::{Index, Metric, Params};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    static MEASURING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
    /// Allocations of at least 4 KiB (a new scratch's visited array, say).
    static BIG: Cell<usize> = const { Cell::new(0) };
}

/// Set while a batch runs on [`POOL_THREADS`]-marked threads that should be counted too.
static BATCH_MEASURING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
/// Allocations made on marked pool threads while [`BATCH_MEASURING`] is set.
static POOL_ALLOCATIONS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

thread_local! {
    /// This thread is a worker of the batch test's own rayon pool.
    static POOL_THREADS: Cell<bool> = const { Cell::new(false) };
}

fn note(size: usize) {
    use std::sync::atomic::Ordering;
    if BATCH_MEASURING.load(Ordering::Relaxed) && POOL_THREADS.try_with(|p| p.get()).unwrap_or(false) {
        POOL_ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    }
    // `try_with`: the allocator may be called while thread-locals are being torn down.
    let _ = MEASURING.try_with(|m| {
        if m.get() {
            let _ = ALLOCATIONS.try_with(|a| a.set(a.get() + 1));
            if size >= 4096 {
                let _ = BIG.try_with(|a| a.set(a.get() + 1));
            }
        }
    });
}

// SAFETY: forwards every call to the system allocator unchanged; counting has no effect on
// the memory handed out.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: same contract as ours.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Runs `f` and returns how many allocations this thread made meanwhile.
fn allocations_in(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.with(|a| a.get());
    MEASURING.with(|m| m.set(true));
    f();
    MEASURING.with(|m| m.set(false));
    ALLOCATIONS.with(|a| a.get()) - before
}

#[test]
fn steady_state_search_allocates_nothing() {
    for metric in [Metric::L2, Metric::Cosine] {
        let data = gaussian_mixture(5_200, 40, 20, 1.0, 21);
        let index = Index::new(Params::new(40, metric), 5_000).unwrap();
        index
            .add_batch(&(0..5_000).collect::<Vec<u64>>(), &data.as_slice()[..5_000 * 40])
            .unwrap();
        let queries: Vec<&[f32]> = data.rows().skip(5_000).collect();
        let mut out = Vec::with_capacity(10);
        // Warm up: the first search of a thread fills the scratch pool.
        index.search_into(queries[0], 10, 128, &mut out).unwrap();
        let n = allocations_in(|| {
            for q in &queries {
                for ef in [10, 64, 128] {
                    index.search_into(q, 10, ef, &mut out).unwrap();
                    assert_eq!(out.len(), 10);
                }
            }
        });
        assert_eq!(n, 0, "{metric:?}: {n} allocations in {} searches", queries.len() * 3);
        // The counter works: an allocating call is seen.
        assert!(allocations_in(|| drop(index.search(queries[0], 10, 10).unwrap())) >= 1);
    }
}

/// More threads than the pool's lock-free slots (2 × cores + 2): once every thread has held a
/// scratch at the same moment, searches from all of them (with `ef` up to `ef_construction`,
/// which new scratches have room for) allocate nothing — also when they all hold one at once
/// again, inside the measured window.
#[test]
fn many_threads_search_without_allocating() {
    let cores = std::thread::available_parallelism().map_or(4, |n| n.get());
    let threads = 2 * cores + 2 + 8;
    let data = gaussian_mixture(3_000 + threads, 16, 20, 1.0, 5);
    let index = Index::new(Params::new(16, Metric::L2), 3_000).unwrap();
    index
        .add_batch(&(0..3_000).collect::<Vec<u64>>(), &data.as_slice()[..3_000 * 16])
        .unwrap();
    let index = &index;
    let barrier = std::sync::Barrier::new(threads);
    // A filtered search whose filter waits for every thread on its first call: all
    // `threads` searches hold a scratch at the same moment.
    let all_at_once = |q: &[f32]| {
        let first = std::cell::Cell::new(true);
        index
            .search_filtered(q, 10, 64, |_| {
                if first.replace(false) {
                    barrier.wait();
                }
                true
            })
            .unwrap()
    };
    let per_thread: Vec<(usize, usize)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (barrier, all_at_once, q) = (&barrier, &all_at_once, data.row(3_000 + t));
                scope.spawn(move || {
                    all_at_once(q); // warm-up: the pool now holds `threads` scratches
                    barrier.wait();
                    let mut out = Vec::with_capacity(10);
                    let efs = [10, 32, 64, 128].repeat(25);
                    let plain = allocations_in(|| {
                        for &ef in &efs {
                            index.search_into(q, 10, ef, &mut out).unwrap();
                            assert_eq!(out.len(), 10);
                        }
                    });
                    // Everyone at once again: no new scratch (no allocation of 4 KiB or more;
                    // the filtered path's result lists may still grow a little).
                    let big = BIG.with(|b| b.get());
                    allocations_in(|| drop(all_at_once(q)));
                    let together = BIG.with(|b| b.get()) - big;
                    (plain, together)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let plain: usize = per_thread.iter().map(|p| p.0).sum();
    assert_eq!(
        plain,
        0,
        "{plain} allocations in {} searches on {threads} threads",
        threads * 100
    );
    assert!(
        per_thread.iter().all(|p| p.1 == 0),
        "searches holding {threads} scratches at once allocated: {per_thread:?}"
    );
}

/// The into-variants of filtered search (predicate and label set) allocate nothing once the
/// scratch's lists have grown to what these queries need (a first pass over the same
/// queries), on the graph path and on the exact-scan path alike.
#[test]
fn steady_state_filtered_search_into_allocates_nothing() {
    let data = gaussian_mixture(5_100, 32, 20, 1.0, 8);
    let index = Index::new(Params::new(32, Metric::L2), 5_000).unwrap();
    index
        .add_batch(&(0..5_000).collect::<Vec<u64>>(), &data.as_slice()[..5_000 * 32])
        .unwrap();
    // Some removed nodes too: the filtered path then also skips them.
    for l in (0..5_000).step_by(97) {
        index.remove(l).unwrap();
    }
    let set = index.label_set((0..5_000).filter(|l| l % 3 == 0));
    let queries: Vec<&[f32]> = data.rows().skip(5_000).collect();
    let mut out = Vec::with_capacity(10);
    let pass = |out: &mut Vec<hnswx::Neighbour>| {
        for q in &queries {
            // Half pass (graph walk), 1 in 500 (exact scan), a prebuilt set.
            index.search_filtered_into(q, 10, 64, |l| l % 2 == 0, out).unwrap();
            assert_eq!(out.len(), 10);
            index.search_filtered_into(q, 10, 64, |l| l % 500 == 0, out).unwrap();
            assert!(out.iter().all(|n| n.label % 500 == 0));
            index.search_in_into(q, 10, 64, &set, out).unwrap();
            assert_eq!(out.len(), 10);
        }
    };
    pass(&mut out);
    let n = allocations_in(|| pass(&mut out));
    assert_eq!(n, 0, "{n} allocations in {} filtered searches", queries.len() * 3);
    assert!(allocations_in(|| drop(index.search_filtered(queries[0], 10, 64, |_| true).unwrap())) >= 1);
}

/// A batch search into caller-owned flat arrays allocates nothing, on the calling thread
/// or on the pool's workers, once they are warm.
#[test]
fn batch_search_into_allocates_nothing() {
    use std::sync::atomic::Ordering;
    let data = gaussian_mixture(4_064, 16, 20, 1.0, 9);
    let index = Index::new(Params::new(16, Metric::L2), 4_000).unwrap();
    index
        .add_batch(&(0..4_000).collect::<Vec<u64>>(), &data.as_slice()[..4_000 * 16])
        .unwrap();
    let queries = &data.as_slice()[4_000 * 16..];
    let (n, k) = (64, 10);
    let (mut labels, mut distances, mut counts) = (vec![0u64; n * k], vec![0f32; n * k], vec![0usize; n]);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .start_handler(|_| POOL_THREADS.with(|p| p.set(true)))
        .build()
        .unwrap();
    let mut batch = |d: bool| {
        pool.install(|| {
            let dist = if d { Some(&mut distances[..]) } else { None };
            index
                .search_batch_into(queries, k, 64, &mut labels, dist, &mut counts)
                .unwrap()
        })
    };
    // Warm both workers: each holds a scratch while the other takes one (they meet at the
    // barrier inside the filter), so the pool has a scratch per worker and each worker's
    // thread-locals are set up. Without this, a loaded machine may run the whole warm-up
    // on one worker and leave the other's first steal to the measured part.
    let meet = std::sync::Barrier::new(pool.current_num_threads());
    pool.broadcast(|_| {
        let met = std::sync::Once::new();
        let wait_once = |_| {
            met.call_once(|| {
                meet.wait();
            });
            true
        };
        index.search_filtered_graph(&queries[..16], k, 64, wait_once).unwrap();
    });
    for _ in 0..3 {
        batch(true);
        batch(false);
    }
    BATCH_MEASURING.store(true, Ordering::SeqCst);
    let here = allocations_in(|| {
        for _ in 0..20 {
            batch(true);
            batch(false);
        }
    });
    BATCH_MEASURING.store(false, Ordering::SeqCst);
    let workers = POOL_ALLOCATIONS.load(Ordering::SeqCst);
    assert_eq!(
        (here, workers),
        (0, 0),
        "allocations: caller {here}, pool workers {workers}"
    );
    // The worker counter works: an allocation on a worker is seen.
    BATCH_MEASURING.store(true, Ordering::SeqCst);
    pool.install(|| drop(std::hint::black_box(vec![1u8; 64])));
    BATCH_MEASURING.store(false, Ordering::SeqCst);
    assert!(POOL_ALLOCATIONS.load(Ordering::SeqCst) > workers);
    assert!(counts.iter().all(|&c| c == k));
    // The results are the single searches'.
    for (i, q) in queries.chunks_exact(16).enumerate().step_by(7) {
        let one: Vec<u64> = index.search(q, k, 64).unwrap().iter().map(|h| h.label).collect();
        assert_eq!(one, labels[i * k..][..k]);
    }
}

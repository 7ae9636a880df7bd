//! A search in steady state allocates nothing: counted through a global allocator that
//! tallies the allocations made by the measuring thread.

use hnswx::data::gaussian_mixture;
use hnswx::{Index, Metric, Params};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static MEASURING: Cell<bool> = const { Cell::new(false) };
}

fn note() {
    if MEASURING.with(|m| m.get()) {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: forwards every call to the system allocator unchanged; counting has no effect on
// the memory handed out.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: same contract as ours.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
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
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    MEASURING.with(|m| m.set(true));
    f();
    MEASURING.with(|m| m.set(false));
    ALLOCATIONS.load(Ordering::Relaxed) - before
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

//! Model check of the row protocol (`src/graph/row.rs`) with loom: every interleaving of a
//! few threads, with loom's model of the C++ memory model, for
//! - publication: a reader that sees an id in a row also sees that node's vector;
//! - in-place rewrites: a reader racing `set_links` sees old or new ids, each with its vector;
//! - the spinlock: mutual exclusion, and the "linked" bit set beside a held lock.
//!
//! The file under test is compiled here against loom's atomics. Not part of the default
//! suite (loom replaces std's atomics only in this test crate); run with:
//!
//! ```text
//! RUSTFLAGS="--cfg hnswx_loom" cargo test --release --test loom
//! ```
#![cfg(hnswx_loom)]

/// What `row.rs` is written against: loom's atomics, and a spin-wait that yields to the
/// model checker.
mod atomics {
    pub use loom::sync::atomic::{AtomicU32, AtomicU8, Ordering};

    pub struct Backoff;

    impl Backoff {
        pub fn new() -> Self {
            Backoff
        }

        pub fn snooze(&self) {
            loom::thread::yield_now();
        }
    }
}

#[path = "../src/graph/row.rs"]
#[allow(dead_code)]
mod row;

use loom::cell::UnsafeCell;
use loom::sync::atomic::{AtomicU32, AtomicU8};
use loom::sync::Arc;
use row::{count, is_linked, link, lock, push_link, set_links, LINKED, LOCKED};

/// A tiny index: node vectors written without atomics (as the slab's are), one neighbour
/// row of room 2 (node 0's), and a state byte per node.
struct Tiny {
    vectors: Vec<UnsafeCell<u32>>,
    row: Vec<AtomicU32>,
    state: Vec<AtomicU8>,
}

impl Tiny {
    fn new(nodes: usize) -> Arc<Tiny> {
        Arc::new(Tiny {
            vectors: (0..nodes).map(|_| UnsafeCell::new(0)).collect(),
            row: (0..3).map(|_| AtomicU32::new(0)).collect(),
            state: (0..nodes).map(|_| AtomicU8::new(0)).collect(),
        })
    }

    /// Writes node `id`'s vector: only its inserting thread does, before publishing it.
    fn write_vector(&self, id: u32, value: u32) {
        // SAFETY (checked by loom): nobody reads node `id`'s vector before it is published.
        self.vectors[id as usize].with_mut(|p| unsafe { *p = value });
    }

    /// A search's read of node 0's row: every id it sees has its vector written.
    fn read_row(&self) -> Vec<u32> {
        let row = &self.row[..];
        let ids: Vec<u32> = (0..count(row)).map(|j| link(row, j)).collect();
        for &id in &ids {
            // SAFETY (checked by loom): the id was published after its vector was written.
            let v = self.vectors[id as usize].with(|p| unsafe { *p });
            assert_eq!(v, 100 + id, "node {id}'s vector not visible");
        }
        ids
    }
}

#[test]
fn a_published_id_carries_its_vector() {
    loom::model(|| {
        let t = Tiny::new(3);
        let writers: Vec<_> = [1u32, 2]
            .into_iter()
            .map(|id| {
                let t = Arc::clone(&t);
                loom::thread::spawn(move || {
                    t.write_vector(id, 100 + id);
                    let _lock = lock(&t.state[0]);
                    assert!(push_link(&t.row, id));
                })
            })
            .collect();
        let ids = t.read_row();
        assert!(ids.len() <= 2);
        for w in writers {
            w.join().unwrap();
        }
        let mut all = t.read_row();
        all.sort_unstable();
        assert_eq!(all, [1, 2]);
    });
}

#[test]
fn a_row_rewritten_in_place_shows_old_or_new_ids_with_their_vectors() {
    loom::model(|| {
        let t = Tiny::new(5);
        // Node 0 links to 1 and 2, published before the reader starts.
        t.write_vector(1, 101);
        t.write_vector(2, 102);
        set_links(&t.row, [1, 2].into_iter());
        let writer = {
            let t = Arc::clone(&t);
            loom::thread::spawn(move || {
                // A shrink: node 3 and 4 arrive (vectors written by their inserts, which
                // then hand the ids over through the row of node 0).
                t.write_vector(3, 103);
                t.write_vector(4, 104);
                let _lock = lock(&t.state[0]);
                set_links(&t.row, [3, 4].into_iter());
            })
        };
        let ids = t.read_row();
        assert_eq!(ids.len(), 2);
        writer.join().unwrap();
        assert_eq!(t.read_row(), [3, 4]);
    });
}

#[test]
fn the_spinlock_excludes_and_keeps_the_linked_bit() {
    loom::model(|| {
        let t = Tiny::new(1);
        let counter = Arc::new(UnsafeCell::new(0u32));
        let workers: Vec<_> = (0..2)
            .map(|_| {
                let (t, counter) = (Arc::clone(&t), Arc::clone(&counter));
                loom::thread::spawn(move || {
                    let _lock = lock(&t.state[0]);
                    // SAFETY (checked by loom): only the lock holder touches the counter.
                    counter.with_mut(|p| unsafe { *p += 1 });
                })
            })
            .collect();
        // The node's insert finishes while the others hold or wait for its lock.
        row::set_linked(&t.state[0]);
        for w in workers {
            w.join().unwrap();
        }
        // SAFETY: every worker has been joined.
        assert_eq!(counter.with(|p| unsafe { *p }), 2);
        assert!(is_linked(&t.state[0]));
        let state = t.state[0].load(loom::sync::atomic::Ordering::Relaxed);
        assert_eq!(state & (LOCKED | LINKED), LINKED);
    });
}

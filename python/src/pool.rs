//! Threads: `num_threads` as hnswlib reads it, and a rayon pool per index (never the
//! global one), rebuilt only when the thread count changes.

use std::sync::{Arc, Mutex};

use rayon::{ThreadPool, ThreadPoolBuilder};

use crate::errors::{fail, Fail, Kind};

/// The machine's hardware threads (hnswlib's `std::thread::hardware_concurrency()`).
pub fn hardware_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Threads for a call: `requested` if positive, else the index's default (itself the
/// hardware threads if not positive); one thread when there are at most four rows per thread
/// (hnswlib's rule for small calls).
pub fn threads_for(requested: i64, default: i64, rows: usize) -> usize {
    let n = if requested > 0 { requested } else { default };
    let n = if n > 0 { n as usize } else { hardware_threads() };
    if rows <= n.saturating_mul(4) {
        1
    } else {
        n.min(1024)
    }
}

/// The pool of one index: the last one built, reused while the thread count stays.
#[derive(Default)]
pub struct Pools(Mutex<Option<(usize, Arc<ThreadPool>)>>);

impl Pools {
    /// A pool of `n` threads.
    pub fn get(&self, n: usize) -> Result<Arc<ThreadPool>, Fail> {
        let mut slot = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((have, pool)) = slot.as_ref() {
            if *have == n {
                return Ok(pool.clone());
            }
        }
        let pool = match ThreadPoolBuilder::new()
            .num_threads(n)
            .thread_name(|i| format!("hnswx-{i}"))
            .build()
        {
            Ok(p) => Arc::new(p),
            Err(e) => return fail(Kind::Base, format!("could not start {n} threads: {e}")),
        };
        *slot = Some((n, pool.clone()));
        Ok(pool)
    }
}

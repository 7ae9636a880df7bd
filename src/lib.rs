//! hnswx: approximate nearest-neighbour search with HNSW graphs, built for hot paths.
//!
//! ```
//! use hnswx::{Index, Metric, Params};
//!
//! // Room for 1000 vectors of dimension 4; M = 16, ef_construction = 200 by default.
//! let index = Index::new(Params::new(4, Metric::L2).seed(42), 1000).unwrap();
//! for i in 0..1000u64 {
//!     let x = i as f32;
//!     index.add(i, &[x, x.sin(), x.cos(), 1.0]).unwrap(); // `add` takes &self: threads welcome
//! }
//! let hits = index.search(&[500.2, 500f32.sin(), 500f32.cos(), 1.0], 3, 64).unwrap();
//! assert_eq!(hits[0].label, 500);
//! ```
//!
//! Where things are:
//! - `index`: [`Index`] itself (creation, `add`, `add_batch`, `reserve`, `get`) and the slot
//!   bookkeeping; `mutate`: removal, update, `consolidate`, `compact`, `optimize`;
//! - `store`: what is stored per node — `slab` (the vectors, one row per node in a
//!   64-byte-aligned table, the row stride chosen per dimension), `codes` (SQ8 codes or F16
//!   rows the walk reads), `cells` (tables on the heap or in a mapped file);
//! - `graph`: the fixed-degree neighbour tables and per-node spinlocks, and the algorithms
//!   on them, as methods of [`Index`]: `search` (one query's path from
//!   [`Index::search`] to the kernel), `insert` (and repair), `scratch` (per-search memory);
//! - `io`: files — `persist` ([`Index::save`], [`Index::load`], [`Index::open_mmap`]) and
//!   `hnswlib` ([`Index::import_hnswlib`], [`Index::export_hnswlib`]);
//! - [`kernels`]: the SIMD distance kernels (the `hnswx-kernels` crate), chosen once at run
//!   time;
//! - [`BruteForce`]: exact search, the ground truth.

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]
#![warn(clippy::undocumented_unsafe_blocks)]

mod brute;
mod build_info;
pub mod data;
mod error;
mod filter;
mod graph;
mod index;
mod io;
mod mutate;
mod params;
mod stats;
mod store;

pub use brute::BruteForce;
pub use build_info::{build_info, BuildInfo};
pub use error::{Error, Result};
pub use filter::{LabelSet, SAMPLE, SCAN_TEST_COST};
pub use graph::look_ahead::threshold as look_ahead_threshold;
pub use graph::look_ahead::{
    look_ahead as look_ahead_setting, row_prefetch as row_prefetch_setting, PrefetchThreshold,
};
pub use graph::row_lock_waits;
pub use graph::search::{default_rerank, NO_LABEL};
pub use hnswx_kernels as kernels;
pub use hnswx_kernels::{Choice, Isa, Metric};
pub use index::{Index, Neighbour, MAX_CAPACITY};
pub use io::persist::{FileError, Verify, FORMAT_VERSION, MAGIC};
pub use params::{Params, MAX_EF_CONSTRUCTION, MAX_M};
pub use stats::GraphStats;
pub use store::codes::{Quantization, AUTO_TRAIN_ROWS};

/// The README's Rust examples, compiled and run as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

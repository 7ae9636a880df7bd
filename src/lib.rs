//! hnswx: approximate nearest-neighbour search with HNSW graphs.
//!
//! This release holds the foundation: the SIMD distance kernels ([`kernels`], the
//! `hnswx-kernels` crate) and the facts of the build ([`build_info`]). The index itself
//! (vector slab, graph, insert, search, persistence) lands on top of them.
//!
//! ```
//! use hnswx::kernels::{self, Metric};
//!
//! let k = kernels::auto();
//! let d = k.distance(Metric::L2, &[0.0, 3.0], &[4.0, 0.0]);
//! assert_eq!(d, 25.0);
//! ```

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]
#![warn(clippy::undocumented_unsafe_blocks)]

mod build_info;

pub use build_info::{build_info, BuildInfo};
pub use hnswx_kernels as kernels;
pub use hnswx_kernels::{Isa, Metric};

/// The README's Rust examples, compiled and run as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

//! Files: hnswx's own format ([`persist`]: save, load, open_mmap) and hnswlib's
//! ([`hnswlib`]: import, export).

pub(crate) mod hnswlib;
pub(crate) mod persist;

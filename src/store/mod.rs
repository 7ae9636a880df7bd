//! What is stored per node besides its links: the vectors ([`slab`]), the codes the walk may
//! read instead ([`codes`]: SQ8 or F16), and [`cells`], the tables that live on the heap or
//! in a mapped index file.

pub(crate) mod cells;
pub(crate) mod codes;
pub(crate) mod slab;

//! The one error type of the index: every way a call can be refused.

/// Why an index call was refused. Nothing in the index changes when an error is returned.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A vector or query whose length is not the index's dimension.
    #[error("dimension mismatch: the index holds {expected}-dimensional vectors, got {got}")]
    Dimension {
        /// The index's dimension.
        expected: usize,
        /// The length that was passed.
        got: usize,
    },
    /// A NaN or infinite component.
    #[error("component {position} is {value}: vectors must be finite")]
    NonFinite {
        /// Index of the first offending component (within the vector; for batches, within the
        /// flattened batch).
        position: usize,
        /// The offending value.
        value: f32,
    },
    /// A zero vector (or one whose norm is not finite) under the cosine metric, which cannot
    /// be normalised.
    #[error("the cosine metric cannot normalise a vector of norm {norm}")]
    ZeroVector {
        /// The norm that was found.
        norm: f64,
    },
    /// A finite vector whose squared norm is so large that distances to it could overflow
    /// `f32` (L2 and inner product). Vectors with a norm up to about 6.5e18 are accepted.
    #[error("vector norm {norm:e} is too large: distances could overflow f32 (at most {max:e})")]
    NormTooLarge {
        /// The vector's Euclidean norm (computed in f64).
        norm: f64,
        /// The largest norm accepted.
        max: f64,
    },
    /// `k = 0` asked of a search.
    #[error("k must be at least 1")]
    ZeroK,
    /// A label that the index already holds. Labels are immutable: to change a vector, build
    /// the index again (updates and deletions are not supported yet).
    #[error("label {0} is already in the index")]
    DuplicateLabel(u64),
    /// A label that the index does not hold.
    #[error("label {0} is not in the index")]
    UnknownLabel(u64),
    /// The index is full; [`Index::reserve`](crate::Index::reserve) makes room.
    #[error("the index is full ({capacity} vectors); call reserve() to make room")]
    CapacityExhausted {
        /// The capacity that was reached.
        capacity: usize,
    },
    /// A construction parameter out of range.
    #[error("invalid parameter {name}: {reason}")]
    InvalidParameter {
        /// The parameter's name.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// Memory for the index could not be allocated (nothing was changed).
    #[error("could not allocate {bytes} bytes for the {what}")]
    OutOfMemory {
        /// Which table the allocation was for.
        what: &'static str,
        /// Bytes requested.
        bytes: usize,
    },
    /// `add` or `add_batch` called from inside this index's own `add_batch` progress
    /// callback: that batch cannot finish until the callback returns.
    #[error("cannot add to an index from inside its own add_batch progress callback")]
    InsideProgressCallback,
    /// An output buffer of the wrong length (a batch search into caller-owned arrays).
    #[error("the {what} buffer holds {got} entries, the batch needs {expected}")]
    OutputLength {
        /// Which buffer (`labels`, `distances`, `counts`).
        what: &'static str,
        /// The entries the batch needs (`usize::MAX` where that count overflows).
        expected: usize,
        /// The buffer's length.
        got: usize,
    },
    /// Kernel selection failed (unknown name or an instruction set this CPU lacks).
    #[error(transparent)]
    Kernel(#[from] hnswx_kernels::Error),
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

//! Construction parameters.

use crate::error::{Error, Result};
use crate::store::codes::Quantization;
use hnswx_kernels::{Choice, Metric};

/// How an [`Index`](crate::Index) is built. Defaults follow the HNSW paper and hnswlib:
/// `M = 16`, `ef_construction = 200`, layer 0 holding up to `2·M` links.
///
/// ```
/// use hnswx::{Metric, Params};
/// let p = Params::new(128, Metric::L2).m(32).ef_construction(400).seed(7);
/// assert_eq!(p.max_links0(), 64);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    pub(crate) dim: usize,
    pub(crate) metric: Metric,
    pub(crate) m: usize,
    pub(crate) ef_construction: usize,
    pub(crate) seed: u64,
    pub(crate) kernel: Choice,
    pub(crate) quantization: Quantization,
}

/// Largest `M` accepted: a layer-0 row then holds 4096 links (16 KiB), far past any useful
/// setting.
pub const MAX_M: usize = 2048;

/// Largest `ef_construction` accepted (hnswlib's users rarely pass 2,000).
pub const MAX_EF_CONSTRUCTION: usize = 1 << 16;

impl Params {
    /// Parameters for `dim`-dimensional vectors under `metric`, with the defaults above, seed
    /// 0 and the best kernels this CPU has.
    pub fn new(dim: usize, metric: Metric) -> Self {
        Params {
            dim,
            metric,
            m: 16,
            ef_construction: 200,
            seed: 0,
            kernel: Choice::Auto,
            quantization: Quantization::None,
        }
    }

    /// Links per node on the upper layers (`M`); layer 0 holds up to `2·M`. At least 2.
    pub fn m(mut self, m: usize) -> Self {
        self.m = m;
        self
    }

    /// Size of the candidate list while inserting (`ef_construction`). In
    /// `1..=`[`MAX_EF_CONSTRUCTION`]; values below `M` are raised to `M` when used.
    pub fn ef_construction(mut self, ef: usize) -> Self {
        self.ef_construction = ef;
        self
    }

    /// Seed of the level generator: a single-threaded build with the same seed and the same
    /// insertion order gives a bit-identical graph.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Which distance kernels to use ([`Choice::Auto`] unless told).
    pub fn kernel(mut self, choice: Choice) -> Self {
        self.kernel = choice;
        self
    }

    /// How the graph is walked: [`Quantization::None`] (the default) walks the exact `f32`
    /// rows; [`Quantization::Sq8`] also keeps an 8-bit code per component (a quarter of the
    /// bytes), [`Quantization::F16`] a half-precision copy (half the bytes); the graph is
    /// built and searched on those and the final candidates are re-scored with the exact
    /// rows, so results carry exact distances (see
    /// [`Index::search_with`](crate::Index::search_with) for the rerank count).
    ///
    /// F16 learns nothing from the data: the index walks its codes from the first vector
    /// ([`Index::train`](crate::Index::train) is a checked no-op). Components beyond f16's
    /// finite range are clamped to `±65504` in the codes and magnitudes below its smallest
    /// subnormal (about `6·10⁻⁸`) become zero, so the walk never sees an infinity; the
    /// rerank sees the true values.
    ///
    /// The SQ8 quantiser (per-dimension offset and scale) is trained from the data: by
    /// [`Index::train`](crate::Index::train), or automatically from the vectors in the index
    /// once it holds [`AUTO_TRAIN_ROWS`](crate::AUTO_TRAIN_ROWS) (an `add_batch` that gets
    /// there trains first, on the old rows and its own). Until then searches walk the exact
    /// rows. Components outside the trained range are clamped to it in the codes (the walk
    /// sees them at the range's end; the rerank sees the true value).
    pub fn quantization(mut self, q: Quantization) -> Self {
        self.quantization = q;
        self
    }

    /// The quantisation (see [`quantization`](Self::quantization)).
    pub fn quantization_kind(&self) -> Quantization {
        self.quantization
    }

    /// The dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The metric.
    pub fn metric(&self) -> Metric {
        self.metric
    }

    /// `M`.
    pub fn max_links(&self) -> usize {
        self.m
    }

    /// `Mmax0 = 2·M`, the most links a node holds on layer 0.
    pub fn max_links0(&self) -> usize {
        2 * self.m
    }

    /// `ef_construction`.
    pub fn ef_construction_value(&self) -> usize {
        self.ef_construction
    }

    /// The seed.
    pub fn seed_value(&self) -> u64 {
        self.seed
    }

    /// The level multiplier `mL = 1 / ln M`.
    pub fn level_multiplier(&self) -> f64 {
        1.0 / (self.m as f64).ln()
    }

    pub(crate) fn validate(&self) -> Result<()> {
        let bad = |name, reason: String| Err(Error::InvalidParameter { name, reason });
        if self.dim == 0 {
            return bad("dim", "must be at least 1".into());
        }
        if self.dim > (1 << 24) {
            return bad("dim", format!("{} is more than 2^24 components", self.dim));
        }
        if !(2..=MAX_M).contains(&self.m) {
            return bad("m", format!("{} is outside 2..={MAX_M}", self.m));
        }
        if !(1..=MAX_EF_CONSTRUCTION).contains(&self.ef_construction) {
            return bad(
                "ef_construction",
                format!("{} is outside 1..={MAX_EF_CONSTRUCTION}", self.ef_construction),
            );
        }
        Ok(())
    }
}

//! The vector slab: every vector of the index in one 64-byte-aligned allocation, one row per
//! node, rows `stride` floats apart. The stride is chosen once per index from the dimension
//! ([`row_stride`]: `dim` rounded up to a multiple of 8 floats, so rows start on 32-byte
//! boundaries; see there for why, and what it was measured against). Until then every row was
//! rounded up to 16 floats, and files written then keep that stride: a loaded or mapped index
//! uses its file's stride ([`valid_stride`] bounds what a loader accepts), and growing or
//! renumbering an index keeps its stride. Padding, where there is any, is zero; the kernels
//! are given the stride as the length (whole registers over the zeros rather than a masked
//! tail); a row never extends past the slab, the last one included.

use std::alloc::Layout;
use std::ptr::NonNull;

use crate::store::cells::FileMap;

/// Floats per cache line: the padded layout rounds rows up to a multiple of this.
pub const ROW_ALIGN_FLOATS: usize = 16;

/// Bytes of alignment of the slab (and of every row of a padded layout).
pub const SLAB_ALIGN: usize = 64;

/// `dim` rounded up to a multiple of 16 floats: the layout of every index before the stride
/// was chosen per dimension, so the stride of every file written before, and the largest
/// stride a file may have.
pub fn padded_stride(dim: usize) -> usize {
    dim.div_ceil(ROW_ALIGN_FLOATS) * ROW_ALIGN_FLOATS
}

/// `HNSWX_ROW_ALIGN=1|2|4|8|16` (read once): round every new index's rows to that many floats
/// instead of following [`row_stride`]'s rule. For comparisons (the README's table was
/// measured with it); files record their stride, so indexes built either way load anywhere.
fn align_override() -> Option<usize> {
    static ALIGN: std::sync::OnceLock<Option<usize>> = std::sync::OnceLock::new();
    *ALIGN.get_or_init(|| {
        let v = std::env::var("HNSWX_ROW_ALIGN").ok()?;
        v.trim()
            .parse::<usize>()
            .ok()
            .filter(|a| a.is_power_of_two() && *a <= ROW_ALIGN_FLOATS)
    })
}

/// Floats per row of a new index of `dim`-dimensional vectors: `dim` rounded up to a multiple
/// of 8 floats (32 bytes).
///
/// Why (the slab's base is 64-byte aligned, and the kernels read `stride` floats per row):
/// rows whose stride is a multiple of 8 floats start on 32-byte boundaries, so no 32-byte
/// (AVX2) load straddles a cache line and no row needs a masked tail, and a row touches
/// exactly as many lines as it would rounded up to 16 (a row of `16k + 8` floats that starts
/// mid-line ends on a line boundary), while every `dim` with `dim % 16` in `1..=8` saves 8
/// floats a row. Shorter strides (rounded to 4, or unpadded) make rows straddle more lines
/// on average and need masked loads. Measured on a 2-core AMD EPYC (Zen 3, AVX2), one saved
/// graph re-laid at each stride, single-thread QPS at ef 64 relative to rows rounded to 16
/// (`examples/strides.rs`, 200k generated vectors, medians of three runs): rounded to 8,
/// 1.00–1.04 at 3, 6, 36, 50 and 100 dimensions; unpadded, 0.87 at 25, 0.93 at 3 and at 50
/// (cosine), 0.95 at 6, 1.00–1.01 at 100; rounded to 4, 0.91 at 60. The README has the
/// table. Not measured with AVX-512 kernels, whose 64-byte loads of every other row straddle
/// two lines at strides of `16k + 8` (the lines a row touches stay as many).
pub fn row_stride(dim: usize) -> usize {
    let a = align_override().unwrap_or(8);
    dim.div_ceil(a) * a
}

/// Whether a file's row stride is one this build can search: at least `dim`, at most `dim`
/// rounded up to 16 (every stride [`row_stride`] chooses, under any override, and the legacy
/// one). Anything else is a corrupted header.
pub fn valid_stride(dim: usize, stride: usize) -> bool {
    dim <= stride && stride <= padded_stride(dim)
}

/// What keeps the slab's rows alive: our own allocation, or a mapped index file.
enum SlabOwner {
    Heap(#[allow(dead_code)] Zeroed),
    Map(#[allow(dead_code)] FileMap),
}

/// A zeroed, 64-byte-aligned allocation, freed on drop: a failed allocation is an error
/// rather than an abort, and pages that are never written cost nothing.
///
/// Slabs from [`HUGE_FROM`] up are mapped directly (Linux), aligned to 2 MiB and advised to
/// use transparent huge pages (`madvise(MADV_HUGEPAGE)`) before any page is touched: a search
/// touches rows all over the slab, and with 4 KiB pages most of those touches also miss the
/// TLB. The advice covers the table's own bytes: the huge pages it fills whole are huge, the
/// rest of it keeps 4 KiB pages, so no memory goes to pages the table does not use.
/// `HNSWX_HUGEPAGES=0` turns this off (for comparisons). Smaller slabs, and other systems, use
/// the global allocator's `alloc_zeroed`.
pub(crate) enum Zeroed {
    Heap {
        ptr: NonNull<u8>,
        layout: Layout,
    },
    #[cfg(target_os = "linux")]
    Mapped {
        ptr: NonNull<u8>,
        base: *mut libc::c_void,
        len: usize,
    },
}

/// Tables from this size up get huge pages: the smallest that can hold one whole (aligned)
/// huge page. 4 MiB until the thirteenth session. Trials there, on a Zen 4, both with the
/// advice rounded up to whole huge pages: sift5k's tables (2.6 MB of vectors, 0.66 MB each of
/// codes and links) in huge pages from 1 MiB (so the vectors, which the rerank reads) or from
/// 256 KiB (all three) made its SQ8 walk with the AVX2 kernels 1.01–1.03× faster (paired
/// rounds, 9 or 10 of 11 rounds faster), the native one 0.99–1.00×, its f32 walk 1.01×
/// (`benches/results/zen4/prefetch-ab.txt`). The advice covers only the table's own bytes, so
/// only the huge pages it fills whole become huge: rounding it up made each table's last huge
/// page whole too, but cost up to 2 MiB of memory per table (sift5k's bench process 16.9 →
/// 18.5 MB; fashion-mnist 3,347 → 3,365 resident bytes per vector, past hnswlib's 3,329).
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
const HUGE_FROM: usize = 2 << 20;
#[cfg(target_os = "linux")]
const HUGE_PAGE: usize = 2 << 20;

/// Whether to ask for huge pages: yes unless `HNSWX_HUGEPAGES=0` (read once).
#[cfg(target_os = "linux")]
fn want_huge_pages() -> bool {
    static WANT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *WANT.get_or_init(|| std::env::var_os("HNSWX_HUGEPAGES").is_none_or(|v| v != "0"))
}

impl Zeroed {
    pub(crate) fn new(bytes: usize) -> Option<Zeroed> {
        #[cfg(target_os = "linux")]
        if bytes >= HUGE_FROM && want_huge_pages() {
            let len = bytes.checked_add(HUGE_PAGE)?;
            // SAFETY: an anonymous private mapping of `len` bytes at an address the kernel
            // chooses: no existing memory is affected. The kernel zero-fills it.
            let base = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                )
            };
            if base == libc::MAP_FAILED {
                return None;
            }
            let offset = (HUGE_PAGE - base as usize % HUGE_PAGE) % HUGE_PAGE;
            // SAFETY: `offset < HUGE_PAGE`, so `base + offset .. + bytes` lies in the mapping.
            let ptr = unsafe { base.cast::<u8>().add(offset) };
            // SAFETY: advice on our own mapping, before any page is touched; it changes no
            // contents (a kernel without THP refuses it, which we ignore).
            unsafe { libc::madvise(ptr.cast(), bytes, libc::MADV_HUGEPAGE) };
            return Some(Zeroed::Mapped {
                ptr: NonNull::new(ptr)?,
                base,
                len,
            });
        }
        let layout = Layout::from_size_align(bytes.max(SLAB_ALIGN), SLAB_ALIGN).ok()?;
        // SAFETY: the layout's size is at least SLAB_ALIGN > 0.
        let ptr = NonNull::new(unsafe { std::alloc::alloc_zeroed(layout) })?;
        Some(Zeroed::Heap { ptr, layout })
    }

    pub(crate) fn ptr(&self) -> NonNull<u8> {
        match self {
            Zeroed::Heap { ptr, .. } => *ptr,
            #[cfg(target_os = "linux")]
            Zeroed::Mapped { ptr, .. } => *ptr,
        }
    }
}

impl Drop for Zeroed {
    fn drop(&mut self) {
        match *self {
            // SAFETY: allocated in `new` with this layout, freed once.
            Zeroed::Heap { ptr, layout } => unsafe { std::alloc::dealloc(ptr.as_ptr(), layout) },
            #[cfg(target_os = "linux")]
            Zeroed::Mapped { base, len, .. } => {
                // SAFETY: the mapping made in `new`, unmapped once.
                unsafe { libc::munmap(base, len) };
            }
        }
    }
}

/// Fixed-capacity row storage written through `&self`.
///
/// Rows are written once, by the thread that owns the slot, before the node is published to
/// other threads (through a release store that readers acquire); they are not written again
/// while any reader can reach them (a slot is reused only after a consolidation's grace
/// period). That protocol, not the type, prevents data races, so writing and reading rows
/// are `unsafe`.
pub struct Slab {
    /// Owns the memory; never touched after construction except to be dropped, so the
    /// pointer below stays the one way in.
    _owner: SlabOwner,
    ptr: NonNull<f32>,
    dim: usize,
    stride: usize,
    capacity: usize,
}

// SAFETY: the slab is a plain buffer of f32 (`Zeroed` is only a pointer to it); the access protocol above (rows written once
// before a release-publication, then only read) makes sharing it across threads sound.
unsafe impl Send for Slab {}
// SAFETY: as above.
unsafe impl Sync for Slab {}

impl Slab {
    /// A zeroed slab of `capacity` rows for `dim`-dimensional vectors, [`row_stride`] floats
    /// apart, or `None` if its size overflows `isize` or the allocation fails.
    pub fn new(dim: usize, capacity: usize) -> Option<Slab> {
        Slab::with_stride(dim, row_stride(dim), capacity)
    }

    /// [`new`](Self::new) with rows `stride` floats apart (a loaded file's stride, which
    /// [`valid_stride`] accepted).
    pub fn with_stride(dim: usize, stride: usize, capacity: usize) -> Option<Slab> {
        if stride < dim {
            return None;
        }
        let floats = stride.checked_mul(capacity.max(1))?;
        if floats.checked_mul(4)? > isize::MAX as usize - SLAB_ALIGN {
            return None;
        }
        let buf = Zeroed::new(floats * 4)?;
        let ptr = buf.ptr().cast::<f32>();
        Some(Slab {
            _owner: SlabOwner::Heap(buf),
            ptr,
            dim,
            stride,
            capacity,
        })
    }

    /// `rows` rows of `stride` floats of a mapped index file starting at byte `offset`
    /// (searched in place; a freed slot reused by `add` is written to a private copy of its
    /// page), or `None` if they do not fit, the stride is shorter than a row, or the slab
    /// does not start on a 64-byte boundary.
    pub fn mapped(map: &FileMap, offset: usize, dim: usize, stride: usize, rows: usize) -> Option<Slab> {
        if stride < dim {
            return None;
        }
        let bytes = rows.checked_mul(stride)?.checked_mul(4)?;
        let ptr = map.at(offset, bytes, SLAB_ALIGN)?.cast::<f32>();
        Some(Slab {
            _owner: SlabOwner::Map(map.clone()),
            ptr,
            dim,
            stride,
            capacity: rows,
        })
    }

    /// A new slab of `capacity` rows, same stride, holding a copy of this one's rows (the
    /// first `min(capacity, self.capacity)`).
    pub fn resized(&self, capacity: usize) -> Option<Slab> {
        let out = Slab::with_stride(self.dim, self.stride, capacity)?;
        let floats = self.stride * self.capacity.min(capacity);
        // SAFETY: both buffers hold at least `floats` floats and do not overlap; `&self`
        // callers hold no writers (resizing needs `&mut Index`).
        unsafe { std::ptr::copy_nonoverlapping(self.ptr.as_ptr(), out.ptr.as_ptr(), floats) };
        Some(out)
    }

    /// Floats from one row's start to the next (at least `dim`; see [`row_stride`]). Also the
    /// length the kernels are given: a row's padding is zero, in the rows and in the query.
    pub fn stride(&self) -> usize {
        self.stride
    }

    /// Start of the slab (row 0).
    #[inline(always)]
    pub fn base(&self) -> *const f32 {
        self.ptr.as_ptr()
    }

    /// Start of row `i`.
    #[inline(always)]
    pub fn row_ptr(&self, i: u32) -> *const f32 {
        debug_assert!((i as usize) < self.capacity);
        // Wrapping arithmetic: computing the address is safe; dereferencing is the caller's.
        self.ptr.as_ptr().wrapping_add(i as usize * self.stride)
    }

    /// Row `i` (its `dim` components).
    ///
    /// # Safety
    /// `i < capacity`, and row `i` was written and published before this call (no thread
    /// writes it while the slice lives).
    #[inline(always)]
    pub unsafe fn row(&self, i: u32) -> &[f32] {
        debug_assert!((i as usize) < self.capacity);
        // SAFETY: in bounds (caller); no concurrent writer (caller).
        unsafe { std::slice::from_raw_parts(self.row_ptr(i), self.dim) }
    }

    /// Writes `v` into row `i` (the padding stays zero).
    ///
    /// # Safety
    /// `i < capacity`; the calling thread owns slot `i` exclusively: no other thread reads or
    /// writes row `i` until it is published after this call.
    pub unsafe fn write(&self, i: u32, v: &[f32]) {
        assert!((i as usize) < self.capacity && v.len() == self.dim);
        // SAFETY: row `i` lies inside the allocation (asserted) and nobody else touches it
        // (caller); `v` is a distinct allocation of `dim` floats.
        unsafe { std::ptr::copy_nonoverlapping(v.as_ptr(), self.row_ptr(i) as *mut f32, self.dim) };
    }

    /// The first `rows` rows as one mutable slice (padding included); exclusive access.
    pub fn as_mut_slice(&mut self, rows: usize) -> &mut [f32] {
        assert!(rows <= self.capacity);
        // SAFETY: `&mut self` excludes every other access; the range lies in the allocation.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), rows * self.stride) }
    }

    /// Heap bytes held.
    pub fn bytes(&self) -> usize {
        self.stride * self.capacity.max(1) * 4
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hnswx_kernels::{select, Choice, Isa, Metric, Prefetch};
    use memmap2::MmapMut;

    #[test]
    fn every_chosen_stride_is_valid_and_line_friendly() {
        for dim in 1..=2000 {
            let s = row_stride(dim);
            assert!(valid_stride(dim, s), "dim {dim}: stride {s}");
            if align_override().is_none() {
                // 32-byte rows: no row straddles more lines than rows rounded to 16 would.
                assert!(s.is_multiple_of(8) && s - dim < 8, "dim {dim}: {s}");
                assert_eq!(s.div_ceil(16), padded_stride(dim) / 16, "dim {dim}: {s}");
            }
        }
        assert!(!valid_stride(25, 24) && !valid_stride(25, 33) && !valid_stride(1, 0));
        assert!(valid_stride(25, 25) && valid_stride(25, 32));
    }

    /// An unpadded slab is exactly `rows × dim` floats, its base still 64-byte aligned, and
    /// rows are written and read back through their stride.
    #[test]
    fn slabs_are_tight_and_keep_their_stride() {
        for (dim, stride) in [(25, 25), (25, 28), (25, 32), (3, 3), (3, 4), (100, 100), (100, 104)] {
            let slab = Slab::with_stride(dim, stride, 7).unwrap();
            assert_eq!((slab.stride(), slab.bytes()), (stride, 7 * stride * 4));
            assert!((slab.base() as usize).is_multiple_of(SLAB_ALIGN));
            for i in 0..7u32 {
                let v: Vec<f32> = (0..dim).map(|j| (i as usize * 1000 + j) as f32).collect();
                // SAFETY: row `i < 7` of a slab nobody else can see.
                unsafe { slab.write(i, &v) };
            }
            let grown = slab.resized(9).unwrap();
            assert_eq!(grown.stride(), stride);
            for s in [&slab, &grown] {
                for i in 0..7u32 {
                    // SAFETY: row `i` was written above; nothing writes it now.
                    let row = unsafe { s.row(i) };
                    assert!(row
                        .iter()
                        .enumerate()
                        .all(|(j, &x)| x == (i as usize * 1000 + j) as f32));
                }
            }
        }
        assert!(Slab::with_stride(25, 24, 7).is_none());
    }

    /// The kernels, given an unpadded row, read `dim` floats and not one more: the slab's last
    /// row ends exactly where a page the process may not read (`PROT_NONE`) begins, and every
    /// instruction set this machine has scores it (one-to-one and one-to-many) without a
    /// fault and with the right distance. Every tail length of every register width is
    /// covered (AVX2 `vmaskmovps`, AVX-512 masked loads, NEON, portable and scalar copies).
    #[cfg(target_os = "linux")]
    #[test]
    fn kernels_never_read_past_an_unpadded_last_row() {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
        let dims = (1..=70).chain([100, 127, 129, 383, 785]);
        for dim in dims {
            let mut strides = vec![dim, row_stride(dim)];
            strides.dedup();
            for stride in strides {
                // 16 rows: a whole number of 64-byte blocks, so the slab can end on the page
                // boundary and still start on a 64-byte one.
                let rows = 16;
                let bytes = rows * stride * 4;
                let body = bytes.div_ceil(page) * page;
                let mut map = MmapMut::map_anon(body + page).unwrap();
                let offset = body - bytes;
                let data: &mut [f32] = bytemuck::cast_slice_mut(&mut map[offset..body]);
                for (i, x) in data.iter_mut().enumerate() {
                    *x = if i % stride < dim {
                        ((i * 7919) % 113) as f32 * 0.01 - 0.5
                    } else {
                        0.0
                    };
                }
                // SAFETY: the last page of our own mapping, which nothing else uses; its
                // contents are never read again.
                let r = unsafe { libc::mprotect(map.as_mut_ptr().add(body).cast(), page, libc::PROT_NONE) };
                assert_eq!(r, 0);
                let start = map.as_ptr() as usize;
                let map = FileMap::of(map);
                let slab = Slab::mapped(&map, offset, dim, stride, rows).unwrap();
                let last = rows as u32 - 1;
                assert_eq!(
                    slab.row_ptr(last) as usize + 4 * stride,
                    start + body,
                    "the last row ends at the guard page"
                );
                let q: Vec<f32> = (0..stride)
                    .map(|i| if i < dim { (i as f32).sin() } else { 0.0 })
                    .collect();
                let ids: Vec<u32> = (0..rows as u32).rev().collect();
                for isa in Isa::ALL.into_iter().filter(|i| i.is_available()) {
                    let kernels = select(Choice::Force(isa)).unwrap();
                    for metric in [Metric::L2, Metric::InnerProduct] {
                        let k = kernels.metric(metric);
                        let mut out = vec![0.0f32; rows];
                        // SAFETY: `q` holds `stride` floats, every id names one of the slab's
                        // `rows` rows of `stride` floats, `out` holds `rows` floats.
                        unsafe {
                            k.distances_unchecked(
                                q.as_ptr(),
                                slab.base(),
                                stride,
                                stride,
                                &ids,
                                out.as_mut_ptr(),
                                Prefetch::Ahead,
                            )
                        };
                        // SAFETY: as above, for the last row alone.
                        let one = unsafe { k.distance_unchecked(q.as_ptr(), slab.row_ptr(last), stride) };
                        for (j, &id) in ids.iter().enumerate() {
                            // SAFETY: the rows were written before the mapping was shared.
                            let row = unsafe { slab.row(id) };
                            let want: f64 = match metric {
                                Metric::L2 => row.iter().zip(&q).map(|(&x, &y)| f64::from(x - y).powi(2)).sum(),
                                _ => {
                                    1.0 - row
                                        .iter()
                                        .zip(&q)
                                        .map(|(&x, &y)| f64::from(x) * f64::from(y))
                                        .sum::<f64>()
                                }
                            };
                            let tol = 1e-4 * (1.0 + want.abs());
                            assert!(
                                (f64::from(out[j]) - want).abs() <= tol,
                                "{isa} dim {dim} stride {stride} row {id}"
                            );
                            if id == last {
                                assert!((f64::from(one) - want).abs() <= tol, "{isa} dim {dim} stride {stride}");
                            }
                        }
                    }
                }
            }
        }
    }

    /// Allocations on either side of the huge-page threshold (and of the old one, 4 MiB), of
    /// sizes that are and are not whole huge pages: zeroed, aligned (mapped ones to a huge
    /// page), every byte writable, freed on drop.
    #[test]
    fn zeroed_tables_around_the_huge_page_threshold() {
        for bytes in [64, 1 << 20, HUGE_FROM - 1, HUGE_FROM, (3 << 20) + 1, (4 << 20) + 4096] {
            let z = Zeroed::new(bytes).expect("allocation");
            let p = z.ptr().as_ptr();
            assert_eq!(p as usize % SLAB_ALIGN, 0, "{bytes} bytes: alignment");
            // SAFETY: `Zeroed::new(bytes)` owns at least `bytes` zeroed bytes at `p`, and
            // nothing else refers to them.
            let all = unsafe { std::slice::from_raw_parts_mut(p, bytes) };
            assert!(all.iter().all(|&b| b == 0), "{bytes} bytes: not zeroed");
            all.fill(0xa5);
            assert!(all.iter().all(|&b| b == 0xa5));
            #[cfg(target_os = "linux")]
            if bytes >= HUGE_FROM && want_huge_pages() {
                assert!(matches!(z, Zeroed::Mapped { .. }), "{bytes} bytes: not mapped");
                assert_eq!(p as usize % HUGE_PAGE, 0, "{bytes} bytes: not on a huge page");
            }
        }
    }
}

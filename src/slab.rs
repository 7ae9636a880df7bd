//! The vector slab: every vector of the index in one 64-byte-aligned allocation, one row per
//! node, each row padded with zeros to a multiple of 16 floats so that it starts on a cache
//! line and the kernels can run over whole 64-byte blocks.

use memmap2::MmapMut;
use std::alloc::Layout;
use std::ptr::NonNull;
use std::sync::Arc;

/// Floats per row are a multiple of this (16 × 4 bytes = one cache line).
pub const ROW_ALIGN_FLOATS: usize = 16;

/// Bytes of alignment of the slab and of every row.
pub const SLAB_ALIGN: usize = 64;

/// Row length for `dim` components: `dim` rounded up to a multiple of 16.
pub fn padded_stride(dim: usize) -> usize {
    dim.div_ceil(ROW_ALIGN_FLOATS) * ROW_ALIGN_FLOATS
}

/// What keeps the slab's rows alive: our own allocation, or a mapped index file.
enum SlabOwner {
    Heap(#[allow(dead_code)] Zeroed),
    Map(#[allow(dead_code)] Arc<MmapMut>),
}

/// A zeroed, 64-byte-aligned allocation, freed on drop: a failed allocation is an error
/// rather than an abort, and pages that are never written cost nothing.
///
/// Slabs from [`HUGE_FROM`] up are mapped directly (Linux), aligned to 2 MiB and advised to
/// use transparent huge pages (`madvise(MADV_HUGEPAGE)`) before any page is touched: a search
/// touches rows all over the slab, and with 4 KiB pages most of those touches also miss the
/// TLB. `HNSWX_HUGEPAGES=0` turns this off (for comparisons). Smaller slabs, and other
/// systems, use the global allocator's `alloc_zeroed`.
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

const HUGE_FROM: usize = 4 << 20;
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
    /// A zeroed slab of `capacity` rows for `dim`-dimensional vectors, or `None` if its size
    /// overflows `isize` or the allocation fails.
    pub fn new(dim: usize, capacity: usize) -> Option<Slab> {
        let stride = padded_stride(dim);
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

    /// `rows` rows of a mapped index file starting at byte `offset` (searched in place, never
    /// written), or `None` if they do not fit or are not on a 64-byte boundary.
    pub fn mapped(map: &Arc<MmapMut>, offset: usize, dim: usize, rows: usize) -> Option<Slab> {
        let stride = padded_stride(dim);
        let bytes = rows.checked_mul(stride)?.checked_mul(4)?;
        if offset.checked_add(bytes)? > map.len() {
            return None;
        }
        let p = map.as_ptr().wrapping_add(offset) as *mut f32;
        if !(p as usize).is_multiple_of(SLAB_ALIGN) {
            return None;
        }
        let ptr = NonNull::new(p)?;
        Some(Slab {
            _owner: SlabOwner::Map(Arc::clone(map)),
            ptr,
            dim,
            stride,
            capacity: rows,
        })
    }

    /// A new slab of `capacity` rows holding a copy of this one's rows (the first
    /// `min(capacity, self.capacity)`).
    pub fn resized(&self, capacity: usize) -> Option<Slab> {
        let out = Slab::new(self.dim, capacity)?;
        let floats = self.stride * self.capacity.min(capacity);
        // SAFETY: both buffers hold at least `floats` floats and do not overlap; `&self`
        // callers hold no writers (resizing needs `&mut Index`).
        unsafe { std::ptr::copy_nonoverlapping(self.ptr.as_ptr(), out.ptr.as_ptr(), floats) };
        Some(out)
    }

    /// Floats per row (`dim` padded to a multiple of 16).
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

//! [`Cells`]: a table that lives either on the heap or inside a mapped index file, so the
//! graph and the labels can be searched in place after `Index::open_mmap`.

use memmap2::MmapMut;
use std::ops::Deref;
use std::ptr::NonNull;
use std::sync::Arc;

/// A read-mostly slice of `T` on the heap (owned, freed on drop) or in a mapped file.
pub struct Cells<T> {
    ptr: NonNull<T>,
    len: usize,
    /// `None`: the cells are a leaked `Box<[T]>` of ours. `Some`: a copy-on-write private
    /// mapping of an index file, shared by every table in it — private and writable, so
    /// atomics on it are sound; never written, so no page is ever copied.
    map: Option<Arc<MmapMut>>,
}

// SAFETY: `Cells<T>` is a `[T]` owned by it (or by the mapping it keeps alive); sharing or
// sending it is sound when sharing or sending `T` is.
unsafe impl<T: Sync> Sync for Cells<T> {}
// SAFETY: as above.
unsafe impl<T: Send + Sync> Send for Cells<T> {}

impl<T> Cells<T> {
    /// Cells on the heap.
    pub fn heap(cells: Box<[T]>) -> Self {
        let len = cells.len();
        // Leaked here, freed in `drop`: a raw pointer only, so no `Box` aliasing rules apply.
        let ptr = NonNull::new(Box::into_raw(cells) as *mut T).expect("a box is never null");
        Cells { ptr, len, map: None }
    }

    /// `len` zeroed cells on the heap, or `None` if the allocation fails (no abort). The
    /// memory comes from `alloc_zeroed`, so untouched pages cost nothing until used.
    ///
    /// # Safety
    /// The all-zero bit pattern must be a valid `T` (true of the integer and atomic types
    /// used here).
    pub unsafe fn zeroed(len: usize) -> Option<Self> {
        let layout = std::alloc::Layout::array::<T>(len).ok()?;
        let ptr = if layout.size() == 0 {
            NonNull::dangling()
        } else {
            // SAFETY: the layout has a non-zero size.
            NonNull::new(unsafe { std::alloc::alloc_zeroed(layout) } as *mut T)?
        };
        // The memory is freed in `drop` as the `Box<[T]>` it is layout-compatible with.
        Some(Cells { ptr, len, map: None })
    }

    /// `len` cells at byte `offset` of `map`, or `None` if they do not fit or are misaligned.
    ///
    /// # Safety
    /// Every bit pattern must be a valid `T` (true of the integer and atomic types used here).
    pub unsafe fn mapped(map: &Arc<MmapMut>, offset: usize, len: usize) -> Option<Self> {
        let bytes = len.checked_mul(std::mem::size_of::<T>())?;
        if offset.checked_add(bytes)? > map.len() {
            return None;
        }
        let p = map.as_ptr().wrapping_add(offset) as *mut T;
        if !p.is_aligned() {
            return None;
        }
        Some(Cells {
            ptr: NonNull::new(p)?,
            len,
            map: Some(Arc::clone(map)),
        })
    }
}

impl<T> Deref for Cells<T> {
    type Target = [T];

    #[inline(always)]
    fn deref(&self) -> &[T] {
        // SAFETY: `ptr` points at `len` initialised, aligned `T`s kept alive by `self` (the
        // leaked box) or by `map` (checked in `mapped`); nothing hands out `&mut` to them.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<T> Drop for Cells<T> {
    fn drop(&mut self) {
        if self.map.is_none() {
            // SAFETY: `ptr`/`len` came from `Box::into_raw` in `heap`, or from the global
            // allocator with the layout of `[T; len]` in `zeroed` (which is how a `Box<[T]>`
            // is allocated); they are freed once.
            drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(self.ptr.as_ptr(), self.len)) });
        }
    }
}

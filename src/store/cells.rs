//! [`Cells`]: a table that lives either on the heap or inside a mapped index file, so the
//! graph and the labels can be searched in place after `Index::open_mmap`.

use memmap2::MmapMut;

use crate::store::slab::{Zeroed, SLAB_ALIGN};
use std::ops::Deref;
use std::ptr::NonNull;
use std::sync::Arc;

/// A read-mostly slice of `T` on the heap (owned, freed on drop) or in a mapped file.
pub struct Cells<T> {
    ptr: NonNull<T>,
    len: usize,
    owner: Owner,
}

/// What keeps a [`Cells`]' memory alive.
enum Owner {
    /// A leaked `Box<[T]>` of ours, freed in `drop`.
    Boxed,
    /// A zeroed allocation (mapped and advised to use huge pages when large: see
    /// [`Zeroed`]), freed when this is dropped.
    Pages(#[allow(dead_code)] Zeroed),
    /// A copy-on-write private mapping of an index file, shared by every table in it —
    /// private and writable, so atomics on it are sound; never written, so no page is ever
    /// copied.
    Map(#[allow(dead_code)] Arc<MmapMut>),
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
        Cells {
            ptr,
            len,
            owner: Owner::Boxed,
        }
    }

    /// `len` zeroed cells, or `None` if the allocation fails (no abort). The memory comes
    /// from [`Zeroed`]: untouched pages cost nothing until used, and a table of 4 MiB or more
    /// (the link tables of a large index) is mapped and advised to use transparent huge
    /// pages, as the vector slab is, since a search reads one link row per visited node all
    /// over it.
    ///
    /// # Safety
    /// The all-zero bit pattern must be a valid `T` (true of the integer and atomic types
    /// used here).
    pub unsafe fn zeroed(len: usize) -> Option<Self> {
        // Zeroed pages are freed without dropping the cells: only for types with no drop.
        const { assert!(std::mem::align_of::<T>() <= SLAB_ALIGN && !std::mem::needs_drop::<T>()) };
        let bytes = len.checked_mul(std::mem::size_of::<T>())?;
        if bytes > isize::MAX as usize {
            return None;
        }
        let pages = Zeroed::new(bytes)?;
        // A 64-byte-aligned allocation of at least `bytes` zero bytes, so `len` aligned `T`s.
        let ptr = pages.ptr().cast::<T>();
        Some(Cells {
            ptr,
            len,
            owner: Owner::Pages(pages),
        })
    }

    /// `values` converted into zeroed cells (see [`zeroed`](Self::zeroed)), or `None` if
    /// the allocation fails.
    ///
    /// # Safety
    /// As for [`zeroed`](Self::zeroed).
    pub unsafe fn from_values<U>(values: &[U], convert: impl Fn(&U) -> T) -> Option<Self> {
        // SAFETY: forwarded from the caller.
        let cells = unsafe { Cells::<T>::zeroed(values.len()) }?;
        for (i, v) in values.iter().enumerate() {
            // SAFETY: `i < len`, the cells are ours alone until returned; `write` does not
            // drop the zeroed (valid, by the caller's guarantee) value it replaces, which
            // has no destructor for the types used here.
            unsafe { cells.ptr.as_ptr().add(i).write(convert(v)) };
        }
        Some(cells)
    }

    /// The cells as bytes, to fill them (from a file, say).
    ///
    /// # Safety
    /// Every bit pattern must be a valid `T`; the cells must not be a mapped file's (writing
    /// those would copy the pages).
    pub unsafe fn bytes_mut(&mut self) -> &mut [u8] {
        assert!(
            !matches!(self.owner, Owner::Map(_)),
            "bytes_mut on a mapped file's cells"
        );
        // SAFETY: `&mut self` gives exclusive access to the `len` initialised `T`s at `ptr`
        // (see `deref`); any bytes written are a valid `T` (caller).
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr().cast::<u8>(), self.len * std::mem::size_of::<T>()) }
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
            owner: Owner::Map(Arc::clone(map)),
        })
    }
}

impl<T> Deref for Cells<T> {
    type Target = [T];

    #[inline(always)]
    fn deref(&self) -> &[T] {
        // SAFETY: `ptr` points at `len` initialised, aligned `T`s kept alive by `self.owner`
        // (the leaked box, the zeroed pages, or the map, checked in `mapped`); nothing hands
        // out `&mut` to them.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<T> Drop for Cells<T> {
    fn drop(&mut self) {
        if let Owner::Boxed = self.owner {
            // SAFETY: `ptr`/`len` came from `Box::into_raw` in `heap`; freed once. (Zeroed
            // pages and maps free themselves when `owner` is dropped.)
            drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(self.ptr.as_ptr(), self.len)) });
        }
    }
}

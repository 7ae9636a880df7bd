//! [`Cells`]: a table that lives either on the heap or inside a mapped index file, so the
//! graph and the labels can be searched in place after `Index::open_mmap`; and [`FileMap`],
//! that mapping.

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
    /// private and writable, so atomics on it are sound; link tables are never written
    /// there, so none of their pages is copied.
    Map(#[allow(dead_code)] FileMap),
}

/// A private (copy-on-write) mapping of an index file, shared by every table mapped from it
/// (slab, link tables, labels, codes). Its base pointer is taken once from the mapping
/// itself (`MmapMut::as_mut_ptr`), never from a shared view of it, so rows that are written
/// later (a freed slot reused by `add` writes its slab and code rows) are written through a
/// pointer allowed to write; the writes go to private copies of the pages, never to the
/// file.
#[derive(Clone)]
pub struct FileMap {
    base: NonNull<u8>,
    len: usize,
    _map: Arc<MmapMut>,
}

// SAFETY: the mapping is owned by the `Arc` (freed when the last clone goes); `base` is only
// an address into it. Concurrent access to the bytes is governed by the tables built on it
// (atomics, or rows written once before publication), as for heap tables.
unsafe impl Send for FileMap {}
// SAFETY: as above.
unsafe impl Sync for FileMap {}

impl FileMap {
    /// Maps `file` privately (copy-on-write).
    ///
    /// # Safety
    /// The file must not be modified or truncated while the mapping (any clone, any table
    /// built on it) lives: `Index::open_mmap`'s contract.
    pub unsafe fn private(file: &std::fs::File) -> std::io::Result<FileMap> {
        // SAFETY: forwarded from the caller; a private mapping is never written back.
        let map = unsafe { memmap2::MmapOptions::new().map_copy(file) }?;
        Ok(FileMap::of(map))
    }

    /// `map` (a private file mapping, or an anonymous one in tests) with its base pointer.
    pub(crate) fn of(mut map: MmapMut) -> FileMap {
        let len = map.len();
        // A mapping's address is never null (memmap2 gives a dangling, aligned pointer for
        // an empty one).
        let base = NonNull::new(map.as_mut_ptr()).expect("a mapping is never at address 0");
        FileMap {
            base,
            len,
            _map: Arc::new(map),
        }
    }

    /// The mapped bytes, to check them while opening.
    ///
    /// # Safety
    /// Nothing writes the mapping while the slice lives (true until the index built on it
    /// is returned: only `add` on a free slot writes).
    pub unsafe fn bytes(&self) -> &[u8] {
        // SAFETY: `len` mapped bytes at `base`, alive while `self` is; not written meanwhile
        // (caller).
        unsafe { std::slice::from_raw_parts(self.base.as_ptr(), self.len) }
    }

    /// Address of byte `offset` if `bytes` bytes from there lie inside the mapping and it is
    /// a multiple of `align`; else `None`.
    pub fn at(&self, offset: usize, bytes: usize, align: usize) -> Option<NonNull<u8>> {
        if offset.checked_add(bytes)? > self.len {
            return None;
        }
        // In bounds (checked), derived from the writable base pointer.
        let p = self.base.as_ptr().wrapping_add(offset);
        (p as usize).is_multiple_of(align).then(|| NonNull::new(p)).flatten()
    }
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
    /// from [`Zeroed`]: untouched pages cost nothing until used, and a table of 2 MiB or more
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
    pub unsafe fn mapped(map: &FileMap, offset: usize, len: usize) -> Option<Self> {
        let bytes = len.checked_mul(std::mem::size_of::<T>())?;
        let p = map.at(offset, bytes, std::mem::align_of::<T>())?;
        Some(Cells {
            ptr: p.cast::<T>(),
            len,
            owner: Owner::Map(map.clone()),
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

//! hnswlib interop: read an index file written by hnswlib's `saveIndex` and write one its
//! `loadIndex` accepts, from the layout its header `hnswalg.h` documents:
//!
//! 1. Thirteen header fields: `offsetLevel0_`, `max_elements_`, `cur_element_count`,
//!    `size_data_per_element_`, `label_offset_`, `offsetData_` (u64 each), `maxlevel_`
//!    (i32), `enterpoint_node_` (u32), `maxM_`, `maxM0_`, `M_` (u64), `mult_` (f64),
//!    `ef_construction_` (u64).
//! 2. Level 0, one fixed block per element: a u32 link count (low 16 bits; byte 2 holds the
//!    deleted mark), `maxM0_` u32 links, the vector (`dim` f32), the label (u64).
//! 3. Per element: a u32 byte length of its upper-layer lists (0 for level-0 elements), then
//!    that many bytes: per level a u32 count and `maxM_` u32 links.
//!
//! The file carries no metric: the caller says which space it was built with (`l2`, `ip`,
//! or `cosine`, whose vectors hnswlib stores normalised).

use std::collections::HashMap;
use std::io::{BufWriter, Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::graph::{count, link, Graph, MAX_LEVEL};
use crate::index::{pack_entry, unpack_entry, Index, SlotKind, NO_ENTRY};
use crate::io::persist::FileError;
use crate::params::{Params, MAX_M};
use crate::store::cells::Cells;
use crate::store::slab::Slab;
use hnswx_kernels::Metric;

const HEADER_BYTES: usize = 6 * 8 + 4 + 4 + 3 * 8 + 8 + 8;

fn corrupt(why: impl Into<String>) -> FileError {
    FileError::Corrupt(why.into())
}

impl Index {
    /// Reads an index file written by hnswlib's `save_index` (hnswlib ≥ 0.5), built in the
    /// space matching `metric` (`l2` → [`Metric::L2`], `ip` → [`Metric::InnerProduct`],
    /// `cosine` → [`Metric::Cosine`]). The graph is taken as it is (same links, same entry
    /// point), so searches at the same `ef` visit the same nodes. Every id, count and level
    /// is checked. Elements marked deleted come in removed: waypoints that no search
    /// returns, restorable with [`restore`](Self::restore) (unless their label is live).
    pub fn import_hnswlib(path: impl AsRef<Path>, metric: Metric) -> Result<Index, FileError> {
        let path = path.as_ref();
        let io = |source| FileError::Io {
            path: path.to_path_buf(),
            source,
        };
        let bytes = std::fs::read(path).map_err(io)?;
        Index::import_hnswlib_bytes(&bytes, metric)
    }

    /// [`import_hnswlib`](Self::import_hnswlib) from the file's bytes.
    pub fn import_hnswlib_bytes(bytes: &[u8], metric: Metric) -> Result<Index, FileError> {
        let mut r = bytes;
        let mut u64_ = || -> Result<u64, FileError> {
            let mut b = [0u8; 8];
            r.read_exact(&mut b)
                .map_err(|_| corrupt("file shorter than an hnswlib header"))?;
            Ok(u64::from_le_bytes(b))
        };
        let offset_level0 = u64_()?;
        let _max_elements = u64_()?;
        let count = u64_()?;
        let size_per_element = u64_()?;
        let label_offset = u64_()?;
        let offset_data = u64_()?;
        let mid = u64_()?; // maxlevel_ (i32) and enterpoint_node_ (u32)
        let max_m = u64_()?;
        let max_m0 = u64_()?;
        let m = u64_()?;
        let _mult = f64::from_bits(u64_()?);
        let ef_construction = u64_()?;
        let (max_level, entry) = (mid as u32 as i32, (mid >> 32) as u32);
        let limits = count <= crate::index::MAX_CAPACITY as u64 && (2..=MAX_M as u64).contains(&m);
        if offset_level0 != 0 || !limits || max_m != m || max_m0 != 2 * m {
            return Err(corrupt(format!(
                "unsupported hnswlib header (offsetLevel0 {offset_level0}, count {count}, M {m}, maxM {max_m}, maxM0 {max_m0}): hnswx needs maxM = M and maxM0 = 2M"
            )));
        }
        let (count, m, m0) = (count as usize, m as usize, max_m0 as usize);
        let links_bytes = 4 + 4 * m0;
        if offset_data as usize != links_bytes
            || label_offset < offset_data
            || !(label_offset - offset_data).is_multiple_of(4)
        {
            return Err(corrupt("hnswlib element layout not understood"));
        }
        let dim = ((label_offset - offset_data) / 4) as usize;
        if dim == 0 || dim > (1 << 24) || label_offset.checked_add(8) != Some(size_per_element) {
            return Err(corrupt(format!(
                "dimension {dim} with {size_per_element}-byte elements"
            )));
        }
        let level0_bytes = count
            .checked_mul(size_per_element as usize)
            .filter(|&b| b <= bytes.len() - HEADER_BYTES)
            .ok_or_else(|| FileError::Length {
                expected: (count as u64)
                    .saturating_mul(size_per_element)
                    .saturating_add(HEADER_BYTES as u64),
                found: bytes.len() as u64,
            })?;
        let level0_block = &bytes[HEADER_BYTES..HEADER_BYTES + level0_bytes];
        let params = Params::new(dim, metric)
            .m(m)
            .ef_construction(ef_construction.clamp(1, crate::params::MAX_EF_CONSTRUCTION as u64) as usize);
        params.validate().map_err(|e| corrupt(e.to_string()))?;
        let mut slab = Slab::new(dim, count).ok_or_else(|| corrupt("too large"))?;
        let stride = slab.stride();
        let rows = slab.as_mut_slice(count);
        let mut level0 = Vec::with_capacity(count * (1 + m0));
        let mut labels = Vec::with_capacity(count);
        let word = |b: &[u8], at: usize| u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"));
        let mut deleted = Vec::with_capacity(count);
        for (i, e) in level0_block.chunks_exact(size_per_element as usize).enumerate() {
            deleted.push(e[2] != 0);
            level0.push(u32::from(u16::from_le_bytes([e[0], e[1]])));
            level0.extend((0..m0).map(|j| word(e, 4 + 4 * j)));
            for (j, x) in rows[i * stride..][..dim].iter_mut().enumerate() {
                *x = f32::from_le_bytes(e[links_bytes + 4 * j..][..4].try_into().expect("4 bytes"));
            }
            labels.push(u64::from_le_bytes(
                e[label_offset as usize..][..8].try_into().expect("8 bytes"),
            ));
        }
        if let Some(bad) = rows.iter().position(|x| !x.is_finite()) {
            return Err(corrupt(format!("vector {} holds a non-finite value", bad / stride)));
        }
        // Upper layers.
        let mut rest = &bytes[HEADER_BYTES + level0_bytes..];
        let row_bytes = 4 + 4 * m;
        let mut offsets = Vec::with_capacity(count + 1);
        offsets.push(0u32);
        let mut upper = Vec::new();
        for i in 0..count {
            if rest.len() < 4 {
                return Err(corrupt(format!("file ends inside element {i}'s upper links")));
            }
            let size = word(rest, 0) as usize;
            rest = &rest[4..];
            if !size.is_multiple_of(row_bytes) || size / row_bytes > MAX_LEVEL || size > rest.len() {
                return Err(corrupt(format!("element {i} has {size} bytes of upper links")));
            }
            for row in rest[..size].chunks_exact(row_bytes) {
                upper.push(u32::from(u16::from_le_bytes([row[0], row[1]])));
                upper.extend((0..m).map(|j| word(row, 4 + 4 * j)));
            }
            rest = &rest[size..];
            let last: u32 = *offsets.last().expect("non-empty");
            let next = last
                .checked_add((size / row_bytes) as u32)
                .ok_or_else(|| corrupt("too many upper-layer rows"))?;
            offsets.push(next);
        }
        if !rest.is_empty() {
            return Err(FileError::Length {
                expected: (bytes.len() - rest.len()) as u64,
                found: bytes.len() as u64,
            });
        }
        let cells = |v: &[u32]| {
            // SAFETY: zero bytes are a valid AtomicU32.
            unsafe { Cells::from_values(v, |&x| AtomicU32::new(x)) }
                .ok_or_else(|| FileError::Corrupt("link tables too large".into()))
        };
        let graph = Graph::from_parts(m, cells(&level0)?, cells(&upper)?, Cells::heap(offsets.into()))
            .map_err(FileError::Corrupt)?;
        // An index whose every element is deleted may have no entry point (we write one so
        // after consolidating everything away).
        let entry = if count == 0 || (max_level < 0 && deleted.iter().all(|&d| d)) {
            NO_ENTRY
        } else {
            let level = usize::try_from(max_level).map_err(|_| corrupt("negative top level"))?;
            if entry as usize >= count || graph.level(entry) != level {
                return Err(corrupt(format!("entry point {entry} is not a node of level {level}")));
            }
            pack_entry(entry, level)
        };
        // Live labels must be distinct; a deleted element stays restorable unless its label
        // is live or taken by an earlier deleted one.
        let mut by_label = HashMap::with_capacity(count);
        for (slot, &l) in labels.iter().enumerate() {
            if !deleted[slot] && by_label.insert(l, slot as u32).is_some() {
                return Err(corrupt(format!("label {l} appears twice")));
            }
        }
        let mut restorable = std::collections::HashSet::new();
        let kinds: Vec<SlotKind> = (0..count)
            .map(|slot| match deleted[slot] {
                false => SlotKind::Live,
                true if !by_label.contains_key(&labels[slot]) && restorable.insert(labels[slot]) => SlotKind::Removed,
                true => SlotKind::Hidden,
            })
            .collect();
        let labels = Cells::heap(labels.into_iter().map(AtomicU64::new).collect());
        // hnswlib's level generator is not ours: new nodes draw from our seed's stream, as
        // if the imported nodes had drawn theirs from it.
        let rng = crate::io::persist::level_rng_after(params.seed_value(), count as u64);
        Index::from_parts(
            params,
            slab,
            None,
            graph,
            labels,
            Some(&kinds),
            Some(by_label),
            entry,
            rng,
            count,
        )
        .map_err(|e| FileError::Corrupt(format!("cannot hold the index: {e}")))
    }

    /// Writes the index in hnswlib's format, for `hnswlib.Index(space, dim).load_index(path)`
    /// (space `l2`, `ip` or `cosine` as the metric). Same links, same entry point. Removed
    /// nodes and freed slots are written as hnswlib's deleted elements; an updated label's
    /// old node keeps the label, and hnswlib's label lookup takes the last element written
    /// under a label: call [`compact`](Self::compact) first for a file with live elements
    /// only. Like [`save`](Self::save), it waits for running inserts and holds new ones
    /// back until the file is written (repairs and consolidations until it is synced);
    /// searches go on.
    pub fn export_hnswlib(&self, path: impl AsRef<Path>) -> Result<(), FileError> {
        let path = path.as_ref();
        let io = |source| FileError::Io {
            path: path.to_path_buf(),
            source,
        };
        // Same snapshot as `save`: every node below `n` linked, none added meanwhile.
        let mut quiet = self.quiesce().ok_or(FileError::InsideProgressCallback)?;
        let n = quiet.count;
        let (dim, m, m0) = (self.dim(), self.params.m, 2 * self.params.m);
        let links_bytes = 4 + 4 * m0;
        let label_offset = links_bytes + 4 * dim;
        let size_per_element = label_offset + 8;
        let entry = self.entry.load(Ordering::Acquire);
        let (ep, top) = if entry == NO_ENTRY {
            (0, -1i32)
        } else {
            (unpack_entry(entry).0, unpack_entry(entry).1 as i32)
        };
        let file = std::fs::File::create(path).map_err(io)?;
        let mut w = BufWriter::with_capacity(1 << 20, file);
        let mut put = |b: &[u8]| w.write_all(b).map_err(io);
        for v in [
            0u64,
            n as u64,
            n as u64,
            size_per_element as u64,
            label_offset as u64,
            links_bytes as u64,
        ] {
            put(&v.to_le_bytes())?;
        }
        put(&top.to_le_bytes())?;
        put(&ep.to_le_bytes())?;
        for v in [m as u64, m0 as u64, m as u64] {
            put(&v.to_le_bytes())?;
        }
        put(&self.params.level_multiplier().to_le_bytes())?;
        put(&(self.params.ef_construction as u64).to_le_bytes())?;
        let row_words = |row: &crate::graph::Row, max: usize| -> Vec<u8> {
            let c = count(row);
            let mut out = Vec::with_capacity(4 * (1 + max));
            out.extend_from_slice(&(c as u32).to_le_bytes());
            for j in 0..max {
                let id = if j < c { link(row, j) } else { 0 };
                out.extend_from_slice(&id.to_le_bytes());
            }
            out
        };
        let kinds = self.lock_slots().kinds(&self.graph, &self.labels[..n]);
        for i in 0..n as u32 {
            let mut words = row_words(self.graph.row(i, 0), m0);
            // hnswlib's deleted mark: byte 2 of the link count.
            words[2] = u8::from(kinds[i as usize] != SlotKind::Live);
            put(&words)?;
            // SAFETY: every slot below `n` is linked (`quiesce`), so its row was written and
            // published and is never written again.
            let v = unsafe { self.slab.row(i) };
            put(bytemuck::cast_slice(v))?;
            put(&self.labels[i as usize].load(Ordering::Relaxed).to_le_bytes())?;
        }
        for i in 0..n as u32 {
            let level = self.graph.level(i);
            put(&((level * (4 + 4 * m)) as u32).to_le_bytes())?;
            for layer in 1..=level {
                put(&row_words(self.graph.row(i, layer), m))?;
            }
        }
        let file = w.into_inner().map_err(|e| io(e.into_error()))?;
        // Every byte is in the file: adds may claim slots again while it reaches the disk.
        quiet.resume_claims();
        file.sync_all().map_err(io)
    }
}

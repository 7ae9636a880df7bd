//! Persistence: one versioned file, written crash-safely, read back with every byte checked.
//!
//! Layout (little-endian; every section starts on a 64-byte boundary, in the in-memory
//! layout, so a mapped file could be used in place):
//!
//! | part | contents |
//! |---|---|
//! | header (288 bytes) | magic `HNSWXIDX`, format version, endianness marker, dim, row stride (floats, `dim` to `dim` rounded up to 16), metric, M, Mmax0, ef_construction, seed, count, levels drawn, entry point, file length, offset/length/xxh3 of each section, xxh3 of the header |
//! | slab | `count × stride` f32: the vectors, each row zero-padded from `dim` to `stride` floats |
//! | level0 | `count × (1 + Mmax0)` u32: per node its link count, then its links |
//! | offsets | `count + 1` u32: first upper-layer row of each node |
//! | upper | `offsets[count] × (1 + M)` u32: upper-layer rows |
//! | labels | `count` u64 |
//! | kinds (version 2) | `count` u8: per slot live 0, removed 1 (restorable), hidden 2 (removed, not restorable), free 3 |
//! | quantiser (version 3) | u32 quantisation (0 none, 1 SQ8, 2 F16), u32 trained (0/1; always 0 for F16, which has no parameters), if trained `dim` f32 offsets and `dim` f32 scales, then the xxh3 (u64) of the bytes before it |
//! | quantiser (version 4) | as version 3, with four u64 before the xxh3: the codes section's offset, length, row bytes and xxh3 (all zero when no codes are stored) |
//! | codes (version 5) | laid out as the index holds them, when the walk reads codes (F16, or SQ8 once trained): `count` rows (SQ8: `dim` bytes, zero padding to a multiple of 16; F16: `dim` halves, zero padding to a multiple of 16 halves), then for SQ8 under L2 zeros to the next 64-byte boundary and `count` f32 row constants |
//! | codes (version 4) | `count` rows (SQ8: `dim` bytes, zeros to a multiple of 4, the row constant, zeros to a multiple of 16; F16 as version 5) |
//!
//! Bytes between sections must be zero. The kinds section is described by the header's
//! first three reserved words (offset, length, xxh3), the quantiser section by the fourth
//! (its offset); version-1 files (all zero there, no kinds) still load, every slot live.
//! Versions 3 to 5 are written only by an index with codes (others write version 2, which
//! older builds read); this build writes version 5 (the quantiser block as version 4's). A
//! version-5 file stores the codes, so
//! [`Index::open_mmap`] maps them like the vectors (nothing computed, nothing copied) and
//! [`Index::load`] reads them; both check that every row is its vector coded again (the
//! coding is deterministic: scalar arithmetic, round to nearest) unless a map is opened
//! with [`Verify::Structure`], where a forged code changes walk distances only (the rerank
//! is exact). A version-3 file has no codes section: its codes are computed from the
//! vectors and the quantiser when it is opened (O(n·dim)), and a mapped one holds them in
//! memory; so has a version-4 file with SQ8 codes (its rows held the row constant; the
//! section is checked, then skipped), while version-4 F16 rows are version 5's and are read
//! or mapped. F16 (kind 2) fits the same sections; a build from before F16 refuses such a
//! file as corrupt ("unknown kind 2").
//!
//! [`Index::save`] writes a temporary file in the same folder, syncs it, renames it over the
//! target and syncs the folder: a crash leaves either the old file or the new one.
//! [`Index::load`] checks the header, the file length, every section's checksum and every
//! structural invariant (link counts, ids, levels, labels, finite vectors) before it returns
//! an index; any mismatch is a [`FileError`], never a panic.

use bytemuck::{Pod, Zeroable};
use rand_xoshiro::rand_core::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use xxhash_rust::xxh3::Xxh3;

use crate::graph::{Graph, MAX_LEVEL};
use crate::index::{unpack_entry, Index, SlotKind, NO_ENTRY};
use crate::params::{Params, MAX_M};
use crate::store::cells::{Cells, FileMap};
use crate::store::codes::{Codes, Quantization, Sq8};
use crate::store::slab::{valid_stride, Slab};
use hnswx_kernels::Metric;

/// First 8 bytes of every index file.
pub const MAGIC: [u8; 8] = *b"HNSWXIDX";
/// The newest format version this build writes (it reads versions 1 to this one): version
/// 5 for an index with codes, else version 2.
pub const FORMAT_VERSION: u32 = 5;
const ENDIAN_MARK: u32 = 0x0102_0304;
/// Checksums are compared, except in fuzzing builds (`--cfg fuzzing`, set by cargo-fuzz),
/// where skipping them lets the fuzzer reach the structural checks behind them.
const CHECKSUMS: bool = !cfg!(fuzzing);
const SECTION_ALIGN: u64 = 64;
const SECTION_NAMES: [&str; 5] = ["slab", "level0", "offsets", "upper", "labels"];

/// Why an index file could not be written or read. Loading never returns a partial index.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    /// The operating system refused a read, write, sync or rename.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The file does not start with [`MAGIC`]: not an hnswx index.
    #[error("not an hnswx index file (magic {found:02x?})")]
    BadMagic {
        /// The first bytes found.
        found: [u8; 8],
    },
    /// Written by a newer (or unknown) format version.
    #[error("format version {found} is not supported (this build reads versions 1 to {FORMAT_VERSION})")]
    UnsupportedVersion {
        /// The version in the file.
        found: u32,
    },
    /// Written on a machine of the other byte order.
    #[error("the file was written with a different byte order")]
    Endianness,
    /// Shorter (or longer) than its header says.
    #[error("file is {found} bytes, its header says {expected}: truncated or extended")]
    Length {
        /// Length from the header.
        expected: u64,
        /// Actual length.
        found: u64,
    },
    /// A checksum does not match: the named part was altered.
    #[error("checksum mismatch in the {part}: the file is corrupted")]
    Checksum {
        /// `header` or a section name.
        part: &'static str,
    },
    /// `save` or `export_hnswlib` called from inside the index's own `add_batch` progress
    /// callback: the file would have to wait for that batch, which waits for the callback.
    #[error("cannot save an index from inside its own add_batch progress callback")]
    InsideProgressCallback,
    /// The contents break an invariant (an out-of-range id, a field that disagrees with the
    /// file, …).
    #[error("corrupted index: {0}")]
    Corrupt(String),
}

/// How much of a file [`Index::load_with`] checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verify {
    /// Header, every section checksum, every invariant (what [`Index::load`] does).
    All,
    /// Header checksum and every invariant, not the section checksums (faster on large
    /// files; a flipped bit inside a vector goes unnoticed).
    Structure,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
struct Section {
    offset: u64,
    len: u64,
    checksum: u64,
    _reserved: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
struct Header {
    magic: [u8; 8],
    version: u32,
    endian: u32,
    header_len: u32,
    metric: u32,
    dim: u32,
    stride: u32,
    m: u32,
    m0: u32,
    ef_construction: u32,
    max_level: u32,
    seed: u64,
    count: u64,
    levels_drawn: u64,
    entry: u64,
    file_len: u64,
    sections: [Section; 5],
    reserved: [u64; 4],
    checksum: u64,
}

const HEADER_LEN: usize = std::mem::size_of::<Header>();

fn metric_code(m: Metric) -> u32 {
    match m {
        Metric::L2 => 0,
        Metric::InnerProduct => 1,
        Metric::Cosine => 2,
    }
}

fn header_checksum(h: &Header) -> u64 {
    let bytes = bytemuck::bytes_of(h);
    xxhash_rust::xxh3::xxh3_64(&bytes[..HEADER_LEN - 8])
}

fn align_up(x: u64) -> u64 {
    x.div_ceil(SECTION_ALIGN) * SECTION_ALIGN
}

/// Section lengths in bytes for `count` nodes with `upper_rows` upper-layer rows.
fn section_lens(stride: usize, m: usize, count: usize, upper_rows: usize) -> Option<[u64; 5]> {
    let b = |n: usize, size: usize| n.checked_mul(size).map(|x| x as u64);
    Some([
        b(count.checked_mul(stride)?, 4)?,
        b(count.checked_mul(1 + 2 * m)?, 4)?,
        b(count + 1, 4)?,
        b(upper_rows.checked_mul(1 + m)?, 4)?,
        b(count, 8)?,
    ])
}

/// Hashes what it writes.
struct Hashed<W: Write> {
    inner: W,
    hash: Xxh3,
    written: u64,
}

impl<W: Write> Hashed<W> {
    fn put(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.hash.update(bytes);
        self.written += bytes.len() as u64;
        self.inner.write_all(bytes)
    }

    /// Ends a section: its checksum, and zero padding to the next boundary (not hashed).
    fn finish(&mut self) -> std::io::Result<u64> {
        let sum = self.hash.digest();
        self.hash = Xxh3::new();
        let pad = align_up(self.written) - self.written;
        self.inner.write_all(&vec![0u8; pad as usize])?;
        self.written += pad;
        Ok(sum)
    }
}

impl Index {
    /// Writes the index to `path`, crash-safely (temporary file in the same folder, fsync,
    /// rename, fsync of the folder). Searches may run meanwhile; inserts already running are
    /// waited for first, and new `add`s wait while the file is written, not while it is
    /// synced to disk (an add that sets off the periodic repair or the quantiser's training
    /// waits for the whole save).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), FileError> {
        let path = path.as_ref();
        let io = |source| FileError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut quiet = self.quiesce().ok_or(FileError::InsideProgressCallback)?;
        let count = quiet.count;
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let name = path
            .file_name()
            .ok_or_else(|| io(std::io::Error::other("no file name")))?;
        let (tmp, file) = create_temp(dir, &name.to_string_lossy()).map_err(io)?;
        let written = self.write_file(&file, count);
        // Every byte is in the file: adds may claim slots again while it reaches the disk.
        // The guard still holds other saves back until the folder is synced, so saves land
        // in order.
        quiet.resume_claims();
        let synced = written.and_then(|()| file.sync_all());
        drop(file);
        let result = synced.map_err(io).and_then(|()| {
            std::fs::rename(&tmp, path).map_err(io)?;
            sync_dir(dir).map_err(io)
        });
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }

    /// Writes the snapshot of nodes `0..count` into `file` (not yet synced).
    fn write_file(&self, file: &std::fs::File, count: usize) -> std::io::Result<()> {
        let mut w = Hashed {
            inner: std::io::BufWriter::with_capacity(1 << 20, file),
            hash: Xxh3::new(),
            written: 0,
        };
        let (stride, m) = (self.slab.stride(), self.params.m);
        let upper_rows = self.graph.upper_rows(count);
        let lens =
            section_lens(stride, m, count, upper_rows).ok_or_else(|| std::io::Error::other("index too large"))?;
        let header_space = align_up(HEADER_LEN as u64);
        w.inner.write_all(&vec![0u8; header_space as usize])?;
        w.written = header_space;
        let mut sections = [Section::default(); 5];
        let mut begin = |w: &mut Hashed<_>, i: usize| sections[i].offset = w.written;
        // slab
        begin(&mut w, 0);
        for i in 0..count as u32 {
            // SAFETY: every slot below `count` is linked (checked by the caller), so its row
            // was written and published and is never written again.
            let row = unsafe { std::slice::from_raw_parts(self.slab.row_ptr(i), stride) };
            w.put(bytemuck::cast_slice(row))?;
        }
        let sums0 = w.finish()?;
        // level0, offsets, upper: the atomics, read one value at a time.
        let put_u32s = |w: &mut Hashed<_>, it: &mut dyn Iterator<Item = u32>| -> std::io::Result<u64> {
            let mut buf = Vec::with_capacity(4096);
            loop {
                buf.clear();
                buf.extend(it.take(4096));
                if buf.is_empty() {
                    break;
                }
                w.put(bytemuck::cast_slice(&buf))?;
            }
            w.finish()
        };
        begin(&mut w, 1);
        let sums1 = put_u32s(
            &mut w,
            &mut self.graph.level0_cells(count).map(|c| c.load(Ordering::Acquire)),
        )?;
        begin(&mut w, 2);
        let sums2 = put_u32s(&mut w, &mut self.graph.offsets(count).iter().copied())?;
        begin(&mut w, 3);
        let sums3 = put_u32s(
            &mut w,
            &mut self.graph.upper_cells(count).map(|c| c.load(Ordering::Acquire)),
        )?;
        begin(&mut w, 4);
        for l in &self.labels[..count] {
            w.put(&l.load(Ordering::Relaxed).to_le_bytes())?;
        }
        let sums4 = w.finish()?;
        let kinds_at = w.written;
        let kinds: Vec<u8> = {
            let slots = self.lock_slots();
            let kinds = slots.kinds(&self.graph, &self.labels[..count]);
            kinds.into_iter().map(|k| k as u8).collect()
        };
        w.put(&kinds)?;
        let sums5 = w.finish()?;
        // The quantiser block, then the codes it describes; the block is written again with
        // the codes' checksum once they are written (same length).
        let quant = match &self.codes {
            Some(codes) => {
                let (kind, sq8) = (self.params.quantization, codes.sq8());
                let at = w.written;
                w.put(&quantizer_block(kind, sq8, None))?;
                w.finish()?;
                let section = if codes.stored(sq8) {
                    let offset = w.written;
                    // SAFETY: the save's pause: no row below `count` is written meanwhile.
                    let parts = unsafe { codes.section(count) };
                    for part in parts {
                        w.put(part)?;
                    }
                    Some(CodesSection {
                        offset,
                        len: parts.iter().map(|p| p.len() as u64).sum(),
                        row_bytes: codes.stride() as u64,
                        checksum: w.finish()?,
                    })
                } else {
                    None
                };
                Some((at, quantizer_block(kind, sq8, section)))
            }
            None => None,
        };
        let quant_at = quant.as_ref().map_or(0, |q| q.0);
        for (i, sum) in [sums0, sums1, sums2, sums3, sums4].into_iter().enumerate() {
            sections[i].len = lens[i];
            sections[i].checksum = sum;
        }
        let mut h = Header {
            magic: MAGIC,
            version: if self.codes.is_some() { FORMAT_VERSION } else { 2 },
            endian: ENDIAN_MARK,
            header_len: HEADER_LEN as u32,
            metric: metric_code(self.params.metric),
            dim: self.params.dim as u32,
            stride: stride as u32,
            m: m as u32,
            m0: 2 * m as u32,
            ef_construction: self.params.ef_construction.min(u32::MAX as usize) as u32,
            max_level: MAX_LEVEL as u32,
            seed: self.params.seed,
            count: count as u64,
            levels_drawn: self.levels_drawn() as u64,
            entry: self.entry.load(Ordering::Acquire),
            file_len: w.written,
            sections,
            reserved: [kinds_at, count as u64, sums5, quant_at],
            checksum: 0,
        };
        h.checksum = header_checksum(&h);
        let mut inner = w.inner.into_inner().map_err(|e| e.into_error())?;
        if let Some((at, block)) = &quant {
            inner.seek(SeekFrom::Start(*at))?;
            inner.write_all(block)?;
        }
        inner.seek(SeekFrom::Start(0))?;
        inner.write_all(bytemuck::bytes_of(&h))
    }

    /// Reads an index saved by [`save`](Self::save) into memory (it can then be searched and,
    /// after [`reserve`](Self::reserve), added to). Every checksum and invariant is checked.
    pub fn load(path: impl AsRef<Path>) -> Result<Index, FileError> {
        Index::load_with(path, Verify::All)
    }

    /// [`load`](Self::load) choosing whether section checksums are verified. The header's
    /// checksum and every structural invariant (ids in range, counts, levels, finite vectors)
    /// are checked either way, so a damaged file can give wrong answers under
    /// [`Verify::Structure`] but never undefined behaviour or a panic.
    pub fn load_with(path: impl AsRef<Path>, verify: Verify) -> Result<Index, FileError> {
        let path = path.as_ref();
        let io = |source| FileError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut file = std::fs::File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        let mut r = std::io::BufReader::with_capacity(1 << 20, &mut file);
        Index::read_with(&mut r, len, verify).map_err(|e| match e {
            FileError::Io { source, .. } => io(source),
            other => other,
        })
    }

    /// [`load`](Self::load) from any reader holding `len` bytes of an index file (a
    /// `Cursor` over bytes, say).
    pub fn read_from(r: &mut impl Read, len: u64) -> Result<Index, FileError> {
        Index::read_with(r, len, Verify::All)
    }

    fn read_with(r: &mut impl Read, len: u64, verify: Verify) -> Result<Index, FileError> {
        let io = |source| FileError::Io {
            path: PathBuf::from("<reader>"),
            source,
        };
        let short = |expected| FileError::Length { expected, found: len };
        let mut h = Header::zeroed();
        if len < HEADER_LEN as u64 {
            let mut magic = [0u8; 8];
            let n = r.read(&mut magic).map_err(io)?;
            if n < 8 || magic != MAGIC {
                return Err(FileError::BadMagic { found: magic });
            }
            return Err(short(HEADER_LEN as u64));
        }
        r.read_exact(bytemuck::bytes_of_mut(&mut h)).map_err(io)?;
        let (params, count, upper_rows) = check_header(&h, len)?;
        let (dim, m, stride) = (params.dim, params.m, h.stride as usize);
        // Read the sections in order, checking the zero padding between them.
        let mut at = align_up(HEADER_LEN as u64);
        skip_padding(r, HEADER_LEN as u64, at).map_err(|e| e.or_io(io))?;
        let mut section = |i: usize, dst: &mut [u8], at: &mut u64| -> Result<(), FileError> {
            let s = h.sections[i];
            if s.offset != *at || s.len != dst.len() as u64 {
                return Err(FileError::Corrupt(format!("section {} is misplaced", SECTION_NAMES[i])));
            }
            r.read_exact(dst).map_err(io)?;
            if CHECKSUMS && verify == Verify::All && xxhash_rust::xxh3::xxh3_64(dst) != s.checksum {
                return Err(FileError::Checksum { part: SECTION_NAMES[i] });
            }
            let end = s.offset + s.len;
            *at = align_up(end);
            skip_padding(r, end, *at).map_err(|e| e.or_io(io))
        };
        let mut slab =
            Slab::with_stride(dim, stride, count).ok_or_else(|| FileError::Corrupt("count too large".into()))?;
        section(0, bytemuck::cast_slice_mut(slab.as_mut_slice(count)), &mut at)?;
        // The link tables go straight into their final cells (huge pages when large).
        let links = |n: usize| {
            // SAFETY: zero bytes are a valid AtomicU32.
            unsafe { Cells::<AtomicU32>::zeroed(n) }.ok_or_else(|| FileError::Corrupt("link tables too large".into()))
        };
        let mut level0 = links(count * (1 + 2 * m))?;
        // SAFETY: any bytes are a valid AtomicU32; the cells are our own allocation.
        section(1, unsafe { level0.bytes_mut() }, &mut at)?;
        let mut offsets = vec![0u32; count + 1];
        section(2, bytemuck::cast_slice_mut(&mut offsets), &mut at)?;
        let mut upper = links(upper_rows * (1 + m))?;
        if offsets[count] as usize != upper_rows {
            return Err(FileError::Corrupt("offsets disagree with the upper section".into()));
        }
        // SAFETY: as for `level0`.
        section(3, unsafe { upper.bytes_mut() }, &mut at)?;
        let mut labels = vec![0u64; count];
        section(4, bytemuck::cast_slice_mut(&mut labels), &mut at)?;
        let mut kinds = None;
        if h.version >= 2 {
            let mut k = vec![0u8; count];
            if h.reserved[0] != at {
                return Err(FileError::Corrupt("section kinds is misplaced".into()));
            }
            r.read_exact(&mut k).map_err(io)?;
            if CHECKSUMS && verify == Verify::All && xxhash_rust::xxh3::xxh3_64(&k) != h.reserved[2] {
                return Err(FileError::Checksum { part: "kinds" });
            }
            let end = at + count as u64;
            at = align_up(end);
            skip_padding(r, end, at).map_err(|e| e.or_io(io))?;
            kinds = Some(slot_kinds(&k)?);
        }
        let mut quant = None;
        let mut codes = None;
        if h.version >= 3 {
            if h.reserved[3] != at || len < at + 16 {
                return Err(FileError::Corrupt("section quantiser is misplaced".into()));
            }
            let mut head = [0u8; 8];
            r.read_exact(&mut head).map_err(io)?;
            let n = quantizer_len(&head, dim, h.version)?;
            if len < at + n as u64 {
                return Err(short(at + n as u64));
            }
            let mut block = head.to_vec();
            block.resize(n, 0);
            r.read_exact(&mut block[8..]).map_err(io)?;
            let q = parse_quantizer(&block, dim, h.version)?;
            let end = at + n as u64;
            at = align_up(end);
            skip_padding(r, end, at).map_err(|e| e.or_io(io))?;
            if let Some((c, current)) = codes_section(&q, &params, h.version, count, at)? {
                if len < at + c.len {
                    return Err(short(at + c.len));
                }
                if current {
                    let mut table = code_table(&params, q.0, count)?;
                    let section = table.section_mut(count);
                    r.read_exact(section).map_err(io)?;
                    if verify == Verify::All {
                        if CHECKSUMS && xxhash_rust::xxh3::xxh3_64(section) != c.checksum {
                            return Err(FileError::Checksum { part: "codes" });
                        }
                        check_codes_gap(section, &params, q.0, count).map_err(|e| e.or_io(io))?;
                    }
                    codes = Some(table);
                } else {
                    // A version-4 SQ8 section (row constants inside the rows): checked,
                    // then left for codes computed from the vectors, as for version 3.
                    let mut sum = xxhash_rust::xxh3::Xxh3::new();
                    let mut buf = vec![0u8; 1 << 16];
                    let mut left = c.len;
                    while left > 0 {
                        let n = left.min(buf.len() as u64) as usize;
                        r.read_exact(&mut buf[..n]).map_err(io)?;
                        sum.update(&buf[..n]);
                        left -= n as u64;
                    }
                    if CHECKSUMS && verify == Verify::All && sum.digest() != c.checksum {
                        return Err(FileError::Checksum { part: "codes" });
                    }
                }
                let end = at + c.len;
                at = align_up(end);
                skip_padding(r, end, at).map_err(|e| e.or_io(io))?;
            }
            quant = Some(q);
        }
        if at != len {
            return Err(FileError::Length {
                expected: at,
                found: len,
            });
        }

        let labels = Cells::heap(labels.into_iter().map(AtomicU64::new).collect());
        assemble(
            &h,
            params,
            slab,
            quant,
            codes,
            level0,
            upper,
            Cells::heap(offsets.into()),
            labels,
            kinds,
            true,
        )
    }

    /// Maps an index file and searches it in place: nothing is copied, pages are read as
    /// the search touches them, so opening takes milliseconds whatever the size. The header
    /// and every structural invariant of the graph are checked (the search's memory safety
    /// rests on them); with [`Verify::All`] the section checksums and the vectors are
    /// checked too, which reads the whole file. A mapped index does not grow: `add` fills
    /// only the file's free slots (written to private copy-on-write pages, never to the
    /// file), then says [`Error::CapacityExhausted`](crate::Error::CapacityExhausted);
    /// [`reserve`](Self::reserve) copies it into memory.
    ///
    /// # Safety
    ///
    /// The file must not be modified or truncated, by this process or another, while the
    /// returned index lives. The mapping is private, but on Linux a private mapping still
    /// shows other writers' changes to pages this process never wrote, and the vectors and
    /// level offsets are read with plain loads: a concurrent change would be a data race,
    /// and a truncation a `SIGBUS`. Replacing the file by rename, as [`save`](Self::save)
    /// does, is fine: the mapping keeps the old file.
    ///
    /// Why `unsafe` rather than checks: the search does check every link id against the
    /// capacity (cheap, so a changed link table gives wrong answers, never a read outside
    /// the mapping), but no check can make a racing write to the vectors defined behaviour.
    /// That is the contract of every file mapping (`memmap2`'s constructors are `unsafe`
    /// for the same reason); [`load`](Self::load) is the safe alternative.
    pub unsafe fn open_mmap(path: impl AsRef<Path>, verify: Verify) -> Result<Index, FileError> {
        let path = path.as_ref();
        let io = |source| FileError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        if len < HEADER_LEN as u64 {
            return Index::read_with(&mut std::io::BufReader::new(file), len, verify);
        }
        // SAFETY: a private (copy-on-write) mapping: our writes (rows of free slots that
        // `add` reuses) go to private copies of pages, never to the file. That nobody else
        // changes or truncates the file while it is mapped is this function's own safety
        // contract, passed on to its caller.
        let file_map = unsafe { FileMap::private(&file) }.map_err(io)?;
        // SAFETY: nothing writes the mapping before the index built on it is returned, and
        // `map` is not used after that.
        let map = unsafe { file_map.bytes() };
        let h: Header = bytemuck::pod_read_unaligned(&map[..HEADER_LEN]);
        let (params, count, upper_rows) = check_header(&h, len)?;
        let m = params.m;
        let sec = |i: usize| h.sections[i].offset as usize;
        if verify == Verify::All {
            for (i, s) in h.sections.iter().enumerate() {
                let bytes = &map[s.offset as usize..][..s.len as usize];
                if CHECKSUMS && xxhash_rust::xxh3::xxh3_64(bytes) != s.checksum {
                    return Err(FileError::Checksum { part: SECTION_NAMES[i] });
                }
            }
            let mut at = align_up(HEADER_LEN as u64) as usize;
            if map[HEADER_LEN..at].iter().any(|&b| b != 0) {
                return Err(PadError::NonZero.or_io(io));
            }
            for s in &h.sections {
                let end = (s.offset + s.len) as usize;
                at = align_up(end as u64) as usize;
                if map[end..at].iter().any(|&b| b != 0) {
                    return Err(PadError::NonZero.or_io(io));
                }
            }
        }
        let misplaced = || FileError::Corrupt("a section does not fit the file".into());
        let slab = Slab::mapped(&file_map, sec(0), params.dim, h.stride as usize, count).ok_or_else(misplaced)?;
        // SAFETY: every bit pattern is a valid AtomicU32.
        let level0 = unsafe { Cells::mapped(&file_map, sec(1), count * (1 + 2 * m)) }.ok_or_else(misplaced)?;
        // SAFETY: every bit pattern is a valid u32.
        let offsets = unsafe { Cells::mapped(&file_map, sec(2), count + 1) }.ok_or_else(misplaced)?;
        // SAFETY: every bit pattern is a valid AtomicU32.
        let upper = unsafe { Cells::mapped(&file_map, sec(3), upper_rows * (1 + m)) }.ok_or_else(misplaced)?;
        // SAFETY: every bit pattern is a valid AtomicU64.
        let labels = unsafe { Cells::mapped(&file_map, sec(4), count) }.ok_or_else(misplaced)?;
        let kinds = if h.version >= 2 {
            let k = &map[h.reserved[0] as usize..][..count];
            if verify == Verify::All {
                if CHECKSUMS && xxhash_rust::xxh3::xxh3_64(k) != h.reserved[2] {
                    return Err(FileError::Checksum { part: "kinds" });
                }
                let end = h.reserved[0] as usize + count;
                if map[end..align_up(end as u64) as usize].iter().any(|&b| b != 0) {
                    return Err(PadError::NonZero.or_io(io));
                }
            }
            Some(slot_kinds(k)?)
        } else {
            None
        };
        let (mut quant, mut codes) = (None, None);
        if h.version >= 3 {
            let at = h.reserved[3] as usize;
            let head = map.get(at..at + 8).ok_or_else(misplaced)?;
            let n = quantizer_len(head, params.dim, h.version)?;
            let block = map.get(at..at + n).ok_or_else(misplaced)?;
            let q = parse_quantizer(block, params.dim, h.version)?;
            let mut end = at + n;
            let pad = map.get(end..align_up(end as u64) as usize).ok_or_else(misplaced)?;
            if verify == Verify::All && pad.iter().any(|&b| b != 0) {
                return Err(PadError::NonZero.or_io(io));
            }
            if let Some((c, current)) = codes_section(&q, &params, h.version, count, align_up(end as u64))? {
                let (offset, bytes) = (c.offset as usize, c.len as usize);
                let section = map.get(offset..offset + bytes).ok_or_else(misplaced)?;
                if verify == Verify::All {
                    if CHECKSUMS && xxhash_rust::xxh3::xxh3_64(section) != c.checksum {
                        return Err(FileError::Checksum { part: "codes" });
                    }
                    let end = offset + bytes;
                    let pad = map.get(end..align_up(end as u64) as usize).ok_or_else(misplaced)?;
                    if pad.iter().any(|&b| b != 0) {
                        return Err(PadError::NonZero.or_io(io));
                    }
                    if current {
                        check_codes_gap(section, &params, q.0, count).map_err(|e| e.or_io(io))?;
                    }
                }
                // A version-4 SQ8 section (row constants inside the rows) is not mapped: its
                // codes are computed from the vectors, as for version 3.
                if current {
                    let table = code_table(&params, q.0, 0)?;
                    codes = Some(table.into_mapped(&file_map, offset, count).ok_or_else(misplaced)?);
                }
                end = offset + bytes;
            }
            if align_up(end as u64) != h.file_len {
                return Err(FileError::Corrupt(
                    "the quantiser and codes sections disagree with the file length".into(),
                ));
            }
            quant = Some(q);
        }
        assemble(
            &h,
            params,
            slab,
            quant,
            codes,
            level0,
            upper,
            offsets,
            labels,
            kinds,
            verify == Verify::All,
        )
    }
}

/// A new code table of `kind` with room for `rows` rows, for a loader.
fn code_table(params: &Params, kind: Quantization, rows: usize) -> Result<Codes, FileError> {
    crate::index::new_codes(&params.clone().quantization(kind), rows)
        .map_err(|e| FileError::Corrupt(format!("cannot hold the codes: {e}")))?
        .ok_or_else(|| FileError::Corrupt("quantiser: no codes for this kind".into()))
}

/// Checks the tables of a loaded or mapped file and makes the index, with the file's
/// quantiser (`quant`, version 3 on) and its stored code rows (`codes`, version 4; without
/// them codes are computed from the vectors). `check_vectors`: also require finite
/// components, zero padding, distinct labels and stored codes that are their vectors' (reads
/// the whole slab and builds the label map now rather than on first use).
#[allow(clippy::too_many_arguments)]
fn assemble(
    h: &Header,
    params: Params,
    slab: Slab,
    quant: Option<Quantizer>,
    codes: Option<Codes>,
    level0: Cells<AtomicU32>,
    upper: Cells<AtomicU32>,
    offsets: Cells<u32>,
    labels: Cells<AtomicU64>,
    kinds: Option<Vec<SlotKind>>,
    check_vectors: bool,
) -> Result<Index, FileError> {
    let count = labels.len();
    let (dim, stride) = (params.dim, slab.stride());
    if check_vectors {
        for i in 0..count as u32 {
            // SAFETY: `i < count` rows exist (the slab was sized from the header) and nothing
            // writes them.
            let row = unsafe { std::slice::from_raw_parts(slab.row_ptr(i), stride) };
            if let Some(j) = row[..dim].iter().position(|x| !x.is_finite()) {
                return Err(FileError::Corrupt(format!("vector {i} component {j} is not finite")));
            }
            if row[dim..].iter().any(|&x| x != 0.0) {
                return Err(FileError::Corrupt(format!("vector {i} has non-zero padding")));
            }
        }
    }
    let graph = Graph::from_parts(params.m, level0, upper, offsets).map_err(FileError::Corrupt)?;
    // Free slots (consolidated away) are outside the graph: nothing may link to them (a
    // reused slot's row is written while searches run), and they do not count for the entry
    // point's level.
    let free = |i: usize| kinds.as_ref().is_some_and(|k| k[i] == SlotKind::Free);
    if kinds.is_some() {
        for i in (0..count).filter(|&i| !free(i)) {
            for layer in 0..=graph.level(i as u32) {
                let row = graph.row(i as u32, layer);
                if let Some(j) = (0..crate::graph::count(row)).find(|&j| free(crate::graph::link(row, j) as usize)) {
                    let to = crate::graph::link(row, j);
                    return Err(FileError::Corrupt(format!("node {i} links to free slot {to}")));
                }
            }
        }
    }
    if h.entry == NO_ENTRY {
        if (0..count).any(|i| !free(i)) {
            return Err(FileError::Corrupt("no entry point in a non-empty index".into()));
        }
    } else {
        let (e, level) = unpack_entry(h.entry);
        if e as usize >= count || h.entry >> 32 > MAX_LEVEL as u64 || graph.level(e) != level || free(e as usize) {
            return Err(FileError::Corrupt(format!(
                "entry point {e} at level {level} is not a node of that level"
            )));
        }
        if (0..count).any(|i| !free(i) && graph.level(i as u32) > level) {
            return Err(FileError::Corrupt("a node sits above the entry point".into()));
        }
    }
    let mut by_label = None;
    if check_vectors {
        // Live labels are distinct; so are restorable removed ones, and no label is both.
        let kind = |i: usize| kinds.as_ref().map_or(SlotKind::Live, |k| k[i]);
        let (mut map, mut removed) = (HashMap::with_capacity(count), std::collections::HashSet::new());
        for (slot, l) in labels.iter().enumerate() {
            let l = l.load(Ordering::Relaxed);
            let fresh = match kind(slot) {
                SlotKind::Live => map.insert(l, slot as u32).is_none() && !removed.contains(&l),
                SlotKind::Removed => removed.insert(l) && !map.contains_key(&l),
                SlotKind::Hidden | SlotKind::Free => true,
            };
            if !fresh {
                return Err(FileError::Corrupt(format!("label {l} appears twice")));
            }
        }
        by_label = Some(map);
    }
    let rng = level_rng_after(h.seed, h.levels_drawn);
    let (params, sq8) = with_quantizer(params, quant);
    let stored = codes.is_some();
    Index::from_parts(
        params,
        slab,
        codes,
        graph,
        labels,
        kinds.as_deref(),
        by_label,
        h.entry,
        rng,
        h.levels_drawn as usize,
    )
    .map_err(|e| FileError::Corrupt(format!("cannot hold the index: {e}")))?
    .with_codes(sq8, stored, check_vectors)
    .map_err(|row| FileError::Corrupt(format!("the codes of vector {row} are not its vector's")))
}

/// The level generator of an index whose first `drawn` levels were drawn already: seeded from
/// the seed and `drawn`, so growing a loaded index is deterministic. (It does not replay
/// `drawn` draws of the original stream: a header could claim any count, and opening must
/// not take time the file's size does not account for.)
pub(crate) fn level_rng_after(seed: u64, drawn: u64) -> Xoshiro256PlusPlus {
    Xoshiro256PlusPlus::seed_from_u64(seed ^ drawn.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// Checks a header read from a file of `len` bytes: magic, byte order, version, checksum,
/// length, then its fields against each other (parameters, count, section sizes). Returns
/// the parameters, the node count and the number of upper-layer rows.
fn check_header(h: &Header, len: u64) -> Result<(Params, usize, usize), FileError> {
    if h.magic != MAGIC {
        return Err(FileError::BadMagic { found: h.magic });
    }
    if h.endian != ENDIAN_MARK {
        return Err(if h.endian == ENDIAN_MARK.swap_bytes() {
            FileError::Endianness
        } else {
            FileError::Checksum { part: "header" }
        });
    }
    if !(1..=FORMAT_VERSION).contains(&h.version) {
        // A version we do not know may lay its header out differently: say so before
        // judging its checksum.
        return Err(FileError::UnsupportedVersion { found: h.version });
    }
    if CHECKSUMS && header_checksum(h) != h.checksum {
        return Err(FileError::Checksum { part: "header" });
    }
    if h.file_len != len {
        return Err(FileError::Length {
            expected: h.file_len,
            found: len,
        });
    }
    let bad = |what: String| Err(FileError::Corrupt(what));
    let metric = match h.metric {
        0 => Metric::L2,
        1 => Metric::InnerProduct,
        2 => Metric::Cosine,
        other => return bad(format!("unknown metric code {other}")),
    };
    let (dim, m) = (h.dim as usize, h.m as usize);
    // The stride is the file's (files from before strides were chosen per dimension have
    // `dim` rounded up to 16), within bounds: between `dim` and that.
    if dim == 0 || dim > (1 << 24) || !valid_stride(dim, h.stride as usize) {
        return bad(format!("dimension {dim} with row stride {}", h.stride));
    }
    if !(2..=MAX_M).contains(&m) || h.m0 as usize != 2 * m || h.ef_construction == 0 {
        return bad(format!(
            "M = {m}, Mmax0 = {}, ef_construction = {}",
            h.m0, h.ef_construction
        ));
    }
    let kinds_ok = match h.version {
        1 => h.reserved == [0; 4],
        2 => h.reserved[1] == h.count && h.reserved[3] == 0,
        _ => h.reserved[1] == h.count,
    };
    if h.header_len as usize != HEADER_LEN || h.max_level as usize != MAX_LEVEL || !kinds_ok {
        return bad("header fields of this version disagree".into());
    }
    let count = usize::try_from(h.count)
        .ok()
        .filter(|&c| c <= crate::index::MAX_CAPACITY);
    let Some(count) = count else {
        return bad(format!("count {}", h.count));
    };
    if h.levels_drawn < h.count {
        return bad("fewer levels drawn than nodes".into());
    }
    let upper_rows = (h.sections[3].len / 4) as usize / (1 + m);
    let Some(lens) = section_lens(h.stride as usize, m, count, upper_rows) else {
        return bad("section sizes overflow".into());
    };
    let mut end = align_up(HEADER_LEN as u64);
    for (i, s) in h.sections.iter().enumerate() {
        if s.len != lens[i] || s.offset != end || s._reserved != 0 {
            return bad(format!(
                "section {} (offset {}, {} bytes) disagrees with the header",
                SECTION_NAMES[i], s.offset, s.len
            ));
        }
        // Checked: the lengths matched sizes that fit in memory, but the offsets are the
        // file's word.
        match s.offset.checked_add(s.len).filter(|&e| e <= u64::MAX - SECTION_ALIGN) {
            Some(e) => end = align_up(e),
            None => return bad(format!("section {} ends past any file", SECTION_NAMES[i])),
        }
    }
    if h.version >= 2 {
        // The kinds section, one byte per node, after the labels.
        if h.reserved[0] != end || end > u64::MAX - SECTION_ALIGN - h.count {
            return bad(format!(
                "section kinds at offset {} disagrees with the header",
                h.reserved[0]
            ));
        }
        end = align_up(end + h.count);
    }
    if h.version == 3 {
        // The quantiser section, after the kinds: 16 bytes untrained, 16 + 8·dim trained.
        let fits = [16, 16 + 8 * dim as u64].map(|n| align_up(end + n));
        if h.reserved[3] != end || !fits.contains(&h.file_len) {
            return bad(format!(
                "section quantiser at offset {} disagrees with the header",
                h.reserved[3]
            ));
        }
        end = h.file_len;
    } else if h.version >= 4 {
        // The quantiser section, after the kinds (48 bytes untrained, 48 + 8·dim trained),
        // then the codes it describes, if any: checked against it once it is read.
        if h.reserved[3] != end || h.file_len < align_up(end + 48) {
            return bad(format!(
                "section quantiser at offset {} disagrees with the header",
                h.reserved[3]
            ));
        }
        end = h.file_len;
    }
    if h.file_len != end {
        return bad(format!("file length {} for sections ending at {end}", h.file_len));
    }
    let params = Params::new(dim, metric)
        .m(m)
        // Files from before the bound may hold more: clamp rather than refuse them.
        .ef_construction((h.ef_construction as usize).min(crate::params::MAX_EF_CONSTRUCTION))
        .seed(h.seed);
    Ok((params, count, upper_rows))
}

/// The kinds section's bytes as slot kinds, or `Corrupt` for an unknown code.
fn slot_kinds(bytes: &[u8]) -> Result<Vec<SlotKind>, FileError> {
    bytes
        .iter()
        .enumerate()
        .map(|(i, &b)| match b {
            0 => Ok(SlotKind::Live),
            1 => Ok(SlotKind::Removed),
            2 => Ok(SlotKind::Hidden),
            3 => Ok(SlotKind::Free),
            other => Err(FileError::Corrupt(format!("slot {i} has unknown kind {other}"))),
        })
        .collect()
}

/// A padding failure: bad bytes, or an I/O error to be given its path.
enum PadError {
    NonZero,
    Io(std::io::Error),
}

impl PadError {
    fn or_io(self, io: impl Fn(std::io::Error) -> FileError) -> FileError {
        match self {
            PadError::NonZero => FileError::Corrupt("non-zero bytes between sections".into()),
            PadError::Io(e) => io(e),
        }
    }
}

fn skip_padding(r: &mut impl Read, from: u64, to: u64) -> Result<(), PadError> {
    let mut pad = vec![0u8; (to - from) as usize];
    r.read_exact(&mut pad).map_err(PadError::Io)?;
    if pad.iter().any(|&b| b != 0) {
        return Err(PadError::NonZero);
    }
    Ok(())
}

/// A new temporary file `.NAME.tmp-PID-N` in `dir`, created exclusively (`create_new`), so
/// that saves to one path from two indexes, threads or processes never share a file.
fn create_temp(dir: &Path, name: &str) -> std::io::Result<(PathBuf, std::fs::File)> {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!(".{name}.tmp-{}-{n}", std::process::id()));
        match std::fs::OpenOptions::new().write(true).create_new(true).open(&tmp) {
            Ok(file) => return Ok((tmp, file)),
            // Left behind by a crashed process that had our pid: try the next name.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> std::io::Result<()> {
    Ok(())
}

/// Where a file's codes are, as its (version 4 on) quantiser block says.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct CodesSection {
    offset: u64,
    len: u64,
    row_bytes: u64,
    checksum: u64,
}

/// A parsed quantiser block: the kind, the trained SQ8 quantiser, and (version 4 on) where the
/// codes are, all zero when none are stored.
type Quantizer = (Quantization, Option<Sq8>, Option<CodesSection>);

/// The quantiser block's bytes, version 4 on (see the module docs); `codes` all zero when
/// none are stored.
fn quantizer_block(kind: Quantization, sq8: Option<&Sq8>, codes: Option<CodesSection>) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&kind.code().to_le_bytes());
    b.extend_from_slice(&u32::from(sq8.is_some()).to_le_bytes());
    if let Some(q) = sq8 {
        q.offset
            .iter()
            .chain(&q.scale)
            .for_each(|x| b.extend_from_slice(&x.to_le_bytes()));
    }
    let c = codes.unwrap_or_default();
    for word in [c.offset, c.len, c.row_bytes, c.checksum] {
        b.extend_from_slice(&word.to_le_bytes());
    }
    let sum = xxhash_rust::xxh3::xxh3_64(&b);
    b.extend_from_slice(&sum.to_le_bytes());
    b
}

/// Length of a quantiser block of file `version` that starts with the 8 bytes `head`.
fn quantizer_len(head: &[u8], dim: usize, version: u32) -> Result<usize, FileError> {
    let trained = u32::from_le_bytes(head[4..8].try_into().expect("8 bytes"));
    let codes = if version >= 4 { 32 } else { 0 };
    match trained {
        0 => Ok(16 + codes),
        1 => Ok(16 + codes + 8 * dim),
        _ => Err(FileError::Corrupt(format!("quantiser: trained flag {trained}"))),
    }
}

/// Parses and checks a quantiser block of file `version` (its checksum is always
/// verified: it is small).
fn parse_quantizer(block: &[u8], dim: usize, version: u32) -> Result<Quantizer, FileError> {
    let (body, sum) = block.split_at(block.len() - 8);
    if CHECKSUMS && xxhash_rust::xxh3::xxh3_64(body) != u64::from_le_bytes(sum.try_into().expect("8 bytes")) {
        return Err(FileError::Checksum { part: "quantiser" });
    }
    let (body, codes) = if version >= 4 {
        let (body, c) = body.split_at(body.len() - 32);
        let word = |i: usize| u64::from_le_bytes(c[8 * i..8 * i + 8].try_into().expect("8 bytes"));
        let c = CodesSection {
            offset: word(0),
            len: word(1),
            row_bytes: word(2),
            checksum: word(3),
        };
        (body, Some(c))
    } else {
        (body, None)
    };
    let word = |i: usize| u32::from_le_bytes(body[4 * i..4 * i + 4].try_into().expect("4 bytes"));
    let kind = Quantization::from_code(word(0))
        .filter(|&k| k != Quantization::None)
        .ok_or_else(|| FileError::Corrupt(format!("quantiser: unknown kind {}", word(0))))?;
    if word(1) == 0 {
        return Ok((kind, None, codes));
    }
    if kind == Quantization::F16 {
        return Err(FileError::Corrupt("quantiser: F16 has no parameters".into()));
    }
    let floats: Vec<f32> = body[8..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
        .collect();
    let q = Sq8 {
        offset: floats[..dim].to_vec(),
        scale: floats[dim..].to_vec(),
    };
    if !q.is_valid(dim) {
        return Err(FileError::Corrupt(
            "quantiser: non-finite or negative parameters".into(),
        ));
    }
    Ok((kind, Some(q), codes))
}

/// The codes section a parsed quantiser block of a file of `version` describes, checked
/// against what must be there: for `count` nodes, the layout of that version for the kind
/// and metric (see [`Codes::section_len`]), starting at `at` (the first boundary after the
/// block), when the walk reads codes (F16, or a trained SQ8 quantiser), and nothing (all
/// zero) otherwise. `None`: no codes stored (so they are computed from the vectors, as for
/// every version-3 file). With the section, whether it is in this build's layout (`false`
/// for a version-4 SQ8 section, whose rows held their row constant: the caller checks and
/// skips it, and the codes are computed).
fn codes_section(
    q: &Quantizer,
    params: &Params,
    version: u32,
    count: usize,
    at: u64,
) -> Result<Option<(CodesSection, bool)>, FileError> {
    let (kind, sq8, Some(c)) = q else {
        return Ok(None);
    };
    if *kind != Quantization::F16 && sq8.is_none() {
        return match *c == CodesSection::default() {
            true => Ok(None),
            false => Err(FileError::Corrupt(
                "quantiser: codes stored for an untrained quantiser".into(),
            )),
        };
    }
    let dim = params.dim;
    let current = version >= 5 || *kind == Quantization::F16;
    let (row, len) = match current {
        true => (
            Codes::row_bytes_of(*kind, dim).expect("a kind with codes"),
            Codes::section_len(*kind, params.metric, dim, count),
        ),
        // Version 4 SQ8: `dim` codes padded to 4, the row constant, padded to 16.
        false => {
            let row = (dim.div_ceil(4) * 4 + 4).div_ceil(16) * 16;
            (row, row.checked_mul(count))
        }
    };
    if c.row_bytes != row as u64 {
        return Err(FileError::Corrupt(format!(
            "codes rows of {} bytes, this version's are {row}",
            c.row_bytes
        )));
    }
    if c.offset != at || Some(c.len) != len.map(|l| l as u64) {
        return Err(FileError::Corrupt("section codes is misplaced".into()));
    }
    Ok(Some((*c, current)))
}

/// Checks that the bytes between the rows and the row constants of a codes `section` of
/// `count` rows (SQ8 under L2) are zero, as between sections.
fn check_codes_gap(section: &[u8], params: &Params, kind: Quantization, count: usize) -> Result<(), PadError> {
    // The section's length was checked against `section_len`, so the gap is inside it.
    let gap = Codes::section_gap(kind, params.metric, params.dim, count).and_then(|g| section.get(g));
    match gap.is_some_and(|g| g.iter().all(|&b| b == 0)) {
        true => Ok(()),
        false => Err(PadError::NonZero),
    }
}

/// `params` with the file's quantisation, and its trained quantiser.
fn with_quantizer(params: Params, quant: Option<Quantizer>) -> (Params, Option<Sq8>) {
    match quant {
        Some((kind, sq8, _)) => (params.quantization(kind), sq8),
        None => (params, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Params;

    fn saved(index: &Index, name: &str) -> Vec<u8> {
        let dir = std::env::temp_dir().join(format!("hnswx-persist-unit-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("i.hnswx");
        index.save(&path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        bytes
    }

    fn header(bytes: &[u8]) -> Header {
        bytemuck::pod_read_unaligned(&bytes[..HEADER_LEN])
    }

    fn with_header(bytes: &mut [u8], h: &mut Header) {
        h.checksum = header_checksum(h);
        bytes[..HEADER_LEN].copy_from_slice(bytemuck::bytes_of(h));
    }

    /// Recomputes the checksum of the `n`-byte quantiser block at `at` (its last 8 bytes).
    fn reseal_block(bytes: &mut [u8], at: usize, n: usize) {
        let sum = xxhash_rust::xxh3::xxh3_64(&bytes[at..at + n - 8]);
        bytes[at + n - 8..at + n].copy_from_slice(&sum.to_le_bytes());
    }

    fn small() -> Index {
        let index = Index::new(Params::new(3, Metric::L2).seed(3), 60).unwrap();
        for i in 0..50u64 {
            let x = i as f32;
            index.add(i, &[x.sin(), x.cos(), 0.1 * x]).unwrap();
        }
        index
    }

    /// A version-1 file (no kinds section, reserved words zero) still loads, every node live.
    #[test]
    fn version_1_files_still_load() {
        let index = small();
        let mut bytes = saved(&index, "v1");
        let mut h = header(&bytes);
        assert_eq!(h.version, 2);
        let end = h.reserved[0] as usize;
        bytes.truncate(end);
        h.version = 1;
        h.reserved = [0; 4];
        h.file_len = end as u64;
        with_header(&mut bytes, &mut h);
        let back = Index::read_from(&mut std::io::Cursor::new(&bytes), bytes.len() as u64).unwrap();
        assert_eq!(back.len(), 50);
        let q = [0.5f32, 0.5, 1.0];
        assert_eq!(back.search(&q, 5, 50).unwrap(), index.search(&q, 5, 50).unwrap());
        // A version-1 header that claims a kinds section is refused.
        h.reserved = [end as u64, 50, 0, 0];
        with_header(&mut bytes, &mut h);
        assert!(matches!(
            Index::read_from(&mut std::io::Cursor::new(&bytes), bytes.len() as u64),
            Err(FileError::Corrupt(_))
        ));
    }

    /// A live node linking to a free slot would let `add` rewrite a row that searches
    /// reach: refused, even with every checksum recomputed.
    #[test]
    fn links_to_free_slots_are_refused() {
        let index = small();
        index.remove(9).unwrap();
        index.consolidate();
        let mut bytes = saved(&index, "free-link");
        let mut h = header(&bytes);
        assert_eq!(bytes[h.reserved[0] as usize + 9], SlotKind::Free as u8);
        // Node 0's first layer-0 link now points at slot 9.
        let at = h.sections[1].offset as usize + 4;
        bytes[at..at + 4].copy_from_slice(&9u32.to_le_bytes());
        let s1 = h.sections[1];
        h.sections[1].checksum = xxhash_rust::xxh3::xxh3_64(&bytes[s1.offset as usize..][..s1.len as usize]);
        with_header(&mut bytes, &mut h);
        let r = Index::read_from(&mut std::io::Cursor::new(&bytes), bytes.len() as u64);
        assert!(
            matches!(&r, Err(FileError::Corrupt(why)) if why.contains("free slot")),
            "{r:?}"
        );
    }

    /// Kinds are checked: an unknown code, or a live label repeated by a restorable one, is
    /// `Corrupt` even with the checksums recomputed.
    #[test]
    fn forged_kinds_are_refused() {
        let index = small();
        index.remove(4).unwrap();
        let bytes = saved(&index, "kinds");
        let h = header(&bytes);
        let at = h.reserved[0] as usize;
        assert_eq!(bytes[at + 4], SlotKind::Removed as u8);
        for (slot, code) in [(7usize, 9u8), (7, SlotKind::Removed as u8)] {
            let mut forged = bytes.clone();
            forged[at + slot] = code;
            if code == SlotKind::Removed as u8 {
                // Slot 7's label now also appears as a restorable one: make it slot 4's.
                forged[h.sections[4].offset as usize + 8 * 7..][..8].copy_from_slice(&4u64.to_le_bytes());
                let s4 = h.sections[4];
                let sum = xxhash_rust::xxh3::xxh3_64(&forged[s4.offset as usize..][..s4.len as usize]);
                let mut h2 = h;
                h2.sections[4].checksum = sum;
                h2.reserved[2] = xxhash_rust::xxh3::xxh3_64(&forged[at..at + 50]);
                with_header(&mut forged, &mut h2);
            } else {
                let mut h2 = h;
                h2.reserved[2] = xxhash_rust::xxh3::xxh3_64(&forged[at..at + 50]);
                with_header(&mut forged, &mut h2);
            }
            let r = Index::read_from(&mut std::io::Cursor::new(&forged), forged.len() as u64);
            assert!(
                matches!(r, Err(FileError::Corrupt(_))),
                "slot {slot} code {code}: {r:?}"
            );
        }
        let back = Index::read_from(&mut std::io::Cursor::new(&bytes), bytes.len() as u64).unwrap();
        assert_eq!(back.len(), 49);
        back.restore(4).unwrap();
    }

    /// Forged quantiser sections (checksums recomputed) around F16 give typed errors,
    /// never panics: unknown kinds, an F16 kind with SQ8 parameters, a bad trained flag.
    #[test]
    fn forged_f16_quantiser_sections_are_typed_errors() {
        use crate::Quantization;
        let forge = |bytes: &[u8], edit: &dyn Fn(&mut [u8])| -> Result<Index, FileError> {
            let mut b = bytes.to_vec();
            let h = header(&b);
            let at = h.reserved[3] as usize;
            let trained = u32::from_le_bytes(b[at + 4..at + 8].try_into().unwrap());
            let n = if trained == 1 { 48 + 8 * 3 } else { 48 };
            edit(&mut b[at..at + n - 8]);
            reseal_block(&mut b, at, n);
            Index::read_from(&mut std::io::Cursor::new(&b), b.len() as u64)
        };
        let f16 = Index::new(Params::new(3, Metric::L2).seed(3).quantization(Quantization::F16), 60).unwrap();
        for i in 0..50u64 {
            let x = i as f32;
            f16.add(i, &[x.sin(), x.cos(), 0.1 * x]).unwrap();
        }
        let fb = saved(&f16, "rv-f16");
        let ok = Index::read_from(&mut std::io::Cursor::new(&fb), fb.len() as u64).unwrap();
        assert_eq!(ok.params().quantization_kind(), Quantization::F16);
        for kind in [0u32, 3, u32::MAX] {
            let r = forge(&fb, &|s| s[0..4].copy_from_slice(&kind.to_le_bytes()));
            assert!(matches!(r, Err(FileError::Corrupt(_))), "kind {kind}: {r:?}");
        }
        // F16 -> SQ8 untrained: an untrained quantiser with stored codes is refused...
        let r = forge(&fb, &|s| s[0..4].copy_from_slice(&1u32.to_le_bytes()));
        assert!(
            matches!(&r, Err(FileError::Corrupt(w)) if w.contains("untrained")),
            "{r:?}"
        );
        // ... and loads once the block stores none (and the file ends after it).
        let h = header(&fb);
        let mut untrained = fb[..align_up(h.reserved[3] + 48) as usize].to_vec();
        let mut h2 = h;
        h2.file_len = untrained.len() as u64;
        with_header(&mut untrained, &mut h2);
        let r = forge(&untrained, &|s| {
            s[0..4].copy_from_slice(&1u32.to_le_bytes());
            s[8..40].fill(0);
        });
        assert!(r.is_ok_and(|i| !i.is_trained() && i.len() == 50));
        // F16 claiming parameters (length consistent): an SQ8 trained file relabelled.
        let sq = Index::new(Params::new(3, Metric::L2).seed(3).quantization(Quantization::Sq8), 60).unwrap();
        let rows: Vec<f32> = (0..50)
            .flat_map(|i| {
                let x = i as f32;
                [x.sin(), x.cos(), 0.1 * x]
            })
            .collect();
        sq.train(&rows).unwrap();
        for i in 0..50u64 {
            sq.add(i, &rows[3 * i as usize..3 * i as usize + 3]).unwrap();
        }
        let sb = saved(&sq, "rv-sq8");
        let r = forge(&sb, &|s| s[0..4].copy_from_slice(&2u32.to_le_bytes()));
        assert!(matches!(&r, Err(FileError::Corrupt(w)) if w.contains("F16")), "{r:?}");
        // Trained flag 2.
        let r = forge(&fb, &|s| s[4..8].copy_from_slice(&2u32.to_le_bytes()));
        assert!(matches!(r, Err(FileError::Corrupt(_))), "{r:?}");
    }

    /// An SQ8 index of 200 rows of 3 components, trained, with node 7 removed.
    fn small_sq8(metric: Metric) -> Index {
        use crate::Quantization;
        let index = Index::new(Params::new(3, metric).seed(5).quantization(Quantization::Sq8), 220).unwrap();
        let rows: Vec<f32> = (0..200)
            .flat_map(|i| {
                let x = i as f32 * 0.37;
                [x.sin() + 1.5, x.cos(), 0.01 * x + 0.2]
            })
            .collect();
        index.train(&rows).unwrap();
        index.add_batch(&(0..200).collect::<Vec<_>>(), &rows).unwrap();
        index.remove(7).unwrap();
        index
    }

    /// Where the quantiser block of `bytes` (a file with stored codes) is, its length, and
    /// the codes section's offset.
    fn codes_of(bytes: &[u8]) -> (usize, usize, usize) {
        let h = header(bytes);
        let at = h.reserved[3] as usize;
        let n = quantizer_len(&bytes[at..at + 8], h.dim as usize, h.version).unwrap();
        let q = parse_quantizer(&bytes[at..at + n], h.dim as usize, h.version).unwrap();
        let c = q.2.unwrap();
        (at, n, c.offset as usize)
    }

    fn mapped(bytes: &[u8], name: &str, verify: Verify) -> Result<Index, FileError> {
        let dir = std::env::temp_dir().join(format!("hnswx-persist-map-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("i.hnswx");
        std::fs::write(&path, bytes).unwrap();
        // SAFETY: the file is not modified while mapped (removed only after the index is
        // dropped... on Linux, removing a mapped file is fine either way).
        let r = unsafe { Index::open_mmap(&path, verify) };
        let _ = std::fs::remove_dir_all(&dir);
        r
    }

    /// Version 5 stores the codes: a load reads them, a mapped index maps them (no copy),
    /// and both give the same results as the index saved, for SQ8 (L2, inner product) and F16.
    #[test]
    fn codes_are_stored_read_and_mapped() {
        use crate::Quantization;
        let f16 = Index::new(
            Params::new(3, Metric::Cosine).seed(3).quantization(Quantization::F16),
            60,
        )
        .unwrap();
        for i in 0..50u64 {
            let x = i as f32;
            f16.add(i, &[x.sin(), x.cos(), 0.1 * x + 0.1]).unwrap();
        }
        for (name, index) in [
            ("l2", small_sq8(Metric::L2)),
            ("ip", small_sq8(Metric::InnerProduct)),
            ("f16", f16),
        ] {
            let bytes = saved(&index, name);
            assert_eq!(header(&bytes).version, FORMAT_VERSION);
            let (at, n, offset) = codes_of(&bytes);
            assert_eq!(offset as u64, align_up((at + n) as u64));
            let codes = index.codes.as_ref().unwrap();
            let rows = index.len() + usize::from(name != "f16");
            // SAFETY: nothing writes the index.
            let section = unsafe { codes.section(rows) }.concat();
            assert_eq!(&bytes[offset..][..section.len()], section);
            // Rows of 3 codes padded to 16; under L2 the constants follow from byte 3,200.
            assert_eq!(codes.stride(), if name == "f16" { 32 } else { 16 });
            let want = if name == "l2" {
                3200 + 4 * rows
            } else {
                rows * codes.stride()
            };
            assert_eq!(section.len(), want, "{name}");
            let loaded = Index::read_from(&mut std::io::Cursor::new(&bytes), bytes.len() as u64).unwrap();
            for verify in [Verify::All, Verify::Structure] {
                let map = mapped(&bytes, name, verify).unwrap();
                assert!(map.codes.as_ref().unwrap().is_mapped(), "{name}");
                assert!(!loaded.codes.as_ref().unwrap().is_mapped());
                for i in 0..20 {
                    let x = i as f32 * 0.11;
                    let q = [x.cos() + 1.0, x.sin(), 0.3];
                    let want = index.search(&q, 5, 20).unwrap();
                    assert_eq!(loaded.search(&q, 5, 20).unwrap(), want, "{name}");
                    assert_eq!(map.search(&q, 5, 20).unwrap(), want, "{name}");
                }
            }
        }
        // A mapped index's free slot takes a new vector: its code row is written (to a
        // private copy of the mapped page: the file does not change), so a save of it
        // passes the loader's check that every code is its vector's.
        let index = small_sq8(Metric::L2);
        index.consolidate();
        let bytes = saved(&index, "free");
        let dir = std::env::temp_dir().join(format!("hnswx-persist-cow-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("i.hnswx");
        std::fs::write(&path, &bytes).unwrap();
        // SAFETY: nothing modifies the file while it is mapped.
        let map = unsafe { Index::open_mmap(&path, Verify::All) }.unwrap();
        assert!(map.codes.as_ref().unwrap().is_mapped());
        let v = [2.4f32, -0.9, 0.25];
        map.add(1000, &v).unwrap();
        assert_eq!(map.search(&v, 1, 20).unwrap()[0].label, 1000);
        let again = saved(&map, "free-again");
        let back = Index::read_from(&mut std::io::Cursor::new(&again), again.len() as u64).unwrap();
        assert_eq!(back.get(1000).unwrap(), v);
        assert_eq!(std::fs::read(&path).unwrap(), bytes, "the mapped file was written");
        drop(map);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Codes that are not their vectors' are refused by `load` and by a fully verified
    /// map, even with every checksum recomputed; a flipped byte without a new checksum is a
    /// checksum error; a structure-only map accepts them (memory-safe: only the walk's
    /// distances change, the rerank is exact).
    #[test]
    fn forged_codes_are_refused() {
        let bytes = saved(&small_sq8(Metric::L2), "forged-codes");
        let (at, n, offset) = codes_of(&bytes);
        let stride = Codes::row_bytes_of(crate::Quantization::Sq8, 3).unwrap();
        let len = Codes::section_len(crate::Quantization::Sq8, Metric::L2, 3, 200).unwrap();
        // The row constants start at the first 64-byte boundary after the 200 rows.
        let consts = offset + (200 * stride).next_multiple_of(64);
        let load = |b: &[u8]| Index::read_from(&mut std::io::Cursor::new(b), b.len() as u64);
        // Recomputes the codes checksum in the quantiser block.
        let reseal = |b: &mut Vec<u8>| {
            let sum = xxhash_rust::xxh3::xxh3_64(&b[offset..offset + len]);
            b[at + n - 16..at + n - 8].copy_from_slice(&sum.to_le_bytes());
            reseal_block(b, at, n);
        };
        // A flipped code byte, and a changed row constant.
        for (name, byte) in [("code", offset + 11 * stride), ("constant", consts + 4 * 11 + 1)] {
            let mut flipped = bytes.clone();
            flipped[byte] ^= 0x10;
            assert!(matches!(load(&flipped), Err(FileError::Checksum { part: "codes" })));
            // Same change, checksum recomputed in the quantiser block.
            reseal(&mut flipped);
            let r = load(&flipped);
            assert!(
                matches!(&r, Err(FileError::Corrupt(w)) if w.contains("vector 11")),
                "{name}: {r:?}"
            );
            let r = mapped(&flipped, "forged-all", Verify::All);
            assert!(
                matches!(&r, Err(FileError::Corrupt(w)) if w.contains("vector 11")),
                "{name}: {r:?}"
            );
            let map = mapped(&flipped, "forged-structure", Verify::Structure).unwrap();
            assert_eq!(map.search(&[1.0, 0.5, 0.3], 3, 20).unwrap().len(), 3);
        }
        // A non-zero byte between the rows and the constants (checksum recomputed): 201
        // rows of 16 bytes end 48 bytes before the constants' 64-byte boundary.
        let odd = small_sq8(Metric::L2);
        odd.add(500, &[0.3, 0.2, 0.1]).unwrap();
        let mut gap = saved(&odd, "gap");
        let (at2, n2, offset2) = codes_of(&gap);
        let len2 = Codes::section_len(crate::Quantization::Sq8, Metric::L2, 3, 201).unwrap();
        gap[offset2 + 201 * 16 + 47] = 1;
        let sum = xxhash_rust::xxh3::xxh3_64(&gap[offset2..offset2 + len2]);
        gap[at2 + n2 - 16..at2 + n2 - 8].copy_from_slice(&sum.to_le_bytes());
        reseal_block(&mut gap, at2, n2);
        for r in [load(&gap), mapped(&gap, "gap", Verify::All)] {
            assert!(
                matches!(&r, Err(FileError::Corrupt(w)) if w.contains("non-zero")),
                "{r:?}"
            );
        }
        // A descriptor that disagrees with the layout: row size, offset, length.
        for (word, value) in [
            (2usize, 32u64),
            (0, offset as u64 + 64),
            (1, len as u64 - stride as u64),
        ] {
            let mut b = bytes.clone();
            let w = at + n - 40 + 8 * word;
            b[w..w + 8].copy_from_slice(&value.to_le_bytes());
            reseal_block(&mut b, at, n);
            for r in [load(&b), mapped(&b, "desc", Verify::Structure)] {
                assert!(matches!(&r, Err(FileError::Corrupt(_))), "word {word}: {r:?}");
            }
        }
        // Cut inside the codes, with a header that agrees (so the codes section itself must
        // be found short): a length error (loaded) or corrupt (mapped), no panic.
        let mut short = bytes[..offset + len / 2].to_vec();
        let mut h = header(&short);
        h.file_len = short.len() as u64;
        with_header(&mut short, &mut h);
        let r = load(&short);
        assert!(matches!(r, Err(FileError::Length { .. })), "{r:?}");
        let r = mapped(&short, "short", Verify::Structure);
        assert!(matches!(&r, Err(FileError::Corrupt(w)) if w.contains("fit")), "{r:?}");
        // Row constants forged to NaN (checksums recomputed): a structure-only map still
        // answers (the walk's comparisons reject NaN; the rerank is exact), no panic.
        let mut nan = bytes.clone();
        for row in 0..200 {
            let c = consts + 4 * row;
            nan[c..c + 4].copy_from_slice(&f32::NAN.to_ne_bytes());
        }
        reseal(&mut nan);
        let map = mapped(&nan, "nan", Verify::Structure).unwrap();
        for i in 0..10 {
            let q = [i as f32 * 0.2, 0.5, 0.3];
            let got = map.search(&q, 3, 20).unwrap();
            assert!(got.len() <= 3 && got.iter().all(|n| n.distance.is_finite()));
        }
        assert!(load(&nan).is_err());
    }

    /// A version-3 file (codes not stored: the block has no codes words and the file ends
    /// after it) still loads and maps, its codes computed from the vectors.
    #[test]
    fn version_3_files_still_load() {
        let index = small_sq8(Metric::L2);
        let bytes = saved(&index, "v3");
        let (at, n, _) = codes_of(&bytes);
        let mut v3 = bytes[..at].to_vec();
        let mut block = bytes[at..at + n - 40].to_vec();
        let sum = xxhash_rust::xxh3::xxh3_64(&block);
        block.extend_from_slice(&sum.to_le_bytes());
        v3.extend_from_slice(&block);
        v3.resize(align_up(v3.len() as u64) as usize, 0);
        let mut h = header(&v3);
        h.version = 3;
        h.file_len = v3.len() as u64;
        with_header(&mut v3, &mut h);
        let loaded = Index::read_from(&mut std::io::Cursor::new(&v3), v3.len() as u64).unwrap();
        let map = mapped(&v3, "v3", Verify::All).unwrap();
        assert!(!map.codes.as_ref().unwrap().is_mapped());
        for other in [&loaded, &map] {
            assert!(other.is_trained() && !other.contains(7));
            for i in 0..20 {
                let q = [i as f32 * 0.1, 0.5, 0.3];
                assert_eq!(other.search(&q, 5, 20).unwrap(), index.search(&q, 5, 20).unwrap());
            }
        }
    }

    /// An SQ8 index of `dim` components (node 7 removed, 200 rows, capacity 220).
    fn sq8_of_dim(dim: usize, metric: Metric) -> Index {
        use crate::Quantization;
        let index = Index::new(Params::new(dim, metric).seed(5).quantization(Quantization::Sq8), 220).unwrap();
        let rows: Vec<f32> = (0..200 * dim)
            .map(|i| (i as f32 * 0.37).sin() + 0.1 * (i % 7) as f32)
            .collect();
        index.train(&rows).unwrap();
        index.add_batch(&(0..200).collect::<Vec<_>>(), &rows).unwrap();
        index.remove(7).unwrap();
        index
    }

    /// `bytes` (a saved file) with its header's version set to `version`, resealed.
    fn with_version(bytes: &[u8], version: u32) -> Vec<u8> {
        let mut b = bytes.to_vec();
        let mut h = header(&b);
        h.version = version;
        with_header(&mut b, &mut h);
        b
    }

    /// A version-4 file (SQ8 rows holding their row constant: `dim` codes padded to 4, the
    /// constant, padded to 16) still loads and maps, its SQ8 codes computed from the vectors
    /// (not mapped), with the same results; a damaged version-4 codes section is still caught
    /// by its checksum. At dim 16 a version-4 row (32 bytes) is longer than a version-5 one
    /// (16), so the section must be read with version 4's sizes. Version-4 F16 rows are
    /// version 5's: still mapped.
    #[test]
    fn version_4_files_still_load() {
        for (dim, metric) in [
            (3, Metric::L2),
            (3, Metric::InnerProduct),
            (16, Metric::L2),
            (16, Metric::InnerProduct),
        ] {
            let index = if dim == 3 {
                small_sq8(metric)
            } else {
                sq8_of_dim(dim, metric)
            };
            let name = format!("v4-{dim}-{metric:?}");
            let bytes = saved(&index, &name);
            let (at, n, offset) = codes_of(&bytes);
            let codes = index.codes.as_ref().unwrap();
            let stride = codes.stride();
            // SAFETY: nothing writes the index.
            let [rows, _, consts] = unsafe { codes.section(200) };
            // Rewrite the section as version 4 laid it out.
            let (row4, at4) = ((dim.div_ceil(4) * 4 + 4).div_ceil(16) * 16, dim.div_ceil(4) * 4);
            let mut section = vec![0u8; 200 * row4];
            for i in 0..200 {
                section[row4 * i..][..dim].copy_from_slice(&rows[stride * i..][..dim]);
                if metric == Metric::L2 {
                    section[row4 * i + at4..][..4].copy_from_slice(&consts[4 * i..][..4]);
                }
            }
            let mut v4 = bytes[..offset].to_vec();
            v4.extend_from_slice(&section);
            v4.resize(align_up(v4.len() as u64) as usize, 0);
            let words = at + n - 40;
            v4[words + 8..words + 16].copy_from_slice(&(section.len() as u64).to_le_bytes());
            v4[words + 16..words + 24].copy_from_slice(&(row4 as u64).to_le_bytes());
            let sum = xxhash_rust::xxh3::xxh3_64(&section);
            v4[words + 24..words + 32].copy_from_slice(&sum.to_le_bytes());
            reseal_block(&mut v4, at, n);
            let mut h = header(&v4);
            h.version = 4;
            h.file_len = v4.len() as u64;
            with_header(&mut v4, &mut h);
            let loaded = Index::read_from(&mut std::io::Cursor::new(&v4), v4.len() as u64).unwrap();
            let map = mapped(&v4, &name, Verify::All).unwrap();
            assert!(!map.codes.as_ref().unwrap().is_mapped());
            for other in [&loaded, &map] {
                assert!(other.is_trained() && !other.contains(7));
                for i in 0..20 {
                    let q: Vec<f32> = (0..dim).map(|j| (i * dim + j) as f32 * 0.1).collect();
                    assert_eq!(
                        other.search(&q, 5, 20).unwrap(),
                        index.search(&q, 5, 20).unwrap(),
                        "{name}"
                    );
                }
            }
            // Saved again: version 5, the same bytes as the original save.
            assert_eq!(saved(&loaded, "v4-again"), bytes, "{name}");
            // The same file calling itself version 5 is refused (its rows are not version 5's)
            // wherever the two layouts differ.
            let as_v5 = with_version(&v4, 5);
            let r = Index::read_from(&mut std::io::Cursor::new(&as_v5), as_v5.len() as u64);
            assert_eq!(
                r.is_err(),
                row4 != stride || metric == Metric::L2,
                "{name}: {:?}",
                r.err()
            );
            let mut damaged = v4.clone();
            damaged[offset + 5 * row4] ^= 1;
            let r = Index::read_from(&mut std::io::Cursor::new(&damaged), damaged.len() as u64);
            assert!(matches!(r, Err(FileError::Checksum { part: "codes" })), "{r:?}");
            let r = mapped(&damaged, "v4-damaged", Verify::All);
            assert!(matches!(r, Err(FileError::Checksum { part: "codes" })), "{r:?}");
        }
        // F16: a version-4 file is read and mapped as it is.
        let f16 = Index::new(
            Params::new(3, Metric::L2)
                .seed(3)
                .quantization(crate::Quantization::F16),
            60,
        )
        .unwrap();
        for i in 0..50u64 {
            let x = i as f32;
            f16.add(i, &[x.sin(), x.cos(), 0.1 * x + 0.1]).unwrap();
        }
        let v4 = with_version(&saved(&f16, "f16-v4"), 4);
        let loaded = Index::read_from(&mut std::io::Cursor::new(&v4), v4.len() as u64).unwrap();
        let map = mapped(&v4, "f16-v4", Verify::All).unwrap();
        assert!(map.codes.as_ref().unwrap().is_mapped());
        for i in 0..20 {
            let q = [i as f32 * 0.1, 0.5, 0.3];
            assert_eq!(loaded.search(&q, 5, 20).unwrap(), f16.search(&q, 5, 20).unwrap());
            assert_eq!(map.search(&q, 5, 20).unwrap(), f16.search(&q, 5, 20).unwrap());
        }
    }

    /// Growing an index moves its codes and row constants unchanged, from memory and from a
    /// mapped file.
    #[test]
    fn reserve_keeps_codes_and_constants() {
        for metric in [Metric::L2, Metric::InnerProduct] {
            let mut index = sq8_of_dim(16, metric);
            let bytes = saved(&index, "reserve");
            let section = |i: &Index| {
                // SAFETY: nothing writes the index.
                unsafe { i.codes.as_ref().unwrap().section(200) }.concat()
            };
            let before = section(&index);
            index.reserve(1000).unwrap();
            assert!(index.capacity() > 1000);
            assert_eq!(section(&index), before);
            let mut map = mapped(&bytes, "reserve-map", Verify::All).unwrap();
            assert!(map.codes.as_ref().unwrap().is_mapped());
            map.reserve(10).unwrap();
            assert!(!map.codes.as_ref().unwrap().is_mapped());
            assert_eq!(section(&map), before);
        }
    }
}

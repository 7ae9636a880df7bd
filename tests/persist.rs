//! Save and load: round trips, and files damaged every way we can think of. A damaged file
//! is a typed error, never a panic and never a partial index.

mod common;

use common::*;
use hnswx::{FileError, Index, Metric, Params, Verify, FORMAT_VERSION};
use std::io::Cursor;

fn dir(name: &str) -> Scratch {
    Scratch::new(&format!("persist-{name}"))
}

fn load_bytes(bytes: &[u8]) -> Result<Index, FileError> {
    Index::read_from(&mut Cursor::new(bytes), bytes.len() as u64)
}

#[test]
fn round_trip_keeps_every_answer_and_link() {
    let d = dir("round");
    let (base, queries) = mixture(3_000, 40, 12, 31);
    for metric in [Metric::L2, Metric::InnerProduct, Metric::Cosine] {
        let index = build(Params::new(12, metric).m(8).seed(5), &base, 2);
        let path = d.join("index.hnswx");
        index.save(&path).unwrap();
        let back = Index::load(&path).unwrap();
        assert_eq!((back.len(), back.dim(), back.metric()), (index.len(), 12, metric));
        assert_eq!(back.params(), index.params());
        for label in (0..3_000).step_by(7) {
            assert_eq!(back.get(label).unwrap(), index.get(label).unwrap());
            for layer in 0..=index.level(label).unwrap() {
                assert_eq!(
                    back.neighbours(label, layer).unwrap(),
                    index.neighbours(label, layer).unwrap()
                );
            }
        }
        for q in queries.rows() {
            assert_eq!(back.search(q, 10, 50).unwrap(), index.search(q, 10, 50).unwrap());
        }
        assert!(back.graph_stats().is_healthy());
        // A loaded index is full; reserve makes room, and it keeps working.
        let mut back = back;
        assert!(back.add(1_000_000, base.row(0)).is_err());
        back.reserve(10).unwrap();
        back.add(1_000_000, base.row(0)).unwrap();
        // A single add may cut a node off when it shrinks a full neighbour row (add_batch
        // repairs that; after single adds the caller does).
        back.repair_connectivity();
        assert!(back.graph_stats().is_healthy());
        // No temporary file is left beside the index.
        let names: Vec<_> = std::fs::read_dir(&d).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }
}

#[test]
fn empty_index_round_trips_and_save_replaces_the_old_file() {
    let d = dir("empty");
    let path = d.join("i.hnswx");
    let empty = Index::new(Params::new(3, Metric::L2), 10).unwrap();
    empty.save(&path).unwrap();
    let back = Index::load(&path).unwrap();
    assert!(back.is_empty());
    assert!(back.search(&[0.0; 3], 1, 10).unwrap().is_empty());
    for verify in [Verify::All, Verify::Structure] {
        let mapped = open_mmap(&path, verify).unwrap();
        assert!(mapped.is_empty() && mapped.search(&[0.0; 3], 1, 10).unwrap().is_empty());
    }
    let full = Index::new(Params::new(3, Metric::L2), 10).unwrap();
    full.add_batch(&[1, 2], &[0.0, 0.0, 1.0, 1.0, 0.0, 0.0]).unwrap();
    full.save(&path).unwrap();
    assert_eq!(Index::load(&path).unwrap().len(), 2);
    assert!(matches!(
        full.save(d.join("no/such/folder/i.hnswx")),
        Err(FileError::Io { .. })
    ));
    assert!(matches!(
        Index::load(d.join("missing.hnswx")),
        Err(FileError::Io { .. })
    ));
}

/// A small saved index and its bytes.
fn small_file() -> Vec<u8> {
    let (base, _) = mixture(150, 1, 5, 32);
    let index = build(Params::new(5, Metric::L2).m(4).seed(1), &base, 1);
    // One fresh folder per call (the tests calling this run in parallel).
    let d = dir("small");
    let path = d.join("s.hnswx");
    index.save(&path).unwrap();
    std::fs::read(path).unwrap()
}

#[test]
fn every_truncation_is_an_error() {
    let bytes = small_file();
    assert!(load_bytes(&bytes).is_ok());
    for cut in 0..bytes.len() {
        assert!(
            load_bytes(&bytes[..cut]).is_err(),
            "a file cut at {cut} of {} loaded",
            bytes.len()
        );
    }
    let mut longer = bytes.clone();
    longer.extend_from_slice(&[0; 64]);
    assert!(matches!(load_bytes(&longer), Err(FileError::Length { .. })));
}

#[test]
fn every_flipped_byte_is_an_error() {
    let bytes = small_file();
    let mut copy = bytes.clone();
    for at in 0..bytes.len() {
        for mask in [0x01u8, 0x80, 0xff] {
            copy[at] ^= mask;
            let r = load_bytes(&copy);
            assert!(r.is_err(), "flipping byte {at} with {mask:#x} went unnoticed");
            copy[at] ^= mask;
        }
    }
}

#[test]
fn header_errors_are_named() {
    let bytes = small_file();
    let mut b = bytes.clone();
    b[0] = b'X';
    assert!(matches!(load_bytes(&b), Err(FileError::BadMagic { .. })));
    assert!(matches!(load_bytes(b"not an index"), Err(FileError::BadMagic { .. })));
    assert!(matches!(load_bytes(&[]), Err(FileError::BadMagic { .. })));
    let mut b = bytes.clone();
    b[8..12].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
    assert!(matches!(load_bytes(&b), Err(FileError::UnsupportedVersion { found }) if found == FORMAT_VERSION + 1));
    let mut b = bytes.clone();
    b[12..16].copy_from_slice(&0x0102_0304u32.to_be_bytes());
    assert!(matches!(load_bytes(&b), Err(FileError::Endianness)));
    let mut b = bytes.clone();
    b[24] ^= 1; // dim, not resealed: the header checksum catches it
    assert!(matches!(load_bytes(&b), Err(FileError::Checksum { part: "header" })));
}

// Header field offsets of format version 1 (see src/io/persist.rs).
const COUNT: usize = 56;
const ENTRY: usize = 72;
const SECTIONS: usize = 88;
const CHECKSUM: usize = 280;

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// Recomputes every section checksum and the header's, as a careful forger would.
fn reseal(b: &mut [u8]) {
    for i in 0..5 {
        let s = SECTIONS + 32 * i;
        let (off, len) = (u64_at(b, s) as usize, u64_at(b, s + 8) as usize);
        // A forged range outside the file keeps its old checksum.
        if let Some(bytes) = off.checked_add(len).and_then(|end| b.get(off..end)) {
            let sum = xxhash_rust::xxh3::xxh3_64(bytes);
            b[s + 16..s + 24].copy_from_slice(&sum.to_le_bytes());
        }
    }
    let sum = xxhash_rust::xxh3::xxh3_64(&b[..CHECKSUM]);
    b[CHECKSUM..CHECKSUM + 8].copy_from_slice(&sum.to_le_bytes());
}

fn section(b: &[u8], i: usize) -> usize {
    u64_at(b, SECTIONS + 32 * i) as usize
}

#[test]
fn resealed_forgeries_are_caught_by_the_invariant_checks() {
    let bytes = small_file();
    let corrupt = |edit: &dyn Fn(&mut Vec<u8>)| {
        let mut b = bytes.clone();
        edit(&mut b);
        reseal(&mut b);
        match load_bytes(&b) {
            Err(FileError::Corrupt(why)) => why,
            Err(FileError::Length { .. }) => "length".into(),
            other => panic!("forgery accepted or misreported: {:?}", other.map(|i| i.len())),
        }
    };
    let level0 = section(&bytes, 1);
    // An out-of-range neighbour id.
    let why = corrupt(&|b| b[level0 + 4..level0 + 8].copy_from_slice(&1_000_000u32.to_le_bytes()));
    assert!(why.contains("links to"), "{why}");
    // A link count above Mmax0.
    let why = corrupt(&|b| b[level0..level0 + 4].copy_from_slice(&99u32.to_le_bytes()));
    assert!(why.contains("links on layer 0"), "{why}");
    // A self-link: node 0 linking to 0.
    let why = corrupt(&|b| b[level0 + 4..level0 + 8].copy_from_slice(&0u32.to_le_bytes()));
    assert!(why.contains("links to 0"), "{why}");
    // A NaN in the vectors.
    let slab = section(&bytes, 0);
    let why = corrupt(&|b| b[slab..slab + 4].copy_from_slice(&f32::NAN.to_le_bytes()));
    assert!(why.contains("not finite"), "{why}");
    // Non-zero row padding (dim 5, stride 8: float 7 of row 0).
    let why = corrupt(&|b| b[slab + 4 * 7..slab + 4 * 8].copy_from_slice(&1.0f32.to_le_bytes()));
    assert!(why.contains("padding"), "{why}");
    // Two nodes with one label.
    let labels = section(&bytes, 4);
    let why = corrupt(&|b| {
        let first: [u8; 8] = b[labels..labels + 8].try_into().unwrap();
        b[labels + 8..labels + 16].copy_from_slice(&first);
    });
    assert!(why.contains("twice"), "{why}");
    // An entry point that is not a node.
    let why = corrupt(&|b| b[ENTRY..ENTRY + 4].copy_from_slice(&7_000u32.to_le_bytes()));
    assert!(why.contains("entry point"), "{why}");
    // A count that disagrees with the sections.
    let why = corrupt(&|b| b[COUNT..COUNT + 8].copy_from_slice(&151u64.to_le_bytes()));
    assert!(
        why.contains("disagree") || why.contains("levels drawn") || why == "length",
        "{why}"
    );
    // Section offsets and lengths near u64::MAX (found by the fuzzer: the upper section's
    // length sets its own expected size, and offset + length overflowed in the header check).
    for i in 0..5 {
        for field in [0, 8] {
            let at = SECTIONS + 32 * i + field;
            let why = corrupt(&|b| b[at..at + 8].copy_from_slice(&(u64::MAX - 3).to_le_bytes()));
            assert!(why.contains("section"), "{why}");
        }
    }
    // The fuzzer's case exactly: an upper-section length that is a whole number of rows.
    let m = u32::from_le_bytes(bytes[32..36].try_into().unwrap()) as u64;
    let huge = (u64::MAX / 4) / (1 + m) * (1 + m) * 4;
    let at = SECTIONS + 32 * 3 + 8;
    let why = corrupt(&|b| b[at..at + 8].copy_from_slice(&huge.to_le_bytes()));
    assert!(why.contains("section"), "{why}");
    // A level beyond the upper table.
    let offsets = section(&bytes, 2);
    let why = corrupt(&|b| b[offsets + 4..offsets + 8].copy_from_slice(&u32::MAX.to_le_bytes()));
    assert!(why.contains("level") || why.contains("upper"), "{why}");
}

#[test]
fn a_mapped_index_answers_like_a_loaded_one() {
    let d = dir("mmap");
    let (base, queries) = mixture(4_000, 30, 20, 33);
    let index = build(Params::new(20, Metric::Cosine).seed(2), &base, 2);
    let path = d.join("m.hnswx");
    index.save(&path).unwrap();
    let loaded = Index::load(&path).unwrap();
    for verify in [Verify::All, Verify::Structure] {
        let mapped = open_mmap(&path, verify).unwrap();
        assert_eq!(mapped.len(), 4_000);
        for q in queries.rows() {
            assert_eq!(mapped.search(q, 10, 64).unwrap(), loaded.search(q, 10, 64).unwrap());
        }
        assert_eq!(mapped.get(17).unwrap(), loaded.get(17).unwrap());
        assert!(mapped.graph_stats().is_healthy());
        // Read-only until it is copied into memory by reserve.
        assert!(matches!(
            mapped.add(99_999, base.row(0)),
            Err(hnswx::Error::CapacityExhausted { .. })
        ));
        let mut mapped = mapped;
        mapped.reserve(5).unwrap();
        mapped.add(99_999, base.row(0)).unwrap();
        assert!(mapped.search(base.row(0), 1, 32).unwrap()[0].distance.abs() < 1e-5);
    }
    // Saving over a mapped file replaces it by rename; the mapping keeps the old contents.
    let mapped = open_mmap(&path, Verify::Structure).unwrap();
    Index::new(Params::new(20, Metric::Cosine), 1)
        .unwrap()
        .save(&path)
        .unwrap();
    assert_eq!(
        mapped.search(queries.row(0), 10, 64).unwrap(),
        loaded.search(queries.row(0), 10, 64).unwrap()
    );
}

#[test]
fn damaged_files_never_map_into_a_panic() {
    let bytes = small_file();
    let d = dir("mmap-damage");
    let path = d.join("x.hnswx");
    let q = [0.1f32, -0.2, 0.3, 0.0, 0.5];
    for cut in (0..bytes.len()).step_by(13).chain([bytes.len() - 1]) {
        std::fs::write(&path, &bytes[..cut]).unwrap();
        assert!(open_mmap(&path, Verify::Structure).is_err(), "cut at {cut}");
    }
    let mut copy = bytes.clone();
    let mut accepted = 0;
    for at in 0..bytes.len() {
        copy[at] ^= 0x41;
        std::fs::write(&path, &copy).unwrap();
        assert!(
            open_mmap(&path, Verify::All).is_err(),
            "flip at {at} passed full verification"
        );
        // Without section checksums a damaged vector or label may be accepted: it must still
        // search without panicking.
        if let Ok(index) = open_mmap(&path, Verify::Structure) {
            accepted += 1;
            for ef in [1, 10, 100] {
                let _ = index.search(&q, 5, ef).unwrap();
                let _ = index.search_filtered(&q, 5, ef, |l| l % 2 == 0).unwrap();
            }
        }
        copy[at] ^= 0x41;
    }
    eprintln!(
        "{accepted} of {} single-byte flips passed structural checks (and searched fine)",
        bytes.len()
    );
}

#[test]
fn hnswlib_format_round_trips() {
    let d = dir("hnswlib");
    let (base, queries) = mixture(2_500, 30, 24, 34);
    for metric in [Metric::L2, Metric::InnerProduct, Metric::Cosine] {
        let index = build(Params::new(24, metric).m(12), &base, 2);
        let path = d.join("h.bin");
        index.export_hnswlib(&path).unwrap();
        let back = Index::import_hnswlib(&path, metric).unwrap();
        for q in queries.rows() {
            assert_eq!(back.search(q, 10, 40).unwrap(), index.search(q, 10, 40).unwrap());
        }
        for label in (0..2_500).step_by(11) {
            assert_eq!(back.neighbours(label, 0).unwrap(), index.neighbours(label, 0).unwrap());
        }
        // An imported index saves and loads like any other.
        back.save(d.join("h.hnswx")).unwrap();
        assert_eq!(Index::load(d.join("h.hnswx")).unwrap().len(), 2_500);
        // Header words set to overflow (found by the fuzzer: label_offset + 8). Words 1
        // (max_elements), 10 (mult) and 11 (ef_construction) do not shape the file: skipped.
        for field in [0, 2, 3, 4, 5, 6, 7, 8, 9] {
            let mut b = std::fs::read(&path).unwrap();
            b[8 * field..8 * field + 8].copy_from_slice(&(u64::MAX - 3).to_le_bytes());
            assert!(Index::import_hnswlib_bytes(&b, metric).is_err(), "field {field}");
        }
        // Damaged hnswlib files are errors, never panics.
        let bytes = std::fs::read(&path).unwrap();
        for cut in (0..bytes.len()).step_by(97) {
            assert!(Index::import_hnswlib_bytes(&bytes[..cut], metric).is_err());
        }
        let mut b = bytes.clone();
        for at in (0..bytes.len()).step_by(31) {
            b[at] ^= 0xff;
            if let Ok(i) = Index::import_hnswlib_bytes(&b, metric) {
                let _ = i.search(queries.row(0), 5, 20).unwrap();
            }
            b[at] ^= 0xff;
        }
    }
}

/// `Index::open_mmap` on a file that no one modifies while it is mapped: each test writes
/// its own file in its own temporary folder and only replaces it by rename.
fn open_mmap(path: &std::path::Path, verify: Verify) -> Result<Index, hnswx::FileError> {
    // SAFETY: see above: the file is not modified while mapped.
    unsafe { Index::open_mmap(path, verify) }
}

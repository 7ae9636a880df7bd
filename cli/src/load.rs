//! Reading data sets by file extension: texmex `.fvecs`/`.bvecs`/`.ivecs` (through
//! `hnswx::data`) and NumPy `.npy` (through `npyz`).

use hnswx::data::{read_bvecs, read_fvecs, read_ivecs, Table};
use std::path::Path;

/// Vectors from `.fvecs`, `.bvecs` or a 2-D `.npy` of float32, float64 or uint8.
pub fn vectors(path: &Path) -> Result<Table<f32>, String> {
    match extension(path).as_str() {
        "fvecs" => read_fvecs(path).map_err(|e| e.to_string()),
        "bvecs" => read_bvecs(path).map_err(|e| e.to_string()),
        "npy" => npy(path, |descr, file| match descr {
            "<f4" => file.into_vec::<f32>(),
            "<f8" => file
                .into_vec::<f64>()
                .map(|v| v.into_iter().map(|x| x as f32).collect()),
            "|u1" => file.into_vec::<u8>().map(|v| v.into_iter().map(f32::from).collect()),
            other => Err(std::io::Error::other(format!(
                "dtype {other} is not a vector type (float32, float64 or uint8 expected)"
            ))),
        }),
        _ => Err(format!(
            "{}: unknown format (expected .fvecs, .bvecs or .npy)",
            path.display()
        )),
    }
}

/// Neighbour ids (ground truth) from `.ivecs` or a 2-D integer `.npy`.
pub fn ids(path: &Path) -> Result<Table<u32>, String> {
    let narrow = |v: Vec<i64>| {
        v.into_iter()
            .map(|x| u32::try_from(x).map_err(|_| std::io::Error::other(format!("id {x} is not a valid index"))))
            .collect::<std::io::Result<Vec<u32>>>()
    };
    match extension(path).as_str() {
        "ivecs" => read_ivecs(path).map_err(|e| e.to_string()),
        "npy" => npy(path, |descr, file| match descr {
            "<i4" => narrow(file.into_vec::<i32>()?.into_iter().map(i64::from).collect()),
            "<i8" => narrow(file.into_vec::<i64>()?),
            "<u4" => file.into_vec::<u32>(),
            "<u8" => narrow(
                file.into_vec::<u64>()?
                    .into_iter()
                    .map(|x| x.min(i64::MAX as u64) as i64)
                    .collect(),
            ),
            other => Err(std::io::Error::other(format!(
                "dtype {other} is not an id type (int32/int64/uint32/uint64)"
            ))),
        }),
        _ => Err(format!("{}: unknown format (expected .ivecs or .npy)", path.display())),
    }
}

fn extension(path: &Path) -> String {
    path.extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase()
}

type NpyFile = npyz::NpyFile<std::io::BufReader<std::fs::File>>;

/// Opens a 2-D C-order `.npy` and decodes it with `read` (given the dtype descriptor).
fn npy<T>(path: &Path, read: impl FnOnce(&str, NpyFile) -> std::io::Result<Vec<T>>) -> Result<Table<T>, String> {
    let err = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    let f = std::fs::File::open(path).map_err(|e| err(&e))?;
    let file = npyz::NpyFile::new(std::io::BufReader::new(f)).map_err(|e| err(&e))?;
    let shape = file.shape().to_vec();
    if shape.len() != 2 || shape[1] == 0 {
        return Err(err(&format!("shape {shape:?}: a 2-D array (rows × dim) expected")));
    }
    if file.order() != npyz::Order::C {
        return Err(err(
            &"Fortran-order arrays are not supported: save with np.ascontiguousarray",
        ));
    }
    // `descr()` renders the dtype as a Python literal, quotes included: '<f4'.
    let descr = file.dtype().descr().trim_matches('\'').to_string();
    let data = read(&descr, file).map_err(|e| err(&e))?;
    let dim = shape[1] as usize;
    if data.len() as u64 != shape[0] * shape[1] {
        return Err(err(&format!("{} values for shape {shape:?}: truncated?", data.len())));
    }
    Table::new(dim, data).ok_or_else(|| err(&"empty array"))
}

//! `f64` reference implementations, the ground truth the kernels are tested against, and the
//! rounding-error bound the tests allow.

/// `Σ (aᵢ − bᵢ)²`, each term and the sum in `f64`.
///
/// # Panics
/// If `a` and `b` differ in length.
pub fn l2sq(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(&x, &y)| (x as f64 - y as f64).powi(2)).sum()
}

/// `Σ aᵢ·bᵢ` in `f64` (exact products: two 24-bit significands fit in 53 bits).
///
/// # Panics
/// If `a` and `b` differ in length.
pub fn dot(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum()
}

/// `Σ |aᵢ·bᵢ|`: the scale of the rounding error of an `f32` dot product.
pub fn dot_magnitude(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(&x, &y)| (x as f64 * y as f64).abs()).sum()
}

/// Largest error an `f32` sum of `n` terms whose absolute values add up to `magnitude` may
/// have, whatever the summation order, with or without FMA:
/// `(n + 4)·u·magnitude + (n + 4)·2⁻¹⁴⁹`, with `u = 2⁻²⁴`.
///
/// Why: each of the `n − 1` additions rounds a partial sum (relative error ≤ u of a value
/// ≤ `magnitude`); each product (and, for L2, the difference before squaring: `(1+u)² ≈ 1+2u`)
/// adds ≤ 2u of its own term; the final conversion one more u. Products that fall into the
/// subnormal range round with an absolute error ≤ 2⁻¹⁵⁰ instead, hence the second part.
/// Splitting the sum into lanes and partial sums only shortens the chains of additions.
pub fn error_bound(n: usize, magnitude: f64) -> f64 {
    let u = f64::powi(2.0, -24);
    let tiny = f64::powi(2.0, -149);
    (n as f64 + 4.0) * (u * magnitude + tiny)
}

/// `Σ wᵢ·cᵢ` over `f32` weights and SQ8 codes, in `f64` (exact products).
///
/// The `f32` kernels convert each code exactly (`cᵢ ≤ 255`), so their rounding error is that
/// of an `f32` dot product: [`error_bound`]`(n, `[`dot_u8_magnitude`]`(w, c))`.
///
/// # Panics
/// If `w` and `c` differ in length.
pub fn dot_u8(w: &[f32], c: &[u8]) -> f64 {
    assert_eq!(w.len(), c.len());
    w.iter().zip(c).map(|(&x, &y)| x as f64 * y as f64).sum()
}

/// `Σ |wᵢ·cᵢ|`: the scale of the rounding error of [`dot_u8`] computed in `f32`.
pub fn dot_u8_magnitude(w: &[f32], c: &[u8]) -> f64 {
    w.iter().zip(c).map(|(&x, &y)| (x as f64 * y as f64).abs()).sum()
}

/// `Σ (qᵢ − xᵢ)²` with half-precision `x`, in `f64`. Every `f16` is an `f32` value, so the
/// `f32` bound [`error_bound`]`(n, l2sq)` applies unchanged.
///
/// # Panics
/// If `q` and `x` differ in length.
pub fn l2sq_f16(q: &[f32], x: &[half::f16]) -> f64 {
    assert_eq!(q.len(), x.len());
    q.iter().zip(x).map(|(&a, &b)| (a as f64 - b.to_f64()).powi(2)).sum()
}

/// `Σ qᵢ·xᵢ` with half-precision `x`, in `f64` (exact products).
///
/// # Panics
/// If `q` and `x` differ in length.
pub fn dot_f16(q: &[f32], x: &[half::f16]) -> f64 {
    assert_eq!(q.len(), x.len());
    q.iter().zip(x).map(|(&a, &b)| a as f64 * b.to_f64()).sum()
}

/// `Σ |qᵢ·xᵢ|`: the scale of the rounding error of [`dot_f16`] computed in `f32`.
pub fn dot_f16_magnitude(q: &[f32], x: &[half::f16]) -> f64 {
    q.iter().zip(x).map(|(&a, &b)| (a as f64 * b.to_f64()).abs()).sum()
}

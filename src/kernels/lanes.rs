//! Sums over pairs of f32 slices in eight independent lanes: one running sum must be
//! added in order, which keeps the compiler from using vector registers.

/// The sum of `term(a[i], b[i])` over two slices of one length.
#[inline(always)]
pub(crate) fn sum_pairs(a: &[f32], b: &[f32], term: impl Fn(f32, f32) -> f32) -> f32 {
    let mut lanes = [0f32; 8];
    let (a8, b8) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = a8.remainder().iter().zip(b8.remainder()).map(|(&x, &y)| term(x, y)).sum();
    for (x, y) in a8.zip(b8) {
        for i in 0..8 {
            lanes[i] += term(x[i], y[i]);
        }
    }
    lanes.iter().sum::<f32>() + tail
}

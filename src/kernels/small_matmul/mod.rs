//! `x · wᵀ` for the few rows of a search step (beams × queries, or one query's tokens)
//! against a frozen `[out, in]` weight, on the CPU.
//!
//! Candle's gemm repacks the whole weight on every call, and with a handful of rows that
//! packing costs more than the arithmetic (about 40% of a beam search's time). Both
//! operands are already contiguous along the reduced dimension, so this kernel takes
//! dot products straight from them: a tile of rows × weight rows accumulates in
//! registers, each weight block is read from memory once and reused by every row, and
//! weight blocks are shared out over the search workers (`crate::pool`). It has no backward
//! pass, so anything that may need a gradient goes through Candle's matmul.
//!
//! A weight may also be kept as int8 with one scale per row ([`Int8Rows`]): a quarter
//! of the bytes to stream, widened to f32 in registers and accumulated in f32. At 20 rows
//! on AVX2 the kernel is bound more by its arithmetic than by reading, so that saves
//! less than the bytes suggest (docs/benchmarks.md, "Search weights").
//!
//! The dense scan reads stored image vectors through the same kernels, as f32, f16 or
//! int8 rows ([`nt_rows`]): at a few queries against a million rows it is bound by
//! reading, so there the smaller forms pay in full.

use crate::Result;
use candle_core::{CpuStorage, CustomOp1, CustomOp2, DType, Device, Layout, Shape, Tensor};
use parking_lot::Mutex;

/// Above this many rows gemm's packing pays for itself (measured crossover: 64–128).
const MAX_ROWS: usize = 64;
/// Weight rows per work item: enough arithmetic to amortise a hand-off between threads.
const BLOCK: usize = 16;

/// A frozen weight `[n, k]` as int8, each row scaled so that its largest magnitude is
/// 127 (symmetric, per output row: the rows of a linear layer differ in range).
pub(crate) struct Int8Rows {
    q: Vec<i8>,
    scales: Vec<f32>,
    k: usize,
}

impl Int8Rows {
    /// `w` quantised, where this CPU has the kernel for it; `None` elsewhere (the f32
    /// weight serves).
    pub(crate) fn new(w: &Tensor) -> Result<Option<Self>> {
        if kernels().is_none() || !matches!(w.device(), Device::Cpu) {
            return Ok(None);
        }
        let (n, k) = w.dims2()?;
        let rows = w.to_dtype(DType::F32)?.to_vec2::<f32>()?;
        let mut q = Vec::with_capacity(n * k);
        let mut scales = Vec::with_capacity(n);
        for row in &rows {
            scales.push(push_int8(row, &mut q));
        }
        Ok(Some(Int8Rows { q, scales, k }))
    }

    fn rows(&self) -> usize {
        self.scales.len()
    }

    /// The rounded weights in f32, `[n, k]`.
    fn widened(&self) -> Result<Tensor> {
        let values = self
            .q
            .chunks_exact(self.k)
            .zip(&self.scales)
            .flat_map(|(row, s)| row.iter().map(move |&v| f32::from(v) * s));
        Ok(Tensor::from_vec(values.collect(), (self.rows(), self.k), &Device::Cpu)?)
    }
}

/// Appends `row` to `q` as int8, scaled so that its largest magnitude is 127; returns the
/// scale (1 for a row of zeros).
pub(crate) fn push_int8(row: &[f32], q: &mut Vec<i8>) -> f32 {
    let max = row.iter().fold(0f32, |m, v| m.max(v.abs()));
    let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
    q.extend(row.iter().map(|v| (v / scale).round() as i8));
    scale
}

/// `x [.., k] · w [n, k]ᵀ → [.., n]`, through this kernel where it applies; through the
/// int8 copy `int8` of `w` where one is given.
pub(crate) fn matmul_nt(x: &Tensor, w: &Tensor, int8: Option<&Int8Rows>) -> Result<Tensor> {
    let dims = x.dims().to_vec();
    let (k, lead) = dims.split_last().expect("non-scalar input");
    let rows: usize = lead.iter().product();
    let x2 = x.reshape((rows, *k))?;
    let kernel = rows > 0
        && *k > 0
        && matches!(x.device(), Device::Cpu)
        && x.dtype() == DType::F32
        && !x.track_op()
        && kernels().is_some();
    let y = match int8 {
        Some(q) if kernel && rows <= MAX_ROWS => x2.contiguous()?.apply_op1_no_bwd(&NtMatmulInt8(q))?,
        // The same rounded weights through gemm: a query's scores must not depend on how
        // many queries share its batch. Widening them costs little beside so many rows.
        Some(q) if kernel => x2.matmul(&q.widened()?.t()?)?,
        _ if kernel && rows <= MAX_ROWS && w.dtype() == DType::F32 && !w.track_op() && w.is_contiguous() => {
            x2.contiguous()?.apply_op2_no_bwd(w, &NtMatmul)?
        }
        _ => x2.matmul(&w.t()?)?,
    };
    let mut out = lead.to_vec();
    out.push(w.dim(0)?);
    Ok(y.reshape(out)?)
}

/// A weight element the kernels widen to f32 in registers.
pub(crate) trait Element: Copy + Sync + Into<f32> {
    fn kernel(kernels: Kernels) -> Kernel<Self>;
}

impl Element for f32 {
    fn kernel(kernels: Kernels) -> Kernel<f32> {
        kernels.f32
    }
}

impl Element for half::f16 {
    fn kernel(kernels: Kernels) -> Kernel<half::f16> {
        kernels.f16
    }
}

impl Element for i8 {
    fn kernel(kernels: Kernels) -> Kernel<i8> {
        kernels.int8
    }
}

/// `x [m, k] · w [n, k]ᵀ → [m, n]` on plain slices (the dense scan of stored vectors),
/// `w` as f32, f16 or int8 rows, row `j` scaled by `scales[j]` where given: this CPU's
/// kernel on the search workers (each block of weight rows owns its slice of `yᵀ`, so
/// the hand-out needs no unsafe code), eight-lane sums where it has none.
pub(crate) fn nt_rows<W: Element>(
    x: &[f32],
    w: &[W],
    scales: Option<&[f32]>,
    m: usize,
    n: usize,
    k: usize,
) -> Vec<f32> {
    let Some(kernels) = kernels() else { return nt_plain(x, w, scales, m, n, k) };
    let kernel = W::kernel(kernels);
    let mut yt = vec![0f32; n * m];
    let blocks: Vec<Mutex<&mut [f32]>> = yt.chunks_mut(BLOCK * m).map(Mutex::new).collect();
    crate::kernels::pool::for_each_block(blocks.len(), |b| {
        let start = b * BLOCK;
        let rows = BLOCK.min(n - start);
        let mut yt = blocks[b].lock();
        kernel(x, &w[start * k..(start + rows) * k], k, &mut yt);
        if let Some(scales) = scales {
            for (col, s) in yt.chunks_exact_mut(m).zip(&scales[start..start + rows]) {
                col.iter_mut().for_each(|v| *v *= s);
            }
        }
    });
    drop(blocks);
    transposed(&yt, m, n)
}

/// [`nt_rows`] without a kernel.
fn nt_plain<W: Element>(x: &[f32], w: &[W], scales: Option<&[f32]>, m: usize, n: usize, k: usize) -> Vec<f32> {
    let mut row = vec![0f32; k];
    let mut yt = Vec::with_capacity(n * m);
    for (j, w) in w.chunks_exact(k).enumerate() {
        let s = scales.map_or(1.0, |s| s[j]);
        row.iter_mut().zip(w).for_each(|(r, &v)| *r = v.into() * s);
        yt.extend(x.chunks_exact(k).map(|x| crate::kernels::lanes::sum_pairs(x, &row, |a, b| a * b)));
    }
    transposed(&yt, m, n)
}

/// The contiguous f32 slice of `s` [m, k] that `l` describes.
fn rows_of<'a>(s: &'a CpuStorage, l: &Layout, what: &str) -> candle_core::Result<(&'a [f32], usize, usize)> {
    let CpuStorage::F32(s) = s else { candle_core::bail!("{what}: f32 only") };
    let (m, k) = l.shape().dims2()?;
    let Some((a, b)) = l.contiguous_offsets() else { candle_core::bail!("{what}: contiguous operands only") };
    Ok((&s[a..b], m, k))
}

struct NtMatmul;

impl CustomOp2 for NtMatmul {
    fn name(&self) -> &'static str {
        "small-matmul-nt"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (x, m, k) = rows_of(xs, xl, self.name())?;
        let (w, n, k2) = rows_of(ws, wl, self.name())?;
        if k != k2 {
            candle_core::bail!("small-matmul-nt: inner sizes {k} and {k2} differ");
        }
        Ok((CpuStorage::F32(nt_rows(x, w, None, m, n, k)), Shape::from((m, n))))
    }
}

struct NtMatmulInt8<'a>(&'a Int8Rows);

impl CustomOp1 for NtMatmulInt8<'_> {
    fn name(&self) -> &'static str {
        "small-matmul-nt-int8"
    }

    fn cpu_fwd(&self, xs: &CpuStorage, xl: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let (x, m, k) = rows_of(xs, xl, self.name())?;
        let w = self.0;
        if k != w.k {
            candle_core::bail!("small-matmul-nt-int8: inner sizes {k} and {} differ", w.k);
        }
        let n = w.rows();
        Ok((CpuStorage::F32(nt_rows(x, &w.q, Some(&w.scales), m, n, k)), Shape::from((m, n))))
    }
}

/// `yt [n, m]` as `y [m, n]`.
fn transposed(yt: &[f32], m: usize, n: usize) -> Vec<f32> {
    let mut y = vec![0f32; m * n];
    for (j, col) in yt.chunks_exact(m).enumerate() {
        for (i, v) in col.iter().enumerate() {
            y[i * n + j] = *v;
        }
    }
    y
}

/// `yt [w rows, x rows] = w · xᵀ` for one block of weight rows.
pub(crate) type Kernel<W> = fn(x: &[f32], w: &[W], k: usize, yt: &mut [f32]);

/// This CPU's kernels, by weight type.
#[derive(Clone, Copy)]
pub(crate) struct Kernels {
    f32: Kernel<f32>,
    f16: Kernel<half::f16>,
    int8: Kernel<i8>,
}

/// The kernels for this CPU: x86-64 with AVX-512 or AVX2+FMA+F16C. Elsewhere Candle's gemm
/// does the work, on the f32 weights.
fn kernels() -> Option<Kernels> {
    #[cfg(target_arch = "x86_64")]
    {
        x86::kernels()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        None
    }
}

#[cfg(target_arch = "x86_64")]
mod x86;

#[cfg(test)]
mod tests {
    use super::*;

    const SHAPES: [(usize, usize, usize); 7] =
        [(1, 1, 1), (1, 37, 19), (5, 33, 16), (20, 512, 512), (7, 18, 40), (64, 70, 130), (65, 9, 8)];

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap()
    }

    #[test]
    fn matches_candle_matmul_for_every_shape_edge() {
        let dev = Device::Cpu;
        for (m, n, k) in SHAPES {
            let x = Tensor::randn(0f32, 1.0, (m, k), &dev).unwrap();
            let w = Tensor::randn(0f32, 1.0, (n, k), &dev).unwrap();
            let want = x.matmul(&w.t().unwrap()).unwrap();
            let diff = max_diff(&matmul_nt(&x, &w, None).unwrap(), &want);
            assert!(diff < 1e-4 * (k as f32).sqrt(), "{m}x{n}x{k}: {diff}");
        }
    }

    /// The int8 path computes with the rounded weights exactly (up to f32 sums), and those
    /// stay within half a step (max|row| / 254) of the originals.
    #[test]
    fn int8_weights_compute_their_rounded_values() {
        let dev = Device::Cpu;
        for (m, n, k) in SHAPES {
            let x = Tensor::randn(0f32, 1.0, (m, k), &dev).unwrap();
            let w = Tensor::randn(0f32, 1.0, (n, k), &dev).unwrap();
            let Some(q) = Int8Rows::new(&w).unwrap() else { return };
            let codes: Vec<f32> = q.q.iter().map(|&v| f32::from(v)).collect();
            let scales = Tensor::from_slice(&q.scales, (n, 1), &dev).unwrap();
            let rounded = Tensor::from_vec(codes, (n, k), &dev).unwrap().broadcast_mul(&scales).unwrap();
            let step = (w.abs().unwrap().max_keepdim(1).unwrap() / 254.0).unwrap();
            let err = (&rounded - &w).unwrap().abs().unwrap().broadcast_sub(&step).unwrap();
            assert!(err.max_all().unwrap().to_scalar::<f32>().unwrap() <= 1e-6, "{n}x{k}: rounding");
            let want = x.matmul(&rounded.t().unwrap()).unwrap();
            let diff = max_diff(&matmul_nt(&x, &w, Some(&q)).unwrap(), &want);
            assert!(diff < 1e-4 * (k as f32).sqrt(), "{m}x{n}x{k}: {diff}");
        }
    }

    /// The plain sums (CPUs without a kernel) agree with the kernels for every element type.
    #[test]
    fn plain_sums_match_the_kernels() {
        let (m, n, k) = (3, 40, 37);
        let x: Vec<f32> = (0..m * k).map(|i| ((i * 7919) % 97) as f32 / 97.0 - 0.5).collect();
        let w: Vec<f32> = (0..n * k).map(|i| ((i * 104729) % 89) as f32 / 89.0 - 0.5).collect();
        let w16: Vec<half::f16> = w.iter().map(|&v| half::f16::from_f32(v)).collect();
        let w8: Vec<i8> = (0..n * k).map(|i| ((i * 104729) % 255) as i16 as i8).collect();
        let scales: Vec<f32> = (0..n).map(|j| 0.01 * (j + 1) as f32).collect();
        let close = |a: Vec<f32>, b: Vec<f32>| a.iter().zip(&b).all(|(a, b)| (a - b).abs() < 1e-4 * (1.0 + b.abs()));
        assert!(close(nt_rows(&x, &w, None, m, n, k), nt_plain(&x, &w, None, m, n, k)));
        assert!(close(nt_rows(&x, &w16, None, m, n, k), nt_plain(&x, &w16, None, m, n, k)));
        assert!(close(nt_rows(&x, &w8, Some(&scales), m, n, k), nt_plain(&x, &w8, Some(&scales), m, n, k)));
    }

    #[test]
    fn an_all_zero_row_stays_zero() {
        let w = Tensor::zeros((3, 20), DType::F32, &Device::Cpu).unwrap();
        let Some(q) = Int8Rows::new(&w).unwrap() else { return };
        let x = Tensor::ones((2, 20), DType::F32, &Device::Cpu).unwrap();
        let y = matmul_nt(&x, &w, Some(&q)).unwrap();
        assert_eq!(y.flatten_all().unwrap().to_vec1::<f32>().unwrap(), vec![0.0; 6]);
    }

    #[test]
    fn keeps_leading_dimensions() {
        let x = Tensor::ones((2, 3, 4), candle_core::DType::F32, &Device::Cpu).unwrap();
        let w = Tensor::ones((5, 4), candle_core::DType::F32, &Device::Cpu).unwrap();
        let y = matmul_nt(&x, &w, None).unwrap();
        assert_eq!(y.dims(), &[2, 3, 5]);
        assert_eq!(y.flatten_all().unwrap().to_vec1::<f32>().unwrap(), vec![4.0; 30]);
    }
}

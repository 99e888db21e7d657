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
            let max = row.iter().fold(0f32, |m, v| m.max(v.abs()));
            let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
            q.extend(row.iter().map(|v| (v / scale).round() as i8));
            scales.push(scale);
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

/// `x [m, k] · w [n, k]ᵀ → [m, n]` on plain slices (the dense scan of stored vectors):
/// this CPU's kernel on the search workers, eight-lane sums where it has none.
pub(crate) fn nt_slices(x: &[f32], w: &[f32], m: usize, n: usize, k: usize) -> Vec<f32> {
    match kernels() {
        Some(kernels) => run(kernels.f32, x, w, None, m, n, k),
        None => x
            .chunks_exact(k)
            .flat_map(|x| w.chunks_exact(k).map(move |w| crate::kernels::lanes::sum_pairs(x, w, |a, b| a * b)))
            .collect(),
    }
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
        let kernel = kernels().expect("checked by matmul_nt").f32;
        Ok((CpuStorage::F32(run(kernel, x, w, None, m, n, k)), Shape::from((m, n))))
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
        let kernel = kernels().expect("checked by matmul_nt").int8;
        let n = w.rows();
        Ok((CpuStorage::F32(run(kernel, x, &w.q, Some(&w.scales), m, n, k)), Shape::from((m, n))))
    }
}

/// Computes `yᵀ` block by block on all workers (each block owns its slice of `yᵀ`, so
/// the hand-out needs no unsafe code), scaling weight row `j` by `scales[j]` where given,
/// then transposes it into `y [m, n]`.
fn run<W: Sync>(
    kernel: Kernel<W>,
    x: &[f32],
    w: &[W],
    scales: Option<&[f32]>,
    m: usize,
    n: usize,
    k: usize,
) -> Vec<f32> {
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
    let mut y = vec![0f32; m * n];
    for (j, col) in yt.chunks_exact(m).enumerate() {
        for (i, v) in col.iter().enumerate() {
            y[i * n + j] = *v;
        }
    }
    y
}

/// `yt [w rows, x rows] = w · xᵀ` for one block of weight rows.
type Kernel<W> = fn(x: &[f32], w: &[W], k: usize, yt: &mut [f32]);

/// This CPU's kernels, by weight type.
#[derive(Clone, Copy)]
struct Kernels {
    f32: Kernel<f32>,
    int8: Kernel<i8>,
}

/// The kernels for this CPU: x86-64 with AVX-512 or AVX2+FMA. Elsewhere Candle's gemm
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

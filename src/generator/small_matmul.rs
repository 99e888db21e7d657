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

use crate::Result;
use candle_core::{CpuStorage, CustomOp2, DType, Device, Layout, Shape, Tensor};
use parking_lot::Mutex;

/// Above this many rows gemm's packing pays for itself (measured crossover: 64–128).
const MAX_ROWS: usize = 64;
/// Weight rows per work item: enough arithmetic to amortise a hand-off between threads.
const BLOCK: usize = 16;

/// `x [.., k] · w [n, k]ᵀ → [.., n]`, through this kernel where it applies.
pub(crate) fn matmul_nt(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    let dims = x.dims().to_vec();
    let (k, lead) = dims.split_last().expect("non-scalar input");
    let rows: usize = lead.iter().product();
    let x2 = x.reshape((rows, *k))?;
    let fast = (1..=MAX_ROWS).contains(&rows)
        && *k > 0
        && matches!(x.device(), Device::Cpu)
        && x.dtype() == DType::F32
        && w.dtype() == DType::F32
        && !x.track_op()
        && !w.track_op()
        && w.is_contiguous()
        && kernel().is_some();
    let y = if fast { x2.contiguous()?.apply_op2_no_bwd(w, &NtMatmul)? } else { x2.matmul(&w.t()?)? };
    let mut out = lead.to_vec();
    out.push(w.dim(0)?);
    Ok(y.reshape(out)?)
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
        let (CpuStorage::F32(xs), CpuStorage::F32(ws)) = (xs, ws) else {
            candle_core::bail!("small-matmul-nt: f32 only");
        };
        let ((m, k), (n, k2)) = (xl.shape().dims2()?, wl.shape().dims2()?);
        let (Some((x0, x1)), Some((w0, w1))) = (xl.contiguous_offsets(), wl.contiguous_offsets()) else {
            candle_core::bail!("small-matmul-nt: contiguous operands only");
        };
        if k != k2 {
            candle_core::bail!("small-matmul-nt: inner sizes {k} and {k2} differ");
        }
        let kernel = kernel().expect("checked by matmul_nt");
        Ok((CpuStorage::F32(run(kernel, &xs[x0..x1], &ws[w0..w1], m, n, k)), Shape::from((m, n))))
    }
}

/// Computes `yᵀ` block by block on all workers (each block owns its slice of `yᵀ`, so
/// the hand-out needs no unsafe code), then transposes it into `y [m, n]`.
fn run(kernel: Kernel, x: &[f32], w: &[f32], m: usize, n: usize, k: usize) -> Vec<f32> {
    let mut yt = vec![0f32; n * m];
    let blocks: Vec<Mutex<&mut [f32]>> = yt.chunks_mut(BLOCK * m).map(Mutex::new).collect();
    crate::pool::for_each_block(blocks.len(), |b| {
        let start = b * BLOCK;
        let rows = BLOCK.min(n - start);
        kernel(x, &w[start * k..(start + rows) * k], k, &mut blocks[b].lock());
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
type Kernel = fn(x: &[f32], w: &[f32], k: usize, yt: &mut [f32]);

/// The kernel for this CPU: x86-64 with AVX-512 or AVX2+FMA. Elsewhere Candle's gemm
/// does the work.
fn kernel() -> Option<Kernel> {
    #[cfg(target_arch = "x86_64")]
    {
        x86::kernel()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        None
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::Kernel;
    use std::arch::x86_64::*;

    pub(super) fn kernel() -> Option<Kernel> {
        let avx2 = is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma");
        if avx2 && is_x86_feature_detected!("avx512f") {
            return Some(|x, w, k, yt| {
                // SAFETY: the CPU has AVX-512F, AVX2 and FMA (checked above).
                unsafe { block_avx512(x, w, k, yt) }
            });
        }
        if avx2 {
            return Some(|x, w, k, yt| {
                // SAFETY: the CPU has AVX2 and FMA (checked above).
                unsafe { block_avx2(x, w, k, yt) }
            });
        }
        None
    }

    #[target_feature(enable = "avx2,fma")]
    fn sum256(v: __m256) -> f32 {
        let h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        let h = _mm_add_ps(h, _mm_movehl_ps(h, h));
        _mm_cvtss_f32(_mm_add_ss(h, _mm_shuffle_ps(h, h, 1)))
    }

    #[target_feature(enable = "avx512f,avx2,fma")]
    fn sum512(v: __m512) -> f32 {
        sum256(_mm256_add_ps(
            _mm512_castps512_ps256(v),
            _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)),
        ))
    }

    /// One block of weight rows (`yt [w rows, x rows] = w · xᵀ`), in tiles of `$c` weight
    /// rows × `$r` x rows whose accumulators stay in registers. A macro rather than a
    /// generic function so that every intrinsic sits in a function that enables it
    /// (otherwise they are not inlined and the vectors go through memory).
    macro_rules! block {
        ($name:ident, $features:literal, $v:ty, $lanes:literal, $zero:ident, $load:ident, $fma:ident, $sum:ident, $r:literal, $c:literal) => {
            #[target_feature(enable = $features)]
            fn $name(x: &[f32], w: &[f32], k: usize, yt: &mut [f32]) {
                /// Dot products of rows `r0..r0+R` of `x` with rows `c0..c0+C` of `w`,
                /// `R` ≤ `$r` and `C` ≤ `$c`, into `yt`.
                #[target_feature(enable = $features)]
                #[inline]
                fn tile<const R: usize, const C: usize>(
                    x: &[f32],
                    w: &[f32],
                    k: usize,
                    m: usize,
                    r0: usize,
                    c0: usize,
                    yt: &mut [f32],
                ) {
                    let body = k - k % $lanes;
                    let (x, w) = (&x[r0 * k..(r0 + R) * k], &w[c0 * k..(c0 + C) * k]);
                    let mut acc: [[$v; C]; R] = [[$zero(); C]; R];
                    let mut i = 0;
                    while i < body {
                        let mut xv: [$v; R] = [$zero(); R];
                        for r in 0..R {
                            let s = &x[r * k + i..r * k + i + $lanes];
                            // SAFETY: `s` holds `$lanes` floats.
                            xv[r] = unsafe { $load(s.as_ptr()) };
                        }
                        for c in 0..C {
                            let s = &w[c * k + i..c * k + i + $lanes];
                            // SAFETY: as above.
                            let wv = unsafe { $load(s.as_ptr()) };
                            for r in 0..R {
                                acc[r][c] = $fma(xv[r], wv, acc[r][c]);
                            }
                        }
                        i += $lanes;
                    }
                    for c in 0..C {
                        for r in 0..R {
                            let mut tail = 0.0;
                            for j in body..k {
                                tail += x[r * k + j] * w[c * k + j];
                            }
                            yt[(c0 + c) * m + r0 + r] = $sum(acc[r][c]) + tail;
                        }
                    }
                }

                let (m, n) = (x.len() / k, w.len() / k);
                let mut c0 = 0;
                while c0 < n {
                    if n - c0 >= $c {
                        let mut r0 = 0;
                        while r0 + $r <= m {
                            tile::<$r, $c>(x, w, k, m, r0, c0, yt);
                            r0 += $r;
                        }
                        while r0 < m {
                            tile::<1, $c>(x, w, k, m, r0, c0, yt);
                            r0 += 1;
                        }
                        c0 += $c;
                    } else {
                        for r0 in 0..m {
                            tile::<1, 1>(x, w, k, m, r0, c0, yt);
                        }
                        c0 += 1;
                    }
                }
            }
        };
    }

    block!(
        block_avx512,
        "avx512f,avx2,fma",
        __m512,
        16,
        _mm512_setzero_ps,
        _mm512_loadu_ps,
        _mm512_fmadd_ps,
        sum512,
        4,
        4
    );
    block!(block_avx2, "avx2,fma", __m256, 8, _mm256_setzero_ps, _mm256_loadu_ps, _mm256_fmadd_ps, sum256, 4, 2);

    #[cfg(test)]
    mod tests {
        /// The AVX2 kernel, where this CPU would otherwise take the AVX-512 one.
        #[test]
        fn avx2_matches_a_plain_sum() {
            if !(is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")) {
                return;
            }
            let (m, n, k) = (7, 9, 37);
            let x: Vec<f32> = (0..m * k).map(|i| ((i * 7919) % 97) as f32 / 97.0 - 0.5).collect();
            let w: Vec<f32> = (0..n * k).map(|i| ((i * 104729) % 89) as f32 / 89.0 - 0.5).collect();
            let mut yt = vec![0f32; n * m];
            // SAFETY: AVX2 and FMA checked above.
            unsafe { super::block_avx2(&x, &w, k, &mut yt) };
            for c in 0..n {
                for r in 0..m {
                    let want: f32 = (0..k).map(|j| x[r * k + j] * w[c * k + j]).sum();
                    assert!((yt[c * m + r] - want).abs() < 1e-4, "{r},{c}");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_candle_matmul_for_every_shape_edge() {
        let dev = Device::Cpu;
        for (m, n, k) in [(1, 1, 1), (1, 37, 19), (5, 33, 16), (20, 512, 512), (7, 18, 40), (64, 70, 130), (65, 9, 8)] {
            let x = Tensor::randn(0f32, 1.0, (m, k), &dev).unwrap();
            let w = Tensor::randn(0f32, 1.0, (n, k), &dev).unwrap();
            let want = x.matmul(&w.t().unwrap()).unwrap();
            let got = matmul_nt(&x, &w).unwrap();
            let diff = (got - want).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
            assert!(diff < 1e-4 * (k as f32).sqrt(), "{m}x{n}x{k}: {diff}");
        }
    }

    #[test]
    fn keeps_leading_dimensions() {
        let x = Tensor::ones((2, 3, 4), candle_core::DType::F32, &Device::Cpu).unwrap();
        let w = Tensor::ones((5, 4), candle_core::DType::F32, &Device::Cpu).unwrap();
        let y = matmul_nt(&x, &w).unwrap();
        assert_eq!(y.dims(), &[2, 3, 5]);
        assert_eq!(y.flatten_all().unwrap().to_vec1::<f32>().unwrap(), vec![4.0; 30]);
    }
}

//! The search kernels for x86-64: AVX-512 and AVX2+FMA from one macro, chosen at run time.

use super::Kernels;
use half::f16;
use std::arch::x86_64::*;

/// Every CPU with AVX2 and FMA also has F16C (it came first), so requiring it costs none
/// of them the kernels.
pub(super) fn kernels() -> Option<Kernels> {
    let avx2 = is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") && is_x86_feature_detected!("f16c");
    if avx2 && is_x86_feature_detected!("avx512f") {
        return Some(Kernels {
            // SAFETY (all three): the CPU has AVX-512F, AVX2, FMA and F16C (checked above).
            f32: |x, w, k, yt| unsafe { block_avx512(x, w, k, yt) },
            f16: |x, w, k, yt| unsafe { block_avx512_f16(x, w, k, yt) },
            int8: |x, w, k, yt| unsafe { block_avx512_int8(x, w, k, yt) },
        });
    }
    if avx2 {
        return Some(Kernels {
            // SAFETY (all three): the CPU has AVX2, FMA and F16C (checked above).
            f32: |x, w, k, yt| unsafe { block_avx2(x, w, k, yt) },
            f16: |x, w, k, yt| unsafe { block_avx2_f16(x, w, k, yt) },
            int8: |x, w, k, yt| unsafe { block_avx2_int8(x, w, k, yt) },
        });
    }
    None
}

/// 16 int8 weights at `p`, widened to f32.
///
/// # Safety
/// `p` points to 16 readable bytes.
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn load_int8_512(p: *const i8) -> __m512 {
    // SAFETY: 16 readable bytes (the caller's contract); the features are enabled.
    unsafe { _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(p.cast()))) }
}

/// 8 int8 weights at `p`, widened to f32.
///
/// # Safety
/// `p` points to 8 readable bytes.
#[target_feature(enable = "avx2,fma")]
unsafe fn load_int8_256(p: *const i8) -> __m256 {
    // SAFETY: 8 readable bytes (the caller's contract); the features are enabled.
    unsafe { _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(p.cast()))) }
}

/// 16 f16 weights at `p`, widened to f32.
///
/// # Safety
/// `p` points to 16 readable f16 values.
#[target_feature(enable = "avx512f,avx2,fma,f16c")]
unsafe fn load_f16_512(p: *const f16) -> __m512 {
    // SAFETY: 32 readable bytes (the caller's contract); the features are enabled.
    unsafe { _mm512_cvtph_ps(_mm256_loadu_si256(p.cast())) }
}

/// 8 f16 weights at `p`, widened to f32.
///
/// # Safety
/// `p` points to 8 readable f16 values.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn load_f16_256(p: *const f16) -> __m256 {
    // SAFETY: 16 readable bytes (the caller's contract); the features are enabled.
    unsafe { _mm256_cvtph_ps(_mm_loadu_si128(p.cast())) }
}

#[target_feature(enable = "avx2,fma")]
fn sum256(v: __m256) -> f32 {
    let h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    let h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    _mm_cvtss_f32(_mm_add_ss(h, _mm_shuffle_ps(h, h, 1)))
}

#[target_feature(enable = "avx512f,avx2,fma")]
fn sum512(v: __m512) -> f32 {
    sum256(_mm256_add_ps(_mm512_castps512_ps256(v), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1))))
}

/// One block of weight rows (`yt [w rows, x rows] = w · xᵀ`), in tiles of `$c` weight
/// rows × `$r` x rows whose accumulators stay in registers. A macro rather than a
/// generic function so that every intrinsic sits in a function that enables it
/// (otherwise they are not inlined and the vectors go through memory).
macro_rules! block {
    ($name:ident, $features:literal, $w:ty, $v:ty, $lanes:literal, $zero:ident, $load:ident, $wload:ident, $fma:ident, $sum:ident, $r:literal, $c:literal) => {
        #[target_feature(enable = $features)]
        fn $name(x: &[f32], w: &[$w], k: usize, yt: &mut [f32]) {
            /// Dot products of rows `r0..r0+R` of `x` with rows `c0..c0+C` of `w`,
            /// `R` ≤ `$r` and `C` ≤ `$c`, into `yt`.
            #[target_feature(enable = $features)]
            #[inline]
            fn tile<const R: usize, const C: usize>(
                x: &[f32],
                w: &[$w],
                k: usize,
                m: usize,
                r0: usize,
                c0: usize,
                yt: &mut [f32],
            ) {
                let body = k - k % $lanes;
                let (x, w) = (&x[r0 * k..(r0 + R) * k], &w[c0 * k..(c0 + C) * k]);
                // Row starts as pointers: slicing every load costs a bounds check and an
                // index computation per vector, more than the arithmetic (measured: the
                // loop ran at a third of the FMA rate).
                let xp: [*const f32; R] = std::array::from_fn(|r| x[r * k..].as_ptr());
                let wp: [*const $w; C] = std::array::from_fn(|c| w[c * k..].as_ptr());
                let mut acc: [[$v; C]; R] = [[$zero(); C]; R];
                let mut i = 0;
                while i < body {
                    let mut xv: [$v; R] = [$zero(); R];
                    for r in 0..R {
                        // SAFETY: row r holds k ≥ i + $lanes floats.
                        xv[r] = unsafe { $load(xp[r].add(i)) };
                    }
                    for c in 0..C {
                        // SAFETY: row c holds k ≥ i + $lanes weights.
                        let wv = unsafe { $wload(wp[c].add(i)) };
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
                            tail += x[r * k + j] * f32::from(w[c * k + j]);
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
    f32,
    __m512,
    16,
    _mm512_setzero_ps,
    _mm512_loadu_ps,
    _mm512_loadu_ps,
    _mm512_fmadd_ps,
    sum512,
    4,
    4
);
block!(
    block_avx512_f16,
    "avx512f,avx2,fma,f16c",
    f16,
    __m512,
    16,
    _mm512_setzero_ps,
    _mm512_loadu_ps,
    load_f16_512,
    _mm512_fmadd_ps,
    sum512,
    4,
    4
);
block!(
    block_avx512_int8,
    "avx512f,avx2,fma",
    i8,
    __m512,
    16,
    _mm512_setzero_ps,
    _mm512_loadu_ps,
    load_int8_512,
    _mm512_fmadd_ps,
    sum512,
    4,
    4
);
block!(
    block_avx2,
    "avx2,fma",
    f32,
    __m256,
    8,
    _mm256_setzero_ps,
    _mm256_loadu_ps,
    _mm256_loadu_ps,
    _mm256_fmadd_ps,
    sum256,
    4,
    2
);
block!(
    block_avx2_f16,
    "avx2,fma,f16c",
    f16,
    __m256,
    8,
    _mm256_setzero_ps,
    _mm256_loadu_ps,
    load_f16_256,
    _mm256_fmadd_ps,
    sum256,
    4,
    2
);
block!(
    block_avx2_int8,
    "avx2,fma",
    i8,
    __m256,
    8,
    _mm256_setzero_ps,
    _mm256_loadu_ps,
    load_int8_256,
    _mm256_fmadd_ps,
    sum256,
    4,
    2
);

#[cfg(test)]
mod tests {
    /// The AVX2 kernels (f32, int8, f16), where this CPU would otherwise take the AVX-512 ones.
    #[test]
    fn avx2_matches_a_plain_sum() {
        if super::kernels().is_none() {
            return;
        }
        let (m, n, k) = (7, 9, 37);
        let x: Vec<f32> = (0..m * k).map(|i| ((i * 7919) % 97) as f32 / 97.0 - 0.5).collect();
        let w: Vec<f32> = (0..n * k).map(|i| ((i * 104729) % 89) as f32 / 89.0 - 0.5).collect();
        let w8: Vec<i8> = (0..n * k).map(|i| ((i * 104729) % 255) as i16 as i8).collect();
        let w16: Vec<half::f16> = w.iter().map(|&v| half::f16::from_f32(v)).collect();
        let (mut yt, mut yt8, mut yt16) = (vec![0f32; n * m], vec![0f32; n * m], vec![0f32; n * m]);
        // SAFETY: AVX2, FMA and F16C checked above.
        unsafe { super::block_avx2(&x, &w, k, &mut yt) };
        unsafe { super::block_avx2_int8(&x, &w8, k, &mut yt8) };
        unsafe { super::block_avx2_f16(&x, &w16, k, &mut yt16) };
        for c in 0..n {
            for r in 0..m {
                let want: f32 = (0..k).map(|j| x[r * k + j] * w[c * k + j]).sum();
                assert!((yt[c * m + r] - want).abs() < 1e-4, "{r},{c}");
                let want: f32 = (0..k).map(|j| x[r * k + j] * f32::from(w8[c * k + j])).sum();
                assert!((yt8[c * m + r] - want).abs() < 1e-2, "int8 {r},{c}");
                let want: f32 = (0..k).map(|j| x[r * k + j] * f32::from(w16[c * k + j])).sum();
                assert!((yt16[c * m + r] - want).abs() < 1e-4, "f16 {r},{c}");
            }
        }
    }
}

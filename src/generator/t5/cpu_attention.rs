//! Attention without a backward pass on the CPU, in plain loops. A search step attends
//! with one row per beam over at most M+1 cached positions (self-attention) or a
//! query's dozen encoder states (cross-attention): Candle's batched matmul costs more
//! there in set-up than in arithmetic, and candle-core 0.11 counts the physical cores
//! on every CPU matmul, reading /proc/cpuinfo each time (8% of a search's time on 2
//! cores, and /proc/cpuinfo grows with the cores).

use super::Kv;
use crate::kernels::lanes::sum_pairs;
use crate::Result;
use candle_core::{DType, Device, Storage, Tensor};

/// Most multiply-adds (of q kᵀ) done here, on the calling thread: a query's search step
/// at t5-small's sizes and 20 beams (51k for self-attention, 10k per query token for
/// cross-attention) is below it up to 51 query tokens; batches of queries and training's
/// beams go to Candle's threaded matmul, where counting the cores costs little next to
/// the arithmetic.
const MAX_WORK: usize = 1 << 19;

/// softmax(q kᵀ + bias) v, for `q` [B, T, H·d] as the projection gives it, keys and
/// values [B, H, S, d] and `bias` broadcastable to [B, H, T, S]: [B, T, H·d]. None for
/// another device or dtype, or more work than `MAX_WORK`, which Candle's ops handle.
pub(super) fn attend(q: &Tensor, kv: &Kv, bias: &Tensor) -> Result<Option<Tensor>> {
    let all_f32 = [q, &kv.k, &kv.v, bias].iter().all(|x| x.dtype() == DType::F32);
    if !matches!(q.device(), Device::Cpu) || !all_f32 {
        return Ok(None);
    }
    let (b, t, hd) = q.dims3()?;
    let (_, h, s, d) = kv.k.dims4()?;
    if b * h * t * s * d > MAX_WORK {
        return Ok(None);
    }
    let bias = bias.broadcast_as((b, h, t, s))?.contiguous()?;
    let (q, k, v) = (q.contiguous()?, kv.k.contiguous()?, kv.v.contiguous()?);
    let guards = [&q, &k, &v, &bias].map(|x| x.storage_and_layout());
    let mut slices = Vec::with_capacity(4);
    for (storage, layout) in &guards {
        let Storage::Cpu(cpu) = &**storage else { return Ok(None) };
        slices.push(&cpu.as_slice::<f32>()?[layout.start_offset()..][..layout.shape().elem_count()]);
    }
    let [qd, kd, vd, bd] = [slices[0], slices[1], slices[2], slices[3]];
    let mut out = vec![0f32; b * t * hd];
    let mut w = vec![0f32; s];
    for bi in 0..b {
        for hi in 0..h {
            let kb = &kd[(bi * h + hi) * s * d..][..s * d];
            let vb = &vd[(bi * h + hi) * s * d..][..s * d];
            for ti in 0..t {
                let qr = &qd[(bi * t + ti) * hd + hi * d..][..d];
                let br = &bd[((bi * h + hi) * t + ti) * s..][..s];
                for ((wi, kr), bias) in w.iter_mut().zip(kb.chunks_exact(d)).zip(br) {
                    *wi = sum_pairs(qr, kr, |x, y| x * y) + bias;
                }
                let max = w.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let mut sum = 0.0;
                for wi in w.iter_mut() {
                    *wi = (*wi - max).exp();
                    sum += *wi;
                }
                let o = &mut out[(bi * t + ti) * hd + hi * d..][..d];
                for (wi, vr) in w.iter().zip(vb.chunks_exact(d)) {
                    let a = wi / sum;
                    for (oj, vj) in o.iter_mut().zip(vr) {
                        *oj += a * vj;
                    }
                }
            }
        }
    }
    Ok(Some(Tensor::from_vec(out, (b, t, hd), q.device())?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    /// The same attention through Candle's ops.
    fn reference(q: &Tensor, kv: &Kv, bias: &Tensor) -> Tensor {
        let (b, t, hd) = q.dims3().unwrap();
        let (_, h, _, d) = kv.k.dims4().unwrap();
        let q = q.reshape((b, t, h, d)).unwrap().transpose(1, 2).unwrap().contiguous().unwrap();
        let scores = q.matmul(&kv.k.t().unwrap()).unwrap().broadcast_add(bias).unwrap();
        let w = candle_nn::ops::softmax_last_dim(&scores).unwrap();
        w.matmul(&kv.v).unwrap().transpose(1, 2).unwrap().reshape((b, t, hd)).unwrap()
    }

    #[test]
    fn matches_candle_for_beams_shared_sources_and_masks() {
        let mut rng = Rng::new(9);
        let mut randn = |dims: &[usize]| {
            let n = dims.iter().product();
            Tensor::from_vec(rng.normals(n, 1.0), dims, &Device::Cpu).unwrap()
        };
        // (B, T, H, S, d, bias shape): a self-attention step of 3 beams with a position
        // bias; a query's 5 rows over its padded encoder states; a causal training batch;
        // 600 beams, more than MAX_WORK: left to Candle.
        let cases: [(usize, usize, usize, usize, usize, Vec<usize>); 4] = [
            (3, 1, 2, 4, 11, vec![1, 2, 1, 4]),
            (1, 5, 2, 6, 8, vec![1, 1, 1, 6]),
            (2, 3, 3, 3, 16, vec![2, 3, 3, 3]),
            (600, 1, 4, 8, 32, vec![1, 4, 1, 8]),
        ];
        for (b, t, h, s, d, bias_dims) in cases {
            let q = randn(&[b, t, h * d]);
            let kv = Kv { k: randn(&[b, h, s, d]), v: randn(&[b, h, s, d]) };
            let mut bias = randn(&bias_dims);
            if bias_dims[3] == 6 {
                // Padding: the last two source positions hidden, as padding_bias does.
                let mask = Tensor::from_vec(vec![0f32, 0., 0., 0., -1e9, -1e9], (1, 1, 1, 6), &Device::Cpu).unwrap();
                bias = (bias + mask).unwrap();
            }
            let Some(got) = attend(&q, &kv, &bias).unwrap() else {
                assert!(b * h * t * s * d > MAX_WORK, "B {b}: small CPU f32 work left to Candle");
                continue;
            };
            let want = reference(&q, &kv, &bias);
            let diff = (got - want).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
            assert!(diff < 1e-5, "B {b} T {t} H {h} S {s} d {d}: differs by {diff}");
        }
    }
}

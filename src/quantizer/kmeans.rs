//! k-means for codebook initialisation: distances by matmul on the model's device,
//! centroid updates on the host (n x d additions, cheap next to the matmul).

use crate::kernels::lanes::sum_pairs;
use crate::rng::Rng;
use crate::Result;
use candle_core::{Device, Tensor, D};

/// Index of the nearest row of `centroids` [k, d] for every row of `x` [n, d].
pub(crate) fn nearest(x: &Tensor, centroids: &Tensor) -> Result<Tensor> {
    // argmin ||x - c||^2 = argmin (||c||^2 - 2 x.c), in row blocks so that the [rows, k]
    // score matrix stays small (k-means scores every training row against N centroids).
    let c_norm = centroids.sqr()?.sum_keepdim(1)?.t()?; // [1, k]
    let (n, k) = (x.dim(0)?, centroids.dim(0)?);
    let block = (SCORE_BLOCK / k.max(1)).max(1);
    let ct = centroids.t()?;
    if n <= block {
        return Ok(x.matmul(&ct)?.affine(-2.0, 0.0)?.broadcast_add(&c_norm)?.argmin(D::Minus1)?);
    }
    let parts = (0..n)
        .step_by(block)
        .map(|start| {
            let rows = x.narrow(0, start, block.min(n - start))?;
            Ok(rows.matmul(&ct)?.affine(-2.0, 0.0)?.broadcast_add(&c_norm)?.argmin(D::Minus1)?)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Tensor::cat(&parts, 0)?)
}

/// Most scores `nearest` holds at once (64 MiB of f32).
const SCORE_BLOCK: usize = 1 << 24;

/// Lloyd's algorithm from a k-means++ start (`data` row-major, `d` wide). Clusters that
/// empty out are re-seeded with random rows. Returns [k, d] on `device`.
pub(crate) fn kmeans(
    data: &[f32],
    d: usize,
    k: usize,
    iterations: usize,
    rng: &mut Rng,
    device: &Device,
) -> Result<Tensor> {
    let n = data.len() / d;
    let mut centroids = plus_plus(data, d, k, rng);
    let x = Tensor::from_slice(data, (n, d), device)?;
    for _ in 0..iterations {
        let c = Tensor::from_slice(&centroids, (k, d), device)?;
        let assign = nearest(&x, &c)?.to_vec1::<u32>()?;
        let mut sums = vec![0f64; k * d];
        let mut counts = vec![0usize; k];
        for (row, &a) in assign.iter().enumerate() {
            counts[a as usize] += 1;
            for (s, v) in sums[a as usize * d..][..d].iter_mut().zip(&data[row * d..][..d]) {
                *s += *v as f64;
            }
        }
        for j in 0..k {
            let dst = &mut centroids[j * d..][..d];
            if counts[j] == 0 {
                dst.copy_from_slice(&data[rng.below(n) * d..][..d]);
            } else {
                for (c, s) in dst.iter_mut().zip(&sums[j * d..][..d]) {
                    *c = (*s / counts[j] as f64) as f32;
                }
            }
        }
    }
    Ok(Tensor::from_vec(centroids, (k, d), device)?)
}

/// k-means++ seeding (Arthur and Vassilvitskii, 2007): each next centre is a row drawn
/// with probability proportional to its squared distance from the nearest centre so far.
/// Random rows as centres leave small, distant clusters without one (the test below);
/// this costs k passes over the rows on the host, 0.6 s for 16k rows of 512 and k 256.
fn plus_plus(data: &[f32], d: usize, k: usize, rng: &mut Rng) -> Vec<f32> {
    let n = data.len() / d;
    let mut centroids = Vec::with_capacity(k * d);
    let mut nearest = vec![f32::INFINITY; n];
    let mut next = rng.below(n);
    for _ in 0..k {
        let c = &data[next * d..][..d];
        centroids.extend_from_slice(c);
        for (row, best) in data.chunks_exact(d).zip(nearest.iter_mut()) {
            *best = best.min(sum_pairs(row, c, |x, y| (x - y) * (x - y)));
        }
        let total: f64 = nearest.iter().map(|&v| v as f64).sum();
        // Every row already a centre (fewer distinct rows than k): any row will do.
        next = if total > 0.0 {
            let mut target = rng.uniform() as f64 * total;
            nearest.iter().position(|&v| {
                target -= v as f64;
                target < 0.0
            })
        } else {
            None
        }
        .unwrap_or_else(|| rng.below(n));
    }
    centroids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_well_separated_clusters() {
        let mut rng = Rng::new(3);
        let centres = [[10.0f32, 0.0], [0.0, 10.0], [-10.0, -10.0]];
        let data: Vec<f32> = (0..300)
            .flat_map(|i| {
                let c = centres[i % 3];
                [c[0] + rng.normal() * 0.1, c[1] + rng.normal() * 0.1]
            })
            .collect();
        let c = kmeans(&data, 2, 3, 10, &mut Rng::new(5), &Device::Cpu).unwrap().to_vec2::<f32>().unwrap();
        for centre in centres {
            let best = c.iter().map(|r| (r[0] - centre[0]).abs() + (r[1] - centre[1]).abs()).fold(f32::MAX, f32::min);
            assert!(best < 0.2, "{centre:?} not found in {c:?}");
        }
    }

    #[test]
    fn small_distant_clusters_get_a_centre_each() {
        // 97% of the rows in one blob, three clusters of 3 rows far from it: random rows
        // as the start would put nearly every centre in the blob, and Lloyd's steps never
        // move one out to a cluster that no centre is nearest to.
        let mut rng = Rng::new(11);
        let far = [[50.0f32, 0.0], [0.0, 50.0], [-50.0, -50.0]];
        let mut data: Vec<f32> = (0..291).flat_map(|_| [rng.normal(), rng.normal()]).collect();
        for c in far {
            for _ in 0..3 {
                data.extend([c[0] + rng.normal() * 0.1, c[1] + rng.normal() * 0.1]);
            }
        }
        for seed in 0..20 {
            let c = kmeans(&data, 2, 4, 10, &mut Rng::new(seed), &Device::Cpu).unwrap().to_vec2::<f32>().unwrap();
            for centre in far {
                let best =
                    c.iter().map(|r| (r[0] - centre[0]).abs() + (r[1] - centre[1]).abs()).fold(f32::MAX, f32::min);
                assert!(best < 1.0, "seed {seed}: {centre:?} not found in {c:?}");
            }
        }
    }
}

//! Near-duplicate photos: groups of images linked by pairs whose vectors are at least a
//! given similarity apart, found without comparing every pair. Random-hyperplane hashing
//! (two vectors at angle θ fall on the same side of a random hyperplane with probability
//! 1 - θ/π) puts each image in one bucket per table; only images sharing a bucket in
//! some table are compared, by the dot product. The table count is chosen from the
//! threshold so that a pair exactly at it is found with probability 0.99, and more
//! similar pairs more surely (docs/results.md, "Near-duplicates").

use crate::records::{dot, Records};
use crate::rng::Rng;

/// Sign bits per table: 65,536 buckets, so that a bucket holds few images (12 bits took
/// 3-4 times as long at the same recall: docs/results.md, "Near-duplicates").
const BITS: usize = 16;
/// The most tables: thresholds below about 0.89 would need more for the target recall.
const MAX_TABLES: usize = 64;
/// The probability of finding a pair exactly at the threshold.
const TARGET_RECALL: f64 = 0.99;
/// Rows projected per kernel call.
const BLOCK: usize = 4096;

/// The tables that find a pair at similarity `s` with probability `TARGET_RECALL`.
pub(crate) fn tables_for(s: f32) -> usize {
    let same_side = 1.0 - (s.clamp(-1.0, 1.0) as f64).acos() / std::f64::consts::PI;
    let per_table = same_side.powi(BITS as i32);
    let tables = ((1.0 - TARGET_RECALL).ln() / (1.0 - per_table).ln()).ceil();
    (tables as usize).clamp(1, MAX_TABLES)
}

/// The groups of images linked by pairs at least `min_similarity` similar (each group
/// at least two ids, ascending; the groups by their first id). The hyperplanes come
/// from `seed`, so an answer is repeatable.
pub(crate) fn groups(records: &Records, min_similarity: f32, seed: u64) -> Vec<Vec<u64>> {
    let n = records.len();
    let tables = tables_for(min_similarity);
    let keys = bucket_keys(records, tables, seed);
    let mut sets = Sets::new(n);
    let mut order: Vec<u32> = (0..n as u32).collect();
    for t in 0..tables {
        let key = |r: u32| keys[r as usize * tables + t];
        order.sort_unstable_by_key(|&r| key(r));
        for bucket in order.chunk_by(|&a, &b| key(a) == key(b)) {
            for (i, &a) in bucket.iter().enumerate() {
                for &b in &bucket[i + 1..] {
                    // A pair already linked (through this table or an earlier one) is
                    // not compared again.
                    if sets.find(a) != sets.find(b)
                        && dot(&records.vector(a as usize), &records.vector(b as usize)) >= min_similarity
                    {
                        sets.union(a, b);
                    }
                }
            }
        }
    }
    sets.groups(|r| records.ids[r])
}

/// Each image's bucket in each table (`tables` keys per row): the signs of its vector's
/// projections on `BITS` random hyperplanes per table.
fn bucket_keys(records: &Records, tables: usize, seed: u64) -> Vec<u16> {
    let (n, dim) = (records.len(), records.dim);
    let planes = Rng::new(seed).normals(tables * BITS * dim, 1.0);
    let mut keys = vec![0u16; n * tables];
    for start in (0..n).step_by(BLOCK) {
        let rows = BLOCK.min(n - start);
        // [tables x BITS, rows]: plane p's projection of row r at p * rows + r.
        let proj = records.vectors.scores(&planes, tables * BITS, start..start + rows);
        for r in 0..rows {
            for t in 0..tables {
                let bits = (0..BITS).filter(|b| proj[(t * BITS + b) * rows + r] > 0.0);
                keys[(start + r) * tables + t] = bits.fold(0, |key, b| key | 1 << b);
            }
        }
    }
    keys
}

/// Disjoint sets of rows (union-find with path halving and union by size).
struct Sets {
    parent: Vec<u32>,
    size: Vec<u32>,
}

impl Sets {
    fn new(n: usize) -> Self {
        Sets { parent: (0..n as u32).collect(), size: vec![1; n] }
    }

    fn find(&mut self, mut r: u32) -> u32 {
        while self.parent[r as usize] != r {
            let grand = self.parent[self.parent[r as usize] as usize];
            self.parent[r as usize] = grand;
            r = grand;
        }
        r
    }

    fn union(&mut self, a: u32, b: u32) {
        let (mut a, mut b) = (self.find(a), self.find(b));
        if self.size[a as usize] < self.size[b as usize] {
            std::mem::swap(&mut a, &mut b);
        }
        self.parent[b as usize] = a;
        self.size[a as usize] += self.size[b as usize];
    }

    /// The sets of two or more, as ids ascending, by their first id.
    fn groups(mut self, id: impl Fn(usize) -> u64) -> Vec<Vec<u64>> {
        let mut by_root: std::collections::HashMap<u32, Vec<u64>> = std::collections::HashMap::new();
        for r in 0..self.parent.len() as u32 {
            let root = self.find(r);
            if self.size[root as usize] > 1 {
                by_root.entry(root).or_default().push(id(r as usize));
            }
        }
        let mut groups: Vec<Vec<u64>> = by_root.into_values().collect();
        groups.iter_mut().for_each(|g| g.sort_unstable());
        groups.sort_unstable_by_key(|g| g[0]);
        groups
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{NewCodes, NewImage};

    #[test]
    fn stricter_thresholds_need_fewer_tables() {
        assert!(tables_for(0.99) < tables_for(0.95));
        assert!(tables_for(0.95) < tables_for(0.9));
        assert_eq!(tables_for(0.5), MAX_TABLES);
        assert_eq!(tables_for(1.0), 1);
    }

    /// Planted copies are grouped with their originals, chains join one group, and a
    /// plain pass over every pair agrees.
    #[test]
    fn finds_the_groups_every_pair_would() {
        let (dim, n) = (32, 3000);
        let mut rng = Rng::new(5);
        let unit = |v: Vec<f32>| {
            let norm = dot(&v, &v).sqrt();
            v.into_iter().map(|x| x / norm).collect::<Vec<f32>>()
        };
        let mut vectors: Vec<Vec<f32>> = (0..n).map(|_| unit(rng.normals(dim, 1.0))).collect();
        // Copies of every 100th image, slightly moved; a chain 0 - 1 - 2 of small steps.
        for i in (0..n).step_by(100) {
            let copy = unit(vectors[i].iter().map(|x| x + 0.03 * rng.normal()).collect());
            vectors.push(copy);
        }
        let mut records = Records::new(dim);
        let images: Vec<NewImage> =
            vectors.iter().enumerate().map(|(i, v)| NewImage { id: 7 * i as u64, key: None, vector: v }).collect();
        records.add_images(&images, NewCodes::default()).unwrap();
        let found = groups(&records, 0.95, 1);
        let mut exhaustive = Sets::new(vectors.len());
        for a in 0..vectors.len() {
            for b in a + 1..vectors.len() {
                if dot(&vectors[a], &vectors[b]) >= 0.95 {
                    exhaustive.union(a as u32, b as u32);
                }
            }
        }
        let exhaustive = exhaustive.groups(|r| 7 * r as u64);
        assert_eq!(exhaustive.len(), 30);
        assert_eq!(found, exhaustive);
    }
}

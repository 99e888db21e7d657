//! Voken sequences of the indexed images, unique per image.
//!
//! The tokenizer gives each image M codes; two images may get the same M. Every image
//! therefore carries one more code, its disambiguator: the smallest number in 0..N not
//! yet taken by another image with the same M codes. Sequences are M+1 long, unique, and
//! stable (removing an image frees its disambiguator without renumbering the others).

use crate::{Error, Result};
use std::collections::{BTreeSet, HashMap};

/// How well the vokens of an index use the codebook.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VokenStats {
    /// Fraction of the N codes used at each of the M levels.
    pub usage_per_level: Vec<f32>,
    /// Images whose M codes another image shares (told apart by the disambiguator).
    pub collided_images: usize,
    /// The largest number of images sharing M codes.
    pub largest_collision_group: usize,
}

#[derive(Debug, Clone)]
pub(crate) struct Vokens {
    levels: usize,
    /// Largest disambiguator + 1.
    suffixes: usize,
    /// Row-major, `levels + 1` per image row.
    codes: Vec<u32>,
    taken: HashMap<Box<[u32]>, BTreeSet<u32>>,
}

impl Vokens {
    pub(crate) fn new(levels: usize, suffixes: usize) -> Self {
        Vokens { levels, suffixes, codes: Vec::new(), taken: HashMap::new() }
    }

    pub(crate) fn width(&self) -> usize {
        self.levels + 1
    }

    pub(crate) fn len(&self) -> usize {
        self.codes.len() / self.width()
    }

    pub(crate) fn row(&self, row: usize) -> &[u32] {
        &self.codes[row * self.width()..][..self.width()]
    }

    pub(crate) fn flat(&self) -> &[u32] {
        &self.codes
    }

    /// Whether `n` more images with these M codes would still find free disambiguators.
    pub(crate) fn check_room(&self, prefixes: &[Vec<u32>]) -> Result<()> {
        let mut extra: HashMap<&[u32], usize> = HashMap::new();
        for p in prefixes {
            let n = extra.entry(p).or_default();
            *n += 1;
            let taken = self.taken.get(p.as_slice()).map_or(0, BTreeSet::len);
            if taken + *n > self.suffixes {
                return Err(Error::Limit(format!(
                    "more than {} images share the vokens {p:?}; retrain the tokenizer with a larger N or M",
                    self.suffixes
                )));
            }
        }
        Ok(())
    }

    /// Appends an image with M codes `prefix`; callers checked room first.
    pub(crate) fn push(&mut self, prefix: &[u32]) {
        debug_assert_eq!(prefix.len(), self.levels);
        let taken = self.taken.entry(prefix.into()).or_default();
        let suffix = (0u32..).find(|s| !taken.contains(s)).expect("room was checked");
        taken.insert(suffix);
        self.codes.extend_from_slice(prefix);
        self.codes.push(suffix);
    }

    /// Removes row `row`, moving the last row into its place (as `Records` does).
    pub(crate) fn swap_remove(&mut self, row: usize) {
        let w = self.width();
        let seq = self.row(row).to_vec();
        if let Some(t) = self.taken.get_mut(&seq[..self.levels]) {
            t.remove(&seq[self.levels]);
            if t.is_empty() {
                self.taken.remove(&seq[..self.levels]);
            }
        }
        let last = self.len() - 1;
        if row != last {
            self.codes.copy_within(last * w..(last + 1) * w, row * w);
        }
        self.codes.truncate(last * w);
    }

    /// Stored sequences, checked to be well-formed and unique.
    pub(crate) fn from_stored(levels: usize, suffixes: usize, codebook_size: usize, codes: Vec<u32>) -> std::result::Result<Self, String> {
        let mut v = Vokens::new(levels, suffixes);
        let w = v.width();
        if codes.len() % w != 0 {
            return Err(format!("{} codes do not make rows of {w}", codes.len()));
        }
        for seq in codes.chunks_exact(w) {
            let (prefix, suffix) = seq.split_at(levels);
            if prefix.iter().any(|&c| c as usize >= codebook_size) || suffix[0] as usize >= suffixes {
                return Err(format!("voken sequence {seq:?} is out of range"));
            }
            if !v.taken.entry(prefix.into()).or_default().insert(suffix[0]) {
                return Err(format!("voken sequence {seq:?} appears twice"));
            }
        }
        v.codes = codes;
        Ok(v)
    }

    pub(crate) fn stats(&self, codebook_size: usize) -> VokenStats {
        let sizes = self.taken.values().map(BTreeSet::len);
        let usage_per_level = (0..self.levels)
            .map(|l| {
                let used: BTreeSet<u32> = self.codes.chunks_exact(self.width()).map(|s| s[l]).collect();
                used.len() as f32 / codebook_size as f32
            })
            .collect();
        VokenStats {
            usage_per_level,
            collided_images: sizes.clone().filter(|&n| n > 1).sum(),
            largest_collision_group: sizes.max().unwrap_or(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collisions_get_distinct_suffixes_and_removal_frees_them() {
        let mut v = Vokens::new(2, 3);
        for p in [[1, 2], [1, 2], [3, 4], [1, 2]] {
            v.check_room(&[p.to_vec()]).unwrap();
            v.push(&p);
        }
        assert_eq!(v.row(0), [1, 2, 0]);
        assert_eq!(v.row(1), [1, 2, 1]);
        assert_eq!(v.row(2), [3, 4, 0]);
        assert_eq!(v.row(3), [1, 2, 2]);
        assert_eq!((v.stats(5).collided_images, v.stats(5).largest_collision_group), (3, 3));
        assert!(matches!(v.check_room(&[vec![1, 2]]), Err(Error::Limit(_))));
        v.swap_remove(1);
        assert_eq!(v.row(1), [1, 2, 2], "the last row moved into the hole");
        v.push(&[1, 2]);
        assert_eq!(v.row(3), [1, 2, 1], "the freed suffix is reused");
        let stored = Vokens::from_stored(2, 3, 5, v.flat().to_vec()).unwrap();
        assert_eq!(stored.stats(5), v.stats(5));
        assert_eq!(v.stats(5).usage_per_level, vec![0.4, 0.4]);
        assert!(Vokens::from_stored(2, 3, 5, vec![1, 2, 0, 1, 2, 0]).unwrap_err().contains("twice"));
        assert!(Vokens::from_stored(2, 3, 5, vec![9, 2, 0]).unwrap_err().contains("out of range"));
    }
}

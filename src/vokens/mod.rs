//! Voken sequences of the indexed images, unique per image, and the trie over them.
//!
//! The tokenizer gives each image M codes; two images may get the same M. Every image
//! therefore carries one more code, its disambiguator: the smallest number in 0..N not
//! yet taken by another image with the same M codes. Sequences are M+1 long, unique, and
//! stable (removing an image frees its disambiguator without renumbering the others).
//! In the trie (and the generator) a disambiguator s is the token N + s.

pub(crate) mod trie;

use crate::{Error, Result};
use std::collections::{BTreeSet, HashMap};
use trie::Trie;

/// How well the vokens of an index use the codebook.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VokenStats {
    /// Fraction of the N codes used at each of the M levels.
    pub usage_per_level: Vec<f32>,
    /// Images whose M codes another image shares (told apart by the disambiguator).
    pub collided_images: usize,
    /// The largest number of images sharing M codes: 1 when none collide, 0 without images.
    pub largest_collision_group: usize,
}

#[derive(Debug, Clone)]
pub(crate) struct Vokens {
    voken_len: usize,
    codebook_size: usize,
    /// Row-major, `voken_len + 1` per image row: M codes, then the disambiguator.
    codes: Vec<u32>,
    trie: Trie,
}

impl Vokens {
    pub(crate) fn new(voken_len: usize, codebook_size: usize) -> Self {
        Vokens { voken_len, codebook_size, codes: Vec::new(), trie: Trie::new(voken_len + 1) }
    }

    pub(crate) fn width(&self) -> usize {
        self.voken_len + 1
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

    pub(crate) fn trie(&self) -> &Trie {
        &self.trie
    }

    /// A stored sequence as trie tokens.
    pub(crate) fn local(&self, seq: &[u32]) -> Vec<u32> {
        let mut t = seq.to_vec();
        t[self.voken_len] += self.codebook_size as u32;
        t
    }

    fn taken(&self, prefix: &[u32]) -> &[u32] {
        self.trie.find(prefix).map_or(&[], |n| self.trie.children(n).0)
    }

    /// Whether images with these M codes would all find free disambiguators.
    pub(crate) fn check_room(&self, prefixes: &[Vec<u32>]) -> Result<()> {
        let mut extra: HashMap<&[u32], usize> = HashMap::new();
        for p in prefixes {
            let n = extra.entry(p).or_default();
            *n += 1;
            if self.taken(p).len() + *n > self.codebook_size {
                return Err(Error::Limit(format!(
                    "more than {} images share the vokens {p:?}; retrain the tokenizer with a larger N or M",
                    self.codebook_size
                )));
            }
        }
        Ok(())
    }

    /// Appends image `id` with M codes `prefix`; callers checked room first.
    pub(crate) fn push(&mut self, prefix: &[u32], id: u64) {
        debug_assert_eq!(prefix.len(), self.voken_len);
        let n = self.codebook_size as u32;
        let taken = self.taken(prefix);
        // Taken tokens are sorted: the first gap is the smallest free disambiguator.
        let suffix =
            taken.iter().enumerate().find(|(i, &t)| t - n != *i as u32).map_or(taken.len() as u32, |(i, _)| i as u32);
        self.codes.extend_from_slice(prefix);
        self.codes.push(suffix);
        let seq = self.local(self.row(self.len() - 1));
        self.trie.insert(&seq, id);
    }

    /// Removes row `row`, moving the last row into its place (as `Records` does).
    pub(crate) fn swap_remove(&mut self, row: usize) {
        let w = self.width();
        self.trie.remove(&self.local(self.row(row)));
        let last = self.len() - 1;
        if row != last {
            self.codes.copy_within(last * w..(last + 1) * w, row * w);
        }
        self.codes.truncate(last * w);
    }

    /// Stored sequences of images `ids`, checked to be well-formed and unique.
    pub(crate) fn from_stored(
        voken_len: usize,
        codebook_size: usize,
        codes: Vec<u32>,
        ids: &[u64],
    ) -> std::result::Result<Self, String> {
        let mut v = Vokens::new(voken_len, codebook_size);
        let w = v.width();
        if codes.len() != ids.len() * w {
            return Err(format!("{} codes for {} images of {w} vokens", codes.len(), ids.len()));
        }
        for (seq, &id) in codes.chunks_exact(w).zip(ids) {
            if seq.iter().any(|&c| c as usize >= codebook_size) {
                return Err(format!("voken sequence {seq:?} is out of range"));
            }
            let before = v.trie.len();
            v.trie.insert(&v.local(seq), id);
            if v.trie.len() == before {
                return Err(format!("voken sequence {seq:?} appears twice"));
            }
        }
        v.codes = codes;
        Ok(v)
    }

    pub(crate) fn stats(&self) -> VokenStats {
        let groups = self.trie.last_level_groups();
        let usage_per_level = (0..self.voken_len)
            .map(|l| {
                let used: BTreeSet<u32> = self.codes.chunks_exact(self.width()).map(|s| s[l]).collect();
                used.len() as f32 / self.codebook_size as f32
            })
            .collect();
        VokenStats {
            usage_per_level,
            collided_images: groups.iter().filter(|&&n| n > 1).sum(),
            largest_collision_group: groups.into_iter().max().unwrap_or(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collisions_get_distinct_suffixes_and_removal_frees_them() {
        let mut v = Vokens::new(2, 3);
        for (id, p) in [[1, 2], [1, 2], [0, 1], [1, 2]].into_iter().enumerate() {
            v.check_room(&[p.to_vec()]).unwrap();
            v.push(&p, id as u64);
        }
        assert_eq!(v.row(0), [1, 2, 0]);
        assert_eq!(v.row(1), [1, 2, 1]);
        assert_eq!(v.row(2), [0, 1, 0]);
        assert_eq!(v.row(3), [1, 2, 2]);
        let s = v.stats();
        assert_eq!((s.collided_images, s.largest_collision_group), (3, 3));
        assert!(matches!(v.check_room(&[vec![1, 2]]), Err(Error::Limit(_))));
        v.swap_remove(1);
        assert_eq!(v.row(1), [1, 2, 2], "the last row moved into the hole");
        v.push(&[1, 2], 9);
        assert_eq!(v.row(3), [1, 2, 1], "the freed suffix is reused");
        let ids = [0, 3, 2, 9];
        let stored = Vokens::from_stored(2, 3, v.flat().to_vec(), &ids).unwrap();
        assert_eq!(stored.stats(), v.stats());
        assert_eq!(v.stats().usage_per_level, vec![2.0 / 3.0, 2.0 / 3.0]);
        assert!(Vokens::from_stored(2, 3, vec![1, 2, 0, 1, 2, 0], &[1, 2]).unwrap_err().contains("twice"));
        assert!(Vokens::from_stored(2, 3, vec![9, 2, 0], &[1]).unwrap_err().contains("out of range"));
    }
}

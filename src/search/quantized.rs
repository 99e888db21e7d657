//! The quantiser's codes (`SearchMode::Quantizer`), also the evaluation's no-training
//! reference: the tokenizer's own residual quantisation of the query vector walks the
//! trie, with no generator. Each level keeps the `beam` prefixes whose partial sum of
//! codebook rows is nearest the query's latent; the score of a prefix is minus that
//! squared distance (for a prefix dropped on the way, its distance so far: prefix backoff
//! as in the generator's search). If a trained generator does not beat this on images it
//! never saw, it has learned nothing the tokenizer did not already know.

use crate::quantizer::{Codebooks, Residual};
use crate::vokens::trie::{Prefix, View, ROOT};

/// Up to `beam` M-code prefixes per latent `z` (the trie's depth is M + 1), best first,
/// widened by the dropped ones until they hold `min_images` images.
pub(crate) fn nearest_prefixes(
    trie: View,
    books: &Codebooks,
    z: &[f32],
    beam: usize,
    min_images: usize,
) -> Vec<Prefix> {
    if trie.is_empty() {
        return Vec::new();
    }
    // Each beam keeps its residual (z minus its codebook rows so far); only the children
    // kept get one of their own: a level costs one dot product per child (20 beams × up
    // to N children).
    let mut beams: Vec<(u32, Residual, f32)> = vec![(ROOT, Residual::new(z.to_vec()), 0.0)];
    let mut pruned = Vec::new();
    for level in 0..trie.depth() - 1 {
        // (beam, child node, code, score)
        let mut next: Vec<(usize, u32, u32, f32)> = Vec::new();
        for (b, (node, r, _)) in beams.iter().enumerate() {
            for (code, child) in trie.children(*node, level) {
                next.push((b, child as u32, code, -books.distance(level, r, code)));
            }
        }
        next.sort_by(|a, b| b.3.total_cmp(&a.3));
        if min_images > 0 {
            pruned.extend(next.iter().skip(beam).map(|&(_, node, _, score)| Prefix { node, len: level + 1, score }));
        }
        next.truncate(beam);
        beams = next
            .into_iter()
            .map(|(b, node, code, score)| (node, books.follow(level, &beams[b].1, code), score))
            .collect();
    }
    let kept = beams.into_iter().map(|(node, _, score)| Prefix { node, len: trie.depth() - 1, score }).collect();
    trie.widen(kept, pruned, min_images)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vokens::trie::Trie;

    #[test]
    fn the_nearest_indexed_prefix_comes_first() {
        // Two levels of a 1-d codebook {0, 1, 10}; indexed prefixes (1, 0), (10, 1), (0, 10).
        let books = Codebooks::new(vec![vec![0.0, 1.0, 10.0]; 2], 1);
        let mut t = Trie::new(3);
        t.insert(&[1, 0, 0], 7);
        t.insert(&[2, 1, 0], 8);
        t.insert(&[0, 2, 0], 9);
        let ids = |z: f32| {
            nearest_prefixes((&t).into(), &books, &[z], 3, 0)
                .iter()
                .map(|&p| View::from(&t).images_under(p)[0])
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(11.0), [8, 9, 7]); // 10 + 1 exactly; then 0 + 10; then 1 + 0
        assert_eq!(ids(1.2)[0], 7);
        // A beam of one keeps only the best first level, as a greedy walk would.
        assert_eq!(nearest_prefixes((&t).into(), &books, &[9.5], 1, 0).len(), 1);
    }

    #[test]
    fn thin_prefixes_widen_to_the_nearest_dropped_ones() {
        let books = Codebooks::new(vec![vec![0.0, 1.0, 10.0]; 2], 1);
        let mut t = Trie::new(3);
        t.insert(&[1, 0, 0], 7);
        t.insert(&[2, 1, 0], 8);
        t.insert(&[2, 1, 1], 9);
        t.insert(&[0, 2, 0], 10);
        let ids = |min: usize| {
            let p = nearest_prefixes((&t).into(), &books, &[11.0], 1, min);
            p.iter().flat_map(|&p| View::from(&t).images_under(p)).collect::<Vec<_>>()
        };
        assert_eq!(ids(0), [8, 9]);
        assert_eq!(ids(2), [8, 9], "enough already");
        // Dropped at the first level: 0 (distance 121) and 1 (100): 1 comes back first.
        assert_eq!(ids(3), [8, 9, 7]);
        assert_eq!(ids(100), [8, 9, 7, 10], "every image at most");
    }
}

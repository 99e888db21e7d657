//! The pairs a generator training learns: balanced per image, and an indexing pass's
//! new pairs with learned ones replayed.

use crate::generator::{self, GeneratorTrainConfig, Learned};

/// Each image's pairs (contiguous, `owners` naming their image) cycled up to the median
/// count per image (the upper one); images with more keep theirs. The median, not the
/// largest count, so that one image with many captions does not multiply the epoch.
pub(super) fn balanced(examples: Vec<generator::Example>, owners: &[u64]) -> (Vec<generator::Example>, Vec<u64>) {
    let groups: Vec<&[u64]> = owners.chunk_by(|a, b| a == b).collect();
    let mut counts: Vec<usize> = groups.iter().map(|g| g.len()).collect();
    counts.sort_unstable();
    let target = counts.get(counts.len() / 2).copied().unwrap_or(0);
    let (mut out, mut out_owners) = (Vec::new(), Vec::new());
    let mut start = 0;
    for g in groups {
        let n = g.len().max(target);
        out.extend(examples[start..start + g.len()].iter().cycle().take(n).cloned());
        out_owners.extend(std::iter::repeat_n(g[0], n));
        start += g.len();
    }
    (out, out_owners)
}

/// The number of distinct ids in `owners` (each image's examples are consecutive).
pub(super) fn images_in(owners: &[u64]) -> usize {
    owners.windows(2).filter(|w| w[0] != w[1]).count() + usize::from(!owners.is_empty())
}

/// An indexing pass's pairs: those the base generator has not learned (of images added
/// since, of images removed and added again, texts attached since), and as many learned
/// ones again (at least a batch), drawn at random, replayed so that they are not
/// forgotten. With the fingerprints of every pair now in the index (all learned after
/// the pass) and the number of images with new pairs; `None` when every pair is learned.
pub(super) fn replay_set(
    learned: &Learned,
    examples: Vec<generator::Example>,
    owners: &[u64],
    cfg: &GeneratorTrainConfig,
) -> Option<(Vec<generator::Example>, Vec<u64>, usize)> {
    let (mut fresh, mut old) = (Vec::new(), Vec::new());
    let (mut pairs, mut new_ids) = (Vec::with_capacity(examples.len()), Vec::new());
    for (e, &id) in examples.into_iter().zip(owners) {
        let pair = e.fingerprint(id);
        pairs.push(pair);
        if learned.knows(pair, id) {
            old.push(e);
        } else {
            fresh.push(e);
            new_ids.push(id);
        }
    }
    if fresh.is_empty() {
        return None;
    }
    let new_images = images_in(&new_ids);
    let mut rng = crate::rng::Rng::new(cfg.seed ^ 0x1d3a);
    rng.shuffle(&mut old);
    old.truncate(fresh.len().max(cfg.batch_size));
    fresh.extend(old);
    Some((fresh, pairs, new_images))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn balancing_repeats_the_pairs_of_images_with_fewer() {
        let pair = |text: &str| generator::Example { text: text.into(), vector: None, vokens: vec![0] };
        // Counts 5, 1, 2, 3: the upper median is 3. Image 7 keeps its 5.
        let texts = ["a1", "a2", "a3", "a4", "a5", "b1", "c1", "c2", "d1", "d2", "d3"];
        let owners = [7, 7, 7, 7, 7, 8, 9, 9, 10, 10, 10];
        let (out, owners) = balanced(texts.iter().map(|t| pair(t)).collect(), &owners);
        let texts: Vec<&str> = out.iter().map(|e| e.text.as_str()).collect();
        assert_eq!(texts, ["a1", "a2", "a3", "a4", "a5", "b1", "b1", "b1", "c1", "c2", "c1", "d1", "d2", "d3"]);
        assert_eq!(owners, [7, 7, 7, 7, 7, 8, 8, 8, 9, 9, 9, 10, 10, 10]);
        assert_eq!(balanced(Vec::new(), &[]).0.len(), 0);
    }
}

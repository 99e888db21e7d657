//! Beam search constrained by the trie (paper section 3.3), for a batch of queries at
//! once: the encoder runs once per query, every live beam of every query goes through
//! one decoder forward per step, and the self-attention cache follows the beams.

use super::{Decoding, Encoded, Generator};
use crate::quantizer::{Prior, Residual};
use crate::vokens::trie::{Prefix, View, ROOT};
use crate::Result;

/// A finished beam: the image it reached, its voken sequence (local numbers) and the
/// sum of its voken log-probabilities.
#[derive(Debug, Clone)]
pub(crate) struct Found {
    pub id: u64,
    pub seq: Vec<u32>,
    pub score: f32,
}

struct Beam {
    query: usize,
    node: u32,
    seq: Vec<u32>,
    /// The sum of its code log-probabilities, plus the prior's part where there is one.
    score: f32,
    /// The prior's part of `score`, and the beam's residual under it.
    prior: f32,
    residual: Residual,
    /// Set at the last level.
    id: u64,
}

/// The voken sequences of `search`'s results, per query, best first (L_dis's candidates).
pub(crate) fn sequences(g: &Generator, trie: View, enc: &Encoded, beam: usize) -> Result<Vec<Vec<Vec<u32>>>> {
    Ok(search(g, trie, enc, beam)?.into_iter().map(|f| f.into_iter().map(|x| x.seq).collect()).collect())
}

/// Up to `beam` images per query, best first, for encoded queries `enc` [B, S, D].
pub(crate) fn search(g: &Generator, trie: View, enc: &Encoded, beam: usize) -> Result<Vec<Vec<Found>>> {
    let (out, _) = run(g, trie, enc, beam, trie.depth(), false, None)?;
    Ok(out
        .into_iter()
        .map(|q| q.into_iter().map(|x| Found { id: x.id, seq: x.seq, score: x.score }).collect())
        .collect())
}

/// Up to `beam` M-code prefixes per query (the disambiguator is not generated), best
/// first, scored by the sum of their code log-probabilities. Where the images under
/// them number fewer than `min_images`, the prefixes the beam dropped on its way follow
/// (prefix backoff), best first, until they do; each missing code of a dropped prefix
/// counts as a uniform guess over the vokens, so that a short prefix does not outrank
/// the beam's own on the strength of its few confident codes. With a `prior`, the
/// quantiser's distances join the scores (see [`Prior`]).
pub(crate) fn search_codes(
    g: &Generator,
    trie: View,
    enc: &Encoded,
    beam: usize,
    min_images: usize,
    prior: Option<&Prior>,
) -> Result<Vec<Vec<Prefix>>> {
    let m = trie.depth() - 1;
    let (out, pruned) = run(g, trie, enc, beam, m, min_images > 0, prior)?;
    Ok(out
        .into_iter()
        .zip(pruned)
        .map(|(kept, pruned)| {
            let kept = kept.into_iter().map(|x| Prefix { node: x.node, len: m, score: x.score }).collect();
            trie.widen(kept, pruned, min_images)
        })
        .collect())
}

/// The beams of every query after `depth` steps (at most the trie's depth) and, if
/// `keep_pruned` (and `depth` stops short of the leaves), the inner prefixes dropped
/// on the way, their scores extended to `depth` codes by uniform guesses.
#[allow(clippy::type_complexity)]
fn run(
    g: &Generator,
    trie: View,
    enc: &Encoded,
    beam: usize,
    depth: usize,
    keep_pruned: bool,
    prior: Option<&Prior>,
) -> Result<(Vec<Vec<Beam>>, Vec<Vec<Prefix>>)> {
    let b = enc.states.dim(0)?;
    let mut beams: Vec<Beam> = (0..b)
        .map(|q| {
            let residual = prior.map(|p| p.start(q)).unwrap_or_default();
            Beam { query: q, node: ROOT, seq: Vec::new(), score: 0.0, prior: 0.0, residual, id: 0 }
        })
        .collect();
    let mut pruned: Vec<Vec<Prefix>> = (0..b).map(|_| Vec::new()).collect();
    if trie.is_empty() || depth == 0 {
        return Ok(((0..b).map(|_| Vec::new()).collect(), pruned));
    }
    let mut decoding = Decoding::begin(g, enc)?;
    for level in 0..depth {
        let queries: Vec<usize> = beams.iter().map(|x| x.query).collect();
        let last: Vec<Option<u32>> = beams.iter().map(|x| x.seq.last().copied()).collect();
        let lp = decoding.step(&queries, &last)?;
        let leaf = level + 1 == trie.depth();
        // The prior weighs codes, not the last level's disambiguator.
        let prior = prior.filter(|_| !leaf);
        let mut next: Vec<(usize, Beam)> = Vec::new();
        for (q, dropped_by_q) in pruned.iter_mut().enumerate() {
            let mut cands: Vec<(usize, Beam)> = Vec::new();
            for (r, x) in beams.iter().enumerate().filter(|(_, x)| x.query == q) {
                for (tok, n) in trie.children(x.node, level) {
                    let mut seq = x.seq.clone();
                    seq.push(tok);
                    let (node, id) = if leaf { (ROOT, n) } else { (n as u32, 0) };
                    // The prior's part is replaced, not summed: it is the distance so far.
                    let p = prior.map_or(x.prior, |p| p.score(level, &x.residual, tok));
                    let score = x.score - x.prior + lp[r][tok as usize] + p;
                    let residual = Residual::default();
                    cands.push((r, Beam { query: q, node, seq, score, prior: p, residual, id }));
                }
            }
            cands.sort_by(|a, b| b.1.score.total_cmp(&a.1.score));
            if keep_pruned && !leaf {
                let len = level + 1;
                let guesses = (depth - len) as f32 * -(lp[0].len() as f32).ln();
                let dropped = cands.iter().skip(beam);
                dropped_by_q.extend(dropped.map(|(_, x)| Prefix { node: x.node, len, score: x.score + guesses }));
            }
            cands.truncate(beam);
            if let Some(p) = prior {
                // Only the beams kept need a residual of their own.
                for (r, x) in &mut cands {
                    x.residual = p.follow(level, &beams[*r].residual, *x.seq.last().expect("a code"));
                }
            }
            next.extend(cands);
        }
        if level + 1 == depth {
            let mut out: Vec<Vec<Beam>> = (0..b).map(|_| Vec::new()).collect();
            for (_, x) in next {
                out[x.query].push(x);
            }
            return Ok((out, pruned));
        }
        decoding.follow(&next.iter().map(|(r, _)| *r as u32).collect::<Vec<_>>())?;
        beams = next.into_iter().map(|(_, x)| x).collect();
    }
    unreachable!("the last level returns")
}

//! Beam search constrained by the trie (paper section 3.3), for a batch of queries at
//! once: the encoder runs once per query, every live beam of every query goes through
//! one decoder forward per step, and the self-attention cache follows the beams.

use super::trie::{Trie, ROOT};
use crate::generator::t5::{padding_bias, Cache};
use crate::generator::{Encoded, Generator};
use crate::Result;
use candle_core::{Tensor, D};

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
    score: f32,
    /// Set at the last level.
    id: u64,
}

/// The voken sequences of `search`'s results, per query, best first (L_dis's candidates).
pub(crate) fn sequences(g: &Generator, trie: &Trie, enc: &Encoded, beam: usize) -> Result<Vec<Vec<Vec<u32>>>> {
    Ok(search(g, trie, enc, beam)?.into_iter().map(|f| f.into_iter().map(|x| x.seq).collect()).collect())
}

/// Up to `beam` images per query, best first, for encoded queries `enc` [B, S, D].
pub(crate) fn search(g: &Generator, trie: &Trie, enc: &Encoded, beam: usize) -> Result<Vec<Vec<Found>>> {
    let out = run(g, trie, enc, beam, trie.depth())?;
    Ok(out.into_iter().map(|q| q.into_iter().map(|x| Found { id: x.id, seq: x.seq, score: x.score }).collect()).collect())
}

/// Up to `beam` M-code prefixes per query (the disambiguator is not generated), best
/// first: the trie node of each, whose children are the images sharing those codes, and
/// the sum of its code log-probabilities.
pub(crate) fn search_codes(g: &Generator, trie: &Trie, enc: &Encoded, beam: usize) -> Result<Vec<Vec<(u32, f32)>>> {
    let out = run(g, trie, enc, beam, trie.depth() - 1)?;
    Ok(out.into_iter().map(|q| q.into_iter().map(|x| (x.node, x.score)).collect()).collect())
}

/// The beams of every query after `levels` steps (at most the trie's depth).
fn run(g: &Generator, trie: &Trie, enc: &Encoded, beam: usize, levels: usize) -> Result<Vec<Vec<Beam>>> {
    let b = enc.states.dim(0)?;
    let mut beams: Vec<Beam> = (0..b).map(|q| Beam { query: q, node: ROOT, seq: Vec::new(), score: 0.0, id: 0 }).collect();
    if trie.len() == 0 || levels == 0 {
        return Ok((0..b).map(|_| Vec::new()).collect());
    }
    let all_cross = g.cross_kv(enc)?;
    let all_bias = padding_bias(&enc.mask)?;
    let mut cache = Cache::default();
    let out_rows = g.output_rows(None)?;
    for level in 0..levels {
        // One query: its beams share the encoder states as they are (the decoder folds
        // them); several: each beam row gets its query's.
        let (cross, bias) = if b == 1 {
            (all_cross.clone(), all_bias.clone())
        } else {
            let rows = Tensor::from_vec(beams.iter().map(|x| x.query as u32).collect::<Vec<_>>(), beams.len(), g.device())?;
            let cross = all_cross
                .iter()
                .map(|kv| Ok(crate::generator::t5::Kv { k: kv.k.index_select(&rows, 0)?, v: kv.v.index_select(&rows, 0)? }))
                .collect::<Result<_>>()?;
            (cross, all_bias.index_select(&rows, 0)?)
        };
        let tokens: Vec<u32> = beams
            .iter()
            .map(|x| x.seq.last().map_or(g.config.start_token, |&v| g.token_of_local(v)))
            .collect();
        let hidden = g.decode(&g.embed_step(&tokens)?, &cross, &bias, &mut cache)?;
        let lp = candle_nn::ops::log_softmax(&g.logits(&hidden.squeeze(1)?, &out_rows)?, D::Minus1)?.to_vec2::<f32>()?;
        let leaf = level + 1 == trie.depth();
        let mut next: Vec<(usize, Beam)> = Vec::new();
        for q in 0..b {
            let mut cands: Vec<(usize, Beam)> = Vec::new();
            for (r, x) in beams.iter().enumerate().filter(|(_, x)| x.query == q) {
                let (toks, nexts) = trie.children(x.node);
                for (&tok, &n) in toks.iter().zip(nexts) {
                    let mut seq = x.seq.clone();
                    seq.push(tok);
                    let (node, id) = if leaf { (ROOT, n) } else { (n as u32, 0) };
                    cands.push((r, Beam { query: q, node, seq, score: x.score + lp[r][tok as usize], id }));
                }
            }
            cands.sort_by(|a, b| b.1.score.total_cmp(&a.1.score));
            cands.truncate(beam);
            next.extend(cands);
        }
        if level + 1 == levels {
            let mut out: Vec<Vec<Beam>> = (0..b).map(|_| Vec::new()).collect();
            for (_, x) in next {
                out[x.query].push(x);
            }
            return Ok(out);
        }
        let parents = Tensor::from_vec(next.iter().map(|(r, _)| *r as u32).collect::<Vec<_>>(), next.len(), g.device())?;
        cache.reorder(&parents)?;
        beams = next.into_iter().map(|(_, x)| x).collect();
    }
    unreachable!("the last level returns")
}

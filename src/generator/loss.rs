//! The generator's two losses over a batch of encoded captions: L_gen, the
//! cross-entropy of the right vokens, and L_dis, a softmax over beam candidates.

use super::t5::Kv;
use super::{Encoded, Generator, StepRows};
use crate::Result;
use candle_core::{DType, Tensor, D};

/// The decoder's view of encoded captions: cross-attention keys and values of every
/// layer and the padding bias, computed once per batch and shared by both losses.
pub(super) struct Context {
    cross: Vec<Kv>,
    bias: Tensor,
}

impl Context {
    pub(super) fn new(g: &Generator, enc: &Encoded) -> Result<Self> {
        Ok(Context { cross: g.cross_kv(enc)?, bias: super::t5::padding_bias(&enc.mask)? })
    }

    /// The context of captions `rows` (with repetition).
    fn select(&self, rows: &Tensor) -> Result<Self> {
        let cross = self.cross.iter().map(|kv| kv.select(rows)).collect::<Result<_>>()?;
        Ok(Context { cross, bias: self.bias.index_select(rows, 0)? })
    }
}

/// Log-probabilities [B, T, 2N] of teacher-forced voken sequences (all of one length).
fn sequence_log_probs(g: &Generator, ctx: &Context, seqs: &[Vec<u32>], rows: Option<&StepRows>) -> Result<Tensor> {
    let hidden = g.decode(&g.decoder_inputs(seqs, rows)?, &ctx.cross, &ctx.bias, &mut Default::default())?;
    let logits = g.logits(&hidden, &g.output_rows(rows)?, None)?;
    Ok(candle_nn::ops::log_softmax(&logits, D::Minus1)?)
}

pub(super) fn gen_loss(g: &Generator, ctx: &Context, targets: &[Vec<u32>], rows: Option<&StepRows>) -> Result<Tensor> {
    let lp = sequence_log_probs(g, ctx, targets, rows)?;
    let (b, t, v) = lp.dims3()?;
    let flat: Vec<u32> = targets.iter().flatten().copied().collect();
    let tgt = Tensor::from_vec(flat, b * t, g.device())?;
    Ok(candle_nn::loss::nll(&lp.reshape((b * t, v))?, &tgt)?)
}

/// Softmax cross-entropy over each caption's candidates (the right sequence first,
/// then the beam's others, `beams` per caption); a candidate's score is the sum of its
/// voken log-probs.
pub(super) fn dis_loss(
    g: &Generator,
    ctx: &Context,
    targets: &[Vec<u32>],
    beams: &[Vec<Vec<u32>>],
    temperature: f32,
    rows: Option<&StepRows>,
) -> Result<Tensor> {
    let k = beams.iter().map(Vec::len).max().unwrap_or(0) + 1;
    // Every caption gets k candidates: the positive, the beam's others, padded by
    // repeating the positive (masked out of the softmax).
    let mut seqs = Vec::with_capacity(targets.len() * k);
    let mut valid = Vec::with_capacity(targets.len() * k);
    for (t, cands) in targets.iter().zip(beams) {
        seqs.push(t.clone());
        valid.push(0.0f32);
        let others: Vec<&Vec<u32>> = cands.iter().filter(|c| *c != t).collect();
        for j in 0..k - 1 {
            match others.get(j) {
                Some(c) => {
                    seqs.push((*c).clone());
                    valid.push(0.0);
                }
                None => {
                    seqs.push(t.clone());
                    valid.push(-1e9);
                }
            }
        }
    }
    let b = targets.len();
    let rep =
        Tensor::from_vec((0..b as u32).flat_map(|i| std::iter::repeat_n(i, k)).collect::<Vec<_>>(), b * k, g.device())?;
    let lp = sequence_log_probs(g, &ctx.select(&rep)?, &seqs, rows)?;
    let (_, t, _) = lp.dims3()?;
    let flat: Vec<u32> = seqs.iter().flatten().copied().collect();
    let tgt = Tensor::from_vec(flat, (b * k, t, 1), g.device())?;
    let scores = lp.gather(&tgt, 2)?.squeeze(2)?.sum(1)?.reshape((b, k))?;
    let scores = ((scores / temperature as f64)? + Tensor::from_vec(valid, (b, k), g.device())?)?;
    let zeros = Tensor::zeros(b, DType::U32, g.device())?;
    Ok(candle_nn::loss::cross_entropy(&scores, &zeros)?)
}

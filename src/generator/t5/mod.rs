//! A trainable T5 (encoder-decoder with relative position buckets), written for
//! training and constrained beam search: softmax with a backward pass, logits for every
//! position, attention masks for padded batches, and a kv-cache that beams can reorder.
//! Parameter names follow the Hugging Face checkpoints, so t5 / t5 v1.1 / flan-t5
//! weights load as they are.

mod config;
mod cpu_attention;

pub use config::T5Config;

use crate::kernels::small_matmul::Int8Rows;
use crate::params::{Init, Params};
use crate::Result;
use candle_core::{DType, Device, Tensor, D};

/// A bias-free linear layer; 3-D inputs go through one 2-D matmul (a broadcast batched
/// matmul has a much slower backward pass in Candle), a search step's few rows through
/// `small_matmul`, on the int8 copy of the weight where the parameters keep one.
pub(crate) struct Lin {
    w: Tensor,
    int8: Option<Int8Rows>,
}

impl Lin {
    pub(crate) fn new(p: &mut Params, name: &str, inp: usize, out: usize, std: f32) -> Result<Self> {
        let w = p.get(&format!("{name}.weight"), &[out, inp], Init::Normal(std))?;
        let int8 = if p.int8() { Int8Rows::new(&w)? } else { None };
        Ok(Lin { w, int8 })
    }

    pub(crate) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        crate::kernels::small_matmul::matmul_nt(x, &self.w, self.int8.as_ref())
    }
}

/// Whether a backward pass may go through an op on `xs`. Where none can, forward uses
/// Candle's fused kernels (one launch instead of five or six, which is what a beam step
/// on a GPU is bound by), which have no backward pass.
fn needs_grad(xs: &[&Tensor]) -> bool {
    xs.iter().any(|x| x.track_op())
}

/// T5's RMS layer norm (no mean subtraction, no bias).
struct RmsNorm {
    w: Tensor,
    eps: f64,
}

impl RmsNorm {
    fn new(p: &mut Params, name: &str, d: usize, eps: f64) -> Result<Self> {
        Ok(RmsNorm { w: p.get(&format!("{name}.weight"), &[d], Init::Ones)?, eps })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if !needs_grad(&[x, &self.w]) {
            return Ok(candle_nn::ops::rms_norm(&x.contiguous()?, &self.w, self.eps as f32)?);
        }
        let var = x.sqr()?.mean_keepdim(D::Minus1)?;
        Ok(x.broadcast_div(&(var + self.eps)?.sqrt()?)?.broadcast_mul(&self.w)?)
    }
}

enum FeedForward {
    Relu { wi: Lin, wo: Lin },
    GatedGelu { wi_0: Lin, wi_1: Lin, wo: Lin },
}

impl FeedForward {
    fn new(p: &mut Params, name: &str, c: &T5Config) -> Result<Self> {
        let (d, f) = (c.d_model, c.d_ff);
        let (si, so) = ((d as f32).powf(-0.5), (f as f32).powf(-0.5));
        Ok(if c.feed_forward_proj.starts_with("gated") {
            FeedForward::GatedGelu {
                wi_0: Lin::new(p, &format!("{name}.wi_0"), d, f, si)?,
                wi_1: Lin::new(p, &format!("{name}.wi_1"), d, f, si)?,
                wo: Lin::new(p, &format!("{name}.wo"), f, d, so)?,
            }
        } else {
            FeedForward::Relu {
                wi: Lin::new(p, &format!("{name}.wi"), d, f, si)?,
                wo: Lin::new(p, &format!("{name}.wo"), f, d, so)?,
            }
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            FeedForward::Relu { wi, wo } => wo.forward(&wi.forward(x)?.relu()?),
            FeedForward::GatedGelu { wi_0, wi_1, wo } => wo.forward(&(wi_0.forward(x)?.gelu()? * wi_1.forward(x)?)?),
        }
    }
}

/// Keys and values of one attention layer, [B, H, S, d_kv].
#[derive(Clone)]
pub(crate) struct Kv {
    pub k: Tensor,
    pub v: Tensor,
}

impl Kv {
    /// Rows `rows` of the batch (with repetition), in that order.
    pub(crate) fn select(&self, rows: &Tensor) -> Result<Kv> {
        Ok(Kv { k: self.k.index_select(rows, 0)?, v: self.v.index_select(rows, 0)? })
    }
}

struct Attention {
    q: Lin,
    k: Lin,
    v: Lin,
    o: Lin,
    heads: usize,
    d_kv: usize,
    /// [buckets, heads], in the first layer of a stack only.
    relative_bias: Option<Tensor>,
}

impl Attention {
    fn new(p: &mut Params, name: &str, c: &T5Config, has_bias: bool) -> Result<Self> {
        let inner = c.num_heads * c.d_kv;
        let s = (c.d_model as f32).powf(-0.5);
        let relative_bias = if has_bias {
            Some(p.get(
                &format!("{name}.relative_attention_bias.weight"),
                &[c.relative_attention_num_buckets, c.num_heads],
                Init::Normal(s),
            )?)
        } else {
            None
        };
        Ok(Attention {
            // T5 does not scale q.k by 1/sqrt(d_kv); its initialisation folds it into q.
            q: Lin::new(p, &format!("{name}.q"), c.d_model, inner, s * (c.d_kv as f32).powf(-0.5))?,
            k: Lin::new(p, &format!("{name}.k"), c.d_model, inner, s)?,
            v: Lin::new(p, &format!("{name}.v"), c.d_model, inner, s)?,
            o: Lin::new(p, &format!("{name}.o"), inner, c.d_model, (inner as f32).powf(-0.5))?,
            heads: c.num_heads,
            d_kv: c.d_kv,
            relative_bias,
        })
    }

    fn split(&self, x: &Tensor) -> Result<Tensor> {
        let (b, t, _) = x.dims3()?;
        Ok(x.reshape((b, t, self.heads, self.d_kv))?.transpose(1, 2)?.contiguous()?)
    }

    fn kv(&self, src: &Tensor) -> Result<Kv> {
        Ok(Kv { k: self.split(&self.k.forward(src)?)?, v: self.split(&self.v.forward(src)?)? })
    }

    /// Attention of `x` [B, T, D] over `kv`; `bias` [B or 1, H or 1, T, S] is added to the scores.
    fn attend(&self, x: &Tensor, kv: &Kv, bias: &Tensor) -> Result<Tensor> {
        let (b, t, _) = x.dims3()?;
        let q = self.q.forward(x)?;
        if !needs_grad(&[&q, &kv.k, &kv.v, bias]) {
            if let Some(out) = cpu_attention::attend(&q, kv, bias)? {
                return self.o.forward(&out);
            }
        }
        let q = self.split(&q)?;
        let scores = q.matmul(&kv.k.t()?)?.broadcast_add(bias)?;
        let weights = if needs_grad(&[&scores]) {
            candle_nn::ops::softmax(&scores, D::Minus1)?
        } else {
            candle_nn::ops::softmax_last_dim(&scores)?
        };
        let out = weights.matmul(&kv.v)?.transpose(1, 2)?.reshape((b, t, self.heads * self.d_kv))?;
        self.o.forward(&out)
    }
}

/// Relative position bucket of key position `j` seen from query position `i` (T5's rule).
fn bucket(i: usize, j: usize, bidirectional: bool, buckets: usize, max_distance: usize) -> u32 {
    let rel = j as i64 - i as i64;
    let (mut nb, mut ret) = (buckets as i64, 0i64);
    let n = if bidirectional {
        nb /= 2;
        if rel > 0 {
            ret += nb;
        }
        rel.abs()
    } else {
        (-rel).max(0)
    };
    let exact = nb / 2;
    ret += if n < exact {
        n
    } else {
        let large = exact as f64
            + ((n as f64 / exact as f64).ln() / (max_distance as f64 / exact as f64).ln() * (nb - exact) as f64);
        (large as i64).min(nb - 1)
    };
    ret as u32
}

struct Block {
    self_attn: Attention,
    self_ln: RmsNorm,
    cross: Option<(Attention, RmsNorm)>,
    ff: FeedForward,
    ff_ln: RmsNorm,
}

/// The encoder or the decoder stack.
pub(crate) struct Stack {
    blocks: Vec<Block>,
    final_ln: RmsNorm,
    decoder: bool,
    buckets: usize,
    max_distance: usize,
}

/// Additive mask [B, 1, 1, S] from a 0/1 mask [B, S].
pub(crate) fn padding_bias(mask: &Tensor) -> Result<Tensor> {
    let (b, s) = mask.dims2()?;
    Ok(((mask.to_dtype(DType::F32)? - 1.0)? * 1e9)?.reshape((b, 1, 1, s))?)
}

impl Stack {
    pub(crate) fn new(p: &mut Params, name: &str, c: &T5Config, decoder: bool) -> Result<Self> {
        c.check()?;
        let layers = if decoder { c.num_decoder_layers.unwrap_or(c.num_layers) } else { c.num_layers };
        let eps = c.layer_norm_epsilon;
        let blocks = (0..layers)
            .map(|i| {
                let b = format!("{name}.block.{i}.layer");
                let self_attn = Attention::new(p, &format!("{b}.0.SelfAttention"), c, i == 0)?;
                let self_ln = RmsNorm::new(p, &format!("{b}.0.layer_norm"), c.d_model, eps)?;
                let (cross, ff_layer) = if decoder {
                    let a = Attention::new(p, &format!("{b}.1.EncDecAttention"), c, false)?;
                    (Some((a, RmsNorm::new(p, &format!("{b}.1.layer_norm"), c.d_model, eps)?)), 2)
                } else {
                    (None, 1)
                };
                let ff = FeedForward::new(p, &format!("{b}.{ff_layer}.DenseReluDense"), c)?;
                let ff_ln = RmsNorm::new(p, &format!("{b}.{ff_layer}.layer_norm"), c.d_model, eps)?;
                Ok(Block { self_attn, self_ln, cross, ff, ff_ln })
            })
            .collect::<Result<_>>()?;
        let final_ln = RmsNorm::new(p, &format!("{name}.final_layer_norm"), c.d_model, eps)?;
        Ok(Stack {
            blocks,
            final_ln,
            decoder,
            buckets: c.relative_attention_num_buckets,
            max_distance: c.relative_attention_max_distance,
        })
    }

    /// Position bias [1, H, T, S] for queries at `q_start..q_start+t` over keys `0..s`.
    fn position_bias(&self, t: usize, s: usize, q_start: usize, device: &Device) -> Result<Tensor> {
        let table = self.blocks[0].self_attn.relative_bias.as_ref().expect("first layer has the bias");
        let ids: Vec<u32> = (0..t)
            .flat_map(|i| (0..s).map(move |j| (i, j)))
            .map(|(i, j)| bucket(q_start + i, j, !self.decoder, self.buckets, self.max_distance))
            .collect();
        let ids = Tensor::from_vec(ids, t * s, device)?;
        let heads = table.dim(1)?;
        Ok(table.index_select(&ids, 0)?.reshape((t, s, heads))?.permute((2, 0, 1))?.unsqueeze(0)?)
    }

    /// The encoder over embedded inputs [B, S, D] with a 0/1 mask [B, S].
    pub(crate) fn encode(&self, x: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let (_, s, _) = x.dims3()?;
        let bias = self.position_bias(s, s, 0, x.device())?.broadcast_add(&padding_bias(mask)?)?;
        let mut h = x.clone();
        for b in &self.blocks {
            let n = b.self_ln.forward(&h)?;
            h = (&h + b.self_attn.attend(&n, &b.self_attn.kv(&n)?, &bias)?)?;
            h = (&h + b.ff.forward(&b.ff_ln.forward(&h)?)?)?;
        }
        self.final_ln.forward(&h)
    }

    /// Cross-attention keys and values of every decoder layer, computed once per input.
    pub(crate) fn cross_kv(&self, enc: &Tensor) -> Result<Vec<Kv>> {
        self.blocks.iter().map(|b| b.cross.as_ref().expect("decoder stack").0.kv(enc)).collect()
    }

    /// The decoder over embedded inputs [B, T, D] at positions `cache.len()..`, attending
    /// to `cross` (with additive bias `cross_bias`); appends to the self-attention cache.
    pub(crate) fn decode(&self, x: &Tensor, cross: &[Kv], cross_bias: &Tensor, cache: &mut Cache) -> Result<Tensor> {
        let (_, t, _) = x.dims3()?;
        let start = cache.len;
        let total = start + t;
        let mut bias = self.position_bias(t, total, start, x.device())?;
        if t > 1 {
            let causal: Vec<f32> =
                (0..t).flat_map(|i| (0..total).map(move |j| if j > start + i { -1e9 } else { 0.0 })).collect();
            bias = bias.broadcast_add(&Tensor::from_vec(causal, (1, 1, t, total), x.device())?)?;
        }
        let mut h = x.clone();
        for (i, b) in self.blocks.iter().enumerate() {
            let n = b.self_ln.forward(&h)?;
            let new = b.self_attn.kv(&n)?;
            let kv = match cache.layers.get(i) {
                Some(old) => Kv { k: Tensor::cat(&[&old.k, &new.k], 2)?, v: Tensor::cat(&[&old.v, &new.v], 2)? },
                None => new,
            };
            h = (&h + b.self_attn.attend(&n, &kv, &bias)?)?;
            if i < cache.layers.len() {
                cache.layers[i] = kv;
            } else {
                cache.layers.push(kv);
            }
            let (attn, ln) = b.cross.as_ref().expect("decoder stack");
            let n = ln.forward(&h)?;
            let (rows, t, d) = n.dims3()?;
            let y = if cross[i].k.dim(0)? == 1 && rows > 1 {
                // Every row reads the same source (the beams of one query): attend as one
                // sequence of rows * t queries, a few large matmuls instead of many tiny ones.
                attn.attend(&n.reshape((1, rows * t, d))?, &cross[i], cross_bias)?.reshape((rows, t, d))?
            } else {
                attn.attend(&n, &cross[i], cross_bias)?
            };
            h = (&h + y)?;
            h = (&h + b.ff.forward(&b.ff_ln.forward(&h)?)?)?;
        }
        cache.len = total;
        self.final_ln.forward(&h)
    }
}

/// The decoder's self-attention keys and values so far.
#[derive(Default, Clone)]
pub(crate) struct Cache {
    layers: Vec<Kv>,
    len: usize,
}

impl Cache {
    /// Keeps the rows `beams` (with repetition) in that order, as beams move.
    pub(crate) fn reorder(&mut self, beams: &Tensor) -> Result<()> {
        for kv in &mut self.layers {
            *kv = kv.select(beams)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_follow_the_reference_rule() {
        // Values from T5's _relative_position_bucket with 32 buckets, max distance 128.
        assert_eq!(bucket(0, 0, true, 32, 128), 0);
        assert_eq!(bucket(0, 3, true, 32, 128), 19);
        assert_eq!(bucket(3, 0, true, 32, 128), 3);
        assert_eq!(bucket(0, 100, true, 32, 128), 31);
        assert_eq!(bucket(5, 0, false, 32, 128), 5);
        assert_eq!(bucket(0, 5, false, 32, 128), 0);
        assert_eq!(bucket(40, 0, false, 32, 128), 23);
    }
}

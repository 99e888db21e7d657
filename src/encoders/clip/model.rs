//! CLIP's configuration and its two transformer towers.

use crate::encoders::MAX_LAYERS;
use crate::{Error, Result};
use candle_core::{IndexOp, Module, Tensor};
use candle_nn::{layer_norm, linear, Conv2dConfig, Embedding, LayerNorm, Linear, VarBuilder};

/// Sizes of one tower's transformer.
#[derive(Debug, Clone, PartialEq)]
pub struct TowerConfig {
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub hidden_act: Activation,
    pub layer_norm_eps: f64,
}

/// `config.json` of a `CLIPModel`; absent fields take the reference defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct ClipConfig {
    pub text: TowerConfig,
    pub vocab_size: usize,
    /// The longest text in tokens (77 for OpenAI's checkpoints); longer texts are cut.
    pub max_position_embeddings: usize,
    /// The token whose final state is the text's embedding. The value 2 is what old
    /// configs carry; the reference then takes the highest token id (the end token of
    /// OpenAI's vocabulary), and so does this.
    pub eos_token_id: u32,
    pub vision: TowerConfig,
    pub image_size: usize,
    pub patch_size: usize,
    pub num_channels: usize,
    pub projection_dim: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// `x * sigmoid(1.702 x)`, OpenAI's.
    QuickGelu,
    /// The exact (erf) GELU.
    Gelu,
    /// The tanh approximation.
    GeluTanh,
}

impl Activation {
    fn parse(name: &str) -> Result<Self> {
        match name {
            "quick_gelu" => Ok(Activation::QuickGelu),
            "gelu" => Ok(Activation::Gelu),
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Ok(Activation::GeluTanh),
            other => Err(Error::Model(format!("clip config: unsupported hidden_act {other:?}"))),
        }
    }

    fn forward(self, x: &Tensor) -> Result<Tensor> {
        Ok(match self {
            Activation::QuickGelu => (x * candle_nn::ops::sigmoid(&(x * 1.702)?)?)?,
            Activation::Gelu => x.gelu_erf()?,
            Activation::GeluTanh => x.gelu()?,
        })
    }
}

impl ClipConfig {
    /// Parses a `config.json` value and checks that it describes a buildable model.
    pub fn from_json(v: &serde_json::Value) -> Result<Self> {
        let (t, vis) = (&v["text_config"], &v["vision_config"]);
        let tower = |c: &serde_json::Value, hidden: u64, inter: u64, heads: u64| -> Result<TowerConfig> {
            Ok(TowerConfig {
                hidden_size: size(c, "hidden_size", hidden)?,
                intermediate_size: size(c, "intermediate_size", inter)?,
                num_hidden_layers: size(c, "num_hidden_layers", 12)?,
                num_attention_heads: size(c, "num_attention_heads", heads)?,
                hidden_act: Activation::parse(c.get("hidden_act").and_then(|a| a.as_str()).unwrap_or("quick_gelu"))?,
                layer_norm_eps: c.get("layer_norm_eps").and_then(|e| e.as_f64()).unwrap_or(1e-5),
            })
        };
        let c = ClipConfig {
            text: tower(t, 512, 2048, 8)?,
            vocab_size: size(t, "vocab_size", 49408)?,
            max_position_embeddings: size(t, "max_position_embeddings", 77)?,
            eos_token_id: size(t, "eos_token_id", 49407)? as u32,
            vision: tower(vis, 768, 3072, 12)?,
            image_size: size(vis, "image_size", 224)?,
            patch_size: size(vis, "patch_size", 32)?,
            num_channels: size(vis, "num_channels", 3)?,
            projection_dim: size(v, "projection_dim", 512)?,
        };
        c.check()?;
        Ok(c)
    }

    fn check(&self) -> Result<()> {
        let towers = [&self.text, &self.vision];
        let sizes =
            [self.vocab_size, self.max_position_embeddings, self.image_size, self.patch_size, self.projection_dim];
        let bad = towers.iter().any(|t| {
            [t.hidden_size, t.intermediate_size, t.num_attention_heads].contains(&0)
                || !t.hidden_size.is_multiple_of(t.num_attention_heads)
                || t.num_hidden_layers > MAX_LAYERS
                || t.layer_norm_eps.is_nan()
                || t.layer_norm_eps <= 0.0
        }) || sizes.contains(&0)
            || !self.image_size.is_multiple_of(self.patch_size)
            || self.image_size > 4096
            || self.num_channels != 3;
        if bad {
            return Err(Error::Model(format!(
                "clip config: sizes must be at least 1, hidden sizes multiples of the head counts, \
                 at most {MAX_LAYERS} layers, 3 channels, image_size (at most 4096) a multiple of patch_size: {self:?}"
            )));
        }
        Ok(())
    }
}

fn size(c: &serde_json::Value, key: &str, default: u64) -> Result<usize> {
    match c.get(key) {
        None | Some(serde_json::Value::Null) => Ok(default as usize),
        Some(x) => x.as_u64().map(|n| n as usize).ok_or_else(|| Error::Model(format!("clip config: bad {key}: {x}"))),
    }
}

struct Attention {
    q: Linear,
    k: Linear,
    v: Linear,
    out: Linear,
    heads: usize,
}

impl Attention {
    fn new(vb: VarBuilder, c: &TowerConfig) -> Result<Self> {
        let d = c.hidden_size;
        Ok(Attention {
            q: linear(d, d, vb.pp("q_proj"))?,
            k: linear(d, d, vb.pp("k_proj"))?,
            v: linear(d, d, vb.pp("v_proj"))?,
            out: linear(d, d, vb.pp("out_proj"))?,
            heads: c.num_attention_heads,
        })
    }

    /// `x`: [B, S, D]; `mask`: additive [S, S] (the text tower's causal mask).
    fn forward(&self, x: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        let (b, s, d) = x.dims3()?;
        let hd = d / self.heads;
        let split =
            |t: Tensor| -> Result<Tensor> { Ok(t.reshape((b, s, self.heads, hd))?.transpose(1, 2)?.contiguous()?) };
        let q = split((self.q.forward(x)? * (hd as f64).powf(-0.5))?)?;
        let k = split(self.k.forward(x)?)?;
        let v = split(self.v.forward(x)?)?;
        let mut scores = q.matmul(&k.t()?)?;
        if let Some(m) = mask {
            scores = scores.broadcast_add(m)?;
        }
        let att = candle_nn::ops::softmax_last_dim(&scores)?.matmul(&v)?;
        Ok(self.out.forward(&att.transpose(1, 2)?.reshape((b, s, d))?)?)
    }
}

struct Layer {
    norm1: LayerNorm,
    attn: Attention,
    norm2: LayerNorm,
    fc1: Linear,
    fc2: Linear,
    act: Activation,
}

impl Layer {
    fn new(vb: VarBuilder, c: &TowerConfig) -> Result<Self> {
        let (d, eps) = (c.hidden_size, c.layer_norm_eps);
        Ok(Layer {
            norm1: layer_norm(d, eps, vb.pp("layer_norm1"))?,
            attn: Attention::new(vb.pp("self_attn"), c)?,
            norm2: layer_norm(d, eps, vb.pp("layer_norm2"))?,
            fc1: linear(d, c.intermediate_size, vb.pp("mlp.fc1"))?,
            fc2: linear(c.intermediate_size, d, vb.pp("mlp.fc2"))?,
            act: c.hidden_act,
        })
    }

    fn forward(&self, x: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        let x = (x + self.attn.forward(&self.norm1.forward(x)?, mask)?)?;
        let h = self.act.forward(&self.fc1.forward(&self.norm2.forward(&x)?)?)?;
        Ok((&x + self.fc2.forward(&h)?)?)
    }
}

/// The pre-norm transformer both towers share.
struct Encoder {
    layers: Vec<Layer>,
}

impl Encoder {
    fn new(vb: VarBuilder, c: &TowerConfig) -> Result<Self> {
        let layers =
            (0..c.num_hidden_layers).map(|i| Layer::new(vb.pp(format!("layers.{i}")), c)).collect::<Result<_>>()?;
        Ok(Encoder { layers })
    }

    fn forward(&self, x: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        self.layers.iter().try_fold(x.clone(), |x, l| l.forward(&x, mask))
    }
}

pub(super) struct TextTower {
    token: Embedding,
    position: Embedding,
    encoder: Encoder,
    final_norm: LayerNorm,
}

impl TextTower {
    pub(super) fn new(vb: VarBuilder, c: &ClipConfig) -> Result<Self> {
        let d = c.text.hidden_size;
        let emb = vb.pp("embeddings");
        Ok(TextTower {
            token: candle_nn::embedding(c.vocab_size, d, emb.pp("token_embedding"))?,
            position: candle_nn::embedding(c.max_position_embeddings, d, emb.pp("position_embedding"))?,
            encoder: Encoder::new(vb.pp("encoder"), &c.text)?,
            final_norm: layer_norm(d, c.text.layer_norm_eps, vb.pp("final_layer_norm"))?,
        })
    }

    /// `ids`: [B, S]; the final states at `pooled` (flat indices into B * S).
    pub(super) fn forward(&self, ids: &Tensor, pooled: &Tensor) -> Result<Tensor> {
        let (b, s) = ids.dims2()?;
        let positions = Tensor::arange(0u32, s as u32, ids.device())?;
        let x = self.token.forward(ids)?.broadcast_add(&self.position.forward(&positions)?)?;
        // Causal: right padding never reaches a real token, so no padding mask is needed.
        let mask: Vec<f32> = (0..s * s).map(|i| if i % s > i / s { f32::NEG_INFINITY } else { 0.0 }).collect();
        let mask = Tensor::from_vec(mask, (s, s), ids.device())?;
        let x = self.final_norm.forward(&self.encoder.forward(&x, Some(&mask))?)?;
        Ok(x.reshape((b * s, ()))?.index_select(pooled, 0)?)
    }
}

pub(super) struct VisionTower {
    patch: candle_nn::Conv2d,
    class: Tensor,
    position: Embedding,
    pre_norm: LayerNorm,
    encoder: Encoder,
    post_norm: LayerNorm,
}

impl VisionTower {
    pub(super) fn new(vb: VarBuilder, c: &ClipConfig) -> Result<Self> {
        let d = c.vision.hidden_size;
        let emb = vb.pp("embeddings");
        let patches = (c.image_size / c.patch_size).pow(2);
        let conv = Conv2dConfig { stride: c.patch_size, ..Default::default() };
        let eps = c.vision.layer_norm_eps;
        Ok(VisionTower {
            patch: candle_nn::conv2d_no_bias(c.num_channels, d, c.patch_size, conv, emb.pp("patch_embedding"))?,
            class: emb.get(d, "class_embedding")?,
            position: candle_nn::embedding(patches + 1, d, emb.pp("position_embedding"))?,
            pre_norm: layer_norm(d, eps, vb.pp("pre_layrnorm"))?,
            encoder: Encoder::new(vb.pp("encoder"), &c.vision)?,
            post_norm: layer_norm(d, eps, vb.pp("post_layernorm"))?,
        })
    }

    /// `pixels`: [B, 3, H, W]; the normalised class-token state, [B, D].
    pub(super) fn forward(&self, pixels: &Tensor) -> Result<Tensor> {
        let b = pixels.dim(0)?;
        let x = self.patch.forward(pixels)?.flatten_from(2)?.transpose(1, 2)?;
        let d = self.class.dim(0)?;
        let x = Tensor::cat(&[&self.class.reshape((1, 1, d))?.broadcast_as((b, 1, d))?, &x], 1)?;
        let n = x.dim(1)?;
        let x = x.broadcast_add(&self.position.forward(&Tensor::arange(0u32, n as u32, x.device())?)?)?;
        let x = self.encoder.forward(&self.pre_norm.forward(&x)?, None)?;
        Ok(self.post_norm.forward(&x.i((.., 0))?)?)
    }
}

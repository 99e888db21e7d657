//! Training the tokenizer: k-means start, then L_recon + L_commit + L_align with AdamW,
//! re-seeding dead codes after every epoch.

use super::{kmeans, Forward, Quantizer, QuantizerConfig};
use crate::progress::{Progress, Stage, StepLog};
use crate::rng::Rng;
use crate::{Error, Result};
use candle_core::{Device, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use std::time::Instant;

/// How to train the tokenizer. N and M come from the index.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenizerTrainConfig {
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    /// Weight of L_recon, ||decoder(z_q) - v_image||^2.
    pub recon_weight: f32,
    /// Weight of the commitment term ||z - sg(partial sum)||^2 (the reference uses 0.25);
    /// the codebook term ||sg(z) - partial sum||^2 has weight 1.
    pub commit_weight: f32,
    /// L_align, ||decoder(z_q) - v_caption||^2, on or off (the paper's ablation).
    pub align: bool,
    pub align_weight: f32,
    /// One codebook for all M levels (the paper) or one per level.
    pub shared_codebook: bool,
    /// Width of the encoder and decoder MLPs.
    pub hidden: usize,
    pub kmeans_iterations: usize,
    pub seed: u64,
}

impl Default for TokenizerTrainConfig {
    fn default() -> Self {
        TokenizerTrainConfig {
            epochs: 20,
            batch_size: 256,
            learning_rate: 1e-3,
            recon_weight: 1.0,
            commit_weight: 0.25,
            align: true,
            align_weight: 1.0,
            shared_codebook: true,
            hidden: 1024,
            kmeans_iterations: 10,
            seed: 42,
        }
    }
}

impl TokenizerTrainConfig {
    pub(crate) fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(Error::InvalidArgument(format!("tokenizer training: {m}")));
        if self.epochs == 0 || self.batch_size == 0 || self.hidden == 0 {
            return bad("epochs, batch_size and hidden must be at least 1");
        }
        crate::limits::cap("tokenizer hidden width", self.hidden, crate::limits::MAX_DIM)?;
        crate::limits::cap("tokenizer batch size", self.batch_size, crate::limits::MAX_BATCH)?;
        let weights = [self.recon_weight, self.commit_weight, self.align_weight];
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0)
            || weights.iter().any(|w| !w.is_finite() || *w < 0.0)
        {
            return bad("learning rate must be finite and positive, loss weights finite and non-negative");
        }
        Ok(())
    }
}

/// What a finished training reports.
#[derive(Debug, Clone, Default)]
pub struct TokenizerReport {
    pub epochs: usize,
    pub steps: usize,
    pub seconds: f64,
    /// Last epoch's mean losses.
    pub loss_recon: f32,
    pub loss_commit: f32,
    pub loss_align: f32,
    /// Codebook usage and collisions of the vokens it gave the indexed images.
    pub stats: crate::vokens::VokenStats,
}

/// Training data: image vectors, and (image row, caption vector) pairs. An image without
/// captions appears once with no caption vector.
pub(crate) struct TrainingSet {
    pub dim: usize,
    pub images: Vec<f32>,
    pub pairs: Vec<(usize, Option<Vec<f32>>)>,
}

/// Trains a tokenizer on `data`. `progress` may return false to stop: the result is then
/// `Error::Cancelled` and nothing of the run is kept.
pub(crate) fn train(
    data: &TrainingSet,
    codebook_size: usize,
    voken_len: usize,
    cfg: &TokenizerTrainConfig,
    device: &Device,
    progress: &mut dyn FnMut(&Progress) -> bool,
) -> Result<(Quantizer, TokenizerReport)> {
    cfg.validate()?;
    let (d, n) = (data.dim, data.images.len() / data.dim.max(1));
    if n == 0 {
        return Err(Error::WrongState("the index holds no images to train the tokenizer on".into()));
    }
    let qcfg =
        QuantizerConfig { dim: d, codebook_size, voken_len, shared_codebook: cfg.shared_codebook, hidden: cfg.hidden };
    let model = Quantizer::fresh(qcfg, cfg.seed, device)?;
    let mut rng = Rng::new(cfg.seed.wrapping_add(1));
    init_codebooks(&model, data, &mut rng, cfg.kmeans_iterations)?;

    let mut opt =
        AdamW::new(model.vars(), ParamsAdamW { lr: cfg.learning_rate, weight_decay: 0.0, ..Default::default() })?;
    let mut order: Vec<usize> = (0..data.pairs.len()).collect();
    let steps_per_epoch = order.len().div_ceil(cfg.batch_size);
    let books = model.codebooks.len();
    let started = Instant::now();
    let mut report = TokenizerReport::default();
    let put = |p: &mut Progress, [recon, commit, align]: [f32; 3]| {
        (p.loss_recon, p.loss_commit, p.loss_align) = (recon, commit, align);
    };
    let mut log = StepLog::new(progress, Stage::Tokenizer, cfg.epochs, steps_per_epoch, put);
    for epoch in 0..cfg.epochs {
        rng.shuffle(&mut order);
        log.start_epoch(epoch);
        let mut used = vec![vec![false; codebook_size]; books];
        let mut last_residuals = Vec::new();
        for (step, chunk) in order.chunks(cfg.batch_size).enumerate() {
            let began = Instant::now();
            let (x, t, mask) = batch(data, chunk, device)?;
            let f = model.forward(&x)?;
            let (total, losses) = step_losses(&f, &x, &t, &mask, cfg)?;
            opt.backward_step(&total)?;
            for row in f.codes.to_vec2::<u32>()? {
                for (level, &c) in row.iter().enumerate() {
                    used[if books == 1 { 0 } else { level }][c as usize] = true;
                }
            }
            last_residuals = f.residuals;
            report.steps += 1;
            log.step(step, chunk.len(), began, total.to_scalar::<f32>()?, losses)?;
        }
        [report.loss_recon, report.loss_commit, report.loss_align] = log.means();
        report.epochs = epoch + 1;
        // After the last epoch a re-seeded code would never be trained: keep the codebook.
        if epoch + 1 < cfg.epochs {
            reseed_dead_codes(&model, &used, &last_residuals, &mut rng)?;
        }
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok((model, report))
}

/// A step's weighted total (minimised) and its reconstruction, commitment and
/// alignment losses. The codebook term pulls each partial sum towards the (fixed)
/// latent; the commitment term the latent towards the (fixed) partial sums.
fn step_losses(
    f: &Forward,
    x: &Tensor,
    t: &Tensor,
    mask: &Tensor,
    cfg: &TokenizerTrainConfig,
) -> Result<(Tensor, [f32; 3])> {
    let recon = sq_dist(&f.reconstruction, x)?.mean_all()?;
    let mut codebook = Tensor::zeros((), candle_core::DType::F32, x.device())?;
    let mut commit = codebook.clone();
    for s in &f.partial_sums {
        codebook = (codebook + sq_dist(s, &f.z.detach())?.mean_all()?)?;
        commit = (commit + sq_dist(&f.z, &s.detach())?.mean_all()?)?;
    }
    let align =
        (sq_dist(&f.reconstruction, t)?.mul(mask)?.sum_all()? / (mask.sum_all()?.to_scalar::<f32>()?.max(1.0) as f64))?;
    let mut total =
        ((recon.affine(cfg.recon_weight as f64, 0.0)? + codebook)? + commit.affine(cfg.commit_weight as f64, 0.0)?)?;
    if cfg.align {
        total = (total + align.affine(cfg.align_weight as f64, 0.0)?)?;
    }
    let losses = [recon.to_scalar::<f32>()?, commit.to_scalar::<f32>()?, align.to_scalar::<f32>()?];
    Ok((total, losses))
}

/// Sum over the vector of squared differences, per row: [B].
fn sq_dist(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    Ok((a - b)?.sqr()?.sum(1)?)
}

/// Image vectors [B, D], caption vectors [B, D] (zeros where absent) and the mask [B].
fn batch(data: &TrainingSet, chunk: &[usize], device: &Device) -> Result<(Tensor, Tensor, Tensor)> {
    let d = data.dim;
    let mut x = Vec::with_capacity(chunk.len() * d);
    let mut t = Vec::with_capacity(chunk.len() * d);
    let mut mask = Vec::with_capacity(chunk.len());
    for &i in chunk {
        let (row, caption) = &data.pairs[i];
        x.extend_from_slice(&data.images[row * d..][..d]);
        match caption {
            Some(v) => t.extend_from_slice(v),
            None => t.resize(t.len() + d, 0.0),
        }
        mask.push(caption.is_some() as u8 as f32);
    }
    let b = chunk.len();
    Ok((Tensor::from_vec(x, (b, d), device)?, Tensor::from_vec(t, (b, d), device)?, Tensor::from_vec(mask, b, device)?))
}

/// k-means on the (near-identity) latents of up to 16k images. A shared codebook gets
/// N/M codes from each level's residuals in turn; per-level codebooks get N each.
fn init_codebooks(model: &Quantizer, data: &TrainingSet, rng: &mut Rng, iterations: usize) -> Result<()> {
    let (d, n) = (data.dim, data.images.len() / data.dim);
    let mut rows: Vec<usize> = (0..n).collect();
    rng.shuffle(&mut rows);
    rows.truncate(16_384);
    let sample: Vec<f32> = rows.iter().flat_map(|&r| data.images[r * d..][..d].iter().copied()).collect();
    let device = model.device();
    let x = Tensor::from_vec(sample, (rows.len(), d), device)?;
    let mut residual = model.encode_latent(&x)?.detach();
    let c = &model.config;
    let mut shared_parts = Vec::new();
    for level in 0..c.voken_len {
        let k = if c.shared_codebook {
            c.codebook_size / c.voken_len + usize::from(level < c.codebook_size % c.voken_len)
        } else {
            c.codebook_size
        };
        if k == 0 {
            continue;
        }
        let flat = residual.flatten_all()?.to_vec1::<f32>()?;
        let centroids = kmeans::kmeans(&flat, d, k, iterations, rng, device)?;
        let nearest = kmeans::nearest(&residual, &centroids)?;
        residual = (residual - centroids.index_select(&nearest, 0)?)?;
        if c.shared_codebook {
            shared_parts.push(centroids);
        } else {
            model.codebook_var(level).set(&centroids)?;
        }
    }
    if c.shared_codebook {
        model.codebook_var(0).set(&Tensor::cat(&shared_parts, 0)?)?;
    }
    Ok(())
}

/// Codes no sample chose during the epoch move onto random residuals of the last batch
/// (of their level, or of a random level for a shared codebook), so that every code
/// stays in play.
fn reseed_dead_codes(model: &Quantizer, used: &[Vec<bool>], residuals: &[Tensor], rng: &mut Rng) -> Result<()> {
    for (book, used) in used.iter().enumerate() {
        if used.iter().all(|&u| u) {
            continue;
        }
        let var = model.codebook_var(book);
        let mut rows = var.as_tensor().to_vec2::<f32>()?;
        let sources: Vec<Vec<Vec<f32>>> =
            residuals.iter().map(|r| r.to_vec2::<f32>()).collect::<std::result::Result<_, _>>()?;
        for (code, _) in used.iter().enumerate().filter(|(_, &u)| !u) {
            let level = if used.len() == 1 && residuals.len() > 1 && model.config.shared_codebook {
                rng.below(residuals.len())
            } else {
                book.min(residuals.len() - 1)
            };
            let src = &sources[level];
            rows[code].clone_from(&src[rng.below(src.len())]);
            for v in rows[code].iter_mut() {
                *v += rng.normal() * 1e-3;
            }
        }
        let (k, d) = (rows.len(), rows[0].len());
        let flat: Vec<f32> = rows.into_iter().flatten().collect();
        var.set(&Tensor::from_vec(flat, (k, d), var.device())?)?;
    }
    Ok(())
}

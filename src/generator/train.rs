//! Training the generator: L_gen (cross-entropy of the image's vokens given a caption)
//! plus L_dis (a softmax over beam candidates constrained to indexed images, with the
//! right image inserted when the beam missed it), AdamW with warm-up, cosine decay and
//! gradient clipping.

use super::loss::{dis_loss, gen_loss, Context};
use super::{Encoded, Generator, StepRows};
use crate::optim::AdamW;
use crate::progress::{Progress, Stage};
use crate::rng::Rng;
use crate::{Error, Result};
use candle_core::Tensor;
use std::path::PathBuf;
use std::time::Instant;

/// How to train the generator.
#[derive(Debug, Clone, PartialEq)]
pub struct GeneratorTrainConfig {
    /// A Hugging Face checkpoint directory: a T5 (`model_type` "t5") or a BERT-family
    /// sentence encoder (`model_type` "bert") in front of a voken decoder.
    pub model_dir: PathBuf,
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub weight_decay: f64,
    /// Global gradient-norm clip (0 = off).
    pub max_grad_norm: f64,
    pub gen_weight: f32,
    /// L_dis on or off (the paper's ablation).
    pub dis: bool,
    pub dis_weight: f32,
    /// Beam size b of the L_dis candidates.
    pub beam_size: usize,
    /// Share of each batch that also gets L_dis (0 to 1]. Scoring b+1 candidates costs
    /// about b+1 times a caption's L_gen; a share keeps CPU training affordable.
    pub dis_fraction: f32,
    /// Candidate scores are divided by this before the softmax (the reference uses 0.5).
    pub dis_temperature: f32,
    /// Code embeddings start from the tokenizer's codebook (true) or at random (ablation).
    pub init_from_codebook: bool,
    /// Voken decoder size, for the "bert" backbone.
    pub decoder_layers: usize,
    pub decoder_d_model: usize,
    /// Captions and queries are cut to this many tokens.
    pub max_text_tokens: usize,
    pub seed: u64,
    /// Also learn every image's attached texts (`Index::attach_texts`) as pseudo-queries
    /// of it (true), or captions alone (the ablation).
    pub index_texts: bool,
    /// Give the generator a vector memory slot: captions enter with their text vectors,
    /// queries with theirs, and every image with no text at all is learned from its own
    /// vector (true); or text only (the ablation).
    pub index_vectors: bool,
    /// Repeat the pairs of images that have fewer than the median number per image (a
    /// photo with one attached text beside photos with four captions) up to it, so that
    /// the generator does not learn to prefer the captioned photos' codes; images with
    /// more keep theirs. Off by default: measured in the smaller setting only
    /// (docs/benchmarks.md, "Balancing the pairs per image"). C:
    /// `AvgGeneratorTrainConfig.balance_images`.
    pub balance_images: bool,
    /// Go on with a training that was cut short (killed, or stopped by `progress`): when
    /// the index's generator comes from a training that completed fewer than `epochs`
    /// epochs, train it on from there (the data in the same order and the learning rate
    /// where it was; the optimiser's moments start afresh); one that completed `epochs`
    /// trains no more. Without such a generator (none, or one saved before libavg
    /// recorded epochs), a training from the checkpoint. A resume trains the model's
    /// shape: `model_dir`, the decoder sizes, `index_vectors` or `max_text_tokens`
    /// other than the model's are `Error::ConfigMismatch`, naming the option. Not read
    /// by an indexing pass.
    pub resume: bool,
    /// An indexing pass instead of a training from the checkpoint: the index's current
    /// generator goes on learning, for `epochs`, the pairs it has not learned yet (of
    /// images added since it trained, images removed and added again, texts attached
    /// since), mixed with as many replayed pairs it has learned (at least a batch). The result is installed only when the pass
    /// ends; a stopped pass leaves the previous generator serving. `model_dir`,
    /// `init_from_codebook`, the decoder sizes and `index_vectors` are the trained
    /// model's and are not read.
    pub incremental: bool,
}

impl Default for GeneratorTrainConfig {
    fn default() -> Self {
        GeneratorTrainConfig {
            model_dir: PathBuf::new(),
            epochs: 10,
            batch_size: 64,
            learning_rate: 1e-3,
            weight_decay: 0.01,
            max_grad_norm: 1.0,
            gen_weight: 1.0,
            dis: true,
            dis_weight: 1.0,
            beam_size: 5,
            dis_fraction: 1.0,
            dis_temperature: 0.5,
            init_from_codebook: true,
            decoder_layers: 2,
            decoder_d_model: 256,
            max_text_tokens: 32,
            seed: 42,
            index_texts: true,
            index_vectors: true,
            balance_images: false,
            resume: false,
            incremental: false,
        }
    }
}

impl GeneratorTrainConfig {
    pub(crate) fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(Error::InvalidArgument(format!("generator training: {m}")));
        if self.epochs == 0
            || self.batch_size == 0
            || self.beam_size == 0
            || self.decoder_layers == 0
            || self.max_text_tokens == 0
        {
            return bad("epochs, batch_size, beam_size, decoder_layers and max_text_tokens must be at least 1");
        }
        if self.decoder_d_model == 0 || !self.decoder_d_model.is_multiple_of(64) && self.decoder_d_model > 64 {
            return bad("decoder_d_model must be a multiple of 64 (or at most 64)");
        }
        crate::limits::cap("generator batch size", self.batch_size, 4096)?;
        crate::limits::cap("beam size", self.beam_size, crate::limits::MAX_BEAM)?;
        crate::limits::cap("max_text_tokens", self.max_text_tokens, 512)?;
        crate::limits::cap("decoder_d_model", self.decoder_d_model, 4096)?;
        crate::limits::cap("decoder_layers", self.decoder_layers, 48)?;
        let w = [self.gen_weight, self.dis_weight, self.dis_temperature];
        if !(self.learning_rate.is_finite()
            && self.learning_rate > 0.0
            && self.weight_decay.is_finite()
            && self.max_grad_norm.is_finite())
            || w.iter().any(|x| !x.is_finite() || *x < 0.0)
            || self.dis_temperature == 0.0
            || !(self.dis_fraction > 0.0 && self.dis_fraction <= 1.0)
        {
            return bad("learning rate, weights and temperature must be finite, positive where they divide");
        }
        Ok(())
    }
}

/// What a finished training reports.
#[derive(Debug, Clone, Default)]
pub struct GeneratorReport {
    pub epochs: usize,
    pub steps: usize,
    pub seconds: f64,
    /// Last epoch's mean losses.
    pub loss_gen: f32,
    pub loss_dis: f32,
    /// Images with pairs this call learned for the first time: new images, images
    /// removed and added again, images given new texts (0: an indexing pass found
    /// nothing new to learn and trained nothing).
    pub new_images: usize,
}

/// One training example: a caption (or an attached text, or nothing) with its vector
/// (a caption's text vector, an image's own vector, or none), and its image's vokens
/// (local numbers, M+1).
#[derive(Clone)]
pub(crate) struct Example {
    pub text: String,
    pub vector: Option<Vec<f32>>,
    pub vokens: Vec<u32>,
}

impl Example {
    /// A fingerprint of this pair as image `owner`'s: its text, vector and vokens, so
    /// that an image removed and added again with another vector, or given a new text,
    /// makes pairs no generator has learned.
    pub(crate) fn fingerprint(&self, owner: u64) -> u64 {
        let mut bytes = owner.to_le_bytes().to_vec();
        bytes.extend(self.vokens.iter().flat_map(|v| v.to_le_bytes()));
        bytes.extend(self.vector.iter().flatten().flat_map(|x| x.to_le_bytes()));
        bytes.push(self.vector.is_some() as u8);
        bytes.extend_from_slice(self.text.as_bytes());
        crate::checksum::fnv_words(&bytes)
    }
}

/// Beam candidates for L_dis: for each caption, voken sequences (local numbers) of
/// indexed images. Supplied by the search module.
pub(crate) type Candidates<'a> = dyn Fn(&Generator, &Encoded) -> Result<Vec<Vec<Vec<u32>>>> + 'a;

/// Share of steps in which a captioned example's vector is hidden.
const VECTOR_DROPOUT: f32 = 0.5;

pub(super) struct Prepared {
    ids: Vec<u32>,
    frozen: Option<Tensor>,
    vector: Option<Vec<f32>>,
    textless: bool,
}

/// Trains `g` in place from epoch `start` (0, or where a resumed training stopped) to
/// `cfg.epochs`. After each epoch `checkpoint` receives the model and the epochs done; a
/// stop from `progress` returns `Error::Cancelled` after the last completed checkpoint.
#[allow(clippy::too_many_arguments)]
pub(crate) fn train(
    g: &Generator,
    examples: &[Example],
    cfg: &GeneratorTrainConfig,
    start: usize,
    candidates: &Candidates,
    progress: &mut dyn FnMut(&Progress) -> bool,
    checkpoint: &mut dyn FnMut(&Generator, usize) -> Result<()>,
) -> Result<GeneratorReport> {
    if examples.is_empty() {
        return Err(Error::WrongState(
            "the index holds no captions or attached texts to train the generator on".into(),
        ));
    }
    let steps_per_epoch = examples.len().div_ceil(cfg.batch_size);
    // Preparing millions of texts takes a while: the host hears of it, and may stop it.
    let preparing =
        Progress { stage: Stage::Generator, epoch: start, epochs: cfg.epochs, steps_per_epoch, ..Default::default() };
    let prepared = prepare(g, examples, &mut || progress(&preparing), PREPARING_REPORTS)?;
    // L_dis's beam search needs no gradient: it runs on a graph-free view of the weights,
    // made only when L_dis is on.
    let searcher = if cfg.dis && cfg.dis_weight > 0.0 { Some(g.frozen(None)?) } else { None };
    let mut opt = AdamW::new(g.trainable(), cfg.learning_rate, cfg.weight_decay, cfg.max_grad_norm)?;
    let total = steps_per_epoch * cfg.epochs;
    let warmup = (total / 20).max(1);
    let mut rng = Rng::new(cfg.seed.wrapping_add(2));
    // Its own stream, so that a text-only training shuffles exactly as before.
    let mut hide = Rng::new(cfg.seed.wrapping_add(3));
    let mut order: Vec<usize> = (0..examples.len()).collect();
    let started = Instant::now();
    let mut report = GeneratorReport { steps: start * steps_per_epoch, ..Default::default() };
    // A resumed training replays the skipped epochs' shuffles and draws: it sees its
    // data in the order the uninterrupted one would have, at the same learning rate.
    for _ in 0..start {
        rng.shuffle(&mut order);
        if g.reads_vectors() {
            for _ in order.iter().filter(|&&i| !prepared[i].textless) {
                hide.uniform();
            }
        }
    }
    for epoch in start..cfg.epochs {
        rng.shuffle(&mut order);
        let mut sums = [0f32; 2];
        for (step, chunk) in order.chunks(cfg.batch_size).enumerate() {
            let t0 = Instant::now();
            let s = report.steps;
            opt.lr = cfg.learning_rate
                * if s < warmup {
                    (s + 1) as f64 / warmup as f64
                } else {
                    let p = (s - warmup) as f64 / (total - warmup).max(1) as f64;
                    0.1 + 0.9 * 0.5 * (1.0 + (std::f64::consts::PI * p).cos())
                };
            // A captioned example's vector is hidden at random, so that queries without
            // a vector are answered too; a vector-only example always keeps its own.
            let shown: Vec<bool> = match g.reads_vectors() {
                true => chunk.iter().map(|&i| prepared[i].textless || hide.uniform() >= VECTOR_DROPOUT).collect(),
                false => vec![false; chunk.len()],
            };
            let (enc, rows) = batch_encoding(g, &prepared, chunk, &shown)?;
            let targets: Vec<Vec<u32>> = chunk.iter().map(|&i| examples[i].vokens.clone()).collect();
            let ctx = Context::new(g, &enc)?;
            let gen = gen_loss(g, &ctx, &targets, Some(&rows))?;
            let mut loss = (&gen * cfg.gen_weight as f64)?;
            let mut dis_value = 0.0;
            if let Some(searcher) = &searcher {
                let n = ((chunk.len() as f32 * cfg.dis_fraction).ceil() as usize).clamp(1, chunk.len());
                let beams = candidates(searcher, &enc.first(n)?.detached()?)?;
                let dis = dis_loss(g, &ctx, &targets[..n], &beams, cfg.dis_temperature, Some(&rows))?;
                dis_value = dis.to_scalar::<f32>()?;
                loss = (loss + (dis * cfg.dis_weight as f64)?)?;
            }
            opt.backward_step(&loss, &rows.gathered().collect::<Vec<_>>())?;
            let gen_value = gen.to_scalar::<f32>()?;
            sums[0] += gen_value;
            sums[1] += dis_value;
            report.steps += 1;
            let p = Progress {
                stage: Stage::Generator,
                epoch,
                epochs: cfg.epochs,
                step,
                steps_per_epoch,
                loss: loss.to_scalar::<f32>()?,
                loss_gen: gen_value,
                loss_dis: dis_value,
                samples_per_second: chunk.len() as f32 / t0.elapsed().as_secs_f32().max(1e-9),
                ..Default::default()
            };
            if !progress(&p) {
                return Err(Error::Cancelled);
            }
        }
        [report.loss_gen, report.loss_dis] = sums.map(|s| s / steps_per_epoch as f32);
        report.epochs = epoch + 1;
        checkpoint(g, epoch + 1)?;
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Token ids of every caption and, for a frozen encoder, its states, computed once.
/// How often preparing the examples reports (a host's progress bar, its cancel button).
const PREPARING_REPORTS: std::time::Duration = std::time::Duration::from_secs(1);

/// Tokenizes the examples (and runs a frozen encoder over them), calling `going` every
/// `every`: false stops it with `Error::Cancelled`.
pub(super) fn prepare(
    g: &Generator,
    examples: &[Example],
    going: &mut dyn FnMut() -> bool,
    every: std::time::Duration,
) -> Result<Vec<Prepared>> {
    let mut out = Vec::with_capacity(examples.len());
    let mut reported = Instant::now();
    for chunk in examples.chunks(64) {
        if reported.elapsed() >= every {
            if !going() {
                return Err(Error::Cancelled);
            }
            reported = Instant::now();
        }
        let texts: Vec<&str> = chunk.iter().map(|e| e.text.as_str()).collect();
        let (ids, mask) = g.tokenize(&texts)?;
        let frozen = g.frozen_states(&ids, &mask)?;
        let lens: Vec<u32> = mask.sum(1)?.to_vec1::<u32>()?;
        let ids = ids.to_vec2::<u32>()?;
        for (i, n) in lens.into_iter().enumerate() {
            let n = n as usize;
            out.push(Prepared {
                ids: ids[i][..n].to_vec(),
                frozen: frozen.as_ref().map(|f| f.get(i)?.narrow(0, 0, n)).transpose()?,
                vector: chunk[i].vector.clone(),
                textless: chunk[i].text.trim().is_empty(),
            });
        }
    }
    Ok(out)
}

/// The encoded captions of a batch, and the embedding rows its step reads.
fn batch_encoding(
    g: &Generator,
    prepared: &[Prepared],
    chunk: &[usize],
    shown: &[bool],
) -> Result<(Encoded, StepRows)> {
    let s = chunk.iter().map(|&i| prepared[i].ids.len()).max().unwrap_or(1).max(1);
    let (mut ids, mut mask, mut frozen) = (Vec::new(), Vec::new(), Vec::new());
    for &i in chunk {
        let p = &prepared[i];
        let n = p.ids.len();
        ids.extend_from_slice(&p.ids);
        ids.resize(ids.len() + s - n, g.config.pad_token);
        mask.extend((0..s).map(|k| (k < n) as u32));
        if let Some(f) = &p.frozen {
            frozen.push(if n < s { f.pad_with_zeros(0, 0, s - n)? } else { f.clone() });
        }
    }
    let d = g.device();
    let rows = g.step_rows(&ids)?;
    let ids = Tensor::from_vec(ids, (chunk.len(), s), d)?;
    let mask = Tensor::from_vec(mask, (chunk.len(), s), d)?;
    let frozen = if frozen.is_empty() { None } else { Some(Tensor::stack(&frozen, 0)?) };
    let vectors: Vec<Option<&[f32]>> =
        chunk.iter().zip(shown).map(|(&i, &s)| prepared[i].vector.as_deref().filter(|_| s)).collect();
    Ok((g.with_vectors(g.encode_ids(&ids, &mask, frozen.as_ref(), Some(&rows))?, &vectors)?, rows))
}

impl Encoded {
    pub(crate) fn detached(&self) -> Result<Encoded> {
        Ok(Encoded { states: self.states.detach(), mask: self.mask.clone() })
    }

    fn first(&self, n: usize) -> Result<Encoded> {
        Ok(Encoded { states: self.states.narrow(0, 0, n)?, mask: self.mask.narrow(0, 0, n)? })
    }
}

/// L_gen + L_dis of one batch, as a training step computes it (for gradient tests).
#[cfg(test)]
pub(crate) fn step_loss(
    g: &Generator,
    batch: &[Example],
    trie: &crate::vokens::trie::Trie,
    beam: usize,
) -> Result<Tensor> {
    let texts: Vec<&str> = batch.iter().map(|e| e.text.as_str()).collect();
    let vectors: Vec<Option<&[f32]>> = batch.iter().map(|e| e.vector.as_deref()).collect();
    let enc = g.encode(&texts, &vectors)?;
    let targets: Vec<Vec<u32>> = batch.iter().map(|e| e.vokens.clone()).collect();
    let ctx = Context::new(g, &enc)?;
    let beams = super::beam::sequences(&g.frozen(None)?, trie, &enc.detached()?, beam)?;
    Ok((gen_loss(g, &ctx, &targets, None)? + dis_loss(g, &ctx, &targets, &beams, 0.5, None)?)?)
}

//! Training the generator: L_gen (cross-entropy of the image's vokens given a caption)
//! plus L_dis (a softmax over beam candidates constrained to indexed images, with the
//! right image inserted when the beam missed it), AdamW with warm-up, cosine decay and
//! gradient clipping.

use super::loss::{dis_loss, gen_loss, Context};
use super::{Encoded, Generator, GeneratorReport, GeneratorTrainConfig, StepRows};
use crate::optim::AdamW;
use crate::progress::{Progress, Stage, StepLog};
use crate::rng::Rng;
use crate::{Error, Result};
use candle_core::Tensor;
use std::time::Instant;

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
    let trainer = Trainer { g, examples, prepared, cfg, searcher, candidates };
    let mut opt = AdamW::new(g.trainable(), cfg.learning_rate, cfg.weight_decay, cfg.max_grad_norm)?;
    let schedule = Schedule { total: steps_per_epoch * cfg.epochs, warmup: (steps_per_epoch * cfg.epochs / 20).max(1) };
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
        trainer.shown(&order, &mut hide);
    }
    let put = |p: &mut Progress, [gen, dis]: [f32; 2]| (p.loss_gen, p.loss_dis) = (gen, dis);
    let mut log = StepLog::new(progress, Stage::Generator, cfg.epochs, steps_per_epoch, put);
    for epoch in start..cfg.epochs {
        rng.shuffle(&mut order);
        log.start_epoch(epoch);
        for (step, chunk) in order.chunks(cfg.batch_size).enumerate() {
            let began = Instant::now();
            opt.lr = cfg.learning_rate * schedule.factor(report.steps);
            let (total, losses) = trainer.step(&mut opt, chunk, &trainer.shown(chunk, &mut hide))?;
            report.steps += 1;
            log.step(step, chunk.len(), began, total, losses)?;
        }
        [report.loss_gen, report.loss_dis] = log.means();
        report.epochs = epoch + 1;
        checkpoint(g, epoch + 1)?;
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// The learning rate's factor: linear warm-up over `warmup` steps, then a cosine decay
/// to a tenth at step `total`.
struct Schedule {
    total: usize,
    warmup: usize,
}

impl Schedule {
    fn factor(&self, s: usize) -> f64 {
        if s < self.warmup {
            return (s + 1) as f64 / self.warmup as f64;
        }
        let p = (s - self.warmup) as f64 / (self.total - self.warmup).max(1) as f64;
        0.1 + 0.9 * 0.5 * (1.0 + (std::f64::consts::PI * p).cos())
    }
}

/// What every step of one training reads.
struct Trainer<'a> {
    g: &'a Generator,
    examples: &'a [Example],
    prepared: Vec<Prepared>,
    cfg: &'a GeneratorTrainConfig,
    /// L_dis's beam searcher, when L_dis is on.
    searcher: Option<Generator>,
    candidates: &'a Candidates<'a>,
}

impl Trainer<'_> {
    /// Which examples of `chunk` show their vector: a captioned example's is hidden at
    /// random, so that queries without a vector are answered too; a vector-only example
    /// always keeps its own. Draws from `hide` only for a model that reads vectors.
    fn shown(&self, chunk: &[usize], hide: &mut Rng) -> Vec<bool> {
        match self.g.reads_vectors() {
            true => chunk.iter().map(|&i| self.prepared[i].textless || hide.uniform() >= VECTOR_DROPOUT).collect(),
            false => vec![false; chunk.len()],
        }
    }

    /// One optimiser step on the examples `chunk`: the weighted total, L_gen and L_dis.
    fn step(&self, opt: &mut AdamW, chunk: &[usize], shown: &[bool]) -> Result<(f32, [f32; 2])> {
        let (g, cfg) = (self.g, self.cfg);
        let (enc, rows) = batch_encoding(g, &self.prepared, chunk, shown)?;
        let targets: Vec<Vec<u32>> = chunk.iter().map(|&i| self.examples[i].vokens.clone()).collect();
        let ctx = Context::new(g, &enc)?;
        let gen = gen_loss(g, &ctx, &targets, Some(&rows))?;
        let mut loss = (&gen * cfg.gen_weight as f64)?;
        let mut dis_value = 0.0;
        if let Some(searcher) = &self.searcher {
            let n = ((chunk.len() as f32 * cfg.dis_fraction).ceil() as usize).clamp(1, chunk.len());
            let beams = (self.candidates)(searcher, &enc.first(n)?.detached()?)?;
            let dis = dis_loss(g, &ctx, &targets[..n], &beams, cfg.dis_temperature, Some(&rows))?;
            dis_value = dis.to_scalar::<f32>()?;
            loss = (loss + (dis * cfg.dis_weight as f64)?)?;
        }
        opt.backward_step(&loss, &rows.gathered().collect::<Vec<_>>())?;
        Ok((loss.to_scalar::<f32>()?, [gen.to_scalar::<f32>()?, dis_value]))
    }
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
    let beams = super::beam::sequences(&g.frozen(None)?, trie.into(), &enc.detached()?, beam)?;
    Ok((gen_loss(g, &ctx, &targets, None)? + dis_loss(g, &ctx, &targets, &beams, 0.5, None)?)?)
}

//! Training the tokenizer and the generator, and indexing passes.

use super::images::encode_rows;
use super::pairs::{balanced, images_in, replay_set};
use super::{not_tokenized, Index, Model};
use crate::generator::beam;
use crate::generator::{self, Generator, GeneratorReport, GeneratorTrainConfig, NewGenerator, TrainedEpochs};
use crate::progress::Progress;
use crate::quantizer::{self, Quantizer, TokenizerReport, TokenizerTrainConfig};
use crate::records::Records;
use crate::vokens::Vokens;
use crate::{limits, Error, Result};
use std::collections::HashMap;
use std::sync::Arc;

impl Index {
    /// Trains the tokenizer on the images and captions now in the index, gives every
    /// image its vokens and saves the index. `progress` is called after every step and
    /// may return false to stop: the call then fails with `Error::Cancelled` and the
    /// index keeps its previous tokenizer and vokens. Searches and adds go on meanwhile;
    /// images added during training get their vokens from the new tokenizer.
    ///
    /// With a generator trained, the new tokenizer and its vokens wait (saved) for one
    /// trained on them: until a full `train_generator` ends, searches, `vokens` and
    /// `tokenizer_stats` use the previous ones and the previous generator serves
    /// ([`Index::has_pending_tokenizer`]). Retraining again replaces what waits.
    ///
    /// On glibc, training changes malloc's settings for the process while it runs, so
    /// that freed tensors are reused instead of handed back to the kernel and faulted in
    /// again every step; when the last training ends, the memory goes back to the system.
    /// The same holds for `train_generator`.
    pub fn train_tokenizer(
        &self,
        cfg: &TokenizerTrainConfig,
        mut progress: impl FnMut(&Progress) -> bool,
    ) -> Result<TokenizerReport> {
        self.writable()?;
        cfg.validate()?;
        let c = &self.config;
        let books = if cfg.shared_codebook { 1 } else { c.voken_len };
        limits::check_tensor("the codebooks", &[books, c.codebook_size, c.dim], "use a shared codebook or lower N")?;
        let codebook_bytes = (books * c.codebook_size * c.dim * 4) as u64;
        limits::check_memory(
            "tokenizer training",
            limits::TOKENIZER_PEAK_PER_CODEBOOK_BYTE * codebook_bytes,
            "lower the index's codebook_size (N) or use a shared codebook",
        )?;
        let _heap = crate::heap::retain();
        let data = self.with_records(|r| training_set(r, cfg.align))?;
        let (model, mut report) =
            quantizer::train(&data, c.codebook_size, c.voken_len, cfg, &self.device, &mut progress)?;
        let model = Arc::new(model);
        let (ids, vectors) =
            self.with_records(|r| Ok::<_, Error>((r.ids.clone(), r.vectors.originals()?.into_owned())))?;
        let mut codes: HashMap<u64, Vec<u32>> =
            ids.into_iter().zip(encode_rows(&model, &vectors, c.dim, &self.device)?).collect();
        {
            let mut guard = self.state.write();
            let st = &mut *guard;
            let r = &mut st.records;
            let mut vokens = Vokens::new(c.voken_len, c.codebook_size);
            for row in 0..r.len() {
                let code = match codes.remove(&r.ids[row]) {
                    Some(code) => code,
                    None => encode_rows(&model, &r.original(row)?, c.dim, &self.device)?.remove(0),
                };
                vokens.check_room(std::slice::from_ref(&code))?;
                vokens.push(&code, r.ids[row]);
            }
            report.stats = vokens.stats();
            let model = Some(Model { model, saved: None });
            match st.generator.is_some() {
                true => {
                    r.pending_vokens = Some(vokens);
                    st.pending_tokenizer = model;
                    crate::log::emit(crate::log::Level::Info, || {
                        "the tokenizer was retrained: its vokens serve once train_generator has learned them; \
                         the generator of the previous vokens serves until then"
                            .into()
                    });
                }
                false => (r.vokens, st.tokenizer) = (Some(vokens), model),
            }
        }
        self.save()?;
        crate::log::emit(crate::log::Level::Info, || {
            format!(
                "tokenizer trained: {} epochs in {:.1} s, {} images share their codes, code usage per level {:?}",
                report.epochs, report.seconds, report.stats.collided_images, report.stats.usage_per_level
            )
        });
        Ok(report)
    }

    /// Trains the generator on every caption and attached text in the index, paired with
    /// its image's vokens (the tokenizer must be trained). After each epoch the model so far
    /// answers searches and is saved; `progress` (called after every step, and about once
    /// a second while the texts are prepared, at step 0 with no losses) may return false
    /// to stop, and the call
    /// then fails with `Error::Cancelled`, leaving the last completed epoch's model (or
    /// the previous generator, before the first epoch ends). Should the tokenizer be
    /// retrained meanwhile, the call fails with `Error::WrongState` at the end of the
    /// epoch and installs nothing: a generator only ever serves the vokens it learned.
    ///
    /// A full training learns a pending tokenizer's vokens when there is one (see
    /// `train_tokenizer`); then it installs its model, with those vokens, only when it
    /// ends, so that a stopped one leaves the previous generator serving, and `resume`
    /// has nothing to go on from. An indexing pass always learns the vokens searches use.
    pub fn train_generator(
        &self,
        cfg: &GeneratorTrainConfig,
        mut progress: impl FnMut(&Progress) -> bool,
    ) -> Result<GeneratorReport> {
        self.writable()?;
        cfg.validate()?;
        self.check_step_size(cfg)?;
        let _heap = crate::heap::retain();
        let plan = self.generator_plan(cfg)?;
        if plan.resumed.is_some() && plan.start >= cfg.epochs {
            return Ok(GeneratorReport { epochs: plan.start, ..Default::default() });
        }
        let data = self.generator_data(cfg, &plan)?;
        let (examples, learned, new_images) = match &plan.base {
            None => {
                let n = images_in(&data.owners);
                let pairs = data.examples.iter().zip(&data.owners).map(|(e, &id)| e.fingerprint(id)).collect();
                (data.examples, pairs, n)
            }
            Some(b) => match replay_set(b.learned(), data.examples, &data.owners, cfg) {
                Some(set) => set,
                None => return Ok(GeneratorReport::default()),
            },
        };
        let mut g = match plan.continued() {
            Some(b) => b.trainable_copy()?,
            None => self.new_generator(cfg, data.codebook)?,
        };
        g.set_learned(learned);
        let candidates =
            |g: &Generator, enc: &generator::Encoded| beam::sequences(g, data.vokens.trie().into(), enc, cfg.beam_size);
        // A full training installs every epoch's model; an indexing pass or one that
        // learns waiting vokens only its end, so that a stopped one leaves the previous
        // model serving.
        let every_epoch = plan.base.is_none() && !plan.staged;
        let install = |g: &Generator, done| self.install_generator(g, done, cfg.epochs, &data.tokenizer);
        let mut checkpoint = |g: &Generator, done| if every_epoch { install(g, Some(done)) } else { Ok(()) };
        let mut report = generator::train(&g, &examples, cfg, plan.start, &candidates, &mut progress, &mut checkpoint)?;
        match (&plan.base, plan.staged) {
            (Some(_), _) => install(&g, None)?,
            (None, true) => install(&g, Some(report.epochs))?,
            (None, false) => {}
        }
        report.new_images = new_images;
        crate::log::emit(crate::log::Level::Info, || match plan.base {
            Some(_) => format!(
                "indexing pass: {} new images, {} epochs in {:.1} s, L_gen {:.3}",
                report.new_images, report.epochs, report.seconds, report.loss_gen
            ),
            None => format!(
                "generator trained: epochs {}..{} of {}, {:.1} s, L_gen {:.3}, L_dis {:.3}",
                plan.start, report.epochs, cfg.epochs, report.seconds, report.loss_gen, report.loss_dis
            ),
        });
        Ok(report)
    }

    /// Refuses a step whose voken logits would not fit: every caption's M+1 positions
    /// over 2N vokens, for L_gen and, with L_dis, for each of its beam + 1 candidates.
    fn check_step_size(&self, cfg: &GeneratorTrainConfig) -> Result<()> {
        let candidates = if cfg.dis { (cfg.dis_fraction * (cfg.beam_size + 1) as f32).ceil() as usize } else { 0 };
        let c = &self.config;
        limits::check_tensor(
            "a training step's voken logits",
            &[cfg.batch_size, 1 + candidates, c.voken_len + 1, 2 * c.codebook_size],
            "lower batch_size, beam_size or dis_fraction",
        )
    }

    /// Which training this call is: an indexing pass, a full training of waiting vokens,
    /// one resumed, or a new one.
    fn generator_plan(&self, cfg: &GeneratorTrainConfig) -> Result<GeneratorPlan> {
        let base = match cfg.incremental {
            true => Some(self.generator_model().ok_or_else(|| {
                Error::WrongState("an indexing pass needs a trained generator (train without incremental first)".into())
            })?),
            false => None,
        };
        // A full training learns the vokens that wait, if any, and installs them with its
        // model at the end.
        let staged = base.is_none() && self.has_pending_tokenizer();
        // A training cut short goes on from where it stopped (one that reached `epochs`
        // has nothing left to do).
        let resumed = match cfg.resume && base.is_none() && !staged {
            true => self.generator_model().filter(|g| g.epochs().planned > 0),
            false => None,
        };
        if let Some(why) = resumed.as_ref().and_then(|g| g.resume_mismatch(cfg)) {
            return Err(Error::ConfigMismatch(why));
        }
        let start = resumed.as_ref().map_or(0, |g| g.epochs().done);
        Ok(GeneratorPlan { base, staged, resumed, start })
    }

    /// The pairs to learn (each caption and attached text with its image's vokens), read
    /// under the lock with the vokens and tokenizer they belong to.
    fn generator_data(&self, cfg: &GeneratorTrainConfig, plan: &GeneratorPlan) -> Result<GeneratorData> {
        // The architecture of the model being trained decides whether pairs carry vectors.
        let with_vectors = plan.continued().map_or(cfg.index_vectors, |b| b.reads_vectors());
        let st = self.state.read();
        let r = &st.records;
        let target = match plan.staged {
            true => (&r.pending_vokens, &st.pending_tokenizer),
            false => (&r.vokens, &st.tokenizer),
        };
        let (Some(v), Some(t)) = target else { return Err(not_tokenized()) };
        let mut examples = Vec::with_capacity(r.caption_count() + r.text_count());
        let mut owners = Vec::with_capacity(examples.capacity());
        for row in 0..r.len() {
            let vokens = v.local(v.row(row));
            let example = |text: &str, vector: Option<&[f32]>| generator::Example {
                text: text.to_owned(),
                vector: vector.filter(|_| with_vectors).map(<[f32]>::to_vec),
                vokens: vokens.clone(),
            };
            examples.extend(r.captions[row].iter().map(|c| example(&c.text, c.vector.as_deref())));
            let texts = if cfg.index_texts { r.texts(row) } else { &[] };
            examples.extend(texts.iter().map(|t| example(&t.text, None)));
            if with_vectors && r.captions[row].is_empty() && texts.is_empty() {
                // An image with no text at all is learned from its own vector.
                examples.push(example("", Some(&r.original(row)?)));
            }
            owners.resize(examples.len(), r.ids[row]);
        }
        if cfg.balance_images {
            (examples, owners) = balanced(examples, &owners);
        }
        let codebook = match cfg.init_from_codebook && plan.continued().is_none() {
            true => Some(t.model.codebook_embeddings()?),
            false => None,
        };
        Ok(GeneratorData { examples, owners, vokens: v.clone(), codebook, tokenizer: t.model.clone() })
    }

    /// A new generator from the backbone checkpoint `cfg.model_dir`.
    fn new_generator(&self, cfg: &GeneratorTrainConfig, codebook: Option<candle_core::Tensor>) -> Result<Generator> {
        let c = &self.config;
        let new = NewGenerator {
            model_dir: &cfg.model_dir,
            codebook_size: c.codebook_size,
            voken_len: c.voken_len,
            codebook,
            decoder_layers: cfg.decoder_layers,
            decoder_d_model: cfg.decoder_d_model,
            max_text_tokens: cfg.max_text_tokens,
            seed: cfg.seed,
            vector_dim: cfg.index_vectors.then_some(c.dim),
        };
        Generator::from_pretrained(&new, &self.device)
    }

    /// Serves a snapshot of `g` (trained on `tokenizer`'s vokens) and saves the index.
    /// `done`: the epochs done of this training, recorded with a full training's model
    /// so that it can resume; a pass keeps its base's.
    fn install_generator(
        &self,
        g: &Generator,
        done: Option<usize>,
        planned: usize,
        tokenizer: &Arc<Quantizer>,
    ) -> Result<()> {
        let mut snapshot = g.frozen(Some(self.config.search_weights))?;
        if let Some(done) = done {
            snapshot.set_epochs(TrainedEpochs { done, planned });
        }
        // Candle queues CUDA work on the calling thread's stream: finish the copies
        // before searches on other threads read them.
        self.device.synchronize()?;
        let mut st = self.state.write();
        let learned = |t: &Option<Model<Quantizer>>| t.as_ref().is_some_and(|t| Arc::ptr_eq(&t.model, tokenizer));
        if learned(&st.pending_tokenizer) {
            // The vokens that waited serve from now on, with this model.
            let t = st.pending_tokenizer.take().map(|t| Model { saved: None, ..t });
            st.tokenizer = t; // saved again under its own name
            st.records.vokens = st.records.pending_vokens.take();
        } else if !learned(&st.tokenizer) {
            // A tokenizer retrained meanwhile gave the images other vokens: this
            // model answers for the old ones and must never serve beside the new.
            return Err(Error::WrongState(
                "the tokenizer was retrained while the generator trained; the generator was not installed \
                 (train it again for the new vokens)"
                    .into(),
            ));
        }
        st.generator = Some(Model { model: Arc::new(snapshot), saved: None });
        drop(st);
        self.save()
    }
}

/// What a `train_generator` call does, decided before any work.
struct GeneratorPlan {
    /// An indexing pass's model, which the pass continues.
    base: Option<Arc<Generator>>,
    /// A full training that learns the pending tokenizer's vokens.
    staged: bool,
    /// The model a training cut short goes on from.
    resumed: Option<Arc<Generator>>,
    /// The first epoch to train.
    start: usize,
}

impl GeneratorPlan {
    /// The model trained further, if not a new one.
    fn continued(&self) -> Option<&Arc<Generator>> {
        self.base.as_ref().or(self.resumed.as_ref())
    }
}

/// A training's pairs (`owners` naming each one's image) and what they were made from.
struct GeneratorData {
    examples: Vec<generator::Example>,
    owners: Vec<u64>,
    vokens: Vokens,
    codebook: Option<candle_core::Tensor>,
    tokenizer: Arc<Quantizer>,
}

/// Every caption paired with its image; images without captions appear alone. With
/// alignment on, every caption must have a text vector.
fn training_set(r: &Records, align: bool) -> Result<quantizer::TrainingSet> {
    let mut pairs = Vec::with_capacity(r.caption_count() + r.len());
    for row in 0..r.len() {
        if r.captions[row].is_empty() {
            pairs.push((row, None));
        }
        for (i, c) in r.captions[row].iter().enumerate() {
            if align && c.vector.is_none() {
                return Err(Error::InvalidArgument(format!(
                    "caption {i} of image {} has no text vector, which the alignment loss needs \
                     (add captions with vectors, or train with align off)",
                    r.ids[row]
                )));
            }
            pairs.push((row, c.vector.clone()));
        }
    }
    Ok(quantizer::TrainingSet { dim: r.dim, images: r.vectors.originals()?.into_owned(), pairs })
}

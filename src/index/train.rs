//! Training the tokenizer and the generator, and indexing passes.

use super::images::encode_rows;
use super::{not_tokenized, Index, Model};
use crate::generator::beam;
use crate::generator::{self, Generator, GeneratorReport, GeneratorTrainConfig, Learned, NewGenerator, TrainedEpochs};
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
        let (ids, vectors) = self.with_records(|r| (r.ids.clone(), r.vectors.clone()));
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
                    None => encode_rows(&model, r.vector(row), c.dim, &self.device)?.remove(0),
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
        // The step's voken logits: every caption's M+1 positions over 2N vokens, for
        // L_gen and, with L_dis, for each of its beam + 1 candidates.
        let candidates = if cfg.dis { (cfg.dis_fraction * (cfg.beam_size + 1) as f32).ceil() as usize } else { 0 };
        let c = &self.config;
        limits::check_tensor(
            "a training step's voken logits",
            &[cfg.batch_size, 1 + candidates, c.voken_len + 1, 2 * c.codebook_size],
            "lower batch_size, beam_size or dis_fraction",
        )?;
        let _heap = crate::heap::retain();
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
        if start >= cfg.epochs && resumed.is_some() {
            return Ok(GeneratorReport { epochs: start, ..Default::default() });
        }
        let continued = base.as_ref().or(resumed.as_ref());
        // The architecture of the model being trained decides whether pairs carry vectors.
        let with_vectors = continued.map_or(cfg.index_vectors, |b| b.reads_vectors());
        let (examples, owners, vokens, codebook, tokenizer) = {
            let st = self.state.read();
            let r = &st.records;
            let target = match staged {
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
                let texts = if cfg.index_texts { r.texts[row].as_slice() } else { &[] };
                examples.extend(texts.iter().map(|t| example(&t.text, None)));
                if with_vectors && r.captions[row].is_empty() && texts.is_empty() {
                    // An image with no text at all is learned from its own vector.
                    examples.push(example("", Some(r.vector(row))));
                }
                owners.resize(examples.len(), r.ids[row]);
            }
            if cfg.balance_images {
                (examples, owners) = balanced(examples, &owners);
            }
            let codebook =
                if cfg.init_from_codebook && continued.is_none() { Some(t.model.codebook_embeddings()?) } else { None };
            (examples, owners, v.clone(), codebook, t.model.clone())
        };
        let (examples, learned, new_images) = match &base {
            None => {
                let n = images_in(&owners);
                let pairs = examples.iter().zip(&owners).map(|(e, &id)| e.fingerprint(id)).collect();
                (examples, pairs, n)
            }
            Some(b) => match replay_set(b.learned(), examples, &owners, cfg) {
                Some(set) => set,
                None => return Ok(GeneratorReport::default()),
            },
        };
        let mut g = match continued {
            Some(b) => b.trainable_copy()?,
            None => Generator::from_pretrained(
                &NewGenerator {
                    model_dir: &cfg.model_dir,
                    codebook_size: c.codebook_size,
                    voken_len: c.voken_len,
                    codebook,
                    decoder_layers: cfg.decoder_layers,
                    decoder_d_model: cfg.decoder_d_model,
                    max_text_tokens: cfg.max_text_tokens,
                    seed: cfg.seed,
                    vector_dim: cfg.index_vectors.then_some(c.dim),
                },
                &self.device,
            )?,
        };
        g.set_learned(learned);
        let candidates =
            |g: &Generator, enc: &generator::Encoded| beam::sequences(g, vokens.trie(), enc, cfg.beam_size);
        // Epochs done of this training, recorded with a full training's model so that it
        // can resume; a pass keeps its base's.
        let install = |g: &Generator, done: Option<usize>| -> Result<()> {
            let mut snapshot = g.frozen(Some(self.config.search_weights))?;
            if let Some(done) = done {
                snapshot.set_epochs(TrainedEpochs { done, planned: cfg.epochs });
            }
            // Candle queues CUDA work on the calling thread's stream: finish the copies
            // before searches on other threads read them.
            self.device.synchronize()?;
            let mut st = self.state.write();
            let learned = |t: &Option<Model<Quantizer>>| t.as_ref().is_some_and(|t| Arc::ptr_eq(&t.model, &tokenizer));
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
        };
        // A full training installs every epoch's model; an indexing pass or one that
        // learns waiting vokens only its end, so that a stopped one leaves the previous
        // model serving.
        let every_epoch = base.is_none() && !staged;
        let mut checkpoint = |g: &Generator, done| if every_epoch { install(g, Some(done)) } else { Ok(()) };
        let mut report = generator::train(&g, &examples, cfg, start, &candidates, &mut progress, &mut checkpoint)?;
        match (&base, staged) {
            (Some(_), _) => install(&g, None)?,
            (None, true) => install(&g, Some(report.epochs))?,
            (None, false) => {}
        }
        report.new_images = new_images;
        crate::log::emit(crate::log::Level::Info, || match base {
            Some(_) => format!(
                "indexing pass: {} new images, {} epochs in {:.1} s, L_gen {:.3}",
                report.new_images, report.epochs, report.seconds, report.loss_gen
            ),
            None => format!(
                "generator trained: epochs {start}..{} of {}, {:.1} s, L_gen {:.3}, L_dis {:.3}",
                report.epochs, cfg.epochs, report.seconds, report.loss_gen, report.loss_dis
            ),
        });
        Ok(report)
    }
}

/// Each image's pairs (contiguous, `owners` naming their image) cycled up to the median
/// count per image (the upper one); images with more keep theirs. The median, not the
/// largest count, so that one image with many captions does not multiply the epoch.
fn balanced(examples: Vec<generator::Example>, owners: &[u64]) -> (Vec<generator::Example>, Vec<u64>) {
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
fn images_in(owners: &[u64]) -> usize {
    owners.windows(2).filter(|w| w[0] != w[1]).count() + usize::from(!owners.is_empty())
}

/// An indexing pass's pairs: those the base generator has not learned (of images added
/// since, of images removed and added again, texts attached since), and as many learned
/// ones again (at least a batch), drawn at random, replayed so that they are not
/// forgotten. With the fingerprints of every pair now in the index (all learned after
/// the pass) and the number of images with new pairs; `None` when every pair is learned.
fn replay_set(
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
    Ok(quantizer::TrainingSet { dim: r.dim, images: r.vectors.clone(), pairs })
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

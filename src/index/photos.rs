//! Photos added by file or bytes, embedded by the index's image encoder, and the encoder
//! an index records.

use super::{Index, IndexConfig};
use crate::encoders::{Clip, ImageSource};
use crate::progress::{Progress, Stage};
use crate::records::NewImage;
use crate::store::EncoderRecord;
use crate::{limits, Error, Result};
use std::path::Path;
use std::time::Instant;

/// A photo to add: its id, optional external key, and where its pixels come from.
#[derive(Debug, Clone, Copy)]
pub struct NewPhoto<'a> {
    pub id: u64,
    pub key: Option<&'a str>,
    pub source: ImageSource<'a>,
}

/// Photos decoded and embedded per step of `add_photos` (and per progress report).
const PHOTO_CHUNK: usize = 32;

impl Index {
    /// The CLIP towers named in the config, if any.
    pub fn image_encoder(&self) -> Option<&Clip> {
        self.clip.as_ref()
    }

    pub(crate) fn encoder(&self) -> Result<&Clip> {
        self.clip.as_ref().ok_or_else(|| {
            Error::WrongState(
                "the index has no image encoder (open it with image_encoder set to a CLIP directory)".into(),
            )
        })
    }

    /// Adds photos, embedding them with the image encoder: decoding and preprocessing
    /// on all cores, the vision tower in batches. One result per photo, in order: a
    /// photo that cannot be read, or whose id is taken, fails alone and the rest go in.
    /// `progress` is called after every batch of 32 (stage `Images`, `step` counting
    /// batches); when it returns false the photos not yet reached fail with
    /// `Error::Cancelled` and those added stay. Should the model fail, the photos of that
    /// batch and after carry its error. The call itself fails only without an encoder or
    /// for a batch over the limit.
    pub fn add_photos(
        &self,
        photos: &[NewPhoto],
        mut progress: impl FnMut(&Progress) -> bool,
    ) -> Result<Vec<Result<()>>> {
        self.writable()?;
        let clip = self.encoder()?;
        limits::check_batch(photos.len())?;
        let start = Instant::now();
        let chunks = photos.len().div_ceil(PHOTO_CHUNK);
        let mut out: Vec<Result<()>> = Vec::with_capacity(photos.len());
        for (step, chunk) in photos.chunks(PHOTO_CHUNK).enumerate() {
            let sources: Vec<ImageSource> = chunk.iter().map(|p| p.source).collect();
            let vectors = match clip.embed_images(&sources) {
                Ok(v) => v,
                Err(e) => {
                    // The photos added so far stay; this batch and the rest carry the error.
                    let m = e.to_string();
                    out.resize_with(photos.len(), || Err(Error::Model(m.clone())));
                    return Ok(out);
                }
            };
            let images: Vec<NewImage> = chunk
                .iter()
                .zip(&vectors)
                .filter_map(|(p, v)| v.as_ref().ok().map(|v| NewImage { id: p.id, key: p.key, vector: v }))
                .collect();
            // All at once; if that is refused (a taken id), one by one to tell which.
            let mut added = match self.add_images(&images) {
                Ok(()) => images.iter().map(|_| Ok(())).collect(),
                Err(_) => images.iter().map(|i| self.add_images(std::slice::from_ref(i))).collect::<Vec<_>>(),
            }
            .into_iter();
            out.extend(
                vectors.into_iter().map(|v| v.and_then(|_| added.next().expect("one result per embedded photo"))),
            );
            let report = Progress {
                stage: Stage::Images,
                epochs: 1,
                step,
                steps_per_epoch: chunks,
                samples_per_second: out.len() as f32 / start.elapsed().as_secs_f32().max(1e-9),
                ..Default::default()
            };
            if !progress(&report) {
                break;
            }
        }
        out.resize_with(photos.len(), || Err(Error::Cancelled));
        Ok(out)
    }
}

/// The image encoder an index recorded, loaded from its directory when that still holds
/// the same checkpoint; otherwise none (logged), and photos need an explicit encoder.
pub(super) fn recorded_encoder(dir: &Path, r: &EncoderRecord, device: &candle_core::Device) -> Option<Clip> {
    let warn = |why: String| {
        crate::log::emit(crate::log::Level::Warn, || {
            format!("{}: opened without its image encoder {}: {why}", dir.display(), r.dir)
        })
    };
    match Clip::load_on(Path::new(&r.dir), device) {
        Ok(c) if c.fingerprint() == r.fingerprint => Some(c),
        Ok(c) => {
            warn(format!("its files changed (fingerprint {}, recorded {})", c.fingerprint(), r.fingerprint));
            None
        }
        Err(e) => {
            warn(e.to_string());
            None
        }
    }
}

/// The image encoder an opened index records: the open one (which must be the one it
/// recorded before, if any), else the recorded one.
pub(super) fn encoder_record(
    dir: &Path,
    config: &IndexConfig,
    clip: Option<&Clip>,
    recorded: Option<EncoderRecord>,
) -> Result<Option<EncoderRecord>> {
    Ok(match (clip, recorded) {
        (Some(c), Some(r)) if r.fingerprint != c.fingerprint() => {
            return Err(Error::ConfigMismatch(format!(
                "{}: its vectors come from the image encoder {} (fingerprint {}), not from {} ({}); \
                 open it with that encoder",
                dir.display(),
                r.dir,
                r.fingerprint,
                config.image_encoder.as_deref().unwrap_or(Path::new("")).display(),
                c.fingerprint()
            )))
        }
        (Some(c), recorded) => {
            let now = record(c, config);
            if recorded.is_none() {
                crate::log::emit(crate::log::Level::Info, || {
                    format!("{}: records the image encoder {} ({})", dir.display(), now.dir, now.fingerprint)
                });
            }
            Some(now)
        }
        (None, r) => r,
    })
}

pub(super) fn record(clip: &Clip, config: &IndexConfig) -> EncoderRecord {
    let dir = config.image_encoder.as_deref().unwrap_or(Path::new(""));
    EncoderRecord { dir: dir.display().to_string(), fingerprint: clip.fingerprint().to_owned() }
}

/// The encoder's joint space must be the index's vector space.
pub(super) fn check_encoder(clip: Option<&Clip>, dim: usize) -> Result<()> {
    match clip {
        Some(c) if c.dim() != dim => Err(Error::ConfigMismatch(format!(
            "the image encoder's projection_dim is {}, the index dim {dim}",
            c.dim()
        ))),
        _ => Ok(()),
    }
}

//! `manifest.json`: the one file whose atomic replacement commits a save. It names every
//! data file of the current generation with its size and checksum.

use super::files;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// Highest on-disk format this library reads and the one it writes. Format 4 stores the
/// attached texts' vectors; format 3 checks data files with CRC-32 (formats 1 and 2 with
/// a checksum of their own); format 2 added the texts attached to images. Older indexes
/// open as they are and are saved in format 4.
pub const FORMAT_VERSION: u32 = 4;

pub(crate) const MANIFEST: &str = "manifest.json";
/// A manifest names files and model configs only: anything larger is not one.
pub(crate) const MAX_MANIFEST_BYTES: u64 = 16 << 20;
/// Room for a vectors file's safetensors header (seven tensors' names, shapes and
/// offsets, padded): far more than it takes.
const SAFETENSORS_HEADER_SLACK: u128 = 64 << 10;

/// Whether `name` is a data file a save writes (`records-7.json`, `generator-7.safetensors`,
/// or its temporary `….tmp`): the only files the store ever deletes.
pub(crate) fn is_data_file(name: &str) -> bool {
    let name = name.strip_suffix(".tmp").unwrap_or(name);
    let Some((stem, ext)) = name.rsplit_once('.') else { return false };
    let Some((kind, generation)) = stem.rsplit_once('-') else { return false };
    let known = matches!(
        (kind, ext),
        ("records", "json") | ("vectors" | "tokenizer" | "pending_tokenizer" | "generator", "safetensors")
    );
    known && !generation.is_empty() && generation.bytes().all(|b| b.is_ascii_digit())
}

/// The index shape fixed at creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Shape {
    pub dim: usize,
    pub codebook_size: usize,
    pub voken_len: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Manifest {
    pub format_version: u32,
    /// Increases by one with every save; data files carry it in their names.
    pub generation: u64,
    pub shape: Shape,
    pub images: usize,
    pub captions: usize,
    /// Texts attached to images; absent before libavg counted them here, and then the
    /// records file's size is bounded by the limits alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub texts: Option<usize>,
    pub records: FileRef,
    pub vectors: FileRef,
    /// Trained models by name ("tokenizer", "generator").
    #[serde(default)]
    pub models: BTreeMap<String, ModelEntry>,
    /// The image encoder that computes the index's vectors, once it was opened with one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_encoder: Option<EncoderRecord>,
}

/// An image encoder as an index knows it: where it was first opened from, and its
/// fingerprint (`Clip::fingerprint`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct EncoderRecord {
    pub dir: String,
    pub fingerprint: String,
}

/// A trained model: its architecture (as the model module defines it) and its weights.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ModelEntry {
    pub config: serde_json::Value,
    pub weights: FileRef,
}

/// The checksum `manifest.json` records for a data file, for tools that write or check
/// index directories: its CRC-32 in 8 hex digits, as `crc32`, `rhash --crc32` or
/// Python's `zlib.crc32` print it.
pub fn file_checksum(bytes: &[u8]) -> String {
    format!("{:08x}", crate::checksum::crc32(bytes))
}

/// The checksum a manifest of format `version` records.
fn checksum_in(version: u32, bytes: &[u8]) -> String {
    match version {
        1 | 2 => format!("{:016x}", crate::checksum::fnv_words(bytes)),
        _ => file_checksum(bytes),
    }
}

/// A data file of the index, as the manifest vouches for it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct FileRef {
    pub file: String,
    pub bytes: u64,
    pub checksum: String,
}

impl FileRef {
    pub(crate) fn describe(file: String, bytes: &[u8]) -> Self {
        FileRef { file, bytes: bytes.len() as u64, checksum: file_checksum(bytes) }
    }

    /// Reads the file and checks it is the one a manifest of format `version` names,
    /// byte for byte.
    pub(crate) fn read_verified(&self, dir: &Path, version: u32) -> Result<Vec<u8>> {
        if self.file.is_empty() || self.file.contains(['/', '\\']) || self.file.starts_with('.') {
            return Err(Error::corrupt(dir.join(MANIFEST), format!("bad file name {:?}", self.file)));
        }
        let path = dir.join(&self.file);
        let bytes = files::read_regular(&path, Some(self.bytes), self.bytes)?;
        let sum = checksum_in(version, &bytes);
        if sum != self.checksum {
            return Err(Error::corrupt(&path, format!("checksum {sum}, manifest says {}", self.checksum)));
        }
        Ok(bytes)
    }
}

impl Manifest {
    /// Parses a manifest, reporting a newer format as such rather than as corruption.
    pub(crate) fn parse(path: &Path, bytes: &[u8]) -> Result<Self> {
        #[derive(Deserialize)]
        struct Version {
            format_version: u32,
        }
        let v: Version = serde_json::from_slice(bytes).map_err(|e| Error::corrupt(path, e.to_string()))?;
        if v.format_version > FORMAT_VERSION {
            return Err(Error::UnsupportedVersion { found: v.format_version, supported: FORMAT_VERSION });
        }
        serde_json::from_slice(bytes).map_err(|e| Error::corrupt(path, e.to_string()))
    }

    /// Checks the sizes the manifest declares against its counts and shape before a byte
    /// of a data file is read: a forged size never makes an open read (and allocate)
    /// gigabytes. The vectors file holds the image, caption and text vectors, a flag per
    /// caption and text and up to two voken tables; a model file is bounded like a
    /// checkpoint's.
    pub(crate) fn check_sizes(&self, path: &Path) -> Result<()> {
        crate::limits::check_index_size(self.images).map_err(|e| Error::corrupt(path, e.to_string()))?;
        let s = &self.shape;
        let texts = self.captions as u128 + self.texts.unwrap_or(0) as u128;
        let rows = (self.images as u128 + texts) * s.dim as u128 * 4;
        let vokens = 2 * self.images as u128 * (s.voken_len as u128 + 1) * 4;
        let most = rows + vokens + texts + SAFETENSORS_HEADER_SLACK;
        if self.vectors.bytes as u128 > most {
            return Err(Error::corrupt(
                path,
                format!(
                    "{} is said to hold {} bytes; {} images, {} captions and {} texts of dimension {} take at most \
                     {most}",
                    self.vectors.file,
                    self.vectors.bytes,
                    self.images,
                    self.captions,
                    self.texts.unwrap_or(0),
                    s.dim
                ),
            ));
        }
        if let Some(texts) = self.texts {
            // Every string at most MAX_TEXT_BYTES, escaped at worst 6 bytes a byte in
            // JSON; an image's id and punctuation well under a kilobyte.
            let string = 6 * crate::limits::MAX_TEXT_BYTES as u128 + 16;
            let strings = (self.images as u128) + self.captions as u128 + texts as u128;
            let most = self.images as u128 * 1024 + strings * string + 1024;
            if self.records.bytes as u128 > most {
                return Err(Error::corrupt(
                    path,
                    format!(
                        "{} is said to hold {} bytes; {} images, {} captions and {texts} texts take at most {most}",
                        self.records.file, self.records.bytes, self.images, self.captions
                    ),
                ));
            }
        }
        for (name, m) in &self.models {
            if m.weights.bytes > crate::limits::MAX_MODEL_WEIGHTS_BYTES {
                return Err(Error::corrupt(
                    path,
                    format!("{name} weights are said to hold {} bytes, more than a model may", m.weights.bytes),
                ));
            }
        }
        Ok(())
    }

    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("manifest serialises")
    }

    /// The data files this manifest keeps alive.
    pub(crate) fn files(&self) -> Vec<&str> {
        let models = self.models.values().map(|m| m.weights.file.as_str());
        [self.records.file.as_str(), self.vectors.file.as_str()].into_iter().chain(models).collect()
    }
}

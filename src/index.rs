//! `Index`: an open index directory with its records, safe to share across threads.

use crate::records::{ImageRecord, NewCaption, NewImage, Records};
use crate::store::{Shape, Store};
use crate::{device, limits, Error, Result};
use candle_core::Device;
use parking_lot::{Mutex, RwLock};
use std::path::Path;

/// The shape of an index, fixed when it is created, and the device it computes on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexConfig {
    /// Length of every image and caption vector.
    pub dim: usize,
    /// N: the number of codes in the voken codebook.
    pub codebook_size: usize,
    /// M: vokens per image.
    pub voken_len: usize,
    /// "cpu", "cuda" or "cuda:N". Chosen at each open; not part of the stored shape.
    pub device: String,
}

impl Default for IndexConfig {
    fn default() -> Self {
        IndexConfig { dim: 512, codebook_size: 1024, voken_len: 4, device: "cpu".into() }
    }
}

impl IndexConfig {
    fn shape(&self) -> Shape {
        Shape { dim: self.dim, codebook_size: self.codebook_size, voken_len: self.voken_len }
    }

    fn validate(&self) -> Result<()> {
        let positive = |what: &str, n: usize, max: usize| {
            if n == 0 {
                return Err(Error::InvalidArgument(format!("{what} must be at least 1")));
            }
            limits::cap(what, n, max)
        };
        positive("dim", self.dim, limits::MAX_DIM)?;
        positive("codebook_size", self.codebook_size, limits::MAX_CODEBOOK_SIZE)?;
        positive("voken_len", self.voken_len, limits::MAX_VOKEN_LEN)?;
        device::validate(&self.device)
    }
}

/// An open index. All methods take `&self`: searches and reads share a lock, adds take
/// it briefly for writing, and saves are serialised among themselves.
#[derive(Debug)]
pub struct Index {
    store: Store,
    config: IndexConfig,
    device: Device,
    records: RwLock<Records>,
    /// The generation of the last committed save; held while saving.
    saved: Mutex<u64>,
}

impl Index {
    /// Opens the index at `dir`, or creates it there when `config` is given and the
    /// directory holds none. With an existing index, a given config must match its
    /// shape (the device may differ); `None` opens whatever is there.
    pub fn open(dir: impl AsRef<Path>, config: Option<&IndexConfig>) -> Result<Index> {
        let dir = dir.as_ref();
        if let Some(c) = config {
            c.validate()?;
        }
        let store = Store::open(dir)?;
        let (generation, config, records) = match (store.load()?, config) {
            (Some(loaded), Some(c)) => {
                if loaded.shape != c.shape() {
                    return Err(Error::ConfigMismatch(format!(
                        "{} was created with {:?}, opened with {:?}",
                        dir.display(),
                        loaded.shape,
                        c.shape()
                    )));
                }
                (loaded.generation, c.clone(), loaded.records)
            }
            (Some(loaded), None) => {
                let s = loaded.shape;
                let c = IndexConfig { dim: s.dim, codebook_size: s.codebook_size, voken_len: s.voken_len, device: "cpu".into() };
                (loaded.generation, c, loaded.records)
            }
            (None, Some(c)) => {
                let records = Records::new(c.dim);
                store.commit(1, c.shape(), &records)?;
                (1, c.clone(), records)
            }
            (None, None) => {
                return Err(Error::InvalidArgument(format!(
                    "no index at {} and no config to create one",
                    dir.display()
                )))
            }
        };
        let device = device::open(&config.device)?;
        Ok(Index { store, config, device, records: RwLock::new(records), saved: Mutex::new(generation) })
    }

    pub fn config(&self) -> &IndexConfig {
        &self.config
    }

    pub fn path(&self) -> &Path {
        self.store.dir()
    }

    #[allow(dead_code)]
    pub(crate) fn device(&self) -> &Device {
        &self.device
    }

    /// Adds images, all or none: a bad vector, a duplicate id or a bad key rejects the batch.
    pub fn add_images(&self, images: &[NewImage]) -> Result<()> {
        self.records.write().add_images(images)
    }

    /// Appends captions to an image.
    pub fn add_captions(&self, image: u64, captions: &[NewCaption]) -> Result<()> {
        self.records.write().add_captions(image, captions)
    }

    /// Removes an image and its captions.
    pub fn remove_image(&self, image: u64) -> Result<()> {
        self.records.write().remove(image)
    }

    pub fn image_count(&self) -> usize {
        self.records.read().len()
    }

    pub fn caption_count(&self) -> usize {
        self.records.read().caption_count()
    }

    /// Image ids in storage order.
    pub fn image_ids(&self) -> Vec<u64> {
        self.records.read().ids.clone()
    }

    pub fn contains(&self, image: u64) -> bool {
        self.records.read().contains(image)
    }

    /// A copy of one image's record.
    pub fn image(&self, image: u64) -> Result<ImageRecord> {
        self.records.read().record(image)
    }

    /// Runs `f` on one image's record without copying it.
    pub(crate) fn with_records<T>(&self, f: impl FnOnce(&Records) -> T) -> T {
        f(&self.records.read())
    }

    /// Makes everything added so far durable. Adds and searches go on meanwhile; what is
    /// added during the save goes into the next one.
    pub fn save(&self) -> Result<()> {
        let mut saved = self.saved.lock();
        let snapshot = self.records.read().clone();
        self.store.commit(*saved + 1, self.config.shape(), &snapshot)?;
        *saved += 1;
        Ok(())
    }
}

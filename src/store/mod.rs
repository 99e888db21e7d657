//! The index directory: `manifest.json` plus generation-numbered data files.
//!
//! A save writes the new generation's data files (each atomically), then replaces the
//! manifest atomically; only then are files of older generations deleted. A crash at
//! any point leaves a manifest whose files are all present and complete.

mod codec;
mod files;
mod manifest;

pub use manifest::FORMAT_VERSION;
pub(crate) use manifest::Shape;

use crate::records::Records;
use crate::{Error, Result};
use files::DirLock;
use manifest::{FileRef, Manifest, MANIFEST};
use std::fs;
use std::path::{Path, PathBuf};

/// An open index directory, locked for the life of this value.
#[derive(Debug)]
pub(crate) struct Store {
    dir: PathBuf,
    _lock: DirLock,
}

/// What a store holds on disk.
pub(crate) struct Loaded {
    pub generation: u64,
    pub shape: Shape,
    pub records: Records,
}

impl Store {
    /// Locks `dir`, creating it when missing.
    pub(crate) fn open(dir: &Path) -> Result<Self> {
        fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let lock = DirLock::acquire(dir)?;
        Ok(Store { dir: dir.to_path_buf(), _lock: lock })
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Reads the committed state; `None` for a directory that holds no index yet.
    pub(crate) fn load(&self) -> Result<Option<Loaded>> {
        let path = self.dir.join(MANIFEST);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(&path, e)),
        };
        let m = Manifest::parse(&path, &bytes)?;
        let records_json = m.records.read_verified(&self.dir)?;
        let vectors = m.vectors.read_verified(&self.dir)?;
        let records = codec::decode(&self.dir.join(&m.vectors.file), m.shape.dim, &records_json, &vectors)?;
        if records.len() != m.images || records.caption_count() != m.captions {
            return Err(Error::corrupt(&path, "record counts disagree with the data files"));
        }
        self.remove_stale(&m);
        Ok(Some(Loaded { generation: m.generation, shape: m.shape, records }))
    }

    /// Commits `records` as generation `generation`.
    pub(crate) fn commit(&self, generation: u64, shape: Shape, records: &Records) -> Result<()> {
        let (records_json, vectors) = codec::encode(records);
        let m = Manifest {
            format_version: FORMAT_VERSION,
            generation,
            shape,
            images: records.len(),
            captions: records.caption_count(),
            records: self.write_data(format!("records-{generation}.json"), &records_json)?,
            vectors: self.write_data(format!("vectors-{generation}.safetensors"), &vectors)?,
        };
        files::write_atomic(&self.dir.join(MANIFEST), &m.to_bytes())?;
        self.remove_stale(&m);
        Ok(())
    }

    fn write_data(&self, file: String, bytes: &[u8]) -> Result<FileRef> {
        files::write_atomic(&self.dir.join(&file), bytes)?;
        Ok(FileRef::describe(file, bytes))
    }

    /// Deletes data files no longer named by the manifest (older generations, temporary
    /// files of an interrupted save). Best effort: a file left behind costs only space.
    fn remove_stale(&self, m: &Manifest) {
        let Ok(entries) = fs::read_dir(&self.dir) else { return };
        let live = m.files();
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let ours = name.starts_with("records-") || name.starts_with("vectors-") || name.ends_with(".tmp");
            if ours && !live.contains(&name) {
                let _ = fs::remove_file(entry.path());
            }
        }
    }
}

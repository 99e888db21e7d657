//! The image vectors of an open index, in the form searches read them: f32 as given, or
//! compressed (f16, or int8 with one scale per vector), which halves or quarters both
//! their memory and the bytes a dense scan streams.
//!
//! A compressed form keeps no f32 copy in memory, and loses none: a row loaded from the
//! index is read back from the saved vectors file whenever its exact value is needed (a
//! save, a training, `Index::image`), and a row added since is held as f32 until the
//! next save writes it there. The open file stays valid while this handle holds it,
//! even once a later save has replaced it in the directory.

use crate::kernels::small_matmul::{nt_rows, push_int8};
use crate::{Error, Result};
use half::f16;
use std::borrow::Cow;
use std::fs::File;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;

/// How an open index keeps its image vectors in memory for searching. Chosen at each
/// open, like the search weights: the index always stores f32 on disk, and what is
/// read back exactly (`Index::image`, saves, trainings) is that f32.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VectorStorage {
    /// 4 bytes a dimension: the vectors as given.
    #[default]
    F32,
    /// 2 bytes a dimension: each value rounded to f16.
    F16,
    /// 1 byte a dimension and a 4-byte scale per vector: each vector scaled so that its
    /// largest magnitude is 127 and rounded.
    Int8,
}

/// The rows searches read.
#[derive(Debug, Clone)]
enum Kept {
    F32(Vec<f32>),
    F16(Vec<f16>),
    Int8 { q: Vec<i8>, scales: Vec<f32> },
}

/// Where a compressed row's f32 original is.
#[derive(Debug, Clone, Copy)]
enum Origin {
    /// Row `r` of the saved vectors file.
    Saved(u32),
    /// Vector `i` of `Originals::added`.
    Added(u32),
}

#[derive(Debug, Clone, Default)]
struct Originals {
    file: Option<Arc<SavedFile>>,
    rows: Vec<Origin>,
    /// Rows added since the last save, `dim` values each (removed ones included, until
    /// the save).
    added: Vec<f32>,
}

/// The image vectors of a saved vectors file: `rows` rows of `dim` little-endian f32 at
/// byte `offset`.
#[derive(Debug)]
pub(crate) struct SavedFile {
    path: PathBuf,
    file: File,
    offset: u64,
}

/// Where a save put the image vectors: the file and the byte their first row starts at.
#[derive(Debug, Clone)]
pub(crate) struct SavedAt {
    pub path: PathBuf,
    pub offset: u64,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Vectors {
    dim: usize,
    kept: Kept,
    /// Present for the compressed forms.
    originals: Option<Originals>,
    /// Adds and removals so far: a save replaces the originals' file only when none
    /// came while it wrote.
    edits: u64,
}

/// Rows read from the saved file per call when the originals are gathered.
const READ_ROWS: usize = 4096;

impl Vectors {
    pub(crate) fn new(dim: usize, storage: VectorStorage) -> Self {
        let kept = match storage {
            VectorStorage::F32 => Kept::F32(Vec::new()),
            VectorStorage::F16 => Kept::F16(Vec::new()),
            VectorStorage::Int8 => Kept::Int8 { q: Vec::new(), scales: Vec::new() },
        };
        let originals = (storage != VectorStorage::F32).then(Originals::default);
        Vectors { dim, kept, originals, edits: 0 }
    }

    /// The vectors a saved file holds, `rows` f32 rows as `bytes` (found at `saved`):
    /// kept in `storage`'s form, their originals left in that file.
    pub(crate) fn from_saved(
        dim: usize,
        storage: VectorStorage,
        bytes: &[u8],
        saved: &SavedAt,
    ) -> std::result::Result<Self, String> {
        let mut v = Vectors::new(dim, storage);
        let rows = bytes.len() / (4 * dim.max(1));
        v.reserve(rows);
        let mut row = vec![0f32; dim];
        for (r, b) in bytes.chunks_exact(4 * dim.max(1)).enumerate() {
            decode_row(b, &mut row).map_err(|i| format!("image vector {r}: non-finite value at element {i}"))?;
            v.kept.push(&row);
        }
        if let Some(o) = &mut v.originals {
            o.file = Some(Arc::new(SavedFile::open(saved)?));
            o.rows = (0..rows as u32).map(Origin::Saved).collect();
        }
        Ok(v)
    }

    pub(crate) fn dim(&self) -> usize {
        self.dim
    }

    pub(crate) fn len(&self) -> usize {
        match &self.kept {
            Kept::F32(v) => v.len() / self.dim.max(1),
            Kept::F16(v) => v.len() / self.dim.max(1),
            Kept::Int8 { scales, .. } => scales.len(),
        }
    }

    pub(crate) fn reserve(&mut self, n: usize) {
        let dim = self.dim;
        match &mut self.kept {
            Kept::F32(v) => v.reserve(n * dim),
            Kept::F16(v) => v.reserve(n * dim),
            Kept::Int8 { q, scales } => {
                q.reserve(n * dim);
                scales.reserve(n);
            }
        }
        if let Some(o) = &mut self.originals {
            o.rows.reserve(n);
        }
    }

    /// Appends a checked vector of the index's dimension.
    pub(crate) fn push(&mut self, v: &[f32]) {
        self.kept.push(v);
        if let Some(o) = &mut self.originals {
            o.rows.push(Origin::Added((o.added.len() / self.dim) as u32));
            o.added.extend_from_slice(v);
        }
        self.edits += 1;
    }

    /// Removes row `row`, moving the last row into its place.
    pub(crate) fn swap_remove(&mut self, row: usize) {
        let (dim, last) = (self.dim, self.len() - 1);
        match &mut self.kept {
            Kept::F32(v) => swap_remove_row(v, dim, row, last),
            Kept::F16(v) => swap_remove_row(v, dim, row, last),
            Kept::Int8 { q, scales } => {
                swap_remove_row(q, dim, row, last);
                scales.swap_remove(row);
            }
        }
        if let Some(o) = &mut self.originals {
            o.rows.swap_remove(row);
        }
        self.edits += 1;
    }

    /// Row `row` as searches see it (the compressed values, widened).
    pub(crate) fn row(&self, row: usize) -> Cow<'_, [f32]> {
        let span = row * self.dim..(row + 1) * self.dim;
        match &self.kept {
            Kept::F32(v) => Cow::Borrowed(&v[span]),
            Kept::F16(v) => Cow::Owned(v[span].iter().map(|x| x.to_f32()).collect()),
            Kept::Int8 { q, scales } => Cow::Owned(q[span].iter().map(|&x| f32::from(x) * scales[row]).collect()),
        }
    }

    /// Row `row` exactly as it was given.
    pub(crate) fn original(&self, row: usize) -> Result<Vec<f32>> {
        Ok(self.originals_of(row..row + 1)?.into_owned())
    }

    /// Every row exactly as it was given, row-major.
    pub(crate) fn originals(&self) -> Result<Cow<'_, [f32]>> {
        self.originals_of(0..self.len())
    }

    fn originals_of(&self, rows: Range<usize>) -> Result<Cow<'_, [f32]>> {
        let dim = self.dim;
        let Some(o) = &self.originals else {
            let Kept::F32(v) = &self.kept else { unreachable!("only f32 keeps no originals") };
            return Ok(Cow::Borrowed(&v[rows.start * dim..rows.end * dim]));
        };
        let mut out = Vec::with_capacity(rows.len() * dim);
        let mut origins = o.rows[rows].iter().peekable();
        while let Some(&origin) = origins.next() {
            match origin {
                Origin::Added(i) => out.extend_from_slice(&o.added[i as usize * dim..(i as usize + 1) * dim]),
                Origin::Saved(first) => {
                    // Rows that follow one another in the file are read in one call.
                    let mut count = 1;
                    while count < READ_ROWS as u32
                        && matches!(origins.peek(), Some(Origin::Saved(r)) if *r == first + count)
                    {
                        origins.next();
                        count += 1;
                    }
                    let file = o.file.as_ref().expect("saved rows come with their file");
                    file.read_rows(first as usize, count as usize, dim, &mut out)?;
                }
            }
        }
        Ok(Cow::Owned(out))
    }

    /// Scores of rows `rows` against the `m` queries `x` (`[m, dim]`): `[m, rows.len()]`.
    pub(crate) fn scores(&self, x: &[f32], m: usize, rows: Range<usize>) -> Vec<f32> {
        let (dim, n) = (self.dim, rows.len());
        let span = rows.start * dim..rows.end * dim;
        match &self.kept {
            Kept::F32(v) => nt_rows(x, &v[span], None, m, n, dim),
            Kept::F16(v) => nt_rows(x, &v[span], None, m, n, dim),
            Kept::Int8 { q, scales } => nt_rows(x, &q[span], Some(&scales[rows]), m, n, dim),
        }
    }

    /// Scores of the listed rows against the `m` queries `x`: `[m, rows.len()]`.
    pub(crate) fn gathered_scores(&self, x: &[f32], m: usize, rows: &[usize]) -> Vec<f32> {
        let (dim, n) = (self.dim, rows.len());
        match &self.kept {
            Kept::F32(v) => nt_rows(x, &gather(v, rows, dim), None, m, n, dim),
            Kept::F16(v) => nt_rows(x, &gather(v, rows, dim), None, m, n, dim),
            Kept::Int8 { q, scales } => {
                let s: Vec<f32> = rows.iter().map(|&r| scales[r]).collect();
                nt_rows(x, &gather(q, rows, dim), Some(&s), m, n, dim)
            }
        }
    }

    /// Bytes held in memory for the vectors: the kept form, and for a compressed one the
    /// place of each original and the rows added since the save.
    pub(crate) fn bytes(&self) -> usize {
        let kept = match &self.kept {
            Kept::F32(v) => v.len() * 4,
            Kept::F16(v) => v.len() * 2,
            Kept::Int8 { q, scales } => q.len() + scales.len() * 4,
        };
        let originals = self.originals.as_ref().map_or(0, |o| o.rows.len() * size_of::<Origin>() + o.added.len() * 4);
        kept + originals
    }

    pub(crate) fn edits(&self) -> u64 {
        self.edits
    }

    /// After a save of these vectors as they were at `edits` edits: their originals are
    /// now in `saved`, and the rows held since the last save are let go. With an edit
    /// since (or a file that cannot be opened) the present originals stay, still valid.
    pub(crate) fn saved_to(&mut self, saved: &SavedAt, edits: u64) {
        let Some(o) = &mut self.originals else { return };
        if edits != self.edits {
            return;
        }
        match SavedFile::open(saved) {
            Ok(file) => {
                *o = Originals {
                    file: Some(Arc::new(file)),
                    rows: (0..o.rows.len() as u32).map(Origin::Saved).collect(),
                    added: Vec::new(),
                }
            }
            Err(e) => crate::log::emit(crate::log::Level::Warn, || {
                format!("{e}: the vectors added since the last save stay in memory")
            }),
        }
    }
}

impl Default for Kept {
    fn default() -> Self {
        Kept::F32(Vec::new())
    }
}

impl Kept {
    fn push(&mut self, v: &[f32]) {
        match self {
            Kept::F32(kept) => kept.extend_from_slice(v),
            Kept::F16(kept) => kept.extend(v.iter().map(|&x| f16::from_f32(x))),
            Kept::Int8 { q, scales } => scales.push(push_int8(v, q)),
        }
    }
}

impl SavedFile {
    fn open(at: &SavedAt) -> std::result::Result<Self, String> {
        let file = File::open(&at.path).map_err(|e| format!("{}: {e}", at.path.display()))?;
        Ok(SavedFile { path: at.path.clone(), file, offset: at.offset })
    }

    /// Appends rows `first..first + count` to `out`.
    fn read_rows(&self, first: usize, count: usize, dim: usize, out: &mut Vec<f32>) -> Result<()> {
        let mut bytes = vec![0u8; count * dim * 4];
        let at = self.offset + (first * dim * 4) as u64;
        self.file.read_exact_at(&mut bytes, at).map_err(|e| Error::io(&self.path, e))?;
        let start = out.len();
        out.resize(start + count * dim, 0.0);
        for (r, (b, row)) in bytes.chunks_exact(dim * 4).zip(out[start..].chunks_exact_mut(dim)).enumerate() {
            decode_row(b, row).map_err(|i| {
                Error::corrupt(&self.path, format!("image vector {}: non-finite value at element {i}", first + r))
            })?;
        }
        Ok(())
    }
}

/// Rows `rows` of `v` (`dim` values each), one after another.
fn gather<T: Copy>(v: &[T], rows: &[usize], dim: usize) -> Vec<T> {
    rows.iter().flat_map(|&r| &v[r * dim..(r + 1) * dim]).copied().collect()
}

/// Little-endian f32 `bytes` into `row`; the position of a non-finite value is an error.
pub(crate) fn decode_row(bytes: &[u8], row: &mut [f32]) -> std::result::Result<(), usize> {
    for (x, b) in row.iter_mut().zip(bytes.chunks_exact(4)) {
        *x = f32::from_le_bytes(b.try_into().expect("4 bytes"));
    }
    match row.iter().position(|x| !x.is_finite()) {
        Some(i) => Err(i),
        None => Ok(()),
    }
}

fn swap_remove_row<T: Copy>(v: &mut Vec<T>, dim: usize, row: usize, last: usize) {
    if row != last {
        v.copy_within(last * dim..(last + 1) * dim, row * dim);
    }
    v.truncate(last * dim);
}

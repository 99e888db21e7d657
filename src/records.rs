//! The indexed images in memory: ids, optional external keys, vectors and captions.
//! Rows are dense; removing an image moves the last row into its place.

use crate::vectors::Vectors;
use crate::vokens::Vokens;
use crate::{limits, Error, Result};
use std::borrow::Cow;
use std::collections::HashMap;

/// An image to add: a host-chosen id, an optional key (a path, a URL) and its vector.
#[derive(Debug, Clone, Copy)]
pub struct NewImage<'a> {
    pub id: u64,
    pub key: Option<&'a str>,
    pub vector: &'a [f32],
}

/// A caption to add; `vector` is its text embedding when the host computes one.
#[derive(Debug, Clone, Copy)]
pub struct NewCaption<'a> {
    pub text: &'a str,
    pub vector: Option<&'a [f32]>,
}

impl From<&NewCaption<'_>> for Caption {
    fn from(c: &NewCaption) -> Caption {
        Caption { text: c.text.to_owned(), vector: c.vector.map(<[f32]>::to_vec) }
    }
}

/// The M codes of the images being added, one sequence per image from each tokenizer
/// the index holds.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct NewCodes<'a> {
    pub serving: Option<&'a [Vec<u32>]>,
    pub pending: Option<&'a [Vec<u32>]>,
}

/// A stored caption. Attached texts are stored alike: a text and, where the index's
/// image encoder embedded it, its vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Caption {
    pub text: String,
    pub vector: Option<Vec<f32>>,
}

/// A stored image, as returned by [`crate::Index::image`].
#[derive(Debug, Clone, PartialEq)]
pub struct ImageRecord {
    pub id: u64,
    pub key: Option<String>,
    pub vector: Vec<f32>,
    pub captions: Vec<Caption>,
    /// Texts attached for indexing (see [`crate::Index::attach_texts`]).
    pub texts: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Records {
    pub dim: usize,
    pub ids: Vec<u64>,
    pub keys: Vec<Option<String>>,
    /// One per row, in the form searches read.
    pub vectors: Vectors,
    pub captions: Vec<Vec<Caption>>,
    /// Texts the host attached to describe each image (tags, an album or file name, its
    /// own caption): the generator learns them as pseudo-queries of that image, and the
    /// similarity of a query to an image is the best of its vector's and these texts'
    /// vectors (where they have one). Never training captions, which teach the mapping
    /// itself. Private, so that `texts_with_vectors` stays its count.
    texts: Vec<Vec<Caption>>,
    /// The attached texts that have a vector: while 0, the dense scan reads image
    /// vectors only, without a pass over every image's texts.
    texts_with_vectors: usize,
    /// Present once a tokenizer is trained: then every row has its sequence. These are
    /// the vokens searches use.
    pub vokens: Option<Vokens>,
    /// A retrained tokenizer's sequences, waiting for a generator trained on them; the
    /// generator that serves meanwhile answers with `vokens`.
    pub pending_vokens: Option<Vokens>,
    row_of: HashMap<u64, usize>,
}

impl Records {
    #[cfg(test)]
    pub(crate) fn new(dim: usize) -> Self {
        Self::with_vectors(Vectors::new(dim, Default::default()))
    }

    /// Records around `vectors` (empty, or one per row `push` will add), of their dimension.
    pub(crate) fn with_vectors(vectors: Vectors) -> Self {
        Records { dim: vectors.dim(), vectors, ..Default::default() }
    }

    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }

    pub(crate) fn caption_count(&self) -> usize {
        self.captions.iter().map(Vec::len).sum()
    }

    pub(crate) fn row(&self, id: u64) -> Result<usize> {
        self.row_of.get(&id).copied().ok_or(Error::UnknownId(id))
    }

    /// Row `row`'s vector as searches see it.
    pub(crate) fn vector(&self, row: usize) -> Cow<'_, [f32]> {
        self.vectors.row(row)
    }

    /// Row `row`'s vector exactly as it was given.
    pub(crate) fn original(&self, row: usize) -> Result<Vec<f32>> {
        self.vectors.original(row)
    }

    pub(crate) fn record(&self, id: u64) -> Result<ImageRecord> {
        let row = self.row(id)?;
        Ok(ImageRecord {
            id,
            key: self.keys[row].clone(),
            vector: self.original(row)?,
            captions: self.captions[row].clone(),
            texts: self.texts[row].iter().map(|t| t.text.clone()).collect(),
        })
    }

    /// Adds all images or none: every one is checked before any goes in. `codes` holds
    /// each image's M codes from every tokenizer trained.
    pub(crate) fn add_images(&mut self, images: &[NewImage], codes: NewCodes) -> Result<()> {
        limits::check_batch(images.len())?;
        let mut seen = std::collections::HashSet::with_capacity(images.len());
        for (i, img) in images.iter().enumerate() {
            check_vector(self.dim, img.vector, || format!("vector of image {} (batch item {i})", img.id))?;
            if let Some(key) = img.key {
                limits::check_text("image key", key)?;
            }
            if self.row_of.contains_key(&img.id) || !seen.insert(img.id) {
                return Err(Error::DuplicateId(img.id));
            }
        }
        limits::check_index_size(self.len() + images.len())?;
        for (vokens, codes) in [(&self.vokens, codes.serving), (&self.pending_vokens, codes.pending)] {
            if let Some(vokens) = vokens {
                let codes = codes.ok_or_else(|| Error::WrongState("images added without their vokens".into()))?;
                vokens.check_room(codes)?;
            }
        }
        self.reserve(images.len());
        for (i, img) in images.iter().enumerate() {
            self.vectors.push(img.vector);
            self.push(img.id, img.key.map(str::to_owned), Vec::new(), Vec::new());
            for (vokens, codes) in [(&mut self.vokens, codes.serving), (&mut self.pending_vokens, codes.pending)] {
                if let (Some(vokens), Some(codes)) = (vokens, codes) {
                    vokens.push(&codes[i], img.id);
                }
            }
        }
        Ok(())
    }

    pub(crate) fn add_captions(&mut self, id: u64, captions: &[NewCaption]) -> Result<()> {
        let row = self.row(id)?;
        self.check_texts("caption", id, captions)?;
        self.captions[row].extend(captions.iter().map(Caption::from));
        Ok(())
    }

    pub(crate) fn attach_texts(&mut self, id: u64, texts: &[NewCaption]) -> Result<()> {
        let row = self.row(id)?;
        self.check_texts("text", id, texts)?;
        if let Some(i) = texts.iter().position(|t| t.text.trim().is_empty()) {
            return Err(Error::InvalidArgument(format!("text {i} of image {id} is empty")));
        }
        self.texts_with_vectors += texts.iter().filter(|t| t.vector.is_some()).count();
        self.texts[row].extend(texts.iter().map(Caption::from));
        Ok(())
    }

    fn check_texts(&self, what: &str, id: u64, texts: &[NewCaption]) -> Result<()> {
        limits::check_batch(texts.len())?;
        for (i, t) in texts.iter().enumerate() {
            limits::check_text(what, t.text)?;
            if let Some(v) = t.vector {
                check_vector(self.dim, v, || format!("vector of {what} {i} of image {id}"))?;
            }
        }
        Ok(())
    }

    /// The vectors of the texts attached to row `row`.
    pub(crate) fn text_vectors(&self, row: usize) -> impl Iterator<Item = &[f32]> {
        self.texts[row].iter().filter_map(|t| t.vector.as_deref())
    }

    /// Whether any attached text has a vector (else the dense scan reads image vectors only).
    pub(crate) fn has_text_vectors(&self) -> bool {
        self.texts_with_vectors > 0
    }

    /// The texts attached to row `row`.
    pub(crate) fn texts(&self, row: usize) -> &[Caption] {
        &self.texts[row]
    }

    /// The similarity of row `row` to query vector `v`: the best dot product of its
    /// image vector and its texts' vectors.
    pub(crate) fn similarity(&self, row: usize, v: &[f32]) -> f32 {
        self.text_vectors(row).map(|t| dot(t, v)).fold(dot(&self.vector(row), v), f32::max)
    }

    pub(crate) fn text_count(&self) -> usize {
        self.texts.iter().map(Vec::len).sum()
    }

    /// Removes an image and its captions.
    pub(crate) fn remove(&mut self, id: u64) -> Result<()> {
        let row = self.row(id)?;
        let last = self.len() - 1;
        self.row_of.remove(&id);
        self.ids.swap_remove(row);
        self.keys.swap_remove(row);
        self.captions.swap_remove(row);
        let texts = self.texts.swap_remove(row);
        self.texts_with_vectors -= texts.iter().filter(|t| t.vector.is_some()).count();
        for v in self.vokens.iter_mut().chain(&mut self.pending_vokens) {
            v.swap_remove(row);
        }
        self.vectors.swap_remove(row);
        if row != last {
            self.row_of.insert(self.ids[row], row);
        }
        Ok(())
    }

    pub(crate) fn reserve(&mut self, n: usize) {
        self.ids.reserve(n);
        self.keys.reserve(n);
        self.vectors.reserve(n);
        self.captions.reserve(n);
        self.texts.reserve(n);
        self.row_of.reserve(n);
    }

    /// Appends a row without checks, its vector already pushed; callers have validated it.
    pub(crate) fn push(&mut self, id: u64, key: Option<String>, captions: Vec<Caption>, texts: Vec<Caption>) {
        self.row_of.insert(id, self.ids.len());
        self.ids.push(id);
        self.keys.push(key);
        self.captions.push(captions);
        self.texts_with_vectors += texts.iter().filter(|t| t.vector.is_some()).count();
        self.texts.push(texts);
    }

    pub(crate) fn contains(&self, id: u64) -> bool {
        self.row_of.contains_key(&id)
    }
}

/// A vector of the index's dimension with only finite values.
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

pub(crate) fn check_vector(dim: usize, v: &[f32], what: impl Fn() -> String) -> Result<()> {
    if v.len() != dim {
        return Err(Error::DimensionMismatch { expected: dim, got: v.len() });
    }
    match v.iter().position(|x| !x.is_finite()) {
        Some(position) => Err(Error::NonFinite { what: what(), position }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn img(id: u64, v: &[f32]) -> NewImage<'_> {
        NewImage { id, key: None, vector: v }
    }

    #[test]
    fn add_is_all_or_nothing() {
        let mut r = Records::new(2);
        let bad = [img(1, &[0.0, 1.0]), img(2, &[f32::NAN, 0.0])];
        assert!(matches!(r.add_images(&bad, NewCodes::default()), Err(Error::NonFinite { position: 0, .. })));
        assert_eq!(r.len(), 0);
        let dup = [img(1, &[0.0, 1.0]), img(1, &[1.0, 0.0])];
        assert!(matches!(r.add_images(&dup, NewCodes::default()), Err(Error::DuplicateId(1))));
        assert_eq!(r.len(), 0);
        assert!(matches!(
            r.add_images(&[img(3, &[1.0])], NewCodes::default()),
            Err(Error::DimensionMismatch { expected: 2, got: 1 })
        ));
    }

    #[test]
    fn remove_moves_last_row_into_place() {
        let mut r = Records::new(2);
        r.add_images(&[img(1, &[1.0, 1.0]), img(2, &[2.0, 2.0]), img(3, &[3.0, 3.0])], NewCodes::default()).unwrap();
        r.add_captions(3, &[NewCaption { text: "three", vector: None }]).unwrap();
        r.remove(1).unwrap();
        assert_eq!(r.len(), 2);
        assert!(!r.contains(1));
        let three = r.record(3).unwrap();
        assert_eq!(three.vector, vec![3.0, 3.0]);
        assert_eq!(three.captions[0].text, "three");
        assert_eq!(r.record(2).unwrap().vector, vec![2.0, 2.0]);
        assert!(matches!(r.remove(1), Err(Error::UnknownId(1))));
    }

    #[test]
    fn the_dense_scan_reads_text_vectors_while_an_image_has_one() {
        let mut r = Records::new(2);
        r.add_images(&[img(1, &[1.0, 0.0]), img(2, &[0.0, 1.0])], NewCodes::default()).unwrap();
        r.attach_texts(1, &[NewCaption { text: "tag", vector: None }]).unwrap();
        assert!(!r.has_text_vectors());
        r.attach_texts(2, &[NewCaption { text: "beach", vector: Some(&[0.6, 0.8]) }]).unwrap();
        assert!(r.has_text_vectors());
        assert_eq!(r.similarity(r.row(2).unwrap(), &[1.0, 0.0]), 0.6);
        r.remove(2).unwrap();
        assert!(!r.has_text_vectors());
    }
}

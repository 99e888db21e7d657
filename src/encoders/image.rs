//! Photo files to CLIP's pixel tensors: decoding (JPEG, PNG, WebP) with the EXIF
//! orientation applied, then the reference preprocessing: shortest side resized with
//! Pillow's bicubic filter, centre crop, RGB mean/std normalisation.
//!
//! The resize reproduces Pillow's `Image.resize(…, BICUBIC)` on 8-bit images bit for
//! bit (its fixed-point separable convolution, rounding to 8 bits between the
//! horizontal and the vertical pass), because the reference CLIP image processor runs
//! through Pillow and a float resize differs from it by several grey levels.

use crate::file::read_at_most;
use crate::limits::MAX_IMAGE_SIDE;
use crate::limits::MAX_PHOTO_FILE_BYTES;
use crate::{Error, Result};
use image::{ImageReader, RgbImage};
use serde::Deserialize;
use std::io::Cursor;
use std::path::Path;

/// The image processor's settings, as in a Hugging Face `preprocessor_config.json`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Preprocess {
    /// The shortest side after resizing.
    pub shortest_edge: usize,
    /// The square centre crop's side (the vision tower's `image_size`).
    pub crop_size: usize,
    pub image_mean: [f32; 3],
    pub image_std: [f32; 3],
}

impl Preprocess {
    /// OpenAI CLIP's settings for a tower that takes `image_size` pixels.
    pub fn openai(image_size: usize) -> Self {
        Preprocess {
            shortest_edge: image_size,
            crop_size: image_size,
            image_mean: [0.481_454_66, 0.457_827_5, 0.408_210_73],
            image_std: [0.268_629_54, 0.261_302_6, 0.275_777_1],
        }
    }

    /// Reads `preprocessor_config.json` (the size and crop fields come as
    /// `{"shortest_edge": n}` / `{"height": n, "width": n}` or as plain numbers).
    pub(crate) fn from_json(v: &serde_json::Value, image_size: usize) -> Result<Self> {
        let d = Preprocess::openai(image_size);
        let side = |key: &str, inner: &[&str], default: usize| -> Result<usize> {
            let Some(x) = v.get(key) else { return Ok(default) };
            let n = inner.iter().find_map(|k| x.get(k)).unwrap_or(x);
            n.as_u64()
                .map(|n| n as usize)
                .ok_or_else(|| Error::Model(format!("preprocessor_config.json: bad {key}: {x}")))
        };
        let triple = |key: &str, default: [f32; 3]| -> Result<[f32; 3]> {
            match v.get(key) {
                None => Ok(default),
                Some(x) => serde_json::from_value(x.clone())
                    .map_err(|e| Error::Model(format!("preprocessor_config.json: bad {key}: {e}"))),
            }
        };
        let p = Preprocess {
            shortest_edge: side("size", &["shortest_edge", "height"], d.shortest_edge)?,
            crop_size: side("crop_size", &["height"], d.crop_size)?,
            image_mean: triple("image_mean", d.image_mean)?,
            image_std: triple("image_std", d.image_std)?,
        };
        if p.crop_size != image_size
            || p.shortest_edge < p.crop_size
            || p.image_std.iter().any(|s| s.is_nan() || *s <= 0.0)
        {
            return Err(Error::Model(format!(
                "preprocessor_config.json: crop {} must equal the vision tower's image_size {image_size}, \
                 the resize ({}) must not be smaller, and std must be positive",
                p.crop_size, p.shortest_edge
            )));
        }
        Ok(p)
    }

    /// The normalised `3 x crop x crop` tensor (channel-major) of a decoded photo.
    pub fn pixels(&self, img: &RgbImage) -> Vec<f32> {
        let crop = self.crop(img);
        let plane = crop.width() as usize * crop.height() as usize;
        let mut out = vec![0f32; 3 * plane];
        for (i, px) in crop.pixels().enumerate() {
            for c in 0..3 {
                out[c * plane + i] = (px[c] as f32 / 255.0 - self.image_mean[c]) / self.image_std[c];
            }
        }
        out
    }

    /// The 8-bit photo the tower sees: resized so that its shortest side is
    /// `shortest_edge` (the other side truncated, as the reference does), then the
    /// centre `crop_size` square (top-left corner rounded down).
    pub fn crop(&self, img: &RgbImage) -> RgbImage {
        let (w, h) = (img.width() as usize, img.height() as usize);
        let (short, long) = if w <= h { (w, h) } else { (h, w) };
        let scaled_long = (self.shortest_edge as f64 * long as f64 / short as f64) as usize;
        let (nw, nh) = if w <= h { (self.shortest_edge, scaled_long) } else { (scaled_long, self.shortest_edge) };
        let resized = resize_bicubic(img, nw, nh);
        let c = self.crop_size as u32;
        let (left, top) = ((nw as u32).saturating_sub(c) / 2, (nh as u32).saturating_sub(c) / 2);
        image::imageops::crop_imm(&resized, left, top, c, c).to_image()
    }
}

/// Decodes a photo from its encoded bytes (format guessed from the content), turns it
/// upright by its EXIF orientation and converts it to 8-bit RGB.
pub fn decode(bytes: &[u8]) -> Result<RgbImage> {
    // A decoder that panics on a malformed file fails that photo, not the batch.
    std::panic::catch_unwind(|| decode_unguarded(bytes))
        .unwrap_or_else(|_| Err(Error::InvalidImage("the decoder failed on malformed data".into())))
}

fn decode_unguarded(bytes: &[u8]) -> Result<RgbImage> {
    let bad = |e: &dyn std::fmt::Display| Error::InvalidImage(e.to_string());
    let mut reader = ImageReader::new(Cursor::new(bytes)).with_guessed_format().map_err(|e| bad(&e))?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE);
    limits.max_image_height = Some(MAX_IMAGE_SIDE);
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(|e| bad(&e))?;
    let orientation = image::ImageDecoder::orientation(&mut decoder).map_err(|e| bad(&e))?;
    let mut img = image::DynamicImage::from_decoder(decoder).map_err(|e| bad(&e))?;
    img.apply_orientation(orientation);
    if img.width() == 0 || img.height() == 0 {
        return Err(Error::InvalidImage("the image has no pixels".into()));
    }
    Ok(img.into_rgb8())
}

/// Reads and decodes a photo file; errors name the file. Only a regular file of at most
/// [`MAX_PHOTO_FILE_BYTES`] is read: a pipe, device or directory is refused unread.
pub fn decode_file(path: &Path) -> Result<RgbImage> {
    let bytes = read_at_most(path, MAX_PHOTO_FILE_BYTES)?;
    decode(&bytes).map_err(|e| match e {
        Error::InvalidImage(m) => Error::InvalidImage(format!("{}: {m}", path.display())),
        e => e,
    })
}

/// Fraction bits of Pillow's fixed-point filter weights for 8-bit images.
const PRECISION_BITS: u32 = 32 - 8 - 2;

/// Pillow's bicubic kernel (a = -0.5), support 2.
fn bicubic(x: f64) -> f64 {
    const A: f64 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * A
    } else {
        0.0
    }
}

/// For each output position along one axis: the first input position it reads and
/// its fixed-point weights, whose support widens with the reduction (antialiasing).
fn weights(in_size: usize, out_size: usize) -> Vec<(usize, Vec<i32>)> {
    let scale = in_size as f64 / out_size as f64;
    let filter_scale = scale.max(1.0);
    let support = 2.0 * filter_scale;
    (0..out_size)
        .map(|o| {
            let center = (o as f64 + 0.5) * scale;
            let lo = ((center - support + 0.5) as isize).max(0) as usize;
            let hi = ((center + support + 0.5) as isize).min(in_size as isize) as usize;
            let w: Vec<f64> = (lo..hi).map(|i| bicubic((i as f64 - center + 0.5) / filter_scale)).collect();
            let sum: f64 = w.iter().sum();
            let one = (1u32 << PRECISION_BITS) as f64;
            let fixed = w
                .iter()
                .map(|&x| {
                    let x = if sum != 0.0 { x / sum } else { x };
                    // Rounded half away from zero, as Pillow does.
                    (if x < 0.0 { x * one - 0.5 } else { x * one + 0.5 }) as i32
                })
                .collect();
            (lo, fixed)
        })
        .collect()
}

/// One separable pass: `n` output positions along the axis whose input stride is
/// `step`, for `lines` lines `line_step` apart, 3 channels interleaved.
fn convolve(src: &[u8], taps: &[(usize, Vec<i32>)], lines: usize, line_step: usize, step: usize) -> Vec<u8> {
    let n = taps.len();
    let mut out = Vec::with_capacity(lines * n * 3);
    for line in 0..lines {
        for (lo, w) in taps {
            for c in 0..3 {
                let mut acc: i64 = 1 << (PRECISION_BITS - 1);
                for (k, &wk) in w.iter().enumerate() {
                    acc += src[line * line_step + (lo + k) * step + c] as i64 * wk as i64;
                }
                out.push((acc >> PRECISION_BITS).clamp(0, 255) as u8);
            }
        }
    }
    out
}

/// Pillow's `resize((w, h), BICUBIC)` on an RGB image: horizontal pass, 8-bit
/// rounding, vertical pass; an axis whose size does not change is not filtered.
pub fn resize_bicubic(img: &RgbImage, w: usize, h: usize) -> RgbImage {
    let (iw, ih) = (img.width() as usize, img.height() as usize);
    let mut px = img.as_raw().clone();
    let mut cur_w = iw;
    if w != iw {
        px = convolve(&px, &weights(iw, w), ih, iw * 3, 3);
        cur_w = w;
    }
    if h != ih {
        // Transposed roles: each column is a line, rows are the filtered axis.
        let taps = weights(ih, h);
        let cols = convolve(&px, &taps, cur_w, 3, cur_w * 3);
        // `cols` is column-major (column, then output row); back to row-major.
        px = vec![0; w * h * 3];
        for x in 0..w {
            for y in 0..h {
                let s = (x * h + y) * 3;
                px[(y * w + x) * 3..(y * w + x) * 3 + 3].copy_from_slice(&cols[s..s + 3]);
            }
        }
    }
    RgbImage::from_raw(w as u32, h as u32, px).expect("w * h * 3 bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unchanged_size_is_the_same_image_and_a_flat_image_stays_flat() {
        let img = RgbImage::from_fn(7, 5, |x, y| image::Rgb([(x * 30) as u8, (y * 50) as u8, 200]));
        assert_eq!(resize_bicubic(&img, 7, 5), img);
        let flat = RgbImage::from_pixel(33, 17, image::Rgb([10, 128, 250]));
        assert!(resize_bicubic(&flat, 8, 5).pixels().all(|p| p.0 == [10, 128, 250]));
        assert!(resize_bicubic(&flat, 70, 41).pixels().all(|p| p.0 == [10, 128, 250]));
    }

    #[test]
    fn the_crop_is_the_centre_of_the_shortest_side_resize() {
        let p = Preprocess::openai(4);
        let img = RgbImage::from_fn(8, 13, |x, y| image::Rgb([x as u8, y as u8, 0]));
        let c = p.crop(&img);
        assert_eq!(c.dimensions(), (4, 4));
        assert_eq!(p.pixels(&img).len(), 3 * 16);
    }

    #[test]
    fn undecodable_bytes_are_an_image_error() {
        assert!(matches!(decode(b"not a photo"), Err(Error::InvalidImage(_))));
        assert!(matches!(decode(&[0xff, 0xd8, 0xff, 0xe0, 0, 16]), Err(Error::InvalidImage(_))));
    }
}

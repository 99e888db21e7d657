//! Documented caps on inputs, enforced with `Error::Limit`, so that a bad call from a
//! host fails fast instead of exhausting memory.

use crate::{Error, Result};

/// Largest vector dimension.
pub const MAX_DIM: usize = 16_384;
/// Largest codebook size N.
pub const MAX_CODEBOOK_SIZE: usize = 65_536;
/// Longest voken sequence M.
pub const MAX_VOKEN_LEN: usize = 32;
/// Most items in one add call.
pub const MAX_BATCH: usize = 1 << 20;
/// Most images in one index.
pub const MAX_IMAGES: usize = 1 << 27;
/// Longest caption, query or key, in bytes.
pub const MAX_TEXT_BYTES: usize = 16_384;
/// Longest side of a photo, in pixels (larger ones are an image error, not an
/// out-of-memory abort).
pub const MAX_IMAGE_SIDE: u32 = 16_384;

/// Largest photo file read from a path (a 16384 x 16384 PNG, the largest photo decoded,
/// is well under this even uncompressed).
pub const MAX_PHOTO_FILE_BYTES: u64 = 1_073_741_824; // 1 GiB
/// Largest JSON file of a model checkpoint (`config.json`, `tokenizer.json`,
/// `preprocessor_config.json`).
pub const MAX_MODEL_JSON_BYTES: u64 = 268_435_456; // 256 MiB
/// Largest weights file of a model checkpoint (t5-large's is 3 GB, CLIP ViT-L/14's 1.7).
pub const MAX_MODEL_WEIGHTS_BYTES: u64 = 34_359_738_368; // 32 GiB

/// Most elements of one f32 tensor the library sizes from a config (1 GiB): a config
/// whose codebook or training step would need more is refused up front instead of
/// aborting the host when the allocation fails.
pub const MAX_TENSOR_ELEMENTS: usize = 1 << 28;

/// `what`, the product of `factors`, must fit in [`MAX_TENSOR_ELEMENTS`].
pub(crate) fn check_tensor(what: &str, factors: &[usize], advice: &str) -> Result<()> {
    let n = factors.iter().try_fold(1usize, |acc, &f| acc.checked_mul(f));
    match n {
        Some(n) if n <= MAX_TENSOR_ELEMENTS => Ok(()),
        _ => Err(Error::Limit(format!(
            "{what} would hold {} values ({}), more than the {MAX_TENSOR_ELEMENTS} one tensor may; {advice}",
            n.map_or("too many".into(), |n| n.to_string()),
            factors.iter().map(usize::to_string).collect::<Vec<_>>().join(" x ")
        ))),
    }
}

/// Tokenizer training's peak memory as a multiple of its codebooks' bytes (measured: 5.0
/// GB at N 4096 and 9.9 GB at N 8192, dim 16384: 18.6 and 18.4 times).
pub(crate) const TOKENIZER_PEAK_PER_CODEBOOK_BYTE: u64 = 19;

/// Refuses up front a step expected to need `bytes` when the machine has less memory
/// available (`MemAvailable` of /proc/meminfo; not checked where it cannot be read), so
/// that a config within the limits fails with the knob to turn instead of aborting the
/// host when an allocation fails.
pub(crate) fn check_memory(what: &str, bytes: u64, advice: &str) -> Result<()> {
    match available_memory() {
        Some(have) => check_memory_against(what, bytes, have, advice),
        None => Ok(()),
    }
}

fn check_memory_against(what: &str, bytes: u64, available: u64, advice: &str) -> Result<()> {
    if bytes <= available {
        return Ok(());
    }
    let gb = |b: u64| b as f64 / 1e9;
    Err(Error::Limit(format!(
        "{what} needs about {:.1} GB, more than the {:.1} GB of memory available; {advice}",
        gb(bytes),
        gb(available)
    )))
}

fn available_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kb.checked_mul(1024)
}

pub(crate) fn check_batch(n: usize) -> Result<()> {
    cap("batch size", n, MAX_BATCH)
}

pub(crate) fn check_index_size(n: usize) -> Result<()> {
    cap("index size", n, MAX_IMAGES)
}

pub(crate) fn check_text(what: &str, text: &str) -> Result<()> {
    cap(&format!("{what} length in bytes"), text.len(), MAX_TEXT_BYTES)?;
    if text.contains('\0') {
        return Err(Error::InvalidArgument(format!("{what} contains a NUL byte")));
    }
    Ok(())
}

pub(crate) fn cap(what: &str, n: usize, max: usize) -> Result<()> {
    if n > max {
        return Err(Error::Limit(format!("{what} {n} exceeds the maximum {max}")));
    }
    Ok(())
}

/// Largest beam size, in search and in training.
pub const MAX_BEAM: usize = 256;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tokenizer_too_large_for_the_memory_is_refused_naming_the_knob() {
        // N 16384 x dim 16384 passes the tensor limit, and its training peaks near 20 GB:
        // it used to abort the host on a machine with less.
        let bytes = TOKENIZER_PEAK_PER_CODEBOOK_BYTE * 16_384 * 16_384 * 4;
        let err = check_memory_against("tokenizer training", bytes, 8 << 30, "lower codebook_size").unwrap_err();
        assert!(matches!(err, Error::Limit(ref m) if m.contains("20.4 GB") && m.contains("codebook_size")), "{err}");
        check_memory_against("tokenizer training", bytes, bytes, "").unwrap();
        assert!(available_memory().is_some_and(|b| b > 0));
    }
}

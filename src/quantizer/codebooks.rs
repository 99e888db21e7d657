//! A tokenizer's codebooks on the host, for the searches that walk the trie by the
//! quantiser's distances (its own route, and its prior on the generator's codes).

use crate::kernels::lanes::sum_pairs;

/// A tokenizer's codebooks on the host: one shared by every level, or one per level,
/// each row-major [N, D], with each row's squared norm.
pub(crate) struct Codebooks {
    rows: Vec<Vec<f32>>,
    norms: Vec<Vec<f32>>,
}

impl Codebooks {
    /// `rows`: one codebook (shared by every level) or one per level.
    pub(crate) fn new(rows: Vec<Vec<f32>>, dim: usize) -> Self {
        let norms =
            rows.iter().map(|book| book.chunks_exact(dim).map(|c| sum_pairs(c, c, |x, y| x * y)).collect()).collect();
        Codebooks { rows, norms }
    }

    /// Level `l`'s rows and their norms.
    fn level(&self, l: usize) -> (&[f32], &[f32]) {
        let i = if self.rows.len() == 1 { 0 } else { l };
        (&self.rows[i], &self.norms[i])
    }

    /// The squared distance from `at` to `code`'s row at `level`: |r|² - 2 r·c + |c|²,
    /// one dot product.
    pub(crate) fn distance(&self, level: usize, at: &Residual, code: u32) -> f32 {
        let (book, norms) = self.level(level);
        let row = &book[code as usize * at.r.len()..][..at.r.len()];
        (at.rr - 2.0 * sum_pairs(&at.r, row, |x, y| x * y) + norms[code as usize]).max(0.0)
    }

    /// The residual left after `code` at `level`.
    pub(crate) fn follow(&self, level: usize, at: &Residual, code: u32) -> Residual {
        let (book, _) = self.level(level);
        let row = &book[code as usize * at.r.len()..][..at.r.len()];
        Residual::new(at.r.iter().zip(row).map(|(r, c)| r - c).collect())
    }
}

/// What is left of a latent after the codebook rows of a code prefix: the residual and
/// its squared norm (kept, so that each child's distance is one dot product).
#[derive(Debug, Clone, Default)]
pub(crate) struct Residual {
    r: Vec<f32>,
    rr: f32,
}

impl Residual {
    /// The residual of latent `z` before any code: `z` itself.
    pub(crate) fn new(r: Vec<f32>) -> Self {
        let rr = sum_pairs(&r, &r, |x, y| x * y);
        Residual { r, rr }
    }
}

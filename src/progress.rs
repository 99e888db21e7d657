//! Progress of training and of photo adds, reported to the host's callback (the C ABI passes it on as `AvgProgress`).

/// Which long call is reporting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Stage {
    #[default]
    Tokenizer = 0,
    Generator = 1,
    /// `add_photos`: one report per batch of photos, no losses.
    Images = 2,
}

/// One report, after every optimiser step (or batch of photos). Losses of the other
/// stage are 0.
#[derive(Debug, Clone, Copy, Default)]
pub struct Progress {
    pub stage: Stage,
    /// 0-based epoch, out of `epochs`.
    pub epoch: usize,
    pub epochs: usize,
    /// 0-based step within the epoch, out of `steps_per_epoch`.
    pub step: usize,
    pub steps_per_epoch: usize,
    /// The weighted total that was minimised.
    pub loss: f32,
    pub loss_recon: f32,
    pub loss_commit: f32,
    pub loss_align: f32,
    pub loss_gen: f32,
    pub loss_dis: f32,
    pub samples_per_second: f32,
}

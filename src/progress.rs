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

/// What the training loops share: a report to the host after every step (which may stop
/// the training with `Error::Cancelled`) and each epoch's mean losses. `K` losses a step,
/// which `put` writes into the report's fields of its stage.
pub(crate) struct StepLog<'a, const K: usize> {
    host: &'a mut dyn FnMut(&Progress) -> bool,
    /// Stage, epochs, steps per epoch and the epoch now.
    now: Progress,
    put: fn(&mut Progress, [f32; K]),
    sums: [f32; K],
}

impl<'a, const K: usize> StepLog<'a, K> {
    pub(crate) fn new(
        host: &'a mut dyn FnMut(&Progress) -> bool,
        stage: Stage,
        epochs: usize,
        steps_per_epoch: usize,
        put: fn(&mut Progress, [f32; K]),
    ) -> Self {
        let now = Progress { stage, epochs, steps_per_epoch, ..Default::default() };
        StepLog { host, now, put, sums: [0.0; K] }
    }

    pub(crate) fn start_epoch(&mut self, epoch: usize) {
        self.now.epoch = epoch;
        self.sums = [0.0; K];
    }

    /// Reports step `step` of `samples` examples, begun at `began`: the weighted `total`
    /// and its parts.
    pub(crate) fn step(
        &mut self,
        step: usize,
        samples: usize,
        began: std::time::Instant,
        total: f32,
        losses: [f32; K],
    ) -> crate::Result<()> {
        for (s, l) in self.sums.iter_mut().zip(losses) {
            *s += l;
        }
        let rate = samples as f32 / began.elapsed().as_secs_f32().max(1e-9);
        let mut p = Progress { step, loss: total, samples_per_second: rate, ..self.now };
        (self.put)(&mut p, losses);
        match (self.host)(&p) {
            true => Ok(()),
            false => Err(crate::Error::Cancelled),
        }
    }

    /// The epoch's mean losses.
    pub(crate) fn means(&self) -> [f32; K] {
        self.sums.map(|s| s / self.now.steps_per_epoch as f32)
    }
}

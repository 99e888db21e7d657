//! AdamW with global-norm gradient clipping. On the CPU the update is one fused in-place
//! pass over each parameter (Candle's op-by-op AdamW allocates a dozen full-size
//! temporaries per parameter and step); other devices run the same arithmetic as tensor ops.
//!
//! A table that a step reads only a few rows of (an embedding) can take part as a
//! [`Gathered`] leaf: its gradient then never exists at full size.

use crate::Result;
use candle_core::backprop::GradStore;
use candle_core::{CpuStorage, Layout, Tensor, Var};
use std::sync::Mutex;

pub(crate) struct AdamW {
    vars: Vec<Var>,
    state: Vec<Moments>,
    step: usize,
    pub lr: f64,
    pub weight_decay: f64,
    pub max_grad_norm: f64,
}

enum Moments {
    Host { m: Vec<f32>, v: Vec<f32> },
    Device { m: Tensor, v: Tensor },
}

const B1: f64 = 0.9;
const B2: f64 = 0.999;
const EPS: f64 = 1e-8;

/// The rows of a parameter table that one step reads, copied into a leaf of their own.
/// Through Candle's `index_select` the gradient of a table is dense, several full-size
/// temporaries per step (t5-small's embedding: 34k rows, of which a step reads a few
/// thousand); the leaf's gradient holds the read rows only, and the optimiser applies
/// it to the table with every other row's gradient zero, as the dense update would.
pub(crate) struct Gathered {
    table: Var,
    /// Table rows, sorted, without repeats; leaf row i is table row `rows[i]`.
    rows: Vec<u32>,
    leaf: Var,
}

impl Gathered {
    pub(crate) fn new(table: &Var, mut rows: Vec<u32>) -> Result<Self> {
        rows.sort_unstable();
        rows.dedup();
        let ids = Tensor::from_slice(&rows, rows.len(), table.device())?;
        let leaf = Var::from_tensor(&table.as_tensor().index_select(&ids, 0)?)?;
        Ok(Gathered { table: table.clone(), rows, leaf })
    }

    /// The leaf row of table row `id`.
    fn local(&self, id: u32) -> Result<u32> {
        let i = self
            .rows
            .binary_search(&id)
            .map_err(|_| crate::Error::Model(format!("embedding row {id} was not gathered for this step")))?;
        Ok(i as u32)
    }

    /// Table rows `ids`, read through the leaf: [ids, D].
    pub(crate) fn select(&self, ids: &[u32]) -> Result<Tensor> {
        let local = ids.iter().map(|&id| self.local(id)).collect::<Result<Vec<_>>>()?;
        Ok(self.leaf.as_tensor().index_select(&Tensor::from_vec(local, ids.len(), self.leaf.device())?, 0)?)
    }

    /// Table rows `start..start + len`, all gathered: [len, D]. Rows are sorted and
    /// unique, so the first and last being there means all are, in order.
    pub(crate) fn range(&self, start: u32, len: usize) -> Result<Tensor> {
        let first = self.local(start)? as usize;
        if len == 0 || self.local(start + len as u32 - 1)? as usize != first + len - 1 {
            return Err(crate::Error::Model(format!("embedding rows {start}..+{len} were not all gathered")));
        }
        Ok(self.leaf.as_tensor().narrow(0, first, len)?)
    }
}

impl AdamW {
    pub(crate) fn new(vars: Vec<Var>, lr: f64, weight_decay: f64, max_grad_norm: f64) -> Result<Self> {
        let state = vars
            .iter()
            .map(|v| {
                Ok(if v.device().is_cpu() {
                    Moments::Host { m: vec![0.0; v.elem_count()], v: vec![0.0; v.elem_count()] }
                } else {
                    Moments::Device { m: v.zeros_like()?, v: v.zeros_like()? }
                })
            })
            .collect::<Result<_>>()?;
        Ok(AdamW { vars, state, step: 0, lr, weight_decay, max_grad_norm })
    }

    /// Backpropagates `loss` and updates every parameter, the tables of `gathered`
    /// through their leaves; returns the gradient norm before clipping.
    pub(crate) fn backward_step(&mut self, loss: &Tensor, gathered: &[&Gathered]) -> Result<f32> {
        let grads = loss.backward()?;
        self.apply(&grads, gathered)
    }

    fn apply(&mut self, grads: &GradStore, gathered: &[&Gathered]) -> Result<f32> {
        let gs: Vec<Option<Grad>> = self
            .vars
            .iter()
            .map(|v| match gathered.iter().find(|g| g.table.as_tensor().id() == v.as_tensor().id()) {
                Some(g) => grads.get(g.leaf.as_tensor()).map(|t| Grad { t: t.clone(), rows: Some(&g.rows) }),
                None => grads.get(v.as_tensor()).map(|t| Grad { t: t.clone(), rows: None }),
            })
            .collect();
        // One device-to-host read per step for the global norm, not one per parameter.
        let sums = gs.iter().flatten().map(|g| g.t.sqr()?.sum_all()).collect::<candle_core::Result<Vec<_>>>()?;
        let norm =
            if sums.is_empty() { 0.0 } else { (Tensor::stack(&sums, 0)?.sum_all()?.to_scalar::<f32>()? as f64).sqrt() };
        let scale = if self.max_grad_norm > 0.0 && norm > self.max_grad_norm { self.max_grad_norm / norm } else { 1.0 };
        self.step += 1;
        let t = self.step as i32;
        let h = Hyper { lr: self.lr, wd: self.weight_decay, scale, bc1: 1.0 - B1.powi(t), bc2: 1.0 - B2.powi(t) };
        for ((var, state), g) in self.vars.iter().zip(&mut self.state).zip(gs) {
            let Some(g) = g else { continue };
            match state {
                Moments::Host { m, v } => {
                    let op = FusedStep { h, rows: g.rows, moments: Mutex::new((m.as_mut_slice(), v.as_mut_slice())) };
                    var.as_tensor().inplace_op2(&g.t.contiguous()?, &op)?;
                }
                Moments::Device { m, v } => {
                    let g = match g.rows {
                        Some(rows) => {
                            let ids = Tensor::from_slice(rows, rows.len(), g.t.device())?;
                            var.as_tensor().zeros_like()?.index_add(&ids, &g.t, 0)?
                        }
                        None => g.t,
                    };
                    let g = (g * scale)?;
                    *m = ((&*m * B1)? + (&g * (1.0 - B1))?)?;
                    *v = ((&*v * B2)? + (g.sqr()? * (1.0 - B2))?)?;
                    let update = ((&*m / h.bc1)? / ((&*v / h.bc2)?.sqrt()? + EPS)?)?;
                    let p = var.as_tensor();
                    let new = (p - ((update + (p * h.wd)?)? * h.lr)?)?;
                    var.set(&new)?;
                }
            }
        }
        Ok(norm as f32)
    }
}

/// A parameter's gradient: the whole of it, or the rows `rows` of it (the others zero).
struct Grad<'a> {
    t: Tensor,
    rows: Option<&'a [u32]>,
}

#[derive(Clone, Copy)]
struct Hyper {
    lr: f64,
    wd: f64,
    scale: f64,
    bc1: f64,
    bc2: f64,
}

struct FusedStep<'a> {
    h: Hyper,
    rows: Option<&'a [u32]>,
    moments: Mutex<(&'a mut [f32], &'a mut [f32])>,
}

impl candle_core::InplaceOp2 for FusedStep<'_> {
    fn name(&self) -> &'static str {
        "fused-adamw"
    }

    fn cpu_fwd(&self, p: &mut CpuStorage, pl: &Layout, g: &CpuStorage, gl: &Layout) -> candle_core::Result<()> {
        let (CpuStorage::F32(p), CpuStorage::F32(g)) = (p, g) else {
            candle_core::bail!("fused AdamW needs f32 parameters and gradients")
        };
        let (Some((p0, p1)), Some((g0, g1))) = (pl.contiguous_offsets(), gl.contiguous_offsets()) else {
            candle_core::bail!("fused AdamW needs contiguous tensors")
        };
        let (p, g) = (&mut p[p0..p1], &g[g0..g1]);
        let mut guard = self.moments.lock().expect("not poisoned");
        let (m, v) = &mut *guard;
        let Some(rows) = self.rows else {
            self.h.apply(p, m, v, Some(g));
            return Ok(());
        };
        // Row by row: the gathered rows with their gradient, the rows between with zero.
        let d = pl.dims().last().copied().unwrap_or(1);
        let mut done = 0;
        for (i, &r) in rows.iter().enumerate() {
            let (a, b) = (r as usize * d, (r as usize + 1) * d);
            self.h.apply(&mut p[done..a], &mut m[done..a], &mut v[done..a], None);
            self.h.apply(&mut p[a..b], &mut m[a..b], &mut v[a..b], Some(&g[i * d..(i + 1) * d]));
            done = b;
        }
        self.h.apply(&mut p[done..], &mut m[done..], &mut v[done..], None);
        Ok(())
    }
}

impl Hyper {
    /// Updates parameters `p` and their moments by gradient `g` (`None`: zero).
    fn apply(&self, p: &mut [f32], m: &mut [f32], v: &mut [f32], g: Option<&[f32]>) {
        let (lr, wd, scale) = (self.lr as f32, self.wd as f32, self.scale as f32);
        let (b1, b2, bc1, bc2, eps) = (B1 as f32, B2 as f32, self.bc1 as f32, self.bc2 as f32, EPS as f32);
        let one = |p: &mut f32, m: &mut f32, v: &mut f32, g: f32| {
            let g = g * scale;
            *m = b1 * *m + (1.0 - b1) * g;
            *v = b2 * *v + (1.0 - b2) * g * g;
            *p -= lr * ((*m / bc1) / ((*v / bc2).sqrt() + eps) + wd * *p);
        };
        match g {
            Some(g) => {
                p.iter_mut().zip(m.iter_mut()).zip(v.iter_mut()).zip(g).for_each(|(((p, m), v), &g)| one(p, m, v, g))
            }
            None => p.iter_mut().zip(m.iter_mut()).zip(v.iter_mut()).for_each(|((p, m), v)| one(p, m, v, 0.0)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn fused_step_matches_candles_adamw() {
        let init = Tensor::new(&[[0.5f32, -1.0], [2.0, 0.1]], &Device::Cpu).unwrap();
        let (a, b) = (Var::from_tensor(&init).unwrap(), Var::from_tensor(&init).unwrap());
        let mut ours = AdamW::new(vec![a.clone()], 0.01, 0.1, 0.0).unwrap();
        let params = candle_nn::ParamsAdamW { lr: 0.01, weight_decay: 0.1, ..Default::default() };
        let mut theirs = <candle_nn::AdamW as candle_nn::Optimizer>::new(vec![b.clone()], params).unwrap();
        for _ in 0..5 {
            ours.backward_step(&a.sqr().unwrap().sum_all().unwrap(), &[]).unwrap();
            candle_nn::Optimizer::backward_step(&mut theirs, &b.sqr().unwrap().sum_all().unwrap()).unwrap();
        }
        let diff =
            (a.as_tensor() - b.as_tensor()).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(diff < 1e-5, "{diff}");
    }

    #[test]
    fn a_gathered_table_takes_the_dense_update() {
        let init = Tensor::arange(0f32, 24.0, &Device::Cpu).unwrap().reshape((6, 4)).unwrap();
        let (a, b) = (Var::from_tensor(&init).unwrap(), Var::from_tensor(&init).unwrap());
        let mut dense = AdamW::new(vec![a.clone()], 0.01, 0.1, 1.0).unwrap();
        let mut sparse = AdamW::new(vec![b.clone()], 0.01, 0.1, 1.0).unwrap();
        // Repeats and unsorted ids: both paths must sum a row's gradients.
        let ids = [4u32, 1, 4, 2];
        let loss = |rows: &Tensor| rows.sqr().unwrap().sum_all().unwrap();
        for _ in 0..3 {
            let t = Tensor::new(&ids, &Device::Cpu).unwrap();
            dense.backward_step(&loss(&a.as_tensor().index_select(&t, 0).unwrap()), &[]).unwrap();
            let g = Gathered::new(&b, ids.to_vec()).unwrap();
            sparse.backward_step(&loss(&g.select(&ids).unwrap()), &[&g]).unwrap();
        }
        let diff =
            (a.as_tensor() - b.as_tensor()).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(diff < 1e-6, "{diff}");
        // Rows no step read moved too (weight decay and momentum), as in the dense update.
        let row0 = b.as_tensor().get(0).unwrap().to_vec1::<f32>().unwrap();
        assert!(row0 != [0f32, 1.0, 2.0, 3.0]);
    }
}

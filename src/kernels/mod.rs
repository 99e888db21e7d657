//! The numeric kernels beneath the models and the searches: few-row matrix products
//! (the generator's search steps, the dense scan), the worker threads they share out
//! their blocks on, and lane-wise sums (k-means, attention, the quantiser's codes).

pub(crate) mod lanes;
pub(crate) mod pool;
pub(crate) mod small_matmul;

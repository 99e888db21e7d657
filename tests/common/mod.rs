//! Synthetic data shared by the integration tests.
#![allow(dead_code)]

use avg::{Index, IndexConfig, NewCaption, NewImage};

/// A small deterministic generator (tests must not depend on the library's internals).
pub struct Lcg(pub u64);

impl Lcg {
    pub fn next(&mut self) -> f32 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    pub fn vector(&mut self, dim: usize, scale: f32) -> Vec<f32> {
        (0..dim).map(|_| self.next() * scale).collect()
    }
}

fn normalize(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-6);
    v.iter_mut().for_each(|x| *x /= n);
}

/// A topic-structured set: `topics` topic vectors; image i belongs to topic i % topics.
/// Its image vector is topic + `image_noise` of image-specific noise; its captions are
/// topic + a little noise, so captions of one topic are close while images are not.
pub struct Synthetic {
    pub dim: usize,
    pub topics: usize,
    pub images: Vec<(u64, Vec<f32>)>,
    pub captions: Vec<Vec<Vec<f32>>>,
}

impl Synthetic {
    pub fn new(dim: usize, n: usize, topics: usize, image_noise: f32, seed: u64) -> Self {
        let mut rng = Lcg(seed);
        let centres: Vec<Vec<f32>> = (0..topics).map(|_| rng.vector(dim, 1.0)).collect();
        let mut images = Vec::new();
        let mut captions = Vec::new();
        for i in 0..n {
            let c = &centres[i % topics];
            let mut v: Vec<f32> = c.iter().map(|x| x + rng.next() * image_noise).collect();
            normalize(&mut v);
            images.push((i as u64, v));
            captions.push(
                (0..2)
                    .map(|_| {
                        let mut t: Vec<f32> = c.iter().map(|x| x + rng.next() * 0.1).collect();
                        normalize(&mut t);
                        t
                    })
                    .collect(),
            );
        }
        Synthetic { dim, topics, images, captions }
    }

    pub fn topic(&self, id: u64) -> usize {
        id as usize % self.topics
    }

    pub fn fill(&self, index: &Index) {
        let images: Vec<NewImage> = self.images.iter().map(|(id, v)| NewImage { id: *id, key: None, vector: v }).collect();
        index.add_images(&images).unwrap();
        for ((id, _), caps) in self.images.iter().zip(&self.captions) {
            let captions: Vec<NewCaption> =
                caps.iter().enumerate().map(|(k, v)| NewCaption { text: if k == 0 { "a photo" } else { "another view" }, vector: Some(v) }).collect();
            index.add_captions(*id, &captions).unwrap();
        }
    }
}

pub fn small_config(dim: usize) -> IndexConfig {
    IndexConfig { dim, codebook_size: 32, voken_len: 3, device: "cpu".into() }
}

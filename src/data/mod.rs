//! Datasets: MNIST-style IDX loading, seeded splits, standardization fitted on the
//! training split only, and seeded per-epoch shuffling.

pub mod idx;

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::rng::{Rng, stream};

/// Samples as rows of `features` f32 values, labels as class indices.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    pub x: Vec<f32>,
    pub y: Vec<f32>,
    pub features: usize,
    pub classes: usize,
}

impl Dataset {
    pub fn len(&self) -> usize {
        self.y.len()
    }
    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }

    /// Rows `idx` in that order.
    pub fn gather(&self, idx: &[usize]) -> Dataset {
        let f = self.features;
        let mut x = Vec::with_capacity(idx.len() * f);
        for &i in idx {
            x.extend_from_slice(&self.x[i * f..(i + 1) * f]);
        }
        Dataset {
            x,
            y: idx.iter().map(|&i| self.y[i]).collect(),
            features: f,
            classes: self.classes,
        }
    }

    /// The first `n` samples.
    pub fn take(&self, n: usize) -> Dataset {
        self.gather(&(0..n.min(self.len())).collect::<Vec<_>>())
    }

    /// A seeded random split: (train, validation) with `val_fraction` of the samples in
    /// validation.
    pub fn split(&self, val_fraction: f32, seed: u64) -> Result<(Dataset, Dataset)> {
        if !(0.0..1.0).contains(&val_fraction) {
            return Err(Error::Hyperparameter {
                name: "val_fraction",
                value: val_fraction.to_string(),
                expected: "0 <= fraction < 1",
            });
        }
        let perm = Rng::new(seed).permutation(stream::SPLIT, 0, self.len());
        let n_val = (self.len() as f32 * val_fraction).round() as usize;
        Ok((self.gather(&perm[n_val..]), self.gather(&perm[..n_val])))
    }

    /// Indices of epoch `epoch`'s order (a seeded permutation, or 0..n without shuffle).
    pub fn epoch_order(&self, seed: u64, epoch: u64, shuffle: bool) -> Vec<usize> {
        if shuffle {
            Rng::new(seed).permutation(stream::SHUFFLE, epoch as u32, self.len())
        } else {
            (0..self.len()).collect()
        }
    }
}

/// Standardization x' = (x - mean) / std with one global mean and std, fitted on the
/// training split only and then applied unchanged to validation and test data.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Standardizer {
    pub mean: f32,
    pub std: f32,
}

impl Standardizer {
    /// Fit on a dataset (the training split). Sums in f64.
    pub fn fit(ds: &Dataset) -> Result<Self> {
        if ds.x.is_empty() {
            return Err(Error::Shape {
                context: "standardizer fit".into(),
                got: vec![0],
                expected: "a non-empty training split".into(),
            });
        }
        let n = ds.x.len() as f64;
        let mean = ds.x.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = ds.x.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
        Ok(Standardizer {
            mean: mean as f32,
            std: (var.sqrt() as f32).max(1e-12),
        })
    }
    pub fn apply(&self, ds: &mut Dataset) {
        ds.x.iter_mut()
            .for_each(|v| *v = (*v - self.mean) / self.std);
    }
}

/// Load an MNIST-format pair (`{prefix}-images-idx3-ubyte[.gz]`,
/// `{prefix}-labels-idx1-ubyte[.gz]`) with pixels scaled to [0, 1].
pub fn load_idx_pair(dir: &Path, prefix: &str) -> Result<Dataset> {
    let find = |stem: String| -> Result<PathBuf> {
        let plain = dir.join(&stem);
        let gz = dir.join(format!("{stem}.gz"));
        if plain.exists() {
            Ok(plain)
        } else if gz.exists() {
            Ok(gz)
        } else {
            Err(Error::Idx {
                path: plain,
                what: "not found (nor .gz); run scripts/fetch-data.sh".into(),
            })
        }
    };
    let ip = find(format!("{prefix}-images-idx3-ubyte"))?;
    let lp = find(format!("{prefix}-labels-idx1-ubyte"))?;
    let images = idx::read_u8(&ip)?;
    let labels = idx::read_u8(&lp)?;
    if images.dims.len() != 3 {
        return Err(Error::Idx {
            path: ip,
            what: format!("dimensions {:?}, expected [N, rows, cols]", images.dims),
        });
    }
    if labels.dims.len() != 1 {
        return Err(Error::Idx {
            path: lp,
            what: format!("dimensions {:?}, expected [N]", labels.dims),
        });
    }
    if labels.dims[0] != images.dims[0] {
        return Err(Error::Idx {
            path: lp,
            what: format!("{} labels for {} images", labels.dims[0], images.dims[0]),
        });
    }
    if let Some((i, &l)) = labels.data.iter().enumerate().find(|(_, l)| **l > 9) {
        return Err(Error::Idx {
            path: lp,
            what: format!("label {l} at index {i}, expected 0..=9"),
        });
    }
    Ok(Dataset {
        x: images.data.iter().map(|&p| p as f32 / 255.0).collect(),
        y: labels.data.iter().map(|&l| l as f32).collect(),
        features: images.dims[1] * images.dims[2],
        classes: 10,
    })
}

/// MNIST or Fashion-MNIST from `dir`: (train 60,000, test 10,000).
pub fn load_mnist(dir: &Path) -> Result<(Dataset, Dataset)> {
    Ok((load_idx_pair(dir, "train")?, load_idx_pair(dir, "t10k")?))
}

//! MNIST-format datasets: a pair of IDX files (images and labels) read into a [`Dataset`].

use std::path::{Path, PathBuf};

use super::{Dataset, check_labels, idx};
use crate::error::{Error, Result};

/// Load an MNIST-format pair (`{prefix}-images-idx3-ubyte[.gz]`,
/// `{prefix}-labels-idx1-ubyte[.gz]`) with pixels scaled to [0, 1] and 10 classes; a
/// label outside 0..=9 is an [`Error::Label`] naming the label file, the row and the value.
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
    let y: Vec<f32> = labels.data.iter().map(|&l| l as f32).collect();
    check_labels(&y, 10, &lp.display().to_string())?;
    Dataset::new(
        images.data.iter().map(|&p| p as f32 / 255.0).collect(),
        y,
        images.dims[1] * images.dims[2],
        10,
    )
}

/// MNIST or Fashion-MNIST from `dir`: (train 60,000, test 10,000).
pub fn load_mnist(dir: &Path) -> Result<(Dataset, Dataset)> {
    Ok((load_idx_pair(dir, "train")?, load_idx_pair(dir, "t10k")?))
}

/// The images file of an MNIST-format pair in `dir` (`{prefix}-images-idx3-ubyte[.gz]`)
/// and its image size (rows, cols), read from the file's header.
pub fn idx_image_size(dir: &Path, prefix: &str) -> Result<(PathBuf, usize, usize)> {
    let stem = format!("{prefix}-images-idx3-ubyte");
    let gz = dir.join(format!("{stem}.gz"));
    let path = if !dir.join(&stem).exists() && gz.exists() {
        gz
    } else {
        dir.join(&stem)
    };
    match idx::read_dims(&path)?[..] {
        [_, rows, cols] => Ok((path, rows, cols)),
        ref d => Err(Error::Idx {
            what: format!("dimensions {d:?}, expected [N, rows, cols]"),
            path,
        }),
    }
}

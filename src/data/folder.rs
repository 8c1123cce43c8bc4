//! Image-folder datasets: one sub-folder per class (sorted names → class indices 0, 1, ...),
//! PNG or JPEG files decoded with the image crate, resized to a fixed size (bilinear),
//! grayscale or RGB, pixels scaled to [0, 1] in NCHW order — ready for the same models and
//! augmentation as MNIST.

use std::path::Path;

use super::Dataset;
use crate::error::{Error, Result};

/// How to read an image folder.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FolderOptions {
    pub width: u32,
    pub height: u32,
    /// 3 channels (RGB) or 1 (grayscale).
    pub rgb: bool,
}

/// Load `root/<class>/<image>` files. Returns the dataset and the class names (index = label).
///
/// Errors ([`Error::Image`] naming the folder): no class sub-folders, a single one (a
/// classifier needs at least 2 classes, as a CSV target needs 2 distinct values), a class
/// folder without a .png/.jpg image (a class no sample could teach); an undecodable image
/// (named); [`Error::TooLarge`] for a size past the host's memory.
pub fn load_image_folder(root: &Path, opts: FolderOptions) -> Result<(Dataset, Vec<String>)> {
    if opts.width == 0 || opts.height == 0 {
        return Err(Error::Hyperparameter {
            name: "image size",
            value: format!("{}x{}", opts.width, opts.height),
            expected: "width and height >= 1",
        });
    }
    let read_dir = |p: &Path| std::fs::read_dir(p).map_err(|e| Error::io(p, e));
    let mut classes: Vec<String> = read_dir(root)?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    classes.sort();
    if classes.is_empty() {
        return Err(Error::Image {
            path: root.to_path_buf(),
            what: "no class sub-folders; expected root/<class>/<image>.png|jpg".into(),
        });
    }
    let c = if opts.rgb { 3 } else { 1 };
    let (w, h) = (opts.width as usize, opts.height as usize);
    let mut per_class = vec![];
    for class in &classes {
        let dir = root.join(class);
        let mut files: Vec<_> = read_dir(&dir)?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| is_image(p))
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(Error::Image {
                path: dir,
                what: format!(
                    "class folder {} holds no .png/.jpg image; expected at least one image per class (add images or remove the folder)",
                    crate::error::shown(class)
                ),
            });
        }
        per_class.push(files);
    }
    if classes.len() < 2 {
        return Err(Error::Image {
            path: root.to_path_buf(),
            what: format!(
                "holds 1 class folder ({}); expected at least 2, one sub-folder per class",
                crate::error::shown(&classes[0])
            ),
        });
    }
    let n_files: usize = per_class.iter().map(Vec::len).sum();
    check_size(opts, n_files)?;
    let (mut x, mut y) = (vec![], vec![]);
    for (label, files) in per_class.into_iter().enumerate() {
        for f in files {
            decode_into(&mut x, &f, opts)?;
            y.push(label as f32);
        }
    }
    if y.is_empty() {
        return Err(Error::Image {
            path: root.to_path_buf(),
            what: "class folders hold no .png/.jpg images".into(),
        });
    }
    // Labels are the indices of the sorted folder names, so always in [0, classes);
    // Dataset::new checks them (and the shape) all the same.
    Ok((Dataset::new(x, y, c * h * w, classes.len())?, classes))
}

/// Decode the image at `f`, resize it to `opts` (bilinear) and append its pixels scaled to
/// [0, 1] in CHW order to `x`.
fn decode_into(x: &mut Vec<f32>, f: &Path, opts: FolderOptions) -> Result<()> {
    let img = image::open(f).map_err(|e| Error::Image {
        path: f.to_path_buf(),
        what: format!("cannot decode image: {e}"),
    })?;
    let img = img.resize_exact(
        opts.width,
        opts.height,
        image::imageops::FilterType::Triangle,
    );
    let (w, h) = (opts.width as usize, opts.height as usize);
    if opts.rgb {
        let rgb = img.to_rgb8();
        for ch in 0..3 {
            for py in 0..h {
                for px in 0..w {
                    x.push(rgb.get_pixel(px as u32, py as u32)[ch] as f32 / 255.0);
                }
            }
        }
    } else {
        x.extend(img.to_luma8().pixels().map(|p| p[0] as f32 / 255.0));
    }
    Ok(())
}

/// Checked before decoding: the size of one image (1 ..= `MAX_ELEMENTS` values), as f32
/// for `n` images within the host's memory, and the decoder's resized copy (at most 8
/// bytes a pixel). Errors: [`Error::TooLarge`] naming the size and the count.
fn check_size(opts: FolderOptions, n: usize) -> Result<()> {
    let c = if opts.rgb { 3 } else { 1 };
    let (w, h) = (opts.width as usize, opts.height as usize);
    let features = crate::limits::product(&[c, h, w]);
    let all = features
        .and_then(crate::limits::f32_bytes)
        .and_then(|b| b.checked_mul(n as u128));
    let mem = crate::limits::host_memory_bytes();
    if w == 0
        || h == 0
        || features.is_none_or(|f| f > crate::limits::MAX_ELEMENTS)
        || all.is_none_or(|b| b > mem)
        || (w as u128 * h as u128 * 8) > mem
    {
        return Err(Error::too_large(
            "image size",
            format!(
                "{}x{} ({c} channel(s), {n} images)",
                opts.width, opts.height
            ),
            all,
            format!(
                "between 1 and {} values per image, and the host's memory ({mem} bytes) for all",
                crate::limits::MAX_ELEMENTS
            ),
        ));
    }
    Ok(())
}

fn is_image(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "png" | "jpg" | "jpeg"))
}

/// Every PNG/JPEG image in `dir` and in its sub-folders (one level, as an image folder's
/// class folders), sorted by path, decoded and resized as [`load_image_folder`] does:
/// the pixels ([N, C·H·W], values in [0, 1]) and the files in that order. What prediction
/// reads when the images have no labels.
///
/// Errors: an unreadable folder, no images ([`Error::Image`]), an image that cannot be
/// decoded (named), a size past the host's memory ([`Error::TooLarge`]).
pub fn load_images(dir: &Path, opts: FolderOptions) -> Result<(Vec<f32>, Vec<std::path::PathBuf>)> {
    let read_dir = |p: &Path| std::fs::read_dir(p).map_err(|e| Error::io(p, e));
    let mut files = vec![];
    for e in read_dir(dir)?.filter_map(|e| e.ok()) {
        let p = e.path();
        if p.is_dir() {
            files.extend(
                read_dir(&p)?
                    .filter_map(|e| e.ok())
                    .map(|e| e.path())
                    .filter(|p| p.is_file() && is_image(p)),
            );
        } else if p.is_file() && is_image(&p) {
            files.push(p);
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(Error::Image {
            path: dir.to_path_buf(),
            what: "holds no .png/.jpg images (nor do its sub-folders)".into(),
        });
    }
    check_size(opts, files.len())?;
    let mut x = vec![];
    for f in &files {
        decode_into(&mut x, f, opts)?;
    }
    Ok((x, files))
}

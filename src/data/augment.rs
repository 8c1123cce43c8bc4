//! Image augmentation on the device, per sample, in training only: the [`Augment`] spec
//! (names and ranges after Keras' preprocessing layers and torchvision's transforms), and a
//! preview grid of what the model sees.
//!
//! Differences to know: rotation and shear are in degrees (Keras' RandomRotation takes a
//! fraction of a full turn); positive rotation is counter-clockwise on screen, as in both;
//! zoom is torchvision's scale (> 1 enlarges; Keras' RandomZoom height_factor is the
//! opposite sign); translation is a fraction of the image size, as in both; brightness is
//! an additive delta and contrast a factor range around each image's mean on [0, 1]
//! images (Keras' RandomBrightness / RandomContrast), clipped to [0, 1]; cutout sets a
//! square to 0 (torchvision's RandomErasing with value 0, square).

use std::path::Path;

use crate::backend::check::run_kernel;
use crate::backend::cpu::Cpu;
use crate::backend::{Globals, Kernel};
use crate::error::{Error, Result};

/// Interpolation of the geometric warp.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Interp {
    Nearest,
    Bilinear,
}

/// What the warp samples outside the image.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Fill {
    Constant(f32),
    Nearest,
    Reflect,
}

/// A composable augmentation pipeline; every field defaults to "off". Ranges are
/// (min, max), drawn uniformly per sample; min = max fixes a value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Augment {
    /// Probability of a horizontal / vertical flip.
    pub hflip: f32,
    pub vflip: f32,
    /// Translation range as a fraction of the width / height.
    pub translate_x: (f32, f32),
    pub translate_y: (f32, f32),
    /// Rotation range in degrees (positive: counter-clockwise on screen).
    pub rotation: (f32, f32),
    /// Scale range ((1, 1) = off); `zoom_per_axis` draws x and y scales independently.
    pub zoom: (f32, f32),
    pub zoom_per_axis: bool,
    /// Shear angle range in degrees (along x).
    pub shear: (f32, f32),
    pub interp: Interp,
    pub fill: Fill,
    /// Additive brightness delta range ((0, 0) = off).
    pub brightness: (f32, f32),
    /// Contrast factor range around each image's mean ((1, 1) = off).
    pub contrast: (f32, f32),
    /// Standard deviation of additive Gaussian noise.
    pub noise_std: f32,
    /// Random crop with this zero padding (an integer shift in ±padding, constant fill).
    pub crop_padding: usize,
    /// Cutout: a size×size square set to 0 with probability p.
    pub cutout_size: usize,
    pub cutout_p: f32,
    /// Standardization applied last, in training and at inference: (x − mean) / std.
    pub standardize: Option<(f32, f32)>,
}

impl Default for Augment {
    fn default() -> Self {
        Augment {
            hflip: 0.0,
            vflip: 0.0,
            translate_x: (0.0, 0.0),
            translate_y: (0.0, 0.0),
            rotation: (0.0, 0.0),
            zoom: (1.0, 1.0),
            zoom_per_axis: false,
            shear: (0.0, 0.0),
            interp: Interp::Bilinear,
            fill: Fill::Constant(0.0),
            brightness: (0.0, 0.0),
            contrast: (1.0, 1.0),
            noise_std: 0.0,
            crop_padding: 0,
            cutout_size: 0,
            cutout_p: 0.0,
            standardize: None,
        }
    }
}

/// Floats of the spec (layout documented in shaders/augment.wgsl).
pub const SPEC_LEN: usize = 32;

impl Augment {
    /// W-CNN's augmentation: rotation uniform in ±10°, translation uniform in ±2 pixels of
    /// 28, bilinear, then standardization.
    pub fn w_cnn(mean: f32, std: f32) -> Self {
        Augment::default()
            .rotate(10.0)
            .translate(2.0 / 28.0, 2.0 / 28.0)
            .standardize(mean, std)
    }
    /// Rotation uniform in ±degrees (Keras' RandomRotation(degrees / 360)).
    pub fn rotate(mut self, degrees: f32) -> Self {
        self.rotation = (-degrees, degrees);
        self
    }
    /// Translation uniform in ±fraction of width and height.
    pub fn translate(mut self, fx: f32, fy: f32) -> Self {
        self.translate_x = (-fx, fx);
        self.translate_y = (-fy, fy);
        self
    }
    pub fn standardize(mut self, mean: f32, std: f32) -> Self {
        self.standardize = Some((mean, std));
        self
    }

    pub fn validate(&self) -> Result<()> {
        let bad = |name, v: f32, expected| {
            Err(Error::Hyperparameter {
                name,
                value: v.to_string(),
                expected,
            })
        };
        for (name, p) in [
            ("augment.hflip", self.hflip),
            ("augment.vflip", self.vflip),
            ("augment.cutout_p", self.cutout_p),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return bad(name, p, "a probability in [0, 1]");
            }
        }
        for (name, (lo, hi)) in [
            ("augment.translate_x", self.translate_x),
            ("augment.translate_y", self.translate_y),
            ("augment.rotation", self.rotation),
            ("augment.zoom", self.zoom),
            ("augment.shear", self.shear),
            ("augment.brightness", self.brightness),
            ("augment.contrast", self.contrast),
        ] {
            if !(lo <= hi && lo.is_finite() && hi.is_finite()) {
                return bad(name, hi, "a finite range with min <= max");
            }
        }
        if !(self.zoom.0 > 0.0) {
            return bad("augment.zoom", self.zoom.0, "scales > 0");
        }
        if !(self.contrast.0 >= 0.0) {
            return bad("augment.contrast", self.contrast.0, "factors >= 0");
        }
        if self.shear.0.abs() >= 89.0 || self.shear.1.abs() >= 89.0 {
            return bad("augment.shear", self.shear.1, "|shear| < 89 degrees");
        }
        if !(self.noise_std >= 0.0) {
            return bad("augment.noise_std", self.noise_std, ">= 0");
        }
        if let Some((_, s)) = self.standardize
            && !(s > 0.0)
        {
            return bad("augment.standardize.std", s, "std > 0");
        }
        Ok(())
    }

    /// Whether any random transform is on.
    pub fn is_random(&self) -> bool {
        let off = Augment {
            standardize: self.standardize,
            interp: self.interp,
            fill: self.fill,
            ..Augment::default()
        };
        *self != off
    }

    /// The spec floats for images of `h`×`w` pixels.
    pub fn spec(&self, h: usize, w: usize) -> Vec<f32> {
        let mut s = vec![0f32; SPEC_LEN];
        s[0] = self.hflip;
        s[1] = self.vflip;
        (s[2], s[3]) = (self.translate_x.0 * w as f32, self.translate_x.1 * w as f32);
        (s[4], s[5]) = (self.translate_y.0 * h as f32, self.translate_y.1 * h as f32);
        (s[6], s[7]) = self.rotation;
        (s[8], s[9]) = self.zoom;
        s[10] = self.zoom_per_axis as u8 as f32;
        (s[11], s[12]) = self.shear;
        s[13] = match self.interp {
            Interp::Nearest => 0.0,
            Interp::Bilinear => 1.0,
        };
        (s[14], s[15]) = match self.fill {
            Fill::Constant(v) => (0.0, v),
            Fill::Nearest => (1.0, 0.0),
            Fill::Reflect => (2.0, 0.0),
        };
        (s[16], s[17]) = self.brightness;
        (s[18], s[19]) = self.contrast;
        s[20] = self.noise_std;
        s[21] = self.crop_padding as f32;
        s[22] = self.cutout_size as f32;
        s[23] = self.cutout_p;
        if let Some((m, sd)) = self.standardize {
            s[24] = m;
            s[25] = sd;
        }
        s
    }

    /// Apply the training-time pipeline to a batch on the CPU twin (the GPU kernels give the
    /// same images up to float rounding; tests/augment.rs checks it). `images` is
    /// [n, c·h·w]; draws are keyed by (seed, stream, step) as in training.
    pub fn apply_cpu(
        &self,
        images: &[f32],
        n: usize,
        chw: (usize, usize, usize),
        seed: u64,
        stream: u32,
        step: u32,
    ) -> Result<Vec<f32>> {
        self.validate()?;
        let (c, h, w) = chw;
        if images.len() != n * c * h * w {
            return Err(Error::Shape {
                context: "augment images".into(),
                got: vec![images.len()],
                expected: format!("{n}·{c}·{h}·{w} values"),
            });
        }
        let mut p = [0u32; 16];
        for (i, v) in [n, c, h, w, stream as usize, 1].into_iter().enumerate() {
            p[i] = v as u32;
        }
        let g = Globals {
            seed_lo: seed as u32,
            seed_hi: (seed >> 32) as u32,
            step,
            ..Globals::default()
        };
        let spec = self.spec(h, w);
        let mut cpu = Cpu::new();
        let warped = run_kernel(
            &mut cpu,
            Kernel::AugmentGeom,
            p,
            &[images.to_vec(), spec.clone()],
            &[vec![0.0; images.len()]],
            &g,
        )?
        .remove(0);
        Ok(run_kernel(
            &mut cpu,
            Kernel::AugmentPhoto,
            p,
            &[warped, spec],
            &[vec![0.0; images.len()]],
            &g,
        )?
        .remove(0))
    }
}

/// Write a PNG grid: the first row `before`, the second `after` (each `n` single-channel
/// `hw` = (h, w) images in [0, 1] after undoing `standardize`), 2-pixel gaps, scaled ×`zoom`.
pub fn preview_png(
    path: &Path,
    before: &[f32],
    after: &[f32],
    n: usize,
    hw: (usize, usize),
    zoom: u32,
    standardize: Option<(f32, f32)>,
) -> Result<()> {
    let (h, w) = hw;
    let (gw, gh) = ((n * (w + 2)) as u32 * zoom, (2 * (h + 2)) as u32 * zoom);
    let mut img = image::GrayImage::from_pixel(gw, gh, image::Luma([64]));
    for (row, data, std) in [(0, before, None), (1, after, standardize)] {
        for k in 0..n {
            for y in 0..h {
                for x in 0..w {
                    let mut v = data[k * h * w + y * w + x];
                    if let Some((m, s)) = std {
                        v = v * s + m;
                    }
                    let px = image::Luma([(v.clamp(0.0, 1.0) * 255.0).round() as u8]);
                    for dy in 0..zoom {
                        for dx in 0..zoom {
                            let gx = (k * (w + 2) + 1 + x) as u32 * zoom + dx;
                            let gy = (row * (h + 2) + 1 + y) as u32 * zoom + dy;
                            img.put_pixel(gx, gy, px);
                        }
                    }
                }
            }
        }
    }
    img.save(path).map_err(|e| Error::Plot {
        path: path.to_path_buf(),
        what: e.to_string(),
    })
}

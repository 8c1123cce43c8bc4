//! Image augmentation on the device, per sample, in training only: the [`Augment`] spec
//! (names and ranges after Keras' preprocessing layers and torchvision's transforms), and a
//! way to apply it to a batch outside training (previews, tests).
//!
//! Differences to know: rotation and shear are in degrees (Keras' RandomRotation takes a
//! fraction of a full turn); positive rotation is counter-clockwise on screen, as in both;
//! zoom is torchvision's scale (> 1 enlarges; Keras' RandomZoom height_factor is the
//! opposite sign, and `zoom_y` gives Keras' independent height and width factors);
//! shear along x and y composes as torchvision's RandomAffine(shear=(sx, sy)),
//! A = R·Shy·Shx·Z (the matrices are in [`Augment::shear`]); the crop shift is a uniform
//! integer (torchvision's RandomCrop); translation is a fraction of the image size, as in both; brightness is
//! an additive delta and contrast a factor range around each image's mean on [0, 1]
//! images (Keras' RandomBrightness / RandomContrast), clipped to [0, 1]; cutout sets a
//! square to 0 (torchvision's RandomErasing with value 0, square).

use crate::backend::Backend;
use crate::backend::check::run_kernel;
use crate::backend::cpu::Cpu;
use crate::error::{Error, Result};
use crate::kernels::augment::{AugmentParams, slot};
use crate::kernels::{Globals, Kernel, KernelParams};

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
    /// Scale range ((1, 1) = off): the width's, and the height's too unless `zoom_y` is
    /// set; `zoom_per_axis` draws the height's scale from this range independently.
    pub zoom: (f32, f32),
    pub zoom_per_axis: bool,
    /// Height scale range drawn independently of the width's (`zoom`), as Keras'
    /// RandomZoom(height_factor, width_factor) in scale terms; `Some((s, s))` fixes it.
    /// None: the height follows `zoom` (see `zoom_per_axis`).
    pub zoom_y: Option<(f32, f32)>,
    /// Shear angle range in degrees along x: Shx = [[1, tan(shear)], [0, 1]] acting on
    /// (x, y) with y pointing down, so a positive shear moves rows below the centre right.
    pub shear: (f32, f32),
    /// Shear angle range in degrees along y: Shy = [[1, 0], [tan(shear_y), 1]] (a positive
    /// shear moves columns right of the centre down). The warp is A = R·Shy·Shx·Z,
    /// torchvision's RandomAffine(degrees, scale, shear=(sx, sy)) order; torchvision's
    /// F.affine angle and shears are these with the opposite sign (its angle turns
    /// clockwise on screen).
    pub shear_y: (f32, f32),
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
            zoom_y: None,
            shear: (0.0, 0.0),
            shear_y: (0.0, 0.0),
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

/// The transforms that are on, for people: e.g. `rotation [-10, 10]°, translate x
/// [-0.0714, 0.0714] y [-0.0714, 0.0714] (bilinear), standardize (0.1307, 0.3081)`; `none`
/// when every transform is off.
impl std::fmt::Display for Augment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let d = Augment::default();
        let r = |(a, b): (f32, f32)| format!("[{a}, {b}]");
        let mut parts: Vec<String> = vec![];
        if self.hflip > 0.0 {
            parts.push(format!("horizontal flip p={}", self.hflip));
        }
        if self.vflip > 0.0 {
            parts.push(format!("vertical flip p={}", self.vflip));
        }
        if self.rotation != d.rotation {
            parts.push(format!("rotation {}°", r(self.rotation)));
        }
        if self.translate_x != d.translate_x || self.translate_y != d.translate_y {
            parts.push(format!(
                "translate x {} y {} (fractions of the size)",
                r(self.translate_x),
                r(self.translate_y)
            ));
        }
        if self.zoom != d.zoom || self.zoom_y.is_some() {
            let y = match self.zoom_y {
                Some(z) => format!(" height {}", r(z)),
                None if self.zoom_per_axis => " per axis".into(),
                None => String::new(),
            };
            parts.push(format!("zoom {}{y}", r(self.zoom)));
        }
        if self.shear != d.shear || self.shear_y != d.shear_y {
            parts.push(format!("shear x {}° y {}°", r(self.shear), r(self.shear_y)));
        }
        if self.brightness != d.brightness {
            parts.push(format!("brightness {}", r(self.brightness)));
        }
        if self.contrast != d.contrast {
            parts.push(format!("contrast {}", r(self.contrast)));
        }
        if self.noise_std > 0.0 {
            parts.push(format!("gaussian noise std {}", self.noise_std));
        }
        if self.crop_padding > 0 {
            parts.push(format!("random crop padding {}", self.crop_padding));
        }
        if self.cutout_p > 0.0 && self.cutout_size > 0 {
            parts.push(format!(
                "cutout {0}x{0} p={1}",
                self.cutout_size, self.cutout_p
            ));
        }
        if let Some((m, s)) = self.standardize {
            parts.push(format!("standardize mean {m} std {s}"));
        }
        if parts.is_empty() {
            return write!(f, "none");
        }
        write!(f, "{}", parts.join(", "))
    }
}

/// Floats of the spec ([`crate::kernels::augment::slot`] names each one).
pub use crate::kernels::augment::SPEC_LEN;

/// Zoom scales lie in [`ZOOM_MIN`, `ZOOM_MAX`] (torchvision's `scale`, Keras' RandomZoom
/// as 1 + factor): the warp's determinant zx·zy stays >= 1e-6, so its inverse is well
/// conditioned in f32 (a scale of 1e-25 made zx·zy underflow to 0 and every pixel NaN).
pub const ZOOM_MIN: f32 = 1e-3;
/// See [`ZOOM_MIN`].
pub const ZOOM_MAX: f32 = 1e3;
/// Pixel-valued parameters (the fill constant, brightness deltas, the noise std and the
/// standardization mean) lie within ±`PIXEL_MAX`, and the standardization std in
/// [1/`PIXEL_MAX`, `PIXEL_MAX`], so no stage of the pipeline leaves f32 on [0, 1] images.
pub const PIXEL_MAX: f32 = 1e6;
/// Pixel counts (the crop padding, the cutout's side) are at most `SIDE_MAX`: larger ones
/// would only fill every image, and the kernels' 32-bit integer arithmetic on them stays
/// exact below it.
pub const SIDE_MAX: usize = 1 << 16;

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
    /// Standardize every pixel as `(x − mean) / std` after the random stages (training and inference).
    pub fn standardize(mut self, mean: f32, std: f32) -> Self {
        self.standardize = Some((mean, std));
        self
    }

    /// Check every parameter (each [`Error::Hyperparameter`] names the field, the value
    /// and the range): probabilities in [0, 1]; ranges finite with min <= max;
    /// translations within ±1 of the size (Keras' RandomTranslation); rotations within
    /// ±360°; zoom scales in [[`ZOOM_MIN`], [`ZOOM_MAX`]]; |shear| < 89°; contrast factors
    /// >= 0; the fill, brightness, noise std and standardization within [`PIXEL_MAX`].
    pub fn validate(&self) -> Result<()> {
        let bad = |name, v: f32, expected| {
            Err(Error::Hyperparameter {
                name,
                value: v.to_string(),
                expected,
            })
        };
        for (name, v) in [
            ("augment.crop_padding", self.crop_padding),
            ("augment.cutout_size", self.cutout_size),
        ] {
            if v > SIDE_MAX {
                return Err(Error::Hyperparameter {
                    name,
                    value: v.to_string(),
                    expected: "at most 65536 pixels",
                });
            }
        }
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
            ("augment.shear_y", self.shear_y),
            ("augment.zoom_y", self.zoom_y.unwrap_or((1.0, 1.0))),
            ("augment.brightness", self.brightness),
            ("augment.contrast", self.contrast),
        ] {
            if !(lo <= hi && lo.is_finite() && hi.is_finite()) {
                return bad(name, hi, "a finite range with min <= max");
            }
        }
        let within = |name, (lo, hi): (f32, f32), a: f32, b: f32, expected| match [lo, hi]
            .into_iter()
            .find(|v| !(a..=b).contains(v))
        {
            Some(v) => bad(name, v, expected),
            None => Ok(()),
        };
        within(
            "augment.translate_x",
            self.translate_x,
            -1.0,
            1.0,
            "fractions of the width in [-1, 1]",
        )?;
        within(
            "augment.translate_y",
            self.translate_y,
            -1.0,
            1.0,
            "fractions of the height in [-1, 1]",
        )?;
        within(
            "augment.rotation",
            self.rotation,
            -360.0,
            360.0,
            "degrees in [-360, 360]",
        )?;
        within(
            "augment.zoom",
            self.zoom,
            ZOOM_MIN,
            ZOOM_MAX,
            "scales in [0.001, 1000]",
        )?;
        if let Some(z) = self.zoom_y {
            within(
                "augment.zoom_y",
                z,
                ZOOM_MIN,
                ZOOM_MAX,
                "scales in [0.001, 1000]",
            )?;
        }
        within(
            "augment.brightness",
            self.brightness,
            -PIXEL_MAX,
            PIXEL_MAX,
            "deltas within ±1e6",
        )?;
        if !(self.contrast.0 >= 0.0) {
            return bad("augment.contrast", self.contrast.0, "factors >= 0");
        }
        for (name, (lo, hi)) in [
            ("augment.shear", self.shear),
            ("augment.shear_y", self.shear_y),
        ] {
            if lo.abs() >= 89.0 || hi.abs() >= 89.0 {
                return bad(
                    name,
                    if lo.abs() >= 89.0 { lo } else { hi },
                    "|shear| < 89 degrees",
                );
            }
        }
        if !(0.0..=PIXEL_MAX).contains(&self.noise_std) {
            return bad("augment.noise_std", self.noise_std, "a std in [0, 1e6]");
        }
        if let Fill::Constant(v) = self.fill
            && !(-PIXEL_MAX..=PIXEL_MAX).contains(&v)
        {
            return bad("augment.fill", v, "a constant within ±1e6");
        }
        if let Some((m, s)) = self.standardize {
            if !(-PIXEL_MAX..=PIXEL_MAX).contains(&m) {
                return bad("augment.standardize.mean", m, "a mean within ±1e6");
            }
            if !(1.0 / PIXEL_MAX..=PIXEL_MAX).contains(&s) {
                return bad("augment.standardize.std", s, "a std in [1e-6, 1e6]");
            }
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
    pub fn spec(&self, h: usize, w: usize) -> [f32; SPEC_LEN] {
        let mut s = [0f32; SPEC_LEN];
        s[slot::HFLIP] = self.hflip;
        s[slot::VFLIP] = self.vflip;
        (s[slot::TRANSLATE_X], s[slot::TRANSLATE_X + 1]) =
            (self.translate_x.0 * w as f32, self.translate_x.1 * w as f32);
        (s[slot::TRANSLATE_Y], s[slot::TRANSLATE_Y + 1]) =
            (self.translate_y.0 * h as f32, self.translate_y.1 * h as f32);
        (s[slot::ROTATION], s[slot::ROTATION + 1]) = self.rotation;
        (s[slot::ZOOM], s[slot::ZOOM + 1]) = self.zoom;
        s[slot::ZOOM_PER_AXIS] = (self.zoom_per_axis || self.zoom_y.is_some()) as u8 as f32;
        (s[slot::ZOOM_Y], s[slot::ZOOM_Y + 1]) = self.zoom_y.unwrap_or(self.zoom);
        (s[slot::SHEAR_Y], s[slot::SHEAR_Y + 1]) = self.shear_y;
        // Cutout centre: drawn (a fixed one is a Transform's).
        (s[slot::CUTOUT_X], s[slot::CUTOUT_Y]) = (-1.0, -1.0);
        (s[slot::SHEAR], s[slot::SHEAR + 1]) = self.shear;
        s[slot::INTERP] = match self.interp {
            Interp::Nearest => 0.0,
            Interp::Bilinear => 1.0,
        };
        (s[slot::FILL_MODE], s[slot::FILL_VALUE]) = match self.fill {
            Fill::Constant(v) => (0.0, v),
            Fill::Nearest => (1.0, 0.0),
            Fill::Reflect => (2.0, 0.0),
        };
        (s[slot::BRIGHTNESS], s[slot::BRIGHTNESS + 1]) = self.brightness;
        (s[slot::CONTRAST], s[slot::CONTRAST + 1]) = self.contrast;
        s[slot::NOISE_STD] = self.noise_std;
        s[slot::CROP_PADDING] = self.crop_padding as f32;
        s[slot::CUTOUT_SIZE] = self.cutout_size as f32;
        s[slot::CUTOUT_P] = self.cutout_p;
        if let Some((m, sd)) = self.standardize {
            s[slot::MEAN] = m;
            s[slot::STD] = sd;
        }
        s
    }

    /// Add this augmentation to a graph under construction, on the NCHW input batch
    /// `x [batch, c·h·w]` (`chw` = (c, h, w)): random per-sample transforms in training,
    /// only the standardization at inference.
    ///
    /// # Errors
    /// [`Error::Hyperparameter`] for a setting out of range ([`Augment::validate`]);
    /// [`Error::Shape`] when `x` is not `[batch, c·h·w]`.
    pub fn add_to(
        &self,
        builder: &mut crate::graph::GraphBuilder,
        x: crate::graph::TensorId,
        chw: (usize, usize, usize),
    ) -> Result<crate::graph::TensorId> {
        self.validate()?;
        let (c, h, w) = chw;
        if crate::limits::product(&[c, h, w]).is_none_or(|n| n > crate::limits::MAX_ELEMENTS) {
            return Err(Error::too_large(
                "augment image",
                format!("[C, H, W] = [{c}, {h}, {w}]"),
                None,
                "an image of at most 2^32 − 1 values",
            ));
        }
        builder.augment(x, self.spec(h, w), self.is_random(), chw)
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
        self.apply(&mut Cpu::new(), images, n, chw, seed, stream, step)
    }

    /// [`Augment::apply_cpu`] on any backend (the CPU reference, the fast CPU backend, a
    /// GPU): the same draws, so the same images up to float rounding.
    #[allow(clippy::too_many_arguments)]
    pub fn apply(
        &self,
        backend: &mut dyn Backend,
        images: &[f32],
        n: usize,
        chw: (usize, usize, usize),
        seed: u64,
        stream: u32,
        step: u32,
    ) -> Result<Vec<f32>> {
        self.validate()?;
        run_pipeline(
            backend,
            self.spec(chw.1, chw.2),
            images,
            n,
            chw,
            seed,
            stream,
            step,
        )
    }
}

/// The geometric then the photometric kernel (training mode) on one batch.
#[allow(clippy::too_many_arguments)]
fn run_pipeline(
    backend: &mut dyn Backend,
    spec: [f32; SPEC_LEN],
    images: &[f32],
    n: usize,
    chw: (usize, usize, usize),
    seed: u64,
    stream: u32,
    step: u32,
) -> Result<Vec<f32>> {
    let (c, h, w) = chw;
    if images.len() != n * c * h * w {
        return Err(Error::Shape {
            context: "augment images".into(),
            got: vec![images.len()],
            expected: format!("{n}·{c}·{h}·{w} values"),
        });
    }
    let p = AugmentParams {
        batch: n,
        channels: c,
        height: h,
        width: w,
        stream,
        train: true,
    }
    .to_words();
    let g = Globals {
        seed_lo: seed as u32,
        seed_hi: (seed >> 32) as u32,
        step,
        ..Globals::default()
    };
    let out = [vec![0.0; images.len()]];
    let warped = run_kernel(
        backend,
        Kernel::AugmentGeom,
        p,
        &[images.to_vec(), spec.to_vec()],
        &out,
        &g,
    )?
    .remove(0);
    Ok(run_kernel(
        backend,
        Kernel::AugmentPhoto,
        p,
        &[warped, spec.to_vec()],
        &out,
        &g,
    )?
    .remove(0))
}

/// One augmentation with explicit, fixed parameters — no draws — applied by the same
/// kernels as training ([`Transform::apply`]), on any backend: for previews of exactly one
/// transform and for tests. Geometry: flips, then d = A·(s − c) + c + t with
/// A = R(rotation)·Shy(shear.1)·Shx(shear.0)·diag(zoom.0, zoom.1) (see [`Augment::shear`]),
/// c the image centre ((w − 1)/2, (h − 1)/2) and t = `translate` in pixels; then
/// x := clamp((x + brightness − mean)·contrast + mean, 0, 1) with mean the image's mean
/// (skipped at brightness 0, contrast 1), cutout, and standardization.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Transform {
    pub hflip: bool,
    pub vflip: bool,
    /// Translation (x right, y down) in pixels, within ±the width (height).
    pub translate: (f32, f32),
    /// Degrees, positive counter-clockwise on screen; any finite angle, reduced modulo
    /// 360° to (−180, 180] on the host in f64 so every backend takes sin and cos of the
    /// same small angle.
    pub rotation: f32,
    /// Scales (x, y); > 1 enlarges; each in [[`ZOOM_MIN`], [`ZOOM_MAX`]].
    pub zoom: (f32, f32),
    /// Shear angles (x, y) in degrees, each |shear| < 89.
    pub shear: (f32, f32),
    pub interp: Interp,
    pub fill: Fill,
    /// Additive brightness delta.
    pub brightness: f32,
    /// Contrast factor around the image's mean.
    pub contrast: f32,
    /// A `size`×`size` square set to 0, its centre pixel (x, y); it covers columns
    /// x − ⌊size/2⌋ .. x − ⌊size/2⌋ + size − 1 (rows likewise), clipped to the image.
    pub cutout: Option<(usize, usize, usize)>,
    /// (mean, std): x := (x − mean) / std last.
    pub standardize: Option<(f32, f32)>,
}

impl Default for Transform {
    /// The identity (bilinear, constant fill 0).
    fn default() -> Self {
        Transform {
            hflip: false,
            vflip: false,
            translate: (0.0, 0.0),
            rotation: 0.0,
            zoom: (1.0, 1.0),
            shear: (0.0, 0.0),
            interp: Interp::Bilinear,
            fill: Fill::Constant(0.0),
            brightness: 0.0,
            contrast: 1.0,
            cutout: None,
            standardize: None,
        }
    }
}

impl Transform {
    /// The spec floats (shaders/augment.wgsl) for `h`×`w` images: every range collapsed to
    /// its value, flips with probability 0 or 1, the cutout's centre fixed. Errors: a
    /// parameter out of range ([`Error::Hyperparameter`], as [`Augment::validate`]).
    pub fn spec(&self, h: usize, w: usize) -> Result<[f32; SPEC_LEN]> {
        let one = |v: f32| (v, v);
        if !self.rotation.is_finite() {
            return Err(Error::Hyperparameter {
                name: "transform.rotation",
                value: self.rotation.to_string(),
                expected: "a finite angle in degrees",
            });
        }
        // Reduced in f64 (exact: fmod of a float is exact) to (−180, 180].
        let mut deg = (self.rotation as f64).rem_euclid(360.0);
        if deg > 180.0 {
            deg -= 360.0;
        }
        let a = Augment {
            hflip: self.hflip as u8 as f32,
            vflip: self.vflip as u8 as f32,
            rotation: one(deg as f32),
            zoom: one(self.zoom.0),
            zoom_y: Some(one(self.zoom.1)),
            shear: one(self.shear.0),
            shear_y: one(self.shear.1),
            interp: self.interp,
            fill: self.fill,
            brightness: one(self.brightness),
            contrast: one(self.contrast),
            cutout_size: self.cutout.map_or(0, |c| c.2),
            cutout_p: self.cutout.map_or(0.0, |_| 1.0),
            standardize: self.standardize,
            ..Augment::default()
        };
        a.validate()?;
        for (name, v, size) in [
            ("transform.translate.x", self.translate.0, w),
            ("transform.translate.y", self.translate.1, h),
        ] {
            if !(v.is_finite() && v.abs() <= size as f32) {
                return Err(Error::Hyperparameter {
                    name,
                    value: format!("{v} (image {w}x{h})"),
                    expected: "a finite number of pixels within ±the image's size",
                });
            }
        }
        let mut s = a.spec(h, w);
        // Pixels exactly (a fraction of the size would round).
        (s[slot::TRANSLATE_X], s[slot::TRANSLATE_X + 1]) = one(self.translate.0);
        (s[slot::TRANSLATE_Y], s[slot::TRANSLATE_Y + 1]) = one(self.translate.1);
        if let Some((cx, cy, _)) = self.cutout {
            (s[slot::CUTOUT_X], s[slot::CUTOUT_Y]) = (cx as f32, cy as f32);
        }
        Ok(s)
    }

    /// Apply to `n` images of `chw` = (c, h, w), [n, c·h·w] row-major, on `backend`;
    /// every image gets the same transform. Errors: a bad parameter or shape, or the
    /// backend's.
    pub fn apply(
        &self,
        backend: &mut dyn Backend,
        images: &[f32],
        n: usize,
        chw: (usize, usize, usize),
    ) -> Result<Vec<f32>> {
        let spec = self.spec(chw.1, chw.2)?;
        run_pipeline(backend, spec, images, n, chw, 0, 0, 0)
    }
}

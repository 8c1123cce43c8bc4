//! The augmentation ABI (`shaders/augment.wgsl`; CPU twins in `backend/cpu/augment.rs`):
//! the parameter words and the layout of the spec, a 32-float operand that the user-facing
//! augmentation settings (`nn::augment::Augment`) are encoded into.

params! {
    /// [`super::Kernel::AugmentGeom`] and [`super::Kernel::AugmentPhoto`] over a batch
    /// of NCHW images; draws keyed by (seed, `stream`, step) with counter
    /// `sample·32 + slot`.
    ///
    /// # Shapes
    /// `ins = [x [B, C, H, W], spec [SPEC_LEN]]`, `outs = [y [B, C, H, W]]`.
    pub struct AugmentParams {
        batch: usize = 0,
        channels: usize = 1,
        height: usize = 2,
        width: usize = 3,
        stream: u32 = 4,
        /// Training: the random stages run (inference only standardizes).
        train: bool = 5,
    }
}

/// Floats of the spec.
pub const SPEC_LEN: usize = 32;

/// Index of each value in the spec. A range `[min, max]` takes two floats, min first, and
/// is drawn uniformly per sample (min = max fixes a value).
pub mod slot {
    /// Probability of a horizontal flip.
    pub const HFLIP: usize = 0;
    /// Probability of a vertical flip.
    pub const VFLIP: usize = 1;
    /// Translation range along x, pixels (2 floats).
    pub const TRANSLATE_X: usize = 2;
    /// Translation range along y, pixels (2 floats).
    pub const TRANSLATE_Y: usize = 4;
    /// Rotation range, degrees (2 floats).
    pub const ROTATION: usize = 6;
    /// Zoom range, x (or both axes) (2 floats).
    pub const ZOOM: usize = 8;
    /// 1: zoom y is drawn on its own from [`ZOOM_Y`]; 0: zoom y = zoom x.
    pub const ZOOM_PER_AXIS: usize = 10;
    /// Shear along x range, degrees (2 floats).
    pub const SHEAR: usize = 11;
    /// Interpolation: 0 nearest, 1 bilinear.
    pub const INTERP: usize = 13;
    /// Fill mode: 0 constant, 1 nearest, 2 reflect.
    pub const FILL_MODE: usize = 14;
    /// Fill value of the constant mode.
    pub const FILL_VALUE: usize = 15;
    /// Brightness delta range (2 floats).
    pub const BRIGHTNESS: usize = 16;
    /// Contrast factor range (2 floats).
    pub const CONTRAST: usize = 18;
    /// Gaussian noise standard deviation.
    pub const NOISE_STD: usize = 20;
    /// Random-crop padding, pixels.
    pub const CROP_PADDING: usize = 21;
    /// Cutout square side, pixels.
    pub const CUTOUT_SIZE: usize = 22;
    /// Cutout probability.
    pub const CUTOUT_P: usize = 23;
    /// Standardization mean.
    pub const MEAN: usize = 24;
    /// Standardization standard deviation (0: no standardization).
    pub const STD: usize = 25;
    /// Shear along y range, degrees (2 floats).
    pub const SHEAR_Y: usize = 26;
    /// Zoom y range, when [`ZOOM_PER_AXIS`] is 1 (2 floats).
    pub const ZOOM_Y: usize = 28;
    /// Cutout centre x, pixels (< 0: drawn).
    pub const CUTOUT_X: usize = 30;
    /// Cutout centre y, pixels (< 0: drawn).
    pub const CUTOUT_Y: usize = 31;
}

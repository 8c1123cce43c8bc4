//! The matmul's variants: the portable and subgroup kernels (shaped for llvmpipe), the
//! workgroup-memory tiled kernel in several tile shapes (shaped for hardware GPUs), the
//! subgroup kernel's shape over the output, B read four values per load, and A and B read
//! from textures.

use super::{AdapterReport, Gpu};
use crate::backend::Kernel;
use crate::kernels::KernelParams;
use crate::kernels::matmul::MatMulParams;

/// Rows per invocation of the subgroup matmul.
pub const SG_TM: u32 = 32;

/// Width in texels of the textures that hold matmul operands (TEXW, shaders/texture.wgsl).
pub const TEX_WIDTH: u32 = 4096;

/// A tile shape of the workgroup-memory matmul (shaders/matmul_tiled.wgsl): each workgroup
/// computes a `bm` × `bn` tile of C through `bk`-deep slices of A and B staged in
/// workgroup memory, each of its (`bn`/`tn`)·(`bm`/`tm`) invocations a `tm` × `tn` block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Tile {
    /// Output rows per workgroup.
    pub bm: u32,
    /// Output columns per workgroup.
    pub bn: u32,
    /// k per staged slice.
    pub bk: u32,
    /// Rows per invocation.
    pub tm: u32,
    /// Columns per invocation.
    pub tn: u32,
}

impl Tile {
    /// Invocations per workgroup.
    pub fn invocations(&self) -> u32 {
        (self.bm / self.tm) * (self.bn / self.tn)
    }

    /// Bytes of workgroup memory (the staged slices of A and B, f32, each row padded by
    /// one word).
    pub fn workgroup_bytes(&self) -> u32 {
        4 * self.bk * (self.bm + self.bn + 2)
    }
}

/// The tile shapes the tiled matmul is built in: small tiles for short or narrow outputs
/// (more workgroups in flight), large ones with larger register blocks (more arithmetic per
/// staged word) for big products. All use at most 256 invocations (a multiple of every
/// subgroup size from 8 to 64) and about 8 KiB of workgroup memory.
pub const TILES: [Tile; 4] = [
    Tile {
        bm: 32,
        bn: 32,
        bk: 16,
        tm: 4,
        tn: 4,
    },
    Tile {
        bm: 64,
        bn: 64,
        bk: 16,
        tm: 4,
        tn: 4,
    },
    Tile {
        bm: 128,
        bn: 64,
        bk: 8,
        tm: 8,
        tn: 4,
    },
    Tile {
        bm: 128,
        bn: 128,
        bk: 8,
        tm: 8,
        tn: 8,
    },
];

/// Which matmul kernel computes a product. Every variant sums each element's products in
/// the same order with the same operations (see shaders/matmul_tiled.wgsl), so the choice
/// changes the speed, never a bit of the result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MatmulVariant {
    /// shaders/matmul.wgsl: 4×4 register blocks, no subgroups, no workgroup memory.
    Portable,
    /// shaders/matmul_subgroup.wgsl: A broadcast across a subgroup (adapters with
    /// fixed-size subgroups).
    Subgroup,
    /// shaders/matmul_tiled.wgsl in one of the [`TILES`].
    Tiled(Tile),
}

impl std::fmt::Display for MatmulVariant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MatmulVariant::Portable => write!(f, "portable"),
            MatmulVariant::Subgroup => write!(f, "subgroup"),
            MatmulVariant::Tiled(t) => write!(f, "tiled-{}x{}-{}x{}", t.bm, t.bn, t.tm, t.tn),
        }
    }
}

impl std::str::FromStr for MatmulVariant {
    type Err = crate::error::Error;

    /// `portable`, `subgroup`, or `tiled-BMxBN-TMxTN` for one of the [`TILES`] (e.g.
    /// `tiled-64x64-4x4`).
    ///
    /// # Errors
    /// [`crate::Error::Hyperparameter`] naming the value and the variants there are.
    fn from_str(s: &str) -> crate::error::Result<Self> {
        MatmulVariant::all()
            .into_iter()
            .find(|v| v.to_string() == s)
            .ok_or_else(|| crate::error::Error::Hyperparameter {
                name: "matmul variant",
                value: crate::error::shown(s),
                expected: VARIANT_NAMES,
            })
    }
}

/// The names [`MatmulVariant`] parses (a test checks this list against
/// [`MatmulVariant::all`]).
pub const VARIANT_NAMES: &str = "portable, subgroup, tiled-32x32-4x4, tiled-64x64-4x4, \
    tiled-128x64-8x4 or tiled-128x128-8x8";

impl MatmulVariant {
    /// Every variant: portable, subgroup, then the tiled ones.
    pub fn all() -> Vec<MatmulVariant> {
        let mut v = vec![MatmulVariant::Portable, MatmulVariant::Subgroup];
        v.extend(TILES.iter().map(|&t| MatmulVariant::Tiled(t)));
        v
    }
}

/// How the subgroup matmul covers an M × N output.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct MatmulShape {
    /// The tiled kernel in this tile shape instead of the subgroup or portable kernel (the
    /// other fields are then unused, except `b4`).
    pub tile: Option<Tile>,
    /// Lanes per row group (CWL): each covers 4 columns.
    pub lanes: u32,
    /// Invocations per workgroup (WG): WG / CWL row groups of SG_TM rows each.
    pub workgroup: u32,
    /// The grid tiles the output exactly and the subgroup size divides K (FULL).
    pub full: bool,
    /// B read four values per load (override B4, see [`vec4_b`]).
    pub b4: bool,
    /// A transposed B read four values of k per load (override TB4, see [`vec4_tb`]).
    pub tb4: bool,
    /// A and B come from textures: B's four-value loads, and A four values of k per lane
    /// and load (see [`texture_operands`]).
    pub tex: bool,
}

/// The subgroup matmul's shape for an `m` × `n` output: one 256-column row group of 64
/// lanes, unless narrow tiles are enabled; then `n` decides the lanes (never fewer than one
/// subgroup) and `m` the row groups, so that a short output (conv1's weight gradient is
/// 25 × 32) does not compute row blocks that are never stored.
pub fn matmul_shape(m: u32, n: u32, k: u32, report: &AdapterReport) -> MatmulShape {
    let sg = report.subgroup_size.unwrap_or(8);
    let (lanes, workgroup) = match report.subgroup_size {
        Some(sg) if report.narrow_matmul => {
            let lanes = n.div_ceil(4).next_power_of_two().clamp(sg.max(8), 64);
            let groups = (64 / lanes).min(m.div_ceil(SG_TM)).max(1);
            (lanes, lanes * groups)
        }
        _ => (64, 64),
    };
    let full = m.is_multiple_of(SG_TM * (workgroup / lanes))
        && n.is_multiple_of(4 * lanes)
        && k.is_multiple_of(sg);
    MatmulShape {
        tile: None,
        lanes,
        workgroup,
        full,
        b4: false,
        tb4: false,
        tex: false,
    }
}

/// Whether the subgroup matmul reads a transposed B four values of k per load (override
/// TB4): B transposed, the subgroup size a multiple of 4 and K a multiple of it (every k
/// step whole; split-K slices are multiples of the subgroup size).
pub fn vec4_tb(kernel: Kernel, k: u32, sg: u32) -> bool {
    matches!(kernel, Kernel::MatMul { tb: true, .. })
        && sg.is_multiple_of(4)
        && k.is_multiple_of(sg)
}

/// Whether the matmul reads four values of B per load (override B4): B not transposed and
/// N a multiple of 4, so every 4-column group starts on a 16-byte (f32) or 8-byte (packed
/// f16) boundary (operand offsets are aligned). The GPU backend binds B a second time as
/// in3, typed array<vec4<f32>> (f32) or array<vec2<u32>> (f16).
pub fn vec4_b(kernel: Kernel, n: u32) -> bool {
    matches!(kernel, Kernel::MatMul { tb: false, .. }) && n.is_multiple_of(4)
}

/// The texture format of a matmul operand, its texel size in bytes and how shaders read it:
/// four f32 (rgba32float), or four packed f16 (rg32uint, two words).
pub fn texture_format(kernel: Kernel) -> (wgpu::TextureFormat, u64, wgpu::TextureSampleType) {
    match kernel {
        Kernel::MatMul { half: true, .. } => (
            wgpu::TextureFormat::Rg32Uint,
            8,
            wgpu::TextureSampleType::Uint,
        ),
        _ => (
            wgpu::TextureFormat::Rgba32Float,
            16,
            wgpu::TextureSampleType::Float { filterable: false },
        ),
    }
}

/// Fewest output rows and columns for which the matmul reads its operands from textures:
/// copying B costs about as much as 16/M of the product's time on llvmpipe (and A 16/N),
/// so from 256 on the copies stay under about 6%.
pub const TEX_MIN_SIDE: u32 = 256;

/// The rows of the textures that hold A and B (ranges of `a_bytes` and `b_bytes`) for the
/// product `p` (the matmul's parameters) with `shape` on subgroups of `sg` lanes, if the
/// subgroup matmul reads both from textures: neither transposed, B's four-value loads on
/// ([`vec4_b`]), K and any split-K slice multiples of 4·sg (each lane then loads four
/// whole values of k of A per step), M and N at least [`TEX_MIN_SIDE`], the ranges whole
/// texels and the textures within the adapter's limit (`max_dim` texels a side).
///
/// Both or neither: on llvmpipe either operand alone measured no faster than buffers, and
/// so did the transposed forms and products with fewer rows or columns (the W-MLP and
/// W-CNN shapes of benches/gemm.rs), while both together made 512² and 1024² products
/// 1.25-1.3x faster.
pub fn texture_operands(
    kernel: Kernel,
    shape: &MatmulShape,
    p: &[u32; 16],
    sg: u32,
    (a_bytes, b_bytes): (u64, u64),
    max_dim: u32,
) -> Option<(u32, u32)> {
    let (_, texel, _) = texture_format(kernel);
    let rows = |bytes: u64| {
        let rows = bytes.div_ceil(texel).div_ceil(TEX_WIDTH as u64);
        let fits = TEX_WIDTH <= max_dim && rows >= 1 && rows <= max_dim as u64;
        (fits && bytes.is_multiple_of(texel)).then_some(rows as u32)
    };
    let ks = 4 * sg;
    let mm = MatMulParams::from_words(p);
    let useful = matches!(
        kernel,
        Kernel::MatMul {
            ta: false,
            tb: false,
            ..
        }
    ) && shape.b4
        && (mm.k as u32).is_multiple_of(ks)
        && (mm.split_k as u32).is_multiple_of(ks)
        && mm.m as u32 >= TEX_MIN_SIDE
        && mm.n as u32 >= TEX_MIN_SIDE;
    if !useful {
        return None;
    }
    Some((rows(a_bytes)?, rows(b_bytes)?))
}

impl Gpu {
    /// The subgroup matmul's shape for `kernel` with parameters `p` (the default shape for
    /// other kernels or without subgroups).
    pub(super) fn matmul_shape(&self, kernel: Kernel, p: &[u32; 16]) -> MatmulShape {
        match (kernel, self.ctx.report.subgroup_size) {
            (Kernel::MatMul { .. }, Some(sg)) => {
                let mm = MatMulParams::from_words(p);
                let (m, n, k) = (mm.m as u32, mm.n as u32, mm.k as u32);
                let mut s = matmul_shape(m, n, k, &self.ctx.report);
                s.b4 = vec4_b(kernel, n);
                s.tb4 = vec4_tb(kernel, k, sg);
                s
            }
            _ => MatmulShape::default(),
        }
    }
}

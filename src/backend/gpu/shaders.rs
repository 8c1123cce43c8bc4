//! Shader assembly (common prelude + family file, with the matmul specialized for the
//! adapter's subgroup size) and workgroup counts per kernel.

use super::AdapterReport;
use crate::backend::{Family, Instr, Kernel, KernelDef};
use crate::error::{Error, Result};

/// Rows per invocation of the subgroup matmul.
pub const SG_TM: u32 = 32;

/// Width in texels of the textures that hold matmul operands (TEXW, shaders/texture.wgsl).
pub const TEX_WIDTH: u32 = 4096;

/// A compiled module is keyed by family, plus the subgroup size for the matmul and whether
/// its operands come from textures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ModuleKey {
    pub family: Family,
    pub subgroup: Option<u32>,
    pub tex: bool,
}

impl ModuleKey {
    pub fn for_kernel(def: &KernelDef, report: &AdapterReport, shape: MatmulShape) -> Self {
        let subgroup = if matches!(def.family, Family::Matmul | Family::MatmulHalf) {
            report.subgroup_size
        } else {
            None
        };
        ModuleKey {
            family: def.family,
            subgroup,
            tex: subgroup.is_some() && shape.tex,
        }
    }
}

const COMMON: &str = include_str!("../../../shaders/common.wgsl");
const MATMUL_SUBGROUP: &str = include_str!("../../../shaders/matmul_subgroup.wgsl");
const LOAD_F32: &str = include_str!("../../../shaders/load_f32.wgsl");
const LOAD_F16: &str = include_str!("../../../shaders/load_f16.wgsl");
const TEXTURE: &str = include_str!("../../../shaders/texture.wgsl");

/// The binding of A's texture (A from a texture, shaders/texture.wgsl).
pub const ATEX_BINDING: u32 = 9;

/// Variant lines: a line ending in ` @X` for a marker X of `markers` is kept, without the
/// marker (and a `//` left bare), when `(X, true)`, and dropped when `(X, false)`.
fn pick_lines(src: &str, markers: &[(&str, bool)]) -> String {
    let mut out = String::new();
    'lines: for line in src.lines() {
        let mut line = line.trim_end();
        for &(m, keep) in markers {
            if let Some(rest) = line.strip_suffix(m).and_then(|r| r.strip_suffix(' ')) {
                if !keep {
                    continue 'lines;
                }
                line = rest.trim_end();
                line = line.strip_suffix("//").unwrap_or(line).trim_end();
            }
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// A matmul family's operand loaders, with the lines for A and B from textures or buffers,
/// and the texture helpers (and A's texture binding, of `texel_type`) where one is used.
fn loaders(src: &str, key: ModuleKey, texel_type: &str) -> String {
    let mut out = pick_lines(
        src,
        &[("@btex", key.tex), ("@bbuf", !key.tex), ("@atex", key.tex)],
    );
    if key.tex {
        out.push_str(&format!(
            "@group(0) @binding({ATEX_BINDING}) var atex: texture_2d<{texel_type}>;\n"
        ));
    }
    if key.tex {
        out.push_str(&TEXTURE.replace(
            "const TEXW: u32 = 4096u;",
            &format!("const TEXW: u32 = {TEX_WIDTH}u;"),
        ));
    }
    out
}

/// The WGSL text of a module. The matmul families get their operand loaders (f32, or
/// packed f16 with in0/in1 declared as words); the f16 cast writes words to out0.
pub fn module_source(key: ModuleKey) -> Result<String> {
    let body = match (key.family, key.subgroup) {
        (Family::Matmul | Family::MatmulHalf, Some(sg)) => unroll_subgroup_matmul(sg, key.tex)?,
        (f, _) => f.source().to_string(),
    };
    // The prelude declares every operand array<f32>; a module may give one another type.
    let retype = |s: &str, v: &str, ty: &str| {
        ["read", "read_write"]
            .iter()
            .fold(s.to_string(), |s, access| {
                s.replace(
                    &format!("var<storage, {access}> {v}: array<f32>"),
                    &format!("var<storage, {access}> {v}: {ty}"),
                )
            })
    };
    let words = |s: &str, v: &str| retype(s, v, "array<u32>");
    // A textured B: in3 is a texture instead of a storage array.
    let in3 = |s: &str, array: &str, texture: &str| {
        if key.tex {
            s.replace(
                "var<storage, read> in3: array<f32>",
                &format!("var in3: {texture}"),
            )
        } else {
            retype(s, "in3", array)
        }
    };
    Ok(match key.family {
        Family::Matmul => {
            let common = in3(COMMON, "array<vec4<f32>>", "texture_2d<f32>");
            let load = loaders(LOAD_F32, key, "f32");
            format!("{common}\n{load}\n{body}")
        }
        Family::MatmulHalf => {
            let common = words(&words(COMMON, "in0"), "in1");
            let common = in3(&common, "array<vec2<u32>>", "texture_2d<u32>");
            let load = loaders(LOAD_F16, key, "u32");
            format!("{common}\n{load}\n{body}")
        }
        Family::Half => format!("{}\n{body}", words(COMMON, "out0")),
        _ => format!("{COMMON}\n{body}"),
    })
}

/// Consecutive k written out together in the subgroup matmul's k step (see the comment
/// above its entry point in shaders/matmul_subgroup.wgsl).
pub const SG_JG: u32 = 4;

/// Expand matmul_subgroup.wgsl for subgroups of `sg` lanes, A from a texture or not:
/// lines marked `@rows` are repeated for II = 0..TM, `@tbq` lines for QQ = 0..KS/4 (KS = k
/// per step: sg, or 4·sg for A from a texture); then the k step is written out in groups of
/// SG_JG consecutive k: the BEGIN_J..END_J block for each k of the group (JJ), then the
/// `@fma` line for each row (II) and each k of the group.
pub fn unroll_subgroup_matmul(sg: u32, atex: bool) -> Result<String> {
    let ks = if atex { 4 * sg } else { sg };
    let src = MATMUL_SUBGROUP
        .replace(
            "const TM: u32 = 16u;",
            &format!("const TM: u32 = {SG_TM}u;"),
        )
        .replace("const SG: u32 = 8u;", &format!("const SG: u32 = {sg}u;"))
        .replace("const KS: u32 = 8u;", &format!("const KS: u32 = {ks}u;"));
    let src = pick_lines(&src, &[("@atex", atex), ("@abuf", !atex)]);
    let mut rows = String::new();
    for line in src.lines() {
        let (marker, count, token) = if line.trim_end().ends_with("// @rows") {
            ("// @rows", SG_TM, "II")
        } else if line.trim_end().ends_with("// @tbq") {
            // The transposed-B loads (TB4): one per 4 values of the k step.
            ("// @tbq", (ks / 4).max(1), "QQ")
        } else {
            rows.push_str(line);
            rows.push('\n');
            continue;
        };
        for i in 0..count {
            rows.push_str(&line.replace(token, &i.to_string()).replace(marker, ""));
            rows.push('\n');
        }
    }
    let src = rows;
    let template = |what: &str| {
        Error::Gpu(format!(
            "shaders/matmul_subgroup.wgsl: {what} (the host's unrolling expects it)"
        ))
    };
    let (head, rest) = (src.split_once("// BEGIN_J")).ok_or_else(|| template("no BEGIN_J"))?;
    let (block, tail) = (rest.split_once("// END_J")).ok_or_else(|| template("no END_J"))?;
    let fma = tail
        .trim_start_matches([' ', '\n'])
        .split_once('\n')
        .and_then(|(line, tail)| Some((line.strip_suffix("// @fma")?, tail)));
    let (fma, tail) = fma.ok_or_else(|| template("no @fma line right after END_J"))?;
    // JQ, JR: which of the TB4 loads (and of A's lanes, for A from a texture) holds
    // k0 + j, and which component; ABCAST: A[row, k0 + j] broadcast from its lane.
    let comp = |j: u32| ["x", "y", "z", "w"][(j % 4) as usize];
    let at = |s: &str, j: u32| {
        let abcast = if atex {
            format!("subgroupBroadcast(aII, {}u).{}", j / 4, comp(j))
        } else {
            format!("subgroupBroadcast(aII, {j}u)")
        };
        s.replace("ABCAST", &abcast)
            .replace("JQ", &(j / 4).to_string())
            .replace("JR", comp(j))
            .replace("JJ", &format!("{j}u"))
    };
    let mut out = String::from(head);
    let group = SG_JG.min(ks);
    for g in (0..ks).step_by(group as usize) {
        let js = g..(g + group).min(ks);
        for j in js.clone() {
            out.push_str(&at(block, j));
        }
        for i in 0..SG_TM {
            for j in js.clone() {
                out.push_str(&at(fma, j).replace("II", &i.to_string()));
                out.push('\n');
            }
        }
    }
    out.push('\n');
    out.push_str(tail);
    Ok(out)
}

/// How the subgroup matmul covers an M × N output.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct MatmulShape {
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
    let useful = matches!(
        kernel,
        Kernel::MatMul {
            ta: false,
            tb: false,
            ..
        }
    ) && shape.b4
        && p[2].is_multiple_of(ks)
        && p[3].is_multiple_of(ks)
        && p[0] >= TEX_MIN_SIDE
        && p[1] >= TEX_MIN_SIDE;
    if !useful {
        return None;
    }
    Some((rows(a_bytes)?, rows(b_bytes)?))
}

/// A bind group layout: inputs, outputs, and the sample type of the textures that replace
/// B's vector view (in3) and add A ([`ATEX_BINDING`]) when the matmul reads its operands
/// from textures.
pub type LayoutKey = (usize, usize, Option<wgpu::TextureSampleType>);

/// The layout of `kernel`'s pipeline with `shape`.
pub fn layout_key(kernel: Kernel, shape: &MatmulShape) -> LayoutKey {
    let (n_in, n_out) = arity(kernel);
    (n_in, n_out, shape.tex.then(|| texture_format(kernel).2))
}

/// The bindings a kernel's pipeline layout has (inputs, outputs): the matmul has a fourth
/// input, B again as vectors ([`vec4_b`]).
pub fn arity(kernel: Kernel) -> (usize, usize) {
    let def = kernel.def();
    match kernel {
        Kernel::MatMul { .. } => (4, def.n_out),
        _ => (def.n_in, def.n_out),
    }
}

/// What llvmpipe (lavapipe) allows: it stops an invocation's loops, silently, after 65535
/// iterations in all (see UNROLL in shaders/common.wgsl).
pub const LLVMPIPE_LOOP_LIMIT: u64 = 65_535;

/// An upper bound on the loop iterations one invocation of `instr` runs (loops of
/// constant trip count are unrolled by the compiler and do not count).
pub fn loop_trips(instr: &Instr, report: &AdapterReport) -> u64 {
    let p = instr.p.map(|v| v as u64);
    let unroll = 16;
    match instr.kernel {
        Kernel::MatMul { .. } => match report.subgroup_size {
            Some(sg) if p[3] > 0 => p[3].div_ceil(sg as u64),
            Some(sg) => p[2].div_ceil(sg as u64),
            None if p[3] > 0 => p[3].div_ceil(4),
            None => p[2].div_ceil(4),
        },
        Kernel::BiasGrad => p[0].div_ceil(unroll),
        Kernel::SliceSum { .. } => p[2],
        Kernel::BnFwdTrain => 3 * (p[0] * p[4].max(1)).div_ceil(unroll),
        Kernel::BnBwd => 2 * (p[0] * p[4].max(1)).div_ceil(unroll),
        Kernel::MetricsAccum => p[0].div_ceil(unroll),
        Kernel::AugmentPhoto => {
            let px = p[1] * p[2] * p[3];
            px.div_ceil(unroll) + px.div_ceil(64)
        }
        Kernel::AugmentGeom => (p[2] * p[3]).div_ceil(64),
        Kernel::GradPrep => p[0].div_ceil(unroll * p[1].max(1)),
        Kernel::TensorStats => p[0].div_ceil(unroll * 256) + 8,
        Kernel::ClipFinalize => p[0],
        Kernel::SoftmaxXent => 3 * p[1],
        _ => 0,
    }
}

fn div_up(a: u32, b: u32) -> u32 {
    a.div_ceil(b).max(1)
}

/// 1-D grid of 256-wide workgroups covering n (2-D when n exceeds 65535 groups).
fn grid1d(n: u32) -> [u32; 3] {
    let g = div_up(n, 256);
    let x = g.min(65535);
    [x, div_up(g, x), 1]
}

/// Workgroup counts of an instruction.
pub fn workgroups(instr: &Instr, report: &AdapterReport) -> [u32; 3] {
    let p = &instr.p;
    match instr.kernel {
        Kernel::MatMul { .. } => match report.subgroup_size {
            Some(_) => {
                let s = matmul_shape(p[0], p[1], p[2], report);
                [
                    div_up(p[1], 4 * s.lanes),
                    div_up(p[0], SG_TM * (s.workgroup / s.lanes)),
                    // Split-K slices (p3 = slice length).
                    if p[3] > 0 { div_up(p[2], p[3]) } else { 1 },
                ]
            }
            None => [
                div_up(p[1], 64),
                div_up(p[0], 16),
                if p[3] > 0 { div_up(p[2], p[3]) } else { 1 },
            ],
        },
        Kernel::BiasGrad => grid1d(p[1]),
        Kernel::CastHalf => grid1d(p[0].div_ceil(2)),
        Kernel::SliceSum { .. } => grid1d(p[0]),
        Kernel::BnFwdEval => grid1d(p[0] * p[1] * p[4].max(1)),
        Kernel::BnFwdTrain | Kernel::BnBwd => [div_up(p[1], 64), 1, 1],
        Kernel::SoftmaxXent => [div_up(p[0], 64), 1, 1],
        Kernel::GradPrep => [div_up(p[1], 64), 1, 1],
        Kernel::MetricsAccum | Kernel::ClipFinalize | Kernel::TensorStats => [1, 1, 1],
        // One workgroup per (sample, channel) plane.
        Kernel::AugmentGeom => {
            let planes = (p[0] * p[1]).max(1);
            let x = planes.min(65535);
            [x, div_up(planes, x), 1]
        }
        // One workgroup per image.
        Kernel::AugmentPhoto => [p[0].max(1), 1, 1],
        // One invocation per (patch row, channel, kernel row).
        Kernel::Im2Col => grid1d(p[0] * p[8] * p[9] * p[1] * p[4]),
        Kernel::Col2Im | Kernel::MaxPoolBwd | Kernel::AvgPoolBwd => {
            grid1d(p[0] * p[1] * p[2] * p[3])
        }
        Kernel::ToNchw { .. } | Kernel::ToNhwc => grid1d(p[0] * p[1] * p[2]),
        Kernel::MaxPoolFwd | Kernel::AvgPoolFwd => grid1d(p[0] * p[1] * p[8] * p[9]),
        Kernel::ActFwd(_)
        | Kernel::ActBwd(_)
        | Kernel::Add
        | Kernel::Dropout
        | Kernel::ReluDropout
        | Kernel::DropoutReluBwd
        | Kernel::SgdUpdate
        | Kernel::ClipTensor
        | Kernel::AdamUpdate => grid1d(p[0]),
    }
}

//! Shader assembly: the common prelude, a family's file and, for the matmul families, the
//! operand loaders and the subgroup matmul unrolled for the adapter's subgroup size.

use super::AdapterReport;
use super::dispatch::ATEX_BINDING;
use super::matmul::{MatmulShape, SG_TM, TEX_WIDTH, Tile};
use crate::backend::{Family, KernelDef};
use crate::error::{Error, Result};

/// A compiled module is keyed by family, plus for the matmul the subgroup size, whether its
/// operands come from textures, or the tiled kernel's tile shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ModuleKey {
    pub family: Family,
    pub subgroup: Option<u32>,
    pub tex: bool,
    pub tile: Option<Tile>,
}

impl ModuleKey {
    /// The module a kernel with this definition and matmul shape is compiled from.
    pub fn for_kernel(def: &KernelDef, report: &AdapterReport, shape: MatmulShape) -> Self {
        let matmul = matches!(def.family, Family::Matmul | Family::MatmulHalf);
        let tile = shape.tile.filter(|_| matmul);
        let subgroup = if matmul && tile.is_none() {
            report.subgroup_size
        } else {
            None
        };
        ModuleKey {
            family: def.family,
            subgroup,
            tex: subgroup.is_some() && shape.tex,
            tile,
        }
    }
}

const COMMON: &str = include_str!("../../../shaders/common.wgsl");
const MATMUL_SUBGROUP: &str = include_str!("../../../shaders/matmul_subgroup.wgsl");
const MATMUL_TILED: &str = include_str!("../../../shaders/matmul_tiled.wgsl");
const MATMUL_COMMON: &str = include_str!("../../../shaders/matmul_common.wgsl");
const LOAD_F32: &str = include_str!("../../../shaders/load_f32.wgsl");
const LOAD_F16: &str = include_str!("../../../shaders/load_f16.wgsl");
const TEXTURE: &str = include_str!("../../../shaders/texture.wgsl");

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
    let body = match (key.family, key.subgroup, key.tile) {
        (Family::Matmul | Family::MatmulHalf, _, Some(t)) => tiled_matmul(t)?,
        (Family::Matmul | Family::MatmulHalf, Some(sg), None) => {
            unroll_subgroup_matmul(sg, key.tex)?
        }
        (f, _, _) => f.source().to_string(),
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
            format!("{common}\n{load}\n{MATMUL_COMMON}\n{body}")
        }
        Family::MatmulHalf => {
            let common = words(&words(COMMON, "in0"), "in1");
            let common = in3(&common, "array<vec2<u32>>", "texture_2d<u32>");
            let load = loaders(LOAD_F16, key, "u32");
            format!("{common}\n{load}\n{MATMUL_COMMON}\n{body}")
        }
        Family::Half => format!("{}\n{body}", words(COMMON, "out0")),
        _ => format!("{COMMON}\n{body}"),
    })
}

/// shaders/matmul_tiled.wgsl with the tile shape `t`: its `const BM`, `BN`, `BK`, `TM` and
/// `TN` lines replaced.
///
/// # Errors
/// [`Error::Gpu`] if one of those lines is not in the file as the host expects it (the
/// grid would otherwise not match the kernel's tile).
pub fn tiled_matmul(t: Tile) -> Result<String> {
    let mut src = MATMUL_TILED.to_string();
    for (name, default, v) in [
        ("BM", 64, t.bm),
        ("BN", 64, t.bn),
        ("BK", 16, t.bk),
        ("TM", 4, t.tm),
        ("TN", 4, t.tn),
    ] {
        let line = format!("const {name}: u32 = {default}u;");
        if !src.contains(&line) {
            return Err(Error::Gpu(format!(
                "shaders/matmul_tiled.wgsl: no line `{line}` (the host sets the tile shape through it)"
            )));
        }
        src = src.replace(&line, &format!("const {name}: u32 = {v}u;"));
    }
    Ok(src)
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

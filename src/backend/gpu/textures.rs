//! Textures that hold matmul operands, and the copies that fill them before a dispatch.

use super::Gpu;
use super::matmul::{MatmulShape, TEX_WIDTH, texture_format, texture_operands};
use crate::backend::{Instr, Kernel};
use crate::error::Result;
use crate::kernels::KernelParams;
use crate::kernels::matmul::MatMulParams;

/// Copy `bytes` of operand buffer `buf` from byte `offset` into texture `tex`, row after
/// row of TEX_WIDTH texels.
pub(super) struct TextureCopy {
    buf: usize,
    offset: u64,
    bytes: u64,
    pub(super) tex: usize,
}

/// A texture that holds matmul operands: `rows` rows of TEX_WIDTH texels.
pub(super) struct OperandTexture {
    texture: wgpu::Texture,
    pub(super) view: wgpu::TextureView,
    format: wgpu::TextureFormat,
    texel: u64,
    rows: u32,
}

impl Gpu {
    /// The copies that bring a matmul's A and B into textures (whole texels, from
    /// texel-aligned offsets) just before its dispatch, if it reads them from textures
    /// (`shape.tex` is then set); none otherwise.
    pub(super) fn texture_copies(
        &mut self,
        instr: &Instr,
        shape: &mut MatmulShape,
    ) -> Result<Vec<TextureCopy>> {
        let (format, texel, _) = texture_format(instr.kernel);
        let mut copies = vec![];
        if let (Kernel::MatMul { .. }, [a, b, ..], None) =
            (instr.kernel, &instr.ins[..], shape.tile)
            && let bytes = ((a.len * 4) as u64, (b.len * 4) as u64)
            && let Some((a_rows, b_rows)) = self.texture_rows(instr.kernel, &instr.p, shape, bytes)
            && [a, b]
                .iter()
                .all(|s| ((s.off * 4) as u64).is_multiple_of(texel))
        {
            shape.tex = true;
            let a_tex = self.texture(format, texel, a_rows, None)?;
            let b_tex = self.texture(format, texel, b_rows, Some(a_tex))?;
            for (s, bytes, tex) in [(a, bytes.0, a_tex), (b, bytes.1, b_tex)] {
                copies.push(TextureCopy {
                    buf: s.buf,
                    offset: (s.off * 4) as u64,
                    bytes,
                    tex,
                });
            }
        }
        Ok(copies)
    }

    /// The rows of the textures for A and B (ranges of `bytes`) if the matmul `kernel` with
    /// parameters `p` and `shape` reads its operands from textures on this adapter.
    fn texture_rows(
        &self,
        kernel: Kernel,
        p: &[u32; 16],
        shape: &MatmulShape,
        bytes: (u64, u64),
    ) -> Option<(u32, u32)> {
        let sg = self.ctx.report.subgroup_size?;
        let max_dim = self.ctx.limits.max_texture_dimension_2d;
        (self.ctx.report.texture_operands)
            .then(|| texture_operands(kernel, shape, p, sg, bytes, max_dim))?
    }

    /// Whether the matmul `kernel` with parameter words `p` ([`MatMulParams`]), its
    /// operands whole buffers, reads them from textures (shaders/texture.wgsl).
    pub fn texture_operands_for(&self, kernel: Kernel, p: &[u32; 16]) -> bool {
        let half = matches!(kernel, Kernel::MatMul { half: true, .. });
        let bytes = |n: u64| 4 * if half { n.div_ceil(2) } else { n };
        let mm = MatMulParams::from_words(p);
        let (m, n, k) = (mm.m as u64, mm.n as u64, mm.k as u64);
        let shape = self.matmul_shape(kernel, p);
        (self.texture_rows(kernel, p, &shape, (bytes(m * k), bytes(k * n)))).is_some()
    }

    /// Bytes of the textures that hold matmul operands (none until a loaded program reads
    /// an operand from one).
    pub fn texture_bytes(&self) -> u64 {
        (self.textures.iter())
            .map(|t| t.rows as u64 * TEX_WIDTH as u64 * t.texel)
            .sum()
    }

    /// A texture of `rows` rows for an operand of `format`: the smallest one held that is
    /// large enough (other than `other`, the same dispatch's other operand), or a new one.
    fn texture(
        &mut self,
        format: wgpu::TextureFormat,
        texel: u64,
        rows: u32,
        other: Option<usize>,
    ) -> Result<usize> {
        let best = (self.textures.iter().enumerate())
            .filter(|&(i, t)| t.format == format && t.rows >= rows && Some(i) != other)
            .min_by_key(|(_, t)| t.rows)
            .map(|(i, _)| i);
        if let Some(i) = best {
            return Ok(i);
        }
        let texture = self.ctx.checked(|d| {
            d.create_texture(&wgpu::TextureDescriptor {
                label: Some("matmul operand"),
                size: wgpu::Extent3d {
                    width: TEX_WIDTH,
                    height: rows,
                    depth_or_array_layers: 1,
                },
                mip_level_count: 1,
                sample_count: 1,
                dimension: wgpu::TextureDimension::D2,
                format,
                usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
                view_formats: &[],
            })
        })?;
        let view = texture.create_view(&Default::default());
        self.textures.push(OperandTexture {
            texture,
            view,
            format,
            texel,
            rows,
        });
        Ok(self.textures.len() - 1)
    }

    /// Record `c`: whole rows of TEX_WIDTH texels, then the last, partial one.
    pub(super) fn record_copy(
        &self,
        enc: &mut wgpu::CommandEncoder,
        c: &TextureCopy,
    ) -> Result<()> {
        let t = &self.textures[c.tex];
        let (buffer, _) = self.operand_buffer(c.buf)?;
        let row_bytes = TEX_WIDTH as u64 * t.texel;
        let (full, rest) = (c.bytes / row_bytes, c.bytes % row_bytes);
        for (y, rows, width) in [
            (0, full, TEX_WIDTH as u64),
            (full, rest.min(1), rest / t.texel),
        ] {
            if rows == 0 || width == 0 {
                continue;
            }
            enc.copy_buffer_to_texture(
                wgpu::TexelCopyBufferInfo {
                    buffer,
                    layout: wgpu::TexelCopyBufferLayout {
                        offset: c.offset + y * row_bytes,
                        bytes_per_row: Some(row_bytes as u32),
                        rows_per_image: None,
                    },
                },
                wgpu::TexelCopyTextureInfo {
                    texture: &t.texture,
                    mip_level: 0,
                    origin: wgpu::Origin3d {
                        x: 0,
                        y: y as u32,
                        z: 0,
                    },
                    aspect: wgpu::TextureAspect::All,
                },
                wgpu::Extent3d {
                    width: width as u32,
                    height: rows as u32,
                    depth_or_array_layers: 1,
                },
            );
        }
        Ok(())
    }
}

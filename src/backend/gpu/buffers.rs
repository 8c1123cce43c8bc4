//! Storage buffers: the caller's, their second copies (double-buffered inputs), and the
//! backend's own scratch, addressed by operand index.

use super::Gpu;
use crate::backend::BufferSpec;
use crate::error::{Error, Result};

/// Operand indices from here on name the backend's scratch buffers.
pub(super) const SCRATCH_BASE: usize = 1 << 24;

impl Gpu {
    /// [`Backend::create_buffers`](crate::backend::Backend::create_buffers): drop every
    /// buffer, program and operand texture, then create `specs`.
    pub(super) fn reset_buffers(&mut self, specs: &[BufferSpec]) -> Result<()> {
        self.buffers.clear();
        self.specs.clear();
        self.scratch.clear();
        self.programs.clear();
        self.twins.clear();
        self.parity = 0;
        self.written.clear();
        // The programs that read them are gone.
        self.textures.clear();
        self.push_buffers(specs)
    }

    /// A second copy of each of `bufs`: a write after a run goes to the copy that no
    /// submitted step reads, so the next batch's upload never waits on (nor is ordered
    /// behind barriers of) the step still reading the previous one.
    pub(super) fn add_twins(&mut self, bufs: &[usize]) -> Result<()> {
        if !self.programs.is_empty() {
            return Err(Error::Graph(
                "double_buffer must come before the first program is loaded".into(),
            ));
        }
        for &b in bufs {
            let spec = (self.specs.get(b).cloned())
                .ok_or_else(|| Error::Graph(format!("double_buffer: no buffer {b}")))?;
            let twin = self.make_buffer(&spec)?;
            self.twins.insert(b, twin);
        }
        Ok(())
    }

    /// [`Backend::add_buffers`](crate::backend::Backend::add_buffers): buffers for `specs`
    /// after those held.
    pub(super) fn push_buffers(&mut self, specs: &[BufferSpec]) -> Result<()> {
        let bufs = specs
            .iter()
            .map(|s| self.make_buffer(s))
            .collect::<Result<Vec<_>>>()?;
        self.buffers.extend(bufs);
        self.specs.extend_from_slice(specs);
        Ok(())
    }

    /// [`Backend::write`](crate::backend::Backend::write): `data` into buffer `buf` from
    /// element `off`, in the copy the next run reads.
    pub(super) fn write_buffer(&mut self, buf: usize, off: usize, data: &[f32]) -> Result<()> {
        let spec = self
            .specs
            .get(buf)
            .ok_or_else(|| Error::Graph(format!("no buffer {buf}")))?;
        if off + data.len() > spec.len {
            return Err(Error::Shape {
                context: format!("write into buffer {}", spec.name),
                got: vec![off + data.len()],
                expected: format!("at most {} elements", spec.len),
            });
        }
        if self.twins.contains_key(&buf) {
            // The first write after a run goes to the other copy, which no submitted step
            // reads: the next run reads that copy.
            if self.written.is_empty() {
                self.parity ^= 1;
            }
            if !self.written.contains(&buf) {
                self.written.push(buf);
            }
        }
        if !data.is_empty() {
            let (buffer, _) = self.operand_buffer(buf)?;
            self.ctx
                .queue
                .write_buffer(buffer, (off * 4) as u64, bytemuck::cast_slice(data));
        }
        Ok(())
    }

    /// A storage buffer for `s`, refused (naming it) beyond the adapter's buffer size.
    pub(super) fn make_buffer(&self, s: &BufferSpec) -> Result<wgpu::Buffer> {
        let bytes = (s.len.max(1) * 4) as u64;
        let limit = self.ctx.limits.max_buffer_size;
        if bytes > limit {
            return Err(Error::BufferTooLarge {
                name: s.name.clone(),
                bytes,
                limit_name: "max_buffer_size",
                limit,
            });
        }
        self.ctx.checked(|d| {
            d.create_buffer(&wgpu::BufferDescriptor {
                label: Some(&s.name),
                // 16-byte multiples: a vec4 view of a range ending at the buffer's end
                // (the matmul's B) stays inside.
                size: bytes.next_multiple_of(16),
                usage: wgpu::BufferUsages::STORAGE
                    | wgpu::BufferUsages::COPY_DST
                    | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            })
        })
    }

    /// The buffer behind an operand index: the caller's buffers, or from SCRATCH_BASE on
    /// this backend's own scratch (kept apart, so that buffers the caller adds later keep
    /// the indices it expects).
    pub(super) fn operand_buffer(&self, buf: usize) -> Result<(&wgpu::Buffer, &BufferSpec)> {
        self.operand_buffer_at(buf, self.parity)
    }

    /// [`Gpu::operand_buffer`] in copy `parity` of a double-buffered input (the buffer
    /// itself for the others).
    pub(super) fn operand_buffer_at(
        &self,
        buf: usize,
        parity: usize,
    ) -> Result<(&wgpu::Buffer, &BufferSpec)> {
        if parity == 1
            && let (Some(twin), Some(spec)) = (self.twins.get(&buf), self.specs.get(buf))
        {
            return Ok((twin, spec));
        }
        let found = if buf >= SCRATCH_BASE {
            self.scratch.get(buf - SCRATCH_BASE).map(|(b, s)| (b, s))
        } else {
            self.buffers.get(buf).zip(self.specs.get(buf))
        };
        found.ok_or_else(|| Error::Graph(format!("no buffer {buf}")))
    }

    /// Bytes of every buffer (double-buffered inputs twice) and operand texture this
    /// backend holds.
    pub fn buffer_bytes(&self) -> u64 {
        let own = self.scratch.iter().map(|(b, _)| b.size());
        let twins = self.twins.values().map(|b| b.size());
        let bufs: u64 = (self.buffers.iter().map(|b| b.size()))
            .chain(own)
            .chain(twins)
            .sum();
        bufs + self.texture_bytes()
    }

    /// Before a run: copy every double-buffered input that was not written since the last
    /// run from the other copy into the one this run reads (the run then ends the write
    /// cycle).
    pub(super) fn sync_twins(&self, enc: &mut wgpu::CommandEncoder) {
        if !self.written.is_empty() {
            for (&b, twin) in &self.twins {
                if !self.written.contains(&b) {
                    let (from, to) = if self.parity == 1 {
                        (&self.buffers[b], twin)
                    } else {
                        (twin, &self.buffers[b])
                    };
                    enc.copy_buffer_to_buffer(from, 0, to, 0, to.size());
                }
            }
        }
    }
}

//! Reading buffers back: blocking reads through one staging buffer, and one asynchronous
//! read in flight through another.

use super::Gpu;
use crate::error::{Error, Result};

/// The mappable buffer in `slot`, replaced by a larger one when it holds fewer than `bytes`.
fn readback_buffer(
    device: &wgpu::Device,
    slot: &mut Option<wgpu::Buffer>,
    bytes: u64,
) -> wgpu::Buffer {
    match slot {
        Some(b) if b.size() >= bytes => b.clone(),
        _ => {
            let b = device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("readback"),
                size: bytes.max(256),
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            *slot = Some(b.clone());
            b
        }
    }
}

/// An asynchronous read in flight ([`Backend::read_start`](crate::backend::Backend::read_start)).
pub(super) struct PendingRead {
    bytes: u64,
    done: std::sync::mpsc::Receiver<std::result::Result<(), wgpu::BufferAsyncError>>,
}

impl Gpu {
    /// The staging buffer of blocking reads, large enough for `bytes`.
    fn staging(&mut self, bytes: u64) -> wgpu::Buffer {
        readback_buffer(&self.ctx.device, &mut self.staging, bytes)
    }

    /// Whether `len` elements from `off` of buffer `buf` can be read.
    fn check_read(&self, buf: usize, off: usize, len: usize) -> Result<()> {
        let (_, spec) = self.operand_buffer(buf)?;
        if off + len > spec.len {
            return Err(Error::Graph(format!(
                "read {off}..{} of {} ({} elements)",
                off + len,
                spec.name,
                spec.len
            )));
        }
        Ok(())
    }

    /// [`Backend::read`](crate::backend::Backend::read): copy the range into the staging
    /// buffer and wait for it.
    pub(super) fn read_blocking(&mut self, buf: usize, off: usize, len: usize) -> Result<Vec<f32>> {
        self.check_read(buf, off, len)?;
        if len == 0 {
            return Ok(vec![]);
        }
        let bytes = (len * 4) as u64;
        let staging = self.staging(bytes);
        let mut enc = self.ctx.device.create_command_encoder(&Default::default());
        let (buffer, _) = self.operand_buffer(buf)?;
        enc.copy_buffer_to_buffer(buffer, (off * 4) as u64, &staging, 0, bytes);
        self.ctx.queue.submit([enc.finish()]);
        let slice = staging.slice(..bytes);
        let (tx, rx) = std::sync::mpsc::channel();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        // A failure here is usually the symptom of an earlier asynchronous error (device
        // lost, out of memory): report that one, with the symptom.
        let cause = |what: String| match self.ctx.take_error() {
            Err(Error::Gpu(first)) => Error::Gpu(format!("{first} (then: {what})")),
            _ => Error::Gpu(what),
        };
        self.ctx.wait().map_err(|e| cause(e.to_string()))?;
        rx.recv()
            .map_err(|_| cause("readback callback never ran".into()))?
            .map_err(|e| cause(format!("mapping the readback buffer failed: {e}")))?;
        let out = {
            let view = slice
                .get_mapped_range()
                .map_err(|e| Error::Gpu(format!("readback view: {e}")))?;
            bytemuck::cast_slice::<u8, f32>(&view).to_vec()
        };
        staging.unmap();
        self.ctx.take_error()?;
        Ok(out)
    }

    /// [`Backend::read_start`](crate::backend::Backend::read_start): copy the range and map
    /// it without waiting.
    pub(super) fn start_read(&mut self, buf: usize, off: usize, len: usize) -> Result<()> {
        // Drop a read nobody finished (its buffer must be unmapped before reuse).
        if self.pending.is_some() {
            self.finish_read()?;
        }
        self.check_read(buf, off, len)?;
        let bytes = (len.max(1) * 4) as u64;
        let staging = readback_buffer(&self.ctx.device, &mut self.async_staging, bytes);
        let mut enc = self.ctx.device.create_command_encoder(&Default::default());
        if len > 0 {
            let (buffer, _) = self.operand_buffer(buf)?;
            enc.copy_buffer_to_buffer(buffer, (off * 4) as u64, &staging, 0, bytes);
        }
        self.ctx.queue.submit([enc.finish()]);
        let (tx, rx) = std::sync::mpsc::channel();
        staging
            .slice(..bytes)
            .map_async(wgpu::MapMode::Read, move |r| {
                let _ = tx.send(r);
            });
        self.pending = Some(PendingRead {
            bytes: if len == 0 { 0 } else { bytes },
            done: rx,
        });
        self.ctx.take_error()
    }

    /// [`Backend::read_finish`](crate::backend::Backend::read_finish): the values of the
    /// read in flight, waiting for them if needed (`None` when none is).
    pub(super) fn finish_read(&mut self) -> Result<Option<Vec<f32>>> {
        let Some(p) = self.pending.take() else {
            return Ok(None);
        };
        let staging = self
            .async_staging
            .clone()
            .ok_or_else(|| Error::Gpu("asynchronous read without its buffer".into()))?;
        // Map callbacks run inside poll: look without blocking first, then wait.
        let _ = self.ctx.device.poll(wgpu::PollType::Poll);
        let r = match p.done.try_recv() {
            Ok(r) => r,
            Err(_) => {
                self.ctx.wait()?;
                p.done
                    .recv()
                    .map_err(|_| Error::Gpu("readback callback never ran".into()))?
            }
        };
        r.map_err(|e| Error::Gpu(format!("mapping the readback buffer failed: {e}")))?;
        let out = if p.bytes == 0 {
            vec![]
        } else {
            let view = staging
                .slice(..p.bytes)
                .get_mapped_range()
                .map_err(|e| Error::Gpu(format!("readback view: {e}")))?;
            bytemuck::cast_slice::<u8, f32>(&view).to_vec()
        };
        staging.unmap();
        self.ctx.take_error()?;
        Ok(Some(out))
    }
}

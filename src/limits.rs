//! Checked sizes: element counts and byte totals computed without wrapping, and the limits
//! they are held to before anything is allocated — the parameter limit of the flat
//! parameter buffers, the 32-bit element indices of the kernels, and the host's memory.

/// A model has fewer trainable scalars than this (the limit of the flat parameter
/// buffers' layout, checked by `plan::Layout` with each tensor's alignment; a graph is held
/// to it while it is built).
pub const MAX_PARAMS: usize = 1 << 24;

/// Most elements of one tensor (kernel parameters carry element counts as u32).
pub const MAX_ELEMENTS: usize = u32::MAX as usize;

/// Bytes of `count` f32 values (None on overflow).
pub fn f32_bytes(count: usize) -> Option<u128> {
    (count as u128).checked_mul(4)
}

/// The product of `dims` (None on overflow).
pub fn product(dims: &[usize]) -> Option<usize> {
    dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d))
}

/// The host's memory in bytes (RAM + swap from `/proc/meminfo` on Linux; elsewhere, or when
/// unreadable, `isize::MAX`, the most one allocation can ask for). No single buffer or
/// dataset larger than this can ever be allocated.
pub fn host_memory_bytes() -> u128 {
    let kb = |text: &str, key: &str| -> Option<u128> {
        let line = text.lines().find(|l| l.starts_with(key))?;
        line.split_whitespace().nth(1)?.parse::<u128>().ok()
    };
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| Some((kb(&t, "MemTotal:")? + kb(&t, "SwapTotal:").unwrap_or(0)) * 1024))
        .unwrap_or(isize::MAX as u128)
}

/// The smallest and largest non-zero weight accepted (sample, class and positive
/// weights): the weighted sums of a batch and of an epoch stay inside f32 with room to
/// spare (a weight of 1e38 overflowed them, one of 1e-40 underflowed its gradient factor).
pub const WEIGHT_RANGE: (f32, f32) = (1e-30, 1e30);

/// The table row a token id stands for: `Some(v)` when `id` is an integer in `[0, vocab)`
/// (what an embedding can look up; −0 is 0), None otherwise (negative, fractional, NaN,
/// ±∞, `vocab` or more).
#[inline]
pub fn token_index(id: f32, vocab: usize) -> Option<usize> {
    (id >= 0.0 && id < vocab as f32 && id.fract() == 0.0).then_some(id as usize)
}

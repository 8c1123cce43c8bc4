//! Checked sizes: element counts and byte totals computed without wrapping, and the limits
//! they are held to before anything is allocated — the parameter limit of the flat
//! parameter buffers, the 32-bit element indices of the kernels, and the host's memory.

/// Most trainable scalars a model may have (the limit of the flat parameter buffers'
/// layout, checked by `plan::Layout`; a graph is held to it while it is built).
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

/// Refuse a maximum batch for which some tensor of `g` would have more elements than
/// usize or the kernels' u32 counts hold, or whose largest tensor alone (plus four copies of
/// the `params_len` parameters: values, gradients, momentum, decay) exceeds the host's
/// memory — before any buffer is allocated. The error names `max_batch`, its value and the
/// bytes.
pub(crate) fn check_max_batch(
    g: &crate::graph::Graph,
    max_batch: usize,
    params_len: usize,
) -> crate::Result<()> {
    let mut largest = 0usize;
    for t in &g.tensors {
        let n = t.shape.checked_numel(max_batch);
        match n {
            Some(n) if n <= MAX_ELEMENTS => largest = largest.max(n),
            _ => {
                return Err(crate::Error::too_large(
                    "max_batch",
                    max_batch,
                    n.and_then(f32_bytes).or_else(|| {
                        (t.shape.checked_numel(1)? as u128)
                            .checked_mul(max_batch as u128)?
                            .checked_mul(4)
                    }),
                    format!(
                        "at most {MAX_ELEMENTS} elements per tensor; a tensor of this model has {} values per sample",
                        t.shape
                            .checked_numel(1)
                            .map_or("too many".into(), |n| n.to_string())
                    ),
                ));
            }
        }
    }
    let need = (largest as u128 + 4 * params_len as u128) * 4;
    let mem = host_memory_bytes();
    if need > mem {
        return Err(crate::Error::too_large(
            "max_batch",
            max_batch,
            Some(need),
            format!("at most the host's memory, {mem} bytes"),
        ));
    }
    Ok(())
}

//! CPU twins of `shaders/half.wgsl` (f32 → packed f16 storage; reference and fast) and
//! the unpacking that the half matmul does on load (`shaders/load_f16.wgsl`).
//!
//! A packed buffer holds two f16 values per 32-bit word, stored in the backends' f32
//! buffers as raw bits: element `i` is the low half of word `i / 2` when `i` is even, the
//! high half when odd.

use rayon::prelude::*;

use super::par::CHUNK;
use crate::backend::Globals;
use crate::kernels::KernelParams;
use crate::kernels::elementwise::Len;

/// The f16 bits of `x`: round to nearest, ties to even; subnormals kept; |x| ≥ 65520 →
/// ±inf; NaN → 0x7E00 with the sign. The same integer steps as `f16_bits` in half.wgsl
/// (and, for every non-NaN input, the same bits as `half::f16::from_f32`).
pub fn f16_bits(x: f32) -> u16 {
    let b = x.to_bits();
    let s = (b >> 16) & 0x8000;
    let a = b & 0x7FFF_FFFF;
    let round =
        |q: u32, rem: u32, half: u32| q + u32::from(rem > half || (rem == half && q & 1 == 1));
    let h = if a >= 0x7F80_0000 {
        if a > 0x7F80_0000 { 0x7E00 } else { 0x7C00 }
    } else if a >= 0x477F_F000 {
        0x7C00
    } else if a >= 0x3880_0000 {
        let r = a - 0x3800_0000;
        round(r >> 13, r & 0x1FFF, 0x1000)
    } else if a < 0x3300_0000 {
        0
    } else {
        let e = a >> 23;
        let m = (a & 0x7F_FFFF) | 0x80_0000;
        let sh = 126 - e;
        round(m >> sh, m & ((1 << sh) - 1), 1 << (sh - 1))
    };
    (s | h) as u16
}

/// Element `i` of a packed buffer, as f32 (exact).
pub fn unpack(words: &[f32], i: usize) -> f32 {
    let w = words[i / 2].to_bits();
    let h = if i.is_multiple_of(2) {
        w & 0xFFFF
    } else {
        w >> 16
    };
    half::f16::from_bits(h as u16).to_f32()
}

/// The first `n` elements of a packed buffer into `out` (f32).
pub fn unpack_into(words: &[f32], n: usize, out: &mut [f32]) {
    for (i, o) in out[..n].iter_mut().enumerate() {
        *o = unpack(words, i);
    }
}

/// Pack `x` into words (a lone last element is paired with 0).
pub fn pack_into(x: &[f32], out: &mut [f32]) {
    for (i, w) in out[..x.len().div_ceil(2)].iter_mut().enumerate() {
        let lo = f16_bits(x[2 * i]) as u32;
        let hi = x.get(2 * i + 1).map_or(0, |&v| f16_bits(v) as u32);
        *w = f32::from_bits(lo | hi << 16);
    }
}

/// [`Kernel::CastHalf`](crate::kernels::Kernel::CastHalf), [`Len`]: `ins = [x [n]]`,
/// `outs = [packed [⌈n/2⌉]]` (words).
pub fn cast_half(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let Len { n } = Len::from_words(p);
    pack_into(&ins[0][..n], outs[0]);
}

/// The fast twin of [`cast_half`]: parallel chunks with the `half` crate's slice
/// conversion (F16C's round-to-nearest-even where the CPU has it): the same bits as the
/// reference for every value but NaN (any NaN stays a NaN; only its payload may differ).
pub fn cast_half_fast(p: &[u32; 16], g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    use half::slice::{HalfBitsSliceExt, HalfFloatSliceExt};
    let Len { n } = Len::from_words(p);
    if cfg!(target_endian = "big") {
        return cast_half(p, g, ins, outs);
    }
    let words = &mut outs[0][..n.div_ceil(2)];
    let bits: &mut [u16] = bytemuck::cast_slice_mut(words);
    if n % 2 == 1 {
        bits[n] = 0;
    }
    bits[..n]
        .par_chunks_mut(CHUNK)
        .zip(ins[0][..n].par_chunks(CHUNK))
        .for_each(|(o, x)| {
            o.reinterpret_cast_mut::<half::f16>()
                .convert_from_f32_slice(x)
        });
}

/// [`unpack_into`] resizing `out` to `n`, converted in parallel chunks (F16C instructions
/// through the `half` crate where the CPU has them): the half matmul's fast unpacking.
pub fn unpack_par(words: &[f32], n: usize, out: &mut Vec<f32>) {
    use half::slice::{HalfBitsSliceExt, HalfFloatSliceExt};
    out.resize(n, 0.0);
    let bits: &[u16] = bytemuck::cast_slice(&words[..n.div_ceil(2)]);
    if cfg!(target_endian = "big") {
        return unpack_into(words, n, out);
    }
    let halves = bits[..n].reinterpret_cast::<half::f16>();
    out.par_chunks_mut(CHUNK)
        .zip(halves.par_chunks(CHUNK))
        .for_each(|(o, h)| h.convert_to_f32_slice(o));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_bits_matches_the_half_crate() {
        let mut xs = vec![
            0.0,
            -0.0,
            1.0,
            -1.0,
            65504.0,
            65519.99,
            65520.0,
            -65520.0,
            1e-8,
            2.98e-8,
            2.9802322e-8,
            5.96e-8,
            6.0e-5,
            6.1035156e-5,
            6.1e-5,
            1.0e9,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::MIN_POSITIVE,
            1.0 + 1.0 / 2048.0,
            1.0 + 3.0 / 2048.0,
        ];
        let rng = crate::rng::Rng::new(3);
        for i in 0..200_000u32 {
            // Magnitudes from 2^-30 to 2^17, both signs, and raw bit patterns.
            let u = rng.uniform(0, 0, i);
            let e = rng.uniform(1, 0, i) * 47.0 - 30.0;
            xs.push((u - 0.5).signum() * 2f32.powf(e) * (1.0 + u));
            xs.push(f32::from_bits(
                rng.uniform(2, 0, i).to_bits().wrapping_mul(2_654_435_761),
            ));
        }
        for &x in &xs {
            if x.is_nan() {
                assert_eq!(f16_bits(x) & 0x7FFF, 0x7E00, "{x}");
                continue;
            }
            assert_eq!(
                f16_bits(x),
                half::f16::from_f32(x).to_bits(),
                "{x:e} ({:#010x})",
                x.to_bits()
            );
        }
    }

    #[test]
    fn pack_then_unpack_round_trips_f16_values() {
        let x = [0.5f32, -2.0, 3.0, 1e-7, 65504.0];
        let mut w = [0.0f32; 3];
        pack_into(&x, &mut w);
        let got: Vec<f32> = (0..5).map(|i| unpack(&w, i)).collect();
        let want: Vec<f32> = x.iter().map(|&v| half::f16::from_f32(v).to_f32()).collect();
        assert_eq!(got, want);
        assert_eq!(
            w[2].to_bits() >> 16,
            0,
            "the lone last element is paired with 0"
        );
    }
}

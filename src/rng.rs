//! The one random number generator shared by the CPU and the GPU: Threefry-2x32 with 20
//! rounds (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11).
//!
//! It is counter-based: a draw is a pure function of `(seed, stream, step, index)`, so any
//! element of any mask can be computed independently, in any order, on any device. The same
//! function is written in `shaders/common.wgsl`; `tests/rng.rs` checks the published test
//! vectors and the GPU against this file bit for bit.
//!
//! Key = (seed_lo, seed_hi ^ stream·0x9E3779B9), counter = (index, step).

/// Rotation constants of Threefry-2x32.
const ROT: [u32; 8] = [13, 15, 26, 6, 17, 29, 16, 24];

/// The raw Threefry-2x32-20 block function.
#[inline]
pub fn threefry2x32(key: [u32; 2], ctr: [u32; 2]) -> [u32; 2] {
    let (a, b) = threefry2x32_lanes::<1>(key, [ctr[0]], ctr[1]);
    [a[0], b[0]]
}

/// Threefry-2x32-20 on `L` counters `(ctr0[l], ctr1)` at once, written lane-wise so that
/// the compiler turns each round into vector instructions (the fast CPU dropout uses 16
/// lanes). Bit-identical to `L` calls of [`threefry2x32`].
#[inline(always)]
pub fn threefry2x32_lanes<const L: usize>(
    key: [u32; 2],
    ctr0: [u32; L],
    ctr1: u32,
) -> ([u32; L], [u32; L]) {
    let ks = [key[0], key[1], 0x1BD1_1BDA ^ key[0] ^ key[1]];
    let mut x0 = ctr0.map(|c| c.wrapping_add(ks[0]));
    let mut x1 = [ctr1.wrapping_add(ks[1]); L];
    for group in 0..5u32 {
        // Rounds 4·group .. 4·group + 3, then key injection s = group + 1.
        let rot = if group % 2 == 0 {
            [ROT[0], ROT[1], ROT[2], ROT[3]]
        } else {
            [ROT[4], ROT[5], ROT[6], ROT[7]]
        };
        for r in rot {
            for l in 0..L {
                x0[l] = x0[l].wrapping_add(x1[l]);
                x1[l] = x1[l].rotate_left(r) ^ x0[l];
            }
        }
        let s = group + 1;
        let (k0, k1) = (
            ks[(s % 3) as usize],
            ks[((s + 1) % 3) as usize].wrapping_add(s),
        );
        for l in 0..L {
            x0[l] = x0[l].wrapping_add(k0);
            x1[l] = x1[l].wrapping_add(k1);
        }
    }
    (x0, x1)
}

/// Well-known stream ids. Ops with randomness use `STREAM_OP_BASE + node index`.
pub mod stream {
    /// Parameter initialization (step = parameter index).
    pub const INIT: u32 = 1;
    /// Per-epoch shuffling (step = epoch).
    pub const SHUFFLE: u32 = 2;
    /// Train/validation split.
    pub const SPLIT: u32 = 3;
    /// First stream id handed to graph ops (dropout masks).
    pub const OP_BASE: u32 = 1024;
}

/// A seeded counter-based generator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rng {
    pub seed: u64,
}

impl Rng {
    /// The generator keyed by `seed`.
    pub fn new(seed: u64) -> Self {
        Rng { seed }
    }

    /// The key for a stream: `(seed_lo, seed_hi ^ stream·0x9E3779B9)`.
    pub fn key(&self, stream: u32) -> [u32; 2] {
        [
            self.seed as u32,
            ((self.seed >> 32) as u32) ^ stream.wrapping_mul(0x9E37_79B9),
        ]
    }

    /// Two 32-bit words for element `index` of `(stream, step)`.
    pub fn u32x2(&self, stream: u32, step: u32, index: u32) -> [u32; 2] {
        threefry2x32(self.key(stream), [index, step])
    }

    /// A uniform float in [0, 1) with 24 random bits: `(x >> 8) · 2⁻²⁴`.
    pub fn uniform(&self, stream: u32, step: u32, index: u32) -> f32 {
        (self.u32x2(stream, step, index)[0] >> 8) as f32 * (1.0 / 16_777_216.0)
    }

    /// A standard normal draw (Box–Muller on both words), computed in f64 on the host.
    pub fn normal(&self, stream: u32, step: u32, index: u32) -> f32 {
        let [a, b] = self.u32x2(stream, step, index);
        let u1 = ((a >> 8) as f64 + 1.0) / 16_777_216.0; // (0, 1]
        let u2 = (b >> 8) as f64 / 16_777_216.0;
        ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
    }

    /// An integer uniform in [0, n), exactly: [`below_at`] on counter `(index, step)` of
    /// `stream`, with up to 32 blocks (64 words) before its fallback, so for any n < 2³² the
    /// fallback is reached with probability below 2⁻⁶⁴. `n` = 0 gives 0.
    pub fn below(&self, stream: u32, step: u32, index: u32, n: u32) -> u32 {
        below_at(self.key(stream), [index, step], n, 32)
    }

    /// A permutation of `0..n` (Fisher–Yates driven by `(stream, step)`).
    pub fn permutation(&self, stream: u32, step: u32, n: usize) -> Vec<usize> {
        let mut p: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            let j = self.below(stream, step, i as u32, i as u32 + 1) as usize;
            p.swap(i, j);
        }
        p
    }
}

/// Lemire's multiply-shift with rejection ("Fast random integer generation in an
/// interval", 2019), the rule of Rust's `rand` and NumPy's bounded integers: with
/// m = r·n as 64 bits, accept ⌊m / 2³²⌋ when the low word of m is at least 2³² mod n and
/// reject (None) otherwise. Every value in [0, n) is then hit by exactly ⌊2³² / n⌋ of the
/// accepted words: no modulo bias (a plain ⌊r·n / 2³²⌋ favours 2³² mod n of the values,
/// and rounding a uniform float favours the middle values twice as much as the ends).
/// None for n = 0.
pub fn lemire(r: u32, n: u32) -> Option<u32> {
    if n == 0 {
        return None;
    }
    let m = r as u64 * n as u64;
    ((m as u32) >= n.wrapping_neg() % n).then_some((m >> 32) as u32)
}

/// The key of retry block `r` of an integer draw: block 0 is the draw's own key, block
/// r > 0 flips bits of the low key word by r·0x85EBCA6B (the same in WGSL).
pub fn retry_key(key: [u32; 2], r: u32) -> [u32; 2] {
    [key[0] ^ r.wrapping_mul(0x85EB_CA6B), key[1]]
}

/// A uniform integer in [0, n) for counter `ctr` under `key`, exactly: the two words of
/// block r = Threefry([`retry_key`](key, r), ctr) are tried with [`lemire`] in order, for
/// r = 0, 1, … < `blocks`; if all 2·`blocks` words are rejected (probability below
/// (n / 2³²)^(2·blocks)) the last word's ⌊r·n / 2³²⌋ is taken. n ≤ 1 gives 0.
/// `below_u` in `shaders/common.wgsl` is the twin with 2 blocks.
pub fn below_at(key: [u32; 2], ctr: [u32; 2], n: u32, blocks: u32) -> u32 {
    if n <= 1 {
        return 0;
    }
    let mut last = 0;
    for r in 0..blocks.max(1) {
        for w in threefry2x32(retry_key(key, r), ctr) {
            match lemire(w, n) {
                Some(v) => return v,
                None => last = ((w as u64 * n as u64) >> 32) as u32,
            }
        }
    }
    last
}

/// Dropout keeps element `index` when its 24-bit draw is at or above `threshold`, where
/// `threshold = round(p · 2²⁴)`; an integer comparison, identical on CPU and GPU.
pub fn dropout_threshold(p: f32) -> u32 {
    (p as f64 * 16_777_216.0).round() as u32
}

/// Whether dropout keeps element `index` (the CPU twin of `dropout_keep` in WGSL).
pub fn dropout_keep(seed: u64, stream: u32, step: u32, index: u32, threshold: u32) -> bool {
    (Rng::new(seed).u32x2(stream, step, index)[0] >> 8) >= threshold
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lanes_match_the_scalar_function() {
        let key = [0xdead_beef, 0x1234_5678];
        let ctr0: [u32; 16] = std::array::from_fn(|l| 1000 + 7 * l as u32);
        let (a, b) = threefry2x32_lanes(key, ctr0, 42);
        for l in 0..16 {
            assert_eq!([a[l], b[l]], threefry2x32(key, [ctr0[l], 42]));
        }
    }

    #[test]
    fn threefry_known_answers() {
        // Random123 known-answer tests for threefry2x32_20.
        assert_eq!(threefry2x32([0, 0], [0, 0]), [0x6b20_0159, 0x99ba_4efe]);
        assert_eq!(
            threefry2x32([0xffff_ffff, 0xffff_ffff], [0xffff_ffff, 0xffff_ffff]),
            [0x1cb9_96fc, 0xbb00_2be7]
        );
        assert_eq!(
            threefry2x32([0x1319_8a2e, 0x0370_7344], [0x243f_6a88, 0x85a3_08d3]),
            [0xc492_3a9c, 0x483d_f7a0]
        );
    }

    #[test]
    fn permutation_is_a_permutation() {
        let p = Rng::new(7).permutation(stream::SHUFFLE, 3, 1000);
        let mut s = p.clone();
        s.sort();
        assert_eq!(s, (0..1000).collect::<Vec<_>>());
        assert_ne!(p, (0..1000).collect::<Vec<_>>());
    }

    /// Pearson's chi-square statistic of `counts` against the expected fractions `p`.
    fn chi_square(counts: &[u64], p: &[f64]) -> f64 {
        let n: u64 = counts.iter().sum();
        counts
            .iter()
            .zip(p)
            .map(|(&c, &q)| (c as f64 - n as f64 * q).powi(2) / (n as f64 * q))
            .sum()
    }

    #[test]
    fn below_has_no_modulo_bias() {
        // n = 3·2³⁰: 2³² / n = 4/3, so a plain multiply-shift ⌊r·n / 2³²⌋ maps two words to
        // every value divisible by 3 and one to the others: P(v mod 3 = 0) = 1/2 instead
        // of 1/3. Exact draws give 1/3.
        let n = 3u32 << 30;
        let rng = Rng::new(11);
        let mut c = [0u64; 2];
        for i in 0..30_000 {
            let v = rng.below(5, 0, i, n);
            assert!(v < n);
            c[!v.is_multiple_of(3) as usize] += 1;
        }
        // 1 degree of freedom: P(> 10.83) = 0.001.
        let chi = chi_square(&c, &[1.0 / 3.0, 2.0 / 3.0]);
        assert!(chi < 10.83, "counts {c:?}, chi-square {chi:.1}");
    }

    #[test]
    fn below_rejects_exactly_the_words_of_the_short_tail() {
        // 2³² = 3·1,431,655,765 + 1: one word of the 2³² must be rejected for n = 3, the
        // one whose r·3 has low word 0 below 2³² mod 3 = 1, i.e. r = 0.
        assert_eq!(lemire(0, 3), None);
        assert_eq!(lemire(1, 3), Some(0));
        assert_eq!(lemire(u32::MAX, 3), Some(2));
        // n = 2³¹ + 1: 2³² mod n = 2³¹ − 1, and r·n mod 2³² is r for even r, 2³¹ + r for
        // odd r: every even r below 2³¹ − 1 is rejected (about half of all words).
        let n = (1u32 << 31) + 1;
        assert_eq!(lemire(4, n), None);
        assert_eq!(lemire(5, n), Some(2)); // ⌊5·(2³¹ + 1) / 2³²⌋
        assert_eq!(lemire(1 << 31, n), Some(1 << 30)); // low word 2³¹ ≥ 2³¹ − 1
        // Powers of two never reject.
        assert_eq!(lemire(0, 8), Some(0));
        assert_eq!(lemire(u32::MAX, 8), Some(7));
    }

    #[test]
    fn permutations_of_three_are_uniform() {
        let rng = Rng::new(3);
        let mut c = [0u64; 6];
        let all = [
            [0, 1, 2],
            [0, 2, 1],
            [1, 0, 2],
            [1, 2, 0],
            [2, 0, 1],
            [2, 1, 0],
        ];
        for step in 0..6000 {
            let p = rng.permutation(stream::SHUFFLE, step, 3);
            c[all.iter().position(|a| a[..] == p[..]).unwrap()] += 1;
        }
        // 5 degrees of freedom: P(> 20.52) = 0.001.
        let chi = chi_square(&c, &[1.0 / 6.0; 6]);
        assert!(chi < 20.52, "counts {c:?}, chi-square {chi:.1}");
    }
}

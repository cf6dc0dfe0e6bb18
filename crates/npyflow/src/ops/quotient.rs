//! Division by a constant with no division instruction, where it is proven to give the
//! division's bits.
//!
//! A vector division is the slowest arithmetic a processor does: on the x86-64 machines
//! npyflow is measured on, sixteen float32 quotients (`vdivps`) take about ten cycles, while
//! a multiplication or a fused multiply-add (FMA: `a * b + c` rounded once) takes half of
//! one. A traced map that normalizes images (`(x.astype(np.float32) + 8.0) / 255.0`) spends
//! most of its time dividing. With `y`, the reciprocal `1 / d` rounded to nearest, the
//! quotient `x / d` comes from a multiplication refined by FMAs:
//!
//! ```text
//! q0 = x * y                 an approximation of x / d
//! q1 = fma(fma(-q0, d, x), y, q0)   refined by the remainder x - q0 * d
//! q2 = fma(fma(-q1, d, x), y, q1)   refined again
//! ```
//!
//! Markstein's theorem (P. Markstein, IBM Journal of Research and Development 34(1), 1990;
//! the chapter on division in Muller et al., *Handbook of Floating-Point Arithmetic*) says:
//! when `y` is `1 / d` rounded to nearest and `q` is a faithful quotient (one of the two
//! floats either side of `x / d`), the remainder `x - q * d` is a float, which the FMA
//! computes exactly, and `fma(remainder, y, q)` is `x / d` rounded to nearest, provided
//! nothing underflows or overflows on the way. Refined once, the quotient is often already
//! the division's (it was for every float32 numerator whose quotient lies between 1e-20 and
//! 1e37 in magnitude, tried exhaustively for the divisors 255, 3, 10, 0.1, 1.5, 7e-5,
//! 1.9999999 and 16777215), but the theorem does not promise it, since the product can be
//! more than one float away. Refined twice it does: the first refinement leaves the quotient
//! within half a unit in the last place and a tiny bit, so faithful, and the second rounds
//! it correctly. What the theorem needs of the range (and the signs of zeros: `-0.0 / d`
//! is `-0.0`) is not checked element by element here, which would cost most of what the
//! method saves. Instead, a chain over an input of 8 bits (the images users
//! normalize are `uint8`) is checked for all 256 values its input can hold: the chain with
//! its divisions done this way gives the same bits as with the divisions, for every one of
//! them, or the chain keeps its divisions (the op graph's fused evaluation tries it for
//! each evaluation of at least 4,096 elements, a batch as a rule). A refinement is
//! used only where that check passed, so no result changes, whatever the theorem's
//! conditions.
//!
//! The same proof serves `npyflow.ops`' division of 8- and 16-bit integers by an integer
//! ([`divide_integers`]): all 256 or 65,536 values of the input type are tried once per
//! thread and divisor, and the answer kept.
//!
//! The FMA must be the processor's: Rust's `mul_add` is exact everywhere, but without the
//! instruction it is a library call that costs more than a division. So refined quotients
//! are computed only in loops compiled for AVX2 or AVX-512, both with FMA ([`Vectors`]).

use std::any::TypeId;
use std::cell::RefCell;

use super::vectors::Vectors;

/// Float types whose division by a constant can be refined from a reciprocal.
pub(crate) trait Fma:
    Copy + std::ops::Mul<Output = Self> + std::ops::Neg<Output = Self> + std::ops::Div<Output = Self>
{
    /// `self * a + b`, rounded once.
    fn fma(self, a: Self, b: Self) -> Self;
    /// One.
    const ONE: Self;
}

impl Fma for f32 {
    #[inline(always)]
    fn fma(self, a: Self, b: Self) -> Self {
        self.mul_add(a, b)
    }
    const ONE: Self = 1.0;
}

impl Fma for f64 {
    #[inline(always)]
    fn fma(self, a: Self, b: Self) -> Self {
        self.mul_add(a, b)
    }
    const ONE: Self = 1.0;
}

/// How many times a quotient is refined from the product with the reciprocal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refine {
    /// Once: a multiplication and two FMAs.
    Once,
    /// Twice: a multiplication and four FMAs.
    Twice,
}

/// A divisor with its reciprocal, for quotients refined from a multiplication.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Reciprocal<T> {
    divisor: T,
    reciprocal: T,
    refine: Refine,
}

impl<T: Fma> Reciprocal<T> {
    /// `divisor` and its reciprocal rounded to nearest, refined `refine` times.
    pub(crate) fn new(divisor: T, refine: Refine) -> Self {
        Reciprocal {
            divisor,
            reciprocal: T::ONE / divisor,
            refine,
        }
    }

    /// The number of refinements.
    pub(crate) fn refine(&self) -> Refine {
        self.refine
    }

    /// `x / divisor` refined once.
    #[inline(always)]
    pub(crate) fn once(&self, x: T) -> T {
        let (d, y) = (self.divisor, self.reciprocal);
        let q = x * y;
        (-q).fma(d, x).fma(y, q)
    }

    /// `x / divisor` refined twice.
    #[inline(always)]
    pub(crate) fn twice(&self, x: T) -> T {
        let (d, y) = (self.divisor, self.reciprocal);
        let q = self.once(x);
        (-q).fma(d, x).fma(y, q)
    }
}

/// The refinement that gives `x / divisor` for every value `x` of the integer type `S`
/// (tried for each), or `None`. Kept per thread, for the last few types and divisors asked.
fn proven<S: bytemuck::Pod + Into<f32>>(divisor: f32) -> Option<Refine> {
    const KEPT: usize = 8;
    /// An input type and a divisor's bits, and what was proven for them.
    type Proof = ((TypeId, u32), Option<Refine>);
    thread_local! {
        static PROOFS: RefCell<Vec<Proof>> = const { RefCell::new(Vec::new()) };
    }
    let key = (TypeId::of::<S>(), divisor.to_bits());
    if let Some(found) = PROOFS.with_borrow(|p| p.iter().find(|(k, _)| *k == key).map(|e| e.1)) {
        return found;
    }
    let values: Vec<S> = match std::mem::size_of::<S>() {
        1 => bytemuck::cast_vec((0..=u8::MAX).collect::<Vec<u8>>()),
        2 => bytemuck::cast_vec((0..=u16::MAX).collect::<Vec<u16>>()),
        _ => Vec::new(),
    };
    let answer = (!values.is_empty())
        .then(|| {
            [Refine::Once, Refine::Twice].into_iter().find(|&refine| {
                let r = Reciprocal::new(divisor, refine);
                values.iter().all(|&v| {
                    let x: f32 = v.into();
                    let q = match refine {
                        Refine::Once => r.once(x),
                        Refine::Twice => r.twice(x),
                    };
                    q.to_bits() == (x / divisor).to_bits()
                })
            })
        })
        .flatten();
    PROOFS.with_borrow_mut(|p| {
        if p.len() == KEPT {
            p.remove(0);
        }
        p.push((key, answer));
    });
    answer
}

/// `out[i] = src[i] as f32 / divisor`, bit for bit, for 8- and 16-bit integers: by the
/// divisor's refined reciprocal where that was proven for every value of `S` and the CPU
/// has FMA, else by division.
pub(crate) fn divide_integers<S: bytemuck::Pod + Into<f32>>(
    src: &[S],
    divisor: f32,
    out: &mut [f32],
) {
    #[inline(always)]
    fn refined<S: bytemuck::Pod + Into<f32>>(src: &[S], r: Reciprocal<f32>, out: &mut [f32]) {
        match r.refine() {
            Refine::Once => {
                for (o, &s) in out.iter_mut().zip(src) {
                    *o = r.once(s.into());
                }
            }
            Refine::Twice => {
                for (o, &s) in out.iter_mut().zip(src) {
                    *o = r.twice(s.into());
                }
            }
        }
    }
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,fma")]
        fn avx512<S: bytemuck::Pod + Into<f32>>(src: &[S], r: Reciprocal<f32>, out: &mut [f32]) {
            refined(src, r, out);
        }
        #[target_feature(enable = "avx2,fma")]
        fn avx2<S: bytemuck::Pod + Into<f32>>(src: &[S], r: Reciprocal<f32>, out: &mut [f32]) {
            refined(src, r, out);
        }
        let vectors = Vectors::widest();
        if vectors > Vectors::Baseline {
            if let Some(refine) = proven::<S>(divisor) {
                let r = Reciprocal::new(divisor, refine);
                match vectors {
                    // SAFETY: `avx512` is `refined` compiled to use AVX-512 F, BW, VL and
                    // DQ and FMA instructions, and the CPU has them (`widest` checked).
                    #[allow(unsafe_code)]
                    Vectors::Avx512 => return unsafe { avx512(src, r, out) },
                    // SAFETY: as above, for AVX2 and FMA.
                    #[allow(unsafe_code)]
                    _ => return unsafe { avx2(src, r, out) },
                }
            }
        }
    }
    for (o, &s) in out.iter_mut().zip(src) {
        *o = s.into() / divisor;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Numerators of every magnitude: each exponent with random significands, and the values
    /// next to powers of two, where a quotient's rounding is hardest.
    fn numerators_f32(seed: u64) -> Vec<f32> {
        let mut r = seed;
        let mut next = || {
            r ^= r << 13;
            r ^= r >> 7;
            r ^= r << 17;
            r
        };
        let mut out = Vec::new();
        // Normal values well inside the range the theorem covers.
        for exponent in -60i32..=60 {
            for _ in 0..400 {
                let bits = (((exponent + 127) as u32) << 23) | (next() as u32 & 0x7f_ffff);
                out.push(f32::from_bits(bits));
            }
            let p = 2f32.powi(exponent);
            out.extend([
                p,
                f32::from_bits(p.to_bits() - 1),
                f32::from_bits(p.to_bits() + 1),
            ]);
        }
        // Integers, as a cast image's pixels are (not zero, whose sign the theorem leaves).
        out.extend((1..=1024).map(|i| i as f32));
        out
    }

    #[test]
    fn twice_refined_quotients_are_the_divisions_bits() {
        // The theorem, tested: many divisors (the common ones, ones whose significand is all
        // ones or has a single bit, negative ones) over numerators of every magnitude the
        // chain loops see.
        let mut divisors = vec![
            255.0f32,
            3.0,
            7.0,
            10.0,
            0.1,
            1.0,
            2.0,
            0.5,
            1.5,
            -255.0,
            f32::from_bits(0x3fff_ffff),
            f32::from_bits(0x4b7f_ffff),
            f32::from_bits(0x3f80_0001),
            127.5,
            std::f32::consts::TAU,
        ];
        let mut r = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..40 {
            r = r.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let bits = ((r >> 32) as u32 & 0x807f_ffff) | (((r >> 24) as u32 % 60 + 97) << 23);
            divisors.push(f32::from_bits(bits));
        }
        for (k, &d) in divisors.iter().enumerate() {
            let q = Reciprocal::new(d, Refine::Twice);
            for x in numerators_f32(k as u64 + 1) {
                for x in [x, -x] {
                    assert_eq!(
                        q.twice(x).to_bits(),
                        (x / d).to_bits(),
                        "{x:e} / {d:e} refined twice"
                    );
                }
            }
        }
    }

    #[test]
    fn twice_refined_float64_quotients_are_the_divisions_bits() {
        let mut r = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            r ^= r << 13;
            r ^= r >> 7;
            r ^= r << 17;
            r
        };
        for d in [
            255.0f64,
            3.0,
            0.1,
            -7.0,
            f64::from_bits(0x3fff_ffff_ffff_ffff),
        ] {
            let q = Reciprocal::new(d, Refine::Twice);
            for exponent in -200i64..=200 {
                for _ in 0..50 {
                    let bits = (((exponent + 1023) as u64) << 52) | (next() & 0xf_ffff_ffff_ffff);
                    let x = f64::from_bits(bits);
                    assert_eq!(q.twice(x).to_bits(), (x / d).to_bits(), "{x:e} / {d:e}");
                }
            }
        }
    }

    #[test]
    fn integers_divide_to_the_divisions_bits_on_every_compiled_version() {
        fn check<S: bytemuck::Pod + Into<f32>>(values: Vec<S>) {
            for k in [255.0f32, 3.0, 7.0, 1.0, 100.0, 65_535.0, 16_777_215.0] {
                let want: Vec<u32> = values.iter().map(|&v| (v.into() / k).to_bits()).collect();
                for cap in [Vectors::Baseline, Vectors::Avx2, Vectors::Avx512] {
                    crate::ops::vectors::VECTORS_CAP.set(cap);
                    let mut out = vec![f32::NAN; values.len()];
                    divide_integers(&values, k, &mut out);
                    let got: Vec<u32> = out.iter().map(|q| q.to_bits()).collect();
                    assert!(
                        got == want,
                        "{} / {k} on {cap:?}",
                        std::any::type_name::<S>()
                    );
                }
                crate::ops::vectors::VECTORS_CAP.set(Vectors::Avx512);
            }
        }
        check::<u8>((0..=u8::MAX).collect());
        check::<i8>((i8::MIN..=i8::MAX).collect());
        check::<u16>((0..=u16::MAX).collect());
        check::<i16>((i16::MIN..=i16::MAX).collect());
        // Each answer is kept: the second ask finds it.
        assert_eq!(proven::<u8>(255.0), proven::<u8>(255.0));
        assert!(
            proven::<u8>(255.0).is_some(),
            "255 divides every byte refined"
        );
    }

    #[test]
    fn a_refinement_can_differ_from_the_division_outside_the_theorems_range() {
        // Why chains are checked before a refinement is used: at the ends of the range and
        // for signed zeros the refined quotient is not the division's.
        let q = Reciprocal::new(255.0f32, Refine::Twice);
        assert!(
            q.twice(f32::INFINITY).is_nan(),
            "inf / 255 is inf; refined, NaN"
        );
        assert_eq!((-0.0f32 / 255.0).to_bits(), (-0.0f32).to_bits());
        assert_eq!(
            q.twice(-0.0).to_bits(),
            0.0f32.to_bits(),
            "the zero's sign is lost"
        );
        assert_eq!(q.twice(510.0), 2.0);
        assert_eq!(Reciprocal::new(4.0f32, Refine::Once).once(2.0), 0.5);
    }
}

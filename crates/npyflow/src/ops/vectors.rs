//! Which vector instructions the CPU has, for loops compiled more than once.

/// The vector instructions some loops are compiled for (the chain loops of the op graph's
/// fused evaluation, and the division loops of [`quotient`](super::quotient)): once for
/// each of these, run as the widest the CPU has. They are the same
/// Rust code each time, so their results are the same bits; only the width of the
/// instructions changes. Wide vectors pay where the compiler turns a row of flipped runs
/// into shuffles, which it does not do with the baseline's 16-byte vectors (W4's flip,
/// in a microbenchmark: 0.85 us a 32x32x3 image with AVX-512, 1.05 with AVX2, 2.0 without).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Vectors {
    /// What the crate is compiled for (SSE2 on x86-64).
    Baseline,
    /// AVX2 and FMA (x86-64).
    Avx2,
    /// AVX-512 F, BW, VL and DQ, and FMA (x86-64).
    Avx512,
}

impl Vectors {
    /// The widest this CPU has (no wider than [`VECTORS_CAP`] in tests). Asked for every
    /// block a loop runs, so the CPU's features are read once, on the first ask.
    pub(crate) fn widest() -> Vectors {
        static DETECTED: std::sync::OnceLock<Vectors> = std::sync::OnceLock::new();
        let has = *DETECTED.get_or_init(Vectors::detect);
        #[cfg(test)]
        let has = has.min(VECTORS_CAP.get());
        has
    }

    /// The widest the CPU has.
    fn detect() -> Vectors {
        #[cfg(target_arch = "x86_64")]
        {
            let fma = std::arch::is_x86_feature_detected!("fma");
            if std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512bw")
                && std::arch::is_x86_feature_detected!("avx512vl")
                && std::arch::is_x86_feature_detected!("avx512dq")
                && fma
            {
                Vectors::Avx512
            } else if std::arch::is_x86_feature_detected!("avx2") && fma {
                Vectors::Avx2
            } else {
                Vectors::Baseline
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        Vectors::Baseline
    }
}

#[cfg(test)]
thread_local! {
    /// The widest vectors the chain loops may use on this thread, for tests to run each
    /// compiled version.
    pub(crate) static VECTORS_CAP: std::cell::Cell<Vectors> =
        const { std::cell::Cell::new(Vectors::Avx512) };
}

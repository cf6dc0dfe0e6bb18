//! Byte-order and memory-order conversions between file data and tensors.

use crate::buffer::BufferMut;
use crate::dtype::DType;
use crate::error::Result;

/// Reverses the bytes of each `unit`-sized value in place (1 does nothing).
pub(crate) fn swap_in_place(bytes: &mut [u8], unit: usize) {
    match unit {
        0 | 1 => {}
        2 => bytes.chunks_exact_mut(2).for_each(|c| c.swap(0, 1)),
        4 => bytes.chunks_exact_mut(4).for_each(|c| {
            let v = u32::from_ne_bytes([c[0], c[1], c[2], c[3]]).swap_bytes();
            c.copy_from_slice(&v.to_ne_bytes());
        }),
        8 => bytes.chunks_exact_mut(8).for_each(|c| {
            let mut a = [0u8; 8];
            a.copy_from_slice(c);
            c.copy_from_slice(&u64::from_ne_bytes(a).swap_bytes().to_ne_bytes());
        }),
        n => bytes.chunks_exact_mut(n).for_each(<[u8]>::reverse),
    }
}

/// Copies C-order data of `shape` into a new buffer holding the same elements with the axes
/// reversed (so shape `[a, b, c]` becomes C-order data of shape `[c, b, a]`).
///
/// Fortran-order data of shape S is C-order data of shape reversed(S), so this turns
/// Fortran data into C data (pass reversed(S)) and C data into Fortran data (pass S).
pub(crate) fn reverse_axes(src: &[u8], shape: &[usize], itemsize: usize) -> Result<BufferMut> {
    let mut dst = BufferMut::zeroed(src.len())?;
    let n = shape.len();
    let count: usize = shape.iter().product();
    if count == 0 || itemsize == 0 {
        return Ok(dst);
    }
    if n <= 1 {
        dst.as_mut_slice().copy_from_slice(src);
        return Ok(dst);
    }
    // Strides of the source, in bytes.
    let mut strides = vec![itemsize; n];
    for k in (0..n - 1).rev() {
        strides[k] = strides[k + 1] * shape[k + 1];
    }
    // Walk the destination in its C order; its last (fastest) axis is the source's first.
    // idx[k] counts along source axis k; source axis 0 moves fastest.
    let mut idx = vec![0usize; n];
    let mut src_off = 0usize;
    let out = dst.as_mut_slice();
    let inner = shape[0];
    let inner_stride = strides[0];
    let mut d = 0;
    while d < out.len() {
        let mut s = src_off;
        for _ in 0..inner {
            out[d..d + itemsize].copy_from_slice(&src[s..s + itemsize]);
            s += inner_stride;
            d += itemsize;
        }
        // advance axes 1.. like an odometer
        let mut k = 1;
        while k < n {
            idx[k] += 1;
            src_off += strides[k];
            if idx[k] < shape[k] {
                break;
            }
            src_off -= strides[k] * shape[k];
            idx[k] = 0;
            k += 1;
        }
    }
    Ok(dst)
}

/// Turns raw file data (in file order and byte order) into C-order, native-endian data,
/// in place where only the byte order differs, through one new buffer where the memory
/// order does too.
pub(crate) fn into_c_native(
    mut raw: BufferMut,
    dtype: DType,
    shape: &[usize],
    swap: bool,
    fortran: bool,
) -> Result<BufferMut> {
    // Fortran and C order coincide when at most one axis is longer than 1.
    if fortran && shape.iter().filter(|&&d| d > 1).count() > 1 {
        let reversed: Vec<usize> = shape.iter().rev().copied().collect();
        raw = reverse_axes(raw.as_slice(), &reversed, dtype.itemsize())?;
    }
    if swap {
        swap_in_place(raw.as_mut_slice(), dtype.swap_unit());
    }
    Ok(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reverse_axes_matches_index_arithmetic() {
        for shape in [
            vec![2usize, 3],
            vec![2, 3, 4],
            vec![1, 5, 1, 2],
            vec![4, 1],
            vec![3, 0, 2],
        ] {
            let count: usize = shape.iter().product();
            let src: Vec<u8> = (0..count as u16).flat_map(|v| v.to_le_bytes()).collect();
            let out = reverse_axes(&src, &shape, 2).unwrap();
            let rev: Vec<usize> = shape.iter().rev().copied().collect();
            // check every destination element against its source by multi-index
            for flat in 0..count {
                let mut rem = flat;
                let mut di = vec![0; rev.len()];
                for k in (0..rev.len()).rev() {
                    di[k] = rem % rev[k];
                    rem /= rev[k];
                }
                let si: Vec<usize> = di.iter().rev().copied().collect();
                let mut soff = 0;
                for k in 0..shape.len() {
                    soff = soff * shape[k] + si[k];
                }
                assert_eq!(
                    &out.as_slice()[flat * 2..flat * 2 + 2],
                    &src[soff * 2..soff * 2 + 2],
                    "{shape:?} at {flat}"
                );
            }
        }
    }

    #[test]
    fn swaps_each_unit() {
        let mut b = vec![1u8, 2, 3, 4, 5, 6, 7, 8];
        swap_in_place(&mut b, 4);
        assert_eq!(b, [4, 3, 2, 1, 8, 7, 6, 5]);
        swap_in_place(&mut b, 8);
        assert_eq!(b, [5, 6, 7, 8, 1, 2, 3, 4]);
        swap_in_place(&mut b, 2);
        assert_eq!(b, [6, 5, 8, 7, 2, 1, 4, 3]);
        swap_in_place(&mut b, 1);
        assert_eq!(b, [6, 5, 8, 7, 2, 1, 4, 3]);
    }
}

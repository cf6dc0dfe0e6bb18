"""``tf.image`` on NumPy images (``[height, width, channels]``, or batches of them)."""

from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

from ._dtypes import to_numpy

from ._convert import out, to_array
from ._random import generator


def _image(image: Any) -> np.ndarray[Any, Any]:
    arr = to_array(image)
    if arr.ndim < 3:
        raise ValueError(f"an image must be at least 3-D ([height, width, channels]), got shape {arr.shape}")
    return arr


def flip_left_right(image: Any) -> Any:
    return out(np.flip(_image(image), -2))


def flip_up_down(image: Any) -> Any:
    return out(np.flip(_image(image), -3))


def _random_flip(image: Any, axis: int, seed: Optional[int]) -> Any:
    arr = _image(image)
    g = generator(seed)
    if arr.ndim == 3:
        return out(np.flip(arr, axis) if g.random() < 0.5 else arr)
    flips = g.random(arr.shape[0]) < 0.5
    res = arr.copy()
    res[flips] = np.flip(arr[flips], axis)
    return out(res)


def random_flip_left_right(image: Any, seed: Optional[int] = None) -> Any:
    """Flips each image left to right with probability 1/2 (npyflow's draws)."""
    return _random_flip(image, -2, seed)


def random_flip_up_down(image: Any, seed: Optional[int] = None) -> Any:
    """Flips each image upside down with probability 1/2 (npyflow's draws)."""
    return _random_flip(image, -3, seed)


def random_crop(value: Any, size: Sequence[int], seed: Optional[int] = None, name: Optional[str] = None) -> Any:
    """A window of ``size`` at a random offset (npyflow's draws)."""
    arr = to_array(value)
    sz = tuple(int(s) for s in np.asarray(size).ravel())
    if len(sz) != arr.ndim or any(s > d for s, d in zip(sz, arr.shape)):
        raise ValueError(f"Need value.shape >= size, got {arr.shape} and {sz}")
    g = generator(seed)
    starts = [int(g.integers(0, d - s + 1)) for s, d in zip(sz, arr.shape)]
    return out(arr[tuple(slice(b, b + s) for b, s in zip(starts, sz))])


def central_crop(image: Any, central_fraction: float) -> Any:
    """The central ``central_fraction`` of each image, offsets rounded as tf rounds them."""
    arr = _image(image)
    f = float(central_fraction)
    if f <= 0.0 or f > 1.0:
        raise ValueError("central_fraction must be within (0, 1]")
    if f == 1.0:
        return out(arr)
    h, w = arr.shape[-3], arr.shape[-2]
    top = int((h - h * f) / 2)
    left = int((w - w * f) / 2)
    return out(arr[..., top : h - top, left : w - left, :])


def _resize_axis_bilinear(n_in: int, n_out: int) -> Any:
    scale = np.float32(n_in) / np.float32(n_out)
    pos = (np.arange(n_out, dtype=np.float32) + np.float32(0.5)) * scale - np.float32(0.5)
    fl = np.floor(pos)
    lo = np.maximum(fl, 0).astype(np.int64)
    hi = np.minimum(np.ceil(pos), n_in - 1).astype(np.int64)
    return lo, hi, (pos - fl).astype(np.float32)


def _resize_axis_nearest(n_in: int, n_out: int) -> Any:
    scale = np.float32(n_in) / np.float32(n_out)
    pos = np.floor((np.arange(n_out, dtype=np.float32) + np.float32(0.5)) * scale)
    return np.clip(pos.astype(np.int64), 0, n_in - 1)


def resize(
    images: Any,
    size: Sequence[int],
    method: str = "bilinear",
    preserve_aspect_ratio: bool = False,
    antialias: bool = False,
    name: Optional[str] = None,
) -> Any:
    """``tf.image.resize`` with ``bilinear`` (float32 out) or ``nearest`` (dtype kept), half
    pixel centres as tf 2 does; no antialiasing."""
    arr = _image(images)
    if antialias:
        raise NotImplementedError("npyflow.image.resize: antialias=True is not supported")
    if preserve_aspect_ratio:
        raise NotImplementedError("npyflow.image.resize: preserve_aspect_ratio is not supported")
    oh, ow = (int(s) for s in np.asarray(size).ravel())
    h, w = arr.shape[-3], arr.shape[-2]
    m = str(getattr(method, "value", method)).lower()
    if m in ("nearest", "nearest_neighbor"):
        return out(arr[..., _resize_axis_nearest(h, oh), :, :][..., _resize_axis_nearest(w, ow), :])
    if m != "bilinear":
        raise NotImplementedError(f"npyflow.image.resize: method {method!r} is not supported (bilinear, nearest)")
    x = arr.astype(np.float32, copy=False)
    y0, y1, ly = _resize_axis_bilinear(h, oh)
    x0, x1, lx = _resize_axis_bilinear(w, ow)
    lx = lx[:, None]
    top = x[..., y0, :, :]
    bottom = x[..., y1, :, :]
    tl, tr = top[..., x0, :], top[..., x1, :]
    bl, br = bottom[..., x0, :], bottom[..., x1, :]
    t = tl + (tr - tl) * lx
    b = bl + (br - bl) * lx
    return out(t + (b - t) * ly[:, None, None])


class ResizeMethod:
    BILINEAR = "bilinear"
    NEAREST_NEIGHBOR = "nearest"


def convert_image_dtype(image: Any, dtype: Any, saturate: bool = False, name: Optional[str] = None) -> Any:
    """``tf.image.convert_image_dtype``: integers scale to [0, 1] floats and back (``x *
    (max + 0.5)`` truncated), as tf computes it."""
    arr = to_array(image)
    d = to_numpy(dtype)
    src = arr.dtype
    if src == d:
        return out(arr)
    if src.kind in "iu" and d.kind in "iu":
        in_max = int(np.iinfo(src).max)
        out_max = int(np.iinfo(d).max)
        if in_max > out_max:
            scale = (in_max + 1) // (out_max + 1)
            return out((arr // np.asarray(scale, dtype=src)).astype(d))
        scale = (out_max + 1) // (in_max + 1)
        return out(arr.astype(d) * np.asarray(scale, dtype=d))
    if src.kind == "f" and d.kind == "f":
        return out(arr.astype(d))
    if src.kind in "iu":
        return out(arr.astype(d) * np.asarray(1.0 / np.iinfo(src).max, dtype=d))
    scaled = arr * np.asarray(np.iinfo(d).max + 0.5, dtype=src)
    if saturate:
        info = np.iinfo(d)
        scaled = np.clip(scaled, info.min, info.max)
    return out(scaled.astype(d))


def _float_image(arr: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """The image tf's adjust_* compute on: float16 and float32 as they are, anything else
    (float64 too) converted to float32."""
    if arr.dtype in (np.float16, np.float32):
        return arr
    return to_array(convert_image_dtype(arr, np.float32))


def _back(adjusted: np.ndarray[Any, Any], dtype: np.dtype[Any]) -> Any:
    if dtype.kind == "f":
        return out(adjusted.astype(to_numpy(dtype), copy=False))
    return convert_image_dtype(adjusted, dtype, saturate=True)


def adjust_brightness(image: Any, delta: float) -> Any:
    """Adds ``delta`` to the image as floats in [0, 1] (float32 unless float16) and converts
    back (saturating)."""
    arr = to_array(image)
    f = _float_image(arr)
    return _back(f + np.asarray(delta, dtype=f.dtype), arr.dtype)


def adjust_contrast(images: Any, contrast_factor: float) -> Any:
    """``(x - mean) * contrast_factor + mean`` per image and channel, in float32, converted
    back to the image's dtype (saturating)."""
    arr = _image(images)
    f = _float_image(arr).astype(np.float32, copy=False)
    # the mean as tf's kernel makes it: an accurate sum times 1/n in float32
    n = np.float32(f.shape[-3] * f.shape[-2])
    total = np.sum(f, axis=(-3, -2), keepdims=True, dtype=np.float64).astype(np.float32)
    mean = total * (np.float32(1.0) / n)
    res = (f - mean) * np.float32(contrast_factor) + mean
    return _back(res, arr.dtype)


def random_brightness(image: Any, max_delta: float, seed: Optional[int] = None) -> Any:
    """``adjust_brightness`` by a delta drawn uniformly from ``[-max_delta, max_delta)``
    (npyflow's draws)."""
    if max_delta < 0:
        raise ValueError("max_delta must be non-negative.")
    delta = generator(seed).uniform(-max_delta, max_delta)
    return adjust_brightness(image, float(np.float32(delta)))


def random_contrast(image: Any, lower: float, upper: float, seed: Optional[int] = None) -> Any:
    """``adjust_contrast`` by a factor drawn uniformly from ``[lower, upper)`` (npyflow's
    draws)."""
    if upper <= lower:
        raise ValueError("upper must be > lower.")
    if lower < 0:
        raise ValueError("lower must be non-negative.")
    factor = generator(seed).uniform(lower, upper)
    return adjust_contrast(image, float(np.float32(factor)))


def per_image_standardization(image: Any) -> Any:
    """``(x - mean) / max(stddev, 1/sqrt(pixels))`` per image, as float32."""
    arr = _image(image)
    f = arr.astype(np.float32, copy=False)
    n = np.float32(np.prod(arr.shape[-3:]))
    mean = np.mean(f, axis=(-3, -2, -1), keepdims=True, dtype=np.float32)
    std = np.std(f, axis=(-3, -2, -1), keepdims=True, dtype=np.float32)
    adjusted = np.maximum(std, np.float32(1.0) / np.sqrt(n))
    return out((f - mean) / adjusted)


def crop_to_bounding_box(image: Any, offset_height: int, offset_width: int, target_height: int, target_width: int) -> Any:
    """The ``target_height`` x ``target_width`` window at the offsets."""
    arr = _image(image)
    oh, ow, th, tw = int(offset_height), int(offset_width), int(target_height), int(target_width)
    if oh < 0 or ow < 0 or th <= 0 or tw <= 0 or oh + th > arr.shape[-3] or ow + tw > arr.shape[-2]:
        raise ValueError("the bounding box does not fit in the image")
    return out(arr[..., oh : oh + th, ow : ow + tw, :])


def pad_to_bounding_box(image: Any, offset_height: int, offset_width: int, target_height: int, target_width: int) -> Any:
    """The image placed at the offsets in a ``target_height`` x ``target_width`` image of
    zeros."""
    arr = _image(image)
    h, w = arr.shape[-3], arr.shape[-2]
    oh, ow = int(offset_height), int(offset_width)
    after_h, after_w = int(target_height) - oh - h, int(target_width) - ow - w
    if oh < 0 or ow < 0 or after_h < 0 or after_w < 0:
        raise ValueError("the image does not fit in the target size at these offsets")
    pads = [(0, 0)] * (arr.ndim - 3) + [(oh, after_h), (ow, after_w), (0, 0)]
    return out(np.pad(arr, pads))


def resize_with_crop_or_pad(image: Any, target_height: int, target_width: int) -> Any:
    """Crops or zero-pads the image evenly around its centre to the target size, as tf."""
    arr = _image(image)
    h, w = arr.shape[-3], arr.shape[-2]
    th, tw = int(target_height), int(target_width)
    dh, dw = th - h, tw - w
    cropped = to_array(crop_to_bounding_box(arr, max(-dh // 2, 0), max(-dw // 2, 0), min(th, h), min(tw, w)))
    return pad_to_bounding_box(cropped, max(dh // 2, 0), max(dw // 2, 0), th, tw)


def rgb_to_grayscale(images: Any, name: Optional[str] = None) -> Any:
    """Luma (0.2989 R + 0.5870 G + 0.1140 B) in float32, converted back to the dtype."""
    arr = _image(images)
    f = to_array(convert_image_dtype(arr, np.float32))
    weights = np.array([0.2989, 0.5870, 0.1140], dtype=np.float32)
    gray = np.tensordot(f, weights, axes=([-1], [-1]))[..., np.newaxis]
    return convert_image_dtype(gray.astype(np.float32), arr.dtype)


def grayscale_to_rgb(images: Any, name: Optional[str] = None) -> Any:
    arr = _image(images)
    return out(np.concatenate([arr, arr, arr], axis=-1))


def adjust_gamma(image: Any, gamma: float = 1, gain: float = 1) -> Any:
    """``gain * x ** gamma`` on the image as floats in [0, 1], converted back (saturating)."""
    arr = to_array(image)
    f = _float_image(arr)
    with np.errstate(all="ignore"):
        adjusted = np.asarray(gain, dtype=f.dtype) * f ** np.asarray(gamma, dtype=f.dtype)
    return _back(adjusted, arr.dtype)


def rot90(image: Any, k: int = 1, name: Optional[str] = None) -> Any:
    """The image turned ``k`` quarter turns counter-clockwise."""
    arr = _image(image)
    return out(np.rot90(arr, int(k), axes=(arr.ndim - 3, arr.ndim - 2)))


def transpose(image: Any, name: Optional[str] = None) -> Any:
    """Height and width swapped."""
    arr = _image(image)
    return out(np.swapaxes(arr, -3, -2))

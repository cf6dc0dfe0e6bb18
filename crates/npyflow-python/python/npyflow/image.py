"""``tf.image`` for ``import npyflow as tf``: flips, crops, resize, dtype conversion and
colour adjustments on NumPy images. The ``random_*`` ops draw from npyflow's seeded NumPy
generators (see ``npyflow.random``), not TensorFlow's: a seed gives other values than in TF."""

from __future__ import annotations

from typing import Any

from ._tf._image import (
    ResizeMethod, adjust_brightness, adjust_contrast, adjust_gamma, central_crop,
    convert_image_dtype, crop_to_bounding_box, flip_left_right, flip_up_down,
    grayscale_to_rgb, pad_to_bounding_box, per_image_standardization, random_brightness,
    random_contrast, random_crop, random_flip_left_right, random_flip_up_down, resize,
    resize_with_crop_or_pad, rgb_to_grayscale, rot90, transpose,
)
from ._tf._missing import missing

__all__ = [
    "ResizeMethod", "adjust_brightness", "adjust_contrast", "adjust_gamma", "central_crop",
    "convert_image_dtype", "crop_to_bounding_box", "flip_left_right", "flip_up_down",
    "grayscale_to_rgb", "pad_to_bounding_box", "per_image_standardization",
    "random_brightness", "random_contrast", "random_crop", "random_flip_left_right",
    "random_flip_up_down", "resize", "resize_with_crop_or_pad", "rgb_to_grayscale", "rot90",
    "transpose",
]


def __getattr__(name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(name)
    raise missing("npyflow.image", name)

"""The cases of tf's names that tests/tf_names/make_golden.py records under real TensorFlow and
tests/python_pkg/test_tf_names.py checks npyflow against: one expression each, evaluated with
``tf`` bound to TensorFlow or to npyflow and the inputs below.

``TOL`` names the cases compared within float tolerance (TF's kernels and NumPy's round
differently: reductions that sum in another order, exp/log, resize); every other case must
equal TF's output bit for bit, dtype and shape included."""

import numpy as np


def inputs():
    """The values the expressions use (the same on both sides)."""
    rng = np.random.default_rng(1234)
    return {
        "np": np,
        "i32": np.array([[1, -2, 3], [4, 5, -6]], dtype=np.int32),
        "i64": np.arange(-5, 7, dtype=np.int64).reshape(3, 4),
        "u8": np.array([0, 1, 127, 128, 254, 255], dtype=np.uint8),
        "f32": np.array([[0.5, -1.25, 2.0], [3.5, -0.0, 7.75]], dtype=np.float32),
        "f64": np.linspace(-3, 3, 12).reshape(3, 4),
        "nan": np.array([1.0, np.nan, -2.0, np.inf, -np.inf], dtype=np.float32),
        "halves": np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5], dtype=np.float32),
        "b": np.array([[True, False, True], [False, False, True]]),
        "img_u8": rng.integers(0, 256, size=(5, 7, 3), dtype=np.uint8),
        "img_f": rng.random((6, 4, 3), dtype=np.float32),
        "batch_u8": rng.integers(0, 256, size=(2, 4, 6, 3), dtype=np.uint8),
        "lab": np.array([0, 2, 1, 3, -1, 4], dtype=np.int64),
    }


CASES = [
    # dtypes and conversion
    ("dtype_eq_f32", "tf.constant(tf.cast(f64, tf.float32).dtype == tf.float32)"),
    ("dtype_eq_i64", "tf.constant(tf.constant(i64).dtype == tf.int64)"),
    ("cast_f64_f32", "tf.cast(f64, tf.float32)"),
    ("cast_f32_i32", "tf.cast(f32, tf.int32)"),
    ("cast_f32_u8", "tf.cast(tf.abs(f32) * 30.0, tf.uint8)"),
    ("cast_i32_bool", "tf.cast(i32, tf.bool)"),
    ("cast_bool_f32", "tf.cast(b, tf.float32)"),
    ("cast_u8_f16", "tf.cast(u8, tf.float16)"),
    ("cast_py_int", "tf.cast(3, tf.float64)"),
    ("cast_i64_i8", "tf.cast(i64 * 40, tf.int8)"),
    ("constant_int", "tf.constant([1, 2, 3])"),
    ("constant_float", "tf.constant([1.5, 2.0])"),
    ("constant_big_int", "tf.constant(2**40)"),
    ("constant_dtype", "tf.constant([1, 2], dtype=tf.float64)"),
    ("constant_shape", "tf.constant(7, shape=[2, 3])"),
    ("constant_np", "tf.constant(f64)"),
    ("constant_bool", "tf.constant([True, False])"),
    ("convert_list", "tf.convert_to_tensor([[1.0, 2.0], [3.0, 4.0]])"),
    ("convert_np", "tf.convert_to_tensor(i32)"),
    ("convert_dtype", "tf.convert_to_tensor([1, 2], dtype=tf.int64)"),
    ("constant_str", "tf.constant(['ab', 'c'])"),
    ("constant_bytes", "tf.constant(b'xyz')"),
    ("constant_nested", "tf.constant([[1.0, 2.0], [3.0, 4.0]], dtype=tf.float16)"),
    ("cast_nan_to_float16", "tf.cast(nan, tf.float16)"),
    ("cast_f64_i64", "tf.cast(f64 * 1e3, tf.int64)"),
    ("cast_neg_to_uint8", "tf.cast(np.array([-1.5, 300.0, 255.9], np.float32) * 0 + np.array([0.5, 200.0, 255.9], np.float32), tf.uint8)"),
    ("convert_scalar", "tf.convert_to_tensor(3.5)"),
    ("convert_bool", "tf.convert_to_tensor(True)"),
    # array ops
    ("reshape_list", "tf.reshape([1, 2, 3, 4], [2, 2])"),
    ("stack_scalars", "tf.stack([1, 2, 3])"),
    ("concat_lists", "tf.concat([[1, 2], [3]], 0)"),
    ("fill_dtype", "tf.fill([2], np.float64(1.5))"),
    ("one_hot_float_on", "tf.one_hot(lab, 3, on_value=0.9, off_value=0.05)"),
    ("one_hot_scalar", "tf.one_hot(2, 4)"),
    ("squeeze_neg", "tf.squeeze(np.zeros((2, 1, 3, 1), np.int32), axis=-1)"),
    ("transpose_3d", "tf.transpose(img_u8)"),
    ("reverse_neg", "tf.reverse(img_u8, [-1])"),
    ("where_int_scalars", "tf.where(b, 1, 0)"),
    ("reshape", "tf.reshape(i64, [2, -1])"),
    ("reshape_flat", "tf.reshape(f32, [-1])"),
    ("transpose", "tf.transpose(i32)"),
    ("transpose_perm", "tf.transpose(batch_u8, perm=[0, 3, 1, 2])"),
    ("reverse", "tf.reverse(i64, axis=[1])"),
    ("reverse_2", "tf.reverse(i64, axis=[0, 1])"),
    ("expand_dims", "tf.expand_dims(i32, 0)"),
    ("expand_dims_neg", "tf.expand_dims(i32, -1)"),
    ("squeeze", "tf.squeeze(np.zeros((1, 3, 1), np.float32))"),
    ("squeeze_axis", "tf.squeeze(np.zeros((1, 3, 1), np.float32), axis=[2])"),
    ("concat_0", "tf.concat([i32, i32 * 2], 0)"),
    ("concat_1", "tf.concat([i32, i32], axis=1)"),
    ("stack", "tf.stack([f32, f32 + 1.0])"),
    ("stack_axis", "tf.stack([f32, f32], axis=1)"),
    ("one_hot", "tf.one_hot(lab, 4)"),
    ("one_hot_on_off", "tf.one_hot(lab, 5, on_value=3, off_value=-1)"),
    ("one_hot_axis0", "tf.one_hot(lab, 4, axis=0)"),
    ("one_hot_dtype", "tf.one_hot(lab, 4, dtype=tf.int32)"),
    ("one_hot_2d", "tf.one_hot(np.array([[0, 1], [2, 3]]), 3)"),
    ("fill_int", "tf.fill([2, 3], 9)"),
    ("fill_float", "tf.fill([3], 0.5)"),
    ("zeros_like", "tf.zeros_like(i32)"),
    ("ones_like", "tf.ones_like(f32)"),
    ("ones_like_dtype", "tf.ones_like(f32, dtype=tf.int64)"),
    ("zeros", "tf.zeros([2, 2])"),
    ("ones_int", "tf.ones([3], dtype=tf.int32)"),
    ("where_xy", "tf.where(b, i32, -i32)"),
    ("where_scalars", "tf.where(f32 > 1.0, 1.0, 0.0)"),
    ("where_coords", "tf.where(b)"),
    ("where_broadcast", "tf.where(np.array([True, False, True]), f32, np.float32(0))"),
    ("shape", "tf.shape(batch_u8)"),
    ("size", "tf.size(f32)"),
    ("rank", "tf.rank(batch_u8)"),
    ("range", "tf.range(5)"),
    ("range_float", "tf.range(0.0, 2.0, 0.5)"),
    ("tile", "tf.tile(i32, [2, 1])"),
    ("gather", "tf.gather(i64, [2, 0])"),
    ("gather_axis", "tf.gather(i64, [3, 1], axis=1)"),
    ("identity", "tf.identity(f32)"),
    # math
    ("clip", "tf.clip_by_value(f32, -1.0, 3.0)"),
    ("clip_int", "tf.clip_by_value(i64, -2, 4)"),
    ("maximum", "tf.maximum(f32, 1.0)"),
    ("minimum", "tf.minimum(i32, np.int32(2))"),
    ("maximum_arrays", "tf.maximum(i64, i64[::-1])"),
    ("abs_int", "tf.abs(i32)"),
    ("abs_float", "tf.abs(f32)"),
    ("abs_int8_min", "tf.abs(np.array([-128, -1, 5], np.int8))"),
    ("sqrt", "tf.sqrt(tf.abs(f64))"),
    ("sqrt_f32", "tf.sqrt(np.array([0.0, 1.0, 2.0, 9.0, 1e-8], np.float32))"),
    ("exp", "tf.exp(f32)"),
    ("exp_f64", "tf.exp(f64)"),
    ("log", "tf.math.log(tf.abs(f64) + 0.5)"),
    ("log_f32", "tf.math.log(np.array([1.0, 2.0, 0.5, 10.0], np.float32))"),
    ("equal", "tf.math.equal(i32, 4)"),
    ("equal_arrays", "tf.equal(i32, i32[::-1])"),
    ("not_equal", "tf.math.not_equal(f32, 2.0)"),
    ("greater", "tf.math.greater(f32, 0.5)"),
    ("less_equal", "tf.math.less_equal(i64, 0)"),
    ("add", "tf.add(i32, 1)"),
    ("subtract", "tf.math.subtract(f32, 0.25)"),
    ("multiply", "tf.math.multiply(f32, 3.0)"),
    ("divide_int32", "tf.math.divide(i32, np.int32(4))"),
    ("divide_uint8", "tf.math.divide(u8, np.uint8(3))"),
    ("truediv_f32", "tf.math.truediv(f32, 3.0)"),
    ("floordiv", "tf.math.floordiv(i64, 3)"),
    ("floormod", "tf.math.floormod(i64, 3)"),
    ("square", "tf.square(i32)"),
    ("round_half_even", "tf.round(halves)"),
    ("floor", "tf.floor(halves)"),
    ("ceil", "tf.math.ceil(halves)"),
    ("sign", "tf.sign(f32)"),
    ("negative", "tf.negative(i32)"),
    ("is_nan", "tf.math.is_nan(nan)"),
    ("is_finite", "tf.math.is_finite(nan)"),
    ("logical_and", "tf.logical_and(b, b[::-1])"),
    ("logical_not", "tf.logical_not(b)"),
    ("maximum_nan", "tf.maximum(nan, 0.0)"),
    ("minimum_nan", "tf.minimum(nan, 0.0)"),
    ("argmax", "tf.argmax(i64, axis=1)"),
    ("argmin", "tf.math.argmin(f32, axis=0)"),
    ("cumsum", "tf.math.cumsum(i64, axis=1)"),
    ("sigmoid", "tf.math.sigmoid(f32)"),
    ("tanh", "tf.tanh(f32)"),
    ("rsqrt", "tf.math.rsqrt(np.array([1.0, 4.0, 2.0], np.float32))"),
    ("clip_nan", "tf.clip_by_value(nan, -1.0, 1.0)"),
    ("clip_u8", "tf.clip_by_value(u8, 10, 200)"),
    ("sqrt_neg", "tf.sqrt(np.array([-1.0, 4.0], np.float32))"),
    ("abs_neg_zero", "tf.abs(np.array([-0.0, -3.5], np.float32))"),
    ("divide_int64_py", "tf.math.divide(i64, 4)"),
    ("divide_int8", "tf.math.divide(np.array([7, -7], np.int8), np.array([2, 2], np.int8))"),
    ("divide_f16", "tf.math.divide(np.array([1, 3], np.float16), np.float16(3))"),
    ("floordiv_neg", "tf.math.floordiv(np.array([-7, 7, -1], np.int32), np.int32(2))"),
    ("floormod_neg", "tf.math.floormod(np.array([-7, 7, -1], np.int32), np.int32(-3))"),
    ("floormod_float", "tf.math.floormod(np.array([-7.5, 7.5], np.float32), 2.0)"),
    ("pow_int", "tf.pow(i32, 2)"),
    ("square_f", "tf.square(f32)"),
    ("equal_float", "tf.math.equal(f32, f32[:, ::-1])"),
    ("greater_equal_bcast", "tf.math.greater_equal(i64, np.array([0, 1, 2, 3]))"),
    ("sign_int", "tf.sign(i32)"),
    ("sign_nan", "tf.sign(nan)"),
    ("argmax_f", "tf.argmax(f32)"),
    ("argmax_i32", "tf.math.argmax(i64, axis=0, output_type=tf.int32)"),
    # reductions
    ("reduce_sum_bool_int", "tf.reduce_sum(tf.cast(b, tf.int32))"),
    ("reduce_sum_neg_axis", "tf.reduce_sum(i64, axis=-1)"),
    ("reduce_mean_u8", "tf.reduce_mean(u8)"),
    ("reduce_mean_int_trunc", "tf.reduce_mean(np.array([[1, 2], [-1, -2]], np.int64), axis=1)"),
    ("reduce_max_nan", "tf.reduce_max(nan)"),
    ("reduce_min_int_empty", "tf.reduce_min(np.zeros((0,), np.int32))"),
    ("reduce_prod_axis", "tf.reduce_prod(f32, axis=0)"),
    ("reduce_any_axis", "tf.reduce_any(b, axis=0, keepdims=True)"),
    ("reduce_sum_int", "tf.reduce_sum(i32)"),
    ("reduce_sum_axis", "tf.reduce_sum(i64, axis=0)"),
    ("reduce_sum_keep", "tf.reduce_sum(i64, axis=1, keepdims=True)"),
    ("reduce_sum_u8_wraps", "tf.reduce_sum(u8)"),
    ("reduce_sum_f32", "tf.reduce_sum(f32)"),
    ("reduce_sum_axes", "tf.reduce_sum(batch_u8.astype(np.int32), axis=[1, 2])"),
    ("reduce_mean_int", "tf.reduce_mean(i32)"),
    ("reduce_mean_int_axis", "tf.reduce_mean(i64, axis=1)"),
    ("reduce_mean_neg", "tf.reduce_mean(np.array([-3, -4], np.int32))"),
    ("reduce_mean_f32", "tf.reduce_mean(f32)"),
    ("reduce_mean_f64_axis", "tf.reduce_mean(f64, axis=0)"),
    ("reduce_max", "tf.reduce_max(i64)"),
    ("reduce_max_axis", "tf.reduce_max(f32, axis=1)"),
    ("reduce_min", "tf.reduce_min(f32)"),
    ("reduce_max_empty", "tf.reduce_max(np.zeros((0,), np.float32))"),
    ("reduce_prod", "tf.reduce_prod(i32)"),
    ("reduce_all", "tf.reduce_all(b, axis=1)"),
    ("reduce_any", "tf.reduce_any(b)"),
    ("reduce_std", "tf.math.reduce_std(f64)"),
    ("reduce_variance", "tf.math.reduce_variance(f32, axis=0)"),
    ("reduce_logsumexp", "tf.reduce_logsumexp(f32, axis=1)"),
    ("math_reduce_mean", "tf.math.reduce_mean(f64)"),
    # numpy_function / py_function
    ("numpy_function", "tf.numpy_function(lambda a: (a * 2).astype(np.float32), [f64], tf.float32)"),
    ("numpy_function_two", "tf.numpy_function(lambda a, c: (a + c, a - c), [i32, i32], [tf.int32, tf.int32])"),
    ("py_function", "tf.py_function(lambda a: a.numpy() + 1, [i32], tf.int32)"),
    # image
    ("flip_lr", "tf.image.flip_left_right(img_u8)"),
    ("flip_ud", "tf.image.flip_up_down(img_u8)"),
    ("flip_lr_batch", "tf.image.flip_left_right(batch_u8)"),
    ("flip_ud_batch", "tf.image.flip_up_down(batch_u8)"),
    ("central_crop_half", "tf.image.central_crop(img_u8, 0.5)"),
    ("central_crop_07", "tf.image.central_crop(img_f, 0.7)"),
    ("central_crop_batch", "tf.image.central_crop(batch_u8, 0.6)"),
    ("central_crop_1", "tf.image.central_crop(img_u8, 1.0)"),
    ("resize_bilinear_up", "tf.image.resize(img_u8, [9, 11])"),
    ("resize_bilinear_down", "tf.image.resize(img_f, [3, 2])"),
    ("resize_bilinear_batch", "tf.image.resize(batch_u8, [3, 5], method='bilinear')"),
    ("resize_nearest_up", "tf.image.resize(img_u8, [9, 11], method='nearest')"),
    ("resize_nearest_down", "tf.image.resize(batch_u8, [3, 4], method='nearest')"),
    ("resize_nearest_f", "tf.image.resize(img_f, [4, 7], method=tf.image.ResizeMethod.NEAREST_NEIGHBOR)"),
    ("resize_same", "tf.image.resize(img_f, [6, 4])"),
    ("convert_u8_f32", "tf.image.convert_image_dtype(img_u8, tf.float32)"),
    ("convert_f32_u8", "tf.image.convert_image_dtype(img_f, tf.uint8)"),
    ("convert_f32_u8_sat", "tf.image.convert_image_dtype(img_f * 1.5 - 0.2, tf.uint8, saturate=True)"),
    ("convert_u8_f64", "tf.image.convert_image_dtype(u8, tf.float64)"),
    ("convert_f32_f64", "tf.image.convert_image_dtype(img_f, tf.float64)"),
    ("convert_u8_i32", "tf.image.convert_image_dtype(u8, tf.int32)"),
    ("convert_u8_same", "tf.image.convert_image_dtype(u8, tf.uint8)"),
    ("standardize_u8", "tf.image.per_image_standardization(img_u8)"),
    ("standardize_f", "tf.image.per_image_standardization(img_f)"),
    ("standardize_batch", "tf.image.per_image_standardization(batch_u8)"),
    ("standardize_const", "tf.image.per_image_standardization(np.full((2, 2, 1), 7, np.uint8))"),
    ("brightness_f", "tf.image.adjust_brightness(img_f, 0.25)"),
    ("brightness_u8", "tf.image.adjust_brightness(img_u8, 0.1)"),
    ("brightness_u8_neg", "tf.image.adjust_brightness(img_u8, -0.3)"),
    ("contrast_f", "tf.image.adjust_contrast(img_f, 1.5)"),
    ("contrast_u8", "tf.image.adjust_contrast(img_u8, 0.5)"),
    ("contrast_batch", "tf.image.adjust_contrast(batch_u8, 2.0)"),
    ("central_crop_odd", "tf.image.central_crop(np.zeros((7, 9, 1), np.float32) + np.arange(63, dtype=np.float32).reshape(7, 9, 1), 0.33)"),
    ("resize_bilinear_2x", "tf.image.resize(img_f, [12, 8])"),
    ("resize_bilinear_half", "tf.image.resize(batch_u8, [2, 3])"),
    ("resize_bilinear_f64", "tf.image.resize(f64.reshape(3, 4, 1), [5, 5])"),
    ("resize_nearest_odd", "tf.image.resize(img_u8, [3, 10], method='nearest')"),
    ("convert_i32_f32", "tf.image.convert_image_dtype(np.array([0, 2**31 - 1, 2**30], np.int32), tf.float32)"),
    ("convert_u16_u8", "tf.image.convert_image_dtype(np.array([0, 255, 256, 65535], np.uint16), tf.uint8)"),
    ("convert_u8_u16", "tf.image.convert_image_dtype(u8, tf.uint16)"),
    ("convert_f64_u8", "tf.image.convert_image_dtype(f64 / 3.0 + 0.5, tf.uint8, saturate=True)"),
    ("convert_f32_i16", "tf.image.convert_image_dtype(img_f, tf.int16)"),
    ("brightness_u8_big", "tf.image.adjust_brightness(img_u8, 0.9)"),
    ("brightness_f64", "tf.image.adjust_brightness(img_f.astype(np.float64), -0.1)"),
    ("crop_box", "tf.image.crop_to_bounding_box(img_u8, 1, 2, 3, 4)"),
    ("crop_box_batch", "tf.image.crop_to_bounding_box(batch_u8, 0, 1, 4, 2)"),
    ("pad_box", "tf.image.pad_to_bounding_box(img_u8, 1, 2, 8, 10)"),
    ("crop_or_pad_down", "tf.image.resize_with_crop_or_pad(img_u8, 3, 4)"),
    ("crop_or_pad_up", "tf.image.resize_with_crop_or_pad(img_f, 9, 7)"),
    ("crop_or_pad_mixed", "tf.image.resize_with_crop_or_pad(batch_u8, 7, 3)"),
    ("grayscale_u8", "tf.image.rgb_to_grayscale(img_u8)"),
    ("grayscale_f", "tf.image.rgb_to_grayscale(img_f)"),
    ("gray_to_rgb", "tf.image.grayscale_to_rgb(img_u8[..., :1])"),
    ("gamma_f", "tf.image.adjust_gamma(img_f, 0.5, 1.2)"),
    ("gamma_u8", "tf.image.adjust_gamma(img_u8, 2.0)"),
    ("rot90", "tf.image.rot90(tf.constant(img_u8))"),
    ("rot90_k3_batch", "tf.image.rot90(tf.constant(batch_u8), k=3)"),
    ("image_transpose", "tf.image.transpose(tf.constant(img_u8))"),
    ("contrast_f64", "tf.image.adjust_contrast(img_f.astype(np.float64), 0.3)"),
]

#: Cases compared within float tolerance (rtol, atol), with the reason.
TOL = {
    # NumPy and Eigen sum in other orders, and their exp/log/tanh differ in the last bits.
    "exp": (1e-6, 0), "exp_f64": (1e-14, 0), "log": (1e-14, 1e-15), "log_f32": (1e-6, 1e-7),
    "sigmoid": (1e-6, 0), "tanh": (1e-6, 1e-7),
    "reduce_sum_f32": (1e-6, 1e-6), "reduce_mean_f32": (1e-6, 1e-6),
    "reduce_mean_f64_axis": (1e-14, 1e-15), "reduce_std": (1e-14, 0),
    "reduce_variance": (1e-6, 0), "reduce_logsumexp": (1e-6, 0), "math_reduce_mean": (1e-14, 1e-15),
    # resize: float tolerance (the brief's), the interpolation's rounding is TF's own
    "resize_bilinear_up": (1e-5, 1e-4), "resize_bilinear_down": (1e-5, 1e-6),
    "resize_bilinear_batch": (1e-5, 1e-4), "resize_same": (1e-6, 1e-7),
    # means and standard deviations over the image
    "standardize_u8": (1e-5, 1e-5), "standardize_f": (1e-5, 1e-5),
    "standardize_batch": (1e-5, 1e-5), "standardize_const": (1e-6, 1e-6),
    "grayscale_f": (1e-6, 1e-7), "gamma_f": (1e-6, 1e-7),
}

#: The seed's examples are recorded from /work/shared/seed; these are everyday tf.data
#: programs over the names above, run whole (stdout compared) with only the import changed.
PROGRAMS = {
    "pipeline_images": '''
import numpy as np
import tensorflow as tf

images = (np.arange(4 * 6 * 6 * 3) % 251).astype(np.uint8).reshape(4, 6, 6, 3)
labels = np.array([0, 2, 1, 2])

def prep(image, label):
    image = tf.image.convert_image_dtype(image, tf.float32)
    image = tf.image.flip_left_right(image)
    image = tf.image.central_crop(image, 0.5)
    image = tf.image.resize(image, [4, 4], method="nearest")
    return image, tf.one_hot(label, 3)

ds = tf.data.Dataset.from_tensor_slices((images, labels)).map(prep, num_parallel_calls=tf.data.AUTOTUNE).batch(2)
print(ds.cardinality().numpy())
for x, y in ds:
    print(x.shape, x.dtype == tf.float32, y.numpy())
    print(tf.reduce_max(x).numpy(), tf.reduce_sum(y, axis=0).numpy())
''',
    "pipeline_filter_reduce": '''
import numpy as np
import tensorflow as tf

ds = tf.data.Dataset.range(10)
ds = ds.filter(lambda x: tf.equal(x % 3, 0)).map(lambda x: tf.cast(x, tf.float32) * 0.5)
for v in ds:
    print(v.numpy())
print(ds.reduce(np.float32(0), lambda s, x: s + x).numpy())
print(tf.data.Dataset.range(5).batch(2).cardinality().numpy())
print(list(tf.data.Dataset.range(3).as_numpy_iterator()))
spec = tf.TensorSpec(shape=(None, 2), dtype=tf.int32)
print(spec.shape, spec.dtype == tf.int32)
''',
    "pipeline_dict": '''
import numpy as np
import tensorflow as tf

data = {"x": np.arange(12, dtype=np.float32).reshape(6, 2), "y": np.array([1, 0, 1, 1, 0, 0])}
ds = tf.data.Dataset.from_tensor_slices(data)
ds = ds.map(lambda d: {"x": tf.reshape(d["x"], [2, 1]) / 2.0, "y": tf.cast(d["y"], tf.bool)})
for d in ds.batch(3):
    print(d["x"].numpy().tolist(), d["y"].numpy())
    print(tf.reduce_mean(d["x"]).numpy(), tf.where(d["y"]).numpy().ravel())
''',
    "pipeline_strings_and_functions": '''
import numpy as np
import tensorflow as tf

names = tf.data.Dataset.from_tensor_slices(np.array([b"cat", b"dog", b"emu"]))
for n in names:
    print(n.numpy(), n.numpy().decode(), n.dtype == tf.string)

def double(x):
    return tf.numpy_function(lambda v: (v * 2).astype(np.int64), [x], tf.int64)

ds = tf.data.Dataset.range(4).map(double).map(lambda x: tf.clip_by_value(x, 1, 5))
print([int(v.numpy()) for v in ds])
noisy = tf.data.Dataset.from_tensor_slices(np.zeros((3, 2, 2, 1), np.float32)).map(
    lambda im: tf.image.random_flip_left_right(im + tf.random.uniform([2, 2, 1], seed=1), seed=2))
for im in noisy.batch(3):
    print(im.shape, im.dtype == tf.float32, bool(tf.reduce_all(im >= 0)), bool(tf.reduce_all(im < 1)))
''',
    "data_single_element_and_options": '''
import numpy as np
import tensorflow as tf

def message(e):
    # TF's text without its op decoration (npyflow raises ValueError with the bare text)
    return str(e).split("}} ")[-1].split(" [Op:")[0]

D = tf.data.Dataset
print(D.range(5).filter(lambda x: x == 3).get_single_element().numpy())
pair = tf.data.experimental.get_single_element(D.from_tensors((np.int32(1), b"a")))
print(pair[0].numpy(), pair[1].numpy(), pair[0].dtype == tf.int32)
for ds in [D.range(0), D.range(2)]:
    try:
        ds.get_single_element()
    except Exception as e:
        print(message(e))
o1 = tf.data.Options()
o1.deterministic = False
o1.autotune.enabled = False
o1.experimental_optimization.map_fusion = True
o2 = tf.data.Options()
o2.deterministic = True
o2.threading.private_threadpool_size = 4
o2.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
ds = D.range(3).with_options(o1).with_options(o2)
opts = ds.options()
print(opts.deterministic, opts.autotune.enabled, opts.threading.private_threadpool_size)
print(opts.experimental_optimization.map_fusion, int(opts.experimental_distribute.auto_shard_policy))
print(D.range(3).options() == tf.data.Options(), ds.options() == ds.options(), opts.autotune.cpu_budget)
print(list(ds.map(lambda x: x + 1, num_parallel_calls=2).as_numpy_iterator()))
z = D.zip((D.range(3).with_options(o1), D.range(3)))
print(z.options().deterministic, z.map(lambda a, b: a).options().deterministic)
c = D.range(2).concatenate(D.range(2).with_options(o2))
print(c.options().deterministic, c.options().threading.private_threadpool_size)
o3 = tf.data.Options()
o3.experimental_deterministic = False
o3.experimental_threading.private_threadpool_size = 3
print(o3.deterministic, o3.threading.private_threadpool_size, o3.experimental_threading is o3.threading)
try:
    o1.no_such_option = 1
except AttributeError as e:
    print(e)
try:
    o1.deterministic = 3
except TypeError as e:
    print(e)
''',
    "data_experimental_aliases": '''
import numpy as np
import tensorflow as tf

def message(e):
    return str(e).split("}} ")[-1].split(" [Op:")[0]

D = tf.data.Dataset
E = tf.data.experimental
print(E.AUTOTUNE == tf.data.AUTOTUNE, E.INFINITE_CARDINALITY, E.UNKNOWN_CARDINALITY)
print(E.cardinality(D.range(4)).numpy(), E.cardinality(D.range(4).repeat()).numpy())
print(E.cardinality(D.range(4).filter(lambda x: x > 1)).numpy())
print(list(D.range(5).apply(E.enumerate_dataset(3)).as_numpy_iterator()))
print(list(D.range(5).apply(E.map_and_batch(lambda x: x * 2, 2)).as_numpy_iterator()))
print(list(D.range(5).apply(E.map_and_batch(lambda x: x * 2, 2, drop_remainder=True)).as_numpy_iterator()))
print(list(D.range(3).apply(E.shuffle_and_repeat(1, 2)).as_numpy_iterator()))
print(list(D.range(4).apply(E.parallel_interleave(lambda x: D.range(x), cycle_length=2)).as_numpy_iterator()))
print(list(D.from_tensor_slices(np.arange(6).reshape(3, 2)).apply(E.unbatch()).as_numpy_iterator()))
print(list(D.range(6).apply(E.scan(np.int64(0), lambda s, x: (s + x, s * 10))).as_numpy_iterator()))
print(list(D.range(6).apply(E.take_while(lambda x: x < 4)).as_numpy_iterator()))
print(list(D.from_tensor_slices([1, 2, 1, 3, 2]).apply(E.unique()).as_numpy_iterator()))
g = D.range(10).apply(E.group_by_window(lambda x: x % 2, lambda k, w: w.batch(3), window_size=3))
print(list(g.as_numpy_iterator()))
picks = E.choose_from_datasets([D.range(3), D.range(10, 13)], D.from_tensor_slices(np.array([1, 0, 1, 1], np.int64)))
print(list(picks.as_numpy_iterator()))
only = E.sample_from_datasets([D.range(3), D.range(10, 13)], weights=[0.0, 1.0], seed=1)
print(list(only.as_numpy_iterator()))
checked = D.range(6).filter(lambda x: x % 2 == 0).apply(E.assert_cardinality(3))
print(checked.cardinality().numpy(), list(checked.as_numpy_iterator()))
for n in [2, 5]:
    bad = D.range(3).apply(E.assert_cardinality(n))
    print(bad.cardinality().numpy())
    got = []
    try:
        for x in bad:
            got.append(int(x.numpy()))
    except Exception as e:
        print(got, message(e))
bad = D.range(3).apply(E.assert_cardinality(tf.data.INFINITE_CARDINALITY))
print(bad.cardinality().numpy())
try:
    list(bad.as_numpy_iterator())
except Exception as e:
    print(message(e))
''',
    "data_random": '''
import numpy as np
import tensorflow as tf

D = tf.data.Dataset
r = D.random(seed=4)
print(r.cardinality().numpy(), r.element_spec.dtype == tf.int64, r.element_spec.shape)
a = list(r.take(500).as_numpy_iterator())
print(len(a), all(0 <= v < 2 ** 32 for v in a), len(set(a)) > 490, type(a[0]).__name__)
print(a == list(r.take(500).as_numpy_iterator()))
re = D.random(seed=4, rerandomize_each_iteration=True).take(5)
print(list(re.as_numpy_iterator()) == list(re.as_numpy_iterator()))
un = D.random().take(5)
print(list(un.as_numpy_iterator()) == list(un.as_numpy_iterator()))
coin = D.random(seed=7).map(lambda x: x % 2).take(2000)
print(abs(float(coin.reduce(np.int64(0), lambda s, x: s + x).numpy()) / 2000 - 0.5) < 0.05)
''',
}

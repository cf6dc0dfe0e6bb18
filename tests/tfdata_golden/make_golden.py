#!/usr/bin/env python3
"""Writes golden.json: what real tf.data produces for a set of small pipelines.

Each case has a string id; crates/npyflow/tests/it/semantics/golden.rs builds the same pipeline
with npyflow's Rust API (one function per id) and compares, for every id:

- the elements, each printed as NumPy prints it (`str(array)`; tuples as "(a, b)", dicts as
  "{'k': v}" in insertion order, bytes scalars as b'..'), which is how npyflow's
  `Element` prints;
- `cardinality()` as tf.data's integer (-1 infinite, -2 unknown);
- `element_spec`, rewritten in npyflow's spelling: `TensorSpec(shape=(None, 3), dtype=int64)`,
  tuples "(a, b)", dicts "{'k': spec}", `DatasetSpec(inner)`.

A second list holds invalid arguments: calls that tf.data refuses when the dataset is built,
with the exception's type and the first line of its message.

Only this script needs TensorFlow (and only to regenerate the file):

    python3 -m venv /tmp/tfvenv && /tmp/tfvenv/bin/pip install tensorflow-cpu numpy
    /tmp/tfvenv/bin/python tests/tfdata_golden/make_golden.py

Dtypes are kept to what npyflow has (numeric and bytes); tf.data's variable-length strings
come back from NumPy conversion as `object` arrays of bytes, which are printed as the
fixed-width `S` arrays npyflow holds.
"""

import itertools
import json
import os
import re
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

D = tf.data.Dataset
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden.json")


# ---------------------------------------------------------------- printing


def py_tuple(parts):
    """Strings as the parts of a tuple, spelled as Python spells one: `(a,)`, `(a, b)`."""
    return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"


def nested(x, leaf):
    """A tuple or dict of tuples, dicts and leaves, spelled as npyflow spells it, with `leaf`
    spelling each leaf."""
    if isinstance(x, tuple):
        return py_tuple([nested(v, leaf) for v in x])
    if isinstance(x, dict):
        return "{" + ", ".join(f"'{k}': {nested(v, leaf)}" for k, v in x.items()) + "}"
    return leaf(x)


def show(x):
    """An element as npyflow's `Element` Display prints it."""
    return nested(x, show_leaf)


def show_leaf(x):
    if isinstance(x, bytes):
        return str(x)
    if isinstance(x, np.ndarray):
        if x.dtype == object:
            # tf strings: print them as the fixed-width bytes array npyflow would hold.
            x = np.array(x.tolist(), dtype="S")
        return str(x)
    if isinstance(x, np.generic):
        return str(x)
    raise TypeError(f"cannot show {type(x)}")


def shape_str(shape):
    if shape.rank is None:
        return "<unknown>"
    return py_tuple(["None" if d is None else str(d) for d in shape.as_list()])


def spec_str(spec):
    """An element_spec in npyflow's spelling."""
    return nested(spec, spec_leaf)


def spec_leaf(spec):
    if isinstance(spec, tf.data.DatasetSpec):
        return "DatasetSpec(" + spec_str(spec.element_spec) + ")"
    if isinstance(spec, tf.TensorSpec):
        return f"TensorSpec(shape={shape_str(spec.shape)}, dtype={spec.dtype.name})"
    raise TypeError(f"cannot spell {type(spec)}")


# ---------------------------------------------------------------- the cases

CASES = []


def case(case_id, limit=None, order="exact", elements=True):
    """Registers a pipeline. `limit`: read at most this many elements (endless datasets).
    `order`: "multiset" where the order is random (shuffle, sampling). `elements=False`:
    the elements are datasets (windows), so only the cardinality and spec are recorded."""

    def register(fn):
        CASES.append(dict(id=case_id, build=fn, limit=limit, order=order, elements=elements))
        return fn

    return register


def i64(*v):
    return np.array(v, dtype=np.int64)


def fill_x(x):
    """[x, x, ..., x], x times."""
    return tf.fill([x], x)


# Sources

case("range_5")(lambda: D.range(5))
case("range_start_stop_step")(lambda: D.range(2, 10, 3))
case("range_negative_step")(lambda: D.range(10, 0, -3))
case("range_negative_step_uneven")(lambda: D.range(5, -6, -5))
case("range_empty")(lambda: D.range(5, 1))
case("range_empty_negative_step")(lambda: D.range(1, 5, -1))
case("counter_take")(lambda: D.counter(start=3, step=-2).take(4))
case("counter", limit=3)(lambda: D.counter(start=10, step=5))

case("slices_matrix")(lambda: D.from_tensor_slices(np.arange(6, dtype=np.int64).reshape(3, 2)))
case("slices_tuple_float64")(
    lambda: D.from_tensor_slices(
        (i64(1, 2, 3), np.array([[1.5, 2.0], [3.0, 4.25], [-5.0, 6.0]], dtype=np.float64))
    )
)
case("slices_dict_keeps_key_order")(
    lambda: D.from_tensor_slices(
        {
            "b": np.array([1, 2], dtype=np.int32),
            "a": np.array([0.5, 0.25], dtype=np.float32),
        }
    )
)
case("slices_nested")(
    lambda: D.from_tensor_slices(
        (
            (i64(1, 2), {"x": np.array([[1, 2], [3, 4]], dtype=np.int16)}),
            np.array([True, False]),
        )
    )
)
case("slices_bytes")(lambda: D.from_tensor_slices(np.array([b"ab", b"c", b"def"])))
case("slices_empty")(lambda: D.from_tensor_slices(np.zeros((0, 3), dtype=np.float32)))
case("slices_uint8_3d")(
    lambda: D.from_tensor_slices(np.arange(12, dtype=np.uint8).reshape(2, 2, 3))
)
case("tensors_tuple")(
    lambda: D.from_tensors((i64(1, 2, 3), np.array(4.0, dtype=np.float64)))
)
case("tensors_dict")(
    lambda: D.from_tensors({"m": np.ones((2, 2), dtype=np.float32), "n": np.array(7, np.int64)})
)


def _gen():
    for i in range(4):
        yield np.int64(i * i)


case("from_generator")(
    lambda: D.from_generator(_gen, output_signature=tf.TensorSpec(shape=(), dtype=tf.int64))
)

# Combining datasets

case("zip_tuple")(lambda: D.zip((D.range(3), D.range(10, 15))))
case("zip_dict")(
    lambda: D.zip(
        {"y": D.range(4), "x": D.from_tensor_slices(np.array([0.5, 1.5, 2.5], np.float32))}
    )
)
case("zip_nested")(lambda: D.zip((D.range(3), (D.range(10, 13), D.range(20, 25)))))
case("zip_with_infinite")(lambda: D.zip((D.range(3), D.range(2).repeat())))
case("concatenate")(lambda: D.range(3).concatenate(D.range(10, 12)))
case("concatenate_shapes_relax")(
    lambda: D.from_tensor_slices(np.arange(6, dtype=np.int64).reshape(2, 3)).concatenate(
        D.from_tensor_slices(np.arange(4, dtype=np.int64).reshape(2, 2))
    )
)
case("concatenate_infinite", limit=6)(lambda: D.range(3).concatenate(D.range(2).repeat()))
case("choose_from_datasets")(
    lambda: D.choose_from_datasets(
        [D.from_tensors(i64(1)[0]).repeat(), D.from_tensors(i64(2)[0]).repeat(),
         D.from_tensors(i64(3)[0]).repeat()],
        D.range(3).repeat(3),
    )
)
case("choose_stop_on_empty")(
    lambda: D.choose_from_datasets(
        [D.range(0, 2), D.range(10, 20)],
        D.from_tensor_slices(i64(0, 1, 0, 1, 0, 1, 1)),
    )
)
case("choose_skip_empty")(
    lambda: D.choose_from_datasets(
        [D.range(0, 2), D.range(10, 20)],
        D.from_tensor_slices(i64(0, 1, 0, 1, 0, 1, 1)),
        stop_on_empty_dataset=False,
    )
)
case("sample_from_datasets", order="multiset")(
    lambda: D.sample_from_datasets(
        [D.range(0, 3), D.range(10, 14)], weights=[0.5, 0.5], seed=7, stop_on_empty_dataset=False
    )
)

# Batching

case("batch")(lambda: D.range(8).batch(3))
case("batch_drop_remainder")(lambda: D.range(8).batch(3, drop_remainder=True))
case("batch_tuple")(lambda: D.zip((D.range(5), D.range(5).map(lambda x: x * 10))).batch(2))
case("batch_dict_float")(
    lambda: D.from_tensor_slices(
        {"f": np.array([0.5, 1.0, 1.5, 2.0, 2.5], np.float32), "i": np.arange(5, dtype=np.int32)}
    ).batch(2, drop_remainder=True)
)
case("batch_rows")(
    lambda: D.from_tensor_slices(np.arange(12, dtype=np.int64).reshape(4, 3)).batch(3)
)
case("batch_bytes")(lambda: D.from_tensor_slices(np.array([b"ab", b"cd", b"ef"])).batch(2))
case("padded_batch_default")(lambda: D.range(1, 5).map(fill_x).padded_batch(2))
case("padded_batch_shapes_values")(
    lambda: D.range(1, 5)
    .map(fill_x)
    .padded_batch(2, padded_shapes=[5], padding_values=np.int64(-1))
)
case("padded_batch_2d_drop")(
    lambda: D.range(1, 6)
    .map(lambda x: tf.fill([x, 2], x))
    .padded_batch(2, padded_shapes=[None, 3], drop_remainder=True)
)
case("padded_batch_tuple")(
    lambda: D.range(1, 4)
    .map(lambda x: (fill_x(x), tf.cast(x, tf.float32)))
    .padded_batch(2, padded_shapes=([None], []), padding_values=(np.int64(9), np.float32(0.0)))
)
case("unbatch")(lambda: D.range(7).batch(3).unbatch())
case("unbatch_known_size")(lambda: D.range(8).batch(4, drop_remainder=True).unbatch())
case("unbatch_tuple")(
    lambda: D.from_tensors(
        (np.arange(6, dtype=np.int64).reshape(2, 3), np.array([7.5, 8.5], np.float64))
    ).unbatch()
)
case("rebatch_scalar")(lambda: D.range(8).batch(4).rebatch(3))
case("rebatch_list")(lambda: D.range(10).batch(4).rebatch([2, 1, 1]))
case("rebatch_drop_remainder")(lambda: D.range(7).batch(4).rebatch(3, drop_remainder=True))
case("rebatch_known_input")(lambda: D.range(8).batch(4, drop_remainder=True).rebatch(2))

# Counting and choosing by position

case("repeat_2")(lambda: D.range(3).repeat(2))
case("repeat_0")(lambda: D.range(3).repeat(0))
case("repeat_forever", limit=7)(lambda: D.range(3).repeat())
case("repeat_forever_take")(lambda: D.range(3).repeat().take(7))
case("repeat_forever_skip", limit=4)(lambda: D.range(3).repeat().skip(5))
case("repeat_empty_forever")(lambda: D.range(0).repeat())
case("repeat_unknown_forever", limit=5)(
    lambda: D.range(6).filter(lambda x: x % 2 == 0).repeat()
)
case("repeat_unknown_forever_take")(
    lambda: D.range(6).filter(lambda x: x % 2 == 0).repeat().take(5)
)
case("take_3")(lambda: D.range(10).take(3))
case("take_more_than_there_is")(lambda: D.range(3).take(10))
case("take_minus_1")(lambda: D.range(5).take(-1))
case("take_0")(lambda: D.range(5).take(0))
case("skip_2")(lambda: D.range(5).skip(2))
case("skip_minus_1")(lambda: D.range(5).skip(-1))
case("skip_more_than_there_is")(lambda: D.range(5).skip(9))
case("shard_3_1")(lambda: D.range(10).shard(3, 1))
case("shard_of_batches")(lambda: D.range(10).batch(3).shard(2, 1))
case("shard_unknown")(lambda: D.range(10).filter(lambda x: x > 2).shard(2, 0))
case("enumerate_start")(
    lambda: D.from_tensor_slices(np.array([10, 20, 30], np.int32)).enumerate(start=5)
)
case("shuffle", order="multiset")(lambda: D.range(10).shuffle(4, seed=1))
case("prefetch")(lambda: D.range(5).prefetch(2))
case("cache")(lambda: D.range(5).map(lambda x: x * 2).cache())

# Cardinality rules, each on a small pipeline (endless ones read up to `limit`)

case("cardinality_zip_unknown")(
    lambda: D.zip((D.range(6).filter(lambda x: x % 2 == 0), D.range(2)))
)
case("cardinality_concatenate_unknown_then_infinite", limit=6)(
    lambda: D.range(4).filter(lambda x: x % 2 == 0).concatenate(D.range(2).repeat())
)
case("cardinality_batch_infinite", limit=2)(lambda: D.range(3).repeat().batch(2))
case("cardinality_unbatch_infinite", limit=3)(
    lambda: D.range(3).repeat().batch(2, drop_remainder=True).unbatch()
)
case("cardinality_rebatch_infinite", limit=3)(
    lambda: D.range(3).repeat().batch(2).rebatch(3)
)
case("cardinality_shard_infinite", limit=3)(lambda: D.range(3).repeat().shard(2, 1))
case("cardinality_filter_infinite", limit=3)(
    lambda: D.range(3).repeat().filter(lambda x: x > 0)
)
case("cardinality_flat_map_infinite", limit=3)(
    lambda: D.range(3).repeat().flat_map(lambda x: D.from_tensors(x))
)
case("cardinality_interleave_infinite", limit=3)(
    lambda: D.range(3)
    .repeat()
    .interleave(lambda x: D.from_tensors(x), cycle_length=2, block_length=1)
)
case("cardinality_take_while_infinite", limit=3)(
    lambda: D.range(3).repeat().take_while(lambda x: x < 5)
)
case("cardinality_unique_infinite", elements=False)(lambda: D.range(3).repeat().unique())
case("cardinality_scan_infinite", limit=3)(
    lambda: D.range(3).repeat().scan(np.int64(0), lambda s, x: (s + x, s))
)
case("cardinality_enumerate_infinite", limit=2)(lambda: D.range(3).repeat().enumerate())
case("cardinality_window_infinite", elements=False)(lambda: D.range(3).repeat().window(2))
case("cardinality_group_by_window_infinite", limit=2)(
    lambda: D.range(3).repeat().group_by_window(
        key_func=lambda x: x % 2, reduce_func=lambda k, w: w.batch(2), window_size=2
    )
)
case("cardinality_ignore_errors_infinite", limit=3)(lambda: D.range(3).repeat().ignore_errors())
case("cardinality_skip_minus_1_infinite")(lambda: D.range(3).repeat().skip(-1))
case("cardinality_take_minus_1_infinite", limit=4)(lambda: D.range(3).repeat().take(-1))
case("cardinality_shuffle_infinite", elements=False)(
    lambda: D.range(3).repeat().shuffle(4, seed=1)
)
case("cardinality_repeat_count_of_unknown")(
    lambda: D.range(6).filter(lambda x: x % 2 == 0).repeat(2)
)
case("cardinality_empty_slices_repeat_forever")(
    lambda: D.from_tensor_slices(np.zeros((0,), np.int64)).repeat()
)
case("cardinality_sample_stop_one_infinite", elements=False)(
    lambda: D.sample_from_datasets(
        [D.range(3), D.range(2).repeat()], seed=3, stop_on_empty_dataset=True
    )
)
case("cardinality_sample_stop_all_finite", elements=False)(
    lambda: D.sample_from_datasets([D.range(3), D.range(4)], seed=3, stop_on_empty_dataset=True)
)
case("cardinality_sample_no_stop_one_infinite", elements=False)(
    lambda: D.sample_from_datasets(
        [D.range(3), D.range(2).repeat()], seed=3, stop_on_empty_dataset=False
    )
)
case("choose_endless_choices_skip_empty")(
    lambda: D.choose_from_datasets(
        [D.range(0, 2), D.range(10, 12)], D.range(2).repeat(), stop_on_empty_dataset=False
    )
)
case("choose_endless_choices_stop_on_empty")(
    lambda: D.choose_from_datasets([D.range(0, 2), D.range(10, 12)], D.range(2).repeat())
)

# Windows


def batched_windows(size):
    return lambda w: w.batch(size)


case("window_default_shift")(lambda: D.range(7).window(3).flat_map(batched_windows(3)))
case("window_shift_drop")(
    lambda: D.range(7).window(3, shift=2, drop_remainder=True).flat_map(batched_windows(3))
)
case("window_stride_drop")(
    lambda: D.range(10)
    .window(3, shift=1, stride=2, drop_remainder=True)
    .flat_map(batched_windows(3))
)
case("window_stride_keep_remainder")(
    lambda: D.range(10).window(3, shift=2, stride=3).flat_map(batched_windows(3))
)
case("window_shift_beyond_size")(
    lambda: D.range(10).window(2, shift=5).flat_map(batched_windows(2))
)
case("window_shift_beyond_size_uneven")(
    lambda: D.range(9).window(2, shift=4).flat_map(batched_windows(2))
)
case("window_tuple")(
    lambda: D.zip((D.range(5), D.range(5).map(lambda x: x * 10)))
    .window(2)
    .flat_map(lambda a, b: D.zip((a.batch(2), b.batch(2))))
)
case("window_spec_cardinality", elements=False)(lambda: D.range(7).window(3, shift=2))
case("window_spec_cardinality_drop", elements=False)(
    lambda: D.range(10).window(3, shift=2, stride=2, drop_remainder=True)
)
case("window_spec_dict", elements=False)(
    lambda: D.zip({"a": D.range(4), "b": D.range(4)}).window(3, drop_remainder=True)
)

# Functions

case("map_shape_change")(lambda: D.range(3).map(lambda x: tf.fill([2, 3], x)))
case("map_to_tuple")(lambda: D.range(3).map(lambda x: (x, tf.cast(x, tf.float32) * 0.5)))
case("map_to_dict")(
    lambda: D.range(3).map(lambda x: {"sq": x * x, "neg": tf.cast(-x, tf.int32)})
)
case("map_value_shape")(lambda: D.range(1, 4).map(fill_x))
case("map_reshape")(
    lambda: D.range(1, 4).map(lambda x: tf.reshape(tf.range(x * 2), [x, 2]))
)
case("map_value_shape_not_seen_at_trace")(
    lambda: D.range(6).map(lambda x: tf.fill([x // 4 + 1], x))
)
case("map_cast_scale")(
    lambda: D.from_tensor_slices(np.array([0, 51, 255], np.uint8)).map(
        lambda x: tf.cast(x, tf.float32) / 255.0
    )
)
case("filter")(lambda: D.range(10).filter(lambda x: x % 3 == 0))
case("flat_map")(
    lambda: D.from_tensor_slices(np.arange(9, dtype=np.int64).reshape(3, 3)).flat_map(
        D.from_tensor_slices
    )
)
case("flat_map_uneven")(lambda: D.range(4).flat_map(lambda x: D.range(x)))
case("interleave_2_4")(
    lambda: D.range(1, 6).interleave(
        lambda x: D.from_tensors(x).repeat(6), cycle_length=2, block_length=4
    )
)
case("interleave_3_1_uneven")(
    lambda: D.range(1, 6).interleave(
        lambda x: D.range(10 * x, 10 * x + x), cycle_length=3, block_length=1
    )
)
case("interleave_cycle_beyond_inputs")(
    lambda: D.range(1, 4).interleave(
        lambda x: D.range(10 * x, 10 * x + 3), cycle_length=10, block_length=2
    )
)
case("interleave_with_empty_inputs")(
    lambda: D.range(0, 6).interleave(
        lambda x: D.range(10 * x, 10 * x + x % 3), cycle_length=2, block_length=2
    )
)
case("scan_running_sum")(
    lambda: D.range(10).scan(np.int64(0), lambda s, x: (s + x, s + x))
)
case("scan_tuple_state")(
    lambda: D.range(6).scan(
        (np.int64(0), np.int64(1)), lambda s, x: ((s[1], s[0] + s[1]), (x, s[0] * x))
    )
)
case("take_while")(lambda: D.range(10).take_while(lambda x: x < 5))
case("take_while_none")(lambda: D.range(10).take_while(lambda x: x > 5))
case("unique")(lambda: D.from_tensor_slices(i64(1, 37, 2, 37, 2, 1)).unique())
case("unique_bytes")(
    lambda: D.from_tensor_slices(np.array([b"a", b"b", b"a", b"c", b"b"])).unique()
)
case("reduce_sum")(
    lambda: D.from_tensors(D.range(5).reduce(np.int64(0), lambda s, x: s + x))
)
case("reduce_tuple")(
    lambda: D.from_tensors(
        D.range(1, 5).reduce((np.int64(0), np.int64(1)), lambda s, x: (s[0] + x, s[1] * x))
    )
)


def _fail_at_3(x):
    return tf.gather(tf.constant([1, 2, 3], tf.int64), x)


case("ignore_errors")(lambda: D.range(5).map(_fail_at_3).ignore_errors())

# Grouping

case("group_by_window")(
    lambda: D.range(10).group_by_window(
        key_func=lambda x: x % 2, reduce_func=lambda k, w: w.batch(5), window_size=5
    )
)
case("group_by_window_leftovers")(
    lambda: D.range(7).group_by_window(
        key_func=lambda x: 2 - x % 3, reduce_func=lambda k, w: w.batch(10), window_size=3
    )
)
case("group_by_window_size_func")(
    lambda: D.range(12).group_by_window(
        key_func=lambda x: x % 3,
        reduce_func=lambda k, w: w.batch(10),
        window_size_func=lambda k: k + 1,
    )
)
case("group_by_window_reduce_uses_key")(
    lambda: D.range(8).group_by_window(
        key_func=lambda x: x % 2,
        reduce_func=lambda k, w: w.map(lambda x: x * 100 + k),
        window_size=3,
    )
)

LENGTHS = [1, 2, 1, 5, 2, 6, 3, 1]


def seqs():
    """Element i: [i+1, i+1, ...], LENGTHS[i] long."""
    lengths = tf.constant(LENGTHS, tf.int64)
    return D.range(len(LENGTHS)).map(lambda i: tf.fill([lengths[i]], i + 1))


def seq_len(x):
    return tf.shape(x)[0]


case("bucket_basic")(lambda: seqs().bucket_by_sequence_length(seq_len, [3], [2, 2]))
case("bucket_three_buckets_padding_value")(
    lambda: seqs().bucket_by_sequence_length(
        seq_len, [2, 4], [2, 3, 2], padding_values=np.int64(-1)
    )
)
case("bucket_pad_to_boundary")(
    lambda: seqs()
    .take(5)
    .bucket_by_sequence_length(seq_len, [3, 7], [2, 2, 2], pad_to_bucket_boundary=True)
)
case("bucket_padded_shapes")(
    lambda: seqs().bucket_by_sequence_length(seq_len, [3], [2, 2], padded_shapes=[8])
)
case("bucket_no_padding")(
    lambda: D.from_tensor_slices(i64(1, 1, 4, 4, 1, 4, 1))
    .map(lambda n: tf.fill([n], n))
    .bucket_by_sequence_length(seq_len, [3], [2, 2], no_padding=True)
)
case("bucket_drop_remainder")(
    lambda: seqs().bucket_by_sequence_length(seq_len, [3], [2, 2], drop_remainder=True)
)
case("bucket_drop_remainder_sizes_differ")(
    lambda: seqs().bucket_by_sequence_length(seq_len, [3], [3, 2], drop_remainder=True)
)
case("group_by_window_batch_drop_remainder")(
    lambda: D.range(10).group_by_window(
        key_func=lambda x: x % 2, reduce_func=lambda k, w: w.batch(2, drop_remainder=True),
        window_size=5,
    )
)

# ---------------------------------------------------------------- invalid arguments

INVALID = [
    ("batch_size_0", lambda: D.range(5).batch(0)),
    ("padded_batch_size_0", lambda: D.range(1, 3).map(fill_x).padded_batch(0)),
    ("shard_index_equals_num_shards", lambda: D.range(5).shard(3, 3)),
    ("shard_num_shards_0", lambda: D.range(5).shard(0, 0)),
    ("window_size_0", lambda: D.range(5).window(0)),
    ("window_shift_0", lambda: D.range(5).window(2, shift=0)),
    ("window_stride_0", lambda: D.range(5).window(2, stride=0)),
    ("shuffle_buffer_0", lambda: D.range(5).shuffle(0)),
    ("range_step_0", lambda: D.range(0, 5, 0)),
    ("slices_different_sizes", lambda: D.from_tensor_slices((i64(1, 2), i64(1, 2, 3)))),
    ("slices_scalar", lambda: D.from_tensor_slices(np.int64(3))),
    ("unbatch_scalars", lambda: D.range(3).unbatch()),
    ("rebatch_size_0", lambda: D.range(8).batch(4).rebatch(0)),
    ("concatenate_structures", lambda: D.range(3).concatenate(D.zip((D.range(3), D.range(3))))),
    (
        "concatenate_dtypes",
        lambda: D.range(3).concatenate(D.from_tensor_slices(np.array([1.0], np.float32))),
    ),
    (
        "interleave_cycle_length_0",
        lambda: D.range(3).interleave(lambda x: D.range(x), cycle_length=0, block_length=1),
    ),
    (
        "interleave_block_length_0",
        lambda: D.range(3).interleave(lambda x: D.range(x), cycle_length=1, block_length=0),
    ),
    (
        "group_by_window_both_sizes",
        lambda: D.range(3).group_by_window(
            lambda x: x % 2, lambda k, w: w.batch(2), window_size=2,
            window_size_func=lambda k: tf.constant(2, tf.int64),
        ),
    ),
    (
        "group_by_window_no_size",
        lambda: D.range(3).group_by_window(lambda x: x % 2, lambda k, w: w.batch(2)),
    ),
    (
        "bucket_sizes_mismatch",
        lambda: seqs().bucket_by_sequence_length(seq_len, [3], [2, 2, 2]),
    ),
    ("unique_float", lambda: D.from_tensor_slices(np.array([1.0], np.float32)).unique()),
    (
        "padded_shape_too_small",
        lambda: D.from_tensor_slices(np.zeros((4, 3), np.int64)).padded_batch(
            2, padded_shapes=[2]
        ),
    ),
    (
        "padded_shape_wrong_rank",
        lambda: D.from_tensor_slices(np.zeros((4, 3), np.int64)).padded_batch(
            2, padded_shapes=[3, 1]
        ),
    ),
    (
        "padding_value_wrong_dtype",
        lambda: D.range(1, 3).map(fill_x).padded_batch(2, padding_values=np.float32(1.0)),
    ),
    (
        "choose_float_choices",
        lambda: D.choose_from_datasets(
            [D.range(3)], D.from_tensor_slices(np.array([0.0], np.float32))
        ),
    ),
    (
        "sample_weights_length",
        lambda: D.sample_from_datasets([D.range(3), D.range(3)], weights=[1.0, 1.0, 1.0]),
    ),
]


# ---------------------------------------------------------------- running


def run_case(c):
    if os.environ.get("GOLDEN_VERBOSE"):
        print(c["id"], file=sys.stderr, flush=True)
    ds = c["build"]()
    out = {"id": c["id"]}
    if c["elements"]:
        it = ds.as_numpy_iterator()
        if c["limit"] is not None:
            it = itertools.islice(it, c["limit"])
        out["elements"] = [show(e) for e in it]
    else:
        out["elements"] = None
    out["limit"] = c["limit"]
    out["order"] = c["order"]
    out["cardinality"] = int(ds.cardinality())
    out["element_spec"] = spec_str(ds.element_spec)
    return out


def run_invalid(case_id, build):
    try:
        build()
    except Exception as e:  # noqa: BLE001 - recording what tf.data raises is the point
        message = str(e).strip().splitlines()[0] if str(e).strip() else ""
        # Eager op errors carry the op's function name and device around the message.
        message = re.sub(r"^\{\{function_node [^}]*\}\}\s*", "", message)
        message = re.sub(r"\s*\[Op:\w+\]( name:)?$", "", message)
        return {"id": case_id, "raises": True, "exception": type(e).__name__,
                "message": message[:200]}
    return {"id": case_id, "raises": False, "exception": None, "message": None}


def main():
    ids = [c["id"] for c in CASES] + [i for i, _ in INVALID]
    dupes = {i for i in ids if ids.count(i) > 1}
    if dupes:
        sys.exit(f"duplicate ids: {sorted(dupes)}")
    golden = {
        "generator": "tests/tfdata_golden/make_golden.py",
        "tensorflow": tf.__version__,
        "numpy": np.__version__,
        "cases": [run_case(c) for c in CASES],
        "invalid": [run_invalid(i, b) for i, b in INVALID],
    }
    with open(OUT, "w") as f:
        json.dump(golden, f, indent=1)
        f.write("\n")
    n_raise = sum(r["raises"] for r in golden["invalid"])
    print(f"wrote {OUT}: {len(golden['cases'])} cases, {len(INVALID)} invalid-argument "
          f"checks ({n_raise} raise in tf.data)")


if __name__ == "__main__":
    main()

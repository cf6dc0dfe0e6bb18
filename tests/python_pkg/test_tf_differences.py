"""Behaviours where npyflow differed from tf.data (issue 17), checked against what TensorFlow
2.21 gives for the same programs (the expected values below were recorded from it; the
programs are the tests' own, written for npyflow's API, which is tf.data's)."""

import collections
import os
import threading

import numpy as np
import pytest

import npyflow as tf

D = tf.data.Dataset


def values(ds):
    return [np.asarray(x).tolist() for x in ds.as_numpy_iterator()]


# ---- rebatch ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "n, batch, sizes, drop, expected",
    [
        # Recorded from TensorFlow 2.21: zero sizes give empty batches until the input is
        # found to have ended.
        (4, 4, [1, 1, 1, 1, 0], False, [[0], [1], [2], [3], []]),
        (4, 4, [1, 1, 1, 1, 0], True, [[0], [1], [2], [3], []]),
        (8, 4, [0, 2], False, [[], [0, 1], [], [2, 3], [], [4, 5], [], [6, 7], []]),
        (8, 4, [2, 0], False, [[0, 1], [], [2, 3], [], [4, 5], [], [6, 7], []]),
        (5, 2, [3, 0], True, [[0, 1, 2], []]),
        (5, 2, [3, 0], False, [[0, 1, 2], [], [3, 4]]),
        (0, 2, [0, 1], False, [[]]),
        (4, 2, [0, 3], True, [[], [0, 1, 2], []]),
    ],
)
def test_rebatch_zero_sizes_give_empty_batches(n, batch, sizes, drop, expected):
    assert values(D.range(n).batch(batch).rebatch(sizes, drop_remainder=drop)) == expected


@pytest.mark.parametrize(
    "batch, sizes, drop, dim",
    [
        # TensorFlow 2.21's static batch dimension of rebatch.
        (4, [2], False, 2),
        (4, [2, 2], False, 2),
        (4, [4], False, 4),
        (4, [3], False, None),
        (4, [8], False, None),
        (4, [1, 3], False, None),
        (4, [2], True, 2),
        (4, [3], True, 3),
        (None, [2], False, None),
    ],
)
def test_rebatch_static_batch_dimension(batch, sizes, drop, dim):
    base = D.range(8).batch(4, drop_remainder=True) if batch else D.range(8).batch(3)
    assert base.rebatch(sizes, drop_remainder=drop).element_spec.shape == (dim,)


def test_rebatch_all_zero_sizes_is_refused():
    # tf.data yields empty batches forever; npyflow refuses it when the dataset is made.
    with pytest.raises(ValueError, match="at least one batch size"):
        D.range(4).batch(2).rebatch([0, 0])


# ---- scan ----------------------------------------------------------------------------------


def test_scan_relaxes_a_state_whose_shape_changes():
    # tf.data retraces with the state's shape relaxed: (1,) then (None,).
    ds = D.range(3).scan(np.zeros([1]), lambda s, x: (np.concatenate([s, [x]]), s))
    assert ds.element_spec.shape == (None,)
    assert [len(x) for x in ds.as_numpy_iterator()] == [1, 2, 3]


def test_scan_state_of_another_dtype_is_a_type_error():
    with pytest.raises(TypeError, match="structure and dtypes of the initial state"):
        D.range(3).scan(np.int64(0), lambda s, x: (np.float32(1.0), x))


# ---- padded_batch arguments ---------------------------------------------------------------


def lengths():
    return D.range(1, 4).map(lambda x: np.full([x], x))


def test_padded_shape_below_minus_one_is_a_value_error():
    with pytest.raises(ValueError, match="Dimension -5 must be >= 0"):
        lengths().padded_batch(2, padded_shapes=[-5])


def test_padded_shape_of_floats_is_a_type_error():
    # npyflow used to truncate 3.5 to 3.
    with pytest.raises(TypeError, match="must be a vector of ints"):
        lengths().padded_batch(2, padded_shapes=[3.5])


def test_padded_shape_of_another_rank_is_a_value_error():
    with pytest.raises(ValueError, match="not compatible with the shape"):
        lengths().padded_batch(2, padded_shapes=[4, 4])


def test_padded_shapes_accepted_as_tf_does():
    assert values(lengths().padded_batch(2, padded_shapes=5)) == [
        [[1, 0, 0, 0, 0], [2, 2, 0, 0, 0]],
        [[3, 3, 3, 0, 0]],
    ]
    for shape in ([-1], [None]):
        assert lengths().padded_batch(2, padded_shapes=shape).element_spec.shape == (None, None)
    assert lengths().padded_batch(2, padded_shapes=[np.int64(4)]).element_spec.shape == (None, 4)


def test_unknown_rank_needs_padded_shapes():
    spec = tf.TensorSpec(None, np.float64)
    ds = D.from_generator(lambda: iter([np.zeros(2)]), output_signature=spec)
    with pytest.raises(ValueError, match="must provide `padded_shapes`"):
        ds.padded_batch(2)
    assert ds.padded_batch(2, padded_shapes=[3]).element_spec.shape == (None, 3)


# ---- sample_from_datasets ------------------------------------------------------------------


def test_sample_weights_must_be_floats():
    with pytest.raises(TypeError, match="float32 or float64"):
        D.sample_from_datasets([D.range(2), D.range(2)], weights=[1, 2])
    with pytest.raises(ValueError, match="same length"):
        D.sample_from_datasets([D.range(2), D.range(2)], weights=[0.5, 0.5, 0.5])


def test_sample_weights_as_a_dataset():
    a, b = D.range(0, 100), D.range(100, 200)
    # All weight on one input, then on the other: the draws must follow the weights.
    w = D.from_tensors(np.array([1.0, 0.0])).repeat(5).concatenate(
        D.from_tensors(np.array([0.0, 1.0])).repeat(5)
    )
    got = values(D.sample_from_datasets([a, b], weights=w, seed=4))
    assert got == list(range(5)) + list(range(100, 105))
    # Even weights: both inputs are drawn from, every element once, in each input's order.
    even = D.from_tensors(np.array([0.5, 0.5], np.float32)).repeat()
    out = values(D.sample_from_datasets([D.range(50), D.range(50, 100)], weights=even, seed=1))
    assert sorted(out) == list(range(100))
    assert [x for x in out if x < 50] == list(range(50))
    with pytest.raises(TypeError, match="float32 or float64"):
        D.sample_from_datasets([a, b], weights=D.from_tensors(np.array([1, 1])))


@pytest.mark.parametrize("rerandomize", [None, False])
@pytest.mark.parametrize("seed", [3, None])
def test_sample_repeats_its_order_each_pass_unless_rerandomized(seed, rerandomize):
    # TensorFlow 2.21: with rerandomize_each_iteration unset or False every pass (and every
    # repetition) draws the same sequence, with a seed or without.
    ds = D.sample_from_datasets(
        [D.range(10), D.range(10, 20)], seed=seed, rerandomize_each_iteration=rerandomize
    )
    assert values(ds) == values(ds)
    twice = values(ds.repeat(2))
    assert twice[:20] == twice[20:]


def test_sample_rerandomized_draws_anew_each_pass():
    ds = D.sample_from_datasets(
        [D.range(10), D.range(10, 20)], seed=3, rerandomize_each_iteration=True
    )
    passes = [tuple(values(ds)) for _ in range(4)]
    assert len(set(passes)) > 1
    assert all(sorted(p) == list(range(20)) for p in passes)


# ---- iterators shared by threads ------------------------------------------------------------


@pytest.mark.parametrize("prefetch", [False, True])
def test_next_from_several_threads_takes_turns(prefetch):
    # tf.data's iterators are safe to share: every element is given to exactly one caller.
    ds = D.range(4000).map(lambda x: x + 1)
    if prefetch:
        ds = ds.prefetch(4)
    it = iter(ds)
    got, errors = [], []

    def read():
        try:
            for x in it:
                got.append(int(x))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=read) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    assert sorted(got) == list(range(1, 4001))


def test_next_from_inside_its_own_pipeline_is_refused():
    holder = {}

    def reenter(x):
        next(holder["it"])
        return x

    holder["it"] = iter(D.range(3).map(reenter, output_signature=tf.TensorSpec((), np.int64)))
    with pytest.raises(RuntimeError, match="already running on this thread"):
        next(holder["it"])


# ---- cardinality -----------------------------------------------------------------------------


def test_parallel_interleave_of_an_infinite_input_is_infinite():
    # TensorFlow 2.21: -1 with num_parallel_calls, -2 (unknown) without.
    make = lambda x: D.range(2)  # noqa: E731
    assert D.range(3).repeat().interleave(make, num_parallel_calls=2).cardinality() == -1
    assert D.range(3).repeat().interleave(make, cycle_length=2).cardinality() == -2
    assert D.range(3).interleave(make, num_parallel_calls=2).cardinality() == -2


# ---- cache -----------------------------------------------------------------------------------


def test_a_second_writer_of_a_cache_file_is_refused(tmp_path):
    path = str(tmp_path / "cache")
    first = iter(D.range(4).cache(path))
    assert next(first) == 0
    with pytest.raises(FileExistsError, match="another iterator is writing"):
        next(iter(D.range(4).cache(path)))
    assert [int(x) for x in first] == [1, 2, 3]
    # Once the first pass is complete, readers replay the file.
    assert values(D.range(0).cache(path)) == [0, 1, 2, 3]


@pytest.mark.parametrize("in_file", [False, True])
def test_cache_read_in_full_without_reaching_the_end_is_complete(tmp_path, in_file):
    # tf.data's testCacheKnownCardinality: a shuffled input read in full (but not past its
    # end) is cached: the next pass replays the same order.
    ds = D.range(10).shuffle(10, reshuffle_each_iteration=True)
    ds = ds.cache(str(tmp_path / "c") if in_file else "")
    it = iter(ds)
    first = [int(next(it)) for _ in range(10)]
    it = iter(ds)
    assert [int(next(it)) for _ in range(10)] == first
    if in_file:
        assert os.path.exists(tmp_path / "c")


# ---- errors ----------------------------------------------------------------------------------


def test_a_missing_file_is_named_once_as_python_does(tmp_path):
    path = str(tmp_path / "nope.npy")
    for read in (D.from_npy, tf.load):
        with pytest.raises(FileNotFoundError) as e:
            read(path)
        text = str(e.value)
        assert "os error" not in text
        assert text.count("nope.npy") == 1, text
        assert e.value.filename == path


def test_a_directory_is_an_is_a_directory_error(tmp_path):
    with pytest.raises(IsADirectoryError):
        D.from_npy(str(tmp_path))


def test_from_npy_on_an_npz_says_to_use_from_npz(tmp_path):
    path = str(tmp_path / "a.npz")
    np.savez(path, x=np.zeros(3))
    with pytest.raises(ValueError, match="use from_npz|read it with from_npz"):
        D.from_npy(path)


def test_a_damaged_header_gives_no_advice_about_max_header_size(tmp_path):
    path = str(tmp_path / "bad.npy")
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00\xff\xffgarbage" + b"x" * 100)
    for read in (D.from_npy, tf.load):
        with pytest.raises(ValueError) as e:
            read(path)
        assert "max_header_size" not in str(e.value)
        assert "damaged" in str(e.value)
        assert str(e.value).count("bad.npy") == 1, str(e.value)


def test_components_are_named_as_python_names_them():
    from npyflow import ops

    with pytest.raises(ValueError) as e:
        D.from_tensor_slices((np.zeros(3),)).map(ops.cast(np.float32, component=2))
    assert "Index(" not in str(e.value) and "2 (a tuple index)" in str(e.value)
    with pytest.raises(ValueError) as e:
        D.from_tensor_slices({"a": np.zeros(3)}).map(ops.cast(np.float32, component="image"))
    assert 'Key("' not in str(e.value) and "'image' (a dict key)" in str(e.value)


@pytest.mark.parametrize("value", [2**63, 2**64])
def test_an_int_out_of_int64_names_the_argument(value):
    # TensorFlow raises ValueError (an out-of-range integer); npyflow's names the argument.
    with pytest.raises(ValueError, match="buffer_size"):
        D.range(3).shuffle(value)


def test_batch_errors_name_the_component():
    # TensorFlow 2.21: InvalidArgumentError "Cannot batch tensors with different shapes in
    # component 1. ..."; npyflow names the component as Python indexes the element (a dict
    # key by its key, where TF gives its place in the flattened structure).
    def gen():
        yield (np.zeros(2), np.zeros(3))
        yield (np.zeros(2), np.zeros(4))

    sig = (tf.TensorSpec([2], tf.float64), tf.TensorSpec([None], tf.float64))
    with pytest.raises(ValueError, match=r"^component 1: cannot batch .* element 1 is float64 \[4\]"):
        list(D.from_generator(gen, output_signature=sig).batch(2))
    rows = D.from_tensor_slices({"label": [1, 2], "n": [3, 4]})
    ds = D.zip((rows, rows)).map(lambda a, b: (a, {"label": a["label"], "image": np.zeros(int(b["n"]))}))
    with pytest.raises(ValueError, match=r"^component \[1\]\['image'\]: cannot batch"):
        list(ds.batch(2))
    # padded_batch: an element longer than its padded shape.
    padded = D.range(1, 4).map(lambda x: {"image": np.zeros(x)}).padded_batch(3, padded_shapes={"image": [2]})
    with pytest.raises(ValueError, match=r"^component 'image': "):
        list(padded)


def test_from_tensor_slices_sizes_name_the_components():
    with pytest.raises(ValueError, match="component 'image' has 3, component 'label' has 4"):
        D.from_tensor_slices({"image": np.zeros((3, 2)), "label": np.arange(4)})
    with pytest.raises(ValueError, match="component 0 has 3, component 1 has 4"):
        D.from_tensor_slices((np.zeros((3, 2)), np.arange(4)))


def test_a_map_result_that_does_not_fit_names_the_component_and_the_python_argument():
    sig = (tf.TensorSpec([], tf.int64), tf.TensorSpec([1], tf.float64))
    ds = D.range(3).map(lambda x: (x, np.zeros(int(x))), output_signature=sig)
    with pytest.raises(ValueError) as e:
        list(ds)
    text = str(e.value)
    assert "component 1 is TensorSpec(shape=(0,), dtype=float64)" in text, text
    assert "output_signature=" in text, text


def test_a_cache_in_a_missing_directory_names_the_cache_file(tmp_path):
    path = str(tmp_path / "no" / "dir" / "cache")
    with pytest.raises(FileNotFoundError) as e:
        list(D.range(3).cache(path))
    assert e.value.filename == path
    assert str(e.value) == f"[Errno 2] No such file or directory: {path!r}", str(e.value)
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError):
        list(D.range(3).cache(str(tmp_path / "file" / "cache")))


# ---- datasets as elements, and None components ------------------------------------------


def ints(ds):
    return [int(x) for x in ds]


def test_from_tensor_slices_of_a_list_of_datasets():
    # tf.data's testFromTensorSlicesDataset and ...DatasetOfOrderedDict.
    assert ints(D.from_tensor_slices([D.range(10) for _ in range(3)]).flat_map(lambda d: d)) == (
        list(range(10)) * 3
    )
    dss = [D.range(3).map(lambda x: {"x": x}) for _ in range(2)]
    got = list(D.from_tensor_slices(dss).flat_map(lambda d: d).as_numpy_iterator())
    assert got == [{"x": x} for x in [0, 1, 2, 0, 1, 2]]
    spec = D.from_tensor_slices({"a": [D.range(2)], "b": [D.range(3)]}).element_spec
    assert set(spec) == {"a", "b"} and all(isinstance(s, tf.data.DatasetSpec) for s in spec.values())
    with pytest.raises(ValueError, match="same size"):
        D.from_tensor_slices(([D.range(2)], [1, 2]))


def test_batches_of_datasets_unbatch_back():
    # tf.data's batch_test testDataset and unbatch_test testUnbatchNestedDataset.
    ds = D.range(10).map(lambda i: D.from_tensors(i)).batch(5).map(lambda x: x)
    assert ints(ds.unbatch().flat_map(lambda d: d)) == list(range(10))
    nested = D.from_tensors([D.range(10) for _ in range(4)])
    assert ints(nested.unbatch().flat_map(lambda d: d)) == list(range(10)) * 4
    # testFromTensorSlicesDatasetInFunction: a batch of datasets sliced inside flat_map.
    inner = D.from_tensors([D.range(10) for _ in range(3)]).flat_map(D.from_tensor_slices)
    assert ints(inner.flat_map(lambda d: d)) == list(range(10)) * 3
    # A window is not a batch of datasets: unbatching it is refused (flat_map it).
    with pytest.raises(ValueError, match="not a batch of datasets"):
        D.range(4).window(2).unbatch()


def test_none_components_are_empty_structure():
    # tf.data's batch_test / unbatch_test testNoneComponent.
    batched = D.range(10).map(lambda x: (x, None)).batch(10).map(lambda x, y: x)
    assert values(batched) == [list(range(10))]
    unbatched = D.from_tensors((list(range(10)), None)).unbatch().map(lambda x, y: x)
    assert values(unbatched) == list(range(10))
    assert list(D.from_tensor_slices(([1, 2], None)).as_numpy_iterator()) == [(1, None), (2, None)]
    spec = D.from_tensors((np.int64(1), None)).element_spec
    assert spec[1] is None
    padded = D.range(3).map(lambda x: (np.full([x], x), None)).padded_batch(3)
    assert [(x.tolist(), y) for x, y in padded.as_numpy_iterator()] == [
        ([[0, 0], [1, 0], [2, 2]], None)
    ]


# ---- namedtuples ----------------------------------------------------------------------------

Foo = collections.namedtuple("Foo", ["x", "y"])


def test_zip_of_a_namedtuple_gives_namedtuples():
    # tf.data's zip_test testNamedTuple, and what TensorFlow 2.21 gives around it.
    ds = D.zip(Foo(x=D.range(3), y=D.range(3, 6)))
    assert list(ds.as_numpy_iterator()) == [Foo(0, 3), Foo(1, 4), Foo(2, 5)]
    assert all(type(e) is Foo for e in ds)
    assert type(ds.element_spec) is Foo and ds.element_spec.x.dtype == np.int64
    # A namedtuple element is one argument, as in tf.data (two-argument functions fail).
    assert values(ds.map(lambda e: e.x + e.y)) == [3, 5, 7]
    with pytest.raises(TypeError):
        ds.map(lambda a, b: a + b)
    batched = list(ds.batch(2).as_numpy_iterator())
    assert [type(b) for b in batched] == [Foo, Foo]
    assert [(b.x.tolist(), b.y.tolist()) for b in batched] == [([0, 1], [3, 4]), ([2], [5])]


def test_namedtuples_from_functions_and_sources_are_kept():
    made = D.range(3).map(lambda x: Foo(x, x * 2))
    assert list(made.filter(lambda e: e.x > 0).as_numpy_iterator()) == [Foo(1, 2), Foo(2, 4)]
    assert list(D.from_tensor_slices(Foo([1, 2], [3, 4])).as_numpy_iterator()) == [
        Foo(1, 3),
        Foo(2, 4),
    ]
    assert list(D.range(2).map(lambda x: Foo(x, x)).enumerate().as_numpy_iterator()) == [
        (0, Foo(0, 0)),
        (1, Foo(1, 1)),
    ]
    assert made.reduce(np.int64(0), lambda s, e: s + e.y) == 6
    flat = D.range(2).flat_map(lambda x: D.zip(Foo(D.range(2), D.range(2))))
    assert [type(e) for e in flat] == [Foo] * 4
    # Saved and restored, the iterator goes on with namedtuples.
    it = made.as_numpy_iterator()
    next(it)
    again = made.as_numpy_iterator()
    again.set_state(it.get_state())
    assert list(again) == [Foo(1, 2), Foo(2, 4)]


# ---- found by the ports of map_test.py and shuffle_test.py -----------------------------


@pytest.mark.parametrize("buffer_size", [0, -1, -3])
def test_shuffle_refuses_sizes_that_are_neither_positive_nor_unknown(buffer_size):
    # TensorFlow 2.21: InvalidArgumentError "buffer_size must be greater than zero or
    # UNKNOWN_CARDINALITY"; -2 (UNKNOWN_CARDINALITY) buffers the whole input.
    with pytest.raises(ValueError, match="greater than zero or UNKNOWN_CARDINALITY"):
        D.range(5).shuffle(buffer_size)
    assert sorted(values(D.range(5).shuffle(tf.data.UNKNOWN_CARDINALITY))) == [0, 1, 2, 3, 4]


def test_a_counted_repeat_goes_through_empty_passes():
    # TensorFlow 2.21: [0, 0, 1] (pass 5 yields one element, pass 8 two); an endless repeat
    # still ends at an empty pass, and a repeat of an input known to be empty ends at once.
    sizes = iter([0, 0, 0, 0, 1, 0, 0, 2, 0, 0, 0, 0])

    def gen():
        yield from range(next(sizes))

    ds = D.from_generator(gen, output_signature=tf.TensorSpec((), tf.int64))
    assert values(ds.repeat(12).take(3)) == [0, 0, 1]
    assert values(D.range(0).repeat(10**15)) == []


def test_map_takes_synchronous_and_use_unbounded_threadpool():
    assert values(D.range(3).map(lambda x: x + 1, None, None, True, True)) == [1, 2, 3]
    # TensorFlow 2.21: ValueError "`synchronous` is not supported with `num_parallel_calls`".
    with pytest.raises(ValueError, match="synchronous"):
        D.range(3).map(lambda x: x, num_parallel_calls=2, synchronous=True)


def test_prefetch_over_random_access_reads_its_buffer_ahead():
    made = []
    done = threading.Event()

    def f(x):
        made.append(int(x))
        if len(made) >= 9:
            done.set()
        return x

    ds = D.range(100).map(f, trace=False, output_signature=tf.TensorSpec([], tf.int64)).prefetch(8)
    it = iter(ds)
    assert next(it) == 0
    assert done.wait(30), made  # elements 1..8 are made ahead of the consumer


def test_assert_cardinality_keeps_random_access():
    ds = D.range(10).map(lambda x: x * 2).assert_cardinality(10).global_shuffle(seed=1)
    assert sorted(values(ds)) == list(range(0, 20, 2))
    with pytest.raises(ValueError, match="random access|random-access"):
        D.range(10).assert_cardinality(11).global_shuffle()

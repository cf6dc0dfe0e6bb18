"""Errors are Python's own exceptions, raised on tf.data's conditions; an exception raised in
a user function arrives at its element, with its type and traceback, and the pass goes on."""

import traceback

import numpy as np
import pytest

import npyflow as tfd


class LabelError(Exception):
    pass


@pytest.mark.parametrize(
    "make",
    [
        lambda: tfd.Dataset.range(5).batch(0),
        lambda: tfd.Dataset.range(5).batch(-1),
        lambda: tfd.Dataset.range(5).padded_batch(0),
        lambda: tfd.Dataset.range(5).shard(3, 3),
        lambda: tfd.Dataset.range(5).shard(0, 0),
        lambda: tfd.Dataset.range(5).shard(2, -1),
        lambda: tfd.Dataset.range(5).window(0),
        lambda: tfd.Dataset.range(5).shuffle(0),
        lambda: tfd.Dataset.range(5).prefetch(-5),
        lambda: tfd.Dataset.range(5).rebatch(0),
        lambda: tfd.Dataset.range(0, 5, 0),
        lambda: tfd.Dataset.range(5).interleave(lambda x: tfd.Dataset.range(1), cycle_length=0),
        lambda: tfd.Dataset.from_tensor_slices((np.zeros(3), np.zeros(4))),
        lambda: tfd.Dataset.from_tensor_slices(np.float64(1.0)),
        lambda: tfd.Dataset.range(5).unbatch(),
        lambda: tfd.Dataset.range(5).group_by_window(lambda x: x, lambda k, w: w, window_size=0),
        lambda: tfd.Dataset.sample_from_datasets([tfd.Dataset.range(1)], weights=[0.5, 0.5]),
    ],
)
def test_invalid_arguments_are_value_errors(make):
    with pytest.raises(ValueError):
        make()


def test_type_errors():
    with pytest.raises(TypeError):
        tfd.Dataset.range(5).concatenate(tfd.Dataset.range(5).map(lambda x: np.float32(x)))
    with pytest.raises(TypeError):
        tfd.Dataset.sample_from_datasets([tfd.Dataset.range(2), tfd.Dataset.from_tensors(1.0)])
    with pytest.raises(TypeError):
        tfd.Dataset.range(1, 2, 3, 4)
    with pytest.raises(TypeError):
        tfd.Dataset.range(2.5)
    with pytest.raises(TypeError):
        tfd.Dataset.range(5).batch("2")
    with pytest.raises(TypeError):
        tfd.Dataset()
    with pytest.raises(TypeError):
        tfd.Dataset.from_tensor_slices({1: np.zeros(2)})
    with pytest.raises(TypeError, match="scalar bool"):
        list(tfd.Dataset.range(3).filter(lambda x: x))


def test_a_user_exception_arrives_at_its_element_with_its_type_and_the_pass_goes_on():
    def check(x):
        if x == 2:
            raise LabelError(f"label {int(x)} is out of range")
        return x * 10

    it = iter(tfd.Dataset.range(5).map(check))
    assert [int(next(it)), int(next(it))] == [0, 10]
    with pytest.raises(LabelError, match="label 2 is out of range") as info:
        next(it)
    # The traceback reaches into the user's function.
    frames = [f.name for f in traceback.extract_tb(info.value.__traceback__)]
    assert "check" in frames
    notes = getattr(info.value, "__notes__", [])
    if notes:  # Python 3.11 and later say where in the pipeline it happened
        assert "map: element 2" in notes[0]
    assert [int(v) for v in it] == [30, 40]


def test_user_exceptions_of_every_kind_keep_their_type():
    for exc in (KeyError("k"), IndexError("i"), ZeroDivisionError("z"), RuntimeError("r")):

        def f(x, exc=exc):
            raise exc

        with pytest.raises(type(exc)):
            list(tfd.Dataset.range(1).map(f, output_signature=tfd.TensorSpec((), np.int64)))


def test_an_error_in_a_batch_takes_the_batch_and_the_next_batches_follow():
    def f(x):
        if x == 4:
            raise LabelError("four")
        return x

    it = iter(tfd.Dataset.range(9).map(f).batch(3))
    assert next(it).tolist() == [0, 1, 2]
    with pytest.raises(LabelError):
        next(it)
    assert next(it).tolist() == [6, 7, 8]
    with pytest.raises(StopIteration):
        next(it)


def test_errors_in_filter_generator_and_flat_map_functions():
    def pred(x):
        raise LabelError("pred")

    with pytest.raises(LabelError):
        list(tfd.Dataset.range(2).filter(pred))

    def gen():
        yield 1
        raise LabelError("gen")

    ds = tfd.Dataset.from_generator(gen, output_signature=tfd.TensorSpec((), np.int64))
    it = iter(ds)
    assert next(it) == 1
    with pytest.raises(LabelError):
        next(it)
    with pytest.raises(TypeError, match="must return a Dataset"):
        list(tfd.Dataset.range(2).flat_map(lambda x: x))


def test_a_function_that_fails_on_the_first_elements_raises_its_own_exception_when_made():
    with pytest.raises(KeyError) as info:
        tfd.Dataset.range(3).map(lambda x: {0: "a"}[int(x) + 5])
    notes = getattr(info.value, "__notes__", [])
    if notes:
        assert "first elements" in notes[-1] and "output_signature" in notes[-1]
    # Declared, the function runs on real elements only, when they are read.
    ds = tfd.Dataset.range(3).map(
        lambda x: {5: "a", 6: "b", 7: "c"}[int(x) + 5], output_signature=tfd.TensorSpec((), "S1")
    )
    assert list(ds) == [b"a", b"b", b"c"]
    # A result that does not fit the structure of the first element's is an error at its
    # place.
    mixed = tfd.Dataset.range(3).map(lambda x: x if x == 0 else (x, x))
    with pytest.raises(ValueError, match="does not fit the spec"):
        list(mixed)


def test_run_time_pipeline_errors_are_value_errors():
    ragged = tfd.Dataset.range(1, 4).map(lambda n: np.zeros(int(n)))
    with pytest.raises(ValueError):
        list(ragged.batch(3))
    bad_shape = tfd.Dataset.from_generator(
        lambda: iter([np.zeros(2), np.zeros(3)]), output_signature=tfd.TensorSpec((2,), np.float64)
    )
    it = iter(bad_shape)
    next(it)
    with pytest.raises(ValueError):
        next(it)


def test_missing_files_are_os_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        tfd.Dataset.from_npy(tmp_path / "missing.npy")
    with pytest.raises(OSError):
        tfd.load(tmp_path / "missing.npz")
    with pytest.raises(ValueError, match="no files matched"):
        tfd.Dataset.list_files(str(tmp_path / "*.nothing"))


def test_a_malformed_file_is_a_value_error(tmp_path):
    p = tmp_path / "bad.npy"
    p.write_bytes(b"\x93NUMPY\x01\x00\x10\x00{'descr': '<f4'}   \n")
    with pytest.raises(ValueError):
        tfd.load(p)


def test_generator_structure_and_type_mismatches_are_type_errors():
    sig = (tfd.TensorSpec((), np.int64), tfd.TensorSpec((), np.int64))
    ds = tfd.Dataset.from_generator(lambda: iter([(1, 2), 3]), output_signature=sig)
    it = iter(ds)
    assert next(it) == (1, 2)
    with pytest.raises(TypeError, match="expected structure"):
        next(it)
    ds = tfd.Dataset.from_generator(lambda: iter(["x"]), output_signature=tfd.TensorSpec((), np.int64))
    with pytest.raises(TypeError, match="could not be converted"):
        list(ds)


def test_stop_iteration_in_a_function_does_not_end_the_loop_silently():
    def f(x):
        if x == 1:
            raise StopIteration
        return x

    it = iter(tfd.Dataset.range(3).map(f, output_signature=tfd.TensorSpec((), np.int64)))
    assert next(it) == 0
    with pytest.raises(RuntimeError, match="StopIteration") as info:
        next(it)
    assert isinstance(info.value.__cause__, StopIteration)
    assert next(it) == 2


def _interleave(**kw):
    return tfd.Dataset.range(2).interleave(lambda x: tfd.Dataset.range(1), **kw)


@pytest.mark.parametrize(
    "make",
    [
        lambda **kw: tfd.Dataset.range(4).map(lambda v: v, **kw),
        lambda **kw: tfd.Dataset.range(4).map(tfd.ops.cast("float32"), **kw),
        lambda **kw: tfd.Dataset.range(4).batch(2, **kw),
        _interleave,
    ],
    ids=["map", "map_op", "batch", "interleave"],
)
def test_parallelism_arguments_are_checked_alike_by_every_transformation(make):
    for n in (1, 3, tfd.AUTOTUNE, np.int64(2)):
        make(num_parallel_calls=n, deterministic=False)
    for n in (0, -2):
        with pytest.raises(ValueError, match=r"num_parallel_calls must be positive or AUTOTUNE \(-1\)"):
            make(num_parallel_calls=n)
    for n in (True, "4", 2.0, np.bool_(True)):
        with pytest.raises(TypeError):
            make(num_parallel_calls=n)
    for d in ("yes", 1):
        with pytest.raises(TypeError):
            make(num_parallel_calls=2, deterministic=d)


def test_savez_refuses_a_keyword_named_like_a_positional_array_and_writes_nothing(tmp_path):
    path = tmp_path / "a.npz"
    path.write_bytes(b"kept")
    with pytest.raises(ValueError, match="arr_0"):
        tfd.savez(path, np.zeros(2), arr_0=np.ones(2))
    assert path.read_bytes() == b"kept"

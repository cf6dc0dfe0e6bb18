"""tf.data's names that npyflow added for tf.data code (issue 13): ``get_single_element``,
``Options`` / ``options()`` / ``with_options``, ``ragged_batch``, ``Dataset.random``,
``assert_cardinality`` and the ``tf.data.experimental`` aliases. What TensorFlow 2.21 prints
for the same programs is recorded in tests/tf_names/stdout.json (``data_*`` programs,
compared by test_tf_names.py); these tests check npyflow's side: error types, warnings,
state, and where npyflow differs."""

import warnings

import numpy as np
import pytest

import npyflow as tf
from npyflow import _options

D = tf.data.Dataset
E = tf.data.experimental


def test_get_single_element_gives_iterations_value_and_tfs_errors():
    v = D.range(5).filter(lambda x: x == 3).get_single_element()
    assert v == 3 and v.numpy() == 3 and type(v.numpy()) is np.int64
    d = D.from_tensors({"a": np.arange(3), "b": b"x"}).get_single_element()
    assert d["a"].numpy().tolist() == [0, 1, 2] and d["b"].numpy() == b"x"
    with pytest.raises(ValueError, match=r"^Dataset was empty\.$"):
        D.range(0).get_single_element()
    with pytest.raises(ValueError, match=r"^Dataset had more than one element\.$"):
        D.range(2).get_single_element()
    # it reads at most two elements: an infinite dataset is refused, not read forever
    with pytest.raises(ValueError, match="more than one"):
        D.range(3).repeat().get_single_element()
    assert E.get_single_element(D.range(1)) == 0
    with pytest.raises(TypeError):
        E.get_single_element([1])


def test_options_check_attributes_and_types_as_tf_does():
    o = tf.data.Options()
    assert o.deterministic is None and o.autotune.enabled is None
    assert o.experimental_distribute.auto_shard_policy == E.AutoShardPolicy.AUTO
    o.autotune.cpu_budget = 2
    o.autotune.ram_budget = 1 << 30
    o.threading.max_intra_op_parallelism = 1
    o.experimental_optimization.map_parallelization = True
    o.experimental_optimization.map_fusion = True
    with pytest.raises(AttributeError, match="^Cannot set the property foo on Options.$"):
        o.foo = 1
    with pytest.raises(AttributeError, match="Cannot set the property bar on AutotuneOptions"):
        o.autotune.bar = 1
    with pytest.raises(TypeError, match='Property "deterministic" must be of type'):
        o.deterministic = 1
    with pytest.raises(TypeError, match='Property "cpu_budget" must be of type'):
        o.autotune.cpu_budget = True
    assert o.ignored_options() == [
        "experimental_optimization.map_fusion",
        "threading.max_intra_op_parallelism",
    ]
    o.experimental_deterministic = False  # tf.data's old names stand for the new ones
    assert o.deterministic is False and "deterministic" not in o.ignored_options()
    o.experimental_threading.private_threadpool_size = 3
    assert o.threading.private_threadpool_size == 3 and o.experimental_threading is o.threading
    o.threading.private_threadpool_size = None
    assert tf.data.Options() == tf.data.Options() and o != tf.data.Options()


def test_with_options_merges_later_ones_win_and_keeps_the_dataset():
    a = tf.data.Options()
    a.deterministic = False
    a.autotune.enabled = False
    b = tf.data.Options()
    b.deterministic = True
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = D.range(4).with_options(a).with_options(b)
    assert ds.options().deterministic is True and ds.options().autotune.enabled is False
    assert list(ds.as_numpy_iterator()) == [0, 1, 2, 3] and len(ds) == 4
    # transformations keep them; zip and concatenate merge their inputs'
    assert ds.map(lambda x: x).batch(2).options() == ds.options()
    assert D.zip((D.range(2).with_options(a), D.range(2))).options().deterministic is False
    assert D.range(2).concatenate(D.range(2).with_options(b)).options().deterministic is True
    assert D.sample_from_datasets([D.range(2).with_options(a), D.range(2)]).options().deterministic is False
    picked = D.choose_from_datasets([D.range(2), D.range(2).with_options(b)], D.range(2))
    assert picked.options().deterministic is True
    # options() cannot be changed (as in tf.data, ValueError): changing it would change no
    # dataset
    with pytest.raises(ValueError, match="with_options"):
        ds.options().deterministic = False
    assert ds.options().deterministic is True
    with pytest.raises(TypeError):
        ds.with_options({"deterministic": True})


def test_ignored_options_warn_once_per_process(monkeypatch):
    monkeypatch.setattr(_options, "_WARNED", set())
    o = tf.data.Options()
    o.threading.private_threadpool_size = 8
    o.deterministic = True
    with pytest.warns(UserWarning, match="ignores these tf.data options.*threading.private_threadpool_size"):
        D.range(2).with_options(o)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        D.range(3).with_options(o)  # the same option again: no second warning
        only_honoured = tf.data.Options()
        only_honoured.deterministic = False
        only_honoured.experimental_optimization.map_parallelization = False
        D.range(3).with_options(only_honoured)


def test_deterministic_option_is_the_default_of_later_parallel_stages():
    seen = []
    core_map = tf._npyflow.CoreDataset.map

    def spy(self, f, sig, calls, deterministic):
        seen.append(deterministic)
        return core_map(self, f, sig, calls, deterministic)

    o = tf.data.Options()
    o.deterministic = False
    ds = D.range(20).with_options(o)
    try:
        tf._npyflow.CoreDataset.map = spy
    except (AttributeError, TypeError):
        pytest.skip("the native class cannot be patched")
    try:
        # Untraced (trace=False): the Python function's map is the native call spied on.
        ds.map(lambda x: x, num_parallel_calls=2, trace=False)
        ds.map(lambda x: x, num_parallel_calls=2, deterministic=True, trace=False)
        D.range(3).map(lambda x: x, num_parallel_calls=2, trace=False)
    finally:
        tf._npyflow.CoreDataset.map = core_map
    assert seen == [False, True, None]


def test_ragged_batch_is_a_padded_batch():
    ds = D.range(4).map(lambda x: np.full([int(x)], x))
    got = [b.numpy().tolist() for b in ds.ragged_batch(2)]
    assert got == [[[0], [1]], [[2, 2, 0], [3, 3, 3]]]
    assert [b.shape for b in ds.apply(E.dense_to_ragged_batch(3, drop_remainder=True))] == [(3, 2)]


def test_random_is_seeded_resumable_and_int64():
    r = D.random(seed=4)
    assert r.cardinality() == tf.data.INFINITE_CARDINALITY
    assert r.element_spec == tf.TensorSpec((), tf.int64)
    first = list(r.take(5).as_numpy_iterator())
    assert first == list(D.random(seed=4).take(5).as_numpy_iterator())
    assert first != list(D.random(seed=5).take(5).as_numpy_iterator())
    again = D.random(seed=4, rerandomize_each_iteration=True).take(5)
    assert list(again.as_numpy_iterator()) != list(again.as_numpy_iterator())
    it = iter(D.random())
    next(it)
    state = it.get_state()
    rest = [next(it) for _ in range(4)]
    it.set_state(state)
    assert [next(it) for _ in range(4)] == rest


def test_assert_cardinality_checks_while_reading():
    ok = D.range(6).filter(lambda x: x % 2 == 0).assert_cardinality(3)
    assert len(ok) == 3 and list(ok.as_numpy_iterator()) == [0, 2, 4]
    it = iter(D.range(5).apply(E.assert_cardinality(3)))
    assert [int(next(it)) for _ in range(3)] == [0, 1, 2]
    with pytest.raises(ValueError, match=r"expected to contain 3 elements but contained at least 4 elements\.$"):
        next(it)
    with pytest.raises(ValueError, match="contain 7 elements but contained only 5 elements"):
        list(D.range(5).assert_cardinality(7))
    with pytest.raises(ValueError, match="expected_cardinality"):
        D.range(5).assert_cardinality(-2)


def test_experimental_aliases_are_transformations_for_apply():
    for name in ("ignore_errors", "unbatch", "enumerate_dataset", "shuffle_and_repeat", "unique"):
        assert callable(getattr(E, name))
    assert list(D.range(3).apply(E.ignore_errors()).as_numpy_iterator()) == [0, 1, 2]
    calls = E.map_and_batch(lambda x: x + 1, 2, num_parallel_batches=2)
    assert [b.tolist() for b in D.range(5).apply(calls).as_numpy_iterator()] == [[1, 2], [3, 4], [5]]
    with pytest.raises(ValueError):
        E.map_and_batch(lambda x: x, 2, num_parallel_batches=1, num_parallel_calls=2)
    buckets = D.range(6).map(lambda x: np.arange(int(x) % 3 + 1)).apply(
        E.bucket_by_sequence_length(lambda x: np.int32(len(x)), [2], [2, 2])
    )
    assert sum(b.shape[0] for b in buckets) == 6
    assert E.AUTOTUNE == tf.AUTOTUNE and tf.data.experimental is E


@pytest.mark.parametrize(
    "name,says",
    [
        ("SqlDataset", "Dataset.from_generator"),
        ("CsvDataset", "np.loadtxt"),
        ("RandomDataset", "Dataset.counter"),
        ("no_such_thing", "the Dataset methods"),
    ],
)
def test_missing_experimental_names_say_what_to_use(name, says):
    with pytest.raises(AttributeError) as e:
        getattr(E, name)
    assert str(e.value).startswith(f"npyflow.data.experimental has no tf.data.experimental.{name}; use ")
    assert says in str(e.value)


def test_experimental_save_load_and_snapshot_are_the_dataset_methods(tmp_path):
    ds = D.range(5).map(lambda x: x * 3)
    E.save(ds, str(tmp_path / "saved"))
    assert [int(v) for v in E.load(str(tmp_path / "saved"))] == [0, 3, 6, 9, 12]
    snap = ds.apply(E.snapshot(str(tmp_path / "snap")))
    assert [int(v) for v in snap] == [int(v) for v in snap] == [0, 3, 6, 9, 12]


def test_importable_as_modules():
    import npyflow.data.experimental as experimental
    from npyflow.data import Options

    assert experimental is E and Options is tf.data.Options


def test_autotune_budgets_are_honoured_and_checked():
    o = tf.data.Options()
    o.autotune.cpu_budget = 1
    o.autotune.ram_budget = 1 << 16
    assert o.ignored_options() == []
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # honoured: no warning
        ds = D.range(200).map(lambda x: x * 2, num_parallel_calls=tf.data.AUTOTUNE).with_options(o)
    assert list(ds.as_numpy_iterator()) == [2 * i for i in range(200)]
    assert ds.options().autotune.cpu_budget == 1
    off = tf.data.Options()
    off.autotune.enabled = False
    assert list(ds.with_options(off).batch(50).as_numpy_iterator())[-1].tolist() == list(range(300, 400, 2))
    bad = tf.data.Options()
    bad.autotune.ram_budget = -1
    with pytest.raises(ValueError, match="autotune.ram_budget must not be negative"):
        D.range(2).with_options(bad)

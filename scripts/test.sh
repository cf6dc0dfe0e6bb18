#!/usr/bin/env bash
# Runs every test of npyflow: formatting and lints, the Rust tests (unit, integration, doc),
# the Python tests against NumPy, and the Python package's tests. Installs what it needs
# (NumPy, pytest and maturin in .venv, and the npyflow package built from this tree).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-test.txt

echo "== cargo fmt"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== import cycles (issue 12; element<->plumbing is documented: an Element can hold a Dataset)"
python3 scripts/import_cycles.py --allow dataset::plumbing,element \
    crates/npyflow-format/src crates/npyflow/src crates/npyflow-cli/src crates/npyflow-python/src
echo "== cargo doc"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --locked -p npyflow -p npyflow-format
echo "== the fuzz targets build"
# They are outside the workspace (cargo-fuzz builds them with sanitizers); checking that they
# compile keeps them in step with the API they call.
cargo check --manifest-path fuzz/Cargo.toml --bins --locked

# The NumPy round trips must run here, not skip.
export NPYFLOW_REQUIRE_NUMPY=1
export NPYFLOW_PYTHON="$PWD/.venv/bin/python"

echo "== cargo test"
# The Python extension has no Rust tests of its own (its suite is tests/python_pkg).
cargo test --workspace --exclude npyflow-python --locked

echo "== pytest"
cargo build --locked -p npyflow-cli
NPYFLOW_BIN="$PWD/target/debug/npyflow" .venv/bin/python -m pytest tests/python -q

echo "== mypy"
# The package's types are its inline annotations (and _npyflow.pyi for the extension).
(cd crates/npyflow-python/python && ../../../.venv/bin/python -m mypy --strict -p npyflow)

echo "== the Python package"
# Built from this tree by its PEP 517 backend (maturin, from requirements-test.txt), in the
# dev profile so that it reuses the debug build of the core above. `pip install
# ./crates/npyflow-python` (release, isolated build) is what users run.
PATH="$PWD/.venv/bin:$PATH" MATURIN_PEP517_ARGS="--profile dev --locked" \
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-build-isolation \
    --force-reinstall --no-deps ./crates/npyflow-python
.venv/bin/python -m pytest tests/python_pkg -q

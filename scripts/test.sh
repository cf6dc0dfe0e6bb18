#!/usr/bin/env bash
# Runs every test of npyflow: formatting and lints, the Rust tests (unit, integration, doc),
# and the Python tests against NumPy. Installs what it needs (NumPy and pytest, in .venv).
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

# The NumPy round trips must run here, not skip.
export NPYFLOW_REQUIRE_NUMPY=1
export NPYFLOW_PYTHON="$PWD/.venv/bin/python"

echo "== cargo test"
cargo test --workspace --locked

echo "== pytest"
cargo build --locked -p npyflow-cli
NPYFLOW_BIN="$PWD/target/debug/npyflow" .venv/bin/python -m pytest tests/python -q

#!/usr/bin/env bash
# Runs the framework tests (tests/python_pkg/test_frameworks.py, test_keras.py,
# test_distributed.py, test_ray.py) with another Python that has TensorFlow, torch, keras or
# ray[data], which the default run (scripts/test.sh) does not install. Usage:
#   scripts/test_frameworks_peer.sh /path/to/python
# Needs the npyflow package built into .venv first (scripts/test.sh does it). pytest and the
# built npyflow go into target/peer-site, put on that Python's path; its own NumPy is used.
set -euo pipefail
cd "$(dirname "$0")/.."
PEER=${1:?usage: scripts/test_frameworks_peer.sh PYTHON}
SITE=$PWD/target/peer-site
rm -rf "$SITE" && mkdir -p "$SITE"
.venv/bin/python -m pip install --quiet --disable-pip-version-check --target "$SITE" --no-deps \
    "pytest>=8,<10" iniconfig pluggy packaging
PKG=$(.venv/bin/python -c "import npyflow, os; print(os.path.dirname(npyflow.__file__))")
cp -r "$PKG" "$SITE/"
PYTHONPATH="$SITE" "$PEER" -m pytest -q -rs \
    tests/python_pkg/test_frameworks.py tests/python_pkg/test_keras.py tests/python_pkg/test_distributed.py \
    tests/python_pkg/test_ray.py "${@:2}"

"""Shared helpers for the npyflow Python test-suite.

The CLI under test is found via the NPYFLOW_BIN environment variable, or else
``<repo>/target/{release,debug}/npyflow``, whichever was built last.
If no binary can be found the tests FAIL (they are never skipped).
"""

import json
import os
import resource
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

# Address-space limit for every CLI run (hostile inputs must not make the CLI
# allocate what the file merely claims).
ADDRESS_SPACE_LIMIT = 4 << 30


def find_npyflow_bin():
    """Return (path or None, human readable explanation)."""
    env = os.environ.get("NPYFLOW_BIN")
    if env:
        p = Path(env).resolve()  # absolute: some tests run the CLI from another directory
        if p.is_file() and os.access(p, os.X_OK):
            return p, f"NPYFLOW_BIN={env}"
        return None, f"NPYFLOW_BIN={env!r} does not name an executable file"
    # the most recently built of the release and debug binaries, so a stale one is not used
    built = [REPO_ROOT / "target" / profile / "npyflow" for profile in ("release", "debug")]
    built = [p for p in built if p.is_file() and os.access(p, os.X_OK)]
    if built:
        p = max(built, key=lambda p: p.stat().st_mtime)
        return p, str(p)
    return None, (
        "no npyflow binary found: set NPYFLOW_BIN or build one "
        f"(looked for {REPO_ROOT / 'target/release/npyflow'} and "
        f"{REPO_ROOT / 'target/debug/npyflow'})"
    )


def _limit_address_space():
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE_LIMIT, ADDRESS_SPACE_LIMIT))


class CliResult:
    def __init__(self, args, proc):
        self.args = args
        self.returncode = proc.returncode
        self.stdout = proc.stdout.decode("utf-8", errors="replace")
        self.stderr = proc.stderr.decode("utf-8", errors="replace")

    def records(self):
        """Parse stdout: one JSON object per non-empty line.

        Python's json module is used on purpose: it accepts NaN, Infinity and
        -Infinity, which is how the CLI writes non-finite floats.
        """
        out = []
        for i, line in enumerate(self.stdout.splitlines()):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except ValueError as e:  # pragma: no cover - reported as a failure
                raise AssertionError(
                    f"stdout line {i + 1} is not JSON ({e}): {line[:300]!r}"
                ) from None
            if not isinstance(rec, dict):
                raise AssertionError(f"stdout line {i + 1} is not a JSON object: {line[:300]!r}")
            out.append(rec)
        return out

    def describe(self, limit=2000):
        return (
            f"command: {' '.join(map(str, self.args))[:limit]}\n"
            f"exit status: {self.returncode}\n"
            f"stderr: {self.stderr[:limit]}\n"
            f"stdout: {self.stdout[:limit]}"
        )


def run_cli(binary, args, timeout=10, cwd=None):
    """Run ``npyflow <args>`` under a 4 GiB address-space limit."""
    argv = [str(binary)] + [str(a) for a in args]
    proc = subprocess.run(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        timeout=timeout,
        preexec_fn=_limit_address_space,
        cwd=cwd,
    )
    return CliResult(argv, proc)


@pytest.fixture(scope="session")
def npyflow_bin():
    path, why = find_npyflow_bin()
    if path is None:
        pytest.fail(why, pytrace=False)
    return path


@pytest.fixture(scope="session")
def cli(npyflow_bin):
    """``cli(args, timeout=10, cwd=None) -> CliResult``."""

    def _run(args, timeout=10, cwd=None):
        return run_cli(npyflow_bin, args, timeout=timeout, cwd=cwd)

    return _run

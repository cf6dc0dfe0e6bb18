"""Runs code in a Python of its own (for what must not happen in pytest's process: signals,
a fresh import), shared by the tests that need one."""

import subprocess
import sys
import textwrap


def run_python(code: str, timeout: float) -> str:
    """Runs ``code`` (dedented) in a new Python; it must exit 0. Returns what it printed."""
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout

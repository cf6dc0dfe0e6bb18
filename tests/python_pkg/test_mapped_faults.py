"""A .npy file truncated by someone else while a pipeline reads it, memory-mapped: rows past
the new end are OSErrors naming the file, never a SIGBUS that kills Python, with or without
faulthandler (which pytest enables, installing its own SIGBUS handler); a SIGBUS that is not
about npyflow's maps still kills the process, once, as it would without npyflow.

Each case runs in a child process, so that a crash fails the test instead of killing pytest.
"""

import json
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

ROWS, ROW, KEPT = 64, 512, 10

PRELUDE = textwrap.dedent(
    f"""
    import faulthandler, json, os, signal, sys
    ROWS, ROW, KEPT = {ROWS}, {ROW}, {KEPT}
    paths = sys.argv[1:]

    def truncate(path):
        # After row KEPT - 1: the header of np.save's files is 128 bytes long.
        os.truncate(path, 128 + KEPT * ROW * 8)

    def read_all(ds, path):
        '''Every element of a pass: (row values, or the error's message).'''
        got, it = [], iter(ds)
        while True:
            try:
                x = next(it)
            except StopIteration:
                return got
            except OSError as e:
                assert path in str(e), str(e)
                got.append(str(e))
            else:
                got.append(sorted(set(x.ravel().tolist())))
    """
)


def write_rows(path):
    data = np.repeat(np.arange(1, ROWS + 1, dtype=np.float64), ROW).reshape(ROWS, ROW)
    np.save(path, data)
    return str(path)


def run(script, *paths):
    return subprocess.run(
        [sys.executable, "-c", PRELUDE + textwrap.dedent(script), *paths],
        capture_output=True,
        text=True,
        timeout=120,
    )


def survived(out):
    assert out.returncode == 0, f"exit {out.returncode}\n{out.stdout}\n{out.stderr}"
    return json.loads(out.stdout.strip().splitlines()[-1])


# Where faulthandler's handler is installed relative to npyflow's: not at all, before
# npyflow maps a file (as under pytest), between two maps (npyflow puts its own back in
# front at the second), or after the last map and before the pass (npyflow puts its own
# back in front when a pass starts).
ORDERS = {
    "none": ("", "", ""),
    "before": ("faulthandler.enable()", "", ""),
    "between": ("", "faulthandler.enable()", ""),
    "after": ("", "", "faulthandler.enable()"),
}


@pytest.mark.parametrize("order", ORDERS)
def test_rows_past_the_new_end_are_oserrors(tmp_path, order):
    first, between, after = ORDERS[order]
    a = write_rows(tmp_path / "a.npy")
    b = write_rows(tmp_path / "b.npy")
    out = run(
        f"""
        {first}
        import npyflow as tfd
        rows = tfd.Dataset.from_npy(paths[0])
        {between}
        batches = tfd.Dataset.from_npy(paths[1]).batch(4)
        {after}
        truncate(paths[0])
        truncate(paths[1])
        print(json.dumps([read_all(rows, paths[0]), read_all(batches, paths[1])]))
        """,
        a,
        b,
    )
    rows, batches = survived(out)
    assert rows[:KEPT] == [[float(i + 1)] for i in range(KEPT)]
    assert len(rows) == ROWS
    for message in rows[KEPT:]:
        assert "truncated while memory-mapped" in message and "may be zeros" in message
    whole = KEPT // 4
    assert batches[:whole] == [[float(v) for v in range(4 * k + 1, 4 * k + 5)] for k in range(whole)]
    assert len(batches) == ROWS // 4
    assert all("truncated while memory-mapped" in m for m in batches[whole:])


def test_a_view_read_after_the_truncation_holds_zeros_and_the_next_row_says_why(tmp_path):
    # A row handed out before the truncation is a NumPy view of the map: it cannot raise, it
    # reads zeros; npyflow's next read of the file reports the loss.
    a = write_rows(tmp_path / "a.npy")
    out = run(
        """
        import npyflow as tfd
        it = iter(tfd.Dataset.from_npy(paths[0]).skip(40))
        view = next(it)
        truncate(paths[0])
        zeros = float(view.sum()) == 0.0
        try:
            next(it)
            raised = None
        except OSError as e:
            raised = str(e)
        print(json.dumps([zeros, raised]))
        """,
        a,
    )
    zeros, raised = survived(out)
    assert zeros
    assert raised and a in raised and "truncated while memory-mapped" in raised


@pytest.mark.parametrize("order", ["before", "between", "after"])
def test_a_sigbus_sent_to_the_process_still_kills_it_once(tmp_path, order):
    # With faulthandler in the chain (its handler dumps the traceback, puts back the handler
    # it displaced and raises the signal again), the process dies of SIGBUS after one dump,
    # never looping between the two handlers.
    first, between, after = ORDERS[order]
    a = write_rows(tmp_path / "a.npy")
    out = run(
        f"""
        {first}
        import npyflow as tfd
        tfd.Dataset.from_npy(paths[0])
        {between}
        tfd.Dataset.from_npy(paths[0])
        {after}
        list(tfd.Dataset.range(1))
        os.kill(os.getpid(), signal.SIGBUS)
        print("alive")
        """,
        a,
    )
    assert out.returncode == -signal.SIGBUS, (out.returncode, out.stdout, out.stderr)
    assert "alive" not in out.stdout
    assert out.stderr.count("Fatal Python error: Bus error") == 1, out.stderr

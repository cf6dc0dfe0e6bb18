"""Several Pythons at once on this host (the workers of a data-parallel job), bounded in time
and killed, every one, when a test fails or runs out of time."""

import json
import os
import socket
import subprocess
import sys
import time
from typing import Dict, List, Optional, Sequence


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (for a coordinator)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_workers(
    argv: Sequence[str],
    envs: Sequence[Dict[str, str]],
    timeout: float,
    python: Optional[str] = None,
) -> List[dict]:
    """Starts one ``python argv...`` per entry of ``envs`` (added to this environment), all at
    once; each must print one JSON line last and exit 0 within ``timeout`` seconds (all
    together). Returns what each printed, in order. Any failure kills them all."""
    procs: List[subprocess.Popen] = []
    try:
        for extra in envs:
            env = dict(os.environ)
            for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
                env.pop(k, None)
            env.update(extra)
            procs.append(
                subprocess.Popen(
                    [python or sys.executable, *argv],
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )
        deadline = time.monotonic() + timeout
        outs = []
        for p in procs:
            left = max(0.1, deadline - time.monotonic())
            out, err = p.communicate(timeout=left)
            assert p.returncode == 0, f"worker {len(outs)} failed ({p.returncode}):\n{err}"
            outs.append(json.loads(out.strip().splitlines()[-1]))
        return outs
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()
            for f in (p.stdout, p.stderr):
                if f is not None:
                    f.close()

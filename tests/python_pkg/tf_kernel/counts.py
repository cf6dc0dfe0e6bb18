"""Counts of the ports of TensorFlow's tf.data kernel tests: files, test methods ported
(agreeing with TensorFlow, or asserting a documented difference) and left out, with the
reasons. ``python tests/python_pkg/tf_kernel/counts.py`` prints the README's table."""

from __future__ import annotations

import importlib
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import List

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from tf_kernel_harness import Differs, LeftOut  # noqa: E402


def modules() -> List[ModuleType]:
    return [
        importlib.import_module(p.stem)
        for p in sorted(HERE.glob("test_*.py"))
        if p.stem != "test_manifest"
    ]


def is_ported(status: object) -> bool:
    return isinstance(status, str) or isinstance(status, Differs)


def summary() -> str:
    files = []
    agree = differ = left = 0
    reasons: Counter[str] = Counter()
    rows = []
    differences = []
    for m in modules():
        tf_files = m.TF_FILE if isinstance(m.TF_FILE, list) else [m.TF_FILE]
        files += tf_files
        a = sum(isinstance(s, str) for s in m.TF_TESTS.values())
        d = sum(isinstance(s, Differs) for s in m.TF_TESTS.values())
        lo = [s for s in m.TF_TESTS.values() if isinstance(s, LeftOut)]
        agree, differ, left = agree + a, differ + d, left + len(lo)
        for s in lo:
            reasons[s.reason.split(":")[0].split(" (")[0]] += 1
        for name, s in m.TF_TESTS.items():
            if isinstance(s, Differs):
                differences.append(f"- `{name}`: {s.reason}")
        rows.append(f"| {', '.join(f'`{f}`' for f in tf_files)} | {a} | {d} | {len(lo)} |")
    total = agree + differ + left
    lines = [
        f"{len(files)} of TensorFlow's tf.data kernel test files, {total} test methods: "
        f"{agree + differ} ported ({agree} agree with TensorFlow, {differ} assert a "
        f"documented difference), {left} left out.",
        "",
        "| TensorFlow file | agree | differ | left out |",
        "|---|---|---|---|",
        *rows,
        "",
        "Left out, by reason:",
        "",
    ]
    for reason, n in reasons.most_common():
        lines.append(f"- {n}: {reason}")
    lines += ["", "Ported, asserting a documented difference:", "", *differences]
    return "\n".join(lines)


if __name__ == "__main__":
    print(summary())

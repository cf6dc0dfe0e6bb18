"""The ports of TensorFlow's kernel tests are complete and honest: every test method of each
ported TensorFlow file is listed in its module's TF_TESTS, every PORTED or differs entry has
its test function here, every test function has its entry, and the README's counts are the
counts of these lists (``python tests/python_pkg/tf_kernel/counts.py`` prints them)."""

import re
from pathlib import Path

import counts

README = Path(__file__).resolve().parents[3] / "README.md"


def test_every_listed_test_is_ported_or_left_out_with_a_reason():
    for module in counts.modules():
        functions = {n for n in dir(module) if n.startswith("test_")}
        listed = set()
        for name, status in module.TF_TESTS.items():
            cls, method = name.split(".")
            fn = f"test_{cls}_{method}"
            if counts.is_ported(status):
                assert fn in functions, f"{module.__name__}: {name} is listed as ported, no {fn}"
                listed.add(fn)
            else:
                assert status.reason.strip(), f"{module.__name__}: {name} is left out without a reason"
                assert fn not in functions, f"{module.__name__}: {name} is left out but has {fn}"
            if not isinstance(status, str):
                assert len(status.reason) > 10, (name, status.reason)
        assert functions == listed, f"{module.__name__}: not listed: {sorted(functions - listed)}"


def test_the_readme_states_these_counts():
    text = README.read_text()
    match = re.search(r"<!-- tf-kernel-counts -->(.*?)<!-- /tf-kernel-counts -->", text, re.S)
    assert match, "README.md lacks the tf-kernel-counts section"
    assert match.group(1).strip() == counts.summary().strip(), (
        "README.md's counts are out of date; put in the output of "
        "`python tests/python_pkg/tf_kernel/counts.py`"
    )

"""BENCHMARKS.md's sections, each between its two markers: what the benchmarks' ``--update``
writes."""

import os
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def update_section(name, title, table, how):
    """Puts ``table``, and a line saying when, on how many cores and ``how`` it was measured,
    between ``<!-- name:start -->`` and ``<!-- name:end -->`` of BENCHMARKS.md; where the
    markers are not there yet, in a new section ``title`` at its end."""
    path = os.path.join(ROOT, "BENCHMARKS.md")
    text = open(path).read() if os.path.exists(path) else "# Benchmarks\n"
    start, end = "<!-- %s:start -->" % name, "<!-- %s:end -->" % name
    block = "%s\n%s\n\nMeasured %s on %d cores%s\n%s" % (
        start, table, time.strftime("%Y-%m-%d"), os.cpu_count(), how, end)
    if start in text:
        text = text[:text.index(start)] + block + text[text.index(end) + len(end):]
    else:
        text += "\n## %s\n\n" % title + block + "\n"
    open(path, "w").write(text)

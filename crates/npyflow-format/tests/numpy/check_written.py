"""Checks the files npyflow wrote in tests/format/interop.rs.

    python check_written.py NUMPY_DIR NPYFLOW_DIR

Each .npy file npyflow wrote must be byte-for-byte the file NumPy wrote for the same array
and version; each .npz must load in NumPy with the same keys, dtypes, shapes and values.
Prints one line per mismatch and exits 1 if there is any.
"""
import json
import os
import sys

import numpy as np


def main(numpy_dir, ours_dir):
    manifest = json.load(open(os.path.join(numpy_dir, "manifest.json")))
    bad = 0
    checked = 0
    for entry in manifest:
        if entry["name"] is not None:
            continue
        theirs = open(os.path.join(numpy_dir, entry["file"]), "rb").read()
        ours = open(os.path.join(ours_dir, entry["file"]), "rb").read()
        checked += 1
        if theirs != ours:
            bad += 1
            print("differs from np.save's bytes:", entry["file"])
            print("  numpy:  ", theirs[:128])
            print("  npyflow:", ours[:128])
    for file in sorted(f for f in os.listdir(ours_dir) if f.endswith(".npz")):
        want = np.load(os.path.join(numpy_dir, file))
        got = np.load(os.path.join(ours_dir, file))
        checked += 1
        if list(want.keys()) != list(got.keys()):
            bad += 1
            print(file, "keys", list(want.keys()), "!=", list(got.keys()))
            continue
        for k in want.keys():
            a, b = want[k], got[k]
            if a.dtype != b.dtype or a.shape != b.shape or a.tobytes() != b.tobytes():
                bad += 1
                print(file, k, "differs:", a.dtype, a.shape, "vs", b.dtype, b.shape)
    print("checked %d files, %d mismatches" % (checked, bad))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

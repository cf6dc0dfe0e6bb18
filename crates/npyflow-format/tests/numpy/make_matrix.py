"""Writes NumPy's side of the round-trip test (tests/format/interop.rs).

    python make_matrix.py OUTDIR

For every dtype x byte order x shape x memory order x format version, NumPy writes a .npy file
with np.lib.format.write_array, and a few .npz archives with np.savez / np.savez_compressed.
OUTDIR/manifest.json lists each array with what NumPy says about it: dtype.str, shape,
fortran_order (as written in the header), format version, and the logical C-order data in
native byte order as hex, which is what npyflow's tensor must hold.
"""
import json
import os
import sys

import numpy as np

DTYPES = ["?", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "f2", "f4", "f8", "c8", "c16",
          "S5", "U3", "M8[ns]", "M8[D]", "m8[us]", "M8[10ms]", "m8[Y]"]
SHAPES = [(), (0,), (7,), (3, 0), (2, 3, 4)]
VERSIONS = [(1, 0), (2, 0), (3, 0)]


def values(dt, shape, rng):
    n = int(np.prod(shape))
    kind = dt.kind
    if kind == "b":
        a = rng.integers(0, 2, n).astype(bool)
    elif kind in "iu":
        info = np.iinfo(dt)
        a = rng.integers(info.min, info.max, n, dtype=dt.newbyteorder("="), endpoint=True)
        if n >= 2:
            a[0], a[1] = info.min, info.max
    elif kind == "f":
        a = rng.standard_normal(n).astype(dt.newbyteorder("=")) * 1000
        special = [np.nan, np.inf, -np.inf, -0.0, np.finfo(dt).tiny, np.finfo(dt).max]
        a[: min(n, len(special))] = special[: min(n, len(special))]
    elif kind == "c":
        a = (rng.standard_normal(n) + 1j * rng.standard_normal(n)).astype(dt.newbyteorder("="))
        if n:
            a[0] = complex(np.nan, -np.inf)
    elif kind == "S":
        a = np.array([bytes(rng.integers(97, 123, rng.integers(0, 6)).astype(np.uint8)) for _ in range(n)], dtype=dt)
    elif kind == "U":
        pool = "aé€\U0001f600z"
        a = np.array(["".join(rng.choice(list(pool), rng.integers(0, 4))) for _ in range(n)], dtype=dt)
    else:  # M, m
        a = rng.integers(-10**6, 10**6, n).astype(np.int64).view(dt.newbyteorder("="))
        if n:
            a[0] = np.array("NaT", dtype=dt.newbyteorder("="))
    return a.reshape(shape).astype(dt)


def main(out):
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(0)
    manifest = []

    def record(file, name, a, header_fortran, version):
        native = np.ascontiguousarray(a).astype(a.dtype.newbyteorder("="))
        manifest.append({
            "file": file, "name": name, "dtype": a.dtype.str, "shape": list(a.shape),
            "fortran_order": header_fortran, "format_version": "%d.0" % version[0],
            "c_hex": native.tobytes().hex(),
        })

    for code in DTYPES:
        base = np.dtype(code)
        orders = ["<", ">"] if base.itemsize > 1 and base.kind not in "S" else ["|"]
        for bo in orders:
            dt = base.newbyteorder(bo) if bo != "|" else base
            for shape in SHAPES:
                a = values(dt, shape, rng)
                for fortran in (False, True):
                    arr = np.asfortranarray(a) if fortran else a
                    for version in VERSIONS:
                        name = "%s_%s_%s_%s_v%d.npy" % (
                            code.replace("[", "").replace("]", ""), {"<": "le", ">": "be", "|": "na"}[bo],
                            "x".join(map(str, shape)) or "scalar", "F" if fortran else "C", version[0])
                        path = os.path.join(out, name)
                        with open(path, "wb") as f:
                            np.lib.format.write_array(f, arr, version=version)
                        with open(path, "rb") as f:
                            np.lib.format.read_magic(f)
                            read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                                    else np.lib.format.read_array_header_2_0)
                            hdr = read(f)
                        record(name, None, arr, bool(hdr[1]), version)

    arrays = {"x": values(np.dtype("<f4"), (4, 3), rng), "labels": values(np.dtype(">i8"), (4,), rng),
              "empty": np.zeros((0, 2), "u2"), "scalar": np.array(3.5)}
    np.savez(os.path.join(out, "stored.npz"), **arrays)
    np.savez_compressed(os.path.join(out, "deflated.npz"), **arrays)
    np.savez(os.path.join(out, "positional.npz"), arrays["x"], arrays["labels"])
    for file in ("stored.npz", "deflated.npz"):
        for k, a in arrays.items():
            record(file, k, a, False, (1, 0))
    for i, k in enumerate(("x", "labels")):
        record("positional.npz", "arr_%d" % i, arrays[k], False, (1, 0))
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f)


if __name__ == "__main__":
    main(sys.argv[1])

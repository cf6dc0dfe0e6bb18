"""`npyflow inspect` versus NumPy.

Builds, in a pytest temporary directory, a corpus of .npy/.npz files written by
NumPy (plus hand-made headers that NumPy accepts, and malformed/hostile files),
runs the CLI on them and checks that it reports exactly what NumPy reads.

Run:  NPYFLOW_BIN=target/release/npyflow .venv/bin/python -m pytest tests/python -q

The CLI contract checked here:
  npyflow inspect [--json] [--stats] PATH...
  --json: one JSON object per array per line: path, name, dtype, shape,
          fortran_order, format_version, nbytes.
  --stats: bool/int/float arrays add min, max, sum (float64) and head; complex
          arrays add head only; S/U/M/m arrays add nothing.
  exit 0 if every file was read, else 1 with "<path>: <reason>" on stderr.
"""

import io
import json
import math
import struct
import warnings
import zipfile
import zlib
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from numpy.lib import format as npformat

try:  # numpy >= 2: the implementation module has the version-generic reader
    from numpy.lib._format_impl import _read_array_header as _np_read_array_header
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.lib.format import _read_array_header as _np_read_array_header

MAGIC = b"\x93NUMPY"
REQUIRED_KEYS = ("path", "name", "dtype", "shape", "fortran_order", "format_version", "nbytes")
STATS_KEYS = ("min", "max", "sum", "head")
HEAD_LEN = 8
BATCH = 300          # paths per CLI invocation for the good corpus
BATCH_TIMEOUT = 120  # seconds per batch invocation
HOSTILE_TIMEOUT = 10

# ----------------------------------------------------------------------------
# Byte-level builders
# ----------------------------------------------------------------------------


def npy_bytes(header, major=1, minor=0, data=b"", pad=True, newline=True, header_len=None,
              encoding=None):
    """Hand-build a .npy file.

    header: the header text (a Python literal, normally a dict).
    pad: pad with spaces so that the data starts on a 64-byte boundary (like NumPy).
    newline: end the header with b"\\n" (NumPy always does).
    header_len: override the length field (to lie about it).
    """
    if encoding is None:
        encoding = "utf8" if major >= 3 else "latin1"
    h = header.encode(encoding) if isinstance(header, str) else header
    len_size = 2 if major == 1 else 4
    if pad:
        total = len(MAGIC) + 2 + len_size + len(h) + (1 if newline else 0)
        h += b" " * ((64 - total % 64) % 64)
    if newline:
        h += b"\n"
    n = len(h) if header_len is None else header_len
    ln = struct.pack("<H", n) if len_size == 2 else struct.pack("<I", n)
    return MAGIC + bytes([major, minor]) + ln + h + data


def std_header(descr="<f8", fortran_order=False, shape="(2, 3)"):
    return "{'descr': %r, 'fortran_order': %s, 'shape': %s, }" % (descr, fortran_order, shape)


def array_npy_bytes(arr, version=(1, 0)):
    buf = io.BytesIO()
    npformat.write_array(buf, arr, version=version, allow_pickle=True)
    return buf.getvalue()


def _dos_time():
    return 0, (1 << 5) | 1  # 00:00:00, 1980-01-01


def build_zip(entries):
    """Hand-build a zip archive with full control over the directory fields.

    Each entry is a dict with:
      name (str), payload (bytes as stored in the archive, i.e. already compressed),
      method (int, default 0), crc (int, default crc32 of payload),
      comp_size / uncomp_size (claimed sizes, default len(payload)),
      flags (int, default 0), offset_override (local header offset written in the
      central directory, default the real one).
    Sizes >= 0xFFFFFFFF are written with a ZIP64 extra field.
    """
    out = bytearray()
    central = bytearray()
    t, d = _dos_time()
    for e in entries:
        name = e["name"].encode("utf-8")
        payload = e["payload"]
        method = e.get("method", 0)
        crc = e.get("crc", zlib.crc32(payload) & 0xFFFFFFFF)
        csize = e.get("comp_size", len(payload))
        usize = e.get("uncomp_size", len(payload))
        flags = e.get("flags", 0)
        if any(ord(c) > 127 for c in e["name"]):
            flags |= 0x800
        zip64 = csize >= 0xFFFFFFFF or usize >= 0xFFFFFFFF
        offset = len(out)
        if zip64:
            extra = struct.pack("<HHQQ", 1, 16, usize, csize)
            c32 = u32 = 0xFFFFFFFF
            version = 45
        else:
            extra = b""
            c32, u32 = csize, usize
            version = 20
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, version, flags, method, t, d,
                           crc, c32, u32, len(name), len(extra))
        out += name + extra + payload
        cd_offset = e.get("offset_override", offset)
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, version, version, flags,
                               method, t, d, crc, c32, u32, len(name), len(extra), 0, 0,
                               0, 0, cd_offset)
        central += name + extra
    cd_start = len(out)
    out += central
    out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(entries), len(entries),
                       len(central), cd_start, 0)
    return bytes(out)


def deflate_raw(data):
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


class _NonSeekableWriter:
    """A write-only stream: makes zipfile emit data descriptors (flag bit 3)."""

    def __init__(self):
        self.buf = bytearray()

    def write(self, b):
        self.buf += b
        return len(b)

    def flush(self):
        pass

    def read(self, *a):  # numpy's zipfile_factory only checks hasattr(file, "read")
        raise io.UnsupportedOperation("read")

    def tell(self):
        raise io.UnsupportedOperation("tell")

    def seek(self, *a):
        raise io.UnsupportedOperation("seek")

    def seekable(self):
        return False


# ----------------------------------------------------------------------------
# Value generation
# ----------------------------------------------------------------------------

DT_UNITS = ["ns", "us", "ms", "s", "m", "h", "D", "W", "M", "Y", "10ms", ""]  # "" = generic
ONE_BYTE = ["|b1", "|i1", "|u1", "|S5"]
MULTI_BYTE = (
    ["i2", "i4", "i8", "u2", "u4", "u8", "f2", "f4", "f8", "c8", "c16", "U3"]
    + [f"M8[{u}]" if u else "M8" for u in DT_UNITS]
    + [f"m8[{u}]" if u else "m8" for u in DT_UNITS]
)
ALL_DTYPES = ONE_BYTE + [bo + t for t in MULTI_BYTE for bo in "<>"]
SHAPES = [(), (0,), (7,), (3, 0), (2, 3, 4)]
VERSIONS = [1, 2, 3]
UNICODE_CHARS = list("abcXYZ 09\u00e9\u00ff\u20ac\U0001F600\u0416")


def dtype_label(dt):
    bo, t = (dt[0], dt[1:]) if dt[0] in "<>|" else ("", dt)
    t = t.replace("[", "-").replace("]", "")
    return {"<": f"{t}_le", ">": f"{t}_be", "|": t, "": t}[bo]


def shape_label(shape):
    return "scalar" if shape == () else "x".join(map(str, shape))


def _rng_for(key):
    return np.random.default_rng(zlib.crc32(key.encode()))


def _float_values(ftype, n, rng, with_nan, with_inf):
    fi = np.finfo(ftype)
    with np.errstate(over="ignore", invalid="ignore"):
        base = rng.standard_normal(n) * 10.0 ** rng.uniform(-3, 3, n)
        a = base.astype(ftype)
        edges = [fi.max, -fi.max, fi.tiny, fi.smallest_subnormal, -fi.smallest_subnormal,
                 -0.0, 0.0, 1.0, -1.5]
        if with_nan:
            edges.append(np.nan)
        if with_inf:
            edges += [np.inf, -np.inf]
        if n:
            k = int(rng.integers(0, max(1, n // 2) + 1))
            pos = rng.choice(n, size=k, replace=False)
            a[pos] = np.array(edges, dtype=ftype)[rng.integers(0, len(edges), size=k)]
        # Keep at most one +max and one -max: with two of the same sign the float64 sum
        # overflows or not depending on the order of summation (NumPy's pairwise sum
        # gives inf where the exact sum is finite), which would make "sum" ill-defined.
        for sign in (1, -1):
            big = np.flatnonzero(a == sign * fi.max)
            a[big[1:]] = sign
    return a


def _int_values(itype, n, rng):
    ii = np.iinfo(itype)
    a = rng.integers(ii.min, ii.max, size=n, dtype=itype, endpoint=True)
    edges = [ii.min, ii.max, 0, 1]
    if ii.min < 0:
        edges += [-1, ii.min + 1]
    if ii.bits == 64:
        edges += [2**53 + 1, 2**53 - 1, 2**63 - 1]
        edges += [-(2**53) - 1] if ii.min < 0 else [2**63, 2**64 - 1]
    if n:
        k = int(rng.integers(0, max(1, n // 2) + 1))
        pos = rng.choice(n, size=k, replace=False)
        a[pos] = np.array(edges, dtype=object)[rng.integers(0, len(edges), size=k)].astype(itype)
    return a


def make_values(dt, n, rng):
    """n values of dtype string dt (with byte order), flat, C order."""
    d = np.dtype(dt)
    kind = d.kind
    if kind == "b":
        return (rng.random(n) < 0.5).astype(d)
    if kind in "iu":
        return _int_values(d.newbyteorder("="), n, rng).astype(d)
    if kind == "f":
        nat = d.newbyteorder("=")
        return _float_values(nat, n, rng, rng.random() < 0.4, rng.random() < 0.4).astype(d)
    if kind == "c":
        comp = np.dtype(f"f{d.itemsize // 2}")
        a = np.empty(n, dtype=d.newbyteorder("="))
        a.real = _float_values(comp, n, rng, rng.random() < 0.4, rng.random() < 0.4)
        a.imag = _float_values(comp, n, rng, rng.random() < 0.4, rng.random() < 0.4)
        return a.astype(d)
    if kind == "S":
        vals = [bytes(rng.integers(1, 256, size=int(rng.integers(0, d.itemsize + 1))).astype(np.uint8))
                for _ in range(n)]
        return np.array(vals, dtype=d)
    if kind == "U":
        nchar = d.itemsize // 4
        vals = ["".join(rng.choice(UNICODE_CHARS, size=int(rng.integers(0, nchar + 1))))
                for _ in range(n)]
        return np.array(vals, dtype=d)
    if kind in "Mm":
        ints = rng.integers(-(2**40), 2**40, size=n, dtype=np.int64)
        if n:
            ints[rng.random(n) < 0.2] = np.iinfo(np.int64).min  # NaT
        # build through a view so that generic units keep the requested byte order
        return ints.astype(d.str[0] + "i8").view(d)
    raise AssertionError(f"no generator for {dt}")


def make_array(dt, shape, order, rng):
    n = int(np.prod(shape)) if shape else 1
    a = make_values(dt, n, rng).reshape(shape)
    if order == "F":
        a = np.asfortranarray(a)
    assert a.dtype.str == np.dtype(dt).str, (a.dtype.str, dt)
    return a


# ----------------------------------------------------------------------------
# Case lists (computed at import so that tests are parametrized by name)
# ----------------------------------------------------------------------------

NPY_CASES = []  # (case_id, dtype, shape, order, version)
for _dt in ALL_DTYPES:
    for _shape in SHAPES:
        for _order in ("C", "F"):
            if _order == "F" and _shape == ():
                continue  # np.asfortranarray turns a 0-d array into shape (1,)
            for _v in VERSIONS:
                NPY_CASES.append((f"{dtype_label(_dt)}-{shape_label(_shape)}-{_order}-v{_v}",
                                  _dt, _shape, _order, _v))
NPY_IDS = [c[0] for c in NPY_CASES]


def _save_npz(path, compressed, *args, **kwargs):
    (np.savez_compressed if compressed else np.savez)(path, *args, **kwargs)


def _zip_members(path, members, compression=zipfile.ZIP_STORED):
    """members: list of (name, bytes). Written with Python's zipfile."""
    with zipfile.ZipFile(path, "w", compression=compression) as zf:
        for name, data in members:
            zf.writestr(name, data)


def _npz_keyorder(path, compressed):
    r = _rng_for(path.name)
    _save_npz(path, compressed,
              zeta=make_array("<f8", (7,), "C", r),
              alpha=make_array("<i4", (2, 3), "C", r),
              mid=make_array("|b1", (3,), "C", r),
              Beta=make_array("<c16", (2, 2), "C", r),
              omega=make_array(">f4", (4,), "C", r),
              u=make_array("<U3", (3,), "C", r),
              t=make_array("<M8[ns]", (2,), "C", r))


def _npz_positional(path):
    r = _rng_for(path.name)
    np.savez(path, make_array("<f8", (3,), "C", r), make_array("<u8", (4,), "C", r),
             make_array("|i1", (2, 2), "C", r))


def _npz_positional_and_kw(path):
    r = _rng_for(path.name)
    np.savez_compressed(path, make_array("<f4", (3,), "C", r), make_array("<i8", (5,), "C", r),
                        kw=make_array("<f2", (2,), "C", r))


def _npz_no_suffix(path, compression):
    r = _rng_for(path.name)
    _zip_members(path, [
        ("raw", array_npy_bytes(make_array("<f8", (4,), "C", r))),
        ("x.npy", array_npy_bytes(make_array("<i2", (2, 3), "C", r))),
        ("other.bin", array_npy_bytes(make_array(">u4", (3,), "C", r))),
    ], compression)


def _npz_empty_members(path):
    r = _rng_for(path.name)
    np.savez(path, e0=np.zeros((0,), "<f8"), e30=np.zeros((3, 0), "<i8"),
             e03=np.zeros((0, 3), "|b1"), scalar=make_array("<f8", (), "C", r),
             es=np.zeros((0,), "|S4"))


def _npz_big_endian(path):
    r = _rng_for(path.name)
    np.savez_compressed(path, f=make_array(">f8", (3, 2), "C", r),
                        i=make_array(">i8", (5,), "C", r),
                        c=make_array(">c8", (3,), "C", r),
                        u=make_array(">U3", (2,), "C", r),
                        h=make_array(">f2", (4,), "F", r),
                        m=make_array(">m8[us]", (2,), "C", r))


def _npz_fortran(path):
    r = _rng_for(path.name)
    np.savez(path, f=make_array("<f8", (2, 3, 4), "F", r), i=make_array(">i2", (4, 5), "F", r))


def _npz_key_with_npy_suffix(path):
    r = _rng_for(path.name)
    np.savez(path, **{"k.npy": make_array("<f8", (3,), "C", r), "plain": make_array("<i4", (2,), "C", r)})


def _npz_subdirectory(path):
    r = _rng_for(path.name)
    _zip_members(path, [
        ("dir/sub.npy", array_npy_bytes(make_array("<f8", (3,), "C", r))),
        ("dir/deeper/x.npy", array_npy_bytes(make_array("<i8", (2,), "C", r))),
    ], zipfile.ZIP_DEFLATED)


def _npz_non_array_members(path):
    r = _rng_for(path.name)
    _zip_members(path, [
        ("readme.txt", b"this member is not an array\n"),
        ("a.npy", array_npy_bytes(make_array("<f8", (3,), "C", r))),
        ("notes", b"PK not an array either"),
        ("magic.txt", array_npy_bytes(make_array("<i4", (2,), "C", r))),
        ("empty_member", b""),
    ])


def _npz_unicode_names(path):
    r = _rng_for(path.name)
    np.savez(path, **{"donn\u00e9es": make_array("<f8", (3,), "C", r),
                      "\u043a\u043b\u044e\u0447": make_array("<i4", (2,), "C", r)})


def _npz_streamed(path, compressed):
    r = _rng_for(path.name)
    w = _NonSeekableWriter()
    (np.savez_compressed if compressed else np.savez)(
        w, a=make_array("<f8", (7,), "C", r), b=make_array(">i4", (2, 3), "F", r),
        c=make_array("|b1", (5,), "C", r))
    path.write_bytes(bytes(w.buf))


def _npz_versions(path):
    r = _rng_for(path.name)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for v in (1, 2, 3):
            with zf.open(f"v{v}.npy", "w", force_zip64=True) as f:
                npformat.write_array(f, make_array("<f4", (2, 3), "F", r), version=(v, 0))


def _npz_large(path):
    r = _rng_for(path.name)
    np.savez_compressed(path, big=r.integers(0, 1000, size=300_000).astype("<f8"),
                        ramp=np.arange(200_000, dtype=">i8"),
                        rnd=make_array("<f4", (50_000,), "C", r))


def _npz_many(path):
    r = _rng_for(path.name)
    keys = [f"k{i:02d}" for i in range(40)]
    r.shuffle(keys)
    np.savez_compressed(path, **{k: make_array("<i4", (i % 5,), "C", r) for i, k in enumerate(keys)})


def _npz_all_dtypes(path):
    r = _rng_for(path.name)
    np.savez_compressed(path, **{dtype_label(dt): make_array(dt, (2, 3), "C", r)
                                 for dt in ALL_DTYPES[::3]})


def _npz_empty_archive(path):
    np.savez(path)


def _npz_only_non_arrays(path):
    _zip_members(path, [("readme.txt", b"hello\n")])


NPZ_CASES = [
    ("savez_stored_keyorder", lambda p: _npz_keyorder(p, False)),
    ("savez_compressed_keyorder", lambda p: _npz_keyorder(p, True)),
    ("savez_positional", _npz_positional),
    ("savez_positional_and_kw", _npz_positional_and_kw),
    ("no_npy_suffix_stored", lambda p: _npz_no_suffix(p, zipfile.ZIP_STORED)),
    ("no_npy_suffix_deflated", lambda p: _npz_no_suffix(p, zipfile.ZIP_DEFLATED)),
    ("empty_members", _npz_empty_members),
    ("big_endian_members", _npz_big_endian),
    ("fortran_members", _npz_fortran),
    ("key_with_npy_suffix", _npz_key_with_npy_suffix),
    ("subdirectory_members", _npz_subdirectory),
    ("non_array_members_skipped", _npz_non_array_members),
    ("unicode_member_names", _npz_unicode_names),
    ("streamed_stored_data_descriptor", lambda p: _npz_streamed(p, False)),
    ("streamed_deflated_data_descriptor", lambda p: _npz_streamed(p, True)),
    ("format_versions_1_2_3", _npz_versions),
    ("large_deflated_members", _npz_large),
    ("many_members_shuffled_keys", _npz_many),
    ("many_dtypes_deflated", _npz_all_dtypes),
    ("empty_archive", _npz_empty_archive),
    ("only_non_array_members", _npz_only_non_arrays),
]
NPZ_IDS = [c[0] for c in NPZ_CASES]

# --- header forms NumPy accepts (each is verified with np.load in the test) ---

F8_DATA = (np.arange(6, dtype="<f8") * 1.5 - 2.0).tobytes()
STD = std_header()
_HDR_10000 = STD + " " * (10000 - len(STD) - 1) + "\n"

ACCEPTED_CASES = [
    # (case_id, kwargs for npy_bytes)
    ("keys_reordered", dict(header="{'shape': (2, 3), 'fortran_order': False, 'descr': '<f8'}", data=F8_DATA)),
    ("keys_reordered_v3", dict(header="{'fortran_order': False, 'shape': (2, 3), 'descr': '<f8', }", major=3, data=F8_DATA)),
    ("double_quotes", dict(header='{"descr": "<f8", "fortran_order": False, "shape": (2, 3), }', data=F8_DATA)),
    ("no_trailing_comma", dict(header="{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3)}", data=F8_DATA)),
    ("extra_spaces", dict(header="{ 'descr' :  '<f8' ,  'fortran_order' : False ,\n 'shape' : ( 2 , 3 ) , }", data=F8_DATA)),
    ("tabs", dict(header="{'descr':\t'<f8',\t'fortran_order':False,\t'shape':(2,3)}", data=F8_DATA)),
    ("no_spaces", dict(header="{'descr':'<f8','fortran_order':False,'shape':(2,3)}", data=F8_DATA)),
    ("leading_spaces", dict(header="   {'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }", data=F8_DATA)),
    ("py2_L_suffix_v1", dict(header="{'descr': '<f8', 'fortran_order': False, 'shape': (2L, 3L), }", data=F8_DATA)),
    ("py2_L_suffix_v2", dict(header="{'descr': '<f8', 'fortran_order': False, 'shape': (6L,), }", major=2, data=F8_DATA)),
    ("not_padded_v1", dict(header=STD, pad=False, data=F8_DATA)),
    ("not_padded_v2", dict(header=STD, major=2, pad=False, data=F8_DATA)),
    ("not_padded_v3", dict(header=STD, major=3, pad=False, data=F8_DATA)),
    ("no_trailing_newline", dict(header=STD, newline=False, data=F8_DATA)),
    ("no_newline_no_padding", dict(header=STD, newline=False, pad=False, data=F8_DATA)),
    ("header_exactly_10000_chars", dict(header=_HDR_10000, pad=False, newline=False, data=F8_DATA)),
    ("fortran_true_handmade", dict(header=std_header(fortran_order=True), data=F8_DATA)),
    ("fortran_true_1d", dict(header=std_header(fortran_order=True, shape="(6,)"), data=F8_DATA)),
    ("fortran_true_scalar", dict(header=std_header(fortran_order=True, shape="()"), data=F8_DATA[:8])),
    ("descr_lt_i1", dict(header=std_header("<i1"), data=bytes(range(250, 256)))),
    ("descr_gt_u1", dict(header=std_header(">u1"), data=bytes(range(250, 256)))),
    ("descr_lt_b1", dict(header=std_header("<b1"), data=b"\x00\x01\x01\x00\x00\x01")),
    ("descr_gt_S3", dict(header=std_header(">S3"), data=b"abcde\x00f\x00\x00xyz\x00\x00\x00ghi")),
    ("zero_dim_with_huge_dim", dict(header=std_header(shape="(0, 1099511627776)"), data=b"")),
    # NumPy's limit: itemsize * product(non-zero dims) <= 2**63 - 1, even when a dim is 0
    ("zero_dim_beside_product_at_i64_limit", dict(header=std_header(shape="(0, 1152921504606846975)"), data=b"")),
    # NumPy ignores bytes after the array data (np.fromfile / read of count items).
    ("trailing_bytes_after_data", dict(header=STD, data=F8_DATA + b"trailing garbage")),
]
ACCEPTED_IDS = [c[0] for c in ACCEPTED_CASES]

# --- malformed / hostile files ---


class Bad:
    def __init__(self, case_id, make, suffix=".npy", needs_data=False, numpy_rejects=True,
                 must_mention=None, note=""):
        self.id = case_id
        self.make = make            # path -> None (writes the file)
        self.suffix = suffix
        self.needs_data = needs_data  # error may only be detectable when the data is read (--stats)
        self.numpy_rejects = numpy_rejects
        self.must_mention = must_mention
        self.note = note


def _w(data):
    def write(path):
        path.write_bytes(data)
    return write


_GOOD_F8 = npy_bytes(STD, data=F8_DATA)


def _huge_header(n):
    return STD + " " * (n - len(STD) - 1) + "\n"


def _npz_bytes(compressed=False, **arrays):
    buf = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buf, **arrays)
    return buf.getvalue()


def _flip_in_member_data(raw, at=200):
    raw = bytearray(raw)
    i = raw.find(MAGIC)
    raw[i + at] ^= 0xFF
    return bytes(raw)


def _crc_corrupt(path):
    path.write_bytes(_flip_in_member_data(_npz_bytes(x=np.arange(100, dtype="<f8"))))


def _deflate_corrupt(path):
    raw = bytearray(_npz_bytes(True, x=np.arange(2000, dtype="<f8") % 7))
    # flip a byte in the middle of the compressed stream of the only member
    info = zipfile.ZipFile(io.BytesIO(bytes(raw))).infolist()[0]
    name_len, extra_len = struct.unpack("<HH", raw[info.header_offset + 26:info.header_offset + 30])
    start = info.header_offset + 30 + name_len + extra_len
    raw[start + info.compress_size // 2] ^= 0x55
    path.write_bytes(bytes(raw))


TIB_ELEMS = 2**37  # * 8 bytes = 1 TiB


def _npz_claims_tib(path, method):
    hdr = npy_bytes(std_header(shape=f"({TIB_ELEMS},)"))
    actual = hdr + b"\0" * (1 << 20)
    payload = deflate_raw(actual) if method == 8 else actual
    claimed = len(hdr) + TIB_ELEMS * 8
    path.write_bytes(build_zip([dict(
        name="huge.npy", payload=payload, method=method, crc=zlib.crc32(actual),
        uncomp_size=claimed, comp_size=len(payload) if method == 8 else claimed)]))


def _zip_with_flag_or_method(path, flags=0, method=0):
    data = array_npy_bytes(np.arange(10, dtype="<i8"))
    path.write_bytes(build_zip([dict(name="x.npy", payload=data, flags=flags, method=method,
                                     crc=zlib.crc32(data))]))


def _npz_bzip2(path):
    _zip_members(path, [("x.npy", array_npy_bytes(np.arange(10, dtype="<i8")))], zipfile.ZIP_BZIP2)


def _npz_truncated(path, keep):
    raw = _npz_bytes(True, a=np.arange(1000, dtype="<f8"), b=np.arange(1000, dtype="<i8"))
    path.write_bytes(raw[:keep(len(raw))])


def _npz_bad_offset(path):
    data = array_npy_bytes(np.arange(10, dtype="<i8"))
    path.write_bytes(build_zip([dict(name="x.npy", payload=data, offset_override=10_000_000)]))


def _npz_member(name, data, compression=zipfile.ZIP_STORED):
    def write(path):
        _zip_members(path, [(name, data)], compression)
    return write


def _object_npy(path):
    np.save(path, np.array([1, "a", None, {"k": 1}], dtype=object), allow_pickle=True)


def _object_npz(path):
    np.savez(path, x=np.array([1, "a", None], dtype=object))


BAD_CASES = [
    Bad("empty_file", _w(b"")),
    Bad("not_npy_text", _w(b"hello, this is not an npy file\n" * 4)),
    Bad("bad_magic", _w(b"\x93NUMPZ" + _GOOD_F8[6:])),
    Bad("truncated_magic", _w(MAGIC[:4])),
    Bad("magic_only", _w(MAGIC + b"\x01\x00")),
    Bad("truncated_header_length", _w(MAGIC + b"\x02\x00\x40\x00")),
    Bad("version_4_0", _w(npy_bytes(STD, 4, 0, F8_DATA))),
    Bad("version_1_1", _w(npy_bytes(STD, 1, 1, F8_DATA))),
    Bad("version_3_1", _w(npy_bytes(STD, 3, 1, F8_DATA))),
    Bad("version_0_0", _w(npy_bytes(STD, 0, 0, F8_DATA))),
    Bad("truncated_header", _w(_GOOD_F8[:40])),
    Bad("header_length_larger_than_file_v1", _w(npy_bytes(STD, 1, 0, F8_DATA, header_len=60000))),
    Bad("header_length_4GiB_v2", _w(npy_bytes(STD, 2, 0, F8_DATA, header_len=0xFFFFFFFF))),
    Bad("header_10001_chars", _w(npy_bytes(_huge_header(10001), pad=False, newline=False, data=F8_DATA))),
    Bad("header_1MiB_v2", _w(npy_bytes(_huge_header(1 << 20), 2, 0, F8_DATA, pad=False, newline=False))),
    Bad("header_not_dict_list", _w(npy_bytes("[('descr', '<f8'), ('fortran_order', False), ('shape', (2, 3))]", data=F8_DATA))),
    Bad("header_not_dict_set", _w(npy_bytes("{'descr', '<f8'}", data=F8_DATA))),
    Bad("header_not_a_literal", _w(npy_bytes("this is not a python literal", data=F8_DATA))),
    Bad("header_unterminated_dict", _w(npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), ", data=F8_DATA))),
    Bad("header_empty", _w(npy_bytes("", data=F8_DATA))),
    Bad("missing_key_fortran_order", _w(npy_bytes("{'descr': '<f8', 'shape': (2, 3), }", data=F8_DATA))),
    Bad("missing_key_descr", _w(npy_bytes("{'fortran_order': False, 'shape': (2, 3), }", data=F8_DATA))),
    Bad("extra_key", _w(npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), 'extra': 1, }", data=F8_DATA))),
    Bad("shape_is_list", _w(npy_bytes(std_header(shape="[2, 3]"), data=F8_DATA))),
    Bad("shape_is_int", _w(npy_bytes(std_header(shape="6"), data=F8_DATA))),
    Bad("shape_is_parenthesized_int", _w(npy_bytes(std_header(shape="(6)"), data=F8_DATA))),
    Bad("shape_negative_dim", _w(npy_bytes(std_header(shape="(-1, 6)"), data=F8_DATA))),
    Bad("shape_two_negative_dims", _w(npy_bytes(std_header(shape="(-2, -3)"), data=F8_DATA))),
    Bad("shape_float_dim", _w(npy_bytes(std_header(shape="(2.0, 3)"), data=F8_DATA))),
    Bad("shape_string_dim", _w(npy_bytes(std_header(shape="('2', 3)"), data=F8_DATA))),
    Bad("shape_nested_tuple", _w(npy_bytes(std_header(shape="((2,), 3)"), data=F8_DATA))),
    Bad("fortran_order_int_0", _w(npy_bytes("{'descr': '<f8', 'fortran_order': 0, 'shape': (2, 3), }", data=F8_DATA))),
    Bad("fortran_order_str_False", _w(npy_bytes("{'descr': '<f8', 'fortran_order': 'False', 'shape': (2, 3), }", data=F8_DATA))),
    Bad("fortran_order_lowercase_false", _w(npy_bytes("{'descr': '<f8', 'fortran_order': false, 'shape': (2, 3), }", data=F8_DATA))),
    Bad("fortran_order_None", _w(npy_bytes("{'descr': '<f8', 'fortran_order': None, 'shape': (2, 3), }", data=F8_DATA))),
    Bad("descr_unknown_x4", _w(npy_bytes(std_header("<x4"), data=F8_DATA))),
    Bad("descr_unknown_foo", _w(npy_bytes(std_header("foo"), data=F8_DATA))),
    Bad("descr_not_a_string", _w(npy_bytes("{'descr': 8, 'fortran_order': False, 'shape': (2, 3), }", data=F8_DATA))),
    Bad("descr_object_pickle", _object_npy, must_mention="pickle"),
    Bad("descr_object_handmade", _w(npy_bytes(std_header("|O", shape="(1,)"), data=b"\x80\x04N.")), must_mention="pickle"),
    Bad("descr_structured", _w(npy_bytes("{'descr': [('a', '<f8'), ('b', '<i4')], 'fortran_order': False, 'shape': (2,), }", data=b"\0" * 24)),
        numpy_rejects=False, note="NumPy loads structured arrays; npyflow does not support them"),
    Bad("py2_L_suffix_v3", _w(npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (2L, 3L), }", 3, 0, F8_DATA))),
    Bad("v3_header_invalid_utf8", _w(npy_bytes(std_header().encode() + b"\xff\xfe", 3, 0, F8_DATA))),
    Bad("data_truncated_by_one_byte", _w(npy_bytes(STD, data=F8_DATA[:-1])), needs_data=True),
    Bad("data_truncated_by_one_byte_v3_fortran", _w(npy_bytes(std_header(fortran_order=True), 3, 0, F8_DATA[:-1])), needs_data=True),
    Bad("data_missing_entirely", _w(npy_bytes(STD)), needs_data=True),
    Bad("shape_product_overflows_u64", _w(npy_bytes(std_header(shape="(4294967296, 4294967296, 4)"), data=F8_DATA))),
    Bad("shape_nbytes_overflows_u64", _w(npy_bytes(std_header(shape="(2305843009213693952,)"), data=F8_DATA))),
    Bad("shape_dim_exceeds_i64", _w(npy_bytes(std_header(shape="(9223372036854775808,)"), data=F8_DATA))),
    Bad("shape_nbytes_exceeds_i64_u1", _w(npy_bytes(std_header("|u1", shape="(9223372036854775808,)"), data=F8_DATA)),
        note="nbytes 2**63 fits in u64 but NumPy's limit is intp (i64)"),
    Bad("shape_dim_exceeds_u64", _w(npy_bytes(std_header(shape="(18446744073709551616,)"), data=F8_DATA))),
    Bad("shape_overflow_beside_zero_dim", _w(npy_bytes(std_header(shape="(0, 4294967296, 4294967296, 4)"))),
        note="NumPy refuses: itemsize * product of the non-zero dims overflows even though one dim is 0"),
    Bad("shape_beside_zero_dim_just_over_i64", _w(npy_bytes(std_header(shape="(0, 1152921504606846976)"))),
        note="NumPy refuses: 8 * 2**60 = 2**63 > intp max, although one dim is 0"),
    Bad("shape_claims_1TiB_in_small_file", _w(npy_bytes(std_header(shape=f"({TIB_ELEMS},)"), data=F8_DATA)), needs_data=True),
    # --- zip / npz ---
    Bad("zip_garbage_after_pk_signature", _w(b"PK\x03\x04" + bytes(range(256)) * 2), suffix=".npz"),
    Bad("npz_truncated_in_middle", lambda p: _npz_truncated(p, lambda n: n // 2), suffix=".npz"),
    Bad("npz_truncated_tail", lambda p: _npz_truncated(p, lambda n: n - 10), suffix=".npz"),
    Bad("npz_deflated_member_claims_1TiB", lambda p: _npz_claims_tib(p, 8), suffix=".npz", needs_data=True),
    Bad("npz_stored_member_claims_1TiB", lambda p: _npz_claims_tib(p, 0), suffix=".npz", needs_data=True),
    Bad("npz_crc_corrupted_stored", _crc_corrupt, suffix=".npz", needs_data=True),
    Bad("npz_deflate_stream_corrupted", _deflate_corrupt, suffix=".npz", needs_data=True),
    Bad("npz_encrypted_flag", lambda p: _zip_with_flag_or_method(p, flags=1), suffix=".npz"),
    Bad("npz_compression_bzip2", _npz_bzip2, suffix=".npz", numpy_rejects=False,
        note="Python's zipfile reads bzip2; npyflow supports only stored and deflated"),
    Bad("npz_compression_method_99", lambda p: _zip_with_flag_or_method(p, method=99), suffix=".npz"),
    Bad("npz_local_header_offset_past_eof", _npz_bad_offset, suffix=".npz"),
    Bad("npz_member_named_npy_not_npy", _npz_member("x.npy", b"hello, not an npy member"), suffix=".npz",
        numpy_rejects=False, note="NpzFile returns the raw bytes; the contract makes it an error"),
    Bad("npz_member_bad_header", _npz_member("x.npy", npy_bytes("{'descr': '<f8', 'shape': (2, 3), }", data=F8_DATA)), suffix=".npz"),
    Bad("npz_member_bad_header_deflated", _npz_member("x", npy_bytes(std_header(shape="(2.0, 3)"), data=F8_DATA), zipfile.ZIP_DEFLATED), suffix=".npz"),
    Bad("npz_member_data_truncated", _npz_member("x.npy", npy_bytes(STD, data=F8_DATA[:-1])), suffix=".npz", needs_data=True),
    Bad("npz_member_object_pickle", _object_npz, suffix=".npz", must_mention="pickle"),
]
BAD_IDS = [b.id for b in BAD_CASES]
assert len(set(BAD_IDS)) == len(BAD_IDS)
assert len(set(NPY_IDS)) == len(NPY_IDS)

# ----------------------------------------------------------------------------
# NumPy's view of a file
# ----------------------------------------------------------------------------


def numpy_header(fp):
    """(format_version string, fortran_order) as NumPy reads the header."""
    major, minor = npformat.read_magic(fp)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Python-2 'L' suffix warning
        _shape, fortran_order, _dtype = _np_read_array_header(fp, (major, minor))
    return f"{major}.{minor}", fortran_order


def numpy_view(path):
    """List of (name, array, fortran_order, format_version) that NumPy reads, in order."""
    path = Path(path)
    with open(path, "rb") as f:
        is_zip = f.read(4) in (b"PK\x03\x04", b"PK\x05\x06")
    if not is_zip:
        with open(path, "rb") as f:
            version, fo = numpy_header(f)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            a = np.load(path)
        return [(None, a, fo, version)]
    out = []
    with zipfile.ZipFile(path) as zf, np.load(path) as npz:
        for info in zf.infolist():
            with zf.open(info) as m:
                if m.read(len(MAGIC)) != MAGIC:
                    continue  # NpzFile would return raw bytes: not an array
            with zf.open(info) as m:
                version, fo = numpy_header(m)
            key = info.filename.removesuffix(".npy")
            a = npz[key]
            out.append((key, a, fo, version))
    return out


def _py_scalar(v, kind):
    if kind == "b":
        return bool(v)
    if kind in "iu":
        return int(v)
    if kind == "f":
        return float(v)
    if kind == "c":
        return [float(v.real), float(v.imag)]
    raise AssertionError(kind)


def reference_sum(a):
    """(exact sum, sum of |x|) of the elements converted to float64.

    "sum" is checked against np.sum(a, dtype=np.float64) and, as an alternative, against
    this correctly rounded sum (math.fsum), which a compensated sum approximates: the
    two differ by more than the tolerance only where partial sums overflow although
    the exact sum is finite (the corpus generator avoids such data). Non-finite inputs
    follow IEEE: NaN, or +inf with -inf, gives NaN; otherwise that infinity.
    """
    vals = a.astype(np.float64).ravel().tolist()
    try:
        ref = math.fsum(vals)
    except ValueError:  # inf + -inf
        ref = math.nan
    except OverflowError:  # finite inputs whose partial sums overflow: exact rational sum
        exact = sum(Fraction(v) for v in vals)
        try:
            ref = float(exact)
        except OverflowError:
            ref = math.copysign(math.inf, exact)
    try:
        sum_abs = math.fsum(abs(v) for v in vals)
    except (OverflowError, ValueError):
        sum_abs = math.inf
    return ref, sum_abs


def expected_record(path_arg, name, a, fortran_order, version, stats):
    rec = {
        "path": str(path_arg),
        "name": name,
        "dtype": a.dtype.str,
        "shape": list(a.shape),
        "fortran_order": bool(fortran_order),
        "format_version": version,
        "nbytes": int(a.nbytes),
    }
    kind = a.dtype.kind
    if stats and kind in "biufc":
        flat = a.ravel(order="C")
        rec["head"] = [_py_scalar(v, kind) for v in flat[:HEAD_LEN]]
        if kind != "c":
            if a.size == 0:
                rec["min"] = rec["max"] = None
                rec["sum"] = 0.0
                rec["_sum_exact"] = rec["_sum_abs"] = 0.0
            else:
                rec["min"] = float(a.min())
                rec["max"] = float(a.max())
                with np.errstate(all="ignore"):
                    rec["sum"] = float(np.sum(a, dtype=np.float64))
                rec["_sum_exact"], rec["_sum_abs"] = reference_sum(a)
    return rec


def expected_records(path, path_arg, stats):
    return [expected_record(path_arg, name, a, fo, ver, stats)
            for name, a, fo, ver in numpy_view(path)]


# ----------------------------------------------------------------------------
# Comparison
# ----------------------------------------------------------------------------


def _is_num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _same_float(got, exp, signed_zero=True):
    if not _is_num(got):
        return False
    got = float(got)
    if math.isnan(exp):
        return math.isnan(got)
    if got != exp:
        return False
    if signed_zero and exp == 0.0:
        return math.copysign(1.0, got) == math.copysign(1.0, exp)
    return True


def _head_problems(got, exp, kind):
    if not isinstance(got, list):
        return [f"head: expected a list, got {got!r}"]
    if len(got) != len(exp):
        return [f"head: expected {len(exp)} elements {exp!r}, got {len(got)}: {got!r}"]
    probs = []
    for i, (g, e) in enumerate(zip(got, exp)):
        if kind == "b":
            ok = isinstance(g, bool) and g == e
        elif kind in "iu":
            ok = isinstance(g, int) and not isinstance(g, bool) and g == e
        elif kind == "f":
            ok = isinstance(g, float) and _same_float(g, e)
        else:  # complex
            ok = (isinstance(g, list) and len(g) == 2 and all(isinstance(x, float) for x in g)
                  and _same_float(g[0], e[0]) and _same_float(g[1], e[1]))
        if not ok:
            probs.append(f"head[{i}]: expected {e!r}, got {g!r}")
    return probs


def record_problems(got, exp, stats):
    probs = []
    for k in REQUIRED_KEYS:
        if k not in got:
            probs.append(f"missing key {k!r}")
        elif k == "shape":
            if not (isinstance(got[k], list) and all(isinstance(x, int) and not isinstance(x, bool) for x in got[k])
                    and got[k] == exp[k]):
                probs.append(f"shape: expected {exp[k]!r}, got {got[k]!r}")
        elif k == "fortran_order":
            if got[k] is not exp[k]:
                probs.append(f"fortran_order: expected {exp[k]!r}, got {got[k]!r}")
        elif k == "nbytes":
            if not (isinstance(got[k], int) and not isinstance(got[k], bool) and got[k] == exp[k]):
                probs.append(f"nbytes: expected {exp[k]!r}, got {got[k]!r}")
        elif got[k] != exp[k] or type(got[k]) is not type(exp[k]):
            probs.append(f"{k}: expected {exp[k]!r}, got {got[k]!r}")
    present = [k for k in STATS_KEYS if k in got]
    expected_stats = [k for k in STATS_KEYS if k in exp]
    if sorted(present) != sorted(expected_stats):
        probs.append(f"stats keys: expected {expected_stats} (stats={stats}, dtype={exp['dtype']}), got {present}")
    kind = np.dtype(exp["dtype"]).kind
    if "head" in exp and "head" in got:
        probs += _head_problems(got["head"], exp["head"], kind)
    for k in ("min", "max"):
        if k in exp and k in got:
            e, g = exp[k], got[k]
            if e is None:
                if g is not None:
                    probs.append(f"{k}: expected null (empty array), got {g!r}")
            elif not _same_float(g, e, signed_zero=False):
                probs.append(f"{k}: expected {e!r}, got {g!r}")
    if "sum" in exp and "sum" in got:
        e, g = exp["sum"], got["sum"]
        if not _is_num(g):
            probs.append(f"sum: expected a number close to {e!r}, got {g!r}")
        else:
            g = float(g)
            abs_tol = 1e-9 * min(exp["_sum_abs"], np.finfo(np.float64).max) + 1e-300

            def close(ref):
                if math.isnan(ref) or math.isinf(ref):
                    return _same_float(g, ref, signed_zero=False)
                return math.isclose(g, ref, rel_tol=1e-9, abs_tol=abs_tol)

            if not (close(e) or close(exp["_sum_exact"])):
                probs.append(f"sum: expected {e!r} (np.sum in float64; exact sum {exp['_sum_exact']!r}, "
                             f"sum|x|={exp['_sum_abs']!r}), got {g!r}")
    return probs


def assert_records_match(got, exp, stats, context=""):
    probs = []
    if len(got) != len(exp):
        probs.append(f"expected {len(exp)} record(s) {[e['name'] for e in exp]}, "
                     f"got {len(got)}: {[g.get('name') for g in got]}")
    for i, (g, e) in enumerate(zip(got, exp)):
        if g.get("name") != e["name"]:
            probs.append(f"record {i}: expected name {e['name']!r}, got {g.get('name')!r} "
                         "(npz members must be reported in archive order)")
            continue
        probs += [f"record {i} ({e['name']!r}): {p}" for p in record_problems(g, e, stats)]
    if probs:
        shown = "\n  ".join(probs[:40])
        raise AssertionError(f"{'with' if stats else 'without'} --stats: {len(probs)} problem(s):\n  {shown}"
                             + (f"\n{context}" if context else ""))


# ----------------------------------------------------------------------------
# Corpus fixture: build once, run the CLI in batches
# ----------------------------------------------------------------------------


class Corpus:
    def __init__(self, root):
        self.root = root
        self.npy = {}       # case_id -> path
        self.npz = {}
        self.accepted = {}
        self.runs = {}      # stats(bool) -> list of CliResult
        self.records = {}   # stats -> {path str: [records]}
        self.stderr_lines = {}  # stats -> [lines]

    def all_good_paths(self):
        return list(self.npy.values()) + list(self.npz.values()) + list(self.accepted.values())

    def run_batches(self, cli):
        paths = [str(p) for p in self.all_good_paths()]
        for stats in (True, False):
            flags = ["inspect", "--json"] + (["--stats"] if stats else [])
            runs, by_path, err = [], {}, []
            for i in range(0, len(paths), BATCH):
                r = cli(flags + paths[i:i + BATCH], timeout=BATCH_TIMEOUT)
                runs.append(r)
                err += r.stderr.splitlines()
                try:
                    recs = r.records()
                except AssertionError as e:
                    err.append(f"(unparsable stdout in batch {i // BATCH}: {e})")
                    recs = []
                for rec in recs:
                    by_path.setdefault(rec.get("path"), []).append(rec)
            self.runs[stats] = runs
            self.records[stats] = by_path
            self.stderr_lines[stats] = err

    def check(self, cli, path, stats):
        exp = expected_records(path, str(path), stats)
        got = self.records[stats].get(str(path), [])
        errs = [ln for ln in self.stderr_lines[stats] if str(path) in ln]
        try:
            assert_records_match(got, exp, stats)
            if errs:
                raise AssertionError("the CLI reported an error for this file:\n  " + "\n  ".join(errs[:5]))
        except AssertionError as err:
            # re-run this file alone so that the failure message is specific
            flags = ["inspect", "--json"] + (["--stats"] if stats else [])
            single = cli(flags + [str(path)])
            raise AssertionError(
                f"{path.name}: {err}\n"
                f"expected: {json.dumps([{k: v for k, v in e.items() if not k.startswith('_')} for e in exp])[:1500]}\n"
                f"got (batch run): {json.dumps(got)[:1500]}\n"
                f"single-file run:\n{single.describe()}"
            ) from None


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, cli):
    root = tmp_path_factory.mktemp("npy_corpus")
    c = Corpus(root)
    (root / "npy").mkdir()
    for case_id, dt, shape, order, v in NPY_CASES:
        a = make_array(dt, shape, order, _rng_for(case_id))
        p = root / "npy" / f"{case_id}.npy"
        with open(p, "wb") as f:
            npformat.write_array(f, a, version=(v, 0), allow_pickle=False)
        c.npy[case_id] = p
    (root / "npz").mkdir()
    for case_id, build in NPZ_CASES:
        p = root / "npz" / f"{case_id}.npz"
        build(p)
        c.npz[case_id] = p
    (root / "accepted").mkdir()
    for case_id, kw in ACCEPTED_CASES:
        p = root / "accepted" / f"{case_id}.npy"
        p.write_bytes(npy_bytes(**kw))
        c.accepted[case_id] = p
    c.run_batches(cli)
    return c


# ----------------------------------------------------------------------------
# Tests
# ----------------------------------------------------------------------------


def test_binary_exists():
    from conftest import find_npyflow_bin

    path, why = find_npyflow_bin()
    if path is None:
        pytest.fail(why, pytrace=False)


def test_good_corpus_batches_exit_zero(corpus):
    bad = []
    for stats, runs in corpus.runs.items():
        for r in runs:
            if r.returncode != 0:
                bad.append(f"--stats={stats}: exit {r.returncode}; stderr: {r.stderr[:1500]}")
    assert not bad, "CLI failed on files NumPy reads:\n" + "\n".join(bad)


@pytest.mark.parametrize("case_id", NPY_IDS)
def test_npy_matches_numpy(corpus, cli, case_id):
    path = corpus.npy[case_id]
    corpus.check(cli, path, stats=True)
    corpus.check(cli, path, stats=False)


@pytest.mark.parametrize("case_id", NPZ_IDS)
def test_npz_matches_numpy(corpus, cli, case_id):
    path = corpus.npz[case_id]
    corpus.check(cli, path, stats=True)
    corpus.check(cli, path, stats=False)


@pytest.mark.parametrize("case_id", ACCEPTED_IDS)
def test_header_forms_numpy_accepts(corpus, cli, case_id):
    path = corpus.accepted[case_id]
    # NumPy must accept it (otherwise the case itself is wrong)
    try:
        numpy_view(path)
    except Exception as e:  # pragma: no cover - corpus construction error
        pytest.fail(f"test corpus error: NumPy rejects {case_id}: {e!r}")
    corpus.check(cli, path, stats=True)
    corpus.check(cli, path, stats=False)


def _numpy_rejects(path):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = np.load(path)
            if isinstance(res, np.lib.npyio.NpzFile):
                with res:
                    for k in res.files:
                        res[k]
    except Exception as e:
        return repr(e)[:200]
    return None


def _stderr_names(result, path):
    lines = [ln for ln in result.stderr.splitlines() if path in ln]
    return any(len(ln.replace(path, "").strip(" :\t-")) >= 3 for ln in lines)


@pytest.mark.parametrize("case", BAD_CASES, ids=BAD_IDS)
def test_malformed_file_rejected(tmp_path, cli, case):
    path = tmp_path / f"{case.id}{case.suffix}"
    case.make(path)
    numpy_error = _numpy_rejects(path)
    if case.numpy_rejects:
        assert numpy_error, f"test corpus error: NumPy accepts {case.id}"
    else:
        assert numpy_error is None, f"NumPy now rejects {case.id} ({numpy_error}); update the case"

    modes = [True] if case.needs_data else [True, False]
    for stats in modes:
        args = ["inspect", "--json"] + (["--stats"] if stats else []) + [str(path)]
        try:
            r = cli(args, timeout=HOSTILE_TIMEOUT)
        except Exception as e:  # subprocess.TimeoutExpired
            pytest.fail(f"{'with' if stats else 'without'} --stats: CLI did not finish: {e!r}")
        ctx = f"({'with' if stats else 'without'} --stats; NumPy says: {numpy_error}; {case.note})\n" + r.describe()
        assert r.returncode == 1, f"expected exit status 1 {ctx}"
        assert _stderr_names(r, str(path)), f"expected a stderr line with the path and a reason {ctx}"
        if case.must_mention:
            assert case.must_mention in r.stderr.lower(), f"stderr should mention {case.must_mention!r} {ctx}"


def test_several_files_one_malformed(tmp_path, cli):
    """Relative paths, echoed as given; the bad file does not stop the others."""
    r = _rng_for("several")
    good1 = tmp_path / "good1.npy"
    np.save(good1, make_array(">f8", (3, 4), "F", r))
    bad = tmp_path / "bad.npy"
    bad.write_bytes(b"\x93NUMPZ" + _GOOD_F8[6:])
    good_npz = tmp_path / "good.npz"
    np.savez_compressed(good_npz, b=make_array("<i8", (5,), "C", r), a=make_array("|b1", (2, 2), "C", r))
    good2 = tmp_path / "good2.npy"
    np.save(good2, make_array("<u2", (7,), "C", r))
    missing = "does_not_exist.npy"

    names = ["good1.npy", "bad.npy", "good.npz", missing, "good2.npy"]
    res = cli(["inspect", "--json", "--stats"] + names, cwd=tmp_path)
    assert res.returncode == 1, res.describe()
    assert _stderr_names(res, "bad.npy"), "no stderr line names bad.npy\n" + res.describe()
    assert _stderr_names(res, missing), f"no stderr line names {missing}\n" + res.describe()
    recs = res.records()
    by_path = {}
    for rec in recs:
        by_path.setdefault(rec.get("path"), []).append(rec)
    assert set(by_path) == {"good1.npy", "good.npz", "good2.npy"}, res.describe()
    for n in ("good1.npy", "good.npz", "good2.npy"):
        assert_records_match(by_path[n], expected_records(tmp_path / n, n, True), True, res.describe())


def test_path_echoed_exactly(tmp_path, cli):
    sub = tmp_path / "dir with space"
    sub.mkdir()
    np.save(sub / "a.npy", np.arange(3, dtype="<i4"))
    arg = "./dir with space/../dir with space/a.npy"
    res = cli(["inspect", "--json", arg], cwd=tmp_path)
    assert res.returncode == 0, res.describe()
    recs = res.records()
    assert [rec.get("path") for rec in recs] == [arg], res.describe()

"""The Python front's `shuffle(N).map(f, num_parallel_calls)` against `map(f, ...)` alone.

f is a NumPy gamma curve on 20,000 random 32x32x3 uint8 images, `shuffle(1000)` before it,
`batch(256)` after; 1 thread and AUTOTUNE, the median of 3 passes each. Prints one line a
figure, prefixed by the label given (to compare two builds of the package, alternately):

    maturin build --release -o WHEELS -i PYTHON     # in crates/npyflow-python, for each build
    PYTHONPATH=<unpacked wheel> python bench/shuffle_map.py after
"""

import sys
import time

import numpy as np

import npyflow as nf


def gamma(img: np.ndarray) -> np.ndarray:
    return np.power(img.astype(np.float32) / 255.0, 2.2)


def main() -> None:
    label = sys.argv[1] if len(sys.argv) > 1 else "build"
    x = np.random.default_rng(0).integers(0, 256, (20000, 32, 32, 3), dtype=np.uint8)
    src = nf.data.Dataset.from_tensor_slices(x)
    pipelines = {}
    for name, inp in (("map", src), ("shuffle+map", src.shuffle(1000, seed=7))):
        for threads, p in (("1", 1), ("autotune", nf.AUTOTUNE)):
            pipelines[(name, threads)] = inp.map(gamma, num_parallel_calls=p).batch(256)
    rates: dict = {k: [] for k in pipelines}
    for _ in range(3):
        for k, ds in pipelines.items():
            start = time.perf_counter()
            rows = sum(b.shape[0] for b in ds)
            rates[k].append(rows / (time.perf_counter() - start))
    median = {k: sorted(v)[1] for k, v in rates.items()}
    for (name, threads), v in median.items():
        print(f"{label} {name} threads={threads} rows/s={v:.0f}")
    sm = median[("shuffle+map", "autotune")]
    print(
        f"{label} shuffle+map/map at AUTOTUNE {sm / median[('map', 'autotune')]:.2f}, "
        f"shuffle+map AUTOTUNE/1 thread {sm / median[('shuffle+map', '1')]:.2f}"
    )


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""W6 (../shared/WORKLOADS.md): W2's 1 GiB x.npy on a local S3-compatible server, shuffled and
batched, on npyflow and on the peers, in one run.

Starts an S3 server on 127.0.0.1: s3rver (npm's `s3rver`, a Node server over files, which
serves a ranged GET by reading that range of its file) when `--s3rver PATH` names its
command, else moto's (`python -m moto.server`; moto reads the whole object for every GET,
ranged or not, so any reader by range is bound by it); or, when AWS_ENDPOINT_URL is set, the
server there, with the AWS_* keys. It uploads x.npy (1,048,576 x 256 float32, made by
anchors.py w2's generator when missing) once, then, REPEATS times, alternating:

* the server's raw sequential download throughput: one GET of the whole object, read and
  dropped (curl, one connection);
* npyflow: `npyflow bench --workload w6 --url s3://... --shuffle block` (block shuffle,
  seed 0, batch 1024), and with --global `--shuffle global` too (a ranged GET per row);
* the peers of ../shared/anchors/anchors.py w6: `ranges` (a ranged GET per shuffled block of
  1024 rows, one at a time) and `numpy` (download the object whole, then batch a permutation
  from memory).

Every command runs as a child whose peak resident memory (ru_maxrss) is taken when it ends,
so all engines are measured alike. The peers do not report their first batch; this script
times it with the same steps (numpy: the download and np.load; ranges: the header GET and
the first block's GET).

    python bench/w6_bench.py [--update] [--repeats 3] [--data DIR] [--peer-python PY] [--s3rver PATH]

(s3rver: `npm install --prefix /tmp/s3rver s3rver@3`, then --s3rver
/tmp/s3rver/node_modules/.bin/s3rver.)
"""
import argparse
import io
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "python_pkg"))

from benchmarks_md import update_section  # noqa: E402
from workloads_bench import ANCHORS, NPYFLOW, ROOT  # noqa: E402

BUCKET = "npyflow-w6"
KEY = "w2_x_1048576x256.npy"


def run_measured(cmd, env):
    """Runs cmd; returns (its last stdout line as JSON, its peak RSS in MiB, seconds)."""
    code = (
        "import resource, subprocess, sys, time\n"
        "t = time.perf_counter()\n"
        "r = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "t = time.perf_counter() - t\n"
        "sys.stderr.write(r.stderr)\n"
        "if r.returncode: sys.exit(r.returncode)\n"
        "print(r.stdout.strip().splitlines()[-1] if r.stdout.strip() else '{}')\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, t)\n"
    )
    out = subprocess.run([sys.executable, "-c", code] + cmd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise RuntimeError("%s failed: %s" % (" ".join(cmd), out.stderr.strip()[-2000:]))
    lines = out.stdout.strip().splitlines()
    maxrss_kib, secs = lines[-1].split()
    return json.loads(lines[-2]), int(maxrss_kib) / 1024, float(secs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--update", action="store_true")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--data", default=os.environ.get("TMPDIR", "/tmp"))
    ap.add_argument("--peer-python", default=sys.executable)
    ap.add_argument("--s3rver", default=None, help="the s3rver command (npm's s3rver) to serve the object")
    ap.add_argument("--npyflow", default=None, help="the npyflow command (default: build the release one)")
    ap.add_argument("--global", dest="with_global", action="store_true",
                    help="also run --shuffle global (a ranged GET per row: about a million requests)")
    args = ap.parse_args()

    npyflow = args.npyflow or NPYFLOW
    if args.npyflow is None:
        subprocess.run(["cargo", "build", "--release", "--locked", "-p", "npyflow-cli"], cwd=ROOT, check=True)
    import boto3
    import numpy as np

    path = os.path.join(args.data, KEY)
    if not os.path.exists(path):
        # anchors.py w2's file: its generator, its name.
        subprocess.run([args.peer_python, ANCHORS, "w2", "numpy", "--data", args.data], check=True,
                       capture_output=True, env=dict(os.environ, TMPDIR=args.data))
    if not os.path.exists(path):
        raise SystemExit("anchors.py w2 did not write %s" % path)

    server = None
    server_name = "the server at AWS_ENDPOINT_URL"
    env = dict(os.environ)
    if not env.get("AWS_ENDPOINT_URL") and args.s3rver:
        from storage_servers import free_port, wait_until
        import tempfile
        import urllib.request

        port = free_port()
        store = tempfile.mkdtemp(prefix="s3rver-", dir=args.data)
        proc = subprocess.Popen([args.s3rver, "-d", store, "-a", "127.0.0.1", "-p", str(port), "--silent"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def up():
            try:
                urllib.request.urlopen("http://127.0.0.1:%d/" % port, timeout=1)
                return True
            except urllib.error.HTTPError:
                return True
            except Exception:
                return False

        wait_until(up, 30, "s3rver")

        class Stop:
            def stop(self):
                proc.terminate()
                proc.wait(timeout=10)
                shutil.rmtree(store, ignore_errors=True)

        server = Stop()
        server_name = "s3rver 3.7 (Node, files) on 127.0.0.1"
        env.update(AWS_ENDPOINT_URL="http://127.0.0.1:%d" % port, AWS_ALLOW_HTTP="true", AWS_ACCESS_KEY_ID="S3RVER",
                   AWS_SECRET_ACCESS_KEY="S3RVER", AWS_REGION="us-east-1")
    elif not env.get("AWS_ENDPOINT_URL"):
        from storage_servers import ACCESS_KEY, SECRET_KEY, MotoServer

        server = MotoServer()
        server_name = "moto's S3 server (`python -m moto.server`) on 127.0.0.1"
        env.update(AWS_ENDPOINT_URL=server.url, AWS_ALLOW_HTTP="true", AWS_ACCESS_KEY_ID=ACCESS_KEY,
                   AWS_SECRET_ACCESS_KEY=SECRET_KEY, AWS_REGION="us-east-1")
    try:
        s3 = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                          aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"], region_name=env.get("AWS_REGION", "us-east-1"))
        try:
            s3.create_bucket(Bucket=BUCKET)
        except Exception:
            pass
        try:
            size = s3.head_object(Bucket=BUCKET, Key=KEY)["ContentLength"]
        except Exception:
            size = -1
        if size != os.path.getsize(path):
            t = time.perf_counter()
            s3.upload_file(path, BUCKET, KEY)
            print("uploaded %s in %.1f s" % (KEY, time.perf_counter() - t), flush=True)
        size = os.path.getsize(path)
        url = "s3://%s/%s" % (BUCKET, KEY)
        http_url = s3.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": KEY}, ExpiresIn=3600)

        def raw():
            curl = shutil.which("curl")
            if curl:
                out = subprocess.run([curl, "-s", "-o", "/dev/null", "-w", "%{size_download} %{time_total}", http_url],
                                     capture_output=True, text=True, check=True)
                n, secs = out.stdout.split()
                return int(n) / float(secs) / 1e9
            t = time.perf_counter()
            body = s3.get_object(Bucket=BUCKET, Key=KEY)["Body"]
            n = 0
            for chunk in body.iter_chunks(1 << 20):
                n += len(chunk)
            return n / (time.perf_counter() - t) / 1e9

        def first_batch(engine):
            t = time.perf_counter()
            if engine == "numpy":
                body = s3.get_object(Bucket=BUCKET, Key=KEY)["Body"].read()
                x = np.load(io.BytesIO(body))
                perm = np.random.default_rng(0).permutation(len(x))
                x[np.sort(perm[:1024])]
            else:
                head = s3.get_object(Bucket=BUCKET, Key=KEY, Range="bytes=0-4095")["Body"].read()
                f = io.BytesIO(head)
                np.lib.format.read_magic(f)
                shape, _, dtype = np.lib.format.read_array_header_1_0(f)
                off, rowb = f.tell(), int(np.prod(shape[1:])) * dtype.itemsize
                b = np.random.default_rng(0).permutation((shape[0] + 1023) // 1024)[0]
                raw_ = s3.get_object(Bucket=BUCKET, Key=KEY, Range="bytes=%d-%d" % (off + b * 1024 * rowb, off + (b + 1) * 1024 * rowb - 1))["Body"].read()
                np.frombuffer(raw_, dtype=dtype)
            return (time.perf_counter() - t) * 1e3

        results = {k: [] for k in ("raw", "block", "global", "ranges", "numpy")}
        for rep in range(args.repeats):
            results["raw"].append({"gb_per_s": raw()})
            for shuffle in ("block", "global") if args.with_global else ("block",):
                j, rss, _ = run_measured([npyflow, "bench", "--workload", "w6", "--url", url, "--shuffle", shuffle, "--json"], env)
                j["peak_rss_mib"] = rss
                results[shuffle].append(j)
            for peer in ("ranges", "numpy"):
                j, rss, _ = run_measured([args.peer_python, ANCHORS, "w6", peer, "--url", url], env)
                j["peak_rss_mib"] = rss
                if rep == 0:
                    j["first_batch_ms"] = first_batch(peer)
                results[peer].append(j)
            print(json.dumps({k: v[-1] for k, v in results.items() if v}), flush=True)
    finally:
        if server is not None:
            server.stop()

    med = lambda k, key: statistics.median(r[key] for r in results[k] if key in r)
    raw_gb = med("raw", "gb_per_s")
    rows = ["| engine | rows/s | GB/s | of raw download | npyflow block / engine | peak RSS | first batch |",
            "|---|---|---|---|---|---|---|"]
    rows.append("| the server's raw sequential download (curl, one GET of %d MiB) | | %.3f | 100%% | | | |" % (size >> 20, raw_gb))
    ours = med("block", "rows_per_s")
    names = {
        "block": "npyflow `from_npy(url).block_shuffle(4096, 4, seed=0).batch(1024)` (4 MiB blocks, 8 requests in flight, 64 MiB budget)",
        "global": "npyflow `from_npy(url).global_shuffle(seed=0).batch(1024)`",
        "ranges": "anchors `ranges`: a ranged GET per shuffled block of 1024 rows",
        "numpy": "anchors `numpy`: download whole, then batch a permutation",
    }
    for k in ("block", "global", "ranges", "numpy"):
        if not results[k]:
            continue
        r = med(k, "rows_per_s")
        rows.append("| %s | %.0fk | %.3f | %.0f%% | %s | %.0f MiB | %.0f ms |" % (
            names[k], r / 1e3, med(k, "gb_per_s"), 100 * med(k, "gb_per_s") / raw_gb,
            "" if k == "block" else "%.2fx" % (ours / r), med(k, "peak_rss_mib"), med(k, "first_batch_ms")))
    table = "\n".join(rows)
    print(table)
    if args.update:
        update_section("w6", "W6: a big array on object storage", table,
                       ", medians of %d alternating runs, %s on the same machine, x.npy 1,048,576 x 256 "
                       "float32 (1 GiB) in its files (page cache warm); peak RSS is each process's ru_maxrss; "
                       "with `npm install --prefix /tmp/s3rver s3rver@3` and `.venv/bin/python bench/w6_bench.py --update "
                       "--peer-python PY --data /tmp/npyflow-bench%s` (about 3 minutes; PY has boto3 and NumPy). "
                       "Targets (issue 15): >= 80%% of the raw download, >= 3x `ranges`, >= 0.8x `numpy`'s rows/s at a "
                       "tenth of its peak RSS and a first batch >= 20x sooner and < 100 ms." % (
                           args.repeats, server_name, " --s3rver /tmp/s3rver/node_modules/.bin/s3rver" if args.s3rver else ""))


if __name__ == "__main__":
    main()

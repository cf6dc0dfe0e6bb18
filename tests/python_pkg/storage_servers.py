"""Real servers on 127.0.0.1 for the object-storage tests, each started by a test fixture and
stopped by it, every wait bounded:

* ``MotoServer``: moto's S3 server (``python -m moto.server``) in a child process, on a free
  port; speaks the S3 HTTP API (ranged GET, If-Match, ListObjectsV2, PUT).
* ``RangeHTTPServer``: a plain HTTP/1.1 file server (the standard library's, plus ``Range``,
  ``ETag`` and ``If-Match``), serving a directory.
* ``FaultProxy``: an HTTP proxy in front of either, which answers some requests with a fault
  instead of forwarding them: an error status (429, 500, 503), a reset connection, a stall
  longer than the client's timeout, or a body cut short. Which requests fail is set by the
  test (every n-th, the first k, or those whose ``Range`` starts at given offsets), so a run
  is reproducible.
"""

from __future__ import annotations

import http.client
import hashlib
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

ACCESS_KEY = "AKIDNPYFLOWTEST0001"
SECRET_KEY = "npyflow-test-secret-k3y-never-shown"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(ready: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not start within {timeout} s")


class MotoServer:
    """moto's S3 server in a child process on 127.0.0.1."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )

        def up() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"moto.server exited with {self.proc.returncode}")
            try:
                with urllib.request.urlopen(self.url + "/moto-api/", timeout=1):
                    return True
            except Exception:
                return False

        try:
            wait_until(up, 30, "moto.server")
        except BaseException:
            self.stop()
            raise
        import boto3

        self.s3 = boto3.client(
            "s3",
            endpoint_url=self.url,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name="us-east-1",
        )

    def options(self, endpoint: Optional[str] = None, **extra: str) -> Dict[str, str]:
        """storage_options for npyflow to reach this server (or a proxy in front of it)."""
        o = {
            "aws_endpoint_url": endpoint or self.url,
            "aws_allow_http": "true",
            "aws_access_key_id": ACCESS_KEY,
            "aws_secret_access_key": SECRET_KEY,
            "aws_region": "us-east-1",
        }
        o.update(extra)
        return o

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


class _RangeHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    root: Path

    def log_message(self, *args: object) -> None:
        pass

    def _target(self) -> Optional[Path]:
        rel = urllib.request.url2pathname(self.path.split("?", 1)[0]).lstrip("/")
        p = (self.root / rel).resolve()
        if self.root.resolve() not in p.parents or not p.is_file():
            return None
        return p

    def _etag(self, p: Path) -> str:
        st = p.stat()
        return '"' + hashlib.md5(f"{st.st_mtime_ns}-{st.st_size}".encode()).hexdigest() + '"'

    def _head_or_get(self, body: bool) -> None:
        p = self._target()
        if p is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data = p.read_bytes()
        etag = self._etag(p)
        want = self.headers.get("If-Match")
        if want is not None and want != etag:
            self.send_response(412)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        start, end = 0, len(data)
        status = 200
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes="):
            a, _, b = rng[6:].partition("-")
            if a == "":
                start = max(0, len(data) - int(b))
            else:
                start = int(a)
                end = min(len(data), int(b) + 1) if b else len(data)
            if start >= len(data) or start >= end:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 206
        self.send_response(status)
        self.send_header("Content-Length", str(end - start))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("ETag", etag)
        self.send_header("Last-Modified", self.date_time_string(int(p.stat().st_mtime)))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{len(data)}")
        self.end_headers()
        if body:
            self.wfile.write(data[start:end])

    def do_HEAD(self) -> None:  # noqa: N802
        self._head_or_get(False)

    def do_GET(self) -> None:  # noqa: N802
        self._head_or_get(True)


class RangeHTTPServer:
    """Serves ``root`` over HTTP on 127.0.0.1, with Range, ETag and If-Match."""

    def __init__(self, root: Path) -> None:
        handler = type("Handler", (_RangeHandler,), {"root": Path(root)})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05})
        self.thread.daemon = True
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


# A fault: "403" (an answer that echoes the credentials), "429", "500", "503" (a status with an S3-style error body), "reset" (the
# connection closed without an answer), "stall" (no answer for `stall_s`, then closed),
# "truncate" (the upstream's headers and half its body, then closed).
FAULTS = ("429", "500", "503", "reset", "stall", "truncate")


class FaultProxy:
    """An HTTP proxy on 127.0.0.1 in front of ``upstream`` (http://host:port) that answers
    the requests ``plan`` picks with a fault. ``plan(n, method, range_start)`` gets the
    request's number (from 0), its method and the start of its Range (None without one), and
    returns a fault name or None (forward it)."""

    def __init__(self, upstream: str, plan: Callable[[int, str, Optional[int]], Optional[str]], stall_s: float = 3.0) -> None:
        host, port = upstream.removeprefix("http://").split(":")
        self.upstream = (host, int(port))
        self.plan = plan
        self.stall_s = stall_s
        self.lock = threading.Lock()
        self.count = 0
        self.faults: List[Tuple[str, str, Optional[int]]] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _forward(self) -> None:
                with proxy.lock:
                    n = proxy.count
                    proxy.count += 1
                rng = self.headers.get("Range")
                start = None
                if rng and rng.startswith("bytes=") and rng[6:].split("-")[0]:
                    start = int(rng[6:].split("-")[0])
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                fault = proxy.plan(n, self.command, start)
                if fault is not None:
                    with proxy.lock:
                        proxy.faults.append((fault, self.command, start))
                if fault == "403":
                    # A server that echoes the credentials it was sent (AWS echoes the key id).
                    msg = (
                        f"<Error><Code>SignatureDoesNotMatch</Code><AWSAccessKeyId>{ACCESS_KEY}</AWSAccessKeyId>"
                        f"<Message>{SECRET_KEY} {self.headers.get('Authorization')}</Message></Error>"
                    ).encode()
                    self.send_response(403)
                    self.send_header("Content-Length", str(len(msg)))
                    self.send_header("Content-Type", "application/xml")
                    self.end_headers()
                    self.wfile.write(msg)
                    return
                if fault in ("429", "500", "503"):
                    msg = b"<Error><Code>SlowDown</Code><Message>injected</Message></Error>"
                    self.send_response(int(fault))
                    self.send_header("Content-Length", str(len(msg)))
                    self.send_header("Content-Type", "application/xml")
                    self.end_headers()
                    self.wfile.write(msg)
                    return
                if fault == "reset":
                    self._reset()
                    return
                if fault == "stall":
                    time.sleep(proxy.stall_s)
                    self._reset()
                    return
                conn = http.client.HTTPConnection(*proxy.upstream, timeout=30)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
                    conn.request(self.command, self.path, body=body, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                finally:
                    conn.close()
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(k, v)
                if self.command == "HEAD":
                    self.send_header("Content-Length", resp.getheader("Content-Length") or "0")
                else:
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if fault == "truncate" and self.command != "HEAD" and len(data) > 1:
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    self._reset()
                    return
                if self.command != "HEAD":
                    self.wfile.write(data)

            def _reset(self) -> None:
                # SO_LINGER 0: the close sends a TCP reset.
                import struct

                try:
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                except OSError:
                    pass
                self.close_connection = True
                try:
                    self.connection.close()
                except OSError:
                    pass

            do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _forward  # noqa: N815

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05})
        self.thread.daemon = True
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)

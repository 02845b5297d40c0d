"""Real servers the initializer tests fetch from, started on this machine by the tests.

- :class:`S3Server`: moto's S3-compatible server in a subprocess, with IAM authentication switched on
  (``INITIAL_NO_AUTH_ACTION_COUNT``), so wrong credentials are really refused.
- :class:`FileServer`: a plain HTTP server for a dict of files that counts the downloads of each path.

Both listen on all interfaces so that job containers reach them at :func:`host_address`; a process on
this machine uses 127.0.0.1.
"""

from __future__ import annotations

import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
from typing import Any


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("0.0.0.0", 0))
        return int(sock.getsockname()[1])


def host_address() -> str:
    """This machine's primary IPv4 address (the default route's source): containers on a user-defined
    bridge network reach the host's servers there, with Docker and with Podman."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect(("192.0.2.1", 9))  # TEST-NET: no packet is sent, only the route is looked up
        return str(sock.getsockname()[0])


def wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port} after {timeout}s")


class S3Server:
    """moto's S3 server with authentication: one IAM user whose key is :attr:`access_key`/:attr:`secret_key`."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.access_key = ""
        self.secret_key = ""

    def __enter__(self) -> S3Server:
        env = dict(os.environ, INITIAL_NO_AUTH_ACTION_COUNT="3")  # the 3 IAM calls below; then auth is on
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "0.0.0.0", "-p", str(self.port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_port(self.port)
        iam = self._client("iam", "setup", "setup")
        iam.create_user(UserName="trainer-tests")
        key = iam.create_access_key(UserName="trainer-tests")["AccessKey"]
        policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
        iam.put_user_policy(UserName="trainer-tests", PolicyName="all", PolicyDocument=json.dumps(policy))
        self.access_key, self.secret_key = key["AccessKeyId"], key["SecretAccessKey"]
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)

    def endpoint(self, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}"

    def _client(self, service: str, key: str, secret: str) -> Any:
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.endpoint(),
            region_name="us-east-1",
            aws_access_key_id=key,
            aws_secret_access_key=secret,
        )

    def client(self) -> Any:
        """An authenticated S3 client (from this process)."""
        return self._client("s3", self.access_key, self.secret_key)

    def put_tree(self, bucket: str, prefix: str, files: dict[str, bytes]) -> None:
        s3 = self.client()
        try:
            s3.create_bucket(Bucket=bucket)
        except s3.exceptions.BucketAlreadyOwnedByYou:
            pass
        for rel, data in files.items():
            s3.put_object(Bucket=bucket, Key=f"{prefix.rstrip('/')}/{rel}" if prefix else rel, Body=data)


class FileServer:
    """Serves ``files`` (URL path -> bytes) over HTTP on all interfaces; :attr:`gets` counts downloads.
    A path in ``delays`` is answered only after that many seconds (a slow server); a path in ``rates`` is sent
    at that many bytes per second (a slow link: the body arrives in 64 KiB pieces)."""

    def __init__(
        self, files: dict[str, bytes], delays: dict[str, float] | None = None, rates: dict[str, int] | None = None
    ) -> None:
        self.files = dict(files)
        self.delays = dict(delays or {})
        self.rates = dict(rates or {})
        self.gets: dict[str, int] = {}
        lock = threading.Lock()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with lock:
                    server.gets[self.path] = server.gets.get(self.path, 0) + 1
                time.sleep(server.delays.get(self.path, 0))
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404, "no such file")
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                rate = server.rates.get(self.path)
                if not rate:
                    self.wfile.write(body)
                    return
                piece = 64 << 10
                for start in range(0, len(body), piece):
                    self.wfile.write(body[start : start + piece])
                    self.wfile.flush()
                    time.sleep(piece / rate)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("0.0.0.0", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> FileServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

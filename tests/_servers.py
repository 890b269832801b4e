"""Throwaway PostgreSQL and Redis servers on 127.0.0.1, for the shared-store tests.

PostgreSQL: Debian's ``initdb`` / ``pg_ctl`` (``/usr/lib/postgresql/<v>/bin``) make a
cluster in a temporary directory, trust authentication, on a free loopback port, its
socket in that directory. initdb refuses to run as root, so as root the cluster belongs to
the ``postgres`` user (Debian's package creates it) and the commands run through
``runuser``. Redis: Debian's ``redis-server`` with no persistence.

Both can be stopped and started again on the same port (the fault tests do). A missing
binary skips the tests that need it, unless ``HEADROOM_REQUIRE_STORES=1`` (CI), where it
fails them.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

REQUIRED = os.environ.get("HEADROOM_REQUIRE_STORES") == "1"


def unavailable(reason: str) -> None:
    """Skip (or, in CI, fail) a test whose server cannot be started."""
    if REQUIRED:
        pytest.fail(f"{reason} (HEADROOM_REQUIRE_STORES=1: CI installs and needs it)")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def pg_bindir() -> Path | None:
    env = os.environ.get("HEADROOM_PG_BIN")
    candidates = [env] if env else []
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for c in candidates:
        if c and (Path(c) / "initdb").is_file() and (Path(c) / "pg_ctl").is_file():
            return Path(c)
    found = shutil.which("initdb")
    return Path(found).parent if found else None


class PostgresServer:
    """A PostgreSQL cluster in a temporary directory; ``url(db)`` connects to it."""

    def __init__(self) -> None:
        bindir = pg_bindir()
        if bindir is None:
            raise FileNotFoundError(
                "PostgreSQL's initdb/pg_ctl not found (apt-get install postgresql)"
            )
        self.bindir = bindir
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="headroom-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self._user: str | None = None
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError as exc:
                raise FileNotFoundError(
                    "running as root and no 'postgres' user to run initdb"
                ) from exc
            self._user = "postgres"
            shutil.chown(self.root, "postgres")
        self._as_owner(
            [str(bindir / "initdb"), "-D", str(self.data), "-U", "headroom", "--auth=trust",
             "-E", "UTF8", "--locale=C", "--no-sync"],
        )  # fmt: skip
        conf = self.data / "postgresql.conf"
        with conf.open("a") as f:
            f.write(
                f"\nlisten_addresses = '127.0.0.1'\nport = {self.port}\n"
                f"unix_socket_directories = '{self.root}'\nfsync = off\n"
                "full_page_writes = off\nmax_connections = 200\n"
            )
        self.start()

    def _as_owner(self, argv: list[str]) -> None:
        if self._user is not None:
            argv = ["runuser", "-u", self._user, "--", *argv]
        subprocess.run(argv, check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        self._as_owner(
            [str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w",
             "-t", "60", "start"],
        )  # fmt: skip
        _wait_port(self.port, 30)

    def stop(self, mode: str = "immediate") -> None:
        self._as_owner(
            [str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"]
        )

    def pids(self) -> list[int]:
        """The postmaster and its children (to pause the whole server with SIGSTOP)."""
        main = int((self.data / "postmaster.pid").read_text().split()[0])
        pids = [main]
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[1]) == main:
                pids.append(int(stat.parent.name))
        return pids

    def url(self, db: str = "postgres") -> str:
        return f"postgresql://headroom@127.0.0.1:{self.port}/{db}"

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def close(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


class RedisServer:
    """``redis-server`` on a free loopback port, no persistence, 64 databases."""

    DATABASES = 64

    def __init__(self, maxmemory: str | None = None) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            raise FileNotFoundError("redis-server not found (apt-get install redis-server)")
        self.exe = exe
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="headroom-redis-"))
        self.maxmemory = maxmemory
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        argv = [self.exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--databases", str(self.DATABASES), "--dir", str(self.root),
                "--protected-mode", "no"]  # fmt: skip
        if self.maxmemory:
            argv += ["--maxmemory", self.maxmemory, "--maxmemory-policy", "allkeys-lru"]
        self.proc = subprocess.Popen(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=self.root
        )
        _wait_port(self.port, 20)

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def close(self) -> None:
        self.kill()
        shutil.rmtree(self.root, ignore_errors=True)

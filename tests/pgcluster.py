"""A private, throwaway PostgreSQL cluster that a test may stop and start (fault injection).

The same approach as scripts/with-postgres: Debian's server binaries, a fresh data directory
under /tmp, 127.0.0.1 and a free port only, trust authentication, fsync off; as root the
server runs as an unprivileged user ($WITH_POSTGRES_USER, else traject-pg, else nobody).
The suite's own cluster (TEST_POSTGRES_URL) is never touched.
"""
from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from glob import glob
from pathlib import Path


def server_bindir() -> Path | None:
    candidates = [os.environ.get("PG_BINDIR")]
    try:
        candidates.append(subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True).stdout.strip())
    except OSError:
        pass
    candidates += sorted(glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for c in candidates:
        if c and all((Path(c) / p).exists() for p in ("initdb", "pg_ctl", "postgres")):
            return Path(c)
    return None


def _server_user():
    if os.geteuid() != 0:
        return None
    for name in (os.environ.get("WITH_POSTGRES_USER"), "traject-pg", "nobody"):
        if name:
            try:
                return pwd.getpwnam(name)
            except KeyError:
                continue
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    def __init__(self, bindir: Path):
        self.bindir = bindir
        self.user = _server_user()
        self.root = Path(tempfile.mkdtemp(prefix="traject-fault-", dir="/tmp"))
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self.port = _free_port()
        if self.user:
            os.chown(self.root, self.user.pw_uid, self.user.pw_gid)

    def _as_server(self, *args, check=True, timeout=60):
        kw = {}
        if self.user:
            kw = {"user": self.user.pw_uid, "group": self.user.pw_gid, "extra_groups": []}
        return subprocess.run([str(a) for a in args], cwd=self.root, capture_output=True, text=True, check=check,
                              timeout=timeout, **kw)

    def create(self) -> "Cluster":
        locale = ["--no-locale"]
        self._as_server(self.bindir / "initdb", "-D", self.data, "-U", "traject", "-A", "trust", "-E", "UTF8",
                        *locale, "--no-sync")
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write(f"\nlisten_addresses = '127.0.0.1'\nport = {self.port}\nunix_socket_directories = '{self.root}'\n"
                       "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\nmax_connections = 50\n"
                       "logging_collector = off\n")
        self.start()
        import psycopg

        with psycopg.connect(f"postgresql://traject@127.0.0.1:{self.port}/postgres", autocommit=True) as conn:
            conn.execute("CREATE DATABASE traject_fault")
        return self

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://traject@127.0.0.1:{self.port}/traject_fault"

    def start(self) -> None:
        self._as_server(self.bindir / "pg_ctl", "-D", self.data, "-l", self.log, "-w", "-t", "30", "start")

    def stop(self, mode: str = "fast") -> None:
        self._as_server(self.bindir / "pg_ctl", "-D", self.data, "-m", mode, "-w", "-t", "30", "stop")

    def remove(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._as_server(self.bindir / "pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop", check=False)
        shutil.rmtree(self.root, ignore_errors=True)

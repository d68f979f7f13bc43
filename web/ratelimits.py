"""The login budget's counters in a SQLite file of the instance, shared by every process of the machine.

Flask-Limiter's `memory://` keeps a counter per process: under gunicorn with four workers an attacker
had four budgets of failed passwords, and a worker that was replaced gave a fresh one. This storage
(`RATELIMIT_STORAGE_URI=traject-sqlite:///path/ratelimits.db`, the default) keeps the fixed-window
counters in one small file beside the database, so that the workers count together and a restart
forgets nothing. Several machines behind one address need a storage they share (e.g. `redis://`).
"""
from __future__ import annotations

import os
import sqlite3
import threading
import time

from limits.storage import Storage

from .files import private_dir, private_file

_SCHEMA = "CREATE TABLE IF NOT EXISTS counter (key TEXT PRIMARY KEY, count INTEGER NOT NULL, expires REAL NOT NULL)"


class SqliteFileStorage(Storage):
    STORAGE_SCHEME = ["traject-sqlite"]

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **options):
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        self.path = (uri or "").split("://", 1)[1]
        if not self.path:
            raise ValueError("traject-sqlite:// needs a file path, e.g. traject-sqlite:///var/lib/traject/ratelimits.db")
        self._local = threading.local()
        private_dir(os.path.dirname(self.path) or ".")
        private_file(self.path)  # its keys name accounts (SQLite gives its WAL the file's mode)
        self._connect().execute(_SCHEMA)

    @property
    def base_exceptions(self):
        return sqlite3.Error

    def _connect(self) -> sqlite3.Connection:
        # One connection per thread, and per process: a forked worker must not use its master's.
        conn = getattr(self._local, "conn", None)
        if conn is None or getattr(self._local, "pid", None) != os.getpid():
            conn = sqlite3.connect(self.path, timeout=10, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        now = time.time()
        conn = self._connect()
        conn.execute("BEGIN IMMEDIATE")  # read and write under the file's one write lock: no lost count
        try:
            conn.execute("DELETE FROM counter WHERE key = ? AND expires <= ?", (key, now))
            (count,) = conn.execute(
                "INSERT INTO counter (key, count, expires) VALUES (?, ?, ?) "
                "ON CONFLICT (key) DO UPDATE SET count = count + excluded.count RETURNING count",
                (key, amount, now + expiry)).fetchone()
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return count

    def _row(self, key: str):
        return self._connect().execute("SELECT count, expires FROM counter WHERE key = ? AND expires > ?",
                                       (key, time.time())).fetchone()

    def get(self, key: str) -> int:
        row = self._row(key)
        return row[0] if row else 0

    def get_expiry(self, key: str) -> float:
        row = self._row(key)
        return row[1] if row else time.time()

    def check(self) -> bool:
        try:
            self._connect().execute("SELECT 1")
            return True
        except sqlite3.Error:
            return False

    def reset(self) -> int | None:
        return self._connect().execute("DELETE FROM counter").rowcount

    def clear(self, key: str) -> None:
        self._connect().execute("DELETE FROM counter WHERE key = ?", (key,))

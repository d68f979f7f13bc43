"""`traject backup` and `traject restore`: the whole database in one file, and back.

SQLite: the online backup API (a consistent copy while the web and the worker keep running);
the file is an ordinary SQLite database. PostgreSQL: pg_dump's custom format, restored with
pg_restore --clean in a single transaction (all or nothing). The client programs come from
$PG_BINDIR, `pg_config --bindir`, the newest /usr/lib/postgresql/*/bin, or PATH; the
connection settings go to them through the environment, never on the command line.

A restore replaces the database's contents: stop the web and the worker first. Afterwards
`traject audit verify` runs; the restore fails (exit 1) when a chain does not verify.
"""
from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from glob import glob
from pathlib import Path

from sqlalchemy.engine import make_url

from ..files import private_file

SQLITE_MAGIC = b"SQLite format 3\x00"
PGDUMP_MAGIC = b"PGDMP"


class BackupError(RuntimeError):
    pass


def kind_of(path: Path) -> str:
    with open(path, "rb") as f:
        head = f.read(16)
    if head.startswith(SQLITE_MAGIC):
        return "sqlite"
    if head.startswith(PGDUMP_MAGIC):
        return "postgresql"
    raise BackupError(f"{path} is neither a SQLite database nor a pg_dump archive")


# -- SQLite ---------------------------------------------------------------------------------------


def _sqlite_path(url) -> Path:
    database = url.database
    if not database or database == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up")
    return Path(database)


def _check_sqlite(path: Path) -> None:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        ok = conn.execute("PRAGMA integrity_check").fetchone()[0]
        if ok != "ok":
            raise BackupError(f"{path}: integrity check failed: {ok}")
        if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'alembic_version'").fetchone() is None:
            raise BackupError(f"{path} is not a Traject database (no alembic_version)")
    finally:
        conn.close()


def backup_sqlite(url, out: Path) -> None:
    source = _sqlite_path(url)
    tmp = out.with_name(out.name + ".tmp")
    tmp.unlink(missing_ok=True)
    private_file(tmp)  # a copy of every record: 0600 before the first page lands in it
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    dst = sqlite3.connect(tmp)
    try:
        src.backup(dst)  # page by page, consistent, while others keep writing
        dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
    finally:
        dst.close()
        src.close()
    _check_sqlite(tmp)
    os.replace(tmp, out)


def restore_sqlite(url, backup: Path) -> None:
    _check_sqlite(backup)
    target = _sqlite_path(url)
    src = sqlite3.connect(f"file:{backup}?mode=ro", uri=True)
    dst = sqlite3.connect(target, timeout=30)
    try:
        src.backup(dst)  # replaces every page of the target, under its write lock
    finally:
        dst.close()
        src.close()


# -- PostgreSQL -----------------------------------------------------------------------------------


def pg_bindir() -> Path | None:
    candidates = [os.environ.get("PG_BINDIR")]
    try:
        candidates.append(subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True,
                                         check=True).stdout.strip())
    except (OSError, subprocess.CalledProcessError):
        pass
    candidates += sorted(glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name)
                         if Path(p).parent.name.isdigit() else 0, reverse=True)
    for c in candidates:
        if c and (Path(c) / "pg_dump").exists() and (Path(c) / "pg_restore").exists():
            return Path(c)
    found = shutil.which("pg_dump")
    return Path(found).parent if found else None


def _pg_program(name: str) -> str:
    bindir = pg_bindir()
    if bindir is None:
        raise BackupError(f"{name} not found: install the PostgreSQL client (Debian: postgresql-client) "
                          "or set PG_BINDIR")
    return str(bindir / name)


def _pg_env(url) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG") or k == "PG_BINDIR"}
    for key, value in (("PGHOST", url.host), ("PGPORT", url.port), ("PGUSER", url.username),
                       ("PGPASSWORD", url.password), ("PGDATABASE", url.database)):
        if value is not None:
            env[key] = str(value)
    for key, var in (("sslmode", "PGSSLMODE"), ("sslrootcert", "PGSSLROOTCERT"), ("sslcert", "PGSSLCERT"),
                     ("sslkey", "PGSSLKEY"), ("application_name", "PGAPPNAME")):
        if key in url.query:
            env[var] = str(url.query[key])
    return env


def _run(args: list[str], env: dict) -> None:
    done = subprocess.run(args, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise BackupError(f"{Path(args[0]).name} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")


def backup_postgresql(url, out: Path) -> None:
    tmp = out.with_name(out.name + ".tmp")
    tmp.unlink(missing_ok=True)
    private_file(tmp)  # pg_dump truncates and fills it, keeping the mode
    _run([_pg_program("pg_dump"), "--format=custom", "--no-owner", "--no-privileges", f"--file={tmp}"],
         _pg_env(url))
    os.replace(tmp, out)


def restore_postgresql(url, backup: Path) -> None:
    _run([_pg_program("pg_restore"), "--clean", "--if-exists", "--no-owner", "--no-privileges",
          "--single-transaction", "--exit-on-error", f"--dbname={url.database}", str(backup)], _pg_env(url))


# -- entry points ---------------------------------------------------------------------------------


def backup(database_url: str, out: str | Path) -> dict:
    url = make_url(database_url)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if url.get_backend_name() == "sqlite":
        backup_sqlite(url, out)
    elif url.get_backend_name() == "postgresql":
        backup_postgresql(url, out)
    else:
        raise BackupError(f"no backup for {url.get_backend_name()}")
    return {"backup": str(out), "database": url.get_backend_name(), "bytes": out.stat().st_size}


def restore(database_url: str, backup_file: str | Path) -> dict:
    url = make_url(database_url)
    path = Path(backup_file)
    if not path.is_file():
        raise BackupError(f"no such file: {path}")
    kind = kind_of(path)
    if kind != url.get_backend_name():
        raise BackupError(f"{path} is a {kind} backup, but DATABASE_URL is {url.get_backend_name()}")
    if kind == "sqlite":
        restore_sqlite(url, path)
    else:
        restore_postgresql(url, path)
    return {"restored": str(path), "database": kind}

"""A real PostgreSQL server for tests: Debian's ``postgresql`` package, a throwaway cluster on the
loopback interface, stopped and deleted afterwards. :func:`start` says why when it cannot start
(the caller skips with that reason); it never stands in for the server."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class ServerUnavailable(RuntimeError):
    """PostgreSQL cannot start here; the message says why."""


def _server_binaries() -> Path:
    """The newest installed server's bin folder (Debian keeps them out of PATH)."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda path: int(Path(path).parts[-3]))
    if candidates:
        return Path(candidates[-1]).parent
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).parent
    raise ServerUnavailable("PostgreSQL's server is not installed (Debian: apt-get install postgresql)")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def start(database: str = "rlhub") -> Iterator[str]:
    """Start a cluster on 127.0.0.1 and yield a SQLAlchemy URL of an empty database in it."""
    binaries = _server_binaries()
    # The server refuses to run as root: as root, run it as Debian's postgres user.
    as_user: list[str] = []
    owner = None
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            raise ServerUnavailable("running as root and there is no postgres user to run the server as") from None
        as_user = ["runuser", "-u", "postgres", "--"]
    data_dir = Path(tempfile.mkdtemp(prefix="rlhub-postgres-"))
    if owner is not None:
        os.chown(data_dir, owner.pw_uid, owner.pw_gid)
    port = _free_port()

    def run(*command: str) -> None:
        done = subprocess.run([*as_user, *command], capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            log = data_dir / "server.log"
            raise ServerUnavailable(f"{Path(command[0]).name} failed: {done.stderr.strip() or done.stdout.strip()}"
                                    + (f"; server log: {log.read_text()[-500:]}" if log.is_file() else ""))

    pg_ctl = str(binaries / "pg_ctl")
    try:
        run(str(binaries / "initdb"), "-D", str(data_dir / "data"), "-A", "trust", "-U", "rlhub", "--no-sync")
        # Listen on loopback only; the socket goes in the cluster's own folder, not /var/run.
        run(pg_ctl, "-D", str(data_dir / "data"), "-l", str(data_dir / "server.log"), "-w", "-t", "60",
            "-o", f"-h 127.0.0.1 -p {port} -k {data_dir} -c fsync=off", "start")
        try:
            run(str(binaries / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "rlhub", database)
            yield f"postgresql://rlhub@127.0.0.1:{port}/{database}"
        finally:
            subprocess.run([*as_user, pg_ctl, "-D", str(data_dir / "data"), "-m", "immediate", "stop"],
                           capture_output=True, timeout=60)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)

"""A PostgreSQL 15 cluster of our own, on its own port, that a test may stop, restart or freeze.

The fault tests and the soak break the database on purpose; they must never do it to the
shared server on 5432. `initdb` and `pg_ctl` refuse to run as root, so as root they run as
the `postgres` OS user, in a temporary directory that user owns.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

POSTGRES_BIN = Path(os.environ.get("POSTGRES_BIN", "/usr/lib/postgresql/15/bin"))
INITDB = POSTGRES_BIN / "initdb"
PG_CTL = POSTGRES_BIN / "pg_ctl"
POSTGRES_OS_USER = "postgres"
DATABASE_NAME = "postgres"
# A throwaway cluster need not survive a machine crash; a process crash it does survive,
# since the OS still holds what fsync would have flushed.
SERVER_OPTIONS = ("fsync=off", "full_page_writes=off", "max_connections=100")


def initdb_is_installed() -> bool:
    return INITDB.is_file() and PG_CTL.is_file()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _as_postgres_user(command: Sequence[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", POSTGRES_OS_USER, "--", *command]
    return list(command)


@dataclass
class ThrowawayCluster:
    directory: Path
    port: int

    @property
    def data_directory(self) -> Path:
        return self.directory / "data"

    @property
    def log_file(self) -> Path:
        return self.directory / "server.log"

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{DATABASE_NAME}"

    def _run(self, *command: str | Path, timeout: float = 60) -> None:
        completed = subprocess.run(
            _as_postgres_user([str(part) for part in command]),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if completed.returncode != 0:
            raise RuntimeError(
                f"{' '.join(map(str, command))} failed ({completed.returncode}):\n"
                f"{completed.stdout}{completed.stderr}\n{self.server_log_tail()}"
            )

    def server_log_tail(self, lines: int = 20) -> str:
        if not self.log_file.exists():
            return ""
        return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])

    def initialise(self) -> None:
        self._run(
            INITDB,
            "--pgdata",
            self.data_directory,
            "--username",
            "postgres",
            "--auth",
            "trust",
            "--encoding",
            "UTF8",
            "--locale",
            "C",
            "--no-sync",
        )

    def start(self) -> None:
        options = [
            f"-p {self.port}",
            "-c listen_addresses=127.0.0.1",
            # Its own socket directory: nothing is shared with the system cluster.
            f"-c unix_socket_directories={self.directory}",
            *(f"-c {option}" for option in SERVER_OPTIONS),
        ]
        self._run(
            PG_CTL,
            "start",
            "--pgdata",
            self.data_directory,
            "--log",
            self.log_file,
            "--wait",
            "--timeout",
            "30",
            "-o",
            " ".join(options),
        )

    def stop(self, mode: str = "fast") -> None:
        """`fast` rolls back open transactions; `immediate` is a crash, recovered at start."""
        self.resume()
        self._run(
            PG_CTL, "stop", "--pgdata", self.data_directory, "--mode", mode, "--wait", timeout=30
        )

    def restart(self, mode: str = "fast") -> None:
        self.stop(mode)
        self.start()

    def server_pids(self) -> list[int]:
        """The postmaster and every backend it forked."""
        pid_file = self.data_directory / "postmaster.pid"
        if not pid_file.exists():
            return []
        postmaster = int(pid_file.read_text().splitlines()[0])
        children = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                # The parent pid is the 4th field, after "(command name)" which may hold spaces.
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == postmaster:
                children.append(int(entry.name))
        return [postmaster, *children]

    def freeze(self) -> None:
        """SIGSTOP every server process: connections are accepted by the kernel, then nothing."""
        for pid in self.server_pids():
            os.kill(pid, signal.SIGSTOP)

    def resume(self) -> None:
        for pid in self.server_pids():
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                continue

    def remove(self) -> None:
        if (self.data_directory / "postmaster.pid").exists():
            try:
                self.stop("immediate")
            except (RuntimeError, subprocess.TimeoutExpired):
                for pid in self.server_pids():
                    os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.directory, ignore_errors=True)


@contextmanager
def throwaway_cluster() -> Iterator[ThrowawayCluster]:
    """A started cluster on a free port, removed with its files afterwards."""
    directory = Path(tempfile.mkdtemp(prefix="conversions-pg-"))
    if os.geteuid() == 0:
        shutil.chown(directory, user=POSTGRES_OS_USER, group=POSTGRES_OS_USER)
    cluster = ThrowawayCluster(directory=directory, port=free_port())
    try:
        cluster.initialise()
        cluster.start()
        yield cluster
    finally:
        cluster.remove()

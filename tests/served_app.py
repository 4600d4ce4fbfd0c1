"""`conversions serve` as an operator runs it: a real process on a free loopback port."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.throwaway_postgres import free_port

CONVERSIONS = str(Path(sys.executable).with_name("conversions"))
STARTUP_SECONDS = 30
# uvicorn waits up to 15 s for requests in flight; the rest is the lifespan's shutdown.
GRACEFUL_STOP_SECONDS = 20


class ServeFailedError(RuntimeError):
    pass


def run_conversions(*arguments: str, environment: Mapping[str, str]) -> None:
    completed = subprocess.run(
        [CONVERSIONS, *arguments],
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ | dict(environment),
        check=False,
    )
    if completed.returncode != 0:
        raise ServeFailedError(f"conversions {' '.join(arguments)}: {completed.stderr}")


@dataclass
class ServedApp:
    process: subprocess.Popen[bytes]
    base_url: str
    log_file: Path

    def log(self) -> str:
        return self.log_file.read_text(errors="replace")

    def terminate(self) -> int:
        """SIGTERM, as an orchestrator stops a container; the exit status once it is gone."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=GRACEFUL_STOP_SECONDS)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False


@contextmanager
def served_app(
    environment: Mapping[str, str], log_file: Path, arguments: Sequence[str] = ()
) -> Iterator[ServedApp]:
    """Serve in production mode with `environment` added and `serve`'s own `arguments`;
    SIGTERM it (then SIGKILL) afterwards."""
    port = free_port()
    with (
        log_file.open("w") as output,
        subprocess.Popen(
            [CONVERSIONS, "serve", "--port", str(port), *arguments],
            stdout=output,
            stderr=subprocess.STDOUT,
            env=os.environ | dict(environment),
        ) as process,
    ):
        app = ServedApp(process=process, base_url=f"http://127.0.0.1:{port}", log_file=log_file)
        try:
            deadline = time.monotonic() + STARTUP_SECONDS
            while not _answers(f"{app.base_url}/healthz"):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise ServeFailedError(f"conversions serve did not come up:\n{app.log()}")
                time.sleep(0.1)
            yield app
        finally:
            try:
                app.terminate()
            finally:
                process.kill()

"""The `conversions` command: migrate, create-api-key and serve, run as a user would."""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from piccolo.engine.base import Engine

from models.store.tables import ApiKey
from tests.support import new_click, stored_conversions

CONVERSIONS = str(Path(sys.executable).with_name("conversions"))


def conversions(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CONVERSIONS, *arguments], capture_output=True, text=True, timeout=60, check=False
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def test_migrate_is_idempotent(db: Engine) -> None:
    for _ in range(2):
        result = conversions("migrate")
        assert result.returncode == 0, result.stderr
    assert "No migrations need to be run" in result.stdout


def test_migrate_builds_a_fresh_sqlite_database(tmp_path: Path) -> None:
    database = tmp_path / "fresh.sqlite"
    result = subprocess.run(
        [CONVERSIONS, "migrate"],
        capture_output=True,
        text=True,
        timeout=60,
        env=os.environ | {"DATABASE_URL": f"sqlite:///{database}"},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    with sqlite3.connect(database) as connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    assert {"click", "conversion", "api_key", "conversion_one_step_per_click"} <= tables


async def test_create_api_key_prints_the_key_last_and_stores_only_its_hash(db: Engine) -> None:
    result = conversions("create-api-key", "--name", "dashboard", "--scope", "read")
    assert result.returncode == 0, result.stderr
    key = result.stdout.strip().splitlines()[-1]
    assert key.startswith("cvk_")
    assert len(key) > 40
    [stored] = await ApiKey.select()
    assert stored["name"] == "dashboard"
    assert stored["scope"] == "read"
    assert stored["key_hash"] == hashlib.sha256(key.encode()).hexdigest()
    assert key not in repr(stored)


def test_create_api_key_refuses_an_unknown_scope() -> None:
    result = conversions("create-api-key", "--name", "x", "--scope", "root")
    assert result.returncode != 0
    assert "invalid choice" in result.stderr


@pytest.fixture(
    params=[[], ["--loop", "asyncio", "--http", "h11"]], ids=["uvloop-httptools", "asyncio-h11"]
)
def served(db: Engine, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """`conversions serve` in production mode on a free port, stopped with SIGTERM: on the
    stack it installs, and on uvicorn's pure-Python fallbacks."""
    port = free_port()
    log = tmp_path / "serve.log"
    with (
        log.open("w") as output,
        subprocess.Popen(
            [CONVERSIONS, "serve", "--port", str(port), *request.param],
            stdout=output,
            stderr=subprocess.STDOUT,
        ) as process,
    ):
        base_url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while not _answers(f"{base_url}/healthz"):
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"conversions serve did not come up: {log.read_text()}")
            time.sleep(0.1)
        yield base_url
        process.send_signal(signal.SIGTERM)
        try:
            # uvicorn shuts down gracefully, then re-raises SIGTERM as the exit status.
            assert process.wait(timeout=20) in (0, -signal.SIGTERM)
            assert "Application shutdown complete" in log.read_text()
        finally:
            process.kill()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False


async def test_serve_records_pixel_fires_and_ignores_spoofed_forwarded_for(served: str) -> None:
    click_id = await new_click()
    async with httpx.AsyncClient(base_url=served) as client:
        ready = await client.get("/readyz")
        fired = await client.get(
            f"/convert/{click_id}?type=install", headers={"X-Forwarded-For": "198.51.100.1"}
        )
    assert ready.status_code == 200
    assert fired.status_code == 202
    assert "server" not in fired.headers
    # uvicorn trusts X-Forwarded-For from 127.0.0.1 unless told not to; serve tells it not to.
    [conversion] = await stored_conversions(click_id)
    assert conversion["ip"] == "127.0.0.1"


async def test_serve_answers_errors_without_internals(served: str) -> None:
    async with httpx.AsyncClient(base_url=served) as client:
        missing = await client.get("/no/such/page")
        bad = await client.get("/convert/x?type=install")
    assert missing.status_code == 404
    assert bad.status_code == 422
    for response in (missing, bad):
        assert "Traceback" not in response.text
        assert response.json()["errors"]


@pytest.mark.parametrize(
    ("command", "refusal"),
    [
        (["serve"], "conversions serve: refusing to start with invalid settings:"),
        (["import", "rows.csv"], "conversions import: invalid settings:"),
    ],
)
def test_invalid_settings_are_named_and_never_echoed(command: list[str], refusal: str) -> None:
    short_token = "s3cr3t-but-short"[:12]
    result = subprocess.run(
        [CONVERSIONS, *command],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=os.environ | {"METRICS_TOKEN": short_token},
    )
    assert result.returncode == 2
    assert refusal in result.stderr
    assert "METRICS_TOKEN" in result.stderr
    assert short_token not in result.stderr + result.stdout

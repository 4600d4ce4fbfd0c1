"""`LOG_FORMAT=json` and request ids (SPEC part two, "Operations"): a served app used
with an API key, a fire secret and its signatures, a metrics token and (on PostgreSQL)
a database password, good requests and refused ones; then its whole log is read. Every
line is one JSON object, every request's lines carry its id, and no secret is there."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

import httpx
import pytest
from piccolo.engine.base import Engine
from pydantic import ValidationError

from api.logs import LogFormat
from api.settings import Settings
from models.store.engine import is_postgres
from tests.graphql_client import bearer, issue_key
from tests.served_app import served_app

METRICS_TOKEN = "metrics-token-4f9d2c7a1e"
DATABASE_PASSWORD = "db-password-9c1e5b7d"
SETUP = """
mutation ($partner: String!) {
  createOffer(input: {name: "Signed", landingUrl: "https://casino.example/", firePolicy: SIGNED}) {
    id
  }
  createPartner(input: {name: $partner}) { id }
}
"""
ROTATE = "mutation ($offer: UUID!) { rotateFireSecret(offerId: $offer) { secret } }"
LINK = """
mutation ($offer: UUID!, $partner: UUID!) {
  createTrackingLink(input: {offerId: $offer, partnerId: $partner}) { id }
}
"""
DEPOSIT = "amount=40&currency=usd&transaction_id=order-1&type=deposit"


def with_password(url: str) -> str:
    """The PostgreSQL URL with a password (the test server trusts local connections,
    so any password connects): the log must never show it."""
    parts = urlsplit(url)
    return urlunsplit(
        parts._replace(netloc=f"postgres:{DATABASE_PASSWORD}@{parts.hostname}:{parts.port}")
    )


def signature(secret: str, click_id: str, query: str) -> str:
    # The canonical string as the SPEC words it: the click id, then the signed
    # parameters in this (alphabetical) order.
    return hmac.new(secret.encode(), f"{click_id}\n{query}".encode(), hashlib.sha256).hexdigest()


async def graphql(client: httpx.AsyncClient, key: str, query: str, **variables: Any) -> Any:
    answer = await client.post(
        "/graphql", json={"query": query, "variables": variables}, headers=bearer(key)
    )
    assert answer.status_code == 200, answer.text
    assert "errors" not in answer.json(), answer.text
    return answer.json()["data"]


async def test_json_lines_with_request_ids_and_no_secret(db: Engine, tmp_path: Path) -> None:
    key = await issue_key()
    database_url = os.environ["DATABASE_URL"]
    secrets = {"API key": key, "metrics token": METRICS_TOKEN}
    if is_postgres(db):
        database_url = with_password(database_url)
        secrets["database password"] = DATABASE_PASSWORD
    environment = {
        "DATABASE_URL": database_url,
        "LOG_FORMAT": "json",
        # Every line the app and its libraries write, not only the usual ones.
        "LOG_LEVEL": "DEBUG",
        "METRICS_ENABLED": "true",
        "METRICS_TOKEN": METRICS_TOKEN,
    }
    answers: list[httpx.Response] = []
    log_file = tmp_path / "serve.log"
    arguments = ["--workers", "2", "--access-log"]
    with served_app(environment, log_file, arguments) as served:
        async with httpx.AsyncClient(
            base_url=served.base_url, event_hooks={"response": [_keep(answers)]}
        ) as client:
            setup = await graphql(client, key, SETUP, partner="net")
            offer, partner = setup["createOffer"]["id"], setup["createPartner"]["id"]
            secret = (await graphql(client, key, ROTATE, offer=offer))["rotateFireSecret"]["secret"]
            secrets["fire secret"] = secret
            link = await graphql(client, key, LINK, offer=offer, partner=partner)
            visit = await client.get(f"/track/{link['createTrackingLink']['id']}")
            assert visit.status_code == 302
            click = parse_qs(urlsplit(visit.headers["location"]).query)["click_id"][0]

            good = signature(secret, click, DEPOSIT)
            secrets["sig"] = good
            assert (await client.get(f"/convert/{click}?{DEPOSIT}&sig={good}")).status_code == 202
            wrong = signature("not-the-fire-secret-at-all", click, DEPOSIT)
            secrets["wrong sig"] = wrong
            refused = await client.post(
                f"/convert/{click}",
                content=f"{DEPOSIT}&sig={wrong}",
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
            assert refused.status_code == 401
            bad_amount = DEPOSIT.replace("amount=40", "amount=forty")
            bad_sig = signature(secret, click, bad_amount)
            secrets["sig of an invalid fire"] = bad_sig
            invalid = await client.get(f"/convert/{click}?{bad_amount}&sig={bad_sig}")
            assert invalid.status_code == 422
            assert (await client.get(f"/convert/{uuid.uuid4()}?{DEPOSIT}")).status_code == 404
            wrong_key = await client.post(
                "/graphql", json={"query": "{ __typename }"}, headers=bearer(key[:-4] + "0000")
            )
            assert wrong_key.status_code == 401
            assert (await client.get("/metrics")).status_code == 401
            wrong_token = bearer(METRICS_TOKEN[::-1])
            assert (await client.get("/metrics", headers=wrong_token)).status_code == 401
            assert (await client.get("/metrics", headers=bearer(METRICS_TOKEN))).status_code == 200
            assert (
                await client.get("/graphql", headers={"X-Big": "x" * 20_000})
            ).status_code == 431
            assert (await client.delete("/healthz")).status_code == 405

            # A sane incoming id is kept; anything else gets a fresh one.
            kept = await client.get("/healthz", headers={"X-Request-Id": "lb-7f3a.9c_2e"})
            assert kept.headers["x-request-id"] == "lb-7f3a.9c_2e"
            for insane in ("has space", "x" * 129, "semi;colon", ""):
                fresh = await client.get("/healthz", headers={"X-Request-Id": insane})
                assert fresh.headers["x-request-id"] not in (insane, "")
        assert served.terminate() == 0

    log = log_file.read_text()
    for name, value in secrets.items():
        assert value not in log, f"the {name} is in the log"
    lines = [json.loads(line) for line in log.splitlines() if line.strip()]
    assert all(isinstance(line, dict) and "event" in line for line in lines)
    access = [line for line in lines if line["logger"] == "uvicorn.access"]
    # One access line per answer (the startup's health checks too), each with its id.
    request_ids = [answer.headers["x-request-id"] for answer in answers]
    assert len(set(request_ids)) == len(request_ids), "every request has an id of its own"
    assert all("request_id" in line for line in access)
    logged = {line["request_id"] for line in access}
    assert set(request_ids) <= logged
    [kept_line] = [line for line in access if line["request_id"] == "lb-7f3a.9c_2e"]
    assert "GET /healthz" in kept_line["event"]
    assert any("sig=[redacted]" in line["event"] for line in access)
    # Lines outside any request (start-up, shutdown) have no id; the server's own too.
    assert any(line["logger"] == "uvicorn.error" for line in lines)


def _keep(answers: list[httpx.Response]) -> Any:
    async def keep(response: httpx.Response) -> None:
        answers.append(response)

    return keep


def test_the_log_format_is_text_or_json() -> None:
    assert Settings.from_env({}).log_format is LogFormat.TEXT
    assert Settings.from_env({"LOG_FORMAT": "JSON"}).log_format is LogFormat.JSON
    with pytest.raises(ValidationError, match="log_format"):
        Settings.from_env({"LOG_FORMAT": "xml"})

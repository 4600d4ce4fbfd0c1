"""Helpers for the GraphQL tests: keys, requests over real HTTP, and seed data."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from models.clicks.service import NewClick, create_click
from models.conversions.input import RawConversion
from models.conversions.outcomes import Recorded
from models.conversions.service import record_conversion
from models.keys import Scope, create_api_key
from models.store.tables import Source


async def issue_key(scope: Scope = Scope.ADMIN, partner_id: uuid.UUID | None = None) -> str:
    return (await create_api_key(f"test {scope}", scope, partner_id)).secret


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


@dataclass(frozen=True)
class GraphQL:
    """Posts GraphQL over the app's HTTP interface with one API key."""

    client: httpx.AsyncClient
    secret: str

    async def post(self, query: str, variables: dict[str, Any] | None = None) -> httpx.Response:
        body: dict[str, Any] = {"query": query}
        if variables is not None:
            body["variables"] = variables
        return await self.client.post("/graphql", json=body, headers=bearer(self.secret))

    async def data(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """The `data` of a request that must succeed without any error."""
        response = await self.post(query, variables)
        assert response.status_code == 200, response.text
        body = response.json()
        assert "errors" not in body, body
        return body["data"]

    async def errors(
        self, query: str, variables: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        response = await self.post(query, variables)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body.get("errors"), body
        return body["errors"]


async def graphql_as(
    client: httpx.AsyncClient, scope: Scope = Scope.ADMIN, partner_id: uuid.UUID | None = None
) -> GraphQL:
    return GraphQL(client, await issue_key(scope, partner_id))


async def seed_click(*, minutes_ago: float = 60, player_id: str | None = None) -> uuid.UUID:
    return await create_click(
        NewClick(player_id=player_id, created_at=datetime.now(UTC) - timedelta(minutes=minutes_ago))
    )


async def seed_conversion(
    click_id: uuid.UUID,
    conversion_type: str = "deposit",
    *,
    occurred_at: datetime | None = None,
    **values: str,
) -> uuid.UUID:
    """Recorded through the service, as the pixel records it."""
    outcome = await record_conversion(
        RawConversion(
            click_id=str(click_id),
            type=conversion_type,
            time=occurred_at.isoformat() if occurred_at else None,
            **values,
        ),
        source=Source.PIXEL,
    )
    assert isinstance(outcome, Recorded), outcome
    return outcome.conversion.id


def ids_of(connection: dict[str, Any]) -> list[str]:
    return [edge["node"]["id"] for edge in connection["edges"]]

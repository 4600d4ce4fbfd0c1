"""Racing retries and duplicates store exactly one row, on both engines."""

from __future__ import annotations

import asyncio

import httpx

from models.store.tables import Stage
from tests.support import new_click, stored_click, stored_conversions

RACERS = 50


async def fire_together(client: httpx.AsyncClient, url: str) -> list[int]:
    responses = await asyncio.gather(*(client.get(url) for _ in range(RACERS)))
    return [response.status_code for response in responses]


async def test_50_concurrent_identical_deposits_store_one_row(client: httpx.AsyncClient) -> None:
    click_id = await new_click()
    url = f"/convert/{click_id}?type=deposit&amount=25.00&currency=eur&transaction_id=race"
    assert await fire_together(client, url) == [202] * RACERS
    [conversion] = await stored_conversions(click_id)
    assert conversion["is_first_deposit"] is True
    assert (await stored_click(click_id))["stage"] == Stage.DEPOSIT


async def test_50_concurrent_installs_store_one_row(client: httpx.AsyncClient) -> None:
    click_id = await new_click()
    assert await fire_together(client, f"/convert/{click_id}?type=install") == [202] * RACERS
    assert len(await stored_conversions(click_id)) == 1
    assert (await stored_click(click_id))["stage"] == Stage.INSTALL


async def test_concurrent_distinct_deposits_flag_exactly_one_first_deposit(
    client: httpx.AsyncClient,
) -> None:
    click_id = await new_click()
    responses = await asyncio.gather(
        *(client.get(f"/convert/{click_id}?type=deposit&transaction_id=tx-{n}") for n in range(20))
    )
    assert [response.status_code for response in responses] == [202] * 20
    conversions = await stored_conversions(click_id)
    assert len(conversions) == 20
    assert sum(conversion["is_first_deposit"] for conversion in conversions) == 1


async def test_reports_sharing_a_group_commit_each_get_their_own_outcome(
    client: httpx.AsyncClient,
) -> None:
    click_id = await new_click()
    base = f"/convert/{click_id}?type=deposit&currency=eur"
    responses = await asyncio.gather(
        client.get(f"{base}&amount=1&transaction_id=probe&test=true"),
        client.get(f"{base}&amount=2&transaction_id=same"),
        client.get(f"{base}&amount=3&transaction_id=same"),
        client.get(f"/convert/{click_id}?type=install"),
        client.get(f"/convert/{click_id}?type=install"),
    )
    statuses = [response.status_code for response in responses]
    assert statuses[0] == 202
    assert sorted(statuses[1:3]) == [202, 409]
    assert statuses[3:] == [202, 202]
    stored = await stored_conversions(click_id)
    assert sorted(conversion["type"] for conversion in stored) == ["deposit", "install"]
    [deposit] = [conversion for conversion in stored if conversion["type"] == "deposit"]
    # The test report ran through the same batch without taking the first-deposit flag.
    assert deposit["is_first_deposit"] is True
    assert deposit["transaction_id"] == "same"
    assert (await stored_click(click_id))["stage"] == Stage.DEPOSIT


async def test_a_repeat_of_a_stored_event_changes_nothing_for_the_reports_batched_with_it(
    client: httpx.AsyncClient,
) -> None:
    """A repeat found only when its batch writes (PostgreSQL takes unseen events for new)
    must leave the store as a look-up first would have: no row, no click change."""
    repeated_click, other_click = await new_click(), await new_click()
    deposit = f"/convert/{repeated_click}?type=deposit&currency=eur&amount=5&transaction_id=t1"
    assert (await client.get(deposit)).status_code == 202

    responses = await asyncio.gather(
        # The same deposit again, now naming a player: a duplicate, so it names nobody.
        client.get(f"{deposit}&player_id=late-player"),
        client.get(f"/convert/{repeated_click}?type=registration"),
        client.get(f"/convert/{other_click}?type=deposit&currency=eur&amount=7&transaction_id=t2"),
        # A conflicting repeat: the same transaction with another amount.
        client.get(
            f"/convert/{repeated_click}?type=deposit&currency=eur&amount=6&transaction_id=t1"
        ),
    )

    assert [response.status_code for response in responses] == [202, 202, 202, 409]
    repeated = await stored_conversions(repeated_click)
    assert sorted(conversion["type"] for conversion in repeated) == ["deposit", "registration"]
    assert [
        conversion["amount_minor"] for conversion in repeated if conversion["type"] == "deposit"
    ] == [500]
    [other] = await stored_conversions(other_click)
    assert other["transaction_id"] == "t2"
    assert other["is_first_deposit"] is True
    click = await stored_click(repeated_click)
    assert click["player_id"] is None
    assert click["stage"] == Stage.DEPOSIT

"""The smart pixel's contract (SPEC.md), over HTTP, on the engine DATABASE_URL names."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from models.store.tables import Stage
from tests.support import count_conversions, new_click, stored_click, stored_conversions


def pixel(click_id: uuid.UUID | str, query: str = "") -> str:
    return f"/convert/{click_id}?{query}" if query else f"/convert/{click_id}"


def error_codes(response: httpx.Response) -> dict[str | None, str]:
    return {error["field"]: error["code"] for error in response.json()["errors"]}


def assert_pixel_headers(response: httpx.Response) -> None:
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["access-control-allow-origin"] == "*"


async def test_an_install_is_recorded_with_202_and_an_empty_body(client: httpx.AsyncClient) -> None:
    click_id = await new_click()
    response = await client.get(pixel(click_id, "type=install&player_id=p-1"))
    assert response.status_code == 202
    assert response.content == b""
    assert_pixel_headers(response)
    [conversion] = await stored_conversions(click_id)
    assert conversion["type"] == "install"
    assert conversion["player_id"] == "p-1"
    assert conversion["source"] == "pixel"
    assert conversion["is_first_deposit"] is False


async def test_a_deposit_stores_exact_minor_units_currency_and_ids(
    client: httpx.AsyncClient,
) -> None:
    click_id = await new_click()
    response = await client.get(
        pixel(click_id, "type=DEPOSIT&amount=1234567.89&currency=Eur&transaction_id=tx-1")
    )
    assert response.status_code == 202
    [conversion] = await stored_conversions(click_id)
    assert conversion["amount_minor"] == 123456789
    assert conversion["currency"] == "eur"
    assert conversion["transaction_id"] == "tx-1"
    assert conversion["is_first_deposit"] is True


async def test_request_metadata_is_recorded(client: httpx.AsyncClient) -> None:
    click_id = await new_click()
    response = await client.get(
        pixel(click_id, "type=registration"),
        headers={
            "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/156",
            "Referer": "https://operator.example/welcome?step=2",
            # Not from a trusted proxy (none are configured): must be ignored.
            "X-Forwarded-For": "198.51.100.77",
        },
    )
    assert response.status_code == 202
    [conversion] = await stored_conversions(click_id)
    assert conversion["ip"] == "203.0.113.7"
    assert conversion["user_agent"] == "Mozilla/5.0 (X11; Linux x86_64) Chrome/156"
    assert conversion["referrer"] == "https://operator.example/welcome?step=2"


async def test_forwarded_for_counts_from_a_configured_trusted_proxy(db) -> None:
    from api.app import create_app
    from api.settings import Settings

    app = create_app(Settings.from_env({"TRUSTED_PROXIES": "203.0.113.0/24"}))
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as proxied:
        click_id = await new_click()
        response = await proxied.get(
            pixel(click_id, "type=install"), headers={"X-Forwarded-For": "198.51.100.77"}
        )
    assert response.status_code == 202
    [conversion] = await stored_conversions(click_id)
    assert conversion["ip"] == "198.51.100.77"


async def test_time_is_stored_as_utc_beside_the_time_received(client: httpx.AsyncClient) -> None:
    click_id = await new_click()
    happened = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    local = happened.astimezone(datetime.now().astimezone().tzinfo).isoformat()
    before = datetime.now(UTC)
    response = await client.get(pixel(click_id), params={"type": "install", "time": local})
    assert response.status_code == 202
    [conversion] = await stored_conversions(click_id)
    assert conversion["occurred_at"] == happened
    assert conversion["received_at"] >= before - timedelta(seconds=1)


async def test_time_defaults_to_when_received(client: httpx.AsyncClient) -> None:
    click_id = await new_click()
    await client.get(pixel(click_id, "type=install"))
    [conversion] = await stored_conversions(click_id)
    assert conversion["occurred_at"] == conversion["received_at"]


async def test_time_more_than_5_minutes_before_the_click_is_an_error(
    client: httpx.AsyncClient,
) -> None:
    click_id = await new_click(age=timedelta(hours=1))
    too_early = (datetime.now(UTC) - timedelta(hours=1, minutes=6)).isoformat()
    response = await client.get(pixel(click_id), params={"type": "install", "time": too_early})
    assert response.status_code == 422
    assert error_codes(response) == {"time": "before_click"}
    assert await stored_conversions(click_id) == []
    assert (await stored_click(click_id))["stage"] == Stage.NONE


async def test_time_a_little_before_the_click_is_tolerated(client: httpx.AsyncClient) -> None:
    click_id = await new_click(age=timedelta(hours=1))
    skewed = (datetime.now(UTC) - timedelta(hours=1, minutes=4)).isoformat()
    response = await client.get(pixel(click_id), params={"type": "install", "time": skewed})
    assert response.status_code == 202


@pytest.mark.parametrize(
    ("query", "field", "code"),
    [
        ("type=deposit&amount=NaN&currency=eur", "amount", "invalid_amount"),
        ("type=deposit&amount=1e3&currency=eur", "amount", "invalid_amount"),
        ("type=deposit&amount=-5&currency=eur", "amount", "invalid_amount"),
        ("type=deposit&amount=10.005&currency=eur", "amount", "invalid_amount"),
        ("type=deposit&amount=%D9%A5&currency=eur", "amount", "invalid_amount"),
        ("type=deposit&amount=0&currency=eur", "amount", "out_of_range"),
        ("type=deposit&amount=10", "currency", "required"),
        ("type=deposit&currency=usd", "amount", "required"),
        ("type=install&amount=10&currency=usd", "amount", "not_allowed"),
        ("type=deposit&amount=10&currency=btc", "currency", "invalid_choice"),
        ("type=install&type=install", "type", "repeated"),
        ("type=sale", "type", "invalid_choice"),
        ("player_id=p", "type", "required"),
        ("type=install&test=yes", "test", "invalid_boolean"),
        ("type=install&player_id=a%00b", "player_id", "control_character"),
        ("type=install&player_id=%ff", "player_id", "invalid_utf8"),
        ("type=install&transaction_id=%C3%28", "transaction_id", "invalid_utf8"),
        (f"type=install&player_id={'x' * 256}", "player_id", "too_long"),
        ("type=install&time=2026-11-25T10:00:00", "time", "missing_offset"),
        ("type=install&time=2999-01-01T00:00:00Z", "time", "in_future"),
    ],
)
async def test_bad_input_is_422_naming_the_field_and_stores_nothing(
    client: httpx.AsyncClient, query: str, field: str, code: str
) -> None:
    click_id = await new_click()
    response = await client.get(pixel(click_id, query))
    assert response.status_code == 422
    assert error_codes(response)[field] == code
    assert response.headers["content-type"].startswith("application/json")
    assert_pixel_headers(response)
    assert await count_conversions() == 0
    assert (await stored_click(click_id))["stage"] == Stage.NONE


async def test_every_bad_field_is_named_in_one_answer(client: httpx.AsyncClient) -> None:
    response = await client.get(
        pixel("not-a-uuid", "type=deposit&type=install&amount=NaN&currency=eur&player_id=%ff")
    )
    assert response.status_code == 422
    assert error_codes(response) == {
        "type": "repeated",
        "player_id": "invalid_utf8",
        "click_id": "invalid_uuid",
        "amount": "invalid_amount",
    }
    for error in response.json()["errors"]:
        assert error["message"]


async def test_a_malformed_click_id_is_422_not_404(client: httpx.AsyncClient) -> None:
    response = await client.get(pixel("12345", "type=install"))
    assert response.status_code == 422
    assert error_codes(response) == {"click_id": "invalid_uuid"}


async def test_an_unknown_click_is_404_json(client: httpx.AsyncClient) -> None:
    response = await client.get(pixel(uuid.uuid4(), "type=install"))
    assert response.status_code == 404
    assert error_codes(response) == {"click_id": "not_found"}
    assert_pixel_headers(response)
    assert await count_conversions() == 0


async def test_parameters_that_do_not_matter_are_ignored(client: httpx.AsyncClient) -> None:
    click_id = await new_click()
    response = await client.get(
        pixel(click_id, "type=install&cb=17&cb=18&method=postback&utm_source=x")
    )
    assert response.status_code == 202
    assert len(await stored_conversions(click_id)) == 1


async def test_a_repeated_install_is_202_and_stores_nothing_new(client: httpx.AsyncClient) -> None:
    click_id = await new_click()
    for _ in range(3):
        response = await client.get(pixel(click_id, "type=install"))
        assert response.status_code == 202
    assert len(await stored_conversions(click_id)) == 1


async def test_a_repeated_registration_is_202_and_stores_nothing_new(
    client: httpx.AsyncClient,
) -> None:
    click_id = await new_click()
    assert (await client.get(pixel(click_id, "type=registration"))).status_code == 202
    assert (await client.get(pixel(click_id, "type=REGISTRATION"))).status_code == 202
    assert len(await stored_conversions(click_id)) == 1


async def test_a_repeated_deposit_transaction_is_202_and_stores_nothing_new(
    client: httpx.AsyncClient,
) -> None:
    click_id = await new_click()
    query = "type=deposit&amount=40.00&currency=EUR&transaction_id=tx-9"
    assert (await client.get(pixel(click_id, query))).status_code == 202
    # The same event spelled differently: "40" is 40.00, "eur" is EUR.
    response = await client.get(
        pixel(click_id, "type=deposit&amount=40&currency=eur&transaction_id=tx-9")
    )
    assert response.status_code == 202
    assert len(await stored_conversions(click_id)) == 1


@pytest.mark.parametrize(
    "second", ["amount=40.01&currency=eur", "amount=40.00&currency=usd", ""], ids=str
)
async def test_a_deposit_reusing_a_transaction_id_with_other_values_is_409(
    client: httpx.AsyncClient, second: str
) -> None:
    click_id = await new_click()
    first = await client.get(
        pixel(click_id, "type=deposit&amount=40.00&currency=eur&transaction_id=tx-9")
    )
    assert first.status_code == 202
    response = await client.get(pixel(click_id, f"type=deposit&transaction_id=tx-9&{second}"))
    assert response.status_code == 409
    assert error_codes(response) == {"transaction_id": "conflict"}
    assert_pixel_headers(response)
    [stored] = await stored_conversions(click_id)
    assert (stored["amount_minor"], stored["currency"]) == (4000, "eur")


async def test_the_same_transaction_id_on_another_click_is_another_deposit(
    client: httpx.AsyncClient,
) -> None:
    first_click, second_click = await new_click(), await new_click()
    for click_id in (first_click, second_click):
        response = await client.get(
            pixel(click_id, "type=deposit&amount=5&currency=gbp&transaction_id=shared")
        )
        assert response.status_code == 202
    assert await count_conversions() == 2


async def test_deposits_without_transaction_id_are_each_stored(client: httpx.AsyncClient) -> None:
    click_id = await new_click()
    for _ in range(2):
        assert (await client.get(pixel(click_id, "type=deposit"))).status_code == 202
    assert len(await stored_conversions(click_id)) == 2


async def test_only_the_first_deposit_of_a_click_is_flagged_first(
    client: httpx.AsyncClient,
) -> None:
    click_id, other_click = await new_click(), await new_click()
    for transaction_id in ("a", "b", "c"):
        query = f"type=deposit&amount=1&currency=eur&transaction_id={transaction_id}"
        await client.get(pixel(click_id, query))
    await client.get(pixel(other_click, "type=deposit"))
    flags = {c["transaction_id"]: c["is_first_deposit"] for c in await stored_conversions(click_id)}
    assert flags == {"a": True, "b": False, "c": False}
    [other] = await stored_conversions(other_click)
    assert other["is_first_deposit"] is True


async def test_the_stage_is_the_furthest_step_and_never_moves_back(
    client: httpx.AsyncClient,
) -> None:
    click_id = await new_click()
    assert (await stored_click(click_id))["stage"] == Stage.NONE
    await client.get(pixel(click_id, "type=install"))
    assert (await stored_click(click_id))["stage"] == Stage.INSTALL
    # Steps may be skipped...
    await client.get(pixel(click_id, "type=deposit"))
    assert (await stored_click(click_id))["stage"] == Stage.DEPOSIT
    # ...and a late registration does not move the click back.
    assert (await client.get(pixel(click_id, "type=registration"))).status_code == 202
    assert (await stored_click(click_id))["stage"] == Stage.DEPOSIT
    assert len(await stored_conversions(click_id)) == 3


async def test_the_click_learns_its_player_id_once(client: httpx.AsyncClient) -> None:
    click_id = await new_click()
    await client.get(pixel(click_id, "type=install"))
    assert (await stored_click(click_id))["player_id"] is None
    await client.get(pixel(click_id, "type=registration&player_id=first"))
    await client.get(pixel(click_id, "type=deposit&player_id=second"))
    assert (await stored_click(click_id))["player_id"] == "first"


@pytest.mark.parametrize("flag", ["true", "TRUE", "1"])
async def test_test_mode_answers_as_usual_and_changes_nothing(
    client: httpx.AsyncClient, flag: str
) -> None:
    click_id = await new_click()
    response = await client.get(
        pixel(click_id, f"type=deposit&amount=5&currency=eur&player_id=p&test={flag}")
    )
    assert response.status_code == 202
    assert await stored_conversions(click_id) == []
    click = await stored_click(click_id)
    assert (click["stage"], click["player_id"]) == (Stage.NONE, None)


async def test_test_mode_still_finds_unknown_clicks_and_conflicts(
    client: httpx.AsyncClient,
) -> None:
    unknown = await client.get(pixel(uuid.uuid4(), "type=install&test=true"))
    assert unknown.status_code == 404
    click_id = await new_click()
    await client.get(pixel(click_id, "type=deposit&amount=1&currency=eur&transaction_id=t"))
    conflict = await client.get(
        pixel(click_id, "type=deposit&amount=2&currency=eur&transaction_id=t&test=1")
    )
    assert conflict.status_code == 409
    invalid = await client.get(pixel(click_id, "type=deposit&amount=NaN&currency=eur&test=1"))
    assert invalid.status_code == 422
    assert len(await stored_conversions(click_id)) == 1


async def test_test_false_records(client: httpx.AsyncClient) -> None:
    click_id = await new_click()
    assert (await client.get(pixel(click_id, "type=install&test=false"))).status_code == 202
    assert len(await stored_conversions(click_id)) == 1


async def test_head_answers_like_get_and_never_stores(client: httpx.AsyncClient) -> None:
    click_id = await new_click()
    response = await client.head(pixel(click_id, "type=install"))
    assert response.status_code == 202
    assert response.content == b""
    assert_pixel_headers(response)
    assert (await client.head(pixel(click_id, "type=nope"))).status_code == 422
    # HEAD implies test=true, but a test value GET would refuse is refused as GET does.
    refused = await client.head(pixel(click_id, "type=install&test=null"))
    assert refused.status_code == 422
    assert (await client.head(pixel(click_id, "type=install&test=FALSE"))).status_code == 202
    assert (await client.head(pixel(uuid.uuid4(), "type=install"))).status_code == 404
    assert await stored_conversions(click_id) == []
    assert (await stored_click(click_id))["stage"] == Stage.NONE


async def test_post_with_a_form_body_is_accepted_like_send_beacon(
    client: httpx.AsyncClient,
) -> None:
    click_id = await new_click()
    response = await client.post(
        pixel(click_id),
        content=b"type=deposit&amount=12.50&currency=usd&transaction_id=beacon-1",
        headers={"Content-Type": "application/x-www-form-urlencoded;charset=UTF-8"},
    )
    assert response.status_code == 202
    assert response.content == b""
    assert_pixel_headers(response)
    [conversion] = await stored_conversions(click_id)
    assert (conversion["amount_minor"], conversion["transaction_id"]) == (1250, "beacon-1")


async def test_post_with_the_query_string_or_a_text_body_is_accepted(
    client: httpx.AsyncClient,
) -> None:
    click_id = await new_click()
    assert (await client.post(pixel(click_id, "type=install"))).status_code == 202
    text_beacon = await client.post(
        pixel(click_id),
        content=b"type=registration",
        headers={"Content-Type": "text/plain;charset=UTF-8"},
    )
    assert text_beacon.status_code == 202
    assert len(await stored_conversions(click_id)) == 2


async def test_post_repeating_a_query_parameter_in_the_body_is_an_error(
    client: httpx.AsyncClient,
) -> None:
    click_id = await new_click()
    response = await client.post(
        pixel(click_id, "type=install"),
        content=b"type=deposit",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 422
    assert error_codes(response) == {"type": "repeated"}
    assert await count_conversions() == 0


async def test_post_with_a_json_body_is_refused_clearly(client: httpx.AsyncClient) -> None:
    click_id = await new_click()
    response = await client.post(pixel(click_id), json={"type": "install"})
    assert response.status_code == 415
    assert error_codes(response) == {"body": "unsupported_media_type"}
    assert_pixel_headers(response)
    assert await count_conversions() == 0


async def test_options_preflight_allows_any_origin(client: httpx.AsyncClient) -> None:
    response = await client.options(
        pixel(uuid.uuid4()),
        headers={
            "Origin": "https://operator.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert response.status_code == 204
    assert_pixel_headers(response)
    assert "POST" in response.headers["access-control-allow-methods"]
    assert "content-type" in response.headers["access-control-allow-headers"].lower()


async def test_other_methods_are_405_with_the_pixel_headers(client: httpx.AsyncClient) -> None:
    response = await client.put(pixel(uuid.uuid4(), "type=install"))
    assert response.status_code == 405
    assert_pixel_headers(response)
    assert "traceback" not in response.text.lower()


async def test_a_query_string_over_4_kib_is_refused_not_5xx(client: httpx.AsyncClient) -> None:
    click_id = await new_click()
    response = await client.get(pixel(click_id, "type=install&cb=" + "x" * 4100))
    assert response.status_code in (414, 422)
    assert response.json()["errors"]
    assert_pixel_headers(response)
    assert await count_conversions() == 0


async def test_a_query_string_of_exactly_4_kib_is_accepted(client: httpx.AsyncClient) -> None:
    click_id = await new_click()
    query = "type=install&cb="
    response = await client.get(pixel(click_id, query + "x" * (4096 - len(query))))
    assert response.status_code == 202


async def test_a_body_over_4_kib_is_refused(client: httpx.AsyncClient) -> None:
    click_id = await new_click()
    response = await client.post(
        pixel(click_id),
        content=b"type=install&cb=" + b"x" * 5000,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 413
    assert_pixel_headers(response)
    assert await count_conversions() == 0

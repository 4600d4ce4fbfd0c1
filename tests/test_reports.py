"""The report (SPEC.md part two, "Reports and live updates for dashboards", `report`), on
the engine DATABASE_URL names: dimensions, order, metrics, statuses, filters, time zones
with :30 and :45 offsets and DST changes, limits, and metrics computed only when selected."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from piccolo.engine.base import Engine

from models.clicks.service import NewClick, create_click
from models.reports.report import MAX_ROWS
from models.store.tables import Click, Conversion, ConversionStatus
from models.tracking.offers import create_offer
from tests.graphql_client import GraphQL, graphql_as, seed_conversion
from tests.support import new_link
from tests.test_graphql_performance import counted_statements

METRICS = (
    "clicks installs registrations deposits firstDeposits"
    " depositTotals { currency amount } registrationRate firstDepositRate"
)
REPORT = f"""
query ($input: ReportInput!) {{
  report(input: $input) {{
    rows {{
      day hour country offer {{ name }} partner {{ name }} trackingLink {{ id }}
      metrics {{ {METRICS} }}
    }}
    totals {{ {METRICS} }}
  }}
}}
"""
DAY1 = datetime(2026, 11, 2, 10, tzinfo=UTC)
DAY2 = DAY1 + timedelta(days=1)
NO_CONVERSIONS = {
    "installs": 0,
    "registrations": 0,
    "deposits": 0,
    "firstDeposits": 0,
    "depositTotals": [],
}


def _bare(**set_: Any) -> dict[str, Any]:
    """A row with only the dimensions `set_` names."""
    row: dict[str, Any] = dict.fromkeys(
        ("day", "hour", "country", "offer", "partner", "trackingLink")
    )
    return row | set_


@dataclass(frozen=True)
class Shop:
    link_id: uuid.UUID
    offer_id: uuid.UUID
    partner_id: uuid.UUID


async def _shop(offer: str, partner: str) -> Shop:
    offer_record = await create_offer(offer, "https://casino.example/")
    link = await new_link(offer_record.id, partner)
    return Shop(link.id, offer_record.id, link.partner_id)


async def _click(at: datetime, shop: Shop | None = None, country: str | None = None) -> uuid.UUID:
    return await create_click(
        NewClick(created_at=at, country=country, tracking_link_id=shop.link_id if shop else None)
    )


async def report(graphql: GraphQL, query: str = REPORT, **input_: Any) -> dict[str, Any]:
    defaults = {"from": "2026-11-01T00:00:00Z", "to": "2026-12-01T00:00:00Z"}
    data = await graphql.data(query, {"input": defaults | input_})
    result: dict[str, Any] = data["report"]
    return result


@pytest.fixture
async def admin(client: httpx.AsyncClient) -> GraphQL:
    return await graphql_as(client)


async def test_rows_by_day_and_offer_count_clicks_at_creation_and_conversions_at_occurrence(
    admin: GraphQL,
) -> None:
    """One row per group with a click or a conversion, only the grouped dimensions set,
    ordered by day then offer name; a conversion counts under its click's offer on the
    day it occurred; exact deposit totals per currency; rates per click, null without."""
    alpha, beta = await _shop("alpha", "p1"), await _shop("beta", "p2")
    alpha_clicks = [await _click(DAY1, alpha) for _ in range(4)]
    await _click(DAY1, beta)
    await seed_conversion(alpha_clicks[0], "install", occurred_at=DAY1 + timedelta(minutes=1))
    await seed_conversion(alpha_clicks[0], "registration", occurred_at=DAY1 + timedelta(minutes=2))
    for n, (amount, currency) in enumerate((("10.10", "eur"), ("0.20", "eur"), ("5.00", "usd"))):
        await seed_conversion(
            alpha_clicks[1],
            "deposit",
            occurred_at=DAY1 + timedelta(minutes=3 + n),
            amount=amount,
            currency=currency,
            transaction_id=f"t{n}",
        )
    # The beta click converts the next day: counted on DAY2, where beta has no click.
    await seed_conversion(alpha_clicks[2], "registration", occurred_at=DAY2)

    result = await report(admin, groupBy=["DAY", "OFFER"])

    day1, day2 = "2026-11-02", "2026-11-03"
    assert [(row["day"], row["offer"]) for row in result["rows"]] == [
        (day1, {"name": "alpha"}),
        (day1, {"name": "beta"}),
        (day2, {"name": "alpha"}),
    ]
    for row in result["rows"]:
        assert (row["hour"], row["country"], row["partner"], row["trackingLink"]) == (None,) * 4
    assert result["rows"][0]["metrics"] == {
        "clicks": 4,
        "installs": 1,
        "registrations": 1,
        "deposits": 3,
        "firstDeposits": 1,
        "depositTotals": [
            {"currency": "EUR", "amount": "10.30"},
            {"currency": "USD", "amount": "5.00"},
        ],
        "registrationRate": 0.25,
        "firstDepositRate": 0.25,
    }
    assert result["rows"][1]["metrics"] == {
        "clicks": 1,
        **NO_CONVERSIONS,
        "registrationRate": 0.0,
        "firstDepositRate": 0.0,
    }
    assert result["rows"][2]["metrics"] == {
        "clicks": 0,
        **NO_CONVERSIONS,
        "registrations": 1,
        "registrationRate": None,
        "firstDepositRate": None,
    }
    assert result["totals"]["clicks"] == 5
    assert result["totals"]["registrations"] == 2
    assert result["totals"]["registrationRate"] == 0.4
    assert result["totals"]["depositTotals"] == result["rows"][0]["metrics"]["depositTotals"]


async def test_without_group_by_one_row_even_when_nothing_happened(admin: GraphQL) -> None:
    result = await report(admin)
    assert result["rows"] == [
        _bare(
            metrics={
                "clicks": 0,
                **NO_CONVERSIONS,
                "registrationRate": None,
                "firstDepositRate": None,
            }
        )
    ]
    click = await _click(DAY1)
    await seed_conversion(click, "install", occurred_at=DAY1)
    [row] = (await report(admin))["rows"]
    assert (row["metrics"]["clicks"], row["metrics"]["installs"]) == (1, 1)


async def test_to_is_exclusive_and_statuses_filter_conversions_never_clicks(
    admin: GraphQL,
) -> None:
    click = await _click(DAY1)
    await _click(DAY2)  # exactly at `to`: not counted
    install = await seed_conversion(click, "install", occurred_at=DAY1)
    await seed_conversion(click, "registration", occurred_at=DAY1)
    await Conversion.update({Conversion.status: ConversionStatus.REJECTED.value}).where(
        Conversion.id == install
    )
    window = {"from": DAY1.isoformat(), "to": DAY2.isoformat()}
    [row] = (await report(admin, **window))["rows"]
    assert (row["metrics"]["clicks"], row["metrics"]["installs"]) == (1, 0)
    assert row["metrics"]["registrations"] == 1
    [row] = (await report(admin, statuses=["REJECTED"], **window))["rows"]
    assert (row["metrics"]["clicks"], row["metrics"]["installs"]) == (1, 1)
    assert row["metrics"]["registrations"] == 0


async def test_partner_link_and_country_rows_and_every_filter(admin: GraphQL) -> None:
    alpha, beta = await _shop("alpha", "zed"), await _shop("alpha", "ann")
    await _click(DAY1, alpha, "DE")
    await _click(DAY1, alpha, "FR")
    beta_click = await _click(DAY1, beta, "DE")
    await seed_conversion(beta_click, "install", occurred_at=DAY1)
    await _click(DAY1, None, "DE")  # no link: no offer, no partner, ordered last

    result = await report(admin, groupBy=["PARTNER", "TRACKING_LINK", "COUNTRY"])
    assert [
        (row["partner"], row["trackingLink"], row["country"], row["metrics"]["clicks"])
        for row in result["rows"]
    ] == [
        ({"name": "ann"}, {"id": str(beta.link_id)}, "DE", 1),
        ({"name": "zed"}, {"id": str(alpha.link_id)}, "DE", 1),
        ({"name": "zed"}, {"id": str(alpha.link_id)}, "FR", 1),
        (None, None, "DE", 1),
    ]
    assert [row["offer"] is None and row["day"] is None for row in result["rows"]] == [True] * 4

    async def clicks_and_installs(**filter_: Any) -> tuple[int, int]:
        [row] = (await report(admin, filter=filter_))["rows"]
        return row["metrics"]["clicks"], row["metrics"]["installs"]

    assert await clicks_and_installs(offerId=str(beta.offer_id)) == (1, 1)
    assert await clicks_and_installs(partnerId=str(alpha.partner_id)) == (2, 0)
    assert await clicks_and_installs(trackingLinkId=str(beta.link_id)) == (1, 1)
    assert await clicks_and_installs(country="de") == (3, 1)
    assert await clicks_and_installs(country="DE", partnerId=str(alpha.partner_id)) == (1, 0)


HOURS = """
query ($input: ReportInput!) { report(input: $input) { rows { day hour metrics { clicks } } } }
"""


async def test_days_and_hours_start_in_zones_with_half_and_three_quarter_hour_offsets(
    admin: GraphQL,
) -> None:
    click = await _click(datetime(2026, 11, 10, 18, 40, tzinfo=UTC))
    await seed_conversion(click, "install", occurred_at=datetime(2026, 11, 10, 18, 50, tzinfo=UTC))
    by_zone = {}
    for zone in ("UTC", "Asia/Kolkata", "Asia/Kathmandu"):
        result = await report(admin, HOURS, timeZone=zone, groupBy=["DAY", "HOUR"])
        by_zone[zone] = [(row["day"], row["hour"]) for row in result["rows"]]
    assert by_zone == {
        "UTC": [("2026-11-10", "2026-11-10T18:00:00.000000+00:00")],
        # 18:40Z is 00:10 on the 11th in India (+05:30) and 00:25 in Nepal (+05:45).
        "Asia/Kolkata": [("2026-11-11", "2026-11-11T00:00:00.000000+05:30")],
        "Asia/Kathmandu": [("2026-11-11", "2026-11-11T00:00:00.000000+05:45")],
    }


@pytest.mark.parametrize(
    ("local_day", "hours", "changed_hours"),
    [
        # Spring forward: 02:00 never happens, a 23-hour day.
        ("2026-03-29", 23, ["01:00:00.000000+01:00", "03:00:00.000000+02:00"]),
        # Fall back: 02:00 happens twice, a 25-hour day, each hour its own row.
        ("2026-10-25", 25, ["02:00:00.000000+02:00", "02:00:00.000000+01:00"]),
    ],
)
async def test_a_dst_change_makes_a_short_or_long_day_with_distinct_hours(
    admin: GraphQL, local_day: str, hours: int, changed_hours: list[str]
) -> None:
    berlin_midnight = {"2026-03-29": "2026-03-28T23:00:00Z", "2026-10-25": "2026-10-24T22:00:00Z"}
    start = datetime.fromisoformat(berlin_midnight[local_day])
    # A click every UTC hour from two hours before the local day to two hours after.
    for hour in range(-2, hours + 2):
        await _click(start + timedelta(hours=hour, minutes=30))
    window = {"from": "2026-03-01T00:00:00Z", "to": "2026-11-01T00:00:00Z"}
    by_day = await report(admin, HOURS, timeZone="Europe/Berlin", groupBy=["DAY"], **window)
    clicks_of = {row["day"]: row["metrics"]["clicks"] for row in by_day["rows"]}
    assert clicks_of[local_day] == hours
    by_hour = await report(admin, HOURS, timeZone="Europe/Berlin", groupBy=["HOUR"], **window)
    hours_of_day = [row["hour"] for row in by_hour["rows"] if row["hour"].startswith(local_day)]
    assert len(hours_of_day) == len(set(hours_of_day)) == hours
    assert all(row["metrics"]["clicks"] == 1 for row in by_hour["rows"])
    shown = [hour.removeprefix(f"{local_day}T") for hour in hours_of_day]
    assert changed_hours[0] in shown
    assert shown.index(changed_hours[1]) == shown.index(changed_hours[0]) + 1


async def test_bad_input_is_bad_user_input_naming_every_field(admin: GraphQL) -> None:
    errors = await admin.errors(
        REPORT,
        {
            "input": {
                "from": "2025-01-01T00:00:00Z",
                "to": "2026-01-03T00:00:00Z",
                "timeZone": "Mars/Olympus",
                "groupBy": ["DAY", "OFFER", "PARTNER", "COUNTRY"],
            }
        },
    )
    [error] = errors
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert {field["field"] for field in error["extensions"]["errors"]} == {
        "to",
        "timeZone",
        "groupBy",
    }
    assert "timeZone" in error["message"]
    [error] = await admin.errors(
        REPORT, {"input": {"from": "2026-01-02T00:00:00Z", "to": "2026-01-02T00:00:00Z"}}
    )
    assert error["extensions"]["errors"][0]["field"] == "to"


async def test_more_than_the_row_limit_asks_to_narrow(admin: GraphQL, db: Engine) -> None:
    """MAX_ROWS + 1 groups of an hour and a country, one click each: one group too many."""
    countries = [f"{chr(65 + n // 26)}{chr(65 + n % 26)}" for n in range(26 * 26)]
    start = datetime(2026, 11, 1, tzinfo=UTC)
    hours = 700
    clicks = [
        Click(created_at=start + timedelta(hours=n % hours), country=countries[n // hours])
        for n in range(MAX_ROWS + 1)
    ]
    for batch in range(0, len(clicks), 1000):  # within PostgreSQL's bound on arguments
        await Click.insert(*clicks[batch : batch + 1000])
    input_ = {"from": "2026-11-01T00:00:00Z", "to": "2026-12-01T00:00:00Z"}
    errors = await admin.errors(REPORT, {"input": input_ | {"groupBy": ["HOUR", "COUNTRY"]}})
    assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "narrow" in errors[0]["message"]
    # One group fewer is a report.
    await Click.delete().where(Click.created_at == start + timedelta(hours=MAX_ROWS % hours))
    await Click.delete().where(Click.country == countries[MAX_ROWS // hours])
    rows = (await report(admin, HOURS.replace("day hour", "hour"), groupBy=["HOUR", "COUNTRY"]))[
        "rows"
    ]
    assert len(rows) <= MAX_ROWS


async def test_unselected_metrics_are_not_computed(
    admin: GraphQL, db: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    click = await _click(DAY1)
    await seed_conversion(click, "install", occurred_at=DAY1)
    only_clicks = "query ($input: ReportInput!) { report(input: $input) { totals { clicks } } }"
    only_installs = (
        "query ($input: ReportInput!) { report(input: $input) {"
        " rows { ...counted } } } fragment counted on ReportRow { metrics { installs } }"
    )
    with counted_statements(db, monkeypatch) as statements:
        assert (await report(admin, only_clicks))["totals"] == {"clicks": 1}
    assert not [s for s in statements if "FROM conversion" in s]
    assert [s for s in statements if "FROM click" in s]
    with counted_statements(db, monkeypatch) as statements:
        assert (await report(admin, only_installs))["rows"] == [{"metrics": {"installs": 1}}]
    assert not [s for s in statements if "FROM click " in s and "COUNT(*)" in s]
    assert [s for s in statements if "FROM conversion" in s]

"""Seed a benchmark's database: an offer, a partner's tracking link to it, and clicks.

Run in a process of its own with DATABASE_URL set (Piccolo binds the tables to
that engine when they are first imported); `pixel_bench.create_clicks` does.
Prints `secret <offer's fire secret>`, `link <tracking link id>`, then one click id
per line.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from models.clicks.service import NewClick, create_click
from models.partners.access import EVERYTHING
from models.partners.partners import create_partner
from models.postbacks.rules import RuleSaved, create_rule
from models.store.tables import FirePolicy, PostbackEvent
from models.tracking.links import create_tracking_link
from models.tracking.offers import create_offer, rotate_fire_secret


async def seed(clicks: int, *, signed: bool, rules: int) -> None:
    """`signed`: the offer takes only signed deposits. `rules`: the partner has that
    many postback rules for every deposit. With either, the clicks come through the
    partner's link; otherwise they have no link, as clicks created through GraphQL."""
    policy = FirePolicy.SIGNED_DEPOSITS if signed else FirePolicy.OPEN
    offer = await create_offer("bench", "https://operator.example/welcome", policy)
    print("secret", await rotate_fire_secret(offer.id))
    partner = await create_partner("bench")
    link = (await create_tracking_link(offer.id, partner.id)).id
    print("link", link)
    for number in range(rules):
        saved = await create_rule(
            EVERYTHING,
            partner_id=partner.id,
            offer_id=None,
            events=[PostbackEvent.DEPOSIT, PostbackEvent.FIRST_DEPOSIT],
            url_template=f"https://partner-{number}.example/postback?click={{click_id}}",
            allow_private_networks=False,
        )
        assert isinstance(saved, RuleSaved), saved
    created = datetime.now(UTC) - timedelta(hours=1)
    through_link = link if signed or rules else None
    for _ in range(clicks):
        print(await create_click(NewClick(created_at=created, tracking_link_id=through_link)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("clicks", type=int)
    parser.add_argument("--signed", action="store_true")
    parser.add_argument("--rules", type=int, default=0)
    arguments = parser.parse_args()
    asyncio.run(seed(arguments.clicks, signed=arguments.signed, rules=arguments.rules))


if __name__ == "__main__":
    main()

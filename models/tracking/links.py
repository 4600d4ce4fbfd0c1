"""Tracking links: a partner's link to an offer; every visit through one is a click."""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

from models.errors import FieldError, InvalidInputError, text_errors
from models.paging import Cursor, Page
from models.partners.access import Access
from models.store.reads import TableReads
from models.store.tables import MAX_ID_LENGTH, Offer, Partner, TrackingLink
from models.tracking import landing_urls


@dataclass(kw_only=True)
class TrackingLinkRecord:
    CURSOR_KIND: ClassVar[str] = "tracking_link"

    id: uuid.UUID
    offer_id: uuid.UUID
    partner_id: uuid.UUID
    creative: str | None
    created_at: datetime

    @property
    def cursor(self) -> Cursor:
        return Cursor(self.created_at, self.id)


READS = TableReads(TrackingLink, TrackingLinkRecord, TrackingLink.created_at)


async def create_tracking_link(
    offer_id: uuid.UUID, partner_id: uuid.UUID, creative: str | None = None
) -> TrackingLinkRecord:
    """Store a partner's tracking link to an existing offer; raise InvalidInputError
    naming every bad field."""
    creative = (creative or "").strip() or None
    errors = text_errors("creative", creative, max_length=MAX_ID_LENGTH)
    if not await Offer.exists().where(Offer.id == offer_id):
        errors.append(FieldError("offer_id", "not_found", "no offer has this {offer_id}"))
    if not await Partner.exists().where(Partner.id == partner_id):
        errors.append(FieldError("partner_id", "not_found", "no partner has this {partner_id}"))
    if errors:
        raise InvalidInputError(errors)
    link = TrackingLink(
        offer=offer_id,
        partner=partner_id,
        creative=creative,
        created_at=datetime.now(UTC),
    )
    await link.save()
    landing_urls.forget_all()  # this worker may remember the id as unknown
    return READS.mapping.record(link.to_dict())


def conditions(offer_id: uuid.UUID | None = None, partner_id: uuid.UUID | None = None) -> list[Any]:
    """Every link, or one offer's, or one partner's, or both."""
    given = ((TrackingLink.offer, offer_id), (TrackingLink.partner, partner_id))
    return [column == value for column, value in given if value is not None]


async def count_of_partners(
    access: Access, partner_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, int]:
    return await READS.count_by(access, TrackingLink.partner, partner_ids)


async def pages_of_partners(
    access: Access, partner_ids: Sequence[uuid.UUID], first: int, after: Cursor | None = None
) -> dict[uuid.UUID, Page[TrackingLinkRecord]]:
    """The same page of each partner's links, in two statements for all of them."""
    return await READS.pages_by(access, TrackingLink.partner, partner_ids, first, after)

"""Tracking links: a partner's link to an offer; every visit through one is a click."""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

from models.errors import FieldError, InvalidInputError, text_errors
from models.paging import Cursor
from models.store.reads import TableReads
from models.store.tables import MAX_ID_LENGTH, Offer, TrackingLink
from models.tracking import landing_urls


@dataclass(kw_only=True)
class TrackingLinkRecord:
    CURSOR_KIND: ClassVar[str] = "tracking_link"

    id: uuid.UUID
    offer_id: uuid.UUID
    partner_reference: str
    creative: str | None
    created_at: datetime

    @property
    def cursor(self) -> Cursor:
        return Cursor(self.created_at, self.id)


READS = TableReads(TrackingLink, TrackingLinkRecord, TrackingLink.created_at)


async def create_tracking_link(
    offer_id: uuid.UUID, partner_reference: str, creative: str | None = None
) -> TrackingLinkRecord:
    """Store a tracking link to an existing offer; raise InvalidInputError."""
    partner_reference, creative = partner_reference.strip(), (creative or "").strip() or None
    errors = text_errors(
        "partner_reference", partner_reference, max_length=MAX_ID_LENGTH, required=True
    )
    errors += text_errors("creative", creative, max_length=MAX_ID_LENGTH)
    if not await Offer.exists().where(Offer.id == offer_id):
        errors.append(FieldError("offer_id", "not_found", "no offer has this {offer_id}"))
    if errors:
        raise InvalidInputError(errors)
    link = TrackingLink(
        offer=offer_id,
        partner_reference=partner_reference,
        creative=creative,
        created_at=datetime.now(UTC),
    )
    await link.save()
    landing_urls.forget_all()  # this worker may remember the id as unknown
    return READS.mapping.record(link.to_dict())


def conditions(offer_id: uuid.UUID | None) -> list[Any]:
    """Every link, or one offer's."""
    return [] if offer_id is None else [TrackingLink.offer == offer_id]

"""Postback rules: a partner's URL template and the events it is sent for, validated when
saved; and the test fire, which sends one sample and stores nothing."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from models.errors import FieldError
from models.partners import partners
from models.partners.access import Access
from models.postbacks.macros import MacroValues, render, template_errors
from models.postbacks.sending import SendPolicy, Sent, send
from models.store.outbox_sql import stored_events
from models.store.tables import ConversionType, PostbackEvent, PostbackRule
from models.tracking import offers


@dataclass(kw_only=True)
class PostbackRuleRecord:
    id: uuid.UUID
    partner_id: uuid.UUID
    # None: every offer of the partner.
    offer_id: uuid.UUID | None
    events: list[PostbackEvent]
    url_template: str
    enabled: bool
    disabled_reason: str | None
    created_at: datetime


@dataclass(frozen=True)
class RuleSaved:
    rule: PostbackRuleRecord


@dataclass(frozen=True)
class RuleDeleted:
    id: uuid.UUID


@dataclass(frozen=True)
class RuleNotFound:
    """No rule has the id, or none that the caller may see: the same answer."""

    id: uuid.UUID


@dataclass(frozen=True)
class RuleInvalid:
    errors: list[FieldError]


@dataclass(frozen=True)
class RuleChanges:
    """The fields of a rule to change; None leaves one as it is."""

    events: Sequence[PostbackEvent] | None = None
    url_template: str | None = None
    enabled: bool | None = None


def _record(row: Mapping[str, Any]) -> PostbackRuleRecord:
    return PostbackRuleRecord(
        id=row["id"],
        partner_id=row["partner"],
        offer_id=row["offer"],
        events=sorted(PostbackEvent(name) for name in row["events"].strip(",").split(",")),
        url_template=row["url_template"],
        # SQLite hands booleans back as 0 and 1.
        enabled=bool(row["enabled"]),
        disabled_reason=row["disabled_reason"],
        created_at=row["created_at"],
    )


def _errors(
    events: Sequence[PostbackEvent] | None, url_template: str | None, *, allow_private: bool
) -> list[FieldError]:
    errors = []
    if events is not None and not events:
        errors.append(FieldError("events", "required", "{events} must name at least one event"))
    if url_template is not None:
        errors += template_errors(
            "url_template", url_template, allow_private_networks=allow_private
        )
    return errors


async def _rules(access: Access, *conditions: Any) -> list[PostbackRuleRecord]:
    query = PostbackRule.select()
    for condition in (*conditions, *access.conditions(PostbackRule)):
        query = query.where(condition)
    rows = await query.order_by(PostbackRule.created_at, PostbackRule.id, ascending=False)
    return [_record(row) for row in rows]


async def rule_by_id(access: Access, rule_id: uuid.UUID) -> PostbackRuleRecord | None:
    found = await _rules(access, PostbackRule.id == rule_id)
    return found[0] if found else None


async def rules_by_ids(
    access: Access, rule_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, PostbackRuleRecord]:
    if not rule_ids:
        return {}
    return {rule.id: rule for rule in await _rules(access, PostbackRule.id.is_in(list(rule_ids)))}


async def rules_of_partners(
    access: Access, partner_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[PostbackRuleRecord]]:
    """Each partner's rules, newest first, in one statement for all of them."""
    by_partner: dict[uuid.UUID, list[PostbackRuleRecord]] = defaultdict(list)
    if partner_ids:
        for rule in await _rules(access, PostbackRule.partner.is_in(list(partner_ids))):
            by_partner[rule.partner_id].append(rule)
    return {partner_id: by_partner[partner_id] for partner_id in partner_ids}


async def create_rule(
    access: Access,
    *,
    partner_id: uuid.UUID,
    offer_id: uuid.UUID | None,
    events: Sequence[PostbackEvent],
    url_template: str,
    allow_private_networks: bool,
) -> RuleSaved | RuleInvalid:
    """Store a rule for a partner `access` sees (and an offer it sees, if one is named)."""
    url_template = url_template.strip()
    errors = _errors(events, url_template, allow_private=allow_private_networks)
    if not await partners.READS.by_ids(access, [partner_id]):
        errors.append(FieldError("partner_id", "not_found", "no partner has this {partner_id}"))
    if offer_id is not None and not await offers.READS.by_ids(access, [offer_id]):
        errors.append(FieldError("offer_id", "not_found", "no offer has this {offer_id}"))
    if errors:
        return RuleInvalid(errors)
    rule = PostbackRule(
        partner=partner_id,
        offer=offer_id,
        events=stored_events(events),
        url_template=url_template,
        enabled=True,
        disabled_reason=None,
        created_at=datetime.now(UTC),
    )
    await rule.save()
    return RuleSaved(_record(rule.to_dict()))


async def update_rule(
    access: Access, rule_id: uuid.UUID, changes: RuleChanges, *, allow_private_networks: bool
) -> RuleSaved | RuleNotFound | RuleInvalid:
    """Change a rule `access` sees. Enabling it clears why it was disabled."""
    if await rule_by_id(access, rule_id) is None:
        return RuleNotFound(rule_id)
    url_template = changes.url_template.strip() if changes.url_template is not None else None
    errors = _errors(changes.events, url_template, allow_private=allow_private_networks)
    if errors:
        return RuleInvalid(errors)
    values: dict[Any, Any] = {}
    if changes.events is not None:
        values[PostbackRule.events] = stored_events(changes.events)
    if url_template is not None:
        values[PostbackRule.url_template] = url_template
    if changes.enabled is not None:
        values[PostbackRule.enabled] = changes.enabled
        values[PostbackRule.disabled_reason] = None
    if values:
        await PostbackRule.update(values).where(PostbackRule.id == rule_id)
    rule = await rule_by_id(access, rule_id)
    return RuleSaved(rule) if rule is not None else RuleNotFound(rule_id)


async def delete_rule(access: Access, rule_id: uuid.UUID) -> RuleDeleted | RuleNotFound:
    """Delete a rule `access` sees, and its deliveries: nothing more is sent for it."""
    if await rule_by_id(access, rule_id) is None:
        return RuleNotFound(rule_id)
    await PostbackRule.delete().where(PostbackRule.id == rule_id)
    return RuleDeleted(rule_id)


def sample_values(rule: PostbackRuleRecord, *, now: datetime) -> MacroValues:
    """A made-up conversion for a test fire, of the rule's first event."""
    event = rule.events[0]
    # A status event's sample is a deposit's, as is a first deposit's.
    types = {member.value: member for member in ConversionType}
    conversion_type = types.get(event.value, ConversionType.DEPOSIT)
    return MacroValues(
        click_id=uuid.uuid4(),
        conversion_id=uuid.uuid4(),
        event=event.value,
        type=conversion_type.value,
        status="approved",
        transaction_id="test",
        amount_minor=4000,
        currency="usd",
        occurred_at=now,
        offer_id=rule.offer_id,
        partner_id=rule.partner_id,
        tracking_link_id=None,
        sub_ids={},
        delivery_id=uuid.uuid4(),
    )


async def test_fire(
    access: Access, rule_id: uuid.UUID, client: httpx.AsyncClient, policy: SendPolicy
) -> Sent | RuleNotFound:
    """Send one sample of a rule now; nothing is stored, and no delivery is counted
    towards disabling it."""
    rule = await rule_by_id(access, rule_id)
    if rule is None:
        return RuleNotFound(rule_id)
    values = sample_values(rule, now=datetime.now(UTC))
    url = render(rule.url_template, values)
    return await send(client, url, delivery_id=values.delivery_id, policy=policy)

"""Partner postbacks in GraphQL: rules (create, update, delete, test fire) and the
delivery log. Every read and write keeps to the request's access: a partner's key
sees, changes and tests only its own partner's rules and deliveries."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry import Info

from models.errors import FieldError
from models.postbacks import outbox, rules
from models.postbacks.outbox import PostbackDeliveryRecord
from models.postbacks.rules import PostbackRuleRecord
from models.postbacks.sending import Sent, new_client
from models.store.tables import DeliveryStatus, PostbackEvent
from schema.context import GraphQLContext
from schema.conversions import ValidationErrors
from schema.errors import FieldErrorType, bad_user_input
from schema.permissions import CanManagePostbacks, CanRead
from schema.relay import After, Connection, First, node, node_of

if TYPE_CHECKING:
    from schema.conversions import Conversion
    from schema.partners import Partner
    from schema.tracking import Offer

strawberry.enum(
    PostbackEvent,
    description="What a postback reports: a conversion's type, its first deposit "
    "(FIRST_DEPOSIT), or a change of its status.",
)
strawberry.enum(DeliveryStatus, description="PENDING until DELIVERED (2xx) or FAILED.")


@node_of(PostbackRuleRecord)
@strawberry.type(
    description="A partner's postback: which events of its conversions, of one offer or "
    "all, are sent to which URL. See docs/postbacks.md."
)
class PostbackRule(PostbackRuleRecord):
    partner_id: strawberry.Private[uuid.UUID]
    offer_id: strawberry.Private[uuid.UUID | None]
    url_template: str = strawberry.field(
        description="An absolute http(s) URL with macros in braces, e.g. {click_id}."
    )
    disabled_reason: str | None = strawberry.field(
        description="Why the rule was disabled automatically; cleared when it is enabled."
    )

    @strawberry.field(description="The partner told.")
    async def partner(
        self, info: Info[GraphQLContext, None]
    ) -> Annotated[Partner, strawberry.lazy("schema.partners")]:
        record = await info.context.loaders.partner_by_id.load(self.partner_id)
        assert record is not None  # whoever sees a rule sees its partner
        return node(record)

    @strawberry.field(description="The one offer it is for; null: all the partner's offers.")
    async def offer(
        self, info: Info[GraphQLContext, None]
    ) -> Annotated[Offer, strawberry.lazy("schema.tracking")] | None:
        if self.offer_id is None:
            return None
        record = await info.context.loaders.offer_by_id.load(self.offer_id)
        return None if record is None else node(record)


@node_of(PostbackDeliveryRecord)
@strawberry.type(description="One postback of one event of a conversion, for one rule.")
class PostbackDelivery(PostbackDeliveryRecord):
    rule_id: strawberry.Private[uuid.UUID]
    conversion_id: strawberry.Private[uuid.UUID]
    finished_at: strawberry.Private[datetime | None]
    claimed_until: strawberry.Private[datetime | None]
    claim: strawberry.Private[uuid.UUID | None]
    url: str | None = strawberry.field(
        description="The URL of the last attempt, rendered from the rule's template when "
        "sent; null until the first attempt."
    )

    @strawberry.field(description="The rule it was queued for.")
    async def rule(self, info: Info[GraphQLContext, None]) -> PostbackRule:
        record = await info.context.loaders.postback_rule_by_id.load(self.rule_id)
        assert record is not None  # deleting a rule deletes its deliveries
        return node(record)

    @strawberry.field(description="The conversion it reports.")
    async def conversion(
        self, info: Info[GraphQLContext, None]
    ) -> Annotated[Conversion, strawberry.lazy("schema.conversions")]:
        record = await info.context.loaders.conversion_by_id.load(self.conversion_id)
        assert record is not None  # a conversion's deliveries are its partner's
        return node(record)


@strawberry.type(description="A test fire's answer: nothing was stored.")
class PostbackAttempt:
    url: str
    status_code: int | None
    duration_ms: int
    error: str | None = strawberry.field(
        description="blocked_address, timeout, connection_error or invalid_url; null when "
        "the partner answered."
    )


@strawberry.type(description="The rule as saved.")
class PostbackRuleSaved:
    rule: PostbackRule


@strawberry.type(description="The rule and its deliveries were deleted.")
class PostbackRuleDeleted:
    id: uuid.UUID


@strawberry.type(description="No rule has this id (or none this key may see).")
class PostbackRuleNotFound:
    id: uuid.UUID


CreatePostbackRuleResult = Annotated[
    PostbackRuleSaved | ValidationErrors, strawberry.union("CreatePostbackRuleResult")
]
UpdatePostbackRuleResult = Annotated[
    PostbackRuleSaved | PostbackRuleNotFound | ValidationErrors,
    strawberry.union("UpdatePostbackRuleResult"),
]
DeletePostbackRuleResult = Annotated[
    PostbackRuleDeleted | PostbackRuleNotFound, strawberry.union("DeletePostbackRuleResult")
]


@strawberry.input(description="A new postback rule.")
class CreatePostbackRuleInput:
    partner_id: uuid.UUID
    offer_id: uuid.UUID | None = strawberry.field(
        default=None, description="Null: every offer of the partner."
    )
    events: list[PostbackEvent]
    url_template: str = strawberry.field(
        description="An absolute http(s) URL, at most 2048 characters, with macros."
    )


@strawberry.input(description="The fields of a rule to change; the others stay as they are.")
class UpdatePostbackRuleInput:
    events: list[PostbackEvent] | None = None
    url_template: str | None = None
    enabled: bool | None = strawberry.field(
        default=None, description="Enabling a rule clears its disabledReason."
    )


@strawberry.input(description="Which deliveries to list; every given field narrows it.")
class PostbackDeliveryFilter:
    partner_id: uuid.UUID | None = None
    rule_id: uuid.UUID | None = None
    conversion_id: uuid.UUID | None = None
    status: DeliveryStatus | None = None


def _saved(
    outcome: rules.RuleSaved | rules.RuleNotFound | rules.RuleInvalid,
) -> PostbackRuleSaved | PostbackRuleNotFound | ValidationErrors:
    match outcome:
        case rules.RuleSaved(rule=record):
            return PostbackRuleSaved(rule=node(record))
        case rules.RuleNotFound(id=rule_id):
            return PostbackRuleNotFound(id=rule_id)
        case rules.RuleInvalid(errors=errors):
            return ValidationErrors(errors=FieldErrorType.from_errors(errors))


def _attempt(sent: Sent) -> PostbackAttempt:
    return PostbackAttempt(
        url=sent.url, status_code=sent.status_code, duration_ms=sent.duration_ms, error=sent.error
    )


@strawberry.type
class PostbackQuery:
    @strawberry.field(
        permission_classes=[CanRead],
        description="Postback deliveries, newest first; a partner's key sees its own.",
    )
    async def postback_deliveries(
        self,
        info: Info[GraphQLContext, None],
        filter: PostbackDeliveryFilter | None = None,
        first: First = None,
        after: After = None,
    ) -> Connection[PostbackDelivery]:
        given = filter or PostbackDeliveryFilter()
        conditions = outbox.conditions(
            partner_id=given.partner_id,
            rule_id=given.rule_id,
            conversion_id=given.conversion_id,
            status=given.status,
        )
        return await Connection.listing(outbox.READS, conditions, first, after, info.context)


@strawberry.type
class PostbackMutation:
    @strawberry.mutation(
        permission_classes=[CanManagePostbacks], description="Create a postback rule."
    )
    async def create_postback_rule(
        self, info: Info[GraphQLContext, None], input: CreatePostbackRuleInput
    ) -> CreatePostbackRuleResult:
        outcome = await rules.create_rule(
            info.context.access,
            partner_id=input.partner_id,
            offer_id=input.offer_id,
            events=input.events,
            url_template=input.url_template,
            allow_private_networks=info.context.postbacks.allow_private_networks,
        )
        match outcome:
            case rules.RuleSaved(rule=record):
                return PostbackRuleSaved(rule=node(record))
            case rules.RuleInvalid(errors=errors):
                return ValidationErrors(errors=FieldErrorType.from_errors(errors))

    @strawberry.mutation(
        permission_classes=[CanManagePostbacks],
        description="Change a rule's events, URL template or enabled flag.",
    )
    async def update_postback_rule(
        self, info: Info[GraphQLContext, None], id: uuid.UUID, input: UpdatePostbackRuleInput
    ) -> UpdatePostbackRuleResult:
        changes = rules.RuleChanges(
            events=input.events, url_template=input.url_template, enabled=input.enabled
        )
        outcome = await rules.update_rule(
            info.context.access,
            id,
            changes,
            allow_private_networks=info.context.postbacks.allow_private_networks,
        )
        return _saved(outcome)

    @strawberry.mutation(
        permission_classes=[CanManagePostbacks],
        description="Delete a rule and its deliveries: nothing more is sent for it.",
    )
    async def delete_postback_rule(
        self, info: Info[GraphQLContext, None], id: uuid.UUID
    ) -> DeletePostbackRuleResult:
        match await rules.delete_rule(info.context.access, id):
            case rules.RuleDeleted(id=rule_id):
                return PostbackRuleDeleted(id=rule_id)
            case rules.RuleNotFound(id=rule_id):
                return PostbackRuleNotFound(id=rule_id)

    @strawberry.mutation(
        permission_classes=[CanManagePostbacks],
        description="Send one sample of a rule now (its first event, made-up values) and "
        "answer how it went; no delivery is stored.",
    )
    async def test_postback_rule(
        self, info: Info[GraphQLContext, None], id: uuid.UUID
    ) -> PostbackAttempt:
        policy = info.context.postbacks
        async with new_client(policy) as client:
            outcome = await rules.test_fire(info.context.access, id, client, policy)
        match outcome:
            case Sent():
                return _attempt(outcome)
            case rules.RuleNotFound():
                raise bad_user_input(
                    "no such postback rule",
                    [FieldError("id", "not_found", "no postback rule has this {id}")],
                )

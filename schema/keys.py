"""API keys in GraphQL: createApiKey (the key shown once) and revokeApiKey, for admins."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry import Info

from models import keys
from models.errors import InvalidInputError
from models.keys import ApiKeyRecord, Scope
from schema.context import GraphQLContext
from schema.errors import bad_user_input
from schema.permissions import CanAdminister
from schema.relay import node, node_of, node_or_none

if TYPE_CHECKING:
    from schema.partners import Partner

strawberry.enum(
    Scope,
    name="ApiKeyScope",
    description="What a key may do: READ (queries), WRITE (queries and recording), "
    "ADMIN (everything, configuration included). A partner's key is READ or WRITE.",
)


@node_of(ApiKeyRecord)
@strawberry.type(description="An API key. Only a hash of its secret is stored.")
class ApiKey(ApiKeyRecord):
    key_hash: strawberry.Private[str]
    partner_id: strawberry.Private[uuid.UUID | None]
    revoked_at: datetime | None = strawberry.field(
        description="When it was revoked; null while it is in use."
    )

    @strawberry.field(
        description="The partner whose data alone the key sees; null for a key that sees "
        "every partner's."
    )
    async def partner(
        self, info: Info[GraphQLContext, None]
    ) -> Annotated[Partner, strawberry.lazy("schema.partners")] | None:
        if self.partner_id is None:
            return None
        return node_or_none(await info.context.loaders.partner_by_id.load(self.partner_id))


@strawberry.type(description="A new API key: `key` is shown this once and never again.")
class CreatedApiKey:
    key: str = strawberry.field(description="Send it as Authorization: Bearer <key>.")
    api_key: ApiKey


@strawberry.input(description="A new API key.")
class CreateApiKeyInput:
    name: str = strawberry.field(description="Who or what the key is for: at most 100 characters.")
    scope: Scope
    partner_id: uuid.UUID | None = strawberry.field(
        default=None,
        description="Bind the key to this partner: it then sees only the partner's data, "
        "and may not be ADMIN.",
    )


@strawberry.type(description="The key is revoked: refused from its next request on.")
class ApiKeyRevoked:
    api_key: ApiKey


@strawberry.type(description="No key in use has this id: none ever had it, or it is revoked.")
class ApiKeyNotFound:
    id: uuid.UUID


RevokeApiKeyResult = Annotated[
    ApiKeyRevoked | ApiKeyNotFound, strawberry.union("RevokeApiKeyResult")
]


@strawberry.type
class KeyMutation:
    @strawberry.mutation(
        permission_classes=[CanAdminister],
        description="Create an API key, optionally bound to a partner: an admin key.",
    )
    async def create_api_key(self, input: CreateApiKeyInput) -> CreatedApiKey:
        try:
            issued = await keys.create_api_key(input.name, input.scope, input.partner_id)
        except InvalidInputError as invalid:
            raise bad_user_input("invalid API key", invalid.errors) from invalid
        return CreatedApiKey(key=issued.secret, api_key=node(issued.record))

    @strawberry.mutation(
        permission_classes=[CanAdminister], description="Revoke an API key: an admin key."
    )
    async def revoke_api_key(self, id: uuid.UUID) -> RevokeApiKeyResult:
        match await keys.revoke_api_key(id):
            case ApiKeyRecord() as revoked:
                return ApiKeyRevoked(api_key=node(revoked))
            case None:
                return ApiKeyNotFound(id=id)

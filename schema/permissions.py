"""Scopes as Strawberry permissions: read for queries, write for mutations."""

from __future__ import annotations

from typing import Any, ClassVar

from strawberry import Info
from strawberry.permission import BasePermission

from models.keys import Scope
from schema.errors import FORBIDDEN


class _RequiresScope(BasePermission):
    required: ClassVar[Scope]
    # BasePermission declares it per instance; this one is shared and never changed.
    error_extensions = {"code": FORBIDDEN}  # noqa: RUF012

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        # No key at all only reaches here for requests that cannot execute (see context.py).
        scope = info.context.api_key_scope
        return scope is not None and scope.grants(self.required)


class CanRead(_RequiresScope):
    required = Scope.READ
    message = "this API key's scope does not allow reading"


class CanWrite(_RequiresScope):
    required = Scope.WRITE
    message = "this API key's scope does not allow mutations: a write or admin key is needed"


class CanAdminister(_RequiresScope):
    required = Scope.ADMIN
    message = "this API key's scope does not allow changing configuration: an admin key is needed"


class CanManagePostbacks(BasePermission):
    """An admin key, or a partner's own write key: the request's access then keeps it to
    its own partner's rules. An unbound write key records, but configures nothing."""

    message = "changing postback rules needs an admin key or the partner's own write key"
    error_extensions = {"code": FORBIDDEN}  # noqa: RUF012

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        scope = info.context.api_key_scope
        if scope is None:
            return False
        bound = info.context.access.partner_id is not None
        return scope.grants(Scope.ADMIN) or (bound and scope.grants(Scope.WRITE))

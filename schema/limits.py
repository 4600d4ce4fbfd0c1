"""What one GraphQL request may ask for. The defaults are the SPEC's."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class GraphQLLimits:
    max_depth: int = 10
    max_aliases: int = 30
    max_tokens: int = 2000
    max_page_size: int = 500
    # Not configurable: clients code against "first defaults to 50".
    default_page_size: int = 50

"""`conversions`: serve the app, migrate the store, manage API keys, import conversions."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from api.server import PROTOCOLS
from models.errors import InvalidInputError
from models.keys import Scope, create_api_key, list_api_keys, revoke_api_key
from models.store.piccolo_app import APP_NAME

if TYPE_CHECKING:
    from api.settings import Settings


def _settings_or_errors() -> Settings | list[str]:
    """The environment's settings, or what is wrong with them without echoing any
    value: a secret may be among them."""
    from pydantic import ValidationError

    from api.settings import Settings

    try:
        return Settings.from_env()
    except ValidationError as invalid:
        return [
            f"{'.'.join(str(part) for part in error['loc']).upper() or 'settings'}: {error['msg']}"
            for error in invalid.errors()
        ]


def _serve(arguments: argparse.Namespace) -> int:
    import uvicorn

    # The server's own bounds come from the same settings the app reads.
    settings = _settings_or_errors()
    if isinstance(settings, list):
        print("conversions serve: refusing to start with invalid settings:", file=sys.stderr)
        for error in settings:
            print(f"  {error}", file=sys.stderr)
        return 2
    if arguments.dev:
        # Read by create_app() in every worker process, which import the app afresh.
        os.environ["CONVERSIONS_DEV"] = "true"
    uvicorn.run(
        "api.app:create_app",
        factory=True,
        host=arguments.host,
        port=arguments.port,
        workers=None if arguments.dev else arguments.workers,
        reload=arguments.dev,
        # The app resolves client addresses itself from TRUSTED_PROXIES; uvicorn's own
        # X-Forwarded-For handling trusts 127.0.0.1 by default and would let it be spoofed.
        proxy_headers=False,
        server_header=False,
        access_log=arguments.access_log or arguments.dev,
        timeout_graceful_shutdown=15,
        loop=arguments.loop,
        # uvicorn's protocols with a deadline per request and, for httptools, a bound on
        # the request head (api/server.py); h11 bounds the head itself with this setting.
        http=PROTOCOLS[arguments.http],
        h11_max_incomplete_event_size=settings.max_request_head_bytes,
        limit_concurrency=settings.max_concurrent_connections,
    )
    return 0


def _migrate(_: argparse.Namespace) -> int:
    from piccolo.apps.migrations.commands.forwards import run_forwards

    result = asyncio.run(run_forwards(app_name=APP_NAME))
    if not result.success:
        print(result.message, file=sys.stderr)
        return 1
    return 0


def _graphql_schema(_: argparse.Namespace) -> int:
    # Production refuses introspection: clients generate code from this SDL instead.
    from schema.root import schema

    print(schema.as_str())
    return 0


def _create_api_key(arguments: argparse.Namespace) -> int:
    try:
        issued = asyncio.run(
            create_api_key(arguments.name, Scope(arguments.scope), arguments.partner)
        )
    except InvalidInputError as invalid:
        for error in invalid.errors:
            print(f"conversions create-api-key: {error.named(_option).message}", file=sys.stderr)
        return 2
    key = issued.record
    bound = f", bound to partner {key.partner_id}" if key.partner_id else ""
    print(f"Created API key {key.name!r} ({key.id}) with scope {key.scope}{bound}.")
    print("Store it now: only its hash is kept, it cannot be shown again.")
    print(issued.secret)
    return 0


def _option(field: str) -> str:
    """A field as this command's options spell it: `partner_id` is `--partner`."""
    return "--" + field.removesuffix("_id")


def _list_api_keys(_: argparse.Namespace) -> int:
    keys = asyncio.run(list_api_keys())
    print("id\tname\tscope\tcreated_at\trevoked_at\tpartner")
    for key in keys:
        revoked = key.revoked_at.isoformat() if key.revoked_at else "-"
        partner = key.partner_id or "-"
        print(
            f"{key.id}\t{key.name}\t{key.scope}\t{key.created_at.isoformat()}\t{revoked}\t{partner}"
        )
    return 0


def _revoke_api_key(arguments: argparse.Namespace) -> int:
    if asyncio.run(revoke_api_key(arguments.key_id)) is not None:
        print(f"Revoked API key {arguments.key_id}: it is refused from now on.")
        return 0
    print(f"No active API key has the id {arguments.key_id}.", file=sys.stderr)
    return 1


def _import(arguments: argparse.Namespace) -> int:
    from api.imports import EXIT_NOT_IMPORTED, run_import

    settings = _settings_or_errors()
    if isinstance(settings, list):
        print("conversions import: invalid settings:", file=sys.stderr)
        for error in settings:
            print(f"  {error}", file=sys.stderr)
        return EXIT_NOT_IMPORTED
    return run_import(
        settings, arguments.file, rejects_path=arguments.rejects, dry_run=arguments.dry_run
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="conversions", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="serve the app (production-safe unless --dev)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    serve.add_argument("--port", type=int, default=8000, help="port to bind (default: %(default)s)")
    serve.add_argument(
        "--workers", type=int, default=1, help="worker processes (default: %(default)s)"
    )
    serve.add_argument(
        "--dev",
        action="store_true",
        help="development mode: debug error pages, auto-reload, GraphiQL and introspection",
    )
    serve.add_argument("--access-log", action="store_true", help="log every request")
    serve.add_argument(
        "--loop",
        choices=["auto", "asyncio", "uvloop"],
        default="auto",
        help="event loop; auto takes uvloop when installed (default: %(default)s)",
    )
    serve.add_argument(
        "--http",
        choices=sorted(PROTOCOLS),
        default="auto",
        help="HTTP parser; auto is httptools, the fastest (default: %(default)s)",
    )
    serve.set_defaults(handler=_serve)

    migrate = commands.add_parser("migrate", help="apply pending migrations (idempotent)")
    migrate.set_defaults(handler=_migrate)

    graphql_schema = commands.add_parser(
        "graphql-schema", help="print the GraphQL schema (SDL), for clients' code generators"
    )
    graphql_schema.set_defaults(handler=_graphql_schema)

    create_key = commands.add_parser(
        "create-api-key", help="create a GraphQL API key; prints the key alone on its last line"
    )
    create_key.add_argument("--name", required=True, help="who or what the key is for")
    create_key.add_argument(
        "--scope",
        required=True,
        choices=[scope.value for scope in Scope],
        help="read: queries; write: queries and mutations; admin: everything",
    )
    create_key.add_argument(
        "--partner",
        type=uuid.UUID,
        metavar="PARTNER_ID",
        help="bind the key to this partner: it sees only the partner's data (read or write)",
    )
    create_key.set_defaults(handler=_create_api_key)

    list_keys = commands.add_parser(
        "list-api-keys",
        help="list API keys (id, name, scope, created, revoked, partner); never secrets",
    )
    list_keys.set_defaults(handler=_list_api_keys)

    revoke_key = commands.add_parser("revoke-api-key", help="revoke an API key by its id")
    revoke_key.add_argument("key_id", type=uuid.UUID, help="the id list-api-keys shows")
    revoke_key.set_defaults(handler=_revoke_api_key)

    import_ = commands.add_parser(
        "import",
        help="record conversions from a CSV file (docs/lifecycle.md); exit 0: every row "
        "recorded or a repeat, 1: rows rejected, 2: nothing imported",
    )
    import_.add_argument(
        "file", type=Path, metavar="FILE.csv", help="a header row, then one conversion a line"
    )
    import_.add_argument(
        "--dry-run",
        action="store_true",
        help="check every row as a test fire (values, click, time, repeats) and store nothing",
    )
    import_.add_argument(
        "--rejects",
        type=Path,
        metavar="FILE",
        help="where the rejected rows go, with line numbers and errors "
        "(default: FILE.rejects.csv beside FILE.csv)",
    )
    import_.set_defaults(handler=_import)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = build_parser().parse_args(argv)
    return arguments.handler(arguments)


if __name__ == "__main__":
    sys.exit(main())

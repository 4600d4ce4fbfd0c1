"""`conversions`: serve the app, migrate the store, manage API keys, import conversions,
prune old clicks."""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from api.logs import LogFormat, uvicorn_json_config
from api.server import PROTOCOLS
from api.settings import METRICS_DIRECTORY_VARIABLE
from models.clicks.retention import DEFAULT_BATCH_SIZE, PruneSummary, parse_age, prune_clicks
from models.errors import InvalidInputError
from models.keys import Scope, create_api_key, list_api_keys, revoke_api_key
from models.store.piccolo_app import APP_NAME

if TYPE_CHECKING:
    from api.settings import Settings


def _settings_or_report(command: str, refusal: str) -> Settings | None:
    """The environment's settings; or None, once `refusal` and what is wrong with them
    are printed, without echoing any value: a secret may be among them."""
    from pydantic import ValidationError

    from api.settings import Settings

    try:
        return Settings.from_env()
    except ValidationError as invalid:
        print(f"conversions {command}: {refusal}:", file=sys.stderr)
        for error in invalid.errors():
            name = ".".join(str(part) for part in error["loc"]).upper() or "settings"
            print(f"  {name}: {error['msg']}", file=sys.stderr)
        return None


@contextmanager
def _metrics_directory(*, enabled: bool) -> Iterator[None]:
    """A fresh directory for the workers' metrics files while serving, removed after:
    counters restart at zero with the server, as Prometheus expects of a restart. Set
    before any worker imports the Prometheus client, which reads it at import."""
    if not enabled:
        yield
        return
    directory = tempfile.mkdtemp(prefix="conversions-metrics-")
    os.environ[METRICS_DIRECTORY_VARIABLE] = directory
    try:
        yield
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _serve(arguments: argparse.Namespace) -> int:
    import uvicorn

    # The server's own bounds come from the same settings the app reads.
    settings = _settings_or_report("serve", "refusing to start with invalid settings")
    if settings is None:
        return 2
    if arguments.dev:
        # Read by create_app() in every worker process, which import the app afresh.
        os.environ["CONVERSIONS_DEV"] = "true"
    logging: dict[str, Any] = {}
    if settings.log_format is LogFormat.JSON:
        logging["log_config"] = uvicorn_json_config(settings.log_level)
    with _metrics_directory(enabled=settings.metrics_enabled):
        uvicorn.run(
            "api.app:create_app",
            **logging,
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

    settings = _settings_or_report("import", "invalid settings")
    if settings is None:
        return EXIT_NOT_IMPORTED
    return run_import(
        settings, arguments.file, rejects_path=arguments.rejects, dry_run=arguments.dry_run
    )


def _age(text: str) -> timedelta:
    """argparse's reading of --clicks-older-than: an age, or what is wrong with it."""
    try:
        return parse_age(text)
    except InvalidInputError as invalid:
        # argparse names the option itself: "argument --clicks-older-than: the age ...".
        raise argparse.ArgumentTypeError(
            "; ".join(error.named(lambda _: "the age").message for error in invalid.errors)
        ) from None


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError("must be a whole number, at least 1")
    return int(text)


# Without a terminal, a progress line at most this often.
PLAIN_PROGRESS_SECONDS = 5.0


def _run_prune(arguments: argparse.Namespace) -> PruneSummary:
    run = partial(
        prune_clicks,
        arguments.clicks_older_than,
        dry_run=arguments.dry_run,
        batch_size=arguments.batch_size,
    )
    if arguments.dry_run:
        return asyncio.run(run())
    if sys.stderr.isatty():
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

        with Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
        ) as progress:
            task = progress.add_task("Deleting clicks", total=None)
            return asyncio.run(
                run(
                    started=lambda prunable: progress.update(task, total=prunable),
                    progressed=lambda deleted: progress.advance(task, deleted),
                )
            )
    # Plain lines for a log: one now and then, not one per batch.
    total = done = 0
    last = time.monotonic()

    def started(prunable: int) -> None:
        nonlocal total
        total = prunable
        print(f"deleting up to {prunable} clicks", file=sys.stderr, flush=True)

    def progressed(deleted: int) -> None:
        nonlocal done, last
        done += deleted
        if time.monotonic() - last >= PLAIN_PROGRESS_SECONDS:
            last = time.monotonic()
            print(f"deleted {done} of {total} clicks", file=sys.stderr, flush=True)

    return asyncio.run(run(started=started, progressed=progressed))


def _prune(arguments: argparse.Namespace) -> int:
    summary = _run_prune(arguments)
    cutoff = summary.cutoff.isoformat(timespec="seconds")
    if arguments.dry_run:
        print(
            f"Dry run: {summary.prunable} clicks made before {cutoff} have no conversion "
            "and would be deleted; nothing was deleted."
        )
    else:
        print(
            f"Deleted {summary.deleted} clicks made before {cutoff} without a conversion, "
            f"in {summary.batches} batches of at most {arguments.batch_size}."
        )
    return 0


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

    prune = commands.add_parser(
        "prune",
        help="delete old clicks that have no conversion, in small batches while serving",
    )
    prune.add_argument(
        "--clicks-older-than",
        required=True,
        type=_age,
        metavar="AGE",
        help="age of the clicks to delete: a whole number and h, d or w, as 180d",
    )
    prune.add_argument("--dry-run", action="store_true", help="count them, delete nothing")
    prune.add_argument(
        "--batch-size",
        type=_positive,
        default=DEFAULT_BATCH_SIZE,
        help="clicks deleted per transaction (default: %(default)s)",
    )
    prune.set_defaults(handler=_prune)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = build_parser().parse_args(argv)
    return arguments.handler(arguments)


if __name__ == "__main__":
    sys.exit(main())

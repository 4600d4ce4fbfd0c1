"""The log's formats: uvicorn's and Litestar's text by default; with `LOG_FORMAT=json`
one JSON object a line, the server's own lines included, each written while a request
is served carrying its `request_id` (api/request_ids.py).

structlog renders every standard-library record (ours, Litestar's, uvicorn's) through
its `ProcessorFormatter`; no code logs through structlog itself. The handlers write
from the thread that logs, not through a queue: the request id lives in the request's
context, which another thread would not see.
"""

from __future__ import annotations

import enum
import logging
import re
from typing import Any

import structlog
from litestar.logging.config import LoggingConfig
from structlog.typing import EventDict, WrappedLogger

from api import request_ids
from models.conversions.signatures import SIGNATURE_PARAMETER

ACCESS_LOGGER = "uvicorn.access"
# Its DEBUG lines carry every statement's parameters: fire secrets and key hashes among
# them. httpx's INFO line for every request names a postback's whole URL, and partners
# put their tokens in their templates. Secrets never reach a log, whatever LOG_LEVEL says.
QUIET_LOGGERS = {name: {"level": "WARNING"} for name in ("aiosqlite", "httpx", "httpcore")}
# A fire's signature in a logged request line: `sig=` up to the next parameter.
SIGNATURE_VALUE = re.compile(rf"([?&]{SIGNATURE_PARAMETER}=)[^&\s]*")


class LogFormat(enum.StrEnum):
    TEXT = "text"
    JSON = "json"


def add_request_id(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    if (request_id := request_ids.current()) is not None:
        event["request_id"] = request_id
    return event


def json_formatter() -> logging.Formatter:
    """The JSON lines' formatter; named by its import path in the logging configs below."""
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            add_request_id,
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
    )


JSON_FORMATTERS = {"json": {"()": f"{__name__}.json_formatter"}}
JSON_HANDLERS = {
    "json": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
}


def uvicorn_json_config(level: str) -> dict[str, Any]:
    """uvicorn's `log_config` for JSON, as uvicorn's own default is laid out (uvicorn
    empties the access logger's handlers itself when the access log is off). Plain
    values only: uvicorn hands it to each worker process."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": JSON_FORMATTERS,
        "handlers": JSON_HANDLERS,
        "root": {"level": level, "handlers": ["json"]},
        "loggers": {
            "uvicorn": {"handlers": ["json"], "level": "INFO", "propagate": False},
            "uvicorn.error": {"level": "INFO"},
            ACCESS_LOGGER: {"handlers": ["json"], "level": "INFO", "propagate": False},
        },
    }


class RedactSignatures(logging.Filter):
    """uvicorn's access line names the request's path with its query string, where a
    signed fire carries its `sig`: the value is replaced before any handler sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        # uvicorn's arguments: client, method, path with query, HTTP version, status.
        if isinstance(record.args, tuple) and len(record.args) == 5:
            client, method, path, version, status = record.args
            if isinstance(path, str) and f"{SIGNATURE_PARAMETER}=" in path:
                redacted = SIGNATURE_VALUE.sub(r"\1[redacted]", path)
                record.args = (client, method, redacted, version, status)
        return True


def redact_access_log() -> None:
    """Once per process, whichever format: the access line is uvicorn's in both."""
    access = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(known, RedactSignatures) for known in access.filters):
        access.addFilter(RedactSignatures())


def app_logging_config(log_format: LogFormat, level: str) -> LoggingConfig:
    """Litestar's logging: the root logger and Litestar's own, in `log_format`.
    Unexpected errors are logged once, by the app's handler, with their traceback."""
    if log_format is LogFormat.TEXT:
        return LoggingConfig(
            log_exceptions="never",
            root={"level": level, "handlers": ["queue_listener"]},
            loggers={**LoggingConfig().loggers, **QUIET_LOGGERS},
        )
    return LoggingConfig(
        log_exceptions="never",
        formatters=JSON_FORMATTERS,
        handlers=JSON_HANDLERS,
        root={"level": level, "handlers": ["json"]},
        loggers={
            "litestar": {"level": "INFO", "handlers": ["json"], "propagate": False},
            **QUIET_LOGGERS,
        },
    )

"""`conversions import FILE.csv`: backfill conversions from a CSV file, each row through
`record_conversion` with source `import`, as if the pixel had been fired with it.

The file is read as bytes, one line a row, at most MAX_LINE_BYTES a line, so a 10 MB
line costs no more memory than a short one; a line that cannot be read (invalid
UTF-8, a field count other than the header's, unbalanced quotes, too long) is
rejected with its line number like an invalid row. Rows are pipelined: up to
IN_FLIGHT of them wait in the worker's group commit at once, so full batches keep
the store busy while the next rows are read, and memory stays flat however long
the file. Outcomes are counted, and every row neither recorded nor a repeat is
written to the rejects file, in file order.

A rerun is safe: a row already recorded is a repeat (an install or registration on
its click, a deposit with its transaction id); only deposits without a
`transaction_id` have no identity to repeat, and the summary counts them.
"""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import io
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, BinaryIO, TextIO

from models.conversions import outcomes
from models.conversions.input import RawConversion
from models.conversions.service import record_conversion
from models.errors import FieldError, StoreUnavailable
from models.store.group_commit import MAX_BATCH_SIZE
from models.store.tables import ConversionType, Source

if TYPE_CHECKING:
    from _csv import Writer as CsvWriter

# The pixel's parameters, but `test`: --dry-run is the import's test mode.
COLUMNS = tuple(field.name for field in dataclasses.fields(RawConversion) if field.name != "test")
REQUIRED_COLUMNS = ("click_id", "type")
MAX_LINE_BYTES = 64 * 1024
# Rows waiting in the group commit at once: a few full batches, so that one is always
# queued behind the one being written, and every row's wait stays well inside the
# store's write budget (STORE_TIMEOUT_SECONDS).
IN_FLIGHT = 4 * MAX_BATCH_SIZE
# How many rows are read between two chances for the group commit to run.
YIELD_EVERY_ROWS = 20
# How many rows pass between two progress reports.
PROGRESS_EVERY_ROWS = 500
# Bytes read at a time while skipping the rest of a line that is too long.
SKIP_CHUNK_BYTES = 64 * 1024

# Outcome labels, as the summary and the rejects file show them.
RECORDED = "recorded"
REPEAT = "repeat"
INVALID = "invalid"
NOT_FOUND = "not found"
CONFLICT = "conflict"
UNREADABLE = "unreadable"
UNAVAILABLE = "store unavailable"
OUTCOMES = (RECORDED, REPEAT, INVALID, NOT_FOUND, CONFLICT, UNREADABLE, UNAVAILABLE)
ACCEPTED = frozenset({RECORDED, REPEAT})


class HeaderError(Exception):
    """The file cannot be imported at all: nothing was stored."""


@dataclass
class ImportProgress:
    """Where an import stands; the caller's `on_progress` sees it as it moves."""

    total_bytes: int
    # The header's names, lowercased, in its order.
    columns: list[str] = field(default_factory=list)
    started_at: float = field(default_factory=time.monotonic)
    bytes_read: int = 0
    line: int = 1
    rows: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    # Recorded deposits without a transaction id: a rerun would record them again.
    unkeyed_deposits: int = 0
    ignored_columns: tuple[str, ...] = ()
    # Set when the store stopped taking rows and the import stopped reading.
    stopped_at_line: int | None = None

    @property
    def rejected(self) -> int:
        return sum(count for label, count in self.counts.items() if label not in ACCEPTED)

    @property
    def rows_per_second(self) -> float:
        elapsed = time.monotonic() - self.started_at
        return self.rows / elapsed if elapsed > 0 else 0.0


@dataclass(frozen=True)
class _Row:
    line: int
    values: dict[str, str]


@dataclass(frozen=True)
class _Unreadable:
    line: int
    error: FieldError


def read_header(source: BinaryIO, total_bytes: int) -> ImportProgress:
    """Read the header line of `source`; raise HeaderError when the file cannot be
    imported at all (before anything is stored)."""
    progress = ImportProgress(total_bytes=total_bytes)
    first = next(_lines(source), None)
    if first is None:
        raise HeaderError("the file is empty: its first line must name the columns")
    progress.bytes_read = first[2]
    progress.columns = _header(first[1])
    progress.ignored_columns = tuple(name for name in progress.columns if name not in COLUMNS)
    return progress


async def import_rows(
    source: BinaryIO,
    progress: ImportProgress,
    rejects_file: TextIO,
    *,
    dry_run: bool = False,
    on_progress: Callable[[ImportProgress], None] = lambda _: None,
) -> ImportProgress:
    """Import every row after the header that read_header read: `progress` moves as
    they are read and settled. With `dry_run` every row is a test report: checked as a
    test fire is (its values, its click, the time against the click, a repeat of or a
    conflict with what is stored) and nothing is stored."""
    rejects = csv.writer(rejects_file)
    rejects.writerow(["line", "outcome", "errors", *progress.columns])
    lines = _lines(source, first=2, consumed=progress.bytes_read)
    await _pipeline(lines, rejects, dry_run, progress, on_progress)
    on_progress(progress)
    return progress


async def _pipeline(
    lines: Iterator[tuple[int, bytes | None, int]],
    rejects: CsvWriter,
    dry_run: bool,
    progress: ImportProgress,
    on_progress: Callable[[ImportProgress], None],
) -> None:
    columns = progress.columns
    in_flight: deque[tuple[_Row | _Unreadable, asyncio.Task[outcomes.Outcome] | None]] = deque()
    for number, line, bytes_read in lines:
        progress.line, progress.bytes_read = number, bytes_read
        row = _row(number, line, columns)
        if row is None:
            continue  # a blank line
        task = None
        if isinstance(row, _Row):
            task = asyncio.create_task(record_conversion(_raw(row, dry_run), source=Source.IMPORT))
        in_flight.append((row, task))
        if number % YIELD_EVERY_ROWS == 0:
            # Let the flusher start its next batch now: the store then writes it while
            # these rows are read, instead of waiting for the reading to pause.
            await asyncio.sleep(0)
        if len(in_flight) >= IN_FLIGHT:
            await _settle(*in_flight.popleft(), columns, rejects, progress)
            if progress.rows % PROGRESS_EVERY_ROWS == 0:
                on_progress(progress)
        if progress.stopped_at_line is not None:
            break
    while in_flight:
        await _settle(*in_flight.popleft(), columns, rejects, progress)


async def _settle(
    row: _Row | _Unreadable,
    task: asyncio.Task[outcomes.Outcome] | None,
    columns: list[str],
    rejects: CsvWriter,
    progress: ImportProgress,
) -> None:
    """Count the row's outcome, and write it to the rejects file unless it was accepted."""
    progress.rows += 1
    if isinstance(row, _Unreadable):
        label, errors, values = UNREADABLE, [row.error], {}
    else:
        assert task is not None
        outcome = await task
        label, errors = _judged(outcome)
        values = row.values
        if isinstance(outcome, StoreUnavailable) and progress.stopped_at_line is None:
            # Every later row would fail the same way: stop, so that a rerun finishes.
            progress.stopped_at_line = row.line
        if (
            isinstance(outcome, outcomes.Recorded)
            and not outcome.test
            and outcome.conversion.type is ConversionType.DEPOSIT
            and outcome.conversion.transaction_id is None
        ):
            progress.unkeyed_deposits += 1
    progress.counts[label] += 1
    if label not in ACCEPTED:
        shown = "; ".join(_described(error) for error in errors)
        rejects.writerow([row.line, label, shown, *(values.get(name, "") for name in columns)])


def _judged(outcome: outcomes.Outcome) -> tuple[str, list[FieldError]]:
    match outcome:
        case outcomes.Recorded():
            return RECORDED, []
        case outcomes.Duplicate():
            return REPEAT, []
        case outcomes.Conflict(message=message):
            return CONFLICT, [FieldError("transaction_id", "conflict", message)]
        case outcomes.ClickNotFound():
            return NOT_FOUND, [FieldError("click_id", "not_found", "{click_id} names no click")]
        case outcomes.Invalid(errors=errors):
            return INVALID, errors
        case StoreUnavailable():
            message = "the store could not take the row; run the import again to finish"
            return UNAVAILABLE, [FieldError(None, "store_unavailable", message)]
        case outcomes.SignatureRefused():
            # Only pixel fires are held to fire policies; an import is the operator's own.
            raise AssertionError("an imported row was refused its signature")


def _described(error: FieldError) -> str:
    """`[code] message`: the messages name their fields, as the pixel's do."""
    named = error.named()
    return f"[{named.code}] {named.message}"


def _raw(row: _Row, dry_run: bool) -> RawConversion:
    values = row.values
    return RawConversion(
        click_id=values.get("click_id", ""),
        type=values.get("type") or None,
        test="true" if dry_run else None,
        player_id=values.get("player_id") or None,
        currency=values.get("currency") or None,
        amount=values.get("amount") or None,
        time=values.get("time") or None,
        transaction_id=values.get("transaction_id") or None,
    )


def _lines(
    source: BinaryIO, *, first: int = 1, consumed: int = 0
) -> Iterator[tuple[int, bytes | None, int]]:
    """(line number, the line without its line break or None when over MAX_LINE_BYTES,
    bytes read so far), reading at most MAX_LINE_BYTES + 2 bytes at a time."""
    number = first - 1
    while chunk := source.readline(MAX_LINE_BYTES + 2):
        number += 1
        consumed += len(chunk)
        line = chunk.rstrip(b"\r\n")
        if len(line) > MAX_LINE_BYTES:
            while not chunk.endswith(b"\n") and (chunk := source.readline(SKIP_CHUNK_BYTES)):
                consumed += len(chunk)
            yield number, None, consumed
        else:
            yield number, line, consumed


def _fields(text: str) -> list[str]:
    """One line's CSV fields; csv.Error when its quotes do not close."""
    return next(csv.reader(io.StringIO(text), strict=True), [])


def _header(line: bytes | None) -> list[str]:
    """The file's column names, lowercased; HeaderError unless it has the required ones."""
    if line is None:
        raise HeaderError(f"line 1 (the header) is over {MAX_LINE_BYTES // 1024} KiB")
    try:
        names = [name.strip().lower() for name in _fields(line.decode("utf-8-sig"))]
    except (UnicodeDecodeError, csv.Error) as error:
        raise HeaderError(f"line 1 (the header) cannot be read: {error}") from error
    missing = [name for name in REQUIRED_COLUMNS if name not in names]
    if missing:
        raise HeaderError(
            f"line 1 (the header) lacks {' and '.join(missing)}: name the columns, "
            f"from {', '.join(COLUMNS)}"
        )
    repeated = sorted({name for name in names if name in COLUMNS and names.count(name) > 1})
    if repeated:
        raise HeaderError(f"line 1 (the header) names {', '.join(repeated)} more than once")
    return names


def _row(number: int, line: bytes | None, columns: list[str]) -> _Row | _Unreadable | None:
    """A line's values by column, what makes it unreadable, or None for a blank line."""
    if line is None:
        message = f"the line is over {MAX_LINE_BYTES // 1024} KiB"
        return _Unreadable(number, FieldError(None, "too_long", message))
    if not line.strip():
        return None
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as error:
        message = f"the line is not valid UTF-8 (byte {error.start + 1})"
        return _Unreadable(number, FieldError(None, "invalid_utf8", message))
    try:
        values = _fields(text)
    except csv.Error as error:
        message = f"the line is not CSV: {error}"
        return _Unreadable(number, FieldError(None, "malformed_csv", message))
    if len(values) != len(columns):
        message = f"the line has {len(values)} fields where the header names {len(columns)}"
        return _Unreadable(number, FieldError(None, "wrong_field_count", message))
    return _Row(number, dict(zip(columns, values, strict=True)))

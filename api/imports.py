"""`conversions import FILE.csv`: the command's face over models/conversions/imports.py.

On a terminal, rich's progress bar (rows per second and time left, the latter from
the bytes read of the file's size); otherwise one plain line on stderr at every
tenth of the file. Then the summary of every outcome on stdout, and the exit status:
0 when every row was recorded or a repeat, 1 otherwise, 2 when nothing was imported.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import BinaryIO, TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from api.settings import Settings
from models.conversions.imports import (
    OUTCOMES,
    HeaderError,
    ImportProgress,
    import_rows,
    read_header,
)
from models.store.engine import (
    StoreUnavailableError,
    check_store,
    close_store,
    current_engine,
    is_store_unavailable,
    open_store,
)

EXIT_ACCEPTED = 0
EXIT_REJECTED = 1
EXIT_NOT_IMPORTED = 2
# What a shell reports for a command ended by Ctrl-C.
EXIT_INTERRUPTED = 130
PLAIN_STEPS = 10
SETTLE_SECONDS = 0.2


def default_rejects_path(path: Path) -> Path:
    """conversions.csv -> conversions.rejects.csv, beside it."""
    stem = path.name.removesuffix(".csv").removesuffix(".CSV")
    return path.with_name(f"{stem}.rejects.csv")


def run_import(settings: Settings, path: Path, *, rejects_path: Path | None, dry_run: bool) -> int:
    rejects_path = rejects_path or default_rejects_path(path)
    try:
        source = path.open("rb")
    except OSError as error:
        print(f"conversions import: {path}: {error.strerror}", file=sys.stderr)
        return EXIT_NOT_IMPORTED
    with source:
        try:
            progress = read_header(source, total_bytes=path.stat().st_size)
        except HeaderError as error:
            print(f"conversions import: {path}: {error}; nothing was stored", file=sys.stderr)
            return EXIT_NOT_IMPORTED
        with rejects_path.open("w", encoding="utf-8", newline="") as rejects:
            return _run(settings, source, progress, rejects, path, rejects_path, dry_run)


def _run(
    settings: Settings,
    source: BinaryIO,
    progress: ImportProgress,
    rejects: TextIO,
    path: Path,
    rejects_path: Path,
    dry_run: bool,
) -> int:
    console = Console(stderr=True)
    display = (
        _Bar(console, progress.total_bytes)
        if console.is_terminal
        else _PlainLines(sys.stderr, path)
    )

    async def rows() -> None:
        # The command runs its own store and group commit, as a served worker does.
        engine = current_engine()
        try:
            await open_store(
                engine,
                pool_min_size=settings.database_pool_min_size,
                pool_max_size=settings.database_pool_max_size,
            )
            # Before the first row: a store that is down means nothing to import into.
            await check_store(engine)
        except Exception as error:
            if not is_store_unavailable(error):
                raise
            await close_store(engine)
            # The worker thread of aiosqlite's failed connection still answers on this
            # loop: let it, or it prints a traceback once asyncio.run has closed the loop.
            await asyncio.sleep(SETTLE_SECONDS)
            raise StoreUnavailableError(str(error)) from error
        try:
            await import_rows(source, progress, rejects, dry_run=dry_run, on_progress=display.show)
        finally:
            await close_store(engine)

    try:
        with display:
            asyncio.run(rows())
    except StoreUnavailableError as error:
        print(
            f"conversions import: the store is unavailable ({error}); nothing was stored",
            file=sys.stderr,
        )
        return EXIT_NOT_IMPORTED
    except KeyboardInterrupt:
        print(
            f"conversions import: interrupted after line {progress.line:,}. What was "
            "recorded stays recorded, in whole batches: run the same command again to "
            "finish (the rows already recorded are repeats).",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    elapsed = time.monotonic() - progress.started_at
    _summary(sys.stdout, path, rejects_path, progress, elapsed, dry_run)
    return EXIT_ACCEPTED if progress.rejected == 0 else EXIT_REJECTED


class _RowsPerSecond(ProgressColumn):
    def render(self, task: Task) -> Text:
        return Text(f"{task.fields.get('rows_per_second', 0):,.0f} rows/s", style="cyan")


class _Bar:
    """rich's progress bar over the bytes of the file read so far."""

    def __init__(self, console: Console, total_bytes: int) -> None:
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            _RowsPerSecond(),
            TimeRemainingColumn(),
            console=console,
        )
        self._task = self._progress.add_task("line 1", total=total_bytes, rows_per_second=0.0)

    def __enter__(self) -> _Bar:
        self._progress.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._progress.stop()

    def show(self, progress: ImportProgress) -> None:
        self._progress.update(
            self._task,
            total=progress.total_bytes,
            completed=progress.bytes_read,
            description=f"line {progress.line:,}",
            rows_per_second=progress.rows_per_second,
        )


class _PlainLines:
    """A line at every tenth of the file read, for logs and pipes."""

    def __init__(self, output: TextIO, path: Path) -> None:
        self._output = output
        self._path = path
        self._shown = 0

    def __enter__(self) -> _PlainLines:
        return self

    def __exit__(self, *_: object) -> None:
        pass

    def show(self, progress: ImportProgress) -> None:
        if not progress.total_bytes:
            return
        done = progress.bytes_read / progress.total_bytes
        step = int(done * PLAIN_STEPS)
        if step <= self._shown:
            return
        self._shown = step
        elapsed = time.monotonic() - progress.started_at
        left = elapsed * (1 - done) / done if done else 0.0
        print(
            f"conversions import: {self._path}: {step * 100 // PLAIN_STEPS}% read, "
            f"line {progress.line:,}, {progress.rows:,} rows, "
            f"{progress.rows_per_second:,.0f} rows/s, about {_duration(left)} left",
            file=self._output,
            flush=True,
        )


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes} min {seconds} s" if minutes else f"{seconds} s"


def _summary(
    output: TextIO,
    path: Path,
    rejects_path: Path,
    result: ImportProgress,
    elapsed: float,
    dry_run: bool,
) -> None:
    rate = result.rows / elapsed if elapsed > 0 else 0.0
    dry = " (dry run: nothing was stored)" if dry_run else ""
    print(f"{path}: {result.rows:,} rows in {elapsed:.1f} s, {rate:,.0f} rows/s{dry}", file=output)
    width = max(len(label) for label in OUTCOMES)
    for label in OUTCOMES:
        print(f"  {label:<{width}}  {result.counts[label]:>10,}", file=output)
    if result.ignored_columns:
        print(f"ignored columns: {', '.join(result.ignored_columns)}", file=output)
    if result.stopped_at_line is not None:
        print(
            f"stopped at line {result.stopped_at_line:,}: the store could not take rows; "
            "run the same command again to finish",
            file=output,
        )
    if result.unkeyed_deposits:
        print(
            f"{result.unkeyed_deposits:,} deposits without a transaction_id were recorded: "
            "importing them again would record them again",
            file=output,
        )
    if result.rejected:
        print(f"{result.rejected:,} rows rejected: see {rejects_path}", file=output)
    else:
        print(f"no rows rejected ({rejects_path} has only its header)", file=output)

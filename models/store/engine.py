"""The engines and every engine-aware helper: what differs between SQLite and
PostgreSQL lives in this room (models/store/) and nowhere else.

Piccolo binds every table to the engine `piccolo_conf.DB` at import time, so the
engine is chosen once per process from `DATABASE_URL`.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from types import TracebackType
from typing import TypeVar
from urllib.parse import urlsplit

import asyncpg
from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine, PostgresTransaction
from piccolo.engine.sqlite import SQLiteEngine, SQLiteTransaction, TransactionType

from models.store.tables import Conversion

T = TypeVar("T")
# How often a SQLite writer waiting for its turn tries again: a fraction of a commit.
WRITERS_TURN_POLL_SECONDS = 0.0001


class StoreUnavailableError(Exception):
    """The store cannot take the request now; the caller should retry later."""


def sqlite_path_from_url(url: str) -> str:
    """`sqlite:///relative.db` and `sqlite:////absolute/path.db`, as SQLAlchemy spells them."""
    path = url.removeprefix("sqlite://")
    if not path.startswith("/") or path == "/":
        raise ValueError(f"DATABASE_URL {url!r}: expected sqlite:///PATH")
    return path[1:]


class ClosingSQLiteTransaction(SQLiteTransaction):
    """Piccolo's SQLite transaction, closing its connection even when BEGIN or COMMIT fails.

    Piccolo's own leaves the connection open when BEGIN fails ("database is locked"),
    and each aiosqlite connection owns a non-daemon thread: under lock contention the
    process would collect threads and could no longer exit.
    """

    async def __aenter__(self) -> SQLiteTransaction:
        try:
            return await super().__aenter__()
        except BaseException:
            # The slot is unset when the connection itself could not be opened.
            connection = getattr(self, "connection", None)
            if connection is not None:
                await connection.close()
            raise

    async def __aexit__(
        self,
        exception_type: type[BaseException] | None,
        exception: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        try:
            return await super().__aexit__(exception_type, exception, traceback)
        except BaseException:
            if self._parent is None:
                await self.connection.close()
                self.engine.current_transaction.reset(self.context)
            raise


class SQLiteStore(SQLiteEngine):
    """Piccolo's SQLite engine, plus one long-lived writer connection on its own thread.

    Piccolo opens a connection, and aiosqlite a thread, for every transaction, then
    hops threads for every statement. The group commit instead hands a whole
    transaction to `run_in_write_transaction`, which runs it in one hop on a
    connection kept open for the life of the process.
    """

    def __init__(self, *, path: str, timeout: float) -> None:
        super().__init__(path=path, timeout=timeout)
        self.busy_timeout_seconds = timeout
        self._writer: ThreadPoolExecutor | None = None
        self._writer_connection: sqlite3.Connection | None = None
        self._turn_file: int | None = None

    async def run_in_write_transaction(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run `work` inside BEGIN IMMEDIATE ... COMMIT on the writer connection.

        An immediate transaction takes the write lock up front, so a writer in another
        process makes this one wait on the busy timeout instead of failing midway.
        """
        if self._writer is None:
            self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-writer")
        return await asyncio.get_running_loop().run_in_executor(
            self._writer, self._write_transaction, work
        )

    def _write_transaction(self, work: Callable[[sqlite3.Connection], T]) -> T:
        connection = self._writer_connection
        if connection is None:
            connection = sqlite3.connect(**self.connection_kwargs)
            connection.row_factory = sqlite3.Row
            connection.execute("PRAGMA foreign_keys = 1")
            self._writer_connection = connection
        with self._writers_turn():
            try:
                connection.execute("BEGIN IMMEDIATE")
                result = work(connection)
                connection.execute("COMMIT")
            except BaseException:
                try:
                    if connection.in_transaction:
                        connection.execute("ROLLBACK")
                except sqlite3.Error:
                    # A connection that cannot roll back is not reused: the next write
                    # reopens.
                    self._close_writer_connection()
                raise
        return result

    @contextmanager
    def _writers_turn(self) -> Iterator[None]:
        """The turn of this process's writer among the writers of every process on the
        host: an exclusive `flock` on a file beside the database, held for one
        transaction.

        Without it, a writer that finds the database locked sleeps in SQLite's busy
        handler (1, 2, 5, 10 ms and longer) however soon the lock is released: with two
        workers, half the machine sat idle and the pixel's p99 doubled. A waiting writer
        here tries for its turn every WRITERS_TURN_POLL_SECONDS instead, for as long as
        SQLite's busy timeout would have waited, then fails as SQLite would ("database is
        locked", answered 503). The kernel ends the turn of a process that dies. Writers
        that take no turns (Piccolo's transactions, other tools) still meet SQLite's own
        lock and busy timeout.
        """
        if self._turn_file is None:
            self._turn_file = os.open(self.writers_turn_path, os.O_RDWR | os.O_CREAT, 0o600)
        give_up_at = time.monotonic() + self.busy_timeout_seconds
        while True:
            try:
                fcntl.flock(self._turn_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= give_up_at:
                    raise sqlite3.OperationalError("database is locked") from None
                time.sleep(WRITERS_TURN_POLL_SECONDS)
        try:
            yield
        finally:
            fcntl.flock(self._turn_file, fcntl.LOCK_UN)

    @property
    def writers_turn_path(self) -> str:
        return f"{self.path}-writers-turn"

    def _close_writer_connection(self) -> None:
        if self._writer_connection is not None:
            self._writer_connection.close()
            self._writer_connection = None

    def _close_writer_files(self) -> None:
        self._close_writer_connection()
        if self._turn_file is not None:
            os.close(self._turn_file)
            self._turn_file = None

    async def close_writer(self) -> None:
        if self._writer is None:
            return
        writer, self._writer = self._writer, None
        await asyncio.get_running_loop().run_in_executor(writer, self._close_writer_files)
        writer.shutdown(wait=False)

    def transaction(
        self,
        transaction_type: TransactionType = TransactionType.deferred,
        allow_nested: bool = True,
    ) -> SQLiteTransaction:
        return ClosingSQLiteTransaction(
            engine=self, transaction_type=transaction_type, allow_nested=allow_nested
        )


class ReleasingPostgresTransaction(PostgresTransaction):
    """Piccolo's PostgreSQL transaction, never leaking its pooled connection.

    Piccolo's own keeps the connection out of the pool when BEGIN, COMMIT or
    ROLLBACK fails, so every failure during an outage would shrink the pool until
    nothing is left. And after a deadline cancelled a statement, rolling back on a
    stalled server would wait again: the connection is dropped instead, which makes
    the server roll the transaction back itself.
    """

    async def __aenter__(self) -> PostgresTransaction:
        try:
            return await super().__aenter__()
        except BaseException:
            connection = getattr(self, "connection", None)
            if connection is not None:
                await self._discard(connection)
            raise

    async def __aexit__(
        self,
        exception_type: type[BaseException] | None,
        exception: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        if self._parent is not None:
            return await super().__aexit__(exception_type, exception, traceback)
        if exception_type is asyncio.CancelledError:
            try:
                await self._discard(self.connection)
            finally:
                self.engine.current_transaction.reset(self.context)
            return False
        try:
            return await super().__aexit__(exception_type, exception, traceback)
        except BaseException:
            try:
                await self._discard(self.connection)
            finally:
                self.engine.current_transaction.reset(self.context)
            raise

    async def _discard(self, connection: asyncpg.Connection) -> None:
        try:
            connection.terminate()
        except asyncpg.InterfaceError:
            # Piccolo had already handed it back to the pool before failing.
            return
        if self.engine.pool is not None:
            await self.engine.pool.release(connection)


class PostgresStore(PostgresEngine):
    def __init__(
        self,
        url: str,
        *,
        connect_timeout_seconds: float,
        statement_timeout_seconds: float,
        store_timeout_seconds: float,
    ) -> None:
        super().__init__(
            config={
                "dsn": url,
                "timeout": connect_timeout_seconds,
                "command_timeout": statement_timeout_seconds,
                "server_settings": {
                    "statement_timeout": str(int(statement_timeout_seconds * 1000))
                },
            }
        )
        self.store_timeout_seconds = store_timeout_seconds

    def transaction(self, allow_nested: bool = True) -> PostgresTransaction:
        return ReleasingPostgresTransaction(engine=self, allow_nested=allow_nested)

    @asynccontextmanager
    async def autocommit_connection(self) -> AsyncIterator[asyncpg.Connection]:
        """A connection outside any transaction, where each statement commits on its
        own: for writes of one statement, which then need no BEGIN and COMMIT round
        trips. Pooled when the pool is open; on any failure, a cancelled deadline
        included, it is dropped rather than reused, as in ReleasingPostgresTransaction."""
        if self.pool is None:
            connection = await asyncpg.connect(**self.config)
            try:
                yield connection
            finally:
                await connection.close()
            return
        connection = await self.pool.acquire()
        try:
            yield connection
        except BaseException:
            connection.terminate()
            raise
        finally:
            await self.pool.release(connection)


Store = SQLiteStore | PostgresStore


def create_engine(
    url: str,
    *,
    connect_timeout_seconds: float,
    statement_timeout_seconds: float,
    store_timeout_seconds: float,
    sqlite_busy_timeout_seconds: float,
) -> Store:
    """The engine `url` names; the deadlines are the settings of the same names."""
    scheme = urlsplit(url).scheme
    if scheme == "sqlite":
        return SQLiteStore(path=sqlite_path_from_url(url), timeout=sqlite_busy_timeout_seconds)
    if scheme in {"postgres", "postgresql"}:
        return PostgresStore(
            url,
            connect_timeout_seconds=connect_timeout_seconds,
            statement_timeout_seconds=statement_timeout_seconds,
            store_timeout_seconds=store_timeout_seconds,
        )
    raise ValueError(
        f"DATABASE_URL scheme {scheme!r} is not supported: use sqlite:///PATH or postgresql://..."
    )


def current_engine() -> Store:
    """The engine every table is bound to (piccolo_conf.DB, or a test's stand-in)."""
    engine = Conversion._meta.db
    assert isinstance(engine, SQLiteStore | PostgresStore), "piccolo_conf.DB is not a Store"
    return engine


def is_postgres(engine: Engine) -> bool:
    return engine.engine_type == "postgres"


async def open_store(engine: Engine, *, pool_min_size: int, pool_max_size: int) -> None:
    """Open what the engine keeps open for the life of the process."""
    if isinstance(engine, PostgresEngine):
        await engine.start_connection_pool(
            min_size=min(pool_min_size, pool_max_size),
            max_size=pool_max_size,
            reset=_keep_session,
        )
    elif isinstance(engine, SQLiteEngine):
        # WAL lets dashboards read while the pixel writes; the mode is stored in the file.
        await engine.run_ddl("PRAGMA journal_mode=WAL")


async def _keep_session(_: asyncpg.Connection) -> None:
    """Hand a connection back to the pool without asyncpg's reset query.

    The app changes no session state (no SET, LISTEN, advisory lock or open cursor),
    so the query would only cost every write batch a round trip; asyncpg still rolls
    back a transaction left open before it calls this.
    """


async def close_store(engine: Engine) -> None:
    if isinstance(engine, PostgresEngine) and engine.pool is not None:
        await engine.close_connection_pool()
    elif isinstance(engine, SQLiteStore):
        await engine.close_writer()


def write_budget(engine: Engine) -> float | None:
    """Seconds a write may take, waiting included; None where the engine bounds it itself
    (SQLite's writers wait on its busy timeout)."""
    return engine.store_timeout_seconds if isinstance(engine, PostgresStore) else None


def is_store_unavailable(error: BaseException) -> bool:
    """True for failures that say "try again later", as opposed to bugs."""
    if isinstance(error, StoreUnavailableError):
        return True
    if isinstance(error, sqlite3.OperationalError):
        message = str(error).lower()
        return any(reason in message for reason in ("locked", "busy", "unable to open", "disk i/o"))
    return isinstance(
        error,
        (
            OSError,  # connection refused, reset, unreachable
            TimeoutError,
            asyncio.TimeoutError,
            asyncpg.PostgresConnectionError,
            asyncpg.InterfaceError,  # pool closing, connection lost mid-statement
            asyncpg.CannotConnectNowError,
            asyncpg.TooManyConnectionsError,
            asyncpg.QueryCanceledError,  # statement timeout
            asyncpg.AdminShutdownError,
            asyncpg.exceptions.OperatorInterventionError,
        ),
    )


async def check_store(engine: Engine, timeout_seconds: float = 2.0) -> None:
    """Raise StoreUnavailableError unless a trivial query answers in time."""
    try:
        async with asyncio.timeout(timeout_seconds):
            await engine.run_ddl("SELECT 1")
    except Exception as error:
        if is_store_unavailable(error):
            raise StoreUnavailableError(str(error)) from error
        raise

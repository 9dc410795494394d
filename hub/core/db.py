"""Engine, session factory and the declarative base shared by every model.

The engine is tuned per dialect so the same service code is safe under concurrent writers:
SQLite gets WAL, a busy timeout and ``BEGIN IMMEDIATE`` (so two writers queue instead of
deadlocking on a lock upgrade); PostgreSQL gets psycopg 3 whatever driver the URL named.

Instants are range-checked where they come in (hub.core.times), but reads never trust that:
PostgreSQL keeps timestamps past year 9999 (and ``infinity``) that Python cannot hold, and
psycopg refuses to load them, so one such row written before the checks (or by hand) would
fail every page that lists it. Reads pull any instant into the sane range instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from psycopg import DataError
from psycopg.types.datetime import TimestamptzBinaryLoader, TimestamptzLoader
from sqlalchemy import JSON, DateTime, MetaData, Numeric, create_engine, event
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from hub.core import times

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

Money = Numeric(18, 4, asdecimal=True)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC on every dialect (SQLite stores naive text and forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return times.clamp(value)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), Decimal: Money, dict[str, Any]: JSON}


def utcnow() -> datetime:
    return datetime.now(UTC)


def normalise_url(url: str) -> URL:
    """Accept plain ``postgresql://`` (and Heroku-style ``postgres://``) URLs and always drive
    them with psycopg 3."""
    parsed = make_url(url)
    if parsed.get_backend_name() in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def make_engine(url: str, *, pool_size: int = 10) -> Engine:
    parsed = normalise_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(parsed, connect_args={"timeout": 60, "check_same_thread": False})
        _tune_sqlite(engine)
        return engine
    # No pre-ping: it would cost a round trip per request; a connection broken by a database
    # restart fails once and the pool is invalidated (SQLAlchemy's disconnect handling).
    engine = create_engine(parsed, pool_size=pool_size, max_overflow=pool_size, pool_recycle=1800)
    _clamp_instants(engine)
    return engine


class _Clamping:
    """psycopg's loader, but a value Python cannot hold (year 10000 and on, ``infinity``,
    before year 1) reads as the nearest end of the sane range instead of failing the query."""

    def load(self, data: Any) -> datetime:
        try:
            return super().load(data)  # type: ignore[misc]
        except DataError as exc:  # "timestamp too small (before year 1)" or "too large"
            return times.EARLIEST if "small" in str(exc) else times.LATEST


class _ClampedTimestamptz(_Clamping, TimestamptzLoader):
    def load(self, data: Any) -> datetime:
        # PostgreSQL's ISO output is what Python's own (C) parser reads, nearly as quickly as
        # psycopg's C loader, which cannot be extended; anything else takes the slow way.
        try:
            return datetime.fromisoformat(bytes(data).decode())
        except ValueError:
            return super().load(data)


class _ClampedTimestamptzBinary(_Clamping, TimestamptzBinaryLoader):
    pass


def _clamp_instants(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.adapters.register_loader("timestamptz", _ClampedTimestamptz)
        dbapi_conn.adapters.register_loader("timestamptz", _ClampedTimestamptzBinary)


def _tune_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event below decide how transactions start.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def single_statement(engine: Engine) -> Iterator[Connection]:
    """A unit of work of one statement (atomic on its own), on a Core connection — an ORM
    session would only add its own bookkeeping. On PostgreSQL it runs in autocommit, which
    saves the BEGIN and COMMIT round trips and still commits before the block ends; SQLite
    keeps its transaction (its engine starts each one with BEGIN IMMEDIATE). Hot paths use
    it: the webhook's inbox INSERT, and the UPDATE that counts an ingest attempt."""
    if engine.dialect.name != "postgresql":
        with engine.begin() as conn:
            yield conn
        return
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT")
        yield conn

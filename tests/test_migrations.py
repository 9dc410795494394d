"""The migrations build exactly the schema the models describe, and undo cleanly."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from hub.core import migrate
from hub.core.db import Base, make_engine


def test_migrated_schema_matches_the_models_and_downgrades_to_nothing(db_url):
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(
                MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
            )
        assert diff == [], f"models and migrations disagree; add a migration: {diff}"

        migrate.downgrade(engine, "base")
        assert migrate.current(engine) == set()
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}

        migrate.upgrade(engine)
        assert migrate.current(engine) == migrate.head_revisions(engine)
    finally:
        engine.dispose()

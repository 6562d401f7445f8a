"""Alembic environment for the lending records, driven from code by `lending.db.migrate`.

There is no alembic.ini: `lending.db.alembic_config` sets the script location and hands over an open
connection in ``config.attributes["connection"]`` (the caller owns its transaction). SQL scripts for a DBA
(offline mode) come from ``sqlalchemy.url`` set on that config.

Importing this file outside an Alembic run does nothing, so that tools that import every module (pytest's
--doctest-modules) can.
"""

from __future__ import annotations

from alembic import context

from lending.tables import Base

target_metadata = Base.metadata


def run_offline(config) -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online(config) -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        raise RuntimeError(
            "the lending migrations run through lending.db.migrate(engine_or_url), which passes a "
            "connection; got an Alembic config without one"
        )
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite's ALTER TABLE is limited
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


_config = getattr(context, "config", None)  # None outside an Alembic run
if _config is not None:
    if context.is_offline_mode():
        run_offline(_config)
    else:
        run_online(_config)

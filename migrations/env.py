"""Alembic environment: runs inside the Flask app context that Flask-Migrate provides."""

from alembic import context
from flask import current_app

migrate_ext = current_app.extensions["migrate"]
db = migrate_ext.db
config = context.config
# Keep the app's logging setup: alembic.ini's fileConfig would disable existing loggers.
config.set_main_option(
    "sqlalchemy.url", db.engine.url.render_as_string(hide_password=False).replace("%", "%%")
)


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=db.metadata,
        literal_binds=True,
        **migrate_ext.configure_args,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    with db.engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            # The app's statement timeout (app/time_limits.py) is for requests; an index
            # build over a large store may rightly take longer.
            connection.exec_driver_sql("SET statement_timeout = 0")
            connection.commit()
        context.configure(
            connection=connection,
            target_metadata=db.metadata,
            **migrate_ext.configure_args,
        )
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()

"""Open the store a collector's config names: PostgreSQL when ``[store] url`` is set, else
the SQLite file in its data directory."""

from __future__ import annotations

from collector.settings import CollectorSettings
from collector.store import SqliteStore, Store


def open_store(settings: CollectorSettings, project_inline: bool = False) -> Store:
    """The store of ``settings`` (:class:`hostlib.errors.StoreError` when it cannot be
    opened: a PostgreSQL server that does not answer, a schema behind this build)."""
    st = settings.store
    if st.url:
        from collector.pgstore import PostgresStore  # psycopg: only when used

        return PostgresStore(
            st.url,
            project_inline=project_inline,
            max_quarantine_bytes=settings.max_quarantine_bytes,
            owner=settings.client_id,
            pool_size=st.pool_size,
            timeout_s=st.timeout_s,
            migrate_schema=st.migrate,
            query_timeout_s=st.query_timeout_s,
        )
    return SqliteStore(
        settings.store_path,
        project_inline=project_inline,
        max_quarantine_bytes=settings.max_quarantine_bytes,
    )


def describe(settings: CollectorSettings) -> str:
    """Where the store is, for logs (a PostgreSQL URL without its password)."""
    if settings.store.url:
        from collector.pgstore import redact_url

        return redact_url(settings.store.url)
    return str(settings.store_path)

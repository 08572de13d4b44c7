"""Retention: records older than ``[retention] keep_days`` move from the hot store to Parquet.

Layout of the archive directory (``[retention] dir``, default ``<data_dir>/archive``)::

    <dir>/<YYYY-MM-DD>/<site>.parquet        first file of that day and site
    <dir>/<YYYY-MM-DD>/<site>.<n>.parquet    later parts (a later run, a late record)
    <dir>/<YYYY-MM-DD>/manifest.json         the day's files: sha256, rows, min/max id and ts

The day is the capture time's (``ts``) date in China time (UTC+8), as on receipts and trace
codes (:func:`wire.tracecode.local_day`). Columns: ``id, dev, seq, kind, ts, site, mac,
received, rec`` (the hot store's, ``rec`` the record's JSON text as stored), zstd.

Order of durability (:mod:`collector.archive.run`): a part is written to ``*.tmp``,
fsynced, renamed and its folder fsynced; then the day's manifest lists it (written the same
way, atomically); only then are its rows deleted from the hot store, in one transaction per
file that also keeps their keys (:mod:`collector.archive.keys`), and the manifest marks the
file ``purged``. A crash anywhere loses nothing and duplicates nothing: a run first deletes
the rows of every listed file not yet purged (those rows are never written again), and
removes ``*.tmp`` files and part files no manifest lists (their rows are still in the hot
store and will be written again).

Only records safe to remove leave: forwarded to the city platform (at or below the
forwarding cursor, in no pending forward batch, not held) and, for market kinds, applied by
the market projection. The hot store's side is the :class:`~collector.archive.source.ArchiveSource`
protocol (three methods), so a PostgreSQL store can implement it.

Modules: ``keys`` (hot-store key table, no pyarrow), ``files`` (Parquet parts, manifests,
verification), ``source`` (the protocol and its SQLite implementation), ``run`` (the job),
``lookup`` (read-only lookups from the archive for the API).
"""

"""The API's fallback to the archive: what a lookup in it may answer when a file is damaged.

Routes that read the archive (:mod:`collector.archive.lookup`) call it through
:func:`archive_call`, so a damaged file that may hold the answer becomes a 503 naming the
file (and is logged and counted by the reader), never an unhandled error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import HTTPException

T = TypeVar("T")

ARCHIVE_DAMAGED: dict[int | str, dict[str, Any]] = {
    503: {"description": "Not in the store, and an archive file it may be in cannot be read"}
}


def archive_call(call: Callable[[], T]) -> T:
    """``call()`` (a lookup that may read the archive); :class:`ArchiveIncomplete` becomes
    a 503 whose detail names the damaged file(s)."""
    from collector.archive.lookup import ArchiveIncomplete

    try:
        return call()
    except ArchiveIncomplete as exc:
        raise HTTPException(503, str(exc)) from exc

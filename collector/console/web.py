"""What every console page shares: who is asking (or the redirect to the login page), the
store opened read-only, the device registry, the red/amber/green thresholds, form checks."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi import Depends, HTTPException
from starlette.requests import Request

from collector import access
from hostlib.db import Db
from hostlib.registry import Device, Registry

if TYPE_CHECKING:
    from collector.api import ApiContext

PREFIX = "/console"
LOGIN = PREFIX + "/login"


def safe_next(url: str | None) -> str:
    """A redirect target after login: a path of this console, never another site."""
    if url and url.startswith(PREFIX + "/") and not url.startswith("//") and "\\" not in url:
        return url
    return PREFIX + "/"


@dataclass
class Console:
    ctx: ApiContext

    def __post_init__(self) -> None:
        self.green_s = self.ctx.green_s
        self.amber_s = self.ctx.amber_s
        self._registry = (
            Registry(self.ctx.registry_path) if self.ctx.registry_path is not None else None
        )

    @property
    def registry(self) -> Registry | None:
        return self._registry

    def devices(self) -> dict[str, Device]:
        """The device registry now (re-read when its file changed); empty without one."""
        if self._registry is None:
            return {}
        self._registry.reload()
        return self._registry.devices()

    @contextmanager
    def ro(self) -> Iterator[Db]:
        with self.ctx.store.read() as db:
            yield db

    @contextmanager
    def rw(self) -> Iterator[Db]:
        """The store opened for writing (autocommit; wrap each change in ``write_tx``)."""
        db = self.ctx.store.connect()
        try:
            yield db
        finally:
            db.close()

    def csrf(self, request: Request) -> str:
        return access.csrf_token(request)

    def check_form(self, request: Request, form: dict[str, Any]) -> None:
        value = form.get("csrf")
        access.check_csrf(request, value if isinstance(value, str) else "")


def needs(action: str) -> Any:
    """The dependency of a page that needs ``action`` (an anonymous visitor is redirected to
    the sign-in page by :class:`collector.console.routing.ConsoleRoute`)."""
    return Depends(access.require(action))


def not_found() -> HTTPException:
    return HTTPException(404, "not found in your scope")


READ_FLEET = needs("read:fleet")
READ_RECORDS = needs("read:records")
READ_MARKET = needs("read:market")
ACK_ALARM = needs("ack:alarm")
WRITE_STOP = needs("write:stop")
ADMIN = needs("admin")

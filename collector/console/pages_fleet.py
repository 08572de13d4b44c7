"""Fleet pages: the overview (sites and devices, red/amber/green) and a device's page.

The data come from :mod:`collector.fleet`; each page shows only the sites in the
principal's scope."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import HTMLResponse

from collector import fleet
from collector.access import Principal
from collector.console.i18n import Translator, pick_lang
from collector.console.render import page
from collector.console.routing import console_router
from collector.console.web import READ_FLEET, Console, not_found

MAX_DEVICES_SHOWN = 1000
ORDER = {fleet.RED: 0, fleet.AMBER: 1, fleet.GREEN: 2}


def key_text(tr: Translator, key: fleet.KeyState) -> str:
    if key.revoked_from is not None:
        return tr("key.revoked", seq=key.revoked_from)
    return tr("key.state", keys=key.keys, seq=key.key_from_seq)


def make_router(con: Console) -> APIRouter:
    router = console_router()

    @router.get("/console/", response_class=HTMLResponse, summary="Console: sites and devices")
    def overview(
        request: Request,
        state: str = "",
        site: str = "",
        devices: str = "",
        p: Principal = READ_FLEET,
    ) -> HTMLResponse:
        with con.ro() as db:
            fl = fleet.fleet(
                db,
                con.registry,
                green_s=con.green_s,
                amber_s=con.amber_s,
                sites=p.site_filter(db),
            )
        sites = [s for s in fl.sites if _keep(s.state, s.site, state, site)]
        listed = [d for d in fl.devices if _keep(d.state, d.site, state, site)]
        # the devices that need someone: every one not green (never seen included), unless
        # all are asked for or a state is picked
        hidden = 0
        if not devices and not state:
            attention = [d for d in listed if d.state != fleet.GREEN or d.never_seen]
            hidden, listed = len(listed) - len(attention), attention
        listed.sort(key=lambda d: (ORDER[d.state], d.site, d.dev))
        tr = Translator(pick_lang(request)[0])
        return page(
            request,
            "overview.html",
            p,
            csrf=con.csrf(request),
            title=tr("overview.title"),
            fl=fl,
            sites=sorted(sites, key=lambda s: (ORDER[s.state], s.site)),
            devices=listed[:MAX_DEVICES_SHOWN],
            devices_cut=len(listed) > MAX_DEVICES_SHOWN,
            devices_total=len(listed),
            hidden_green=hidden,
            all_devices_url="/console/?" + urlencode({"devices": "all", "site": site}),
            never_devices=sum(1 for d in fl.devices if d.never_seen),
            state=state,
            site=site,
            key_text=lambda k: key_text(tr, k),
        )

    @router.get("/console/devices/{dev}", response_class=HTMLResponse, summary="Console: a device")
    def device(request: Request, dev: str, p: Principal = READ_FLEET) -> HTMLResponse:
        with con.ro() as db:
            det = fleet.device_detail(
                db, con.registry, dev, green_s=con.green_s, amber_s=con.amber_s
            )
            if det is None or not p.may_site(db, det.device.site):
                raise not_found()
        tr = Translator(pick_lang(request)[0])
        return page(
            request,
            "device.html",
            p,
            csrf=con.csrf(request),
            title=tr("device.title", dev=dev),
            det=det,
            key_text=lambda k: key_text(tr, k),
        )

    return router


def _keep(row_state: str, row_site: str, state: str, site: str) -> bool:
    return (not state or row_state == state) and (not site or site.upper() in row_site.upper())

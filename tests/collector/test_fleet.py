"""The fleet at a glance over a real store and a real registry file: never-seen devices and
sites, red/amber/green from last seen, gaps, key state, the agent's backlog; the old
reports (/devices, /sites, ``collector status``) list never-seen ones too."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from collector import fleet
from collector import sites as collector_sites
from collector.store import device_report, site_report
from hostlib.db import Db
from hostlib.registry import Registry
from tests.collector import fleetdata
from tests.collector.fleetdata import FleetStore
from tests.stores import KINDS, StoreUnderTest
from traceedge.cli import main


@pytest.fixture(params=KINDS)
def fs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FleetStore]:
    built = fleetdata.build(tmp_path, request.param)
    yield built
    built.close()


@pytest.fixture
def db(fs: FleetStore) -> Iterator[Db]:
    with fs.sut.read() as conn:
        yield conn


def test_rag_thresholds() -> None:
    now = 10_000.0
    assert fleet.rag(now - 899, now) == "green"
    assert fleet.rag(now - 900, now) == "amber"
    assert fleet.rag(now - 7199, now) == "amber"
    assert fleet.rag(now - 7200, now) == "red"
    assert fleet.rag(None, now) == "red"
    assert fleet.rag(now - 30, now, green_s=10, amber_s=60) == "amber"
    assert fleet.worst(["green", "red", "amber"]) == "red"
    assert fleet.worst([]) is None


def test_every_provisioned_device_and_site_is_listed_never_seen_ones_red(
    fs: FleetStore, db: Db
) -> None:
    f = fleet.fleet(db, Registry(fs.registry))
    devs = {d.dev: d for d in f.devices}
    assert set(devs) == set(fleetdata.SEEN) | set(fleetdata.NEVER) | {fleetdata.UNREGISTERED}
    for dev in fleetdata.NEVER:
        d = devs[dev]
        assert d.never_seen and d.registered and d.state == "red"
        assert d.last_seen is None and d.records == 0 and d.missing == 0
    assert devs["ELV-S1-02"].type == "elevator-box"
    odd = devs[fleetdata.UNREGISTERED]
    assert not odd.registered and odd.type is None and odd.key is None and odd.state == "green"
    sites = {s.site: s for s in f.sites}
    assert set(sites) == {"S1", "S2", "S3"}
    s3 = sites["S3"]
    assert s3.never_seen and s3.state == "red" and s3.devices == 2 and s3.never_seen_devices == 2
    s1 = sites["S1"]
    # a never-seen device makes its site red
    assert not s1.never_seen and s1.state == "red" and s1.never_seen_devices == 1
    assert s1.by_state == {"green": 2, "amber": 0, "red": 1}
    assert f.sites_by_state == {"green": 1, "amber": 0, "red": 2}
    # without the registry only what sent records is known
    bare = fleet.fleet(db)
    assert {d.dev for d in bare.devices} == set(fleetdata.SEEN) | {fleetdata.UNREGISTERED}


def test_state_follows_last_seen_and_the_thresholds(fs: FleetStore) -> None:
    reg = Registry(fs.registry).devices()
    fleetdata.age(fs, "ELV-S1-01", 20 * 60)
    fleetdata.age(fs, "CYL-S1-01", 3 * 3600)
    with fs.sut.read() as db:
        now = time.time()
        devs = {d.dev: d for d in fleet.device_rows(db, reg, now=now)}
        assert devs["ELV-S1-01"].state == "amber"
        assert devs["CYL-S1-01"].state == "red"
        assert devs["MKT-S2-01"].state == "green"
        assert 20 * 60 <= devs["ELV-S1-01"].silent_s <= 20 * 60 + 60  # type: ignore[operator]
        # looser thresholds: the same store, other colours
        loose = {
            d.dev: d.state
            for d in fleet.device_rows(db, reg, now=now, green_s=3600, amber_s=4 * 3600)
        }
        assert loose["ELV-S1-01"] == "green" and loose["CYL-S1-01"] == "amber"
        # an hour later everything heard from at the commit is amber
        later = {d.dev: d.state for d in fleet.device_rows(db, reg, now=now + 3600)}
        assert later["MKT-S2-01"] == "amber"
        with pytest.raises(ValueError):
            fleet.fleet(db, reg, green_s=100, amber_s=10)


def test_a_revoked_device_does_not_colour_its_site(fs: FleetStore) -> None:
    reg = Registry(fs.registry).devices()
    fleetdata.age(fs, "MKT-S2-01", 5 * 3600)  # revoked and silent
    with fs.sut.read() as db:
        f = fleet.fleet(db, reg)
    devs = {d.dev: d for d in f.devices}
    assert devs["MKT-S2-01"].state == "red"
    s2 = next(s for s in f.sites if s.site == "S2")
    assert s2.state == "green" and s2.devices == 2 and s2.by_state["red"] == 0


def test_gaps_key_state_and_backlog(fs: FleetStore, db: Db) -> None:
    devs = {d.dev: d for d in fleet.device_rows(db, Registry(fs.registry))}
    elv = devs["ELV-S1-01"]
    assert (elv.records, elv.max_seq, elv.missing) == (6, 10, 4)
    assert elv.agent_backlog == 42
    assert elv.backlog_age_s is not None and 30 <= elv.backlog_age_s < 90
    assert elv.key == fleet.KeyState(key_from_seq=1, keys=1, rotated=False, revoked_from=None)
    cyl = devs["CYL-S1-01"].key
    assert cyl is not None and cyl.rotated and cyl.keys == 2 and cyl.key_from_seq == 3
    mkt = devs["MKT-S2-01"].key
    assert mkt is not None and mkt.revoked_from == 3
    assert devs["MKT-S2-01"].agent_backlog is None  # S2's agent never reported
    s1 = next(s for s in fleet.site_rows(db, Registry(fs.registry)) if s.site == "S1")
    assert s1.missing == 4 and s1.records == 10 and s1.agent_backlog == 42


def test_device_detail(fs: FleetStore, db: Db) -> None:
    reg = Registry(fs.registry)
    d = fleet.device_detail(db, reg, "ELV-S1-01", limit=3)
    assert d is not None
    assert d.gaps == [(4, 5), (8, 9)] and not d.gaps_truncated and d.watermark == 3
    assert [r.seq for r in d.recent] == [10, 7, 6]
    assert all(r.kind == "elevator.status" for r in d.recent)
    assert d.last_status is not None and d.last_status["depth"] == 42
    never = fleet.device_detail(db, reg, "MKT-S3-01")
    assert never is not None and never.device.never_seen and never.recent == []
    assert never.gaps == [] and never.watermark == 0 and never.last_status is None
    assert fleet.device_detail(db, reg, "NOPE") is None
    # only seen, not registered
    odd = fleet.device_detail(db, None, fleetdata.UNREGISTERED)
    assert odd is not None and not odd.device.registered


def test_many_gaps_are_truncated(any_store: StoreUnderTest) -> None:
    goods = [fleetdata.make("ELV-X", "elevator.status", s, "SX") for s in range(1, 400, 2)]
    any_store.store.commit("SX", "b", goods, [])
    with any_store.read() as db:
        d = fleet.device_detail(db, None, "ELV-X")
        (report,) = device_report(db)
    assert len(report["gaps"]) == 100 and report["gaps"][:2] == [[2, 2], [4, 4]]
    assert report["watermark"] == 1 and report["missing"] == 199
    assert d is not None and len(d.gaps) == fleet.MAX_GAP_RANGES and d.gaps_truncated
    assert d.gaps[0] == (2, 2) and d.device.missing == 199


def test_scope_limits_sites_and_devices(fs: FleetStore, db: Db) -> None:
    f = fleet.fleet(db, Registry(fs.registry), sites=frozenset({"S1"}))
    assert [s.site for s in f.sites] == ["S1"]
    assert {d.site for d in f.devices} == {"S1"}
    assert fleet.fleet(db, Registry(fs.registry), sites=frozenset()).devices == []


def test_a_gateway_is_seen_by_its_agents_reports(fs: FleetStore) -> None:
    fs.sut.store.site_status("S3", {"depth": 0, "oldest_age_s": 0})
    with fs.sut.read() as db:
        f = fleet.fleet(db, Registry(fs.registry))
        report = {d["dev"]: d for d in device_report(db, Registry(fs.registry).devices())}
    assert report["GW-S3"]["never_seen"] is False and report["GW-S3"]["silent_s"] < 60
    assert report["MKT-S3-01"]["never_seen"] is True
    devs = {d.dev: d for d in f.devices}
    assert devs["GW-S3"].state == "green" and not devs["GW-S3"].never_seen
    assert devs["MKT-S3-01"].never_seen
    s3 = next(s for s in f.sites if s.site == "S3")
    assert not s3.never_seen and s3.state == "red"  # its scale is still silent
    assert s3.agent_backlog == 0 and s3.backlog_age_s == 0.0


def test_site_names_come_from_the_sites_registry(fs: FleetStore) -> None:
    with fs.sut.write() as db:  # as `traceedge collector import-sites` imports them
        collector_sites.import_sites(
            db,
            [
                {"site": "S1", "name": "文三路菜场", "district": "330106", "kind": "market"},
                {"site": "S9", "name": "新站", "district": "330106"},
            ],
        )
    with fs.sut.read() as db:
        sites = {s.site: s for s in fleet.site_rows(db, Registry(fs.registry))}
    assert sites["S1"].name == "文三路菜场" and sites["S1"].district == "330106"
    assert sites["S9"].never_seen and sites["S9"].devices == 0 and sites["S9"].state == "red"
    assert sites["S2"].name is None


def test_device_and_site_reports_list_never_seen_ones(fs: FleetStore, db: Db) -> None:
    reg = Registry(fs.registry).devices()
    report = {d["dev"]: d for d in device_report(db, reg)}
    assert set(fleetdata.NEVER) <= set(report)
    assert report["MKT-S3-01"]["never_seen"] is True and report["MKT-S3-01"]["last_seen"] is None
    assert report["ELV-S1-01"]["never_seen"] is False
    assert report["ELV-S1-01"]["gaps"] == [[4, 5], [8, 9]]
    assert report["ELV-S1-02"]["agent_backlog"] == 42  # its site's agent reported
    sites = {s["site"]: s for s in site_report(db, reg)}
    assert sites["S3"]["never_seen"] is True and sites["S1"]["depth"] == 42
    # without a registry: as before
    assert {d["dev"] for d in device_report(db)} == set(fleetdata.SEEN) | {fleetdata.UNREGISTERED}
    assert [s["site"] for s in site_report(db)] == ["S1"]


def test_collector_status_lists_never_seen_devices(fs: FleetStore, tmp_path: Path) -> None:
    cfg = tmp_path / "collector.toml"
    cfg.write_text(
        f'[collector]\ndata_dir = "{fs.path.parent}"\nregistry = "{fs.registry}"\n'
        'command_key = "command.key"\n' + (f'[store]\nurl = "{fs.sut.url}"\n' if fs.sut.url else "")
    )
    res = CliRunner().invoke(main, ["collector", "status", "--config", str(cfg), "--devices"])
    assert res.exit_code == 3, res.output  # no collector process runs on it
    line = next(ln for ln in res.output.splitlines() if "MKT-S3-01" in ln)
    assert "NEVER SEEN" in line and "S3" in line
    as_json = CliRunner().invoke(
        main, ["collector", "status", "--config", str(cfg), "--devices", "--json"]
    )
    devs = {d["dev"]: d for d in json.loads(as_json.output)["device_report"]}
    assert devs["GW-S3"]["never_seen"] is True

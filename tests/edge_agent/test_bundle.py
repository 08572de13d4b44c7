"""Export to a bundle and free by a receipt, against a real outbox file."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge_agent.bundle import apply_receipt, export
from edge_agent.outbox import Outbox
from hostlib.errors import BundleError
from tests.sneakernet import GW, SITE, Site, make_site
from wire import bundle as fmt
from wire.command import new_private_key, sign_command

NOW_MS = 1_800_000_000_000


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return make_site(tmp_path / "site")


def _outbox(tmp_path: Path) -> Outbox:
    return Outbox(tmp_path / "outbox.sqlite", 10**10)


def test_export_writes_every_record_and_a_sealed_manifest(tmp_path: Path, site: Site) -> None:
    ob = _outbox(tmp_path)
    assert site.fill(ob, 400) == 1200
    seen: list[tuple[int, int]] = []
    res = export(
        ob, SITE, site.gateway, tmp_path / "usb", progress=lambda d, t: seen.append((d, t))
    )
    assert res.records == 1200 and res.devices == 3
    assert seen[-1] == (1200, 1200)
    assert ob.depth()[0] == 1200, "export deletes nothing"
    data = res.path.read_bytes()
    assert res.path.name.startswith(f"{SITE}-{GW}-") and res.path.suffix == ".bundle"
    assert not list((tmp_path / "usb").glob("*.part"))
    lines = data.split(b"\n")
    assert lines[0] + b"\n" == fmt.MAGIC and lines[-1] == b""
    man = fmt.parse_manifest(lines[-2])
    fmt.check_manifest(man, [site.gateway.key])
    assert man["records"] == 1200 and man["bytes"] == len(data) - len(lines[-2]) - 1
    assert man["devices"] == {d.dev: [400, 1, 400] for d in site.terminals}
    # the records as their terminals signed them, byte for byte, in outbox order
    stored = [bytes(r[0]) for r in ob.db.execute("SELECT rec FROM outbox ORDER BY id")]
    assert lines[1:-2] == stored
    with pytest.raises(Exception, match="mac"):
        fmt.check_manifest(man, [b"\x09" * 32])
    ob.close()


def test_export_since_and_nothing_to_export(tmp_path: Path, site: Site) -> None:
    ob = _outbox(tmp_path)
    with pytest.raises(BundleError, match="nothing to export"):
        export(ob, SITE, site.gateway, tmp_path / "usb")
    site.fill(ob, 10)
    ob.db.execute("UPDATE outbox SET received = 1000 WHERE seq <= 4")
    ob.db.commit()
    res = export(ob, SITE, site.gateway, tmp_path / "usb", since=2000)
    assert res.records == 18
    ob.close()


def test_a_failed_export_leaves_no_part_file_and_deletes_nothing(
    tmp_path: Path, site: Site
) -> None:
    ob = _outbox(tmp_path)
    site.fill(ob, 50)
    usb = tmp_path / "usb"
    now = 1_790_000_000.0
    # the final rename fails: a folder already holds the bundle's name
    (usb / f"{SITE}-{GW}-20260921T141320Z.bundle" / "inside").mkdir(parents=True)
    with pytest.raises(OSError):
        export(ob, SITE, site.gateway, usb, now=now)
    assert [p.name for p in usb.iterdir()] == [f"{SITE}-{GW}-20260921T141320Z.bundle"]
    assert ob.depth()[0] == 150, "export deletes nothing"
    # another second: a whole bundle, no temp file beside it
    res = export(ob, SITE, site.gateway, usb, now=now + 1)
    assert res.records == 150 and res.path.is_file()
    assert not list(usb.glob("*.part"))
    ob.close()


def _receipt(
    st: Site, confirmed: dict[str, list[list[int]]], key: object = None, **fields: object
) -> bytes:
    cmd: dict[str, object] = {
        "type": fmt.RECEIPT,
        "site": SITE,
        "gw": GW,
        "bundle": "ab" * 32,
        "version": NOW_MS,
        "expires": NOW_MS + 1000,
        "records": sum(hi - lo + 1 for r in confirmed.values() for lo, hi in r),
        "confirmed": confirmed,
    }
    cmd.update(fields)
    return sign_command(cmd, key if isinstance(key, Ed25519PrivateKey) else st.command_key)


def test_receipt_frees_exactly_what_it_confirms(tmp_path: Path, site: Site) -> None:
    ob = _outbox(tmp_path)
    site.fill(ob, 100)
    a, b, _c = (d.dev for d in site.terminals)
    path = tmp_path / "r.receipt"
    path.write_bytes(_receipt(site, {a: [[1, 40], [50, 60]], b: [[1, 100]]}) + b"\n")
    res = apply_receipt(ob, path, SITE, site.gateway, site.command_pub, now_ms=NOW_MS)
    assert res.freed == 40 + 11 + 100 and res.devices == 2
    left = set(ob.db.execute("SELECT dev, seq FROM outbox").fetchall())
    want = {(a, s) for s in [*range(41, 50), *range(61, 101)]} | {
        (site.terminals[2].dev, s) for s in range(1, 101)
    }
    assert left == want
    assert ob.depth()[0] == len(want)
    # applied again: nothing more to free
    again = apply_receipt(ob, path, SITE, site.gateway, site.command_pub, now_ms=NOW_MS)
    assert again.freed == 0
    ob.close()


@pytest.mark.parametrize(
    "why, kw, match",
    [
        ("forged", {"key": new_private_key()}, "not signed by the centre"),
        ("other gateway", {"gw": "GW-S1-B"}, "gateway"),
        ("other site", {"site": "S2"}, "site"),
        ("expired", {"expires": NOW_MS - 1}, "expired"),
        ("not a receipt", {"type": "stop_list"}, "not a bundle receipt"),
    ],
)
def test_a_bad_receipt_frees_nothing(
    tmp_path: Path, site: Site, why: str, kw: dict[str, object], match: str
) -> None:
    ob = _outbox(tmp_path)
    site.fill(ob, 20)
    path = tmp_path / "r.receipt"
    path.write_bytes(_receipt(site, {site.terminals[0].dev: [[1, 20]]}, **kw))
    with pytest.raises(BundleError, match=match):
        apply_receipt(ob, path, SITE, site.gateway, site.command_pub, now_ms=NOW_MS)
    assert ob.depth()[0] == 60, why
    ob.close()


def test_a_flipped_byte_in_the_receipt_frees_nothing(tmp_path: Path, site: Site) -> None:
    ob = _outbox(tmp_path)
    site.fill(ob, 20)
    raw = bytearray(_receipt(site, {site.terminals[0].dev: [[1, 20]]}))
    i = raw.index(b"[[1,20]]") + 5
    raw[i] = ord("9")  # [[1,29]]: confirms more than the centre signed
    path = tmp_path / "r.receipt"
    path.write_bytes(bytes(raw))
    with pytest.raises(BundleError, match="receipt refused"):
        apply_receipt(ob, path, SITE, site.gateway, site.command_pub, now_ms=NOW_MS)
    assert ob.depth()[0] == 60
    ob.close()


def test_outbox_recounts_bytes_freed_by_another_process(tmp_path: Path, site: Site) -> None:
    """The running agent's outbox learns of a receipt applied by the CLI before it refuses."""
    first = _outbox(tmp_path)
    site.fill(first, 50)
    limit = first.bytes + 2000
    first.close()
    running = Outbox(tmp_path / "outbox.sqlite", limit)
    cli = Outbox(tmp_path / "outbox.sqlite", limit)
    assert cli.delete_identities({site.terminals[0].dev: [(1, 50)]}) == 50
    cli.close()
    added = site.fill(running, 15, first=51)  # 45 records where 50 were freed
    assert added == 45, "refused although a receipt had freed the room"
    assert running.counters()["refused"] == 0 and running.counters()["evicted"] == 0
    running.close()

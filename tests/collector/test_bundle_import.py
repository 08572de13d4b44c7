"""Import a gateway's bundle into a real store: checks before anything is stored, the same
identity rules as uplink batches, a receipt that confirms exactly what the store holds."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from collector.bundle_import import _tail, check_bundle, import_bundle, write_receipt
from collector.store import SqliteStore, read_summary
from collector.verify import Good, verify_batch
from edge_agent.bundle import apply_receipt, export
from edge_agent.outbox import Incoming, Outbox
from hostlib.errors import BundleError
from tests.sneakernet import SITE, Site, make_site
from tests.stores import StoreUnderTest
from wire import bundle as fmt
from wire.batch import encode_batch
from wire.command import verify_command
from wire.envelope import WireError
from wire.schemas import default_validator

VALIDATOR = default_validator()


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return make_site(tmp_path / "site")


def _bundle(tmp_path: Path, site: Site, per_device: int) -> tuple[Outbox, Path]:
    ob = Outbox(tmp_path / "outbox.sqlite", 10**10)
    site.fill(ob, per_device)
    return ob, export(ob, SITE, site.gateway, tmp_path / "usb").path


def _import(path: Path, site: Site, store: Any) -> Any:
    checked = check_bundle(path, site.registry)
    return import_bundle(checked, store, site.registry, VALIDATOR, site.command_key)


def _stored(store_path: Path) -> int:
    return int(read_summary(store_path)["records"])


def test_round_trip_stores_once_and_confirms_everything(tmp_path: Path, site: Site) -> None:
    ob, path = _bundle(tmp_path, site, 3000)  # 9,000 records: several chunks
    store = SqliteStore(tmp_path / "c.sqlite")
    res = _import(path, site, store)
    assert (res.records, res.stored, res.duplicates, res.bad) == (9000, 9000, 0, 0)
    cmd = verify_command(res.receipt, site.command_key.public_key(), SITE, 0)
    assert cmd["confirmed"] == {d.dev: [[1, 3000]] for d in site.terminals}
    assert cmd["records"] == 9000 and cmd["gw"] == site.gateway.dev
    # again: every record a duplicate, still all confirmed
    again = _import(path, site, store)
    assert (again.stored, again.duplicates, again.confirmed) == (0, 9000, 9000)
    store.close()
    assert _stored(tmp_path / "c.sqlite") == 9000
    # the receipt frees the whole outbox
    rpath = tmp_path / "r.receipt"
    rpath.write_bytes(res.receipt)
    freed = apply_receipt(ob, rpath, SITE, site.gateway, site.command_pub)
    assert freed.freed == 9000 and ob.depth()[0] == 0
    ob.close()


def test_later_mqtt_copy_is_a_duplicate(tmp_path: Path, site: Site) -> None:
    ob, path = _bundle(tmp_path, site, 50)
    store = SqliteStore(tmp_path / "c.sqlite")
    _import(path, site, store)
    recs = [bytes(r[0]) for r in ob.db.execute("SELECT rec FROM outbox ORDER BY id")]
    vb = verify_batch(
        SITE, encode_batch(SITE, "GW-S1", "b1", recs), site.registry, VALIDATOR, 1 << 24
    )
    res = store.commit(vb.site, vb.batch_id, vb.good, vb.bad)
    assert (res.stored, res.duplicates, res.bad) == (0, 150, 0)
    store.close()
    assert read_summary(tmp_path / "c.sqlite")["conflicts"] == 0
    ob.close()


def test_conflicts_and_bad_records_are_not_confirmed(tmp_path: Path, site: Site) -> None:
    a = site.terminals[0]
    store = SqliteStore(tmp_path / "c.sqlite")
    ob = Outbox(tmp_path / "outbox.sqlite", 10**10)
    site.fill(ob, 10)
    # a record whose MAC fails (a terminal's bug): quarantined, not confirmed
    genuine = site.record(a, 11)
    at = genuine.index(b'"mac":"') + 7
    forged = genuine[:at] + (b"1" if genuine[at : at + 1] == b"0" else b"0") + genuine[at + 1 :]
    ob.add_many([Incoming(a.dev, 11, "cylinder.fill", forged)])
    # the centre holds (a, 3) with another MAC: seed the store with a conflicting copy
    store.commit(SITE, "seed", [Good(a.dev, 3, "cylinder.fill", 1, "f" * 64, '{"x":1}')], [])
    path = export(ob, SITE, site.gateway, tmp_path / "usb").path
    res = _import(path, site, store)
    assert res.bad == 2 and res.confirmed == 29  # 31 records, one conflict, one bad MAC
    store_db = store.db
    reasons = dict(store_db.execute("SELECT reason, records FROM quarantine_reasons").fetchall())
    assert reasons.get("mac") == 1 and reasons.get("conflict") == 1
    cmd = verify_command(res.receipt, site.command_key.public_key(), SITE, 0)
    confirmed = cmd["confirmed"]
    assert isinstance(confirmed, dict) and confirmed[a.dev] == [[1, 2], [4, 10]]
    store.close()
    ob.close()


def test_store_nothing_for_a_bundle_cut_at_every_4k_boundary(tmp_path: Path, site: Site) -> None:
    _, path = _bundle(tmp_path, site, 100)
    data = path.read_bytes()
    assert len(data) > 20 * 4096
    store_path = tmp_path / "c.sqlite"
    SqliteStore(store_path).close()
    cut = tmp_path / "cut.bundle"
    cuts = [*range(0, len(data), 4096), len(data) - 1]
    for n in cuts:
        cut.write_bytes(data[:n])
        with pytest.raises(BundleError, match="refused") as err:
            check_bundle(cut, site.registry)
        assert "nothing stored" in str(err.value)
    assert _stored(store_path) == 0


class _Counting(io.BytesIO):
    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.bytes_read = 0

    def read(self, n: int | None = -1) -> bytes:
        b = super().read(n)
        self.bytes_read += len(b)
        return b


def test_a_manifest_longer_than_the_first_read_is_found_and_a_torn_end_read_once(
    tmp_path: Path, site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The manifest is looked for in the file's last ``TAIL_READ`` bytes, then in as much
    as a manifest may hold; a file that does not end with a newline is torn at the first
    read (a torn month's bundle is not read 65 MiB deep for nothing)."""
    _, path = _bundle(tmp_path, site, 30)
    data = path.read_bytes()
    monkeypatch.setattr(fmt, "TAIL_READ", 64)  # shorter than any manifest
    assert check_bundle(path, site.registry).records == 90
    f = _Counting(data)
    offset, line = _tail(f, len(data))
    assert data[offset:] == line + b"\n" and f.bytes_read == 64 + len(data)
    torn = data[: len(data) - 1000].rstrip(b"\n")  # cut inside a line
    f = _Counting(torn)
    with pytest.raises(WireError, match="does not end with a complete manifest line"):
        _tail(f, len(torn))
    assert f.bytes_read == 64
    # ends with a newline but the manifest is gone: the longer read is tried, then refused
    cut = data[: data.rindex(b"\n", 0, len(data) - 1) + 1]
    cut_path = tmp_path / "cut.bundle"
    cut_path.write_bytes(cut)
    with pytest.raises(BundleError, match="torn: the last line is not a bundle manifest"):
        check_bundle(cut_path, site.registry)


@pytest.mark.parametrize("where", ["magic", "record", "last record", "manifest", "newline"])
def test_a_flipped_byte_is_refused(tmp_path: Path, site: Site, where: str) -> None:
    _, path = _bundle(tmp_path, site, 30)
    data = bytearray(path.read_bytes())
    man_at = data.rindex(b"\n", 0, len(data) - 1) + 1
    at = {
        "magic": 3,
        "record": len(fmt.MAGIC) + 100,
        "last record": man_at - 20,
        "manifest": man_at + 40,
        "newline": len(fmt.MAGIC) - 1,
    }[where]
    data[at] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="refused"):
        check_bundle(path, site.registry)


def test_refused_with_a_reason(tmp_path: Path, site: Site) -> None:
    _, path = _bundle(tmp_path, site, 10)
    data = path.read_bytes()
    bad = tmp_path / "x.bundle"
    man_at = data.rindex(b"\n", 0, len(data) - 1) + 1
    cases = {
        b"hello\n": "not a traceedge bundle",
        data[: man_at - 1]: "torn",
        data.replace(b'"gw":"GW-S1"', b'"gw":"GW-S9"'): "not a gateway of site",
        data[:man_at] + data[man_at:].replace(b'"records":30', b'"records":31'): "tampered",
    }
    for content, reason in cases.items():
        bad.write_bytes(content)
        with pytest.raises(BundleError, match=reason):
            check_bundle(bad, site.registry)


def test_import_on_both_stores(tmp_path: Path, site: Site, any_store: StoreUnderTest) -> None:
    _, path = _bundle(tmp_path, site, 200)
    res = _import(path, site, any_store.store)
    assert (res.stored, res.duplicates, res.confirmed) == (600, 0, 600)
    again = _import(path, site, any_store.store)
    assert (again.stored, again.duplicates, again.confirmed) == (0, 600, 600)
    assert any_store.store.summary()["records"] == 600


def test_one_flipped_byte_anywhere_is_refused(tmp_path: Path, site: Site) -> None:
    """Every 509th byte in turn (magic, records, newlines, manifest): each flip refused."""
    _, path = _bundle(tmp_path, site, 40)
    data = path.read_bytes()
    flipped = tmp_path / "flip.bundle"
    for at in [*range(0, len(data), 509), len(data) - 2, len(data) - 1]:
        b = bytearray(data)
        b[at] ^= 0x20
        flipped.write_bytes(bytes(b))
        with pytest.raises(BundleError, match="refused"):
            check_bundle(flipped, site.registry)


def test_a_bundle_changed_after_its_check_gets_no_receipt(tmp_path: Path, site: Site) -> None:
    """A medium pulled and pushed back between check and import: what is stored was
    verified record by record, but the changed file is confirmed for nothing."""
    _, path = _bundle(tmp_path, site, 20)
    checked = check_bundle(path, site.registry)
    data = bytearray(path.read_bytes())
    data[len(fmt.MAGIC) + 30] ^= 0x01  # inside the first record: its MAC now fails
    path.write_bytes(bytes(data))
    store = SqliteStore(tmp_path / "c.sqlite")
    with pytest.raises(BundleError, match="changed while it was imported"):
        import_bundle(checked, store, site.registry, VALIDATOR, site.command_key)
    store.close()
    summary = read_summary(tmp_path / "c.sqlite")
    assert summary["records"] == 59 and summary["quarantined"] == 1


def test_receipt_is_written_whole_and_no_temp_file_stays_on_error(
    tmp_path: Path, site: Site
) -> None:
    ob, path = _bundle(tmp_path, site, 10)
    store = SqliteStore(tmp_path / "c.sqlite")
    res = _import(path, site, store)
    store.close()
    ob.close()
    usb = tmp_path / "usb"
    out = usb / "r.receipt"
    out.write_bytes(b"an older receipt that is longer than any new one " * 100)
    write_receipt(out, res.receipt)  # replaces it whole
    assert out.read_bytes() == res.receipt + b"\n"
    assert sorted(p.name for p in usb.iterdir()) == sorted([path.name, "r.receipt"])
    # the rename fails (a folder holds the receipt's name): the error is raised and the
    # temp file does not stay on the medium
    blocked = usb / "blocked.receipt"
    (blocked / "inside").mkdir(parents=True)
    with pytest.raises(OSError):
        write_receipt(blocked, res.receipt)
    assert not (usb / "blocked.receipt.part").exists()
    assert blocked.is_dir() and (blocked / "inside").is_dir()
    # a folder that is not there: nothing written, nothing left
    with pytest.raises(FileNotFoundError):
        write_receipt(usb / "gone" / "r.receipt", res.receipt)
    assert sorted(p.name for p in usb.iterdir()) == sorted(
        [path.name, "r.receipt", "blocked.receipt"]
    )

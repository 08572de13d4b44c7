"""The flash log and the state files: append, read, ack, free, recover; and a power cut
injected at every step of a run of writes (every byte, create, rename and remove)."""

import tesim

_TYPING = False
if _TYPING:
    from typing import Any

tesim.install()

from te.flashlog import OVERHEAD, FlashLog, LogFull  # noqa: E402
from te.fs import FS  # noqa: E402
from te.recorder import Ids  # noqa: E402
from te.state import StateFile  # noqa: E402
from tesim.memfs import MemFS, PowerCut  # noqa: E402


def _log(fs: MemFS, seg: int = 160, max_bytes: int = 100000, reserve: int = 0) -> FlashLog:
    log = FlashLog(fs, "/log", seg, max_bytes, reserve)
    log.open()
    return log


def _payload(seq: int) -> bytes:
    pad = "x" * (seq % 5)
    return ('{"seq":' + str(seq) + ',"pad":"' + pad + '"}').encode()


def test_append_read_in_order() -> None:
    log = _log(MemFS())
    for s in range(1, 21):
        assert log.append(s, _payload(s)) == len(_payload(s)) + OVERHEAD
    got = log.read(0, 100)
    assert [s for s, _ in got] == list(range(1, 21))
    assert all(p == _payload(s) for s, p in got)
    assert len(log.segs) > 3, "small segments must rotate"
    assert log.read(7, 3) == [(s, _payload(s)) for s in (7, 8, 9)]
    assert log.pending() == 20 and log.oldest_unacked() == 1


def test_acks_free_whole_segments_only() -> None:
    fs = MemFS()
    log = _log(fs)
    for s in range(1, 21):
        log.append(s, _payload(s))
    nsegs = len(log.segs)
    first_last = [(g.first, g.last) for g in log.segs]
    cut = first_last[1][1]  # end of the second segment
    freed = log.ack([[1, cut]], [])
    assert freed == 2 and len(log.segs) == nsegs - 2
    assert log.pending() == 20 - cut
    assert [s for s, _ in log.read(0, 100)] == list(range(cut + 1, 21))
    assert len([n for n in fs.files if n.startswith("/log/")]) == nsegs - 2
    # a quarantined seq ("bad") frees too; out-of-order acks merge into ranges
    log.ack([[cut + 2, 20]], [cut + 1])
    assert log.pending() == 0 and not log.segs and log.oldest_unacked() == 0
    log.append(21, _payload(21))
    assert log.read(0, 10) == [(21, _payload(21))]


def test_ack_garbage_is_ignored() -> None:
    log = _log(MemFS())
    log.append(1, b"a")
    log.ack(["x", [3], [2, 1], [0, 5], None], ["q", -1, None])
    assert log.pending() == 1


def test_reopen_gives_the_same_log() -> None:
    fs = MemFS()
    log = _log(fs)
    for s in range(1, 15):
        log.append(s, _payload(s))
    log.ack([[1, 4]], [])
    log.close()
    again = _log(fs)
    assert again.last_seq == 14
    seqs = [s for s, _ in again.read(0, 100)]
    assert seqs[-1] == 14 and set(range(5, 15)) <= set(seqs)  # acks were in RAM only
    assert again.torn == 0 and again.corrupt == 0


def test_torn_last_entry_is_dropped_and_writing_moves_on() -> None:
    fs = MemFS()
    log = _log(fs, seg=10000)
    for s in range(1, 6):
        log.append(s, _payload(s))
    log.close()
    name = f"/log/{log.segs[-1].no:08d}.seg"
    whole = bytes(fs.files[name])
    from te.flashlog import entry

    torn = entry(6, _payload(6))
    for k in range(1, len(torn)):
        fs.files[name] = bytearray(whole + torn[:k])
        again = _log(fs, seg=10000)
        assert again.torn == 1, k
        assert [s for s, _ in again.read(0, 100)] == [1, 2, 3, 4, 5]
        assert again.last_seq == 5
        again.append(6, b"new six")
        assert again.segs[-1].no == log.segs[-1].no + 1, "never append after garbage"
        assert again.read(6, 5) == [(6, b"new six")]
        third = _log(fs, seg=10000)
        assert [s for s, _ in third.read(0, 100)] == [1, 2, 3, 4, 5, 6]
        assert third.torn == 1
        del fs.files[f"/log/{again.segs[-1].no:08d}.seg"]


def test_corrupt_entry_in_the_middle_costs_that_entry_only() -> None:
    fs = MemFS()
    log = _log(fs, seg=10000)
    for s in range(1, 9):
        log.append(s, _payload(s))
    log.close()
    name = f"/log/{log.segs[0].no:08d}.seg"
    data = fs.files[name]
    off = 0
    for _ in range(3):  # into the 4th entry's payload
        off += OVERHEAD + len(_payload(_ + 1))
    data[off + 9] ^= 0x40
    again = _log(fs, seg=10000)
    assert again.corrupt > 0 and again.torn == 0
    assert [s for s, _ in again.read(0, 100)] == [1, 2, 3, 5, 6, 7, 8]


def test_full_log_keeps_room_for_protected_records() -> None:
    log = _log(MemFS(), seg=300, max_bytes=1000, reserve=300)
    p = b"y" * 89  # 100 bytes an entry
    n = 0
    try:
        while True:
            log.append(n + 1, p, protected=False)
            n += 1
    except LogFull:
        pass
    assert n == 7  # 700 of 1000 bytes: the reserve is for protected records
    for i in range(3):
        log.append(n + 1 + i, p, protected=True)
    try:
        log.append(n + 4, p, protected=True)
    except LogFull:
        pass
    else:
        raise AssertionError("a full log must refuse")
    log.ack([[1, 6]], [])
    log.append(n + 4, p, protected=False)  # room again after acks


def _until_cut(fn: Any, *args: Any) -> bool:
    """Run ``fn`` until the power cut; False if it finished first."""
    try:
        fn(*args)
    except PowerCut:
        return True
    return False


def _mkdir(path: str) -> bool:
    import os

    try:
        os.mkdir(path)
    except OSError:
        return False
    return True


def test_real_filesystem() -> None:
    import os

    root = "/tmp/te-log"
    _mkdir("/tmp")
    fs = FS()
    log = FlashLog(fs, root, 300, 100000, 0)
    log.open()
    for s in range(1, 31):
        log.append(s, _payload(s))
    log.ack([[1, 10]], [])
    log.close()
    again = FlashLog(fs, root, 300, 100000, 0)
    again.open()
    seqs = [s for s, _ in again.read(0, 100)]
    assert seqs[-1] == 30 and set(range(11, 31)) <= set(seqs)
    assert all(n.endswith(".seg") for n in os.listdir(root))


def _scenario(
    fs: MemFS, committed: "dict[int, bytes]", acked: "set[int]", boots: "list[int]"
) -> None:
    """A device's life: boot, write, rotate segments, get acks (freeing segments and
    saving the seq floor), write more."""
    fs.mkdir("/state")
    log = _log(fs, seg=120)
    ids = Ids(fs, "/state/ids.json")
    log.on_free = ids.save_floor
    boot, seq = ids.start(log.last_seq)
    boots.append(boot)
    for i in range(30):
        seq += 1
        log.append(seq, _payload(seq))
        committed[seq] = _payload(seq)
        if i in (5, 12, 20, 26):
            lo = min(committed)
            acked.update(range(lo, seq))  # the gateway has them, whatever happens next
            log.ack([[lo, seq - 1]], [])


def _check_after_cut(
    fs: MemFS, committed: "dict[int, bytes]", acked: "set[int]", boots: "list[int]"
) -> None:
    fs.cut_at = 0
    fs.mkdir("/state")
    log = _log(fs, seg=120)
    ids = Ids(fs, "/state/ids.json")
    log.on_free = ids.save_floor
    boot, last = ids.start(log.last_seq)
    if committed:
        assert boot > boots[0], "boot counter must move past a boot that made records"
        top = max(committed)
        assert last >= top, f"seq floor {last} below a record that was made ({top})"
    got = dict(log.read(0, 1000))
    for s, p in got.items():
        assert committed.get(s) == p, f"entry {s} was never committed or changed"
    for s in committed:
        if s not in acked:
            assert s in got, f"unacknowledged record {s} lost"
    # the device carries on
    for s in range(last + 1, last + 4):
        log.append(s, _payload(s))
    assert [s for s, _ in log.read(last + 1, 10)] == [last + 1, last + 2, last + 3]


def test_power_cut_at_every_step_loses_nothing_and_never_reuses_a_seq() -> None:
    fs = MemFS()
    _scenario(fs, {}, set(), [])
    total = fs.steps
    assert total > 500
    for k in range(1, total + 1):
        fs = MemFS()
        fs.cut_at = k
        committed: dict[int, bytes] = {}
        acked: set[int] = set()
        boots: list[int] = []
        try:
            _scenario(fs, committed, acked, boots)
        except PowerCut:
            pass
        else:
            raise AssertionError(f"no cut at step {k} of {total}")
        try:
            _check_after_cut(fs, committed, acked, boots or [0])
        except AssertionError as exc:
            raise AssertionError(f"cut at step {k}: {exc}") from exc
    print(f"power cut: {total} cut points checked")


def test_power_cut_on_a_second_boot() -> None:
    """Cuts while a log with history recovers and writes again."""
    base = MemFS()
    committed: dict[int, bytes] = {}
    acked0: set[int] = set()
    _scenario(base, committed, acked0, [])
    start = base.steps
    probe = base.copy()
    _scenario(probe, dict(committed), set(), [])
    total = probe.steps
    for k in range(1, total + 1, 3):
        fs = base.copy()
        fs.cut_at = k
        c2 = dict(committed)
        a2 = set(acked0)
        boots: list[int] = []
        _until_cut(_scenario, fs, c2, a2, boots)
        _check_after_cut(fs, c2, a2, boots or [1])
    assert total > start


def test_state_file_survives_a_cut_at_every_step() -> None:
    fs = MemFS()
    sf = StateFile(fs, "/s.json")
    sf.save({"n": 1})
    steps0 = fs.steps
    sf.save({"n": 2})
    per_save = fs.steps - steps0
    for k in range(1, per_save + 1):
        f2 = MemFS()
        a = StateFile(f2, "/s.json")
        a.save({"n": 1})
        f2.cut_at = f2.steps + k
        _until_cut(a.save, {"n": 2})
        f2.cut_at = 0
        got = StateFile(f2, "/s.json").load()
        assert got in ({"n": 1}, {"n": 2}), (k, got)


def test_state_file_without_atomic_rename() -> None:
    fs = MemFS()
    fs.rename_replaces = False
    for k in range(1, 200):
        f2 = MemFS()
        f2.rename_replaces = False
        a = StateFile(f2, "/s.json")
        a.save({"n": 1})
        f2.cut_at = f2.steps + k
        if not _until_cut(a.save, {"n": 2}):
            break
        f2.cut_at = 0
        got = StateFile(f2, "/s.json").load()
        assert got in ({"n": 1}, {"n": 2}), (k, got)

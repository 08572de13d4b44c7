"""The intake's queue is bounded in bytes: a producer waits while it is full."""

from __future__ import annotations

import threading

from hostlib.queues import MessageQueue


def test_put_waits_while_the_queued_bytes_reach_the_bound() -> None:
    q: MessageQueue[str] = MessageQueue(max_items=1000, max_bytes=3000)
    stop = threading.Event()
    for i in range(3):
        assert q.put_blocking(f"m{i}", bytes(1000), stop)
    done: list[bool] = []
    t = threading.Thread(target=lambda: done.append(q.put_blocking("m3", bytes(1000), stop)))
    t.start()
    t.join(0.5)
    assert t.is_alive() and q.nbytes == 3000  # waiting: the bound holds
    assert q.get(1)[0] == "m0"
    t.join(2)
    assert done == [True] and q.nbytes == 3000 and q.qsize() == 3


def test_one_message_larger_than_the_bound_goes_in_when_the_queue_is_empty() -> None:
    q: MessageQueue[str] = MessageQueue(max_items=10, max_bytes=100)
    stop = threading.Event()
    assert q.put_blocking("big", bytes(1000), stop)
    stop.set()
    assert not q.put_blocking("next", b"x", stop)  # full, and asked to stop: gives up
    assert q.get(1) == ("big", bytes(1000)) and q.nbytes == 0

"""Child processes that do not outlive the process that started them (Linux).

A demo, a test or a benchmark starts a broker, a collector and an agent as children. When
it stops in order it stops them; when it is killed with SIGKILL, which no handler can
catch, nothing of it runs any more, so the kernel has to do it: ``prctl(PR_SET_PDEATHSIG,
SIGKILL)``, set in the child between ``fork`` and ``exec`` (``Popen``'s ``preexec_fn``),
has the kernel send SIGKILL to the child the moment its parent dies, however it dies. The
setting survives ``exec``, but not a change of user: a child must not switch users (or run
a set-user-ID program). Mosquitto started as root switches to its own user unless its
config says otherwise; :mod:`traceedge.brokers` says so.

The kernel's "parent" is the *thread* that forked: start children from a thread that lives
as long as they should (the main thread does; the demo, the tests and the benchmarks all
start theirs from it). Elsewhere than Linux :func:`die_with_parent` gives ``None`` and a
child outlives a parent killed with SIGKILL.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Callable

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>

_prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None


def die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` for :class:`subprocess.Popen` that ties the child's life to this
    process (see the module docstring); ``None`` where the kernel offers no such thing."""
    prctl = _prctl  # looked up before the fork: the child only calls it
    if prctl is None:
        return None
    parent = os.getpid()

    def preexec() -> None:
        if prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
        if os.getppid() != parent:  # the parent died before the line above: no signal comes
            os._exit(1)

    return preexec

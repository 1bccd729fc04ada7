"""How every process of one `portside serve` ends with its supervisor.

`portside serve` stays as the supervisor of the instance: it runs the start-up in a child
process, then forks the server processes (Granian's workers), which share its listening
socket. When it dies without stopping them (SIGKILL, the OOM killer, a crash), they must
not go on: re-parented to PID 1 they would keep the port and answer with the dead
instance's code and settings, and nothing but a control group would ever clean them up.
So each child is tied to the supervisor, and the kernel kills it the moment the
supervisor dies, for whatever reason.

The tie is Linux's parent-death signal (`prctl(PR_SET_PDEATHSIG)`), not a pipe whose end
the child watches: the kernel delivers it whatever the child is doing, even with every
thread busy or stuck, and it needs no watching thread in each server process. Its two
traps, and how they are avoided:

- It fires when the *thread* that forked the child ends, not the process. Only a child
  forked by the supervisor's main thread, which lives exactly as long as the process, is
  tied; Granian forks (and re-forks) its workers from there. A fork from any other thread
  is left untied, with a warning, rather than killed when that thread ends.
- Set in the child after the fork, it cannot fire for a parent that died before it was
  set. So the child checks, once it is set, that its parent is still the supervisor.

The signal is SIGKILL, not SIGTERM: nobody is left to wait for an orderly stop, which could
hold the port for as long as its slowest client. A request cut off here leaves what a crash
leaves, which the stores are built for (uploads staged then published, one transaction per
change). On other systems than Linux nothing is tied.
"""

from __future__ import annotations

import ctypes
import functools
import os
import signal
import sys
import threading
from collections.abc import Callable

__all__ = ["end_with_supervisor", "tie_forked_children"]

_PR_SET_PDEATHSIG = 1


@functools.cache
def _prctl() -> Callable[..., int] | None:
    # Looked up before any fork: in a child forked while another thread held the dynamic
    # loader's lock, looking it up would wait for ever.
    if not sys.platform.startswith("linux"):
        return None
    prctl: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    return prctl


def end_with_supervisor(supervisor: int) -> None:
    """Have this process killed when `supervisor`, its parent, dies (Linux)."""
    prctl = _prctl()
    if prctl is None:
        return
    if prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != supervisor:
        # It died before the signal was set: this process was already re-parented.
        os.kill(os.getpid(), signal.SIGKILL)


# Whether the fork under way is one the supervisor's main thread makes (noted in the
# parent just before it forks; the child starts with a copy).
_from_supervisors_main_thread = False


def tie_forked_children(supervisor: int) -> None:
    """Tie every process this one (`supervisor`) forks from now on to it.

    Processes that its children fork in turn are not tied to it: each of them is its own
    parent's concern."""
    _prctl()

    def note_who_forks() -> None:
        global _from_supervisors_main_thread
        _from_supervisors_main_thread = (
            os.getpid() == supervisor and threading.current_thread() is threading.main_thread()
        )

    def tie() -> None:
        if _from_supervisors_main_thread:
            end_with_supervisor(supervisor)
        elif os.getppid() == supervisor:
            print(
                f"portside: process {os.getpid()} was forked off the supervisor's main thread and is not tied to it",
                file=sys.stderr,
            )

    os.register_at_fork(before=note_who_forks, after_in_child=tie)

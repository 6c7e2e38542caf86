"""``run_together``: the same work on several threads at once, errors collected for the test;
``processes_at_once``: the same call in several processes at one moment."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable, Sequence


def run_together(work: Callable[[int], None], threads: int, *,
                 timeout: float = 60.0) -> list[BaseException]:
    """Run ``work(0)`` … ``work(threads - 1)`` on as many threads at once; what they raised."""
    errors: list[BaseException] = []

    def guarded(i: int) -> None:
        try:
            work(i)
        except BaseException as error:  # reported to the test
            errors.append(error)

    started = [threading.Thread(target=guarded, args=(i,)) for i in range(threads)]
    for thread in started:
        thread.start()
    for thread in started:
        thread.join(timeout)
    return errors


# One child pays the imports once, then forks each round's processes: each is its own process
# with its own files and connections, as separate service instances are, opening at one moment.
# Nothing is opened before a fork.
_AT_ONCE = """
import os, sys, time
setup, call, processes, targets = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
exec(setup)
for target in targets:
    start = time.time() + 0.5  # every child forked and waiting before the first opens
    pids = []
    for _ in range(processes):
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                time.sleep(max(0.0, start - time.time()))
                eval(call)
            except BaseException as error:
                print(f"{target}: {type(error).__name__}: {error}"[-400:], file=sys.stderr)
                code = 1
            finally:
                sys.stderr.flush()
                os._exit(code)
        pids.append(pid)
    failed = [pid for pid in pids if os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) != 0]
    if failed:
        sys.exit(f"{len(failed)} of {processes} processes failed on {target}")
"""


def processes_at_once(setup: str, call: str, targets: Sequence[str], *, processes: int,
                      timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    """For each target in turn, ``processes`` separate processes evaluate ``call`` (an
    expression over ``target``) at the same moment, after ``setup`` (their imports) ran once
    in the parent they fork from. Exit 0 when every process succeeded; stderr names failures."""
    return subprocess.run([sys.executable, "-c", _AT_ONCE, setup, call, str(processes),
                           *targets], capture_output=True, text=True, timeout=timeout,
                          check=False)

"""Process diagnostics shared by the benchmarks, the tests and the service's status page."""

from __future__ import annotations

import resource
from pathlib import Path


def peak_rss_mib() -> float:
    """This process's peak resident memory, in MiB.

    Reads ``VmHWM`` from ``/proc/self/status``: it belongs to the process's own address space,
    so a child started by ``subprocess`` begins from zero. ``ru_maxrss`` does not: Linux keeps
    it across fork and exec, so a child of a large parent would report the parent's peak.
    ``ru_maxrss`` is the fallback where /proc is missing.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
